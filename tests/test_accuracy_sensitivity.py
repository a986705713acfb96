"""The toy-task accuracy suite notices when recurrent layers stop learning through time.

A baseline that a broken model still meets protects nothing. The two
:data:`~regressions.catalogue.TRAINING_REGRESSIONS` are injected the way every catalogue
entry is (:func:`regressions.patches.injected`, run by :mod:`regressions.runner` in a
fresh process with GPUs hidden, so cuDNN cannot bypass the patched cells), and the judge
(:mod:`regressions.judge`) requires each named toy test to fail on its threshold assertion,
not on an error or a missing baseline:

* ``gradients_cut_through_time``: every cell (SimpleRNNCell, LSTMCell, GRUCell) applies
  ``stop_gradient`` to its incoming state; the forward pass is unchanged, but training only
  sees one step back. Every toy test but parity must fail, the calibrated ones on their
  band (the error check, whose band may not admit chance, or the learning time's).
* ``cells_carry_no_state``: every cell gets a zero state, i.e. carries nothing from one
  step to the next. Parity must fail, and so must GRU's floor on 20-step ``adding`` (20x
  better than chance), which one-step gradients still reach.

Parity is the exception to the first, and a measured one: one-step gradients learn it too
(with cut gradients GRU(8) solved 6-bit parity for 3 of 4 seeds and the solution carried
over to 20-bit sequences: the state it needs is exactly what it is trained to output).

The :data:`~regressions.catalogue.MILD_TRAINING_REGRESSIONS` (state gradients damped by
half per step, Adam's learning rate silently halved or quartered, LSTM's forget-gate bias
starting at 0) are the power-checked IMDB tests' injected regressions: the two without a
known gap must fail them on their calibrated band here; README, "Baselines", gives the
detection rates of all four measured over several base seeds
(``tests/regressions/measure_power.py``).

No control run here: that the toy tests pass unpatched is the slow suite's own run, and
training everything twice more would double the cost. The training runs are slow; the
check that each patch reaches the cells (one layer call in-process) is not.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from regressions.catalogue import (
    BY_ID,
    MILD_TRAINING_REGRESSIONS,
    SLOWED_TRAINING_REGRESSIONS,
    TRAINING_REGRESSIONS,
)
from regressions.judge import problems
from regressions.patches import injected
from regressions.runner import HIDDEN_GPUS, ROOT, command
from subprocess_runs import clean_env

from pytest_rnn.checks.compare import to_numpy

CELLS = ("SimpleRNNCell", "LSTMCell", "GRUCell")


def run_sabotaged(regression_id: str, workdir: Path) -> dict:
    """Run the toy tests of ``regression_id`` under its patch; the runner's outcomes."""
    out = workdir / "outcomes.json"
    env = clean_env(**HIDDEN_GPUS)
    for name in ("PYTEST_RNN_BASELINES", "PYTEST_RNN_SEED"):  # the stored baselines, seeds
        env.pop(name, None)
    proc = subprocess.run(command(out, [regression_id], control=False), cwd=ROOT, env=env,
                          text=True, capture_output=True, timeout=1800)
    assert proc.returncode == 0 and out.is_file(), (
        f"the runner failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n"
        f"{proc.stderr[-3000:]}"
    )
    return json.loads(out.read_text())


def assert_caught(regression_id: str, outcomes: dict, cells: tuple[str, ...]) -> None:
    calls = outcomes["groups"][regression_id].get("calls", {})
    unexercised = [c for c in cells if not calls.get(f"{c}.call")]
    assert not unexercised, f"the patch never ran in these cells: {unexercised} ({calls})"
    found = problems(BY_ID[regression_id], outcomes["groups"], control=False)
    assert not found, "the toy thresholds do not catch it:\n  " + "\n  ".join(found)


@pytest.mark.slow
def test_cutting_gradients_through_time_fails_the_toy_thresholds(tmp_path):
    outcomes = run_sabotaged("gradients_cut_through_time", tmp_path)
    assert_caught("gradients_cut_through_time", outcomes, CELLS)


