"""Injected regressions for ConvLSTM, stacked cells and Keras 2 models, with the runner.

Entries have the form of :mod:`keras_regressions`' catalogue (``id``, ``description``,
``apply(monkeypatch)``, the suite tests that must fail, ``fails``, and neighbours that
must pass, ``passes``) plus ``pattern``: a regular expression every failing target's
message must match, so a target that fails for another reason (a crash, an unrelated
assertion) does not count as a catch. They are kept apart from the catalogue while it
is being reorganised; the catalogue's runner can take them as they are.

``python tests/regressions_surface.py OUT.json [ID ...]`` runs, in one pytest session,
every ``fails`` target without a patch (the control), then each regression's targets
with its patch applied, and writes each test's outcome and failure message to
``OUT.json``. ``tests/test_surface_sensitivity.py`` runs it once and judges.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

CONV = "suites/test_convlstm.py::"
CONTRACT = "suites/test_contract_keras_layers.py::TestConvLSTM2D::"
STACKED = "suites/test_stacked_cells.py::"
LEGACY = "suites/test_legacy_models.py::"


@dataclass(frozen=True)
class Regression:
    """One injected regression: ``apply(monkeypatch)``, the tests that must notice, and the
    words (``pattern``) their failure messages must contain."""

    id: str
    description: str
    apply: Callable[[pytest.MonkeyPatch], None]
    fails: tuple[str, ...]
    passes: tuple[str, ...] = ()
    pattern: str = ""

    @property
    def targets(self) -> tuple[str, ...]:
        return self.fails + self.passes


# --- patching helpers -------------------------------------------------------------------------


def _keras() -> dict[str, Any]:
    """Keras's internal classes (imported when a patch is applied, not at collection)."""
    from keras.src import api_export, initializers, ops
    from keras.src.layers.rnn import conv_lstm, rnn, stacked_rnn_cells

    return {
        "api_export": api_export,
        "initializers": initializers,
        "ops": ops,
        "ConvLSTM": conv_lstm.ConvLSTM,
        "ConvLSTMCell": conv_lstm.ConvLSTMCell,
        "RNN": rnn.RNN,
        "StackedRNNCells": stacked_rnn_cells.StackedRNNCells,
    }


def wrap(mp: pytest.MonkeyPatch, cls: type, name: str, make: Callable[[Callable], Callable]):
    """Replace ``cls.name`` by ``make(original)``, keeping the original's signature (Keras
    inspects ``call`` signatures for ``training`` and ``mask``)."""
    original = getattr(cls, name)
    mp.setattr(cls, name, functools.wraps(original)(make(original)))


def _while(attr: str, value_of: Callable[[Any], Any]):
    """``make`` for :func:`wrap`: run the method with ``self.attr`` set to ``value_of(self)``."""

    def make(original):
        def patched(self, *args, **kwargs):
            saved = getattr(self, attr)
            object.__setattr__(self, attr, value_of(self))
            try:
                return original(self, *args, **kwargs)
            finally:
                object.__setattr__(self, attr, saved)

        return patched

    return make


# --- ConvLSTM ---------------------------------------------------------------------------------


def _conv_ignores(which: str):
    def apply(mp):
        wrap(mp, _keras()["ConvLSTMCell"], "call", _while(which, lambda self: 0.0))

    return apply


def _conv_one_mask_for_all_gates(mp):
    def make(original):
        def patched(self, step_input):
            masks = original(self, step_input)
            return None if masks is None else [masks[0]] * len(masks)

        return patched

    wrap(mp, _keras()["ConvLSTMCell"], "get_dropout_mask", make)


def _conv_recurrent_conv_dilated(mp):
    ops = _keras()["ops"]

    def make(original):
        def patched(self, x, w):
            return ops.conv(x, w, strides=1, padding="same", data_format=self.data_format,
                            dilation_rate=self.dilation_rate)

        return patched

    wrap(mp, _keras()["ConvLSTMCell"], "recurrent_conv", make)


