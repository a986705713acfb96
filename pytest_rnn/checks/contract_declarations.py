"""What a contract class declares about its layer, and what the contract builds from it.

:class:`LayerDeclarations` is the non-pytest half of
:class:`~pytest_rnn.checks.contract.RecurrentLayerContract`: the class attributes a
contract class declares (sizes, shapes, the features it supports, opt-outs,
tolerance; documented on ``RecurrentLayerContract``), the two methods it provides
(``make_layer``, ``make_inputs``) and how the contract tests make a layer, draw its
inputs and derive the structure it must return from them. :data:`CONTRACT_TESTS`
names the contract tests (what ``skip_contracts`` takes) and :func:`check_declarations`
rejects a malformed declaration when the class is defined.
"""

from __future__ import annotations

import numbers
from typing import Any, ClassVar

import keras
import numpy as np

from pytest_rnn.checks.shapes import Structure

#: Contract test name -> the behaviour it pins down. Names are what ``skip_contracts`` takes.
CONTRACT_TESTS: dict[str, str] = {
    "test_output_shapes": "output and state shapes for each return_sequences/return_state",
    "test_compute_output_shape": "compute_output_shape agrees with what a call returns",
    "test_masking_equivalence": "padded steps under a mask change nothing: the result equals "
    "the unpadded sequence's",
    "test_stateful_halves": "a stateful layer fed two halves equals one call on the whole "
    "sequence, and reset_states() starts over",
    "test_serialization_round_trip": "get_config/from_config and a .keras file rebuild a layer "
    "that computes the same outputs",
    "test_trainability": "one training step gives every trainable weight a finite non-zero "
    "gradient and moves it; no NaN/Inf",
    "test_dropout_train_vs_inference": "dropout changes training calls and leaves inference "
    "untouched",
    "test_param_count": "the layer has the declared number of parameters",
    "test_gradients_match_finite_differences": "the backend's gradients of a fixed loss with "
    "respect to every weight and each step's inputs equal float64 central differences of the "
    "layer's own forward pass",
    "test_traced_call_matches_eager": "traced into a graph (tf.function), the layer returns "
    "the outputs, states and gradients eager execution gives",
    "test_backends_agree": "every installed Keras backend (TensorFlow, JAX, PyTorch), each in "
    "its own subprocess, computes the same outputs, states and gradients from the same "
    "weights and inputs",
    "test_every_weight_entry_influences_the_output": "every entry of every trainable weight "
    "changes the outputs or states for some drawn input (entry-wise gradients of random "
    "projections over a few batches); a failure names the dead slices",
}

_SUPPORTS = ("supports_masking", "supports_return_state", "supports_stateful", "supports_dropout")
_POSITIVE = ("units", "input_dim", "batch", "steps")


def _positive_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1


def check_declarations(cls: type, *, complete: bool = True) -> None:
    """Raise a TypeError naming every missing or malformed declaration of contract class ``cls``.

    Runs when the class is defined, so a typo in ``skip_contracts`` or a missing
    ``units`` is one collection error of the user's module, not a silently ignored
    opt-out or one set-up error per contract test. ``complete=False`` (a shared base
    class that pytest does not collect) lets ``units`` and ``make_layer`` come later.
    """
    problems = []
    name = cls.__name__
    if complete:
        if (getattr(cls, "units", None) is None
                and getattr(cls, "output_shape_per_step", None) is None):
            problems.append("units is missing; declare units = <size of the output's last "
                            "axis> (a positive integer), or output_shape_per_step")
        if getattr(cls, "make_layer", None) is LayerDeclarations.make_layer:
            problems.append("make_layer is missing; define make_layer(self, **options) "
                            "returning a new layer (options among return_sequences, "
                            "return_state, stateful, dropout)")
    opt_outs = getattr(cls, "skip_contracts", {})
    if not isinstance(opt_outs, dict):
        problems.append(
            f"skip_contracts must be a dict {{contract test name: reason}}; got {opt_outs!r}"
        )
        opt_outs = {}
    for test, reason in opt_outs.items():
        if test not in CONTRACT_TESTS:
            problems.append(
                f"skip_contracts names unknown contract test {test!r}; known: "
                + ", ".join(CONTRACT_TESTS)
            )
        if not isinstance(reason, str) or not reason.strip():
            problems.append(f"skip_contracts[{test!r}] must state a reason (a non-empty string)")
    for attr in _POSITIVE:
        value = getattr(cls, attr, None)
        if value is not None and not _positive_int(value):
            problems.append(f"{attr} must be a positive integer; got {value!r}")
    if _positive_int(getattr(cls, "steps", 4)) and cls.steps < 4:
        problems.append(f"steps must be >= 4 (halves and padding need room); got {cls.steps!r}")
    if _positive_int(getattr(cls, "batch", 3)) and cls.batch < 3:
        problems.append(
            f"batch must be >= 3 (the masking test pads samples 1 and 2); got {cls.batch!r}"
        )
    for attr in ("input_shape_per_step", "output_shape_per_step"):
        value = getattr(cls, attr, None)
        if value is not None and (
            not isinstance(value, (tuple, list)) or not value or not all(map(_positive_int, value))
        ):
            problems.append(f"{attr} must be a non-empty tuple of positive integers; got {value!r}")
    if getattr(cls, "input_shape_per_step", None) is not None and "input_dim" in vars(cls):
        problems.append("declare input_dim or input_shape_per_step, not both")
    shapes = getattr(cls, "state_shapes", None)
    if shapes is not None and (
        not isinstance(shapes, (tuple, list))
        or not shapes
        or not all(
            isinstance(shape, (tuple, list)) and shape and all(map(_positive_int, shape))
            for shape in shapes
        )
    ):
        problems.append(
            f"state_shapes must be a non-empty tuple of shapes (tuples of positive integers); "
            f"got {shapes!r}"
        )
    if shapes is not None and getattr(cls, "state_sizes", None) is not None:
        problems.append("declare state_sizes or state_shapes, not both")
    sizes = getattr(cls, "state_sizes", None)
    if sizes is not None and (
        not isinstance(sizes, (tuple, list)) or not sizes or not all(map(_positive_int, sizes))
    ):
        problems.append(
            f"state_sizes must be a non-empty tuple of positive integers; got {sizes!r}"
        )
    count = getattr(cls, "param_count", None)
    if count is not None and (
        isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 0
    ):
        problems.append(f"param_count must be a non-negative integer or None; got {count!r}")
    for attr in _SUPPORTS:
        if not isinstance(getattr(cls, attr), bool):
            problems.append(f"{attr} must be True or False; got {getattr(cls, attr)!r}")
    rate = getattr(cls, "dropout_rate", 0.5)
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 < rate < 1:
        problems.append(f"dropout_rate must be a number in (0, 1); got {rate!r}")
    if problems:
        raise TypeError(f"contract class {name}: " + "; ".join(problems))


