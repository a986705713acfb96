"""The layer contract catches what it promises to catch, and nothing else.

A deliberately broken custom layer has one defect per behaviour (a dropped mask,
an unused weight, a config that forgets the activation, dropout at inference);
each defect must fail its own contract test with a message naming it, while the
contract tests of behaviours that are intact pass. The runs are in-process
(``pytester.inline_run``): TensorFlow is already imported here, so a subprocess
would only add its import time.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from pytest_rnn.contract import CONTRACT_TESTS, RecurrentLayerContract, check_declarations

BROKEN_LAYER = '''
import keras
from keras import ops

from pytest_rnn import RecurrentLayerContract

UNITS, FEATURES = 3, 3


class BrokenCell(keras.layers.Layer):
    def __init__(self, units, activation="tanh", dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.units = self.state_size = self.output_size = units
        self.activation = keras.activations.get(activation)
        self.dropout = dropout
        self.seed_generator = keras.random.SeedGenerator(7)

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units),
                                                name="recurrent_kernel")
        self.bias = self.add_weight(shape=(self.units,), name="bias", initializer="zeros")
        # DEFECT (trainability, param count): created, never used
        self.forgotten = self.add_weight(shape=(self.units,), name="forgotten")

    def call(self, inputs, states, training=False):
        if self.dropout:  # DEFECT (dropout): ignores `training`
            inputs = keras.random.dropout(inputs, self.dropout, seed=self.seed_generator)
        h = self.activation(ops.matmul(inputs, self.kernel)
                            + ops.matmul(states[0], self.recurrent_kernel) + self.bias)
        return h, [h]

    def get_config(self):  # DEFECT (serialization): forgets `activation`
        return {**super().get_config(), "units": self.units, "dropout": self.dropout}


class MaskDroppingRNN(keras.layers.RNN):
    def call(self, sequences, initial_state=None, mask=None, training=False):
        # DEFECT (masking): the mask never reaches the time loop
        return super().call(sequences, initial_state=initial_state, mask=None,
                            training=training)


class TestBrokenCell(RecurrentLayerContract):
    units = UNITS
    input_dim = FEATURES
    supports_dropout = True
    param_count = FEATURES * UNITS + UNITS * UNITS + UNITS  # what the cell should have
    custom_objects = {"BrokenCell": BrokenCell, "MaskDroppingRNN": MaskDroppingRNN}

    def make_layer(self, dropout=0.0, **options):
        return MaskDroppingRNN(BrokenCell(UNITS, activation="relu", dropout=dropout), **options)
'''

OPTED_OUT = '''

class TestOptedOut(TestBrokenCell):
    skip_contracts = {
        name: f"known defect, reason #{i}"
        for i, name in enumerate(CONTRACT_TESTS)
        if name != "test_stateful_halves"
    }
'''

#: contract test -> regular expression its failure message must match
EXPECTED_FAILURES = {
    "test_masking_equivalence": "a padded sequence with a mask differs",
    # JAX gives zeros, not None, for a variable the loss never reads
    "test_trainability": r"forgotten \(3,\): (no gradient|gradient is exactly zero)",
    "test_serialization_round_trip": "does not survive serialization",
    # two inference calls differ (TensorFlow draws a new mask each call), or one call
    # differs from the dropout-free twin (JAX's seeded draws repeat between the two calls)
    "test_dropout_train_vs_inference": "dropout leaks into inference|dropout changes inference",
    "test_param_count": "24 parameters, expected 21",
    # JAX gives zeros (no None), so the message counts the entries instead
    "test_every_weight_entry_influences_the_output": r"forgotten never influences the output "
    r"\((no gradient|none of its 3 entries)",
}


def _outcomes(reprec) -> dict[str, tuple[str, str]]:
    """nodeid (without the module) -> (outcome, failure or skip text) of each test."""
    result = {}
    for report in reprec.getreports("pytest_runtest_logreport"):
        if report.when == "call" or (report.when == "setup" and not report.passed):
            text = report.longreprtext if not report.passed else ""
            result[report.nodeid.split("::", 1)[1]] = (report.outcome, text)
    return result


def test_broken_layer_fails_exactly_the_contracts_it_breaks(pytester: pytest.Pytester):
    pytester.makepyfile(test_broken=BROKEN_LAYER)
    # the cross-backend test has its own proof below (it starts a subprocess per backend)
    outcomes = _outcomes(pytester.inline_run("-p", "no:cacheprovider", "-k",
                                             "not test_backends_agree"))
    assert len(outcomes) == 17, sorted(outcomes)
    failed = {nodeid.split("::")[1] for nodeid, (o, _) in outcomes.items() if o == "failed"}
    assert failed == set(EXPECTED_FAILURES), (
        f"contract tests failing on the broken layer: {sorted(failed)}; expected exactly "
        f"{sorted(EXPECTED_FAILURES)}"
    )
    for nodeid, (outcome, text) in outcomes.items():
        name = nodeid.split("::")[1].split("[")[0]
        if name in EXPECTED_FAILURES:
            assert re.search(EXPECTED_FAILURES[name], text), (
                f"{nodeid} failed for another reason:\n{text}")
        elif name == "test_traced_call_matches_eager" and not _compiles():
            assert outcome == "skipped" and "no compiled gradients" in text, (nodeid, text)
        else:
            assert outcome == "passed", f"{nodeid} should pass on the broken layer:\n{text}"
    # a failure says which step of which sample leaked, not just "differs"
    masking = outcomes["TestBrokenCell::test_masking_equivalence"][1]
    assert "sample 1 (steps [2, 3] masked), last-step output" in masking


def test_opt_outs_skip_with_their_reason_and_the_rest_still_runs(pytester: pytest.Pytester):
    pytester.makepyfile(test_broken=BROKEN_LAYER.replace(
        "from pytest_rnn import RecurrentLayerContract",
        "from pytest_rnn import CONTRACT_TESTS, RecurrentLayerContract",
    ).replace("class TestBrokenCell(", "class BrokenBase(") + OPTED_OUT.replace(
        "TestBrokenCell", "BrokenBase"))
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(passed=1, skipped=17)
    result.stdout.fnmatch_lines([
        "*SKIPPED*TestOptedOut opts out of test_masking_equivalence: known defect, reason #2*",
        "*SKIPPED*TestOptedOut opts out of test_param_count: known defect, reason #7*",
    ])


def _contract_module(cell: str, cell_class: str) -> str:
    """Source of a test module running the contract on ``keras.layers.RNN(<cell>(3))``.

    ``cell_class`` defines the cell (``keras`` and ``ops`` are imported) with no
    ``get_config``: its only argument is ``units``, and this adds the config saying so.
    """
    return f'''
import keras
from keras import ops

from pytest_rnn import RecurrentLayerContract


{cell_class.strip()}

    def get_config(self):
        return {{**super().get_config(), "units": self.units}}


class Test{cell}(RecurrentLayerContract):
    units = 3

    def make_layer(self, **options):
        return keras.layers.RNN({cell}(3), **options)
'''


WRONG_BACKWARD = _contract_module("HalfGradientCell", '''
@keras.saving.register_keras_serializable(package="contract_tests")
class HalfGradientCell(keras.layers.Layer):
    """h = tanh(x K + h R + b) forward; its backward pass halves dh/dz (a custom-gradient
    bug), which forward values, shapes, masks and serialization cannot show."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = self.state_size = self.output_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units),
                                                name="recurrent_kernel")
        self.bias = self.add_weight(shape=(self.units,), name="bias", initializer="ones")

    def call(self, inputs, states, training=False):
        h = ops.tanh(ops.matmul(inputs, self.kernel)
                     + ops.matmul(states[0], self.recurrent_kernel) + self.bias)
        h = ops.stop_gradient(h) + 0.5 * (h - ops.stop_gradient(h))  # same value, half grad
        return h, [h]
