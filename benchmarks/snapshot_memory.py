"""What the PyTorch range test keeps to restore a model: bytes and time against model size and frozen share.

A model of float32 parameters has the share asked frozen (0 %, 90 %, 99 %: a
pre-trained base) and the rest trained by AdamW (adapters), warmed by one
step so its moments exist, gradients set to ``None``.
For each size and share the table gives the bytes the snapshot holds
(``TrainingSnapshot.nbytes``: copies, fingerprints, RNG state), the bytes of
what can change (trainable parameters and AdamW's state: the floor), the
bytes when frozen parameters are copied too (``copy_frozen=True``, as before
they were checked), and the CPU time to take the snapshot and restore it,
both ways: the first time (what a range test pays: its copies land in fresh
memory) and the median of the repeats.

Run: ``python benchmarks/snapshot_memory.py [--sizes 1e6 1e7 5e7] [--repeats 5] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from lrscout.pytorch._snapshot import TrainingSnapshot

#: Elements per parameter tensor (a 1024 x 1024 weight's worth).
TENSOR = 1 << 20


def build(n_params: float, frozen_share: float) -> tuple[nn.Module, torch.optim.Optimizer]:
    """``n_params`` float32 parameters in tensors of at most ``TENSOR``; ``frozen_share`` of them frozen.

    The frozen part stands for a pre-trained base, the rest for adapters;
    AdamW trains the rest and is warmed by one step, gradients then ``None``.
    """
    torch.manual_seed(0)
    total = round(n_params)
    frozen = round(frozen_share * total)
    model = nn.Module()
    model.base = nn.ParameterList(_split(frozen, requires_grad=False))
    model.adapters = nn.ParameterList(_split(total - frozen, requires_grad=True))
    trainable = list(model.adapters.parameters())
    optimizer = torch.optim.AdamW(trainable, lr=1e-3)
    if trainable:
        sum(p.square().sum() for p in trainable).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return model, optimizer


def _split(n: int, *, requires_grad: bool) -> list[nn.Parameter]:
    sizes = [TENSOR] * (n // TENSOR) + ([n % TENSOR] if n % TENSOR else [])
    return [nn.Parameter(torch.randn(size), requires_grad=requires_grad) for size in sizes]


def timed(
    model: nn.Module, optimizer: torch.optim.Optimizer, repeats: int, copy_frozen: bool
) -> tuple[int, float]:
    """``(nbytes, median seconds)`` of taking and restoring the snapshot."""
    times = []
    nbytes = 0
    for _ in range(repeats):
        began = time.process_time()
        snapshot = TrainingSnapshot(model, optimizer, copy_frozen=copy_frozen)
        snapshot.restore()
        times.append(time.process_time() - began)
        nbytes = snapshot.nbytes
    return nbytes, times[0], statistics.median(times)


def megabytes(n: float) -> str:
    return f"{n / 1e6:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7, 5e7])
    parser.add_argument("--shares", type=float, nargs="+", default=[0.0, 0.9, 0.99])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the CPU hashes on as many)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), float32 parameters, AdamW, "
        f"median of {args.repeats}\n"
    )
    print(
        "| parameters | frozen | can change (MB) | snapshot (MB) | copy_frozen (MB) "
        "| snapshot ms, first / median | copy_frozen ms, first / median |"
    )
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes:
        for share in args.shares:
            model, optimizer = build(size, share)
            n = sum(p.numel() for p in model.parameters())
            frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
            floor = sum(p.nbytes for p in model.parameters() if p.requires_grad) + sum(
                v.nbytes for s in optimizer.state.values() for v in s.values()
            )
            checked_bytes, *checked = timed(model, optimizer, args.repeats, copy_frozen=False)
            copied_bytes, *copied = timed(model, optimizer, args.repeats, copy_frozen=True)
            print(
                f"| {n / 1e6:.1f} M | {frozen / n:.0%} | {megabytes(floor)} | {megabytes(checked_bytes)} | "
                f"{megabytes(copied_bytes)} | {' / '.join(f'{1e3 * t:.1f}' for t in checked)} | "
                f"{' / '.join(f'{1e3 * t:.1f}' for t in copied)} |"
            )


if __name__ == "__main__":
    main()
