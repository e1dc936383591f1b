"""What a range test changes in a Keras model, and how to put it back.

:class:`TrainingSnapshot` copies every variable that training writes
(weights, non-trainable state such as batch-norm statistics and seed
generators, optimizer iterations, moments and learning rate, metric state)
and assigns the copies back bitwise. TensorFlow's trainer builds the
optimizer and the compiled metrics only when it first traces the training
step, so variables that appear once the test has begun are added before
that first step (:meth:`TrainingSnapshot.add_new`); a metric that did not
exist yet is reset, its state when it is created.

The learning rate of the test reaches the training step in one of two ways.
:class:`RampSchedule` puts the whole ramp in place of the optimizer's
learning rate, read from the iteration count inside the step, so the test
sets nothing between steps (under JAX, where ``fit`` keeps the state outside
the variables during an epoch, assigning a variable would take a sync of
the whole state at every step). :class:`LearningRateDriver` gives the
refinement's probes a learning-rate variable to assign between steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._keras import keras


def _optimizers(optimizer: Any) -> list[Any]:
    # Wrappers such as LossScaleOptimizer keep the real learning rate and
    # moments on the optimizer they wrap.
    chain = [optimizer]
    while getattr(chain[-1], "inner_optimizer", None) is not None:
        chain.append(chain[-1].inner_optimizer)
    return chain


def innermost(optimizer: Any) -> Any:
    """The optimizer that holds the learning rate (a wrapper's inner optimizer)."""
    return _optimizers(optimizer)[-1]


def copy_value(variable: Any) -> Any:
    """A copy of a variable's current value as a backend tensor (no NumPy round trip)."""
    # torch variables are updated in place, so a bare reference would follow them.
    return keras.ops.copy(keras.ops.stop_gradient(variable.value))


def _training_variables(model: Any) -> list[Any]:
    variables = list(model.variables)
    if getattr(model, "optimizer", None) is not None:
        for optimizer in _optimizers(model.optimizer):
            variables.extend(optimizer.variables)
    return variables


class TrainingSnapshot:
    """Copies of a model's variables, its optimizer's and its metrics', to assign back bitwise.

    Args:
        model: A compiled ``keras.Model``.
    """

    def __init__(self, model: Any) -> None:
        self._model = model
        self._saved: list[tuple[Any, Any]] = []
        self._ids: set[int] = set()
        self.add_new()

    def add_new(self) -> None:
        """Save the variables that did not exist when the snapshot was last taken or extended."""
        for variable in [*_training_variables(self._model), *self._model.metrics_variables]:
            if id(variable) not in self._ids:
                self._ids.add(id(variable))
                self._saved.append((variable, copy_value(variable)))

    def unsaved(self) -> list[str]:
        """Paths of the model's and optimizer's variables that the snapshot does not hold."""
        return [
            str(getattr(variable, "path", variable.name))
            for variable in _training_variables(self._model)
            if id(variable) not in self._ids
        ]

    def restore(self) -> None:
        """Assign every saved value back; reset the metrics created since."""
        for variable, value in self._saved:
            # A copy each time: JAX's training step donates the buffers of the
            # state it is given, the saved one included once assigned.
            variable.assign(keras.ops.copy(value))
        for metric in self._model.metrics:
            if any(id(variable) not in self._ids for variable in metric.variables):
                metric.reset_state()


class RampSchedule(keras.optimizers.schedules.LearningRateSchedule):  # type: ignore[misc]
    """The rates of a range test as a schedule: step ``offset + t`` gets ``lrs[t]``.

    The optimizer calls its schedule with its iteration count inside the
    training step, so the rates need no assignment between steps. They are
    held in the backend's float type (a Keras optimizer's learning-rate
    variable is float32 as well); steps past the last rate keep it.

    Args:
        lrs: The rates, in order.
        offset: The optimizer's iteration count at the test's first step.
    """

    def __init__(self, lrs: Sequence[float], offset: int) -> None:
        super().__init__()
        self._rates = keras.ops.convert_to_tensor(np.asarray(lrs, dtype=keras.backend.floatx()))
        self._offset = int(offset)
        self._last = len(lrs) - 1

    def __call__(self, step: Any) -> Any:
        index = keras.ops.clip(keras.ops.cast(step, "int32") - self._offset, 0, self._last)
        return keras.ops.take(self._rates, index)


class LearningRateSwap:
    """Puts a rate of the test's in place of an optimizer's learning rate until :meth:`close`.

    Keras offers no public way to swap a schedule for another or for a
    variable (the ``learning_rate`` setter refuses schedules), hence the
    private attribute. A compiled training step holds the rate it was traced
    with, so the caller re-makes the train function after the swap and after
    :meth:`close`.

    Args:
        optimizer: A Keras 3 optimizer (wrappers are looked through).
        rate: A ``LearningRateSchedule`` or a ``keras.Variable`` that the
            optimizer then tracks (so that JAX carries it in its state).
    """

    def __init__(self, optimizer: Any, rate: Any) -> None:
        self._optimizer = innermost(optimizer)
        self.original = self._optimizer._learning_rate
        self._tracked = rate if isinstance(rate, keras.Variable) and rate is not self.original else None
        if self._tracked is not None:
            self._optimizer._track_variable(self._tracked)
        self._optimizer._learning_rate = rate
        self._open = True

    def close(self) -> None:
        """Put the original learning rate back (idempotent)."""
        if not self._open:
            return
        self._open = False
        self._optimizer._learning_rate = self.original
        if self._tracked is not None:
            self._optimizer._untrack_variable(self._tracked)


class LearningRateDriver:
    """A learning-rate variable of an optimizer, created for the probes if needed.

    Keras 3 optimizers built with a float keep the learning rate in a variable
    that the training step reads, so assigning it sets the next step's rate on
    every backend (the caller's snapshot puts its value back). An optimizer
    built with a ``LearningRateSchedule`` (or a callable) computes its rate
    from the iteration count instead; the driver then puts a tracked variable
    in its place until :meth:`close` puts the schedule back.

    Args:
        optimizer: A Keras 3 optimizer (wrappers are looked through).
        initial_lr: Value of the created variable, if one is created.
    """

    def __init__(self, optimizer: Any, initial_lr: float) -> None:
        current = innermost(optimizer)._learning_rate
        if isinstance(current, keras.Variable):
            self.variable: Any = current
        else:
            self.variable = keras.Variable(
                initial_lr,
                name="learning_rate",
                dtype=keras.backend.floatx(),
                trainable=False,
                aggregation="only_first_replica",
            )
        self._swap = LearningRateSwap(optimizer, self.variable)

    def set(self, lr: float) -> None:
        """Make ``lr`` the learning rate of the next training step."""
        self.variable.assign(lr)

    def close(self) -> None:
        """Put back the schedule that was swapped out, if any (idempotent)."""
        self._swap.close()