''')


def test_a_wrong_backward_pass_fails_the_finite_difference_contract_only(
    pytester: pytest.Pytester, request: pytest.FixtureRequest,
):
    from pytest_rnn import backends

    if backends.name() != "tensorflow":
        request.applymarker(pytest.mark.xfail(strict=True, reason=(
            f"open gap: on {backends.name()} Keras computes the float64 copy's matmuls in "
            "float32 (keras_float64_promotion), and at float32's tolerance the "
            "finite-difference contract passes a halved backward pass")))
    pytester.makepyfile(test_wrong_backward=WRONG_BACKWARD)
    outcomes = _outcomes(pytester.inline_run(
        "-p", "no:cacheprovider", "-k", "finite_differences or trainability or masking"))
    assert {k: v[0] for k, v in outcomes.items()} == {
        "TestHalfGradientCell::test_gradients_match_finite_differences": "failed",
        "TestHalfGradientCell::test_trainability": "passed",
        "TestHalfGradientCell::test_masking_equivalence": "passed",
    }, outcomes
    text = outcomes["TestHalfGradientCell::test_gradients_match_finite_differences"][1]
    for words in ("disagrees with central differences", "backward pass is wrong",
                  "all trainable weights together", r"half_gradient_cell\w*/kernel: columns "
                  r"\(units\) \[0, 1, 2\] of 3 differ", "inputs at step 0",
                  "input gradients differ at steps"):
        assert re.search(words, text), f"{words!r} missing from the failure:\n{text}"


PYTHON_STATE_CELL = _contract_module("StepCountingCell", '''
@keras.saving.register_keras_serializable(package="contract_tests")
class StepCountingCell(keras.layers.Layer):
    """Scales odd steps' inputs by 2, counting steps in a Python attribute: eagerly the time
    loop runs the Python body every step, traced it runs once, so the graph scales all
    steps alike (or none)."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = self.state_size = self.output_size = units
        self.seen = 0

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units),
                                                name="recurrent_kernel")

    def call(self, inputs, states, training=False):
        self.seen += 1
        scale = 2.0 if self.seen % 2 else 1.0
        h = ops.tanh(ops.matmul(scale * inputs, self.kernel)
                     + ops.matmul(states[0], self.recurrent_kernel))
        return h, [h]
''')


def _compiles() -> bool:
    """Whether the backend traces calls and gradients (the contract's traced test runs)."""
    from pytest_rnn import backends

    return hasattr(backends.module(), "compiled_value_and_grad")


def test_python_state_in_call_fails_the_traced_contract(pytester: pytest.Pytester):
    if not _compiles():
        pytest.skip("the backend has no compiled path in pytest_rnn.backends (PyTorch): the "
                    "contract's traced test skips there, so it cannot catch Python state")
    pytester.makepyfile(test_python_state=PYTHON_STATE_CELL)
    outcomes = _outcomes(pytester.inline_run(
        "-p", "no:cacheprovider", "-k", "traced or output_shapes"))
    failed = {k for k, (o, _) in outcomes.items() if o == "failed"}
    assert failed == {"TestStepCountingCell::test_traced_call_matches_eager"}, outcomes
    text = outcomes["TestStepCountingCell::test_traced_call_matches_eager"][1]
    assert "computes something else than eagerly" in text, text
    # TensorFlow's trace shows it in the output; JAX's (jax.jit) in the gradients
    assert re.search(r"(output|dL/d \S+): \d+ of \d+ values differ .*traced .*eager", text), text


MGU_MODULE = '''
import keras
from keras import ops

from pytest_rnn import RecurrentLayerContract

UNITS, FEATURES = 8, 3


class MGUCell(keras.layers.Layer):
    """Minimal gated unit: f = sigmoid(x W_f + h U_f + b_f), c = tanh(x W_h + (f h) U_h + b_h),
    h' = (1 - f) h + f c; kernel [W_f | W_h], recurrent_kernel [U_f | U_h], bias [b_f | b_h]."""

    def __init__(self, units, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.units = self.state_size = self.output_size = units
        self.dropout = dropout
        self.seed_generator = keras.random.SeedGenerator(5)

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 2 * self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, 2 * self.units),
                                                name="recurrent_kernel")
        self.bias = self.add_weight(shape=(2 * self.units,), name="bias", initializer="zeros")

    def call(self, inputs, states, training=False):
        h, u = states[0], self.units
        if training and self.dropout:
            inputs = keras.random.dropout(inputs, self.dropout, seed=self.seed_generator)
        z = ops.matmul(inputs, self.kernel) + self.bias
        f = ops.sigmoid(z[:, :u] + ops.matmul(h, self.recurrent_kernel[:, :u]))
        cand = ops.tanh(z[:, u:] + ops.matmul(f * h, self.recurrent_kernel[:, u:]))
        new = (1 - f) * h + f * cand
        return new, [new]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "dropout": self.dropout}


class TestMGU(RecurrentLayerContract):
    units = UNITS
    input_dim = FEATURES
    supports_dropout = True
    param_count = FEATURES * 2 * UNITS + UNITS * 2 * UNITS + 2 * UNITS
    custom_objects = {"MGUCell": MGUCell}

    def make_layer(self, dropout=0.0, **options):
        return keras.layers.RNN(MGUCell(UNITS, dropout=dropout), **options)
'''

#: The MGU's candidate without its recurrent term: half of recurrent_kernel is never read,
#: yet the whole tensor gets a gradient (through the forget gate's half).
RECURRENCE_IGNORED = ("cand = ops.tanh(z[:, u:] + ops.matmul(f * h, self.recurrent_kernel[:, u:]))",
                      "cand = ops.tanh(z[:, u:])")
#: The MGU returning the state it was given, not the new one: each step starts from zeros.
OLD_STATE_RETURNED = ("return new, [new]", "return new, states")

DEAD_WEIGHTS_TEST = "test_every_weight_entry_influences_the_output"


def _mgu_module(*bugs: tuple[str, str]) -> str:
    """The correct MGU contract class and, with ``bugs``, a copy (cell and class renamed
    ``Buggy...``) with each ``(old, new)`` replacement made."""
    source = MGU_MODULE
    buggy = MGU_MODULE.split("UNITS, FEATURES = 8, 3", 1)[1]
    for old, new in bugs:
        assert old in buggy, old
        buggy = buggy.replace(old, new)
    buggy = buggy.replace("MGUCell", "BuggyMGUCell").replace("TestMGU", "TestBuggyMGU")
    return source + buggy if bugs else source


#: (module source, selection) -> (outcomes, warnings) of its run: tests below share runs
_RUNS: dict[tuple[str, str], tuple[dict, list]] = {}


def _mgu_run(pytester: pytest.Pytester, source: str,
             select: str = "Buggy and not backends_agree") -> tuple[dict, list]:
    """The contract tests ``select`` picks (``-k``; default: every one but the cross-backend
    test on the buggy class) and the dead-weight test on the correct class, with every
    DeprecationWarning recorded (``-W`` overrides the filters of the run around this one)."""
    key = (source, select)
    if key not in _RUNS:
        pytester.makepyfile(test_mgu=source)
        reprec = pytester.inline_run(
            "-p", "no:cacheprovider", "-W", "always::DeprecationWarning",
            "-k", f"({select}) or (TestMGU and {DEAD_WEIGHTS_TEST})")
        recorded = [call.warning_message for call in reprec.getcalls("pytest_warning_recorded")]
        _RUNS[key] = (_outcomes(reprec), recorded)
    return _RUNS[key]


def _failures(outcomes: dict) -> dict[str, str]:
    """test name -> the message of each failed test's AssertionError (without the source
    lines of the traceback, which quote the check's own strings)."""
    failures = {}
    for nodeid, (outcome, text) in outcomes.items():
        if outcome == "failed":
            start = list(re.finditer(r"^E +AssertionError: ", text, re.MULTILINE))[-1].start()
            lines = text[start:].splitlines()
            failures[nodeid.split("::")[1].split("[")[0]] = "\n".join(
                line[1:].strip() for line in lines if line.startswith("E "))
    return failures


def test_a_partly_ignored_recurrent_kernel_fails_the_dead_weight_contract_only(pytester):
    """The candidate that ignores its recurrent weights passes every other contract test
    (test_trainability sees a gradient on the whole recurrent kernel, through the forget
    gate's columns); the dead-weight test names the candidate's columns, 8:16."""
    outcomes, _ = _mgu_run(pytester, _mgu_module(RECURRENCE_IGNORED))
    assert len(outcomes) == 18, sorted(outcomes)  # 17 on the buggy class, 1 on the correct
    failed = _failures(outcomes)
    assert set(failed) == {DEAD_WEIGHTS_TEST}, outcomes
    assert outcomes[f"TestMGU::{DEAD_WEIGHTS_TEST}"][0] == "passed", outcomes
    assert {o for k, (o, _) in outcomes.items() if DEAD_WEIGHTS_TEST not in k} == (
        {"passed"} if _compiles() else {"passed", "skipped"}), outcomes
    text = failed[DEAD_WEIGHTS_TEST]
    assert re.search(r"/recurrent_kernel\[:, 8:16\] never influences the output", text), text
    assert re.search(r"exactly zero on each of 3 random batches", text), text
    for alive in ("/kernel", "/bias", "recurrent_kernel[:, 0:8]", "state 0 it returns"):
        assert alive not in text, f"{alive!r} named as dead:\n{text}"


def test_a_cell_returning_its_old_state_fails_on_its_dead_recurrent_kernel(pytester):
    """A cell that returns the state it was given: every step starts from the zero initial
    state, so the stateful halves agree (both start each step from zeros) and, on
    TensorFlow, so do masked and unpadded sequences (JAX's time loop carries a masked
    step's output through the state, and the masking test fails there too). The recurrent
    kernel multiplies only that zero state: test_trainability sees its whole-tensor
    gradient at zero, and the dead-weight test names it and says the returned state never
    changes. (Shapes and serialization pass too; the run is kept to the tests a state bug
    concerns.)"""
    from pytest_rnn import backends

    outcomes, _ = _mgu_run(pytester, _mgu_module(OLD_STATE_RETURNED), select=(
        "Buggy and (influences or trainability or stateful_halves or masking)"))
    assert len(outcomes) == 5, sorted(outcomes)
    failed = _failures(outcomes)
    caught = {DEAD_WEIGHTS_TEST, "test_trainability"}
    assert caught <= set(failed) <= caught | {"test_masking_equivalence"}, outcomes
    if backends.name() == "tensorflow":
        assert set(failed) == caught, outcomes
    text = failed[DEAD_WEIGHTS_TEST]
    assert re.search(r"/recurrent_kernel never influences the output \(none of its 128 "
                     r"entries", text), text
    assert re.search(r"state 0 it returns is the same after every batch of inputs \(all "
                     r"zeros\): does call\(\) return the previous state", text), text
    assert re.search(r"recurrent_kernel \(8, 16\): gradient is exactly zero",
                     failed["test_trainability"])


def test_a_contract_run_raises_no_deprecation_warning(pytester):
    """The contract calls Keras so that Keras raises no DeprecationWarning: it reads
    variables through ``np.asarray`` (``compare.to_numpy``, ``compare.weight_values``), and
    silences only the one NumPy 2 raises inside every ``model.save()``. Keras's other
    warnings are left to the user's filters."""
    _, recorded = _mgu_run(pytester, _mgu_module(RECURRENCE_IGNORED))
    deprecations = [f"{w.filename}:{w.lineno}: {w.message}" for w in recorded
                    if issubclass(w.category, DeprecationWarning)
                    and not _keras_torch_conversion_warning(w)]
    assert not deprecations, "\n".join(deprecations)


def _keras_torch_conversion_warning(w: warnings.WarningMessage) -> bool:
    """On PyTorch, Keras's own ``convert_to_numpy`` (``keras/src/backend/torch/core.py``)
    calls ``np.array(tensor)``, and NumPy 2 warns that PyTorch 2.13's ``Tensor.__array__``
    takes no ``copy``: inside ``predict``, ``fit``, ``get_weights``, ``save`` and
    ``np.asarray(variable)`` alike (measured: 2, 3, 6, 6 and 1 warnings each). No call the
    contract could make avoids it, so it is not the contract's deprecation to report."""
    return (str(Path("backend", "torch", "core.py")) in w.filename
            and "__array__ implementation doesn't accept a copy keyword" in str(w.message))


def test_the_deprecation_check_sees_what_keras_raises(pytester, monkeypatch):
    """The check above can fail: with variables read through ``keras.ops.convert_to_numpy``
    again (``np.array`` on a Keras Variable), the trainability test alone records Keras's
    DeprecationWarning (under NumPy 2; the pyproject filters that hide it here do not
    apply inside the run)."""
    import keras

    from pytest_rnn.checks import compare

    if int(np.__version__.split(".")[0]) < 2:
        pytest.skip(f"NumPy {np.__version__} does not pass copy= to __array__")
    monkeypatch.setattr(compare, "to_numpy", lambda v: v if isinstance(v, np.ndarray)
                        else np.asarray(keras.ops.convert_to_numpy(v)))
    outcomes, recorded = _mgu_run(pytester, _mgu_module(), select="TestMGU and trainability")
    assert outcomes["TestMGU::test_trainability"][0] == "passed", outcomes
    assert any(issubclass(w.category, DeprecationWarning) and "__array__" in str(w.message)
               for w in recorded), [str(w.message) for w in recorded]


@pytest.mark.parametrize(("dead", "line"), [
    (np.s_[:, 8:16], "k[:, 8:16] never influences the output"),
    (np.s_[:, [0, 1, 5]], "k[:, 0:2] and [:, 5] never influence the output"),
    (np.s_[2:4, :], "k[2:4, :] never influences the output"),
    (np.s_[:, :], "k never influences the output (none of its 64 entries, shape (4, 16))"),
    (np.s_[1, 3], "k: 1 of 64 entries never influence the output, at (1, 3)"),
])
def test_dead_entries_are_named_as_slices(dead, line):
    from pytest_rnn.checks.dead_weights import describe_dead

    mask = np.zeros((4, 16), dtype=bool)
    mask[dead] = True
    assert describe_dead("k", mask) == line
    assert describe_dead("b", np.arange(16) >= 12) == "b[12:16] never influences the output"
    conv = np.zeros((3, 3, 2, 4), dtype=bool)
    conv[..., 1:3] = True
    assert describe_dead("c", conv) == "c[..., 1:3] never influences the output"


def _masked_lstm():
    import keras

    return keras.Sequential([keras.layers.Masking(0.0),
                             keras.layers.LSTM(3, return_sequences=True, return_state=True)])


@pytest.mark.parametrize("make", [
    _masked_lstm,
    lambda: __import__("keras").layers.GRU(3, dropout=0.5, recurrent_dropout=0.5,
                                           return_sequences=True, return_state=True),
    lambda: __import__("keras").layers.GRU(3, reset_after=False, dropout=0.5,
                                           recurrent_dropout=0.5, return_sequences=True),
], ids=["masked_lstm", "gru_dropout_reset_after", "gru_dropout_reset_before"])
def test_no_dead_entries_in_keras_layers_with_masks_or_dropout(make, rnn_seed):
    """Variants the contract classes in suites/test_contract_keras_layers.py do not cover:
    inputs zero-padded under a Masking layer (samples 1 and 2 lose two steps), and dropout
    configured (the check calls with training=False, so no unit is dropped)."""
    from pytest_rnn.checks.dead_weights import assert_every_weight_entry_influences_output

    rng = np.random.default_rng(rnn_seed)
    batches = [rng.normal(size=(3, 4, 3)).astype("float32") for _ in range(3)]
    for x in batches:
        x[1, -2:] = x[2, :2] = 0.0
    assert_every_weight_entry_influences_output(make(), batches, rng, label="layer")


def test_unsupported_features_skip_and_say_which_declaration(pytester: pytest.Pytester):
    pytester.makepyfile(test_plain='''
import keras
from pytest_rnn import RecurrentLayerContract


class TestNoState(RecurrentLayerContract):
    units = 2
    supports_return_state = False

    def make_layer(self, **options):
        assert "return_state" not in options, options
        return keras.layers.SimpleRNN(2, **options)
''')
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-rs", "-k", "output_shapes or dropout or param_count"
    )
    result.assert_outcomes(passed=2, skipped=4)
    result.stdout.fnmatch_lines([
        "*declares supports_return_state = False, so test_output_shapes*",
        "*declares supports_dropout = False, so test_dropout_train_vs_inference does not apply*",
        "*TestNoState declares no param_count to check*",
    ])


