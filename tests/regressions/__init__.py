"""Injected Keras regressions: the proof that the suites catch what they are named for.

* :mod:`regressions.patches`: helpers that patch Keras classes, and the one apply/undo path;
* :mod:`regressions.entry`: :class:`~regressions.entry.Regression`, the form of an entry
  (patch, tests that must fail and the message they must give, tests that must stay green);
* :mod:`regressions.catalogue`: the entries, and :data:`~regressions.catalogue.REGRESSIONS`,
  every one the fast proof runs: the layers' own, :mod:`regressions.training_path`'s
  (gradients, compiled execution, mixed precision) and :mod:`regressions.surface`'s
  (ConvLSTM, stacked cells, Keras 2 models);
* :mod:`regressions.runner`: one pytest session that runs the suites under each entry and
  records every outcome (``python tests/regressions/runner.py OUT.json [ID ...]``);
* :mod:`regressions.judge`: whether those outcomes prove each entry is caught;
* :mod:`regressions.wording`: the message templates of pytest_rnn/ and suites/, read
  statically, and whether a pattern (the catalogue's, the ledger's) quotes wording one of
  them produces; :func:`~regressions.wording.quoted` turns a check's message constant
  into a pattern.
"""
