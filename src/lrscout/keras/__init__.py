"""Keras 3 integration: the LR range test as a callback (``LRFinder``) or one call (``find_lr``).

Needs Keras 3 with any backend (``pip install 'lrscout[keras]'``); importing
this package without it raises ``ImportError`` saying so.
"""

from ._find_lr import LRFinder as LRFinder
from ._find_lr import find_lr as find_lr
from ._one_cycle import OneCycle as OneCycle

__all__ = ["LRFinder", "OneCycle", "find_lr"]
