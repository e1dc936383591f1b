"""``lrscout find-lr --framework keras``: a small Keras model on the data set."""

from __future__ import annotations

from typing import Any

from .._result import RangeTestResult
from ..keras import find_lr
from ._data import Dataset
from ._find_lr import DEFAULT_MOMENTUM, HIDDEN_UNITS, FindLRSettings


def build_model(n_features: int, n_outputs: int, *, task: str, model: str, momentum: float) -> Any:
    """The command's Keras model, compiled with SGD and heavy-ball ``momentum``.

    ``"linear"`` is one Dense layer; ``"mlp"`` puts one hidden Dense layer of
    :data:`HIDDEN_UNITS` ReLU units before it. Classification outputs logits
    for sparse categorical cross-entropy (integer labels); regression outputs
    one value for mean squared error.
    """
    import keras

    layers = [keras.Input((n_features,))]
    if model == "mlp":
        layers.append(keras.layers.Dense(HIDDEN_UNITS, activation="relu"))
    layers.append(keras.layers.Dense(n_outputs))
    network = keras.Sequential(layers)
    loss: Any = (
        keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        if task == "classification"
        else keras.losses.MeanSquaredError()
    )
    # The test sets the learning rate at every step; this value is never used.
    network.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=momentum), loss=loss)
    return network


def run_find_lr(data: Dataset, settings: FindLRSettings) -> RangeTestResult:
    """Build the command's Keras model for ``data`` and run :func:`lrscout.keras.find_lr` on it.

    ``settings.seed`` seeds Python, NumPy and the backend
    (``keras.utils.set_random_seed``): initial weights and the shuffling
    order, so a seed gives the same result.

    Example:
        >>> from lrscout.cli._data import load_dataset
        >>> settings = FindLRSettings(batch_size=None, num_steps=5, extend=False)
        >>> result = run_find_lr(load_dataset("diabetes"), settings)
        >>> len(result), result.info["model"], result.info["momentum"]
        (5, 'linear', 0.9)
    """
    import keras

    keras.utils.set_random_seed(settings.seed)
    momentum = settings.momentum_or(DEFAULT_MOMENTUM)
    n_outputs = data.n_classes if data.task == "classification" else 1
    network = build_model(data.X.shape[1], n_outputs, task=data.task, model=settings.model, momentum=momentum)
    floatx = keras.backend.floatx()
    targets = data.y if data.task == "classification" else data.y.astype(floatx).reshape(-1, 1)
    return find_lr(
        network,
        data.X.astype(floatx),
        targets,
        batch_size=settings.batch_size,
        start_lr=settings.start_lr,
        end_lr=settings.end_lr,
        num_steps=settings.num_steps,
        mode=settings.mode,
        extend=settings.extend,
        progress=settings.progress,
        info={"task": data.task, "model": settings.model, "seed": settings.seed, "momentum": momentum},
    )
