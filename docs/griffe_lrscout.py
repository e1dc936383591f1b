"""Griffe extension: lrscout's docstrings, written for ``help()`` and doctest, read as Markdown.

The docstrings follow STYLE.md: Google sections with a runnable ``Example:``,
names grouped on one ``Args`` entry (``start_lr, end_lr: As in ...``), and
reST roles such as :func:`lrscout.range_test`. Griffe knows ``Examples:``
only and reads roles as plain text, so before parsing this extension renames
the section, joins a name list that wraps onto the next line, and turns a role
into a code span. The source files are not changed.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:$", flags=re.MULTILINE)
_WRAPPED_NAMES = re.compile(r"^(\s+)(\w+(?:, \w+)*,)\n\1(\w+(?:, \w+)*:)", flags=re.MULTILINE)
_ROLE = re.compile(r":(?:class|func|meth|attr|data|mod|exc|obj):`(~?)([^`]+)`")


def markdown_docstring(text: str) -> str:
    """``text`` with the three rewrites above."""
    text = _EXAMPLE.sub(r"\1Examples:", text)
    text = _WRAPPED_NAMES.sub(r"\1\2 \3", text)
    # A leading ~ shows the last name only, as in Sphinx.
    return _ROLE.sub(lambda m: f"`{m.group(2).split('.')[-1] if m.group(1) else m.group(2)}`", text)


class MarkdownDocstrings(griffe.Extension):
    """Rewrite every docstring with :func:`markdown_docstring` as it is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_docstring(obj.docstring.value)
