"""Gradient noise scale of a PyTorch model, on one process or under ``torch.distributed``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from .._batching import as_generator
from .._noise import NoiseScaleResult, _check_bootstrap, draw_big_batch, estimate_noise_scale
from .._validation import check_bool, check_int, fail
from ._batches import Batch, BatchStream, batch_len, resolve_device, slice_batch, to_device
from ._distributed import rank_and_world_size
from ._loss import Criterion, LossFn, check_loss, check_loss_functions, loss_computer
from ._snapshot import TrainingSnapshot


def noise_scale(
    model: nn.Module,
    data: Iterable[Batch] | torch.utils.data.Dataset[Any] | tuple[torch.Tensor, ...],
    criterion: Criterion | None = None,
    *,
    loss_fn: LossFn | None = None,
    small_batch: int | None = None,
    big_batch: int | None = None,
    num_pairs: int = 32,
    n_samples: int | None = None,
    device: str | torch.device | None = None,
    train_mode: bool = True,
    confidence: float = 0.95,
    n_bootstrap: int = 1000,
    random_state: int | np.random.Generator | None = None,
) -> NoiseScaleResult:
    """Gradient noise scale of a PyTorch model at its current weights (McCandlish et al. 2018).

    For each of ``num_pairs`` big batches, the gradient of every consecutive
    slice of ``small_batch`` samples and of the whole big batch are taken at
    the current weights, and :func:`lrscout.estimate_noise_scale` turns the
    squared norms into an unbiased ``B_simple``, ``|G|^2``, ``tr(Sigma)`` with
    bootstrap intervals, and a suggested batch size. Gradients come from
    ``torch.autograd.grad``: no optimizer, no step, ``.grad`` untouched.

    The loss of a batch must be the *mean* over its examples
    (``reduction="mean"``), so that a batch's gradient is the mean of its
    examples' gradients; BatchNorm in train mode couples the examples of a
    batch, which makes the estimate approximate.

    Under ``torch.distributed`` (every rank must call it, with a loader that
    yields the same number of batches on every rank, e.g. through a
    ``DistributedSampler``) the big batch is the *global* batch: each rank's
    local gradient is all-reduced (summed, weighted by its size) into the
    gradient of the union of the ranks' batches, and the small batches are
    the slices of every rank's batch. Every rank returns the same result.
    A ``DistributedDataParallel`` model is measured through its ``module``,
    so DDP's own gradient reduction does not blur the small batches.

    Afterwards — also after an exception — the weights, buffers (BatchNorm
    statistics, also one that ``forward`` replaces), gradients, each module's
    train/eval mode and the global RNGs (torch's CPU and CUDA, NumPy's,
    Python's) are bitwise as before, restored by the range test's own snapshot.

    Args:
        model: The model (``nn.Module`` or a ``DistributedDataParallel``).
        data: Where the batches come from. An iterable of batches (a
            ``DataLoader``, a list): each batch is one big batch, a batch of
            another size than the first is skipped (a short last batch); the
            loader is started again if it runs out. Or a tuple of tensors
            ``(X, y, ...)`` / a map-style ``Dataset``: big batches of
            ``big_batch`` distinct samples are drawn uniformly at random (as
            :func:`lrscout.models.noise_scale` draws them: the same seed gives
            the same batches). Under ``torch.distributed`` only a loader.
        criterion: ``criterion(model(inputs), targets) -> mean loss`` for
            ``(inputs, targets)`` batches. Give it or ``loss_fn``.
        loss_fn: ``loss_fn(model, batch) -> mean loss`` for any other batch.
        small_batch: Samples per small batch. ``None`` only under
            ``torch.distributed``: each rank's whole batch.
        big_batch: With a tuple of tensors or a ``Dataset``: samples per big
            batch (per rank), more than ``small_batch``. With a loader it must
            be ``None``: the loader's batches are the big batches.
        num_pairs: Big batches to measure, at least 2.
        n_samples: Size ``n`` of the set the batches are drawn from without
            replacement, for the finite-population correction; by default
            the data's length (a loader's ``dataset``; ``None``, an endless
            stream, when unknown).
        device: Where batches go; ``None`` means the device of the model's
            first parameter.
        train_mode: Take the gradients in train mode (dropout on, as in
            training); ``False`` uses eval mode.
        confidence: Level of the bootstrap intervals, in (0, 1).
        n_bootstrap: Bootstrap resamples, at least 100.
        random_state: Seed or ``numpy.random.Generator`` for drawing big
            batches (tensor / ``Dataset`` data) and for the bootstrap.

    Returns:
        A :class:`lrscout.NoiseScaleResult` (``method == "two-batch"``), the
        same on every rank.

    Raises:
        TypeError, ValueError: On a bad argument.

    Example:
        >>> from torch import nn
        >>> _ = torch.manual_seed(0)
        >>> X = torch.randn(512, 4)
        >>> y = X @ torch.tensor([[1.0], [-1.0], [0.5], [2.0]]) + torch.randn(512, 1)
        >>> model = nn.Linear(4, 1)
        >>> result = noise_scale(model, (X, y), nn.MSELoss(), small_batch=8, big_batch=128,
        ...                      num_pairs=16, random_state=0)
        >>> result.big_batch, result.n_samples, result.num_pairs
        (128, 512, 16)
        >>> bool(result.b_simple > 0)
        True
    """
    where = "pytorch.noise_scale"
    candidate: Any = model
    if not isinstance(candidate, nn.Module):
        fail(where, "model", "a torch.nn.Module", model, "")
    source = check_loss_functions(criterion, loss_fn, where=where)
    world = rank_and_world_size()[1]
    pairs = check_int(num_pairs, "num_pairs", where=where, minimum=2)
    train = check_bool(train_mode, "train_mode", where=where)
    _check_bootstrap(confidence, n_bootstrap, where)
    if small_batch is None:
        if world == 1:
            fail(
                where,
                "small_batch",
                "given outside torch.distributed",
                small_batch,
                "Pass the small batch size, e.g. a quarter of the big batch or less.",
            )
        small = None
    else:
        small = check_int(small_batch, "small_batch", where=where, minimum=1)
    rng = as_generator(random_state, where=where)
    given: Any = data
    n: int | None
    sampled = isinstance(given, torch.utils.data.Dataset) or _is_tensor_tuple(given)
    if sampled:
        if world > 1:
            fail(
                where,
                "data",
                "a loader under torch.distributed",
                type(data).__name__,
                "Pass a DataLoader with a DistributedSampler, so the global batch is a draw from one set.",
            )
        size = _data_length(data, where)
        if big_batch is None:
            fail(where, "big_batch", "given with tensor or Dataset data", None, "")
        big = check_int(
            big_batch,
            "big_batch",
            where=where,
            minimum=(small or 1) + 1,
            maximum=size,
            fix="It must exceed small_batch and fit in the data.",
        )
        batches: Iterator[Batch] = _sampled_batches(data, size, big, rng)
        n = size if n_samples is None else n_samples
    else:
        if big_batch is not None:
            fail(
                where,
                "big_batch",
                "None when data is a loader",
                big_batch,
                "The loader's batches are the big batches; set its batch_size instead.",
            )
        if not isinstance(given, Iterable):
            fail(where, "data", "a loader, a tuple of tensors or a Dataset", type(data).__name__, "")
        batches = BatchStream(given, name="data", where=where)
        n = _loader_length(given) if n_samples is None else n_samples
    if n is not None:
        n = check_int(n, "n_samples", where=where, minimum=2)
    inner = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    params = [p for p in inner.parameters() if p.requires_grad]
    if not params:
        fail(where, "model", "a model with trainable parameters", type(model).__name__, "")
    target = resolve_device(device, inner, where=where)
    compute = loss_computer(inner, criterion=criterion, loss_fn=loss_fn, where=where)

    def loss_of(batch: Batch) -> torch.Tensor:
        return check_loss(compute(batch), source=source, where=where)

    snapshot = TrainingSnapshot(inner)
    stats: list[torch.Tensor] = []
    try:
        inner.train(train)
        for _ in range(pairs):
            try:
                batch = next(batches)
            except StopIteration:
                break
            batch = to_device(batch, target)
            stats.append(_measure_pair(params, loss_of, batch, batch_len(batch, where=where), small, world))
        table = torch.stack(stats).cpu().numpy() if stats else np.empty((0, 4))
    finally:
        snapshot.restore()
    info = {
        "framework": "pytorch",
        "torch_version": str(torch.__version__),
        "model": type(inner).__name__,
        "device": str(target),
        "world_size": world,
        "train_mode": train,
        "batches_read": len(stats),
    }
    return _result(table, small, world, n, confidence, n_bootstrap, rng, info, where)


def _result(
    table: np.ndarray,
    small: int | None,
    world: int,
    n: int | None,
    confidence: float,
    n_bootstrap: int,
    rng: np.random.Generator,
    info: dict[str, Any],
    where: str,
) -> NoiseScaleResult:
    """Keep the pairs whose big batch has the first one's size and at least one small batch."""
    if len(table) == 0:
        fail(where, "data", "non-empty", "no batches", "")
    big = int(table[0, 3])
    b = big // world if small is None else small
    keep = (table[:, 3] == big) & (table[:, 1] > 0)
    if small is None:
        # Each rank's whole batch is one small batch: every rank must hold big / world samples.
        keep &= table[:, 1] == world
    kept = table[keep]
    info["skipped_batches"] = int(len(table) - len(kept))
    if b >= big or len(kept) < 2:
        fail(
            where,
            "small_batch",
            f"smaller than the big batch ({big}) with at least 2 usable big batches",
            small,
            f"Got {len(kept)} usable of {len(table)} read: lower small_batch, use larger batches "
            "or more of them.",
        )
    return estimate_noise_scale(
        kept[:, 0] / kept[:, 1],
        kept[:, 2],
        small_batch=b,
        big_batch=big,
        n_samples=n,
        confidence=confidence,
        n_bootstrap=n_bootstrap,
        random_state=rng,
        info=info,
    )


