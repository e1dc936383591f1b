"""``torch.optim.lr_scheduler.OneCycleLR`` set up from an LR range test."""

from __future__ import annotations

from typing import Any

import torch

from .._result import RangeTestResult, lr_pair
from .._validation import check_bool, check_float, check_int, fail


def one_cycle_scheduler(
    optimizer: torch.optim.Optimizer,
    lr_range: RangeTestResult | tuple[float, float],
    total_steps: int | None = None,
    *,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    final_div_factor: float = 1e4,
    three_phase: bool = False,
    cycle_momentum: bool | None = None,
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
) -> torch.optim.lr_scheduler.OneCycleLR:
    """Build PyTorch's ``OneCycleLR`` over the learning-rate range a range test found.

    With ``(base_lr, max_lr) = result.lr_range()`` the scheduler peaks at
    ``max_lr`` and starts (and, with ``three_phase``, returns) at ``base_lr``:

    .. math:: \\text{max\\_lr} = \\text{max\\_lr}, \\qquad
              \\text{div\\_factor} = \\text{max\\_lr} / \\text{base\\_lr}

    so step ``t`` has learning rate ``lrscout.one_cycle(max_lr, total_steps,
    div_factor=max_lr / base_lr, ...)(t)``. The scheduler is torch's own,
    built with these arguments; call ``scheduler.step()`` after each
    ``optimizer.step()``, ``total_steps`` times at most. It sets every param
    group's learning rate (and, with ``cycle_momentum``, its momentum or
    Adam's ``beta1``) at construction.

    Args:
        optimizer: The optimizer to schedule.
        lr_range: A :class:`lrscout.RangeTestResult` (its ``lr_range()`` is
            used) or a ``(base_lr, max_lr)`` pair with ``0 < base_lr <= max_lr``.
        total_steps: Optimizer steps in the whole run, at least 2; or give
            ``epochs`` and ``steps_per_epoch`` instead.
        epochs: Epochs of the run (with ``steps_per_epoch``).
        steps_per_epoch: Optimizer steps per epoch (with ``epochs``), e.g.
            ``lrscout.steps_per_epoch(len(dataset), batch_size)``.
        pct_start: Fraction of the run spent warming up, in (0, 1).
        anneal_strategy: ``"cos"`` or ``"linear"``.
        final_div_factor: ``min_lr = base_lr / final_div_factor``, at least 1.
        three_phase: Use the three-phase variant (see :func:`lrscout.one_cycle`).
        cycle_momentum: Cycle the momentum inversely to the learning rate.
            ``None`` (default) cycles it when the optimizer already uses
            momentum (``betas``, or a ``momentum`` above 0 in every param
            group) and leaves a plain ``SGD`` plain; torch's own default
            would give ``SGD(momentum=0)`` a momentum of 0.85-0.95.
        base_momentum: Lowest momentum, when cycling it.
        max_momentum: Highest momentum, when cycling it.

    Returns:
        A ``torch.optim.lr_scheduler.OneCycleLR``.

    Raises:
        TypeError, ValueError: On a bad argument, naming it; ``ValueError``
            from ``result.lr_range()`` when the curve gives no range.

    Example:
        >>> from torch import nn
        >>> optimizer = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=0.1, momentum=0.9)
        >>> scheduler = one_cycle_scheduler(optimizer, (0.004, 0.1), total_steps=100)
        >>> round(optimizer.param_groups[0]["lr"], 6)
        0.004
    """
    where = "one_cycle_scheduler"
    candidate: Any = optimizer
    if not isinstance(candidate, torch.optim.Optimizer):
        fail(where, "optimizer", "a torch.optim.Optimizer", optimizer, "")
    total = _total_steps(total_steps, epochs, steps_per_epoch, where)
    base_lr, max_lr = lr_pair(lr_range, where, total_steps=total)
    if cycle_momentum is None:
        cycle = "betas" in optimizer.defaults or all(
            group.get("momentum", 0) > 0 for group in optimizer.param_groups
        )
    else:
        cycle = check_bool(cycle_momentum, "cycle_momentum", where=where)
    # torch's own test: SGD qualifies even with momentum=0 (its default is in ``defaults``).
    if cycle and "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
        fail(
            where,
            "cycle_momentum",
            "False for an optimizer without momentum or betas",
            cycle_momentum,
            f"{type(optimizer).__name__} has neither; pass cycle_momentum=False.",
        )
    low = check_float(
        base_momentum, "base_momentum", where=where, minimum=0.0, maximum=1.0, open_maximum=True
    )
    high = check_float(max_momentum, "max_momentum", where=where, minimum=0.0, maximum=1.0, open_maximum=True)
    if high < low:
        fail(where, "max_momentum", f">= base_momentum ({low!r})", max_momentum)
    div_factor = max_lr / base_lr
    # Checked here so the message names lrscout's argument, not torch's.
    check_float(
        pct_start, "pct_start", where=where, minimum=0.0, maximum=1.0, open_minimum=True, open_maximum=True
    )
    check_float(final_div_factor, "final_div_factor", where=where, minimum=1.0)
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=max_lr,
        total_steps=total,
        pct_start=pct_start,
        anneal_strategy=anneal_strategy,  # type: ignore[arg-type]
        cycle_momentum=cycle,
        base_momentum=base_momentum,
        max_momentum=max_momentum,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
        three_phase=three_phase,
    )


def _total_steps(total_steps: Any, epochs: Any, steps_per_epoch: Any, where: str) -> int:
    if total_steps is not None:
        if epochs is not None or steps_per_epoch is not None:
            fail(
                where,
                "epochs",
                "None when total_steps is given",
                epochs,
                "Give total_steps, or epochs and steps_per_epoch.",
            )
        return check_int(total_steps, "total_steps", where=where, minimum=2)
    if epochs is None or steps_per_epoch is None:
        fail(
            where,
            "total_steps",
            "given, or epochs and steps_per_epoch",
            total_steps,
            "",
        )
    runs = check_int(epochs, "epochs", where=where, minimum=1)
    per_epoch = check_int(steps_per_epoch, "steps_per_epoch", where=where, minimum=1)
    return check_int(runs * per_epoch, "epochs * steps_per_epoch", where=where, minimum=2)
