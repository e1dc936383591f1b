"""The range-test loop that every integration drives.

``RangeTestState`` is the loop's state machine: it hands out the learning rate
of each step and takes the losses back, smoothing them and deciding when to
stop. ``range_test`` drives it with a ``step_fn``; callback-driven frameworks
(Keras) call ``lr_at`` and ``record`` from their hooks instead. Either way one
implementation decides every number in the result.
"""

from __future__ import annotations

import itertools
import math
import numbers
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ._errors import CurveWarning, InvalidArgumentError
from ._jsonio import json_copy
from ._result import STOP_COMPLETED, STOP_DIVERGED, STOP_ENDED, STOP_NON_FINITE, RangeTestResult
from ._schedules import MAX_STEPS, RAMPS, Schedule
from ._suggest import diagnose, turned_up
from ._validation import check_bool, check_callable, check_float, check_int, check_option, fail


class RangeTestState:
    """State of one LR range test: the ramp, the losses so far, the stop rule.

    Smoothing is the bias-corrected exponential moving average

    .. math:: m_t = \\beta m_{t-1} + (1 - \\beta)\\,\\ell_t, \\qquad
              \\hat\\ell_t = m_t / (1 - \\beta^{t+1})

    so the first points are not pulled toward zero. The test stops after the
    step whose raw loss is not finite, or whose smoothed loss has diverged:
    risen above the best smoothed loss so far, ``b``, by more than
    ``divergence_factor - 1`` times the depth ``d`` of that best,

    .. math:: \\hat\\ell_t - b > (f - 1)\\, d

    For a loss that has not gone below 0 the depth is the best itself (its
    floor is 0: ``d = b``), so the rule reads "exceeds ``divergence_factor``
    times its best". A loss that goes below 0 (a Gaussian negative
    log-likelihood, a loss with a constant offset) has no known floor, and
    neither has a best of exactly 0: the depth is then the larger of ``|b|``
    and the range the raw losses had covered when the best was reached (the
    fall so far, and the noise; the first five steps always count, since
    one or two losses show no noise), ``d = max(|b|, range)``. So no offset
    below 0 makes a falling or a flat curve diverge. A curve that has been
    exactly 0 all along has no depth and does not diverge.

    Args mirror :func:`range_test`; ``where`` names the caller in errors.
    ``max_lr`` is the largest rate the step can take (a float32 model's
    largest float, say): ``end_lr`` above it is refused, and the extension
    stops below it.
    """

    def __init__(
        self,
        *,
        start_lr: float,
        end_lr: float,
        num_steps: int,
        mode: str,
        smoothing: float,
        divergence_factor: float,
        stop_on_divergence: bool = True,
        extend: bool = False,
        where: str = "range_test",
        max_lr: float = sys.float_info.max,
        max_lr_reason: str = "",
    ) -> None:
        self.start_lr = check_float(start_lr, "start_lr", where=where, positive=True)
        self.end_lr = check_float(end_lr, "end_lr", where=where, positive=True)
        if self.end_lr <= self.start_lr:
            raise InvalidArgumentError(
                f"{where}: end_lr must be greater than start_lr ({self.start_lr!r}); got {self.end_lr!r}."
            )
        self._where = where
        self.max_lr = max_lr
        if self.end_lr > max_lr:
            fail(where, "end_lr", f"at most {max_lr:.4g}", end_lr, max_lr_reason)
        self.num_steps = check_int(num_steps, "num_steps", where=where, minimum=2)
        if self.num_steps > MAX_STEPS:
            fail(where, "num_steps", f"at most {MAX_STEPS} (a 64-bit count)", num_steps)
        self.mode = check_option(mode, "mode", RAMPS, where=where)
        self.smoothing = check_float(
            smoothing,
            "smoothing",
            where=where,
            minimum=0.0,
            maximum=1.0,
            open_maximum=True,
            fix="Use 0 for no smoothing; 0.98 is usual.",
        )
        self.divergence_factor = check_float(
            divergence_factor, "divergence_factor", where=where, minimum=1.0, open_minimum=True
        )
        self.stop_on_divergence = check_bool(stop_on_divergence, "stop_on_divergence", where=where)
        self.extend = check_bool(extend, "extend", where=where)
        self.schedule: Schedule = RAMPS[self.mode](self.start_lr, self.end_lr, self.num_steps)
        _check_distinct_rates(self, where)
        self._extension = self._extension_ramp() if self.extend else None
        #: The most steps the test may run: ``num_steps``, plus the extension's.
        self.max_steps = self.num_steps + (0 if self._extension is None else self._extension.num_steps - 1)
        # The ramp is tabulated a block at a time, as the test reaches it: a
        # huge num_steps costs nothing up front, and lr_at, which runs once
        # per training step, is a list lookup (Python floats).
        self._lrs: list[float] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self._average = 0.0
        self._best = math.inf
        # For the stop rule of losses that go below 0: whether one has, the
        # range of the raw losses so far, and that range when the best was set.
        self._negative = False
        self._low, self._high = math.inf, -math.inf
        self._spread = 0.0
        self.stop_reason: str | None = None

    @property
    def step(self) -> int:
        """Number of steps recorded so far."""
        return len(self.losses)

    @property
    def done(self) -> bool:
        return self.stop_reason is not None

    def _extension_ramp(self) -> Schedule | None:
        """The ramp past ``end_lr``: the same ratio (or increment) per step, ``num_steps`` more steps.

        Shortened so that no rate passes ``max_lr`` (the largest float by
        default); ``None`` if not one step fits.
        """
        n = self.num_steps
        if self.mode == "exponential":
            per_step = (math.log(self.end_lr) - math.log(self.start_lr)) / (n - 1)
            room = (math.log(self.max_lr) - math.log(self.end_lr)) / per_step
        else:
            per_step = (self.end_lr - self.start_lr) / (n - 1)
            room = (self.max_lr - self.end_lr) / per_step
        extra = n if room >= n else math.floor(room)
        if self.mode == "exponential":
            end = math.exp(math.log(self.end_lr) + per_step * extra)
        else:
            end = self.end_lr + per_step * extra
        if extra >= 1 and end > self.max_lr:
            extra -= 1  # rounding in exp took the last rate just past the limit
            end = (
                math.exp(math.log(self.end_lr) + per_step * extra)
                if self.mode == "exponential"
                else (self.end_lr + per_step * extra)
            )
        if extra < 1 or not math.isfinite(end) or end <= self.end_lr or end > self.max_lr:
            return None
        return RAMPS[self.mode](self.end_lr, end, extra + 1)

    def lr_at(self, step: int) -> float:
        """Learning rate of ``step`` (``0 <= step < max_steps``)."""
        if step < len(self._lrs):
            return self._lrs[step]
        return self._tabulate(step)

    def lrs_between(self, begin: int, end: int) -> Iterable[float]:
        """The rates of steps ``begin .. end - 1`` (``0 <= begin < end <= max_steps``), from the table.

        A list; past one block of steps, an iterator that tabulates a block
        at a time, so a huge chunk costs no huge table up front.
        """
        if end - begin > _BLOCK:
            return itertools.chain.from_iterable(
                self.lrs_between(start, min(start + _BLOCK, end)) for start in range(begin, end, _BLOCK)
            )
        if end > len(self._lrs):
            self._tabulate(end - 1)
        return self._lrs[begin:end]

    def chunks(self, size: int) -> Iterator[tuple[int, int]]:
        """``(begin, end)`` of each chunk of at most ``size`` steps whose losses are read together.

        The planned steps are cut into chunks from step 0, the extension's
        from step ``num_steps``: the last planned step ends a chunk, because
        whether the test goes on past ``end_lr`` is decided there.
        """
        for first, stop in ((0, self.num_steps), (self.num_steps, self.max_steps)):
            for begin in range(first, stop, size):
                yield begin, min(begin + size, stop)

    def _tabulate(self, step: int) -> float:
        """Extend the table of handed-out rates, a block at a time, to cover ``step``."""
        if not 0 <= step < self.max_steps:
            raise IndexError(f"step {step} is outside the ramp's {self.max_steps} steps")
        while step >= len(self._lrs):
            start = len(self._lrs)
            stop = min(self.max_steps, start + _BLOCK)
            steps = np.arange(start, stop)
            if self._extension is None or stop <= self.num_steps:
                rates = self.schedule(steps)
            else:
                # Step num_steps - 1 is the extension's step 0: end_lr itself.
                inside = steps[steps < self.num_steps]
                past = steps[steps >= self.num_steps] - (self.num_steps - 1)
                rates = np.concatenate([self.schedule(inside), self._extension(past)])
            self._lrs.extend(rates.tolist())
        return self._lrs[step]

    def record(self, losses: Sequence[float]) -> bool:
        """Record the raw losses of the next steps; return ``True`` once stopped.

        Losses past the stopping step are ignored: they come from steps that
        ran only because their losses were read in a batch, and the result
        must not depend on how losses were batched.
        """
        for raw in losses:
            if self.stop_reason is not None:
                break
            self._record_one(as_loss(raw, source=f"{self._where}: each recorded loss", returned=False))
        return self.stop_reason is not None

    def _record_one(self, loss: float) -> None:
        t = len(self.losses)
        beta = self.smoothing
        self.losses.append(loss)
        if not math.isfinite(loss):
            self.smoothed.append(math.nan)
            self.stop_reason = STOP_NON_FINITE
            return
        self._average = beta * self._average + (1.0 - beta) * loss
        smooth = self._average / (1.0 - beta ** (t + 1))
        self.smoothed.append(smooth)
        self._negative = self._negative or loss < 0.0
        self._low, self._high = min(self._low, loss), max(self._high, loss)
        if t < _SPREAD_STEPS:
            self._spread = self._high - self._low
        if self.stop_on_divergence and t > 0 and self._diverged(smooth):
            self.stop_reason = STOP_DIVERGED
        else:
            if smooth <= self._best:
                self._spread = self._high - self._low
            self._best = min(self._best, smooth)
            if t + 1 == self.max_steps:
                self.stop_reason = STOP_COMPLETED
            elif t + 1 == self.num_steps and turned_up(self.losses, num_steps=self.num_steps):
                # With extend, the ramp goes on past end_lr only while the loss has not turned up.
                self.stop_reason = STOP_COMPLETED

    def _diverged(self, smooth: float) -> bool:
        """Whether ``smooth`` rose past the best by over ``divergence_factor - 1`` depths (see the class)."""
        best = self._best
        if best > 0.0 and not self._negative:
            return smooth > self.divergence_factor * best
        depth = max(abs(best), self._spread)
        return depth > 0.0 and smooth - best > (self.divergence_factor - 1.0) * depth

    def result(
        self, info: Mapping[str, Any] | None = None, *, short_fix: str | None = None
    ) -> RangeTestResult:
        """The recorded test as an immutable :class:`RangeTestResult`, its curve diagnosed.

        Args:
            info: Facts about the run, JSON values.
            short_fix: How to run every planned step, in the words of the
                integration, for the "ran short" warning.
        """
        n = len(self.losses)
        if n:
            self.lr_at(n - 1)  # the handed-out rates, exactly
        lrs = np.array(self._lrs[:n], dtype=np.float64)
        stop_reason = self.stop_reason or STOP_ENDED
        facts = dict(info or {})
        end_lr, num_steps = self.end_lr, self.num_steps
        if n > self.num_steps:
            # The test went past end_lr: the result describes the ramp that ran.
            facts["extension"] = {
                "planned_end_lr": self.end_lr,
                "planned_num_steps": self.num_steps,
                "extra_steps": n - self.num_steps,
            }
            end_lr, num_steps = float(lrs[-1]), n
        return RangeTestResult(
            lrs=lrs,
            losses=np.asarray(self.losses, dtype=np.float64),
            smoothed_losses=np.asarray(self.smoothed, dtype=np.float64),
            stop_reason=stop_reason,
            start_lr=self.start_lr,
            end_lr=end_lr,
            num_steps=num_steps,
            mode=self.mode,
            smoothing=self.smoothing,
            divergence_factor=self.divergence_factor,
            info=facts,
            warnings=diagnose(
                lrs,
                self.losses,
                num_steps=num_steps,
                end_lr=end_lr,
                stop_reason=stop_reason,
                short_fix=short_fix,
            ),
        )


