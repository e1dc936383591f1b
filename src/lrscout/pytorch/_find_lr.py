"""``LRFinder`` and ``find_lr``: the LR range test for a PyTorch model and optimizer."""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import torch
from torch import nn

from .._engine import RangeTestState, range_test
from .._errors import InvalidArgumentError
from .._jsonio import json_copy
from .._plan import resolve_plan
from .._refine import refine as refine_stage
from .._result import RangeTestResult
from .._validation import check_bool, check_float, check_int, fail
from ._batches import Batch, BatchStream, check_batches, resolve_device
from ._distributed import loss_reader, rank_and_world_size
from ._loss import Criterion, LossFn, check_loss, check_loss_functions, loss_computer, validation_loss
from ._plan import configured_momenta, scheduler_plan
from ._snapshot import TrainingSnapshot

#: ``start_lr=None`` means this, the core ``range_test``'s default.
DEFAULT_START_LR = 1e-7

_AMP_DTYPES = (torch.float16, torch.bfloat16)


#: torch-lr-finder's ``LRFinder`` names that lrscout's has not, and where lrscout keeps the same.
_TORCH_LR_FINDER = {
    "plot": "range_test(...) returns a RangeTestResult; draw it with result.plot() "
    "(and the ramp with result.plot_lr()).",
    "reset": "range_test puts the model and the optimizer back itself, bitwise, also after an error "
    "or Ctrl-C: there is nothing to reset.",
    "history": "range_test(...) returns a RangeTestResult; history['lr'] is result.lrs and "
    "history['loss'] (an EMA) is result.smoothed_losses; result.losses holds each step's own loss.",
    "best_loss": "range_test(...) returns a RangeTestResult; its lowest loss is min(result.smoothed_losses), "
    "and result.suggestion is the suggested learning rate.",
}


