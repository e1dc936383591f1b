"""MkDocs hook: ``{{ readme "Heading" }}`` in a page becomes that section of README.md.

The guide and the benchmark tables live in the README, read on GitHub and in
the package metadata; the site includes them at build time so the two cannot
drift. A section runs from its heading (any level) to the next heading of the
same or a higher level; its own heading is kept. An unknown heading fails the
build.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[1] / "README.md"
_DIRECTIVE = re.compile(r'^\{\{ readme "([^"]+)" \}\}$', flags=re.MULTILINE)


def readme_section(text: str, heading: str) -> str:
    """The section of ``text`` under the Markdown heading ``heading``, with its heading."""
    lines = text.splitlines()
    fenced = False
    start = level = None
    for i, line in enumerate(lines):
        if line.startswith("```"):
            fenced = not fenced
        match = None if fenced else re.match(r"^(#+) (.*)$", line)
        if match is None:
            continue
        depth, title = len(match.group(1)), match.group(2).strip()
        if start is None and title == heading:
            start, level = i, depth
        elif start is not None and level is not None and depth <= level:
            return "\n".join(lines[start:i]).strip() + "\n"
    if start is None:
        raise ValueError(f"README.md has no section {heading!r}")
    return "\n".join(lines[start:]).strip() + "\n"


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    text = README.read_text(encoding="utf-8")
    return _DIRECTIVE.sub(lambda match: readme_section(text, match.group(1)), markdown)