def _contract_class(**attrs):
    return type("TestX", (RecurrentLayerContract,),
                {"units": 2, "make_layer": lambda self, **options: None, **attrs})


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"skip_contracts": {"test_stateful": "no"}}, "unknown contract test 'test_stateful'"),
        ({"skip_contracts": {"test_param_count": " "}}, "must state a reason"),
        ({"skip_contracts": ["test_param_count"]}, "skip_contracts must be a dict"),
        ({"units": 0}, "units must be a positive integer; got 0"),
        ({"batch": 2}, "batch must be >= 3"),
        ({"steps": 3}, "steps must be >= 4"),
        ({"state_sizes": (2, 0)}, "state_sizes must be a non-empty tuple of positive integers"),
        ({"param_count": -1}, "param_count must be a non-negative integer"),
        ({"supports_masking": "yes"}, "supports_masking must be True or False"),
        ({"dropout_rate": 1.0}, "dropout_rate must be a number in (0, 1)"),
        ({"input_shape_per_step": (4, 0, 2)}, "input_shape_per_step must be a non-empty tuple"),
        ({"output_shape_per_step": 3}, "output_shape_per_step must be a non-empty tuple"),
        ({"input_dim": 3, "input_shape_per_step": (4, 2)}, "input_dim or input_shape_per_step"),
        ({"state_shapes": ((4, 2), 3)}, "state_shapes must be a non-empty tuple of shapes"),
        ({"state_shapes": ((2,),), "state_sizes": (2,)}, "state_sizes or state_shapes, not both"),
    ],
)
def test_bad_declarations_fail_when_the_class_is_defined(attrs, message):
    with pytest.raises(TypeError, match="contract class TestX: .*" + _escape(message)):
        _contract_class(**attrs)


