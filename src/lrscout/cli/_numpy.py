"""``lrscout find-lr --framework numpy``: lrscout's own NumPy models."""

from __future__ import annotations

from .._result import RangeTestResult
from ..models import LinearRegressor, SoftmaxClassifier, find_lr
from ._data import Dataset
from ._find_lr import FindLRSettings


def run_find_lr(data: Dataset, settings: FindLRSettings) -> RangeTestResult:
    """Range-test a :class:`~lrscout.models.SoftmaxClassifier` (or ``LinearRegressor``) on ``data``.

    Example:
        >>> from lrscout.cli._data import load_dataset
        >>> result = run_find_lr(load_dataset("diabetes"), FindLRSettings(batch_size=None, num_steps=5))
        >>> result.info["model"], result.info["variant"]
        ('LinearRegressor', 'batch')
    """
    estimator = SoftmaxClassifier if data.task == "classification" else LinearRegressor
    model = estimator(
        batch_size=settings.batch_size,
        momentum=settings.momentum_or(0.0),
        random_state=settings.seed,
    )
    return find_lr(
        model,
        data.X,
        data.y,
        start_lr=settings.start_lr,
        end_lr=settings.end_lr,
        num_steps=settings.num_steps,
        mode=settings.mode,
        extend=settings.extend,
        progress=settings.progress,
    )
