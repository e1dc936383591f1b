"""The result of an LR range test, shared by every integration."""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ._errors import InvalidArgumentError, NoSuggestionError
from ._jsonio import (
    PathOrFile,
    Source,
    check_header,
    decode_floats,
    encode_float,
    json_copy,
    read_json,
    write_json,
    write_text,
)
from ._plan import SCHEDULE_OPTIONS, Plan, check_total_steps
from ._schedules import MAX_STEPS, RAMPS
from ._suggest import METHODS, REFINE_FACTORS, SMOOTHED_RULES, _huge_scale, auto, lr_range, nearest_index
from ._validation import check_float, check_int, check_option, fail
from .plotting import plot_lr_schedule, plot_range_test

if TYPE_CHECKING:
    from matplotlib.axes import Axes

STOP_COMPLETED = "completed"
STOP_DIVERGED = "diverged"
STOP_NON_FINITE = "non-finite"
STOP_ENDED = "ended"

STOP_REASONS = {
    STOP_COMPLETED: "ran all num_steps",
    STOP_DIVERGED: "the smoothed loss exceeded divergence_factor times its best value (below 0: rose past "
    "it by divergence_factor - 1 times its depth)",
    STOP_NON_FINITE: "a loss was NaN or infinite",
    STOP_ENDED: "training ended before num_steps (data or epochs ran out)",
}

_FORMAT = "lrscout.RangeTestResult"
_VERSION = 1
#: The per-step arrays of a result file.
_CURVES = ("lrs", "losses", "smoothed_losses")

#: Half-width of the trend's running median, as a share of the steps (at least 1, at most 25).
_TREND_WIDTH = 0.04