def warn_about(result: RangeTestResult, *, stacklevel: int = 2) -> RangeTestResult:
    """Emit each of ``result.warnings`` as a :class:`~lrscout.CurveWarning`; return ``result``."""
    for message in result.warnings:
        warnings.warn(message, CurveWarning, stacklevel=stacklevel + 1)
    return result


#: The first steps whose raw losses all count in the range of a loss that goes below 0:
#: one or two losses tell nothing of its noise.
_SPREAD_STEPS = 5
#: Steps of the ramp tabulated at a time.
_BLOCK = 4096


def as_loss(value: Any, *, source: str = "step_fn", returned: bool = True) -> float:
    """A step's loss as a ``float``: a real number, or a one-element array or tensor.

    The one loss check: ``range_test`` applies it to what ``step_fn`` and
    ``read_losses`` return, and ``RangeTestState.record`` to the losses it
    is given. Booleans are refused in every form (``True``, ``numpy.bool_``,
    a boolean array or tensor): a flag is not a loss.

    Raises:
        InvalidArgumentError: For anything else (``None``, a string, a
            boolean, an array of several elements), naming ``source`` and
            what it gave.
    """
    if type(value) is float:
        return value
    if not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Real):
        return float(value)
    problem = _loss_problem(value)
    if problem is not None:
        verb = "return the step's loss as" if returned else "be"
        raise InvalidArgumentError(
            f"{source} must {verb} a real number (a float, or a one-element array or tensor); "
            f"got {_describe(value)} ({problem})."
        )
    return float(np.asarray(value).reshape(())) if isinstance(value, np.ndarray) else float(value)


