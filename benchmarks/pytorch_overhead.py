"""What a range test costs over plain training: lrscout vs torch-lr-finder vs a bare loop.

Each method trains the same 64-128-128-10 MLP (ReLU) on scikit-learn's digits
for 300 steps of batch 32 with SGD, on one CPU thread:

- ``bare``: the plain training loop (``zero_grad``, forward, ``backward``,
  ``step``), no learning-rate changes, no losses read;
- ``lrscout``: ``lrscout.pytorch.LRFinder.range_test`` (snapshot, ramp, losses
  read 8 steps at a time, restore);
- ``torch-lr-finder``: ``torch_lr_finder.LRFinder.range_test`` then ``reset()``
  (its restore), with its progress bar replaced by a plain loop.

Divergence stopping is off in both finders and the ramp ends at 1.0, so every
method runs all 300 steps (checked). The methods take turns within each round,
in a rotating order. The table gives, over rounds, the median and the minimum
of the process's CPU time (``time.process_time``: with one thread it is the
work done, less inflated than wall time when other programs share the
machine; the minimum is the least disturbed run) and the median wall time.

Two data paths: ``dataloader`` (a shuffling ``DataLoader`` over a
``TensorDataset``, as most training code has) and ``prebatched`` (a
``DataLoader`` over ready-made batch tensors, ``batch_size=None``), where
little besides the model runs and any per-step overhead shows most.

Run: ``python benchmarks/pytorch_overhead.py [--rounds 31] [--steps 300]``.
Needs the ``bench`` extra (``torch-lr-finder``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch_lr_finder
import torch_lr_finder.lr_finder
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lrscout import CurveWarning
from lrscout.pytorch import LRFinder

START_LR, END_LR, BATCH_SIZE = 1e-4, 1.0, 32


def build(seed: int = 0) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))
    return model, torch.optim.SGD(model.parameters(), lr=START_LR)


def loaders(steps: int) -> dict[str, DataLoader[Any]]:
    X, y = load_digits(return_X_y=True)
    features = torch.tensor((X - X.mean(0)) / (X.std(0) + 1e-8), dtype=torch.float32)
    labels = torch.tensor(y)
    shuffled = DataLoader(
        TensorDataset(features, labels),
        batch_size=BATCH_SIZE,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    batches = [
        (features[order[i : i + BATCH_SIZE]], labels[order[i : i + BATCH_SIZE]])
        for i in range(0, len(labels) - BATCH_SIZE + 1, BATCH_SIZE)
    ]
    return {"dataloader": shuffled, "prebatched": DataLoader(batches, batch_size=None)}


def bare(loader: DataLoader[Any], steps: int) -> int:
    model, optimizer = build()
    criterion = nn.CrossEntropyLoss()
    model.train()
    done = 0
    while done < steps:
        for inputs, targets in loader:
            optimizer.zero_grad()
            criterion(model(inputs), targets).backward()
            optimizer.step()
            done += 1
            if done == steps:
                break
    return done


def lrscout_finder(loader: DataLoader[Any], steps: int) -> int:
    model, optimizer = build()
    result = LRFinder(model, optimizer, nn.CrossEntropyLoss()).range_test(
        loader,
        start_lr=START_LR,
        end_lr=END_LR,
        num_steps=steps,
        stop_on_divergence=False,
        progress=False,
    )
    return len(result)


def torch_lr_finder_finder(loader: DataLoader[Any], steps: int) -> int:
    model, optimizer = build()
    finder = torch_lr_finder.LRFinder(model, optimizer, nn.CrossEntropyLoss(), device="cpu")
    # It prints a line when done; keep the table readable.
    with contextlib.redirect_stdout(io.StringIO()):
        finder.range_test(
            loader, start_lr=START_LR, end_lr=END_LR, num_iter=steps, step_mode="exp", diverge_th=float("inf")
        )
    finder.reset()
    return len(finder.history["loss"])


METHODS: dict[str, Callable[[DataLoader[Any], int], int]] = {
    "bare": bare,
    "lrscout": lrscout_finder,
    "torch-lr-finder": torch_lr_finder_finder,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(1)
    # The ramp ends at 1.0 on purpose (every method runs every step); the
    # curve's "never turned up" warning is not what is being measured.
    warnings.simplefilter("ignore", CurveWarning)
    # No progress bar: its terminal writes are not what is being measured.
    torch_lr_finder.lr_finder.tqdm = lambda iterable, *a, **k: iterable

    versions = f"torch {torch.__version__}, torch-lr-finder {importlib.metadata.version('torch-lr-finder')}"
    print(f"{versions}, 1 thread")
    print(f"{args.steps} steps, batch {BATCH_SIZE}, median of {args.rounds} rounds (after one warm-up)\n")
    print("                             CPU time (median)        CPU (min)   wall (median)")
    print("data        method           seconds us/step vs bare    vs bare    seconds vs bare")
    for data, loader in loaders(args.steps).items():
        cpu: dict[str, list[float]] = {name: [] for name in METHODS}
        wall: dict[str, list[float]] = {name: [] for name in METHODS}
        names = list(METHODS)
        for round_ in range(args.rounds + 1):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                start_cpu, start_wall = time.process_time(), time.perf_counter()
                done = METHODS[name](loader, args.steps)
                elapsed_cpu, elapsed_wall = time.process_time() - start_cpu, time.perf_counter() - start_wall
                if done != args.steps:
                    raise RuntimeError(f"{name} ran {done} steps, not {args.steps}")
                if round_ > 0:
                    cpu[name].append(elapsed_cpu)
                    wall[name].append(elapsed_wall)
        cpu_bare, wall_bare = statistics.median(cpu["bare"]), statistics.median(wall["bare"])
        for name in names:
            median_cpu, median_wall = statistics.median(cpu[name]), statistics.median(wall[name])
            print(
                f"{data:<11} {name:<15} {median_cpu:>8.4f} {1e6 * median_cpu / args.steps:>7.0f} "
                f"{median_cpu / cpu_bare:>7.3f}x {min(cpu[name]) / min(cpu['bare']):>9.3f}x "
                f"{median_wall:>10.4f} {median_wall / wall_bare:>7.3f}x"
            )


if __name__ == "__main__":
    main()
