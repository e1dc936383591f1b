"""``LRFinder``: the LR range test as a Keras 3 callback."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._engine import RangeTestState
from .._errors import InvalidArgumentError
from .._result import RangeTestResult, Suggestion
from .._validation import check_bool, check_float, check_int
from ._batch_logs import BatchLogs
from ._keras import keras
from ._state import LearningRateDriver, TrainingSnapshot

if TYPE_CHECKING:
    from matplotlib.axes import Axes

_WHERE = "LRFinder"


def check_info(info: Mapping[str, Any] | None, *, where: str) -> dict[str, Any]:
    """``info`` as a dict, checked now that it will fit in the result's JSON."""
    if info is None:
        return {}
    if not isinstance(info, Mapping):
        raise InvalidArgumentError(f"{where}: info must be a mapping of JSON values; got {info!r}.")
    try:
        json.dumps(dict(info), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidArgumentError(
            f"{where}: info must hold JSON values only; got {info!r} ({error})."
        ) from None
    return dict(info)


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
        restore: bool = True,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.min_lr = check_float(min_lr, "min_lr", where=_WHERE, positive=True)
        self.max_lr = check_float(max_lr, "max_lr", where=_WHERE, positive=True)
        if self.max_lr <= self.min_lr:
            raise InvalidArgumentError(
                f"{_WHERE}: max_lr must be greater than min_lr ({self.min_lr!r}); got {self.max_lr!r}."
            )
        self.steps_per_epoch = _optional_int(steps_per_epoch, "steps_per_epoch", minimum=1)
        self.epochs = _optional_int(epochs, "epochs", minimum=1)
        self.num_steps = _optional_int(num_steps, "num_steps", minimum=2)
        if self.num_steps is not None and (self.steps_per_epoch is not None or self.epochs is not None):
            raise InvalidArgumentError(
                f"{_WHERE}: num_steps must be None when steps_per_epoch or epochs is given; "
                f"got {num_steps!r}. Give num_steps, or steps_per_epoch and epochs."
            )
        # Building a throwaway state checks the remaining settings now, with
        # the core's rules and messages, rather than at the first fit.
        probe = self._new_state(2, mode, smoothing, divergence_factor, stop_on_divergence)
        self.mode = probe.mode
        self.smoothing = probe.smoothing
        self.divergence_factor = probe.divergence_factor
        self.stop_on_divergence = probe.stop_on_divergence
        self.restore = check_bool(restore, "restore", where=_WHERE)
        self._info = check_info(info, where=_WHERE)
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
            where=_WHERE,
        )

    # Keras hooks -------------------------------------------------------------

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        model = self.model
        # Checked before anything is changed, so a refusal leaves no trace.
        per_call = getattr(model, "steps_per_execution", 1)
        if per_call != 1:
            raise InvalidArgumentError(
                f"{_WHERE}: model.steps_per_execution must be 1; got {per_call!r}. Keras calls the "
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
                f"{_WHERE}: the training logs must hold a 'loss'; got keys {sorted(values)}. "
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
                f"{_WHERE}: steps_per_epoch * epochs must be at least 2; got {steps} * {epochs}. "
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
                f"{_WHERE}.result: no range test has run yet. "
                "Pass the finder to model.fit(..., callbacks=[lr_finder]) first."
            )
        info = {
            "framework": "keras",
            "backend": keras.backend.backend(),
            **self._optimizer_info,
            **self._info,
        }
        return self._state.result(info)

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
        drawn = self.result.plot(ax=ax, path=path)
        if ax is None and path is None:
            _show()
        return drawn

    def plot_lr(self, ax: Axes | None = None, path: str | os.PathLike[str] | None = None) -> Axes:
        """Plot the learning rate against the iteration; like :meth:`plot_loss` for the rest."""
        drawn = self.result.plot_lr(ax=ax, path=path)
        if ax is None and path is None:
            _show()
        return drawn


def _optional_int(value: Any, name: str, *, minimum: int) -> int | None:
    if value is None:
        return None
    return check_int(value, name, where=_WHERE, minimum=minimum)


def _not_told(name: str) -> ValueError:
    return ValueError(
        f"{_WHERE}: {name} must be given when fit cannot tell it; got None. "
        f"Pass {name}=... (or num_steps=...) to LRFinder."
    )


def _show() -> None:
    from ..plotting._plots import require_matplotlib

    require_matplotlib().show()


def _optimizer_facts(optimizer: Any) -> dict[str, Any]:
    """The optimizer's class and heavy-ball momentum, which the default suggestion reads."""
    facts: dict[str, Any] = {"optimizer": type(optimizer).__name__}
    momentum = getattr(optimizer, "momentum", None)
    if isinstance(momentum, (int, float)) and not isinstance(momentum, bool):
        facts["momentum"] = float(momentum)
    return facts
