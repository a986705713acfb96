"""Injected regressions of the training path: gradients, compiled execution, mixed precision.

Entries in the form of :mod:`keras_regressions` (to be merged into its catalogue), each
with a ``pattern``: a regular expression the failure message of every ``fails`` test
must match, so a test that fails for another reason (a crash, a different assertion)
does not count as a catch. Every patch keeps forward values bit-identical where the
regression is about gradients (``s -> stop_gradient(s) + a * (s - stop_gradient(s))``
has the value of ``s`` and the gradient ``a``), so only the new checks can notice.

``python tests/regressions_training.py OUT.json [ID ...]`` runs the control and each
regression in one pytest session (as ``keras_regressions.py`` does), keeping failure
messages whole so the patterns can be checked.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from keras_regressions import Regression, SensitivityLoop, returning, with_kwargs, wrap

ROOT = Path(__file__).resolve().parent.parent

GRADIENTS = "suites/test_gradients.py::test_gradients_match_the_numpy_backward_pass_through_time"
MODES = "suites/test_execution_modes.py::"
MIXED = "suites/test_mixed_precision.py::"
REFERENCE = "suites/test_reference_math.py::test_layer_matches_the_numpy_reference"


@dataclass(frozen=True)
class PatternRegression(Regression):
    """A :class:`Regression` whose ``fails`` tests must fail with a message matching
    ``pattern`` (``re.search``, DOTALL)."""

    pattern: str = ""


def _keras():
    from keras.src import ops
    from keras.src.layers.rnn import gru, lstm, rnn, simple_rnn

    return {"ops": ops, "RNN": rnn.RNN, "cells": (simple_rnn.SimpleRNNCell, lstm.LSTMCell,
                                                  gru.GRUCell)}


def _scaled_gradient(ops, value, factor: float):
    """``value`` forward, ``factor * d`` backward."""
    return ops.stop_gradient(value) + factor * (value - ops.stop_gradient(value))


def _states_through_time(factor: float):
    """Every cell's incoming states carry ``factor`` of their gradient back to the previous
    step: ``factor`` 0 cuts the gradient through time, 0 < factor < 1 damps it."""

    def apply(mp):
        k = _keras()
        ops = k["ops"]
        for cls in k["cells"]:
            def make(original):
                def patched(self, inputs, states, training=False):
                    if isinstance(states, (list, tuple)):
                        states = [_scaled_gradient(ops, s, factor) for s in states]
                    else:
                        states = _scaled_gradient(ops, states, factor)
                    return original(self, inputs, states, training=training)

                return patched

            wrap(mp, cls, "call", make)

    return apply


def _initial_state_gradient_dropped(mp):
    k = _keras()
    ops = k["ops"]

    def edit(self, kwargs):
        if kwargs.get("initial_state") is not None:
            kwargs["initial_state"] = [ops.stop_gradient(s) for s in
                                       __import__("keras").tree.flatten(kwargs["initial_state"])]
        return kwargs

    with_kwargs(mp, k["RNN"], "call", edit)


def _mask_leaks_gradient(mp):
    """Padded steps' inputs get gradient 1 per unit of the output's cotangent; forward values
    stay exact (``leak - stop_gradient(leak)`` is 0)."""
    k = _keras()
    ops = k["ops"]

    def make(original):
        def patched(self, sequences, initial_state=None, mask=None, training=False):
            result = original(self, sequences, initial_state=initial_state, mask=mask,
                              training=training)
            if mask is None:
                return result
            padded = ops.cast(ops.logical_not(ops.cast(mask, "bool")), sequences.dtype)
            leak = ops.sum(sequences * padded[:, :, None], axis=(1, 2))
            leak = (leak - ops.stop_gradient(leak))[:, None]
            out = result[0] if isinstance(result, (list, tuple)) else result
            out = out + (leak[:, None] if len(out.shape) == 3 else leak)
            return (out, *result[1:]) if isinstance(result, (list, tuple)) else out

        return patched

    wrap(mp, k["RNN"], "call", make)


def _graph_mode_drops_mask(mp):
    """Traced code (tf.function, XLA) runs the time loop without the mask; eager keeps it."""
    from keras.src.utils.backend_utils import in_tf_graph

    def edit(self, kwargs):
        if in_tf_graph():
            kwargs["mask"] = None
        return kwargs

    with_kwargs(mp, _keras()["RNN"], "call", edit)


def _graph_mode_stateful_not_written(mp):
    """Traced code reads a stateful layer's state but never writes it back."""
    from keras.src.utils.backend_utils import in_tf_graph

    def make(original):
        def patched(self, *args, **kwargs):
            if not (self.stateful and in_tf_graph()):
                return original(self, *args, **kwargs)
            saved = self.stateful
            object.__setattr__(self, "stateful", False)
            try:
                kwargs.setdefault("initial_state", [s.value for s in self.states]
                                  if isinstance(self.states, list) else self.states.value)
                return original(self, *args, **kwargs)
            finally:
                object.__setattr__(self, "stateful", saved)

        return patched

    wrap(mp, _keras()["RNN"], "call", make)


def _states_in_variable_dtype(mp):
    """Under a mixed policy, returned states come back in the variable dtype (float32)."""
    ops = _keras()["ops"]

    def transform(self, result):
        if not (self.return_state and self.compute_dtype != self.variable_dtype):
            return result
        return (result[0], *[ops.cast(s, self.variable_dtype) for s in result[1:]])

    returning(mp, _keras()["RNN"], "call", transform)


