"""Toy sequence tasks: targets follow each definition, oracles score perfectly, chance
levels match their closed forms, and the same arguments give the same arrays anywhere.

Statistical checks compare with closed-form expectations within 5 standard errors,
computed from the task's own distribution (not tuned to a seed).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import subprocess_runs
from pytest_rnn.tasks import make_task

from pytest_rnn import tasks
from pytest_rnn.checks import compare

ALL_TASKS = ("adding", "copy_memory", "marked_product", "parity", "sine")
Z_BOUND = 5.0  # standard errors allowed between a sample statistic and its expectation


def within(value: float, expected: float, standard_error: float, what: str) -> None:
    assert abs(value - expected) <= Z_BOUND * standard_error, (
        f"{what}: {value:.5f}, expected {expected:.5f} +- {Z_BOUND:g} x {standard_error:.5f}"
    )


def one_hot(ids: np.ndarray, depth: int) -> np.ndarray:
    return np.eye(depth, dtype=np.float32)[ids]


# --- the registry and arguments -------------------------------------------------------


def test_registry_lists_the_five_tasks():
    assert tasks.task_names() == ALL_TASKS
    assert set(tasks.TASKS) == set(ALL_TASKS)


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown task 'adder'; known tasks: adding, "
                                         "copy_memory, marked_product, parity, sine"):
        make_task("adder", seed=0)


def test_an_unknown_parameter_is_named_with_the_accepted_ones():
    with pytest.raises(ValueError) as excinfo:
        make_task("copy_memory", seed=0, lenght=3)
    assert "unknown parameter(s) lenght for task 'copy_memory'" in str(excinfo.value)
    assert "length=4, symbols=8" in str(excinfo.value)
    with pytest.raises(ValueError, match="accepted parameters \\(defaults\\): none"):
        make_task("parity", seed=0, noise=0.1)


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("parity", {"n": 1}, "n must be an integer >= 2"),
        ("parity", {"n": 10.0}, "n must be an integer >= 2"),
        ("parity", {"seed": -3}, "seed must be an integer >= 0, got -3"),
        ("parity", {"steps": 0}, "steps of task 'parity' must be an integer >= 1"),
        ("parity", {"steps": True}, "steps of task 'parity' must be an integer >= 1"),
        ("marked_product", {"steps": 1}, "steps of task 'marked_product' must be an integer >= 2"),
        ("adding", {"steps": 1}, "steps of task 'adding' must be an integer >= 2"),
        ("sine", {"steps": 2}, "steps of task 'sine' must be an integer >= 3"),
        ("copy_memory", {"steps": 6, "length": 3},
         "steps of task 'copy_memory' must be an integer >= 7 (2 * length + 1"),
        ("parity", {"test_fraction": 0.0}, "test_fraction must be a number in (0, 1)"),
        ("parity", {"test_fraction": 1.0}, "test_fraction must be a number in (0, 1)"),
        ("parity", {"test_fraction": float("nan")}, "test_fraction must be a number in (0, 1)"),
        ("parity", {"n": 3, "test_fraction": 0.1}, "gives 0 test sequences"),
        ("parity", {"n": 4, "test_fraction": 0.95}, "gives 4 test sequences"),
        ("marked_product", {"tolerance": 0}, "tolerance must be a number in (0, inf)"),
        ("marked_product", {"tolerance": "0.04"}, "tolerance must be a number in (0, inf)"),
        ("copy_memory", {"length": 0}, "length must be an integer >= 1"),
        ("copy_memory", {"symbols": 1}, "symbols must be an integer >= 2"),
        ("sine", {"freq_min": 0.0}, "freq_min must be a number in (0, 0.5)"),
        ("sine", {"freq_max": 0.5}, "freq_max must be a number in (0, 0.5)"),
        ("sine", {"freq_min": 0.3, "freq_max": 0.2}, "freq_min must be <= freq_max"),
        ("sine", {"noise": -0.1}, "noise must be a number in [0, inf)"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(name, kwargs, message):
    kwargs = {"n": 20, "seed": 0, **kwargs}
    with pytest.raises(ValueError) as excinfo:
        make_task(name, **kwargs)
    assert message in str(excinfo.value)


@pytest.mark.parametrize("name", ALL_TASKS)
def test_same_arguments_same_arrays_other_seed_other_arrays(name):
    a, b = make_task(name, n=50, seed=7), make_task(name, n=50, seed=7)
    c = make_task(name, n=50, seed=8)
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    assert not np.array_equal(a.x_train, c.x_train), f"{name}: seed 8 gave seed 7's inputs"


def _digests(name: str) -> list[str]:
    task = make_task(name, n=40, seed=3)
    return [hashlib.sha256(np.ascontiguousarray(getattr(task, f)).tobytes()).hexdigest()
            for f in ("x_train", "y_train", "x_test", "y_test")]


@subprocess_runs.declare("tasks_in_a_fresh_process_run")
def _tasks_in_a_fresh_process(workdir: Path, session: pytest.Session) -> subprocess_runs.Command:
    """Another interpreter (another hash salt, as an xdist worker has) generates them."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]);"
        "from test_tasks import _digests, ALL_TASKS;"
        "print(json.dumps({n: _digests(n) for n in ALL_TASKS}))"
    )
    return subprocess_runs.Command(
        [sys.executable, "-c", code, os.path.dirname(__file__)], cwd=workdir,
        env=subprocess_runs.clean_env(PYTHONHASHSEED="4242"))


