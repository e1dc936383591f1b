"""The one place lrscout.keras imports Keras: the backend chosen, a missing install told in one message.

Keras reads its backend once, when it is first imported: ``KERAS_BACKEND``,
else the ``"backend"`` of ``$KERAS_HOME/keras.json`` (``~/.keras``), else
tensorflow. A user who has torch or jax but not tensorflow should not have to
know that, so when ``KERAS_BACKEND`` is not set and the backend Keras would
take is not installed, this module sets ``KERAS_BACKEND`` to an installed one
(:data:`BACKENDS` in order) before importing Keras, and logs the choice
(logger ``"lrscout.keras"``, level INFO). The command line goes through here
too, so Python and ``lrscout find-lr --framework keras`` behave the same.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from .._errors import missing_dependency

#: Keras backends lrscout can train on, in the order one is picked.
BACKENDS = ("tensorflow", "torch", "jax")

_WHAT = "lrscout.keras"
logger = logging.getLogger(_WHAT)


def choose_backend(configured: str, is_installed: Callable[[str], bool]) -> str | None:
    """The backend to set in ``KERAS_BACKEND``, or ``None`` to leave Keras's own choice.

    Args:
        configured: The backend Keras would take (its config file's, or tensorflow).
        is_installed: Whether the module of a backend can be imported.

    Returns:
        ``None`` when ``configured`` is installed (the user's choice stands)
        or no backend of :data:`BACKENDS` is; else the first installed one.

    Example:
        >>> choose_backend("tensorflow", lambda name: name in ("jax", "torch"))
        'torch'
        >>> choose_backend("jax", lambda name: name in ("jax", "torch")) is None
        True
    """
    if is_installed(configured):
        return None
    return next((name for name in BACKENDS if is_installed(name)), None)


def configured_backend(environ: Mapping[str, str] = os.environ) -> str:
    """The backend Keras takes when ``KERAS_BACKEND`` is not set: its config file's, or tensorflow.

    Reads the file Keras reads (``keras/src/backend/config.py``):
    ``$KERAS_HOME/keras.json``, else ``~/.keras/keras.json`` (``/tmp/.keras``
    when the home folder is not writable). Keras writes that file on its first
    import with the backend it used, so a file naming tensorflow may only
    record Keras's default.
    """
    home = environ.get("KERAS_HOME")
    if home is None:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    try:
        with open(os.path.expanduser(os.path.join(home, "keras.json")), encoding="utf-8") as file:
            config = json.load(file)
    except (OSError, ValueError):
        return "tensorflow"
    backend = config.get("backend") if isinstance(config, dict) else None
    return backend if isinstance(backend, str) and backend else "tensorflow"


def _is_installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _set_backend() -> str | None:
    """Set ``KERAS_BACKEND`` to an installed backend if Keras would otherwise fail; returns it."""
    if os.environ.get("KERAS_BACKEND") or "keras" in sys.modules:
        return None
    configured = configured_backend()
    chosen = choose_backend(configured, _is_installed)
    if chosen is not None:
        os.environ["KERAS_BACKEND"] = chosen
        logger.info(
            "KERAS_BACKEND is not set and Keras's default backend (%s) is not installed; "
            "using %s. Set KERAS_BACKEND to choose another.",
            configured,
            chosen,
        )
    return chosen


def _import_keras() -> Any:
    if not _is_installed("keras"):
        raise missing_dependency(_WHAT, "keras", needs="Keras 3")
    named = bool(os.environ.get("KERAS_BACKEND"))
    _set_backend()
    backend = os.environ.get("KERAS_BACKEND") or configured_backend()
    try:
        import keras
    except ImportError as error:
        # Keras is installed, so its backend is what failed to import.
        others = [name for name in BACKENDS if name != backend and _is_installed(name)]
        if not named and not others:
            raise missing_dependency(
                _WHAT, "torch", needs="a Keras backend (torch, jax or tensorflow)"
            ) from error
        where = "named by KERAS_BACKEND" if named else "that Keras chose"
        raise missing_dependency(
            _WHAT,
            backend,
            needs=f"the Keras backend {backend!r} {where}",
            or_else=f"set KERAS_BACKEND to an installed one: {', '.join(others)}" if others else None,
        ) from error
    major = str(getattr(keras, "__version__", "0")).split(".")[0]
    if not major.isdigit() or int(major) < 3:
        raise ImportError(
            f"{_WHAT} needs Keras 3; found keras {getattr(keras, '__version__', '?')}. "
            "Upgrade it with: pip install --upgrade keras"
        )
    return keras


keras: Any = _import_keras()
