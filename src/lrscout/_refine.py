"""The refinement stage: short probe runs at candidate rates, from the range test's start.

A range test ramps the rate; training holds it. The refinement stage trains
from the state the test started from at each candidate rate of
``lrscout._suggest.REFINE_FACTORS`` times the default suggestion (the
suggestion and a third of it), for as many steps as the test ran, restoring
that state before each probe, and keeps the rate whose probe ended lower
(``lrscout._suggest.refined``): on its own training losses, or on held-out
data when the caller can evaluate some. It costs twice the range test (plus
the evaluations). Each integration supplies ``start``, which puts its model,
optimizer and data order back; the loop and the choice are here, once.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

from ._engine import _progress_bar, _read_floats, read_chunk
from ._errors import NoSuggestionError
from ._result import RangeTestResult
from ._suggest import REFINE_FACTORS, probe_score, refined
from ._validation import check_callable, check_int

#: Evaluations on held-out data in the last half of a probe, at most.
EVALUATIONS = 10


def refine(
    result: RangeTestResult,
    start: Callable[[], Callable[[float], Any]],
    *,
    evaluate: Callable[[], Any] | None = None,
    read_losses: Callable[[list[Any]], Sequence[float]] | None = None,
    sync_every: int = 1,
    progress: bool = False,
    where: str = "refine",
) -> RangeTestResult:
    """Refine ``result``'s default suggestion with probe runs; return the result with the choice.

    Args:
        result: The range test, as run from the state ``start`` restores.
        start: ``start() -> step_fn``: puts the model, optimizer and data
            order back where the range test started and returns a fresh
            ``step_fn(lr) -> loss`` (as for :func:`lrscout.range_test`).
            Called once per probe; the caller restores the state afterwards.
        evaluate: ``evaluate() -> loss`` on held-out data (a validation
            set), read like a step's loss; ``None`` scores each probe on its
            own training losses. With it, a probe's score is the mean of up
            to 10 evaluations spread over its last half: a rate that fits the
            training batches faster but generalises worse loses.
        read_losses, sync_every, progress: As in :func:`lrscout.range_test`.
        where: The caller's name, for errors.

    Returns:
        ``result`` with ``info["refinement"]``: the rate chosen (``"lr"``),
        the default suggestion it started from (``"suggested"``), the steps
        of each probe, what scored them (``"scored_on"``: ``"training"`` or
        ``"held-out"``) and each probe's rate, steps run and score (the mean
        of its last half of losses; ``None`` when its data ran out, and
        ``"diverged": true`` when a loss was not finite). ``result.suggestion``
        is then the refined rate (method ``"refined"``). A curve without a
        default suggestion is returned as it is: nothing to refine (its
        warnings say why).

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
        >>> result = refine(range_test(start(), start_lr=1e-3, end_lr=100.0, num_steps=50), start)
        >>> result.suggestion.method, len(result.info["refinement"]["probes"])
        ('refined', 2)
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
    steps = len(result)
    rates = [suggested * factor for factor in REFINE_FACTORS]
    bar = _progress_bar(steps * len(rates)) if progress else None
    probes: list[dict[str, Any]] = []
    scores: list[float | None] = []
    try:
        for lr in rates:
            losses, evaluations = _probe(start(), lr, steps, read, chunk, bar, where, evaluate)
            score = probe_score(losses, steps, evaluations)
            scores.append(score)
            probes.append(
                {
                    "lr": lr,
                    "steps_run": len(losses),
                    "score": score if score is not None and math.isfinite(score) else None,
                    "diverged": score == math.inf,
                }
            )
    finally:
        if bar is not None:
            bar.close()
    record = {
        "lr": refined(suggested, rates, scores),
        "suggested": suggested,
        "probe_steps": steps,
        "scored_on": "training" if evaluate is None else "held-out",
        "probes": probes,
    }
    return dataclasses.replace(result, info={**result.info, "refinement": record})


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
    """Train ``steps`` steps at ``lr``: the losses (up to the first not finite) and the evaluations."""
    half = steps // 2
    stride = max(1, math.ceil((steps - half) / EVALUATIONS))
    marks = set(range(steps - 1, half - 1, -stride)) if evaluate is not None else set()
    losses: list[float] = []
    pending: list[Any] = []
    held: list[Any] = []
    for step in range(steps):
        try:
            pending.append(step_fn(lr))
        except StopIteration:
            exhausted = True
        else:
            exhausted = False
            if step in marks:
                assert evaluate is not None
                held.append(evaluate())
        if pending and (exhausted or len(pending) == chunk or step == steps - 1):
            values = read_chunk(read, pending, where)
            if bar is not None:
                bar.update(len(values))
            pending = []
            for value in values:
                losses.append(value)
                if not math.isfinite(value):
                    return losses, read_chunk(read, held, where) if evaluate is not None else None
        if exhausted:
            break
    return losses, read_chunk(read, held, where) if evaluate is not None else None
