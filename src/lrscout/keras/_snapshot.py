"""What a range test changes in a Keras model, and how to put it back.

Two pieces: :class:`TrainingSnapshot` copies every variable that training
writes (weights, non-trainable state such as batch-norm statistics and seed
generators, optimizer iterations, moments and learning rate) and assigns the
copies back bitwise; :class:`LearningRateDriver` gives the callback a
learning-rate variable to assign at every step, swapping one in for a
``LearningRateSchedule`` and swapping the schedule back afterwards.
"""

from __future__ import annotations

from typing import Any

from ._keras import keras


def _optimizers(optimizer: Any) -> list[Any]:
    # Wrappers such as LossScaleOptimizer keep the real learning rate and
    # moments on the optimizer they wrap.
    chain = [optimizer]
    while getattr(chain[-1], "inner_optimizer", None) is not None:
        chain.append(chain[-1].inner_optimizer)
    return chain


def _unique(variables: list[Any]) -> list[Any]:
    seen: set[int] = set()
    out = []
    for variable in variables:
        if id(variable) not in seen:
            seen.add(id(variable))
            out.append(variable)
    return out


def copy_value(variable: Any) -> Any:
    """A copy of a variable's current value as a backend tensor (no NumPy round trip)."""
    # torch variables are updated in place, so a bare reference would follow them.
    return keras.ops.copy(keras.ops.stop_gradient(variable.value))


class TrainingSnapshot:
    """Copies of a model's variables and its optimizer's, to assign back bitwise.

    Args:
        model: A compiled ``keras.Model`` whose optimizer is built (``fit``
            builds it before ``on_train_begin``).
    """

    def __init__(self, model: Any) -> None:
        variables = list(model.variables)
        for optimizer in _optimizers(model.optimizer):
            variables.extend(optimizer.variables)
        self._saved = [(variable, copy_value(variable)) for variable in _unique(variables)]

    def restore(self) -> None:
        """Assign every saved value back to its variable."""
        for variable, value in self._saved:
            variable.assign(value)


class LearningRateDriver:
    """The learning-rate variable of an optimizer, created for the test if needed.

    Keras 3 optimizers built with a float keep the learning rate in a variable
    that the training step reads, so assigning it sets the next step's rate on
    every backend. An optimizer built with a ``LearningRateSchedule`` (or a
    callable) computes its rate from the iteration count instead; the driver
    then puts a tracked variable in its place until :meth:`close` puts the
    schedule back. Keras offers no public way to swap a schedule for a
    variable (the ``learning_rate`` setter refuses), hence the private
    attributes.

    Args:
        optimizer: A Keras 3 optimizer (wrappers are looked through).
        initial_lr: Value of the created variable, if one is created.
    """

    def __init__(self, optimizer: Any, initial_lr: float) -> None:
        self._optimizer = _optimizers(optimizer)[-1]
        current = self._optimizer._learning_rate
        self._replaced: Any = None
        if isinstance(current, keras.Variable):
            self.variable: Any = current
            return
        self.variable = keras.Variable(
            initial_lr,
            name="learning_rate",
            dtype=keras.backend.floatx(),
            trainable=False,
            aggregation="only_first_replica",
        )
        self._optimizer._track_variable(self.variable)
        self._optimizer._learning_rate = self.variable
        self._replaced = current

    def set(self, lr: float) -> None:
        """Make ``lr`` the learning rate of the next training step."""
        self.variable.assign(lr)

    def close(self) -> None:
        """Put back the schedule that was swapped out, if any (idempotent)."""
        if self._replaced is None:
            return
        self._optimizer._learning_rate = self._replaced
        self._optimizer._untrack_variable(self.variable)
        self._replaced = None
