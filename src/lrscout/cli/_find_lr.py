"""What ``lrscout find-lr`` trains: one settings record and one runner per framework.

Every runner has the signature ``run_find_lr(data, settings) -> RangeTestResult``
and trusts ``data``: a :class:`~lrscout.cli._data.Dataset` was checked when it
was built (finite standardised features, labels ``0..K-1`` or real targets).
The runners of PyTorch and Keras live in their own modules, imported only when
chosen, so the command starts without loading a framework it does not use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from .._errors import InvalidArgumentError
from .._result import RangeTestResult
from .._validation import check_batch_size, check_bool, check_float, check_int, check_option
from ._data import Dataset

FRAMEWORKS = ("numpy", "pytorch", "keras", "jax", "sklearn")
MODELS = ("linear", "mlp")
#: Width of the hidden layer of ``model="mlp"``.
HIDDEN_UNITS = 64
#: Heavy-ball momentum of the SGD optimizer of PyTorch and Keras when none is given.
DEFAULT_MOMENTUM = 0.9

_WHERE = "run_find_lr"

# The integration each framework's runner is built on.
_PACKAGES = {"pytorch": "..pytorch", "keras": "..keras", "jax": "..optax"}


@dataclass(frozen=True)
class FindLRSettings:
    """The command line's choices for one range test, checked once here.

    Attributes:
        model: ``"linear"`` (softmax or least-squares regression) or ``"mlp"``
            (one hidden layer of :data:`HIDDEN_UNITS` ReLU units; PyTorch and
            Keras only).
        batch_size: Samples per step; ``None`` is the whole set.
        momentum: Heavy-ball momentum in [0, 1); ``None`` is the framework's
            default (0 for NumPy, :data:`DEFAULT_MOMENTUM` for PyTorch and Keras).
        start_lr, end_lr, num_steps, mode, extend: The ramp, as in :func:`lrscout.range_test`.
        seed: Fixes the initial weights and the batch order, in [0, 2**32).
        progress: Show a progress bar.
    """

    model: str = "linear"
    batch_size: int | None = 32
    momentum: float | None = None
    start_lr: float = 1e-7
    end_lr: float = 10.0
    num_steps: int = 100
    mode: str = "exponential"
    extend: bool = True
    seed: int = 0
    progress: bool = False

    def __post_init__(self) -> None:
        check_option(self.model, "model", MODELS, where=_WHERE)
        check_batch_size(self.batch_size, where=_WHERE)
        if self.momentum is not None:
            check_float(self.momentum, "momentum", where=_WHERE, minimum=0.0, maximum=1.0, open_maximum=True)
        check_float(self.start_lr, "start_lr", where=_WHERE, positive=True)
        check_int(self.seed, "seed", where=_WHERE, minimum=0, maximum=2**32 - 1)
        check_bool(self.progress, "progress", where=_WHERE)
        check_bool(self.extend, "extend", where=_WHERE)

    def momentum_or(self, default: float) -> float:
        """``momentum``, or ``default`` when it was not given."""
        return default if self.momentum is None else self.momentum


Runner = Callable[[Dataset, FindLRSettings], RangeTestResult]


def load_runner(framework: str) -> Runner:
    """The ``run_find_lr(data, settings)`` of ``framework``, importing the framework.

    Raises:
        InvalidArgumentError: For a framework that does not exist.
        ImportError: When the framework is not installed (naming the extra).

    Example:
        >>> from lrscout.cli._data import load_dataset
        >>> run_find_lr = load_runner("numpy")
        >>> settings = FindLRSettings(start_lr=1e-4, num_steps=10, extend=False)
        >>> result = run_find_lr(load_dataset("breast-cancer"), settings)
        >>> len(result), result.info["model"]
        (10, 'SoftmaxClassifier')
    """
    name = check_option(framework, "framework", FRAMEWORKS, where=_WHERE)
    if name in _PACKAGES:
        # lrscout's own integration first: when its framework is missing it
        # says so with the line that installs it (the runner would only say
        # "No module named 'torch'").
        importlib.import_module(_PACKAGES[name], __package__)
    runner: Runner = importlib.import_module(f"{__package__}._{name}").run_find_lr
    return runner


def describe_model(framework: str, settings: FindLRSettings) -> str:
    """One line naming the model for the report."""
    if framework == "numpy" and settings.model != "linear":
        raise InvalidArgumentError(
            f"{_WHERE}: model must be 'linear' with framework 'numpy'; got {settings.model!r}. "
            "--model mlp needs --framework pytorch or keras; numpy trains linear models."
        )
    return f"{settings.model} ({framework})"
