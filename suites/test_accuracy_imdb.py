"""The seeds' IMDB models still learn sentiment as well as they did (slow: trains for real).

A Keras upgrade can keep every shape and parameter count and still break training
(an initialiser, a gate, gradients through time). Each model here is trained the
same way (:func:`pytest_rnn.training.fit`) on the same reviews (seeded by
``rnn_seed``) and its test accuracy is compared with the stored baseline in
``baselines/test_accuracy_imdb.json``.

Data: the seeds' setup (``num_words=500``, ``maxlen=100``) on the offline subset:
4,000 training and 1,000 validation reviews (all but none of its 5,000), all 1,000
test reviews. The seeds report ~0.80 for LSTM(8)/GRU(8) after 100 RMSprop(1e-4)
epochs on 20,000 reviews; on 4,000 reviews Adam(2e-3) reaches its best validation
accuracy within 5-11 epochs, so 15 epochs with early stopping on validation accuracy
(patience 4, best weights restored) is the whole budget. Early stopping watches
accuracy, not loss: SimpleRNN's validation loss rises while its accuracy still climbs,
and patience 2 stopped GRU at a dip (0.69 test accuracy instead of 0.77).

Every model is *power-checked*: each check trains ``K[model]`` seeds derived from
``--rnn-seed`` (never the calibration seeds) and compares the mean of their test
accuracies, and the geometric mean of how many epochs they took to make 90% of each
run's own validation gain (:data:`CONVERGENCE`), with the distribution of
``--rnn-calibrate 20`` runs stored in ``baselines/test_accuracy_imdb.json``
(:meth:`Baselines.check_sample`: a one-sided t-test at a 1% false-alarm rate per check,
or for SimpleRNN's long-tailed accuracy an exact rank test among the stored runs; see
README, "Baselines"). ``K[model]`` is the fewest runs that catch a drop of 0.03 and a
doubling of the epochs with 90% power (LSTM, stacked and bidirectional LSTM 4, GRU 5,
SimpleRNN 8); see :data:`K`. Recalibrate with (SimpleRNN was calibrated on 40 seeds,
``-k simple_rnn --rnn-calibrate 40``)::

    pytest -m slow --rnn-calibrate 20 "suites/test_accuracy_imdb.py::\
test_imdb_accuracy_and_convergence_match_calibration"
"""

from __future__ import annotations

import keras
import pytest
from pytest_rnn.models import imdb_classifier
from pytest_rnn.training import epochs_to_fraction, fit, improvement, mean_epoch_of_gain

pytestmark = pytest.mark.slow

DATA = {"num_words": 500, "maxlen": 100, "n_train": 4000, "n_val": 1000, "n_test": 1000}
TRAINING = {"learning_rate": 2e-3, "epochs": 15, "batch_size": 64, "patience": 4,
            "monitor": "val_accuracy"}

#: The accuracy of a model that ignores the review: the subsets are label-balanced. No
#: band may admit it, nor a convergence past the epoch budget (Baselines.check_sample).
CHANCE_ACCURACY = 0.5

#: A run is learning when its best validation accuracy beats the untrained model's by
#: MIN_GAIN; a curve that never does means the model is not learning (the test fails).
MIN_GAIN = 0.05
#: A SimpleRNN run that gains less than MIN_LEARNED_GAIN is retried (ATTEMPTS): learned
#: runs end far above it (every calibrated and held-out run reached a test accuracy
#: >= 0.6 from an untrained ~0.5), runs that never started gain <= 0.06: a held-out run
#: went 0.503 -> 0.555 at epoch 1 and stayed at 0.53-0.55 until early stopping ended it at
#: epoch 5 (test accuracy 0.516, alone a false alarm for the mean of 7). Both gains are
#: over the whole run, not the first epochs: the earlier rule (0.05 within 5 epochs)
#: accepted that run on its noise bump and rejected a slow starter (0.533 -> 0.561, then
#: 0.581 at epoch 5 and 0.722 at epoch 8) three attempts in a row. A model that learns
#: only a little (GRU with damped gradients through time: 0.552 -> 0.627) is not retried
#: or failed here: its accuracy band fails it, naming the drop.
MIN_LEARNED_GAIN = 0.1

