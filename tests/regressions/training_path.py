"""Injected regressions of the training path: gradients, compiled execution, mixed precision.

Seven entries of the catalogue (:data:`regressions.catalogue.REGRESSIONS` includes them),
for the suites of the gradients, execution modes and mixed precision. Patches about
gradients keep forward values bit-identical (``s -> stop_gradient(s) + a * (s -
stop_gradient(s))`` has the value of ``s`` and the gradient ``a``); patches about compiled
code change only what runs inside a trace; so only those checks can notice.
"""

from __future__ import annotations

from pytest_rnn.checks import behaviours, compare
from regressions.entry import Regression
from regressions.patches import cells, keras_internals, returning, with_kwargs, with_states, wrap
from regressions.wording import quoted

#: Why the compiled-path entries cannot be injected on JAX (``Regression.bypassed``).
TF_FUNCTION = ("the patch targets tf.function's traced path; the compiled-path targets skip "
               "off TensorFlow (pytest_rnn.backends.compile_function)")

GRADIENTS = "suites/test_gradients.py::test_gradients_match_the_numpy_backward_pass_through_time"
MODES = "suites/test_execution_modes.py::"
MIXED = "suites/test_mixed_precision.py::"
REFERENCE = "suites/test_reference_math.py::test_layer_matches_the_numpy_reference"


def _scaled_gradient(ops, value, factor: float):
    """``value`` forward, ``factor * d`` backward."""
    return ops.stop_gradient(value) + factor * (value - ops.stop_gradient(value))


def _states_through_time(factor: float):
    """Every cell's incoming states carry ``factor`` of their gradient back to the previous
    step: ``factor`` 0 cuts the gradient through time, 0 < factor < 1 damps it."""

    def apply(mp):
        ops = keras_internals()["ops"]
        for cls in cells():
            with_states(mp, cls, lambda s: _scaled_gradient(ops, s, factor))

    return apply


def _initial_state_gradient_dropped(mp):
    from pytest_rnn.checks.compare import keras_tree  # keras.tree from Keras 3.3

    tree = keras_tree()

    k = keras_internals()
    ops = k["ops"]

    def edit(self, kwargs):
        if kwargs.get("initial_state") is not None:
            kwargs["initial_state"] = tree.map_structure(ops.stop_gradient,
                                                         kwargs["initial_state"])
        return kwargs

    with_kwargs(mp, k["RNN"], "call", edit)


def _mask_leaks_gradient(mp):
    """Padded steps' inputs get gradient 1 per unit of the output's cotangent; forward values
    stay exact (``leak - stop_gradient(leak)`` is 0)."""
    k = keras_internals()
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
    in_tf_graph = keras_internals()["in_tf_graph"]

    def edit(self, kwargs):
        if in_tf_graph():
            kwargs["mask"] = None
        return kwargs

    with_kwargs(mp, keras_internals()["RNN"], "call", edit)


def _graph_mode_stateful_not_written(mp):
    """Traced code reads a stateful layer's state but never writes it back."""
    in_tf_graph = keras_internals()["in_tf_graph"]

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

    wrap(mp, keras_internals()["RNN"], "call", make)


def _states_in_variable_dtype(mp):
    """Under a mixed policy, returned states come back in the variable dtype (float32)."""
    ops = keras_internals()["ops"]

    def transform(self, result):
        if not (self.return_state and self.compute_dtype != self.variable_dtype):
            return result
        return (result[0], *[ops.cast(s, self.variable_dtype) for s in result[1:]])

    returning(mp, keras_internals()["RNN"], "call", transform)


