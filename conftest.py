"""This repository's own configuration. Nothing a user of the plugin needs lives here.

CI and developer checkouts have ``../shared`` beside the repository with a
pickle-free IMDB subset. Point the plugin at it through the environment (the
lowest-precedence source), so ``--rnn-imdb-path`` or an ini value still win.
"""

import os
from pathlib import Path

_SHARED_IMDB = (
    Path(__file__).resolve().parent.parent
    / "shared" / "datasets" / "imdb" / "imdb_keras_num_words500_subset.npz"
)

if _SHARED_IMDB.is_file():
    os.environ.setdefault("PYTEST_RNN_IMDB_PATH", str(_SHARED_IMDB))