def _conv_ignores_mask(mp):
    def make(original):
        def patched(self, sequences, initial_state=None, mask=None, training=False):
            return original(self, sequences, initial_state=initial_state, training=training)

        return patched

    wrap(mp, _keras()["ConvLSTM"], "call", make)


def _conv_output_shape_ignores_strides(mp):
    def make(original):
        def patched(self, sequences_shape, initial_state_shape=None):
            saved = self.cell.strides
            self.cell.strides = (1,) * len(saved)
            try:
                return original(self, sequences_shape, initial_state_shape)
            finally:
                self.cell.strides = saved

        return patched

    wrap(mp, _keras()["ConvLSTM"], "compute_output_shape", make)


def _conv_accepts_strides_with_dilation(mp):
    def make(original):
        def patched(self, *args, dilation_rate=1, **kwargs):
            original(self, *args, dilation_rate=1, **kwargs)
            rank = self.rank
            self.dilation_rate = (
                tuple(dilation_rate) if isinstance(dilation_rate, (tuple, list))
                else (dilation_rate,) * rank
            )

        return patched

    cls = _keras()["ConvLSTMCell"]
    # no functools.wraps: Keras binds constructor arguments through __init__'s signature
    mp.setattr(cls, "__init__", make(cls.__init__))


def _conv_extra_weight(mp):
    def make(original):
        def patched(self, *args, **kwargs):
            original(self, *args, **kwargs)
            self.peephole = self.add_weight(shape=(self.filters,), name="peephole",
                                            initializer="zeros")

        return patched

    wrap(mp, _keras()["ConvLSTMCell"], "build", make)


# --- stacked cells ----------------------------------------------------------------------------


def _stack_masks_sized_from_the_stack_input(mp):
    k = _keras()

    def make(original):
        def patched(self, cell, input_sequence, input_state):
            if isinstance(cell, k["StackedRNNCells"]):
                for inner, state in zip(cell.cells, input_state, strict=False):
                    original(self, inner, input_sequence, state)  # never advanced
                return None
            return original(self, cell, input_sequence, input_state)

        return patched

    wrap(mp, k["RNN"], "_maybe_config_dropout_masks", make)


def _stack_training_reaches_the_first_cell_only(mp):
    def make(original):
        def patched(self, inputs, states, training=False, **kwargs):
            cells = self.cells
            saved = [c.call for c in cells[1:]]
            for cell in cells[1:]:
                inner = type(cell).call

                def untrained(*a, _inner=inner, _cell=cell, **kw):
                    kw["training"] = False
                    return _inner(_cell, *a, **kw)

                object.__setattr__(cell, "call", functools.wraps(inner)(untrained))
            try:
                return original(self, inputs, states, training=training, **kwargs)
            finally:
                for cell, _ in zip(cells[1:], saved, strict=True):
                    object.__delattr__(cell, "call")

        return patched

    wrap(mp, _keras()["StackedRNNCells"], "call", make)


# --- Keras 2 models ---------------------------------------------------------------------------


def _legacy_orthogonal_renamed(mp):
    """A release renames the ``Orthogonal`` initializer class and drops the old name, keeping
    the ``"orthogonal"`` string Keras 3 code uses: Keras 2 configs name the class."""
    k = _keras()
    mp.delitem(k["api_export"].REGISTERED_NAMES_TO_OBJS, "keras.initializers.Orthogonal")
    mp.delitem(k["initializers"].ALL_OBJECTS_DICT, "Orthogonal")
    import keras

    mp.delattr(keras.initializers, "Orthogonal")


def _legacy_gru_drops_go_backwards(mp):
    """Deserializing a GRU config loses ``go_backwards`` (a key dropped while converting)."""
    from keras.src.layers.rnn.gru import GRU

    original = GRU.from_config.__func__

    def from_config(cls, config, *args, **kwargs):
        config = {k: v for k, v in config.items() if k != "go_backwards"}
        return original(cls, config, *args, **kwargs)

    mp.setattr(GRU, "from_config", classmethod(from_config))


