"""Facts about this process: versions, devices, seeds and thread caps.

No module here imports pytest. Asking a framework (TensorFlow, JAX, PyTorch) which
GPUs it sees is backend-specific: :func:`pytest_rnn.backends.devices.detect`.
"""

from pytest_rnn import lazy_submodules

__getattr__ = lazy_submodules(__name__, ('device', 'ledger', 'seeding', 'threads', 'versions'))
