"""The code under test: a day-ahead temperature forecaster on hourly weather readings.

The project makes its own data: :func:`synthetic_weather` draws hourly temperature,
pressure and humidity with yearly and daily cycles, slowly drifting pressure systems
whose warmth reaches the thermometer about a day later, and sensor noise.
:func:`windows` cuts the readings into two days of history and the temperature
``horizon`` hours after them. The model is :class:`LSTMStack` (LSTMs stacked as one
layer) under a linear head. For forecasts as readings arrive, the same stack is built
``stateful=True`` with batch size 1 and fed one chunk of hours at a time;
``reset_states()`` starts it over for the next station.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

FEATURES = ("temperature", "pressure", "humidity")
HOURS_PER_DAY = 24
HOURS_PER_YEAR = 8766  # 365.25 days


def synthetic_weather(hours: int, seed: int) -> np.ndarray:
    """``(hours, 3)`` readings: temperature (deg C), pressure (hPa), humidity (%).

    Pressure anomalies ``p`` follow an hourly AR(1) process (coefficient 0.97: systems
    that last a few days); the temperature carries the pressure anomaly of 30 hours
    before, so part of tomorrow's temperature is already in today's pressure."""
    rng = np.random.default_rng(seed)
    lag, warmup = 30, 200
    n = hours + lag + warmup
    shocks = rng.normal(scale=np.sqrt(1 - 0.97**2), size=n)
    p = np.zeros(n)
    for t in range(1, n):
        p[t] = 0.97 * p[t - 1] + shocks[t]
    p_now, p_before = p[lag + warmup:], p[warmup:warmup + hours]
    t = np.arange(hours)
    year = -np.cos(2 * np.pi * t / HOURS_PER_YEAR)  # coldest at the start
    day = -np.cos(2 * np.pi * (t - 3) / HOURS_PER_DAY)  # coldest around 3 am
    temperature = (11 + 9 * year + 4 * day + 2.5 * p_before
                   + rng.normal(scale=0.4, size=hours))
    pressure = 1013 + 7 * p_now + rng.normal(scale=0.3, size=hours)
    humidity = np.clip(68 - 14 * day - 4 * p_now + rng.normal(scale=3, size=hours), 5, 100)
    return np.stack([temperature, pressure, humidity], axis=1).astype("float32")


class Standardizer:
    """Zero mean and unit variance per feature, from the training readings only."""

    def __init__(self, train: np.ndarray):
        self.mean = train.mean(axis=0)
        self.std = train.std(axis=0)

    def __call__(self, readings: np.ndarray) -> np.ndarray:
        return ((readings - self.mean) / self.std).astype("float32")


def windows(readings: np.ndarray, *, past: int = 48, horizon: int = 24, stride: int = 1,
            target: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``(n, past, features)``: ``past`` consecutive hours; targets ``(n, 1)``: the
    ``target`` feature ``horizon`` hours after the last of them."""
    starts = np.arange(0, len(readings) - past - horizon + 1, stride)
    x = np.stack([readings[s:s + past] for s in starts])
    y = readings[starts + past + horizon - 1, target][:, None]
    return x, y


@keras.saving.register_keras_serializable(package="weather_forecast")
class LSTMStack(keras.layers.Layer):
    """LSTMs of the given sizes, each reading the previous one's output sequence. Returns
    the last LSTM's output (the last step, or every step with ``return_sequences``);
    with ``stateful=True`` every LSTM keeps its state between calls."""

    def __init__(self, units: Sequence[int], dropout: float = 0.0,
                 return_sequences: bool = False, stateful: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.units = [int(u) for u in units]
        self.dropout = dropout
        self.return_sequences = return_sequences
        self.stateful = stateful
        self.supports_masking = True
        last = len(self.units) - 1
        self.lstms = [
            keras.layers.LSTM(u, dropout=dropout, stateful=stateful,
                              return_sequences=return_sequences or i < last,
                              dtype=self.dtype_policy)
            for i, u in enumerate(self.units)
        ]

    def build(self, input_shape):
        shape = tuple(input_shape)
        for lstm in self.lstms:
            lstm.build(shape)
            shape = (*shape[:2], lstm.units)

    def call(self, inputs, mask=None, training=None):
        x = inputs
        for lstm in self.lstms:
            x = lstm(x, mask=mask, training=training)
        return x

    def reset_states(self):
        """Forget what the stateful LSTMs carried over: the next call starts from zeros."""
        for lstm in self.lstms:
            lstm.reset_states()

    def compute_mask(self, inputs, mask=None):
        return mask if self.return_sequences else None

    def compute_output_shape(self, input_shape):
        if self.return_sequences:
            return (*input_shape[:2], self.units[-1])
        return (input_shape[0], self.units[-1])

    def get_config(self):
        return {**super().get_config(), "units": self.units, "dropout": self.dropout,
                "return_sequences": self.return_sequences, "stateful": self.stateful}


def build_forecaster(past: int | None, units: Sequence[int] = (16, 8), *,
                     batch_size: int | None = None, stateful: bool = False) -> keras.Model:
    """Standardized readings ``(past, 3)`` -> :class:`LSTMStack` -> the standardized
    temperature ``horizon`` hours later. ``past=None`` takes any number of hours (a
    streaming forecaster's chunks); ``stateful=True`` needs a fixed ``batch_size``."""
    return keras.Sequential([
        keras.Input(shape=(past, len(FEATURES)), batch_size=batch_size),
        LSTMStack(units, stateful=stateful),
        keras.layers.Dense(1),
    ])


def train(model: keras.Model, x: np.ndarray, y: np.ndarray, *, epochs: int = 6,
          learning_rate: float = 0.005) -> keras.callbacks.History:
    """Adam on the mean squared error, batches of 64."""
    model.compile(keras.optimizers.Adam(learning_rate), "mse")
    return model.fit(x, y, batch_size=64, epochs=epochs, verbose=0)


def persistence_forecast(x: np.ndarray, target: int = 0) -> np.ndarray:
    """The naive forecast: the last reading of the target feature (for a 24-hour horizon,
    the same hour of the day before)."""
    return x[:, -1, target][:, None]
