"""The form of a catalogue entry, in a module of its own.

:mod:`regressions.catalogue` gathers the entries of :mod:`regressions.training_path` and
:mod:`regressions.surface`; those modules need :class:`Regression` too, and importing it
from the catalogue would be circular.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field

from regressions.patches import Apply


@dataclass(frozen=True)
class Regression:
    """One injected regression and what must notice it.

    ``message`` is a regular expression (``re.search``) that the failure message of every
    ``fails`` test must match; ``messages`` overrides it for single selectors. ``gap``,
    when set, says why the suites do not yet catch the regression on an assertion: its
    proof is then an expected failure (strict, so it turns red once the gap is closed).
    ``bypassed`` maps a Keras backend to why the patch cannot reach the named tests there
    (the backend computes them in code the patch does not replace, such as JAX's fused GRU
    scan, or the tests pin another backend's routing); on that backend the entry is not
    run and its proof skips with that reason.
    """

    id: str
    description: str
    apply: Apply
    fails: tuple[str, ...]
    message: str
    passes: tuple[str, ...] = ()
    messages: Mapping[str, str] = field(default_factory=dict)
    gap: str = ""
    bypassed: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "messages", types.MappingProxyType(dict(self.messages)))
        object.__setattr__(self, "bypassed", types.MappingProxyType(dict(self.bypassed)))
        stray = sorted(set(self.messages) - set(self.fails))
        if stray:
            raise ValueError(f"{self.id}: messages for selectors not in fails: {stray}")
        for pattern in (self.message, *self.messages.values()):
            re.compile(pattern)  # a typo fails at import, not as a confusing mismatch

    @property
    def targets(self) -> tuple[str, ...]:
        return self.fails + self.passes

    def pattern(self, selector: str) -> str:
        """The regular expression the failure message of the tests ``selector`` names
        must match."""
        return self.messages.get(selector, self.message)
