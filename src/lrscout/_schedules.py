"""Learning-rate schedules as pure functions of the step.

Each factory checks its arguments once and returns ``schedule(step) -> lr``.
A schedule accepts an ``int`` (returns a ``float``) or an integer array
(returns an array), so it can be tabulated and plotted without a model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple, overload

import numpy as np
import numpy.typing as npt

from ._errors import InvalidArgumentError
from ._validation import check_bool, check_float, check_int, check_option

#: The most steps a ramp or a range test may plan: a 64-bit count (a range
#: test tabulates its ramp lazily, so a large plan costs nothing up front).
MAX_STEPS = 2**63 - 1


class Schedule:
    """A learning rate as a pure function of the step, ``0 <= step < num_steps``."""

    def __init__(self, name: str, num_steps: int, formula: Callable[[np.ndarray], np.ndarray]) -> None:
        self._name = name
        self.num_steps = num_steps
        self._formula = formula

    @overload
    def __call__(self, step: int) -> float: ...
    @overload
    def __call__(self, step: npt.ArrayLike) -> np.ndarray: ...

    def __call__(self, step: Any) -> Any:
        steps = np.asarray(step)
        if steps.dtype == bool or not np.issubdtype(steps.dtype, np.integer):
            raise InvalidArgumentError(
                f"{self._name}: step must be an integer or an integer array; got {step!r}."
            )
        if steps.size and (steps.min() < 0 or steps.max() >= self.num_steps):
            raise InvalidArgumentError(
                f"{self._name}: step must be in [0, {self.num_steps - 1}]; got {step!r}. "
                f"The schedule was built for num_steps={self.num_steps}."
            )
        lrs = self._formula(steps.astype(np.float64))
        return float(lrs) if lrs.ndim == 0 else lrs

    def __repr__(self) -> str:
        return f"<{self._name} schedule, {self.num_steps} steps>"


def _ramp_args(start_lr: Any, end_lr: Any, num_steps: Any, where: str) -> tuple[float, float, int]:
    """A ramp's endpoints (positive, finite) and its steps (at least 2), checked."""
    a = check_float(start_lr, "start_lr", where=where, positive=True)
    b = check_float(end_lr, "end_lr", where=where, positive=True)
    return a, b, check_int(num_steps, "num_steps", where=where, minimum=2)


def linear_ramp(start_lr: float, end_lr: float, num_steps: int) -> Schedule:
    """A learning rate that moves linearly from ``start_lr`` to ``end_lr``.

    .. math:: \\eta(t) = \\eta_0 + (\\eta_1 - \\eta_0)\\, t / (N - 1)

    The classic Keras ``LRFinder`` recipe used ``eta_0 + (eta_1 - eta_0) * t / N``
    and so never reached ``end_lr``; here both endpoints are exact. Its values
    are ``linear_ramp(start_lr, end_lr, N + 1)`` at steps ``0..N-1``.

    Args:
        start_lr: Learning rate at step 0, positive and finite.
        end_lr: Learning rate at step ``num_steps - 1``, positive and finite.
        num_steps: Number of steps, at least 2.

    Returns:
        A pure function ``step -> lr``.

    Example:
        >>> ramp = linear_ramp(0.0001, 0.0101, 101)
        >>> ramp(0), ramp(100)
        (0.0001, 0.0101)
        >>> round(ramp(50), 12)
        0.0051
    """
    a, b, n = _ramp_args(start_lr, end_lr, num_steps, "linear_ramp")
    last = n - 1

    def formula(t: np.ndarray) -> np.ndarray:
        return np.where(t == last, b, a + (b - a) * (t / last))

    return Schedule("linear_ramp", n, formula)


def exponential_ramp(start_lr: float, end_lr: float, num_steps: int) -> Schedule:
    """A learning rate that moves geometrically from ``start_lr`` to ``end_lr``.

    .. math:: \\eta(t) = \\eta_0\\, (\\eta_1 / \\eta_0)^{t / (N - 1)}

    Consecutive learning rates have a constant ratio, so every decade of the
    range gets the same number of steps.

    Args:
        start_lr: Learning rate at step 0, positive and finite.
        end_lr: Learning rate at step ``num_steps - 1``, positive and finite.
        num_steps: Number of steps, at least 2.

    Returns:
        A pure function ``step -> lr``.

    Example:
        >>> ramp = exponential_ramp(1e-7, 10.0, 9)
        >>> ramp(0), ramp(8)
        (1e-07, 10.0)
        >>> ramp(np.arange(3, 6)).round(12).tolist()
        [0.0001, 0.001, 0.01]
    """
    a, b, n = _ramp_args(start_lr, end_lr, num_steps, "exponential_ramp")
    last = n - 1
    # A difference of logs: the ratio b / a itself may overflow (1e-10 .. 1e300).
    log_a = math.log(a)
    log_ratio = math.log(b) - log_a

    def formula(t: np.ndarray) -> np.ndarray:
        # In log space, so that no intermediate overflows on a ramp across the
        # whole float range; both ends are exact.
        inner = np.exp(log_a + log_ratio * (t / last))
        return np.where(t == 0, a, np.where(t == last, b, inner))

    return Schedule("exponential_ramp", n, formula)


