"""LR range test for JAX models trained with optax: :func:`find_lr`.

Needs JAX and optax (``pip install 'lrscout[optax]'``); ``import lrscout``
alone does not import them.
"""

try:
    import jax as _jax  # noqa: F401
    import optax as _optax  # noqa: F401
except ImportError as _error:
    raise ImportError(
        f"lrscout.optax needs JAX and optax ({_error}): pip install 'lrscout[optax]'"
    ) from _error

from ._find_lr import find_lr as find_lr

__all__ = ["find_lr"]
