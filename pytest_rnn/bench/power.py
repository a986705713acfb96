"""Timing samples a rank test can judge: interleaved rounds, normalised by a reference.

A kernel's time per call on a shared CPU drifts with whatever else runs. Two things make
a timing check hold its false-alarm rate anyway:

* **Interleaving.** :func:`interleaved_rounds` times the recurrent layer and its reference
  workload (:func:`pytest_rnn.bench.steps.make_reference`) alternately, ABBA within
  each pair of rounds, so a load change hits both members of a round alike.
* **Normalising.** Each round's value is ``layer time / reference time``: what the
  recurrent kernel costs beyond its matrix arithmetic on this machine, comparable between
  runs and (per device key) between days.

The per-round ratios are judged by :func:`pytest_rnn.store.stats.timing_verdict`
(Mann-Whitney U plus a minimum effect). ``interleaved_rounds(slowdown=0.2)`` injects a
kernel 20% slower (a delay proportional to its own time), to show a check catches what it
exists for.
No pytest here.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from pytest_rnn.bench.cases import BenchConfig
from pytest_rnn.bench.steps import make_reference, make_step, synchronize

__all__ = ["fresh_process_sample", "interleaved_rounds", "ratios", "sampler", "warm_up"]


def _once(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    synchronize()
    return time.perf_counter() - start


def _slowed_once(fn: Callable[[], Any], slowdown: float) -> float:
    """One call of ``fn`` followed by ``slowdown`` times its duration of busy work (work,
    not sleep: a slower kernel keeps the core busy), timed together."""
    start = time.perf_counter()
    fn()
    synchronize()
    until = time.perf_counter() + slowdown * (time.perf_counter() - start)
    while time.perf_counter() < until:
        pass
    return time.perf_counter() - start


def warm_up(a: Callable[[], Any], b: Callable[[], Any], seconds: float = 2.0) -> int:
    """Call ``a`` and ``b`` alternately, untimed, for ``seconds``; returns the pairs run.

    The first second or two of calls after a step is built run in a different regime
    from the rest of the process (thread pools spinning up, allocator and cache warming,
    the CPU's clock settling): on the 2-core machine the first few samples' ratio sat up
    to 10% away from where it settled. A stored sample taken in that regime makes every
    later rerun look changed, so a check warms both workloads up once before its first
    timed round.
    """
    if not seconds >= 0:
        raise ValueError(f"seconds must be >= 0; got {seconds!r}")
    until, pairs = time.perf_counter() + seconds, 0
    while time.perf_counter() < until:
        a()
        b()
        pairs += 1
    synchronize()
    return pairs


def interleaved_rounds(a: Callable[[], Any], b: Callable[[], Any], *, rounds: int,
                       number: int, slowdown: float = 0.0) -> tuple[list[float], list[float]]:
    """Seconds per call of ``a`` and ``b`` in each of ``rounds`` rounds.

    Within a round the calls alternate one by one (a b b a a b ...), so a change of load
    lasting more than a call or two hits both alike. A round's time is its *fastest* call:
    another process only ever adds time (a preempted call takes a time slice longer), and
    added time pulls a ratio of two similar calls towards 1; the minimum of ``number``
    calls is what the kernel costs when it ran uninterrupted. ``slowdown`` (a fraction)
    injects an ``a`` that much slower: each of
    its calls is followed by busy work lasting ``slowdown`` times the call, timed with it
    (a delay proportional to the step time, whatever the load).
    """
    if rounds < 2 or number < 1:
        raise ValueError(f"need rounds >= 2 and number >= 1; got {rounds!r}, {number!r}")
    if not slowdown >= 0:
        raise ValueError(f"slowdown must be >= 0; got {slowdown!r}")
    times_a, times_b = [], []
    for _ in range(rounds):
        best_a = best_b = math.inf
        for i in range(number):
            if i % 2:
                best_b = min(best_b, _once(b))
            best_a = min(best_a, _slowed_once(a, slowdown) if slowdown else _once(a))
            if not i % 2:
                best_b = min(best_b, _once(b))
        times_a.append(best_a)
        times_b.append(best_b)
    return times_a, times_b


def ratios(layer: list[float], reference: list[float]) -> list[float]:
    """Per-round ``layer / reference`` times."""
    return [x / y for x, y in zip(layer, reference, strict=True)]


def sampler(kind: str, step: str, config: BenchConfig, *, seed: int, rounds: int, number: int,
            warmup_s: float = 2.0) -> Callable[..., tuple[list[float], list[float]]]:
    """``sample(slowdown=0.0)``: one check's rounds of ``kind``'s generic ``step`` and its
    reference workload (seconds per call of each, per round), built once and warmed up
    (:func:`warm_up`) before the first sample. The timing suite, its power test and
    ``tests/regressions/measure_timing.py`` all take their samples through this."""
    layer = make_step(kind, step, config, use_cudnn=False, seed=seed)
    reference = make_reference(kind, step, config, seed=seed)
    warm_up(layer, reference, warmup_s)

    def sample(slowdown: float = 0.0) -> tuple[list[float], list[float]]:
        return interleaved_rounds(layer, reference, rounds=rounds, number=number,
                                  slowdown=slowdown)

    return sample


def fresh_process_sample(kind: str, step: str, config: BenchConfig, *, seed: int, rounds: int,
                         number: int, warmup_s: float = 2.0, slowdowns: Sequence[float] = (0.0,),
                         timeout_s: float = 600.0) -> list[tuple[list[float], list[float]]]:
    """:func:`sampler`'s samples taken in a new Python process (one per ``slowdowns``
    entry, in order, from one build), as ``(layer seconds, reference seconds)`` per round.

    What a timing check compares is one run of the suite with another: a process of its
    own, with its own memory layout, thread placement and code paths warmed, not a second
    sample of the same process. On the 2-core machine the median ratio moved 1.3-2.9% (sd)
    between processes, more than between two samples of one process (0.9-2.7%), so a
    calibration and each check take their samples this way. The child inherits the
    environment (backend, thread caps); it prints one JSON line.
    """
    request = {"kind": kind, "step": step, "config": asdict(config), "seed": seed,
               "rounds": rounds, "number": number, "warmup_s": warmup_s,
               "slowdowns": list(slowdowns)}
    try:
        done = subprocess.run([sys.executable, "-m", __name__, json.dumps(request)],
                              capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"the timing process for {kind} {step} took more than "
                           f"{timeout_s:g} s") from None
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"the timing process for {kind} {step} exited with "
                           f"{done.returncode}:\n{tail}")
    return [(layer, reference) for layer, reference in json.loads(lines[-1])]


def _main(argv: list[str]) -> None:
    request = json.loads(argv[0])
    sample = sampler(request["kind"], request["step"], BenchConfig(**request["config"]),
                     seed=request["seed"], rounds=request["rounds"], number=request["number"],
                     warmup_s=request["warmup_s"])
    print(json.dumps([sample(slowdown) for slowdown in request["slowdowns"]]), flush=True)


if __name__ == "__main__":
    _main(sys.argv[1:])