REGRESSIONS: tuple[Regression, ...] = (
    Regression(
        "conv_lstm_ignores_recurrent_dropout",
        "ConvLSTM cells ignore recurrent_dropout in training",
        _conv_ignores("recurrent_dropout"),
        fails=(
            CONV + "test_every_gate_drops_units_at_the_rate[recurrent_dropout]",
            CONV + "test_training_output_differs_from_inference[recurrent_dropout]",
            CONV + "test_training_output_applies_the_drawn_masks",
        ),
        passes=(CONV + "test_every_gate_drops_units_at_the_rate[dropout]",),
        pattern=r"does not match the recurrent_dropout rate|dropout is not applied in training|"
        r"against the reference fed the masks its cells drew",
    ),
    Regression(
        "conv_lstm_ignores_dropout",
        "ConvLSTM cells ignore dropout (on the input) in training",
        _conv_ignores("dropout"),
        fails=(
            CONV + "test_every_gate_drops_units_at_the_rate[dropout]",
            CONV + "test_training_output_differs_from_inference[dropout]",
            CONTRACT + "test_dropout_train_vs_inference",
        ),
        passes=(CONV + "test_every_gate_drops_units_at_the_rate[recurrent_dropout]",),
        pattern=r"does not match the dropout rate|dropout is not applied in training",
    ),
    Regression(
        "conv_lstm_one_input_mask_for_all_gates",
        "ConvLSTM cells multiply all four gates' inputs by the first gate's dropout mask",
        _conv_one_mask_for_all_gates,
        fails=(CONV + "test_each_gate_draws_its_own_mask_sized_to_the_input_and_state",),
        passes=(CONV + "test_training_output_applies_the_drawn_masks",),
        pattern=r"gates 0 and 1 share one mask",
    ),
    Regression(
        "conv_lstm_recurrent_conv_dilated",
        "ConvLSTM convolves the state with the input's dilation rate",
        _conv_recurrent_conv_dilated,
        fails=(CONV + "test_layer_matches_the_numpy_reference[2d_dilation_activations]",),
        passes=(CONV + "test_layer_matches_the_numpy_reference[2d_valid]",),
        pattern=r"differs from the NumPy reference",
    ),
    Regression(
        "conv_lstm_ignores_mask",
        "ConvLSTM layers drop the mask they are called with",
        _conv_ignores_mask,
        fails=(
            CONV + "test_layer_matches_the_numpy_reference[2d_go_backwards_mask]",
            CONV + "test_layer_matches_the_numpy_reference[1d_mask]",
            CONTRACT + "test_masking_equivalence",
        ),
        passes=(CONV + "test_layer_matches_the_numpy_reference[2d_valid]",),
        pattern=r"differs from the NumPy reference|leak through the mask or the mask is ignored",
    ),
    Regression(
        "conv_lstm_output_shape_ignores_strides",
        "ConvLSTM.compute_output_shape forgets the strides",
        _conv_output_shape_ignores_strides,
        fails=(
            CONV + "test_compute_output_shape_agrees_with_the_closed_form[2d_strides_valid]",
            CONV + "test_compute_output_shape_agrees_with_the_closed_form[3d_strides_same]",
        ),
        passes=(CONV + "test_compute_output_shape_agrees_with_the_closed_form[2d_valid]",),
        pattern=r"compute_output_shape.*has shape",
    ),
    Regression(
        "conv_lstm_accepts_strides_with_dilation",
        "ConvLSTM no longer refuses strides > 1 with dilation_rate > 1 at construction",
        _conv_accepts_strides_with_dilation,
        fails=(
            CONV + "test_documented_invalid_arguments_raise_at_construction[strides_with_dilation]",
        ),
        passes=(CONV + "test_documented_invalid_arguments_raise_at_construction[causal_padding]",),
        pattern=r"is accepted at construction; Keras documents it as invalid",
    ),
    Regression(
        "conv_lstm_extra_weight",
        "ConvLSTM cells create an extra (peephole) weight of filters values",
        _conv_extra_weight,
        fails=(
            CONV + "test_param_count_matches_the_closed_form",
            CONTRACT + "test_param_count",
        ),
        passes=(CONV + "test_layer_matches_the_numpy_reference[2d_valid]",),
        pattern=r"parameters, expected",
    ),
    Regression(
        "stacked_masks_sized_from_the_stack_input",
        "RNN over a list of cells sizes every cell's dropout mask from the stack's input",
        _stack_masks_sized_from_the_stack_input,
        fails=(
            STACKED + "test_every_cell_draws_masks_sized_to_its_own_input_and_state",
            STACKED + "test_training_output_applies_the_masks_each_cell_drew",
        ),
        passes=(
            STACKED + "test_return_state_shapes_agree_eager_symbolic_and_compute_output_shape",
        ),
        pattern=r"a training call with dropout in its cells .* raises",
    ),
    Regression(
        "stacked_training_reaches_the_first_cell_only",
        "StackedRNNCells passes training=True to its first cell only",
        _stack_training_reaches_the_first_cell_only,
        fails=(STACKED + "test_training_output_applies_the_masks_each_cell_drew",),
        passes=(
            STACKED + "test_every_cell_draws_masks_sized_to_its_own_input_and_state",
            STACKED + "test_inference_ignores_dropout_in_every_cell",
        ),
        pattern=r"in training, against the reference fed the masks its cells drew",
    ),
    Regression(
        "legacy_orthogonal_initializer_renamed",
        "the Orthogonal initializer class name Keras 2 configs use no longer resolves",
        _legacy_orthogonal_renamed,
        fails=(
            LEGACY + "test_keras2_h5_file_reproduces_keras2_outputs_once_time_major_is_dropped",
            LEGACY + "test_keras2_json_and_weights_reproduce_keras2_outputs",
        ),
        passes=(LEGACY + "test_the_fixtures_are_keras_2_files",),
        pattern=r"Keras 2 model .* no longer loads",
    ),
    Regression(
        "legacy_gru_drops_go_backwards",
        "a GRU rebuilt from a (Keras 2) config loses go_backwards",
        _legacy_gru_drops_go_backwards,
        fails=(
            LEGACY + "test_keras2_h5_file_reproduces_keras2_outputs_once_time_major_is_dropped"
            "[gru_reset_before]",
            LEGACY + "test_keras2_json_and_weights_reproduce_keras2_outputs[gru_reset_before]",
        ),
        passes=(LEGACY + "test_keras2_json_and_weights_reproduce_keras2_outputs[gru_reset_after]",),
        pattern=r"differs from what Keras 2 computed",
    ),
)

