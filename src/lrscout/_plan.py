"""The training plan: how the model will be trained after the range test.

The rate that trains best depends on the training it is used for: a
constant rate held for many epochs wants a wider margin below the curve's
minimum than one held for a few hundred steps, and a schedule that decays
can start from a higher peak. So the plan is an input of the suggestion:
``schedule`` (the shape of the learning rate over the run) and
``total_steps`` (its optimizer steps), or ``epochs`` where the steps per
epoch are known. Each integration reads the plan its framework holds (a
Trainer's ``max_steps`` and scheduler, a Keras ``LearningRateSchedule``);
arguments given explicitly win, field by field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validation import check_float, check_int, check_option, fail

#: The schedules a suggestion can be for; the rate is the schedule's peak.
SCHEDULES = ("constant", "one_cycle", "cosine", "linear")
#: What ``schedule=`` accepts: a schedule, or ``"auto"`` for the framework's (else constant).
SCHEDULE_OPTIONS = ("auto", *SCHEDULES)


@dataclass(frozen=True)
class Plan:
    """The training a suggestion is for.

    Attributes:
        schedule: One of :data:`SCHEDULES`: ``"constant"``, ``"one_cycle"``
            (warm-up to the peak over 30 % of the run, then cosine decay),
            ``"cosine"`` (cosine decay from the peak to zero) or ``"linear"``
            (linear decay to zero after a warm-up, Hugging Face's default).
        total_steps: Optimizer steps of the training; ``None`` when unknown
            (the rule then assumes a typical length).
        source: Where the plan came from: ``"argument"``, the framework that
            held it (``"lightning"``, ...), or ``"default"``.
    """

    schedule: str = "constant"
    total_steps: int | None = None
    source: str = "default"

    def to_dict(self) -> dict[str, Any]:
        return {"schedule": self.schedule, "total_steps": self.total_steps, "source": self.source}

    @classmethod
    def from_info(
        cls, info: Mapping[str, Any], where: str = "RangeTestResult", name: str = 'info["plan"]'
    ) -> Plan:
        """The plan kept in a result's ``info["plan"]`` (the constant plan of unknown length if none)."""
        record: Any = info.get("plan")
        if record is None:
            return cls()
        if not isinstance(record, Mapping):
            fail(where, name, 'an object with "schedule" and "total_steps"', record)
        schedule = check_option(record.get("schedule"), f'{name}["schedule"]', SCHEDULES, where=where)
        total = record.get("total_steps")
        steps = None if total is None else check_int(total, f'{name}["total_steps"]', where=where, minimum=1)
        source = record.get("source", "default")
        if not isinstance(source, str):
            fail(where, f'{name}["source"]', "a string", source)
        return cls(schedule, steps, source)


def check_total_steps(total_steps: Any, *, where: str) -> int | None:
    """``None`` or a positive number of optimizer steps."""
    if total_steps is None:
        return None
    return check_int(
        total_steps,
        "total_steps",
        where=where,
        minimum=1,
        fix="Give the optimizer steps of the training you will run (epochs x steps per epoch).",
    )


def resolve_plan(
    schedule: Any = "auto",
    total_steps: Any = None,
    epochs: Any = None,
    *,
    steps_per_epoch: int | None = None,
    held: Plan | None = None,
    where: str,
) -> Plan:
    """The plan a suggestion is for: explicit arguments first, then what the framework ``held``.

    Args:
        schedule: One of :data:`SCHEDULE_OPTIONS`; ``"auto"`` takes the
            framework's schedule, else ``"constant"``.
        total_steps: Optimizer steps of the training, or ``None``.
        epochs: Epochs of the training, instead of ``total_steps``: needs
            ``steps_per_epoch`` (a positive number; a fraction is rounded up
            to whole steps).
        steps_per_epoch: Optimizer steps per epoch, where the integration
            knows them (``len(train_loader)``, accumulation counted).
        held: The plan the framework holds (its ``source`` names it), if any.
        where: The public entry point, for messages.

    Raises:
        InvalidArgumentError: On an unknown schedule, a bad count, both
            ``total_steps`` and ``epochs``, or ``epochs`` without a known
            number of steps per epoch.

    Example:
        >>> resolve_plan("cosine", epochs=3, steps_per_epoch=100, where="find_lr")
        Plan(schedule='cosine', total_steps=300, source='argument')
        >>> resolve_plan(held=Plan("linear", 1000, "transformers"), where="find_lr")
        Plan(schedule='linear', total_steps=1000, source='transformers')
    """
    name = check_option(schedule, "schedule", SCHEDULE_OPTIONS, where=where)
    steps = check_total_steps(total_steps, where=where)
    if epochs is not None:
        count = check_float(epochs, "epochs", where=where, positive=True)
        if steps is not None:
            fail(
                where,
                "epochs",
                "None when total_steps is given (they say the same thing)",
                epochs,
                "Pass one of total_steps and epochs.",
            )
        if steps_per_epoch is None:
            fail(
                where,
                "epochs",
                "given with data whose steps per epoch are known",
                epochs,
                "The data has no length here: pass total_steps (the training's optimizer steps) instead.",
            )
        steps = max(1, math.ceil(count * steps_per_epoch))
    held_plan = held if held is not None else Plan()
    plan = Plan(
        schedule=held_plan.schedule if name == "auto" else name,
        total_steps=held_plan.total_steps if steps is None else steps,
    )
    sources = []
    if name != "auto" or steps is not None:
        sources.append("argument")
    if (name == "auto" and held is not None) or (steps is None and held_plan.total_steps is not None):
        sources.append(held_plan.source)
    return Plan(plan.schedule, plan.total_steps, ", ".join(dict.fromkeys(sources)) or "default")


def multipliers(schedule: str, total_steps: int, *, warmup: float = 0.1) -> Any:
    """Each step's learning rate as a multiple of the peak, for one of :data:`SCHEDULES`.

    ``"one_cycle"`` is :func:`lrscout.one_cycle`'s shape as ``lr_range()``
    uses it (a start at an eighth of the peak); ``"linear"`` warms up over
    ``warmup`` of the steps (at least one), then falls linearly to zero.

    Example:
        >>> multipliers("linear", 10).round(2).tolist()
        [1.0, 0.89, 0.78, 0.67, 0.56, 0.44, 0.33, 0.22, 0.11, 0.0]
        >>> multipliers("cosine", 4).round(2).tolist()
        [1.0, 0.85, 0.5, 0.15]
    """
    from ._schedules import one_cycle

    name = check_option(schedule, "schedule", SCHEDULES, where="multipliers")
    n = check_int(total_steps, "total_steps", where="multipliers", minimum=1)
    t = np.arange(n, dtype=np.float64)
    if name == "constant":
        return np.ones(n)
    if name == "cosine":
        return 0.5 * (1.0 + np.cos(math.pi * t / n))
    if name == "linear":
        warm = max(1, round(warmup * n))
        rise = (t + 1) / warm
        fall = (n - 1 - t) / max(1, n - warm)
        return np.where(t < warm, rise, np.clip(fall, 0.0, 1.0))
    if n < 2:
        return np.ones(n)
    return np.asarray(one_cycle(1.0, n, div_factor=8.0)(np.arange(n)), dtype=np.float64)


def classify(values: Any) -> str | None:
    """Which of :data:`SCHEDULES` a sampled learning-rate curve follows, or ``None``.

    ``values`` are a schedule's rates (or multipliers) at evenly spaced steps
    over the whole run. Equal values are ``"constant"``. Otherwise the curve
    must rise to its peak and fall from it to under a tenth: the fall is
    compared with a straight line (``"linear"``) and a half cosine
    (``"cosine"``), and the closer one wins if it is within 0.15 (root mean
    square, the peak being 1); a curve that takes 15 % of the run or more to
    reach its peak and falls as a cosine is ``"one_cycle"``. A staircase, an
    exponential decay or a cycle is none of these: ``None``.

    Example:
        >>> import numpy as np
        >>> [classify(multipliers(s, 200)) for s in SCHEDULES]
        ['constant', 'one_cycle', 'cosine', 'linear']
        >>> classify(0.5 ** np.arange(20)) is None
        True
    """
    curve = np.asarray(values, dtype=np.float64).ravel()
    if curve.size == 0 or not np.all(np.isfinite(curve)) or np.any(curve < 0):
        return None
    top = float(curve.max())
    if top <= 0:
        return None
    curve = curve / top
    if np.all(np.abs(curve - 1.0) <= 1e-6):
        return "constant"
    peak = int(np.argmax(curve))
    fall = curve[peak:]
    if len(fall) < 4 or fall[-1] > 0.1:
        return None
    u = np.linspace(0.0, 1.0, len(fall))
    errors = {
        "linear": float(np.sqrt(np.mean((fall - (1.0 - u) * (1.0 - fall[-1]) - fall[-1]) ** 2))),
        "cosine": float(
            np.sqrt(np.mean((fall - 0.5 * (1 + np.cos(math.pi * u)) * (1 - fall[-1]) - fall[-1]) ** 2))
        ),
    }
    shape = min(errors, key=errors.__getitem__)
    if errors[shape] > 0.15:
        return None
    if shape == "cosine" and peak >= 0.15 * (len(curve) - 1):
        return "one_cycle"
    return shape


#: Samples of a schedule's function that decide its shape.
_SAMPLES = 256
#: The longest run searched for where a schedule reaches zero.
_LONGEST = 2**40


def sampled_plan(function: Any, *, source: str, total_steps: int | None = None) -> Plan | None:
    """The plan of a learning rate ``function(step)``, recognised by sampling it.

    For a ``LambdaLR``'s function, a Keras ``LearningRateSchedule``, a NumPy
    model's ``lr`` schedule: the run ends at ``total_steps`` when known, else
    where the function reaches zero after its peak (Hugging Face's linear and
    cosine schedules, Keras' ``CosineDecay`` end there); one that never does
    and settles at its peak is constant (a warm-up); the shape between is
    :func:`classify`'s. ``None`` for anything else, or a function that fails.

    Example:
        >>> sampled_plan(lambda step: max(0.0, 1 - step / 500), source="scheduler")
        Plan(schedule='linear', total_steps=500, source='scheduler')
        >>> sampled_plan(lambda step: min(1.0, (step + 1) / 100), source="scheduler")
        Plan(schedule='constant', total_steps=None, source='scheduler')
    """

    def factor(step: int) -> float:
        try:
            value = float(function(step))
        except Exception:  # a user's function that fails on a step it would never see
            return math.nan
        return value

    end = total_steps if total_steps is not None else _first_zero(factor)
    if end is None:
        # Never reaches zero: constant if it settles at its peak (a warm-up), else not ours
        # (a staircase that settles lower is a decay, not a constant rate).
        head = [factor(step) for step in range(0, 2**8, 4)]
        tail = [factor(2**k) for k in range(8, 30, 3)]
        top = max(tail)
        if (
            math.isfinite(top)
            and top > 0
            and all(abs(value - top) <= 1e-9 * top for value in tail)
            and all(value <= top * (1 + 1e-9) for value in head)
        ):
            return Plan("constant", None, source)
        return None
    grid = np.unique(np.linspace(0, end, min(_SAMPLES, end + 1)).round().astype(np.int64))
    if total_steps is not None:
        grid = grid[grid < end]
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
