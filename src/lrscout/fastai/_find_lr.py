"""``find_lr(learn)``: lrscout's range test inside a fastai ``learn.fit``, the Learner left as it was.

fastai is imported when :func:`find_lr` is called, so that ``auto`` (which
needs neither fastai nor torch) imports without it.
"""

from __future__ import annotations

import contextlib
import functools
import math
import random
from collections.abc import Mapping
from typing import Any

from .._engine import RangeTestState, _progress_bar, warn_about
from .._errors import InvalidArgumentError, missing_dependency
from .._global_rng import GlobalRNG
from .._jsonio import json_copy
from .._plan import Plan, resolve_plan
from .._result import RangeTestResult
from .._validation import check_bool, check_int
from ._suggest import LEARNER_SCHEDULE, learner_facts

_FIND_LR = "find_lr"


def find_lr(
    learn: Any,
    *,
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
    schedule: str = "auto",
    total_steps: int | None = None,
    epochs: float | None = None,
    info: Mapping[str, Any] | None = None,
) -> RangeTestResult:
    """Run lrscout's LR range test in a ``learn.fit`` of a fastai ``Learner``; leave the Learner as it was.

    Like fastai's own ``learn.lr_find`` the test is a fit with a callback:
    the Learner's callbacks (mixed precision, gradient accumulation, ...)
    run, validation is skipped, every param group gets the same rate (set
    with ``learn.opt.set_hyper("lr", ...)`` before each batch, after any
    scheduler callback), and a step is a batch. Unlike it, the recorded
    losses are each batch's own (``learn.loss``), read ``sync_every``
    batches at a time (averaged over the ranks under ``torch.distributed``),
    the stop rule and the suggestion are lrscout's, and the result is a
    :class:`lrscout.RangeTestResult`.

    ``learn.opt`` may be fastai's own optimizer or an ``OptimWrapper``
    around a torch optimizer; one that does not exist yet is created with
    ``learn.create_opt()`` and dropped afterwards. Afterwards, and also
    after an exception, the model's weights, buffers and gradients, the
    optimizer's state and hyperparameters, torch's, NumPy's and Python's global RNG,
    the train loader's own random state (a fastai ``DataLoader``'s ``rng``,
    a torch ``DataLoader``'s generators) and the recorder's lists are as
    before, bitwise, in memory (fastai's ``lr_find`` saves and loads a file).

    Args:
        learn: The ``fastai.learner.Learner``.
        start_lr: First learning rate; ``None`` means ``1e-7``.
        end_lr: Last learning rate, greater than ``start_lr``.
        num_steps: Most batches, at least 2.
        mode: ``"exponential"`` or ``"linear"`` ramp.
        smoothing: EMA factor of the smoothed loss, in [0, 1).
        divergence_factor: Stop once the smoothed loss exceeds this multiple
            (> 1) of its best.
        stop_on_divergence: ``False`` runs every step unless a loss is not
            finite.
        extend: Keep ramping past ``end_lr`` while the loss has not turned
            up, for at most ``num_steps`` more steps.
        sync_every: Steps per device-to-host read of the losses, at least 1.
        progress: Show a tqdm bar over the steps where someone can watch
            it (see :func:`lrscout.range_test`); fastai's own bar is off.
        info: JSON-serialisable facts to keep in ``result.info``.

    Returns:
        The :class:`lrscout.RangeTestResult`; ``info`` holds ``framework``
        ``"fastai"``, the optimizer, momentum and batch size (see
        :func:`lrscout.fastai.auto_for`).

    Raises:
        ImportError: If fastai is not installed.
        TypeError, ValueError: On a bad argument, before the test runs.
    """
    try:
        from fastai.learner import Learner
    except ImportError as error:
        raise missing_dependency("lrscout.fastai.find_lr", "fastai", needs="fastai") from error
    import torch

    from ..pytorch._distributed import loss_reader, rank_and_world_size
    from ..pytorch._find_lr import DEFAULT_START_LR, loader_generators
    from ..pytorch._snapshot import TrainingSnapshot

    if not isinstance(learn, Learner):
        raise InvalidArgumentError(f"{_FIND_LR}: learn must be a fastai Learner; got {type(learn).__name__}.")
    state = RangeTestState(
        start_lr=DEFAULT_START_LR if start_lr is None else start_lr,
        end_lr=end_lr,
        num_steps=num_steps,
        mode=mode,
        smoothing=smoothing,
        divergence_factor=divergence_factor,
        stop_on_divergence=stop_on_divergence,
        extend=extend,
        where=_FIND_LR,
    )
    sync_every = check_int(sync_every, "sync_every", where=_FIND_LR, minimum=1)
    progress = check_bool(progress, "progress", where=_FIND_LR)
    try:
        per_epoch: int | None = len(learn.dls.train)
    except TypeError:
        per_epoch = None
    plan = resolve_plan(
        schedule,
        total_steps,
        epochs,
        steps_per_epoch=per_epoch,
        held=Plan(LEARNER_SCHEDULE, None, "fastai"),
        where=_FIND_LR,
    )
    extra = json_copy(info, where=_FIND_LR)
    _, world_size = rank_and_world_size()

    created = learn.opt is None
    if created:
        learn.create_opt()
    # The torch optimizer inside an OptimWrapper; fastai's own optimizer
    # keeps its hyperparameters in ``hypers`` and its state in ``state``,
    # which TrainingSnapshot restores through ``param_groups`` and ``state``.
    wrapped = getattr(learn.opt, "opt", None)
    optimizer = wrapped if isinstance(wrapped, torch.optim.Optimizer) else learn.opt
    facts = learner_facts(learn)
    snapshot = TrainingSnapshot(learn.model, optimizer)
    recorder = getattr(learn, "recorder", None)
    recorded = {name: list(getattr(recorder, name, [])) for name in ("lrs", "iters", "losses", "values")}
    loader = learn.dls.train
    loader_rng = getattr(loader, "rng", None)
    loader_rng_state = loader_rng.getstate() if isinstance(loader_rng, random.Random) else None
    generators = loader_generators(loader)
    rng = GlobalRNG()
    test = _range_test_callback()(state, loss_reader(world_size), sync_every, progress)
    try:
        batches = len(loader)
    except TypeError:
        batches = state.max_steps
    try:
        with _without_output(learn):
            learn.fit(math.ceil(state.max_steps / max(batches, 1)), cbs=[test])
    finally:
        try:
            snapshot.restore()
        finally:
            test.close()
            if created:
                learn.opt = None
            if recorder is not None:
                for name, values in recorded.items():
                    setattr(recorder, name, values)
            if isinstance(loader_rng, random.Random) and loader_rng_state is not None:
                # fastai's DataLoader replaces its Random at each epoch (randomize).
                loader.rng = loader_rng
                loader_rng.setstate(loader_rng_state)
            rng.restore()
            for generator, generator_state in generators:
                generator.set_state(generator_state)
    result = state.result(
        {
            "framework": "fastai",
            "torch_version": str(torch.__version__),
            **facts,
            "world_size": world_size,
            "sync_every": sync_every,
            "loader_cycled": test.epochs > 1,
            "loader_passes": test.epochs,
            "steps_per_epoch": per_epoch,
            "plan": plan.to_dict(),
            "rerun_hint": "lrscout.fastai.find_lr(learn) with DataLoaders of bs={batch_size}",
            **extra,
        },
        short_fix="Raise num_steps or give the Learner more batches.",
    )
    return warn_about(result)


