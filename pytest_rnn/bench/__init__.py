"""Kernel benchmarks without pytest: the cases, the timing arithmetic, the timed Keras
steps and what the host is (GPUs from nvidia-smi). The pytest glue is
:mod:`pytest_rnn.plugin.benchmarks`."""

from pytest_rnn import lazy_submodules

__getattr__ = lazy_submodules(__name__, ('cases', 'steps', 'timing', 'machine', 'power'))