REGRESSIONS: tuple[Regression, ...] = (
    Regression(
        "gradient_cut_through_time",
        "every cell's incoming states pass no gradient back to the previous step (forward "
        "values unchanged)",
        _states_through_time(0.0),
        fails=(GRADIENTS + "[lstm_initial_state]", GRADIENTS + "[gru_initial_state]",
               GRADIENTS + "[simple_rnn_sequences_post_mask]"),
        passes=(REFERENCE + "[lstm-sequences_and_states]",
                REFERENCE + "[gru-sequences_and_states]"),
        message=r"dL/d inputs: .*" + quoted(behaviours.GRADIENT_STOPS),
        bypassed={"jax": (
            "JAX runs its GRU target through Keras's fused GRU scan (backend.gru), whose "
            "states never pass through the cells whose incoming states the patch cuts")},
    ),
    Regression(
        "gradient_damped_through_time",
        "gradients through the recurrent states are damped by 0.9 per step (forward values "
        "unchanged)",
        _states_through_time(0.9),
        fails=(GRADIENTS + "[gru_reset_before_sequences_pre_mask]",
               GRADIENTS + "[bidirectional_lstm_concat]", GRADIENTS + "[rnn_over_stacked_cells]"),
        passes=(REFERENCE + "[gru_reset_before-mask]",),
        message=r"(?s)" + quoted(behaviours.DIFFERS_FROM_BACKWARD_PASS) + r".*dL/d inputs: "
                rf"\d+ of \d+ {quoted(compare.VALUES_DIFFER)} \(atol [^)]*\); worst at batch "
                r"\d+, step \d+",
    ),
    Regression(
        "initial_state_gradient_dropped",
        "RNN.call stops the gradient of the initial_state it is given",
        _initial_state_gradient_dropped,
        fails=(GRADIENTS + "[lstm_initial_state]", GRADIENTS + "[gru_initial_state]"),
        passes=(GRADIENTS + "[bidirectional_simple_rnn_ave]",
                REFERENCE + "[lstm-initial_state]"),
        # TensorFlow gives no gradient at all; a backend that gives zeros differs everywhere
        message=rf"dL/d initial_state h: (no gradient at all|\d+ of \d+ "
                rf"{quoted(compare.VALUES_DIFFER)})",
    ),
    Regression(
        "mask_leaks_gradient_into_padded_steps",
        "a masked RNN lets gradient reach the inputs of padded steps (forward values "
        "unchanged)",
        _mask_leaks_gradient,
        fails=(GRADIENTS + "[simple_rnn_sequences_post_mask]",
               GRADIENTS + "[gru_reset_before_sequences_pre_mask]"),
        passes=(GRADIENTS + "[lstm_initial_state]", REFERENCE + "[simple_rnn-mask]"),
        message=r"dL/d inputs: .*" + quoted(behaviours.AT_MASKED_STEPS) + ".*"
                r"gradient leaks into padded steps",
    ),
    Regression(
        "compiled_path_drops_the_mask",
        "under tf.function and XLA the time loop runs without the mask; eager keeps it",
        _graph_mode_drops_mask,
        # [xla] fails too; graph mode alone saves the proof an XLA compilation
        fails=(MODES + "test_kinds_agree_with_eager_and_honour_training[graph]",),
        passes=(MODES + "test_stateful_layer_carries_and_resets_state[graph]",
                GRADIENTS + "[simple_rnn_sequences_post_mask]"),
        message=r"under (graph|xla) differs from eager execution",
        bypassed={"jax": TF_FUNCTION},
    ),
    Regression(
        "compiled_stateful_layer_forgets_state",
        "under tf.function a stateful layer reads its state but never writes it back",
        _graph_mode_stateful_not_written,
        fails=(MODES + "test_stateful_layer_carries_and_resets_state[graph]",
               MODES + "test_stateful_layer_carries_and_resets_state[graph_dynamic_batch]",
               MODES + "test_stateful_layer_carries_and_resets_state[xla]"),
        passes=(MODES + "test_stateful_layer_carries_and_resets_state[eager]",),
        message=r"(graph|graph_dynamic_batch|xla): outputs of the two halves, concatenated "
                r"differs from eager execution",
        bypassed={"jax": TF_FUNCTION},
    ),
    Regression(
        "mixed_precision_states_in_variable_dtype",
        "under a mixed-precision policy RNN returns its states in float32, the variable dtype",
        _states_in_variable_dtype,
        fails=(MIXED + "test_masked_layer_computes_in_the_policy_dtype_near_the_reference"
               "[lstm-mixed_float16]",
               MIXED + "test_masked_layer_computes_in_the_policy_dtype_near_the_reference"
               "[gru-mixed_bfloat16]",
               MIXED + "test_stateful_layer_builds_and_carries_state[mixed_float16]"),
        passes=(REFERENCE + "[lstm-sequences_and_states]",),
        message=r"has tensors of the wrong dtype:\s+returned state 0: float32",
    ),
)
