"""The LR range test of a Keras 3 model: the ``LRFinder`` callback and ``find_lr``.

``LRFinder`` runs the test inside the user's own ``model.fit``; ``find_lr``
runs that ``fit`` itself and leaves the model as it was in every case.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._engine import RangeTestState, _progress_bar, warn_about
from .._errors import InvalidArgumentError
from .._jsonio import json_copy
from .._result import RangeTestResult, Suggestion
from .._validation import check_batch_size, check_bool, check_float, check_int
from ..plotting._plots import require_matplotlib
from ._batch_logs import BatchLogs
from ._keras import keras
from ._snapshot import LearningRateDriver, TrainingSnapshot

if TYPE_CHECKING:
    from matplotlib.axes import Axes

_FINDER = "LRFinder"
_FIND_LR = "find_lr"
# model.history before the test, when the model has none yet (a model never fitted).
_NO_HISTORY = object()


class LRFinder(keras.callbacks.Callback):  # type: ignore[misc]
    """Keras 3 callback that runs an LR range test (Smith 2017) inside ``model.fit``.

    Before each batch the learning rate is set to the next value of a ramp
    from ``min_lr`` to ``max_lr`` (both exact); after it, the batch's own loss
    is recorded. The ramp, smoothing and stop rule are lrscout's core
    (:class:`lrscout.RangeTestState`), so the numbers equal those of
    :func:`lrscout.range_test` and every other integration. For linear mode
    step ``t`` of ``N`` gets

    .. math:: \\eta_t = \\eta_{min} + (\\eta_{max} - \\eta_{min})\\, t / (N - 1)

    Keras logs the running mean of the loss over the epoch, weighted by batch
    size; the finder recovers each batch's own loss and metrics exactly from
    the metrics' state (short last batch and sample weights included, see
    ``lrscout/keras/_batch_logs.py``). Training stops through
    ``model.stop_training`` once the smoothed loss exceeds
    ``divergence_factor`` times its best value, a loss is not finite, or the
    ``N`` steps are done. When training ends, the weights and every optimizer
    variable (iterations, moments, learning rate) are assigned back bitwise,
    and a ``LearningRateSchedule`` that the test replaced is put back.

    Keras calls ``on_train_end`` only when ``fit`` returns normally; after an
    exception or ``KeyboardInterrupt`` the model is left as the test made it.
    :func:`lrscout.keras.find_lr` restores it in every case.

    The state is read and assigned through Keras variables only, so every
    backend works the same way (the tests run torch and JAX). With JAX, where
    ``fit`` keeps the state outside the variables during an epoch, every hook
    goes through ``self.model``, which syncs it.

    Args:
        min_lr: First learning rate, positive.
        max_lr: Last learning rate, greater than ``min_lr``.
        steps_per_epoch: Batches per epoch, as a whole number (``np.ceil``
            output is fine). ``None`` takes the number ``fit`` runs.
        epochs: Epochs of the test. ``None`` takes ``fit``'s ``epochs``.
            The ramp has ``steps_per_epoch * epochs`` steps; if ``fit`` runs
            fewer, the test ends early with ``stop_reason == "ended"``; if
            more, the finder stops training after the last one.
        num_steps: Steps of the ramp, at least 2, instead of
            ``steps_per_epoch * epochs`` (give one or the other).
        mode: ``"linear"`` (as in the original callback) or
            ``"exponential"`` (same number of steps per decade).
        smoothing: EMA factor in [0, 1) for the smoothed loss; 0 disables it.
        divergence_factor: Stop once the smoothed loss exceeds this multiple
            (> 1) of its best value.
        stop_on_divergence: ``False`` runs every step unless a loss is not
            finite.
        extend: Keep ramping past ``max_lr`` while the loss has not turned
            up (:func:`lrscout.range_test`); only as far as ``fit`` runs.
        restore: Put the weights and optimizer variables back when training
            ends. ``False`` leaves them as the test left them (learning rate
            at its last value), except that a replaced schedule is always
            put back.
        info: JSON-serialisable facts to keep in ``result.info``.

    Attributes:
        history: ``{"lr": [...], "iterations": [1, ..., n], "loss": [...],
            <metric>: [...]}``, one entry per batch of the test, every key of
            Keras's logs recovered per batch. Reset when training begins.

    Raises:
        TypeError, ValueError: On bad arguments, here or (for values taken
            from ``fit``) in ``on_train_begin``.

    Example:
        >>> import numpy as np, keras
        >>> x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
        >>> y = x @ np.array([[1.0], [-2.0], [0.5]], dtype="float32")
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        >>> model.compile(optimizer=keras.optimizers.SGD(), loss="mse")
        >>> lr_finder = LRFinder(min_lr=1e-3, max_lr=1e-1)
        >>> _ = model.fit(x, y, batch_size=16, epochs=2, callbacks=[lr_finder], verbose=0)
        >>> lr_finder.history["iterations"]
        [1, 2, 3, 4, 5, 6, 7, 8]
        >>> lr_finder.result.stop_reason, lr_finder.history["lr"][-1]
        ('completed', 0.1)
    """

    def __init__(
        self,
        min_lr: float = 1e-5,
        max_lr: float = 1e-2,
        steps_per_epoch: float | None = None,
        epochs: float | None = None,
        *,
        num_steps: int | None = None,
        mode: str = "linear",
        smoothing: float = 0.98,
        divergence_factor: float = 4.0,
        stop_on_divergence: bool = True,
        extend: bool = False,
        restore: bool = True,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.min_lr = check_float(min_lr, "min_lr", where=_FINDER, positive=True)
        self.max_lr = check_float(max_lr, "max_lr", where=_FINDER, positive=True)
        if self.max_lr <= self.min_lr:
            raise InvalidArgumentError(
                f"{_FINDER}: max_lr must be greater than min_lr ({self.min_lr!r}); got {self.max_lr!r}."
            )
        self.steps_per_epoch = _optional_int(steps_per_epoch, "steps_per_epoch", minimum=1)
        self.epochs = _optional_int(epochs, "epochs", minimum=1)
        self.num_steps = _optional_int(num_steps, "num_steps", minimum=2)
        if self.num_steps is not None and (self.steps_per_epoch is not None or self.epochs is not None):
            raise InvalidArgumentError(
                f"{_FINDER}: num_steps must be None when steps_per_epoch or epochs is given; "
                f"got {num_steps!r}. Give num_steps, or steps_per_epoch and epochs."
            )
        # Building a throwaway state checks the remaining settings now, with
        # the core's rules and messages, rather than at the first fit.
        probe = self._new_state(2, mode, smoothing, divergence_factor, stop_on_divergence)
        self.mode = probe.mode
        self.smoothing = probe.smoothing
        self.divergence_factor = probe.divergence_factor
        self.stop_on_divergence = probe.stop_on_divergence
        self.extend = check_bool(extend, "extend", where=_FINDER)
        self.restore = check_bool(restore, "restore", where=_FINDER)
        self._info = json_copy(info, where=_FINDER)
        self.history: dict[str, list[Any]] = {}
        self._state: RangeTestState | None = None
        self._snapshot: TrainingSnapshot | None = None
        self._driver: LearningRateDriver | None = None
        self._batch_logs = BatchLogs()
        self._optimizer_info: dict[str, Any] = {}

    def _new_state(
        self, num_steps: int, mode: str, smoothing: float, divergence_factor: float, stop: bool
    ) -> RangeTestState:
        return RangeTestState(
            start_lr=self.min_lr,
            end_lr=self.max_lr,
            num_steps=num_steps,
            mode=mode,
            smoothing=smoothing,
            divergence_factor=divergence_factor,
            stop_on_divergence=stop,
            extend=getattr(self, "extend", False),
            where=_FINDER,
        )

    # Keras hooks -------------------------------------------------------------

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        model = self.model
        # Checked before anything is changed, so a refusal leaves no trace.
        per_call = getattr(model, "steps_per_execution", 1)
        if per_call != 1:
            raise InvalidArgumentError(
                f"{_FINDER}: model.steps_per_execution must be 1; got {per_call!r}. Keras calls the "
                "batch hooks once per execution, so the learning rate could not change at every step: "
                "compile the model with steps_per_execution=1 for the range test."
            )
        num_steps = self._planned_steps()
        self._state = self._new_state(
            num_steps, self.mode, self.smoothing, self.divergence_factor, self.stop_on_divergence
        )
        self.history = {}
        self._snapshot = TrainingSnapshot(model) if self.restore else None
        # Swapping a schedule out changes the optimizer, so it comes after the
        # snapshot, which must hold the optimizer's own variables only.
        self._driver = LearningRateDriver(model.optimizer, self.min_lr)
        self._optimizer_info = _optimizer_facts(model.optimizer)

    def on_train_batch_begin(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        state, driver = self._state, self._driver
        if state is None or driver is None or state.done:
            return
        # Under JAX, reading self.model syncs the training state into the
        # variables and makes fit re-read them, so the assignment takes effect.
        model = self.model
        driver.set(state.lr_at(state.step))
        self._batch_logs.begin(model)

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        state = self._state
        if state is None or state.done:
            return
        model = self.model
        values = self._batch_logs.end(logs or {})
        if "loss" not in values:
            raise InvalidArgumentError(
                f"{_FINDER}: the training logs must hold a 'loss'; got keys {sorted(values)}. "
                "A custom train_step must return the loss under that name."
            )
        step = state.step
        stopped = state.record([values["loss"]])
        self.history.setdefault("lr", []).append(state.lr_at(step))
        self.history.setdefault("iterations", []).append(step + 1)
        for key, value in values.items():
            self.history.setdefault(key, []).append(value)
        if stopped:
            model.stop_training = True

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        self._end_test()
        if self._state is not None:
            warn_about(self.result)

    def _end_test(self) -> None:
        """Put the model back as it was (idempotent; also called by ``find_lr`` on errors)."""
        driver, snapshot = self._driver, self._snapshot
        self._driver = None
        self._snapshot = None
        if driver is not None:
            driver.close()
        if snapshot is not None:
            snapshot.restore()

    def _planned_steps(self) -> int:
        if self.num_steps is not None:
            return self.num_steps
        params = self.params or {}
        steps = self.steps_per_epoch if self.steps_per_epoch is not None else params.get("steps")
        epochs = self.epochs if self.epochs is not None else params.get("epochs")
        if steps is None:
            raise _not_told("steps_per_epoch")
        if epochs is None:
            raise _not_told("epochs")
        total = int(steps) * int(epochs)
        if total < 2:
            raise InvalidArgumentError(
                f"{_FINDER}: steps_per_epoch * epochs must be at least 2; got {steps} * {epochs}. "
                "A range test needs two learning rates or more: train for more batches or epochs."
            )
        return total

    # Results -----------------------------------------------------------------

    @property
    def result(self) -> RangeTestResult:
        """The test as a :class:`lrscout.RangeTestResult` (``start_lr = min_lr``, ``end_lr = max_lr``).

        Raises:
            RuntimeError: If no training has begun with this callback.
        """
        if self._state is None:
            raise RuntimeError(
                f"{_FINDER}.result: no range test has run yet. "
                "Pass the finder to model.fit(..., callbacks=[lr_finder]) first."
            )
        info = {
            "framework": "keras",
            "backend": keras.backend.backend(),
            **self._optimizer_info,
            **self._info,
        }
        return self._state.result(info, short_fix=self._short_fix())

    def _short_fix(self) -> str:
        """How to let ``fit`` run every planned step, for the "ran short" warning."""
        params = self.params or {}
        fit_epochs, fit_steps = params.get("epochs"), params.get("steps")
        if self.epochs is not None and fit_epochs is not None and fit_epochs < self.epochs:
            return (
                f"fit ran {fit_epochs} epoch(s) of the {self.epochs} the finder planned: "
                f"pass epochs={self.epochs} to fit."
            )
        if self.steps_per_epoch is not None and fit_steps is not None and fit_steps < self.steps_per_epoch:
            return (
                f"fit runs {fit_steps} steps per epoch, the finder planned {self.steps_per_epoch}: "
                "pass the finder the steps_per_epoch that fit runs (or leave it None)."
            )
        return "Let fit run every planned step (more epochs or data), or plan fewer (num_steps=...)."

    @property
    def suggestion(self) -> Suggestion:
        """The default suggestion of :attr:`result`."""
        return self.result.suggestion

    def plot_loss(self, ax: Axes | None = None, path: str | os.PathLike[str] | None = None) -> Axes:
        """Plot loss against learning rate (log x), smoothed curve and suggestion marked.

        Called with no arguments it also calls ``plt.show()``, as the
        original callback did (a no-op on non-interactive backends).

        Args:
            ax: Axes to draw on; a new figure when ``None``.
            path: Save the figure there (format from the extension).

        Returns:
            The matplotlib ``Axes``.
        """
        return _show_if_unsaved(self.result.plot(ax=ax, path=path), ax, path)

    def plot_lr(self, ax: Axes | None = None, path: str | os.PathLike[str] | None = None) -> Axes:
        """Plot the learning rate against the iteration; like :meth:`plot_loss` for the rest."""
        return _show_if_unsaved(self.result.plot_lr(ax=ax, path=path), ax, path)


def _optional_int(value: Any, name: str, *, minimum: int) -> int | None:
    if value is None:
        return None
    return check_int(value, name, where=_FINDER, minimum=minimum)


def _not_told(name: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"{_FINDER}: {name} must be given when fit cannot tell it; got None. "
        f"Pass {name}=... (or num_steps=...) to LRFinder."
    )


def _show_if_unsaved(drawn: Axes, ax: Axes | None, path: str | os.PathLike[str] | None) -> Axes:
    """Show a figure that the caller neither gave nor saved, as the original callback did."""
    if ax is None and path is None:
        require_matplotlib().show()
    return drawn


def _optimizer_facts(optimizer: Any) -> dict[str, Any]:
    """The optimizer's class and heavy-ball momentum, which the default suggestion reads."""
    facts: dict[str, Any] = {"optimizer": type(optimizer).__name__}
    momentum = getattr(optimizer, "momentum", None)
    if isinstance(momentum, (int, float)) and not isinstance(momentum, bool):
        facts["momentum"] = float(momentum)
    return facts


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

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _count_samples(x: Any, y: Any) -> int:
    """Rows of the array data ``x`` (and ``y``), checked to agree."""
    leaves = [leaf for leaf in keras.tree.flatten(x) if leaf is not None]
    if not leaves or not all(len(getattr(leaf, "shape", ())) >= 1 for leaf in leaves):
        raise InvalidArgumentError(
            f"{_FIND_LR}: x must be an array (or a list or dict of arrays) or a keras.utils.PyDataset; "
            f"got {type(x).__name__}. For other inputs pass lrscout.keras.LRFinder to model.fit as a "
            "callback."
        )
    n = int(leaves[0].shape[0])
    for name, data in (("x", x), ("y", y)):
        for leaf in keras.tree.flatten(data) if data is not None else []:
            rows = getattr(leaf, "shape", (None,))
            if leaf is not None and (len(rows) < 1 or rows[0] != n):
                raise InvalidArgumentError(
                    f"{_FIND_LR}: every array of {name} must have one row per sample ({n}); "
                    f"got shape {tuple(rows)}."
                )
    if n < 1:
        raise InvalidArgumentError(f"{_FIND_LR}: x must hold at least one sample; got {n}.")
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
    extend: bool = True,
    shuffle: bool = True,
    progress: bool = True,
    info: Mapping[str, Any] | None = None,
) -> RangeTestResult:
    """Run an LR range test on a compiled Keras 3 model and leave the model as it was.

    Calls ``model.fit`` with an :class:`LRFinder` for
    ``ceil(num_steps / steps_per_epoch)`` epochs, so the ramp from
    ``start_lr`` to ``end_lr`` gets its ``num_steps`` steps (fewer if the
    loss diverges first). Afterwards, and also after an exception or
    ``KeyboardInterrupt`` inside ``fit``, the weights and every optimizer
    variable are bitwise as before, a ``LearningRateSchedule`` is back in
    place and ``model.history`` is the ``History`` of the last training
    (absent if there was none), not that of the test.

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
        extend: Keep ramping past ``end_lr`` while the loss has not turned
            up, for at most ``num_steps`` more steps (see
            :func:`lrscout.range_test`); ``fit`` is given the epochs for them.
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
        >>> result = find_lr(model, x, y, batch_size=16, start_lr=1e-3, end_lr=1.0, num_steps=6, extend=False)
        >>> len(result), float(result.lrs[-1]), result.info["steps_per_epoch"]
        (6, 1.0, 4)
    """
    ramp: dict[str, Any] = {
        "num_steps": num_steps,
        "mode": mode,
        "smoothing": smoothing,
        "divergence_factor": divergence_factor,
        "stop_on_divergence": stop_on_divergence,
        "extend": extend,
    }
    # Every argument is checked before fit, with this function's name; fit
    # gets room for every step the test may run (the extension's too).
    steps = RangeTestState(start_lr=start_lr, end_lr=end_lr, where=_FIND_LR, **ramp).max_steps
    if not isinstance(model, keras.Model):
        raise InvalidArgumentError(f"{_FIND_LR}: model must be a keras.Model; got {type(model).__name__}.")
    if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", False):
        raise InvalidArgumentError(
            f"{_FIND_LR}: model must be compiled with an optimizer and a loss; got an uncompiled "
            f"{type(model).__name__}. Call model.compile(optimizer=..., loss=...) first."
        )
    batch = check_batch_size(batch_size, where=_FIND_LR)
    shuffle = check_bool(shuffle, "shuffle", where=_FIND_LR)
    show = check_bool(progress, "progress", where=_FIND_LR)
    extra = json_copy(info, where=_FIND_LR)

    fit_kwargs: dict[str, Any] = {"verbose": 0, "shuffle": shuffle}
    if isinstance(x, keras.utils.PyDataset):
        if y is not None:
            raise InvalidArgumentError(
                f"{_FIND_LR}: y must be None when x is a keras.utils.PyDataset; got {type(y).__name__}. "
                "The dataset yields (x, y) batches itself."
            )
        n_samples = None
        batch = None
        per_epoch = x.num_batches
        if per_epoch is None:
            # An endless dataset: one epoch of exactly the steps of the test.
            fit_kwargs.update(epochs=1, steps_per_epoch=steps)
        fit_args: tuple[Any, ...] = (x,)
    else:
        n_samples = _count_samples(x, y)
        batch = n_samples if batch is None else batch
        per_epoch = math.ceil(n_samples / batch)
        fit_kwargs["batch_size"] = batch
        fit_args = (x, y)
    if per_epoch is not None:
        fit_kwargs["epochs"] = math.ceil(steps / per_epoch)

    finder = LRFinder(
        start_lr,
        end_lr,
        **ramp,
        info={"batch_size": batch, "n_samples": n_samples, "steps_per_epoch": per_epoch, **extra},
    )
    bar = _ProgressBar(finder) if show else None
    # fit replaces model.history with the History of its own run; the user's
    # training history from an earlier fit is theirs to keep.
    history = getattr(model, "history", _NO_HISTORY)
    try:
        model.fit(*fit_args, callbacks=[finder] if bar is None else [finder, bar], **fit_kwargs)
    finally:
        if bar is not None:
            bar.close()
        finder._end_test()
        if history is not _NO_HISTORY:
            model.history = history
        elif hasattr(model, "history"):
            del model.history
    return finder.result
