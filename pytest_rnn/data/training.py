"""One way to train the slow suites' models, so every accuracy baseline means the same thing.

A baseline is only comparable between runs if the training procedure is fixed:
optimiser, learning rate, batch size, epoch budget, early stopping and the point
at which the model is scored. :func:`fit` pins all of them down and reports the
whole validation curve *including epoch 0* (the untrained model), which is what
lets a suite tell a curve that improves from one that is flat from the start.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass

import keras
import numpy as np

__all__ = ["TrainingRun", "epochs_to_fraction", "fit", "improvement", "mean_epoch_of_gain",
           "stretched"]


@dataclass(frozen=True)
class TrainingRun:
    """What :func:`fit` did.

    ``history`` maps Keras metric names (``loss``, ``val_loss``, ``val_accuracy``...)
    to one value per epoch; ``history["val_*"][0]`` is the untrained model, so index
    ``e`` is the state after ``e`` epochs (training metrics have ``None`` at 0: they are
    averages over an epoch, and there is no epoch 0; ``None`` keeps records valid JSON).
    ``best_epoch`` is the epoch whose weights the model holds at the end
    (early stopping restores them); ``epochs`` is how many ran.
    """

    history: dict[str, list[float | None]]
    epochs: int
    best_epoch: int
    seconds: float

    def curve(self, name: str) -> list[float | None]:
        if name not in self.history:
            raise KeyError(f"no metric {name!r} in the history; have {sorted(self.history)}")
        return self.history[name]


def fit(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    *,
    validation: tuple[np.ndarray, np.ndarray],
    loss: str,
    learning_rate: float,
    epochs: int,
    batch_size: int,
    patience: int,
    metrics: tuple[str, ...] = (),
    clipnorm: float | None = None,
    callbacks: tuple[keras.callbacks.Callback, ...] = (),
    monitor: str = "val_loss",
    cosine_decay: bool = False,
) -> TrainingRun:
    """Compile with Adam(``learning_rate``), train up to ``epochs`` epochs, stop early.

    ``cosine_decay``: the learning rate falls along a cosine from ``learning_rate`` to 0
    over the whole budget (``keras.optimizers.schedules.CosineDecay``), so a run ends
    annealed and its final error says what it learned, not where the last steps left it.

    Early stopping watches ``monitor`` (``val_loss``, or e.g. ``val_accuracy`` for a
    classifier whose loss rises while it grows overconfident) with ``patience`` and
    restores the best weights, so the model is scored where it generalised best, not
    wherever the budget ran out. Shuffling is seeded by Keras's global seed (``rnn_seed``).
    ``callbacks`` run after early stopping's (e.g. one that stops a solved task).
    """
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
        raise ValueError(f"patience must be an integer >= 0; got {patience!r}")
    if not (isinstance(learning_rate, float | int) and 0 < learning_rate < math.inf):
        raise ValueError(f"learning_rate must be a positive number; got {learning_rate!r}")
    x_val, y_val = validation
    rate = learning_rate
    if cosine_decay:
        rate = keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=epochs * math.ceil(len(x) / batch_size))
    model.compile(
        optimizer=keras.optimizers.Adam(rate, clipnorm=clipnorm),
        loss=loss,
        metrics=list(metrics),
    )
    start = time.perf_counter()
    before = model.evaluate(x_val, y_val, batch_size=max(batch_size, 256), verbose=0,
                            return_dict=True)
    stopper = keras.callbacks.EarlyStopping(monitor=monitor, patience=patience,
                                            restore_best_weights=True)
    keras_history = model.fit(
        x, y, validation_data=(x_val, y_val), epochs=epochs, batch_size=batch_size,
        shuffle=True, verbose=0, callbacks=[stopper, *callbacks],
    ).history
    seconds = time.perf_counter() - start
    history: dict[str, list[float | None]] = {}
    for name, values in keras_history.items():
        first = float(before[name.removeprefix("val_")]) if name.startswith("val_") else None
        history[name] = [first, *map(float, values)]
    ran = len(history["val_loss"]) - 1
    # Keras restores the weights of its best epoch (0-based) when training ends.
    return TrainingRun(history=history, epochs=ran, best_epoch=stopper.best_epoch + 1,
                       seconds=seconds)


def improvement(curve: list[float | None], *, within: int, higher_is_better: bool) -> float:
    """How much the best of the first ``within`` epochs beats epoch 0 (positive = better)."""
    if within < 1 or len(curve) < 2:
        raise ValueError(f"need epoch 0 and at least one epoch; got {len(curve)} values, "
                         f"within={within}")
    window = curve[1:within + 1]
    if any(v is None or math.isnan(v) for v in [curve[0], *window]):
        return math.nan
    best = max(window) if higher_is_better else min(window)
    return best - curve[0] if higher_is_better else curve[0] - best


def epochs_to_fraction(curve: list[float | None], fraction: float, *,
                       higher_is_better: bool) -> int:
    """The first epoch (>= 1) at which a validation curve reaches ``fraction`` of the run's
    own gain from epoch 0 (untrained) to its best epoch: how fast a model learns, whatever
    its final score. A doubling of this count is what a halved learning rate or weakened
    gradients do to a model that still gets there. A run that never improves on epoch 0
    (or whose curve is not finite) never got there: it counts one epoch more than it ran."""
    remaining = _normalised(curve, fraction, higher_is_better)
    if remaining is None:
        return len(curve)
    return next(e for e in range(1, len(remaining)) if remaining[e] <= 1e-9)


def _normalised(curve: list[float | None], fraction: float, higher_is_better: bool):
    """The share of the first ``fraction`` of the run's own gain (epoch 0 to its best
    epoch) not yet reached by each epoch, from the best value so far: 1 at epoch 0, then
    falling to 0 at the first epoch that reaches the target and staying there. None when
    the run never improves on epoch 0 or is not finite."""
    if len(curve) < 2:
        raise ValueError(f"need epoch 0 and at least one epoch; got {curve!r}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1]; got {fraction!r}")
    if any(v is None or math.isnan(v) for v in curve):
        return None
    sign = 1.0 if higher_is_better else -1.0
    values = [sign * float(v) for v in curve]
    start, best = values[0], max(values[1:])
    if best <= start:
        return None
    gain = fraction * (best - start)
    best_so_far = list(itertools.accumulate(values[1:], max, initial=start))
    return [1.0 - min(1.0, max(0.0, (v - start) / gain)) for v in best_so_far]


def mean_epoch_of_gain(curve: list[float | None], fraction: float, *,
                       higher_is_better: bool, start: float | None = None) -> float:
    """When, on average, the run made the first ``fraction`` of its own gain from epoch 0
    (untrained) to its best epoch: the area above its normalised best-so-far validation
    curve, linearly interpolated between epochs (trapezoids). A run that rises in a
    straight line to the target at epoch T scores T / 2; one that gets there in the first
    epoch, 0.5. Like :func:`epochs_to_fraction` it doubles when the run learns twice as
    slowly (the curve :func:`stretched` over twice the epochs: x2.00 on the stacked LSTM's 20
    calibration curves, x1.97-2.05 each), but it counts every epoch's progress where the
    first crossing keeps one epoch, so it scatters less between seeds (the same 20 runs:
    log2 sd 0.47, first crossing 0.63). A run that never improves on epoch 0 (or is not
    finite) scores one epoch more than it ran.

    ``start``: measure the gain from this value instead of epoch 0, epochs worse than it
    counting as no progress. With a task's chance loss (:meth:`SequenceTask.chance_loss
    <pytest_rnn.tasks.SequenceTask.chance_loss>`), the first epochs' fall from an untrained
    model's loss to the targets' mean, which a model without memory makes too, counts for
    nothing: the score is when the run learned what only the sequence tells."""
    if start is not None:  # no better than start: no progress yet
        clip = max if higher_is_better else min
        curve = [start, *(v if v is None or math.isnan(v) else clip(v, start)
                          for v in curve[1:])]
    remaining = _normalised(curve, fraction, higher_is_better)
    if remaining is None:
        return float(len(curve))
    return sum((a + b) / 2 for a, b in itertools.pairwise(remaining))


def stretched(curve: list[float], factor: int = 2) -> list[float]:
    """The curve the same run would record learning ``factor`` times as slowly: epoch
    ``e`` reads the original at ``e / factor``, linearly interpolated between epochs. What
    a convergence check sized for "a doubling of the epochs" must catch."""
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise ValueError(f"factor must be a positive integer; got {factor!r}")
    out = []
    for e in range((len(curve) - 1) * factor + 1):
        i, part = divmod(e, factor)
        out.append(curve[i] if part == 0 else
                   curve[i] + (curve[i + 1] - curve[i]) * part / factor)
    return out
