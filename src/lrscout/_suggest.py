"""Rules that read a learning rate off a range-test curve."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ._validation import check_option

if TYPE_CHECKING:
    from ._result import RangeTestResult, Suggestion

_MIN_POINTS = 5


def suggest(result: RangeTestResult, method: str) -> Suggestion:
    """Dispatch to the rule named ``method``; see :meth:`RangeTestResult.suggest`."""
    from ._result import Suggestion

    rules = {"auto": _auto, "valley": _valley, "steepest": _steepest, "minimum": _minimum}
    name = check_option(method, "method", rules, where="suggest")
    lr = rules[name](result)
    return Suggestion(lr=lr, method=name, index=_nearest_index(result.lrs, lr))


def lr_range(result: RangeTestResult) -> tuple[float, float]:
    """``(base_lr, max_lr)``: where the loss falls at least half as fast as at its steepest.

    On the zero-lag smoothed curve ``s`` (see :func:`zero_lag_smooth`) the rate
    of descent is ``r = -ds / dlog(lr)``. Its peak is the ``"auto"``
    suggestion; ``base_lr`` and ``max_lr`` are where ``r`` first falls to half
    its peak below and above it: the loss "starts to decrease" and "slows"
    there, Smith's (2017) reading of the curve for cyclic learning rates.
    """
    lrs, curve = _finite_prefix(result, "lr_range")
    smooth = zero_lag_smooth(curve)
    stop = _descent_end(smooth, result, "lr_range")
    rate = -np.gradient(smooth[: stop + 1], np.log(lrs[: stop + 1]))
    peak = int(np.argmax(rate))
    half = rate[peak] / 2.0
    low = peak
    while low > 0 and rate[low - 1] >= half:
        low -= 1
    high = peak
    while high < stop and rate[high + 1] >= half:
        high += 1
    return float(lrs[low]), float(lrs[high])


def zero_lag_smooth(losses: np.ndarray) -> np.ndarray:
    """Smooth a loss curve without shifting it toward later steps.

    A Gaussian kernel over the step index, normalised at the edges, applied to
    ``log(loss + c)`` with ``c`` a twentieth of the median loss when every
    loss is positive: the log keeps a diverging tail from leaking backward,
    ``c`` keeps single near-zero losses (one well-fit sample in stochastic
    GD) from dominating. The kernel width follows the noise: the step-to-step
    scatter ``s`` (from the median absolute difference) against the size
    ``A`` of the curve's fall, ``sigma = max(1, 0.015 n, (25 s / A)^2 / (2 sqrt(pi)))``
    steps, at most ``n / 8``, so the smoothed curve's error stays near ``A / 25``.

    The EMA used for the divergence stop lags by about ``1 / (1 - beta)``
    steps, which moves every rule read off it toward larger learning rates.
    """
    values = np.asarray(losses, dtype=np.float64)
    n = len(values)
    positive = bool(np.all(values >= 0)) and float(np.median(values)) > 0
    y = np.log(values + 0.05 * float(np.median(values))) if positive else values
    sigma = max(1.0, 0.015 * n)
    if n >= 8:
        scatter = 1.4826 * float(np.median(np.abs(np.diff(y)))) / math.sqrt(2.0)
        rough = _gaussian(y, max(2.0, n / 20))
        fall = float(rough[0] - rough.min()) or float(np.ptp(rough))
        if fall > 0:
            sigma = max(sigma, (25.0 * scatter / fall) ** 2 / (2.0 * math.sqrt(math.pi)))
        sigma = min(sigma, max(1.0, n / 8))
    smooth = _gaussian(y, sigma)
    return np.exp(smooth) - 0.05 * float(np.median(values)) if positive else smooth


def _gaussian(y: np.ndarray, sigma: float) -> np.ndarray:
    n = len(y)
    radius = min(n - 1, math.ceil(3 * sigma))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    padded = np.concatenate([np.zeros(radius), y, np.zeros(radius)])
    weights = np.concatenate([np.zeros(radius), np.ones(n), np.zeros(radius)])
    smooth: np.ndarray = np.convolve(padded, kernel, mode="valid") / np.convolve(
        weights, kernel, mode="valid"
    )
    return smooth


def _finite_prefix(result: RangeTestResult, method: str) -> tuple[np.ndarray, np.ndarray]:
    """The learning rates and raw losses up to the first non-finite loss."""
    finite = np.isfinite(result.losses)
    n = len(finite) if finite.all() else int(np.argmin(finite))
    if n < _MIN_POINTS:
        raise ValueError(
            f"suggest: method {method!r} needs at least {_MIN_POINTS} finite losses; the test recorded "
            f"{n} (stop_reason={result.stop_reason!r}). Lower start_lr or raise num_steps so that "
            "the loss is seen falling before it diverges."
        )
    return result.lrs[:n], result.losses[:n]


def _descent_end(smooth: np.ndarray, result: RangeTestResult, method: str) -> int:
    """Index of the curve's minimum; raise when the loss never decreased."""
    stop = int(np.argmin(smooth))
    if stop < 2 or smooth[stop] >= smooth[0]:
        raise _no_descent(result, len(smooth), method)
    return stop