@pytest.mark.slow
def test_a_layer_without_memory_fails_parity_and_the_adding_floor(tmp_path):
    outcomes = run_sabotaged("cells_carry_no_state", tmp_path)
    assert_caught("cells_carry_no_state", outcomes, ("GRUCell",))


@pytest.mark.slow
def test_learning_twice_as_slowly_fails_the_toy_learning_time_checks(tmp_path):
    """``epochs_see_half_the_batches``: each epoch makes half the updates, so a run needs
    twice the epochs; the named toy checks fail on their learning time's calibrated band."""
    regression, = SLOWED_TRAINING_REGRESSIONS
    outcomes = run_sabotaged(regression.id, tmp_path)
    calls = outcomes["groups"][regression.id].get("calls", {})
    assert calls.get("Model.fit"), f"the patch never ran: {calls}"
    found = problems(regression, outcomes["groups"], control=False)
    assert not found, "the toy learning-time checks do not catch it:\n  " + "\n  ".join(found)


def test_the_slowed_training_patch_halves_the_updates_of_an_epoch_and_undoes_cleanly():
    import keras

    regression, = SLOWED_TRAINING_REGRESSIONS
    x = np.zeros((64, 3, 2), "float32")
    y = np.zeros((64, 1), "float32")

    def updates() -> int:
        model = keras.Sequential([keras.Input((3, 2)), keras.layers.SimpleRNN(2),
                                  keras.layers.Dense(1)])
        model.compile("sgd", "mse")
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        return int(keras.ops.convert_to_numpy(model.optimizer.iterations))

    with injected(regression.apply) as tally:
        halved = updates()
        calls = tally.snapshot()
    assert calls.get("Model.fit") and (halved, updates()) == (8, 16)


@pytest.mark.parametrize("regression", TRAINING_REGRESSIONS, ids=lambda r: r.id)
def test_the_training_patches_reach_every_cell_and_undo_cleanly(regression):
    """One call of each layer kind under the patch: the patched cell code runs, the
    patch changes what it should (gradients through time, or the output), and undoing
    it restores the layer."""
    import keras

    from pytest_rnn.checks.models import keras_own_loop

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 3)).astype("float32")
    layers = {  # no cuDNN: on a GPU host its kernel would bypass the patched cells
        "SimpleRNNCell": keras.layers.SimpleRNN(5),
        "LSTMCell": keras.layers.LSTM(5, **keras_own_loop()),
        "GRUCell": keras.layers.GRU(5, **keras_own_loop()),
    }
    for layer in layers.values():
        layer.build(x.shape)
    clean = {name: to_numpy(layer(x)) for name, layer in layers.items()}
    with injected(regression.apply) as tally:
        patched = {name: to_numpy(layer(x)) for name, layer in layers.items()}
        calls = tally.snapshot()
    after = {name: to_numpy(layer(x)) for name, layer in layers.items()}
    assert all(calls.get(f"{c}.call") for c in CELLS), f"cells not reached: {calls}"
    for name in CELLS:
        np.testing.assert_array_equal(after[name], clean[name],
                                      err_msg=f"{name}: the patch was not undone")
        changed = not np.allclose(patched[name], clean[name], atol=1e-6)
        # stop_gradient leaves the forward pass alone; a zero state changes it
        assert changed == (regression.id == "cells_carry_no_state"), (
            f"{regression.id}: {name} output {'changed' if changed else 'unchanged'}"
        )


