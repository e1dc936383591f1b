"""How a learning rate moves with the batch size: the scaling rules and the advice built on them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._errors import InvalidArgumentError
from ._result import RangeTestResult
from ._validation import check_float, check_int, check_option, fail, number_text

#: Optimizers whose learning-rate scaling rule :func:`scale_lr` knows.
OPTIMIZERS = ("sgd", "adam")


def scale_lr(
    lr: float,
    from_batch: int,
    to_batch: int,
    *,
    optimizer: str = "sgd",
    b_noise: float | None = None,
) -> float:
    """Move a learning rate tuned at one batch size to another.

    With ``b_noise`` (the noise scale, e.g. ``NoiseScaleResult.b_simple``) the
    SGD rule is McCandlish et al.'s optimal step size ``eps(B) = eps_max / (1 +
    B_noise / B)`` (their eq. 2.6), so

    .. math:: \\eta_{\\text{to}} = \\eta_{\\text{from}}\\,
              \\frac{1 + B_\\text{noise} / B_\\text{from}}{1 + B_\\text{noise} / B_\\text{to}}

    which is the linear scaling rule ``eta * B_to / B_from`` while both batches
    are well below ``B_noise`` and flattens out above it (more samples per step
    then barely reduce the noise, so they do not buy a larger step). Without
    ``b_noise`` the rule is plain linear scaling (Goyal et al. 2017).

    For Adam (and other adaptive methods: RMSprop, Adagrad, LAMB) lrscout uses
    the square root of the SGD factor: ``sqrt(B_to / B_from)`` below
    ``B_noise`` (Hoffer et al. 2017, Malladi et al. 2022's square-root rule),
    flattening out above it the same way.

    These are first-order rules; confirm with a range test at the new batch
    size (see :func:`rescale_lr`).

    Args:
        lr: The learning rate found at ``from_batch``, positive.
        from_batch: Batch size it was found at, at least 1.
        to_batch: Batch size to move to, at least 1.
        optimizer: ``"sgd"`` (with or without momentum) or ``"adam"``.
        b_noise: The gradient noise scale, positive; ``None`` for the plain
            linear (SGD) or square-root (Adam) rule.

    Returns:
        The learning rate for ``to_batch``.

    Raises:
        TypeError, ValueError: On a bad argument.

    Example:
        >>> scale_lr(0.1, 32, 256)
        0.8
        >>> round(scale_lr(0.1, 32, 256, b_noise=64.0), 4)  # 0.1 * (1 + 2) / (1 + 0.25)
        0.24
        >>> round(scale_lr(1e-3, 32, 128, optimizer="adam"), 6)
        0.002
    """
    where = "scale_lr"
    eta = check_float(lr, "lr", where=where, positive=True)
    factor = _scale_factor(from_batch, to_batch, optimizer, b_noise, where)
    return eta * factor


def _scale_factor(from_batch: Any, to_batch: Any, optimizer: Any, b_noise: Any, where: str) -> float:
    b_from = check_int(from_batch, "from_batch", where=where, minimum=1)
    b_to = check_int(to_batch, "to_batch", where=where, minimum=1)
    rule = check_option(optimizer, "optimizer", OPTIMIZERS, where=where)
    if b_noise is None:
        factor = b_to / b_from
    else:
        noise = check_float(
            b_noise,
            "b_noise",
            where=where,
            positive=True,
            fix="Pass None for the plain linear / square-root rule.",
        )
        factor = (1.0 + noise / b_from) / (1.0 + noise / b_to)
    return math.sqrt(factor) if rule == "adam" else factor


@dataclass(frozen=True)
class LRAdvice:
    """How to move a learning rate to a new batch size, and why.

    Attributes:
        lr: The learning rate for ``to_batch``.
        from_lr: The learning rate it was scaled from.
        factor: ``lr / from_lr``.
        from_batch: Batch size ``from_lr`` was found at.
        to_batch: Batch size ``lr`` is for.
        optimizer: ``"sgd"`` or ``"adam"``: which rule (see :func:`scale_lr`).
        b_noise: The noise scale used, or ``None`` (plain rule).
        lr_range: The range test's ``(base_lr, max_lr)`` scaled the same way,
            or ``None`` when there was no range to scale.
        message: The advice in plain words, with how to confirm it.
    """

    lr: float
    from_lr: float
    factor: float
    from_batch: int
    to_batch: int
    optimizer: str
    b_noise: float | None
    lr_range: tuple[float, float] | None
    message: str

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields."""
        return {
            "lr": self.lr,
            "from_lr": self.from_lr,
            "factor": self.factor,
            "from_batch": self.from_batch,
            "to_batch": self.to_batch,
            "optimizer": self.optimizer,
            "b_noise": self.b_noise,
            "lr_range": None if self.lr_range is None else list(self.lr_range),
            "message": self.message,
        }


def rescale_lr(
    result: RangeTestResult | float,
    batch_size: int | None,
    *,
    from_batch: int | None = None,
    optimizer: str = "sgd",
    b_noise: float | None = None,
    n_samples: int | None = None,
) -> LRAdvice:
    """Say how the learning rate of a range test moves to another batch size.

    The suggestion (and ``lr_range()``) of ``result`` are scaled by
    :func:`scale_lr`; the message says by how much, why, and how to confirm it
    with a range test at the new batch size for the framework that ran it.

    Args:
        result: A :class:`RangeTestResult` (its default suggestion is scaled)
            or a learning rate.
        batch_size: The new batch size; ``None`` means the whole set (needs
            ``n_samples``, or ``result.info["n_samples"]``).
        from_batch: The batch size of the range test; by default
            ``result.info["batch_size"]`` (``None`` there is the whole set).
        optimizer: ``"sgd"`` or ``"adam"``; see :func:`scale_lr`.
        b_noise: The gradient noise scale, or ``None`` for the plain rule.
        n_samples: Training-set size, to turn a full batch (``None``) into a
            number; by default ``result.info["n_samples"]``.

    Returns:
        An :class:`LRAdvice`.

    Raises:
        TypeError, ValueError: On a bad argument, or when ``from_batch`` or
            ``n_samples`` is needed but not known.

    Example:
        >>> advice = rescale_lr(0.05, 128, from_batch=32)
        >>> advice.lr, advice.factor
        (0.2, 4.0)
    """
    where = "rescale_lr"
    info: Mapping[str, Any] = {}
    given: Any = result
    if isinstance(given, RangeTestResult):
        info = given.info
        from_lr = given.suggestion.lr
        try:
            base_max: tuple[float, float] | None = given.lr_range()
        except ValueError:
            base_max = None
    elif isinstance(given, (int, float, np.floating, np.integer)) and not isinstance(given, (bool, np.bool_)):
        from_lr = check_float(given, "result", where=where, positive=True)
        base_max = None
    else:
        raise InvalidArgumentError(
            f"{where}: result must be a RangeTestResult or a learning rate; got {type(given).__name__}."
        )
    n = n_samples if n_samples is not None else info.get("n_samples")
    if n is not None:
        n = check_int(n, "n_samples", where=where, minimum=1)
    if from_batch is None:
        if "batch_size" not in info:
            fail(
                where,
                "from_batch",
                "given when the result does not record its batch size",
                from_batch,
                "Pass the batch size the range test ran at.",
            )
        from_batch = info["batch_size"]
        if from_batch is None:
            from_batch = _full_batch(n, "from_batch", where)
    b_from = check_int(from_batch, "from_batch", where=where, minimum=1)
    b_to = _full_batch(n, "batch_size", where) if batch_size is None else batch_size
    factor = _scale_factor(b_from, b_to, optimizer, b_noise, where)
    b_to = int(b_to)
    lr = from_lr * factor
    scaled_range = None if base_max is None else (base_max[0] * factor, base_max[1] * factor)
    message = _advice_message(from_lr, lr, factor, b_from, b_to, optimizer, b_noise, scaled_range, info)
    return LRAdvice(
        lr=lr,
        from_lr=from_lr,
        factor=factor,
        from_batch=b_from,
        to_batch=b_to,
        optimizer=optimizer,
        b_noise=None if b_noise is None else float(b_noise),
        lr_range=scaled_range,
        message=message,
    )


def _full_batch(n: int | None, name: str, where: str) -> int:
    if n is None:
        fail(
            where,
            name,
            "a number when the training-set size is unknown",
            None,
            "Pass n_samples, or the batch size as a number.",
        )
    return int(n)


def _advice_message(
    from_lr: float,
    lr: float,
    factor: float,
    b_from: int,
    b_to: int,
    optimizer: str,
    b_noise: float | None,
    scaled_range: tuple[float, float] | None,
    info: Mapping[str, Any],
) -> str:
    if b_to == b_from:
        return f"Batch size {b_to} is the one the learning rate was found at: keep lr {from_lr:.3g}."
    direction = "raise" if factor > 1 else "lower"
    if optimizer == "adam":
        rule = "square-root rule for Adam" + (
            "" if b_noise is None else f", flattening above B_noise ~ {number_text(b_noise)}"
        )
    elif b_noise is None:
        rule = "linear scaling rule for SGD"
    else:
        rule = f"SGD: lr proportional to 1 / (1 + B_noise / B) with B_noise ~ {number_text(b_noise)}"
    parts = [
        f"Moving from batch {b_from} to batch {b_to}: {direction} the learning rate "
        f"{factor:.3g}x, from {from_lr:.3g} to {lr:.3g} ({rule})."
    ]
    if scaled_range is not None:
        parts.append(f"The one-cycle range becomes {scaled_range[0]:.3g} .. {scaled_range[1]:.3g}.")
    if b_noise is not None and max(b_from, b_to) > b_noise:
        parts.append(
            f"Above B_noise ~ {number_text(b_noise)} a larger batch barely lowers the gradient noise, "
            "so the learning rate moves by less than the batch size does."
        )
    parts.append(
        f"These rules are first-order: confirm with a range test at batch {b_to} ({_rerun_hint(info, b_to)})."
    )
    return " ".join(parts)


def _rerun_hint(info: Mapping[str, Any], batch: int) -> str:
    """How to rerun the range test at ``batch``, in the words of the integration that ran it.

    Each integration records its own call as ``info["rerun_hint"]``, a
    template with a ``{batch_size}`` field; this module names none of them.
    """
    template = info.get("rerun_hint")
    if isinstance(template, str):
        try:
            return template.format(batch_size=batch)
        except (KeyError, IndexError, ValueError):
            pass
    return f"the same range test with batch_size={batch}"
