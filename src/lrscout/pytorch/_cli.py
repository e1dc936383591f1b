"""The PyTorch side of ``lrscout find-lr --framework pytorch``: a small model on arrays."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from .._batching import minibatches
from .._errors import InvalidArgumentError
from .._result import RangeTestResult
from .._validation import check_batch_size, check_bool, check_float, check_int, check_option
from ._finder import LRFinder

#: Width of the hidden layer of ``model="mlp"``.
HIDDEN_UNITS = 64
#: Heavy-ball momentum of the SGD optimizer the command uses.
MOMENTUM = 0.9

TASKS = ("classification", "regression")
MODELS = ("mlp", "linear")


class _ArrayBatches:
    """Re-iterable mini-batches of tensors, reshuffled each pass by one seeded generator."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor, batch_size: int | None, seed: int) -> None:
        self._X, self._y = X, y
        self.batch_size = batch_size
        self._rng = np.random.default_rng(seed)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for index in minibatches(len(self._X), self.batch_size, random_state=self._rng):
            rows = torch.from_numpy(index)
            yield self._X[rows], self._y[rows]


def run_find_lr(
    X: np.ndarray,
    y: np.ndarray,
    *,
    task: str,
    model: str,
    batch_size: int | None,
    start_lr: float,
    end_lr: float,
    num_steps: int,
    mode: str,
    seed: int,
    progress: bool,
) -> RangeTestResult:
    """Range-test a small PyTorch model on ``(X, y)``, for the command line.

    The model is ``"linear"`` (one ``nn.Linear``) or ``"mlp"`` (``nn.Linear``
    to :data:`HIDDEN_UNITS` units, ReLU, ``nn.Linear``), with one output per
    class and ``nn.CrossEntropyLoss`` for ``"classification"``, or one output
    and ``nn.MSELoss`` for ``"regression"``. The optimizer is SGD with
    momentum :data:`MOMENTUM`. Batches are drawn in a shuffled order, a new
    one each pass over the data.

    Args:
        X: Features, shape ``(n_samples, n_features)``, finite, already
            standardised.
        y: Targets, shape ``(n_samples,)``: integer labels ``0..K-1`` (K >= 2)
            for classification, real values for regression.
        task: ``"classification"`` or ``"regression"``.
        model: ``"mlp"`` or ``"linear"``.
        batch_size: Samples per step; ``None`` is the full batch.
        start_lr: First learning rate.
        end_lr: Last learning rate.
        num_steps: Most steps.
        mode: ``"exponential"`` or ``"linear"`` ramp.
        seed: Fixes the initial weights and the batch order (torch's global
            RNG is left as it was).
        progress: Show a progress bar.

    Returns:
        The :class:`~lrscout.RangeTestResult`; ``info`` also names the task,
        model and optimizer.

    Raises:
        TypeError, ValueError: On a bad argument, naming it.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> X = rng.standard_normal((40, 3))
        >>> result = run_find_lr(X, X @ [1.0, 2.0, -1.0], task="regression", model="linear",
        ...     batch_size=None, start_lr=1e-4, end_lr=1.0, num_steps=5, mode="exponential",
        ...     seed=0, progress=False)
        >>> len(result), result.info["model"], result.info["batch_size"]
        (5, 'linear', None)
    """
    where = "run_find_lr"
    task = check_option(task, "task", TASKS, where=where)
    model = check_option(model, "model", MODELS, where=where)
    batch_size = check_batch_size(batch_size, where=where)
    start_lr = check_float(start_lr, "start_lr", where=where, positive=True)
    seed = check_int(seed, "seed", where=where, minimum=0)
    progress = check_bool(progress, "progress", where=where)
    features, targets, n_outputs = _check_data(X, y, task, where=where)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = _build_model(model, features.shape[1], n_outputs)
    optimizer = torch.optim.SGD(network.parameters(), lr=start_lr, momentum=MOMENTUM)
    criterion: nn.Module = nn.CrossEntropyLoss() if task == "classification" else nn.MSELoss()
    batches = _ArrayBatches(features, targets, batch_size, seed)
    result = LRFinder(network, optimizer, criterion).range_test(
        batches, start_lr=start_lr, end_lr=end_lr, num_steps=num_steps, mode=mode, progress=progress
    )
    info = {
        **result.info,
        "task": task,
        "model": model,
        "hidden_units": HIDDEN_UNITS if model == "mlp" else None,
        "optimizer": "SGD",
        "momentum": MOMENTUM,
        "seed": seed,
    }
    return dataclasses.replace(result, info=info)


def _check_data(
    X: np.ndarray, y: np.ndarray, task: str, *, where: str
) -> tuple[torch.Tensor, torch.Tensor, int]:
    features = np.asarray(X)
    if features.ndim != 2 or features.shape[0] < 1 or features.shape[1] < 1:
        raise InvalidArgumentError(
            f"{where}: X must be a 2-D array with at least one row and column; got shape {features.shape}."
        )
    if not np.issubdtype(features.dtype, np.number) or not np.all(np.isfinite(features)):
        raise InvalidArgumentError(
            f"{where}: X must hold finite numbers only. Drop or impute missing values first."
        )
    target = np.asarray(y)
    if target.shape != (features.shape[0],):
        raise InvalidArgumentError(
            f"{where}: y must have shape ({features.shape[0]},), one target per row of X; got {target.shape}."
        )
    if not np.issubdtype(target.dtype, np.number) or not np.all(np.isfinite(target)):
        raise InvalidArgumentError(f"{where}: y must hold finite numbers only.")
    X_t = torch.as_tensor(features, dtype=torch.float32)
    if task == "regression":
        return X_t, torch.as_tensor(target, dtype=torch.float32).reshape(-1, 1), 1
    if np.any(target < 0) or np.any(target != np.round(target)):
        raise InvalidArgumentError(
            f"{where}: y must hold integer class labels 0..K-1 for classification; "
            f"got values such as {target[(target < 0) | (target != np.round(target))][0]!r}. "
            "Use task='regression' for real-valued targets."
        )
    n_classes = int(target.max()) + 1
    if n_classes < 2:
        raise InvalidArgumentError(
            f"{where}: y must hold at least two classes (labels 0..K-1); got only label 0."
        )
    return X_t, torch.as_tensor(target, dtype=torch.int64), n_classes


def _build_model(model: str, n_features: int, n_outputs: int) -> nn.Module:
    if model == "linear":
        return nn.Linear(n_features, n_outputs)
    return nn.Sequential(
        nn.Linear(n_features, HIDDEN_UNITS),
        nn.ReLU(),
        nn.Linear(HIDDEN_UNITS, n_outputs),
    )
