"""Matplotlib drawings of lrscout results.

This layer sits below the results it draws: it imports none of them (the
results call it from their ``plot`` methods), and reads what it needs from
the object it is handed, described here by small protocols.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import textwrap
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .._errors import InvalidArgumentError, NoSuggestionError
from .._jsonio import write_text
from .._validation import number_text

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


class _Suggestion(Protocol):
    @property
    def lr(self) -> float: ...
    @property
    def index(self) -> int: ...


class RangeTestLike(Protocol):
    """What :func:`plot_range_test` reads of a :class:`lrscout.RangeTestResult`."""

    @property
    def lrs(self) -> np.ndarray: ...
    @property
    def losses(self) -> np.ndarray: ...
    @property
    def smoothed_losses(self) -> np.ndarray: ...
    @property
    def trend(self) -> np.ndarray: ...
    @property
    def stop_reason(self) -> str: ...
    @property
    def warnings(self) -> tuple[str, ...]: ...
    @property
    def mode(self) -> str: ...
    @property
    def start_lr(self) -> float: ...
    @property
    def end_lr(self) -> float: ...

    def __len__(self) -> int: ...
    def lr_range(self) -> tuple[float, float]: ...
    @property
    def suggestion(self) -> _Suggestion: ...


class NoiseScaleLike(Protocol):
    """What :func:`plot_noise_scale` reads of a :class:`lrscout.NoiseScaleResult`."""

    @property
    def b_simple(self) -> float: ...
    @property
    def interval(self) -> tuple[float, float]: ...
    @property
    def confidence(self) -> float: ...
    @property
    def method(self) -> str: ...
    @property
    def n_samples(self) -> int | None: ...

    @property
    def history(self) -> np.ndarray: ...
    @property
    def suggested_batch_size(self) -> int | None: ...


class _VariantRunLike(Protocol):
    @property
    def label(self) -> str: ...
    @property
    def initial_loss(self) -> float: ...
    @property
    def epoch_losses(self) -> np.ndarray: ...
    @property
    def epoch_times(self) -> np.ndarray: ...
    @property
    def loss_history(self) -> np.ndarray: ...
    @property
    def steps_per_epoch(self) -> int: ...

    @property
    def n_updates(self) -> int: ...
    @property
    def final_loss(self) -> float: ...


class VariantComparisonLike(Protocol):
    """What :func:`plot_variants` reads of a :class:`lrscout.VariantComparison`."""

    @property
    def epochs(self) -> int: ...

    @property
    def runs(self) -> Sequence[_VariantRunLike]: ...


def require_matplotlib() -> Any:
    """Import ``matplotlib.pyplot`` or say which extra provides it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - matplotlib is a dependency
        raise ImportError("lrscout plots need matplotlib: pip install matplotlib") from error
    return plt


