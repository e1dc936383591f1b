"""The LR range test inside a Lightning fit: the ``LRFinder`` callback and ``find_lr``.

``LRFinder`` runs the test in whatever ``trainer.fit`` it is given to;
``find_lr`` runs it in a fit of its own, on a trainer made from the user's
trainer's settings, and leaves the user's trainer, model and callbacks as
they were.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import shutil
import signal
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import lightning
import lightning.pytorch as pl
import torch
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.callbacks import (
    BatchSizeFinder,
    Checkpoint,
    EarlyStopping,
    LearningRateFinder,
    ModelSummary,
    ProgressBar,
    Timer,
)
from lightning.pytorch.loggers.logger import DummyLogger
from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from lightning.pytorch.utilities.parsing import lightning_hasattr, lightning_setattr
from torch import nn

from .._engine import RangeTestState, _progress_bar, warn_about
from .._errors import CurveWarning, InvalidArgumentError, NoSuggestionError
from .._global_rng import GlobalRNG
from .._jsonio import json_copy
from .._plan import Plan, resolve_plan
from .._result import RangeTestResult
from .._validation import check_bool, check_float, check_int, fail
from ..pytorch._distributed import loss_reader, rank_and_world_size
from ..pytorch._find_lr import DEFAULT_START_LR, _optimizer_facts, loader_generators
from ..pytorch._plan import configured_momenta, scheduler_plan
from ..pytorch._snapshot import TrainingSnapshot

_FINDER = "LRFinder"
_FIND_LR = "find_lr"

#: Lightning's own callbacks that watch or end a whole training run; the
#: test's fit in :func:`find_lr` runs without them (and without the user's
#: :class:`LRFinder`, if any).
_LEFT_OUT = (Checkpoint, EarlyStopping, Timer, ProgressBar, ModelSummary, LearningRateFinder, BatchSizeFinder)


class LRFinder(pl.Callback):
    """Lightning callback that runs an LR range test (Smith 2017) inside ``trainer.fit``.

    As Lightning's own ``LearningRateFinder`` callback does, the test runs
    when the fit starts (in ``on_fit_start``), as a training loop of its own;
    then everything it changed is put back and the fit trains as it would
    have without it, from step 0: no checkpoint holds the test's weights, no
    logger or ``metrics.csv`` its losses, and ``trainer.global_step`` counts
    the fit's steps only. With ``update_attr`` (the default, as Lightning's)
    the fit trains at the suggestion, and a log line says which rate was set
    where. During the test the trainer has a ``DummyLogger``, no validation,
    no epoch limit (the loader is started again as needed) and none of the
    callbacks that watch a whole run (checkpointing, early stopping, timer,
    progress bar, model summary, tuner callbacks); the other callbacks run,
    and their ``state_dict()`` is put back afterwards. To run the test alone,
    use :func:`find_lr`, or a fit with ``max_steps=0``.

    The suggestion is for the training the fit will run (the plan): the
    first scheduler ``configure_optimizers`` returns says its schedule and
    length, else the trainer's ``max_steps`` and ``max_epochs`` say its
    length (see ``schedule`` and ``total_steps``); ``result.info["plan"]``
    keeps it. The test runs with the momentum (or Adam's ``betas[0]``) the
    optimizer was given, not the first value of a ``OneCycleLR`` or
    ``CyclicLR`` that cycles it.

    Before each training batch the learning rate of every param group of
    every optimizer is set from the ramp: the first group of the first
    optimizer gets the ramp's ``lr_t``, every other group ``lr_t`` times its
    original ratio to that one. "Original" means the rate a group had before
    any scheduler changed it (PyTorch's schedulers keep it as
    ``initial_lr``), so a warm-up scheduler that set the rate to 0 does not
    matter. Schedulers do not step during the test under automatic
    optimization (they are taken out of the trainer's scheduler list and put
    back after); under manual optimization the ramp overrides whatever they
    set, before every batch.

    Each step's loss is the training step's output (``outputs["loss"]`` or
    the tensor returned), averaged over the batches of one optimizer step
    with gradient accumulation. Losses stay on the device and are read
    ``sync_every`` steps at a time; under DDP each chunk is averaged over the
    ranks, so every rank records the same losses and stops at the same step.
    The ramp, smoothing and stop rule are lrscout's core
    (:class:`lrscout.RangeTestState`). The test stops once the smoothed loss
    exceeds ``divergence_factor`` times its best value, a loss is not finite,
    or ``num_steps`` steps are done.

    When the test ends, and also after an exception (``on_exception``), the
    LightningModule's weights, buffers and gradients, every optimizer's state
    and param groups, the schedulers' state and the AMP gradient scaler are
    put back bitwise as they were when the fit began (in ``on_fit_start``,
    before Lightning clears the gradients or loads a checkpoint given to
    ``fit``; see ``lrscout.pytorch._snapshot.TrainingSnapshot``), and so are
    torch's, NumPy's and Python's global RNG (saved in ``setup``).

    With a spawn-based strategy (``"ddp_spawn"``) the test runs in the
    worker processes and :attr:`result` is there, not in the main process:
    use :func:`find_lr`, which brings it back.

    Args:
        start_lr: First learning rate; ``None`` means ``1e-7``, whatever the
            optimizers' learning rates are.
        end_lr: Last learning rate, greater than ``start_lr``.
        num_steps: Most optimizer steps to run, at least 2.
        mode: ``"exponential"`` or ``"linear"`` ramp.
        smoothing: EMA factor of the smoothed loss, in [0, 1).
        divergence_factor: Stop once the smoothed loss exceeds this multiple
            (> 1) of its best.
        stop_on_divergence: ``False`` runs every step unless a loss is not
            finite.
        extend: Keep ramping past ``end_lr`` while the loss has not turned
            up, for at most ``num_steps`` more steps (see
            :func:`lrscout.range_test`); only as far as the fit runs.
        sync_every: Steps per device-to-host read of the losses, at least 1.
            The result does not depend on it.
        progress: Show a tqdm bar over the steps (global rank 0 only).
        update_attr: After the test, train at the default suggestion, the
            rate for the plan (see ``schedule``): it becomes the peak of
            every param group of every optimizer (times the group's ratio
            to the first group), which is its ``initial_lr`` and the
            schedulers' ``base_lrs``, or a ``OneCycleLR``'s ``max_lr`` (its
            start and end rates scaled with it); the rate a scheduler has
            set for step 0 is scaled likewise (a warm-up at 0 stays at 0).
            The model's learning-rate attribute (``attr_name``) gets it
            too, when it has one; a log line says what was set and for
            which plan. With no suggestion the rates stay and a
            ``CurveWarning`` says why. ``False`` trains at the rates
            ``configure_optimizers`` set.
        attr_name: The attribute ``update_attr`` sets (on the model, its
            ``hparams`` or its datamodule, as Lightning's tuner looks for
            it); ``None`` looks for ``lr``, then ``learning_rate``.
        schedule: The schedule the fit trains with, which the suggestion is
            for (``"constant"``, ``"one_cycle"``, ``"cosine"``,
            ``"linear"``). ``"auto"`` reads it from the first scheduler
            ``configure_optimizers`` returns (in any of its return forms):
            ``OneCycleLR``, ``CosineAnnealingLR``, a ``LambdaLR`` such as
            Hugging Face's linear or cosine warm-up schedules, ...; with no
            scheduler, or one that is none of these (``StepLR``), constant.
        total_steps: Optimizer steps of the fit's training. By default the
            scheduler's length (a scheduler stepped per epoch counts epochs:
            times the optimizer steps per epoch), else what
            ``trainer.estimated_stepping_batches`` counts for the fit's
            ``max_steps`` and ``max_epochs``; unknown for a fit that neither
            bounds, or that runs the test alone (``max_steps=0``).
        epochs: The training's epochs instead of ``total_steps`` (times the
            optimizer steps per epoch of the fit's train dataloader, which
            must have a length).
        info: JSON-serialisable facts to keep in ``result.info``.

    Raises:
        TypeError, ValueError: On bad arguments, here or (for what only the
            fit can tell, such as an optimizer with a learning rate of 0) in
            ``on_train_start``.

    Example:
        >>> import lightning.pytorch as pl, torch
        >>> from torch import nn
        >>> class Regressor(pl.LightningModule):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.layer = nn.Linear(3, 1)
        ...     def training_step(self, batch, batch_idx):
        ...         x, y = batch
        ...         return nn.functional.mse_loss(self.layer(x), y)
        ...     def configure_optimizers(self):
        ...         return torch.optim.SGD(self.parameters(), lr=0.1)
        >>> _ = torch.manual_seed(0)
        >>> x = torch.randn(64, 3)
        >>> data = torch.utils.data.DataLoader(
        ...     torch.utils.data.TensorDataset(x, x @ torch.tensor([[1.0], [-2.0], [0.5]])), batch_size=16)
        >>> model = Regressor()
        >>> before = model.layer.weight.clone()
        >>> finder = LRFinder(start_lr=1e-3, end_lr=1.0, num_steps=8, update_attr=False, progress=False)
        >>> trainer = pl.Trainer(max_epochs=2, callbacks=[finder], logger=False, enable_checkpointing=False,
        ...     enable_progress_bar=False, enable_model_summary=False)
        >>> trainer.fit(model, data)  # the test, then 2 epochs of 4 steps, as without it
        >>> len(finder.result), finder.result.info["optimizer"], trainer.global_step
        (8, 'SGD', 8)
        >>> test_only = pl.Trainer(max_steps=0, callbacks=[LRFinder(num_steps=8, progress=False)],
        ...     logger=False, enable_checkpointing=False, enable_progress_bar=False,
        ...     enable_model_summary=False)
        >>> model = Regressor()
        >>> before = model.layer.weight.clone()
        >>> test_only.fit(model, data)
        >>> torch.equal(model.layer.weight, before), test_only.global_step
        (True, 0)
    """

    def __init__(
        self,
        start_lr: float | None = None,
        end_lr: float = 10.0,
        num_steps: int = 100,
        mode: str = "exponential",
        *,
        smoothing: float = 0.98,
        divergence_factor: float = 4.0,
        stop_on_divergence: bool = True,
        extend: bool = False,
        sync_every: int = 8,
        progress: bool = True,
        update_attr: bool = True,
        attr_name: str | None = None,
        schedule: str = "auto",
        total_steps: int | None = None,
        epochs: float | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self._ramp: dict[str, Any] = {
            "start_lr": DEFAULT_START_LR if start_lr is None else start_lr,
            "end_lr": end_lr,
            "num_steps": num_steps,
            "mode": mode,
            "smoothing": smoothing,
            "divergence_factor": divergence_factor,
            "stop_on_divergence": stop_on_divergence,
            "extend": extend,
        }
        # A throwaway state checks the ramp now, with the core's rules and messages.
        probe = RangeTestState(**self._ramp, where=_FINDER)
        self.start_lr = probe.start_lr
        self.end_lr = probe.end_lr
        self.num_steps = probe.num_steps
        self.mode = probe.mode
        #: The most optimizer steps the test may run (``num_steps``, more with ``extend``).
        self.max_steps = probe.max_steps
        self.sync_every = check_int(sync_every, "sync_every", where=_FINDER, minimum=1)
        self.progress = check_bool(progress, "progress", where=_FINDER)
        self.update_attr = check_bool(update_attr, "update_attr", where=_FINDER)
        if attr_name is not None and (not isinstance(attr_name, str) or not attr_name):
            fail(_FINDER, "attr_name", "a non-empty string or None", attr_name)
        self.attr_name = attr_name
        self._plan_arguments = _check_plan(schedule, total_steps, epochs, where=_FINDER)
        self._info = json_copy(info, where=_FINDER)
        # find_lr's own fit is the test itself; in anyone else's fit the test runs
        # in on_fit_start, before the fit's training, as Lightning's LearningRateFinder does.
        self._fit_is_the_test = False
        self._state: RangeTestState | None = None
        self._testing = False  # between the test's on_train_start and its end
        self._interrupted: KeyboardInterrupt | None = None
        self._snapshots: list[TrainingSnapshot] = []
        self._schedulers: list[tuple[Any, dict[str, Any]]] = []
        self._scheduler_configs: list[Any] = []
        # The fit to come's max_steps and max_epochs, for its length: the user's fit's
        # (on_fit_start), or the trainer's that find_lr was given.
        self._limits: tuple[int, int | None] | None = None
        self._configs: tuple[Any, list[Any]] | None = None
        self._bar: Any = None
        self._rng: GlobalRNG | None = None
        self._facts: dict[str, Any] = {}
        # The test in progress (set in on_train_start).
        self._set_lr: Callable[[float], None] = _no_lr
        self._read: Callable[[list[torch.Tensor]], list[float]] = _no_read
        self._automatic = True
        self._pending: list[torch.Tensor] = []
        self._window: torch.Tensor | None = None
        self._window_batches = 0
        self._steps_run = 0
        self._epochs = 1
        self._global_step = 0
        # Set by find_lr: where a worker process of a spawn-based strategy
        # writes the result for the process that called fit.
        self._result_path: str | None = None
        self._owner_pid = os.getpid()
        # The test's fit has no epoch limit (find_lr's, and the loop of its own
        # that the callback runs): an epoch without a batch (a one-shot
        # iterator run out) ends the test instead of repeating.
        self._epoch_start_step = 0

    # Lightning hooks ---------------------------------------------------------

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        self._end_test()
        self._state = None
        # The first hook of a fit: Lightning draws from the global RNG before
        # training (it starts the train dataloader once, to check it).
        self._rng = GlobalRNG()

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        optimizers = list(trainer.optimizers)
        if not optimizers:
            raise InvalidArgumentError(
                f"{_FINDER}: the LightningModule must return an optimizer from configure_optimizers; "
                "got none. The range test sets the learning rate of the optimizers it trains with."
            )
        # Taken once the optimizers exist, before Lightning clears the
        # gradients and loads a checkpoint given to fit. Every optimizer
        # after the first is saved with its own parameters only.
        scaler = trainer.scaler if isinstance(trainer.scaler, torch.amp.GradScaler) else None
        self._snapshots = [TrainingSnapshot(pl_module, optimizers[0], grad_scaler=scaler)]
        self._snapshots += [TrainingSnapshot(nn.Module(), optimizer) for optimizer in optimizers[1:]]
        configs = trainer.strategy.lr_scheduler_configs
        self._schedulers = [
            (config.scheduler, copy.deepcopy(config.scheduler.state_dict())) for config in configs
        ]
        self._scheduler_configs = list(configs)
        if pl_module.automatic_optimization:
            self._configs = (trainer.strategy, configs)
            trainer.strategy.lr_scheduler_configs = []
        if not self._fit_is_the_test:
            # Before the test's loop changes them: the fit that trains after it.
            self._limits = (trainer.max_steps, trainer.max_epochs)
            self._test_before_training(trainer, pl_module)

    def _test_before_training(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """The test as a fit loop of its own, run now; then the fit goes on as if it had not run.

        As Lightning's ``LearningRateFinder`` callback does: during the test the
        trainer has no loggers of its own (a ``DummyLogger``), none of the
        callbacks that watch a whole run (checkpointing, early stopping, ...),
        no validation and no epoch limit; afterwards its loop progress, its
        callbacks' ``state_dict()``, the global RNG and (through
        :meth:`_end_test`) the model and optimizers are put back, so no
        checkpoint holds the test's weights, no log holds its losses and the
        fit trains from step 0 (at the suggestion, with ``update_attr``).
        """
        loop = trainer.fit_loop
        settings: Any = trainer
        saved = {
            "callbacks": settings.callbacks,
            "loggers": trainer.loggers,
            "max_steps": loop.epoch_loop.max_steps,
            "min_steps": loop.epoch_loop.min_steps,
            "max_epochs": loop.max_epochs,
            "min_epochs": loop.min_epochs,
            "limit_val_batches": settings.limit_val_batches,
            "loop": copy.deepcopy(loop.state_dict()),
        }
        kept = [c for c in settings.callbacks if c is not self and not isinstance(c, (*_LEFT_OUT, LRFinder))]
        callback_states = [(callback, copy.deepcopy(callback.state_dict())) for callback in kept]
        rng = GlobalRNG()
        generators = loader_generators(*_loaders(loop._data_source.instance))
        try:
            settings.callbacks = [*kept, self]
            trainer.loggers = [DummyLogger()] if trainer.loggers else []
            loop.epoch_loop.min_steps, loop.min_epochs = None, None
            if pl_module.automatic_optimization:
                # A step is an optimizer step, as trainer.global_step counts them.
                loop.epoch_loop.max_steps = trainer.global_step + self.max_steps
                loop.max_epochs = -1
            else:
                # global_step counts every optimizer's steps: the test stops itself
                # (trainer.should_stop), within the fit's epochs.
                loop.epoch_loop.max_steps = -1
            settings.limit_val_batches = 0
            loop.restarting = False
            with _quiet_lightning():
                loop.run()
        finally:
            self._end_test()
            settings.callbacks = saved["callbacks"]
            trainer.loggers = saved["loggers"]
            loop.epoch_loop.max_steps = saved["max_steps"]
            loop.epoch_loop.min_steps = saved["min_steps"]
            loop.max_epochs, loop.min_epochs = saved["max_epochs"], saved["min_epochs"]
            settings.limit_val_batches = saved["limit_val_batches"]
            loop.load_state_dict(copy.deepcopy(saved["loop"]))
            loop.restarting = False
            loop.epoch_loop.restarting = False
            trainer.should_stop = False
            # The fit starts its own loaders and fetcher, and keeps no metric the test logged.
            if loop._data_fetcher is not None:
                loop._data_fetcher.teardown()
                loop._data_fetcher = None
            loop._combined_loader = None
            loop.epoch_loop.val_loop._combined_loader = None
            trainer._logger_connector.reset_results()
            trainer._logger_connector.reset_metrics()
            for callback, state in callback_states:
                callback.load_state_dict(state)
            rng.restore()
            for generator, generator_state in generators:
                generator.set_state(generator_state)
        if self.update_attr and self._state is not None:
            self._apply(trainer, pl_module)

    def _apply(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Train on at the default suggestion: every param group (keeping its ratio) and ``attr_name``."""
        try:
            chosen = self.result.suggestion
        except NoSuggestionError as error:
            rank_zero_warn(f"{_FINDER}: the learning rate was not changed: {error}", category=CurveWarning)
            return
        ratios = self._facts["param_group_lr_ratios"]
        groups = [group for optimizer in trainer.optimizers for group in optimizer.param_groups]
        configs = trainer.strategy.lr_scheduler_configs
        cycled = {
            id(group)
            for config in configs
            if isinstance(config.scheduler, torch.optim.lr_scheduler.OneCycleLR)
            for group in config.scheduler.optimizer.param_groups
        }
        for group, ratio in zip(groups, ratios, strict=True):
            _set_peak(group, chosen.lr * ratio, cycled=id(group) in cycled)
        for config in configs:
            scheduler = config.scheduler
            if isinstance(getattr(scheduler, "base_lrs", None), list):
                scheduler.base_lrs = [_base_lr(group) for group in scheduler.optimizer.param_groups]
        names = [self.attr_name] if self.attr_name is not None else ["lr", "learning_rate"]
        attr = next((name for name in names if lightning_hasattr(pl_module, name)), None)
        if attr is None and self.attr_name is not None:
            rank_zero_warn(
                f"{_FINDER}: the model has no attribute {self.attr_name!r} (nor its hparams or datamodule) "
                "to set; only the optimizers' learning rates were set."
            )
        elif attr is not None:
            lightning_setattr(pl_module, attr, chosen.lr)
        where = "the optimizers' param groups" + ("" if attr is None else f" and model.{attr}")
        rank_zero_info(
            f"{_FINDER}: learning rate set to {chosen.lr:.3g} (lrscout's {chosen.method} suggestion "
            f"{_for_plan(chosen)}) on {where}; update_attr=False keeps the rate configure_optimizers set."
        )

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._snapshots:
            return  # the fit's own training, after the test ran in on_fit_start
        optimizers = list(trainer.optimizers)
        groups = [group for optimizer in optimizers for group in optimizer.param_groups]
        first = check_float(
            _base_lr(groups[0]),
            "the first param group's learning rate",
            where=_FINDER,
            positive=True,
            fix="The ramp keeps every group's ratio to the first group's learning rate.",
        )
        ratios = [_base_lr(group) / first for group in groups]
        state = RangeTestState(**self._ramp, where=_FINDER)
        plan, steps_per_epoch = self._plan(trainer)
        # The test runs with the momentum the optimizer was given, not a cycle's first value
        # (the snapshots taken in on_fit_start put the scheduler's back).
        for optimizer in optimizers:
            for group, key, value in configured_momenta(optimizer):
                group[key] = value
        self._set_lr = _lr_setter(groups, ratios)
        _, world_size = rank_and_world_size()
        self._read = loss_reader(world_size)
        self._automatic = pl_module.automatic_optimization
        self._pending = []
        self._window = None
        self._window_batches = 0
        self._steps_run = 0
        self._epochs = 1
        self._global_step = trainer.global_step
        self._bar = _progress_bar(state.num_steps) if self.progress and trainer.is_global_zero else None
        loader = trainer.train_dataloader
        batch_size = getattr(loader, "batch_size", None)
        self._facts = {
            "framework": "lightning",
            "lightning_version": lightning.__version__,
            "torch_version": str(torch.__version__),
            "device": str(pl_module.device),
            "precision": str(trainer.precision),
            "strategy": type(trainer.strategy).__name__,
            "world_size": world_size,
            "batch_size": batch_size if isinstance(batch_size, int) else None,
            "accumulation_steps": int(trainer.accumulate_grad_batches),
            "automatic_optimization": bool(pl_module.automatic_optimization),
            "num_optimizers": len(optimizers),
            "param_group_lr_ratios": ratios,
            "sync_every": self.sync_every,
            "steps_per_epoch": steps_per_epoch,
            "plan": plan.to_dict(),
            **_optimizer_facts(optimizers[0]),
            "rerun_hint": (
                "lrscout.lightning.find_lr(trainer, model) with a train dataloader of batch_size={batch_size}"
            ),
        }
        self._state = state
        self._testing = True

    def _plan(self, trainer: pl.Trainer) -> tuple[Plan, int | None]:
        """The plan of the fit to come, and its optimizer steps per epoch (``None`` if unknown).

        The first scheduler ``configure_optimizers`` returned holds the
        schedule (read by :func:`lrscout.pytorch._plan.scheduler_plan`) and,
        where it says, the length, in the scheduler's own steps: one stepped
        every ``frequency`` optimizer steps (``"interval": "step"``) runs
        ``frequency`` times as many optimizer steps, one stepped per epoch
        (``"interval": "epoch"``) ``frequency`` times the optimizer steps per
        epoch (for data without a length, the trainer's length is taken
        instead). Otherwise the length is the trainer's: the optimizer steps
        ``trainer.estimated_stepping_batches`` counts for the fit's
        ``max_steps`` and ``max_epochs`` (unknown when neither bounds it, or
        for ``max_steps=0``). Explicit arguments win, field by field.
        """
        batches = float(trainer.num_training_batches)
        accumulation = int(trainer.accumulate_grad_batches)
        steps_per_epoch = math.ceil(batches / accumulation) if 0 < batches < math.inf else None
        length = None
        if self._limits is not None:
            estimate = _stepping_batches(*self._limits, batches=batches, accumulation=accumulation)
            length = int(estimate) if 0 < estimate < math.inf else None
        held = Plan("constant", length, "lightning")
        if self._scheduler_configs:
            config = self._scheduler_configs[0]
            read = scheduler_plan(config.scheduler, source="lightning")
            if read is not None:
                steps = read.total_steps
                if steps is not None:
                    every = int(config.frequency) * (1 if config.interval == "step" else steps_per_epoch or 0)
                    steps = steps * every or None
                held = Plan(read.schedule, length if steps is None else steps, "lightning")
        schedule, total_steps, epochs = self._plan_arguments
        where = _FIND_LR if self._fit_is_the_test else _FINDER
        plan = resolve_plan(
            schedule, total_steps, epochs, steps_per_epoch=steps_per_epoch, held=held, where=where
        )
        return plan, steps_per_epoch

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        state = self._state
        if not self._testing or state is None or state.done or self._steps_run >= state.max_steps:
            return
        self._set_lr(state.lr_at(self._steps_run))
        self._global_step = trainer.global_step

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        state = self._state
        if not self._testing or state is None or state.done or self._steps_run >= state.max_steps:
            return
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            what = f"shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise InvalidArgumentError(
                f"{_FINDER}: training_step must return the batch's loss, a scalar tensor or a dict with "
                f"'loss'; got {what} at step {self._steps_run}. The range test records every step's loss."
            )
        loss = loss.detach().reshape(())
        self._window = loss if self._window is None else self._window + loss
        self._window_batches += 1
        if trainer.global_step == self._global_step:
            return  # accumulating gradients: no optimizer step yet
        # Under automatic optimization Lightning divides each batch's loss by
        # accumulate_grad_batches; the step's loss is the mean of its batches'.
        scale = (trainer.accumulate_grad_batches if self._automatic else 1) / self._window_batches
        self._pending.append(self._window if scale == 1 else self._window * scale)
        self._window, self._window_batches = None, 0
        self._steps_run += 1
        self._epochs = trainer.current_epoch + 1
        # The planned end is read at once: with extend, the curve decides there whether to go on.
        if len(self._pending) >= self.sync_every or self._steps_run in (state.num_steps, state.max_steps):
            self._flush()
        if state.done or self._steps_run >= state.max_steps:
            trainer.should_stop = True

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_start_step = self._steps_run

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._testing and self._steps_run == self._epoch_start_step:
            trainer.should_stop = True

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._state is None or not self._testing:
            return
        if self._pending and not self._state.done:
            self._flush()
        self._end_test()
        result = self.result
        if self._result_path is not None and os.getpid() != self._owner_pid and trainer.local_rank == 0:
            result.to_json(self._result_path)
        warn_about(result)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        # Lightning turns Ctrl-C into SystemExit(1) after this hook; find_lr raises it again.
        self._interrupted = exception if isinstance(exception, KeyboardInterrupt) else None
        self._end_test()

    # The test ----------------------------------------------------------------

    def _flush(self) -> None:
        """Read the pending losses in one device-to-host copy (one all-reduce under DDP) and record them."""
        state = self._state
        assert state is not None
        recorded = state.step
        state.record(self._read(self._pending))
        self._pending = []
        if self._bar is not None and state.step:
            self._bar.update(state.step - recorded)
            self._bar.set_postfix(
                lr=f"{state.lr_at(state.step - 1):.2e}", loss=f"{state.smoothed[-1]:.4g}", refresh=False
            )

    def _end_test(self) -> None:
        """Put everything back as it was when the test began (idempotent)."""
        self._testing = False
        snapshots, schedulers, configs, bar = self._snapshots, self._schedulers, self._configs, self._bar
        rng = self._rng
        self._snapshots, self._schedulers, self._configs, self._bar, self._rng = [], [], None, None, None
        try:
            for snapshot in reversed(snapshots):
                snapshot.restore()
            for scheduler, saved in schedulers:
                scheduler.load_state_dict(saved)
            if configs is not None:
                strategy, listed = configs
                strategy.lr_scheduler_configs = listed
            if rng is not None:
                rng.restore()
        finally:
            if bar is not None:
                bar.close()

    # Results -----------------------------------------------------------------

    @property
    def result(self) -> RangeTestResult:
        """The test as a :class:`lrscout.RangeTestResult`.

        ``info`` holds the framework (``"lightning"``), the first optimizer's
        class and momentum, the batch size when the train dataloader has
        one, the accumulation steps, world size, precision, strategy, the
        param groups' learning-rate ratios, whether the dataloader was
        started again (``loader_cycled``), the optimizer steps per epoch
        (``steps_per_epoch``, ``None`` for data without a length) and the
        ``plan`` the suggestion is for.

        Raises:
            RuntimeError: If no training has begun with this callback (in
                this process).
        """
        if self._state is None:
            raise RuntimeError(
                f"{_FINDER}.result: no range test has run in this process. Pass the finder to "
                "trainer.fit as a callback first (with a spawn-based strategy, use "
                "lrscout.lightning.find_lr)."
            )
        info = {**self._facts, "loader_cycled": self._epochs > 1, "loader_passes": self._epochs, **self._info}
        return self._state.result(
            info,
            short_fix=(
                "Let the fit run every planned step (more epochs or data), or plan fewer (num_steps=...)."
            ),
        )


