"""Lint and types are part of the test suite, so CI enforces them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is in the test extra")
def test_ruff_lint_and_format():
    paths = ["src", "tests", "benchmarks", "examples"]
    lint = subprocess.run(["ruff", "check", *paths], cwd=ROOT, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout
    fmt = subprocess.run(["ruff", "format", "--check", *paths], cwd=ROOT, capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout


def test_mypy_strict_on_the_package():
    pytest.importorskip("mypy")
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_imports_point_down_the_layers():
    # The contract is [tool.importlinter] in pyproject.toml; a back edge, even a
    # lazy import inside a function, fails it.
    done = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout


def test_readme_layout_matches_the_tree():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`(lrscout/[\w/]+\.py)`", section))
    package = ROOT / "src" / "lrscout"
    present = {f"lrscout/{path.relative_to(package).as_posix()}" for path in package.rglob("*.py")}
    assert listed == present, {"missing from README": present - listed, "gone from src": listed - present}
