"""Find the learning-rate range, then train one cycle over it: a small MLP on the bundled digits.

    python examples/one_cycle_digits.py [--epochs 8] [--batch-size 32] [--seed 0]

1. LR range test (``lrscout.pytorch.find_lr``) on the training split;
2. ``OneCycleLR`` over ``result.lr_range()`` (peak ``max_lr``, start ``base_lr``);
3. train, and report test accuracy, beside the same run at the constant
   suggested learning rate.

Needs PyTorch and scikit-learn (for the data, which ship with it: no network).
Runs in a few seconds on a laptop CPU.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lrscout.pytorch import find_lr, one_cycle_scheduler


def make_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(X).argmax(dim=1) == y).float().mean())


def train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: DataLoader[tuple[torch.Tensor, ...]],
    epochs: int,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> None:
    criterion = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        for inputs, targets in loader:
            optimizer.zero_grad()
            criterion(model(inputs), targets).backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)

    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(args.seed).permutation(len(X))
    test, fit = order[:360], order[360:]
    mean, std = X[fit].mean(axis=0), X[fit].std(axis=0) + 1e-8
    to_tensor = lambda rows: torch.tensor((X[rows] - mean) / std, dtype=torch.float32)  # noqa: E731
    X_fit, X_test = to_tensor(fit), to_tensor(test)
    y_fit, y_test = torch.tensor(y[fit]), torch.tensor(y[test])
    loader = DataLoader(
        TensorDataset(X_fit, y_fit),
        batch_size=args.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(args.seed),
    )

    model = make_model(args.seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    result = find_lr(
        model,
        optimizer,
        loader,
        nn.CrossEntropyLoss(),
        start_lr=1e-5,
        end_lr=10.0,
        num_steps=100,
        progress=False,
    )
    base_lr, max_lr = result.lr_range()
    suggested = result.suggestion.lr
    print(
        f"range test: {len(result)} steps ({result.stop_reason}), suggested lr {suggested:.3g}, "
        f"lr_range {base_lr:.3g} .. {max_lr:.3g}"
    )

    # The range test left the model and optimizer as they were: train this same model.
    scheduler = one_cycle_scheduler(optimizer, result, epochs=args.epochs, steps_per_epoch=len(loader))
    train(model, optimizer, loader, args.epochs, scheduler)
    one_cycle_accuracy = accuracy(model, X_test, y_test)

    baseline = make_model(args.seed)
    train(baseline, torch.optim.SGD(baseline.parameters(), lr=suggested, momentum=0.9), loader, args.epochs)
    steps = args.epochs * len(loader)
    print(
        f"test accuracy after {args.epochs} epochs ({steps} steps of batch {args.batch_size}):\n"
        f"  one-cycle over {base_lr:.3g} .. {max_lr:.3g}: {one_cycle_accuracy:.2%}\n"
        f"  constant lr {suggested:.3g}:              {accuracy(baseline, X_test, y_test):.2%}"
    )


if __name__ == "__main__":
    main()
