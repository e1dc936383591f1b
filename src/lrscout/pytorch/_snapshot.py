"""Save and restore everything a range test or a noise-scale measurement changes, bit for bit."""

from __future__ import annotations

import concurrent.futures
import copy
import hashlib
import os
import sys
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

    Memory follows what can change. A parameter that is frozen
    (``requires_grad=False``) and not held by the optimizer cannot be changed
    by a training step, so it is checked, not copied: a fingerprint of its
    bytes (SHA-256 on the CPU, two wrapping 64-bit sums, plain and weighted
    by position, on an accelerator, where they run as a few device
    reductions with no copy to the host) is taken now and compared by
    :meth:`restore`, which raises ``RuntimeError`` naming the parameter if
    something (the forward pass, a hook, ``loss_fn``) wrote to it in place.
    Fine-tuning a large model with adapters (LoRA) so keeps a copy of the
    adapters, their gradients and optimizer state and the buffers only.
    Sharded tensors (``DTensor``, as FSDP2's ``fully_shard`` makes them) are
    saved, checked and restored through their local shards: each rank keeps
    its own shard and nothing is gathered.

    Args:
        model: The model.
        optimizer: Its optimizer, or ``None`` (nothing steps: a measurement).
        grad_scaler: A ``GradScaler`` that will be used, or ``None``.
        cache_dir: ``None`` keeps the tensors' values in CPU memory; a
            directory writes them to a file there instead (tensors only, read
            back with ``weights_only=True``), removed by :meth:`restore`.
        copy_frozen: Copy frozen parameters too, instead of checking them
            (for a model that changes a frozen parameter in place on purpose).

    Attributes:
        nbytes: Bytes of tensor data the snapshot holds (in memory or in its
            file): the copies, the gradients, the fingerprints and the RNG
            states.
        checked: How many frozen parameters are checked instead of copied.

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
        copy_frozen: bool = False,
    ) -> None:
        self._model = model
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
        model_params = list(params.values())
        held: set[int] = set()
        if optimizer is not None:
            self._param_groups = optimizer.param_groups
            self._state = optimizer.state
            walk.visit(optimizer.param_groups)
            walk.visit(optimizer.state)
            for group in optimizer.param_groups:
                held.update(id(param) for param in group["params"])
                params.update((id(param), param) for param in group["params"])
        self._params = list(params.values())
        self._containers = walk.containers
        frozen = set() if copy_frozen else _frozen(model, model_params, held)
        self._tensors = [tensor for tensor in walk.tensors if id(tensor) not in frozen]
        self._checked = [tensor for tensor in walk.tensors if id(tensor) in frozen]
        with torch.no_grad():
            values: dict[str, list[torch.Tensor | None]] = {
                "tensors": [_local(tensor) for tensor in self._tensors],
                "grads": [None if param.grad is None else _local(param.grad) for param in self._params],
            }
            # On the device, no sync: compared once per device by restore.
            self._fingerprints = _fingerprints(self._checked)
        self.checked = len(self._checked)
        self.nbytes = (
            sum(value.nbytes for listed in values.values() for value in listed if value is not None)
            + sum(print_.nbytes for print_ in self._fingerprints.values())
            + self._rng.nbytes
        )
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
            _reset_fsdp(self._model)
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
                    _local(tensor).copy_(value)
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
            self._check_frozen()
        finally:
            if not keep:
                self._saved = None
                if self._path is not None:
                    os.remove(self._path)
                    self._path = None

    def _check_frozen(self) -> None:
        """Raise if a parameter that was checked, not copied, is no longer what it was."""
        if not self._checked:
            return
        with torch.no_grad():
            now = _fingerprints(self._checked)
        changed = [
            index
            for key, before in self._fingerprints.items()
            if not torch.equal(before, now[key])
            for index in _changed(before, now[key], key, self._checked)
        ]
        if not changed:
            return
        names = {id(param): name for name, param in self._model.named_parameters(remove_duplicate=False)}
        listed = ", ".join(repr(names.get(id(self._checked[i]), f"parameter {i}")) for i in changed[:5])
        more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        raise RuntimeError(
            f"TrainingSnapshot.restore: frozen parameters changed during the test: {listed}{more}. "
            "A parameter with requires_grad=False that the optimizer does not hold is checked, not "
            "copied, and something (the forward pass, a hook, loss_fn) wrote to it in place, so it "
            "could not be put back. Pass copy_frozen=True (LRFinder(..., copy_frozen=True) or "
            "find_lr(..., copy_frozen=True)) to copy frozen parameters too."
        )

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
    """``param.grad`` back to ``grad`` (its saved local values): in place where it can be, else a new one."""
    if grad is None:
        param.grad = None
        return
    if param.grad is not None:
        current = _local(param.grad)
        if current.shape == grad.shape and current.dtype == grad.dtype:
            current.copy_(grad)
            return
    local = grad.to(device=_local(param).device, dtype=param.dtype, copy=True)
    dtensor = getattr(sys.modules.get("torch.distributed.tensor"), "DTensor", None)
    if dtensor is not None and isinstance(param, dtensor):
        # A sharded parameter's gradient is sharded like it: rebuilt from this rank's shard, no communication.
        param.grad = dtensor.from_local(
            local,
            param.device_mesh,
            param.placements,
            run_check=False,
            shape=param.shape,
            stride=param.stride(),
        )
    else:
        param.grad = local


