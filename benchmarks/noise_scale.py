"""Does the gradient noise scale predict the critical batch size? Measured on two tasks.

    python benchmarks/noise_scale.py [--seeds 2] [--quick]

For each task and batch size ``B`` it trains with plain SGD (constant
learning rate, the best of a geometric grid, averaged over ``--seeds``
shuffles) until the loss on the whole training set first reaches a target,
and records the steps ``S(B)``. McCandlish et al. (2018) predict

    S(B) = S_min (1 + B_crit / B)

steps fall in proportion to ``1/B`` below ``B_crit`` and stop falling above
it. The fit of that curve to the measured ``S(B)`` gives the measured
``B_crit``; lrscout's ``B_simple`` is measured (exactly, and by the two-batch
estimator) at the initial weights, half-way, and at the target loss,
reached by SGD at batch 32. Their claim is ``B_crit ~ B_simple`` near the
target loss.

Tasks: lrscout's NumPy ``SoftmaxClassifier`` on the bundled digits, and a
PyTorch MLP (64-64-10, ReLU) on the same data. No network.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lrscout import exact_noise_scale
from lrscout.cli._data import load_dataset
from lrscout.models import SoftmaxClassifier, noise_scale
from lrscout.pytorch import noise_scale as torch_noise_scale

CHECK_RATIO = 1.02  # the loss is checked at steps 1, 2, ... growing by 2%: S is known to 2%


@dataclass
class Trainer:
    """What the benchmark needs from a task: a fresh state, one SGD step, the full loss."""

    name: str
    n: int
    init: Callable[[], object]
    step: Callable[[object, np.ndarray, float], None]
    full_loss: Callable[[object], float]
    target: float
    noise: Callable[[object, str], tuple[float, tuple[float, float]]]


def steps_to_target(task: Trainer, batch: int, lr: float, seed: int, budget: int) -> float:
    """First checked step with full-set loss <= target; ``inf`` past ``budget`` or on divergence."""
    state = task.init()
    rng = np.random.default_rng(seed)
    order = rng.permutation(task.n)
    position = 0
    check = 1
    for step in range(1, budget + 1):
        if position + batch > task.n:
            order = rng.permutation(task.n)
            position = 0
        task.step(state, order[position : position + batch], lr)
        position += batch
        if step == check:
            loss = task.full_loss(state)
            if loss <= task.target:
                return float(step)
            if not math.isfinite(loss) or loss > 50.0:
                return math.inf
            check = max(step + 1, math.ceil(step * CHECK_RATIO))
    return math.inf


def best_steps(task: Trainer, batch: int, seeds: int, budget: int) -> tuple[float, float]:
    """``(S, lr)``: fewest mean steps over a geometric LR grid, scanned from large to small."""
    best, best_lr, worse = math.inf, math.nan, 0
    for lr in np.geomspace(64.0, 1e-3, 37):
        limit = budget if math.isinf(best) else min(budget, int(1.5 * best) + 1)
        runs = []
        for seed in range(seeds):
            runs.append(steps_to_target(task, batch, float(lr), seed, limit))
            if math.isinf(runs[-1]):
                break
        mean = float(np.mean(runs))
        if mean < best:
            best, best_lr, worse = mean, float(lr), 0
        elif math.isfinite(best):
            worse += 1
            if worse >= 3:  # smaller learning rates only get slower from here
                break
    return best, best_lr


def fit_critical_batch(batches: np.ndarray, steps: np.ndarray) -> tuple[float, float]:
    """``(S_min, B_crit)`` of ``S = S_min (1 + B_crit / B)``, least squares on ``log S``."""
    best = (math.inf, math.nan, math.nan)
    for crit in np.geomspace(0.1, 1e5, 4000):
        shape = np.log1p(crit / batches)
        log_min = float(np.mean(np.log(steps) - shape))
        residual = float(np.sum((np.log(steps) - log_min - shape) ** 2))
        if residual < best[0]:
            best = (residual, math.exp(log_min), float(crit))
    return best[1], best[2]


def trajectory_states(task: Trainer, batch: int, lr: float, losses: list[float]) -> list[object]:
    """States of one SGD run at ``batch``, ``lr`` when the full loss first reaches each of ``losses``."""
    state = task.init()
    rng = np.random.default_rng(0)
    order, position, found = rng.permutation(task.n), 0, []
    pending = sorted(losses, reverse=True)
    for _ in range(200_000):
        if position + batch > task.n:
            order, position = rng.permutation(task.n), 0
        task.step(state, order[position : position + batch], lr)
        position += batch
        loss = task.full_loss(state)
        while pending and loss <= pending[0]:
            found.append(copy.deepcopy(state))
            pending.pop(0)
        if not pending:
            return found
    raise RuntimeError(f"{task.name}: the loss never reached {pending}")


# Task 1: lrscout's NumPy softmax regression ----------------------------------------------


def numpy_softmax(target: float) -> Trainer:
    data = load_dataset("digits")
    model = SoftmaxClassifier()
    X, T, k, _ = model._prepare(data.X, data.y, "benchmark")
    d = X.shape[1]

    def init() -> object:
        return (np.zeros((k, d)), np.zeros(k))

    def step(state: object, idx: np.ndarray, lr: float) -> None:
        W, b = state  # type: ignore[misc]
        _, gW, gb = model._loss_grad(W, b, X[idx], T[idx])
        W -= lr * gW
        b -= lr * gb

    def full_loss(state: object) -> float:
        W, b = state  # type: ignore[misc]
        return model._objective(W, b, X, T)

    def noise(state: object, method: str) -> tuple[float, tuple[float, float]]:
        W, b = state  # type: ignore[misc]
        fitted = SoftmaxClassifier()
        fitted.classes_ = np.arange(k)
        fitted._set_fitted(W, b)
        if method == "exact":
            result = noise_scale(fitted, data.X, data.y)
        else:
            result = noise_scale(
                fitted,
                data.X,
                data.y,
                method="two-batch",
                small_batch=16,
                big_batch=256,
                num_pairs=200,
                random_state=0,
            )
        return result.b_simple, result.interval

    return Trainer("numpy softmax, digits", len(X), init, step, full_loss, target, noise)


# Task 2: a PyTorch MLP ------------------------------------------------------------------------


class MLP(nn.Sequential):
    def __init__(self) -> None:
        torch.manual_seed(0)
        super().__init__(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def torch_mlp(target: float) -> Trainer:
    data = load_dataset("digits")
    X = torch.tensor(data.X, dtype=torch.float32)
    y = torch.tensor(data.y)
    criterion = nn.CrossEntropyLoss()

    def init() -> object:
        return MLP()

    def step(state: object, idx: np.ndarray, lr: float) -> None:
        model: nn.Module = state  # type: ignore[assignment]
        rows = torch.from_numpy(idx)
        model.zero_grad(set_to_none=True)
        criterion(model(X[rows]), y[rows]).backward()
        with torch.no_grad():
            for p in model.parameters():
                p.add_(p.grad, alpha=-lr)

    def full_loss(state: object) -> float:
        model: nn.Module = state  # type: ignore[assignment]
        with torch.no_grad():
            return float(criterion(model(X), y))

    def noise(state: object, method: str) -> tuple[float, tuple[float, float]]:
        model: nn.Module = state  # type: ignore[assignment]
        if method == "exact":
            params = list(model.parameters())
            grads = []
            for i in range(len(X)):
                loss = criterion(model(X[i : i + 1]), y[i : i + 1])
                grads.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)]).double())
            result = exact_noise_scale(torch.stack(grads).numpy())
        else:
            result = torch_noise_scale(
                model, (X, y), criterion, small_batch=16, big_batch=256, num_pairs=200, random_state=0
            )
        return result.b_simple, result.interval

    return Trainer("torch MLP 64-64-10, digits", len(X), init, step, full_loss, target, noise)


def report(task: Trainer, batches: list[int], seeds: int, budget: int) -> None:
    began = time.perf_counter()
    print(f"\n== {task.name}: steps of plain SGD until the full-set loss <= {task.target} ==")
    print(f"{'batch':>6s} {'best lr':>9s} {'steps S':>9s} {'samples B*S':>12s}")
    measured = []
    limit = budget
    for batch in batches:
        steps, lr = best_steps(task, batch, seeds, limit)
        if math.isfinite(steps):
            # S(B) does not grow with B: the smaller batch's count bounds the search.
            limit = min(budget, int(2 * steps) + 50)
        measured.append((batch, steps, lr))
        print(f"{batch:>6d} {lr:>9.3g} {steps:>9.1f} {batch * steps:>12.0f}", flush=True)
    ok = [(b, s) for b, s, _ in measured if math.isfinite(s)]
    b_arr = np.array([b for b, _ in ok], dtype=float)
    s_arr = np.array([s for _, s in ok])
    s_min, b_crit = fit_critical_batch(b_arr, s_arr)
    # Where S(B) crosses 2 S_min, read off the measured points (log-log interpolation).
    knee = math.nan
    for (b0, s0), (b1, s1) in itertools.pairwise(ok):
        if s0 > 2 * s_min >= s1:
            t = (math.log(s0) - math.log(2 * s_min)) / (math.log(s0) - math.log(s1))
            knee = math.exp(math.log(b0) + t * (math.log(b1) - math.log(b0)))
            break
    print(
        f"fit S = S_min (1 + B_crit / B): S_min = {s_min:.1f} steps, B_crit = {b_crit:.0f}; "
        f"measured S(B) crosses 2 S_min at B ~ {knee:.0f}"
    )
    lr32 = next(lr for b, _, lr in measured if b == 32)
    start = task.init()
    initial = task.full_loss(start)
    halfway = math.exp((math.log(initial) + math.log(task.target)) / 2)
    states = trajectory_states(task, 32, lr32, [halfway, task.target])
    print(f"B_simple along an SGD run at batch 32, lr {lr32:.3g}:")
    for label, state in [
        (f"initial weights (loss {initial:.3g})", start),
        (f"half-way (loss {halfway:.3g})", states[0]),
        (f"at the target (loss {task.target})", states[1]),
    ]:
        exact, _ = task.noise(state, "exact")
        estimate, (low, high) = task.noise(state, "two-batch")
        print(
            f"  {label:<32s} exact {exact:>7.1f}   two-batch {estimate:>7.1f} [{low:.1f}, {high:.1f}]"
            f"   B_crit / B_simple(exact) = {b_crit / exact:.2f}"
        )
    print(f"({time.perf_counter() - began:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2, help="shuffles averaged per learning rate")
    parser.add_argument("--quick", action="store_true", help="fewer batch sizes, one seed")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = 1 if args.quick else args.seeds
    batches = (
        [1, 4, 16, 32, 128, 512, 1797] if args.quick else [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 1797]
    )
    report(numpy_softmax(target=0.1), batches, seeds, budget=20_000)
    report(torch_mlp(target=0.1), batches, seeds, budget=20_000)


if __name__ == "__main__":
    main()