def _loss_problem(value: Any) -> str | None:
    """Why ``value`` is not a loss, or ``None`` if it is one."""
    if value is None or isinstance(value, (str, bytes)) or not hasattr(value, "__float__"):
        return "not a number"
    dtype = getattr(value, "dtype", None)
    boolean = getattr(dtype, "kind", None) == "b" or str(dtype) == "torch.bool"
    if boolean or isinstance(value, (bool, np.bool_)):
        return "a boolean, not a number"
    if (value.numel() if callable(getattr(value, "numel", None)) else getattr(value, "size", 1)) != 1:
        return "not one element"
    if np.iscomplexobj(value):
        return "complex"
    return None


def _describe(value: Any) -> str:
    shape = getattr(value, "shape", None)
    kind = type(value).__name__
    return f"{kind} of shape {tuple(shape)}" if shape is not None else f"{kind} {value!r:.60}"


def _read_floats(pending: list[Any]) -> list[float]:
    return [as_loss(loss) for loss in pending]


def read_chunk(read: Callable[[list[Any]], Sequence[float]], pending: list[Any], where: str) -> list[float]:
    """``read(pending)`` as floats, one per value given (once per chunk, never per step).

    What ``read`` returns passes the one loss check (:func:`as_loss`) under
    the name ``read_losses``.
    """
    if not pending:
        return []
    returned: Any = read(pending)
    if isinstance(returned, (str, bytes)) or not isinstance(returned, Iterable):
        raise InvalidArgumentError(
            f"{where}: read_losses must return a sequence of losses, one per step it is given "
            f"({len(pending)}); got {_describe(returned)}."
        )
    values = [as_loss(value, source=f"{where}: read_losses") for value in returned]
    if len(values) != len(pending):
        raise InvalidArgumentError(
            f"{where}: read_losses must return one loss per step it is given ({len(pending)}); "
            f"got {len(values)}."
        )
    return values


