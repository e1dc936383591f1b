"""Rules that read a learning rate off a range-test curve: pure functions of arrays.

Each rule takes the learning rates and losses of a test (and, for ``auto``,
facts about the run) and returns a learning rate, or raises
:class:`~lrscout.NoSuggestionError` saying why the curve cannot support one.
None of them knows :class:`~lrscout.RangeTestResult`, so a rule can be tested
on a recorded curve and reused by any framework (fastai's suggestion
functions have the same shape). ``RangeTestResult.suggest`` reads the run's
facts from ``info`` and calls them.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ._errors import NoSuggestionError

_MIN_POINTS = 5
_MIN_FALL = 1e-6
# A test whose loss fell by under 1 % of its start and never turned up has not reached the
# rates at which the model learns (see _require_fall).
_MIN_LEARNING = 0.01
# The fall of the smoothed curve is measured against its own standard error
# (:func:`_fall_and_noise`): the rules refuse a fall under two standard errors
# (noise alone makes one about 2 % of the time) and warn under three times
# that. At the default 100 steps this is about one step-to-step noise width
# (and three for the warning); a longer test smooths over more steps and
# resolves a smaller fall, so "raise num_steps" is advice that works.
_FALL_SE = 2.0
_NOISY_FALL = 3.0
# "At the edge": the smoothed minimum among the last 5 % of the points (at
# least the last 3) or, for "from the start", among the first 5 % (at least 2).
_EDGE = 0.05
# Consecutive differences that measure the step-to-step noise.
_NOISE_STEPS = 20


# The default rule's margins: natural logs, fitted by benchmarks/fit_rule.py (see margin())
# on benchmarks/rule_family.py's generated family: 257 task-seeds of 18 families, 2056
# plan cases (4 schedules x 2 lengths each). With the length known, 50 % of cases within
# 10 % of the grid's best, geometric-mean regret 1.342 in-sample and 49 % / 1.366 with
# each family scored by the fit without it; the rule before this fit 35 % / 1.514,
# fastai's minimum/10 29 % / 1.671. A batch-size term gained 0.003 and was left out.
_FIT: dict[str, dict[str, Any]] = {
    "length known": {
        "kind": {"sgd": 1.140, "momentum": 1.104, "adaptive": 1.610, "adagrad": 1.888},
        "schedule": {"one_cycle": -0.606, "cosine": -0.476, "linear": -0.609},
        "horizon": {"sgd": 0.114, "momentum": 0.419, "adaptive": 0.396, "adagrad": 0.201},
        "fall": 0.698,
    },
    "length unknown": {
        "kind": {"sgd": 1.005, "momentum": 1.189, "adaptive": 1.654, "adagrad": 1.887},
        "schedule": {"one_cycle": -0.540, "cosine": -0.302, "linear": -0.490},
        "fall": 0.708,
    },
    "length known, optimizer unknown": {
        "kind": {"all": 1.386},
        "schedule": {"one_cycle": -0.663, "cosine": -0.456, "linear": -0.624},
        "horizon": {"all": 0.361},
        "fall": 0.713,
    },
    "length unknown, optimizer unknown": {
        "kind": {"all": 1.545},
        "schedule": {"one_cycle": -0.627, "cosine": -0.525, "linear": -0.628},
        "fall": 0.892,
    },
}
# The family's range of log(fall) and of log(total_steps / test steps): the margin is a line
# fitted on it, and outside it holds at its edge (a curve that fell by 0.5 % is read as one
# that fell by the least the family saw, not extrapolated to a margin below 1/50).
_FALL_RANGE = (-1.702, 2.202)
_HORIZON_RANGE = (-3.209, 4.091)
_SMOOTHING_WIDTH = 0.04
# Optimizers that divide each step by a running RMS of the gradient (PyTorch, Keras and
# optax class names), and the one that divides by the root of the gradients' running sum.
_ADAPTIVE = frozenset({"Adam", "AdamW", "Adamax", "NAdam", "Nadam", "RAdam", "RMSprop"})
_ACCUMULATING = frozenset({"Adagrad"})


def read_curve(
    lrs: npt.ArrayLike, losses: npt.ArrayLike, *, num_steps: int | None = None, method: str = "auto"
) -> tuple[np.ndarray, np.ndarray, int]:
    """Locate the end of the fall on a curve: ``(lrs, smooth, minimum)``.

    ``lrs`` and ``smooth`` run up to the first non-finite loss; ``smooth`` is
    the loss smoothed without lag (:func:`zero_lag_smooth`, ``sigma`` = 4 %
    of ``num_steps``, the planned length, which defaults to the recorded
    one); ``minimum`` indexes its lowest point, where the loss stops falling.
    The fall of the smoothed ``log(loss)`` from the first point to the
    minimum must exceed two standard errors under the curve's step-to-step
    noise (:func:`_fall_and_noise`).

    Raises:
        NoSuggestionError: If fewer than 5 finite losses were recorded, or the
            smoothed loss never fell by more than its noise allows.
    """
    rates, raw = _finite_prefix(lrs, losses, method)
    planned = len(np.asarray(lrs)) if num_steps is None else num_steps
    sigma = max(1.0, _SMOOTHING_WIDTH * planned)
    smooth = zero_lag_smooth(raw, sigma=sigma)
    minimum = _descent_end(rates, smooth, method)
    _require_fall(raw, smooth, minimum, method, sigma)
    return rates, smooth, minimum


def _fall_and_noise(raw: np.ndarray, smooth: np.ndarray, minimum: int, sigma: float) -> tuple[float, float]:
    """The fall of ``log(loss)`` to ``minimum`` and its standard error under the curve's noise.

    The noise is the step-to-step scatter of ``log(loss)``: the robust
    standard deviation of consecutive differences over the last 20 steps of
    the fall (the first 20 steps of the curve when the fall is shorter),
    divided by ``sqrt(2)``. The fall is a difference of two smoothed points,
    each a weighted mean of the raw points (the kernel of
    :func:`zero_lag_smooth` with width ``sigma``); with independent noise its
    standard error is the noise times the norm of the difference of the two
    weight vectors.
    """
    scale = _huge_scale(raw)
    raw, smooth = raw / scale, smooth / scale  # the log scale does not see the unit; the plain one is in it
    offset = _log_offset(raw)
    log_raw, log_smooth = (raw, smooth) if offset is None else (np.log(raw + offset), np.log(smooth + offset))
    fall = float(log_smooth[0] - log_smooth[minimum])
    # A minimum among the first 20 points takes the first 21 points (past it,
    # if need be): a noise measured on two or three differences, or taken as
    # 0 for want of them, would let a chance dip pass for a fall.
    stop = max(minimum + 1, min(len(log_raw), _NOISE_STEPS + 1))
    steps = np.diff(log_raw[max(0, stop - _NOISE_STEPS - 1) : stop])
    noise = 1.4826 * float(np.median(np.abs(steps))) / math.sqrt(2.0) if len(steps) else 0.0
    weights = _kernel_rows(len(log_raw), sigma, [0, minimum])
    return fall, noise * float(np.linalg.norm(weights[0] - weights[1]))


def _fall_scale(raw: np.ndarray) -> str:
    """How :func:`_fall_and_noise` measures: log scale, or loss units for losses down to 0 or below."""
    return "log scale" if _log_offset(raw / _huge_scale(raw)) is not None else "in loss units"


def _kernel_rows(n: int, sigma: float, rows: list[int]) -> np.ndarray:
    """The weights that :func:`_gaussian` gives the ``n`` points in smoothing each of ``rows``."""
    radius = min(n - 1, math.ceil(3 * sigma))
    offsets = np.arange(n)[None, :] - np.asarray(rows)[:, None]
    kernel = np.where(np.abs(offsets) <= radius, np.exp(-0.5 * (offsets / sigma) ** 2), 0.0)
    weights: np.ndarray = kernel / kernel.sum(axis=1, keepdims=True)
    return weights


def _require_fall(raw: np.ndarray, smooth: np.ndarray, minimum: int, method: str, sigma: float) -> None:
    """Refuse a curve whose fall to ``minimum`` is under two standard errors (see ``_FALL_SE``).

    Also one that never turned up and fell by under 1 % of its start: the
    ramp never reached rates at which the model learns, so the curve has no
    end of the fall to read, only its edge (a curve that turns up after a
    small fall, a fine-tuned model's, does say where training breaks).
    """
    fall, error = _fall_and_noise(raw, smooth, minimum, sigma)
    drop = 1.0 - smooth[minimum] / smooth[0] if smooth[0] > 0 else math.inf
    if drop < _MIN_LEARNING and minimum >= len(smooth) - max(3, math.ceil(_EDGE * len(smooth))):
        raise NoSuggestionError(
            f"suggest: method {method!r} found the loss still falling at the last step, by only "
            f"{drop:.2%} of its start over the whole test: the rates tested never reached "
            "those at which the model learns, so the curve has no end of the fall to read. Raise end_lr."
        )
    # The floor keeps floating-point rounding on a flat, noiseless curve from
    # counting as a fall: a millionth on the log scale is no signal to act on.
    if fall <= max(_FALL_SE * error, _MIN_FALL):
        raise NoSuggestionError(
            f"suggest: method {method!r} found no clear decrease of the loss: it fell by {fall:.3g} "
            f"({_fall_scale(raw)}), within the noise (standard error {error:.3g}). The batches may be too "
            "small or too few to see the trend: raise num_steps or the batch size."
        )


def auto(
    lrs: npt.ArrayLike,
    losses: npt.ArrayLike,
    *,
    num_steps: int | None = None,
    optimizer: str | None = None,
    momentum: float = 0.0,
    batch_size: int | None = None,
    schedule: str = "constant",
    total_steps: int | None = None,
) -> float:
    """lrscout's default rule: the end of the fall, with a margin for the training to come.

    .. math:: \\eta = \\eta_{\\min} / m

    ``eta_min`` is the learning rate at the minimum of the smoothed loss
    (:func:`read_curve`): past it a step does more harm than good to a model
    that has barely trained. The margin ``m`` (:func:`margin`) depends on
    the optimizer, its momentum, the curve's fall and the plan: the schedule
    (``"constant"``, ``"one_cycle"``, ``"cosine"``, ``"linear"``) and its
    ``total_steps``.

    Args:
        lrs: Learning rate of each step.
        losses: Raw loss of each step.
        num_steps: Planned steps of the test (sets the smoothing width);
            ``None`` is ``len(lrs)``.
        optimizer: The optimizer's class name (``"SGD"``, ``"Adam"``, ...).
        momentum: Heavy-ball momentum in [0, 1).
        batch_size: Samples per step; ``None`` is the whole set. Accepted
            for the record: a batch-size term did not improve the fit.
        schedule: The schedule of the training; the rate is its peak.
        total_steps: Optimizer steps of the training; ``None`` if unknown.

    Returns:
        The learning rate.

    Raises:
        NoSuggestionError: When the curve cannot support it (see
            :func:`read_curve`) or the answer lies below the tested range.

    Example:
        >>> lrs = np.geomspace(1e-4, 10.0, 50)
        >>> losses = 1.0 / (1.0 + 50.0 * lrs) + np.where(lrs > 1.0, lrs - 1.0, 0.0) ** 2
        >>> round(auto(lrs, losses, optimizer="SGD"), 3), round(auto(lrs, losses, optimizer="Adam"), 3)
        (0.114, 0.059)
        >>> round(auto(lrs, losses, optimizer="Adam", schedule="one_cycle", total_steps=5000), 3)
        0.023
    """
    rates, smooth, minimum = read_curve(lrs, losses, num_steps=num_steps, method="auto")
    planned = len(np.asarray(lrs)) if num_steps is None else num_steps
    raw = np.asarray(losses, dtype=np.float64)[: len(rates)]
    fall, _ = _fall_and_noise(raw, smooth, minimum, max(1.0, _SMOOTHING_WIDTH * planned))
    lr = float(rates[minimum]) / margin(
        optimizer=optimizer,
        momentum=momentum,
        schedule=schedule,
        total_steps=total_steps,
        test_steps=len(rates),
        fall=fall,
    )
    if lr < rates[0]:
        raise NoSuggestionError(
            f"suggest: method 'auto' gives lr={lr:.3g}, below the tested start_lr={rates[0]:.3g}. "
            "Rerun with a smaller start_lr."
        )
    return lr


def margin(
    *,
    optimizer: str | None,
    momentum: float,
    schedule: str,
    total_steps: int | None,
    test_steps: int,
    fall: float,
) -> float:
    """The factor :func:`auto` divides the curve's minimum rate by.

    .. math:: \\log m = a_k + s + b_k \\log\\frac{T}{N} + c \\log \\Delta

    ``a_k`` for the optimizer's kind ``k`` (plain SGD, heavy-ball momentum,
    Adam and other optimizers that divide by a running RMS of the gradient,
    Adagrad); ``s`` for the schedule (zero for a constant rate); ``b_k`` per
    kind on the plan's length ``T`` over the test's ``N`` steps; ``c`` on the
    curve's fall ``Delta`` (the smoothed log loss from the first point to the
    minimum). Momentum ``beta`` weighs SGD's two kinds by
    ``f = log10(1 / (1 - beta))``: ``beta = 0.9`` is the momentum kind. Every
    constant is fitted, in one fit, on a generated family of tasks
    (``benchmarks/rule_family.py``: model kinds x optimizers x batch sizes x
    budgets x schedules x data sets) by ``benchmarks/fit_rule.py``, which
    scores each family with the rule fitted without it (leave one family
    out); with ``total_steps`` unknown, or an optimizer of no known kind, the
    same form is fitted without what is not known. ``log Delta`` and
    ``log(T / N)`` are held to the range the family covers (a line fitted
    there says nothing past it), and ``m`` is at least 1: the rate never lies
    past the curve's minimum.

    Example:
        >>> plain = margin(optimizer="SGD", momentum=0.0, schedule="constant", total_steps=None,
        ...                test_steps=100, fall=1.0)
        >>> adam = margin(optimizer="Adam", momentum=0.0, schedule="constant", total_steps=None,
        ...               test_steps=100, fall=1.0)
        >>> round(plain, 2), round(adam, 2)
        (2.73, 5.23)
    """
    weights = _kind_weights(optimizer, momentum)
    name = ("length known" if total_steps else "length unknown") + ("" if weights else ", optimizer unknown")
    fit = _FIT[name]
    kinds = weights or {"all": 1.0}
    log_margin = sum(share * fit["kind"][kind] for kind, share in kinds.items())
    log_margin += fit["schedule"].get(schedule, 0.0)
    if total_steps:
        horizon = _clamp(math.log(total_steps / max(1, test_steps)), _HORIZON_RANGE)
        log_margin += horizon * sum(share * fit["horizon"][kind] for kind, share in kinds.items())
    log_margin += fit["fall"] * _clamp(math.log(max(fall, 1e-3)), _FALL_RANGE)
    # Never past the curve's minimum: a fifth of the family's plans train best a little past it,
    # but the line's few margins below 1 miss more often than they gain.
    return max(1.0, math.exp(log_margin))


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0]), bounds[1])


def _kind_weights(optimizer: str | None, momentum: float) -> dict[str, float] | None:
    """The optimizer's kinds and their shares, or ``None`` when it is of no known kind."""
    if optimizer in _ADAPTIVE:
        return {"adaptive": 1.0}
    if optimizer in _ACCUMULATING:
        return {"adagrad": 1.0}
    if optimizer == "SGD":
        share = min(2.0, math.log10(1.0 / (1.0 - momentum))) if 0.0 < momentum < 1.0 else 0.0
        return {"sgd": 1.0 - share, "momentum": share}
    return None


