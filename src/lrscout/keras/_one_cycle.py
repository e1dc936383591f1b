"""The one-cycle learning rate as a Keras ``LearningRateSchedule``."""

from __future__ import annotations

import math
from typing import Any

from .._result import RangeTestResult, lr_pair
from .._schedules import Phase, one_cycle_phases
from .._validation import check_option, fail
from ._keras import keras

ops = keras.ops
_WHERE = "OneCycle"


@keras.saving.register_keras_serializable(package="lrscout")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):  # type: ignore[misc]
    """One-cycle schedule (Smith & Topin 2018) for any Keras optimizer.

    Computes the formula of :func:`lrscout.one_cycle` with Keras ops (so it
    runs inside compiled training steps on every backend): warm up from
    ``max_lr / div_factor`` to ``max_lr`` by step ``pct_start * total_steps
    - 1``, then anneal to ``max_lr / div_factor / final_div_factor`` at step
    ``total_steps - 1``; between the ends ``a -> b`` of a phase, at fraction
    ``p``,

    .. math:: \\eta = b + (a - b)\\,(1 + \\cos \\pi p) / 2

    (or linearly). Steps past ``total_steps - 1`` keep the final learning
    rate, as Keras's decay schedules do. Values are float32, the dtype of
    Keras optimizers' learning rates.

    ``get_config`` returns the constructor's arguments, and the class is
    registered with Keras (package ``"lrscout"``), so models compiled with it
    save and load.

    Args:
        max_lr: Peak learning rate, positive.
        total_steps: Optimizer steps in the whole run, at least 2.
        pct_start: Fraction of the run spent warming up, in (0, 1).
        div_factor: ``initial_lr = max_lr / div_factor``, at least 1.
        final_div_factor: ``min_lr = initial_lr / final_div_factor``, at least 1.
        anneal_strategy: ``"cos"`` or ``"linear"``.
        three_phase: Return to ``initial_lr`` before the final anneal.
        name: Name of the schedule.

    Raises:
        TypeError, ValueError: On a bad argument (checked as
            :func:`lrscout.one_cycle` checks it).

    Example:
        >>> schedule = OneCycle(0.1, 100)
        >>> [round(float(schedule(step)), 6) for step in (0, 29, 99)]
        [0.004, 0.1, 0.0]
        >>> OneCycle.from_config(schedule.get_config()).get_config() == schedule.get_config()
        True
    """

    def __init__(
        self,
        max_lr: float,
        total_steps: int,
        *,
        pct_start: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        anneal_strategy: str = "cos",
        three_phase: bool = False,
        name: str = "OneCycle",
    ) -> None:
        super().__init__()
        # The core's phase table, checked there with the core's rules and messages.
        self._phases: list[Phase] = one_cycle_phases(
            max_lr,
            total_steps,
            pct_start=pct_start,
            div_factor=div_factor,
            final_div_factor=final_div_factor,
            three_phase=three_phase,
            where=_WHERE,
        )
        self.anneal_strategy = check_option(
            anneal_strategy, "anneal_strategy", ("cos", "linear"), where=_WHERE
        )
        self.max_lr = float(max_lr)
        self.total_steps = int(total_steps)
        self.pct_start = float(pct_start)
        self.div_factor = float(div_factor)
        self.final_div_factor = float(final_div_factor)
        self.three_phase = bool(three_phase)
        self.name = name

    @classmethod
    def from_result(
        cls,
        result: RangeTestResult | tuple[float, float],
        total_steps: int,
        **kwargs: Any,
    ) -> OneCycle:
        """The schedule over a range test's ``lr_range()``.

        ``max_lr`` is the range's top and ``div_factor = max_lr / base_lr``,
        so the run starts at ``base_lr``.

        Args:
            result: A :class:`lrscout.RangeTestResult` or a
                ``(base_lr, max_lr)`` pair with ``0 < base_lr <= max_lr``.
            total_steps: Optimizer steps in the whole run.
            **kwargs: The other arguments of :class:`OneCycle` except
                ``max_lr`` and ``div_factor``.

        Returns:
            The schedule.
        """
        where = f"{_WHERE}.from_result"
        for name in ("max_lr", "div_factor"):
            if name in kwargs:
                fail(where, name, "left out: the range sets it", kwargs[name], "")
        base, peak = lr_pair(result, where, name="result", total_steps=total_steps)
        return cls(peak, total_steps, div_factor=peak / base, **kwargs)

    def __call__(self, step: Any) -> Any:
        t = ops.minimum(ops.cast(step, "float32"), float(self.total_steps - 1))
        out = None
        # The last phase first, then earlier phases take over where t <= their end,
        # so each step gets the first phase whose end it has not passed.
        for phase in reversed(self._phases):
            start, end = phase.start, phase.end
            value = self._anneal(
                phase.start_lr, phase.end_lr, (t - start) / (end - start), (end - t) / (end - start)
            )
            out = value if out is None else ops.where(t <= end, value, out)
        return out

    def _anneal(self, a: float, b: float, done: Any, left: Any) -> Any:
        """``a -> b`` at fraction ``done = 1 - left`` of the phase.

        The same values as the core's ``b + (a - b) (1 + cos(pi p)) / 2`` and
        ``a + (b - a) p``, written as sums of two positive terms so that
        float32 loses no digits to cancellation at either end (the final
        learning rate is 1e-5 of the peak): ``(1 + cos(pi p)) / 2 =
        sin(pi (1 - p) / 2)^2`` and ``(1 - cos(pi p)) / 2 = sin(pi p / 2)^2``,
        with ``1 - p`` computed from the step, not by subtraction.
        """
        if self.anneal_strategy == "cos":
            half_pi = math.pi / 2.0
            return a * ops.square(ops.sin(left * half_pi)) + b * ops.square(ops.sin(done * half_pi))
        return a * left + b * done

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments."""
        return {
            "max_lr": self.max_lr,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
            "anneal_strategy": self.anneal_strategy,
            "three_phase": self.three_phase,
            "name": self.name,
        }
