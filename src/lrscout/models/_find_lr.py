"""The LR range test for the NumPy models."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .._batching import as_generator, gd_variant, minibatches, steps_per_epoch
from .._engine import range_test
from .._plan import Plan, classify, resolve_plan
from .._refine import refine as refine_stage
from .._result import RangeTestResult
from .._validation import check_batch_size, check_bool, check_int
from ._estimators import GDEstimator, check_estimator

# Default of the arguments that fall back to the model's own hyperparameter.
_FROM_MODEL: Any = object()


def find_lr(
    model: GDEstimator,
    X: Any,
    y: Any,
    *,
    batch_size: int | None = _FROM_MODEL,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    mode: str = "exponential",
    smoothing: float = 0.98,
    divergence_factor: float = 4.0,
    stop_on_divergence: bool = True,
    extend: bool = True,
    refine: bool = False,
    schedule: str = "auto",
    total_steps: int | None = None,
    epochs: float | None = None,
    random_state: int | np.random.Generator | None = _FROM_MODEL,
    progress: bool = True,
) -> RangeTestResult:
    """Run an LR range test on a copy of a NumPy model's parameters.

    Each step draws the next batch (epoch after epoch), computes the loss and
    gradient, and updates with the step's learning rate and the model's
    momentum, in NumPy whatever the model's ``engine``. The test starts from
    the fitted parameters when the model is fitted, else from zeros as
    ``fit`` would; ``model`` is not changed.

    Args:
        model: An lrscout.models estimator: :class:`LinearRegressor`,
            :class:`SoftmaxClassifier` or another :class:`GDEstimator`.
        X: Training inputs, ``(n_samples, n_features)``.
        y: Training targets.
        batch_size: Samples per step; defaults to ``model.batch_size``
            (``None`` = full batch).
        start_lr, end_lr, num_steps, mode, smoothing, divergence_factor,
        stop_on_divergence, progress: As in :func:`lrscout.range_test`.
        extend: Keep ramping past ``end_lr`` while the loss has not turned
            up (see :func:`lrscout.range_test`); on by default here, so the
            curve finds its own end.
        refine: After the test, probe the default suggestion from the same
            start on the same batches (see ``lrscout._refine``: rates on both
            sides of it in rounds of successive halving, scored on their own
            training losses) and move the rate part of the way to the best
            (``result.info["refinement"]``; the result's ``suggestion`` is
            then that rate, method ``"refined"``). Three times the test's
            steps; off by default (README).
        schedule: The schedule the suggestion is for (see
            :meth:`lrscout.RangeTestResult.suggest`); ``"auto"`` is the
            model's own: its ``lr`` schedule when it has one (a one-cycle,
            cosine or linear shape, recognised by sampling it over the run),
            else constant.
        total_steps: Update steps of the training; defaults to
            ``model.epochs`` times the steps per epoch at ``batch_size``.
        epochs: Epochs of the training instead of ``total_steps``.
        random_state: Seed for the batch order; defaults to
            ``model.random_state``.

    Returns:
        The :class:`lrscout.RangeTestResult`.

    Raises:
        InvalidArgumentError: On a bad argument, or a hyperparameter of
            ``model`` that ``fit`` would refuse.

    Example:
        >>> from lrscout.models import LinearRegressor
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(200, 3))
        >>> y = X @ [1.0, -2.0, 0.5] + rng.normal(size=200)
        >>> result = find_lr(LinearRegressor(batch_size=None), X, y, start_lr=1e-4)
        >>> len(result), bool(result.suggestion.lr < 1.8)  # full-batch GD diverges past 1.8 here
        (100, True)
    """
    where = "find_lr"
    model = check_estimator(
        model, where=where, fix="For PyTorch use lrscout.pytorch.find_lr, for Keras lrscout.keras.find_lr."
    )
    batch = model.batch_size if batch_size is _FROM_MODEL else batch_size
    batch = check_batch_size(batch, where=where)
    seed = model.random_state if random_state is _FROM_MODEL else random_state
    X_, T, n_outputs, _ = model._prepare(X, y, where)
    rng = as_generator(seed, where=where)
    refine = check_bool(refine, "refine", where=where)
    begin = rng.bit_generator.state
    n = X_.shape[0]
    per_epoch = steps_per_epoch(n, batch)
    plan = resolve_plan(
        schedule,
        total_steps,
        epochs,
        steps_per_epoch=per_epoch,
        held=_model_plan(model, per_epoch, where),
        where=where,
    )
    info = {
        "framework": "numpy",
        "model": type(model).__name__,
        "optimizer": "SGD",
        "batch_size": batch,
        "n_samples": n,
        "variant": gd_variant(batch, n),
        "momentum": float(model.momentum),
        "steps_per_epoch": per_epoch,
        "plan": plan.to_dict(),
        "rerun_hint": "lrscout.models.rerun_find_lr(model, X, y, result, batch_size={batch_size})",
    }

    def start() -> Callable[[float], float]:
        # The same initial parameters and the same batches as the test's.
        rng.bit_generator.state = begin
        return _step_fn(model, X_, T, n_outputs, batch, rng)

    with np.errstate(over="ignore", invalid="ignore"):
        result = range_test(
            start(),
            start_lr=start_lr,
            end_lr=end_lr,
            num_steps=num_steps,
            mode=mode,
            smoothing=smoothing,
            divergence_factor=divergence_factor,
            stop_on_divergence=stop_on_divergence,
            extend=extend,
            progress=progress,
            info=info,
        )
        return refine_stage(result, start, progress=progress, where=where) if refine else result


def _model_plan(model: GDEstimator, per_epoch: int, where: str) -> Plan:
    """The training ``model.fit`` would run: ``epochs`` at its ``lr``, constant or a schedule."""
    epochs = check_int(model.epochs, "epochs", where=where, minimum=1, fix="It is model.epochs.")
    total = epochs * per_epoch
    if not callable(model.lr):
        return Plan("constant", total, "model")
    schedule = classify(model._learning_rates(total, where))
    if schedule is None:
        return Plan("constant", total, "model (its lr schedule is none of lrscout's: taken as constant)")
    return Plan(schedule, total, "model")


def _step_fn(
    model: GDEstimator,
    X: np.ndarray,
    T: np.ndarray,
    n_outputs: int,
    batch_size: int | None,
    rng: np.random.Generator,
) -> Callable[[float], float]:
    """A range-test ``step_fn`` that trains a private copy of the model's parameters.

    Starts from the fitted parameters when there are any, else from zeros as
    ``fit`` does; draws batches epoch after epoch, reshuffled per epoch when
    the model's ``shuffle`` is set. Each step is the model's own NumPy update.
    """
    W, b = model._initial_params(n_outputs, X.shape[1])
    VW, Vb = np.zeros_like(W), np.zeros_like(b)
    batches = _batch_stream(X.shape[0], batch_size, bool(model.shuffle), rng)
    momentum = float(model.momentum)

    def step_fn(lr: float) -> float:
        idx = next(batches)
        return model._update(W, b, VW, Vb, X[idx], T[idx], lr, momentum)

    return step_fn


def _batch_stream(
    n_samples: int, batch_size: int | None, shuffle: bool, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """The batches of one epoch after another, without end."""
    while True:
        yield from minibatches(n_samples, batch_size, shuffle=shuffle, random_state=rng)
