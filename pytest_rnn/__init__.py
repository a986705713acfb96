"""pytest-rnn: a pytest plugin that pins down how Keras recurrent layers behave.

Subpackages (the imports flow one way: runtime <- store <- plugin, runtime <- checks <- data):

* :mod:`pytest_rnn.plugin`: the pytest hooks, options, fixtures, markers, records, report;
* :mod:`pytest_rnn.store`: the baseline store (files, keys, bands), without pytest;
* :mod:`pytest_rnn.runtime`: versions, the known-defects ledger, devices, seeds and
  thread caps of this process;
* :mod:`pytest_rnn.backends`: what differs per Keras backend (gradients, compilation),
  one module per backend behind a small seam;
* :mod:`pytest_rnn.checks`: the Keras checks (reference math, shapes, parameter
  counts, dropout, cuDNN routing, the layer contract) and the model builders;
* :mod:`pytest_rnn.data`: IMDB subsets, toy tasks, the training routine;
* :mod:`pytest_rnn.bench`: kernel-timing cases, arithmetic and step builders.
* :mod:`pytest_rnn.adapters`: the other packages' internals pytest-rnn uses, one module per
  package, each checked when used.

Public names and subpackages are imported lazily, so ``import pytest_rnn`` (which
pytest does for every run through the plugin's entry point) never imports
TensorFlow or Keras by itself; ``pytest_rnn.data.load_imdb_subset`` works right
after ``import pytest_rnn``. The modules of the first release's flat layout
(``pytest_rnn.reference``, ``pytest_rnn.models``, ...) remain importable under
their old names: :data:`_MOVED` maps each to its home, and both names are the same
module object, so monkeypatching either changes both.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "DeviceInfo": "pytest_rnn.runtime.device",
    "full_float32": "pytest_rnn.backends",
    "derive_seed": "pytest_rnn.runtime.seeding",
    "seed_everything": "pytest_rnn.backends",
    "expected_param_count": "pytest_rnn.checks.params",
    "assert_param_count": "pytest_rnn.checks.params",
    "assert_matches_reference": "pytest_rnn.checks.reference",
    "NumpyCell": "pytest_rnn.checks.step_model",
    "expected_output_structure": "pytest_rnn.checks.shapes",
    "assert_output_structure": "pytest_rnn.checks.shapes",
    "SequenceDataset": "pytest_rnn.data.imdb",
    "load_imdb_subset": "pytest_rnn.data.imdb",
    "SequenceTask": "pytest_rnn.data.tasks",
    "DropoutMeasurement": "pytest_rnn.checks.dropout",
    "binomial_tolerance": "pytest_rnn.checks.dropout",
    "measure_dropout": "pytest_rnn.checks.dropout",
    "assert_dropout_rate": "pytest_rnn.checks.dropout",
    "assert_inverted_dropout_scaling": "pytest_rnn.checks.dropout",
    "assert_dropout_mask_shared_across_time": "pytest_rnn.checks.dropout",
    "assert_inference_ignores_dropout": "pytest_rnn.checks.dropout",
    "assert_training_applies_dropout": "pytest_rnn.checks.dropout",
    "assert_seed_reproduces_masks": "pytest_rnn.checks.dropout",
    "CellMasks": "pytest_rnn.checks.dropout",
    "record_dropout_masks": "pytest_rnn.checks.dropout",
    "assert_cell_masks_sized": "pytest_rnn.checks.dropout",
    "assert_cell_mask_rates": "pytest_rnn.checks.dropout",
    "assert_training_uses_the_drawn_masks": "pytest_rnn.checks.dropout",
    "conv_output_spatial": "pytest_rnn.checks.shapes",
    "make_task": "pytest_rnn.data.tasks",
    "RecurrentLayerContract": "pytest_rnn.checks.contract",
    "CONTRACT_TESTS": "pytest_rnn.checks.contract",
    "Baselines": "pytest_rnn.plugin.baselines",
    "BaselineFileError": "pytest_rnn.plugin.baselines",
    "CheckResult": "pytest_rnn.plugin.baselines",
    "read_baseline_file": "pytest_rnn.plugin.baselines",
    "CudnnEligibility": "pytest_rnn.checks.cudnn",
    "cudnn_eligibility": "pytest_rnn.checks.cudnn",
    "cudnn_sequence_output": "pytest_rnn.checks.cudnn",
    "expected_kernel": "pytest_rnn.checks.cudnn",
    "fused_route": "pytest_rnn.checks.cudnn",
    "mask_allows_cudnn": "pytest_rnn.checks.cudnn",
    "simulated_gpu_routing": "pytest_rnn.checks.cudnn",
    "assert_gradients_match_reference": "pytest_rnn.checks.reference_grad",
    "reference_gradients": "pytest_rnn.checks.reference_grad",
    "assert_gradients_match_finite_differences": "pytest_rnn.checks.finite_differences",
}

#: Subpackages reachable as attributes after ``import pytest_rnn`` (imported on first use).
SUBPACKAGES = ("adapters", "backends", "bench", "checks", "data", "plugin", "runtime", "store")

#: Module paths of the first release's flat layout -> where each module lives now.
_MOVED = {
    "pytest_rnn.baselines": "pytest_rnn.plugin.baselines",
    "pytest_rnn.benchmarking": "pytest_rnn.plugin.benchmarks",
    "pytest_rnn.contract": "pytest_rnn.checks.contract",
    "pytest_rnn.cudnn": "pytest_rnn.checks.cudnn",
    "pytest_rnn.device": "pytest_rnn.runtime.device",
    "pytest_rnn.dropout": "pytest_rnn.checks.dropout",
    "pytest_rnn.fixtures": "pytest_rnn.plugin.fixtures",
    "pytest_rnn.markers": "pytest_rnn.plugin.markers",
    "pytest_rnn.models": "pytest_rnn.checks.models",
    "pytest_rnn.options": "pytest_rnn.plugin.options",
    "pytest_rnn.params": "pytest_rnn.checks.params",
    "pytest_rnn.records": "pytest_rnn.plugin.records",
    "pytest_rnn.reference": "pytest_rnn.checks.reference",
    "pytest_rnn.report": "pytest_rnn.plugin.report",
    "pytest_rnn.report_header": "pytest_rnn.plugin.header",
    "pytest_rnn.seeding": "pytest_rnn.runtime.seeding",
    "pytest_rnn.shapes": "pytest_rnn.checks.shapes",
    "pytest_rnn.tasks": "pytest_rnn.data.tasks",
    "pytest_rnn.training": "pytest_rnn.data.training",
}

__all__ = sorted(_EXPORTS)


def lazy_submodules(package: str, names: tuple[str, ...]):
    """A module ``__getattr__`` that imports ``package.<name>`` on first access."""

    def __getattr__(name: str):
        if name in names:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import a module of the old flat layout as the module that replaced it."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in _MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(_MOVED[spec.name])

    def exec_module(self, module) -> None:
        """Nothing to run: the module was executed under its new name."""


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.insert(0, _MovedModules())


def __getattr__(name: str):
    if name in SUBPACKAGES or f"{__name__}.{name}" in _MOVED:
        return importlib.import_module(f"{__name__}.{name}")  # sets the attribute too
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_rnn' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    moved = {m.rsplit(".", 1)[1] for m in _MOVED}
    return sorted(set(globals()) | set(_EXPORTS) | set(SUBPACKAGES) | moved)
