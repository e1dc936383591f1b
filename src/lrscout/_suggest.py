"""Rules that read a learning rate off a range-test curve."""

from __future__ import annotations

import math
from dataclasses import dataclass
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


# The default rule's constants, chosen on the "design" half of
# benchmarks/suggestion_quality.py and checked on its held-out half; the
# adaptive margin was chosen on the Adam tasks of both and checked on the
# "held-out 2" tasks written after it.
_AUTO_MARGIN = 3.0
_AUTO_ADAPTIVE_MARGIN = 6.0
_AUTO_MOMENTUM = 0.3
_AUTO_NOISE_BATCH = 2.0
_SMOOTHING_WIDTH = 0.04
# Optimizers that divide each step by a running RMS of the gradient (PyTorch
# and Keras class names).
_ADAPTIVE = frozenset({"Adam", "AdamW", "Adamax", "NAdam", "Nadam", "RAdam", "RMSprop"})


@dataclass(frozen=True)
class CurveReading:
    """What the default rule reads off a range-test curve.

    Attributes:
        lrs: Learning rates up to the first non-finite loss.
        smooth: Their losses, smoothed without lag (:func:`zero_lag_smooth`).
        minimum: Index of the smoothed minimum, where the loss stops falling.
        noise: Step-to-step scatter of ``log(loss)`` while it falls (robust
            standard deviation of consecutive differences over the last
            steps of the fall, divided by ``sqrt(2)``). The fall from the
            first point to the minimum must exceed it, else the curve is
            refused as showing no clear decrease.
        momentum: ``result.info["momentum"]``, the heavy-ball momentum of the
            optimizer the test ran with; 0 when not recorded.
        batch_size: ``result.info["batch_size"]``; ``None`` when not recorded
            or the whole set.
        adaptive: Whether ``result.info["optimizer"]`` names an optimizer
            that scales its steps by a running RMS of the gradient (Adam,
            AdamW, Adamax, NAdam, RAdam, RMSprop).
    """

    lrs: np.ndarray
    smooth: np.ndarray
    minimum: int
    noise: float
    momentum: float
    batch_size: int | None
    adaptive: bool


def read_curve(result: RangeTestResult, method: str = "auto") -> CurveReading:
    """Locate the end of the fall and its noise on the curve of ``result``.

    Raises:
        ValueError: If fewer than 5 finite losses were recorded, or the
            smoothed loss never fell by more than its noise.
    """
    lrs, raw = _finite_prefix(result, method)
    smooth = zero_lag_smooth(raw, sigma=max(1.0, _SMOOTHING_WIDTH * result.num_steps))
    minimum = _descent_end(smooth, result, method)
    offset = _log_offset(raw)
    log_raw, log_smooth = (raw, smooth) if offset is None else (np.log(raw + offset), np.log(smooth + offset))
    fall = float(log_smooth[0] - log_smooth[minimum])
    steps = np.diff(log_raw[max(0, minimum - 20) : minimum + 1])
    noise = 1.4826 * float(np.median(np.abs(steps))) / math.sqrt(2.0) if len(steps) > 2 else 0.0
    if fall <= noise:
        raise ValueError(
            f"suggest: method {method!r} found no clear decrease of the loss: it fell by {fall:.3g} "
            f"(log scale) against step-to-step noise of {noise:.3g}. The batches may be too small "
            "or too few to see the trend: raise num_steps or the batch size, or pass a val_loader."
        )
    return CurveReading(
        lrs=lrs,
        smooth=smooth,
        minimum=minimum,
        noise=noise,
        momentum=_info_number(result, "momentum", 0.0, 1.0) or 0.0,
        batch_size=_info_int(result, "batch_size"),
        adaptive=result.info.get("optimizer") in _ADAPTIVE,
    )


