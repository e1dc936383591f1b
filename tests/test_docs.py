"""The documentation site builds with warnings as errors, includes the README, documents every public name."""

from __future__ import annotations

import html
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _load(name):
    spec = importlib.util.spec_from_file_location(f"_docs_{name}", ROOT / "docs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_section_runs_to_the_next_heading_of_its_level_and_skips_code():
    hooks = _load("hooks")
    text = "# Top\n\n## A\n\ntext\n\n```bash\n# not a heading\n```\n\n### A.1\n\nmore\n\n## B\n\nlast\n"
    assert (
        hooks.readme_section(text, "A")
        == "## A\n\ntext\n\n```bash\n# not a heading\n```\n\n### A.1\n\nmore\n"
    )
    assert hooks.readme_section(text, "B") == "## B\n\nlast\n"
    with pytest.raises(ValueError, match="no section 'C'"):
        hooks.readme_section(text, "C")


def _pages():
    """README.md and every page of the site as the build sees it (README sections included)."""
    hooks = _load("hooks")
    pages = {"README.md": README}
    for page in sorted((ROOT / "docs").rglob("*.md")):
        text = page.read_text(encoding="utf-8")
        pages[str(page.relative_to(ROOT))] = hooks._DIRECTIVE.sub(
            lambda match: hooks.readme_section(README, match.group(1)), text
        )
    return pages


def test_every_markdown_table_is_well_formed():
    hooks = _load("hooks")
    for name, text in _pages().items():
        assert hooks.malformed_tables(text) == [], name
        assert text.count("\n|") > 0 or name != "README.md"


@pytest.mark.parametrize(
    "table",
    [
        "| a | b |\n|---|---|---|\n| 1 | 2 |\n",  # the separator one cell long
        "| split | auto |\n|---|---|---|\n| design | 1.0 | 2.0 |\n",  # the header one cell short
        "| a | b |\n|---|---|\n| 1 |\n",  # a row one cell short
        "Per task:\n\n| task\n\nWhat this shows:\n",  # a lone header
    ],
)
def test_a_malformed_table_fails_the_docs_build(table):
    hooks = _load("hooks")
    assert hooks.malformed_tables(table)
    with pytest.raises(ValueError, match="malformed Markdown tables"):
        hooks.on_page_markdown(f"# Page\n\n{table}")
    assert hooks.on_page_markdown("| a | `b|c` |\n|:--|--:|\n| 1 | 2 |\n")  # code spans may hold pipes
    assert "docs/hooks.py" in (ROOT / "mkdocs.yml").read_text()


def _markdown_table(text, first_cell):
    """The rows (lists of cells) of the table in ``text`` whose header starts with ``first_cell``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_cell} |"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        if not line.startswith("|-"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def test_the_readmes_quality_summary_is_the_docs_pages_table():
    readme = _markdown_table(README.split("## Benchmarks", 1)[1], "rule")
    page = _markdown_table((ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8"), "split")
    header, cells = page[0], {(row[0], row[1]): row for row in page[1:]}
    assert len(readme) > 5
    for row in readme[1:]:
        column = header.index(row[0])
        for title, value in zip(readme[0][1:], row[1:], strict=True):
            measure, _, pytorch = title.partition(", ")
            split = "all, PyTorch" if pytorch else "all"
            assert cells[(split, measure)][column] == value, (row[0], title)


# Words of the project's own way of working, which a user cannot know.
_PROCESS_WORDS = (
    r"\b(the seed'?s?\b(?! (for|fixes|of)\b)|the issue|issue's|(this|last|next) stop\b|the lead\b)"
)


def test_user_docs_use_no_words_of_the_projects_process():
    texts = dict(_pages())
    for module in (ROOT / "src" / "lrscout").rglob("*.py"):  # the API pages are the docstrings
        texts[str(module.relative_to(ROOT))] = module.read_text(encoding="utf-8")
    for name, text in texts.items():
        found = re.search(_PROCESS_WORDS, text, flags=re.IGNORECASE)
        assert found is None, f"{name}: {found.group(0)!r}"


def test_docstrings_are_read_as_markdown():
    pytest.importorskip("griffe")
    extension = _load("griffe_lrscout")
    text = (
        "Run it.\n\n    Args:\n"
        "        start_lr, end_lr,\n        num_steps: As in :func:`lrscout.range_test`.\n"
        "        model: A :class:`~lrscout.models.LinearRegressor`.\n\n"
        "    Example:\n        >>> 1 + 1\n        2\n"
    )
    assert extension.markdown_docstring(text) == (
        "Run it.\n\n    Args:\n"
        "        start_lr, end_lr, num_steps: As in `lrscout.range_test`.\n"
        "        model: A `LinearRegressor`.\n\n"
        "    Examples:\n        >>> 1 + 1\n        2\n"
    )


def _text(page):
    body = page.read_text(encoding="utf-8")
    return html.unescape(re.sub(r"<[^>]+>", "", body))


def _public_names(package):
    """Classes and functions a package re-exports (``from ._x import name as name``)."""
    init = ROOT / "src" / Path(*package.split(".")) / "__init__.py"
    names = re.findall(r"^from \S+ import (\w+) as \1$", init.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return [name for name in names if not name.isupper() and not name.startswith("__")]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(module)
    folder = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(folder)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return folder


def test_the_site_builds_strict_without_its_build_scripts(site):
    assert (site / "index.html").is_file()
    assert not list(site.rglob("*.py"))


def test_readme_sections_are_included_not_copied(site):
    assert not re.search(
        r"^## (Install|Benchmarks|Use it)", "".join(p.read_text() for p in (ROOT / "docs").rglob("*.md"))
    )
    benchmarks = _text(site / "benchmarks" / "index.html")
    rows = re.findall(r"^\| ([^|*][^|]*?) \|", README.split("## Benchmarks", 1)[1].split("\n## ", 1)[0], re.M)
    assert len(rows) > 20
    for cell in rows:
        assert cell.strip().replace("`", "") in benchmarks
    guide = _text(site / "guide" / "index.html")
    for line in re.search(r"```python\n(.*?)```", README, flags=re.DOTALL).group(1).splitlines():
        assert line.strip() in guide
    home = _text(site / "index.html")
    assert 'pip install "torch==2.13.0" && pip install ".[pytorch]"' in home


@pytest.mark.parametrize(
    "package",
    [
        "lrscout",
        "lrscout.models",
        "lrscout.pytorch",
        "lrscout.keras",
        "lrscout.optax",
        "lrscout.sklearn",
        "lrscout.lightning",
        "lrscout.transformers",
        "lrscout.fastai",
        "lrscout.plotting",
    ],
)
def test_every_public_name_has_its_entry(site, package):
    page = site / "api" / ("lrscout" if package == "lrscout" else package.split(".")[1]) / "index.html"
    ids = set(re.findall(r'id="([\w.]+)"', page.read_text(encoding="utf-8")))
    names = _public_names(package)
    assert names
    assert {f"{package}.{name}" for name in names} <= ids


def test_every_public_subpackage_has_an_api_page():
    pages = "".join(page.read_text(encoding="utf-8") for page in (ROOT / "docs" / "api").glob("*.md"))
    documented = set(re.findall(r"^::: (lrscout[\w.]*)$", pages, flags=re.MULTILINE))
    packages = {
        f"lrscout.{folder.name}"
        for folder in (ROOT / "src" / "lrscout").iterdir()
        if (folder / "__init__.py").is_file() and not folder.name.startswith("_") and folder.name != "cli"
    }
    assert packages | {"lrscout"} <= documented, (packages | {"lrscout"}) - documented


def test_the_readme_says_how_long_the_tests_take():
    for section in ("## Quick start", "## Development"):
        text = README.split(section, 1)[1].split("\n## ", 1)[0]
        assert re.search(r"\b\d+ minutes\b", text), section
    assert "--durations" in README.split("## Development", 1)[1]