def _no_lr(lr: float) -> None:
    raise RuntimeError("LRFinder: no range test is running.")


def _no_read(losses: list[torch.Tensor]) -> list[float]:
    raise RuntimeError("LRFinder: no range test is running.")


def _base_lr(group: Mapping[str, Any]) -> float:
    """A param group's learning rate before any scheduler changed it."""
    return float(group.get("initial_lr", group["lr"]))


def _set_peak(group: dict[str, Any], lr: float, *, cycled: bool) -> None:
    """Make ``lr`` the peak of the schedule ``group`` is on, keeping where the schedule is.

    The peak is the group's base rate (``initial_lr``, which ``LambdaLR``,
    ``CosineAnnealingLR``, ... scale), or ``max_lr`` for a ``OneCycleLR``
    (whose ``initial_lr`` and ``min_lr`` are fractions of it). The current
    rate and those fractions are scaled with it, so a warm-up at 0 stays at 0
    and the cycle keeps its shape; a rate equal to the old peak becomes
    ``lr`` exactly.
    """
    peak = "max_lr" if cycled and "max_lr" in group else "initial_lr" if "initial_lr" in group else "lr"
    old = float(group[peak])
    scale = lr / old if old else 0.0
    for key in ("lr", "initial_lr", "max_lr", "min_lr") if peak == "max_lr" else ("lr", "initial_lr"):
        if key not in group:
            continue
        value = group[key]
        new = lr if float(value) == old else float(value) * scale
        if isinstance(value, torch.Tensor):
            value.fill_(new)  # a tensor lr (capturable optimizers) keeps its device and type
        else:
            group[key] = new


