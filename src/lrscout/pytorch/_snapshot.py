"""Save and restore everything a range test or a noise-scale measurement changes, bit for bit."""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from .._global_rng import GlobalRNG


class TrainingSnapshot:
    """The training state of a model (and its optimizer), taken now, restored later.

    Restores by identity and by value. Every container that holds training
    state keeps its identity and gets its original contents back: each
    module's parameter and buffer tables (so a buffer that ``forward``
    replaces, rather than updates in place, comes back as the original
    tensor), ``optimizer.param_groups`` and each of its dicts (a reference to
    a group sees its original learning rate again), the ``params`` lists in
    them and ``optimizer.state``. Then every tensor found in them — weights,
    buffers (BatchNorm statistics, non-persistent buffers too), parameters
    that the optimizer trains outside the model, tensor learning rates, the
    optimizer's state — gets its original value back, in place, bitwise.
    Also restored: the gradients of every parameter (in place where the
    current gradient has the same shape and dtype), each module's train/eval
    mode and extra state (``get_extra_state``), a ``GradScaler``'s state, and
    the global random generators (torch's CPU RNG, CUDA's once initialised,
    NumPy's and Python's: a data pipeline may draw from any of them; see
    ``lrscout._global_rng.GlobalRNG``).

    Args:
        model: The model.
        optimizer: Its optimizer, or ``None`` (nothing steps: a measurement).
        grad_scaler: A ``GradScaler`` that will be used, or ``None``.
        cache_dir: ``None`` keeps the tensors' values in CPU memory; a
            directory writes them to a file there instead (tensors only, read
            back with ``weights_only=True``), removed by :meth:`restore`.

    Example:
        >>> model = nn.BatchNorm1d(2)
        >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> weight, groups = model.weight, optimizer.param_groups
        >>> snapshot = TrainingSnapshot(model, optimizer)
        >>> _ = model(torch.randn(4, 2)).sum().backward()
        >>> optimizer.step()
        >>> optimizer.param_groups[0]["lr"] = 1.0
        >>> snapshot.restore()
        >>> model.weight is weight and torch.equal(weight, torch.ones(2)), model.weight.grad
        (True, None)
        >>> optimizer.param_groups is groups and groups[0]["lr"] == 0.1
        True
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        *,
        grad_scaler: torch.amp.GradScaler | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self._optimizer = optimizer
        self._scaler = grad_scaler if grad_scaler is not None and grad_scaler.is_enabled() else None
        self._modes = [(module, module.training) for module in model.modules()]
        self._rng = GlobalRNG()
        self._scaler_state = self._scaler.state_dict() if self._scaler is not None else None
        # Arbitrary objects, kept in memory: the file holds tensors only.
        self._extra_states = [
            (module, copy.deepcopy(module.get_extra_state()))
            for module in model.modules()
            if type(module).get_extra_state is not nn.Module.get_extra_state
        ]
        walk = _StateWalk()
        for module in model.modules():
            walk.visit(module._parameters)
            walk.visit(module._buffers)
        # Every tensor that can have a gradient: the model's parameters and
        # whatever the optimizer trains besides (a loss's temperature).
        params = {id(param): param for param in model.parameters()}
        if optimizer is not None:
            self._param_groups = optimizer.param_groups
            self._state = optimizer.state
            walk.visit(optimizer.param_groups)
            walk.visit(optimizer.state)
            for group in optimizer.param_groups:
                params.update((id(param), param) for param in group["params"])
        self._params = list(params.values())
        self._containers = walk.containers
        self._tensors = walk.tensors
        values: dict[str, list[torch.Tensor | None]] = {
            "tensors": [tensor.detach() for tensor in self._tensors],
            "grads": [None if param.grad is None else param.grad.detach() for param in self._params],
        }
        self._saved: dict[str, list[torch.Tensor | None]] | None = None
        self._path: str | None = None
        if cache_dir is None:
            self._saved = {
                key: [None if value is None else value.to("cpu", copy=True) for value in listed]
                for key, listed in values.items()
            }
        else:
            handle, self._path = tempfile.mkstemp(prefix="lrscout-snapshot-", suffix=".pt", dir=cache_dir)
            os.close(handle)
            try:
                torch.save(values, self._path)
            except BaseException:
                os.remove(self._path)
                raise

    def restore(self, *, keep: bool = False) -> None:
        """Put everything back as it was when the snapshot was taken; remove its file.

        Args:
            keep: Keep the snapshot (and its file) for another ``restore``.

        Raises:
            RuntimeError: When called after a ``restore`` that did not keep it.
        """
        try:
            saved = self._load()
            if self._optimizer is not None:
                self._optimizer.param_groups = self._param_groups
                self._optimizer.state = self._state
            for container, contents in self._containers:
                if isinstance(container, list):
                    container[:] = contents
                else:
                    container.clear()
                    container.update(contents)
            with torch.no_grad():
                for tensor, value in zip(self._tensors, saved["tensors"], strict=True):
                    assert value is not None
                    tensor.copy_(value)
                for param, grad in zip(self._params, saved["grads"], strict=True):
                    _restore_grad(param, grad)
            del saved
            for module, extra_state in self._extra_states:
                module.set_extra_state(extra_state)
            for module, training in self._modes:
                # The attribute, not .train(): that would recurse into children
                # whose own modes are restored separately.
                module.training = training
            if self._scaler is not None and self._scaler_state is not None:
                self._scaler.load_state_dict(self._scaler_state)
            self._rng.restore()
        finally:
            if not keep:
                self._saved = None
                if self._path is not None:
                    os.remove(self._path)
                    self._path = None

    def _load(self) -> dict[str, list[torch.Tensor | None]]:
        if self._saved is not None:
            return self._saved
        if self._path is None:
            raise RuntimeError("TrainingSnapshot.restore: the snapshot was already restored.")
        # mmap: a model too large to copy into memory is read page by page.
        loaded: dict[str, list[torch.Tensor | None]] = torch.load(
            self._path, map_location="cpu", weights_only=True, mmap=True
        )
        return loaded


class _StateWalk:
    """The containers (lists, dicts) and tensors reachable from the objects visited, each once.

    ``containers`` pairs each list or dict with a shallow copy of its
    contents; ``tensors`` holds each tensor object once (a shared parameter,
    an lr tensor shared by several param groups). Keys are not walked: the
    parameters keying ``optimizer.state`` are reached through the groups.
    """

    def __init__(self) -> None:
        self.containers: list[tuple[Any, Any]] = []
        self.tensors: list[torch.Tensor] = []
        self._seen: set[int] = set()

    def visit(self, obj: Any) -> None:
        if id(obj) in self._seen:
            return
        children: Iterable[Any]
        if isinstance(obj, torch.Tensor):
            self.tensors.append(obj)
            children = ()
        elif isinstance(obj, list):
            self.containers.append((obj, list(obj)))
            children = obj
        elif isinstance(obj, dict):
            self.containers.append((obj, dict(obj)))
            children = obj.values()
        elif isinstance(obj, tuple):
            children = obj
        else:
            return
        self._seen.add(id(obj))
        for child in children:
            self.visit(child)


def _restore_grad(param: torch.Tensor, grad: torch.Tensor | None) -> None:
    if grad is None:
        param.grad = None
    elif param.grad is not None and param.grad.shape == grad.shape and param.grad.dtype == grad.dtype:
        param.grad.copy_(grad)
    else:
        param.grad = grad.to(device=param.device, dtype=param.dtype, copy=True)
