"""Save and restore everything a range test changes, bit for bit."""

from __future__ import annotations

import copy
import os
import tempfile
from typing import Any

import torch
from torch import nn


def _copy_to_cpu(obj: Any) -> Any:
    """A deep copy of ``obj`` with every tensor in it copied to CPU memory.

    ``state_dict()`` returns the live tensors, which the test is about to
    change; a reference would "restore" the changed values.
    """
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        # copy.copy keeps the mapping's type and attributes, such as the
        # ``_metadata`` (module versions) that load_state_dict reads.
        copied = copy.copy(obj)
        for key, value in obj.items():
            copied[key] = _copy_to_cpu(value)
        return copied
    if type(obj) in (list, tuple):
        return type(obj)(_copy_to_cpu(value) for value in obj)
    return copy.deepcopy(obj)


class TrainingSnapshot:
    """The training state of a model and its optimizer, taken now, restored later.

    Covers the weights and every buffer (BatchNorm statistics, non-persistent
    buffers too), the gradients, the optimizer's state and every param
    group's hyperparameters, each module's train/eval mode, a ``GradScaler``'s
    state, and torch's CPU RNG (and CUDA RNG once CUDA is initialised).
    :meth:`restore` writes weights and buffers back into the existing tensors,
    so an optimizer built on ``model.parameters()`` still holds them.

    Args:
        model: The model.
        optimizer: Its optimizer.
        grad_scaler: A ``GradScaler`` the test will use, or ``None``.
        cache_dir: ``None`` keeps the tensors in CPU memory; a directory
            writes them to a file there instead, removed by :meth:`restore`.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        grad_scaler: torch.amp.GradScaler | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self._model = model
        self._optimizer = optimizer
        self._scaler = grad_scaler if grad_scaler is not None and grad_scaler.is_enabled() else None
        self._modes = [(module, module.training) for module in model.modules()]
        self._cpu_rng = torch.get_rng_state()
        self._cuda_rng = (
            torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None  # type: ignore[no-untyped-call]
        )
        self._scaler_state = self._scaler.state_dict() if self._scaler is not None else None
        self._params = list(model.parameters())
        model_state = model.state_dict()
        optimizer_state = optimizer.state_dict()
        # Hyperparameters are small and may be tensors on the device (a
        # capturable optimizer's lr): keep them as they are, wherever they are.
        self._param_groups = copy.deepcopy(optimizer_state["param_groups"])
        tensors = {
            "model": model_state,
            "extra_buffers": {
                name: buffer for name, buffer in model.named_buffers() if name not in model_state
            },
            "grads": [param.grad for param in self._params],
            "optimizer": optimizer_state["state"],
        }
        self._saved: dict[str, Any] | None = None
        self._path: str | None = None
        if cache_dir is None:
            self._saved = _copy_to_cpu(tensors)
        else:
            handle, self._path = tempfile.mkstemp(prefix="lrscout-snapshot-", suffix=".pt", dir=cache_dir)
            os.close(handle)
            try:
                torch.save(tensors, self._path)
            except BaseException:
                os.remove(self._path)
                raise

    def restore(self) -> None:
        """Put everything back as it was when the snapshot was taken; remove its file."""
        try:
            saved = self._load()
            self._model.load_state_dict(saved["model"])
            extra_buffers = saved["extra_buffers"]
            with torch.no_grad():
                for name, buffer in self._model.named_buffers():
                    if name in extra_buffers:
                        buffer.copy_(extra_buffers[name])
                for param, grad in zip(self._params, saved["grads"], strict=True):
                    _restore_grad(param, grad)
            self._optimizer.load_state_dict({"state": saved["optimizer"], "param_groups": self._param_groups})
            del saved
            for module, training in self._modes:
                # The attribute, not .train(): that would recurse into children
                # whose own modes are restored separately.
                module.training = training
            if self._scaler is not None and self._scaler_state is not None:
                self._scaler.load_state_dict(self._scaler_state)
            torch.set_rng_state(self._cpu_rng)
            if self._cuda_rng is not None:
                torch.cuda.set_rng_state_all(self._cuda_rng)
        finally:
            self._saved = None
            if self._path is not None:
                os.remove(self._path)
                self._path = None

    def _load(self) -> dict[str, Any]:
        if self._saved is not None:
            return self._saved
        if self._path is None:
            raise RuntimeError("TrainingSnapshot.restore: the snapshot was already restored.")
        # weights_only=False: the file is one this process wrote moments ago
        # (mkstemp, owner-only) and may hold a module's arbitrary extra state.
        # mmap: a model too large to copy into memory is read page by page.
        loaded: dict[str, Any] = torch.load(self._path, map_location="cpu", weights_only=False, mmap=True)
        return loaded


def _restore_grad(param: nn.Parameter, grad: torch.Tensor | None) -> None:
    if grad is None:
        param.grad = None
    elif param.grad is not None and param.grad.shape == grad.shape and param.grad.dtype == grad.dtype:
        param.grad.copy_(grad)
    else:
        param.grad = grad.to(device=param.device, dtype=param.dtype, copy=True)
