"""Where the catalogue's and the ledger's message patterns find their wording.

A pattern (``Regression.message`` and ``messages``, a ledger entry's ``match``) quotes what
a check says when it fails, and that wording lives in ``pytest_rnn/`` and ``suites/``. This
module reads those sources statically (``ast``) into message templates: string constants
and f-strings, each placeholder a hole that may hold anything (a module-level string
constant in a placeholder is read as its text). :func:`unworded` then lists the parts of a
pattern no template produces, so a pattern left quoting wording that no code says any more
fails a fast test instead of the proof run.

What is checked of a pattern is its literal skeleton: for each way of matching it (each
alternative, inner alternatives expanded) its longest literal run. A run is produced when
one template covers more than half of it with its own literal text, the holes taking the
rest. The text in a hole counts as covered as far as, one level down, another template
covers it (a message built from a helper's ``what=``), and at that level when it is a whole
literal that reads as wording: a phrase, or a name of eight characters or more (a dict key,
a tensor's name). Short glue such as ``f"  {key}: {value}"`` is tried with every run.
Docstrings and ``match=`` arguments (what the code expects another library to say) are not
templates. Wording that no template here produces (TensorFlow's, Keras's, pytest's) is
exempt only through :data:`EXEMPT_WORDING`, with the reason, or for a ledger entry when its
``differs`` records it.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Iterable
from functools import cache
from pathlib import Path

try:  # the regular-expression parser moved under re in Python 3.11
    from re import _constants as sre_constants
    from re import _parser as sre_parse
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants
    import sre_parse

ROOT = Path(__file__).resolve().parents[2]
#: The folders whose Python sources hold every message a suite test can fail with.
SOURCES = ("pytest_rnn", "suites")

#: Literal runs of patterns that no template of :data:`SOURCES` produces, each with the
#: reason: another library's own message (the exception a ledger entry pins, pytest's
#: failure of ``pytest.raises``), or pytest's rendering of a failed comparison. A key is
#: a run as :func:`unworded` reports it; one that no pattern has any more fails
#: tests/test_catalogue.py.
EXEMPT_WORDING: dict[str, str] = {
    "DID NOT RAISE": "pytest.raises' own failure when nothing was raised",
    "('auto', 'auto') == (False, False)": "pytest's rendering of a failed comparison",
    "'recurrent_initializer': 'OrthogonalInitializer'":
        "pytest's rendering of a failed comparison of configs",
    "Shapes of all inputs must match":
        "TensorFlow's InvalidArgumentError (tf.stack of tensors of different shapes)",
    "Incompatible shapes: [1,": "TensorFlow's InvalidArgumentError (a broadcast)",
    "Incompatible shapes: [2,5] vs. [3,5]": "TensorFlow's InvalidArgumentError (a broadcast)",
    "Incompatible shapes: [2,4,4,2] vs. [2,0,0,2]":
        "TensorFlow's InvalidArgumentError (a broadcast)",
    ") must be no greater than rank of output shape":
        "TensorFlow's InvalidArgumentError (tf.broadcast_to)",
    "symbolic `tf.Tensor` as a Python `bool` is not allowed":
        "TensorFlow's OperatorNotAllowedInGraphError",
    "Cannot broadcast to shape with fewer dimensions": "JAX's ValueError (broadcast_to)",
    "Incompatible shapes for broadcasting: shapes=[(": "JAX's ValueError (a broadcast)",
    "expanded size of the tensor (": "PyTorch's RuntimeError (Tensor.expand)",
    ") must be greater or equal to the number of dimensions in the tensor":
        "PyTorch 2.13's RuntimeError (Tensor.expand)",
    "'NoneType' object is not iterable": "Python's TypeError, raised inside Keras",
    'can only concatenate list (not "tuple") to list': "Python's TypeError, raised inside Keras",
    "'list' object has no attribute 'assign'": "Python's AttributeError, raised inside Keras",
    "Cannot map function to unknown object": "Keras's ValueError (keras.tree)",
    "Undefined shapes are not supported": "Keras's ValueError (a symbolic call)",
    "Cannot convert '": "Keras's ValueError (a shape it cannot read)",
    "with a weight list of length 6, but the layer was expecting 9 weights":
        "Keras's ValueError (set_weights)",
    "expected 3 variables, but received 0 variables during loading":
        "Keras's ValueError (loading a .keras file)",
    "Unrecognized keyword arguments passed to GRU: {'implementation': 1}":
        "Keras's ValueError (a constructor argument it does not take)",
    "Could not interpret initializer identifier: {'module': 'keras.initializers', "
    "'class_name': 'Orthogonal'": "Keras's ValueError (deserializing an initializer)",
    "'> could not be deserialized": "Keras's TypeError (deserializing a class)",
    "model_from_json: TypeError: Could not locate class 'Sequential'":
        "Keras's TypeError, after the suite's 'model_from_json: '",
}


def quoted(text: str) -> str:
    """A pattern matching ``text`` literally: a check's message constant, quoted in an
    entry's pattern (``re.escape``, its spaces left as they are so the pattern still reads
    as the message)."""
    return re.escape(text).replace("\\ ", " ")


_HOLE = None  # a placeholder among a template's pieces
_FORMAT_FIELD = re.compile(r"\{[^{}]*\}")  # str.format's fields are holes too
_GRAM = 6  # templates that share a run of this many characters are aligned with it
_CANDIDATES = 12  # the templates sharing the most such runs with it
_DEPTH = 2  # a run, the text in its template's holes, and in theirs (whole literals only)


def _constants(tree: ast.Module) -> dict[str, str]:
    """The module-level string constants of ``tree`` (``NAME = "text"``)."""
    found = {}
    for node in tree.body:
        target = (node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1
                  else node.target if isinstance(node, ast.AnnAssign) else None)
        if (isinstance(target, ast.Name) and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)):
            found[target.id] = node.value.value
    return found


def _named(node: ast.expr, names: dict[str, str]) -> str | None:
    """The text of a constant ``node`` names (``NAME`` or ``module.NAME``), if known."""
    if isinstance(node, ast.Name):
        return names.get(node.id)
    return names.get(node.attr) if isinstance(node, ast.Attribute) else None


def _pieces(node: ast.expr, names: dict[str, str]) -> list[str | None] | None:
    """The literal pieces of a string expression, ``_HOLE`` for each placeholder; None
    when ``node`` builds no string."""
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, str):
            return None
        parts = _FORMAT_FIELD.split(node.value)
        return [piece for part in parts for piece in (_HOLE, part)][1:]
    if isinstance(node, ast.JoinedStr):
        out: list[str | None] = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                out.append(value.value)
            elif value.conversion == -1 and value.format_spec is None:
                out.append(_named(value.value, names))
            else:
                out.append(_HOLE)
        return out
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _pieces(node.left, names), _pieces(node.right, names)
        if left is None and right is None:
            return None
        left = left if left is not None else [_named(node.left, names)]
        right = right if right is not None else [_named(node.right, names)]
        return left + right
    return None


def _literals(pieces: list[str | None]) -> tuple[str, ...]:
    """The literal texts between the holes (one more than there are holes)."""
    out = [""]
    for piece in pieces:
        if piece is _HOLE:
            out.append("")
        else:
            out[-1] += piece
    return tuple(out)


def _templates(tree: ast.Module, names: dict[str, str]) -> set[tuple[str, ...]]:
    found = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            return  # a docstring
        if isinstance(node, ast.keyword) and node.arg == "match":
            return  # what the code expects another library to say
        if isinstance(node, (ast.Constant, ast.JoinedStr, ast.BinOp)):
            pieces = _pieces(node, names)
            if pieces is not None:
                literals = _literals(pieces)
                if any(literals):
                    found.add(literals)
                return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


class Templates:
    """Message templates (each the literal texts between its holes), and what they produce."""

    def __init__(self, templates: Iterable[tuple[str, ...]]) -> None:
        self.templates = tuple(templates)
        self._text = "\0".join(p for t in self.templates for p in t)
        # what a hole may hold whole: a phrase or a long name, not a word or a symbol
        self._wording = {p for t in self.templates for p in t
                         if " " in p.strip() or len(p) >= 8}
        self._index: dict[str, set[int]] = {}
        for n, template in enumerate(self.templates):
            for piece in template:
                for k in range(len(piece) - _GRAM + 1):
                    self._index.setdefault(piece[k:k + _GRAM], set()).add(n)
        # short glue such as f"  {key}: {value}" shares no run with anything: always tried
        self._glue = [t for t in self.templates
                      if 1 < len(t) <= 3 and all(len(p) < _GRAM for p in t)]
        self._covered: dict[tuple[str, int], int] = {}

    def produce(self, run: str) -> bool:
        """Whether some template covers more than half of ``run``."""
        return 2 * self.covered(run) > len(run)

    def covered(self, text: str, depth: int = _DEPTH) -> int:
        """How many characters of ``text`` the best-aligned template covers, the text in
        its holes counted as far as it is covered one level down (see the module
        docstring): at the top, ``text`` may lie inside a literal; at every level it may
        be a whole literal that reads as wording; at the last, nothing else."""
        key = (text, depth)
        if key not in self._covered:
            if len(text) < 4:
                found = 0
            elif (depth == _DEPTH and text in self._text) or text in self._wording:
                found = len(text)
            elif not depth:
                found = 0
            else:
                found = max((self._align(text, t, depth) for t in self._candidates(text)),
                            default=0)
            self._covered[key] = found
        return self._covered[key]

    def _candidates(self, text: str) -> list[tuple[str, ...]]:
        shared: Counter[int] = Counter()
        for k in range(len(text) - _GRAM + 1):
            shared.update(self._index.get(text[k:k + _GRAM], ()))
        return [self.templates[n] for n, _ in shared.most_common(_CANDIDATES)] + self._glue

    def _hole(self, text: str, depth: int) -> int:
        return self.covered(text, depth - 1) if text else 0

    def _align(self, run: str, literals: tuple[str, ...], depth: int) -> int:
        """The characters of ``run`` covered when it is read as a part of ``literals``
        with its holes filled: it starts in a literal's tail or in a hole, takes each next
        literal at its first place, and ends in a hole or a literal's head."""
        best, last = 0, len(literals) - 1
        for i, first in enumerate(literals[:-1]):
            for tail in _tails_starting(first, run):
                rest, got, at, j = run[len(tail):], len(tail), 0, i + 1
                while True:
                    literal = literals[j]
                    head = next((m for m in range(min(len(rest) - at, len(literal)), 0, -1)
                                 if rest.endswith(literal[:m])), 0)
                    best = max(best, got + head + self._hole(rest[at:len(rest) - head], depth))
                    found = rest.find(literal, at) if literal else at
                    if j == last or found < 0:
                        break
                    got += len(literal) + self._hole(rest[at:found], depth)
                    at, j = found + len(literal), j + 1
        return best


