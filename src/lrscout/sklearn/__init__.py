"""The LR range test for scikit-learn estimators trained by ``partial_fit``.

``find_lr`` serves ``SGDClassifier``, ``SGDRegressor``, ``MLPClassifier``,
``MLPRegressor`` and lrscout's own NumPy models; the estimator passed in is
not changed. Importing this package imports scikit-learn; ``import lrscout``
does not.
"""

from ._find_lr import SGD_LOSSES as SGD_LOSSES
from ._find_lr import find_lr as find_lr

__all__ = ["SGD_LOSSES", "find_lr"]
