"""The loss of a batch: ``criterion(model(inputs), targets)`` or ``loss_fn(model, batch)``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from itertools import islice
from typing import Any

import torch
from torch import nn

from .._errors import InvalidArgumentError
from .._validation import check_callable, fail
from ._batches import Batch, to_device

LossFn = Callable[[nn.Module, Batch], torch.Tensor]
Criterion = Callable[[Any, Any], torch.Tensor]


def check_loss_functions(criterion: Any, loss_fn: Any, *, where: str) -> str:
    """Check that exactly one of ``criterion`` and ``loss_fn`` is a callable; return its name."""
    if criterion is None and loss_fn is None:
        fail(
            where,
            "criterion",
            "given when loss_fn is None",
            criterion,
            "Pass criterion (e.g. torch.nn.CrossEntropyLoss()) for (inputs, targets) batches, "
            "or loss_fn(model, batch) for any other batch.",
        )
    if criterion is not None and loss_fn is not None:
        fail(where, "loss_fn", "None when criterion is given", loss_fn, "Pass one of them.")
    if loss_fn is not None:
        check_callable(loss_fn, "loss_fn", where=where)
        return "loss_fn"
    check_callable(criterion, "criterion", where=where)
    return "criterion"


def loss_computer(
    model: nn.Module,
    *,
    criterion: Criterion | None,
    loss_fn: LossFn | None,
    amp_dtype: torch.dtype | None = None,
    device_type: str = "cpu",
    where: str,
) -> Callable[[Batch], Any]:
    """``compute(batch) -> loss`` for a batch already on the model's device, under autocast if asked.

    Exactly one of ``criterion`` (for ``(inputs, targets)`` batches) and
    ``loss_fn`` is given (see :func:`check_loss_functions`). ``compute`` does
    not check what it returns, as it runs on every training step: the caller
    passes the loss to :func:`check_loss` where it reads it (the range test
    in its chunk read, or when ``backward`` fails). Nothing here reads the
    loss back to the host.
    """
    if loss_fn is not None:

        def forward(batch: Batch) -> Any:
            return loss_fn(model, batch)

    else:
        assert criterion is not None

        def forward(batch: Batch) -> Any:
            # A plain tuple, the usual batch, skips the checks (this runs on every step).
            if type(batch) is not tuple and (
                isinstance(batch, Mapping) or not isinstance(batch, (tuple, list))
            ):
                # A dict of two entries would unpack into its keys and fail deep in the model.
                raise InvalidArgumentError(
                    f"{where}: each batch must be an (inputs, targets) pair when criterion is given; "
                    f"got {type(batch).__name__}. Pass loss_fn(model, batch) for other batches, e.g. "
                    "loss_fn=lambda model, batch: model(**batch).loss for a Hugging Face model."
                )
            try:
                inputs, targets = batch
            except (TypeError, ValueError):
                raise InvalidArgumentError(
                    f"{where}: each batch must be an (inputs, targets) pair when criterion is given; "
                    f"got {type(batch).__name__}. Pass loss_fn(model, batch) for other batches."
                ) from None
            return criterion(model(inputs), targets)

    if amp_dtype is None:
        return forward

    def forward_autocast(batch: Batch) -> Any:
        with torch.autocast(device_type=device_type, dtype=amp_dtype):
            return forward(batch)

    return forward_autocast


def check_loss(loss: Any, *, source: str, where: str) -> torch.Tensor:
    """``loss`` if it is a scalar tensor; else the one error for a loss of another shape or type."""
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        what = f"shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise InvalidArgumentError(
            f"{where}: {source} must return a scalar tensor; got {what}. "
            "Reduce the loss over the batch to its mean (reduction='mean')."
        )
    return loss


def validation_loss(
    model: nn.Module,
    compute_loss: Callable[[Batch], Any],
    val_loader: Iterable[Batch],
    num_val_batches: int | None,
    *,
    device: torch.device,
    source: str,
    where: str,
) -> Callable[[], torch.Tensor]:
    """``validate() -> mean loss`` over the first ``num_val_batches`` batches (all for ``None``).

    The model is in eval mode, without gradients, during the validation and in
    train mode after it. The mean stays a device tensor.
    """

    def validate() -> torch.Tensor:
        model.eval()
        total: torch.Tensor | None = None
        count = 0
        try:
            with torch.no_grad():
                for batch in islice(val_loader, num_val_batches):
                    loss = check_loss(compute_loss(to_device(batch, device)), source=source, where=where)
                    total = loss if total is None else total + loss
                    count += 1
        finally:
            model.train()
        if total is None:
            raise InvalidArgumentError(f"{where}: val_loader must yield at least one batch; got none.")
        return total / count

    return validate
