"""lrscout.pytorch under torch.distributed: two gloo processes on CPU agree on every number."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402

import lrscout  # noqa: E402

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()), reason="needs torch.distributed with gloo"
)

WORKER = Path(__file__).with_name("ddp_worker_pytorch.py")
TIMEOUT_S = 180


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Run both ranks once; return each rank's JSON output and stderr."""
    folder = tmp_path_factory.mktemp("ddp")
    outputs = [folder / f"rank{rank}.json" for rank in range(2)]
    processes = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(rank), "2", str(folder / "store"), str(outputs[rank])],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(2)
    ]
    stderr = []
    try:
        for process in processes:
            # A rank that waits forever on the other fails here instead of hanging the suite.
            stderr.append(process.communicate(timeout=TIMEOUT_S)[1])
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    for rank, process in enumerate(processes):
        assert process.returncode == 0, f"rank {rank} failed:\n{stderr[rank]}"
    return [json.loads(path.read_text()) for path in outputs], stderr


def test_every_rank_returns_the_same_result_when_one_rank_diverges_earlier(ranks):
    (rank0, rank1), _ = ranks
    alone = [lrscout.RangeTestResult.from_dict(r["alone"]) for r in (rank0, rank1)]
    assert alone[0].stop_reason == alone[1].stop_reason == "diverged"
    assert len(alone[1]) < len(alone[0])

    joint = [lrscout.RangeTestResult.from_dict(r["joint"]) for r in (rank0, rank1)]
    assert joint[0] == joint[1]
    assert joint[0].stop_reason == "diverged"
    assert joint[0].info["world_size"] == 2

    # Every rank records the mean over ranks of its own loss.
    no_stop = [lrscout.RangeTestResult.from_dict(r["alone_no_stop"]).losses for r in (rank0, rank1)]
    n = len(joint[0])
    np.testing.assert_allclose(joint[0].losses, (no_stop[0][:n] + no_stop[1][:n]) / 2, rtol=1e-12)


def test_a_nan_on_one_rank_stops_every_rank_at_the_same_step(ranks):
    (rank0, rank1), _ = ranks
    results = [lrscout.RangeTestResult.from_dict(r["nan"]["result"]) for r in (rank0, rank1)]
    assert results[0] == results[1]
    assert (results[0].stop_reason, len(results[0])) == ("non-finite", 6)
    assert results[0].info["accumulation_steps"] == 2
    assert rank0["nan"]["restored"] and rank1["nan"]["restored"]


def test_progress_bar_on_rank_0_only(ranks):
    _, (stderr0, stderr1) = ranks
    assert "LR range test" in stderr0
    assert "LR range test" not in stderr1