def _measure_pair(
    params: Sequence[nn.Parameter],
    loss_of: Callable[[Batch], torch.Tensor],
    batch: Batch,
    size: int,
    small: int | None,
    world: int,
) -> torch.Tensor:
    """``[sum of |G_small|^2, number of small batches, |G_big|^2, big batch size]``, on the device.

    The big gradient is the size-weighted mean of the slices' gradients, so
    each sample is forwarded once; under ``torch.distributed`` the weighted
    sums and the counts are all-reduced first, giving every rank the gradient
    of the global batch. Nothing is read back to the host here.
    """
    step = size if small is None else small
    device = params[0].device
    dtype = torch.float32
    for p in params:
        dtype = torch.promote_types(dtype, p.dtype)
    # Weighted sums in at least float32 (float16 gradients would overflow),
    # in float64 where the model is: the estimator subtracts close numbers.
    total = torch.zeros(sum(p.numel() for p in params), dtype=dtype, device=device)
    stats = torch.zeros(3, dtype=torch.float64, device=device)
    for start in range(0, size, step):
        stop = min(size, start + step)
        loss = loss_of(slice_batch(batch, start, stop, size))
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        flat = torch.cat(
            [
                torch.zeros(p.numel(), dtype=dtype, device=device)
                if g is None
                else g.detach().reshape(-1).to(device=device, dtype=dtype)
                for p, g in zip(params, grads, strict=True)
            ]
        )
        total.add_(flat, alpha=stop - start)
        if stop - start == step:
            stats[0] += torch.linalg.vector_norm(flat, dtype=torch.float64) ** 2
            stats[1] += 1.0
    stats[2] = float(size)
    if world > 1:
        dist.all_reduce(total)
        dist.all_reduce(stats)
    big_sq = torch.linalg.vector_norm(total / stats[2].to(dtype), dtype=torch.float64) ** 2
    return torch.stack([stats[0], stats[1], big_sq, stats[2]])


