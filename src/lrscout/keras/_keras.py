"""The one place lrscout.keras imports Keras, so a missing install fails with one message."""

from __future__ import annotations

from typing import Any

_EXTRA = "pip install 'lrscout[keras]'"


def _import_keras() -> Any:
    try:
        import keras
    except ImportError as error:
        # ``import keras`` also fails when Keras is installed but its backend
        # (KERAS_BACKEND, tensorflow by default) is not, so say both.
        raise ImportError(
            f"lrscout.keras needs Keras 3 and one of its backends ({error}). Install them with "
            f"{_EXTRA} and set KERAS_BACKEND to an installed backend (torch, jax or tensorflow)."
        ) from error
    major = str(getattr(keras, "__version__", "0")).split(".")[0]
    if not major.isdigit() or int(major) < 3:
        raise ImportError(
            f"lrscout.keras needs Keras 3; found keras {getattr(keras, '__version__', '?')}. "
            f"Upgrade with {_EXTRA}."
        )
    return keras


keras: Any = _import_keras()
