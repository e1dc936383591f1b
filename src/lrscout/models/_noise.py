"""The gradient noise scale of the NumPy models, exactly and by the two-batch estimator."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .._batching import as_generator
from .._errors import InvalidArgumentError, NoiseScaleWarning
from .._noise import NoiseScaleResult, _check_bootstrap, draw_big_batch, estimate_noise_scale, exact_result
from .._result import RangeTestResult
from .._validation import check_int, check_option
from ._estimators import GDEstimator, check_estimator
from ._find_lr import _FROM_MODEL, find_lr

METHODS = ("exact", "two-batch")


def noise_scale(
    model: GDEstimator,
    X: Any,
    y: Any,
    *,
    method: str = "exact",
    small_batch: int = 32,
    big_batch: int | None = None,
    num_pairs: int = 100,
    confidence: float = 0.95,
    n_bootstrap: int = 1000,
    random_state: int | np.random.Generator | None = _FROM_MODEL,
) -> NoiseScaleResult:
    """Gradient noise scale of a NumPy model at its current parameters.

    The parameters are the fitted ones when the model is fitted, else zeros
    (where ``fit`` starts), with a :class:`lrscout.NoiseScaleWarning`: at
    the initial weights ``B_simple`` is typically several times below its
    value once training is under way, which is why ``lrscout noise-scale``
    trains 3 epochs before measuring. ``model`` is not changed. Every lrscout.models
    estimator's per-example gradient has the form ``g_i = (r_i x_i^T, r_i)``
    (weights, intercept), with ``r_i`` the residual ``W x_i + b - y_i``
    (least squares) or ``softmax(W x_i + b) - onehot(y_i)`` (cross-entropy), so

    .. math:: \\lVert g_i \\rVert^2 = \\lVert r_i \\rVert^2 (\\lVert x_i \\rVert^2 + 1)

    (without the ``+ 1`` when ``fit_intercept=False``) and ``method="exact"``
    gets ``tr(Sigma) = (sum_i |g_i|^2 - n |G|^2) / (n - 1)`` in ``O(n d k)``
    time without storing any per-example gradient. The L2 penalty
    ``alpha W`` adds the same vector to every ``g_i``: it moves ``G``, not
    ``Sigma``.

    ``method="two-batch"`` measures instead what any model can: for each of
    ``num_pairs`` big batches of ``big_batch`` distinct samples (drawn
    uniformly at random), ``|G_big|^2`` and ``|G_small|^2`` of its consecutive
    slices of ``small_batch`` samples, from the model's own batch gradients,
    and combines them with :func:`lrscout.estimate_noise_scale` (finite-
    population correction for ``n = len(X)`` included).

    Args:
        model: An lrscout.models estimator: :class:`LinearRegressor`,
            :class:`SoftmaxClassifier` or another :class:`GDEstimator`.
        X: Inputs, ``(n_samples, n_features)``, ``n_samples >= 2``.
        y: Targets.
        method: ``"exact"`` or ``"two-batch"``.
        small_batch: Two-batch only: samples per small batch, at least 1.
        big_batch: Two-batch only: samples per big batch, more than
            ``small_batch`` and at most ``n_samples``; ``None`` means
            ``min(n_samples, 8 * small_batch)``.
        num_pairs: Two-batch only: big batches to measure, at least 2.
        confidence: Two-batch only: level of the bootstrap intervals.
        n_bootstrap: Two-batch only: bootstrap resamples.
        random_state: Two-batch only: seed for the batches and the bootstrap;
            defaults to ``model.random_state``.

    Returns:
        A :class:`lrscout.NoiseScaleResult`; ``info`` names the framework
        (``"numpy"``), the model and whether it was fitted.

    Raises:
        TypeError, ValueError: On a bad argument.

    Example:
        >>> from lrscout.models import LinearRegressor
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(500, 3))
        >>> y = X @ [1.0, -2.0, 0.5] + rng.normal(size=500)
        >>> model = LinearRegressor(lr=0.01, epochs=3, random_state=0).fit(X, y)
        >>> exact = noise_scale(model, X, y)
        >>> estimate = noise_scale(model, X, y, method="two-batch", random_state=0)
        >>> low, high = estimate.interval
        >>> bool(low <= exact.b_simple <= high)
        True
    """
    where = "models.noise_scale"
    model = check_estimator(model, where=where, fix="For PyTorch use lrscout.pytorch.noise_scale.")
    how = check_option(method, "method", METHODS, where=where)
    X_, T, n_outputs, _ = model._prepare(X, y, where)
    n, d = X_.shape
    check_int(n, "the number of samples", where=where, minimum=2)
    W, b = model._initial_params(n_outputs, d)
    fitted = hasattr(model, "coef_")
    info = {
        "framework": "numpy",
        "model": type(model).__name__,
        "fitted": fitted,
        "fit_intercept": bool(model.fit_intercept),
        "alpha": float(model.alpha),
    }
    if how == "exact":
        if not fitted:
            _warn_unfitted(model, where)
        grad_norm_sq, trace = _exact_stats(model, W, b, X_, T)
        return exact_result(grad_norm_sq, trace, n, info=info)
    small = check_int(small_batch, "small_batch", where=where, minimum=1, maximum=n - 1)
    big = min(n, 8 * small) if big_batch is None else big_batch
    big = check_int(
        big,
        "big_batch",
        where=where,
        minimum=small + 1,
        maximum=n,
        fix="It must exceed small_batch and fit in the data.",
    )
    pairs = check_int(num_pairs, "num_pairs", where=where, minimum=2)
    _check_bootstrap(confidence, n_bootstrap, where)
    seed = model.random_state if random_state is _FROM_MODEL else random_state
    rng = as_generator(seed, where=where)
    if not fitted:
        _warn_unfitted(model, where)
    chunks = big // small
    small_norms = np.empty((pairs, chunks))
    big_norms = np.empty(pairs)
    for pair in range(pairs):
        idx = draw_big_batch(rng, n, big)
        big_norms[pair] = _batch_sq_norm(model, W, b, X_[idx], T[idx])
        for chunk in range(chunks):
            part = idx[chunk * small : (chunk + 1) * small]
            small_norms[pair, chunk] = _batch_sq_norm(model, W, b, X_[part], T[part])
    return estimate_noise_scale(
        small_norms,
        big_norms,
        small_batch=small,
        big_batch=big,
        n_samples=n,
        confidence=confidence,
        n_bootstrap=n_bootstrap,
        random_state=rng,
        info=info,
    )


def _warn_unfitted(model: GDEstimator, where: str) -> None:
    warnings.warn(
        f"{where}: {type(model).__name__} is not fitted, so the noise scale is measured at its initial "
        "weights (zeros), where B_simple is typically several times below its value once training is "
        "under way (it grows as the loss falls) and the suggested batch size is too small; "
        "lrscout noise-scale trains 3 epochs first. Fit the model for a few epochs first "
        "(model.set_params(epochs=3).fit(X, y)) to measure where the training will be.",
        NoiseScaleWarning,
        stacklevel=3,
    )


def _batch_sq_norm(model: GDEstimator, W: np.ndarray, b: np.ndarray, X: np.ndarray, T: np.ndarray) -> float:
    """``|G_batch|^2`` over the parameters the model trains (no intercept without ``fit_intercept``)."""
    _, gW, gb = model._loss_grad(W, b, X, T)
    total = float(np.vdot(gW, gW))
    if model.fit_intercept:
        total += float(np.vdot(gb, gb))
    return total


def _exact_stats(
    model: GDEstimator, W: np.ndarray, b: np.ndarray, X: np.ndarray, T: np.ndarray
) -> tuple[float, float]:
    """``(|G|^2, tr(Sigma))`` from the closed-form per-example gradients."""
    n = X.shape[0]
    R, _ = model._residuals_and_loss(W, b, X, T)
    intercept = bool(model.fit_intercept)
    data_gW = R.T @ X / n
    data_gb = R.mean(axis=0)
    gW = data_gW + float(model.alpha) * W if model.alpha else data_gW
    grad_norm_sq = float(np.vdot(gW, gW)) + (float(data_gb @ data_gb) if intercept else 0.0)
    row_norms = np.einsum("ij,ij->i", X, X) + (1.0 if intercept else 0.0)
    total = float(np.einsum("ij,ij,i->", R, R, row_norms))
    data_norm_sq = float(np.vdot(data_gW, data_gW)) + (float(data_gb @ data_gb) if intercept else 0.0)
    return grad_norm_sq, (total - n * data_norm_sq) / (n - 1)


def rerun_find_lr(
    model: GDEstimator,
    X: Any,
    y: Any,
    previous: RangeTestResult,
    *,
    batch_size: int | None,
    random_state: int | np.random.Generator | None = _FROM_MODEL,
    progress: bool = True,
) -> RangeTestResult:
    """Run :func:`find_lr` again at another batch size, with the settings of ``previous``.

    The ramp (``start_lr``, ``end_lr``, ``num_steps``, ``mode``),
    ``smoothing`` and ``divergence_factor`` are those ``previous`` ran with,
    so the two curves can be laid over each other; only the batch size
    changes. Use it to confirm the learning rate that
    :func:`lrscout.rescale_lr` or :meth:`lrscout.NoiseScaleResult.advise`
    predicts for a new batch size.

    Args:
        model: The model ``previous`` was found for (not changed).
        X: Training inputs.
        y: Training targets.
        previous: The earlier :class:`lrscout.RangeTestResult`.
        batch_size: The new batch size; ``None`` means the whole set.
        random_state: Seed for the batch order; defaults to ``model.random_state``.
        progress: Show a tqdm bar where someone can watch it (see
            :func:`lrscout.range_test`).

    Returns:
        The new :class:`lrscout.RangeTestResult`.

    Raises:
        TypeError, ValueError: On a bad argument.

    Example:
        >>> from lrscout.models import LinearRegressor, find_lr
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(256, 3))
        >>> y = X @ [1.0, -2.0, 0.5] + rng.normal(size=256)
        >>> model = LinearRegressor(batch_size=8, random_state=0)
        >>> first = find_lr(model, X, y, start_lr=1e-4, num_steps=60)
        >>> again = rerun_find_lr(model, X, y, first, batch_size=64)
        >>> again.info["batch_size"], again.num_steps, again.start_lr
        (64, 60, 0.0001)
    """
    if not isinstance(previous, RangeTestResult):
        raise InvalidArgumentError(
            f"rerun_find_lr: previous must be a RangeTestResult; got {type(previous).__name__}."
        )
    return find_lr(
        model,
        X,
        y,
        batch_size=batch_size,
        start_lr=previous.start_lr,
        end_lr=previous.end_lr,
        num_steps=previous.num_steps,
        mode=previous.mode,
        smoothing=previous.smoothing,
        divergence_factor=previous.divergence_factor,
        random_state=random_state,
        progress=progress,
    )