def test_the_mild_training_patches_change_what_they_say_and_undo_cleanly():
    """Damped state gradients leave every cell's forward pass alone (and reach every
    cell) and scale the gradient of the last output with respect to the first input by
    exactly (1/2)^3 over 4 steps (every path crosses 3 state transitions), while the last
    step's own gradient is unchanged; the halved (quartered) learning rate halves (quarters)
    what Adam is given; the forget-bias default starts LSTM's forget gate at 0 instead of 1.
    All undo cleanly."""
    import keras

    from pytest_rnn import backends
    from pytest_rnn.checks.models import keras_own_loop

    patches = {r.id: r for r in MILD_TRAINING_REGRESSIONS}
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 3)).astype("float32")
    layers = {"SimpleRNNCell": keras.layers.SimpleRNN(5),
              "LSTMCell": keras.layers.LSTM(5, **keras_own_loop()),
              "GRUCell": keras.layers.GRU(5, **keras_own_loop())}
    for layer in layers.values():
        layer.build(x.shape)
    def input_gradients(layer):
        loss = lambda inputs: keras.ops.sum(layer(inputs))  # noqa: E731
        return backends.value_and_grad(loss, [], [x])[2][0]

    clean = {name: to_numpy(layer(x)) for name, layer in layers.items()}
    clean_grad = {name: input_gradients(layer) for name, layer in layers.items()}
    with injected(patches["gradients_damped_through_time"].apply) as tally:
        damped = {name: to_numpy(layer(x)) for name, layer in layers.items()}
        damped_grad = {name: input_gradients(layer) for name, layer in layers.items()}
        calls = tally.snapshot()
    assert all(calls.get(f"{c}.call") for c in CELLS), f"cells not reached: {calls}"
    for name in CELLS:
        np.testing.assert_allclose(damped[name], clean[name], rtol=1e-6, atol=1e-7,
                                   err_msg=f"{name}: damping changed the forward pass")
        np.testing.assert_allclose(damped_grad[name][:, 0], clean_grad[name][:, 0] / 8,
                                   rtol=1e-4, atol=1e-8,
                                   err_msg=f"{name}: first step's gradient not damped by 1/8")
        np.testing.assert_allclose(damped_grad[name][:, -1], clean_grad[name][:, -1],
                                   rtol=1e-5, atol=1e-8,
                                   err_msg=f"{name}: last step's own gradient changed")

    with injected(patches["learning_rate_halved"].apply):
        halved = float(keras.ops.convert_to_numpy(keras.optimizers.Adam(2e-3).learning_rate))
    assert halved == pytest.approx(1e-3)
    with injected(patches["learning_rate_quartered"].apply):
        quartered = keras.optimizers.Adam(2e-3).learning_rate
        assert float(keras.ops.convert_to_numpy(quartered)) == pytest.approx(5e-4)
    restored = keras.optimizers.Adam(2e-3).learning_rate
    assert float(keras.ops.convert_to_numpy(restored)) == pytest.approx(2e-3)

    def forget_bias() -> np.ndarray:
        lstm = keras.layers.LSTM(5)
        lstm.build((2, 4, 3))
        return np.asarray(lstm.cell.bias)[5:10]

    with injected(patches["lstm_forget_bias_zero"].apply):
        np.testing.assert_array_equal(forget_bias(), np.zeros(5))
    np.testing.assert_array_equal(forget_bias(), np.ones(5))


#: A mild regression with a ``gap`` (Adam's learning rate halved or quartered) is caught
#: with less than the 90% power the checks are sized for; retraining it here could not fail
#: reliably either way. It is a strict xfail of tests/test_known_gaps.py instead, which
#: judges its measured runs by the suite's checks and turns red when the gap closes.
CAUGHT_MILD = [r for r in MILD_TRAINING_REGRESSIONS if not r.gap]


@pytest.mark.slow
@pytest.mark.parametrize("regression", CAUGHT_MILD, ids=[r.id for r in CAUGHT_MILD])
def test_the_calibrated_imdb_checks_catch_a_mild_training_regression(regression, tmp_path):
    """The power-checked IMDB tests (K seeded runs against 20 calibration seeds, 1% false
    alarms per check) fail on their band for each mild regression. One base seed per
    run; the detection rates over several base seeds are in README, "Baselines"."""
    outcomes = run_sabotaged(regression.id, tmp_path)
    found = problems(regression, outcomes["groups"], control=False)
    assert not found, "the calibrated IMDB checks do not catch it:\n  " + "\n  ".join(found)
