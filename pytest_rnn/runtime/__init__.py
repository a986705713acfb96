"""Facts about this process: versions, devices, seeds and thread caps.

No module here imports pytest; TensorFlow is imported only by the functions that
must ask it (:func:`pytest_rnn.runtime.device.detect`).
"""
