"""What the range test needs from ``torch.distributed``: the rank and one averaged read per chunk."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist


def rank_and_world_size() -> tuple[int, int]:
    """``(rank, world_size)`` of the default process group; ``(0, 1)`` outside one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def loss_reader(world_size: int) -> Callable[[list[torch.Tensor]], list[float]]:
    """``read(losses) -> floats``: one stack, one all-reduce, one device-to-host copy.

    Under ``torch.distributed`` every rank gets the mean over ranks, so every
    rank records the same floats and the core stops every rank at the same
    step (a NaN on one rank is a NaN on all).
    """

    def read(losses: list[torch.Tensor]) -> list[float]:
        stacked = torch.stack(losses)
        if stacked.dtype in (torch.float16, torch.bfloat16):
            stacked = stacked.float()
        if world_size > 1:
            # SUM then divide: ReduceOp.AVG exists only on some backends.
            dist.all_reduce(stacked)
            stacked = stacked / world_size
        values: list[float] = stacked.tolist()
        return values

    return read