REGRESSIONS = (
    PatternRegression(
        "gradient_cut_through_time",
        "every cell's incoming states pass no gradient back to the previous step (forward "
        "values unchanged)",
        _states_through_time(0.0),
        fails=(GRADIENTS + "[lstm_initial_state]", GRADIENTS + "[gru_initial_state]",
               GRADIENTS + "[simple_rnn_sequences_post_mask]"),
        passes=(REFERENCE + "[lstm-sequences_and_states]",
                REFERENCE + "[gru-sequences_and_states]"),
        pattern=r"dL/d inputs: .*gradient stops flowing back beyond step",
    ),
    PatternRegression(
        "gradient_damped_through_time",
        "gradients through the recurrent states are damped by 0.9 per step (forward values "
        "unchanged)",
        _states_through_time(0.9),
        fails=(GRADIENTS + "[gru_reset_before_sequences_pre_mask]",
               GRADIENTS + "[bidirectional_lstm_concat]", GRADIENTS + "[rnn_over_stacked_cells]"),
        passes=(REFERENCE + "[gru_reset_before-mask]",),
        pattern=r"differ from the float64 NumPy backward pass through time.*dL/d inputs: "
                r"\d+ of \d+ values differ \(atol [^)]*\); worst at batch \d+, step \d+",
    ),
    PatternRegression(
        "initial_state_gradient_dropped",
        "RNN.call stops the gradient of the initial_state it is given",
        _initial_state_gradient_dropped,
        fails=(GRADIENTS + "[lstm_initial_state]", GRADIENTS + "[gru_initial_state]"),
        passes=(GRADIENTS + "[bidirectional_simple_rnn_ave]",
                REFERENCE + "[lstm-initial_state]"),
        # TensorFlow gives no gradient at all; a backend that gives zeros differs everywhere
        pattern=r"dL/d initial_state h: (no gradient at all|\d+ of \d+ values differ)",
    ),
    PatternRegression(
        "mask_leaks_gradient_into_padded_steps",
        "a masked RNN lets gradient reach the inputs of padded steps (forward values "
        "unchanged)",
        _mask_leaks_gradient,
        fails=(GRADIENTS + "[simple_rnn_sequences_post_mask]",
               GRADIENTS + "[gru_reset_before_sequences_pre_mask]"),
        passes=(GRADIENTS + "[lstm_initial_state]", REFERENCE + "[simple_rnn-mask]"),
        pattern=r"dL/d inputs: .*every differing value is at a masked \(padded\) step.*"
                r"gradient leaks into padded steps",
    ),
    PatternRegression(
        "compiled_path_drops_the_mask",
        "under tf.function and XLA the time loop runs without the mask; eager keeps it",
        _graph_mode_drops_mask,
        # [xla] fails too; graph mode alone saves the proof an XLA compilation
        fails=(MODES + "test_kinds_agree_with_eager_and_honour_training[graph]",),
        passes=(MODES + "test_stateful_layer_carries_and_resets_state[graph]",
                GRADIENTS + "[simple_rnn_sequences_post_mask]"),
        pattern=r"under (graph|xla) differs from eager execution",
    ),
    PatternRegression(
        "compiled_stateful_layer_forgets_state",
        "under tf.function a stateful layer reads its state but never writes it back",
        _graph_mode_stateful_not_written,
        fails=(MODES + "test_stateful_layer_carries_and_resets_state[graph]",
               MODES + "test_stateful_layer_carries_and_resets_state[graph_dynamic_batch]",
               MODES + "test_stateful_layer_carries_and_resets_state[xla]"),
        passes=(MODES + "test_stateful_layer_carries_and_resets_state[eager]",),
        pattern=r"(graph|graph_dynamic_batch|xla): outputs of the two halves, concatenated "
                r"differs from eager execution",
    ),
    PatternRegression(
        "mixed_precision_states_in_variable_dtype",
        "under a mixed-precision policy RNN returns its states in float32, the variable dtype",
        _states_in_variable_dtype,
        fails=(MIXED + "test_masked_layer_computes_in_the_policy_dtype_near_the_reference"
               "[lstm-mixed_float16]",
               MIXED + "test_masked_layer_computes_in_the_policy_dtype_near_the_reference"
               "[gru-mixed_bfloat16]",
               MIXED + "test_stateful_layer_builds_and_carries_state[mixed_float16]"),
        passes=(REFERENCE + "[lstm-sequences_and_states]",),
        pattern=r"has tensors of the wrong dtype:\s+returned state 0: float32",
    ),
)

BY_ID = {r.id: r for r in REGRESSIONS}


class WholeMessages(SensitivityLoop):
    """The sensitivity loop, keeping each failure's whole message for the patterns."""

    def pytest_runtest_logreport(self, report) -> None:
        super().pytest_runtest_logreport(report)
        if report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            entry = self.results[self.current]["tests"][report.nodeid]
            entry["message"] = (crash.message if crash else str(report.longrepr))[:20000]


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    out, ids = Path(argv[0]), argv[1:] or list(BY_ID)
    chosen = [BY_ID[i] for i in ids]
    loop = WholeMessages(chosen)
    targets = list(dict.fromkeys(t for r in chosen for t in r.targets))
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
    sys.path.insert(0, str(Path(__file__).parent))
    raise SystemExit(main(sys.argv[1:]))
