"""The training plan a PyTorch learning-rate scheduler holds, and the momenta it set aside.

Lightning's ``configure_optimizers``, Hugging Face's ``Trainer`` and plain
PyTorch code all end in a ``torch.optim.lr_scheduler`` object; reading the
plan from it is one job, done here for every integration.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .._plan import Plan, sampled_plan


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
        if isinstance(scheduler, sched.MultiplicativeLR):
            # lr_t = base * prod(f(1..t)): constant exactly when every factor is 1.
            constant = all(_safe(functions[0], step) == 1.0 for step in range(1, 65))
            return Plan("constant", None, source) if constant else None
        return sampled_plan(functions[0], source=source)
    return None


def _safe(function: Any, step: int) -> float:
    try:
        return float(function(step))
    except Exception:  # a user's function that fails on a step it would never see
        return math.nan


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
