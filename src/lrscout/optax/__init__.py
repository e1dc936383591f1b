"""LR range test for JAX models trained with optax: :func:`find_lr`.

Needs JAX and optax (``pip install jax optax``); ``import lrscout`` alone
does not import them.
"""

from .._errors import missing_dependency

try:
    import jax as _jax  # noqa: F401
    import optax as _optax  # noqa: F401
except ImportError as _error:
    raise missing_dependency("lrscout.optax", "jax optax", needs="JAX and optax") from _error

from ._find_lr import find_lr as find_lr

__all__ = ["find_lr"]
