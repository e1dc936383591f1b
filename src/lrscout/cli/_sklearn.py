"""``lrscout find-lr --framework sklearn``: scikit-learn's SGD and MLP estimators on the data set."""

from __future__ import annotations

import dataclasses
from typing import Any

from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor

from .._result import RangeTestResult
from .._validation import fail
from ..sklearn import find_lr
from ._data import Dataset
from ._find_lr import _WHERE, DEFAULT_MOMENTUM, HIDDEN_UNITS, FindLRSettings


def run_find_lr(data: Dataset, settings: FindLRSettings) -> RangeTestResult:
    """Range-test a scikit-learn estimator on ``data`` with :func:`lrscout.sklearn.find_lr`.

    The model is ``"linear"``: ``SGDClassifier(loss="log_loss")`` for
    classification, ``SGDRegressor()`` (squared error) for regression, which
    have no momentum; or ``"mlp"``: ``MLPClassifier`` / ``MLPRegressor`` with
    one hidden layer of :data:`HIDDEN_UNITS` ReLU units, ``solver="sgd"`` and
    Nesterov momentum (``settings.momentum``, 0.9 by default). The seed fixes
    the initial weights, the order within each batch and the batch order.

    Raises:
        InvalidArgumentError: ``settings.momentum`` is given, and not 0, for
            the linear model.

    Example:
        >>> from lrscout.cli._data import load_dataset
        >>> settings = FindLRSettings(model="mlp", start_lr=1e-4, num_steps=5, momentum=0.5, extend=False)
        >>> result = run_find_lr(load_dataset("breast-cancer"), settings)
        >>> len(result), result.info["estimator"], result.info["momentum"]
        (5, 'MLPClassifier', 0.5)
    """
    classification = data.task == "classification"
    seed = settings.seed
    estimator: Any
    if settings.model == "linear":
        if settings.momentum not in (None, 0.0):
            fail(
                _WHERE,
                "momentum",
                "None or 0 for the sklearn linear model (SGDClassifier and SGDRegressor have no momentum)",
                settings.momentum,
                "Drop --momentum, or use --model mlp.",
            )
        estimator = (
            SGDClassifier(loss="log_loss", random_state=seed)
            if classification
            else SGDRegressor(random_state=seed)
        )
    else:
        mlp = MLPClassifier if classification else MLPRegressor
        estimator = mlp(
            hidden_layer_sizes=(HIDDEN_UNITS,),
            solver="sgd",
            momentum=settings.momentum_or(DEFAULT_MOMENTUM),
            random_state=seed,
        )
    result = find_lr(
        estimator,
        data.X,
        data.y,
        batch_size=settings.batch_size,
        start_lr=settings.start_lr,
        end_lr=settings.end_lr,
        num_steps=settings.num_steps,
        mode=settings.mode,
        extend=settings.extend,
        random_state=seed,
        progress=settings.progress,
    )
    info = {
        **result.info,
        "task": data.task,
        "model": settings.model,
        "hidden_units": HIDDEN_UNITS if settings.model == "mlp" else None,
        "seed": seed,
    }
    return dataclasses.replace(result, info=info)
