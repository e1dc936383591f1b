"""lrscout.pytorch under torch.distributed: two gloo processes on CPU agree on every number.

One launcher (the ``ranks`` fixture) runs one worker script
(``ddp_worker_pytorch.py``) once per session on two ranks; every test reads
its results.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
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
ROOT = Path(__file__).resolve().parents[1]
WORLD_SIZE = 2
# Past the worker's own collective timeout (300 s), so a hung rank reports its own error first.
TIMEOUT_S = 360


def _worker_module():
    """The worker script as a module: its settings and data, for the single-process references."""
    spec = importlib.util.spec_from_file_location("ddp_worker_pytorch", WORKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def launch(folder: Path, world_size: int = WORLD_SIZE) -> tuple[list[dict], list[str]]:
    """Run the worker on ``world_size`` ranks; return each rank's results and stderr.

    Output goes to files, not pipes, so no rank blocks on a full pipe while
    the other waits for it in a collective.
    """
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
        "OMP_NUM_THREADS": "1",
    }
    if Path("/sys/class/net/lo").exists():
        # Loopback: no dependence on how the host name resolves.
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    outputs = [folder / f"rank{rank}.json" for rank in range(world_size)]
    errors = [folder / f"rank{rank}.err" for rank in range(world_size)]
    processes = []
    for rank in range(world_size):
        with open(errors[rank], "w") as stderr:
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        str(WORKER),
                        str(rank),
                        str(world_size),
                        str(folder / "store"),
                        str(outputs[rank]),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    env=env,
                )
            )
    deadline = time.monotonic() + TIMEOUT_S
    timed_out = ""
    try:
        for process in processes:
            # A rank that waits forever on the other fails here instead of hanging the suite.
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        timed_out = f" (killed after {TIMEOUT_S} s)"
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    stderr = [path.read_text() for path in errors]
    for rank, process in enumerate(processes):
        assert process.returncode == 0, (
            f"rank {rank} exited with {process.returncode}{timed_out}:\n{stderr[rank][-4000:]}"
        )
        assert outputs[rank].exists(), f"rank {rank} wrote no results:\n{stderr[rank][-4000:]}"
    return [json.loads(path.read_text()) for path in outputs], stderr


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Run both ranks once; return each rank's JSON output and stderr."""
    return launch(tmp_path_factory.mktemp("ddp"))


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


def test_every_rank_refines_to_the_same_rate(ranks):
    # The probes' losses are averaged over the ranks like the test's: one choice everywhere.
    (rank0, rank1), _ = ranks
    refined = [lrscout.RangeTestResult.from_dict(r["joint_refined"]) for r in (rank0, rank1)]
    joint = lrscout.RangeTestResult.from_dict(rank0["joint"])
    assert refined[0] == refined[1]
    record = refined[0].info["refinement"]
    assert record["suggested"] == joint.suggest("auto").lr
    probes = [probe for r in record["rounds"] for probe in r["probes"]]
    assert [len(r["probes"]) for r in record["rounds"]] == [5, 2]
    assert all(probe["steps_run"] == probe["steps"] or probe["diverged"] for probe in probes)
    np.testing.assert_array_equal(refined[0].losses, joint.losses)


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


def test_pytorch_under_ddp_uses_the_global_batch(ranks):
    from lrscout.pytorch import noise_scale

    (rank0, rank1), _ = ranks
    results = [lrscout.NoiseScaleResult.from_dict(r["noise"]) for r in (rank0, rank1)]
    assert results[0] == results[1]
    assert (results[0].small_batch, results[0].big_batch, results[0].info["world_size"]) == (8, 16, 2)
    # One process with the global batches, each split into the two ranks' halves.
    worker = _worker_module()
    model, loader = worker.noise_problem(None)
    single = noise_scale(model, loader, torch.nn.MSELoss(), small_batch=8, **worker.NOISE_SETTINGS)
    np.testing.assert_allclose(results[0].pair_trace_cov, single.pair_trace_cov, rtol=1e-10)
    np.testing.assert_allclose(results[0].pair_grad_norm_sq, single.pair_grad_norm_sq, rtol=1e-10)


# --- sharded models (FSDP2) --------------------------------------------------------------


