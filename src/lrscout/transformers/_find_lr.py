"""``find_lr`` for a Hugging Face ``Trainer``: its model, optimizer, train dataloader and loss.

The test itself is :class:`lrscout.pytorch.LRFinder` with a ``loss_fn`` that
calls the Trainer's own ``compute_loss``; this module only gathers what the
Trainer would train with, and puts the Trainer back as it was.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import transformers
from torch import nn

from .._errors import NoSuggestionError
from .._global_rng import GlobalRNG
from .._jsonio import json_copy
from .._result import RangeTestResult
from .._validation import check_bool, fail
from ..pytorch._find_lr import LRFinder
from ..pytorch._plan import scheduler_plan

_FIND_LR = "find_lr"


def find_lr(
    trainer: transformers.Trainer,
    *,
    start_lr: float | None = None,
    end_lr: float = 10.0,
    num_steps: int = 100,
    mode: str = "exponential",
    smoothing: float = 0.98,
    divergence_factor: float = 4.0,
    stop_on_divergence: bool = True,
    extend: bool = True,
    refine: bool = False,
    sync_every: int = 8,
    progress: bool = True,
    set_learning_rate: bool = False,
    schedule: str = "auto",
    total_steps: int | None = None,
    epochs: float | None = None,
    info: Mapping[str, Any] | None = None,
) -> RangeTestResult:
    """Run an LR range test with what a ``transformers.Trainer`` trains with; leave the Trainer as it was.

    The test trains ``trainer.model`` with the Trainer's optimizer —
    ``trainer.optimizer``, or one made by ``trainer.create_optimizer()`` as
    ``train()`` would make it (then dropped again: ``trainer.optimizer`` is
    ``None`` afterwards) — on batches of ``trainer.get_train_dataloader()``,
    with the Trainer's loss: ``trainer.compute_loss(model,
    trainer._prepare_inputs(batch))`` under its
    ``compute_loss_context_manager()`` (autocast with ``bf16``/``fp16``), so a
    subclass's ``compute_loss``, ``compute_loss_func`` and label smoothing
    count. ``args.gradient_accumulation_steps`` batches make one step (their
    losses averaged), and gradients are clipped to ``args.max_grad_norm`` as
    ``train()`` clips them. It is :class:`lrscout.pytorch.LRFinder` with that
    ``loss_fn``: the same ramp, stop rule, chunked loss reads and result.

    The ramp sets absolute learning rates (the first param group's; the
    others keep their ratio to it). A scheduler is not stepped; one that
    has already changed the rates — a warm-up that set them to 0 — does not
    matter: for the test each group starts from the rate it had before any
    scheduler (``initial_lr``), and gets its current rate back afterwards.

    Afterwards, and also after an exception, the model's weights, buffers
    and gradients, an optimizer the Trainer had and its param groups,
    ``trainer.args``, torch's, NumPy's and Python's global RNG, and the
    Trainer's accelerator (its list of prepared dataloaders, its gradient
    state) are as before, bitwise: ``trainer.train()`` then trains as if the
    test had not run.

    Under ``torchrun`` every rank averages the losses, so all stop together
    (see :class:`lrscout.pytorch.LRFinder`); the model is not wrapped in
    ``DistributedDataParallel`` for the test, so each rank steps on its own
    shard of the batches.

    Args:
        trainer: The ``transformers.Trainer``, with a ``train_dataset``.
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
            :func:`lrscout.range_test`).
        refine: After the test, probe rates around the default suggestion
            from the same start (see :meth:`lrscout.pytorch.LRFinder.range_test`),
            each probe scored on the Trainer's ``eval_dataset`` when it has
            one (``trainer.get_eval_dataloader()``, the Trainer's loss), else
            on its own training losses. ``result.suggestion`` is then the
            refined rate; three times the test's cost plus the evaluations.
        sync_every: Steps per device-to-host read of the losses, at least 1.
        progress: Show a tqdm bar where someone can watch it (see
            :func:`lrscout.range_test`).
        set_learning_rate: Set ``trainer.args.learning_rate`` to the default
            suggestion afterwards: the peak of the schedule ``train()`` will
            run. It is the rate of an optimizer that the Trainer creates; an
            optimizer given to the Trainer keeps its own.
        schedule: The schedule the suggestion is for; ``"auto"`` is the one
            ``train()`` will run: the Trainer's ``lr_scheduler`` if it has
            one, else ``args.lr_scheduler_type`` with its warm-up over
            ``args.max_steps`` or ``args.num_train_epochs`` (the default,
            ``"linear"``, is a linear decay after the warm-up).
        total_steps: Optimizer steps of the training; by default the
            Trainer's.
        epochs: The training's epochs instead of ``total_steps``.
        info: JSON-serialisable facts to keep in ``result.info``.

    Returns:
        The :class:`lrscout.RangeTestResult`; ``info`` holds what
        :meth:`lrscout.pytorch.LRFinder.range_test` records (optimizer,
        momentum, batch size per device, accumulation steps, ...) with
        ``framework`` ``"transformers"``.

    Raises:
        TypeError, ValueError: On a bad argument, before the test runs.
        NoSuggestionError: With ``set_learning_rate=True``, when the curve
            gives no suggestion (``trainer.args`` is not changed).

    Example:
        >>> import torch, transformers
        >>> config = transformers.BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1,
        ...     num_attention_heads=2, intermediate_size=16, num_labels=2)
        >>> _ = torch.manual_seed(0)
        >>> model = transformers.BertForSequenceClassification(config)
        >>> ids = torch.randint(5, 50, (64, 6))
        >>> data = [{"input_ids": row, "labels": int(row[0] > 27)} for row in ids]
        >>> import tempfile
        >>> args = transformers.TrainingArguments(tempfile.mkdtemp(), per_device_train_batch_size=8,
        ...     report_to="none", use_cpu=True, disable_tqdm=True, save_strategy="no")
        >>> trainer = transformers.Trainer(model=model, args=args, train_dataset=data)
        >>> result = find_lr(trainer, start_lr=1e-5, num_steps=30, progress=False)
        >>> result.info["framework"], result.info["optimizer"], result.info["batch_size"]
        ('transformers', 'AdamW', 8)
        >>> trainer.optimizer is None
        True
    """
    if not isinstance(trainer, transformers.Trainer):
        fail(_FIND_LR, "trainer", "a transformers.Trainer", trainer)
    if trainer.train_dataset is None:
        fail(_FIND_LR, "trainer.train_dataset", "a dataset", None, "Pass train_dataset=... to the Trainer.")
    _check_examples(
        trainer.train_dataset, "trainer.train_dataset", "Give the Trainer a train_dataset with examples."
    )
    if not isinstance(trainer.model, nn.Module):
        fail(_FIND_LR, "trainer.model", "a torch.nn.Module", trainer.model)
    set_learning_rate = check_bool(set_learning_rate, "set_learning_rate", where=_FIND_LR)
    refine = check_bool(refine, "refine", where=_FIND_LR)
    if refine and trainer.eval_dataset is not None:
        if isinstance(trainer.eval_dataset, Mapping):
            fail(
                _FIND_LR,
                "trainer.eval_dataset",
                "one dataset for refine=True (the probes are scored on it)",
                f"a dict of {len(trainer.eval_dataset)} datasets",
                "Set trainer.eval_dataset to the one to score on for the test, or leave refine off.",
            )
        _check_examples(
            trainer.eval_dataset,
            "trainer.eval_dataset",
            "refine=True scores the probes on it: give it examples, or set it to None to score them on "
            "their training losses.",
        )
    extra = json_copy(info, where=_FIND_LR)
    args = trainer.args
    ramp: dict[str, Any] = {
        "start_lr": start_lr,
        "end_lr": end_lr,
        "num_steps": num_steps,
        "mode": mode,
        "smoothing": smoothing,
        "divergence_factor": divergence_factor,
        "stop_on_divergence": stop_on_divergence,
        "extend": extend,
        "sync_every": sync_every,
        "progress": progress,
    }
    model = trainer.model
    created = trainer.optimizer is None
    accelerator = trainer.accelerator
    prepared = list(accelerator._dataloaders)
    gradient_state = accelerator.gradient_state
    active = list(gradient_state.dataloader_references)
    rng = GlobalRNG()
    swapped: list[tuple[dict[str, Any], Any]] = []
    try:
        optimizer: Any = trainer.create_optimizer() if created else trainer.optimizer
        loader = trainer.get_train_dataloader()
        if _length(loader) == 0:
            fail(
                _FIND_LR,
                "trainer.train_dataset",
                "enough examples for one batch",
                f"{_length(trainer.train_dataset)} examples with per_device_train_batch_size="
                f"{args.per_device_train_batch_size} and dataloader_drop_last=True",
                "Lower the batch size or turn dataloader_drop_last off.",
            )
        for group in optimizer.param_groups:
            if "initial_lr" in group:
                swapped.append((group, group["lr"]))
                group["lr"] = group["initial_lr"]
        max_norm = args.max_grad_norm
        finder = LRFinder(
            model,
            optimizer,
            loss_fn=_trainer_loss(trainer),
            max_grad_norm=max_norm if max_norm is not None and max_norm > 0 else None,
            grad_scaler=_grad_scaler(accelerator),
        )
        batch_size = getattr(loader, "batch_size", None)
        if not isinstance(batch_size, int):
            # Accelerate's prepared loader batches through its sampler; this is the size it was given.
            given = getattr(trainer, "_train_batch_size", args.train_batch_size)
            batch_size = given if isinstance(given, int) else None
        # The facts go in before the test ends: the default suggestion (and a refinement) read them.
        facts = {
            "batch_size": batch_size,
            "framework": "transformers",
            "transformers_version": transformers.__version__,
            "rerun_hint": (
                "lrscout.transformers.find_lr(trainer) with per_device_train_batch_size={batch_size}"
            ),
            **extra,
        }
        scheduler, total = _training_scheduler(trainer, loader)
        probes: Any = refine
        if refine and trainer.eval_dataset is not None:
            probes = trainer.get_eval_dataloader()
        result = finder.range_test(
            loader,
            accumulation_steps=args.gradient_accumulation_steps,
            refine=probes,
            info=facts,
            schedule=schedule,
            total_steps=_plan_length(scheduler, total)
            if total_steps is None and epochs is None
            else total_steps,
            epochs=epochs,
            scheduler=scheduler,
            **ramp,
        )
    finally:
        for group, lr in reversed(swapped):
            group["lr"] = lr
        if created:
            trainer.optimizer = None
        accelerator._dataloaders[:] = prepared
        # A dataloader left before its end stays registered as active.
        gradient_state.dataloader_references = active
        rng.restore()
    if set_learning_rate:
        try:
            lr = result.suggestion.lr
        except NoSuggestionError as error:
            raise NoSuggestionError(
                f"{error} (set_learning_rate: trainer.args.learning_rate was not changed.)"
            ) from None
        args.learning_rate = lr
    return result


def _length(data: Any) -> int | None:
    """``len(data)``, or ``None`` for data without a length (an ``IterableDataset``)."""
    try:
        return len(data)
    except TypeError:
        return None


def _check_examples(dataset: Any, name: str, fix: str) -> None:
    """Refuse, before the test, a dataset without examples (the loader would fail inside torch)."""
    if _length(dataset) == 0:
        fail(_FIND_LR, name, "a dataset with examples", f"an empty {type(dataset).__name__}", fix)


def _training_scheduler(trainer: transformers.Trainer, loader: Any) -> tuple[Any, int | None]:
    """The scheduler ``train()`` will step and its optimizer steps: the Trainer's own, else one made
    as ``train()`` makes it.

    Made on a throwaway optimizer (nothing of the Trainer's is touched) with
    ``args.lr_scheduler_type``, its warm-up and kwargs, over the steps
    ``train()`` will run: ``args.max_steps``, else the epochs times the
    optimizer steps per epoch. ``(None, None)`` when that length is unknown
    (a loader without a length and no ``max_steps``).
    """
    args = trainer.args
    if args.max_steps > 0:
        total = int(args.max_steps)
    else:
        try:
            batches = len(loader)
        except TypeError:
            return trainer.lr_scheduler, None
        per_epoch = max(batches // args.gradient_accumulation_steps, 1)
        total = math.ceil(args.num_train_epochs * per_epoch)
    if trainer.lr_scheduler is not None or total < 1:
        return trainer.lr_scheduler, (total if total >= 1 else None)
    throwaway = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    made = transformers.get_scheduler(
        args.lr_scheduler_type,
        optimizer=throwaway,
        num_warmup_steps=args.get_warmup_steps(total),
        num_training_steps=total,
        scheduler_specific_kwargs=kwargs if isinstance(kwargs := args.lr_scheduler_kwargs, dict) else {},
    )
    return made, total


def _plan_length(scheduler: Any, total: int | None) -> int | None:
    """``total`` where the scheduler does not say its own length (a constant rate's does not)."""
    held = scheduler_plan(scheduler, source="scheduler")
    return None if held is not None and held.total_steps is not None else total


def _trainer_loss(trainer: transformers.Trainer) -> Any:
    """``loss_fn(model, batch)``: the Trainer's own loss of a batch, as its ``training_step`` computes it."""

    def loss_fn(model: nn.Module, batch: Any) -> Any:
        # Checked by the finder where it reads the losses, not here on every step.
        inputs = trainer._prepare_inputs(batch)
        with trainer.compute_loss_context_manager():
            return trainer.compute_loss(model, inputs)

    return loss_fn


def _grad_scaler(accelerator: Any) -> torch.amp.GradScaler | None:
    """The accelerator's gradient scaler (``fp16``), which the test uses and restores."""
    scaler = getattr(accelerator, "scaler", None)
    return scaler if isinstance(scaler, torch.amp.GradScaler) else None