def figure_html(
    draw: Callable[[Figure], object],
    rows: Sequence[Sequence[str]] = (),
    *,
    header: Sequence[str] | None = None,
    align: Sequence[str] | None = None,
    figsize: tuple[float, float] = (7.0, 4.5),
    alt: str = "plot",
) -> str:
    """A result as HTML for a notebook: its plot as an inline PNG, then a small table.

    What the ``_repr_html_`` of every lrscout result returns. ``draw(figure)``
    draws on a fresh matplotlib ``Figure`` that belongs to no pyplot state, so
    nothing else is shown or left open; the PNG is embedded as base64.

    Jupyter's stylesheets align every cell to the right and centre every
    table, by rules on ``td``, ``th`` and ``table`` that an alignment set on
    the table alone does not reach; so each cell carries its own alignment,
    and the table its own margins, as ``style`` attributes, which a
    stylesheet's class rules do not override.

    Args:
        draw: Draws the plot on the figure it is given.
        rows: Table rows, one sequence of cell texts each (escaped here).
        header: Column titles, or ``None`` for a table without a header row.
        align: ``"left"`` or ``"right"`` per column; ``None`` aligns every
            column left.
        figsize: Figure size in inches.
        alt: The image's alternative text.

    Returns:
        An HTML fragment: ``<div><img ...><table>...</table></div>``.

    Example:
        >>> text = figure_html(lambda figure: figure.subplots().plot([1, 2]), [["suggested lr", "0.1"]])
        >>> text.startswith('<div class="lrscout"><img src="data:image/png;base64,')
        True
        >>> '<td style="text-align:left">suggested lr</td><td style="text-align:left">0.1</td>' in text
        True
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, layout="constrained")
    draw(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    image = base64.b64encode(buffer.getvalue()).decode("ascii")
    parts = [
        '<div class="lrscout">',
        f'<img src="data:image/png;base64,{image}" alt="{html.escape(alt)}" style="max-width:100%"/>',
    ]
    if rows or header:
        width = max(len(row) for row in [*rows, header or []])
        sides = list(align or ()) + ["left"] * (width - len(align or ()))

        def cells(tag: str, row: Sequence[str]) -> str:
            return "".join(
                f'<{tag} style="text-align:{side}">{html.escape(cell)}</{tag}>'
                for cell, side in zip(row, sides, strict=False)
            )

        parts.append('<table style="margin-left:0;margin-right:auto">')
        if header:
            parts.append(f"<tr>{cells('th', header)}</tr>")
        parts.extend(f"<tr>{cells('td', row)}</tr>" for row in rows)
        parts.append("</table>")
    parts.append("</div>")
    return "".join(parts)


def _new_axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    plt = require_matplotlib()
    _, new = plt.subplots(figsize=(7, 4.5), layout="constrained")
    axes: Axes = new
    return axes


def _save(ax: Axes, path: str | os.PathLike[str] | None) -> None:
    figure = ax.get_figure(root=True)
    if path is not None and figure is not None:
        save_figure(figure, path)


def save_figure(figure: Figure, path: Any, *, dpi: int = 120) -> None:
    """Render ``figure`` in memory, then write it as lrscout writes every file.

    The format comes from the extension (matplotlib's ``savefig.format``,
    PNG by default, without one). Rendered first, written after: a drawing
    that fails leaves an existing file as it was, a regular file is
    replaced atomically, and a FIFO, a device or a descriptor path
    (``/dev/stdout``) is written through, not replaced (see
    :func:`lrscout._jsonio.write_text`).
    """
    if not isinstance(path, (str, os.PathLike)):
        figure.savefig(path, dpi=dpi)  # an open file: matplotlib's own
        return
    name: Any = os.fspath(path)
    if not isinstance(name, str):
        raise InvalidArgumentError(f"plot: path must be a text path; got {path!r}.")
    buffer = io.BytesIO()
    figure.savefig(buffer, format=figure_format(name), dpi=dpi)
    write_text(name, buffer.getvalue(), where="plot")


def figure_format(path: str) -> str:
    """The format matplotlib writes ``path`` in: its extension, else ``savefig.format``."""
    suffix = os.path.splitext(path)[1].lstrip(".").lower()
    if suffix:
        return suffix
    import matplotlib

    return str(matplotlib.rcParams["savefig.format"])


def format_problem(path: str) -> str | None:
    """Why matplotlib could not write ``path`` in its format, found before any drawing; ``None`` if it can.

    The format must be one matplotlib knows; PGF needs its TeX system
    (``pgf.texsystem``, XeLaTeX by default) on the ``PATH``, and with
    ``text.usetex`` every format needs LaTeX.
    """
    import shutil

    import matplotlib
    from matplotlib.backend_bases import FigureCanvasBase

    kind = figure_format(path)
    formats = FigureCanvasBase.get_supported_filetypes()
    if kind not in formats:
        listed = ", ".join("." + name for name in sorted(formats))
        return f"matplotlib cannot write .{kind} files; use one of {listed}"
    needs = []
    if kind == "pgf":
        needs.append(str(matplotlib.rcParams["pgf.texsystem"]))
    if matplotlib.rcParams["text.usetex"]:
        needs.append("latex")
    missing = [program for program in needs if shutil.which(program) is None]
    if missing:
        return (
            f"matplotlib writes .{kind} files with {missing[0]}, which is not installed (not on the PATH); "
            "use .png, .svg or .pdf"
        )
    return None


def plot_range_test(
    result: RangeTestLike,
    *,
    ax: Axes | None = None,
    path: str | os.PathLike[str] | None = None,
    suggestion: bool = True,
    lr_range: bool = True,
    ema: bool = False,
    title: str | None = None,
) -> Axes:
    """Loss against learning rate on a log axis: raw points, the trend through them, marks.

    The line is ``result.trend`` (a running median of the losses, see
    :func:`lrscout.loss_trend`), which follows the points and is saved with
    the result (JSON and CSV), so a plot from the files is this plot. The
    default suggestion is drawn as a vertical line and the ``lr_range()`` as
    a shaded band, when the curve allows them (a curve too short for a
    suggestion is still drawn, with a note in the legend). ``ema=True`` adds
    the stored exponential moving average (``smoothed_losses``), the curve
    the divergence check reads; it lags behind the points, so it is left out
    by default.
    """
    ax = _new_axes(ax)
    finite = np.isfinite(result.losses)
    n = len(finite) if finite.all() else int(np.argmin(finite))
    # Losses near the largest float are drawn in units of a power of ten:
    # matplotlib's transforms overflow on a range of that size.
    unit = _loss_unit(result.losses[finite])
    losses = result.losses / unit
    ax.plot(result.lrs[finite], losses[finite], ".", color="0.6", markersize=3, label="loss per step")
    if ema:
        ax.plot(
            result.lrs,
            result.smoothed_losses / unit,
            color="C0",
            linewidth=0.8,
            linestyle=":",
            label="EMA (divergence check; lags)",
        )
    curve = np.asarray(result.trend)[:n] / unit
    ax.plot(result.lrs[:n], curve, color="C0", linewidth=2.0, label="trend (running median)")
    notes = [f"warning: {message}" for message in result.warnings]
    if suggestion or lr_range:
        try:
            if lr_range:
                base, peak = result.lr_range()
                ax.axvspan(base, peak, color="C2", alpha=0.15, label=f"lr_range {base:.2g} – {peak:.2g}")
            if suggestion:
                chosen = result.suggestion
                ax.axvline(chosen.lr, color="C3", linestyle="--", label=f"suggested lr {chosen.lr:.3g}")
                ax.plot([chosen.lr], [curve[min(chosen.index, n - 1)]], "o", color="C3")
        except NoSuggestionError as error:
            ax.plot([], [], " ", label="no suggestion (why: in the box)")
            notes.insert(0, f"no suggestion: {str(error).removeprefix('suggest: ')}")
    ax.set_xscale("log")
    if n > 1:
        # Frame the descent: from the lowest smoothed loss to the starting
        # loss, so a diverging tail does not flatten the interesting part.
        low, high = float(np.min(curve)), float(max(curve[0], np.max(curve[: max(2, n // 2)])))
        if high > low:
            pad = 0.15 * high - 0.15 * low
            ax.set_ylim(low - pad, high + pad)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss" if unit == 1.0 else f"loss (in units of {unit:.0e})")
    ax.set_title(title or f"LR range test ({result.stop_reason}, {len(result)} steps)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    if notes:
        _note(ax, notes)
    _save(ax, path)
    return ax


def _loss_unit(losses: np.ndarray) -> float:
    """1, or a power of ten that brings losses beyond ``1e100`` in magnitude down to about 1."""
    largest = float(np.max(np.abs(losses))) if len(losses) else 0.0
    if not largest > 1e100:
        return 1.0
    return float(10.0 ** math.floor(math.log10(largest)))


def _note(ax: Axes, notes: Sequence[str]) -> None:
    """Whole messages, wrapped, in a box at the bottom left of the axes (no math mode)."""
    text = "\n".join(textwrap.fill(note, width=95) for note in notes)
    ax.text(
        0.01,
        0.02,
        text.replace("$", r"\$"),
        transform=ax.transAxes,
        fontsize="x-small",
        va="bottom",
        ha="left",
        color="C3",
        bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85, "edgecolor": "C3"},
    )


def plot_lr_schedule(
    result: RangeTestLike, *, ax: Axes | None = None, path: str | os.PathLike[str] | None = None
) -> Axes:
    """Learning rate against step; log y for the exponential ramp."""
    ax = _new_axes(ax)
    ax.plot(np.arange(1, len(result) + 1), result.lrs, color="C0")
    if result.mode == "exponential":
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.set_title(f"LR ramp ({result.mode}, {result.start_lr:.2g} to {result.end_lr:.2g})")
    ax.grid(True, which="both", alpha=0.3)
    _save(ax, path)
    return ax


def plot_noise_scale(
    result: NoiseScaleLike,
    *,
    ax: Axes | None = None,
    path: str | os.PathLike[str] | None = None,
    reference: float | None = None,
    reference_label: str = "reference",
    title: str | None = None,
) -> Axes:
    """The running estimate of ``b_simple`` against the big batches measured.

    The final confidence interval is a band, the suggested batch size a
    dashed line; ``reference`` (e.g. the exact value) a dotted one. For the
    exact method only the lines are drawn. The axis frames the band, the
    lines and the estimate after its first tenth: the first few big batches
    can land orders of magnitude off, and would squeeze everything else into
    a sliver (the legend says how far off they went). Ticks are plain
    numbers, one format from 1 to a million.
    """
    ax = _new_axes(ax)
    history = result.history
    x = np.arange(1, len(history) + 1)
    shown = np.isfinite(history) & (history > 0)
    marks: list[float] = []
    label = "running estimate"
    low, high = result.interval
    if len(history):
        settled = history[len(history) // 10 :]
        marks += [float(v) for v in settled[np.isfinite(settled) & (settled > 0)]]
        if np.isfinite(low) and np.isfinite(high) and high > 0:
            marks += [v for v in (low, high) if v > 0]
    if math.isfinite(result.b_simple) and result.b_simple > 0:
        marks.append(result.b_simple)
    suggested = result.suggested_batch_size
    if suggested is None and result.n_samples is not None:
        suggested = result.n_samples
    if suggested is not None:
        marks.append(float(suggested))
    if reference is not None and math.isfinite(reference) and reference > 0:
        marks.append(float(reference))
    frame = (min(marks) / 1.5, max(marks) * 1.5) if marks else None
    if frame is not None and np.any(shown):
        outside = history[shown][(history[shown] > frame[1]) | (history[shown] < frame[0])]
        if len(outside):
            far = float(outside[np.argmax(np.abs(np.log(outside)))])
            label += f" (first big batches off the scale, up to {number_text(far)})"
    if len(history):
        ax.plot(x[shown], history[shown], color="C0", linewidth=1.5, label=label)
        if np.isfinite(low) and np.isfinite(high) and high > 0:
            interval = f"{result.confidence:.0%} interval {number_text(low)} .. {number_text(high)}"
            ax.axhspan(max(low, 1e-12), high, color="C0", alpha=0.15, label=interval)
    if math.isfinite(result.b_simple) and result.b_simple > 0:
        ax.axhline(
            result.b_simple, color="C0", linewidth=0.8, label=f"B_simple {number_text(result.b_simple)}"
        )
    if suggested is not None:
        ax.axhline(suggested, color="C3", linestyle="--", label=f"suggested batch size {suggested}")
    if reference is not None:
        ax.axhline(reference, color="k", linestyle=":", label=f"{reference_label} {number_text(reference)}")
    ax.set_yscale("log")
    if frame is not None:
        ax.set_ylim(*frame)
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    # Batch sizes as plain numbers (70, 800, 300000), never 7 x 10^1 or 1e+05 beside 2000.
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: _count_text(value)))
    ax.yaxis.set_minor_locator(LogLocator(base=10, subs=(3.0, 4.0, 6.0, 7.0, 8.0, 9.0)))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("big batches measured")
    ax.set_ylabel("gradient noise scale B_simple (samples)")
    ax.set_title(title or f"Gradient noise scale ({result.method})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    _save(ax, path)
    return ax


def _count_text(value: float) -> str:
    """A tick of a count axis: ``2000``, ``300000``, ``0.5``.

    Example:
        >>> [_count_text(v) for v in (0.5, 20.0, 2000.0, 300000.0)]
        ['0.5', '20', '2000', '300000']
    """
    return f"{value:.0f}" if value >= 1 else f"{value:.2g}"


def plot_variants(
    comparison: VariantComparisonLike,
    *,
    path: str | os.PathLike[str] | None = None,
    axes: Sequence[Axes] | None = None,
) -> list[Axes]:
    """Loss per epoch, per update (log x) and per second for each variant."""
    if axes is None:
        plt = require_matplotlib()
        _, grid = plt.subplots(1, 3, figsize=(15, 4.5), layout="constrained")
        panels: list[Axes] = list(grid)
    else:
        panels = list(axes)
        if len(panels) != 3:
            raise InvalidArgumentError(
                f"plot: axes must hold 3 Axes (epoch, update, second); got {len(panels)}."
            )
    by_epoch, by_update, by_second = panels
    from matplotlib.ticker import MaxNLocator

    longest = max((float(np.sum(run.epoch_times)) for run in comparison.runs), default=0.0)
    unit, scale = _time_unit(longest)
    for i, run in enumerate(comparison.runs):
        color = f"C{i}"
        losses = np.concatenate([[run.initial_loss], run.epoch_losses])
        epochs = np.arange(len(losses))
        updates = epochs * run.steps_per_epoch
        seconds = np.concatenate([[0.0], np.cumsum(run.epoch_times)])
        by_epoch.plot(epochs, losses, "o-", color=color, markersize=3, label=run.label)
        window = max(1, run.steps_per_epoch // 10)
        if run.n_updates >= window:
            average = np.convolve(run.loss_history, np.ones(window) / window, mode="valid")
            by_update.plot(
                np.arange(window, run.n_updates + 1), average, color=color, alpha=0.3, linewidth=0.8
            )
        # Markers only: a line from one epoch's end to the next would claim a
        # path over hundreds of updates that the faint batch losses show.
        by_update.plot(np.maximum(updates, 1), losses, "o", color=color, markersize=3, label=run.label)
        by_second.plot(seconds / scale, losses, "o-", color=color, markersize=3, label=run.label)
    by_epoch.set_xlabel("epoch (n gradient evaluations each)")
    by_update.set_xlabel("update (log scale; dots: end of each epoch; faint: batch losses)")
    by_update.set_xscale("log")
    by_second.set_xlabel(f"training time ({unit})")
    # Few ticks with short labels: times in a unit that needs no offset text.
    by_second.xaxis.set_major_locator(MaxNLocator(nbins=5, min_n_ticks=3))
    finals = [run.final_loss for run in comparison.runs if np.isfinite(run.final_loss)]
    starts = [run.initial_loss for run in comparison.runs]
    for ax in panels:
        ax.set_ylabel("loss on the whole training set")
        ax.grid(True, alpha=0.3)
        if finals:
            low, high = min(finals), max(starts)
            ax.set_ylim(max(0.0, low - 0.05 * (high - low)), high + 0.05 * (high - low))
    by_epoch.legend(fontsize="small")
    by_epoch.set_title("per epoch")
    by_update.set_title("per update")
    by_second.set_title("per second")
    figure = by_epoch.get_figure(root=True)
    if figure is not None:
        figure.suptitle(f"Batch, stochastic and mini-batch gradient descent, {comparison.epochs} epochs")
        if path is not None:
            save_figure(figure, path)
    return panels


def _time_unit(seconds: float) -> tuple[str, float]:
    """A unit in which ``seconds`` reads as a number from 1 to 1000: ``(name, seconds per unit)``.

    Example:
        >>> _time_unit(0.004), _time_unit(25.0), _time_unit(5e-6)
        (('ms', 0.001), ('s', 1.0), ('µs', 1e-06))
    """
    for name, size in (("µs", 1e-6), ("ms", 1e-3)):
        if seconds < 1000 * size:
            return name, size
    return ("min", 60.0) if seconds >= 600 else ("s", 1.0)
