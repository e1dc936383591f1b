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
    def from_info(cls, info: Mapping[str, Any], where: str = "RangeTestResult") -> Plan:
        """The plan kept in a result's ``info["plan"]`` (the constant plan of unknown length if none)."""
        record: Any = info.get("plan")
        if record is None:
            return cls()
        if not isinstance(record, Mapping):
            fail(where, 'info["plan"]', 'an object with "schedule" and "total_steps"', record)
        schedule = check_option(record.get("schedule"), 'info["plan"]["schedule"]', SCHEDULES, where=where)
        total = record.get("total_steps")
        steps = (
            None if total is None else check_int(total, 'info["plan"]["total_steps"]', where=where, minimum=1)
        )
        source = record.get("source", "default")
        if not isinstance(source, str):
            fail(where, 'info["plan"]["source"]', "a string", source)
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
