"""pytest-rnn: a pytest plugin that pins down how Keras recurrent layers behave.

Public names are imported lazily, so ``import pytest_rnn`` (which pytest does for
every run through the plugin's entry point) never imports TensorFlow by itself.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "DeviceInfo": "pytest_rnn.device",
    "full_float32": "pytest_rnn.device",
    "derive_seed": "pytest_rnn.seeding",
    "seed_everything": "pytest_rnn.seeding",
    "expected_param_count": "pytest_rnn.params",
    "assert_param_count": "pytest_rnn.params",
    "assert_matches_reference": "pytest_rnn.reference",
    "expected_output_structure": "pytest_rnn.shapes",
    "assert_output_structure": "pytest_rnn.shapes",
    "SequenceDataset": "pytest_rnn.data",
    "load_imdb_subset": "pytest_rnn.data",
    "SequenceTask": "pytest_rnn.tasks",
    "DropoutMeasurement": "pytest_rnn.dropout",
    "binomial_tolerance": "pytest_rnn.dropout",
    "measure_dropout": "pytest_rnn.dropout",
    "assert_dropout_rate": "pytest_rnn.dropout",
    "assert_inverted_dropout_scaling": "pytest_rnn.dropout",
    "assert_dropout_mask_shared_across_time": "pytest_rnn.dropout",
    "assert_inference_ignores_dropout": "pytest_rnn.dropout",
    "assert_training_applies_dropout": "pytest_rnn.dropout",
    "assert_seed_reproduces_masks": "pytest_rnn.dropout",
    "make_task": "pytest_rnn.tasks",
    "RecurrentLayerContract": "pytest_rnn.contract",
    "CONTRACT_TESTS": "pytest_rnn.contract",
    "Baselines": "pytest_rnn.baselines",
    "BaselineFileError": "pytest_rnn.baselines",
    "CheckResult": "pytest_rnn.baselines",
    "read_baseline_file": "pytest_rnn.baselines",
    "CudnnEligibility": "pytest_rnn.cudnn",
    "cudnn_eligibility": "pytest_rnn.cudnn",
    "cudnn_sequence_output": "pytest_rnn.cudnn",
    "expected_kernel": "pytest_rnn.cudnn",
    "mask_allows_cudnn": "pytest_rnn.cudnn",
    "simulated_gpu_routing": "pytest_rnn.cudnn",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_rnn' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
