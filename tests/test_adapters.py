"""Other packages' internals: each is reachable on the installed releases, a missing one
fails in one line, and none is used outside its adapter (pytest_rnn/adapters)."""

from __future__ import annotations

import ast
import re
import types
from pathlib import Path

import pytest
import source_trees

from pytest_rnn import adapters
from pytest_rnn.adapters import (
    Internal,
    InternalChanged,
    benchmark_internals,
    keras_internals,
    pytest_internals,
    tensorflow_internals,
)

ROOT = Path(__file__).resolve().parents[1]
INTERNALS = adapters.internals()
#: Where other packages' private names may appear: the adapters; the regression harness,
#: whose injected regressions replace Keras internals by design (monkeypatch raises when a
#: target is gone, so the proof of sensitivity fails loudly); and this file's own samples.
ALLOWED = ("pytest_rnn/adapters/", "tests/regressions/", "tests/test_adapters.py")
#: Module paths that are not another package's public API.
PRIVATE_MODULE = re.compile(
    r"^(?:_pytest|keras\.src|tensorflow\.(?:python|core|compiler)"
    r"|jax\.(?:_src|experimental|interpreters)|torch\._[a-zA-Z]\w*)(?:\.|$)|^pytest_benchmark\.")


def _resolves(internal: Internal) -> None:
    """The loud check itself: resolving raises InternalChanged (a failure), never skips."""
    adapters.resolve(internal)


@pytest.mark.parametrize("internal", INTERNALS, ids=lambda i: f"{i.distribution}:{i.name}")
def test_every_internal_is_there_on_the_installed_release(internal):
    if adapters.installed_version(internal.distribution) is None:
        pytest.skip(f"{internal.distribution} is not installed: nothing of it is used")
    if not internal.needed_here():
        pytest.skip(f"{internal.name} is used only by other releases of "
                    f"{internal.distribution} ({adapters.installed_version(internal.distribution)}"
                    " installed)")
    _resolves(internal)


def test_a_parsed_config_has_what_the_option_repair_sets(pytestconfig):
    pytest_internals.check_config(pytestconfig)


def test_a_finished_benchmark_keeps_its_rounds_where_the_adapter_reads_them(pytester):
    pytest.importorskip("pytest_benchmark")
    pytester.makepyfile(test_bench="""
        from pytest_rnn.adapters.benchmark_internals import round_statistics

        def test_rounds(benchmark):
            benchmark.pedantic(lambda: None, rounds=3, iterations=1)
            stats = round_statistics(benchmark)
            assert stats["rounds"] == 3 and len(stats["data"]) == 3
    """)
    pytester.runpytest_inprocess("-p", "no:randomly", "-q").assert_outcomes(passed=1)


@pytest.mark.parametrize("internal", INTERNALS, ids=lambda i: f"{i.distribution}:{i.name}")
def test_a_missing_internal_fails_in_one_line_naming_it_and_the_release(internal, monkeypatch):
    if adapters.installed_version(internal.distribution) is None or not internal.needed_here():
        pytest.skip(f"{internal.name} is not used with the installed releases")
    owner, name = adapters.owner_and_name(internal)
    with monkeypatch.context() as patched:  # undone before pytest reports (it uses pytest's)
        patched.delattr(owner, name)
        with pytest.raises(InternalChanged) as caught:
            _resolves(internal)
    message = str(caught.value)
    assert "\n" not in message
    assert internal.name in message
    assert adapters.installed_version(internal.distribution) in message


def test_a_changed_signature_fails_naming_the_parameter(monkeypatch):
    internal = keras_internals.TF_CUDNN_LSTM
    if adapters.installed_version("tensorflow") is None:
        pytest.skip("tensorflow is not installed")
    owner, name = adapters.owner_and_name(internal)
    monkeypatch.setattr(owner, name, lambda inputs, mask: None)
    with pytest.raises(InternalChanged, match="no longer takes go_backwards, return_sequences"):
        _resolves(internal)


def test_a_config_without_the_private_attributes_fails_naming_them():
    with pytest.raises(InternalChanged, match=r"pytest \d.*has no _parser, _rootpath.*inicfg"):
        pytest_internals.check_config(types.SimpleNamespace())


def test_a_benchmark_without_its_statistics_fails_naming_them():
    fixture = types.SimpleNamespace(stats=types.SimpleNamespace(stats=types.SimpleNamespace(
        rounds=3, median=1.0, mean=1.0, stddev=0.0, min=1.0)))
    with pytest.raises(InternalChanged, match="statistics have no data"):
        benchmark_internals.round_statistics(fixture)
    assert benchmark_internals.round_statistics(types.SimpleNamespace()) is None


def test_the_checks_that_use_an_internal_fail_when_it_is_gone(monkeypatch):
    """A check that needs an internal fails (InternalChanged), it does not skip or fall
    back: cuDNN routing on TensorFlow, the fused-kernel spy on the active backend."""
    keras = pytest.importorskip("keras")
    from pytest_rnn import backends

    if keras.backend.backend() == "tensorflow":
        from pytest_rnn.checks.cudnn import simulated_gpu_routing

        if not keras_internals.TF_ASSERT_VALID_MASK.needed_here():
            pytest.skip(f"Keras {keras.__version__} predates use_cudnn (3.2.0): nothing "
                        "simulates cuDNN routing")

        monkeypatch.delattr(*adapters.owner_and_name(keras_internals.TF_CUDNN_GRU))
        with pytest.raises(InternalChanged, match="_cudnn_gru"), simulated_gpu_routing():
            pass
    else:
        monkeypatch.delattr(*adapters.owner_and_name(keras_internals.BACKEND_GRU))
        with pytest.raises(InternalChanged, match="backend.gru"), \
                backends.observed_routing(simulate_gpu=False):
            pass


