"""Injected Keras regressions: the proof that the suites catch what they are named for.

* :mod:`regressions.patches`: helpers that patch Keras classes, and the one apply/undo path;
* :mod:`regressions.catalogue`: the entries (patch, tests that must fail and the message
  they must give, tests that must stay green);
* :mod:`regressions.runner`: one pytest session that runs the suites under each entry and
  records every outcome (``python tests/regressions/runner.py OUT.json [ID ...]``);
* :mod:`regressions.judge`: whether those outcomes prove each entry is caught.
"""