def _tails_starting(literal: str, run: str) -> list[str]:
    """The tails of ``literal`` that ``run`` starts with, the empty one included."""
    tails = [""]
    k = literal.find(run[0])
    while k >= 0:
        if run.startswith(literal[k:]):
            tails.append(literal[k:])
        k = literal.find(run[0], k + 1)
    return tails


@cache
def templates() -> Templates:
    """Every message template of :data:`SOURCES` (parsed once per session)."""
    trees = [ast.parse(path.read_text(encoding="utf-8"))
             for folder in SOURCES for path in sorted((ROOT / folder).rglob("*.py"))]
    names: dict[str, str] = {}
    twice: set[str] = set()
    for tree in trees:
        for name, text in _constants(tree).items():
            if names.setdefault(name, text) != text:
                twice.add(name)  # two modules, two texts: a hole
    for name in twice:
        del names[name]
    found: set[tuple[str, ...]] = set()
    for tree in trees:
        found |= _templates(tree, names)
    return Templates(sorted(found))


def _ways(items: list, cap: int = 64) -> list[list[str]]:
    """Each way of matching ``items`` (a parsed pattern) as its literal runs: an inner
    alternative forks the way, anything but a literal character ends a run."""
    ways = [[""]]
    for op, av in items:
        if op is sre_constants.LITERAL:
            for way in ways:
                way[-1] += chr(av)
        elif op is sre_constants.AT:
            continue
        elif op in (sre_constants.SUBPATTERN, sre_constants.BRANCH):
            inner = [list(av[3])] if op is sre_constants.SUBPATTERN else [list(a) for a in av[1]]
            tails = [t for alternative in inner for t in _ways(alternative, cap)]
            ways = [way[:-1] + [way[-1] + t[0]] + t[1:] for way in ways for t in tails][:cap]
        else:
            for way in ways:
                way.append("")
    return ways


def skeleton(pattern: str) -> list[str]:
    """The longest literal run of each way of matching ``pattern``, stripped."""
    items = list(sre_parse.parse(pattern))
    runs = (max((run.strip() for run in way), key=len) for way in _ways(items))
    return list(dict.fromkeys(runs))


def unworded(pattern: str, *, recorded: str = "",
             exempt: Iterable[str] = EXEMPT_WORDING) -> list[str]:
    """The runs of ``pattern``'s skeleton that no template produces, that ``recorded``
    (the exception text a ledger entry records) does not hold and that are not exempt."""
    exempt = set(exempt)
    return [run for run in skeleton(pattern)
            if len(run) >= 4 and run not in exempt and run not in recorded
            and not templates().produce(run)]
