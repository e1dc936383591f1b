"""lrscout for fastai: :func:`auto`, :func:`auto_for` and :func:`find_lr`.

``auto`` is lrscout's default rule as a fastai suggestion function
(``learn.lr_find(suggest_funcs=(auto, valley))``); ``auto_for(learn)`` is the
same rule told the Learner's optimizer and batch size; ``find_lr(learn)``
runs lrscout's own range test inside ``learn.fit`` and returns a
:class:`lrscout.RangeTestResult`. Importing this package imports neither
fastai nor torch: ``find_lr`` imports them when called.
"""

from ._find_lr import find_lr as find_lr
from ._suggest import auto as auto
from ._suggest import auto_for as auto_for
from ._suggest import unsmooth as unsmooth

__all__ = ["auto", "auto_for", "find_lr", "unsmooth"]
