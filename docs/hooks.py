"""MkDocs hook: ``{{ readme "Heading" }}`` in a page becomes that section of README.md,
and a page with a malformed Markdown table fails the build.

The guide and the benchmark summaries live in the README, read on GitHub and
in the package metadata; the site includes them at build time so the two
cannot drift. A section runs from its heading (any level) to the next heading
of the same or a higher level; its own heading is kept. An unknown heading
fails the build. So does a table whose header, separator and rows do not all
have the same number of cells: Python-Markdown renders it as a wall of pipes
and ``mkdocs build --strict`` does not notice.
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


def _cells(line: str) -> int:
    """The cells of a table line: ``|`` separates them, except escaped or inside a code span."""
    text = line.strip()
    text = text[1:] if text.startswith("|") else text
    text = text[:-1] if text.endswith("|") and not text.endswith("\\|") else text
    count, code, escaped = 1, False, False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "`":
            code = not code
        elif char == "|" and not code:
            count += 1
    return count


_SEPARATOR = re.compile(r"^\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?$")


def malformed_tables(text: str) -> list[str]:
    """What is wrong with each Markdown table of ``text`` (outside code fences): ``[]`` when nothing.

    A table is a run of lines that start with ``|``: a header, a separator
    (``|---|---|``) and rows, all with the header's number of cells.

    Example:
        >>> malformed_tables("| a | b |\\n|---|---|\\n| 1 | `x|y` |\\n")
        []
        >>> malformed_tables("| a | b |\\n|---|---|---|\\n| 1 | 2 |\\n\\n| task\\n")
        ['line 2: the separator has 3 cells, the header 2', 'line 5: a table line without a separator line']
    """
    problems: list[str] = []
    lines = text.splitlines()
    fenced = False
    i = 0
    while i < len(lines):
        if lines[i].startswith("```"):
            fenced = not fenced
        if fenced or not lines[i].lstrip().startswith("|"):
            i += 1
            continue
        start = i
        while i < len(lines) and lines[i].lstrip().startswith("|"):
            i += 1
        block = lines[start:i]
        if len(block) < 2 or not _SEPARATOR.match(block[1].strip()):
            problems.append(f"line {start + 1}: a table line without a separator line")
            continue
        width = _cells(block[0])
        for offset, line in enumerate(block[1:], start=1):
            if _cells(line) != width:
                what = "the separator" if offset == 1 else "a row"
                problems.append(
                    f"line {start + offset + 1}: {what} has {_cells(line)} cells, the header {width}"
                )
    return problems


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    text = README.read_text(encoding="utf-8")
    page = _DIRECTIVE.sub(lambda match: readme_section(text, match.group(1)), markdown)
    problems = malformed_tables(page)
    if problems:
        name = getattr(kwargs.get("page"), "file", None)
        where = getattr(name, "src_uri", "a page")
        raise ValueError(f"{where}: malformed Markdown tables: " + "; ".join(problems))
    return page
