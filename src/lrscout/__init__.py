"""lrscout: pick the learning rate, batch size and gradient-descent variant before training.

``import lrscout`` needs NumPy only; plotting, PyTorch and Keras parts import
their framework when used.
"""

from ._batching import gd_variant as gd_variant
from ._batching import minibatches as minibatches
from ._batching import steps_per_epoch as steps_per_epoch
from ._engine import RangeTestState as RangeTestState
from ._engine import range_test as range_test
from ._errors import CurveWarning as CurveWarning
from ._errors import InvalidArgumentError as InvalidArgumentError
from ._errors import NoiseScaleWarning as NoiseScaleWarning
from ._errors import NoSuggestionError as NoSuggestionError
from ._lr_scaling import LRAdvice as LRAdvice
from ._lr_scaling import rescale_lr as rescale_lr
from ._lr_scaling import scale_lr as scale_lr
from ._noise import NoiseScaleResult as NoiseScaleResult
from ._noise import estimate_noise_scale as estimate_noise_scale
from ._noise import exact_noise_scale as exact_noise_scale
from ._noise import expected_batch_sq_norm as expected_batch_sq_norm
from ._result import STOP_REASONS as STOP_REASONS
from ._result import RangeTestResult as RangeTestResult
from ._result import Suggestion as Suggestion
from ._result import loss_trend as loss_trend
from ._schedules import Schedule as Schedule
from ._schedules import exponential_ramp as exponential_ramp
from ._schedules import linear_ramp as linear_ramp
from ._schedules import one_cycle as one_cycle
from ._version import __version__ as __version__
from .models import VariantComparison as VariantComparison
from .models import compare_variants as compare_variants

__all__ = [
    "STOP_REASONS",
    "CurveWarning",
    "InvalidArgumentError",
    "LRAdvice",
    "NoSuggestionError",
    "NoiseScaleResult",
    "NoiseScaleWarning",
    "RangeTestResult",
    "RangeTestState",
    "Schedule",
    "Suggestion",
    "VariantComparison",
    "compare_variants",
    "estimate_noise_scale",
    "exact_noise_scale",
    "expected_batch_sq_norm",
    "exponential_ramp",
    "gd_variant",
    "linear_ramp",
    "loss_trend",
    "minibatches",
    "one_cycle",
    "range_test",
    "rescale_lr",
    "scale_lr",
    "steps_per_epoch",
]
