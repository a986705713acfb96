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
weight it never uses (or leaves a slice of one out of its math), lets padded steps
leak through a mask or applies dropout at inference still trains and produces
plausible numbers. Each of these breaks
exactly one contract test, whose message names the behaviour and the numbers.

This module is the pytest side: the test class and the wiring of its cross-backend
test. The declarations, and the layers and inputs the tests make from them, are in
:mod:`pytest_rnn.checks.contract_declarations`; what each test asserts is in
:mod:`pytest_rnn.checks.contract_checks`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest

from pytest_rnn import backends
from pytest_rnn.checks.contract_checks import (
    LEARNING_RATE,
    assert_masking_equivalence,
    assert_one_step_trains_every_weight,
    assert_serialization_round_trip,
    assert_stateful_halves,
    assert_traced_call_matches_eager,
    ensure_built,
)
from pytest_rnn.checks.contract_declarations import (
    CONTRACT_TESTS,
    LayerDeclarations,
    check_declarations,
)
from pytest_rnn.checks.dead_weights import (
    INFLUENCE_BATCHES,
    assert_every_weight_entry_influences_output,
)
from pytest_rnn.checks.dropout import (
    assert_inference_ignores_dropout,
    assert_training_applies_dropout,
)
from pytest_rnn.checks.finite_differences import assert_gradients_match_finite_differences
from pytest_rnn.checks.params import assert_param_count
from pytest_rnn.checks.shapes import assert_output_structure

__all__ = ["CONTRACT_TESTS", "DROPOUT_BATCH", "LEARNING_RATE", "RecurrentLayerContract",
           "check_declarations", "cross_backend_case", "start_cross_backend"]

#: Batch size of the dropout test: with rate 0.5 every one of ``batch * input_dim`` input
#: units is kept with probability 1/2, so a training call equals inference with
#: probability 2**-(8 * input_dim), below 1e-7 for input_dim >= 3.
DROPOUT_BATCH = 8


class RecurrentLayerContract(LayerDeclarations):
    """Base class of a contract test class; see the module docstring for an example.

    Declarations (class attributes; the defaults are on
    :class:`~pytest_rnn.checks.contract_declarations.LayerDeclarations`):

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

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        """``class Base(RecurrentLayerContract, abstract=True)``: a shared base class that
        may leave ``units`` and ``make_layer`` to its subclasses. A class that pytest does
        not collect (its name does not start with ``Test``) is treated the same way."""
        super().__init_subclass__(**kwargs)
        check_declarations(cls, complete=not abstract and cls.__name__.startswith("Test"))

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
        ensure_built(layer, self._shape())
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
        seq_options = {"return_sequences": True, "return_state": self.supports_return_state}
        seq_layer, last_layer = self._layer(**seq_options), self._layer()
        x, garbage = self._inputs(rng), self._inputs(rng)
        assert_masking_equivalence(seq_layer, last_layer, x, garbage, atol=self.atol,
                                   step_ndim=len(self.step_output_shape),
                                   label=self._label(seq_layer, **seq_options))

    def test_stateful_halves(self, rnn_seed: int):
        self._need("stateful", "test_stateful_halves")
        rng = np.random.default_rng(rnn_seed)
        options = {"return_sequences": True, "return_state": self.supports_return_state}
        stateful = self._layer(stateful=True, **options)
        plain = self._layer(**options)
        x = self._inputs(rng)
        assert_stateful_halves(stateful, plain, x, atol=self.atol,
                               step_ndim=len(self.step_output_shape),
                               label=self._label(stateful, stateful=True, **options))

    def test_serialization_round_trip(self, rnn_seed: int, tmp_path):
        rng = np.random.default_rng(rnn_seed)
        options = {"return_sequences": True, "return_state": self.supports_return_state}
        layer = self._layer(**options)
        label = self._label(layer, **options)
        x = self._inputs(rng)
        assert_serialization_round_trip(layer, x, tmp_path, label=label,
                                        custom_objects=self.custom_objects)

    def test_trainability(self, rnn_seed: int):
        rng = np.random.default_rng(rnn_seed)
        layer = self._layer(return_sequences=True)
        label = self._label(layer, return_sequences=True)
        x = self._inputs(rng)
        assert_one_step_trains_every_weight(layer, x, rng, label=label)

    def test_every_weight_entry_influences_the_output(self, rnn_seed: int):
        """Every entry of every trainable weight changes what the layer returns (outputs at
        every step and states) for at least one of :data:`INFLUENCE_BATCHES` batches of
        :meth:`make_inputs`: its gradient of a fresh random projection of the outputs per
        batch is not exactly zero on all of them (why exactly zero, in
        :mod:`pytest_rnn.checks.dead_weights`). ``test_trainability`` sees whole tensors, so
        it passes a kernel of which only some columns are read."""
        rng = np.random.default_rng(rnn_seed)
        options = {"return_sequences": True, "return_state": self.supports_return_state}
        layer = self._layer(**options)
        inputs = [self._inputs(rng) for _ in range(INFLUENCE_BATCHES)]
        assert_every_weight_entry_influences_output(layer, inputs, rng,
                                                    label=self._label(layer, **options))

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
        assert_traced_call_matches_eager(layer, x, rng, atol=self.atol, label=label)

    @pytest.mark.cross_backend  # waits for the backends' subprocesses: runs last
    def test_backends_agree(self, request: pytest.FixtureRequest):
        """The layer from :meth:`make_layer` (``return_sequences``, and ``return_state`` when
        supported) in one subprocess per installed Keras backend: same weights (uniform
        from a seed derived from the test's node id), same inputs (:meth:`make_inputs`); the
        outputs, states and the gradients of ``L = sum_k sum(P_k * returned_k)`` with
        respect to every trainable weight and the inputs must agree within the float32
        bound derived in :mod:`pytest_rnn.checks.cross_backend_compare`. The subprocesses of
        every contract class in the session start together, when collection ends. Skips when
        one backend is installed or this class cannot be imported from its file in a fresh
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
        ensure_built(layer, self._shape())
        assert_param_count(layer, self.param_count)


_CROSS_RUNS = pytest.StashKey[dict]()


def cross_backend_case(item: pytest.Item) -> Any:
    """The :class:`~pytest_rnn.checks.cross_backend.Case` of a contract class's
    ``test_backends_agree`` item, or the reason (a string) it cannot run in a subprocess."""
    import inspect
    import sys

    from pytest_rnn.checks.cross_backend import Case
    from pytest_rnn.runtime.nodeids import canonical
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
    seed = derive_seed(0, canonical(item.nodeid, item.path))
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
