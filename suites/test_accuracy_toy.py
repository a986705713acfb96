"""Recurrent layers still solve sequence tasks that need memory (slow: trains for real).

Each task (:mod:`pytest_rnn.tasks`, via ``toy_task``) needs information carried
across many steps, so a Keras change that weakens gradients through time (cut
state gradients, a saturating gate, a bad recurrent initialiser) shows up as a
score that misses its baseline in ``baselines/test_accuracy_toy.json``;
``tests/test_accuracy_sensitivity.py`` proves it by cutting them.

Choices, all timed on a 2-core CPU:

* ``marked_product`` at 50 steps, not the seeds' 100: the GRU stack solves it the
  same way (plateau, then 99%+ within 0.04) in half the time per epoch, and 50 steps
  still separate the marks by 17 steps on average, far beyond what the network could
  solve without carrying state.
* ``adding`` at 30 steps: there LSTM and GRU reach MSE ~1e-3 (over 100 x better than
  chance ~0.17) within 30 epochs while SimpleRNN stays at 0.01-0.17; at 50 steps
  LSTM's plateau (until epoch ~17) eats most of the budget.
* ``sine`` with noise 0.2 (the task's default is 0.05): with little noise the last
  sample or two nearly determine the next one, and one-step gradients got within 1.2 x of
  full training's MSE; with more noise the phase and frequency must be estimated over
  many steps, where full training reaches MSE ~0.015 and one-step training 0.05-0.08.
* ``parity`` of 6 bits with GRU(8): gradient descent escapes the XOR plateau after a
  seed-dependent number of epochs, and for about one seed in four (data and weights)
  not within 40 epochs (calibration: 9 of 12 seeds solved it, after 5-33 epochs). An
  attempt that does not solve the test split is followed by one with the next seed, up
  to 5: a working layer fails all five with probability ~0.25^5 ~ 0.1%. Parity is the
  one task here that one-step gradients also learn (the state it needs is its own
  target), so the sensitivity test shows its threshold catching a layer that carries
  no state instead of one with cut gradients.

Tolerances come from :data:`CALIBRATION`: scores measured over several base seeds
(``--rnn-seed``), tolerance = margin x spread with a floor, stated next to the numbers
and stored in each baseline entry's note.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np
import pytest

from pytest_rnn.models import marked_product_regressor, task_model
from pytest_rnn.training import fit

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Setup:
    """How one model is trained on one task: the data, the model and the training budget."""

    task: str
    kind: str
    steps: int
    n: int
    units: int
    learning_rate: float
    epochs: int
    patience: int
    batch_size: int = 32
    layers: int = 1
    clipnorm: float | None = 1.0
    params: dict = field(default_factory=dict)
    #: Train again with the next seeds (new data and weights) until the test score
    #: reaches ``solved``, at most ``attempts`` times (parity's plateau; see the docstring).
    attempts: int = 1
    solved: float | None = None


@dataclass(frozen=True)
class Calibration:
    """Scores observed for ``seeds`` (base seeds); the tolerance derives from their spread."""

    seeds: tuple[int, ...]
    observed: tuple[float, ...]
    margin: float
    floor: float

    @property
    def spread(self) -> float:
        return max(self.observed) - min(self.observed)

    @property
    def tolerance(self) -> float:
        return float(f"{max(self.margin * self.spread, self.floor):.2g}")

    def note(self) -> str:
        values = ", ".join(f"{v:.4g}" for v in self.observed)
        return (f"base seeds {list(self.seeds)} gave {values}: spread {self.spread:.3g}; "
                f"tolerance = max({self.margin:g} x spread, {self.floor:g})")


MARKED_PRODUCT = Setup("marked_product", "gru", steps=50, n=3000, units=30, layers=2,
                       learning_rate=3e-3, epochs=40, patience=6)
ADDING = {
    kind: Setup("adding", kind, steps=30, n=3000, units=16, learning_rate=5e-3, epochs=30,
                patience=5)
    for kind in ("lstm", "gru", "simple_rnn")
}
OTHERS = {
    "parity": Setup("parity", "gru", steps=6, n=2000, units=8, learning_rate=3e-2,
                    epochs=40, patience=40, clipnorm=None, attempts=5, solved=0.99),
    "copy_memory": Setup("copy_memory", "gru", steps=20, n=3000, units=64,
                         learning_rate=5e-3, epochs=50, patience=6),
    "sine": Setup("sine", "gru", steps=20, n=2000, units=16, learning_rate=1e-2, epochs=40,
                  patience=6, params={"noise": 0.2}),
}

#: LSTM and GRU must beat chance on ``adding`` by this factor (chance MSE / their MSE;
#: calibrated: >= 200 for every seed) ...
WIDE_FACTOR = 20.0
#: ... and SimpleRNN's MSE must be at least this many times the worse of theirs
#: (calibrated: 14 x to 350 x; 14 x for base seed 1).
SIMPLE_RNN_WORSE_BY = 4.0

#: Scores of seed runs of this file (``--rnn-seed 1234, 1, 2, 3, 4``; the same numbers
#: come back on every rerun: training on CPU is deterministic for a given seed).
#: Most get 2 x spread; the adding MSEs 3 x spread (small and skewed), with a floor of
#: 0.001 that still keeps one-step-gradient training (GRU: 0.0032) out of the band.
SEEDS = (1234, 1, 2, 3, 4)
CALIBRATION: dict[str, Calibration] = {
    "marked_product/gru": Calibration(SEEDS, (0.9867, 0.93, 0.9533, 0.9917, 0.9933), 2.0, 0.02),
    "adding/lstm": Calibration(SEEDS, (3.75e-4, 6.74e-4, 4.01e-4, 4.86e-4, 8.15e-4), 3.0, 0.001),
    "adding/gru": Calibration(SEEDS, (4.25e-4, 1.54e-4, 3.09e-4, 1.54e-4, 5.14e-4), 3.0, 0.001),
    # SimpleRNN sometimes stays near chance (0.17): a wide band, the ratio test is the point.
    "adding/simple_rnn": Calibration(SEEDS, (0.0247, 0.00964, 0.1089, 0.1695, 0.0286), 2.0, 0.02),
    "parity/gru": Calibration(SEEDS, (1.0, 1.0, 1.0, 1.0, 1.0), 2.0, 0.02),
    "copy_memory/gru": Calibration(SEEDS, (0.9958, 0.9917, 0.9838, 0.9671, 0.9563), 2.0, 0.02),
    "sine/gru": Calibration(SEEDS, (0.01577, 0.01808, 0.01385, 0.01405, 0.01379), 2.0, 0.002),
}


def train_and_score(setup: Setup, toy_task, rnn_seed: int, rnn_record,
                    build=None) -> tuple[float, object]:
    """Train ``setup`` on its task (seeded by the test's ``rnn_seed``), score the test split.

    ``build(task)`` makes the model (default: :func:`task_model`). With
    ``setup.attempts > 1``, an attempt that does not reach ``setup.solved`` is followed
    by one with seed ``rnn_seed + attempt`` for data and weights.
    """
    for attempt in range(setup.attempts):
        seed = rnn_seed + attempt
        keras.utils.set_random_seed(seed)
        task = toy_task(setup.task, n=setup.n, steps=setup.steps, seed=seed, **setup.params)
        model = (build or _default_model(setup))(task)
        n_val = len(task.x_train) // 10
        stop = () if setup.solved is None else (_StopWhenSolved(),)
        run = fit(model, task.x_train[:-n_val], task.y_train[:-n_val],
                  validation=(task.x_train[-n_val:], task.y_train[-n_val:]), loss=task.loss,
                  learning_rate=setup.learning_rate, epochs=setup.epochs,
                  batch_size=setup.batch_size, patience=setup.patience,
                  clipnorm=setup.clipnorm, callbacks=stop)
        score = task.score(task.y_test, model.predict(task.x_test, batch_size=512, verbose=0))
        rnn_record("curve", f"{setup.task}/{setup.kind}", history=run.history,
                   epochs=list(range(run.epochs + 1)), best_epoch=run.best_epoch,
                   seconds=round(run.seconds, 1), attempt=attempt + 1, seed=seed,
                   score=score)
        if setup.solved is None or score >= setup.solved:
            break
    return score, task


def _default_model(setup: Setup):
    return lambda task: task_model(setup.kind, task, units=setup.units, layers=setup.layers)


class _StopWhenSolved(keras.callbacks.Callback):
    """Stop once the validation loss shows the task is solved: after the plateau there is
    nothing left to learn, and the budget is better spent on a further attempt."""

    def on_epoch_end(self, epoch, logs=None):
        if (logs or {}).get("val_loss", np.inf) < 0.01:
            self.model.stop_training = True


def check(rnn_baseline, name: str, score: float, higher_is_better: bool):
    calibration = CALIBRATION[name]
    return rnn_baseline.check(name.replace("/", "_"), score, tolerance=calibration.tolerance,
                              higher_is_better=higher_is_better, note=calibration.note())


def test_gru_stack_solves_marked_product(toy_task, rnn_seed, rnn_baseline, rnn_record):
    setup = MARKED_PRODUCT
    score, task = train_and_score(
        setup, toy_task, rnn_seed, rnn_record,
        build=lambda task: marked_product_regressor("gru", units=setup.units, steps=setup.steps,
                                                    layers=setup.layers),
    )
    assert score > 3 * task.chance_score, (
        f"GRU stack on marked_product ({setup.steps} steps): {task.metric_name} = {score:.3f}, "
        f"not even 3 x chance ({task.chance_score:.3f})"
    )
    check(rnn_baseline, "marked_product/gru", score, higher_is_better=True)


def test_adding_gated_cells_beat_chance_where_simple_rnn_falls_behind(
        toy_task, rnn_seed, rnn_baseline, rnn_record):
    mse, chance = {}, None
    for kind, setup in ADDING.items():
        mse[kind], task = train_and_score(setup, toy_task, rnn_seed, rnn_record)
        chance = task.chance_score
    for kind in ("lstm", "gru"):
        assert chance / mse[kind] >= WIDE_FACTOR, (
            f"{kind} on adding ({ADDING[kind].steps} steps): MSE {mse[kind]:.4g} is only "
            f"{chance / mse[kind]:.1f} x better than chance ({chance:.4g}); expected >= "
            f"{WIDE_FACTOR:g} x (all MSEs: {mse})"
        )
    gated = max(mse["lstm"], mse["gru"])
    assert mse["simple_rnn"] >= SIMPLE_RNN_WORSE_BY * gated, (
        f"SimpleRNN on adding is no longer clearly worse than LSTM/GRU: MSE "
        f"{mse['simple_rnn']:.4g} vs {gated:.4g} (expected >= {SIMPLE_RNN_WORSE_BY:g} x)"
    )
    for kind in ADDING:
        check(rnn_baseline, f"adding/{kind}", mse[kind], higher_is_better=False)


@pytest.mark.parametrize("name", list(OTHERS))
def test_task_reaches_baseline(name, toy_task, rnn_seed, rnn_baseline, rnn_record):
    setup = OTHERS[name]
    score, task = train_and_score(setup, toy_task, rnn_seed, rnn_record)
    assert task.beats_chance(score), (
        f"{setup.kind} on {name}: {task.metric_name} = {score:.4g} does not beat chance "
        f"({task.chance_score:.4g})"
    )
    check(rnn_baseline, f"{name}/{setup.kind}", score, higher_is_better=task.higher_is_better)
