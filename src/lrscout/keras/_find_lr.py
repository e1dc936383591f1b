"""The LR range test of a Keras 3 model: the ``LRFinder`` callback and ``find_lr``.

``LRFinder`` runs the test inside the user's own ``model.fit``; ``find_lr``
runs that ``fit`` itself (and, with ``refine=True``, the refinement's probes
through ``train_on_batch``) and leaves the model as it was in every case.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .._engine import RangeTestState, _progress_bar, warn_about
from .._errors import InvalidArgumentError
from .._jsonio import json_copy
from .._plan import SCHEDULE_OPTIONS, Plan, check_total_steps, resolve_plan
from .._refine import refine as refine_stage
from .._result import RangeTestResult, Suggestion
from .._validation import check_batch_size, check_bool, check_float, check_int, check_option, fail
from ..plotting._plots import require_matplotlib
from ._batch_logs import StepRecorder
from ._data import TrainingData, training_data
from ._keras import keras
from ._plan import optimizer_plan
from ._random_state import GlobalRandomState
from ._snapshot import LearningRateDriver, LearningRateSwap, RampSchedule, TrainingSnapshot, innermost

if TYPE_CHECKING:
    from matplotlib.axes import Axes

_FINDER = "LRFinder"
_FIND_LR = "find_lr"
# Steps per host read of the losses (the PyTorch finder's default sync_every).
_SYNC_EVERY = 8
# An attribute of the model that was absent before find_lr (model.history of a model never fitted).
_ABSENT = object()


class LRFinder(keras.callbacks.Callback):  # type: ignore[misc]
    """Keras 3 callback that runs an LR range test (Smith 2017) inside ``model.fit``.

    Batch ``t`` trains at the ``t``-th value of a ramp from ``min_lr`` to
    ``max_lr`` (both exact); after it, the batch's own loss is recorded. The
    ramp, smoothing and stop rule are lrscout's core
    (:class:`lrscout.RangeTestState`), so the numbers equal those of
    :func:`lrscout.range_test` and every other integration. For linear mode
    step ``t`` of ``N`` gets

    .. math:: \\eta_t = \\eta_{min} + (\\eta_{max} - \\eta_{min})\\, t / (N - 1)

    For the test the ramp takes the place of the optimizer's learning rate
    (a float's variable or a ``LearningRateSchedule``) as a schedule that
    the compiled training step reads from the iteration count, and the
    training step is wrapped to return each batch's own loss and metrics:
    Keras logs the running mean over the epoch, weighted by batch size, and
    the finder recovers each batch's value exactly from the metrics' state
    (short last batch and sample weights included; a value that a custom
    ``train_step`` returns without updating a metric is taken as it is; see
    ``lrscout/keras/_batch_logs.py``). Both run inside the compiled step, so
    the callback adds no work between steps beyond reading the losses, 8
    steps at a time. Training stops through ``model.stop_training`` once the
    smoothed loss exceeds ``divergence_factor`` times its best value, a loss
    is not finite, or the ``N`` steps are done; after a stop inside a chunk,
    ``fit`` may run the rest of that chunk (under 8 steps), which the result
    and :attr:`history` leave out and the restore undoes.

    When training ends, the weights, every optimizer variable (iterations,
    moments, learning rate) and the metrics' state are assigned back
    bitwise, also those that the first step created (TensorFlow builds the
    optimizer and the compiled metrics when it first traces the step; they
    go back to their fresh values), the learning rate or schedule is put
    back, and so is the model's own training function, so the next ``fit``
    trains at the model's own rate. After an exception or
    ``KeyboardInterrupt`` inside a training step the finder puts the model
    back as well; one raised elsewhere in ``fit`` (another callback, the
    data) leaves the model as the test made it, since Keras then calls no
    hook. :func:`lrscout.keras.find_lr` restores it in every case.

    The suggestion is for the training to come (its plan, in
    ``result.info["plan"]``): the schedule and length given, else the
    optimizer's own learning rate as it stands when training begins, read
    before the test replaces it (a ``CosineDecay`` is a cosine over its
    ``decay_steps``, a ``PolynomialDecay`` with ``power=1`` is linear, a
    float is constant; see :func:`lrscout.keras.find_lr`).

    Everything goes through Keras's own API and variables, so the
    tensorflow, torch and JAX backends behave the same.

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
            ends. ``False`` leaves them as the test left them (a float
            learning rate at the ramp's last value); the learning rate or
            schedule object and the training function are put back either way.
        schedule: The schedule you will train with, which the suggestion is
            for (``"constant"``, ``"one_cycle"``, ``"cosine"``,
            ``"linear"``); ``"auto"`` reads it from the optimizer's learning
            rate, else constant. See :meth:`lrscout.RangeTestResult.suggest`.
        total_steps: Optimizer steps of that training; ``None`` takes the
            schedule's own length where it has one (``decay_steps``).
        train_epochs: The training's epochs instead of ``total_steps``,
            counted in the steps per epoch of the ``fit`` the finder runs in
            (else ``steps_per_epoch``). Not ``epochs``, which are the test's.
        info: JSON-serialisable facts to keep in ``result.info``.

    Attributes:
        history: ``{"lr": [...], "iterations": [1, ..., n], "loss": [...],
            <metric>: [...]}``, one entry per batch of the test, every key of
            Keras's logs recovered per batch; complete at the end of each
            epoch. Reset when training begins.

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
        schedule: str = "auto",
        total_steps: int | None = None,
        train_epochs: float | None = None,
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
        self.schedule = check_option(schedule, "schedule", SCHEDULE_OPTIONS, where=_FINDER)
        self.total_steps = check_total_steps(total_steps, where=_FINDER)
        self.train_epochs = (
            None
            if train_epochs is None
            else check_float(train_epochs, "train_epochs", where=_FINDER, positive=True)
        )
        if self.train_epochs is not None and self.total_steps is not None:
            fail(
                _FINDER,
                "train_epochs",
                "None when total_steps is given (they say the same thing)",
                train_epochs,
                "Pass one of total_steps and train_epochs.",
            )
        self._info = json_copy(info, where=_FINDER)
        self.history: dict[str, list[Any]] = {}
        self._state: RangeTestState | None = None
        self._snapshot: TrainingSnapshot | None = None
        self._swap: LearningRateSwap | None = None
        self._recorder: StepRecorder | None = None
        self._pending: list[Mapping[str, Any]] = []
        # Losses not yet read to the host: one read per chunk of _SYNC_EVERY steps, as the
        # PyTorch finder reads them (a read per step stalls JAX's asynchronous dispatch).
        self._unread: list[Any] = []
        self._optimizer_info: dict[str, Any] = {}
        self._plan = Plan()
        self._steps_per_epoch: int | None = None
        # find_lr's plan, resolved before fit from its own data (fit then runs the test's epochs).
        self._fixed_plan: Plan | None = None
        # The name that errors raised while training begins give: find_lr sets its own.
        self._where = _FINDER

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
            other = (
                ", or run lrscout.keras.find_lr, which tests one step at a time"
                if self._where == _FINDER
                else ""
            )
            raise InvalidArgumentError(
                f"{self._where}: model.steps_per_execution must be 1; got {per_call!r}. Keras calls the "
                "batch hooks once per execution, so the learning rate could not change at every step: "
                f"compile the model with steps_per_execution=1 for the range test{other}."
            )
        if keras.backend.backend() == "jax" and getattr(keras.config, "is_nnx_enabled", lambda: False)():
            raise InvalidArgumentError(
                f"{self._where}: Keras's NNX mode must be off for the range test; got "
                "keras.config.is_nnx_enabled() == True. Run the test without KERAS_NNX_ENABLED."
            )
        num_steps = self._planned_steps()
        self._plan = self._fixed_plan if self._fixed_plan is not None else self._training_plan(model)
        state = self._new_state(
            num_steps, self.mode, self.smoothing, self.divergence_factor, self.stop_on_divergence
        )
        self._state = state
        self.history = {}
        self._pending = []
        self._unread = []
        try:
            self._snapshot = TrainingSnapshot(model) if self.restore else None
            start = int(keras.ops.convert_to_tensor(innermost(model.optimizer).iterations.value))
            rates = RampSchedule([state.lr_at(step) for step in range(state.max_steps)], start)
            self._swap = LearningRateSwap(model.optimizer, rates)
            self._recorder = StepRecorder(model, first_call=self._before_first_step, on_error=self._end_test)
        except BaseException:
            self._end_test()
            raise
        self._optimizer_info = _optimizer_facts(model.optimizer)

    def _before_first_step(self, args: tuple[Any, ...]) -> None:
        """Build what TensorFlow would build when it traces the step, and save it before it trains."""
        model = self._model
        spec = getattr(args[0], "element_spec", None) if args else None
        if keras.backend.backend() == "tensorflow" and spec is not None and _unbuilt(model):
            # What Keras's TensorFlow trainer does itself under a distribution
            # strategy, and the other backends' trainers always.
            try:
                with model.distribute_strategy.scope():
                    model._symbolic_build(data_batch=spec)
            except Exception:
                pass  # the trace then builds it, and the check after the first step speaks
        if self._snapshot is not None:
            self._snapshot.add_new()

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        state, recorder = self._state, self._recorder
        if state is None or recorder is None or state.done:
            return
        own = recorder.take()
        if own is None or "loss" not in own:
            self._end_test()
            raise InvalidArgumentError(
                f"{self._where}: the training step must return the loss under the name 'loss'; got keys "
                f"{sorted(own or logs or {})}. A custom train_step must return it under that name."
            )
        if state.step == 0 and self._snapshot is not None:
            created = self._snapshot.unsaved()
            if created:
                self._end_test()
                raise InvalidArgumentError(
                    f"{self._where}: the model must be built before the test; its first step created "
                    f"{', '.join(created)}, whose values before that step are lost. Build it first: "
                    "call it on a batch (model(x[:1])) or model.build(input_shape)."
                )
        self._pending.append(own)
        self._unread.append(own["loss"])
        ahead = state.step + len(self._unread)
        if len(self._unread) >= _SYNC_EVERY or ahead in (state.num_steps, state.max_steps):
            self._read()

    def _read(self) -> None:
        """Record the unread losses (one host read for the chunk); stop the fit where the test ends."""
        state, chunk, self._unread = self._state, self._unread, []
        if state is None or not chunk or state.done:
            return
        if state.record([float(loss) for loss in chunk]):
            # self._model, not self.model: under JAX the property syncs the whole training state.
            self._model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._read()
        self._flush()

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        self._read()
        self._end_test()
        if self._state is not None:
            warn_about(self.result)

    def _flush(self) -> None:
        """Move the recorded steps' values into :attr:`history` (one conversion per key)."""
        pending, self._pending = self._pending, []
        state = self._state
        if not pending or state is None:
            return
        history = self.history
        first = len(history.get("iterations", []))
        # Steps run past the test's end within the last chunk are not part of it.
        pending = pending[: max(0, state.step - first)]
        if not pending:
            return
        steps = range(first, first + len(pending))
        history.setdefault("lr", []).extend(state.lr_at(step) for step in steps)
        history.setdefault("iterations", []).extend(step + 1 for step in steps)
        keys = list(dict.fromkeys(key for own in pending for key in own))
        for key in keys:
            if key == "loss":
                history.setdefault(key, []).extend(state.losses[first : first + len(pending)])
            else:
                history.setdefault(key, []).extend(_column([own.get(key) for own in pending]))

    def _end_test(self) -> None:
        """Put the model back as it was (idempotent; also called by ``find_lr`` on errors)."""
        self._flush()
        recorder, swap, snapshot = self._recorder, self._swap, self._snapshot
        if (snapshot is not None or swap is not None) and hasattr(self._model, "jax_state_sync"):
            # Under JAX, fit holds the training state outside the variables and
            # syncs it into them when it ends, also on an error: sync it now,
            # so that it cannot overwrite the restored values afterwards.
            self._model.jax_state_sync()
        self._recorder = self._swap = self._snapshot = None
        if recorder is not None:
            recorder.close()
        if swap is not None:
            swap.close()
            state = self._state
            if (
                snapshot is None
                and state is not None
                and state.step
                and isinstance(swap.original, keras.Variable)
            ):
                swap.original.assign(state.lr_at(state.step - 1))
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

    def _training_plan(self, model: Any) -> Plan:
        """The plan of the training to come: the arguments, then the optimizer's rate (before the swap)."""
        fit_steps = (self.params or {}).get("steps")
        per_epoch = int(fit_steps) if fit_steps is not None else self.steps_per_epoch
        self._steps_per_epoch = per_epoch
        total = self.total_steps
        if self.train_epochs is not None:
            if per_epoch is None:
                fail(
                    self._where,
                    "train_epochs",
                    "given with data whose steps per epoch are known",
                    self.train_epochs,
                    "fit cannot tell the steps per epoch here: pass total_steps (the training's "
                    "optimizer steps) or steps_per_epoch instead.",
                )
            total = max(1, math.ceil(self.train_epochs * per_epoch))
        held = None
        if self.schedule == "auto" or total is None:
            held = optimizer_plan(innermost(model.optimizer)._learning_rate)
        return resolve_plan(self.schedule, total, held=held, where=self._where)

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
            "steps_per_epoch": self._steps_per_epoch,
            "plan": self._plan.to_dict(),
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
        original callback did: a window where matplotlib has an interactive
        backend, nothing in a script without a display. Pass ``path`` to
        save the figure instead.

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


def _unbuilt(model: Any) -> bool:
    """Whether part of the model, its compiled loss and metrics or its optimizer awaits its first step."""
    parts = [model.optimizer, getattr(model, "_compile_metrics", None), getattr(model, "_compile_loss", None)]
    return not model.built or any(part is not None and not part.built for part in parts)


def _column(values: list[Any]) -> list[Any]:
    """One history column from the steps' backend values: floats, or lists for vector values."""
    if all(value is not None for value in values):
        try:
            rows = _to_list(keras.ops.stack([keras.ops.convert_to_tensor(v) for v in values]))
        except (TypeError, ValueError):
            pass
        else:
            return [_one(row) for row in rows]
    return [None if value is None else _one(_to_list(keras.ops.convert_to_tensor(value))) for value in values]


def _to_list(tensor: Any) -> Any:
    # NumPy's __array__ protocol warns on torch tensors under NumPy 2; tolist() does not.
    return tensor.tolist() if hasattr(tensor, "tolist") else tensor.numpy().tolist()


def _one(value: Any) -> Any:
    """A step's value as the history keeps it: a float, or a list for a vector."""
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return float(value) if not isinstance(value, list) else value


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


class _KeptAttributes:
    """Attributes of the model that ``fit`` (and the test's set-up) change, to put back."""

    _NAMES = ("history", "stop_training", "train_function", "test_function", "steps_per_execution")

    def __init__(self, model: Any) -> None:
        self._model = model
        self._values = {name: getattr(model, name, _ABSENT) for name in self._NAMES}

    def restore(self) -> None:
        for name, value in self._values.items():
            if value is not _ABSENT:
                setattr(self._model, name, value)
            elif hasattr(self._model, name):
                delattr(self._model, name)


def find_lr(
    model: Any,
    x: Any,
    y: Any = None,
    *,
    batch_size: int | None = 32,
    validation_data: Any = None,
    validation_split: float = 0.0,
    steps_per_epoch: int | None = None,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    mode: str = "exponential",
    smoothing: float = 0.98,
    divergence_factor: float = 4.0,
    stop_on_divergence: bool = True,
    extend: bool = True,
    refine: bool = False,
    schedule: str = "auto",
    total_steps: int | None = None,
    epochs: float | None = None,
    shuffle: bool = True,
    progress: bool = True,
    info: Mapping[str, Any] | None = None,
) -> RangeTestResult:
    """Run an LR range test on a compiled Keras 3 model and leave the model as it was.

    Calls ``model.fit`` with an :class:`LRFinder` for as many epochs as the
    ramp from ``start_lr`` to ``end_lr`` needs for its ``num_steps`` steps
    (fewer if the loss diverges first). Afterwards, and also after an
    exception or ``KeyboardInterrupt`` inside ``fit``, the weights, every
    optimizer variable and the metrics' state are bitwise as before (those
    that the test's first step created at their fresh values), the learning
    rate or ``LearningRateSchedule`` is back in place, and so are the
    model's ``history`` (the ``History`` of the last training, absent if
    there was none), its train function and ``steps_per_execution``, and
    Python's, NumPy's, torch's, TensorFlow's and Keras's global random
    states.

    The suggestion is for the training you will run (``result.info["plan"]``,
    see :meth:`lrscout.RangeTestResult.suggest`): the ``schedule`` and
    ``total_steps`` (or ``epochs``) given, and for what is not given the
    plan the optimizer holds. A ``LearningRateSchedule`` is recognised by
    sampling it at whole steps: ``CosineDecay`` is a cosine over
    ``warmup_steps + decay_steps`` (one-cycle after a warm-up of 15 % of the
    run or more), ``PolynomialDecay`` with ``power=1`` is linear over
    ``decay_steps``, a schedule of your own is recognised by its shape and
    ends where it reaches zero; a float rate is constant, of the length
    ``epochs`` gives. A staircase (``PiecewiseConstantDecay``) or an
    ``ExponentialDecay`` is none of lrscout's schedules: the suggestion is
    then for a constant rate unless ``schedule`` says otherwise.

    Args:
        model: A compiled ``keras.Model``; its optimizer is the one tested.
            ``steps_per_execution`` > 1 is set to 1 for the test (the rate
            changes at every step) and put back.
        x: What ``fit`` takes: an array (NumPy or backend tensor), a list
            or dict of arrays, a ``tf.data.Dataset`` (finite or repeated), a
            ``keras.utils.PyDataset``, a torch ``DataLoader`` or a generator,
            the last four yielding ``(x, y)`` or ``(x, y, sample_weight)``
            batches. Data shorter than the test is read again (a generator
            cannot be: the test then ends with its data).
        y: Targets for array inputs; ``None`` with the other kinds, and with
            array inputs only for a model whose loss needs no targets (no
            compiled loss, or a custom ``train_step``).
        batch_size: Samples per step for array inputs; ``None`` is the whole
            set (batch gradient descent). Datasets make their own batches.
        validation_data: Held-out data to score the refinement's probes on
            (``refine=True``): ``(x_val, y_val)``, ``(x_val, y_val,
            sample_weight_val)``, a ``tf.data.Dataset`` or a ``PyDataset``
            (re-iterable: it is read several times per probe).
        validation_split: Instead of ``validation_data``, the fraction of
            array inputs held out for the probes, the last samples, as
            ``fit`` takes it; the test trains on the rest.
        steps_per_epoch: Batches per epoch of a dataset or generator, as in
            ``fit``; ``None`` takes one pass (or, for endless data, the whole
            test in one epoch). Not with array inputs.
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
        refine: After the test, run lrscout's refinement stage
            (``lrscout._refine``): short probe runs at candidate rates around
            the default suggestion, each from the state the test started
            from, the same batches in each (``train_on_batch``), scored on
            the mean loss over ``validation_data`` (or ``validation_split``)
            taken during their last half, else on their own training losses.
            ``result.suggestion`` is then the refined rate
            (``result.info["refinement"]``). Costs a few times the test.
        schedule: The schedule you will train with, which the suggestion
            is for (``"constant"``, ``"one_cycle"``, ``"cosine"``,
            ``"linear"``); ``"auto"`` reads it from the optimizer's learning
            rate, else constant.
        total_steps: Optimizer steps of that training; ``None`` takes the
            schedule's own length where it has one.
        epochs: The training's epochs instead of ``total_steps``, in steps
            per epoch of ``x`` (``ceil(n_samples / batch_size)`` for arrays,
            after ``validation_split``; a dataset's length, or
            ``steps_per_epoch``). Data of unknown length needs
            ``total_steps``.
        shuffle: Let ``fit`` shuffle the samples (or the batch order of a
            ``PyDataset``) at each epoch.
        progress: Show a tqdm bar over the steps (Keras's own output is off).
        info: JSON-serialisable facts to keep in ``result.info``, next to
            ``framework``, ``backend``, ``batch_size``, ``n_samples``,
            ``steps_per_epoch`` and ``plan`` (give ``{"batch_size": ...}``
            for datasets: the default suggestion reads it).

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
        >>> schedule = keras.optimizers.schedules.CosineDecay(0.1, decay_steps=400)
        >>> model.compile(optimizer=keras.optimizers.SGD(schedule), loss="mse")
        >>> result = find_lr(model, x, y, batch_size=16, num_steps=6, extend=False, progress=False)
        >>> result.info["plan"]
        {'schedule': 'cosine', 'total_steps': 400, 'source': 'keras'}
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
    refine = check_bool(refine, "refine", where=_FIND_LR)
    extra = json_copy(info, where=_FIND_LR)
    data = training_data(
        model,
        x,
        y,
        batch_size=batch,
        steps_per_epoch=steps_per_epoch,
        validation_data=validation_data,
        validation_split=validation_split,
        shuffle=shuffle,
        refine=refine,
        steps=steps,
        where=_FIND_LR,
    )
    # The training's plan, from its own data (fit runs the test's epochs, not the training's).
    plan = resolve_plan(schedule, total_steps, epochs, steps_per_epoch=data.steps_per_epoch, where=_FIND_LR)
    if schedule == "auto" or plan.total_steps is None:
        held = optimizer_plan(innermost(model.optimizer)._learning_rate)
        plan = resolve_plan(
            schedule, total_steps, epochs, steps_per_epoch=data.steps_per_epoch, held=held, where=_FIND_LR
        )
    finder = LRFinder(
        start_lr,
        end_lr,
        **ramp,
        info={
            "batch_size": data.batch_size,
            "n_samples": data.n_samples,
            "steps_per_epoch": data.steps_per_epoch,
            **extra,
        },
    )
    finder._where = _FIND_LR
    finder._fixed_plan = plan
    bar = _ProgressBar(finder) if show else None
    # fit replaces model.history with the History of its own run; the user's
    # training history from an earlier fit is theirs to keep.
    kept = _KeptAttributes(model)
    randomness = GlobalRandomState()
    try:
        model.steps_per_execution = 1
        model.fit(*data.fit_args, callbacks=[finder] if bar is None else [finder, bar], **data.fit_kwargs)
        if bar is not None:
            bar.close()
        finder._end_test()
        state = finder._state
        if state is None or not state.step:
            raise InvalidArgumentError(
                f"{_FIND_LR}: x must yield at least one batch; got a {type(x).__name__} that yielded none."
            )
        result = finder.result
        if refine:
            result = _refined(model, data, result, randomness, show)
    finally:
        if bar is not None:
            bar.close()
        finder._end_test()
        kept.restore()
        randomness.restore()
    return result


def _refined(
    model: Any, data: TrainingData, result: RangeTestResult, randomness: GlobalRandomState, show: bool
) -> RangeTestResult:
    """``result`` through the refinement stage, its probes trained with ``train_on_batch``."""
    batches_of = data.probe_batches
    if batches_of is None:  # pragma: no cover - training_data refuses one-shot data with refine
        raise InvalidArgumentError(f"{_FIND_LR}: refine=True needs re-iterable data.")
    # The model is back where the test started: each probe starts there too.
    snapshot = TrainingSnapshot(model)
    driver = LearningRateDriver(model.optimizer, result.start_lr)
    try:
        model.make_train_function(force=True)

        def start() -> Callable[[float], float]:
            snapshot.restore()
            randomness.restore()
            batches = batches_of()

            def step_fn(lr: float) -> float:
                x, y, weights = next(batches)
                driver.set(lr)
                return _loss_of(model.train_on_batch(x, y, sample_weight=weights, return_dict=True), "x")

            return step_fn

        held_out = data.validation_batches
        evaluate: Callable[[], float] | None = None
        if held_out is not None:

            def evaluate() -> float:
                # Keras's evaluate, a batch at a time: the loss weighted by
                # batch size, without building a new data pipeline per call.
                total = count = 0.0
                for x, y, weights in held_out():
                    size = float(keras.tree.flatten(x)[0].shape[0])
                    logs = model.test_on_batch(x, y, sample_weight=weights, return_dict=True)
                    total += _loss_of(logs, "validation_data") * size
                    count += size
                return total / count

        return refine_stage(result, start, evaluate=evaluate, progress=show, where=_FIND_LR)
    finally:
        driver.close()
        snapshot.restore()


def _loss_of(logs: Mapping[str, Any], source: str) -> float:
    if "loss" not in logs:
        raise InvalidArgumentError(
            f"{_FIND_LR}: a step on {source} must give the loss under the name 'loss'; got keys "
            f"{sorted(logs)}. A custom train_step or test_step must return it under that name."
        )
    return float(logs["loss"])
