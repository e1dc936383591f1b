"""lrscout's default rule as a fastai suggestion function: ``func(lrs, losses, num_it) -> (lr, (lr, loss))``.

fastai's ``Learner.lr_find`` hands each suggestion function the window
``[num_it // 10 : -5]`` of its recorder (cut at the first NaN): the learning
rates and the *smoothed* losses, as float32 tensors. The smoothing is the
recorder's bias-corrected EMA (``AvgSmoothLoss``, ``beta = 0.98``),

.. math:: m_t = \\beta m_{t-1} + (1 - \\beta)\\,\\ell_t, \\qquad s_t = m_t / (1 - \\beta^{t+1}),

the same as lrscout's. lrscout's rule reads raw losses (it smooths them
without lag itself; read off the EMA, which lags, it lands 2.5 to 20 times
higher on 7 of the 8 recorded curves of ``tests/data/peer_rules.json``), and
the whole curve, with the run's optimizer and batch size. So inside
``lr_find`` :func:`auto` reads the Learner that called it: its optimizer,
momentum and batch size, and the whole test from its recorder, whose raw
losses come back exactly (up to float32 rounding) from the smoothed ones,
``m_t = s_t (1 - beta^(t+1))`` and ``l_t = (m_t - beta m_{t-1}) / (1 - beta)``
(``l_0 = s_0``). That is the rule :func:`lrscout.fastai.find_lr` applies to
its own test: on the same ramp the two give the same rate. Given only a
window (called outside ``lr_find``) it recovers the raw losses of the window
but its first step, and on all 8 curves gives the very rate it gives on the
raw losses of that window (what the window leaves out can still move it:
1.45 and 1.36 times the rate of the whole raw curve on 2 of them).
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from .._errors import CurveWarning, NoSuggestionError
from .._suggest import auto as auto_rule
from .._suggest import nearest_index

#: The ``beta`` of fastai's ``Recorder`` (``AvgSmoothLoss``) unless it was built with another.
FASTAI_SMOOTHING = 0.98

# Optimizers whose momentum hyperparameter is heavy-ball momentum (fastai's
# "mom" is Adam's beta1 in Adam and its kin).
_HEAVY_BALL = frozenset({"SGD", "RMSProp", "RMSprop"})

SuggestionFunction = Callable[[Any, Any, int], tuple[float, tuple[float, Any]]]


def unsmooth(
    losses: npt.ArrayLike, *, start: int, smoothing: float = FASTAI_SMOOTHING
) -> npt.NDArray[np.float64]:
    """The raw losses behind a window of a bias-corrected EMA, from its second point on.

    ``losses[i]`` is the smoothed loss ``s_t`` of step ``t = start + i`` (see
    the module docstring); the result holds ``l_t`` for ``t = start + 1,
    ..., start + len(losses) - 1``. A recovered value below 0 but within the
    float32 rounding of the recovery (a raw loss of 0 read back) reads as 0.

    Args:
        losses: The smoothed losses of consecutive steps.
        start: The step of ``losses[0]``, counted from 0 (fastai's window
            starts at ``num_it // 10``).
        smoothing: The EMA's ``beta``, in [0, 1).

    Returns:
        One raw loss fewer than ``losses`` (float64).

    Example:
        >>> raw = np.array([2.0, 1.0, 3.0, 0.5])
        >>> beta, m, smooth = 0.9, 0.0, []
        >>> for t, loss in enumerate(raw):
        ...     m = beta * m + (1 - beta) * loss
        ...     smooth.append(m / (1 - beta ** (t + 1)))
        >>> unsmooth(smooth, start=0, smoothing=beta).round(12).tolist()
        [1.0, 3.0, 0.5]
        >>> unsmooth(smooth[2:], start=2, smoothing=beta).round(12).tolist()
        [0.5]
    """
    smooth = np.asarray(losses, dtype=np.float64).reshape(-1)
    steps = np.arange(start, start + len(smooth), dtype=np.float64)
    averages = smooth * (1.0 - smoothing ** (steps + 1.0))
    raw: npt.NDArray[np.float64] = (averages[1:] - smoothing * averages[:-1]) / (1.0 - smoothing)
    if len(averages):
        # float32 inputs: each average is off by about eps32 of its size, and
        # the recovery multiplies that by (1 + beta) / (1 - beta).
        rounding = 4.0 * float(np.finfo(np.float32).eps) * float(np.nanmax(np.abs(averages)))
        bound = rounding * (1.0 + smoothing) / (1.0 - smoothing)
        raw[(raw < 0.0) & (raw > -bound)] = 0.0
    return raw


def _suggest(
    lrs: Any, losses: Any, num_it: int, *, smoothing: float, facts: dict[str, Any], learn: Any = None
) -> tuple[float, tuple[float, Any]]:
    rates = np.asarray(_host(lrs), dtype=np.float64).reshape(-1)
    whole = _whole_curve(learn, rates, num_it, smoothing)
    if whole is None:
        # fastai's window only: its first step's raw loss is not in it.
        start = int(num_it) // 10
        curve_lrs, raw = rates[1:], unsmooth(_host(losses), start=start, smoothing=smoothing)
    else:
        curve_lrs, raw = whole
    try:
        lr = auto_rule(curve_lrs, raw, num_steps=int(num_it), **facts)
    except NoSuggestionError as error:
        # fastai asks every suggestion function in turn: a warning keeps the others' answers.
        warnings.warn(f"lrscout.fastai.auto: {error}", CurveWarning, stacklevel=3)
        return math.nan, (math.nan, math.nan)
    return lr, (lr, losses[nearest_index(rates, lr)])


def _whole_curve(
    learn: Any, window_lrs: np.ndarray, num_it: int, smoothing: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """The learning rates and raw losses of the whole test in ``learn.recorder``, from its first step.

    ``None`` unless the recorder holds the test whose window fastai passed
    (its rates from step ``num_it // 10`` on are the window's). The
    recorder's smoothed loss is the bias-corrected EMA from step 0, whose
    first value is the first raw loss itself.
    """
    recorder = getattr(learn, "recorder", None)
    recorded_lrs = getattr(recorder, "lrs", None)
    recorded = getattr(recorder, "losses", None)
    if not isinstance(recorded_lrs, list) or not isinstance(recorded, list) or not recorded:
        return None
    start = int(num_it) // 10
    rates = np.asarray([float(x) for x in recorded_lrs], dtype=np.float64)
    window = rates[start : start + len(window_lrs)]
    if len(rates) != len(recorded) or len(window) != len(window_lrs) or not len(window):
        return None
    if not np.allclose(window, window_lrs, rtol=1e-6, atol=0.0):  # fastai passes them as float32
        return None
    smooth = np.asarray([float(_host(x)) for x in recorded], dtype=np.float64)
    finite = np.isfinite(smooth)
    n = len(smooth) if finite.all() else int(np.argmin(finite))
    if n < 2:
        return None
    raw = np.concatenate([smooth[:1], unsmooth(smooth[:n], start=0, smoothing=smoothing)])
    return rates[:n], raw


def _calling_learner() -> Any:
    """The ``Learner`` whose ``lr_find`` is calling a suggestion function, else ``None``.

    fastai calls each function as ``func(lrs, losses, num_it)`` from inside
    ``Learner.lr_find``; that frame's ``self`` is the Learner.
    """
    frame = inspect.currentframe()
    try:
        for _ in range(4):
            frame = None if frame is None else frame.f_back
            if frame is None:
                return None
            if frame.f_code.co_name == "lr_find":
                learn = frame.f_locals.get("self")
                if hasattr(learn, "recorder") and hasattr(learn, "dls"):
                    return learn
        return None
    finally:
        del frame


def auto(lrs: Any, losses: Any, num_it: int) -> tuple[float, tuple[float, Any]]:
    """lrscout's default rule as a fastai suggestion function, for ``learn.lr_find(suggest_funcs=...)``.

    Called by ``learn.lr_find`` it reads the Learner that called it, as
    :func:`auto_for` ``(learn)`` does: the optimizer, its heavy-ball momentum,
    the batch size, the recorder's ``beta`` and the whole recorded test (see
    the module docstring). So ``auto``, ``auto_for(learn)`` and
    :func:`lrscout.fastai.find_lr` give one answer on one test: the peak
    rate of ``fit_one_cycle`` (``fine_tune`` runs it too), the training fastai
    teaches; for ``learn.fit`` at a constant rate read the test with
    ``lrscout.fastai.find_lr(learn, schedule="constant")``. Called with
    a window only (no ``lr_find`` above it), it reads the raw losses back from
    the window (``beta = 0.98``) and, knowing nothing of the optimizer or the
    plan, takes the margin for an optimizer of unknown kind and a constant
    rate: use :func:`auto_for` there.

    Args:
        lrs: The learning rates of the window (a float32 tensor from fastai).
        losses: Its smoothed losses.
        num_it: The ``num_it`` given to ``lr_find``.

    Returns:
        ``(lr, (lr, loss))`` as fastai's own suggestion functions: the
        learning rate and the point to mark on the plot (the loss of the
        recorded step nearest to ``lr``, an element of ``losses``). When the
        curve gives no suggestion, a :class:`lrscout.CurveWarning` says why
        and ``lr`` is NaN, so fastai still shows its other suggestions.

    Example:
        >>> lrs = np.geomspace(1e-7, 10.0, 100)
        >>> raw = 1.0 / (1.0 + 50.0 * lrs) + np.where(lrs > 1.0, lrs - 1.0, 0.0) ** 2
        >>> m, smooth = 0.0, []
        >>> for t, loss in enumerate(raw):
        ...     m = 0.98 * m + 0.02 * loss
        ...     smooth.append(m / (1 - 0.98 ** (t + 1)))
        >>> window = slice(100 // 10, -5)  # what fastai passes
        >>> lr, (at, loss) = auto(np.float32(lrs[window]), np.float32(smooth[window]), 100)
        >>> round(lr, 3), lr == at
        (0.045, True)
    """
    learn = _calling_learner()
    if learn is None:
        return _suggest(lrs, losses, num_it, smoothing=FASTAI_SMOOTHING, facts={})
    return _suggest(lrs, losses, num_it, smoothing=_smoothing(learn), facts=_rule_facts(learn), learn=learn)


def auto_for(learn: Any) -> SuggestionFunction:
    """:func:`auto` told a fastai ``Learner``'s optimizer, momentum, batch size and smoothing.

    The returned function reads, when fastai calls it: the optimizer's class
    (``learn.opt``, else ``learn.opt_func``: fastai's ``Adam``, a
    ``partial(OptimWrapper, opt=torch.optim.AdamW)``, ...), so that Adam and
    its kin get the adaptive margin; heavy-ball momentum (``mom`` of fastai's
    ``SGD`` and ``RMSProp``, ``momentum`` of a wrapped torch optimizer); the
    batch size of ``learn.dls.train``; and the recorder's ``beta``.

    Args:
        learn: The ``Learner`` whose ``lr_find`` will call the function.

    Inside ``learn.lr_find`` of that Learner it is :func:`auto` (which finds
    the Learner itself); it is for the suggestion function called outside
    ``lr_find``, on a window of another recorder.

    Returns:
        A suggestion function named ``auto_for``: fastai names the fields of
        its answer by function name, so
        ``learn.lr_find(suggest_funcs=(auto, auto_for(learn), valley))``
        answers ``.auto``, ``.auto_for`` and ``.valley``.

    Example:
        >>> from types import SimpleNamespace
        >>> def Adam(params, lr): ...
        >>> loaders = SimpleNamespace(train=SimpleNamespace(bs=64))
        >>> learn = SimpleNamespace(opt=None, opt_func=Adam, dls=loaders)
        >>> lrs = np.geomspace(1e-7, 10.0, 100)
        >>> raw = 1.0 / (1.0 + 50.0 * lrs) + np.where(lrs > 1.0, lrs - 1.0, 0.0) ** 2
        >>> m, smooth = 0.0, []
        >>> for t, loss in enumerate(raw):
        ...     m = 0.98 * m + 0.02 * loss
        ...     smooth.append(m / (1 - 0.98 ** (t + 1)))
        >>> lr, _ = auto_for(learn)(lrs[10:-5], np.array(smooth[10:-5]), 100)
        >>> round(lr, 3)  # Adam's margin for the peak of fit_one_cycle, read from the Learner
        0.079
    """

    def auto_for(lrs: Any, losses: Any, num_it: int) -> tuple[float, tuple[float, Any]]:
        return _suggest(
            lrs, losses, num_it, smoothing=_smoothing(learn), facts=_rule_facts(learn), learn=learn
        )

    return auto_for


#: The plan of a Learner's training: ``fit_one_cycle``, what fastai teaches and ``fine_tune`` runs.
LEARNER_SCHEDULE = "one_cycle"


def _rule_facts(learn: Any) -> dict[str, Any]:
    """What the rule is told of a Learner: its facts and the one-cycle plan it will train with."""
    return {**learner_facts(learn), "schedule": LEARNER_SCHEDULE}


def learner_facts(learn: Any) -> dict[str, Any]:
    """``optimizer``, ``momentum`` and ``batch_size`` of a fastai ``Learner``, as the rule reads them."""
    facts: dict[str, Any] = {}
    opt = getattr(learn, "opt", None)
    wrapped = getattr(opt, "opt", None)
    if wrapped is not None:  # an OptimWrapper around a torch optimizer
        facts["optimizer"] = type(wrapped).__name__
        momentum = wrapped.param_groups[0].get("momentum")
    else:
        name = _optimizer_name(getattr(learn, "opt_func", None))
        if name is not None:
            facts["optimizer"] = name
        hypers = getattr(opt, "hypers", None)
        momentum = hypers[0].get("mom") if hypers and name in _HEAVY_BALL else None
    if isinstance(momentum, (int, float)) and not isinstance(momentum, bool) and 0.0 <= momentum < 1.0:
        facts["momentum"] = float(momentum)
    train = getattr(getattr(learn, "dls", None), "train", None)
    batch_size = getattr(train, "bs", getattr(train, "batch_size", None))
    if isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size > 0:
        facts["batch_size"] = batch_size
    return facts


def _optimizer_name(opt_func: Any) -> str | None:
    """``"Adam"`` for fastai's ``Adam``, ``"AdamW"`` for ``partial(OptimWrapper, opt=torch.optim.AdamW)``."""
    keywords = getattr(opt_func, "keywords", None)
    if isinstance(keywords, dict) and keywords.get("opt") is not None:
        wrapped = keywords["opt"]
        return str(getattr(wrapped, "__name__", type(wrapped).__name__))
    function = getattr(opt_func, "func", opt_func)
    name = getattr(function, "__name__", None)
    return name if isinstance(name, str) else None


def _smoothing(learn: Any) -> float:
    beta = getattr(getattr(getattr(learn, "recorder", None), "smooth_loss", None), "beta", None)
    return float(beta) if isinstance(beta, (int, float)) and 0.0 <= beta < 1.0 else FASTAI_SMOOTHING


def _host(values: Any) -> Any:
    """A tensor's values as NumPy (on the host); anything else as it is."""
    detach = getattr(values, "detach", None)
    return detach().cpu().numpy() if callable(detach) else values
