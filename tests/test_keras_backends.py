"""lrscout.keras on every installed Keras backend: the Keras tests again, one process per backend.

Keras fixes its backend when it is first imported, so this session's tests
run on one (``KERAS_BACKEND``, torch by default: see conftest.py). Each test
here runs every Keras test of the suite (tests/test_keras.py,
tests/test_keras_plan.py and the Keras cases of the one-cycle, bad-input,
curve-warning and command-line tests) under another backend in a fresh process and reports the ones that fail
there. tests/test_readme.py runs the README's Keras snippet on each backend.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("tensorflow", "torch", "jax")
KERAS_TESTS = [
    "tests/test_keras.py",
    "tests/test_keras_plan.py",
    "tests/test_one_cycle.py",
    "tests/test_bad_inputs.py",
    "tests/test_diagnostics.py",
    "tests/test_cli.py",
]


def _current_backend():
    return os.environ.get("KERAS_BACKEND", "torch")


def _installed(name):
    return importlib.util.find_spec(name) is not None


@pytest.mark.skipif(not _installed("keras"), reason="needs keras")
@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != _current_backend()])
def test_keras_tests_pass_on_backend(backend):
    if not _installed(backend):
        pytest.skip(f"{backend} is not installed")
    env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "JAX_PLATFORMS": "cpu",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        # One thread per process: on a shared machine torch's thread pool
        # otherwise spends most of a tiny model's step waiting.
        "OMP_NUM_THREADS": "1",
    }
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *KERAS_TESTS, "-k", "keras"]
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", run.stdout, flags=re.MULTILINE)
    tail = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0 and not failed, (
        f"on KERAS_BACKEND={backend}: {len(failed)} failed: {failed}\n{tail}"
    )
    summary = run.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary), summary
