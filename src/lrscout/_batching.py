"""Epochs, batches and steps: the vocabulary of the three gradient-descent variants."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from ._errors import InvalidArgumentError
from ._validation import check_batch_size, check_bool, check_int


def steps_per_epoch(n_samples: int, batch_size: int | None, drop_last: bool = False) -> int:
    """Number of parameter updates in one pass over the data.

    .. math:: \\text{steps} = \\lceil n / b \\rceil
        \\quad (\\lfloor n / b \\rfloor \\text{ with drop\\_last})

    Args:
        n_samples: Number of training samples ``n``, at least 1.
        batch_size: Samples per update ``b``. ``None`` means the whole set
            (batch gradient descent, one step per epoch); a value larger than
            ``n_samples`` also gives one step.
        drop_last: Skip the last batch when it is smaller than ``batch_size``.

    Returns:
        The number of steps (updates) per epoch.

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If ``n_samples`` or ``batch_size`` is not positive, or
            ``drop_last`` leaves no step at all.

    Example:
        >>> steps_per_epoch(1797, 32)
        57
        >>> steps_per_epoch(1797, 32, drop_last=True)
        56
        >>> steps_per_epoch(1797, None)
        1
    """
    where = "steps_per_epoch"
    n = check_int(n_samples, "n_samples", where=where, minimum=1)
    b = check_batch_size(batch_size, where=where)
    drop = check_bool(drop_last, "drop_last", where=where)
    if b is None or b >= n:
        if drop and b is not None and b > n:
            raise InvalidArgumentError(
                f"{where}: batch_size must be <= n_samples ({n}) when drop_last=True; got {b}. "
                "Every batch would be dropped: lower batch_size or set drop_last=False."
            )
        return 1
    return n // b if drop else math.ceil(n / b)


def gd_variant(batch_size: int | None, n_samples: int) -> str:
    """Name the gradient-descent variant that a batch size gives.

    Args:
        batch_size: Samples per update; ``None`` means the whole set.
        n_samples: Number of training samples, at least 1.

    Returns:
        ``"batch"`` when every update sees the whole set (``None`` or
        ``batch_size >= n_samples``), ``"stochastic"`` for one sample per
        update, ``"mini-batch"`` otherwise.

    Example:
        >>> [gd_variant(b, 1797) for b in (None, 1, 32, 1797, 2000)]
        ['batch', 'stochastic', 'mini-batch', 'batch', 'batch']
    """
    where = "gd_variant"
    b = check_batch_size(batch_size, where=where)
    n = check_int(n_samples, "n_samples", where=where, minimum=1)
    if b is None or b >= n:
        return "batch"
    if b == 1:
        return "stochastic"
    return "mini-batch"


def minibatches(
    n_samples: int,
    batch_size: int | None,
    *,
    shuffle: bool = True,
    random_state: int | np.random.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[np.ndarray]:
    """Yield the index arrays of one epoch.

    Every index in ``range(n_samples)`` appears exactly once, unless
    ``drop_last`` drops the final short batch.

    Args:
        n_samples: Number of samples, at least 1.
        batch_size: Indices per batch; ``None`` yields one batch of all.
        shuffle: Permute the indices before splitting them.
        random_state: Seed or ``numpy.random.Generator`` for the permutation;
            the same seed gives the same order. ``None`` draws fresh entropy.
        drop_last: Skip the last batch when it is smaller than ``batch_size``.

    Yields:
        ``numpy.ndarray`` of ``int64`` indices, one per step.

    Example:
        >>> [b.tolist() for b in minibatches(5, 2, shuffle=False)]
        [[0, 1], [2, 3], [4]]
        >>> sorted(np.concatenate(list(minibatches(5, 2, random_state=0))).tolist())
        [0, 1, 2, 3, 4]
    """
    where = "minibatches"
    n = check_int(n_samples, "n_samples", where=where, minimum=1)
    steps = steps_per_epoch(n, batch_size, drop_last)
    shuffle = check_bool(shuffle, "shuffle", where=where)
    b = n if batch_size is None else min(int(batch_size), n)
    order = as_generator(random_state, where=where).permutation(n) if shuffle else np.arange(n)
    return _split(order, b, steps)


def _split(order: np.ndarray, batch_size: int, steps: int) -> Iterator[np.ndarray]:
    for step in range(steps):
        yield order[step * batch_size : (step + 1) * batch_size]


def as_generator(random_state: int | np.random.Generator | None, *, where: str) -> np.random.Generator:
    """Turn a seed, a ``Generator`` or ``None`` into a ``Generator``."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None:
        return np.random.default_rng()
    seed = check_int(
        random_state,
        "random_state",
        where=where,
        minimum=0,
        fix="Pass a non-negative int, a numpy.random.Generator or None.",
    )
    return np.random.default_rng(seed)
