"""The README's commands work as written: every Python block runs, every ``lrscout`` line exits 0."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language):
    """``(line number, code)`` of each fenced block in that language."""
    found = []
    for match in re.finditer(rf"^```{language}\n(.*?)^```", README, flags=re.MULTILINE | re.DOTALL):
        found.append((README.count("\n", 0, match.start()) + 2, match.group(1)))
    return found


PYTHON = _blocks("python")
COMMANDS = [
    (line + i, text)
    for line, block in _blocks("bash")
    for i, text in enumerate(block.splitlines())
    if text.startswith("lrscout ")
]


def test_the_readme_has_the_blocks_this_file_runs():
    assert len(PYTHON) >= 3
    assert len(COMMANDS) >= 6
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert len(re.search(r"```bash\n(.*?)```", quick_start, flags=re.DOTALL).group(1).splitlines()) == 2


def _needs(code):
    for module in ("torch", "keras", "lightning", "transformers", "fastai"):
        if re.search(rf"^\s*(import|from) (lrscout\.)?{module}\b", code, flags=re.MULTILINE):
            pytest.importorskip(module)


# Keras's torch backend hands NumPy tensors without __array__(copy=...), which NumPy 2
# reports as a DeprecationWarning from inside Keras's progress bar; a user never sees it.
@pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)
@pytest.mark.parametrize(("line", "code"), PYTHON, ids=[f"README.md:{line}" for line, _ in PYTHON])
def test_python_block_runs(line, code, tmp_path, monkeypatch):
    _needs(code)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"README.md:{line}", "exec"), {"__name__": "__readme__"})


KERAS = next(code for _, code in PYTHON if "from lrscout.keras import" in code)
KERAS_BACKENDS = ("tensorflow", "torch", "jax")


@pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="needs keras")
@pytest.mark.parametrize("backend", [*KERAS_BACKENDS, None], ids=[*KERAS_BACKENDS, "KERAS_BACKEND-unset"])
def test_keras_block_runs_as_a_script_on_each_backend(backend, tmp_path):
    """The Keras snippet, saved as a script and run on each backend, writes its plots.

    Unset, KERAS_BACKEND is what a user meets first: Keras's default
    (tensorflow) where it is installed, else the backend lrscout.keras picks.
    """
    if backend is not None and importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    env = {key: value for key, value in os.environ.items() if key not in ("KERAS_BACKEND", "MPLBACKEND")}
    env.update(KERAS_HOME=str(tmp_path / "keras-home"), JAX_PLATFORMS="cpu", OMP_NUM_THREADS="1")
    if backend is not None:
        env["KERAS_BACKEND"] = backend
    script = tmp_path / "keras_range_test.py"
    script.write_text(KERAS + "\nprint('keras backend:', keras.backend.backend())\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    expected = backend or next(b for b in KERAS_BACKENDS if importlib.util.find_spec(b) is not None)
    assert f"keras backend: {expected}" in done.stdout
    assert "Suggestion(lr=" in done.stdout
    for name in ("keras-range-test.png", "keras-lr.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _shell():
    """An environment whose ``lrscout`` and ``python`` are this interpreter's; a fallback for ``lrscout``."""
    env = dict(os.environ)
    here = Path(sys.executable).parent
    env["PATH"] = f"{here}{os.pathsep}{env.get('PATH', '')}"
    if (here / "lrscout").exists():
        return env, ""
    # Not installed as a script (a bare checkout on sys.path): the module runs the same main().
    return env, f'lrscout() {{ "{sys.executable}" -m lrscout "$@"; }}\n'


def _write_csv(folder):
    """``data.csv`` with a header and a ``label`` column: breast cancer's last six features."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    names = [name.replace(" ", "_") for name in data.feature_names[-6:]]
    rows = [",".join([*names, "label"])]
    rows += [
        ",".join([*map(repr, map(float, x)), str(label)])
        for x, label in zip(data.data[:, -6:], data.target, strict=True)
    ]
    (folder / "data.csv").write_text("\n".join(rows) + "\n")


@pytest.mark.parametrize(("line", "command"), COMMANDS, ids=[f"README.md:{line}" for line, _ in COMMANDS])
def test_lrscout_command_exits_0(line, command, tmp_path):
    if "--framework pytorch" in command:
        pytest.importorskip("torch")
    if "--csv data.csv" in command:
        _write_csv(tmp_path)
    env, prelude = _shell()
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run(
        [bash, "-o", "pipefail", "-c", prelude + command],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, f"README.md:{line}: {command}\n{done.stderr[-3000:]}"


def test_install_lines_name_extras_that_exist():
    install = README.split("## Install", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r'"\.\[([a-z0-9_-]+)\]"', install))
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert named and named <= set(extras), named - set(extras)
    # torch is installed pinned before anything that depends on it
    for text in install.splitlines():
        if '".[pytorch]"' in text or ('".[keras]"' in text and "torch backend" in text):
            assert text.startswith('pip install "torch==2.13.0" && '), text
