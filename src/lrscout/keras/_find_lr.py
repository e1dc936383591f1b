"""``find_lr``: the LR range test of a compiled Keras model in one call."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .._engine import RangeTestState, _progress_bar
from .._errors import InvalidArgumentError
from .._result import RangeTestResult
from .._validation import check_batch_size, check_bool
from ._finder import LRFinder, check_info
from ._keras import keras

_WHERE = "find_lr"


class _ProgressBar(keras.callbacks.Callback):  # type: ignore[misc]
    """A tqdm bar over the steps of an :class:`LRFinder`'s test (Keras's own is per epoch)."""

    def __init__(self, finder: LRFinder) -> None:
        super().__init__()
        self._finder = finder
        self._bar: Any = None

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        state = self._finder._state
        if state is not None:
            self._bar = _progress_bar(state.num_steps)

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        state = self._finder._state
        if self._bar is None or state is None or not state.step:
            return
        self._bar.update(state.step - self._bar.n)
        self._bar.set_postfix(
            lr=f"{state.lr_at(state.step - 1):.2e}", loss=f"{state.smoothed[-1]:.4g}", refresh=False
        )

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _count_samples(x: Any, y: Any) -> int:
    """Rows of the array data ``x`` (and ``y``), checked to agree."""
    leaves = [leaf for leaf in keras.tree.flatten(x) if leaf is not None]
    if not leaves or not all(len(getattr(leaf, "shape", ())) >= 1 for leaf in leaves):
        raise InvalidArgumentError(
            f"{_WHERE}: x must be an array (or a list or dict of arrays) or a keras.utils.PyDataset; "
            f"got {type(x).__name__}. For other inputs pass lrscout.keras.LRFinder to model.fit as a "
            "callback."
        )
    n = int(leaves[0].shape[0])
    for name, data in (("x", x), ("y", y)):
        for leaf in keras.tree.flatten(data) if data is not None else []:
            rows = getattr(leaf, "shape", (None,))
            if leaf is not None and (len(rows) < 1 or rows[0] != n):
                raise InvalidArgumentError(
                    f"{_WHERE}: every array of {name} must have one row per sample ({n}); "
                    f"got shape {tuple(rows)}."
                )
    if n < 1:
        raise InvalidArgumentError(f"{_WHERE}: x must hold at least one sample; got {n}.")
    return n


def find_lr(
    model: Any,
    x: Any,
    y: Any = None,
    *,
    batch_size: int | None = 32,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    mode: str = "exponential",
    smoothing: float = 0.98,
    divergence_factor: float = 4.0,
    stop_on_divergence: bool = True,
    shuffle: bool = True,
    progress: bool = False,
    info: Mapping[str, Any] | None = None,
) -> RangeTestResult:
    """Run an LR range test on a compiled Keras 3 model and leave the model as it was.

    Calls ``model.fit`` with an :class:`LRFinder` for
    ``ceil(num_steps / steps_per_epoch)`` epochs, so the ramp from
    ``start_lr`` to ``end_lr`` gets its ``num_steps`` steps (fewer if the
    loss diverges first). Afterwards, and also after an exception or
    ``KeyboardInterrupt`` inside ``fit``, the weights and every optimizer
    variable are bitwise as before and a ``LearningRateSchedule`` is back in
    place.

    Args:
        model: A compiled ``keras.Model``; its optimizer is the one tested.
        x: Inputs: an array (NumPy or backend tensor), a list or dict of
            arrays, or a ``keras.utils.PyDataset`` that yields ``(x, y)``
            batches.
        y: Targets for array inputs; ``None`` with a ``PyDataset``.
        batch_size: Samples per step for array inputs; ``None`` is the whole
            set (batch gradient descent). A ``PyDataset`` makes its own
            batches, so it does not use this value.
        start_lr: First learning rate, positive.
        end_lr: Last learning rate, greater than ``start_lr``.
        num_steps: Most steps to run, at least 2.
        mode: ``"exponential"`` (same number of steps per decade) or
            ``"linear"``.
        smoothing: EMA factor in [0, 1) for the smoothed loss; 0 disables it.
        divergence_factor: Stop once the smoothed loss exceeds this multiple
            (> 1) of its best value.
        stop_on_divergence: ``False`` runs every step unless a loss is not
            finite.
        shuffle: Let ``fit`` shuffle the samples (or the batch order of a
            ``PyDataset``) at each epoch.
        progress: Show a tqdm bar over the steps (Keras's own output is off).
        info: JSON-serialisable facts to keep in ``result.info``, next to
            ``framework``, ``backend``, ``batch_size``, ``n_samples`` and
            ``steps_per_epoch``.

    Returns:
        The :class:`lrscout.RangeTestResult`.

    Raises:
        TypeError, ValueError: On bad arguments, before training starts.

    Example:
        >>> import numpy as np, keras
        >>> x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
        >>> y = x @ np.array([[1.0], [-2.0], [0.5]], dtype="float32")
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        >>> model.compile(optimizer=keras.optimizers.SGD(), loss="mse")
        >>> result = find_lr(model, x, y, batch_size=16, start_lr=1e-3, end_lr=1.0, num_steps=6)
        >>> len(result), float(result.lrs[-1]), result.info["steps_per_epoch"]
        (6, 1.0, 4)
    """
    # Every argument is checked before fit, with this function's name.
    RangeTestState(
        start_lr=start_lr,
        end_lr=end_lr,
        num_steps=num_steps,
        mode=mode,
        smoothing=smoothing,
        divergence_factor=divergence_factor,
        stop_on_divergence=stop_on_divergence,
        where=_WHERE,
    )
    if not isinstance(model, keras.Model):
        raise InvalidArgumentError(f"{_WHERE}: model must be a keras.Model; got {type(model).__name__}.")
    if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", False):
        raise InvalidArgumentError(
            f"{_WHERE}: model must be compiled with an optimizer and a loss; got an uncompiled "
            f"{type(model).__name__}. Call model.compile(optimizer=..., loss=...) first."
        )
    batch = check_batch_size(batch_size, where=_WHERE)
    shuffle = check_bool(shuffle, "shuffle", where=_WHERE)
    show = check_bool(progress, "progress", where=_WHERE)
    extra = check_info(info, where=_WHERE)

    fit_kwargs: dict[str, Any] = {"verbose": 0, "shuffle": shuffle}
    if isinstance(x, keras.utils.PyDataset):
        if y is not None:
            raise InvalidArgumentError(
                f"{_WHERE}: y must be None when x is a keras.utils.PyDataset; got {type(y).__name__}. "
                "The dataset yields (x, y) batches itself."
            )
        n_samples = None
        batch = None
        per_epoch = x.num_batches
        if per_epoch is None:
            # An endless dataset: one epoch of exactly the steps of the test.
            fit_kwargs.update(epochs=1, steps_per_epoch=num_steps)
        fit_args: tuple[Any, ...] = (x,)
    else:
        n_samples = _count_samples(x, y)
        batch = n_samples if batch is None else batch
        per_epoch = math.ceil(n_samples / batch)
        fit_kwargs["batch_size"] = batch
        fit_args = (x, y)
    if per_epoch is not None:
        fit_kwargs["epochs"] = math.ceil(num_steps / per_epoch)

    finder = LRFinder(
        start_lr,
        end_lr,
        num_steps=num_steps,
        mode=mode,
        smoothing=smoothing,
        divergence_factor=divergence_factor,
        stop_on_divergence=stop_on_divergence,
        info={"batch_size": batch, "n_samples": n_samples, "steps_per_epoch": per_epoch, **extra},
    )
    bar = _ProgressBar(finder) if show else None
    try:
        model.fit(*fit_args, callbacks=[finder] if bar is None else [finder, bar], **fit_kwargs)
    finally:
        if bar is not None:
            bar.close()
        finder._end_test()
    return finder.result