def _fsdp_reference():
    """The sharded test's model, warm-up and range test in one process on the global batches."""
    from lrscout.pytorch import find_lr

    worker = _worker_module()
    model, batches = worker.fsdp_problem(None)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    worker.warm_up(model, optimizer, batches)
    return find_lr(model, optimizer, batches, torch.nn.MSELoss(), **worker.FSDP_RAMP)


def test_fsdp2_shards_come_back_bitwise_on_every_rank_and_every_rank_agrees(ranks):
    (rank0, rank1), _ = ranks
    for out in (rank0["fsdp2"], rank1["fsdp2"]):
        assert set(out["sharded"]) == {"DTensor"}
        # Each rank's parameter shards, gradients, AdamW moments and steps, and RNG: bitwise.
        assert out["restored"] == {"params": True, "grads": True, "optimizer": True, "rng": True}
        assert out["restored_after_error"] == out["restored"]
        assert out["error"] == "stop here"
        # Stopped inside a forward pass: the shards back, and FSDP ready for the next test.
        assert out["restored_after_error_inside_forward"] == out["restored"]
        assert out["error_inside_forward"] == "stop here"
        assert lrscout.RangeTestResult.from_dict(out["again"]) == lrscout.RangeTestResult.from_dict(
            out["result"]
        )
    results = [lrscout.RangeTestResult.from_dict(r["fsdp2"]["result"]) for r in (rank0, rank1)]
    assert results[0] == results[1]
    assert results[0].info["world_size"] == 2
    # Two ranks of 16 rows are one process's batch of 32: the same curve, to rounding.
    reference = _fsdp_reference()
    n = min(len(reference), len(results[0]))
    assert n >= 20
    np.testing.assert_allclose(results[0].losses[:n], reference.losses[:n], rtol=1e-5)


def test_fsdp2_snapshot_holds_this_ranks_shards_and_gathers_nothing(ranks):
    (rank0, rank1), _ = ranks
    for out in (rank0["fsdp2"], rank1["fsdp2"]):
        # The control: one forward pass all-gathers every layer's shards, and is counted.
        assert out["forward_collectives"] >= 3
        for snapshot in out["snapshots"]:
            assert snapshot["collectives"] == 0
            # Exactly this rank's shards (trainable parameters, gradients, optimizer state), a
            # fingerprint of each frozen one's shard, and the RNG state.
            assert snapshot["nbytes"] == out["local_bytes"]
        assert out["frozen"] == 2
        # Half of the whole state (parameters, gradients, two moments), give or take a row.
        shards = out["local_bytes"] - out["rng_bytes"]
        assert shards <= 1.1 * 4 * out["full_param_bytes"] / 2 + 100


def test_the_lightning_callback_under_lightnings_fsdp2_strategy(ranks):
    (rank0, rank1), _ = ranks
    if "unavailable" in rank0["lightning_fsdp2"]:
        pytest.skip(f"Lightning: {rank0['lightning_fsdp2']['unavailable']}")
    for out in (rank0["lightning_fsdp2"], rank1["lightning_fsdp2"]):
        assert set(out["sharded"]) == {"DTensor"}
        assert out["restored"] == {"params": True, "grads": True, "optimizer": True, "rng": True}
    results = [lrscout.RangeTestResult.from_dict(r["lightning_fsdp2"]["result"]) for r in (rank0, rank1)]
    assert results[0] == results[1] and len(results[0]) >= 2


def test_accelerate_prepared_with_an_fsdp2_plugin(ranks):
    # On CPU accelerate prepares DDP whatever the plugin says (its FSDP is for accelerators):
    # what runs here is restored like the rest, and every rank agrees.
    (rank0, rank1), _ = ranks
    if "unavailable" in rank0["accelerate_fsdp2"]:
        pytest.skip(f"accelerate: {rank0['accelerate_fsdp2']['unavailable']}")
    for out in (rank0["accelerate_fsdp2"], rank1["accelerate_fsdp2"]):
        assert out["restored"] == {"params": True, "grads": True, "optimizer": True, "rng": True}
    results = [lrscout.RangeTestResult.from_dict(r["accelerate_fsdp2"]["result"]) for r in (rank0, rank1)]
    assert results[0] == results[1] and results[0].info["world_size"] == 2