#: Runs per power check, the fewest that meet both targets (a drop of 0.03 in mean test
#: accuracy and a doubling of epochs-to-90%, each caught with 90% power at 1% false
#: alarms; pytest_rnn.store.stats.detectable_shift on the stored calibration). SimpleRNN's
#: accuracy has a long lower tail, so it is ranked among the stored values
#: (ACCURACY_METHOD) rather than t-tested. What each k detects, measured, is README's power
#: table ("Baselines"); where a target is out of the slow suite's time, README says so.
K = {"lstm": 4, "gru": 5, "simple_rnn": 8, "stacked_lstm": 4, "bidirectional_lstm": 4}
#: How each model's test accuracy sample is compared with its calibration (a t-test of
#: the mean unless named here; Baselines.check_sample, README "Baselines").
ACCURACY_METHOD = {"simple_rnn": "rank"}
#: Convergence: the epoch at which validation accuracy first reaches this fraction of the
#: run's own gain over the untrained model (its best epoch being 100%).
CONVERGED_FRACTION = 0.9
#: How each model's convergence is counted (CONVERGENCE_MEASURES): the first epoch at
#: CONVERGED_FRACTION of the gain (``epochs_to_90pct_gain``) unless named here. The
#: stacked LSTM (dropout 0.3) gains its last points slowly and unevenly, so where its
#: first crossing lands scatters widely between seeds (epochs 2-12, log2 sd 0.66 over its
#: 20 calibration runs): it is measured by the mean epoch of the gain up to that fraction
#: (``mean_epoch_of_90pct_gain``, :func:`~pytest_rnn.training.mean_epoch_of_gain`, the
#: area above the normalised curve), which doubles as well when training takes twice the
#: epochs and scatters less (log2 sd 0.47 over 20 runs of the same seeds).
CONVERGENCE = {"stacked_lstm": "mean_epoch"}
MODELS = {
    "simple_rnn": lambda: imdb_classifier("simple_rnn", units=32),
    "lstm": lambda: imdb_classifier("lstm"),
    "gru": lambda: imdb_classifier("gru"),
    "stacked_lstm": lambda: imdb_classifier("lstm", layers=2, dropout=0.3),
    "bidirectional_lstm": lambda: imdb_classifier("lstm", bidirectional=True),
}

#: SimpleRNN(8) at Adam(2e-3) stayed at chance for 2 of 4 seeds; SimpleRNN(32), the
#: seeds' width for SimpleRNN, at Adam(1e-3) with clipped gradients learned for every seed.
TRAINING_OVERRIDES = {
    "simple_rnn": {"learning_rate": 1e-3, "clipnorm": 1.0},
}


#: SimpleRNN(32) sometimes does not start learning: 1 of the ~18 calibration seeds that
#: ran before it stopped the first calibration stayed flat (0.51 -> 0.51), and 1 of 21
#: held-out seeds learned nothing after a noise bump (MIN_LEARNED_GAIN). As for parity's
#: plateau (suites/test_accuracy_toy.py), such a run is followed by one with the next seed,
#: up to ATTEMPTS in all: a working layer fails every attempt with probability
#: ~(1/20)^3 < 0.02% per run.
ATTEMPTS = {"simple_rnn": 3}