def test_the_option_repair_warns_and_names_the_equals_form_when_pytest_moved(monkeypatch):
    """The repair of a user's command line is not worth failing their run for: it warns."""
    from pytest_rnn.plugin import cmdline

    config = pytest.Config.__new__(pytest.Config)
    config.__dict__.update(_parser=types.SimpleNamespace(extra_info={}), _rootpath=None,
                           _inipath=None, inicfg={}, _inicache={},
                           getini=lambda name: [], option=types.SimpleNamespace())
    monkeypatch.setattr(pytest_internals, "parse_known_args", lambda config, args: None)
    flag = cmdline.value_flags()[0]
    with monkeypatch.context() as patched, pytest.warns(
            pytest.PytestConfigWarning, match=rf"determine_setup.*{flag}=VALUE"):
        patched.delattr(*adapters.owner_and_name(pytest_internals.DETERMINE_SETUP))
        assert cmdline.repair(config, [flag, "x"]) is False


# -- no private name outside its adapter ----------------------------------------------------


def _sources() -> list[Path]:
    paths = [*ROOT.glob("pytest_rnn/**/*.py"), *ROOT.glob("suites/**/*.py"),
             *ROOT.glob("tests/**/*.py"), *ROOT.glob("scripts/*.py"), *ROOT.glob("*.py")]
    return sorted(p for p in paths if ".nox" not in p.parts and ".venv" not in p.parts)


def _own_private_names(trees: list[ast.AST]) -> set[str]:
    """Underscore names this project defines itself (its own internals may be shared)."""
    own = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                own.add(node.name)
            elif isinstance(node, ast.arg):
                own.add(node.arg)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                own.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                own.add(node.attr)
            elif isinstance(node, ast.alias):
                own.add(node.asname or node.name.split(".")[-1])
    return {n for n in own if n.startswith("_")}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(
                body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            found.add(id(body[0].value))
    return found


_ATTRIBUTE_CALLS = {"getattr", "setattr", "hasattr", "delattr"}


def _private_uses(tree: ast.AST, own: set[str]) -> list[tuple[int, str]]:
    """Imports of private modules, ``x._name`` and ``getattr(x, "_name")`` (and setattr,
    hasattr, delattr, monkeypatch's) of names this project does not define, and strings
    naming a private module path (``monkeypatch.setattr("keras.src....", ...)``)."""
    docs = _docstrings(tree)
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            uses += [(node.lineno, a.name) for a in node.names if PRIVATE_MODULE.match(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if PRIVATE_MODULE.match(node.module):
                uses.append((node.lineno, node.module))
            elif not node.module.startswith(("pytest_rnn", "regressions", "__future__")):
                uses += [(node.lineno, f"{node.module}.{a.name}") for a in node.names
                         if a.name.startswith("_") and a.name not in own]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not (
                node.attr.startswith("__") and node.attr.endswith("__")) and node.attr not in own:
            uses.append((node.lineno, f".{node.attr}"))
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if called in _ATTRIBUTE_CALLS:
                uses += [(a.lineno, repr(a.value)) for a in node.args
                         if isinstance(a, ast.Constant) and isinstance(a.value, str)
                         and re.fullmatch(r"_[a-zA-Z]\w*", a.value) and a.value not in own]
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(
                node) not in docs and " " not in node.value and PRIVATE_MODULE.match(node.value):
            uses.append((node.lineno, node.value))
    return uses


def test_no_private_name_of_another_package_outside_its_adapter():
    parsed = {p: source_trees.tree(p) for p in _sources()}
    own = _own_private_names(list(parsed.values()))
    found = []
    for path, tree in parsed.items():
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(ALLOWED):
            continue
        found += [f"{rel}:{line}: {name}" for line, name in _private_uses(tree, own)]
    assert not found, ("other packages' private names outside pytest_rnn/adapters (add an "
                       "Internal to the package's adapter and use it there):\n"
                       + "\n".join(found))


def test_the_scan_finds_a_private_name_written_outside_an_adapter():
    """The scan above can fail: the uses this project replaced are all found."""
    private_pytest = pytest_internals.CHECK_VERSION.module  # the adapter's own entry
    code = ("import keras.src.backend\n"
            f"from {private_pytest} import findpaths\n"
            "config._parser.parse_known_args([])\n"
            "mp.setattr('keras.src.datasets.imdb.get_file', f)\n"
            "getattr(module, '_is_gpu_available')\n")
    found = {name for _, name in _private_uses(ast.parse(code), own={"_mine"})}
    assert found == {"keras.src.backend", private_pytest, "._parser",
                     "keras.src.datasets.imdb.get_file", "'_is_gpu_available'"}


def test_every_adapter_lists_its_internals_and_names_its_package():
    assert {i.distribution for i in INTERNALS} <= set(adapters.ADAPTERS.values())
    names = [i.name for i in INTERNALS]
    assert len(names) == len(set(names)), "an internal is listed twice"
    assert tensorflow_internals.CLEAR_CACHES in INTERNALS
