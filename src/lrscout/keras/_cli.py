"""What ``lrscout find-lr --framework keras`` runs: a small model built here, then ``find_lr``."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import InvalidArgumentError
from .._result import RangeTestResult
from .._validation import check_bool, check_float, check_int, check_option
from ._find_lr import find_lr
from ._keras import keras

_WHERE = "run_find_lr"
TASKS = ("classification", "regression")
MODELS = ("mlp", "linear")
HIDDEN_UNITS = 64
MOMENTUM = 0.9


def build_model(n_features: int, n_outputs: int, *, task: str, model: str, momentum: float = MOMENTUM) -> Any:
    """The CLI's Keras model, compiled with SGD (heavy-ball momentum, 0.9 by default).

    ``"linear"`` is one Dense layer; ``"mlp"`` puts one hidden Dense layer of
    64 ReLU units before it. Classification outputs logits for
    sparse categorical cross-entropy (integer labels); regression outputs one
    value for mean squared error.
    """
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
    momentum: float = MOMENTUM,
) -> RangeTestResult:
    """Build the CLI's Keras model for ``X, y`` and run :func:`lrscout.keras.find_lr` on it.

    The model is ``"linear"`` (one Dense layer) or ``"mlp"`` (one hidden
    layer of 64 ReLU units), trained by SGD with heavy-ball momentum (0.9
    unless ``momentum`` says otherwise); see :func:`build_model`.

    Args:
        X: Features, shape ``(n_samples, n_features)``, real numbers.
        y: ``"classification"``: integer labels ``0..K-1`` (K >= 2);
            ``"regression"``: real targets; shape ``(n_samples,)``.
        task: ``"classification"`` or ``"regression"``.
        model: ``"mlp"`` or ``"linear"``.
        batch_size: Samples per step; ``None`` is the whole set.
        start_lr, end_lr, num_steps, mode: The ramp, as in ``find_lr``.
        seed: Seeds Python, NumPy and the backend
            (``keras.utils.set_random_seed``): initial weights and the
            shuffling order, so a seed gives the same result.
        progress: Show a progress bar over the steps.
        momentum: SGD momentum in [0, 1).

    Returns:
        The :class:`lrscout.RangeTestResult`; ``info`` adds ``task`` and
        ``model``.

    Raises:
        TypeError, ValueError: On bad arguments, before training.

    Example:
        >>> X = np.arange(40.0).reshape(20, 2) / 40
        >>> result = run_find_lr(X, X.sum(axis=1), task="regression", model="linear",
        ...     batch_size=None, start_lr=1e-3, end_lr=1.0, num_steps=5,
        ...     mode="exponential", seed=0, progress=False)
        >>> len(result), result.info["model"]
        (5, 'linear')
    """
    task = check_option(task, "task", TASKS, where=_WHERE)
    model = check_option(model, "model", MODELS, where=_WHERE)
    seed = check_int(seed, "seed", where=_WHERE, minimum=0)
    show = check_bool(progress, "progress", where=_WHERE)
    beta = check_float(momentum, "momentum", where=_WHERE, minimum=0.0, maximum=1.0, open_maximum=True)
    features = _check_features(X)
    targets, n_outputs = _check_targets(y, task, len(features))
    keras.utils.set_random_seed(seed)
    network = build_model(features.shape[1], n_outputs, task=task, model=model, momentum=beta)
    return find_lr(
        network,
        features,
        targets,
        batch_size=batch_size,
        start_lr=start_lr,
        end_lr=end_lr,
        num_steps=num_steps,
        mode=mode,
        progress=show,
        info={"task": task, "model": model, "seed": seed, "momentum": beta},
    )


def _check_features(X: Any) -> np.ndarray:
    features = np.asarray(X)
    if features.ndim != 2 or features.shape[0] < 1 or features.shape[1] < 1:
        raise InvalidArgumentError(
            f"{_WHERE}: X must be a non-empty 2-D array (n_samples, n_features); got shape {features.shape}."
        )
    if not (
        np.issubdtype(features.dtype, np.number) and not np.issubdtype(features.dtype, np.complexfloating)
    ):
        raise InvalidArgumentError(f"{_WHERE}: X must hold real numbers; got dtype {features.dtype}.")
    if not np.all(np.isfinite(features)):
        raise InvalidArgumentError(
            f"{_WHERE}: X must be finite; got NaN or infinite entries. Drop or impute them."
        )
    return features.astype(keras.backend.floatx())


def _check_targets(y: Any, task: str, n_samples: int) -> tuple[np.ndarray, int]:
    targets = np.asarray(y)
    if targets.shape != (n_samples,):
        raise InvalidArgumentError(
            f"{_WHERE}: y must be a 1-D array with one entry per row of X ({n_samples}); "
            f"got shape {targets.shape}."
        )
    if task == "regression":
        if not np.issubdtype(targets.dtype, np.number) or np.issubdtype(targets.dtype, np.complexfloating):
            raise InvalidArgumentError(
                f"{_WHERE}: y must hold real numbers for regression; got dtype {targets.dtype}."
            )
        if not np.all(np.isfinite(targets)):
            raise InvalidArgumentError(
                f"{_WHERE}: y must be finite for regression; got NaN or infinite entries."
            )
        # A column, so the (n, 1) predictions are not broadcast against (n,).
        return targets.astype(keras.backend.floatx()).reshape(-1, 1), 1
    labels = targets.astype(np.int64) if np.issubdtype(targets.dtype, np.number) else None
    if labels is None or not np.array_equal(labels, targets) or labels.min() < 0:
        raise InvalidArgumentError(
            f"{_WHERE}: y must hold integer class labels 0..K-1 for classification; got {targets[:5]!r}... "
            "Encode the classes as integers first."
        )
    n_classes = int(labels.max()) + 1
    if n_classes < 2:
        raise InvalidArgumentError(
            f"{_WHERE}: y must hold at least 2 classes for classification; got {n_classes}."
        )
    return labels, n_classes
