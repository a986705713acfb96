"""pytest-rnn's regression suites, shipped in the package as ``pytest_rnn.suites``.

In this repository they live here, beside ``pytest_rnn/`` and ``baselines/``; the build maps
this folder into the package (pyproject.toml, ``[tool.setuptools] package-dir``), so an
installed pytest-rnn checks the user's own Keras, backend and device with
``pytest --pyargs pytest_rnn.suites -m "not slow"``, from any directory.
"""
