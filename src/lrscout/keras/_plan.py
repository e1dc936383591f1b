"""The training plan a Keras optimizer holds: its learning rate, a float or a schedule.

A Keras 3 optimizer keeps its rate as a variable (a float given to it) or as
a ``keras.optimizers.schedules.LearningRateSchedule`` that it calls with its
iteration count at every step. The schedule is a pure function of the step,
so its plan is read by sampling it (:func:`lrscout._plan.sampled_plan`, the
same code that reads a PyTorch ``LambdaLR``), without training.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._plan import Plan, sampled_plan
from ._keras import keras
from ._one_cycle import OneCycle

#: The :attr:`Plan.source` of a plan read from a Keras optimizer.
SOURCE = "keras"


def optimizer_plan(rate: Any) -> Plan | None:
    """The plan that an optimizer's learning rate ``rate`` will run, or ``None`` if not lrscout's.

    A float (the optimizer's ``keras.Variable``) is constant, of unknown
    length. A ``LearningRateSchedule`` is sampled at whole steps:
    ``CosineDecay`` (``warmup_steps + decay_steps`` long; a warm-up of 15 %
    of the run or more makes it one-cycle), ``PolynomialDecay`` with
    ``power=1`` (linear over ``decay_steps``), lrscout's :class:`OneCycle`
    (over its ``total_steps``), any schedule of the user's
    (its length where it reaches zero). A staircase
    (``PiecewiseConstantDecay``), an ``ExponentialDecay`` or
    ``InverseTimeDecay`` follow none of lrscout's schedules: ``None``, as
    does a callable of no arguments, which Keras calls without the step.

    Args:
        rate: The optimizer's ``_learning_rate`` (wrappers looked through).

    Example:
        >>> schedule = keras.optimizers.schedules.CosineDecay(0.1, decay_steps=500)
        >>> optimizer_plan(schedule)
        Plan(schedule='cosine', total_steps=500, source='keras')
    """
    schedules = keras.optimizers.schedules
    if isinstance(rate, keras.Variable):
        return Plan("constant", None, SOURCE)
    if not isinstance(rate, schedules.LearningRateSchedule):
        return None
    total: int | None = None
    if isinstance(rate, schedules.CosineDecay):
        total = int(rate.decay_steps) + (int(rate.warmup_steps) if rate.warmup_target is not None else 0)
    elif isinstance(rate, (schedules.PolynomialDecay, OneCycle)):
        total = int(rate.decay_steps if isinstance(rate, schedules.PolynomialDecay) else rate.total_steps)

    at = _sampler(rate)
    return sampled_plan(at, source=SOURCE, total_steps=total if total is not None and total >= 1 else None)


def _sampler(schedule: Any) -> Callable[[int], float]:
    """``schedule(step)`` as a float, compiled once where the backend's eager calls are slow.

    Under JAX an eager ``ops.cond`` (``CosineDecay``'s warm-up) traces at
    every call, and TensorFlow runs each small op eagerly, so there the
    schedule is compiled (``jax.jit``, ``tf.function``) and called with the
    step as a tensor, as the optimizer calls it. The rate is a scalar of the
    backend: ``float`` reads it (NumPy's ``__array__`` path warns on torch). A schedule that cannot be
    compiled (Python control flow on the step) is called as it is.
    """
    backend = keras.backend.backend()
    compiled: Callable[[Any], Any] | None = None
    as_step: Callable[[int], Any] = int
    if backend == "jax":
        import jax

        compiled = jax.jit(schedule)
    elif backend == "tensorflow":
        import tensorflow as tf

        compiled = tf.function(schedule, reduce_retracing=True)

        def as_step(step: int) -> Any:
            return tf.constant(step, dtype=tf.int64)

    def eager(step: int) -> float:
        return float(schedule(step))

    if compiled is None:
        return eager
    calls: list[Callable[[int], float]] = []

    def at(step: int) -> float:
        if calls:
            return calls[0](step)
        try:
            return float(compiled(as_step(step)))
        except Exception:
            value = eager(step)  # raises if the schedule itself fails at this step
            calls.append(eager)  # it runs, but not compiled: call it as it is from now on
            return value

    return at