def _no_descent(result: RangeTestResult, n: int, method: str) -> ValueError:
    return ValueError(
        f"suggest: method {method!r} found no decrease of the loss between lr={result.lrs[0]:.3g} and "
        f"lr={result.lrs[n - 1]:.3g}. Try a smaller start_lr (the loss may already be "
        "diverging at the start), more num_steps, or check that the model trains at all."
    )


def _auto(result: RangeTestResult) -> float:
    """Steepest descent of the zero-lag smoothed curve, before its minimum."""
    lrs, curve = _finite_prefix(result, "auto")
    smooth = zero_lag_smooth(curve)
    stop = _descent_end(smooth, result, "auto")
    slope = np.gradient(smooth[: stop + 1], np.log(lrs[: stop + 1]))
    return float(lrs[int(np.argmin(slope))])


def _steepest(result: RangeTestResult) -> float:
    """Steepest fall of the stored (EMA) smoothed loss against ``log(lr)``.

    The first tenth and the last twentieth of the points are skipped, as
    edge effects there are not the curve's shape.
    """
    lrs, _ = _finite_prefix(result, "steepest")
    smooth = result.smoothed_losses[: len(lrs)]
    start = len(lrs) // 10
    end = len(lrs) - max(1, len(lrs) // 20)
    if end - start < 3:
        raise ValueError(
            f"suggest: method 'steepest' needs more points after skipping the ends; the test recorded "
            f"{len(lrs)}. Raise num_steps or lower start_lr."
        )
    slope = np.gradient(smooth, np.log(lrs))[start:end]
    best = int(np.argmin(slope))
    if slope[best] >= 0:
        raise _no_descent(result, len(lrs), "steepest")
    return float(lrs[start + best])


def _minimum(result: RangeTestResult) -> float:
    """The learning rate of the lowest EMA-smoothed loss, divided by 10."""
    lrs, _ = _finite_prefix(result, "minimum")
    smooth = result.smoothed_losses[: len(lrs)]
    _descent_end(smooth, result, "minimum")
    lr = float(lrs[int(np.argmin(smooth))]) / 10.0
    if lr < result.lrs[0]:
        raise ValueError(
            f"suggest: method 'minimum' gives lr={lr:.3g}, below the tested start_lr={result.lrs[0]:.3g}. "
            "Rerun with a start_lr at least 100 times smaller."
        )
    return lr


def _valley(result: RangeTestResult) -> float:
    """The middle (in ``log(lr)``) of the longest decreasing run of the EMA curve.

    The run is the longest strictly decreasing subsequence of the smoothed
    loss (fastai's "valley" idea); it ignores short bumps along the way.
    """
    lrs, _ = _finite_prefix(result, "valley")
    smooth = result.smoothed_losses[: len(lrs)]
    n = len(smooth)
    length = np.ones(n, dtype=np.int64)
    first = np.arange(n)
    for i in range(1, n):
        higher = np.flatnonzero(smooth[:i] > smooth[i])
        if higher.size:
            j = higher[np.argmax(length[higher])]
            length[i] = length[j] + 1
            first[i] = first[j]
    end = int(np.argmax(length))
    if length[end] < 3:
        raise _no_descent(result, n, "valley")
    middle = math.sqrt(lrs[first[end]] * lrs[end])
    return float(lrs[_nearest_index(lrs, middle)])


def _nearest_index(lrs: np.ndarray, lr: float) -> int:
    return int(np.argmin(np.abs(np.log(lrs) - math.log(lr))))
