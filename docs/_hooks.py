"""MkDocs hooks of this site (mkdocs.yml, ``hooks``); not a page.

GitHub's Markdown needs a pipe inside a table cell's code span escaped (``\\|``) and shows
it as ``|``; Python-Markdown already keeps code spans whole and would show the backslash.
The pages are written for both, so the site unescapes those pipes before rendering: a
regular expression in the ledger table reads the same on GitHub and here.
"""

from __future__ import annotations

import re

_CODE_SPAN = re.compile(r"`[^`\n]*`")


def on_page_markdown(markdown: str, **_kwargs) -> str:
    return "\n".join(
        _CODE_SPAN.sub(lambda span: span.group(0).replace("\\|", "|"), line)
        if line.lstrip().startswith("|") else line
        for line in markdown.split("\n"))