tasks_in_a_fresh_process_run = subprocess_runs.finished_fixture("tasks_in_a_fresh_process_run")


def test_tasks_are_identical_in_a_fresh_process(tasks_in_a_fresh_process_run):
    proc = tasks_in_a_fresh_process_run.proc
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {name: _digests(name) for name in ALL_TASKS}


def test_split_sizes_shapes_and_the_returned_description():
    task = make_task("copy_memory", n=30, steps=12, seed=1, test_fraction=0.3, length=3,
                     symbols=5)
    assert task.x_train.shape == (21, 12, 7) and task.x_test.shape == (9, 12, 7)
    assert task.y_train.shape == (21, 12) and task.input_shape == (12, 7)
    assert (task.output_units, task.output_activation) == (6, "softmax")
    assert task.params == {"length": 3, "symbols": 5} and task.steps == 12
    assert "SequenceTask('copy_memory'" in repr(task)
    with pytest.raises(dataclasses.FrozenInstanceError):
        task.x_train = None


# --- each task follows its definition ----------------------------------------------


def test_marked_product_marks_two_steps_and_targets_their_product():
    task = make_task("marked_product", n=2000, steps=10, seed=2)
    x, y = task.x_train, task.y_train
    marks, values = x[..., 0], x[..., 1]
    assert set(np.unique(marks)) == {0.0, 1.0} and (marks.sum(axis=1) == 2).all()
    assert values.min() >= 0.0 and values.max() < 1.0
    positions = np.nonzero(marks)[1].reshape(-1, 2)
    assert (positions[:, 1] < 5).any() and (positions[:, 0] >= 5).any(), "marks not anywhere"
    oracle = values[marks == 1].reshape(-1, 2).prod(axis=1, keepdims=True)
    assert task.score(y, oracle) == 1.0
    assert (task.loss, task.metric_name, task.higher_is_better) == (
        "mse", "fraction_within_0.04", True)
    assert task.score(y, y + 0.039) == 1.0 and task.score(y, y + 0.041) == 0.0
    wide = make_task("marked_product", n=20, steps=4, seed=2, tolerance=0.1)
    assert wide.metric_name == "fraction_within_0.1"
    assert wide.score(wide.y_test, wide.y_test - 0.09) == 1.0


def test_adding_marks_one_step_per_half_and_targets_the_sum():
    task = make_task("adding", n=1000, steps=9, seed=2)
    marks, values = task.x_train[..., 0], task.x_train[..., 1]
    assert (marks.sum(axis=1) == 2).all()
    first, second = np.nonzero(marks)[1].reshape(-1, 2).T
    assert (first < 4).all() and (second >= 4).all(), "one mark in each half (half = 4)"
    oracle = (marks * values).sum(axis=1, keepdims=True)
    assert task.score(task.y_train, oracle) == pytest.approx(0.0, abs=1e-12)
    assert (task.loss, task.metric_name, task.higher_is_better) == ("mse", "mse", False)