class LRFinder:
    """LR range test (Smith 2017) for a PyTorch model and its optimizer.

    :meth:`range_test` trains with a learning rate rising from ``start_lr`` to
    ``end_lr`` and records the loss of every step; afterwards the model and the
    optimizer are exactly as they were (see :meth:`range_test`).

    The loss of a batch is ``criterion(model(inputs), targets)`` for
    ``(inputs, targets)`` batches, or ``loss_fn(model, batch)`` for anything
    else: dict batches, several inputs, tuple outputs, a loss computed inside
    ``forward``. Tensors in a batch (in tuples, named tuples, lists, any
    ``Mapping`` such as a ``BatchEncoding``, dataclasses) are moved to
    ``device`` first; whether a loader's batches need moving at all is decided
    once, on its first batch.

    Args:
        model: The model, already on its device (an ``nn.Module``; a
            ``DistributedDataParallel`` wrapper works).
        optimizer: The optimizer that trains it. Its param groups' learning
            rates set only the ratios between groups; the ramp sets the first
            group's learning rate.
        criterion: ``criterion(outputs, targets) -> loss``, e.g.
            ``nn.CrossEntropyLoss()``. Give it or ``loss_fn``, not both.
        loss_fn: ``loss_fn(model, batch) -> scalar loss tensor``.
        device: Where batches go; ``None`` means the device of the model's
            first parameter (CPU for a model without any). The model itself is
            not moved.
        amp_dtype: ``None`` (full precision), ``torch.bfloat16`` or
            ``torch.float16``: run the forward pass and loss under
            ``torch.autocast`` with this dtype.
        grad_scaler: A ``torch.amp.GradScaler`` (needed with float16) or
            ``None``; its state is restored after the test like the rest.
            Note that ``GradScaler.step`` itself reads an inf/NaN flag from
            the device on each step (PyTorch's design); lrscout adds no read.
        max_grad_norm: Clip the gradients' global 2-norm to this (positive)
            before each step; ``None`` does not clip.
        cache_dir: ``None`` keeps the saved state in CPU memory; an existing
            directory saves it to a temporary file there instead (for models
            whose copy does not fit in memory), removed after the test.
        copy_frozen: ``False`` checks a frozen parameter that the optimizer
            does not hold (a fine-tuned model's base under LoRA) instead of
            copying it: a fingerprint before and after the test, and an error
            naming it if something wrote to it. ``True`` copies it like the rest.

    Raises:
        TypeError, ValueError: On a bad argument, naming it.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> _ = torch.manual_seed(0)
        >>> X = torch.randn(64, 3)
        >>> y = X @ torch.tensor([[1.0], [-2.0], [0.5]])
        >>> batches = [(X[i : i + 16], y[i : i + 16]) for i in range(0, 64, 16)]
        >>> model = nn.Linear(3, 1)
        >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> before = model.weight.clone()
        >>> finder = LRFinder(model, optimizer, nn.MSELoss())
        >>> result = finder.range_test(batches, start_lr=1e-4, end_lr=10.0, num_steps=40, progress=False)
        >>> result.stop_reason, result.info["loader_cycled"]
        ('diverged', True)
        >>> torch.equal(model.weight, before), optimizer.param_groups[0]["lr"]
        (True, 0.1)
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        criterion: Criterion | None = None,
        *,
        loss_fn: LossFn | None = None,
        device: str | torch.device | None = None,
        amp_dtype: torch.dtype | None = None,
        grad_scaler: torch.amp.GradScaler | None = None,
        max_grad_norm: float | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        copy_frozen: bool = False,
    ) -> None:
        where = "LRFinder"
        _check_instance(model, nn.Module, "model", "a torch.nn.Module", where=where)
        candidate: Any = optimizer
        wrapped = getattr(candidate, "opt", None)
        if not isinstance(candidate, torch.optim.Optimizer) and isinstance(wrapped, torch.optim.Optimizer):
            candidate = wrapped  # a fastai OptimWrapper drives the torch optimizer it holds as .opt
        if not isinstance(candidate, torch.optim.Optimizer):
            fail(
                where,
                "optimizer",
                "a torch.optim.Optimizer",
                optimizer,
                "A fastai OptimWrapper around one works too; for a fastai Learner (its own optimizers "
                "too) use lrscout.fastai.find_lr(learn).",
            )
        optimizer = candidate
        _check_one_loss_per_step(optimizer, where)
        _check_materialised(model, where)
        check_loss_functions(criterion, loss_fn, where=where)
        if amp_dtype is not None and amp_dtype not in _AMP_DTYPES:
            fail(where, "amp_dtype", "None, torch.bfloat16 or torch.float16", amp_dtype, "")
        if grad_scaler is not None:
            _check_instance(
                grad_scaler,
                torch.amp.GradScaler,
                "grad_scaler",
                "a torch.amp.GradScaler or None",
                where=where,
            )
        if max_grad_norm is not None:
            max_grad_norm = check_float(max_grad_norm, "max_grad_norm", where=where, positive=True)
        if cache_dir is not None:
            _check_instance(cache_dir, (str, os.PathLike), "cache_dir", "a path or None", where=where)
            if not os.path.isdir(cache_dir):
                fail(where, "cache_dir", "an existing directory", cache_dir, "Create it first.")
        self.model = model
        self.optimizer = optimizer
        self.criterion = criterion
        self.loss_fn = loss_fn
        self.device = resolve_device(device, model, where=where)
        self.amp_dtype = amp_dtype
        self.grad_scaler = grad_scaler
        self.max_grad_norm = max_grad_norm
        self.cache_dir = cache_dir
        self.copy_frozen = check_bool(copy_frozen, "copy_frozen", where=where)

    if not TYPE_CHECKING:  # for users; lrscout's own code keeps its attribute checks

        def __getattr__(self, name: str) -> NoReturn:
            hint = _TORCH_LR_FINDER.get(name)
            if hint is None:
                raise AttributeError(f"'LRFinder' object has no attribute {name!r}", name=name, obj=self)
            raise AttributeError(f"LRFinder has no {name} (torch-lr-finder's): {hint}", name=name, obj=self)

    def range_test(
        self,
        train_loader: Iterable[Batch],
        *,
        val_loader: Iterable[Batch] | None = None,
        start_lr: float | None = None,
        end_lr: float = 10.0,
        num_steps: int = 100,
        mode: str = "exponential",
        accumulation_steps: int = 1,
        num_val_batches: int | None = None,
        smoothing: float = 0.98,
        divergence_factor: float = 4.0,
        stop_on_divergence: bool = True,
        extend: bool = False,
        refine: bool | Iterable[Batch] = False,
        schedule: str = "auto",
        total_steps: int | None = None,
        epochs: float | None = None,
        scheduler: Any = None,
        sync_every: int = 8,
        progress: bool = True,
        info: Mapping[str, Any] | None = None,
        **unknown: Any,
    ) -> RangeTestResult:
        """Run the range test; leave the model and optimizer exactly as they were.

        Step ``t`` sets the first param group's learning rate to the ramp's
        ``lr_t`` and every other group's to ``lr_t`` times its original ratio
        to the first group, then runs ``accumulation_steps`` forward/backward
        passes (their losses averaged), clips if asked, and steps. The model is
        in train mode for the test. The recorded loss is the mean training loss
        of the step or, with ``val_loader``, the mean loss on its first
        ``num_val_batches`` batches after the step, in eval mode.

        Losses stay on the device and are read ``sync_every`` steps at a time
        (one device-to-host copy per chunk, none per step); divergence is
        decided at chunk ends, the steps run past the stop are not recorded,
        so the result does not depend on ``sync_every``. Under
        ``torch.distributed`` each chunk is averaged over the ranks, so every
        rank records the same losses and stops at the same step; every rank's
        loaders must then yield the same number of batches (as with a
        ``DistributedSampler``).

        Afterwards — also after an exception or ``KeyboardInterrupt``, which
        still propagate — weights, buffers, gradients, optimizer state, every
        param group's hyperparameters, each module's train/eval mode, the
        ``GradScaler`` and the global RNGs (torch's, NumPy's and Python's, which
        a data pipeline may draw from) are bitwise as before, and the
        same objects: a buffer that ``forward`` replaces, a parameter the
        optimizer trains outside the model, ``optimizer.param_groups`` and its
        dicts, a tensor learning rate (see ``TrainingSnapshot``). Batches
        taken from a one-shot iterator are gone, though.

        Args:
            train_loader: Training batches: a ``DataLoader``, a list, any
                iterable (``len`` not needed). One shorter than the test is
                started again (``result.info["loader_cycled"]``); a one-shot
                iterator that runs out ends the test (``stop_reason "ended"``).
            val_loader: ``None`` records training losses; else a re-iterable
                (not an iterator) of validation batches, read from its start
                after every step. Do not shuffle it, so each step is scored on
                the same batches (and give a ``DataLoader`` with workers
                ``persistent_workers=True``, or they start on every step).
            start_lr: First learning rate; ``None`` means ``1e-7`` (the core's
                default), whatever the optimizer's learning rate is.
            end_lr: Last learning rate, greater than ``start_lr``.
            num_steps: Most optimizer steps to run, at least 2.
            mode: ``"exponential"`` or ``"linear"`` ramp.
            accumulation_steps: Batches per optimizer step (gradient
                accumulation), at least 1.
            num_val_batches: Validation batches per step; ``None`` uses all of
                ``val_loader``. Only with ``val_loader``.
            smoothing: EMA factor of the smoothed loss, in [0, 1).
            divergence_factor: Stop once the smoothed loss exceeds this
                multiple (> 1) of its best.
            stop_on_divergence: ``False`` runs every step unless a loss is not
                finite.
            extend: Keep ramping past ``end_lr`` while the loss has not turned
                up, for at most ``num_steps`` more steps (see
                :func:`lrscout.range_test`; :func:`find_lr` turns it on).
            refine: ``True`` or validation batches: after the test, probe
                the default suggestion (see ``lrscout._refine``): train from
                the same start at 1/4, 1/2, 1, 2 and 4 times it for 30 % of
                the test's steps, the best two again for 75 %, restoring the
                start before each (the same batches), and move the rate half
                way (log scale) to the best (``result.info["refinement"]``,
                ``result.suggestion.method == "refined"``). ``True`` scores
                each probe on the mean of its last half of training losses;
                a re-iterable of validation batches (a ``DataLoader``, a
                list) scores it on the mean loss over those batches after its
                last step, which sees a rate that overfits or will not
                settle. ``train_loader`` must then be re-iterable. Three
                times the test's steps (plus the evaluations); off by
                default (see the README for what it measured).
            schedule: The schedule you will train with, which the suggestion
                is for (``"constant"``, ``"one_cycle"``, ``"cosine"``,
                ``"linear"``); ``"auto"`` reads it from ``scheduler``, else
                constant. See :meth:`lrscout.RangeTestResult.suggest`.
            total_steps: Optimizer steps of that training.
            epochs: Its epochs instead, where ``train_loader`` has a length
                (steps per epoch: ``len(train_loader) // accumulation_steps``).
            scheduler: The ``torch.optim.lr_scheduler`` you will train with:
                its kind and length are the plan (``OneCycleLR``,
                ``CosineAnnealingLR``, ``LambdaLR`` such as Hugging Face's
                linear and cosine schedules, ...; explicit arguments win). A
                ``OneCycleLR`` or ``CyclicLR`` made on the optimizer has set
                its momentum to the cycle's first value; the test runs with
                the optimizer's own (``optimizer.defaults``), either way.
                It is not stepped.
            sync_every: Steps per device-to-host read of the losses, at least 1.
            progress: Show a tqdm progress bar (rank 0 only under
                ``torch.distributed``).
            info: JSON-serialisable facts to keep in ``result.info``, over
                the finder's own (e.g. ``{"batch_size": 64}`` when the loader
                does not say); the default suggestion, and so the
                refinement, read them.

        Returns:
            The :class:`~lrscout.RangeTestResult`; ``info`` holds the framework,
            device, batch size (when the loader has one), accumulation steps,
            world size, ``loss_source`` (``"training"`` or ``"validation"``),
            whether the loader was cycled, and the other settings used.

        Raises:
            TypeError, ValueError: On a bad argument, before anything runs.
        """
        where = "LRFinder.range_test"
        _refuse_unknown(unknown, where)
        _check_iterable(train_loader, "train_loader", where=where)
        check_batches(train_loader, "train_loader", where=where, pairs=self.loss_fn is None)
        if val_loader is not None:
            _check_iterable(val_loader, "val_loader", where=where)
            if isinstance(val_loader, Iterator):
                fail(
                    where,
                    "val_loader",
                    "re-iterable (it is read after every step)",
                    val_loader,
                    "Pass a DataLoader or a list, not an iterator or generator.",
                )
        if num_val_batches is not None:
            if val_loader is None:
                fail(where, "num_val_batches", "None without val_loader", num_val_batches, "")
            num_val_batches = check_int(num_val_batches, "num_val_batches", where=where, minimum=1)
        accumulation_steps = check_int(accumulation_steps, "accumulation_steps", where=where, minimum=1)
        plan = resolve_plan(
            schedule,
            total_steps,
            epochs,
            steps_per_epoch=_steps_per_epoch(train_loader, accumulation_steps),
            held=scheduler_plan(scheduler, source="scheduler"),
            where=where,
        )
        sync_every = check_int(sync_every, "sync_every", where=where, minimum=1)
        progress = check_bool(progress, "progress", where=where)
        extra = json_copy(info, where=where)
        refine_loader: Iterable[Batch] | None = None
        if not isinstance(refine, bool):
            if isinstance(refine, tuple) and refine and all(isinstance(x, torch.Tensor) for x in refine):
                raise InvalidArgumentError(
                    f"{where}: refine must be True, False or validation batches; got a tuple of "
                    f"{len(refine)} tensors. For one validation batch (X_val, y_val), pass it in a list: "
                    "refine=[(X_val, y_val)]."
                )
            if isinstance(refine, (Iterator, str, bytes)) or not isinstance(refine, Iterable):
                fail(
                    where,
                    "refine",
                    "True, False or re-iterable validation batches (they are read in every probe)",
                    refine,
                    "Pass a DataLoader or a list of batches, not an iterator or generator.",
                )
            refine_loader, refine = refine, True
        if refine and isinstance(train_loader, Iterator):
            fail(
                where,
                "train_loader",
                "re-iterable with refine=True (each probe replays the test's batches)",
                train_loader,
                "Pass a DataLoader or a list, not an iterator or generator, or leave refine off.",
            )
        if val_loader is not None:
            check_batches(val_loader, "val_loader", where=where, pairs=self.loss_fn is None)
        if refine_loader is not None:
            check_batches(refine_loader, "refine", where=where, pairs=self.loss_fn is None)
        largest, dtype = largest_lr(self.optimizer)
        ramp: dict[str, Any] = {
            "start_lr": DEFAULT_START_LR if start_lr is None else start_lr,
            "end_lr": end_lr,
            "num_steps": num_steps,
            "mode": mode,
            "smoothing": smoothing,
            "divergence_factor": divergence_factor,
            "stop_on_divergence": stop_on_divergence,
            "extend": extend,
            "max_lr": largest,
        }
        # The core checks these too, but only after the snapshot has been
        # taken (maybe to disk); check them here first.
        RangeTestState(
            **ramp,
            where=where,
            max_lr_reason=f"The optimizer's parameters are {dtype}, whose largest value that is.",
        )
        ratios = _group_ratios(self.optimizer, where)
        rank, world_size = rank_and_world_size()

        source = "criterion" if self.loss_fn is None else "loss_fn"
        read_floats = loss_reader(world_size)

        def read_losses(losses: list[torch.Tensor]) -> list[float]:
            # Here, once per chunk, not on every step. A loss that backward()
            # rejects is checked where it fails (see _step_function); this
            # catches the rest, such as a loss of shape (1,).
            if any(not isinstance(loss, torch.Tensor) or loss.ndim for loss in losses):
                for loss in losses:
                    check_loss(loss, source=source, where=where)
            return read_floats(losses)

        snapshot = TrainingSnapshot(
            self.model,
            self.optimizer,
            grad_scaler=self.grad_scaler,
            cache_dir=self.cache_dir,
            copy_frozen=self.copy_frozen,
        )
        # A loader's own generator (DataLoader(generator=g)) is the user's too:
        # a second test on the same loader must see the same batches.
        generators = loader_generators(train_loader, val_loader, refine_loader)
        try:
            batches = BatchStream(train_loader, name="train_loader", where=where, device=self.device)
            compute_loss = loss_computer(
                self.model,
                criterion=self.criterion,
                loss_fn=self.loss_fn,
                amp_dtype=self.amp_dtype,
                device_type=self.device.type,
                where=where,
            )
            validate = (
                None
                if val_loader is None
                else validation_loss(
                    self.model,
                    compute_loss,
                    val_loader,
                    num_val_batches,
                    device=self.device,
                    source=source,
                    where=where,
                )
            )
            step_fn = self._step_function(
                batches, compute_loss, validate, ratios, accumulation_steps, source=source, where=where
            )
            self.model.train()
            for group, key, value in configured_momenta(self.optimizer):
                group[key] = value
            result = range_test(
                step_fn,
                **ramp,
                sync_every=sync_every,
                read_losses=read_losses,
                progress=progress and rank == 0,
            )
            # A DataLoader's own batch_size, else the size of the first batch (a list of
            # batches, a DataLoader with a batch_sampler).
            batch_size = getattr(train_loader, "batch_size", None)
            facts = {
                "framework": "pytorch",
                "torch_version": str(torch.__version__),
                "device": str(self.device),
                "batch_size": batch_size if isinstance(batch_size, int) else batches.first_batch_size,
                "accumulation_steps": accumulation_steps,
                "world_size": world_size,
                "loss_source": "training" if val_loader is None else "validation",
                "num_val_batches": num_val_batches,
                "loader_cycled": batches.passes > 1,
                "loader_passes": batches.passes,
                "param_group_lr_ratios": ratios,
                "amp_dtype": None if self.amp_dtype is None else str(self.amp_dtype).removeprefix("torch."),
                "grad_scaler": self.grad_scaler is not None,
                "max_grad_norm": self.max_grad_norm,
                "sync_every": sync_every,
                "steps_per_epoch": _steps_per_epoch(train_loader, accumulation_steps),
                "plan": plan.to_dict(),
                **_optimizer_facts(self.optimizer),
            }
            # The facts first: the default suggestion that refinement starts from reads them.
            result = dataclasses.replace(result, info={**result.info, **facts, **extra})
            if refine:

                def start() -> Callable[[float], torch.Tensor]:
                    snapshot.restore(keep=True)
                    for generator, state in generators:
                        generator.set_state(state)
                    self.model.train()
                    again = BatchStream(train_loader, name="train_loader", where=where, device=self.device)
                    return self._step_function(
                        again, compute_loss, validate, ratios, accumulation_steps, source=source, where=where
                    )

                evaluate = (
                    None
                    if refine_loader is None
                    else validation_loss(
                        self.model,
                        compute_loss,
                        refine_loader,
                        None,
                        device=self.device,
                        source=source,
                        where=where,
                    )
                )
                result = refine_stage(
                    result,
                    start,
                    evaluate=evaluate,
                    read_losses=read_losses,
                    sync_every=sync_every,
                    progress=progress and rank == 0,
                    where=where,
                    held_out="refine",
                )
        finally:
            try:
                snapshot.restore()
            finally:
                for generator, state in generators:
                    generator.set_state(state)
        return result

    def _step_function(
        self,
        batches: BatchStream,
        compute_loss: Callable[[Batch], Any],
        validate: Callable[[], torch.Tensor] | None,
        ratios: list[float],
        accumulation_steps: int,
        *,
        source: str,
        where: str,
    ) -> Callable[[float], torch.Tensor]:
        """``step_fn(lr) -> detached loss tensor`` for the core loop; never syncs.

        Everything that does not change between steps is looked up here,
        once: the step itself runs only what a hand-written loop runs, plus
        setting the learning rates and detaching the loss.
        """
        optimizer, scaler, max_norm = self.optimizer, self.grad_scaler, self.max_grad_norm
        device = self.device
        zero_grad, optimizer_step = optimizer.zero_grad, optimizer.step
        float_lrs: list[tuple[dict[str, Any], float]] = []
        tensor_lrs: dict[int, tuple[torch.Tensor, float]] = {}
        for group, ratio in zip(optimizer.param_groups, ratios, strict=True):
            if isinstance(group["lr"], torch.Tensor):
                # A tensor lr (capturable optimizers) is filled in place:
                # replacing it would change its device and type. Groups may
                # share one (the optimizer's default), with one ratio.
                tensor_lrs[id(group["lr"])] = (group["lr"], ratio)
            else:
                float_lrs.append((group, ratio))
        tensor_fills = list(tensor_lrs.values())
        params = [param for group in optimizer.param_groups for param in group["params"]]
        no_sync = getattr(self.model, "no_sync", None) if accumulation_steps > 1 else None
        next_batch = batches.next
        bad_loss = (AttributeError, TypeError, ValueError, RuntimeError)

        def forward_backward() -> torch.Tensor:
            loss = compute_loss(next_batch())
            try:
                if accumulation_steps > 1:
                    loss = loss / accumulation_steps
                (loss if scaler is None else scaler.scale(loss)).backward()
            except bad_loss:
                # Only a failing step pays for the check.
                check_loss(loss, source=source, where=where)
                raise
            detached: torch.Tensor = loss.detach()
            return detached

        def accumulate() -> torch.Tensor:
            if no_sync is None:
                total = forward_backward()
                for _ in range(1, accumulation_steps):
                    total = total + forward_backward()
                return total
            # DDP all-reduces the gradients once, in the last backward.
            with no_sync():
                total = forward_backward()
                for _ in range(2, accumulation_steps):
                    total = total + forward_backward()
            return total + forward_backward()

        def scaled_or_clipped_step() -> None:
            if scaler is not None:
                if max_norm is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(params, max_norm)
                scaler.step(optimizer)
                scaler.update()
            else:
                assert max_norm is not None  # else the plain optimizer.step is used
                nn.utils.clip_grad_norm_(params, max_norm)
                optimizer_step()

        # Chosen here, not on every step: the usual case runs what a
        # hand-written loop runs, plus setting the learning rates.
        run_batches = forward_backward if accumulation_steps == 1 else accumulate
        step = optimizer_step if scaler is None and max_norm is None else scaled_or_clipped_step

        if validate is None and not tensor_fills and len(float_lrs) == 1 and float_lrs[0][1] == 1.0:
            # The usual case, one param group at the ramp's own rate: the
            # step is a hand-written loop's plus one dict write.
            only_group = float_lrs[0][0]

            def one_group_step(lr: float) -> torch.Tensor:
                only_group["lr"] = lr
                zero_grad(set_to_none=True)
                try:
                    total = run_batches()
                    step()
                except RuntimeError as error:
                    return _overflowed(error, device)
                return total

            return one_group_step

        def step_fn(lr: float) -> torch.Tensor:
            for group, ratio in float_lrs:
                group["lr"] = lr * ratio
            zero_grad(set_to_none=True)
            try:
                for tensor, ratio in tensor_fills:
                    tensor.fill_(lr * ratio)
                total = run_batches()
                step()
            except RuntimeError as error:
                return _overflowed(error, device)
            return total if validate is None else validate()

        return step_fn


def _overflowed(error: RuntimeError, device: torch.device) -> torch.Tensor:
    """An infinite loss for a step whose rate left the parameters' dtype; any other error raised again.

    The optimizer's arithmetic at a huge rate can overflow the parameters'
    dtype (Adam divides lr by 1 - beta1): that step diverged.
    """
    if "without overflow" not in str(error):
        raise error
    return torch.full((), math.inf, device=device)


def find_lr(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train_loader: Iterable[Batch],
    criterion: Criterion | None = None,
    **kwargs: Any,
) -> RangeTestResult:
    """Run an LR range test in one call: ``LRFinder(...).range_test(...)``.

    Args:
        model: The model (see :class:`LRFinder`).
        optimizer: Its optimizer.
        train_loader: Training batches.
        criterion: ``criterion(outputs, targets) -> loss``, or ``None`` with
            ``loss_fn=...``.
        **kwargs: :class:`LRFinder` keywords (``loss_fn``, ``device``,
            ``amp_dtype``, ``grad_scaler``, ``max_grad_norm``, ``cache_dir``,
            ``copy_frozen``)
            and :meth:`LRFinder.range_test` keywords (``start_lr``, ``end_lr``,
            ``num_steps``, ...); ``extend`` is on unless given, so the curve
            finds its own end.

    Returns:
        The :class:`~lrscout.RangeTestResult`; the model and optimizer are
        left exactly as they were.

    Raises:
        TypeError, ValueError: On a bad argument.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> _ = torch.manual_seed(0)
        >>> X, y = torch.randn(32, 2), torch.randint(0, 2, (32,))
        >>> model = nn.Linear(2, 2)
        >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        >>> result = find_lr(model, optimizer, [(X, y)], nn.CrossEntropyLoss(),
        ...     num_steps=10, sync_every=4, progress=False, extend=False)
        >>> len(result.lrs), result.info["sync_every"]
        (10, 4)
    """
    finder_options = {name: kwargs.pop(name) for name in _FINDER_OPTIONS if name in kwargs}
    kwargs.setdefault("extend", True)
    return LRFinder(model, optimizer, criterion, **finder_options).range_test(train_loader, **kwargs)


_FINDER_OPTIONS = (
    "loss_fn",
    "device",
    "amp_dtype",
    "grad_scaler",
    "max_grad_norm",
    "cache_dir",
    "copy_frozen",
)


#: torch-lr-finder's names for range_test's arguments, and lrscout's.
_PEER_NAMES = {
    "num_iter": "num_steps",
    "step_mode": "mode",
    "smooth_f": "smoothing (note: lrscout's is the EMA factor beta = 1 - smooth_f)",
    "diverge_th": "divergence_factor",
}


def _refuse_unknown(unknown: dict[str, Any], where: str) -> None:
    """A clear error for an argument lrscout does not take, naming lrscout's for a peer's name."""
    if not unknown:
        return
    name = next(iter(unknown))
    if name in _PEER_NAMES:
        raise InvalidArgumentError(
            f"{where}: {name} is torch-lr-finder's name; lrscout calls it {_PEER_NAMES[name]}. "
            f"Pass {_PEER_NAMES[name].split(' ')[0]}=... instead."
        )
    raise InvalidArgumentError(f"{where}: unexpected argument {name!r}; see help(LRFinder.range_test).")


def _group_ratios(optimizer: torch.optim.Optimizer, where: str) -> list[float]:
    """Each param group's learning rate as a multiple of the reference group's.

    The reference is the first group with a positive rate. When every rate is
    0 (a warm-up scheduler such as Hugging Face's linear warm-up sets them so
    at step 0) the schedulers' base rates (``initial_lr``) give the ratios, or
    else the groups move together: the ramp sets absolute rates.
    """
    rates = []
    for index, group in enumerate(optimizer.param_groups):
        rate = check_float(
            float(group["lr"]),
            f"optimizer.param_groups[{index}]['lr']",
            where=where,
            minimum=0.0,
            fix="The ramp keeps every group's ratio to the first group's learning rate.",
        )
        rates.append(rate)
    if not any(rates):
        # Every rate 0: a warm-up at its first step. The schedulers' base rates
        # (initial_lr) still say how the groups relate.
        bases: list[Any] = [group.get("initial_lr") for group in optimizer.param_groups]
        if all(isinstance(base, (int, float)) and base >= 0 for base in bases):
            rates = [float(base) for base in bases]
    reference = next((rate for rate in rates if rate > 0), 0.0)
    if reference == 0.0:
        return [1.0] * len(rates)
    return [rate / reference for rate in rates]


def loader_generators(*loaders: Any) -> list[tuple[torch.Generator, torch.Tensor]]:
    """Every ``torch.Generator`` a loader draws from (its own, its sampler's), with its state now."""
    seen: dict[int, tuple[torch.Generator, torch.Tensor]] = {}
    for loader in loaders:
        holders = [loader, getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None)]
        holders.append(getattr(holders[-1], "sampler", None))
        for holder in holders:
            generator = getattr(holder, "generator", None)
            if isinstance(generator, torch.Generator) and id(generator) not in seen:
                seen[id(generator)] = (generator, generator.get_state())
    return list(seen.values())