def _local(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor whose bytes hold ``tensor``'s values here: a ``DTensor``'s local shard, else itself.

    Under ``no_grad`` (the caller's): ``DTensor.to_local`` is then a view of
    the shard, no communication. ``torch.distributed.tensor`` is not imported
    for it: where nobody imported it, no tensor is a ``DTensor``.
    """
    kind = type(tensor)
    if kind is torch.Tensor or kind is nn.Parameter:  # the usual case, first: this runs per tensor
        return tensor.detach()
    dtensor = getattr(sys.modules.get("torch.distributed.tensor"), "DTensor", None)
    if dtensor is not None and isinstance(tensor, dtensor):
        local: torch.Tensor = tensor.to_local()
        return local
    return tensor.detach()


def _reset_fsdp(model: nn.Module) -> None:
    """Bring FSDP2 modules back to their sharded, idle state, as after a completed step.

    A test that stopped inside a forward or backward pass (an exception, a
    KeyboardInterrupt) leaves them holding unsharded parameters and the
    iteration's trackers; ``reset_iter_state`` on each root (the topmost
    sharded modules) is FSDP's own recovery, and frees and communicates
    nothing else. Without it (older torch), each module is resharded.
    """
    fsdp = sys.modules.get("torch.distributed.fsdp")
    sharded = getattr(fsdp, "FSDPModule", None)
    if sharded is None:
        return
    inside: set[int] = set()
    for module in model.modules():
        if not isinstance(module, sharded) or id(module) in inside:
            continue
        below = [m for m in module.modules() if m is not module and isinstance(m, sharded)]
        inside.update(id(m) for m in below)
        if callable(getattr(module, "reset_iter_state", None)):
            module.reset_iter_state()
        else:
            for each in (module, *below):
                each.reshard()


def _frozen(model: nn.Module, params: Iterable[torch.Tensor], held: set[int]) -> set[int]:
    """Ids of the model's ``params`` that no step can change: frozen, not held, plain tensors.

    A frozen parameter that is also a buffer, or of a layout or type whose
    bytes cannot be read as a flat array (sparse, quantized, a tensor
    subclass other than ``DTensor``, on the meta device), is copied instead.
    """
    candidates = [param for param in params if not param.requires_grad and id(param) not in held]
    if not candidates:  # the usual case: nothing frozen, nothing more to look at
        return set()
    buffers = {id(buffer) for module in model.modules() for buffer in module._buffers.values()}
    dtensor = getattr(sys.modules.get("torch.distributed.tensor"), "DTensor", None)
    frozen = set()
    for param in candidates:
        if id(param) in buffers:
            continue
        plain = type(param) in (torch.Tensor, nn.Parameter) or (
            dtensor is not None and isinstance(param, dtensor)
        )
        if (
            plain
            and param.layout == torch.strided
            and not param.is_quantized
            and param.device.type != "meta"
            and not param.is_complex()
        ):
            frozen.add(id(param))
    return frozen


#: The integer type that reads a tensor's elements as their bytes, by element size.
_WORDS = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
#: Elements per block of the device checksum (bounds its temporary memory).
_BLOCK = 1 << 24


def _fingerprints(tensors: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """One fingerprint row per tensor, stacked per device: ``{device: (n, 4) int64 tensor}``.

    On the CPU a SHA-256 of the bytes (:func:`_host_digests`); elsewhere
    :func:`_device_checksum`, computed where the tensor lives. Rows keep the
    order of ``tensors`` within each device.
    """
    if not tensors:
        return {}
    rows: dict[str, list[torch.Tensor]] = {}
    on_host: list[tuple[str, int]] = []
    host_bytes = []
    for tensor in tensors:
        local = _local(tensor)
        words = local.reshape(-1).view(_WORDS[local.element_size()])
        device = str(words.device)
        listed = rows.setdefault(device, [])
        if words.device.type == "cpu":
            on_host.append((device, len(listed)))
            host_bytes.append(words.view(torch.uint8).numpy())
            listed.append(torch.empty(0))  # filled in below
        else:
            listed.append(_device_checksum(words))
    for (device, index), digest in zip(on_host, _host_digests(host_bytes), strict=True):
        rows[device][index] = torch.frombuffer(bytearray(digest), dtype=torch.int64)
    return {device: torch.stack(listed) for device, listed in rows.items()}


#: Bytes hashed per task on the CPU.
_PIECE = 1 << 26


def _host_digests(arrays: list[Any]) -> list[bytes]:
    """SHA-256 of each byte array, hashed in pieces on as many threads as torch uses.

    hashlib lets go of the GIL while it hashes, so the pieces run in
    parallel; a tensor's digest is the SHA-256 of its pieces' digests.
    """
    pieces = [
        (index, array[start : start + _PIECE])
        for index, array in enumerate(arrays)
        for start in range(0, max(len(array), 1), _PIECE)
    ]
    workers = min(torch.get_num_threads(), len(pieces))
    if workers > 1:
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            digests = list(pool.map(lambda piece: hashlib.sha256(piece[1]).digest(), pieces))
    else:
        digests = [hashlib.sha256(piece).digest() for _, piece in pieces]
    joined: list[list[bytes]] = [[] for _ in arrays]
    for (index, _), digest in zip(pieces, digests, strict=True):
        joined[index].append(digest)
    return [hashlib.sha256(b"".join(parts)).digest() for parts in joined]


def _device_checksum(words: torch.Tensor) -> torch.Tensor:
    """``[sum w_i, sum i * w_i, n]`` over the integer words ``w``, wrapping at 64 bits, on their device.

    A change of any one word changes the first sum; the second, weighted by
    position, also sees words moved or swapped. A few reductions per block,
    no copy to the host.
    """
    plain = torch.zeros((), dtype=torch.int64, device=words.device)
    weighted = torch.zeros((), dtype=torch.int64, device=words.device)
    positions = torch.arange(min(_BLOCK, words.numel()), dtype=torch.int64, device=words.device)
    for start in range(0, words.numel(), _BLOCK):
        block = words[start : start + _BLOCK].to(torch.int64)
        total = block.sum()
        plain += total
        weighted += (block * positions[: block.numel()]).sum() + total * start
    count = torch.tensor(words.numel(), dtype=torch.int64, device=words.device)
    return torch.stack([plain, weighted, count, torch.zeros_like(count)])


def _changed(before: torch.Tensor, now: torch.Tensor, device: str, tensors: list[torch.Tensor]) -> list[int]:
    """Indexes into ``tensors`` of the rows of one device that differ."""
    on_device = [i for i, tensor in enumerate(tensors) if str(_local(tensor).device) == device]
    rows = (before != now).any(dim=1).tolist()
    return [index for index, row in zip(on_device, rows, strict=True) if row]
