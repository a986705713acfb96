"""The slow suites' training routine and toy-task model builder, checked on tiny inputs.

One real ``fit`` of a 2-unit GRU for 3 epochs (~1 s, most of it tracing) pins down
what the accuracy baselines rely on: epoch 0 is the untrained model, early stopping
restores the best epoch's weights, and the history is valid JSON for the records.
"""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest
from pytest_rnn.models import task_model
from pytest_rnn.tasks import make_task
from pytest_rnn.training import (
    TrainingRun,
    epochs_to_fraction,
    fit,
    improvement,
    mean_epoch_of_gain,
    stretched,
)

from pytest_rnn.checks import compare


@pytest.fixture(scope="module")
def tiny_run():
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(32, 4, 2)).astype("float32")
    y = (x[:, 0, :1] > 0).astype("float32")
    model = keras.Sequential([keras.Input((4, 2)), keras.layers.GRU(2), keras.layers.Dense(1)])
    model.compile(loss="mse")
    untrained = model.evaluate(x[24:], y[24:], verbose=0)
    run = fit(model, x[:24], y[:24], validation=(x[24:], y[24:]), loss="mse",
              learning_rate=0.05, epochs=3, batch_size=8, patience=3, cosine_decay=True)
    final = model.evaluate(x[24:], y[24:], verbose=0)
    return run, untrained, final, model


def test_epoch_zero_is_the_untrained_model(tiny_run):
    run, untrained, _, _ = tiny_run
    assert run.epochs == 3
    assert len(run.curve("val_loss")) == len(run.curve("loss")) == 4
    assert math.isclose(run.curve("val_loss")[0], untrained, rel_tol=1e-5)
    assert run.curve("loss")[0] is None, "there is no training loss before the first epoch"
    json.dumps(run.history, allow_nan=False)  # records must stay valid JSON


def test_model_holds_the_best_epochs_weights(tiny_run):
    run, _, final, _ = tiny_run
    val_loss = run.curve("val_loss")
    assert run.best_epoch == 1 + int(np.argmin(val_loss[1:]))
    assert math.isclose(final, val_loss[run.best_epoch], rel_tol=1e-4), (val_loss, final)


def test_unknown_curve_names_the_ones_there(tiny_run):
    with pytest.raises(KeyError, match=r"no metric 'val_accuracy'.*\['loss', 'val_loss'\]"):
        tiny_run[0].curve("val_accuracy")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"epochs": 0}, "epochs must be a positive integer; got 0"),
    ({"batch_size": 2.5}, "batch_size must be a positive integer; got 2.5"),
    ({"patience": -1}, "patience must be an integer >= 0; got -1"),
    ({"learning_rate": 0}, "learning_rate must be a positive number; got 0"),
])
def test_bad_training_settings_are_named(kwargs, message):
    settings = {"loss": "mse", "learning_rate": 0.01, "epochs": 1, "batch_size": 2,
                "patience": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        fit(None, None, None, validation=(None, None), **settings)


@pytest.mark.parametrize(("curve", "higher", "expected"), [
    ([0.5, 0.6, 0.55, 0.7], True, 0.1),     # best of the first 2 epochs
    ([0.7, 0.5, 0.4, 0.3], False, 0.3),
    ([0.5, 0.4, 0.45, 0.9], True, -0.05),   # got worse
    ([0.5, None, 0.6], True, math.nan),
])
def test_improvement_over_the_first_epochs(curve, higher, expected):
    got = improvement(curve, within=2, higher_is_better=higher)
    assert (math.isnan(got) and math.isnan(expected)) or math.isclose(got, expected)


def test_task_model_heads():
    copy = make_task("copy_memory", n=4, steps=9, seed=0)
    per_step = task_model("gru", copy, units=3, layers=2)
    assert per_step.output_shape == (None, 9, copy.output_units)
    assert per_step.layers[-1].activation.__name__ == "softmax"
    adding = make_task("adding", n=4, steps=6, seed=0)
    scalar = task_model("lstm", adding, units=3)
    assert scalar.output_shape == (None, 1)
    assert [type(layer).__name__ for layer in scalar.layers] == ["LSTM", "Dense"]
    with pytest.raises(ValueError, match="units must be a positive integer"):
        task_model("gru", adding, units=0)


def test_training_run_is_plain_data():
    run = TrainingRun(history={"val_loss": [1.0, 0.5]}, epochs=1, best_epoch=1, seconds=0.1)
    assert run.curve("val_loss") == [1.0, 0.5]


def test_epochs_to_fraction_counts_to_90_percent_of_the_runs_own_gain():
    # accuracy 0.5 -> best 0.9: 90% of the gain is 0.86, first reached at epoch 3
    assert epochs_to_fraction([0.5, 0.6, 0.8, 0.87, 0.9], 0.9, higher_is_better=True) == 3
    # a loss: 1.0 -> best 0.1, target 0.19, reached at epoch 2
    assert epochs_to_fraction([1.0, 0.5, 0.15, 0.1], 0.9, higher_is_better=False) == 2
    # never better than the untrained model (a layer without memory), or not finite:
    # it never got there, one epoch more than it ran
    assert epochs_to_fraction([0.7, 0.9, 0.8], 0.9, higher_is_better=False) == 3
    assert epochs_to_fraction([0.7, float("nan")], 0.9, higher_is_better=False) == 2


def test_mean_epoch_of_gain_is_the_area_above_the_normalised_curve():
    # 0.5 -> best 0.9: the target (90% of the gain) is 0.86. The share still to come is
    # 1, 0.72, 0.17, 0, 0 (0.6 is 0.1 of 0.36 gained): trapezoids 0.86 + 0.44 + 0.08
    assert mean_epoch_of_gain([0.5, 0.6, 0.8, 0.87, 0.9], 0.9, higher_is_better=True) == \
        pytest.approx((1 + 2 * (1 - 0.1 / 0.36) + 2 * (1 - 0.3 / 0.36)) / 2)
    # all of it in the first epoch (a later dip is not counted again); a straight line
    # to the target at epoch 4 (best 0.5, 80% of the gain: 0.4)
    assert mean_epoch_of_gain([0.5, 0.9, 0.8], 0.9, higher_is_better=True) == 0.5
    line = [0.1 * e for e in range(6)]
    assert mean_epoch_of_gain(line, 0.8, higher_is_better=True) == pytest.approx(2.0)
    # a loss curve and its mirror image score alike
    assert mean_epoch_of_gain([1.0, 0.5, 0.15, 0.1], 0.9, higher_is_better=False) == \
        pytest.approx(mean_epoch_of_gain([0.0, 0.5, 0.85, 0.9], 0.9, higher_is_better=True))
    # never better than epoch 0, or not finite: one epoch more than it ran
    assert mean_epoch_of_gain([0.7, 0.9, 0.8], 0.9, higher_is_better=False) == 3
    assert mean_epoch_of_gain([0.7, None], 0.9, higher_is_better=True) == 2
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\]"):
        mean_epoch_of_gain([0.5, 0.9], 1.5, higher_is_better=True)
    with pytest.raises(ValueError, match="need epoch 0 and at least one epoch"):
        epochs_to_fraction([0.5], 0.9, higher_is_better=True)