def turned_up(losses: npt.ArrayLike, *, num_steps: int) -> bool:
    """Whether the smoothed loss has its minimum before the last 5 % of the points (at least 3).

    The range test asks it at ``end_lr`` to decide whether to keep ramping
    (``extend=True``); :func:`diagnose` asks it to say "never turned up".
    Non-finite losses count as turned up: the loss blew up.

    Example:
        >>> turned_up(np.linspace(2.0, 1.0, 40), num_steps=40)
        False
        >>> turned_up(np.r_[np.linspace(2.0, 1.0, 30), np.linspace(1.0, 3.0, 10)], num_steps=40)
        True
    """
    values = np.asarray(losses, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        return True
    if len(values) < _MIN_POINTS:
        return False
    smooth = zero_lag_smooth(values, sigma=max(1.0, _SMOOTHING_WIDTH * num_steps))
    return int(np.argmin(smooth)) < len(values) - max(3, math.ceil(_EDGE * len(values)))


def diagnose(
    lrs: npt.ArrayLike,
    losses: npt.ArrayLike,
    *,
    num_steps: int,
    end_lr: float,
    stop_reason: str,
    short_fix: str | None = None,
) -> tuple[str, ...]:
    """What a curve cannot support, in words: one message per finding, each with its fix.

    Findings (each message starts with its name, so it can be matched):
        ``"ran short"``: the test ended (data or epochs ran out) before its
        ``num_steps`` without diverging; ``short_fix`` says how to run them
        all (default: more data or fewer steps).
        ``"never turned up"``: no divergence, and the smoothed loss is lowest
        in the last 5 % of the points: the suggestion comes from the edge of
        the tested range. Raise ``end_lr``.
        ``"diverging from the start"``: the smoothed loss is lowest in the
        first 5 % of the points and rises after. Lower ``start_lr``.
        ``"too noisy"``: the fall is under six standard errors (three times
        what a suggestion needs, see ``_FALL_SE``). Bigger batches or more
        steps.

    Example:
        >>> lrs = np.geomspace(1e-4, 1e-2, 50)
        >>> diagnose(lrs, 1.0 / (1.0 + 100 * lrs), num_steps=50, end_lr=1e-2, stop_reason="completed")[0][:15]
        'never turned up'
    """
    rates = np.asarray(lrs, dtype=np.float64)
    values = np.asarray(losses, dtype=np.float64)
    notes = []
    n = len(values)
    if stop_reason == "ended" and n < num_steps:
        last = f"{rates[-1]:.3g}" if n else "none"
        notes.append(
            f"ran short: {n} of the {num_steps} planned steps ran (the ramp stopped at lr={last}, "
            f"short of end_lr={end_lr:.3g}) and the loss did not diverge, so the curve may stop before "
            f"its turn. {short_fix or 'Give the test more batches, or plan fewer num_steps.'}"
        )
    finite = np.isfinite(values)
    count = n if finite.all() else int(np.argmin(finite))
    if count < _MIN_POINTS:
        if stop_reason in ("diverged", "non-finite"):
            notes.append(_from_the_start(rates, count))
        return tuple(notes)
    raw = values[:count]
    sigma = max(1.0, _SMOOTHING_WIDTH * num_steps)
    smooth = zero_lag_smooth(raw, sigma=sigma)
    minimum = int(np.argmin(smooth))
    if minimum < max(2, math.ceil(_EDGE * count)) and smooth[-1] > smooth[minimum]:
        notes.append(_from_the_start(rates, minimum + 1))
        return tuple(notes)
    if stop_reason not in ("diverged", "non-finite") and not turned_up(raw, num_steps=num_steps):
        notes.append(
            f"never turned up: the loss was still falling at the last step (lr={rates[count - 1]:.3g}) "
            "and never diverged, so any suggestion comes from the edge of the tested range. "
            f"Raise end_lr (e.g. to {10 * rates[count - 1]:.3g})."
        )
    fall, error = _fall_and_noise(raw, smooth, minimum, sigma)
    if error > 0 and fall < _NOISY_FALL * _FALL_SE * error:
        notes.append(
            f"too noisy: the loss fell by {fall:.3g} ({_fall_scale(raw)}) against a standard error of "
            f"{error:.3g}, too little to place a suggestion firmly. Use bigger batches, more steps "
            "(num_steps), or a validation set."
        )
    return tuple(notes)


def _from_the_start(lrs: np.ndarray, upto: int) -> str:
    top = f" .. {lrs[upto - 1]:.3g}" if upto > 1 else ""
    return (
        f"diverging from the start: the loss is lowest in the first steps (lr {lrs[0]:.3g}{top}) and "
        f"rises after, so the test saw no fall to read. Lower start_lr (e.g. to {lrs[0] / 100:.3g})."
    )


#: ``max_lr / base_lr`` of :func:`lr_range`: the one-cycle shape the one-cycle margins are fitted for.
ONE_CYCLE_DIV = 8.0


def lr_range(max_lr: float) -> tuple[float, float]:
    """``(base_lr, max_lr) = (max_lr / 8, max_lr)`` for a one-cycle peak ``max_lr``.

    A cyclic or one-cycle schedule spends only part of the run at its peak,
    and Smith (2017) starts the cycle well below it. The ratio 8 is the one
    the range test's one-cycle suggestion is fitted for
    (``benchmarks/rule_family.py`` trains its one-cycle plans with
    ``div_factor=8``).

    Example:
        >>> lr_range(0.8)
        (0.1, 0.8)
    """
    return max_lr / ONE_CYCLE_DIV, max_lr


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
    scale = _huge_scale(values)
    if scale != 1.0:
        # Losses near the largest float: smoothed in units of the largest,
        # where no sum or offset overflows.
        smooth_scaled: np.ndarray = zero_lag_smooth(values / scale, width) * scale
        return smooth_scaled
    offset = _log_offset(values)
    if offset is None:
        return _gaussian(values, width)
    smooth: np.ndarray = np.exp(_gaussian(np.log(values + offset), width)) - offset
    return smooth


def _huge_scale(values: np.ndarray) -> float:
    """1, or the largest magnitude in ``values`` when sums of them could overflow (past ``1e150``)."""
    largest = float(np.max(np.abs(values))) if len(values) else 0.0
    return largest if math.isfinite(largest) and largest > _HUGE else 1.0


_HUGE = 1e150


def _gaussian(y: np.ndarray, sigma: float) -> np.ndarray:
    n = len(y)
    radius = min(n - 1, math.ceil(3 * sigma))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    padded = np.concatenate([np.zeros(radius), y, np.zeros(radius)])
    weights = np.concatenate([np.zeros(radius), np.ones(n), np.zeros(radius)])
    convolve = np.convolve if n * len(kernel) <= _DIRECT_CONVOLUTION else _fft_convolve_valid
    smooth: np.ndarray = convolve(padded, kernel, mode="valid") / convolve(weights, kernel, mode="valid")
    return smooth


#: Above this many multiplications a long curve is convolved through the FFT
#: (the kernel's width grows with the curve: direct convolution would cost
#: the square of its length).
_DIRECT_CONVOLUTION = 4_000_000


def _fft_convolve_valid(signal: np.ndarray, kernel: np.ndarray, mode: str = "valid") -> np.ndarray:
    """``np.convolve(signal, kernel, mode="valid")`` through the FFT, in ``n log n``."""
    size = 1 << (len(signal) + len(kernel) - 2).bit_length()
    full = np.fft.irfft(np.fft.rfft(signal, size) * np.fft.rfft(kernel, size), size)
    valid: np.ndarray = full[len(kernel) - 1 : len(signal)]
    return valid


def _finite_prefix(lrs: npt.ArrayLike, losses: npt.ArrayLike, method: str) -> tuple[np.ndarray, np.ndarray]:
    """The learning rates and losses up to the first non-finite loss."""
    rates = np.asarray(lrs, dtype=np.float64)
    values = np.asarray(losses, dtype=np.float64)
    if rates.shape != values.shape or rates.ndim != 1:
        raise NoSuggestionError(
            f"suggest: lrs and losses must be 1-D arrays of one length; got shapes {rates.shape} "
            f"and {values.shape}."
        )
    finite = np.isfinite(values)
    n = len(finite) if finite.all() else int(np.argmin(finite))
    if n < _MIN_POINTS:
        raise NoSuggestionError(
            f"suggest: method {method!r} needs at least {_MIN_POINTS} finite losses; the test recorded "
            f"{n}. Lower start_lr or raise num_steps so that the loss is seen falling before it diverges."
        )
    return rates[:n], values[:n]


def _descent_end(lrs: np.ndarray, smooth: np.ndarray, method: str) -> int:
    """Index of the curve's minimum; raise when the loss never decreased."""
    stop = int(np.argmin(smooth))
    if stop < 2 or smooth[stop] >= smooth[0]:
        raise _no_descent(lrs, method)
    return stop


def _no_descent(lrs: np.ndarray, method: str) -> NoSuggestionError:
    return NoSuggestionError(
        f"suggest: method {method!r} found no decrease of the loss between lr={lrs[0]:.3g} and "
        f"lr={lrs[-1]:.3g}. Try a smaller start_lr (the loss may already be "
        "diverging at the start), more num_steps, or check that the model trains at all."
    )


def _peer_window(
    lrs: npt.ArrayLike,
    losses: npt.ArrayLike,
    smoothed: npt.ArrayLike,
    method: str,
    *,
    skip_start: int,
    skip_end: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The (EMA) curve a peer library's rule reads: its ends cut, up to its first NaN.

    Every rule needs a real fall first: on a flat curve the EMA's rounding
    noise would pass the peers' strict comparisons, and they would answer.
    """
    rates, raw = _finite_prefix(lrs, losses, method)
    sigma = max(1.0, _SMOOTHING_WIDTH * len(raw))
    smooth = zero_lag_smooth(raw, sigma=sigma)
    _require_fall(raw, smooth, _descent_end(rates, smooth, method), method, sigma)
    all_rates = np.asarray(lrs, dtype=np.float64)
    ema = np.asarray(smoothed, dtype=np.float64)
    stop = len(all_rates) - skip_end
    window_rates, window = all_rates[skip_start:stop], ema[skip_start:stop]
    nan = np.flatnonzero(np.isnan(window))
    if len(nan):
        window_rates, window = window_rates[: nan[0]], window[: nan[0]]
    if len(window) < 2:
        raise NoSuggestionError(
            f"suggest: method {method!r} reads the curve without its first {skip_start} and last "
            f"{skip_end} steps, which leaves {len(window)}; the test recorded {len(all_rates)}. "
            "Raise num_steps or lower start_lr."
        )
    return window_rates, window


def steepest(
    lrs: npt.ArrayLike, losses: npt.ArrayLike, smoothed: npt.ArrayLike, *, num_steps: int | None = None
) -> float:
    """torch-lr-finder's suggestion: the steepest fall of the (EMA) smoothed loss.

    As ``torch_lr_finder.LRFinder.plot(suggest_lr=True)`` with its defaults:
    the first 10 and last 5 points are skipped, and the rate is the one where
    ``numpy.gradient`` of the loss (per step, i.e. per ``log(lr)`` on an
    exponential ramp) is lowest. ``num_steps`` is not used (the signature
    matches the other rules).

    Example:
        >>> lrs = np.geomspace(1e-4, 1.0, 40)
        >>> curve = np.tanh(-np.log10(lrs) - 2.0) + 1.5
        >>> float(steepest(lrs, curve, curve)) == float(lrs[19])  # tanh is steepest at lr = 1e-2
        True
    """
    rates, window = _peer_window(lrs, losses, smoothed, "steepest", skip_start=10, skip_end=5)
    best = int(np.argmin(np.gradient(window)))
    return float(rates[best])


def _fastai_window(
    lrs: npt.ArrayLike, losses: npt.ArrayLike, smoothed: npt.ArrayLike, num_steps: int | None, method: str
) -> tuple[np.ndarray, np.ndarray]:
    """What fastai's ``Learner.lr_find`` hands its suggestion functions: ``[num_it // 10 : -5]``.

    The losses come back as float32, as fastai holds them (its recorder keeps
    the model's float32 losses), so that near-ties compare as fastai compares
    them.
    """
    planned = len(np.asarray(lrs)) if num_steps is None else num_steps
    rates, window = _peer_window(lrs, losses, smoothed, method, skip_start=planned // 10, skip_end=5)
    return rates, window.astype(np.float32)


def minimum(
    lrs: npt.ArrayLike, losses: npt.ArrayLike, smoothed: npt.ArrayLike, *, num_steps: int | None = None
) -> float:
    """fastai's ``minimum``: the learning rate of the lowest (EMA) smoothed loss, divided by 10.

    On the window fastai reads (the first ``num_steps // 10`` and the last 5
    points cut, up to the first NaN).

    Example:
        >>> lrs = np.geomspace(1e-4, 10.0, 40)
        >>> curve = 1.0 / (1.0 + 30.0 * lrs) + np.where(lrs > 0.3, (lrs - 0.3) ** 2, 0.0)
        >>> round(minimum(lrs, curve, curve), 4)
        0.0389
    """
    rates, window = _fastai_window(lrs, losses, smoothed, num_steps, "minimum")
    lr = float(rates[int(np.argmin(window))]) / 10.0
    tested = float(np.asarray(lrs, dtype=np.float64)[0])
    if lr < tested:
        # fastai would answer; an answer below the tested range has no curve behind it.
        raise NoSuggestionError(
            f"suggest: method 'minimum' gives lr={lr:.3g}, below the tested start_lr={tested:.3g}. "
            "Rerun with a start_lr at least 100 times smaller."
        )
    return lr


def valley(
    lrs: npt.ArrayLike, losses: npt.ArrayLike, smoothed: npt.ArrayLike, *, num_steps: int | None = None
) -> float:
    """fastai's ``valley``: a point in the longest decreasing run of the (EMA) smoothed loss.

    On the window fastai reads (see :func:`minimum`), the longest strictly
    decreasing subsequence of the loss ends at step ``end`` with length
    ``L``; fastai takes ``start = end - L`` and returns the rate at
    ``start + int((end - start) / 3) + int((end - start) / 6)``, about half
    way along. fastai finds ``L`` with a double loop (``O(n^2)``: minutes on
    100 000 steps); :func:`longest_descent` finds the same ``start`` and
    ``end`` in ``O(n log n)``.

    Example:
        >>> lrs = np.geomspace(1e-4, 10.0, 40)
        >>> curve = 1.0 / (1.0 + 30.0 * lrs) + np.where(lrs > 0.3, (lrs - 0.3) ** 2, 0.0)
        >>> round(valley(lrs, curve, curve), 4)
        0.0084
    """
    rates, window = _fastai_window(lrs, losses, smoothed, num_steps, "valley")
    start, end = longest_descent(window.tolist())
    sections = (end - start) / 3
    return float(rates[start + int(sections) + int(sections / 2)])


def longest_descent(values: Sequence[float]) -> tuple[int, int]:
    """``(start, end)`` of fastai's ``valley``: ``end`` is the first index where a longest
    strictly decreasing subsequence of ``values`` ends, ``start = end - its length``.

    fastai computes the length ``lds[i]`` of the longest strictly decreasing
    subsequence ending at each ``i`` by comparing ``i`` with every ``j < i``,
    and keeps the first ``i`` of the greatest length. The same lengths come
    from patience sorting: ``tails[k]`` holds the largest value that ends a
    decreasing subsequence of length ``k + 1`` (the list decreases with
    ``k``), so ``lds[i]`` is one more than the number of tails above
    ``values[i]``, found by bisection: ``O(n log n)`` comparisons.

    Example:
        >>> longest_descent([3.0, 5.0, 4.0, 4.0, 2.0, 6.0, 1.0])  # 5, 4, 2, 1 ends at 6
        (2, 6)
    """
    tails: list[float] = []  # negated, so that they increase and bisect applies
    best = end = 0
    for i, value in enumerate(values):
        key = -value
        k = bisect.bisect_left(tails, key)
        if k == len(tails):
            tails.append(key)
        else:
            tails[k] = key
        if k + 1 > best:
            best, end = k + 1, i
    return (end - best, end) if best > 1 else (0, 0)


#: The refinement stage (``find_lr(refine=...)``): probe runs from the test's start at these
#: factors of the default suggestion, in rounds of successive halving; each round gives
#: every probe still in this share of the test's steps, from the start again, and keeps
#: this many for the next; the last round's best is the pick. The stage costs
#: ``5 * 0.3 + 2 * 0.75 = 3`` times the test's steps. ``REFINE_SHRINK`` moves the rate
#: that share of the way (on a log scale) from the suggestion to the pick: the probes are
#: shorter than the training they stand for, and short runs favour larger rates than long
#: ones (the short-horizon bias, Wu et al. 2018). Scheme and share were chosen by the
#: simulation in ``benchmarks/fit_rule.py --probes`` (the share leave-one-family-out).
REFINE_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)
REFINE_ROUNDS = ((0.3, 2), (0.75, 1))
REFINE_SHRINK = 0.5


def probe_score(losses: npt.ArrayLike, steps: int, evaluations: npt.ArrayLike | None = None) -> float | None:
    """The score of a probe run (lower is better).

    The mean of its last half of training ``losses`` or, when the probe was
    evaluated on held-out data, the mean of those ``evaluations``.
    ``math.inf`` when a loss or an evaluation is not finite (the rate
    diverged); ``None`` when the probe ran fewer than ``steps`` steps with
    finite losses (its data ran out: no evidence either way). The last half,
    not the last loss: a single batch's loss is noise.

    Example:
        >>> probe_score([4.0, 3.0, 2.0, 1.0], 4), probe_score([1.0, float("nan")], 4)
        (1.5, inf)
        >>> probe_score([4.0, 3.0, 2.0, 1.0], 4, evaluations=[2.5, 2.0])
        2.25
    """
    values = np.asarray(losses, dtype=np.float64).ravel()
    held = None if evaluations is None else np.asarray(evaluations, dtype=np.float64).ravel()
    if not np.all(np.isfinite(values)) or (held is not None and not np.all(np.isfinite(held))):
        return math.inf
    if len(values) < steps or steps < 1:
        return None
    if held is not None:
        return float(np.mean(held)) if len(held) else None
    return float(np.mean(values[steps // 2 :]))


def survivors(suggested: float, rates: npt.ArrayLike, scores: list[float | None], keep: int) -> list[float]:
    """The ``keep`` best probed ``rates`` (lowest score first), for the next round or the pick.

    A probe without a score (``None``: its data ran out) or that diverged
    (``inf``) is left out; equal scores rank the rate nearer to ``suggested``
    (on a log scale) first. Empty when no probe has a finite score.

    Example:
        >>> survivors(1.0, [0.25, 0.5, 1.0, 2.0, 4.0], [0.9, 0.5, 0.5, None, float("inf")], 2)
        [1.0, 0.5]
        >>> survivors(1.0, [0.5, 1.0], [float("inf"), None], 1)
        []
    """
    rates_ = [float(rate) for rate in np.asarray(rates, dtype=np.float64)]
    if len(rates_) != len(scores):
        raise ValueError(f"survivors: one score per rate; got {len(scores)} for {len(rates_)}")
    scored = [
        (score, abs(math.log(rate / suggested)), rate) for rate, score in zip(rates_, scores, strict=True)
    ]
    ranked = sorted(entry for entry in scored if entry[0] is not None and math.isfinite(entry[0]))
    return [rate for _, _, rate in ranked[:keep]]


def refined(suggested: float, picked: float | None, shrink: float = REFINE_SHRINK) -> float:
    """The refined rate: ``shrink`` of the way from ``suggested`` to the probes' ``picked`` (log scale).

    .. math:: \\eta = \\eta_s \\, (\\eta_p / \\eta_s)^{\\alpha}

    Without a pick (no probe had a score) the suggestion stands.

    Example:
        >>> refined(0.1, 0.4), refined(0.1, None)
        (0.2, 0.1)
    """
    if picked is None:
        return suggested
    return float(suggested * math.exp(shrink * math.log(picked / suggested)))


def nearest_index(lrs: npt.ArrayLike, lr: float) -> int:
    """Index of the learning rate nearest to ``lr`` on a log scale."""
    return int(np.argmin(np.abs(np.log(np.asarray(lrs, dtype=np.float64)) - math.log(lr))))


#: The rules that read the stored (EMA) smoothed curve, by name.
SMOOTHED_RULES: dict[str, Callable[..., float]] = {
    "valley": valley,
    "steepest": steepest,
    "minimum": minimum,
}
#: Every method ``RangeTestResult.suggest`` knows.
METHODS = ("auto", "refined", *SMOOTHED_RULES)
