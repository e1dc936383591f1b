"""One rank of the two-process gloo run that every test in ``test_pytorch_ddp.py`` reads.

Run as ``python ddp_worker_pytorch.py RANK WORLD_SIZE INIT_FILE OUT_JSON``. The
rank runs every job (range tests, noise scale), writes its results to
``OUT_JSON`` atomically (the file is complete or absent) and only then tears
the process group down. Importing it does nothing; the tests import it for
the settings and the data, so the single-process references see the same.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import sys
from datetime import timedelta
from typing import Any

# Settings of the "one rank diverges earlier" run, shared with the single-process runs.
RAMP = {"start_lr": 1e-4, "end_lr": 10.0, "num_steps": 80, "sync_every": 4, "progress": False}
# Generous: under a loaded machine a rank may start (import torch) long after the other.
TIMEOUT = timedelta(seconds=300)
# Noise scale: six global batches of 16 samples, 8 per rank.
NOISE_BATCHES, NOISE_LOCAL = 6, 8
NOISE_SETTINGS = {"num_pairs": 6, "n_samples": 96, "random_state": 0}


def _least_squares(rank: int) -> tuple[Any, Any]:
    import torch

    generator = torch.Generator().manual_seed(0)
    X = torch.randn(32, 3, generator=generator, dtype=torch.float64)
    y = X @ torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64)
    # Rank 1's curvature is 9 times rank 0's, so alone it diverges at a 9 times lower lr.
    scale = 1.0 if rank == 0 else 3.0
    return X * scale, y * scale


def _diverging_rank(rank: int, **kwargs: Any) -> dict[str, Any]:
    import torch
    from torch import nn

    from lrscout.pytorch import LRFinder

    torch.manual_seed(0)
    model = nn.Linear(3, 1, bias=False).double()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    result = LRFinder(model, optimizer, nn.MSELoss()).range_test([_least_squares(rank)], **{**RAMP, **kwargs})
    return result.to_dict()


def _nan_on_rank_1(rank: int) -> dict[str, Any]:
    import torch
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel

    from lrscout.pytorch import LRFinder

    torch.manual_seed(0)
    model = DistributedDataParallel(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    X, y = _least_squares(0)
    batches = [(X[i : i + 8].float(), y[i : i + 8].float()) for i in range(0, 32, 8)]
    calls = itertools.count()

    def loss_fn(model: nn.Module, batch: Any) -> Any:
        loss = nn.functional.mse_loss(model(batch[0]), batch[1])
        # Two batches per step: call 10 is the first batch of step 5.
        return loss * math.nan if rank == 1 and next(calls) == 10 else loss

    result = LRFinder(model, optimizer, loss_fn=loss_fn).range_test(
        batches, start_lr=1e-4, end_lr=1.0, num_steps=40, accumulation_steps=2, sync_every=4
    )
    restored = all(torch.equal(before[name], value) for name, value in model.state_dict().items())
    return {"result": result.to_dict(), "restored": restored}


def noise_problem(rank: int | None) -> tuple[Any, list[tuple[Any, Any]]]:
    """The noise-scale model and loader: rank ``r`` holds rows ``8r .. 8r + 7`` of each global batch.

    ``rank=None`` gives one process the global batches whole.
    """
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Linear(5, 1).double()
    n = NOISE_BATCHES * 2 * NOISE_LOCAL
    X = torch.randn(n, 5, dtype=torch.float64)
    y = X @ torch.arange(1.0, 6.0, dtype=torch.float64)[:, None] + torch.randn(n, 1, dtype=torch.float64)
    size = 2 * NOISE_LOCAL if rank is None else NOISE_LOCAL
    starts = [g * 2 * NOISE_LOCAL + (0 if rank is None else rank * NOISE_LOCAL) for g in range(NOISE_BATCHES)]
    return model, [(X[s : s + size], y[s : s + size]) for s in starts]


def _noise_under_ddp(rank: int) -> dict[str, Any]:
    from torch import nn

    from lrscout.pytorch import noise_scale

    model, loader = noise_problem(rank)
    ddp = nn.parallel.DistributedDataParallel(model)
    return noise_scale(ddp, loader, nn.MSELoss(), **NOISE_SETTINGS).to_dict()


class _Terminal:
    """stderr that says it is a terminal: the core draws a progress bar only where someone watches."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def isatty(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _write_atomically(path: str, data: dict[str, Any]) -> None:
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def main(rank: int, world_size: int, init_file: str, out_path: str) -> None:
    import gc

    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    # The test reads which ranks drew a bar (into the file that is their stderr).
    sys.stderr = _Terminal(sys.stderr)
    out: dict[str, Any] = {
        # Before the process group exists: this rank's data alone.
        "alone": _diverging_rank(rank),
        "alone_no_stop": _diverging_rank(rank, stop_on_divergence=False),
    }
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size, timeout=TIMEOUT
    )
    try:
        out["joint"] = _diverging_rank(rank)
        out["joint_refined"] = _diverging_rank(rank, refine=True)
        out["nan"] = _nan_on_rank_1(rank)
        out["noise"] = _noise_under_ddp(rank)
        # A DDP model sits in a reference cycle; one still alive when the group
        # is destroyed makes torch abort at exit ("terminate called without an
        # active exception"). Free them while the group exists.
        gc.collect()
        # The results are safe before the teardown, whatever happens in it.
        _write_atomically(out_path, out)
        # A rank that tears the group down while the other still uses it can abort it.
        dist.barrier()
    finally:
        dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4])
