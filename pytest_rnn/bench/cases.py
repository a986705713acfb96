"""The kernel benchmarks: which layer, step, size and kernel each one times."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BenchConfig:
    """Input and layer sizes of one benchmark configuration."""

    batch: int
    steps: int
    features: int
    units: int

    def describe(self) -> str:
        return f"B{self.batch} T{self.steps} F{self.features} U{self.units}"


BENCH_CONFIGS: dict[str, BenchConfig] = {
    # Launch overhead dominates: shows what cuDNN's fused kernel saves per call.
    "small": BenchConfig(batch=8, steps=10, features=8, units=16),
    # A typical text/sequence model layer: compute dominates.
    "realistic": BenchConfig(batch=64, steps=100, features=128, units=128),
}
LAYER_KINDS = ("lstm", "gru")
STEP_KINDS = ("forward", "train")
KERNELS = ("generic", "cudnn")  # generic first: the cuDNN case reads its pair's timing
#: Multiply-adds per step relative to LSTM: gate blocks of U*(F+U) each (4, 3 and 1).
MAC_RATIO_TO_LSTM = {"lstm": 1.0, "gru": 3 / 4, "simple_rnn": 1 / 4}

SPEEDUP_METRIC = "cudnn_over_generic_per_round"
#: Absolute time per call of each kernel, per device key.
SECONDS_METRIC = "seconds_per_call"
#: Fewest rounds a kernel's timing needs for the rank test (pytest-benchmark's
#: ``--benchmark-min-rounds``; the suite's default calibration gives far more on a GPU).
MIN_ROUNDS = 5
#: The speedup check fails when a Mann-Whitney U test of the per-round cuDNN/generic
#: ratios against the stored ones says slower at SPEEDUP_ALPHA *and* the median ratio
#: rose by more than SPEEDUP_MIN_EFFECT: a cuDNN kernel 20% slower fails; drift of a few
#: percent between runs does not. The same rule checks each kernel's absolute rounds.
SPEEDUP_ALPHA = 0.01
SPEEDUP_MIN_EFFECT = 0.10
#: Kept for the first release's name: the fraction the stored speedup may drop by.
SPEEDUP_TOLERANCE = SPEEDUP_MIN_EFFECT

@dataclass(frozen=True)
class BenchCase:
    """One benchmark: a layer kind, a step (forward or training), a size and a kernel."""

    kind: str
    step: str
    size: str
    kernel: str

    @property
    def config(self) -> BenchConfig:
        return BENCH_CONFIGS[self.size]

    @property
    def group(self) -> str:
        """pytest-benchmark group: the same for the cuDNN and generic case of a pair."""
        return f"{self.kind}-{self.step}-{self.size} ({self.config.describe()})"

    @property
    def id(self) -> str:
        return f"{self.kind}-{self.step}-{self.size}-{self.kernel}"

    def pair(self, kernel: str) -> BenchCase:
        return BenchCase(self.kind, self.step, self.size, kernel)


def benchmark_cases() -> list[BenchCase]:
    """Every kernel benchmark, each group's generic case right before its cuDNN case."""
    return [
        BenchCase(kind, step, size, kernel)
        for kind in LAYER_KINDS
        for step in STEP_KINDS
        for size in BENCH_CONFIGS
        for kernel in KERNELS
    ]

#: The CPU timing check (suites/test_kernel_timing.py): a size whose generic step is long
#: enough on a CPU core for its time to be steady (a smaller one, B8 T20 F16 U32, switched
#: between two levels mid-run), and short enough for many rounds per case; the measured
#: costs are in README, "Baselines".
TIMING_CONFIG = BenchConfig(batch=32, steps=20, features=32, units=64)
#: Rounds per check and calls per round (a round keeps each workload's fastest call).
TIMING_ROUNDS = 30
TIMING_CALLS = 10
#: The timing check (``check_timing(min_effect=None, slowdown=TIMING_SLOWDOWN)``) fails when a
#: Mann-Whitney U test says slower at TIMING_ALPHA *and* the median ratio is above the
#: midpoint (log scale) between the calibrated processes' median and that median
#: TIMING_SLOWDOWN slower (:func:`pytest_rnn.store.rules.process_threshold`, +9.5% for 20%).
#: The calibrated spread between processes gives the false-alarm and miss rate at that
#: threshold, stated in each entry's note (measured figures: README, "Baselines"); a
#: calibration that cannot keep both within TIMING_ALPHA fails.
TIMING_ALPHA = 0.01
TIMING_SLOWDOWN = 0.2
#: The fixed minimum effect for two samples taken in one process (tests/test_timing_power.py's
#: fast live test): at least three standard deviations of the drift of median ratios
#: within one process (measured: README, "Baselines").
TIMING_MIN_EFFECT = 0.10