def _is_tensor_tuple(data: Any) -> bool:
    return isinstance(data, tuple) and len(data) > 0 and all(isinstance(t, torch.Tensor) for t in data)


def _data_length(data: Any, where: str) -> int:
    if isinstance(data, tuple):
        lengths = {len(t) if t.ndim else -1 for t in data}
        if len(lengths) != 1 or -1 in lengths:
            fail(
                where,
                "data",
                "a tuple of tensors with one common first dimension",
                [tuple(t.shape) for t in data],
                "",
            )
        return lengths.pop()
    try:
        return len(data)
    except TypeError:
        fail(where, "data", "a Dataset with __len__", type(data).__name__, "")
        raise  # pragma: no cover - fail raised


def _loader_length(loader: Any) -> int | None:
    dataset = getattr(loader, "dataset", None)
    try:
        return None if dataset is None else len(dataset)
    except TypeError:
        return None


def _sampled_batches(data: Any, size: int, big: int, rng: np.random.Generator) -> Iterator[Batch]:
    from torch.utils.data import default_collate

    while True:
        index = draw_big_batch(rng, size, big)
        if isinstance(data, tuple):
            rows = torch.from_numpy(index)
            yield tuple(t[rows.to(t.device)] for t in data)
        else:
            yield default_collate([data[int(i)] for i in index])
