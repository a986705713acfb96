"""The fast suite against a matrix of Keras/TensorFlow releases, one command:

    nox                          # every release of MATRIX (about 4 min each, see README)
    nox -s "releases(keras='3.0.5')"   # one release
    nox -t ci                    # the reduced matrix .ci/run runs (the floor)
    nox -- -x -k dropout         # arguments after -- go to pytest

Each session is a fresh virtual environment with one TensorFlow (the ``tensorflow-cpu``
distribution: the plugin treats every TensorFlow distribution as the same TensorFlow)
and one Keras, both installed by name, then this checkout without its dependencies
(so pip does not add the ``tensorflow`` distribution beside ``tensorflow-cpu``) and the
rest of pyproject's dependencies. On each release, the tests that observe a known Keras
defect of that release are strict xfails (``pytest_rnn/ledger.json``); any other failure
is red.
"""

from __future__ import annotations

import re
from pathlib import Path

import nox
import tomllib  # Python >= 3.11 for nox itself

ROOT = Path(__file__).parent
nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = False

#: (TensorFlow, Keras, tags). A Keras release installs only with the TensorFlow releases
#: whose requirements admit it (TF 2.16: keras>=3.0, 2.17: >=3.2, 2.18/2.19: >=3.5,
#: 2.20: >=3.10, 2.21: >=3.12), so the floor needs the oldest TensorFlow.
MATRIX = [
    ("2.16.2", "3.0.0", ["floor", "ci"]),  # the oldest supported Keras (pyproject.toml)
    ("2.18.1", "3.8.0", ["middle"]),
    ("2.21.0", "3.15.1", ["newest"]),
]


def _other_dependencies() -> list[str]:
    """pyproject's dependencies and dev extra, less TensorFlow and Keras (pinned here) and
    JAX: the matrix runs the TensorFlow backend, and installing ``jax>=0.5`` beside
    TensorFlow 2.16 brought NumPy 2.4 and ml-dtypes 0.6, which TensorFlow 2.16 rejects
    (numpy<2, ml-dtypes~=0.3.1)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["dev"]
    return [d for d in deps if not re.match(r"(tensorflow|keras|jax)\b", d)]


@nox.session
@nox.parametrize(
    ("tensorflow", "keras"),
    [nox.param(tf, keras, id=f"keras='{keras}'", tags=tags) for tf, keras, tags in MATRIX],
)
def releases(session: nox.Session, tensorflow: str, keras: str) -> None:
    session.install(f"tensorflow-cpu=={tensorflow}", f"keras=={keras}", *_other_dependencies())
    session.install("--no-deps", "-e", ".")
    session.run("python", "-c", "import keras, tensorflow as tf; "
                "print('nox: Keras', keras.__version__, 'TensorFlow', tf.__version__)")
    session.run("pytest", "-m", "not slow", *session.posargs)
