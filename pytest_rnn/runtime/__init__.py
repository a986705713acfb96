"""Facts about this process: versions, devices, seeds and thread caps.

No module here imports pytest; a framework (TensorFlow, JAX, PyTorch) is imported only
by the function that must ask it, :func:`pytest_rnn.runtime.device.detect`, through
the Keras backend's probe in :mod:`pytest_rnn.backends`.
"""

from pytest_rnn import lazy_submodules

__getattr__ = lazy_submodules(__name__, ('device', 'seeding', 'threads', 'versions'))
