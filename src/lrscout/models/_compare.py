"""Batch, stochastic and mini-batch gradient descent side by side."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .._batching import gd_variant, steps_per_epoch
from .._errors import InvalidArgumentError
from .._jsonio import PathOrFile, encode_float, write_json
from .._result import RangeTestResult
from .._validation import check_batch_size, check_float, check_int
from ._estimators import GDEstimator, check_estimator
from ._find_lr import find_lr

if TYPE_CHECKING:
    from matplotlib.axes import Axes


class NoVariantRateError(InvalidArgumentError):
    """``compare_variants(lr="auto")`` found no learning rate for one batch size.

    Attributes:
        batch_size: The batch size whose range test gave no suggestion.
        reason: Why, in the words of the suggestion rule.
    """

    def __init__(self, batch_size: int | None, reason: str) -> None:
        self.batch_size = batch_size
        self.reason = reason
        super().__init__(
            f"compare_variants: no learning rate found for batch_size={batch_size!r}: {reason} "
            f"Or give the runs their learning rates (lr=0.01, or one per batch size), or leave "
            f"batch_size={batch_size!r} out of batch_sizes."
        )


@dataclass(frozen=True, eq=False)
class VariantRun:
    """One variant's training run.

    Attributes:
        batch_size: ``None`` (batch GD), ``1`` (stochastic) or ``k``.
        variant: ``"batch"``, ``"stochastic"`` or ``"mini-batch"``.
        lr: The learning rate it trained at.
        steps_per_epoch: Updates per epoch.
        initial_loss: Objective on the whole set before training.
        epoch_losses: Objective on the whole set after each epoch.
        loss_history: Batch loss of each update, before the update.
        epoch_times: Seconds spent on each epoch's updates.
        range_test: The range test that chose ``lr`` (``None`` if given).
    """

    batch_size: int | None
    variant: str
    lr: float
    steps_per_epoch: int
    n_samples: int
    initial_loss: float
    # The arrays and the range test are left out of the repr: a line per run, not pages.
    epoch_losses: np.ndarray = field(repr=False)
    loss_history: np.ndarray = field(repr=False)
    epoch_times: np.ndarray = field(repr=False)
    range_test: RangeTestResult | None = field(repr=False)

    @property
    def n_updates(self) -> int:
        return len(self.loss_history)

    @property
    def final_loss(self) -> float:
        return float(self.epoch_losses[-1])

    @property
    def total_time(self) -> float:
        return float(self.epoch_times.sum())

    @property
    def gradient_evaluations(self) -> np.ndarray:
        """Per-sample gradients computed up to and including each update."""
        n, steps = self.n_samples, self.steps_per_epoch
        batch = n if self.batch_size is None else min(self.batch_size, n)
        within = np.minimum(np.arange(1, steps + 1) * batch, n)
        epochs = len(self.epoch_losses)
        return (np.arange(epochs)[:, None] * n + within[None, :]).ravel()

    @property
    def label(self) -> str:
        size = "n" if self.batch_size is None else str(self.batch_size)
        return f"{self.variant} (batch {size}, lr {self.lr:.3g})"


@dataclass(frozen=True, eq=False)
class VariantComparison:
    """The runs of :func:`compare_variants`, with a table and a plot."""

    runs: tuple[VariantRun, ...]
    epochs: int

    def table(self) -> str:
        """A plain-text table: variant, batch, lr, updates per epoch, final loss, time."""
        header = ["variant", "batch_size", "lr", "updates/epoch", "updates", "final loss", "time (s)"]
        rows = [
            [
                run.variant,
                "full" if run.batch_size is None else str(run.batch_size),
                f"{run.lr:.3g}",
                str(run.steps_per_epoch),
                str(run.n_updates),
                f"{run.final_loss:.4g}",
                f"{run.total_time:.3f}",
            ]
            for run in self.runs
        ]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        lines = [
            "  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in [header, *rows]
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: each run's settings and curves, its range test as
        :meth:`lrscout.RangeTestResult.to_dict` writes it (``None`` when its rate was given).

        Example:
            >>> from lrscout.models import LinearRegressor
            >>> rng = np.random.default_rng(0)
            >>> X = rng.normal(size=(64, 2))
            >>> y = X @ [1.0, -1.0]
            >>> runs = compare_variants(LinearRegressor(), X, y, epochs=2, batch_sizes=(None, 8), lr=0.1)
            >>> data = runs.to_dict()
            >>> [(run["variant"], run["batch_size"], len(run["epoch_losses"])) for run in data["runs"]]
            [('batch', None, 2), ('mini-batch', 8, 2)]
        """
        return {
            "format": "lrscout.VariantComparison",
            "version": 1,
            "epochs": self.epochs,
            "runs": [
                {
                    "variant": run.variant,
                    "batch_size": run.batch_size,
                    "lr": run.lr,
                    "steps_per_epoch": run.steps_per_epoch,
                    "n_samples": run.n_samples,
                    "updates": run.n_updates,
                    "initial_loss": encode_float(run.initial_loss),
                    "final_loss": encode_float(run.final_loss),
                    "seconds": run.total_time,
                    "epoch_losses": [encode_float(x) for x in run.epoch_losses],
                    "epoch_times": [float(x) for x in run.epoch_times],
                    "loss_history": [encode_float(x) for x in run.loss_history],
                    "range_test": None if run.range_test is None else run.range_test.to_dict(),
                }
                for run in self.runs
            ],
        }

    def to_json(self, path: PathOrFile) -> None:
        """Write :meth:`to_dict` as JSON (a path, written atomically, or an open text file)."""
        write_json(path, self.to_dict(), where="VariantComparison.to_json")

    def plot(
        self, path: str | os.PathLike[str] | None = None, axes: Sequence[Axes] | None = None
    ) -> list[Axes]:
        """Loss per epoch, per update (log x) and per second, one panel each.

        Args:
            path: Save the figure there.
            axes: Three Axes to draw on; a new figure when ``None``.

        Returns:
            The three Axes.
        """
        from ..plotting._plots import plot_variants

        return plot_variants(self, path=path, axes=axes)

    def _repr_html_(self) -> str:
        """The three panels and :meth:`table` as HTML in a notebook; a terminal keeps ``repr``."""
        import re

        from ..plotting._plots import figure_html

        # The cells of table(), which pads them with two spaces or more.
        header, _, *rows = (re.split(r" {2,}", line.strip()) for line in self.table().splitlines())
        return figure_html(
            lambda figure: self.plot(axes=figure.subplots(1, 3)),
            rows,
            header=header,
            align=["left", *(["right"] * (len(header) - 1))],  # the variant, then numbers
            figsize=(15.0, 4.5),
            alt="batch, stochastic and mini-batch gradient descent",
        )


