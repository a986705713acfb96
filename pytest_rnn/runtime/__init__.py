"""Facts about this process: versions, devices, seeds and thread caps.

No module here imports pytest; TensorFlow is imported only by the functions that
must ask it (:func:`pytest_rnn.runtime.device.detect`).
"""

from pytest_rnn import lazy_submodules

__getattr__ = lazy_submodules(__name__, ('device', 'seeding', 'threads', 'versions'))
