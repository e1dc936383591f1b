"""``lrscout find-lr --framework pytorch``: a small ``torch.nn`` model on the data set."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from .._batching import minibatches
from .._result import RangeTestResult
from ..pytorch import LRFinder
from ._data import Dataset
from ._find_lr import DEFAULT_MOMENTUM, HIDDEN_UNITS, FindLRSettings


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


def run_find_lr(data: Dataset, settings: FindLRSettings) -> RangeTestResult:
    """Range-test a small PyTorch model on ``data``.

    The model is ``"linear"`` (one ``nn.Linear``) or ``"mlp"`` (``nn.Linear``
    to :data:`HIDDEN_UNITS` units, ReLU, ``nn.Linear``), with one output per
    class and ``nn.CrossEntropyLoss`` for classification, or one output and
    ``nn.MSELoss`` for regression, trained by SGD with heavy-ball momentum
    (``settings.momentum``, 0.9 by default). Batches come in a shuffled
    order, a new one each pass; the seed fixes the initial weights and the
    order, and torch's global RNG is left as it was.

    Example:
        >>> from lrscout.cli._data import load_dataset
        >>> settings = FindLRSettings(model="mlp", start_lr=1e-4, num_steps=5, momentum=0.5, extend=False)
        >>> result = run_find_lr(load_dataset("breast-cancer"), settings)
        >>> len(result), result.info["model"], result.info["momentum"]
        (5, 'mlp', 0.5)
    """
    X = torch.as_tensor(data.X, dtype=torch.float32)
    if data.task == "classification":
        y = torch.as_tensor(data.y, dtype=torch.int64)
        n_outputs = data.n_classes
        criterion: nn.Module = nn.CrossEntropyLoss()
    else:
        y = torch.as_tensor(data.y, dtype=torch.float32).reshape(-1, 1)
        n_outputs = 1
        criterion = nn.MSELoss()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        network = _build_model(settings.model, X.shape[1], n_outputs)
    momentum = settings.momentum_or(DEFAULT_MOMENTUM)
    optimizer = torch.optim.SGD(network.parameters(), lr=settings.start_lr, momentum=momentum)
    batches = _ArrayBatches(X, y, settings.batch_size, settings.seed)
    result = LRFinder(network, optimizer, criterion).range_test(
        batches,
        start_lr=settings.start_lr,
        end_lr=settings.end_lr,
        num_steps=settings.num_steps,
        mode=settings.mode,
        extend=settings.extend,
        progress=settings.progress,
    )
    info = {
        **result.info,
        "task": data.task,
        "model": settings.model,
        "hidden_units": HIDDEN_UNITS if settings.model == "mlp" else None,
        "seed": settings.seed,
    }
    return dataclasses.replace(result, info=info)


def _build_model(model: str, n_features: int, n_outputs: int) -> nn.Module:
    if model == "linear":
        return nn.Linear(n_features, n_outputs)
    return nn.Sequential(nn.Linear(n_features, HIDDEN_UNITS), nn.ReLU(), nn.Linear(HIDDEN_UNITS, n_outputs))
