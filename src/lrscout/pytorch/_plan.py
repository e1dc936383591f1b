"""The training plan a PyTorch learning-rate scheduler holds, and the momenta it set aside.

Lightning's ``configure_optimizers``, Hugging Face's ``Trainer`` and plain
PyTorch code all end in a ``torch.optim.lr_scheduler`` object; reading the
plan from it is one job, done here for every integration.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .._plan import Plan, classify

#: Samples of a scheduler's multiplier function that decide its shape.
_SAMPLES = 256
#: The largest run length searched for where a ``LambdaLR`` reaches zero.
_LONGEST = 2**40


def scheduler_plan(scheduler: Any, *, source: str) -> Plan | None:
    """The plan ``scheduler`` will run: its schedule and, where it says, its length.

    Read without stepping it: ``OneCycleLR`` (one-cycle, ``total_steps``),
    ``CosineAnnealingLR`` (cosine over ``T_max``; one that cycles past
    ``T_max`` is a cosine of ``T_max`` steps too), ``LambdaLR`` and
    ``MultiplicativeLR`` by sampling the first group's function (the length
    is where it reaches zero: Hugging Face's linear and cosine schedules
    end there), ``ConstantLR`` / ``LinearLR`` warm-ups as constant, and
    ``SequentialLR`` as its last scheduler after the milestones. Anything
    else (``StepLR``, ``ExponentialLR``, ``ReduceLROnPlateau``, ...) is not
    one of lrscout's schedules: ``None``.

    Args:
        scheduler: A ``torch.optim.lr_scheduler`` object (or ``None``).
        source: The framework, for :attr:`Plan.source`.
    """
    sched = torch.optim.lr_scheduler
    if scheduler is None:
        return None
    if isinstance(scheduler, sched.OneCycleLR):
        return Plan("one_cycle", int(scheduler.total_steps), source)
    if isinstance(scheduler, sched.CosineAnnealingLR):
        return Plan("cosine", int(scheduler.T_max), source)
    if isinstance(scheduler, (sched.ConstantLR, sched.LinearLR)):
        return Plan("constant", None, source)
    if isinstance(scheduler, sched.SequentialLR):
        inner = scheduler._schedulers
        last = scheduler_plan(inner[-1], source=source) if inner else None
        if last is None:
            return None
        milestone = int(scheduler._milestones[-1]) if scheduler._milestones else 0
        total = None if last.total_steps is None else last.total_steps + milestone
        # A warm-up before a decay is the decay's plan ("linear" has one of its own).
        return Plan(last.schedule, total, source)
    if isinstance(scheduler, (sched.LambdaLR, sched.MultiplicativeLR)):
        functions = getattr(scheduler, "lr_lambdas", None)
        if not functions:
            return None
        return _function_plan(
            functions[0], multiplicative=isinstance(scheduler, sched.MultiplicativeLR), source=source
        )
    return None


def _function_plan(function: Any, *, multiplicative: bool, source: str) -> Plan | None:
    """The plan of ``lr = base * function(step)`` (or a running product of it), by sampling."""

    def factor(step: int) -> float:
        try:
            value = float(function(step))
        except Exception:  # a user's function that fails on a step it would never see
            return math.nan
        return value

    if multiplicative:
        # lr_t = base * prod(f(1..t)): constant exactly when every factor is 1.
        steps = [factor(step) for step in range(1, 65)]
        return Plan("constant", None, source) if all(value == 1.0 for value in steps) else None
    end = _first_zero(factor)
    if end is None:
        # Never reaches zero: constant if it settles at its peak (a warm-up), else not ours.
        tail = [factor(2**k) for k in range(8, 30, 3)]
        top = max(tail) if tail else math.nan
        if math.isfinite(top) and top > 0 and all(abs(value - top) <= 1e-9 * top for value in tail):
            return Plan("constant", None, source)
        return None
    grid = np.unique(np.linspace(0, end, min(_SAMPLES, end + 1)).round().astype(np.int64))
    schedule = classify([factor(int(step)) for step in grid])
    return None if schedule is None else Plan(schedule, end, source)


def _first_zero(factor: Any) -> int | None:
    """The step at which ``factor`` falls to zero after its peak, or ``None`` if it does not.

    Sampled at steps 2 % apart up to 2**40, the fall's first sample under a
    hundredth of the peak brackets the end; there the first step at (or
    within a millionth of the peak of) zero is found by bisection. A
    schedule may rise again after its end (Hugging Face's cosine restarts):
    only the first fall counts.
    """
    steps = np.unique(np.floor(1.02 ** np.arange(0, math.log(_LONGEST, 1.02))).astype(np.int64))
    steps = np.concatenate([[0], steps])
    peak, previous = -math.inf, 0
    for index, step in enumerate(steps.tolist()):
        value = factor(step)
        if not math.isfinite(value) or value < 0:
            return None
        if value > peak:
            peak = value
        elif peak > 0 and value <= 0.01 * peak:
            # The end lies past the last sample above a hundredth, up to the first sample at
            # zero or where the factor rises again.
            tiny, high, lowest = 1e-6 * peak, step, value
            for later in steps[index + 1 :].tolist():
                if lowest <= tiny:
                    break
                now = factor(later)
                high = later
                if not now < lowest:
                    break
                lowest = now
            return _bisect_zero(factor, previous, high, tiny=tiny)
        previous = step
    return None


def _bisect_zero(factor: Any, low: int, high: int, *, tiny: float) -> int | None:
    """The first step in ``(low, high]`` whose factor is under ``tiny``: the fall is monotone there."""
    # The bracket's end may sit past the zero, on a rise (a restart): step to its lowest point first.
    while high - low > 2:
        third = (high - low) // 3
        if factor(low + third) <= factor(high - third):
            high = high - third
        else:
            low = low + third
    end = min(range(low, high + 1), key=factor)
    if factor(end) > tiny:
        return None
    while end - low > 1:
        middle = (low + end) // 2
        if factor(middle) > tiny:
            low = middle
        else:
            end = middle
    return end


def configured_momenta(optimizer: torch.optim.Optimizer) -> list[tuple[dict[str, Any], str, Any]]:
    """The momentum / betas a cycling scheduler replaced, to test with what the optimizer was given.

    ``OneCycleLR`` and ``CyclicLR`` with ``cycle_momentum`` set each group's
    ``momentum`` (or ``betas[0]``) to their first value when they are made
    (0.95 by default, not the optimizer's 0.9), and mark the group with
    ``max_momentum`` / ``base_momentum``. The range test should see the
    optimizer as configured, so each marked group gets ``optimizer.defaults``'
    value back for the test (the snapshot restores the scheduler's value
    afterwards).

    Returns:
        ``(group, key, configured value)`` for each group to change.
    """
    changes: list[tuple[dict[str, Any], str, Any]] = []
    defaults = getattr(optimizer, "defaults", {})
    for group in optimizer.param_groups:
        if "max_momentum" not in group or "base_momentum" not in group:
            continue
        if "betas" in group and "betas" in defaults:
            changes.append((group, "betas", (defaults["betas"][0], group["betas"][1])))
        elif "momentum" in group and "momentum" in defaults:
            changes.append((group, "momentum", defaults["momentum"]))
    return changes