BY_ID = {r.id: r for r in REGRESSIONS}
assert len(BY_ID) == len(REGRESSIONS), "duplicate regression ids"


# --- the runner -------------------------------------------------------------------------------


def selects(selector: str, nodeid: str) -> bool:
    """Whether ``selector`` (a node id, with or without its ``[params]``) names ``nodeid``."""
    return nodeid == selector or (nodeid.startswith(selector + "[") and "[" not in selector)


class Loop:
    """pytest plugin replacing the run loop: the control, then each regression's targets."""

    def __init__(self, regressions: list[Regression]) -> None:
        self.regressions = regressions
        self.current = "control"
        self.results: dict[str, dict[str, Any]] = {}

    def _group(self, label: str, items: list, apply=None) -> None:
        started = time.perf_counter()
        self.current = label
        group = self.results[label] = {"tests": {}}
        monkeypatch = pytest.MonkeyPatch()
        try:
            if apply is not None:
                apply(monkeypatch)
            for index, item in enumerate(items):
                nextitem = items[index + 1] if index + 1 < len(items) else None
                item.ihook.pytest_runtest_protocol(item=item, nextitem=nextitem)
        except Exception:
            group["patch_error"] = traceback.format_exc()
        finally:
            monkeypatch.undo()
        group["seconds"] = round(time.perf_counter() - started, 3)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            return False

        def chosen(selectors: tuple[str, ...]) -> list:
            return [i for i in session.items if any(selects(s, i.nodeid) for s in selectors)]

        self._group("control", chosen(tuple(t for r in self.regressions for t in r.fails)))
        for regression in self.regressions:
            self._group(regression.id, chosen(regression.targets), regression.apply)
        return True

    def pytest_runtest_logreport(self, report) -> None:
        tests = self.results[self.current]["tests"]
        entry = tests.setdefault(report.nodeid, {"outcome": "passed", "message": ""})
        if report.failed:
            entry["outcome"] = "failed"
            crash = getattr(report.longrepr, "reprcrash", None)
            entry["message"] = crash.message if crash else str(report.longrepr)
        elif report.skipped and entry["outcome"] == "passed":
            entry["outcome"] = "skipped"


