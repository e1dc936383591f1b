"""lrscout's default rule as a fastai suggestion function: ``func(lrs, losses, num_it) -> (lr, (lr, loss))``.

fastai's ``Learner.lr_find`` hands each suggestion function the window
``[num_it // 10 : -5]`` of its recorder (cut at the first NaN): the learning
rates and the *smoothed* losses, as float32 tensors. The smoothing is the
recorder's bias-corrected EMA (``AvgSmoothLoss``, ``beta = 0.98``),

.. math:: m_t = \\beta m_{t-1} + (1 - \\beta)\\,\\ell_t, \\qquad s_t = m_t / (1 - \\beta^{t+1}),

the same as lrscout's. lrscout's rule reads raw losses (it smooths them
without lag itself; read off the EMA, which lags, it lands 2.5 to 20 times
higher on 7 of the 8 recorded curves of ``tests/data/peer_rules.json``). Knowing
where the window starts (step ``num_it // 10``) and ``beta``, the raw
losses are recovered exactly (up to float32 rounding) from the window:
``m_t = s_t (1 - beta^(t+1))`` and ``l_t = (m_t - beta m_{t-1}) / (1 - beta)``,
for every step of the window but its first. On all 8 curves the rule then
gives the very rate it gives on the raw losses of the same window (what
the window leaves out can still move it: 1.45 and 1.36 times the rate of
the whole raw curve on 2 of them).
"""

from __future__ import annotations

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
    lrs: Any, losses: Any, num_it: int, *, smoothing: float, facts: dict[str, Any]
) -> tuple[float, tuple[float, Any]]:
    rates = np.asarray(_host(lrs), dtype=np.float64).reshape(-1)
    start = int(num_it) // 10
    raw = unsmooth(_host(losses), start=start, smoothing=smoothing)
    try:
        lr = auto_rule(rates[1:], raw, num_steps=int(num_it), **facts)
    except NoSuggestionError as error:
        # fastai asks every suggestion function in turn: a warning keeps the others' answers.
        warnings.warn(f"lrscout.fastai.auto: {error}", CurveWarning, stacklevel=3)
        return math.nan, (math.nan, math.nan)
    return lr, (lr, losses[nearest_index(rates, lr)])


def auto(lrs: Any, losses: Any, num_it: int) -> tuple[float, tuple[float, Any]]:
    """lrscout's default rule as a fastai suggestion function, for ``learn.lr_find(suggest_funcs=...)``.

    Reads the raw losses back from fastai's smoothed window (see
    :func:`unsmooth`; fastai's default ``beta = 0.98``) and applies
    :func:`lrscout.RangeTestResult.suggest`'s ``"auto"`` rule with
    ``num_steps = num_it``. It knows nothing of the optimizer or the batch
    size, so it takes the SGD margin: for Adam and its kin, or a small
    batch, use :func:`auto_for` instead.

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
    return _suggest(lrs, losses, num_it, smoothing=FASTAI_SMOOTHING, facts={})


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

    Returns:
        A suggestion function named ``auto``:
        ``learn.lr_find(suggest_funcs=(auto_for(learn), valley))``.

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
        >>> round(lr, 3)  # Adam's margin, read from the Learner (auto alone: optimizer unknown)
        0.046
    """

    def auto(lrs: Any, losses: Any, num_it: int) -> tuple[float, tuple[float, Any]]:
        return _suggest(lrs, losses, num_it, smoothing=_smoothing(learn), facts=learner_facts(learn))

    return auto


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