class LayerDeclarations:
    """The declarations of a contract class and the layers and inputs made from them (see
    :class:`~pytest_rnn.checks.contract.RecurrentLayerContract`, which documents each)."""

    units: ClassVar[int | None] = None
    state_sizes: ClassVar[tuple[int, ...] | None] = None
    input_dim: ClassVar[int] = 3
    input_shape_per_step: ClassVar[tuple[int, ...] | None] = None
    output_shape_per_step: ClassVar[tuple[int, ...] | None] = None
    state_shapes: ClassVar[tuple[tuple[int, ...], ...] | None] = None
    batch: ClassVar[int] = 3
    steps: ClassVar[int] = 4
    supports_masking: ClassVar[bool] = True
    supports_return_state: ClassVar[bool] = True
    supports_stateful: ClassVar[bool] = True
    supports_dropout: ClassVar[bool] = False
    dropout_rate: ClassVar[float] = 0.5
    param_count: ClassVar[int | None] = None
    custom_objects: ClassVar[dict[str, Any] | None] = None
    skip_contracts: ClassVar[dict[str, str]] = {}
    atol: ClassVar[float] = 1e-5

    # -- what the user provides ----------------------------------------------------------------

    def make_layer(self, **options: Any) -> keras.layers.Layer:
        """A new, unbuilt layer (or model) with ``options``: any of ``return_sequences``,
        ``return_state``, ``stateful`` (booleans) and ``dropout`` (a rate)."""
        raise NotImplementedError(
            f"{type(self).__name__} must define make_layer(self, **options) returning a new "
            "layer; options are among return_sequences, return_state, stateful, dropout"
        )

    def make_inputs(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """Inputs of ``shape`` = (batch, steps, input_dim) for the layer (``(batch, steps,
        *input_shape_per_step)`` when that is declared); float32 normals."""
        return rng.normal(size=shape).astype("float32")

    # -- what the contract makes from them -----------------------------------------------------

    def _layer(self, **options: Any) -> keras.layers.Layer:
        passed = {k: v for k, v in options.items() if v}
        layer = self.make_layer(**passed)
        if not isinstance(layer, keras.layers.Layer):
            raise TypeError(
                f"{type(self).__name__}.make_layer({self._show(passed)}) returned "
                f"{type(layer).__name__}, not a Keras layer or model"
            )
        return layer

    @staticmethod
    def _show(options: dict[str, Any]) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in options.items() if v)

    def _label(self, layer: Any, **options: Any) -> str:
        return (
            f"{type(layer).__name__} {layer.name!r} from {type(self).__name__}.make_layer("
            f"{self._show(options)})"
        )

    def _shape(self, batch: int | None = None) -> tuple[int, int, int]:
        return (self.batch if batch is None else batch, self.steps, *self.step_input_shape)

    @property
    def step_input_shape(self) -> tuple[int, ...]:
        """The shape of one step of the input: ``input_shape_per_step`` or ``(input_dim,)``."""
        return tuple(self.input_shape_per_step or (self.input_dim,))

    @property
    def step_output_shape(self) -> tuple[int, ...]:
        """The shape of one step of the output: ``output_shape_per_step`` or ``(units,)``."""
        return tuple(self.output_shape_per_step or (self.units,))

    def _inputs(self, rng: np.random.Generator, batch: int | None = None) -> np.ndarray:
        x = np.asarray(self.make_inputs(rng, self._shape(batch)))
        if x.shape != self._shape(batch):
            raise ValueError(
                f"{type(self).__name__}.make_inputs returned shape {x.shape}, asked for "
                f"{self._shape(batch)}"
            )
        return x

    def expected_structure(
        self, *, batch: int | None, return_sequences: bool, return_state: bool
    ) -> Structure:
        """``[(name, shape), ...]`` the layer must return, from the class's declarations."""
        step = self.step_output_shape
        out = (batch, self.steps, *step) if return_sequences else (batch, *step)
        structure: Structure = [("output", out)]
        if return_state:
            shapes = self.state_shapes or [(size,) for size in self.state_sizes or (self.units,)]
            structure += [(f"state {i}", (batch, *shape)) for i, shape in enumerate(shapes)]
        return structure

