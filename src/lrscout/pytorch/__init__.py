"""LR range test for PyTorch models: :class:`LRFinder` and :func:`find_lr`.

Needs PyTorch (``pip install 'lrscout[pytorch]'``); ``import lrscout`` alone
does not import it.
"""

try:
    import torch as _torch  # noqa: F401
except ImportError as _error:
    raise ImportError(
        "lrscout.pytorch needs PyTorch, which is not installed: pip install 'lrscout[pytorch]'"
    ) from _error

from ._finder import LRFinder as LRFinder
from ._finder import find_lr as find_lr
from ._noise import noise_scale as noise_scale
from ._one_cycle import one_cycle_scheduler as one_cycle_scheduler

__all__ = ["LRFinder", "find_lr", "noise_scale", "one_cycle_scheduler"]