def loss_trend(losses: npt.ArrayLike) -> np.ndarray:
    """The curve a range-test plot draws through the points: a running median, lightly smoothed.

    The median of each step's neighbours ``i - h .. i + h`` (fewer at the
    ends), ``h`` = 4 % of the steps (at least 1, at most 25), then a Gaussian
    of width ``h / 2`` over that. A median follows the points where they are:
    it does not sit below them at the knee (an average of logarithms does),
    nor rise before a diverging tail because of a few huge losses (any
    average does), nor lag behind them (the EMA in ``smoothed_losses``
    does). NaN from the first non-finite loss on.

    Example:
        >>> loss_trend([5.0, 4.0, 3.0, 100.0, 2.0, 1.0]).round(2).tolist()  # the 100 leaves no bump
        [4.44, 4.05, 3.89, 3.0, 2.05, 1.56]
    """
    values = np.asarray(losses, dtype=np.float64).reshape(-1)
    out = np.full(len(values), np.nan)
    finite = np.isfinite(values)
    n = len(values) if finite.all() else int(np.argmin(finite))
    if n == 0:
        return out
    scale = _huge_scale(values[:n])
    if scale != 1.0:
        # Losses near the largest float: the median's and the Gaussian's sums
        # are taken in units of the largest, where they cannot overflow.
        out[:n] = loss_trend(values[:n] / scale) * scale
        return out
    h = int(min(25, max(1, round(_TREND_WIDTH * n))))
    padded = np.concatenate([np.full(h, np.nan), values[:n], np.full(h, np.nan)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * h + 1)
    median = np.nanmedian(windows, axis=1)
    sigma = h / 2
    radius = min(n - 1, math.ceil(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    # Normalised at the ends: each point averages only the medians that exist.
    weights = np.convolve(np.ones(n), kernel)[radius : radius + n]
    out[:n] = np.convolve(median, kernel)[radius : radius + n] / weights
    return out


@dataclass(frozen=True)
class Suggestion:
    """A suggested learning rate.

    Attributes:
        lr: The learning rate: for a decaying schedule, its peak.
        method: The rule that chose it (see :meth:`RangeTestResult.suggest`).
        index: The step of the result whose learning rate is nearest to
            ``lr`` on a log scale (``lr`` itself need not be a tested value,
            e.g. ``"minimum"`` divides by 10).
        schedule: The schedule the rate is for (``"constant"``,
            ``"one_cycle"``, ``"cosine"``, ``"linear"``); ``None`` for the
            peer libraries' rules, which do not read the plan.
        total_steps: The optimizer steps of the training it is for; ``None``
            when they were not known (the rule assumed a typical length).
    """

    lr: float
    method: str
    index: int
    schedule: str | None = None
    total_steps: int | None = None

    def __float__(self) -> float:
        return self.lr


@dataclass(frozen=True, eq=False)
class RangeTestResult:
    """An LR range test as recorded: one entry per step that ran.

    Attributes:
        lrs: Learning rate of each step.
        losses: Raw loss of each step (the training batch's loss, or the
            validation loss where one was used).
        smoothed_losses: Bias-corrected EMA of ``losses`` (NaN from a
            non-finite loss on).
        stop_reason: ``"completed"``, ``"diverged"``, ``"non-finite"`` or
            ``"ended"``; :data:`STOP_REASONS` explains each.
        start_lr, end_lr, num_steps, mode, smoothing, divergence_factor:
            The settings the test ran with.
        info: Facts about the run (framework, batch size, ...), JSON values.
        warnings: What the curve cannot support (:class:`lrscout.CurveWarning`
            messages, see ``lrscout._suggest.diagnose``); empty when nothing.

    Example:
        >>> lrs = np.geomspace(1e-4, 10.0, 40)
        >>> curve = 1.0 / (1.0 + 30.0 * lrs) + np.where(lrs > 0.3, (lrs - 0.3) ** 2, 0.0)
        >>> result = RangeTestResult(lrs=lrs, losses=curve, smoothed_losses=curve,
        ...     stop_reason="completed", start_lr=1e-4, end_lr=10.0, num_steps=40,
        ...     mode="exponential", smoothing=0.0, divergence_factor=4.0)
        >>> len(result), round(result.suggest("minimum").lr, 4)
        (40, 0.0389)
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed_losses: np.ndarray
    stop_reason: str
    start_lr: float
    end_lr: float
    num_steps: int
    mode: str
    smoothing: float
    divergence_factor: float
    info: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        where = "RangeTestResult"
        arrays = {}
        for name in ("lrs", "losses", "smoothed_losses"):
            array = np.array(getattr(self, name), dtype=np.float64, copy=True)
            if array.ndim != 1:
                raise InvalidArgumentError(
                    f"{where}: {name} must be one-dimensional; got shape {array.shape}."
                )
            array.flags.writeable = False
            arrays[name] = array
        n = len(arrays["lrs"])
        for name in ("losses", "smoothed_losses"):
            if len(arrays[name]) != n:
                raise InvalidArgumentError(
                    f"{where}: {name} must have one entry per learning rate ({n}); got {len(arrays[name])}."
                )
        if n and not (np.all(np.isfinite(arrays["lrs"])) and np.all(arrays["lrs"] > 0)):
            raise InvalidArgumentError(f"{where}: lrs must be positive and finite; got {arrays['lrs']!r}.")
        if np.any(np.diff(arrays["lrs"]) <= 0):
            raise InvalidArgumentError(f"{where}: lrs must be strictly increasing; got {arrays['lrs']!r}.")
        settings: dict[str, Any] = {
            "start_lr": check_float(self.start_lr, "start_lr", where=where, positive=True),
            "end_lr": check_float(self.end_lr, "end_lr", where=where, positive=True),
            "num_steps": check_int(
                self.num_steps,
                "num_steps",
                where=where,
                minimum=max(2, n),
                fix="One entry per step that ran.",
            ),
            "mode": check_option(self.mode, "mode", RAMPS, where=where),
            "smoothing": check_float(
                self.smoothing, "smoothing", where=where, minimum=0.0, maximum=1.0, open_maximum=True
            ),
            "divergence_factor": check_float(
                self.divergence_factor, "divergence_factor", where=where, minimum=1.0, open_minimum=True
            ),
        }
        if settings["num_steps"] > MAX_STEPS:
            fail(where, "num_steps", f"at most {MAX_STEPS} (a 64-bit count)", self.num_steps)
        if settings["end_lr"] <= settings["start_lr"]:
            fail(where, "end_lr", f"greater than start_lr ({settings['start_lr']!r})", self.end_lr)
        if not isinstance(self.stop_reason, str) or self.stop_reason not in STOP_REASONS:
            raise InvalidArgumentError(
                f"{where}: stop_reason must be one of {', '.join(map(repr, STOP_REASONS))}; "
                f"got {self.stop_reason!r}."
            )
        info = json_copy(self.info, where=where)
        Plan.from_info(info, where)  # a plan that cannot be read fails here, not in suggest()
        if "refinement" in info:
            _check_refinement(info["refinement"], arrays["lrs"], where)
        notes: Any = self.warnings
        if isinstance(notes, (str, bytes)) or not isinstance(notes, (tuple, list)):
            fail(where, "warnings", "a tuple of strings", notes)
        if not all(isinstance(note, str) for note in notes):
            fail(where, "warnings", "a tuple of strings", notes)
        settings["warnings"] = tuple(notes)
        for name, value in {**arrays, **settings}.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "info", MappingProxyType(info))

    def __len__(self) -> int:
        return len(self.lrs)

    @cached_property
    def trend(self) -> np.ndarray:
        """The curve the plot draws through the points (:func:`loss_trend` of ``losses``).

        Derived from ``losses``; saved with them (``"trend"`` in the JSON, a
        ``trend`` column in the CSV) so that a plot made from the files is the
        plot :meth:`plot` draws. ``smoothed_losses``, the EMA that the
        divergence stop reads, lags behind the points.
        """
        trend = loss_trend(self.losses)
        trend.flags.writeable = False
        return trend

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RangeTestResult):
            return NotImplemented
        return (
            all(
                np.array_equal(getattr(self, name), getattr(other, name), equal_nan=True)
                for name in ("lrs", "losses", "smoothed_losses")
            )
            and self._settings() == other._settings()
            and dict(self.info) == dict(other.info)
            and self.warnings == other.warnings
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        """One line: the suggestion first (as fastai's ``SuggestedLRs`` shows its rates), then the test.

        Example:
            >>> lrs = np.geomspace(1e-4, 10.0, 40)
            >>> curve = 1.0 / (1.0 + 30.0 * lrs) + np.where(lrs > 0.3, (lrs - 0.3) ** 2, 0.0)
            >>> result = RangeTestResult(lrs=lrs, losses=curve, smoothed_losses=curve,
            ...     stop_reason="completed", start_lr=1e-4, end_lr=10.0, num_steps=40,
            ...     mode="exponential", smoothing=0.0, divergence_factor=4.0)
            >>> result  # doctest: +ELLIPSIS
            RangeTestResult(suggestion=... (auto), lr_range=(..., ...), 40/40 steps, ...)
        """
        span = f"{self.lrs[0]:.3g}..{self.lrs[-1]:.3g}" if len(self) else "empty"
        try:
            chosen = self.suggestion
            base, peak = self.lr_range()
            suggested = f"suggestion={chosen.lr:.3g} ({chosen.method}), lr_range=({base:.3g}, {peak:.3g})"
        except NoSuggestionError:
            suggested = "suggestion=None"
        notes = f", {len(self.warnings)} warnings" if self.warnings else ""
        return (
            f"RangeTestResult({suggested}, {len(self)}/{self.num_steps} steps, lr {span}, "
            f"stop_reason={self.stop_reason!r}{notes})"
        )

    def _settings(self) -> dict[str, Any]:
        return {
            "stop_reason": self.stop_reason,
            "start_lr": self.start_lr,
            "end_lr": self.end_lr,
            "num_steps": self.num_steps,
            "mode": self.mode,
            "smoothing": self.smoothing,
            "divergence_factor": self.divergence_factor,
        }

    # Suggestions -----------------------------------------------------------

    def suggest(
        self, method: str | None = None, *, schedule: str | None = None, total_steps: int | None = None
    ) -> Suggestion:
        """Suggest a learning rate from the curve, for the training you will run.

        Methods (the rules are functions of arrays in ``lrscout._suggest``):
            ``None`` (default): ``"refined"`` after a refinement stage, else
            ``"auto"``.
            ``"auto"``: lrscout's rule: the learning rate where the smoothed
            loss bottoms out, divided by a margin that depends on the
            optimizer (plain SGD, heavy-ball momentum, Adam and other
            optimizers that divide by a running gradient RMS, Adagrad), the
            batch size and the plan: the schedule, and how many times longer
            than the test the training runs. The margins are fitted on a
            generated family of tasks (``benchmarks/fit_rule.py``). It reads
            the run's facts from ``info``: ``"optimizer"`` (class name),
            ``"momentum"`` (a number in [0, 1)) and ``"batch_size"`` (a
            positive integer; ``None`` is the whole set). A fact missing or
            out of range counts as not known.
            ``"refined"``: the refinement stage's choice (``find_lr(refine=...)``),
            moved to another plan as ``"auto"`` moves.
            ``"valley"``: fastai's ``valley``, about half way along the
            longest descent of the smoothed loss.
            ``"steepest"``: torch-lr-finder's suggestion, the steepest fall of
            the smoothed loss.
            ``"minimum"``: fastai's ``minimum``, the learning rate of the
            lowest smoothed loss divided by 10.
            The three peer rules read the stored EMA curve as their libraries
            do (same ends cut), once the curve shows a real fall; they do not
            read the plan (their suggestion's ``schedule`` is ``None``).

        Args:
            method: The rule, as above.
            schedule: The schedule you will train with: ``"constant"``,
                ``"one_cycle"``, ``"cosine"``, ``"linear"`` (decay after a
                warm-up), or ``"auto"``; ``None`` and ``"auto"`` take the plan
                the test recorded (``info["plan"]``: what ``find_lr`` was
                given or read from the framework), else ``"constant"``.
            total_steps: Optimizer steps of that training; ``None`` takes the
                recorded plan's, else the rule assumes a typical length.

        Returns:
            The :class:`Suggestion`; for a decaying schedule its ``lr`` is the
            schedule's peak, and ``schedule`` / ``total_steps`` say which
            plan it is for.

        Raises:
            InvalidArgumentError: If the method or the plan is not valid.
            NoSuggestionError: If the curve is too short or the loss never
                decreased (the message says what to try).
        """
        if method is None:
            method = "refined" if "refinement" in self.info else "auto"
        name = check_option(method, "method", METHODS, where="suggest")
        plan = self.plan(schedule=schedule, total_steps=total_steps)
        if name in SMOOTHED_RULES:
            lr = SMOOTHED_RULES[name](self.lrs, self.losses, self.smoothed_losses, num_steps=self.num_steps)
            return Suggestion(lr=lr, method=name, index=nearest_index(self.lrs, lr))
        record: Any = self.info.get("refinement")
        if name == "refined" and record is None:
            raise NoSuggestionError(
                "suggest: method 'refined' needs the refinement stage; run find_lr with refine=True."
            )
        lr = self._auto(plan)
        if name == "refined":
            # The probes measured how far the rule's rate was off for the plan they were run for;
            # another plan moves the rate as the rule moves it.
            refined_for = Plan.from_info({"plan": record["plan"]}) if "plan" in record else self.plan()
            lr = float(record["lr"]) * lr / self._auto(refined_for)
        return Suggestion(
            lr=lr,
            method=name,
            index=nearest_index(self.lrs, lr),
            schedule=plan.schedule,
            total_steps=plan.total_steps,
        )

    def plan(self, *, schedule: str | None = None, total_steps: int | None = None) -> Plan:
        """The plan :meth:`suggest` uses: the arguments given, then the plan recorded in ``info``."""
        recorded = Plan.from_info(self.info)
        name = check_option(
            "auto" if schedule is None else schedule, "schedule", SCHEDULE_OPTIONS, where="suggest"
        )
        steps = check_total_steps(total_steps, where="suggest")
        return Plan(
            schedule=recorded.schedule if name == "auto" else name,
            total_steps=recorded.total_steps if steps is None else steps,
            source=recorded.source if name == "auto" and steps is None else "argument",
        )

    def _auto(self, plan: Plan) -> float:
        return auto(
            self.lrs,
            self.losses,
            num_steps=self.num_steps,
            schedule=plan.schedule,
            total_steps=plan.total_steps,
            **self._run_facts(),
        )

    def _run_facts(self) -> dict[str, Any]:
        """What the default rule reads from ``info``: the one place it is read."""
        optimizer: Any = self.info.get("optimizer")
        momentum: Any = self.info.get("momentum")
        batch: Any = self.info.get("batch_size")
        return {
            "optimizer": optimizer if isinstance(optimizer, str) else None,
            "momentum": float(momentum) if _is_number(momentum) and 0.0 <= momentum < 1.0 else 0.0,
            "batch_size": batch
            if isinstance(batch, int) and not isinstance(batch, bool) and batch > 0
            else None,
        }

    @property
    def suggestion(self) -> Suggestion:
        """The default suggestion for the recorded plan: ``suggest()``."""
        return self.suggest()

    def lr_range(self, *, total_steps: int | None = None) -> tuple[float, float]:
        """``(base_lr, max_lr)`` for cyclic and one-cycle schedules.

        ``max_lr`` is the default suggestion for a one-cycle plan
        (``suggest(schedule="one_cycle")``, over ``total_steps`` or the
        recorded plan's), ``base_lr`` an eighth of it: Smith (2017) starts a
        cycle well below its peak. Use ``max_lr`` as ``OneCycleLR``'s
        ``max_lr`` and ``max_lr / base_lr`` as its ``div_factor``.

        Raises:
            NoSuggestionError: When the default suggestion cannot be made.
        """
        return lr_range(self.suggest(schedule="one_cycle", total_steps=total_steps).lr)

    # Plots -----------------------------------------------------------------

    def plot(self, ax: Axes | None = None, path: str | os.PathLike[str] | None = None, **kwargs: Any) -> Axes:
        """Plot loss against learning rate (log x), suggestion and range marked.

        Args:
            ax: Axes to draw on; a new figure when ``None``.
            path: Save the figure there (format from the extension).
            **kwargs: ``suggestion=False`` / ``lr_range=False`` leave the marks out;
                ``title`` sets the title.

        Returns:
            The matplotlib ``Axes``.
        """
        return plot_range_test(self, ax=ax, path=path, **kwargs)

    def plot_lr(self, ax: Axes | None = None, path: str | os.PathLike[str] | None = None) -> Axes:
        """Plot learning rate against step (log y for the exponential ramp)."""
        return plot_lr_schedule(self, ax=ax, path=path)

    def _repr_html_(self) -> str:
        """The plot and a table (suggestion, ``lr_range()``, why it stopped, warnings) in a notebook.

        A terminal keeps :meth:`__repr__`; a curve without a suggestion
        still renders, with the reason in the table.
        """
        from .plotting._plots import figure_html

        try:
            chosen = self.suggestion
            base, peak = self.lr_range()
            rows = [
                ["suggested lr", f"{chosen.lr:.3g} ({chosen.method})"],
                ["lr_range()", f"{base:.3g} .. {peak:.3g}"],
            ]
        except NoSuggestionError as error:
            rows = [["suggested lr", f"none: {str(error).removeprefix('suggest: ')}"], ["lr_range()", "none"]]
        span = f", lr {self.lrs[0]:.3g} .. {self.lrs[-1]:.3g}" if len(self) else ""
        rows.append(
            [
                "stopped",
                f"{self.stop_reason} ({STOP_REASONS[self.stop_reason]}): "
                f"{len(self)} of {self.num_steps} steps{span}",
            ]
        )
        rows.extend(["warning", message] for message in self.warnings)
        return figure_html(lambda figure: self.plot(ax=figure.subplots()), rows, alt="LR range test")

    # Files -----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; non-finite losses become ``"nan"``, ``"inf"`` or ``"-inf"``.

        Besides the curve and settings it holds ``"summary"``, derived from
        them for scripts (``from_dict`` ignores it): ``suggestion``
        (``{"lr", "method"}`` of the default suggestion, or ``None`` when the
        curve gives none), ``lr_range`` (``[base_lr, max_lr]`` or ``None``),
        ``stop_reason`` and ``warnings``.

        Example:
            >>> lrs = np.geomspace(1e-4, 1.0, 5)
            >>> result = RangeTestResult(lrs=lrs, losses=[1.0, 1.0, 1.0, 1.0, 1.0],
            ...     smoothed_losses=[1.0] * 5, stop_reason="completed", start_lr=1e-4,
            ...     end_lr=1.0, num_steps=5, mode="exponential", smoothing=0.0, divergence_factor=4.0)
            >>> result.to_dict()["summary"]
            {'suggestion': None, 'lr_range': None, 'stop_reason': 'completed', 'warnings': []}
        """
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "summary": self._summary(),
            **self._settings(),
            "info": dict(self.info),
            "warnings": list(self.warnings),
            "lrs": [float(x) for x in self.lrs],
            "losses": [encode_float(x) for x in self.losses],
            "smoothed_losses": [encode_float(x) for x in self.smoothed_losses],
            "trend": [encode_float(x) for x in self.trend],
        }

    def _summary(self) -> dict[str, Any]:
        """What a script reads first: the suggestion and range (``None`` when there is none), why it ended."""
        try:
            chosen: Suggestion | None = self.suggestion
        except NoSuggestionError:
            chosen = None
        return {
            "suggestion": None
            if chosen is None
            else {
                "lr": chosen.lr,
                "method": chosen.method,
                "schedule": chosen.schedule,
                "total_steps": chosen.total_steps,
            },
            "lr_range": None if chosen is None else list(self.lr_range()),
            "stop_reason": self.stop_reason,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RangeTestResult:
        """Rebuild a result from :meth:`to_dict` output, checking every field (``summary``: ignored)."""
        return cls._from_mapping(data, "RangeTestResult.from_dict")

    @classmethod
    def _from_mapping(cls, data: Any, where: str) -> RangeTestResult:
        data = check_header(data, where, _FORMAT, _VERSION, "result")
        expected = {"format", "version", "info", "lrs", "losses", "smoothed_losses", *cls._fields_settings()}
        missing = expected - set(data)
        expected.add("warnings")  # optional: files written before it existed have none
        expected.add("summary")  # optional and derived from the rest: read by scripts, not here
        expected.add("trend")  # the same: derived from the losses
        extra = set(data) - expected
        if missing or extra:
            raise InvalidArgumentError(
                f"{where}: fields missing {sorted(missing)}, unexpected {sorted(extra)}."
            )
        if not isinstance(data["info"], dict):
            fail(where, "info", "an object", data["info"])
        fields: dict[str, Any] = {name: data[name] for name in cls._fields_settings()}
        for name in _CURVES:
            fields[name] = decode_floats(data[name], name, where)
        return cls(**fields, info=data["info"], warnings=data.get("warnings", ()))

    @staticmethod
    def _fields_settings() -> tuple[str, ...]:
        return ("stop_reason", "start_lr", "end_lr", "num_steps", "mode", "smoothing", "divergence_factor")

    def to_json(self, path: PathOrFile) -> None:
        """Write the result as JSON; :meth:`from_json` reads it back exactly.

        Args:
            path: A file path (written atomically: an existing file is
                replaced only once the new one is complete), an open text
                file or a file descriptor (written, left open).
        """
        write_json(path, self.to_dict(), where="RangeTestResult.to_json")

    @classmethod
    def from_json(cls, path: Source) -> RangeTestResult:
        """Read a result written by :meth:`to_json` (plain JSON; nothing is unpickled).

        Args:
            path: A file path, a file descriptor or an open file (text or
                binary), read from where it stands. A descriptor or a file
                is the caller's and is left open, also when reading fails
                (as :meth:`to_json` leaves it).

        Raises:
            ValueError: If the file is not valid JSON or not an lrscout result.
        """
        where = "RangeTestResult.from_json"
        return cls._from_mapping(read_json(path, where, float_arrays=_CURVES), where)

    def to_csv(self, path: PathOrFile) -> None:
        """Write ``step, lr, loss, smoothed_loss, trend`` rows (floats at full precision).

        ``smoothed_loss`` is the EMA (``smoothed_losses``), ``trend`` the
        curve the plot draws (:attr:`trend`).

        Args:
            path: As for :meth:`to_json`.
        """
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["step", "lr", "loss", "smoothed_loss", "trend"])
        for step, row in enumerate(zip(self.lrs, self.losses, self.smoothed_losses, self.trend, strict=True)):
            writer.writerow([step, *(repr(float(x)) for x in row)])
        write_text(path, text.getvalue(), where="RangeTestResult.to_csv")


def _check_refinement(record: Any, lrs: np.ndarray, where: str) -> None:
    """``info["refinement"]`` as the refinement stage writes it: an object whose ``"lr"`` is a rate.

    The rate is one the stage can choose: the default suggestion (within the
    tested range) moved toward one of ``REFINE_FACTORS`` times it, so within
    the tested range widened by the extreme factors; and its ``"plan"``, if
    any, must be readable.
    """
    if not isinstance(record, dict):
        fail(where, 'info["refinement"]', 'an object with the refined rate as "lr"', record)
    lr: Any = record.get("lr")
    if not (_is_number(lr) and math.isfinite(lr) and lr > 0):
        fail(where, 'info["refinement"]["lr"]', "a positive, finite learning rate", lr)
    if not len(lrs):
        fail(where, 'info["refinement"]', "absent from a result without steps", record)
    low, high = float(lrs[0]) * min(REFINE_FACTORS), float(lrs[-1]) * max(REFINE_FACTORS)
    if not low <= lr <= high:
        fail(
            where,
            'info["refinement"]["lr"]',
            f"a rate the refinement can choose, in [{low:.3g}, {high:.3g}]",
            lr,
        )
    if "plan" in record:
        Plan.from_info({"plan": record["plan"]}, where, 'info["refinement"]["plan"]')


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def lr_pair(
    lr_range: Any, where: str, *, name: str = "lr_range", total_steps: int | None = None
) -> tuple[float, float]:
    """``(base_lr, max_lr)`` from a range-test result or a pair, checked.

    Every one-cycle helper takes its range through here.

    Args:
        lr_range: A :class:`RangeTestResult` (its ``lr_range()``) or a
            ``(base_lr, max_lr)`` pair with ``0 < base_lr <= max_lr``.
        where: The public entry point, for messages.
        name: The argument's name at that entry point, for messages.
        total_steps: The steps of the one-cycle run, for a result's
            ``lr_range(total_steps=...)``.

    Returns:
        ``(base_lr, max_lr)`` as floats.

    Raises:
        InvalidArgumentError: On anything else.
        NoSuggestionError: From ``lr_range()`` when the curve gives no range.

    Example:
        >>> lr_pair((0.01, 0.1), "one_cycle_scheduler")
        (0.01, 0.1)
    """
    if isinstance(lr_range, RangeTestResult):
        return lr_range.lr_range(total_steps=total_steps)
    if not isinstance(lr_range, (tuple, list)) or len(lr_range) != 2:
        fail(where, name, "a RangeTestResult or a (base_lr, max_lr) pair", lr_range)
    base = check_float(lr_range[0], "base_lr", where=where, positive=True)
    peak = check_float(lr_range[1], "max_lr", where=where, positive=True)
    if peak < base:
        fail(where, "max_lr", f">= base_lr ({base!r})", peak)
    return base, peak