def _for_plan(chosen: Any) -> str:
    """``"for a one_cycle schedule of 1,000 steps"``: the plan a suggestion is for."""
    if chosen.schedule is None:
        return "for any schedule"
    length = "of unknown length" if chosen.total_steps is None else f"of {chosen.total_steps:,} steps"
    return f"for a {chosen.schedule} schedule {length}"


def _lr_setter(groups: list[dict[str, Any]], ratios: list[float]) -> Callable[[float], None]:
    """``set_lr(lr)``: every group's rate to ``lr`` times its ratio; tensor rates filled in place."""
    float_lrs: list[tuple[dict[str, Any], float]] = []
    tensor_lrs: dict[int, tuple[torch.Tensor, float]] = {}
    for group, ratio in zip(groups, ratios, strict=True):
        if isinstance(group["lr"], torch.Tensor):
            # A tensor lr (capturable optimizers) keeps its device and type.
            tensor_lrs[id(group["lr"])] = (group["lr"], ratio)
        else:
            float_lrs.append((group, ratio))
    fills = list(tensor_lrs.values())

    def set_lr(lr: float) -> None:
        for group, ratio in float_lrs:
            group["lr"] = lr * ratio
        for tensor, ratio in fills:
            tensor.fill_(lr * ratio)

    return set_lr


