"""Each batch's own loss and metrics, recovered from Keras's running values.

The logs that Keras hands to ``on_train_batch_end`` hold every metric's result
over the epoch so far. For the loss that is the running mean weighted by
batch size, ``total / count`` with ``count`` the number of samples seen, so
the logged value is not the batch's loss. Keras 3 callbacks are not told the
batch size either (``params`` holds only ``epochs``, ``steps`` and
``verbose``), and the last batch of an epoch is usually smaller.

Both are in the metric's state, though: the batch added ``Δtotal`` to the
total and its own size ``Δcount`` to the count, so its mean loss is
``Δtotal / Δcount``. :class:`BatchLogs` reads every metric's variables before
and after the batch and evaluates each metric on the increment, with Keras's
own ``stateless_result``. That is exact for any batch size and for sample
weights, and gives every key under the name Keras logs it, because all of
Keras's built-in metrics keep additive state (totals and counts for means,
confusion counts for precision, recall, AUC, IoU and the like).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ._keras import keras
from ._snapshot import copy_value


class BatchLogs:
    """Turns Keras's running logs into the values of the batch that just ran."""

    def __init__(self) -> None:
        self._metrics: list[Any] = []
        self._before: list[list[Any]] = []

    def begin(self, model: Any) -> None:
        """Remember the metric state before the batch (call from ``on_train_batch_begin``)."""
        self._metrics = list(model.metrics)
        self._before = [[copy_value(v) for v in metric.variables] for metric in self._metrics]

    def end(self, logs: Mapping[str, Any]) -> dict[str, Any]:
        """The batch's own value of every key in ``logs``.

        Scalars come back as ``float``, vector-valued metrics (e.g. a per-class
        ``F1Score``) as lists.

        Keys that no metric produced (values a custom ``train_step`` returns
        directly) are already per batch and are passed through. A metric
        whose state is not additive would be misread here; none of Keras's
        built-in metrics is such.
        """
        own: dict[str, Any] = {}
        for metric, before in zip(self._metrics, self._before, strict=True):
            increments = [
                keras.ops.subtract(variable.value, start)
                for variable, start in zip(metric.variables, before, strict=True)
            ]
            value = metric.stateless_result(increments)
            if isinstance(value, Mapping):
                own.update(value)
            else:
                own[metric.name] = value
        return {key: _to_python(own.get(key, logged)) for key, logged in logs.items()}


def _to_python(value: Any) -> Any:
    if math.prod(tuple(getattr(value, "shape", ()))) == 1:
        return float(value)
    return value.tolist()
