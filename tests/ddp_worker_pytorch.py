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
import time
from datetime import timedelta
from typing import Any

# Settings of the "one rank diverges earlier" run, shared with the single-process runs.
RAMP = {"start_lr": 1e-4, "end_lr": 10.0, "num_steps": 80, "sync_every": 4, "progress": False}
# Generous: under a loaded machine a rank may start (import torch) long after the other.
TIMEOUT = timedelta(seconds=300)
# Noise scale: six global batches of 16 samples, 8 per rank.
NOISE_BATCHES, NOISE_LOCAL = 6, 8
NOISE_SETTINGS = {"num_pairs": 6, "n_samples": 96, "random_state": 0}
# Sharded models: the MLP's width (LRSCOUT_FSDP_WIDTH: benchmarks/fsdp_memory.py measures wider ones),
# four batches of 16 rows per rank, and the test's settings.
FSDP_WIDTH = int(os.environ.get("LRSCOUT_FSDP_WIDTH", "32"))
FSDP_BATCHES, FSDP_LOCAL, FSDP_FEATURES = 4, 16, 8
FSDP_RAMP = {"start_lr": 1e-4, "end_lr": 1.0, "num_steps": 30, "sync_every": 4, "progress": False}


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


# --- sharded models: FSDP2, through torch, Lightning and accelerate ---------------------


def fsdp_problem(rank: int | None) -> tuple[Any, list[tuple[Any, Any]]]:
    """The sharded test's MLP (not yet sharded) and this rank's batches; ``rank=None``: the global ones.

    Its first layer is frozen (a pre-trained base's stand-in). Rank ``r``
    holds rows ``16r .. 16r + 15`` of each global batch of 32.
    """
    import torch
    from torch import nn

    torch.manual_seed(0)
    width = FSDP_WIDTH
    model = nn.Sequential(
        nn.Linear(FSDP_FEATURES, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 1)
    )
    model[0].requires_grad_(False)
    generator = torch.Generator().manual_seed(7)
    n = FSDP_BATCHES * 2 * FSDP_LOCAL
    X = torch.randn(n, FSDP_FEATURES, generator=generator)
    y = X.sum(dim=1, keepdim=True) + 0.1 * torch.randn(n, 1, generator=generator)
    size = 2 * FSDP_LOCAL if rank is None else FSDP_LOCAL
    starts = [b * 2 * FSDP_LOCAL + (0 if rank is None else rank * FSDP_LOCAL) for b in range(FSDP_BATCHES)]
    return model, [(X[s : s + size], y[s : s + size]) for s in starts]


def warm_up(model: Any, optimizer: Any, batches: list[Any]) -> None:
    """One AdamW step, then one more backward: moments, a step count and gradients to restore."""
    from torch import nn

    x, y = batches[0]
    nn.functional.mse_loss(model(x), y).backward()
    optimizer.step()
    optimizer.zero_grad()
    nn.functional.mse_loss(model(batches[1][0]), batches[1][1]).backward()


def _local_state(model: Any, optimizer: Any) -> dict[str, Any]:
    """Clones of this rank's shards: parameters, gradients, optimizer state, torch's RNG."""
    import torch
    from torch.distributed.tensor import DTensor

    def local(tensor: Any) -> Any:
        if tensor is None:
            return None
        return (tensor.to_local() if isinstance(tensor, DTensor) else tensor).detach().clone()

    with torch.no_grad():
        return {
            "params": [local(p) for p in model.parameters()],
            "grads": [local(p.grad) for p in model.parameters()],
            "optimizer": [
                {
                    key: local(value) if isinstance(value, torch.Tensor) else value
                    for key, value in state.items()
                }
                for state in optimizer.state.values()
            ],
            "rng": torch.get_rng_state(),
        }


def _same(a: Any, b: Any) -> bool:
    import torch

    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and torch.equal(a, b)
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _restored(before: dict[str, Any], after: dict[str, Any]) -> dict[str, bool]:
    return {key: _same(before[key], after[key]) for key in before}


class _Watched:
    """Patches ``TrainingSnapshot`` where the finder takes it: each one's collectives, bytes and time."""

    def __init__(self, module: Any) -> None:
        from torch.distributed.tensor.debug import CommDebugMode

        from lrscout.pytorch._snapshot import TrainingSnapshot

        self.records: list[dict[str, Any]] = []
        records = self.records

        class Watched(TrainingSnapshot):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                began = time.perf_counter()
                with CommDebugMode() as comms:
                    super().__init__(*args, **kwargs)
                self._record = {
                    "nbytes": self.nbytes,
                    "take_s": time.perf_counter() - began,
                    "collectives": comms.get_total_counts(),
                }
                records.append(self._record)

            def restore(self, *, keep: bool = False) -> None:
                began = time.perf_counter()
                with CommDebugMode() as comms:
                    try:
                        super().restore(keep=keep)
                    finally:
                        self._record["restore_s"] = time.perf_counter() - began
                self._record["collectives"] += comms.get_total_counts()

        self._module, self._original = module, module.TrainingSnapshot
        module.TrainingSnapshot = Watched

    def close(self) -> None:
        self._module.TrainingSnapshot = self._original


