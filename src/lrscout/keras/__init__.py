"""Keras 3 integration: the LR range test as a callback (``LRFinder``) or one call (``find_lr``).

Needs Keras 3 and one of its backends (``pip install keras torch``); importing
this package without them raises ``ImportError`` with the line that installs
them. When ``KERAS_BACKEND`` is not set and Keras's default backend
(tensorflow) is not installed, an installed one (torch, jax) is chosen and
logged (logger ``"lrscout.keras"``, level INFO).
"""

from ._find_lr import LRFinder as LRFinder
from ._find_lr import find_lr as find_lr
from ._one_cycle import OneCycle as OneCycle

__all__ = ["LRFinder", "OneCycle", "find_lr"]
