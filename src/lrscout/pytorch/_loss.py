"""The loss of a batch: ``criterion(model(inputs), targets)`` or ``loss_fn(model, batch)``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any

import torch
from torch import nn

from .._errors import InvalidArgumentError
from ._batches import to_device

Batch = Any
LossFn = Callable[[nn.Module, Batch], torch.Tensor]


def loss_computer(
    model: nn.Module,
    *,
    criterion: Callable[[Any, Any], torch.Tensor] | None,
    loss_fn: LossFn | None,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    where: str,
) -> Callable[[Batch], torch.Tensor]:
    """``compute(batch) -> scalar loss tensor``, batch moved to ``device``, under autocast if asked.

    Exactly one of ``criterion`` (for ``(inputs, targets)`` batches) and
    ``loss_fn`` is given. Nothing here reads the loss back to the host.
    """

    def forward(batch: Batch) -> Any:
        if loss_fn is not None:
            return loss_fn(model, to_device(batch, device))
        assert criterion is not None
        try:
            inputs, targets = batch
        except (TypeError, ValueError):
            raise InvalidArgumentError(
                f"{where}: each batch must be an (inputs, targets) pair when criterion is given; "
                f"got {type(batch).__name__}. Pass loss_fn(model, batch) for other batches."
            ) from None
        return criterion(model(to_device(inputs, device)), to_device(targets, device))

    def compute(batch: Batch) -> torch.Tensor:
        if amp_dtype is None:
            loss = forward(batch)
        else:
            with torch.autocast(device_type=device.type, dtype=amp_dtype):
                loss = forward(batch)
        if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
            what = f"shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else type(loss).__name__
            source = "loss_fn" if loss_fn is not None else "criterion"
            raise InvalidArgumentError(f"{where}: {source} must return a scalar tensor; got {what}.")
        return loss

    return compute


def validation_loss(
    model: nn.Module,
    compute_loss: Callable[[Batch], torch.Tensor],
    val_loader: Iterable[Batch],
    num_val_batches: int | None,
    *,
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
                    loss = compute_loss(batch)
                    total = loss if total is None else total + loss
                    count += 1
        finally:
            model.train()
        if total is None:
            raise InvalidArgumentError(f"{where}: val_loader must yield at least one batch; got none.")
        return total / count

    return validate