def _forward_collectives(model: Any, x: Any) -> int:
    """What CommDebugMode counts in one forward pass: the all-gathers of the shards (the control)."""
    import torch
    from torch.distributed.tensor.debug import CommDebugMode

    with torch.no_grad(), CommDebugMode() as comms:
        model(x)
    return int(comms.get_total_counts())


def _fsdp2(rank: int) -> dict[str, Any]:
    import resource

    import torch
    from torch import nn
    from torch.distributed.fsdp import fully_shard

    from lrscout.pytorch import _find_lr, find_lr

    model, batches = fsdp_problem(rank)
    full_bytes = sum(p.nbytes for p in model.parameters())
    trainable_bytes = sum(p.nbytes for p in model.parameters() if p.requires_grad)
    for layer in model:
        if isinstance(layer, nn.Linear):
            fully_shard(layer)
    fully_shard(model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    warm_up(model, optimizer, batches)
    before = _local_state(model, optimizer)
    trainable = [
        p for p, param in zip(before["params"], model.parameters(), strict=True) if param.requires_grad
    ]
    frozen = sum(1 for param in model.parameters() if not param.requires_grad)
    local_bytes = sum(
        t.nbytes
        for group in (trainable, before["grads"], *[list(s.values()) for s in before["optimizer"]])
        for t in group
        if isinstance(t, torch.Tensor)
    )
    watched = _Watched(_find_lr)
    calls = itertools.count()

    def failing(model: Any, batch: Any) -> Any:
        if next(calls) == 6:
            raise RuntimeError("stop here")
        return nn.functional.mse_loss(model(batch[0]), batch[1])

    try:
        began = time.perf_counter()
        result = find_lr(model, optimizer, batches, nn.MSELoss(), **FSDP_RAMP)
        test_s = time.perf_counter() - began
        after = _local_state(model, optimizer)
        try:
            find_lr(model, optimizer, batches, loss_fn=failing, **FSDP_RAMP)
        except RuntimeError as error:
            failed = str(error)
        after_error = _local_state(model, optimizer)
        # Inside the forward pass, after the first layer's shards were gathered: FSDP is left
        # mid-iteration, and the next test must still run as the first did.
        inside = itertools.count()

        def stop_inside(module: Any, args: Any) -> None:
            if next(inside) == 6:
                raise RuntimeError("stop here")

        hook = model[2].register_forward_pre_hook(stop_inside)
        try:
            find_lr(model, optimizer, batches, nn.MSELoss(), **FSDP_RAMP)
        except RuntimeError as error:
            failed_inside = str(error)
        hook.remove()
        after_inside = _local_state(model, optimizer)
        again = find_lr(model, optimizer, batches, nn.MSELoss(), **FSDP_RAMP)
    finally:
        watched.close()
    return {
        "result": result.to_dict(),
        "restored": _restored(before, after),
        "restored_after_error": _restored(before, after_error),
        "error": failed,
        "restored_after_error_inside_forward": _restored(before, after_inside),
        "error_inside_forward": failed_inside,
        "again": again.to_dict(),
        "snapshots": watched.records,
        "forward_collectives": _forward_collectives(model, batches[0][0]),
        "sharded": [type(p).__name__ for p in model.parameters()],
        # The frozen layer's shards are checked, not copied: a fingerprint row of 4 int64 each.
        "local_bytes": local_bytes + 32 * frozen + torch.get_rng_state().nbytes,
        "frozen": frozen,
        "rng_bytes": torch.get_rng_state().nbytes,
        "full_param_bytes": full_bytes,
        "trainable_param_bytes": trainable_bytes,
        "test_s": test_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _lightning_fsdp2(rank: int) -> dict[str, Any]:
    """The LRFinder callback in a fit under Lightning's ModelParallelStrategy (its FSDP2), on CPU."""
    try:
        import lightning.pytorch as pl
        from lightning.pytorch.strategies import FSDPStrategy, ModelParallelStrategy
    except Exception as error:  # not installed, or a broken dependency: the test says which
        return {"unavailable": f"{type(error).__name__}: {error}"}
    import torch
    from torch import nn
    from torch.distributed.fsdp import fully_shard

    from lrscout.lightning import LRFinder

    net, batches = fsdp_problem(rank)

    class Sharded(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def configure_model(self) -> None:
            mesh = self.device_mesh["data_parallel"]
            for layer in self.net:
                if isinstance(layer, nn.Linear):
                    fully_shard(layer, mesh=mesh)
            fully_shard(self.net, mesh=mesh)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            return nn.functional.mse_loss(self.net(batch[0]), batch[1])

        def configure_optimizers(self) -> Any:
            return torch.optim.AdamW(self.parameters(), lr=1e-3)

    seen: dict[str, Any] = {}

    class Before(pl.Callback):
        # Before the finder's own on_fit_start (callbacks run in order): the shards it will restore.
        def on_fit_start(self, trainer: Any, module: Any) -> None:
            seen["before"] = _local_state(module, trainer.optimizers[0])

    class After(pl.Callback):
        # Right after the finder's on_fit_start, where its test ran: what it restored (the fit's
        # own start draws from the global RNG afterwards, as a fit without the finder does).
        def on_fit_start(self, trainer: Any, module: Any) -> None:
            seen["after"] = _local_state(module, trainer.optimizers[0])

    # The test runs in on_fit_start; update_attr=False keeps the rate it would set, and the fit
    # after it trains no step.
    finder = LRFinder(
        **{k: v for k, v in FSDP_RAMP.items() if k != "sync_every"}, sync_every=4, update_attr=False
    )
    module = Sharded()
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy=ModelParallelStrategy(data_parallel_size=2, tensor_parallel_size=1),
        max_steps=0,
        callbacks=[Before(), finder, After()],
        use_distributed_sampler=False,  # the batches are this rank's already
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, torch.utils.data.DataLoader(batches, batch_size=None))
    out = {
        "result": finder.result.to_dict(),
        "restored": _restored(seen["before"], seen["after"]),
        "sharded": [type(p).__name__ for p in module.parameters()],
    }
    try:  # Lightning's FSDP1 strategy, for the record: it asks for a GPU.
        pl.Trainer(accelerator="cpu", devices=2, strategy=FSDPStrategy(), logger=False)
        out["fsdp_strategy_on_cpu"] = "runs"
    except Exception as error:
        out["fsdp_strategy_on_cpu"] = f"{type(error).__name__}: {error}"
    return out


def _accelerate_fsdp2(rank: int) -> dict[str, Any]:
    """lrscout.pytorch.find_lr on a model and optimizer that accelerate prepared with an FSDP2 plugin."""
    try:
        from accelerate import Accelerator
        from accelerate.utils import FullyShardedDataParallelPlugin
    except Exception as error:
        return {"unavailable": f"{type(error).__name__}: {error}"}
    import torch
    from torch import nn

    from lrscout.pytorch import find_lr

    net, batches = fsdp_problem(rank)
    accelerator = Accelerator(cpu=True, fsdp_plugin=FullyShardedDataParallelPlugin(fsdp_version=2))
    model, optimizer = accelerator.prepare(net, torch.optim.AdamW(net.parameters(), lr=1e-3))
    warm_up(model, optimizer, batches)
    before = _local_state(model, optimizer)
    result = find_lr(model, optimizer, batches, nn.MSELoss(), **FSDP_RAMP)
    return {
        "result": result.to_dict(),
        "restored": _restored(before, _local_state(model, optimizer)),
        "distributed_type": str(accelerator.distributed_type),
        "wrapped_as": type(model).__name__,
    }


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
    # What Lightning and accelerate read to join the group this process is in.
    os.environ.update(
        {"LOCAL_RANK": str(rank), "RANK": str(rank), "NODE_RANK": "0", "WORLD_SIZE": str(world_size)}
    )
    os.environ.update(
        {"LOCAL_WORLD_SIZE": str(world_size), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    )
    jobs = {
        "joint": lambda: _diverging_rank(rank),
        "joint_refined": lambda: _diverging_rank(rank, refine=True),
        "nan": lambda: _nan_on_rank_1(rank),
        "noise": lambda: _noise_under_ddp(rank),
        "fsdp2": lambda: _fsdp2(rank),
        "lightning_fsdp2": lambda: _lightning_fsdp2(rank),
        # Last: accelerate's state is a process-wide singleton.
        "accelerate_fsdp2": lambda: _accelerate_fsdp2(rank),
    }
    chosen = os.environ.get("LRSCOUT_WORKER_JOBS", ",".join(jobs)).split(",")
    try:
        for name in chosen:
            out[name] = jobs[name]()
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
