"""Kernel benchmarks without pytest: the cases, the timing arithmetic, the timed Keras
steps and what the host is (GPUs from nvidia-smi). The pytest glue is
:mod:`pytest_rnn.plugin.benchmarks`."""
