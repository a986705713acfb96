"""A contract suite for recurrent layers you wrote yourself.

Subclass :class:`RecurrentLayerContract` in a test module, say what your layer
looks like and what it supports, and give a factory; pytest then runs every
contract test against your layer::

    import keras
    from pytest_rnn import RecurrentLayerContract, expected_param_count


    class TestMyGRU(RecurrentLayerContract):
        units = 4                       # size of the output's last axis
        input_dim = 3                   # features per step the contract feeds it
        supports_dropout = True         # make_layer accepts dropout=rate
        param_count = expected_param_count("gru", 4, 3)
        skip_contracts = {"test_stateful_halves": "inference-only layer, never stateful"}

        def make_layer(self, **options):
            return keras.layers.RNN(MyGRUCell(4, dropout=options.pop("dropout", 0.0)),
                                    **options)

A layer whose steps have more than one axis (a ConvLSTM2D reads ``(rows, cols,
channels)`` per step) declares ``input_shape_per_step`` instead of ``input_dim``,
and ``output_shape_per_step`` (and ``state_shapes``) instead of ``units`` (and
``state_sizes``)::

    class TestMyConvLSTM(RecurrentLayerContract):
        input_shape_per_step = (4, 4, 2)    # rows, cols, channels
        output_shape_per_step = (4, 4, 3)   # padding="same", 3 filters
        state_shapes = ((4, 4, 3), (4, 4, 3))

``make_layer(**options)`` gets only the options a test needs, among
``return_sequences=True``, ``return_state=True``, ``stateful=True`` and
``dropout=rate``; called without options it must return a layer that outputs the
last step only. The contract tests (each can be opted out by name, with a
reason, in ``skip_contracts``) are listed in :data:`CONTRACT_TESTS`. A feature
the class declares unsupported (``supports_masking``, ``supports_return_state``,
``supports_stateful``, ``supports_dropout``) skips its tests with a reason that
says so; ``test_param_count`` needs ``param_count``.

Why a contract: a custom cell that forgets a key in ``get_config``, creates a
weight it never uses, lets padded steps leak through a mask or applies dropout
at inference still trains and produces plausible numbers. Each of these breaks
exactly one contract test, whose message names the behaviour and the numbers.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Sequence
from typing import Any, ClassVar

import keras
import numpy as np
import pytest

from pytest_rnn import backends
from pytest_rnn.checks import compare
from pytest_rnn.checks.dropout import (
    assert_inference_ignores_dropout,
    assert_training_applies_dropout,
)
from pytest_rnn.checks.finite_differences import assert_gradients_match_finite_differences
from pytest_rnn.checks.params import assert_param_count
from pytest_rnn.checks.shapes import Structure, assert_output_structure

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
}

_SUPPORTS = ("supports_masking", "supports_return_state", "supports_stateful", "supports_dropout")
_POSITIVE = ("units", "input_dim", "batch", "steps")

#: Batch size of the dropout test: with rate 0.5 every one of ``batch * input_dim`` input
#: units is kept with probability 1/2, so a training call equals inference with
#: probability 2**-(8 * input_dim), below 1e-7 for input_dim >= 3.
DROPOUT_BATCH = 8
LEARNING_RATE = 0.1


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
        if getattr(cls, "make_layer", None) is RecurrentLayerContract.make_layer:
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


def _difference(
    name: str,
    got: np.ndarray,
    want: np.ndarray,
    atol: float,
    steps: Sequence[int] | None = None,
    step_ndim: int = 1,
) -> str | None:
    """A line describing how ``got`` differs from ``want`` beyond ``atol``, or None.

    ``steps`` (for one sample's outputs over a selection of steps) names the steps;
    ``step_ndim`` is the number of axes of one step (3 for a ConvLSTM2D's rows, cols and
    filters), whose positions then read ``axis k``."""
    ndim = np.ndim(got)
    if steps is not None:
        lead: tuple[str, ...] = ("step",)
    elif step_ndim > 1:
        lead = {step_ndim + 2: ("batch", "step"), step_ndim + 1: ("batch",)}.get(ndim, ())
    else:
        lead = ()
    axes = None
    if lead:
        trailing = ("unit",) if step_ndim == 1 else tuple(
            f"axis {k}" for k in range(len(lead), ndim))
        axes = (lead + trailing)[:ndim] if len(lead + trailing) >= ndim else None
    return compare.difference(name, got, want, atol=atol, axes=axes, steps=steps,
                              labels=("got", "expected"))


def _config_changes(before: Any, after: Any, path: str = "") -> list[str]:
    """``path: old -> new`` for every leaf that differs between two configs (JSON-normalised,
    so a tuple that comes back as a list is no change)."""
    before, after = json.loads(json.dumps(before)), json.loads(json.dumps(after))
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            change
            for key in sorted(set(before) | set(after))
            for change in _config_changes(
                before.get(key, "<absent>"), after.get(key, "<absent>"), f"{path}.{key}"
            )
        ]
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [
            change
            for i, (b, a) in enumerate(zip(before, after, strict=True))
            for change in _config_changes(b, a, f"{path}[{i}]")
        ]
    return [] if before == after else [f"{path.lstrip('.')}: {before!r} -> {after!r}"]


def _build(layer: Any, shape: tuple) -> None:
    if not layer.built:
        layer.build(shape)


def _reset_states(layer: Any) -> None:
    """``reset_states()`` of a layer, or of every stateful layer inside a model."""
    if hasattr(layer, "reset_states"):
        layer.reset_states()
        return
    inner = [sub for sub in getattr(layer, "layers", []) if getattr(sub, "stateful", False)]
    if not inner:
        raise AssertionError(
            f"{type(layer).__name__} {layer.name!r} has no reset_states() and holds no "
            "stateful layer to reset"
        )
    for sub in inner:
        _reset_states(sub)


class RecurrentLayerContract:
    """Base class of a contract test class; see the module docstring for an example.

    Declarations (class attributes):

    * ``units`` (required unless ``output_shape_per_step`` is given): size of the
      output's last axis.
    * ``state_sizes``: sizes of the states ``return_state=True`` returns after the
      output, in order (default ``(units,)``; an LSTM has ``(units, units)``).
    * ``input_dim``, ``batch``, ``steps``: the float inputs the contract feeds
      (override :meth:`make_inputs` for other inputs).
    * ``input_shape_per_step``: the shape of one step of the input when it has more
      than one axis (``(rows, cols, channels)``); replaces ``input_dim``.
    * ``output_shape_per_step``: the shape of one step of the output (default
      ``(units,)``), and ``state_shapes``: the shape of each returned state without
      the batch (default one ``(size,)`` per ``state_sizes``).
    * ``supports_masking``, ``supports_return_state``, ``supports_stateful``
      (default True, as for any ``keras.layers.RNN``), ``supports_dropout``
      (default False; True means ``make_layer`` accepts ``dropout=rate``).
    * ``param_count``: the expected number of parameters (``None``: not checked).
    * ``custom_objects``: passed to Keras when deserializing, for classes not
      registered with ``keras.saving.register_keras_serializable``.
    * ``skip_contracts``: ``{contract test name: reason}`` opt-outs.
    * ``atol``: tolerance of comparisons between different computations of the
      same result (masking, stateful halves); round trips must match exactly.
    """

    # comparisons use float32 tolerances: no TF32 matmuls on GPU hosts (subclasses inherit)
    pytestmark: ClassVar[list] = [pytest.mark.usefixtures("rnn_float32")]

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

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        """``class Base(RecurrentLayerContract, abstract=True)``: a shared base class that
        may leave ``units`` and ``make_layer`` to its subclasses. A class that pytest does
        not collect (its name does not start with ``Test``) is treated the same way."""
        super().__init_subclass__(**kwargs)
        check_declarations(cls, complete=not abstract and cls.__name__.startswith("Test"))

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

    # -- plumbing ------------------------------------------------------------------------------

    @pytest.fixture(autouse=True)
    def _contract_gate(self, request: pytest.FixtureRequest) -> None:
        """Skip opted-out contract tests with the stated reason; check required declarations."""
        test = getattr(request.node, "originalname", request.node.name)
        reason = self.skip_contracts.get(test)
        if reason is not None:
            pytest.skip(f"{type(self).__name__} opts out of {test}: {reason}")
        if self.units is None and self.output_shape_per_step is None:
            pytest.fail(
                f"{type(self).__name__} must declare units (the size of the output's last axis) "
                "or output_shape_per_step",
                pytrace=False,
            )

    def _need(self, feature: str, test: str) -> None:
        if not getattr(self, f"supports_{feature}"):
            pytest.skip(
                f"{type(self).__name__} declares supports_{feature} = False, so {test} does "
                "not apply"
            )

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

    # -- the contract --------------------------------------------------------------------------

    @pytest.mark.parametrize("return_state", [False, True], ids=["no_state", "state"])
    @pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
    def test_output_shapes(self, rnn_seed: int, return_sequences: bool, return_state: bool):
        if return_state:
            self._need("return_state", "test_output_shapes[...-state]")
        options = {"return_sequences": return_sequences, "return_state": return_state}
        layer = self._layer(**options)
        x = self._inputs(np.random.default_rng(rnn_seed))
        expected = self.expected_structure(batch=self.batch, **options)
        assert_output_structure(layer(x), expected, what=self._label(layer, **options))

    @pytest.mark.parametrize("return_state", [False, True], ids=["no_state", "state"])
    @pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
    def test_compute_output_shape(self, return_sequences: bool, return_state: bool):
        """Compared with the declared structure, which test_output_shapes holds calls to, so
        no call is needed: the layer is only built."""
        if return_state:
            self._need("return_state", "test_compute_output_shape[...-state]")
        options = {"return_sequences": return_sequences, "return_state": return_state}
        layer = self._layer(**options)
        _build(layer, self._shape())
        label = self._label(layer, **options)
        for batch in (self.batch, None):
            shape = (batch, self.steps, *self.step_input_shape)
            assert_output_structure(
                layer.compute_output_shape(shape),
                self.expected_structure(batch=batch, **options),
                what=f"{label}.compute_output_shape({shape})",
            )

    def test_masking_equivalence(self, rnn_seed: int):
        self._need("masking", "test_masking_equivalence")
        rng = np.random.default_rng(rnn_seed)
        with_state = self.supports_return_state
        seq_options = {"return_sequences": True, "return_state": with_state}
        seq_layer, last_layer = self._layer(**seq_options), self._layer()
        x, garbage = self._inputs(rng), self._inputs(rng)
        mask = np.ones(x.shape[:2], dtype=bool)
        mask[1, -2:] = False  # sample 1: the last two steps are padding
        mask[2, :2] = False  # sample 2: the first two steps are padding
        per_step = mask.reshape(mask.shape + (1,) * (x.ndim - 2))
        padded = np.where(per_step, x, garbage).astype(x.dtype)
        seq_out = compare.leaves(seq_layer(padded, mask=mask))
        _build(last_layer, x.shape)
        last_layer.set_weights(seq_layer.get_weights())
        last_out = compare.leaves(last_layer(padded, mask=mask))
        backwards = bool(getattr(seq_layer, "go_backwards", False))
        # the unpadded sequences: sample 0 whole, samples 1 and 2 (both two steps shorter)
        # batched together, each with its own valid steps
        problems = []
        for group in ([0], [1, 2]):
            valid_steps = [np.flatnonzero(mask[i]) for i in group]
            short = np.stack([x[i, v] for i, v in zip(group, valid_steps, strict=True)])
            ref_seq, ref_last = compare.leaves(seq_layer(short)), compare.leaves(last_layer(short))
            for j, (i, valid) in enumerate(zip(group, valid_steps, strict=True)):
                masked = sorted(set(range(self.steps)) - set(valid.tolist()))
                where = f"sample {i} (steps {masked} masked)" if masked else f"sample {i} (no mask)"
                got_seq, want_seq = seq_out[0][i], ref_seq[0][j]
                if backwards:  # returned in processing order: bring both back to input order
                    got_seq, want_seq = got_seq[::-1], want_seq[::-1]
                checks = [
                    ("last-step output", last_out[0][i], ref_last[0][j], None),
                    ("sequence output", got_seq[valid], want_seq, valid.tolist()),
                ]
                checks += [
                    (f"final state {k}", seq_out[1 + k][i], ref_seq[1 + k][j], None)
                    for k in range(len(seq_out) - 1)
                ]
                for name, got, want, steps in checks:
                    line = _difference(
                        name, got, want, self.atol, steps, len(self.step_output_shape)
                    )
                    if line:
                        problems.append(f"  {where}, {line}")
        if problems:
            raise AssertionError(
                f"{self._label(seq_layer, **seq_options)}: a padded sequence with a mask differs "
                "from the same sequence without its padding (padded steps hold other values, so "
                "they leak through the mask or the mask is ignored):\n" + "\n".join(problems)
            )

    def test_stateful_halves(self, rnn_seed: int):
        self._need("stateful", "test_stateful_halves")
        rng = np.random.default_rng(rnn_seed)
        options = {"return_sequences": True, "return_state": self.supports_return_state}
        stateful = self._layer(stateful=True, **options)
        plain = self._layer(**options)
        x = self._inputs(rng)
        half = self.steps // 2
        stateful(x[:, :half])  # builds it (for this batch size) ...
        plain(x)
        plain.set_weights(stateful.get_weights())
        _reset_states(stateful)  # ... and the build call moved its state
        full = compare.leaves(plain(x))
        first = compare.leaves(stateful(x[:, :half]))
        second = compare.leaves(stateful(x[:, half:]))
        _reset_states(stateful)
        again = compare.leaves(stateful(x[:, :half]))
        checks = [
            ("outputs of the two halves, concatenated",
             np.concatenate([first[0], second[0]], axis=1), full[0]),
        ]
        checks += [
            (f"state {k} after the second half", second[1 + k], full[1 + k])
            for k in range(len(full) - 1)
        ]
        checks += [
            (f"first-half {'output' if k == 0 else f'state {k - 1}'} after reset_states()",
             again[k], first[k])
            for k in range(len(first))
        ]
        problems = [line for name, got, want in checks
                    if (line := _difference(
                        name, got, want, self.atol, step_ndim=len(self.step_output_shape)))]
        if problems:
            raise AssertionError(
                f"{self._label(stateful, stateful=True, **options)} fed steps [0, {half}) then "
                f"[{half}, {self.steps}) differs from one call on all {self.steps} steps with the "
                "same weights (expected: the second half continues from the first half's "
                "states; after reset_states() the first half gives its first result again):\n  "
                + "\n  ".join(problems)
            )

    def test_serialization_round_trip(self, rnn_seed: int, tmp_path):
        rng = np.random.default_rng(rnn_seed)
        options = {"return_sequences": True, "return_state": self.supports_return_state}
        layer = self._layer(**options)
        label = self._label(layer, **options)
        x = self._inputs(rng)
        before = compare.leaves(layer(x))
        config = keras.saving.serialize_keras_object(layer)
        try:
            text = json.dumps(config)
        except (TypeError, ValueError) as exc:
            raise AssertionError(f"{label}: its config is not JSON-serialisable ({exc})") from None
        try:
            with keras.saving.custom_object_scope(self.custom_objects or {}):
                clone = keras.saving.deserialize_keras_object(json.loads(text))
        except Exception as exc:
            raise AssertionError(
                f"{label} cannot be rebuilt from its serialized config: {type(exc).__name__}: "
                f"{exc}. Does every class define get_config() with all constructor arguments "
                "and carry @keras.saving.register_keras_serializable() (or appear in "
                "custom_objects)?"
            ) from None
        clone(x)
        problems = []
        if len(clone.weights) != len(layer.weights):
            raise AssertionError(
                f"{label}: rebuilt from its config it has {len(clone.weights)} weights, the "
                f"original {len(layer.weights)}"
            )
        clone.set_weights(layer.get_weights())
        changed = _config_changes(layer.get_config(), clone.get_config())
        if changed:
            problems.append("get_config() of the rebuilt layer differs: " + "; ".join(changed))
        problems += self._same_outputs("rebuilt from get_config()", clone(x), before)

        inputs = keras.Input(shape=x.shape[1:])
        # a flat list of outputs: Keras < 3.4 rejects nested outputs (stacked cells' states)
        model = keras.Model(inputs, compare.flatten(layer(inputs)))
        path = tmp_path / "contract_round_trip.keras"
        model.save(path)
        try:
            loaded = keras.saving.load_model(path, custom_objects=self.custom_objects)
        except Exception as exc:
            raise AssertionError(
                f"{label}: a model holding it was saved to {path.name} but does not load: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        problems += self._same_outputs("saved to a .keras file and loaded", loaded(x), before)
        if problems:
            raise AssertionError(
                f"{label} does not survive serialization unchanged (same weights, same inputs; "
                "outputs must match exactly; different outputs with an equal config usually "
                "mean get_config() leaves out a constructor argument):\n  "
                + "\n  ".join(problems)
            )

    @staticmethod
    def _same_outputs(how: str, outputs: Any, before: Sequence[np.ndarray]) -> list[str]:
        after = compare.leaves(outputs)
        if len(after) != len(before):
            return [f"{how}: returns {len(after)} tensors, the original {len(before)}"]
        names = ["output"] + [f"state {k}" for k in range(len(before) - 1)]
        return [
            f"{how}: {line}"
            for name, got, want in zip(names, after, before, strict=True)
            if (line := _difference(name, got, want, 0.0))
        ]

    def test_trainability(self, rnn_seed: int):
        rng = np.random.default_rng(rnn_seed)
        layer = self._layer(return_sequences=True)
        label = self._label(layer, return_sequences=True)
        x = self._inputs(rng)
        y = compare.leaves(layer(x))[0]
        if not np.isfinite(y).all():
            raise AssertionError(f"{label}: the output holds {int((~np.isfinite(y)).sum())} "
                                 f"NaN/Inf values of {y.size} on standard-normal inputs")
        weights = list(layer.trainable_weights)
        if not weights:
            raise AssertionError(f"{label} has no trainable weights; nothing can learn")
        target = rng.normal(size=y.shape).astype("float32")
        target_tensor = keras.ops.convert_to_tensor(target)  # PyTorch: no NumPy in autograd

        def mse():
            out = compare.flatten(layer(x, training=True))[0]
            return keras.ops.mean(keras.ops.square(out - target_tensor))

        loss, grads = backends.gradients(mse, weights)
        before = [np.array(compare.to_numpy(w)) for w in weights]
        for weight, grad, old in zip(weights, grads, before, strict=True):
            if grad is not None:
                weight.assign((old - LEARNING_RATE * grad).astype(old.dtype))
        after = [compare.to_numpy(w) for w in weights]
        problems = []
        for weight, grad, old, new in zip(weights, grads, before, after, strict=True):
            name = getattr(weight, "path", None) or weight.name
            if grad is None:
                problems.append(f"{name} {tuple(weight.shape)}: no gradient (the forward pass "
                                "never uses it)")
                continue
            g = grad
            if not np.isfinite(g).all():
                problems.append(f"{name}: {int((~np.isfinite(g)).sum())} NaN/Inf gradient values")
            elif not g.any():
                problems.append(f"{name} {tuple(weight.shape)}: gradient is exactly zero")
            elif not np.isfinite(new).all():
                problems.append(f"{name}: NaN/Inf after one step of learning rate {LEARNING_RATE}")
            elif np.array_equal(old, new):
                problems.append(f"{name}: did not move after one step (max |grad| "
                                f"{np.abs(g).max():.3g})")
        loss_after = float(np.mean((compare.leaves(layer(x))[0] - target) ** 2))
        if not np.isfinite(loss_after):
            problems.append(f"loss after one step is {loss_after} (was {float(loss):.6g})")
        if problems:
            raise AssertionError(
                f"{label}: one SGD step on a mean-squared-error loss (learning rate "
                f"{LEARNING_RATE}) does not train every weight:\n  " + "\n  ".join(problems)
            )

    def test_dropout_train_vs_inference(self, rnn_seed: int):
        self._need("dropout", "test_dropout_train_vs_inference")
        rng = np.random.default_rng(rnn_seed)
        layer = self._layer(return_sequences=True, dropout=self.dropout_rate)
        x = self._inputs(rng, batch=max(self.batch, DROPOUT_BATCH))
        layer(x)
        try:
            assert_inference_ignores_dropout(layer, x, atol=self.atol)
            assert_training_applies_dropout(layer, x)
        except ValueError as exc:
            raise AssertionError(
                f"{self._label(layer, dropout=self.dropout_rate)}: {exc}. The contract reads the "
                "rate from get_config() (a 'dropout' or 'recurrent_dropout' key) and rebuilds "
                "a dropout-free twin from it"
            ) from None

    def test_gradients_match_finite_differences(self, rnn_seed: int):
        """A float64 copy of the layer (rebuilt from its config, same weights): the gradient
        the backend takes of ``L = sum_k sum(W_k * returned_k)`` along a random direction
        per weight and per input step equals the central difference of the loss; step and
        tolerance are derived in :mod:`pytest_rnn.checks.finite_differences`."""
        rng = np.random.default_rng(rnn_seed)
        options = {"return_sequences": True, "return_state": self.supports_return_state}
        layer = self._layer(**options)
        x = self._inputs(rng)
        layer(x)
        try:
            assert_gradients_match_finite_differences(
                layer, x, seed=rnn_seed, custom_objects=self.custom_objects)
        except ValueError as exc:  # no float64 copy: a hard-coded dtype
            raise AssertionError(f"{self._label(layer, **options)}: {exc}") from None

    def test_traced_call_matches_eager(self, rnn_seed: int):
        """One trace (``tf.function`` on TensorFlow, ``jax.jit`` on JAX, through
        :mod:`pytest_rnn.backends`) of the call and of
        the gradients of ``L = sum_k sum(W_k * returned_k)`` with respect to the inputs and
        every trainable weight equals eager execution within ``atol * max(1, max|eager|)``
        (both are float32 computations of the same values; tracing may only reorder them).
        Python control flow on tensors, state kept in Python attributes or a call that
        reads ``training`` wrongly when traced shows here. Skips on PyTorch."""
        if not hasattr(backends.module(), "compiled_value_and_grad"):
            pytest.skip(f"the {backends.name()} backend has no compiled gradients in "
                        "pytest_rnn.backends (TensorFlow: tf.function; JAX: jax.jit)")
        rng = np.random.default_rng(rnn_seed)
        options = {"return_sequences": True, "return_state": self.supports_return_state}
        layer = self._layer(**options)
        label = self._label(layer, **options)
        x = self._inputs(rng)
        eager_out = compare.leaves(layer(x, training=False))
        weights = [rng.normal(size=e.shape).astype("float32") for e in eager_out]
        variables = list(layer.trainable_weights)

        def loss_and_outputs(v):
            outs = compare.keras_tree().flatten(layer(v, training=False))
            loss = sum(keras.ops.sum(keras.ops.cast(o, "float32") * w)
                       for o, w in zip(outs, weights, strict=True))
            return loss, outs

        _, _, eager_gv, eager_gx = backends.value_and_grad(
            loss_and_outputs, variables, [x], has_aux=True)
        try:
            _, traced_out, traced_gv, traced_gx = backends.compiled_value_and_grad(
                loss_and_outputs, variables, has_aux=True)(x)
        except Exception as exc:
            raise AssertionError(f"{label} cannot be traced into a graph ({backends.name()}): "
                                 f"{type(exc).__name__}: {exc}") from None
        names = ["output"] + [f"state {k}" for k in range(len(eager_out) - 1)]
        pairs = list(zip(names, traced_out, eager_out, strict=False))
        pairs.append(("dL/d inputs", traced_gx[0], eager_gx[0]))
        pairs += [(f"dL/d {v.path}", t, e)
                  for v, t, e in zip(variables, traced_gv, eager_gv, strict=True)]
        problems = []
        if len(traced_out) != len(eager_out):
            problems.append(f"traced it returns {len(traced_out)} tensors, eagerly "
                            f"{len(eager_out)}")
        for name, got, want in pairs:
            if got is None or want is None:
                if (got is None) != (want is None):
                    problems.append(f"{name}: {'no gradient' if got is None else 'a gradient'} "
                                    f"traced, {'none' if want is None else 'one'} eagerly")
                continue
            atol = self.atol * max(1.0, float(np.abs(want).max(initial=0.0)))
            line = compare.difference(name, got, want, atol=atol, labels=("traced", "eager"))
            if line:
                problems.append(line)
        if problems:
            raise AssertionError(
                f"{label}: traced into a graph "
                f"({'jax.jit' if backends.name() == 'jax' else 'tf.function'}) it computes "
                "something else than "
                "eagerly (same weights, same inputs, training=False):\n  "
                + "\n  ".join(problems))

    @pytest.mark.cross_backend  # waits for the backends' subprocesses: runs last
    def test_backends_agree(self, request: pytest.FixtureRequest):
        """The layer from :meth:`make_layer` (``return_sequences``, and ``return_state`` when
        supported) in one subprocess per installed Keras backend: same weights (uniform
        from a seed derived from the test's node id), same inputs (:meth:`make_inputs`); the
        outputs, states and the gradients of ``L = sum_k sum(P_k * returned_k)`` with
        respect to every trainable weight and the inputs must agree within the float32
        bound derived in :mod:`pytest_rnn.checks.cross_backend`. The subprocesses of every
        contract class in the session start together, when collection ends. Skips when one
        backend is installed or this class cannot be imported from its file in a fresh
        process."""
        from pytest_rnn.checks import cross_backend

        installed = cross_backend.installed_backends()
        if len(installed) < 2:
            pytest.skip(f"only the {installed[0] if installed else 'no'} Keras backend is "
                        "installed: install jax or torch to compare backends")
        case = cross_backend_case(request.node)
        if isinstance(case, str):
            pytest.skip(case)
        runs = start_cross_backend(request.session)
        try:
            results = {b: run.result() for b, run in runs.items()}
        except RuntimeError as exc:
            raise AssertionError(f"{type(self).__name__}: {exc}") from None
        problems = cross_backend.compare_results([case], results)[case.name]
        if problems:
            raise AssertionError(
                f"{type(self).__name__}.make_layer({self._show(case.kwargs)}) computes "
                "different values on different Keras backends (same weights and inputs):\n  "
                + "\n  ".join(problems))

    def test_param_count(self):
        if self.param_count is None:
            pytest.skip(f"{type(self).__name__} declares no param_count to check")
        layer = self._layer()
        _build(layer, self._shape())
        assert_param_count(layer, self.param_count)


_CROSS_RUNS = pytest.StashKey[dict]()


def cross_backend_case(item: pytest.Item) -> Any:
    """The :class:`~pytest_rnn.checks.cross_backend.Case` of a contract class's
    ``test_backends_agree`` item, or the reason (a string) it cannot run in a subprocess."""
    import inspect
    import sys

    from pytest_rnn.checks.cross_backend import Case
    from pytest_rnn.runtime.seeding import derive_seed

    cls = item.cls
    qualname = cls.__qualname__
    try:
        path = inspect.getsourcefile(cls)
    except TypeError:
        path = None
    if path is None or "." in qualname or getattr(sys.modules.get(cls.__module__),
                                                  cls.__name__, None) is not cls:
        return (f"{qualname} cannot be imported by path in a fresh process (defined in "
                f"{path or 'no file'}; a class at module level is): the cross-backend "
                "comparison needs each backend's subprocess to build the layer")
    instance = cls()
    # known when collection ends, before any fixture runs: from the node id alone
    seed = derive_seed(0, item.nodeid)
    kwargs = {"return_sequences": True}
    if instance.supports_return_state:
        kwargs["return_state"] = True
    inputs = None
    if type(instance).make_inputs is not RecurrentLayerContract.make_inputs:
        inputs = instance._inputs(np.random.default_rng(seed)).tolist()
    states = instance.state_shapes or [(size,) for size in
                                       instance.state_sizes or instance.step_output_shape[-1:]]
    return Case(name=f"{path}::{qualname}", factory=f"{path}:{qualname}.make_layer",
                input_shape=instance._shape(), seed=seed, kwargs=kwargs, inputs=inputs,
                state_shapes=tuple(tuple(s) for s in states))


def start_cross_backend(session: pytest.Session) -> dict:
    """One subprocess per installed backend computing the cases of every contract class's
    ``test_backends_agree`` in the session; started once (at collection end, or by the first
    such test) and kept in the session's stash."""
    import sys
    import tempfile
    from pathlib import Path

    from pytest_rnn.checks import cross_backend

    runs = session.config.stash.get(_CROSS_RUNS, None)
    if runs is not None:
        return runs
    cases = []
    for item in session.items:
        if (getattr(item, "originalname", None) == "test_backends_agree"
                and isinstance(getattr(item, "cls", None), type)
                and issubclass(item.cls, RecurrentLayerContract)
                and "test_backends_agree" not in item.cls.skip_contracts):
            case = cross_backend_case(item)
            if not isinstance(case, str) and case.name not in {c.name for c in cases}:
                cases.append(case)
    runs = {}
    installed = cross_backend.installed_backends()
    if cases and len(installed) >= 2:
        workdir = Path(tempfile.mkdtemp(prefix="pytest-rnn-contract-backends-"))
        paths = [p for p in sys.path if isinstance(p, str) and p]
        runs = {b: cross_backend.start_backend(b, cases, workdir, sys_path=paths)
                for b in installed}
    session.config.stash[_CROSS_RUNS] = runs
    return runs