def _steps_per_epoch(loader: Any, accumulation_steps: int) -> int | None:
    """Optimizer steps in one pass over ``loader``, where it has a length."""
    try:
        batches = len(loader)
    except TypeError:
        return None
    return max(1, batches // accumulation_steps) if batches > 0 else None


def _check_one_loss_per_step(optimizer: torch.optim.Optimizer, where: str) -> None:
    """Refuse an optimizer whose ``step`` needs a closure (LBFGS): it evaluates the loss many times a step."""
    try:
        parameters = inspect.signature(optimizer.step).parameters
    except (TypeError, ValueError):
        return
    closure = parameters.get("closure")
    if closure is not None and closure.default is inspect.Parameter.empty:
        fail(
            where,
            "optimizer",
            "an optimizer whose step() runs without a closure",
            f"{type(optimizer).__name__} (its step(closure) evaluates the loss several times)",
            "A range test takes one loss per step at one learning rate; test with the optimizer you "
            "would train with otherwise (e.g. torch.optim.SGD or Adam), or tune this one's lr by hand.",
        )


def _check_materialised(model: nn.Module, where: str) -> None:
    """Refuse a model with tensors on the meta device: shapes without values cannot be trained or saved."""
    tensors = [*model.parameters(), *model.buffers()]
    meta = next((tensor for tensor in tensors if tensor.device.type == "meta"), None)
    if meta is not None:
        fail(
            where,
            "model",
            "a model whose parameters and buffers hold values",
            f"a model with tensors on the meta device (e.g. one of shape {tuple(meta.shape)})",
            "Materialise it first, e.g. model.to_empty(device='cpu') and then load or initialise its "
            "weights.",
        )


def largest_lr(optimizer: torch.optim.Optimizer) -> tuple[float, str]:
    """The largest learning rate the optimizer's parameters can take, and their narrowest dtype.

    torch turns the rate into the parameters' dtype in each step: past its
    largest value (about 3.4e38 for float32) the step raises.
    """
    largest, name = sys.float_info.max, "float64"
    for group in optimizer.param_groups:
        for param in group["params"]:
            if isinstance(param, torch.Tensor) and (param.is_floating_point() or param.is_complex()):
                real = param.real if param.is_complex() else param
                top = float(torch.finfo(real.dtype).max)
                if top < largest:
                    largest, name = top, str(param.dtype).removeprefix("torch.")
    return largest, name


def _check_iterable(value: Any, name: str, *, where: str) -> None:
    _check_instance(value, Iterable, name, "an iterable of batches (e.g. a DataLoader)", where=where)


def _check_instance(
    value: object, kind: type[Any] | tuple[type[Any], ...], name: str, constraint: str, *, where: str
) -> None:
    # Takes ``object`` so that checking an annotated argument is not "unreachable" to mypy.
    if not isinstance(value, kind):
        fail(where, name, constraint, value, "")


def _optimizer_facts(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's class and heavy-ball momentum, which the default suggestion reads."""
    facts: dict[str, Any] = {"optimizer": type(optimizer).__name__}
    momentum = optimizer.param_groups[0].get("momentum")
    if isinstance(momentum, (int, float)) and not isinstance(momentum, bool):
        facts["momentum"] = float(momentum)
    return facts