RAMPS: dict[str, Callable[[float, float, int], Schedule]] = {
    "exponential": exponential_ramp,
    "linear": linear_ramp,
}


class Phase(NamedTuple):
    """One phase of a one-cycle schedule: from ``start_lr`` at step ``start`` to ``end_lr`` at ``end``."""

    start: float
    end: float
    start_lr: float
    end_lr: float


def one_cycle_phases(
    max_lr: float,
    total_steps: int,
    *,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
    where: str = "one_cycle",
) -> list[Phase]:
    """The phase table of :func:`one_cycle`, checked; every one-cycle implementation reads it.

    The boundaries are those of ``torch.optim.lr_scheduler.OneCycleLR``: the
    warm-up ends at step ``pct_start * total_steps - 1``; with
    ``three_phase`` the return to the initial rate ends at
    ``2 * pct_start * total_steps - 2``; the last phase ends at
    ``total_steps - 1``.

    Example:
        >>> [tuple(round(x, 6) for x in phase) for phase in one_cycle_phases(0.1, 10)]
        [(0.0, 2.0, 0.004, 0.1), (2.0, 9.0, 0.1, 0.0)]
    """
    peak = check_float(max_lr, "max_lr", where=where, positive=True)
    n = check_int(total_steps, "total_steps", where=where, minimum=2)
    pct = check_float(
        pct_start, "pct_start", where=where, minimum=0.0, maximum=1.0, open_minimum=True, open_maximum=True
    )
    div = check_float(div_factor, "div_factor", where=where, minimum=1.0)
    final_div = check_float(final_div_factor, "final_div_factor", where=where, minimum=1.0)
    three = check_bool(three_phase, "three_phase", where=where)
    initial = peak / div
    minimum = initial / final_div
    if three:
        ends = [pct * n - 1, 2 * pct * n - 2, n - 1.0]
        values = [initial, peak, initial, minimum]
    else:
        ends = [pct * n - 1, n - 1.0]
        values = [initial, peak, minimum]
    starts = [0.0, *ends[:-1]]
    for i in range(len(ends) - 1):
        if not ends[i] > starts[i]:
            raise InvalidArgumentError(
                f"{where}: pct_start * total_steps must leave every phase at least one step; "
                f"got pct_start={pct} with total_steps={n}. Raise total_steps or pct_start."
            )
    return [Phase(starts[i], ends[i], values[i], values[i + 1]) for i in range(len(ends))]


def one_cycle(
    max_lr: float,
    total_steps: int,
    *,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    anneal_strategy: str = "cos",
    three_phase: bool = False,
) -> Schedule:
    """The one-cycle schedule (Smith & Topin 2018) as a pure function of the step.

    Warm up from ``initial_lr = max_lr / div_factor`` to ``max_lr`` over the
    first ``pct_start * total_steps - 1`` steps, then anneal to
    ``initial_lr / final_div_factor`` at step ``total_steps - 1``. With
    ``three_phase`` the second phase returns to ``initial_lr`` (ending at step
    ``2 * pct_start * total_steps - 2``) and a third anneals to the minimum.
    Cosine annealing between phase ends ``a -> b`` at fraction ``p``:

    .. math:: \\eta = b + (a - b)\\,(1 + \\cos \\pi p) / 2

    The phase boundaries are those of ``torch.optim.lr_scheduler.OneCycleLR``,
    so both give the same learning rate at every step.

    Args:
        max_lr: Peak learning rate, positive.
        total_steps: Number of optimizer steps in the whole run, at least 2.
        pct_start: Fraction of the run spent warming up, in (0, 1).
        div_factor: ``initial_lr = max_lr / div_factor``, at least 1.
        final_div_factor: ``min_lr = initial_lr / final_div_factor``, at least 1.
        anneal_strategy: ``"cos"`` or ``"linear"``.
        three_phase: Use the three-phase variant described above.

    Returns:
        A pure function ``step -> lr`` for ``0 <= step < total_steps``.

    Example:
        >>> sched = one_cycle(0.1, 100)
        >>> round(sched(0), 6), round(sched(29), 6), round(sched(99), 10)
        (0.004, 0.1, 4e-07)
    """
    where = "one_cycle"
    phases = one_cycle_phases(
        max_lr,
        total_steps,
        pct_start=pct_start,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
        three_phase=three_phase,
        where=where,
    )
    strategy = check_option(anneal_strategy, "anneal_strategy", ("cos", "linear"), where=where)
    n = check_int(total_steps, "total_steps", where=where, minimum=2)

    def anneal(a: float, b: float, p: np.ndarray) -> np.ndarray:
        if strategy == "cos":
            return b + (a - b) / 2.0 * (np.cos(np.pi * p) + 1.0)
        return (b - a) * p + a

    def formula(t: np.ndarray) -> np.ndarray:
        out = np.empty_like(t)
        done = np.zeros(t.shape, dtype=bool)
        for i, phase in enumerate(phases):
            mask = ~done if i == len(phases) - 1 else (~done & (t <= phase.end))
            out[mask] = anneal(
                phase.start_lr, phase.end_lr, (t[mask] - phase.start) / (phase.end - phase.start)
            )
            done |= mask
        return out

    return Schedule("one_cycle", n, formula)