MISSING_DECLARATION_MODULE = """
import keras
from pytest_rnn import RecurrentLayerContract


class SharedBase(RecurrentLayerContract):  # not collected: may leave both to subclasses
    input_dim = 3


class TestNoUnits(SharedBase):
    def make_layer(self, **options):
        return keras.layers.GRU(4, **options)


class TestNoFactory(RecurrentLayerContract):
    units = 4
"""


@pytest.mark.parametrize(("remove", "message"), [
    ("class TestNoFactory", "contract class TestNoUnits: units is missing; declare units = "),
    ("class TestNoUnits", "contract class TestNoFactory: make_layer is missing; define "
                          "make_layer(self, **options) returning a new layer"),
])
def test_missing_units_or_make_layer_is_one_error_at_import(pytester, remove, message):
    """One collection error naming the class and the declaration, not one per contract test."""
    source = MISSING_DECLARATION_MODULE
    cut = source.index(remove)
    end = source.find("\n\n\nclass", cut)
    source = source[:cut] + (source[end + 3:] if end != -1 else "")
    pytester.makepyfile(test_mine=source)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--no-header")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ERROR collecting test_mine.py*", f"E   TypeError: {message}*"])
    assert "setup" not in result.stdout.str()


def test_an_abstract_base_named_test_may_leave_declarations_to_subclasses():
    base = type("TestBase", (RecurrentLayerContract,), {}, abstract=True)
    concrete = type("TestConcrete", (base,), {"units": 2, "make_layer": lambda self, **o: None})
    assert concrete.units == 2


