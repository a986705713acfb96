"""The generic recurrent kernels are not slower than their calibrated rounds (CPU or GPU).

Each case times a generic LSTM or GRU step (:func:`pytest_rnn.bench.steps.make_step`,
``use_cudnn=False``) and a reference workload doing the same cell arithmetic in a bare
``tf.while_loop`` (:func:`~pytest_rnn.bench.steps.make_reference`), warmed up for 2 s and
then call by call in alternation for ``TIMING_ROUNDS`` rounds, in a Python process of its
own (:func:`pytest_rnn.bench.power.fresh_process_sample`); each round's value is layer
time / reference time, which keeps what the Keras layer costs and cancels how fast this
machine is today. The rounds are compared with those calibrated for this device key in
``baselines/test_kernel_timing.json`` (:meth:`Baselines.check_timing` sized for a 20%
slowdown: Mann-Whitney U at 1%, and the median above the midpoint between the calibrated
median and that median 20% slower; the spread between the calibration's processes gives
the false-alarm and miss rate there, stated in each entry's note). Calibrate them on the
machine that checks them, quiet: ``pytest -m rnn_timing -p no:xdist --rnn-calibrate 20
suites/test_kernel_timing.py`` (20 processes per case). ``tests/test_timing_power.py``
shows a 20% slower layer failing this check and unmodified processes passing.

Slow-marked with the other timing suites: a stored ratio belongs to one machine, so a
shared CI runner calibrates its own before it checks. Marked ``rnn_timing``: under
pytest-xdist with more than one worker these checks skip (the other workers load the cores
they time on); run them after, in one process: ``pytest -m rnn_timing -p no:xdist``.
"""

from __future__ import annotations

import pytest
from pytest_rnn.markers import requires_tensorflow

from pytest_rnn.bench import cases, power

pytestmark = [pytest.mark.slow, pytest.mark.rnn_timing,
              requires_tensorflow("the timing reference is a tf.while_loop")]

CASES = [(kind, step) for kind in ("lstm", "gru") for step in ("forward", "train")]


@pytest.mark.parametrize("kind, step", CASES, ids=[f"{k}-{s}" for k, s in CASES])
def test_generic_kernel_time_relative_to_its_matmuls(kind, step, rnn_baseline, rnn_record,
                                                     rnn_device):
    config = cases.TIMING_CONFIG
    # one process per seed: one to check, or one per calibration process (--rnn-calibrate N)
    samples = [power.fresh_process_sample(kind, step, config, seed=seed,
                                          rounds=cases.TIMING_ROUNDS,
                                          number=cases.TIMING_CALLS)[0]
               for seed in rnn_baseline.sample_seeds(1)]
    rounds = [power.ratios(layer_s, reference_s) for layer_s, reference_s in samples]
    rnn_record("timing_rounds", f"{kind}-{step}", device_key=rnn_device.key,
               config=config.describe(), samples=samples)
    rnn_baseline.check_timing(
        "generic_over_reference", rounds,
        alpha=cases.TIMING_ALPHA, min_effect=None, slowdown=cases.TIMING_SLOWDOWN,
        note=f"generic {kind} {step} ({config.describe()}) / same cell arithmetic in a bare loop",
    )
