"""The fast suite on every Keras 3 minor release, one command:

    nox                                  # the whole matrix: one session per minor release
    nox -s "releases(keras='3.13.2')"    # one release
    nox -t ci                            # what .ci/run runs: the floor and this commit's
                                         # middle release (scripts/release_matrix.py)
    nox -t floor -- -x -k dropout        # arguments after -- go to pytest
    nox -s "tools(floor)"                # pytest and pytest-benchmark at their declared
                                         # floor (and "tools(newest)": their newest)
    python scripts/release_matrix.py collect --write   # then: the docs' table from the runs

The releases and their TensorFlow are scripts/release_matrix.py's. Each session is a
fresh virtual environment with one TensorFlow (the ``tensorflow-cpu`` distribution: the
plugin treats every TensorFlow distribution as the same TensorFlow) and one Keras, both
installed by name, then this checkout without its dependencies (so pip does not add the
``tensorflow`` distribution beside ``tensorflow-cpu``) and the rest of pyproject's
dependencies. On each release, the tests that observe a known Keras defect of that
release are strict xfails (``pytest_rnn/ledger.json``); any other failure is red. A
session run without pytest arguments records its row (counts, the ledger entries that
apply) under .nox/release-matrix/, even when it fails.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nox
import tomllib  # Python >= 3.11 for nox itself

ROOT = Path(__file__).parent
sys.path.insert(0, str(ROOT / "scripts"))
import release_matrix  # noqa: E402

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = False

_COMMIT = release_matrix.head_commit(ROOT)
_CI_MIDDLE = release_matrix.ci_middle(_COMMIT).keras if _COMMIT else None


def _tags(session: release_matrix.Session) -> list[str]:
    ci = session.role == "floor" or session.keras == _CI_MIDDLE
    return [session.role] + (["ci"] if ci else [])


def _other_dependencies() -> list[str]:
    """pyproject's dependencies and dev extra, less the docs site's tools (CI builds the site
    once), TensorFlow and Keras (pinned here) and
    JAX: the matrix runs the TensorFlow backend, and installing ``jax>=0.5`` beside
    TensorFlow 2.16 brought NumPy 2.4 and ml-dtypes 0.6, which TensorFlow 2.16 rejects
    (numpy<2, ml-dtypes~=0.3.1)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["dev"]
    return [d for d in deps if not re.match(r"(tensorflow|keras|jax)\b|mkdocs", d)]


@nox.session
@nox.parametrize(
    ("tensorflow", "keras", "role"),
    [nox.param(s.tensorflow, s.keras, s.role, id=s.id, tags=_tags(s))
     for s in release_matrix.sessions()],
)
def releases(session: nox.Session, tensorflow: str, keras: str, role: str) -> None:
    session.install(f"tensorflow-cpu=={tensorflow}", f"keras=={keras}", *_other_dependencies())
    session.install("--no-deps", "-e", ".")
    session.run("python", "-c", "import keras, tensorflow as tf; "
                "print('nox: Keras', keras.__version__, 'TensorFlow', tf.__version__)")
    # not session.create_tmp(): that sets TMPDIR inside this checkout, where the plugin's
    # own pytester runs would take the repository's pyproject.toml as their rootdir
    junit = release_matrix.ROWS / f"junit-{keras}.xml"
    junit.unlink(missing_ok=True)
    try:
        # the run that produces the record cannot check it (tests/test_releases.py)
        session.run("pytest", "-m", "not slow", f"--junitxml={junit}", *session.posargs,
                    env={release_matrix.SESSION_VARIABLE: keras})
    finally:
        if junit.is_file() and not session.posargs:  # a partial run is not a matrix row
            session.run("python", "scripts/release_matrix.py", "record", str(junit),
                        "--role", role)


@nox.session
@nox.parametrize("which", [nox.param(w, id=w, tags=["ci", "tools"])
                           for w in release_matrix.TOOL_RELEASES])
def tools(session: nox.Session, which: str) -> None:
    """The fast suite with pytest and pytest-benchmark at their declared floor or newest
    release, on the newest Keras and TensorFlow of the matrix: the plugin's hooks and the
    internals behind pytest_rnn/adapters are checked on both ends of the range."""
    newest = release_matrix.sessions()[-1]
    pins = [f"{name}=={version}" for name, version in release_matrix.TOOL_RELEASES[which].items()]
    others = [d for d in _other_dependencies() if not re.match(r"pytest(-benchmark)?(?![\w-])", d)]
    session.install(f"tensorflow-cpu=={newest.tensorflow}", f"keras=={newest.keras}", *pins,
                    *others)
    session.install("--no-deps", "-e", ".")
    session.run("python", "-c", "import pytest, pytest_benchmark; print('nox: pytest', "
                "pytest.__version__, 'pytest-benchmark', pytest_benchmark.__version__)")
    session.run("pytest", "-m", "not slow", *session.posargs)