def test_copy_memory_repeats_the_symbols_after_the_marker():
    length, symbols, steps = 3, 5, 11
    task = make_task("copy_memory", n=300, steps=steps, seed=4, length=length,
                     symbols=symbols)
    x, y = task.x_train, task.y_train
    assert (x.sum(axis=-1) == 1).all(), "inputs are one-hot"
    ids = x.argmax(axis=-1)
    recall = steps - length
    assert ((ids[:, :length] >= 1) & (ids[:, :length] <= symbols)).all()
    assert (ids[:, length:recall - 1] == 0).all() and (ids[:, recall:] == 0).all()
    assert (ids[:, recall - 1] == symbols + 1).all(), "the go marker precedes the recall"
    assert (y[:, :recall] == 0).all() and (y[:, recall:] == ids[:, :length]).all()
    assert set(np.unique(ids[:, :length])) == set(range(1, symbols + 1))
    oracle = one_hot(np.concatenate([np.zeros((len(y), recall), int), ids[:, :length]], 1),
                     symbols + 1)
    assert task.score(y, oracle) == 1.0
    shifted = np.roll(oracle, 1, axis=1)
    assert task.score(y, shifted) < 0.5, "the score must look at the recalled symbols"


def test_parity_targets_the_parity_of_the_bits():
    task = make_task("parity", n=500, steps=7, seed=5)
    bits = task.x_train[..., 0]
    assert set(np.unique(bits)) == {0.0, 1.0}
    oracle = (bits.sum(axis=1, keepdims=True) % 2).astype(np.float32)
    assert task.score(task.y_train, oracle) == 1.0
    assert task.score(task.y_train, 1.0 - oracle) == 0.0
    assert (task.loss, task.output_activation) == ("binary_crossentropy", "sigmoid")


def test_sine_targets_the_next_value_of_a_sine_in_the_frequency_range():
    """Noise-free samples obey s[t+1] = 2cos(w) s[t] - s[t-1]: fit 2cos(w), predict."""
    task = make_task("sine", n=400, steps=12, seed=6, noise=0.0, freq_min=0.05, freq_max=0.15)
    s = task.x_train[..., 0].astype(np.float64)
    two_cos = ((s[:, 2:] + s[:, :-2]) * s[:, 1:-1]).sum(1) / (s[:, 1:-1] ** 2).sum(1)
    oracle = (two_cos * s[:, -1] - s[:, -2])[:, None]
    assert task.score(task.y_train, oracle) < 1e-10
    freq = np.arccos(two_cos / 2) / (2 * np.pi)
    assert freq.min() >= 0.05 - 1e-4 and freq.max() <= 0.15 + 1e-4, (freq.min(), freq.max())
    assert np.abs(s).max() <= 1.0 + 1e-6 and np.abs(task.y_train).max() <= 1.0


def test_sine_noise_is_on_the_inputs_only():
    clean = make_task("sine", n=2000, steps=10, seed=6, noise=0.0)
    noisy = make_task("sine", n=2000, steps=10, seed=6, noise=0.3)
    np.testing.assert_array_equal(noisy.y_train, clean.y_train)
    diff = (noisy.x_train - clean.x_train).ravel()
    # std of a sample std of m normal draws: sigma / sqrt(2 m)
    within(diff.std(), 0.3, 0.3 / math.sqrt(2 * diff.size), "input noise std")
    within(diff.mean(), 0.0, 0.3 / math.sqrt(diff.size), "input noise mean")


@pytest.mark.parametrize("name", ALL_TASKS)
def test_a_prediction_of_the_wrong_shape_is_refused(name):
    task = make_task(name, n=20, seed=0)
    bad = np.zeros(task.y_test.shape[:1])
    with pytest.raises(ValueError, match=r"y_pred has shape \(4,\), expected \(4, "):
        task.score(task.y_test, bad)


# --- chance levels --------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_TASKS)
def test_chance_score_is_what_the_best_input_blind_prediction_gets(name):
    """The loss-minimising constant on the training split (per step for copy_memory)."""
    task = make_task(name, n=400, seed=9)
    if task.loss == "sparse_categorical_crossentropy":
        counts = np.stack([(task.y_train == c).sum(axis=0) for c in range(task.output_units)])
        constant = one_hot(counts.argmax(axis=0), task.output_units)
    else:
        constant = np.full(task.y_train.shape[1:], task.y_train.mean(dtype=np.float64))
    prediction = np.broadcast_to(constant, (len(task.y_test), *constant.shape))
    assert task.score(task.y_test, prediction) == pytest.approx(task.chance_score, abs=1e-12)


def _product_cdf(z: float) -> float:
    """P(U1 * U2 <= z) for independent U(0, 1)."""
    return z * (1.0 - math.log(z))


