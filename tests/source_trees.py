"""The project's Python sources, parsed once per test session.

Several tests read the source rather than run it (the one-way imports between subpackages,
the modules that import pytest, import circles, other packages' private names): each asks
here instead of parsing the same files again. The trees are shared, so a test must not
change them.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path


@functools.cache
def tree(path: Path) -> ast.Module:
    """The parsed module at ``path`` (read as UTF-8)."""
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
