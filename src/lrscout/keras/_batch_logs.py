"""Each batch's own loss and metrics, computed inside the training step.

The logs that Keras hands to ``on_train_batch_end`` hold every metric's result
over the epoch so far. For the loss that is the running mean weighted by
batch size, ``total / count`` with ``count`` the number of samples seen, so
the logged value is not the batch's loss. Keras 3 callbacks are not told the
batch size either, and the last batch of an epoch is usually smaller.

Both are in the metric's state, though: the batch added ``Δtotal`` to the
total and its own size ``Δcount`` to the count, so its mean loss is
``Δtotal / Δcount``. :class:`StepRecorder` wraps the model's ``train_step``
so that it reads every metric's variables before and after the original
step and evaluates each metric on the increment with Keras's own
``stateless_result``. That is exact for any batch size and for sample
weights, gives every key under the name Keras logs it (all of Keras's
built-in metrics keep additive state: totals and counts for means, confusion
counts for precision, recall, AUC, IoU and the like), and runs inside the
compiled step: no eager operation per batch under TensorFlow, nothing that
syncs JAX's training state into the variables.

The wrapped step returns those values next to Keras's logs under a private
key, which the wrapped ``train_function`` takes out before any callback sees
the logs. A metric whose state the step left unchanged was not updated by
it (a custom ``train_step`` returning ``{"loss": loss}`` that it computed
itself, the compiled loss tracker untouched): the value the step returned
is then the batch's own, and is kept.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._keras import keras
from ._snapshot import copy_value

ops = keras.ops
_OWN = "__lrscout_own__"


def own_values(
    metrics: Sequence[Any],
    before: Sequence[Sequence[Any]],
    after: Sequence[Sequence[Any]],
    logs: Mapping[str, Any],
) -> dict[str, Any]:
    """The batch's own value of every key of ``logs``, as backend tensors.

    Args:
        metrics: The model's metrics.
        before, after: Each metric's variable values before and after the
            step (``None`` before for a variable the step created).
        logs: What the step returned.
    """
    logs = _flat(logs)
    own: dict[str, Any] = {}
    for metric, start, end in zip(metrics, before, after, strict=True):
        if not end:
            continue
        increments = [
            value if first is None else ops.subtract(value, first)
            for first, value in zip(start, end, strict=True)
        ]
        moved = [
            ops.any(ops.not_equal(value, first))
            for first, value in zip(start, end, strict=True)
            if first is not None
        ]
        updated = functools.reduce(ops.logical_or, moved) if len(moved) == len(end) else True
        result = metric.stateless_result(increments)
        for key, value in (result if isinstance(result, Mapping) else {metric.name: result}).items():
            if key not in logs:
                continue
            logged = ops.convert_to_tensor(logs[key])
            if updated is True or tuple(logged.shape) != tuple(value.shape):
                own[key] = value
            else:
                own[key] = ops.where(updated, value, ops.cast(logged, value.dtype))
    # Values the step returned as they are may still carry their gradient (torch).
    return {key: ops.stop_gradient(own.get(key, value)) for key, value in logs.items()}


def _flat(logs: Mapping[str, Any]) -> dict[str, Any]:
    """Nested logs under their inner keys, as Keras's callbacks receive them."""
    flat: dict[str, Any] = {}
    for key, value in logs.items():
        flat.update(_flat(value) if isinstance(value, Mapping) else {key: value})
    return flat


def _per_metric(metrics: Sequence[Any], flat: Sequence[Any]) -> list[list[Any]]:
    """``flat`` (values in the order of ``model.metrics_variables``) cut into one list per metric."""
    out, start = [], 0
    for metric in metrics:
        out.append(list(flat[start : start + len(metric.variables)]))
        start += len(metric.variables)
    return out


def _ends_the_data(error: BaseException) -> bool:
    # Keras's trainers signal the end of an epoch's data with these.
    return isinstance(error, StopIteration) or type(error).__name__ == "OutOfRangeError"


class StepRecorder:
    """Makes the model's training step return each batch's own values until :meth:`close`.

    Args:
        model: The compiled ``keras.Model`` of the running ``fit``.
        first_call: Called with the train function's arguments before the
            first step (TensorFlow builds the model there).
        on_error: Called when a step raises (other than the end of the
            data), before the exception goes on.
    """

    def __init__(
        self,
        model: Any,
        *,
        first_call: Callable[[tuple[Any, ...]], None],
        on_error: Callable[[], None],
    ) -> None:
        self._model = model
        self._first_call: Callable[[tuple[Any, ...]], None] | None = first_call
        self._on_error = on_error
        self._jax = keras.backend.backend() == "jax"
        self.latest: dict[str, Any] | None = None
        # The model's own instance attribute, if it set one, to put back.
        self._own_step = vars(model).get("train_step")
        self._saved_function = model.train_function
        model.train_step = self._recording(model.train_step)
        model.make_train_function(force=True)
        self._real = model.train_function
        model.train_function = self._run
        self._open = True

    def _recording(self, original: Callable[..., Any]) -> Callable[..., Any]:
        model = self._model
        if self._jax:

            def stateless_step(state: Any, data: Any) -> Any:
                logs, new_state = original(state, data)
                metrics = model.metrics
                own = own_values(
                    metrics, _per_metric(metrics, state[3]), _per_metric(metrics, new_state[3]), logs
                )
                return {**logs, _OWN: own}, new_state

            return stateless_step

        def train_step(data: Any) -> Any:
            before = {id(v): copy_value(v) for v in model.metrics_variables}
            logs = original(data)
            metrics = model.metrics
            own = own_values(
                metrics,
                [[before.get(id(v)) for v in metric.variables] for metric in metrics],
                [[v.value for v in metric.variables] for metric in metrics],
                logs,
            )
            return {**logs, _OWN: own}

        return train_step

    def _run(self, *args: Any) -> Any:
        if self._first_call is not None:
            first, self._first_call = self._first_call, None
            first(args)
        try:
            out = self._real(*args)
        except BaseException as error:
            if not _ends_the_data(error):
                self._on_error()
            raise
        logs, state = out if self._jax else (out, None)
        if isinstance(logs, Mapping) and _OWN in logs:
            self.latest = logs[_OWN]
            logs = {key: value for key, value in logs.items() if key != _OWN}
        return (logs, state) if self._jax else logs

    def take(self) -> dict[str, Any] | None:
        """The last step's own values (backend tensors), once; ``None`` if no step returned any."""
        latest, self.latest = self.latest, None
        return latest

    def close(self) -> None:
        """Give the model back its own training step and train function (idempotent)."""
        if not self._open:
            return
        self._open = False
        model = self._model
        if self._own_step is None:
            del model.train_step
        else:
            model.train_step = self._own_step
        model.train_function = self._saved_function