def _check_plan(schedule: Any, total_steps: Any, epochs: Any, *, where: str) -> tuple[str, int | None, Any]:
    """Check the plan's arguments now, before any fit: the steps per epoch are only known in one."""
    # Any count of steps per epoch will do for the check; the fit's own is used in on_train_start.
    resolve_plan(schedule, total_steps, epochs, steps_per_epoch=1, where=where)
    return schedule, total_steps, epochs


def _stepping_batches(max_steps: int, max_epochs: int | None, *, batches: float, accumulation: int) -> float:
    """The optimizer steps of a fit with these limits, as ``Trainer.estimated_stepping_batches`` counts them.

    ``batches`` is the trainer's ``num_training_batches`` (``inf`` for data
    without a length); the answer is ``inf`` for a fit that no limit ends.
    The trainer's own property reads the limits of the fit it is in, which
    for the test's loop are the test's.
    """
    if max_epochs == -1 or max_epochs is None:
        return math.inf if max_steps == -1 else max_steps
    if batches == math.inf:
        return math.inf if max_steps == -1 else max_steps
    steps = math.ceil(batches / accumulation) * max(max_epochs, 1)
    return steps if max_steps == -1 else min(steps, max_steps)


# find_lr -----------------------------------------------------------------------


def find_lr(
    trainer: pl.Trainer,
    model: pl.LightningModule,
    *,
    train_dataloaders: Any = None,
    datamodule: pl.LightningDataModule | None = None,
    start_lr: float | None = None,
    end_lr: float = 10.0,
    num_steps: int = 100,
    mode: str = "exponential",
    smoothing: float = 0.98,
    divergence_factor: float = 4.0,
    stop_on_divergence: bool = True,
    extend: bool = True,
    sync_every: int = 8,
    progress: bool = True,
    update_attr: bool = False,
    attr_name: str = "lr",
    schedule: str = "auto",
    total_steps: int | None = None,
    epochs: float | None = None,
    info: Mapping[str, Any] | None = None,
) -> RangeTestResult:
    """Run an LR range test on a LightningModule with a trainer's settings; leave everything as it was.

    The test runs an :class:`LRFinder` in a fit of its own, on a new
    ``Trainer`` with ``trainer``'s accelerator, devices, nodes, strategy
    (single device or DDP, ``"ddp"`` and ``"ddp_spawn"`` alike), precision,
    gradient accumulation and clipping, ``limit_train_batches`` and
    callbacks, and ``max_steps`` the test's most steps, no validation, no
    checkpointing, no progress bar or model summary of Lightning's own, and
    a ``DummyLogger`` (none if ``trainer`` has no logger). So
    ``configure_optimizers`` (every return form), ``self.log``, the data
    hooks and the user's callbacks run as in a normal fit; Lightning's
    checkpointing, early-stopping, timer, progress-bar, summary and tuner
    callbacks are left out, as they watch a whole training run. Schedulers
    do not step during the test (see :class:`LRFinder`). Lightning's
    informational log lines are held back during the test; warnings are not.

    Afterwards, and also after an exception, the model's weights, buffers
    and gradients, any optimizer it keeps, torch's, NumPy's and Python's
    global RNG, the random generators of ``train_dataloaders`` (their own
    and their samplers'), each of ``trainer.callbacks``' ``state_dict()`` and which
    trainer the model and datamodule are attached to are as before, and
    ``trainer`` itself was not used: ``trainer.fit(model)`` then trains as if
    the test had not run, bitwise.

    Args:
        trainer: The ``lightning.pytorch.Trainer`` whose settings to test
            with; it is not changed.
        model: The ``LightningModule``.
        train_dataloaders: As for ``trainer.fit``; ``None`` takes the
            model's or the datamodule's ``train_dataloader``.
        datamodule: As for ``trainer.fit``.
        start_lr: First learning rate; ``None`` means ``1e-7``.
        end_lr: Last learning rate, greater than ``start_lr``.
        num_steps: Most optimizer steps, at least 2.
        mode: ``"exponential"`` or ``"linear"`` ramp.
        smoothing: EMA factor of the smoothed loss, in [0, 1).
        divergence_factor: Stop once the smoothed loss exceeds this multiple
            (> 1) of its best.
        stop_on_divergence: ``False`` runs every step unless a loss is not
            finite.
        extend: Keep ramping past ``end_lr`` while the loss has not turned
            up, for at most ``num_steps`` more steps (see
            :func:`lrscout.range_test`), so the curve finds its own end.
        sync_every: Steps per device-to-host read of the losses, at least 1.
        progress: Show a tqdm bar over the steps (global rank 0 only).
        update_attr: Set ``model.<attr_name>`` (or ``model.hparams``, or the
            datamodule's, as Lightning's tuner does) to the default
            suggestion after the test, and log the rate set. Off by default,
            unlike Lightning's ``Tuner.lr_find``: ``find_lr`` returns the
            result and leaves the model as it was, as every lrscout
            ``find_lr`` does; the callback :class:`LRFinder`, which runs
            inside the fit that trains, applies it by default.
        attr_name: The attribute ``update_attr`` sets; the model (or its
            ``hparams``, or the datamodule) must have it.
        schedule: The schedule ``trainer.fit`` will train with (see
            :class:`LRFinder`); ``"auto"`` reads the scheduler
            ``configure_optimizers`` returns in the test's fit, where
            ``self.trainer.estimated_stepping_batches`` is the length of
            ``trainer``'s fit, not the test's.
        total_steps: Optimizer steps of that training; by default the
            scheduler's length, else what ``trainer``'s ``max_steps`` and
            ``max_epochs`` give on this data (as
            ``trainer.estimated_stepping_batches`` counts them).
        epochs: Its epochs instead of ``total_steps``.
        info: JSON-serialisable facts to keep in ``result.info``.

    Returns:
        The :class:`lrscout.RangeTestResult` (see :attr:`LRFinder.result`).

    Raises:
        TypeError, ValueError: On a bad argument, before the test runs; also
            for a strategy other than single-device or DDP (pass
            :class:`LRFinder` to your own ``trainer.fit`` then).
        NoSuggestionError: With ``update_attr=True``, when the curve gives no
            suggestion (the attribute is not changed).

    Example:
        >>> import lightning.pytorch as pl, torch
        >>> from torch import nn
        >>> class Regressor(pl.LightningModule):
        ...     def __init__(self, lr=0.1):
        ...         super().__init__()
        ...         self.lr = lr
        ...         self.layer = nn.Linear(3, 1)
        ...     def training_step(self, batch, batch_idx):
        ...         x, y = batch
        ...         return nn.functional.mse_loss(self.layer(x), y)
        ...     def configure_optimizers(self):
        ...         return torch.optim.SGD(self.parameters(), lr=self.lr)
        >>> _ = torch.manual_seed(0)
        >>> x = torch.randn(256, 3)
        >>> data = torch.utils.data.DataLoader(
        ...     torch.utils.data.TensorDataset(x, x @ torch.tensor([[1.0], [-2.0], [0.5]])), batch_size=16)
        >>> trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False,
        ...     enable_progress_bar=False, enable_model_summary=False)
        >>> model = Regressor()
        >>> result = find_lr(trainer, model, train_dataloaders=data, start_lr=1e-4, num_steps=50,
        ...     update_attr=True, progress=False)
        >>> result.stop_reason, result.info["batch_size"], model.lr == result.suggestion.lr
        ('diverged', 16, True)
    """
    if not isinstance(trainer, pl.Trainer):
        fail(_FIND_LR, "trainer", "a lightning.pytorch.Trainer", trainer)
    if not isinstance(model, pl.LightningModule):
        fail(_FIND_LR, "model", "a lightning.pytorch.LightningModule", model)
    if datamodule is not None and not isinstance(datamodule, pl.LightningDataModule):
        fail(_FIND_LR, "datamodule", "a lightning.pytorch.LightningDataModule or None", datamodule)
    if isinstance(train_dataloaders, pl.LightningDataModule) and datamodule is None:
        # As trainer.fit(model, datamodule) takes it.
        train_dataloaders, datamodule = None, train_dataloaders
    _check_train_batches(trainer, train_dataloaders)
    _check_plan(schedule, total_steps, epochs, where=_FIND_LR)
    update_attr = check_bool(update_attr, "update_attr", where=_FIND_LR)
    if update_attr:
        if not isinstance(attr_name, str) or not attr_name:
            fail(_FIND_LR, "attr_name", "a non-empty string", attr_name)
        if not lightning_hasattr(model, attr_name):
            fail(
                _FIND_LR,
                "attr_name",
                "an attribute of the model, its hparams or its datamodule (for update_attr=True)",
                attr_name,
                f"Give the model a {attr_name!r} attribute that configure_optimizers reads, or name another.",
            )
    finder = LRFinder(
        start_lr,
        end_lr,
        num_steps,
        mode,
        smoothing=smoothing,
        divergence_factor=divergence_factor,
        stop_on_divergence=stop_on_divergence,
        extend=extend,
        sync_every=sync_every,
        progress=progress,
        update_attr=False,
        schedule=schedule,
        total_steps=total_steps,
        epochs=epochs,
        info=info,
    )
    finder._fit_is_the_test = True
    # The plan is the training trainer will run: its limits, not the test's fit's.
    finder._limits = (trainer.max_steps, trainer.max_epochs)
    strategy = _fresh_strategy(trainer.strategy)
    # Attributes the Trainer sets in __init__ through its connectors (not typed).
    settings: Any = trainer
    kept = [callback for callback in settings.callbacks if not isinstance(callback, (*_LEFT_OUT, LRFinder))]
    callback_states = [(callback, copy.deepcopy(callback.state_dict())) for callback in kept]
    # Which trainer each is attached to (fit attaches them to its own).
    attached: list[tuple[Any, Any]] = [(model, model._trainer)]
    if datamodule is not None:
        attached.append((datamodule, datamodule.trainer))
    rng = GlobalRNG()
    generators = loader_generators(*_loaders(train_dataloaders))
    sigint = signal.getsignal(signal.SIGINT)
    folder = tempfile.mkdtemp(prefix="lrscout-lightning-")
    finder._result_path = os.path.join(folder, "result.json")
    try:
        with _quiet_lightning(), warnings.catch_warnings():
            # The test runs no validation: a validation_step without a val_dataloader is no mistake here.
            warnings.filterwarnings(
                "ignore", message=r"You defined a `validation_step` but have no `val_dataloader`"
            )
            test_trainer = _PlanningTrainer(
                finder._limits,
                accelerator=trainer.accelerator,
                strategy=strategy,
                devices=(
                    trainer.num_devices
                    if isinstance(trainer.accelerator, CPUAccelerator)
                    else trainer.device_ids
                ),
                num_nodes=trainer.num_nodes,
                precision=trainer.precision,
                logger=DummyLogger() if trainer.loggers else False,
                callbacks=[*kept, finder],
                max_epochs=-1,
                max_steps=finder.max_steps,
                limit_train_batches=trainer.limit_train_batches,
                limit_val_batches=0,
                num_sanity_val_steps=0,
                log_every_n_steps=settings.log_every_n_steps,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                accumulate_grad_batches=trainer.accumulate_grad_batches,
                gradient_clip_val=trainer.gradient_clip_val,
                gradient_clip_algorithm=(
                    None if trainer.gradient_clip_algorithm is None else trainer.gradient_clip_algorithm.value
                ),
                use_distributed_sampler=trainer._accelerator_connector.use_distributed_sampler,
                detect_anomaly=trainer._detect_anomaly,
                sync_batchnorm=getattr(trainer.strategy, "_layer_sync", None) is not None,
                reload_dataloaders_every_n_epochs=settings.reload_dataloaders_every_n_epochs,
                default_root_dir=trainer.default_root_dir,
            )
            try:
                test_trainer.fit(model, train_dataloaders=train_dataloaders, datamodule=datamodule)
            except SystemExit:
                # Lightning's answer to Ctrl-C in a fit (exit status 1): here it stops a
                # function call, so the caller gets the KeyboardInterrupt itself.
                if finder._interrupted is not None:
                    raise finder._interrupted from None
                raise
        if finder._state is not None:
            result = finder.result
        elif os.path.exists(finder._result_path):
            # The test ran in worker processes (a spawn-based strategy).
            result = warn_about(RangeTestResult.from_json(finder._result_path))
        else:
            raise InvalidArgumentError(
                f"{_FIND_LR}: the test's fit ran no training batch: the train dataloader "
                f"({'train_dataloaders' if train_dataloaders is not None else 'train_dataloader()'}) "
                "yielded none. Give it batches."
            )
    finally:
        finder._end_test()
        for callback, saved in callback_states:
            callback.load_state_dict(saved)
        for holder, owner in attached:
            holder.trainer = owner
        rng.restore()
        for generator, generator_state in generators:
            generator.set_state(generator_state)
        main = threading.current_thread() is threading.main_thread()
        if sigint is not None and main and signal.getsignal(signal.SIGINT) is not sigint:
            signal.signal(signal.SIGINT, sigint)  # Lightning ignores Ctrl-C once it has caught one
        shutil.rmtree(folder, ignore_errors=True)
    if update_attr:
        try:
            chosen = result.suggestion
        except NoSuggestionError as error:
            raise NoSuggestionError(f"{error} (update_attr: model.{attr_name} was not changed.)") from None
        lightning_setattr(model, attr_name, chosen.lr)
        rank_zero_info(
            f"{_FIND_LR}: model.{attr_name} set to {chosen.lr:.3g} (lrscout's {chosen.method} suggestion "
            f"{_for_plan(chosen)})"
        )
    return result