def _auto(result: RangeTestResult) -> float:
    """lrscout's default rule: the end of the fall, with a margin.

    .. math:: \\eta = \\frac{\\eta_{\\min}}{m \\cdot 10^{0.3 \\beta}\\,(1 + 2 / B)}

    ``eta_min`` is the learning rate at the minimum of the smoothed loss
    (:func:`zero_lag_smooth`, ``sigma`` = 4 % of ``num_steps``): past it a
    step does more harm than good to a model that has barely trained.
    Training for longer at one rate needs a margin below it (the loss
    surface sharpens as training goes on): ``m = 3``. Optimizers that divide
    by a running RMS of the gradient (Adam and its kin, RMSprop;
    ``result.info["optimizer"]``) get ``m = 6``: as training goes on the
    gradients shrink, the RMS follows them down and the same rate takes
    larger steps than the test saw. Heavy-ball momentum ``beta``
    (``result.info["momentum"]``) widens the margin: the ramp outruns the
    momentum buffer, so the test sees the instability late. Small batches
    ``B`` (``result.info["batch_size"]``) widen it too, as McCandlish et
    al.'s optimal step ``eta_max / (1 + B_noise / B)`` with a small noise
    scale ``B_noise = 2``: a third for stochastic GD, nothing to speak of at 32.
    """
    reading = read_curve(result, "auto")
    batch = 1.0 + _AUTO_NOISE_BATCH / reading.batch_size if reading.batch_size else 1.0
    base = _AUTO_ADAPTIVE_MARGIN if reading.adaptive else _AUTO_MARGIN
    margin = base * math.pow(10.0, _AUTO_MOMENTUM * reading.momentum) * batch
    lr = float(reading.lrs[reading.minimum]) / margin
    if lr < result.lrs[0]:
        raise ValueError(
            f"suggest: method 'auto' gives lr={lr:.3g}, below the tested start_lr={result.lrs[0]:.3g}. "
            "Rerun with a smaller start_lr."
        )
    return lr


def lr_range(result: RangeTestResult) -> tuple[float, float]:
    """``(base_lr, max_lr) = (lr / 4, 2 lr)`` around the default suggestion ``lr``.

    A cyclic or one-cycle schedule spends only part of the run at its peak,
    so the peak can sit above the best constant rate; Smith (2017) puts the
    base a third to a quarter of the way up. Of the pairs tried in
    ``benchmarks/suggestion_quality.py`` (peaks of 1, 2 and 3 times the
    suggestion, bases of a quarter to a twenty-fifth of the peak) this one
    trained best under ``OneCycleLR`` on the suite.
    """
    lr = _auto(result)
    return lr / 4.0, lr * 2.0


def _info_number(result: RangeTestResult, key: str, low: float, high: float) -> float | None:
    value = result.info.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value < high:
        return None
    return float(value)


def _info_int(result: RangeTestResult, key: str) -> int | None:
    value = result.info.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _log_offset(losses: np.ndarray) -> float | None:
    """``c`` for ``log(loss + c)``: a twentieth of the median loss; ``None`` if a loss is negative.

    The log keeps a diverging tail from leaking backward through a smoother;
    ``c`` keeps single near-zero losses (one well-fit sample in stochastic
    GD) from dominating it.
    """
    median = float(np.median(losses))
    if np.any(losses < 0) or median <= 0:
        return None
    return 0.05 * median


def zero_lag_smooth(losses: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """Smooth a loss curve without shifting it toward later steps.

    A Gaussian kernel of width ``sigma`` steps (default 4 % of the points,
    at least 1), normalised at the edges, applied to ``log(loss + c)`` with
    ``c`` a twentieth of the median loss (plain losses if any is negative),
    and mapped back. The EMA that the divergence stop uses lags by about
    ``1 / (1 - beta)`` steps, which moves every rule read off it toward
    larger learning rates.

    Example:
        >>> zero_lag_smooth(np.array([4.0, 4.0, 1.0, 1.0]), sigma=1.0).round(2).tolist()
        [3.58, 2.61, 1.57, 1.13]
    """
    values = np.asarray(losses, dtype=np.float64)
    width = max(1.0, _SMOOTHING_WIDTH * len(values)) if sigma is None else sigma
    offset = _log_offset(values)
    if offset is None:
        return _gaussian(values, width)
    smooth: np.ndarray = np.exp(_gaussian(np.log(values + offset), width)) - offset
    return smooth


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
