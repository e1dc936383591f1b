"""LR range test for Lightning: the :class:`LRFinder` callback and :func:`find_lr`.

Needs Lightning (``pip install "torch==2.13.0" lightning``); ``import lrscout`` alone does not
import it.
"""

from .._errors import missing_dependency

try:
    import lightning.pytorch as _pl  # noqa: F401
except ImportError as _error:
    raise missing_dependency("lrscout.lightning", "lightning", needs="Lightning") from _error

from ._find_lr import LRFinder as LRFinder
from ._find_lr import find_lr as find_lr

__all__ = ["LRFinder", "find_lr"]