class _PlanningTrainer(pl.Trainer):
    """The test's trainer, whose ``estimated_stepping_batches`` counts the user's trainer's fit.

    ``configure_optimizers`` often sizes its scheduler with it
    (``OneCycleLR(total_steps=self.trainer.estimated_stepping_batches)``):
    in the test's fit it must be the length of the training to come, so
    that the scheduler it makes holds that training's plan.
    """

    def __init__(self, limits: tuple[int, int | None], **settings: Any) -> None:
        super().__init__(**settings)
        self._planned_limits = limits

    @property
    def estimated_stepping_batches(self) -> int | float:
        if self.train_dataloader is None:
            self.fit_loop.setup_data()  # as Lightning's own property does
        return _stepping_batches(
            *self._planned_limits,
            batches=float(self.num_training_batches),
            accumulation=int(self.accumulate_grad_batches),
        )


def _check_train_batches(trainer: pl.Trainer, train_dataloaders: Any) -> None:
    """Refuse, before the test's fit, training data it would run no step on, or run out of for good.

    ``limit_train_batches`` of 0, an empty dataloader (``len`` 0), and a
    one-shot iterator (a generator): the test's fit starts its loaders
    again each epoch, and the iterator, run out by the test, would leave
    the user's own fit nothing to train on.
    """
    limit: Any = trainer.limit_train_batches
    if limit is not None and limit == 0:
        fail(
            _FIND_LR,
            "trainer.limit_train_batches",
            "positive (the test trains on the batches it lets through)",
            limit,
            "Pass a trainer with limit_train_batches=None or a positive number.",
        )
    if isinstance(train_dataloaders, (list, tuple, Mapping)) and not train_dataloaders:
        fail(
            _FIND_LR,
            "train_dataloaders",
            "dataloaders of at least one batch",
            f"an empty {type(train_dataloaders).__name__}",
            "Pass a DataLoader, or None to use the model's or the datamodule's train_dataloader().",
        )
    for loader in _loaders(train_dataloaders):
        if isinstance(loader, Iterator):
            fail(
                _FIND_LR,
                "train_dataloaders",
                "re-iterable (a DataLoader or a list of batches)",
                f"a one-shot {type(loader).__name__}",
                "The test's fit reads it again each epoch, and what the test takes from an iterator "
                "is gone for your own fit: pass the DataLoader itself.",
            )
        try:
            size = len(loader)
        except TypeError:
            continue
        if size == 0:
            fail(
                _FIND_LR,
                "train_dataloaders",
                "dataloaders of at least one batch",
                f"an empty {type(loader).__name__}",
                "Check that its dataset holds examples (and that drop_last does not drop them all).",
            )