def train(name: str, imdb_subset, rnn_record, seed: int):
    """One seeded run of model ``name`` (data and weights from ``seed``; see
    :data:`ATTEMPTS`): (test accuracy, validation accuracy curve)."""
    attempts = ATTEMPTS.get(name, 1)
    for attempt in range(attempts):
        run_seed = seed + attempt
        keras.utils.set_random_seed(run_seed)
        data = imdb_subset(**DATA, seed=run_seed)
        model = MODELS[name]()
        training = {**TRAINING, **TRAINING_OVERRIDES.get(name, {})}
        run = fit(model, data.x_train, data.y_train, validation=(data.x_val, data.y_val),
                  loss="binary_crossentropy", metrics=("accuracy",), **training)
        rnn_record("curve", f"{name}-seed{run_seed}", history=run.history,
                   epochs=list(range(run.epochs + 1)), best_epoch=run.best_epoch,
                   seconds=round(run.seconds, 1), attempt=attempt + 1)
        val_accuracy = run.curve("val_accuracy")
        learned = improvement(val_accuracy, within=len(val_accuracy) - 1,
                              higher_is_better=True)
        if learned >= MIN_LEARNED_GAIN:
            break
    assert learned >= MIN_GAIN, (
        f"{name}: validation accuracy did not improve: "
        f"{[round(v, 3) for v in val_accuracy]} (epoch 0 = untrained; needed a gain of "
        f">= {MIN_GAIN} over the run, got {learned:.3f}; seed {run_seed}, attempt "
        f"{attempt + 1} of {attempts})"
    )
    _, accuracy = model.evaluate(data.x_test, data.y_test, batch_size=500, verbose=0)
    return float(accuracy), val_accuracy


def epochs_to_converge(curve: list[float], fraction: float = CONVERGED_FRACTION) -> int:
    """The first epoch (>= 1) whose validation accuracy reaches ``fraction`` of the run's
    gain from epoch 0 (untrained) to its best epoch (:func:`~pytest_rnn.training.
    epochs_to_fraction`)."""
    return epochs_to_fraction(curve, fraction, higher_is_better=True)


#: Each way of counting convergence (CONVERGENCE): the baseline metric it is stored under
#: and its value for one run's validation accuracy curve.
CONVERGENCE_MEASURES = {
    "first_epoch": ("epochs_to_90pct_gain", epochs_to_converge),
    "mean_epoch": ("mean_epoch_of_90pct_gain", lambda curve: mean_epoch_of_gain(
        curve, CONVERGED_FRACTION, higher_is_better=True)),
}


def convergence(name: str) -> tuple:
    """``name``'s convergence metric and how one run's curve is measured for it."""
    return CONVERGENCE_MEASURES[CONVERGENCE.get(name, "first_epoch")]


@pytest.mark.parametrize("name", list(MODELS))
def test_imdb_accuracy_and_convergence_match_calibration(name, imdb_subset, rnn_baseline,
                                                         rnn_record):
    """K seeded runs against the calibrated distributions of test accuracy (for LSTM and
    GRU a drop of ~0.03 in the mean fails) and of log2 epochs-to-90% (a doubling fails);
    both checks are made and reported before the test fails on either."""
    k = K[name]
    seeds = rnn_baseline.sample_seeds(k)
    runs = [train(name, imdb_subset, rnn_record, seed) for seed in seeds]
    rnn_baseline.check_samples(checks(name, runs), seeds=seeds, k=k, label=name)


def checks(name: str, runs: list[tuple[float, list[float]]]) -> tuple:
    """The two checks of ``name``'s runs ((test accuracy, validation curve) each), as
    :meth:`Baselines.check_samples` takes them; tests/regressions/measure_power.py judges
    its held-out and injected runs by the same."""
    accuracies = [acc for acc, _ in runs]
    metric, measure = convergence(name)
    return (
        ("test_accuracy", accuracies,
         {"higher_is_better": True, "method": ACCURACY_METHOD.get(name, "mean"),
          "chance": CHANCE_ACCURACY}),
        (metric, [measure(curve) for _, curve in runs],
         {"higher_is_better": False, "scale": "log2", "budget": TRAINING["epochs"]}),
    )