def _escape(text: str) -> str:
    import re

    return re.escape(text)


def test_every_contract_test_is_named_in_the_registry():
    defined = {name for name in dir(RecurrentLayerContract) if name.startswith("test_")}
    assert defined == set(CONTRACT_TESTS)
    check_declarations(_contract_class(skip_contracts={n: "ok" for n in CONTRACT_TESTS}))


def test_readme_contract_table_lists_every_contract_test():
    """README's table under "The layer contract" has one row per test the class runs (the
    issue it answers: the table listed 10 of 11), each with a cost and a way to turn it off."""
    from pathlib import Path

    section = (Path(__file__).resolve().parents[1] / "docs" / "reference" / "layer-contract.md"
               ).read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(test_\w+)(?:\[\.\.\.\])?` \|(.*)\|$", section, re.MULTILINE)
    assert sorted(name for name, _ in rows) == sorted(CONTRACT_TESTS)
    for name, cells in rows:
        assert len(cells.split(" | ")) == 3 and " s" in cells, f"{name}: {cells}"


def test_contract_tests_run_in_full_float32_also_when_a_subclass_has_its_own_marks(pytester):
    """Contract comparisons use float32 tolerances: every contract test gets ``rnn_float32``
    (TF32 off on GPU hosts), inherited even by a subclass that sets its own ``pytestmark``."""
    pytester.makepyfile(test_marked='''
        import keras
        import pytest
        from pytest_rnn import backends

        from pytest_rnn import RecurrentLayerContract


        class TestMarkedGRU(RecurrentLayerContract):
            pytestmark = [pytest.mark.slow]
            units = 2

            def make_layer(self, **kwargs):
                return keras.layers.GRU(self.units, **kwargs)

            def test_tf32_is_off_here(self):
                assert backends.full_float32_enabled()


        def test_tf32_is_back_on_after():
            assert not backends.full_float32_enabled()
    ''')
    items, _ = pytester.inline_genitems("-p", "no:cacheprovider")
    contract_items = [i for i in items if i.cls is not None]
    assert contract_items and all("rnn_float32" in i.fixturenames for i in contract_items)
    assert all(i.get_closest_marker("slow") for i in contract_items)
    reprec = pytester.inline_run("-p", "no:cacheprovider", "-k", "tf32")
    reprec.assertoutcome(passed=2)


BACKEND_DEPENDENT = '''
import keras
from keras import ops

from pytest_rnn import RecurrentLayerContract


class DriftingCell(keras.layers.Layer):
    """A SimpleRNN cell that, on JAX only, scales its state by 1.01: a backend-dependent bug."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.recurrent = self.add_weight(shape=(self.units, self.units), name="recurrent")

    def call(self, inputs, states):
        h = ops.tanh(ops.matmul(inputs, self.kernel) + ops.matmul(states[0], self.recurrent))
        if keras.backend.backend() == "jax":
            h = h * 1.01
        return h, [h]


class TestDrifting(RecurrentLayerContract):
    units = 3

    def make_layer(self, **options):
        return keras.layers.RNN(DriftingCell(3), **options)


class TestFaithful(RecurrentLayerContract):
    units = 3

    def make_layer(self, **options):
        return keras.layers.SimpleRNN(3, **options)
'''


@pytest.mark.cross_backend  # one subprocess per backend, as the contract test it proves
def test_a_backend_dependent_layer_fails_the_cross_backend_contract_naming_the_pair(
        pytester: pytest.Pytester):
    from pytest_rnn.checks.cross_backend import installed_backends

    if not {"tensorflow", "jax"} <= set(installed_backends()):
        pytest.skip("needs the tensorflow and the jax backend installed")
    pytester.makepyfile(test_drifting=BACKEND_DEPENDENT)
    outcomes = _outcomes(pytester.inline_run("-p", "no:cacheprovider", "-k", "backends_agree"))
    assert {k: v[0] for k, v in outcomes.items()} == {
        "TestDrifting::test_backends_agree": "failed",
        "TestFaithful::test_backends_agree": "passed"}, outcomes
    text = outcomes["TestDrifting::test_backends_agree"][1]
    assert "computes different values on different Keras backends" in text, text
    assert re.search(r"jax vs tensorflow: \S+TestDrifting output: \d+ of \d+ values differ "
                     r".*worst at batch \d+, step \d+, unit \d+: jax \S+, tensorflow", text), text


def test_a_class_not_importable_by_path_skips_the_cross_backend_test(pytester):
    from pytest_rnn.checks.cross_backend import installed_backends

    if len(installed_backends()) < 2:
        pytest.skip("with one backend installed the test skips for that reason first")
    pytester.makepyfile(test_local='''
import keras
from pytest_rnn import RecurrentLayerContract


def make():
    class TestLocal(RecurrentLayerContract):
        units = 2

        def make_layer(self, **options):
            return keras.layers.SimpleRNN(2, **options)
    return TestLocal


TestLocal = make()
''')
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs", "-k", "backends_agree")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*cannot be imported by path in a fresh process*"])
