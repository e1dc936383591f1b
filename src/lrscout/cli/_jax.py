"""``lrscout find-lr --framework jax``: a small JAX model trained by ``optax.sgd`` on the data set."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._batching import minibatches
from .._result import RangeTestResult
from ..optax import find_lr
from ._data import Dataset
from ._find_lr import DEFAULT_MOMENTUM, HIDDEN_UNITS, FindLRSettings

Params = list[dict[str, jax.Array]]


class _ArrayBatches:
    """Re-iterable mini-batches of NumPy arrays, reshuffled each pass by one seeded generator."""

    def __init__(self, X: np.ndarray, y: np.ndarray, batch_size: int | None, seed: int) -> None:
        self._X, self._y = X, y
        self._batch_size = batch_size
        self._rng = np.random.default_rng(seed)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for index in minibatches(len(self._X), self._batch_size, random_state=self._rng):
            yield self._X[index], self._y[index]


def init_params(key: jax.Array, n_features: int, n_outputs: int, *, model: str) -> Params:
    """The layers of ``model`` as ``[{"w": (n_in, n_out), "b": (n_out,)}, ...]``.

    ``"linear"`` is one dense layer; ``"mlp"`` puts a hidden layer of
    :data:`HIDDEN_UNITS` units before it. Weights and biases are drawn
    uniformly from ``±1/sqrt(n_in)``, as ``torch.nn.Linear`` draws them.
    """
    widths = [n_features, HIDDEN_UNITS, n_outputs] if model == "mlp" else [n_features, n_outputs]
    layers = []
    for n_in, n_out in itertools.pairwise(widths):
        key, w_key, b_key = jax.random.split(key, 3)
        bound = 1.0 / math.sqrt(n_in)
        layers.append(
            {
                "w": jax.random.uniform(w_key, (n_in, n_out), minval=-bound, maxval=bound),
                "b": jax.random.uniform(b_key, (n_out,), minval=-bound, maxval=bound),
            }
        )
    return layers


def forward(params: Params, X: jax.Array) -> jax.Array:
    """The network's outputs: dense layers with ReLU between them."""
    *hidden, last = params
    for layer in hidden:
        X = jax.nn.relu(X @ layer["w"] + layer["b"])
    return X @ last["w"] + last["b"]


def cross_entropy(params: Params, batch: tuple[jax.Array, jax.Array]) -> jax.Array:
    """Mean softmax cross-entropy of integer labels (``nn.CrossEntropyLoss``)."""
    X, y = batch
    losses: jax.Array = optax.softmax_cross_entropy_with_integer_labels(forward(params, X), y)
    return losses.mean()


def squared_error(params: Params, batch: tuple[jax.Array, jax.Array]) -> jax.Array:
    """Mean squared error, no 1/2 (``nn.MSELoss``)."""
    X, y = batch
    return jnp.mean((forward(params, X)[:, 0] - y) ** 2)


def run_find_lr(data: Dataset, settings: FindLRSettings) -> RangeTestResult:
    """Range-test a small JAX model on ``data`` with :func:`lrscout.optax.find_lr`.

    The model is ``"linear"`` (one dense layer) or ``"mlp"`` (a hidden layer
    of :data:`HIDDEN_UNITS` ReLU units, then a dense layer), with one output
    per class and softmax cross-entropy for classification, or one output and
    mean squared error for regression, trained by ``optax.sgd`` with
    heavy-ball momentum (``settings.momentum``, 0.9 by default). Batches come
    in a shuffled order, a new one each pass; the seed fixes the initial
    weights (``jax.random.PRNGKey(seed)``) and the order.

    Example:
        >>> from lrscout.cli._data import load_dataset
        >>> settings = FindLRSettings(model="mlp", start_lr=1e-4, num_steps=5, momentum=0.5, extend=False)
        >>> result = run_find_lr(load_dataset("breast-cancer"), settings)
        >>> len(result), result.info["model"], result.info["momentum"]
        (5, 'mlp', 0.5)
    """
    X = data.X.astype(np.float32)
    if data.task == "classification":
        y: np.ndarray = data.y.astype(np.int32)
        n_outputs = data.n_classes
        loss_fn = cross_entropy
    else:
        y = data.y.astype(np.float32)
        n_outputs = 1
        loss_fn = squared_error
    params = init_params(jax.random.PRNGKey(settings.seed), X.shape[1], n_outputs, model=settings.model)
    momentum = settings.momentum_or(DEFAULT_MOMENTUM)
    # The test sets the learning rate at every step; this value is never used.
    optimizer = optax.inject_hyperparams(optax.sgd)(learning_rate=settings.start_lr, momentum=momentum)
    info: dict[str, Any] = {
        "task": data.task,
        "model": settings.model,
        "hidden_units": HIDDEN_UNITS if settings.model == "mlp" else None,
        "seed": settings.seed,
    }
    return find_lr(
        loss_fn,
        params,
        optimizer,
        _ArrayBatches(X, y, settings.batch_size, settings.seed),
        start_lr=settings.start_lr,
        end_lr=settings.end_lr,
        num_steps=settings.num_steps,
        mode=settings.mode,
        extend=settings.extend,
        progress=settings.progress,
        info=info,
    )
