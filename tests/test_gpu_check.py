"""benchmarks/gpu_check.py, the proof of the CUDA path, run here on the CPU: the script itself is tested."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def _script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is here: the script would run")
def test_without_cuda_it_says_so_and_exits_0():
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("SKIP: no CUDA device")
    assert "PASS" not in done.stdout and "FAIL" not in done.stdout


def test_every_check_runs_and_passes_on_the_cpu(capsys):
    # Timings are not judged off the GPU (INFO lines); everything else is, as on the GPU.
    assert _script().main(["--device", "cpu", "--quick"]) == 0
    lines = capsys.readouterr().out.splitlines()
    verdicts = [line.split(" ", 1)[0] for line in lines[1:-1]]
    assert verdicts.count("PASS") == 7 and verdicts.count("INFO") == 2, lines
    assert lines[-1].startswith("all 7 judged checks passed")


def test_a_failed_check_fails_the_run(capsys, monkeypatch):
    script = _script()

    def broken_restore(setup, report):
        report.check("restore after a test", False, "changed: weights")

    monkeypatch.setattr(script, "check_restore", broken_restore)
    assert script.main(["--device", "cpu", "--quick", "--checks", "restore"]) == 1
    out = capsys.readouterr().out
    assert "FAIL restore after a test: changed: weights" in out
    assert "FAILED 1 of 1 checks" in out


def test_the_comparison_sees_one_changed_bit_and_takes_a_nan_for_itself():
    script = _script()
    before = {"weights": {"w": torch.tensor([1.0, float("nan")])}, "CPU RNG": torch.get_rng_state()}
    same = {"weights": {"w": torch.tensor([1.0, float("nan")])}, "CPU RNG": torch.get_rng_state()}
    assert script.differences(before, same) == []
    flipped = torch.tensor([1.0, float("nan")])
    flipped.view(torch.int32)[0] ^= 1
    assert script.differences(before, {**same, "weights": {"w": flipped}}) == ["weights"]
    assert script.differences(before, {**same, "weights": {"w": torch.tensor([1.0, -float("nan")])}}) == [
        "weights"
    ]
