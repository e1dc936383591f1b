"""Batches: their device, their size, their slices, and a loader cycled when it runs out.

One walk over a batch's structure (:func:`map_tensors`) serves every batch
operation: tensors nested in tuples (named or not), lists, any
``collections.abc.Mapping`` (a dict, a Hugging Face ``BatchEncoding``) and
dataclass instances.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections import UserDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch
from torch import nn

from .._errors import InvalidArgumentError
from .._validation import fail

Batch = Any


def resolve_device(device: Any, model: nn.Module, *, where: str) -> torch.device:
    """``device`` as a ``torch.device``; ``None`` is the model's first parameter's device (else CPU)."""
    if device is None:
        first = next(model.parameters(), None)
        return first.device if first is not None else torch.device("cpu")
    if not isinstance(device, (str, torch.device)):
        fail(where, "device", "a torch.device, a string such as 'cuda:0', or None", device, "")
    try:
        chosen = torch.device(device)
    except RuntimeError:
        raise InvalidArgumentError(
            f"{where}: device must be a valid device string such as 'cpu' or 'cuda:0'; got {device!r}."
        ) from None
    if chosen.type != "cpu" and not _available(chosen):
        fail(
            where,
            "device",
            "a device this PyTorch build can use",
            device,
            f"torch {torch.__version__} has no usable {chosen.type!r} device here: pass device='cpu' "
            "or None (the model's own device).",
        )
    return chosen


def _available(device: torch.device) -> bool:
    """Whether ``device`` exists here (checked before the test, not half way through it)."""
    module = getattr(torch, device.type, None)
    is_available = getattr(module, "is_available", None)
    if not callable(is_available) or not is_available():
        return False
    count = getattr(module, "device_count", None)
    return device.index is None or not callable(count) or device.index < count()


def map_tensors(batch: Batch, fn: Callable[[torch.Tensor], Any]) -> Batch:
    """``batch`` rebuilt with ``fn(tensor)`` in place of every tensor in it; the rest is kept.

    Containers keep their type: a named tuple or a dataclass is built again
    from its fields; a dict subclass or ``UserDict`` (such as ``BatchEncoding``)
    is copied, keeping its attributes, and its values replaced; another
    ``Mapping`` is built as ``type(batch)(items)``, or becomes a ``dict`` when
    its type cannot be built that way.
    """
    if isinstance(batch, torch.Tensor):
        return fn(batch)
    if type(batch) is dict:
        return {key: map_tensors(value, fn) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        parts = [map_tensors(value, fn) for value in batch]
        if isinstance(batch, list):
            return parts
        # Named tuples take their fields as arguments, plain tuples an iterable.
        return type(batch)(*parts) if hasattr(batch, "_fields") else tuple(parts)
    if isinstance(batch, Mapping):
        items = {key: map_tensors(value, fn) for key, value in batch.items()}
        if isinstance(batch, (dict, UserDict)):
            rebuilt = copy.copy(batch)
            for key, value in items.items():
                rebuilt[key] = value
            return rebuilt
        try:
            return type(batch)(items)  # type: ignore[call-arg]
        except (TypeError, ValueError):
            return items
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        changes = {
            field.name: map_tensors(getattr(batch, field.name), fn)
            for field in dataclasses.fields(batch)
            if field.init
        }
        return dataclasses.replace(batch, **changes)
    return batch


def tensors_in(batch: Batch) -> list[torch.Tensor]:
    """Every tensor in ``batch``, depth first, in the order :func:`map_tensors` visits them."""
    found: list[torch.Tensor] = []

    def keep(tensor: torch.Tensor) -> torch.Tensor:
        found.append(tensor)
        return tensor

    map_tensors(batch, keep)
    return found


def to_device(batch: Batch, device: torch.device) -> Batch:
    """``batch`` with every tensor in it moved to ``device`` (see :func:`map_tensors`).

    Example:
        >>> from collections import namedtuple
        >>> Pair = namedtuple("Pair", "inputs targets")
        >>> moved = to_device({"pair": Pair(torch.zeros(2), [torch.ones(1)])}, torch.device("meta"))
        >>> moved["pair"].inputs.device, moved["pair"].targets[0].device
        (device(type='meta'), device(type='meta'))
    """

    def move(tensor: torch.Tensor) -> torch.Tensor:
        # Comparing devices costs a fifth of a no-op .to() call.
        return tensor if tensor.device == device else tensor.to(device, non_blocking=True)

    return map_tensors(batch, move)


def batch_mover(batch: Batch, device: torch.device) -> Callable[[Batch], Batch] | None:
    """How to move batches like ``batch`` to ``device``: ``None`` when none of its tensors needs it.

    Decided once, on a loader's first batch, so that a loader that already
    yields batches on ``device`` costs no walk over each batch.
    """
    if all(tensor.device == device for tensor in tensors_in(batch)):
        return None

    def move(batch: Batch) -> Batch:
        return to_device(batch, device)

    return move


def batch_len(batch: Batch, *, where: str) -> int:
    """Examples in ``batch``: the first dimension of its first tensor that has one."""
    for tensor in tensors_in(batch):
        if tensor.ndim > 0:
            return int(tensor.shape[0])
    raise InvalidArgumentError(
        f"{where}: a batch must hold a tensor with a batch dimension; got {type(batch).__name__}."
    )


def slice_batch(batch: Batch, start: int, stop: int, size: int) -> Batch:
    """Examples ``start:stop`` of every tensor in ``batch`` whose first dimension is ``size``."""

    def cut(tensor: torch.Tensor) -> torch.Tensor:
        return tensor[start:stop] if tensor.ndim > 0 and tensor.shape[0] == size else tensor

    return map_tensors(batch, cut)


class BatchStream:
    """Endless batches from ``loader``, starting it again each time it runs out.

    With a ``device``, batches come moved there; whether they need moving is
    decided on the loader's first batch (:func:`batch_mover`).

    A one-shot iterator (a generator, ``iter(loader)``) cannot be started again:
    when it runs out, ``next`` raises ``StopIteration``, which ends the range
    test with ``stop_reason == "ended"``.

    Attributes:
        next: ``next() -> batch``, the next batch (a generator's ``__next__``:
            no Python frame of its own on every step).
    """

    def __init__(
        self, loader: Iterable[Batch], *, name: str, where: str, device: torch.device | None = None
    ) -> None:
        # The generator holds no reference to the stream: no reference cycle
        # keeps a loader's iterator (and its worker processes) alive after use.
        self._passes = [1]
        self._first_size: list[int | None] = [None]
        self.next: Callable[[], Batch] = _cycle(
            loader, self._passes, self._first_size, device, name, where
        ).__next__

    @property
    def passes(self) -> int:
        """How many times the loader was started (more than 1: cycled)."""
        return self._passes[0]

    @property
    def first_batch_size(self) -> int | None:
        """Examples in the first batch drawn (:func:`batch_len`); ``None`` before one, or without one."""
        return self._first_size[0]

    def __iter__(self) -> Iterator[Batch]:
        return self

    def __next__(self) -> Batch:
        return self.next()


def _cycle(
    loader: Iterable[Batch],
    passes: list[int],
    first_size: list[int | None],
    device: torch.device | None,
    name: str,
    where: str,
) -> Iterator[Batch]:
    iterator = iter(loader)
    restartable = iterator is not loader
    batch = _first(iterator, name, where)
    with contextlib.suppress(InvalidArgumentError):  # a batch without a batch dimension has no size
        first_size[0] = batch_len(batch, where=where)
    move = None if device is None else batch_mover(batch, device)
    while True:
        if move is None:
            yield batch
            # Not ``yield from``: closing this stream would close a one-shot
            # iterator of the caller's too.
            for batch in iterator:
                yield batch
        else:
            yield move(batch)
            for batch in iterator:
                yield move(batch)
        if not restartable:
            return
        iterator = iter(loader)
        passes[0] += 1
        batch = _first(iterator, name, where)


def _first(iterator: Iterator[Batch], name: str, where: str) -> Batch:
    for batch in iterator:
        return batch
    raise InvalidArgumentError(f"{where}: {name} must yield at least one batch; got none.")


def check_batches(loader: Iterable[Batch], name: str, *, where: str, pairs: bool) -> None:
    """Refuse, before the test, batches it could only fail on later.

    An empty loader (``len`` 0: an empty list, a ``DataLoader`` over an
    empty dataset), and, when the loss is ``criterion(model(inputs),
    targets)`` (``pairs``), a list or tuple whose first entry is not an
    ``(inputs, targets)`` pair: ``[X_val, y_val]`` is two batches of one
    tensor each, not one batch. Nothing is drawn from the loader; one
    without ``len`` is checked when it is read.
    """
    try:
        size = len(loader)  # type: ignore[arg-type]
    except TypeError:
        size = None
    if size == 0:
        raise InvalidArgumentError(
            f"{where}: {name} must yield at least one batch; got an empty {type(loader).__name__}. "
            "Check that its dataset holds examples (and that drop_last does not drop them all)."
        )
    if not pairs or not isinstance(loader, (list, tuple)) or not loader:
        return
    first = loader[0]
    if isinstance(first, Mapping) or not isinstance(first, (list, tuple)) or len(first) != 2:
        kind = type(first).__name__
        what = (
            f"a tensor of shape {tuple(first.shape)}"
            if isinstance(first, torch.Tensor)
            else f"{'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind}"
        )
        fail(
            where,
            name,
            "a list of (inputs, targets) batches when criterion is given",
            f"a {type(loader).__name__} of {len(loader)} whose first entry is {what}",
            f"For one batch (X, y), pass {name}=[(X, y)]; for more, a DataLoader. "
            "Pass loss_fn(model, batch) for batches of another form.",
        )
