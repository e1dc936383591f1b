"""The global random states that a Keras ``fit`` draws from, saved to be put back.

``fit`` shuffles arrays with NumPy's global generator (TensorFlow's op seeds
on the TensorFlow backend), a ``PyDataset``'s batches with Python's
``random``, and a torch ``DataLoader`` draws its base seed from torch's
generator; layers that call ``keras.random`` without a seed draw from Keras's
global seed generator. :class:`GlobalRandomState` saves each of those that
exists when it is taken and puts it back, so that a range test leaves the
user's random streams where they were.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from ._keras import keras


def _keras_seed_generator() -> Any:
    """Keras's global ``SeedGenerator``, if one has been made (asking for it would make one)."""
    try:
        from keras.src.backend.common import global_state
    except ImportError:  # pragma: no cover - a Keras that moved it
        return None
    return global_state.get_global_attribute("global_seed_generator")


def _torch_states() -> list[tuple[Callable[[], Any], Callable[[Any], None]]]:
    torch = sys.modules.get("torch")
    if torch is None:
        return []
    found = [(torch.get_rng_state, torch.set_rng_state)]
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        found.append((torch.cuda.get_rng_state_all, torch.cuda.set_rng_state_all))
    return found


def _tensorflow_states() -> list[tuple[Callable[[], Any], Callable[[Any], None]]]:
    if "tensorflow" not in sys.modules:
        return []
    found: list[tuple[Callable[[], Any], Callable[[Any], None]]] = []
    try:
        from tensorflow.python.eager import context
        from tensorflow.python.ops import stateful_random_ops
    except ImportError:  # pragma: no cover - a TensorFlow that moved them
        return found
    # Op seeds of unseeded random ops (tf.random.shuffle among them) come from
    # this generator once tf.random.set_seed has been called.
    rng = getattr(context.context(), "_rng", None)
    if isinstance(rng, random.Random):
        found.append((rng.getstate, rng.setstate))
    generator = getattr(stateful_random_ops, "global_generator", None)
    if generator is not None:
        state = generator.state
        found.append((state.read_value, state.assign))
    return found


class GlobalRandomState:
    """Python's, NumPy's, torch's, TensorFlow's and Keras's global random states, to put back."""

    def __init__(self) -> None:
        keepers: list[tuple[Callable[[], Any], Callable[[Any], None]]] = [
            (random.getstate, random.setstate),
            (np.random.get_state, np.random.set_state),
            *_torch_states(),
            *_tensorflow_states(),
        ]
        generator = _keras_seed_generator()
        if generator is not None:
            variable = generator.state
            keepers.append(
                (lambda: keras.ops.copy(variable.value), lambda value: variable.assign(keras.ops.copy(value)))
            )
        self._saved = [(put, get()) for get, put in keepers]

    def restore(self) -> None:
        """Put every saved state back."""
        for put, state in self._saved:
            put(state)