def _check_distinct_rates(state: RangeTestState, where: str) -> None:
    """Refuse a ramp whose steps would repeat a learning rate (``end_lr`` a float or two above ``start_lr``).

    A ramp's rates are computed to a few hundred units in the last place
    (``exp`` of a sum of logs); when the planned step between rates is
    larger than that, every rate differs from the next. Below it, a short
    ramp is tabulated and checked; a long one is refused.
    """
    n, a, b = state.num_steps, state.start_lr, state.end_lr
    # The planned step between rates, relative to the rates.
    step = (math.log(b) - math.log(a)) / (n - 1) if state.mode == "exponential" else (b - a) / (n - 1) / b
    if step > _MIN_RELATIVE_STEP:
        return
    if n <= _BLOCK:
        rates = state.schedule(np.arange(n))
        if np.all(np.diff(rates) > 0):
            return
    fail(
        where,
        "end_lr",
        f"far enough above start_lr ({a!r}) for {n} distinct learning rates (num_steps)",
        b,
        "Widen the range (e.g. end_lr = 10 * start_lr) or plan fewer num_steps.",
    )


#: The smallest relative step between planned rates that is sure to survive rounding.
_MIN_RELATIVE_STEP = 1e-12


def range_test(
    step_fn: Callable[[float], Any],
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    mode: str = "exponential",
    smoothing: float = 0.98,
    divergence_factor: float = 4.0,
    stop_on_divergence: bool = True,
    extend: bool = False,
    sync_every: int = 1,
    read_losses: Callable[[list[Any]], Sequence[float]] | None = None,
    progress: bool = True,
    info: Mapping[str, Any] | None = None,
    max_lr: float = sys.float_info.max,
) -> RangeTestResult:
    """Run an LR range test (Smith 2017): train with a rising LR, record the loss.

    Step ``t`` calls ``step_fn(lr_t)``, which must train one step at that
    learning rate and return the loss of that step. The learning rate follows
    the ramp from ``start_lr`` to ``end_lr`` (both exact); the test stops early
    when the smoothed loss exceeds ``divergence_factor`` times its best value
    (for losses that reach 0 or below, rises above it by ``divergence_factor
    - 1`` times its depth) or a loss is not finite. See
    :class:`RangeTestState` for the smoothing and the stop rule.

    Args:
        step_fn: ``step_fn(lr) -> loss``; the loss may be anything ``float()``
            accepts, or anything ``read_losses`` accepts. Raising
            ``StopIteration`` (its data ran out) ends the test there, with
            ``stop_reason == "ended"``.
        start_lr: First learning rate, positive.
        end_lr: Last learning rate, greater than ``start_lr``.
        num_steps: Most steps to run, at least 2.
        mode: ``"exponential"`` (constant ratio between steps) or ``"linear"``.
        smoothing: EMA factor ``beta`` in [0, 1); 0 disables smoothing.
        divergence_factor: Stop once the smoothed loss exceeds this multiple
            (> 1) of its best value (see :class:`RangeTestState` for losses
            of any sign).
        stop_on_divergence: ``False`` runs all ``num_steps`` unless a loss is
            not finite.
        extend: When the smoothed loss has not turned up by ``end_lr`` (its
            minimum lies in the last 5 % of the steps), keep ramping at the
            same ratio per step (the same increment for a linear ramp) until
            the test stops on divergence, for at most ``num_steps`` more
            steps (the cap: twice the planned range on the ramp's scale, and
            never past the largest float). The result then describes the
            ramp that ran (``end_lr`` its last rate, ``num_steps`` its steps)
            and ``info["extension"]`` keeps the plan and the extra steps.
        sync_every: Read losses in chunks of this many steps. Divergence is
            then decided at chunk ends; the steps run past the stop are not
            recorded, so the result does not depend on this value.
        read_losses: Turns a chunk of ``step_fn`` return values into floats
            (e.g. one device-to-host copy for a chunk of tensors). Defaults to
            ``float()`` on each.
        progress: Show a tqdm bar where someone can watch it: on a terminal,
            or in a notebook with ipywidgets (tqdm.auto's widget); never in
            a pipe, file or log (tqdm's ``disable=None``). The same default
            and meaning in every integration.
        info: JSON-serialisable facts to keep in ``result.info``.
        max_lr: The largest learning rate ``step_fn`` can take (a float32
            model's largest float, say): ``end_lr`` above it is refused, and
            ``extend`` stops short of it. The largest float by default.

    Returns:
        The :class:`RangeTestResult`.

    Raises:
        TypeError, ValueError: On bad arguments, before any step runs.

    Example:
        Gradient descent on ``f(w) = w**2 / 2`` diverges once ``lr > 2``:

        >>> w = [1.0]
        >>> def step_fn(lr):
        ...     loss = 0.5 * w[0] ** 2
        ...     w[0] -= lr * w[0]
        ...     return loss
        >>> result = range_test(step_fn, start_lr=1e-3, end_lr=100.0, num_steps=50)
        >>> result.stop_reason
        'diverged'
        >>> bool(result.lrs[-1] > 2.0)
        True
    """
    where = "range_test"
    check_callable(step_fn, "step_fn", where=where)
    state = RangeTestState(
        start_lr=start_lr,
        end_lr=end_lr,
        num_steps=num_steps,
        mode=mode,
        smoothing=smoothing,
        divergence_factor=divergence_factor,
        stop_on_divergence=stop_on_divergence,
        extend=extend,
        where=where,
        max_lr=check_float(max_lr, "max_lr", where=where, positive=True),
    )
    chunk = check_int(sync_every, "sync_every", where=where, minimum=1)
    facts = json_copy(info, where=where)
    if read_losses is not None:
        check_callable(read_losses, "read_losses", where=where)
    read = read_losses or _read_floats
    show = check_bool(progress, "progress", where=where)
    bar = _progress_bar(state.num_steps) if show else None
    try:
        for begin, end in state.chunks(chunk):
            # The step runs what it must and no more: the chunk's rates come
            # from the table, and the reads, the stop rule and the bar wait
            # for its end.
            pending: list[Any] = []
            append = pending.append
            exhausted = False
            try:
                for lr in state.lrs_between(begin, end):
                    append(step_fn(lr))
            except StopIteration:
                # The data ran out: keep the steps that ran; the result says "ended".
                exhausted = True
            if pending:
                recorded = state.step
                stopped = state.record(read_chunk(read, pending, where))
                if bar is not None:
                    if state.step > state.num_steps and bar.total != state.max_steps:
                        bar.total = state.max_steps
                    bar.update(state.step - recorded)
                    bar.set_postfix(
                        lr=f"{state.lr_at(state.step - 1):.2e}",
                        loss=f"{state.smoothed[-1]:.4g}",
                        refresh=False,
                    )
                if stopped:
                    break
            if exhausted:
                break
    finally:
        if bar is not None:
            bar.close()
    return warn_about(state.result(facts))


def _progress_bar(total: int) -> Any:
    """A tqdm bar over ``total`` steps where someone can watch it; ``None`` where no one can.

    What ``progress=True``, the default of the core and of every
    integration, means: in a notebook kernel, ``tqdm.auto``'s widget when
    ipywidgets is installed, and no bar without it (tqdm's text fallback
    would fill the cell with a red stderr box); elsewhere tqdm's text bar on
    stderr with tqdm's own ``disable=None``: shown on a terminal, off when
    stderr is a pipe, a file or a CI log, where every redraw would stay as a
    line of carriage returns.
    """
    import importlib.util

    if "ipykernel.zmqshell" in sys.modules:
        if importlib.util.find_spec("ipywidgets") is None:
            return None
        from tqdm.auto import tqdm
    elif sys.stderr is None:  # pythonw, a daemon: nowhere to draw
        return None
    else:
        from tqdm.std import tqdm
    try:
        bar = tqdm(total=total, desc="LR range test", unit="step", leave=False, disable=None)
    except (ValueError, AttributeError, OSError):  # a replaced or closed stream
        return None
    return None if bar.disable else bar
