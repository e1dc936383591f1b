"""LR range test for PyTorch models: :class:`LRFinder` and :func:`find_lr`.

Needs PyTorch (``pip install "torch==2.13.0"``); ``import lrscout`` alone
does not import it.
"""

from .._errors import missing_dependency

try:
    import torch as _torch  # noqa: F401
except ImportError as _error:
    raise missing_dependency("lrscout.pytorch", "torch", needs="PyTorch") from _error

from ._find_lr import LRFinder as LRFinder
from ._find_lr import find_lr as find_lr
from ._noise import noise_scale as noise_scale
from ._one_cycle import one_cycle_scheduler as one_cycle_scheduler

__all__ = ["LRFinder", "find_lr", "noise_scale", "one_cycle_scheduler"]
