"""The stored baselines of the regression suites, shipped as ``pytest_rnn.suites.baselines``
(data only: the JSON files beside this one)."""