@contextlib.contextmanager
def _without_output(learn: Any) -> Any:
    """fastai's progress bar and logging off, as its own ``lr_find`` has them."""
    with contextlib.ExitStack() as stack:
        no_bar = getattr(learn, "no_bar", None)
        if callable(no_bar):
            stack.enter_context(no_bar())
        stack.enter_context(learn.no_logging())
        yield


@functools.cache
def _range_test_callback() -> type[Any]:
    """The fastai callback class (built once, when fastai is first needed)."""
    from fastai.callback.core import Callback, CancelFitException, CancelValidException

    class RangeTest(Callback):  # type: ignore[misc]
        """Sets the ramp's rate before each training batch, records its loss after it, stops the fit."""

        # After fastai's ParamScheduler (60): the ramp has the last word on the rate.
        order = 61

        def __init__(self, state: RangeTestState, read: Any, sync_every: int, progress: bool) -> None:
            self.state, self.read, self.sync_every = state, read, sync_every
            self.pending: list[Any] = []
            self.steps = 0
            self.epochs = 1
            self.bar = _progress_bar(state.num_steps) if progress else None

        def before_batch(self) -> None:
            if self.learn.training and not self.state.done and self.steps < self.state.max_steps:
                self.learn.opt.set_hyper("lr", self.state.lr_at(self.steps))

        def after_batch(self) -> None:
            if not self.learn.training or self.state.done or self.steps >= self.state.max_steps:
                return
            self.pending.append(self.learn.loss.detach().mean())
            self.steps += 1
            self.epochs = int(self.learn.epoch) + 1
            if len(self.pending) >= self.sync_every or self.steps in (
                self.state.num_steps,
                self.state.max_steps,
            ):
                self.flush()
            if self.state.done or self.steps >= self.state.max_steps:
                raise CancelFitException()

        def before_validate(self) -> None:
            raise CancelValidException()

        def after_fit(self) -> None:
            if self.pending and not self.state.done:
                self.flush()

        def flush(self) -> None:
            state = self.state
            recorded = state.step
            state.record(self.read(self.pending))
            self.pending = []
            if self.bar is not None and state.step:
                self.bar.update(state.step - recorded)
                self.bar.set_postfix(
                    lr=f"{state.lr_at(state.step - 1):.2e}", loss=f"{state.smoothed[-1]:.4g}", refresh=False
                )

        def close(self) -> None:
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return RangeTest
