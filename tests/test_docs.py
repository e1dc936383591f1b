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
