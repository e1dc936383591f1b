"""Batches for the range test: moved to the model's device, the loader cycled when it runs out."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

from .._errors import InvalidArgumentError
from .._validation import fail


def resolve_device(device: Any, model: nn.Module, *, where: str) -> torch.device:
    """``device`` as a ``torch.device``; ``None`` is the model's first parameter's device (else CPU)."""
    if device is None:
        first = next(model.parameters(), None)
        return first.device if first is not None else torch.device("cpu")
    if not isinstance(device, (str, torch.device)):
        fail(where, "device", "a torch.device, a string such as 'cuda:0', or None", device, "")
    try:
        return torch.device(device)
    except RuntimeError:
        raise InvalidArgumentError(
            f"{where}: device must be a valid device string such as 'cpu' or 'cuda:0'; got {device!r}."
        ) from None


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` with every tensor in it (nested tuples, lists, dicts) moved to ``device``."""
    if isinstance(batch, torch.Tensor):
        # Comparing devices costs a fifth of a no-op .to() call, on every step.
        return batch if batch.device == device else batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, list):
        return [to_device(value, device) for value in batch]
    if isinstance(batch, tuple):
        moved = [to_device(value, device) for value in batch]
        # Named tuples take their fields as arguments, plain tuples an iterable.
        return type(batch)(*moved) if hasattr(batch, "_fields") else tuple(moved)
    return batch


class BatchStream:
    """Endless batches from ``loader``, starting it again each time it runs out.

    A one-shot iterator (a generator, ``iter(loader)``) cannot be started again:
    when it runs out, ``next`` raises ``StopIteration``, which ends the range
    test with ``stop_reason == "ended"``.

    Attributes:
        passes: How many times the loader was started (more than 1: cycled).
    """

    def __init__(self, loader: Iterable[Any], *, name: str, where: str) -> None:
        self._loader = loader
        self._iterator: Iterator[Any] = iter(loader)
        self._restartable = self._iterator is not loader
        self._name = name
        self._where = where
        self._count = 0
        self.passes = 1

    def next(self) -> Any:
        try:
            batch = next(self._iterator)
        except StopIteration:
            if self._count == 0:
                raise InvalidArgumentError(
                    f"{self._where}: {self._name} must yield at least one batch; got none."
                ) from None
            if not self._restartable:
                raise
            self._iterator = iter(self._loader)
            self.passes += 1
            self._count = 0
            batch = self.next()
        self._count += 1
        return batch
