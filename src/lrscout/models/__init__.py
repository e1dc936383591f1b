"""NumPy linear models trained by batch, stochastic or mini-batch gradient descent."""

from ._compare import VariantComparison as VariantComparison
from ._compare import VariantRun as VariantRun
from ._compare import compare_variants as compare_variants
from ._estimators import DivergenceWarning as DivergenceWarning
from ._estimators import GDEstimator as GDEstimator
from ._estimators import LinearRegressor as LinearRegressor
from ._estimators import SoftmaxClassifier as SoftmaxClassifier
from ._find_lr import find_lr as find_lr
from ._noise import noise_scale as noise_scale
from ._noise import rerun_find_lr as rerun_find_lr

__all__ = [
    "DivergenceWarning",
    "GDEstimator",
    "LinearRegressor",
    "SoftmaxClassifier",
    "VariantComparison",
    "VariantRun",
    "compare_variants",
    "find_lr",
    "noise_scale",
    "rerun_find_lr",
]