def test_chance_levels_match_their_closed_forms():
    n = 50_000  # 10,000 test sequences; short sequences: the targets do not depend on steps
    adding = make_task("adding", n=n, steps=2, seed=1)
    c = float(adding.y_train.mean())
    # E[(U1 + U2 - c)^2] = 1/6 + (1 - c)^2; sd of (S - 1)^2 is sqrt(1/15 - 1/36)
    within(adding.chance_score, 1 / 6 + (1 - c) ** 2, math.sqrt(1 / 15 - 1 / 36) / 100, "adding")

    product = make_task("marked_product", n=n, steps=2, seed=1)
    c = float(product.y_train.mean())
    p = _product_cdf(c + 0.04) - _product_cdf(c - 0.04)
    within(product.chance_score, p, math.sqrt(p * (1 - p) / 10_000), "marked_product")
    within(c, 0.25, math.sqrt(7 / 144 / 40_000), "mean of the product")

    parity = make_task("parity", n=n, steps=5, seed=1)
    within(parity.chance_score, 0.5, 0.5 / 100, "parity")

    copy = make_task("copy_memory", n=n, steps=9, seed=1, length=4, symbols=8)
    within(copy.chance_score, 1 / 8, math.sqrt(1 / 8 * 7 / 8 / 40_000), "copy_memory")

    sine = make_task("sine", n=n, steps=3, seed=1)
    c = float(sine.y_train.mean())
    # E[(sin - c)^2] = 1/2 + c^2 for a uniform phase; sd of sin^2 is sqrt(1/8)
    within(sine.chance_score, 0.5 + c * c, math.sqrt(1 / 8) / 100, "sine")


def test_predicting_one_on_the_adding_problem_gives_one_sixth_not_0_1767():
    """Var(U1 + U2) = 1/6: the 0.1767 often quoted is 7 standard errors away here."""
    task = make_task("adding", n=100_000, steps=2, seed=3)
    mse = task.score(task.y_test, np.ones_like(task.y_test))
    standard_error = math.sqrt(1 / 15 - 1 / 36) / math.sqrt(len(task.y_test))
    within(mse, 1 / 6, standard_error, "MSE of predicting 1.0")
    assert abs(mse - 0.1767) > Z_BOUND * standard_error


@pytest.mark.parametrize("name", ALL_TASKS)
def test_beats_chance_follows_the_direction_of_the_score(name):
    task = make_task(name, n=50, seed=0)
    better = 0.01 if task.higher_is_better else -0.01
    assert task.beats_chance(task.chance_score + better)
    assert not task.beats_chance(task.chance_score - better)
    assert not task.beats_chance(task.chance_score)


# --- the head each task declares fits Keras ----------------------------------------


def test_declared_heads_and_losses_fit_a_keras_model():
    """Input shape, output units/activation and loss name work as one Keras model."""
    import keras

    for name in ALL_TASKS:
        task = make_task(name, n=10, seed=0, **({"steps": 6} if name != "copy_memory" else {}))
        sequences = task.y_train.ndim == 2 and task.y_train.shape[1] == task.steps
        model = keras.Sequential([
            keras.Input(shape=task.input_shape),
            keras.layers.GRU(2, return_sequences=sequences),
            keras.layers.Dense(task.output_units, activation=task.output_activation),
        ])
        prediction = model(task.x_train[:4])
        loss = keras.losses.get(task.loss)(task.y_train[:4], prediction)
        assert np.isfinite(compare.to_numpy(loss).mean()), f"{name}: loss {loss}"
        score = task.score(task.y_train[:4], compare.to_numpy(prediction))
        assert np.isfinite(score), f"{name}: score {score}"


@pytest.mark.parametrize("name", ALL_TASKS)
def test_chance_loss_is_keras_s_loss_of_the_chance_prediction(name):
    """The loss a model reaches that learned the targets' distribution but not the sequence,
    computed in NumPy, equals Keras's own loss of that prediction."""
    import keras

    task = make_task(name, n=300, seed=3)
    prediction = tasks._chance_prediction(tasks.TASKS[name], task.y_train, len(task.y_test),
                                          task.output_units)
    expected = float(np.mean(keras.ops.convert_to_numpy(
        keras.losses.get(task.loss)(task.y_test, prediction))))
    assert task.chance_loss(task.y_test) == pytest.approx(expected, rel=1e-5)