def test_mean_epoch_of_gain_doubles_when_the_curve_is_stretched_over_twice_the_epochs():
    """What the stacked LSTM's convergence check is sized for (a doubling): a curve
    learned twice as slowly, interpolated at the new epochs, scores twice as much."""
    curve = [0.45, 0.64, 0.70, 0.72, 0.73, 0.74, 0.756, 0.773, 0.764]
    assert stretched(curve)[:5] == pytest.approx([0.45, 0.545, 0.64, 0.67, 0.70])
    assert stretched(curve, 1) == curve and len(stretched(curve, 3)) == 25
    with pytest.raises(ValueError, match="factor must be a positive integer"):
        stretched(curve, 0)
    area = mean_epoch_of_gain(curve, 0.9, higher_is_better=True)
    assert mean_epoch_of_gain(stretched(curve), 0.9, higher_is_better=True) == \
        pytest.approx(2 * area, rel=0.01)


def test_the_mean_epoch_counted_from_chance_ignores_the_fall_to_the_targets_mean():
    # epoch 1 learns the mean (a loss of 1.2 falls to chance 0.17); the sequence is
    # learned between epochs 4 and 6
    curve = [1.2, 0.17, 0.17, 0.16, 0.05, 0.01, 0.01]
    from_untrained = mean_epoch_of_gain(curve, 0.9, higher_is_better=False)
    from_chance = mean_epoch_of_gain(curve, 0.9, higher_is_better=False, start=0.17)
    assert from_untrained < 1.0 < 3.0 < from_chance < 4.0
    # twice as slow is twice the mean epoch (within the half epoch the untrained model's
    # interpolated fall reaches below chance)
    assert mean_epoch_of_gain(stretched(curve), 0.9, higher_is_better=False,
                              start=0.17) == pytest.approx(2 * from_chance, rel=0.02)
    # a run that never beats chance counts one epoch more than it ran
    flat = [1.2, 0.2, 0.18, 0.17]
    assert mean_epoch_of_gain(flat, 0.9, higher_is_better=False, start=0.17) == 4.0


def test_cosine_decay_anneals_the_learning_rate_to_zero_over_the_budget(tiny_run):
    *_, model = tiny_run  # trained with cosine_decay=True for its whole budget
    rate = model.optimizer.learning_rate
    assert float(compare.to_numpy(rate)) == pytest.approx(0.0, abs=1e-9)
