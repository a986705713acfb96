"""The generic recurrent kernels are not slower than their stored rounds (CPU or GPU).

Each case times a generic LSTM or GRU step (:func:`pytest_rnn.bench.steps.make_step`,
``use_cudnn=False``) and a reference workload doing the same cell arithmetic in a bare
``tf.while_loop`` (:func:`~pytest_rnn.bench.steps.make_reference`), warmed up for 2 s and
then call by call in alternation for ``TIMING_ROUNDS`` rounds
(:func:`pytest_rnn.bench.power.sampler`); each round's value is layer time / reference
time, which keeps what the Keras layer costs and cancels how fast this machine is today.
The rounds are compared with those stored for this device key in
``baselines/test_kernel_timing.json`` (:meth:`Baselines.check_timing`: Mann-Whitney U at
1% plus a 10% minimum effect). Record them on a quiet machine with
``--rnn-update-baselines``; ``tests/test_timing_power.py`` shows a 20% slower layer
failing this check and an unmodified rerun passing.

Slow-marked with the other timing suites: a stored ratio belongs to one machine, so a
shared CI runner records its own before it checks. Marked ``rnn_timing``: under pytest-xdist
with more than one worker these checks skip (the other workers load the cores they time
on); run them after, in one process: ``pytest -m rnn_timing -p no:xdist``.
"""

from __future__ import annotations

import pytest

from pytest_rnn.bench import cases, power

pytestmark = [pytest.mark.slow, pytest.mark.rnn_timing]

CASES = [(kind, step) for kind in ("lstm", "gru") for step in ("forward", "train")]


@pytest.mark.parametrize("kind, step", CASES, ids=[f"{k}-{s}" for k, s in CASES])
def test_generic_kernel_time_relative_to_its_matmuls(kind, step, rnn_seed, rnn_baseline,
                                                     rnn_record, rnn_device):
    config = cases.TIMING_CONFIG
    sample = power.sampler(kind, step, config, seed=rnn_seed, rounds=cases.TIMING_ROUNDS,
                           number=cases.TIMING_CALLS)
    layer_s, reference_s = sample()
    rounds = power.ratios(layer_s, reference_s)
    rnn_record("timing_rounds", f"{kind}-{step}", device_key=rnn_device.key,
               config=config.describe(), layer_s=layer_s, reference_s=reference_s)
    rnn_baseline.check_timing(
        "generic_over_reference", rounds, alpha=cases.TIMING_ALPHA,
        min_effect=cases.TIMING_MIN_EFFECT,
        note=f"generic {kind} {step} ({config.describe()}) / same cell arithmetic in a bare loop",
    )