def _loaders(train_dataloaders: Any) -> list[Any]:
    """The dataloaders in what ``fit`` takes: one, or a list, tuple or dict of them."""
    if isinstance(train_dataloaders, Mapping):
        return list(train_dataloaders.values())
    if isinstance(train_dataloaders, (list, tuple)):
        return list(train_dataloaders)
    return [] if train_dataloaders is None else [train_dataloaders]


def _fresh_strategy(strategy: Any) -> Any:
    """A new strategy like ``strategy``, for the test's own trainer: the user's is not touched."""
    if type(strategy) is SingleDeviceStrategy:
        return "auto"
    if type(strategy) is DDPStrategy:
        return DDPStrategy(
            cluster_environment=strategy.cluster_environment,
            ddp_comm_state=strategy._ddp_comm_state,
            ddp_comm_hook=strategy._ddp_comm_hook,
            ddp_comm_wrapper=strategy._ddp_comm_wrapper,
            model_averaging_period=strategy._model_averaging_period,
            process_group_backend=strategy._process_group_backend,
            timeout=strategy._timeout,
            start_method=strategy._start_method,
            **strategy._ddp_kwargs,
        )
    fail(
        _FIND_LR,
        "trainer.strategy",
        "a single-device or DDP strategy",
        type(strategy).__name__,
        "For another strategy pass lrscout.lightning.LRFinder(...) to trainer.fit as a callback.",
    )


@contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Hold back Lightning's INFO lines (devices, "fit stopped") for the test's own trainer."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
