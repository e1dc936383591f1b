"""The refinement stage: short probe runs at candidate rates, from the range test's start.

A range test ramps the rate; training holds it (or follows the plan's
schedule). The refinement stage checks the default suggestion against the
model itself: it trains from the state the test started from at each of
``lrscout._suggest.REFINE_FACTORS`` times the suggestion (rates on both
sides of it), restoring that state before each probe, in rounds of
successive halving (``REFINE_ROUNDS``: the best probes of a round get a
longer run in the next), scores each probe on held-out data when the caller
can evaluate some (else on its own training losses), and moves the rate part
of the way to the last round's best (``REFINE_SHRINK``). It costs three
times the range test's steps, plus the evaluations. Each integration
supplies ``start``, which puts its model, optimizer and data order back; the
rounds and the choice are here, once.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

from ._engine import _progress_bar, _read_floats, read_chunk, warn_about
from ._errors import InvalidArgumentError, NoSuggestionError
from ._result import RangeTestResult
from ._suggest import REFINE_FACTORS, REFINE_ROUNDS, REFINE_SHRINK, probe_score, refined, survivors
from ._validation import check_callable, check_int


def refine(
    result: RangeTestResult,
    start: Callable[[], Callable[[float], Any]],
    *,
    evaluate: Callable[[], Any] | None = None,
    read_losses: Callable[[list[Any]], Sequence[float]] | None = None,
    sync_every: int = 1,
    progress: bool = False,
    where: str = "refine",
    held_out: str = "evaluate",
) -> RangeTestResult:
    """Refine ``result``'s default suggestion with probe runs; return the result with the choice.

    Args:
        result: The range test, as run from the state ``start`` restores.
        start: ``start() -> step_fn``: puts the model, optimizer and data
            order back where the range test started and returns a fresh
            ``step_fn(lr) -> loss`` (as for :func:`lrscout.range_test`).
            Called once per probe; the caller restores the state afterwards.
        evaluate: ``evaluate() -> loss`` on held-out data (a validation
            set), read like a step's loss, once at the end of each probe;
            ``None`` scores each probe on the mean of its last half of
            training losses. A rate that fits the training batches faster but
            generalises worse loses only on held-out data.
        read_losses, sync_every, progress: As in :func:`lrscout.range_test`.
        where: The caller's name, for errors.
        held_out: The caller's name for the held-out data, for errors.

    Raises:
        InvalidArgumentError: When ``evaluate`` gives a loss that is not
            finite from the test's start (an empty or broken validation
            set), before any probe runs.

    Returns:
        ``result`` with ``info["refinement"]``: the rate chosen (``"lr"``),
        the default suggestion it started from (``"suggested"``) and the plan
        it was for (``"plan"``), the last round's best (``"picked"``, or
        ``None`` when no probe had a score), the share of the way moved
        (``"shrink"``), what scored the probes (``"scored_on"``:
        ``"training"`` or ``"held-out"``), and each round's probes (rate,
        steps planned and run, score — ``None`` when its data ran out — and
        whether it diverged). ``result.suggestion`` is then the refined rate
        (method ``"refined"``). A curve without a default suggestion is
        returned as it is: nothing to refine (its warnings say why).

    Example:
        Gradient descent on ``f(w) = w**2 / 2`` from ``w = 1``; ``start``
        resets ``w``:

        >>> from lrscout import range_test
        >>> w = [1.0]
        >>> def step_fn(lr):
        ...     loss = 0.5 * w[0] ** 2
        ...     w[0] -= lr * w[0]
        ...     return loss
        >>> def start():
        ...     w[0] = 1.0
        ...     return step_fn
        >>> test = range_test(start(), start_lr=1e-3, end_lr=100.0, num_steps=50, progress=False)
        >>> result = refine(test, start)
        >>> result.suggestion.method, [len(r["probes"]) for r in result.info["refinement"]["rounds"]]
        ('refined', [5, 2])
    """
    check_callable(start, "start", where=where)
    if evaluate is not None:
        check_callable(evaluate, "evaluate", where=where)
    chunk = check_int(sync_every, "sync_every", where=where, minimum=1)
    read = read_losses or _read_floats
    try:
        suggested = result.suggest("auto").lr
    except NoSuggestionError:
        return result
    if evaluate is not None:
        start()
        first = read_chunk(read, [evaluate()], where)[0]
        if not math.isfinite(first):
            raise InvalidArgumentError(
                f"{where}: {held_out} gives a loss of {first} at the test's start, before any probe "
                "step: the held-out data must give a finite loss (is it empty, or are its targets "
                "out of range?)."
            )
    test_steps = len(result)
    rates = [suggested * factor for factor in REFINE_FACTORS]
    lengths = [max(1, round(share * test_steps)) for share, _ in REFINE_ROUNDS]
    planned, alive = 0, len(rates)
    for steps, (_, keep) in zip(lengths, REFINE_ROUNDS, strict=True):
        planned, alive = planned + alive * steps, keep
    bar = _progress_bar(planned) if progress else None
    rounds: list[dict[str, Any]] = []
    try:
        for steps, (_, keep) in zip(lengths, REFINE_ROUNDS, strict=True):
            probes, scores = [], []
            for lr in rates:
                losses, evaluations = _probe(start(), lr, steps, read, chunk, bar, where, evaluate)
                score = probe_score(losses, steps, evaluations)
                scores.append(score)
                probes.append(
                    {
                        "lr": lr,
                        "steps": steps,
                        "steps_run": len(losses),
                        "score": score if score is not None and math.isfinite(score) else None,
                        "diverged": score == math.inf,
                    }
                )
            rounds.append({"steps": steps, "probes": probes})
            rates = survivors(suggested, rates, scores, keep)
            if not rates:
                break
    finally:
        if bar is not None:
            bar.close()
    picked = rates[0] if rates else None
    notes = result.warnings
    if all(probe["diverged"] for probe in rounds[0]["probes"]):
        notes = (
            *notes,
            f"probes diverged: every probe of the refinement diverged, down to {min(REFINE_FACTORS):g} "
            f"times the suggestion ({suggested * min(REFINE_FACTORS):.3g}), so the suggestion stands "
            "unchecked and is likely too high for this training. Lower it, or rerun the test with a "
            "lower end_lr.",
        )
    record = {
        "lr": refined(suggested, picked),
        "suggested": suggested,
        "plan": result.plan().to_dict(),
        "picked": picked,
        "shrink": REFINE_SHRINK,
        "scored_on": "training" if evaluate is None else "held-out",
        "rounds": rounds,
    }
    refined_result = dataclasses.replace(result, info={**result.info, "refinement": record}, warnings=notes)
    if notes != result.warnings:
        warn_about(dataclasses.replace(result, warnings=notes[len(result.warnings) :]), stacklevel=2)
    return refined_result


def _probe(
    step_fn: Callable[[float], Any],
    lr: float,
    steps: int,
    read: Callable[[list[Any]], Sequence[float]],
    chunk: int,
    bar: Any,
    where: str,
    evaluate: Callable[[], Any] | None,
) -> tuple[list[float], list[float] | None]:
    """Train ``steps`` steps at ``lr``: the losses (up to the first not finite) and the evaluation.

    The evaluation runs once, after the last step, when every step ran with
    a finite loss (a diverged or short probe has no evaluation to score).
    """
    losses: list[float] = []
    pending: list[Any] = []
    for step in range(steps):
        try:
            pending.append(step_fn(lr))
        except StopIteration:
            exhausted = True
        else:
            exhausted = False
        if pending and (exhausted or len(pending) == chunk or step == steps - 1):
            values = read_chunk(read, pending, where)
            if bar is not None:
                bar.update(len(values))
            pending = []
            for value in values:
                losses.append(value)
                if not math.isfinite(value):
                    return losses, None
        if exhausted:
            break
    if evaluate is None:
        return losses, None
    if len(losses) < steps:
        return losses, []
    return losses, read_chunk(read, [evaluate()], where)