def problems(regression: Regression, groups: dict[str, dict[str, Any]]) -> list[str]:
    """Why ``regression`` is not proven caught; empty when it is. Proven: every ``fails``
    target failed with the patch, on an AssertionError whose message matches ``pattern``,
    and passed in the control run; every ``passes`` target passed with the patch."""
    group = groups.get(regression.id)
    if group is None:
        return [f"  {regression.id} was not run"]
    if "patch_error" in group:
        return [f"  could not inject it:\n{group['patch_error']}"]
    tests, control = group["tests"], groups.get("control", {}).get("tests", {})
    found = []
    for selector in regression.fails:
        matched = [n for n in tests if selects(selector, n)]
        if not matched:
            found.append(f"  {selector}: selects no test")
        for n in matched:
            entry = tests[n]
            if entry["outcome"] != "failed":
                found.append(f"  did not fail: {n} ({entry['outcome']})")
            elif not entry["message"].startswith("AssertionError"):
                found.append(f"  failed without an assertion (a crash): {n}: "
                             f"{entry['message'][:300]!r}")
            elif not re.search(regression.pattern, entry["message"], re.S):
                found.append(f"  failed, but the message does not match {regression.pattern!r}: "
                             f"{n}: {entry['message'][:300]!r}")
            if control.get(n, {}).get("outcome") != "passed":
                found.append(f"  not green without the patch: {n}: {control.get(n)}")
    for selector in regression.passes:
        matched = [n for n in tests if selects(selector, n)]
        if not matched:
            found.append(f"  {selector}: selects no test")
        for n in matched:
            if tests[n]["outcome"] != "passed":
                found.append(f"  unrelated test broke too: {n}: {tests[n]['message'][:300]!r}")
    return found


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    out, ids = Path(argv[0]), argv[1:] or list(BY_ID)
    unknown = [i for i in ids if i not in BY_ID]
    if unknown:
        print(f"unknown regression ids: {unknown}; known: {sorted(BY_ID)}", file=sys.stderr)
        return 2
    chosen = [BY_ID[i] for i in ids]
    loop = Loop(chosen)
    targets = sorted({t.split("[")[0].split("::")[0] for r in chosen for t in r.targets})
    started = time.perf_counter()
    code = pytest.main(
        [*targets, "-q", "--no-header", "-p", "no:cacheprovider", "--tb=no", "-rN"],
        plugins=[loop],
    )
    summary = {"exit_code": int(code), "seconds": round(time.perf_counter() - started, 3)}
    out.write_text(json.dumps({"run": summary, "groups": loop.results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main(sys.argv[1:]))
