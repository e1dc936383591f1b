"""Matplotlib drawings of lrscout results."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .._result import RangeTestResult


def require_matplotlib() -> Any:
    """Import ``matplotlib.pyplot`` or say which extra provides it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - matplotlib is a dependency
        raise ImportError("lrscout plots need matplotlib: pip install matplotlib") from error
    return plt


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
        figure.savefig(path, dpi=120)


def plot_range_test(
    result: RangeTestResult,
    *,
    ax: Axes | None = None,
    path: str | os.PathLike[str] | None = None,
    suggestion: bool = True,
    lr_range: bool = True,
    title: str | None = None,
) -> Axes:
    """Loss against learning rate on a log axis: raw points, smoothed line, marks.

    The default suggestion is drawn as a vertical line and the ``lr_range()``
    as a shaded band, when the curve allows them (a curve too short for a
    suggestion is still drawn, with a note in the legend).
    """
    import numpy as np

    ax = _new_axes(ax)
    finite = np.isfinite(result.losses)
    ax.plot(result.lrs[finite], result.losses[finite], ".", color="0.7", markersize=3, label="loss per step")
    ax.plot(result.lrs, result.smoothed_losses, color="C0", linewidth=1.8, label="smoothed loss")
    if suggestion or lr_range:
        try:
            if lr_range:
                base, peak = result.lr_range()
                ax.axvspan(base, peak, color="C2", alpha=0.15, label=f"lr_range {base:.2g} – {peak:.2g}")
            if suggestion:
                chosen = result.suggestion
                ax.axvline(chosen.lr, color="C3", linestyle="--", label=f"suggested lr {chosen.lr:.3g}")
                ax.plot([chosen.lr], [result.smoothed_losses[chosen.index]], "o", color="C3")
        except ValueError as error:
            ax.plot([], [], " ", label=f"no suggestion: {str(error).split('.')[0]}")
    ax.set_xscale("log")
    if len(result) and np.all(result.losses[finite] > 0):
        low = np.nanmin(result.smoothed_losses)
        high = np.nanmax(result.smoothed_losses[: max(1, len(result) // 2)])
        if np.isfinite(low) and np.isfinite(high) and high > low:
            pad = 0.1 * (high - low)
            top = max(high + pad, result.smoothed_losses[0] + pad)
            ax.set_ylim(max(0.0, low - pad) if low >= 0 else low - pad, top)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title(title or f"LR range test ({result.stop_reason}, {len(result)} steps)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    _save(ax, path)
    return ax


def plot_lr_schedule(
    result: RangeTestResult, *, ax: Axes | None = None, path: str | os.PathLike[str] | None = None
) -> Axes:
    """Learning rate against step; log y for the exponential ramp."""
    import numpy as np

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