def compare_variants(
    model: GDEstimator,
    X: Any,
    y: Any,
    *,
    epochs: int,
    batch_sizes: Sequence[int | None] = (None, 1, 32),
    lr: float | str | Sequence[float] = "auto",
    find_lr_kwargs: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> VariantComparison:
    """Train one copy of ``model`` per batch size, each for ``epochs`` epochs.

    Args:
        model: A NumPy model; its other hyperparameters (momentum, seed, ...)
            are kept, ``batch_size``, ``epochs`` and ``lr`` are set per run.
            ``model`` itself is not changed.
        X, y: Training data.
        epochs: Epochs per run, at least 1.
        batch_sizes: One run per entry: ``None`` batch GD, ``1`` stochastic,
            ``k`` mini-batch.
        lr: ``"auto"`` runs :func:`lrscout.models.find_lr` per variant and
            trains at its suggestion; a float trains every run at it; a
            sequence gives one learning rate per batch size.
        find_lr_kwargs: Extra arguments for ``find_lr`` (``num_steps``, ...).
        progress: Show progress bars for the range tests.

    Returns:
        A :class:`VariantComparison`.

    Example:
        >>> from lrscout.models import LinearRegressor
        >>> X = np.random.default_rng(0).normal(size=(64, 2))
        >>> comparison = compare_variants(LinearRegressor(random_state=0), X, X @ [1.0, 2.0],
        ...                               epochs=3, lr=0.05, batch_sizes=(None, 1, 8))
        >>> [run.steps_per_epoch for run in comparison.runs]
        [1, 64, 8]
    """
    where = "compare_variants"
    model = check_estimator(model, where=where)
    n_epochs = check_int(epochs, "epochs", where=where, minimum=1)
    if isinstance(batch_sizes, (str, bytes)) or not isinstance(batch_sizes, Sequence) or not batch_sizes:
        raise InvalidArgumentError(
            f"{where}: batch_sizes must be a non-empty sequence such as (None, 1, 32); got {batch_sizes!r}."
        )
    sizes = [check_batch_size(b, where=where, name="batch_sizes[]") for b in batch_sizes]
    lrs = _learning_rates(lr, len(sizes), where)
    X_, T, n_outputs, _ = model._prepare(X, y, where)
    n = X_.shape[0]
    initial = model._objective(np.zeros((n_outputs, X_.shape[1])), np.zeros(n_outputs), X_, T)
    runs = []
    for size, fixed in zip(sizes, lrs, strict=True):
        found = None
        if fixed is None:
            found = find_lr(model, X_, y, batch_size=size, progress=progress, **dict(find_lr_kwargs or {}))
            try:
                chosen = found.suggestion.lr
            except ValueError as error:
                raise NoVariantRateError(size, str(error)) from None
        else:
            chosen = fixed
        clone = type(model)(**{**model.get_params(), "batch_size": size, "epochs": n_epochs, "lr": chosen})
        clone.fit(X_, y)
        runs.append(
            VariantRun(
                batch_size=size,
                variant=gd_variant(size, n),
                lr=chosen,
                steps_per_epoch=steps_per_epoch(n, size),
                n_samples=n,
                initial_loss=initial,
                epoch_losses=clone.epoch_losses_,
                loss_history=clone.loss_history_,
                epoch_times=clone.epoch_times_,
                range_test=found,
            )
        )
    return VariantComparison(runs=tuple(runs), epochs=n_epochs)


def _learning_rates(lr: Any, count: int, where: str) -> list[float | None]:
    if isinstance(lr, str):
        if lr != "auto":
            raise InvalidArgumentError(
                f"{where}: lr must be 'auto', a positive float or one float per batch size; got {lr!r}."
            )
        return [None] * count
    if isinstance(lr, Sequence):
        if len(lr) != count:
            raise InvalidArgumentError(
                f"{where}: lr must give one learning rate per batch size ({count}); got {len(lr)}."
            )
        return [check_float(v, "lr[]", where=where, positive=True) for v in lr]
    value = check_float(lr, "lr", where=where, positive=True)
    return [value] * count
