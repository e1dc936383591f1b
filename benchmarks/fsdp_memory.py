"""Memory and time per rank of the range test on a sharded model: FSDP2 on two gloo CPU ranks.

Runs the two-rank harness of the tests (``tests/ddp_worker_pytorch.py``,
launched by ``tests/test_pytorch_ddp.py``'s ``launch``) on its FSDP2 job only,
for MLPs of several widths (8 -> W -> W -> 1, ``fully_shard`` on each
``Linear`` and the root, the first layer frozen, AdamW warmed by one step,
gradients present), and prints per rank: the bytes the snapshot holds
against the whole model's state unsharded (every parameter, and the
trainable ones' gradients and AdamW moments), the time to take and restore
the snapshot, the range test's wall time (30 steps, losses read every 4) and
the process's peak resident memory.

Run: ``python benchmarks/fsdp_memory.py [--widths 256 1024 2048]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def harness():
    spec = importlib.util.spec_from_file_location("test_pytorch_ddp", ROOT / "tests" / "test_pytorch_ddp.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[256, 1024, 2048])
    args = parser.parse_args()
    launch = harness().launch
    print(
        "| width | parameters | whole state (MB) | rank | snapshot (MB) | take / restore (ms) | test (s) "
        "| peak RSS (MB) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for width in args.widths:
        os.environ["LRSCOUT_FSDP_WIDTH"] = str(width)
        os.environ["LRSCOUT_WORKER_JOBS"] = "fsdp2"
        with tempfile.TemporaryDirectory() as folder:
            outputs, _ = launch(Path(folder))
        for rank, out in enumerate(o["fsdp2"] for o in outputs):
            # Unsharded: every parameter, and the trainable ones' gradients and two AdamW moments.
            whole = out["full_param_bytes"] + 3 * out["trainable_param_bytes"]
            first = out["snapshots"][0]
            times = f"{1e3 * first['take_s']:.0f} / {1e3 * first['restore_s']:.0f}"
            print(
                f"| {width} | {out['full_param_bytes'] / 4 / 1e6:.2f} M | {whole / 1e6:.1f} | {rank} | "
                f"{first['nbytes'] / 1e6:.1f} | {times} | {out['test_s']:.2f} | {out['peak_rss_mb']:.0f} |"
            )


if __name__ == "__main__":
    main()
