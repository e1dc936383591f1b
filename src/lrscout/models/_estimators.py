"""Linear models trained by batch, stochastic or mini-batch gradient descent.

The ``batch_size`` hyperparameter picks the variant: ``None`` updates once per
pass over the data (batch GD), ``1`` once per sample (stochastic GD), ``k``
once per ``k`` samples (mini-batch GD). Gradients are analytic; the
``engine`` hyperparameter runs each epoch as one compiled loop (numba) or
vectorised over each batch (NumPy).
"""

from __future__ import annotations

import abc
import functools
import inspect
import math
import time
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from .._batching import as_generator, steps_per_epoch
from .._errors import InvalidArgumentError, missing_dependency
from .._validation import check_batch_size, check_bool, check_float, check_int, check_option, fail

ENGINES = ("auto", "numba", "numpy")


class DivergenceWarning(RuntimeWarning):
    """Training ended with a non-finite loss: the learning rate was too high."""


@functools.cache
def _compiled_kernels() -> ModuleType | None:
    """The compiled epoch loops, or ``None`` when numba does not import.

    Loaded and compiled (or read from numba's cache) once per process, so
    that the first ``epoch_times_`` entry measures training, not compilation.
    """
    try:
        from . import _kernels
    except ImportError:
        return None
    _kernels.compile_now()
    return _kernels


@functools.cache
def _not_fitted_error() -> type[InvalidArgumentError]:
    """The error of ``predict`` before ``fit``: an :class:`~lrscout.InvalidArgumentError`
    that is also scikit-learn's ``NotFittedError`` (a ``ValueError`` and an
    ``AttributeError``), as ``check_is_fitted`` would raise.

    Built on first use, so that ``import lrscout`` never imports scikit-learn;
    the plain :class:`~lrscout.InvalidArgumentError` if scikit-learn does not import.
    """
    try:
        from sklearn.exceptions import NotFittedError
    except ImportError:
        return InvalidArgumentError
    namespace = {
        "__module__": __name__,
        "__doc__": "Predicting with an estimator before fit (also sklearn.exceptions.NotFittedError).",
        # Unpickled (joblib workers, ...) through the factory: the class has no module-level name.
        "__reduce__": lambda self: (_not_fitted, self.args),
    }
    error: type[InvalidArgumentError] = type(
        "NotFittedError", (InvalidArgumentError, NotFittedError), namespace
    )
    return error


def _not_fitted(*args: Any) -> InvalidArgumentError:
    return _not_fitted_error()(*args)


def check_estimator(model: Any, *, where: str, fix: str = "") -> GDEstimator:
    """Return ``model`` if it is an lrscout.models estimator, else raise.

    Raises:
        InvalidArgumentError: ``model`` is not a :class:`GDEstimator`.
    """
    if not isinstance(model, GDEstimator):
        raise InvalidArgumentError(
            f"{where}: model must be an lrscout.models estimator (a GDEstimator such as "
            f"LinearRegressor or SoftmaxClassifier); got {type(model).__name__}.{' ' + fix if fix else ''}"
        )
    return model


class GDEstimator(abc.ABC):
    """Shared machinery: hyperparameters, parameter state, the update rule.

    Every subclass's per-example gradient has the form ``(r_i x_i^T, r_i)``
    (weights, intercept) plus the L2 term ``alpha W``. Subclasses define the
    residuals ``r_i`` and the data loss (``_residuals_and_loss``), how targets
    are encoded (``_encode_targets``), how the trained ``(W, b)`` is stored
    (``_set_fitted``) and the compiled epoch (``_kernel_name``).

    scikit-learn sees a full estimator (``clone``, ``Pipeline``,
    ``cross_val_score``, ``GridSearchCV``, ``check_is_fitted``,
    ``is_classifier``) through its duck-typed protocol: ``get_params`` /
    ``set_params``, ``__sklearn_tags__``, ``__sklearn_is_fitted__`` and
    ``n_features_in_``. The classes do not inherit from
    ``sklearn.base.BaseEstimator``, so ``import lrscout`` does not load
    scikit-learn (and SciPy): it is imported only when scikit-learn itself
    asks for the tags, or to raise its ``NotFittedError``.
    """

    _kernel_name = ""
    coef_: np.ndarray
    intercept_: float | np.ndarray

    def __init__(
        self,
        *,
        lr: float | Callable[[Any], Any] = 0.01,
        batch_size: int | None = 32,
        epochs: int = 10,
        momentum: float = 0.0,
        alpha: float = 0.0,
        fit_intercept: bool = True,
        shuffle: bool = True,
        random_state: int | np.random.Generator | None = None,
        engine: str = "auto",
    ) -> None:
        self.lr = lr
        self.batch_size = batch_size
        self.epochs = epochs
        self.momentum = momentum
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.shuffle = shuffle
        self.random_state = random_state
        self.engine = engine

    # scikit-learn estimator protocol ----------------------------------------

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [name for name, p in signature.parameters.items() if p.kind is p.KEYWORD_ONLY]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The hyperparameters, as passed to ``__init__``."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> GDEstimator:
        """Set hyperparameters by name; returns ``self``."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise InvalidArgumentError(
                    f"{type(self).__name__}.set_params: unknown parameter {name!r}; "
                    f"valid: {', '.join(valid)}."
                )
            setattr(self, name, value)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        """Whether ``fit`` has run (read by ``sklearn.utils.validation.check_is_fitted``)."""
        return hasattr(self, "coef_")

    def _sklearn_tags(self, estimator_type: str, multi_output: bool) -> Any:
        """scikit-learn's ``Tags`` (1.6 and later), imported only when scikit-learn asks for them."""
        from sklearn.utils import ClassifierTags, RegressorTags, Tags, TargetTags

        classifier = estimator_type == "classifier"
        return Tags(
            estimator_type=estimator_type,
            target_tags=TargetTags(required=True, multi_output=multi_output),
            classifier_tags=ClassifierTags() if classifier else None,
            regressor_tags=None if classifier else RegressorTags(),
        )

    def __repr__(self) -> str:
        defaults = {n: p.default for n, p in inspect.signature(type(self).__init__).parameters.items()}
        changed = [
            f"{n}={v!r}"
            for n, v in self.get_params().items()
            if v is not defaults.get(n) and v != defaults.get(n)
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    # Validation ---------------------------------------------------------------

    def _check_params(self, where: str) -> None:
        if not callable(self.lr):
            check_float(self.lr, "lr", where=where, positive=True, fix="Or pass a schedule, step -> lr.")
        check_batch_size(self.batch_size, where=where)
        check_int(self.epochs, "epochs", where=where, minimum=1)
        check_float(self.momentum, "momentum", where=where, minimum=0.0, maximum=1.0, open_maximum=True)
        check_float(self.alpha, "alpha", where=where, minimum=0.0)
        check_bool(self.fit_intercept, "fit_intercept", where=where)
        check_bool(self.shuffle, "shuffle", where=where)
        if self.random_state is not None and not isinstance(self.random_state, np.random.Generator):
            check_int(
                self.random_state,
                "random_state",
                where=where,
                minimum=0,
                fix="Pass a non-negative int, a numpy.random.Generator or None.",
            )
        check_option(self.engine, "engine", ENGINES, where=where)

    def _check_X(self, X: Any, where: str, n_features: int | None = None) -> np.ndarray:
        """``X`` as a C-contiguous ``float64`` array, refused unless finite, real, dense and 2-D.

        The messages carry scikit-learn's wording too ("Reshape your data",
        "0 feature(s)", "sparse", "Complex data not supported", "X has m
        features, but ... is expecting n features as input"), which its
        estimator checks look for.
        """
        if type(X).__module__.startswith("scipy.sparse"):
            raise InvalidArgumentError(
                f"{where}: X must be a dense array; got a {type(X).__name__}: sparse input is not "
                "supported. Convert it with X.toarray() if it fits in memory."
            )
        try:
            raw = np.asarray(X)
        except (TypeError, ValueError) as error:
            raise InvalidArgumentError(
                f"{where}: X must be a numeric 2-D array; got {type(X).__name__} ({error})."
            ) from None
        if raw.dtype.kind == "c":
            raise InvalidArgumentError(
                f"{where}: X must be real; got complex values. Complex data not supported: "
                "pass the real and imaginary parts as separate features."
            )
        try:
            array = raw.astype(np.float64, copy=False)
        except (TypeError, ValueError) as error:
            raise InvalidArgumentError(
                f"{where}: X must be a numeric 2-D array; got {type(X).__name__} ({error})."
            ) from None
        if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
            shape = array.shape
            if array.ndim == 2:
                axis = "feature" if shape[1] == 0 else "sample"
                detail = f"It has 0 {axis}(s) (shape={shape}) while a minimum of 1 is required."
            else:
                detail = (
                    "Reshape your data: X.reshape(-1, 1) if it holds a single feature, "
                    "X.reshape(1, -1) if it holds a single sample."
                )
            raise InvalidArgumentError(
                f"{where}: X must be a non-empty 2-D array (n_samples, n_features); "
                f"got shape {shape}. {detail}"
            )
        if not np.all(np.isfinite(array)):
            raise InvalidArgumentError(f"{where}: X must be finite; it holds NaN or infinite values.")
        if n_features is not None and array.shape[1] != n_features:
            raise InvalidArgumentError(
                f"{where}: X must have {n_features} features, as in fit; got {array.shape[1]}. "
                f"X has {array.shape[1]} features, but {type(self).__name__} is expecting "
                f"{n_features} features as input: pass the columns fit saw, or refit."
            )
        return np.ascontiguousarray(array)

    def _check_fitted(self, where: str) -> None:
        if not hasattr(self, "coef_"):
            raise _not_fitted_error()(
                f"{where}: this {type(self).__name__} is not fitted yet; call fit(X, y) first."
            )

    # Subclass hooks -------------------------------------------------------------

    @abc.abstractmethod
    def _encode_targets(
        self, y: Any, n_samples: int, where: str, *, fresh: bool
    ) -> tuple[np.ndarray, int, dict[str, Any]]:
        """Targets as the loss wants them, the number of outputs, and the
        attributes that ``fit`` sets from them (``classes_``, ...).

        ``fresh`` (``fit``) ignores what an earlier fit learned; otherwise
        targets are encoded as the fitted model knows them. Must not change
        ``self``: ``fit`` validates everything before it forgets.
        """

    @abc.abstractmethod
    def _residuals_and_loss(
        self, W: np.ndarray, b: np.ndarray, X: np.ndarray, T: np.ndarray
    ) -> tuple[np.ndarray, float]:
        """Residual ``r_i`` of every example (rows, ``(m, k)``) and the mean data loss.

        The data part of the gradient of example ``i`` is ``(r_i x_i^T, r_i)``.
        """

    # Training -----------------------------------------------------------------

    def _prepare(
        self, X: Any, y: Any, where: str, *, fresh: bool = False
    ) -> tuple[np.ndarray, np.ndarray, int, dict[str, Any]]:
        """Check the hyperparameters, ``X`` and ``y``; return ``X``, the encoded
        targets, the number of outputs and the attributes ``fit`` would set.

        Unless ``fresh``, ``X`` and ``y`` must match the fitted model, if any.
        """
        self._check_params(where)
        state = None if fresh else self._state()
        array = self._check_X(X, where, None if state is None else state[0].shape[1])
        return (array, *self._encode_targets(y, array.shape[0], where, fresh=fresh))

    def _initial_params(self, n_outputs: int, n_features: int) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the fitted ``(W, b)``, else zeros as ``fit`` starts from."""
        state = self._state()
        return (np.zeros((n_outputs, n_features)), np.zeros(n_outputs)) if state is None else state

    def _loss_grad(
        self, W: np.ndarray, b: np.ndarray, X: np.ndarray, T: np.ndarray, *, grad: bool = True
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """Objective on batch ``(X, T)`` and its gradients (empty when ``grad=False``).

        .. math:: \\nabla_W L = \\frac{1}{m} R^T X + \\alpha W, \\quad
                  \\nabla_b L = \\frac{1}{m} \\sum_i r_i
        """
        R, data_loss = self._residuals_and_loss(W, b, X, T)
        loss = data_loss + _penalty(W, self.alpha)
        if not grad:
            return loss, W[:0], b[:0]
        gW = R.T @ X / X.shape[0]
        if self.alpha:
            gW += self.alpha * W
        return loss, gW, R.mean(axis=0)

    def _objective(self, W: np.ndarray, b: np.ndarray, X: np.ndarray, T: np.ndarray) -> float:
        return self._loss_grad(W, b, X, T, grad=False)[0]

    def fit(self, X: Any, y: Any) -> GDEstimator:
        """Train from zero weights for ``epochs`` passes over ``(X, y)``.

        Sets ``coef_``, ``intercept_``, ``loss_history_`` (loss of each
        update's batch, before the update), ``epoch_losses_`` (objective on the
        whole set after each epoch), ``epoch_times_`` (seconds of updates per
        epoch), ``n_updates_`` (``epochs * steps_per_epoch``) and
        ``n_features_in_`` (columns of ``X``, as scikit-learn names it).

        Returns:
            ``self``.

        Raises:
            InvalidArgumentError: A hyperparameter, ``X`` or ``y`` is invalid
                (a ``ValueError`` and a ``TypeError``). A refused fit leaves
                the model as it was.
            ImportError: ``engine="numba"`` and numba does not import.
        """
        where = f"{type(self).__name__}.fit"
        X_, T, n_outputs, fitted = self._prepare(X, y, where, fresh=True)
        n = X_.shape[0]
        batch = n if self.batch_size is None else min(int(self.batch_size), n)
        lrs = self._learning_rates(int(self.epochs) * steps_per_epoch(n, batch), where)
        epoch_fn = self._epoch_fn(where)
        # Only now that everything is checked may the earlier fit go.
        self._forget()
        for name, value in fitted.items():
            setattr(self, name, value)
        self.n_features_in_ = X_.shape[1]
        W = np.zeros((n_outputs, X_.shape[1]))
        b = np.zeros(n_outputs)
        self._train(X_, T, W, b, batch, lrs, epoch_fn, where)
        return self

    def _epoch_fn(self, where: str) -> Callable[..., None] | None:
        """The compiled epoch loop that ``engine`` asks for, or ``None`` for NumPy."""
        if self.engine == "numpy":
            return None
        kernels = _compiled_kernels()
        if kernels is None:
            if self.engine == "numba":
                raise missing_dependency(
                    f"{where}: engine='numba'", "numba", or_else='use engine="auto" or "numpy"'
                )
            return None
        epoch_fn: Callable[..., None] = getattr(kernels, self._kernel_name)
        return epoch_fn

    def _forget(self) -> None:
        """Drop what an earlier fit learned, so a refit starts fresh."""
        for name in [n for n in vars(self) if n.endswith("_") and not n.startswith("_")]:
            delattr(self, name)

    def _train(
        self,
        X: np.ndarray,
        T: np.ndarray,
        W: np.ndarray,
        b: np.ndarray,
        batch: int,
        lrs: np.ndarray,
        epoch_fn: Callable[..., None] | None,
        where: str,
    ) -> None:
        n = X.shape[0]
        steps = steps_per_epoch(n, batch)
        epochs = int(self.epochs)
        rng = as_generator(self.random_state, where=where)
        momentum, alpha, intercept = float(self.momentum), float(self.alpha), bool(self.fit_intercept)
        VW, Vb = np.zeros_like(W), np.zeros_like(b)
        history = np.empty(epochs * steps)
        epoch_losses = np.empty(epochs)
        epoch_times = np.empty(epochs)
        with np.errstate(over="ignore", invalid="ignore"):
            for epoch in range(epochs):
                order = rng.permutation(n) if self.shuffle else np.arange(n)
                part = slice(epoch * steps, (epoch + 1) * steps)
                losses, rates = history[part], lrs[part]
                began = time.perf_counter()
                if epoch_fn is not None:
                    epoch_fn(X, T, order, batch, W, b, VW, Vb, rates, momentum, alpha, intercept, losses)
                else:
                    for step in range(steps):
                        idx = order[step * batch : (step + 1) * batch]
                        losses[step] = self._update(W, b, VW, Vb, X[idx], T[idx], rates[step], momentum)
                epoch_times[epoch] = time.perf_counter() - began
                epoch_losses[epoch] = self._objective(W, b, X, T)
        if not np.isfinite(epoch_losses[-1]):
            warnings.warn(
                f"{where}: training diverged (loss {epoch_losses[-1]}) at lr={self.lr!r}; "
                "lower lr, e.g. to the value lrscout.models.find_lr suggests.",
                DivergenceWarning,
                stacklevel=3,
            )
        self._set_fitted(W, b)
        self.loss_history_ = history
        self.epoch_losses_ = epoch_losses
        self.epoch_times_ = epoch_times
        self.n_updates_ = epochs * steps

    def _learning_rates(self, total: int, where: str) -> np.ndarray:
        """The learning rate of every update: ``lr`` itself or ``lr(step)``."""
        if not callable(self.lr):
            return np.full(total, float(self.lr))
        problem = (
            f"{where}: lr must give a positive, finite learning rate for every update step "
            f"0..{total - 1} (epochs * steps_per_epoch); got {self.lr!r}. Build the schedule for "
            f"{total} steps, e.g. lrscout.one_cycle(max_lr, {total})."
        )
        try:
            rates = np.asarray(self.lr(np.arange(total)), dtype=np.float64)
            if rates.shape != (total,):
                raise InvalidArgumentError("not one value per step")
        except (TypeError, ValueError):
            try:
                rates = np.asarray([float(self.lr(step)) for step in range(total)])
            except (TypeError, ValueError) as error:
                raise InvalidArgumentError(f"{problem} ({error})") from None
        if not np.all(np.isfinite(rates)) or not np.all(rates > 0):
            raise InvalidArgumentError(problem)
        return rates

    def _update(
        self,
        W: np.ndarray,
        b: np.ndarray,
        VW: np.ndarray,
        Vb: np.ndarray,
        X: np.ndarray,
        T: np.ndarray,
        lr: float,
        momentum: float,
    ) -> float:
        """One gradient step on batch ``(X, T)`` in place; returns the batch loss before it."""
        loss, gW, gb = self._loss_grad(W, b, X, T)
        VW *= momentum
        VW += gW
        W -= lr * VW
        if self.fit_intercept:
            Vb *= momentum
            Vb += gb
            b -= lr * Vb
        return loss

    @abc.abstractmethod
    def _set_fitted(self, W: np.ndarray, b: np.ndarray) -> None:
        """Store the trained ``(W, b)`` as ``coef_`` and ``intercept_``."""

    def _state(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(W, b)`` as 2-D / 1-D copies when fitted, else ``None``."""
        if not hasattr(self, "coef_"):
            return None
        W = np.atleast_2d(self.coef_).copy()
        return W, np.atleast_1d(np.asarray(self.intercept_, dtype=np.float64)).copy()


def _penalty(W: np.ndarray, alpha: float) -> float:
    return 0.5 * alpha * float(np.vdot(W, W)) if alpha else 0.0


def _softmax_parts(W: np.ndarray, b: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``Z``, the logits less each row's maximum, ``exp(Z)`` and its row sums ``s``.

    ``softmax = exp(Z) / s`` and ``log softmax = Z - log s``, without overflow.
    """
    Z = X @ W.T + b
    Z -= Z.max(axis=1, keepdims=True)
    E = np.exp(Z)
    return Z, E, E.sum(axis=1)


class LinearRegressor(GDEstimator):
    """Least-squares linear regression trained by gradient descent.

    Objective on a batch of ``m`` samples (``alpha`` adds L2 on the weights):

    .. math:: L = \\frac{1}{2m} \\sum_i \\lVert W x_i + b - y_i \\rVert^2
              + \\frac{\\alpha}{2} \\lVert W \\rVert^2

    so full-batch GD converges for ``lr < 2 / lambda_max(H)`` with
    ``H = X^T X / n`` (columns of ones added for the intercept) and
    ``2 (1 + momentum) / lambda_max`` with heavy-ball momentum.

    Args:
        lr: Learning rate, positive; or a schedule ``step -> lr`` over the
            ``epochs * steps_per_epoch`` updates, such as :func:`lrscout.one_cycle`.
        batch_size: ``None`` batch GD, ``1`` stochastic GD, ``k`` mini-batch GD.
        epochs: Passes over the data.
        momentum: Heavy-ball momentum in [0, 1), as in ``torch.optim.SGD``.
        alpha: L2 penalty on the weights (not the intercept), >= 0.
        fit_intercept: Learn an intercept.
        shuffle: Reshuffle the samples every epoch.
        random_state: Seed or ``numpy.random.Generator`` for the shuffling.
        engine: How ``fit`` runs an epoch: ``"numba"``, as one compiled loop
            (needs numba: ``pip install "lrscout[fast]"``; ``fit`` raises
            ``ImportError`` without it); ``"numpy"``, vectorised over each
            batch; ``"auto"`` (default), numba when it imports, else NumPy.
            The two agree to rounding (their sums run in another order).
            :func:`lrscout.models.find_lr` and :func:`lrscout.models.noise_scale`
            always use NumPy.

    Attributes:
        coef_: ``(n_features,)``, or ``(n_targets, n_features)`` for 2-D ``y``.
        intercept_: ``float``, or ``(n_targets,)``.
        loss_history_, epoch_losses_, epoch_times_, n_updates_: see :meth:`fit`.

    Example:
        >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> model = LinearRegressor(lr=0.1, batch_size=None, epochs=500).fit(X, 2 * X[:, 0] + 1)
        >>> np.round([model.coef_[0], model.intercept_], 4).tolist()
        [2.0, 1.0]
    """

    _kernel_name = "linear_epoch"
    _estimator_type = "regressor"  # what scikit-learn before 1.6 reads instead of the tags
    _single_target: bool

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's tags: a regressor, one target or several."""
        return self._sklearn_tags("regressor", multi_output=True)

    def _encode_targets(
        self, y: Any, n_samples: int, where: str, *, fresh: bool
    ) -> tuple[np.ndarray, int, dict[str, Any]]:
        _check_y_given(y, where, type(self).__name__)
        try:
            raw = np.asarray(y)
            complex_values = raw.dtype.kind == "c"
            targets = raw if complex_values else raw.astype(np.float64, copy=False)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"{where}: y must be numeric; got {type(y).__name__}.") from None
        if complex_values:
            fail(where, "y", "real numbers", "complex values", "Complex data not supported.")
        if targets.ndim not in (1, 2) or targets.shape[0] != n_samples:
            raise InvalidArgumentError(
                f"{where}: y must have shape ({n_samples},) or ({n_samples}, n_targets) to match X; "
                f"got {targets.shape}."
            )
        if not np.all(np.isfinite(targets)):
            raise InvalidArgumentError(f"{where}: y must be finite; it holds NaN or infinite values.")
        T = np.ascontiguousarray(targets.reshape(n_samples, -1))
        return T, T.shape[1], {"_single_target": targets.ndim == 1}

    def _residuals_and_loss(
        self, W: np.ndarray, b: np.ndarray, X: np.ndarray, T: np.ndarray
    ) -> tuple[np.ndarray, float]:
        """``W x_i + b - y_i`` and half the mean squared residual."""
        R: np.ndarray = X @ W.T + b - T
        return R, 0.5 * float(np.vdot(R, R)) / X.shape[0]

    def _set_fitted(self, W: np.ndarray, b: np.ndarray) -> None:
        if self._single_target:
            self.coef_ = W[0].copy()
            self.intercept_ = float(b[0])
        else:
            self.coef_ = W.copy()
            self.intercept_ = b.copy()

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets, ``X @ coef_.T + intercept_``."""
        where = "LinearRegressor.predict"
        self._check_fitted(where)
        W, b = self._state()  # type: ignore[misc]
        out: np.ndarray = self._check_X(X, where, W.shape[1]) @ W.T + b
        return out[:, 0] if self._single_target else out

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Coefficient of determination, as ``sklearn.metrics.r2_score``.

        .. math:: R^2 = 1 - \\frac{\\sum_i w_i (y_i - \\hat y_i)^2}{\\sum_i w_i (y_i - \\bar y_w)^2}

        averaged over targets; a target of constant ``y`` scores 1 if
        predicted exactly, else 0; fewer than two samples give NaN.

        Args:
            X: Inputs, ``(n_samples, n_features)``.
            y: True targets, shaped as the predictions (a column for one
                target is read as that target).
            sample_weight: Non-negative weight per sample; ``None`` weighs
                all alike.

        Returns:
            The score, 1 at best.
        """
        where = "LinearRegressor.score"
        predicted = self.predict(X)
        truth = _score_targets(y, predicted.shape, where)
        weights = _score_weights(sample_weight, len(predicted), where)
        if len(predicted) < 2:
            return math.nan
        truth, predicted = truth.reshape(len(truth), -1), predicted.reshape(len(predicted), -1)
        w = np.ones((len(truth), 1)) if weights is None else weights[:, None]
        residual = (w * (truth - predicted) ** 2).sum(axis=0)
        total = (w * (truth - np.average(truth, axis=0, weights=weights)) ** 2).sum(axis=0)
        scores = np.ones(truth.shape[1])
        both = (residual != 0) & (total != 0)
        scores[both] = 1.0 - residual[both] / total[both]
        scores[(residual != 0) & (total == 0)] = 0.0
        return float(np.mean(scores))


class SoftmaxClassifier(GDEstimator):
    """Multinomial logistic regression trained by gradient descent.

    Objective on a batch of ``m`` samples with labels ``y_i``:

    .. math:: L = -\\frac{1}{m} \\sum_i \\log \\operatorname{softmax}(W x_i + b)_{y_i}
              + \\frac{\\alpha}{2} \\lVert W \\rVert^2

    Two classes are handled the same way (two output columns).

    Args: as :class:`LinearRegressor`.

    Attributes:
        classes_: Sorted class labels.
        coef_: ``(n_classes, n_features)``.
        intercept_: ``(n_classes,)``.
        loss_history_, epoch_losses_, epoch_times_, n_updates_: see :meth:`fit`.

    Example:
        >>> X = np.array([[-2.0], [-1.0], [1.0], [2.0]])
        >>> model = SoftmaxClassifier(lr=0.5, batch_size=2, epochs=50, random_state=0)
        >>> model.fit(X, ["no", "no", "yes", "yes"]).predict([[-3.0], [3.0]]).tolist()
        ['no', 'yes']
    """

    _kernel_name = "softmax_epoch"
    _estimator_type = "classifier"  # what scikit-learn before 1.6 reads instead of the tags
    classes_: np.ndarray
    coef_: np.ndarray
    intercept_: np.ndarray

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's tags: a multi-class classifier of one target."""
        return self._sklearn_tags("classifier", multi_output=False)

    def _encode_targets(
        self, y: Any, n_samples: int, where: str, *, fresh: bool
    ) -> tuple[np.ndarray, int, dict[str, Any]]:
        _check_y_given(y, where, type(self).__name__)
        labels = _column_as_1d(np.asarray(y), n_samples)
        _check_labels(labels, where)
        if labels.ndim != 1 or labels.shape[0] != n_samples:
            raise InvalidArgumentError(
                f"{where}: y must be a 1-D array of {n_samples} class labels to match X; "
                f"got shape {labels.shape}."
            )
        if not fresh and hasattr(self, "classes_"):
            classes = self.classes_
            encoded = np.searchsorted(classes, labels)
            unknown = (encoded >= len(classes)) | (classes[np.minimum(encoded, len(classes) - 1)] != labels)
            if np.any(unknown):
                raise InvalidArgumentError(
                    f"{where}: y holds labels the fitted model does not know: "
                    f"{np.unique(labels[unknown]).tolist()!r}; its classes_ are {classes.tolist()!r}."
                )
        else:
            classes, encoded = np.unique(labels, return_inverse=True)
        if len(classes) < 2:
            raise InvalidArgumentError(
                f"{where}: y must hold at least 2 classes; got only {classes.tolist()!r} (1 class)."
            )
        return np.ascontiguousarray(encoded.astype(np.int64)), len(classes), {"classes_": classes}

    def _residuals_and_loss(
        self, W: np.ndarray, b: np.ndarray, X: np.ndarray, T: np.ndarray
    ) -> tuple[np.ndarray, float]:
        """``softmax(W x_i + b) - onehot(y_i)`` and the mean cross-entropy."""
        Z, E, total = _softmax_parts(W, b, X)
        rows = np.arange(X.shape[0])
        loss = float(np.mean(np.log(total) - Z[rows, T]))
        E /= total[:, None]
        E[rows, T] -= 1.0
        return E, loss

    def _set_fitted(self, W: np.ndarray, b: np.ndarray) -> None:
        self.coef_ = W.copy()
        self.intercept_ = b.copy()

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        where = "SoftmaxClassifier.predict_proba"
        self._check_fitted(where)
        X_ = self._check_X(X, where, self.coef_.shape[1])
        _, E, total = _softmax_parts(self.coef_, self.intercept_, X_)
        E /= total[:, None]
        return E

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each sample."""
        probabilities = self.predict_proba(X)
        labels: np.ndarray = self.classes_[np.argmax(probabilities, axis=1)]
        return labels

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy, as ``sklearn.metrics.accuracy_score``: the (weighted) share of labels predicted right.

        Args:
            X: Inputs, ``(n_samples, n_features)``.
            y: True labels, one per row of ``X`` (a column is read as a 1-D array).
            sample_weight: Non-negative weight per sample; ``None`` weighs
                all alike.
        """
        where = "SoftmaxClassifier.score"
        predicted = self.predict(X)
        labels = np.asarray(y)
        if labels.shape == (len(predicted), 1):
            labels = labels[:, 0]
        if labels.shape != predicted.shape:
            fail(
                where,
                "y",
                f"a 1-D array of {len(predicted)} labels, one per row of X",
                f"shape {labels.shape}",
            )
        weights = _score_weights(sample_weight, len(predicted), where)
        return float(np.average(predicted == labels, weights=weights))


def _column_as_1d(labels: np.ndarray, n_samples: int) -> np.ndarray:
    """A column of labels ``(n, 1)`` as 1-D, with scikit-learn's ``DataConversionWarning``.

    What scikit-learn's classifiers do with a column ``y`` (``column_or_1d``
    with ``warn=True``): the labels are read, and the warning says the
    shape was changed, so nothing is reshaped silently.
    """
    if labels.shape != (n_samples, 1):
        return labels
    import warnings

    from sklearn.exceptions import DataConversionWarning

    warnings.warn(
        "A column-vector y was passed when a 1d array was expected. Please change the shape of y to "
        "(n_samples, ), for example using ravel().",
        DataConversionWarning,
        stacklevel=5,  # fit -> _prepare -> _encode_targets -> here: the caller of fit
    )
    return labels[:, 0]


def _check_y_given(y: Any, where: str, owner: str) -> None:
    if y is None:
        raise InvalidArgumentError(
            f"{where}: y must be given; {owner} requires y to be passed, but the target y is None."
        )


def _check_labels(labels: np.ndarray, where: str) -> None:
    """Refuse missing labels (``None``, NaN), labels that cannot be ordered and
    continuous targets (floats that are not whole numbers: a regression target)."""
    if labels.dtype.kind == "c":
        fail(where, "y", "class labels", "complex values", "Complex data not supported.")
    if labels.dtype.kind == "f" and not np.all(np.isfinite(labels)):
        fail(where, "y", "class labels without NaN or infinite values", "NaN or inf", "Drop those rows.")
    if labels.dtype.kind == "f" and np.any(labels != np.round(labels)):
        fail(
            where,
            "y",
            "class labels",
            "a continuous target (floats that are not whole numbers)",
            "For a regression target use LinearRegressor; for classes, pass int or str labels.",
        )
    if labels.dtype.kind == "O":
        if any(label is None or (isinstance(label, float) and label != label) for label in labels.ravel()):
            fail(where, "y", "class labels without None or NaN", "a missing label", "Drop those rows.")
        try:
            np.unique(labels)
        except TypeError:
            fail(where, "y", "labels of one kind that can be sorted", "mixed types", "Use str or int labels.")


def _score_weights(sample_weight: Any, n_samples: int, where: str) -> np.ndarray | None:
    """``sample_weight`` as ``n_samples`` finite non-negative floats that do not all vanish, or ``None``."""
    if sample_weight is None:
        return None
    try:
        weights = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError):
        fail(where, "sample_weight", "an array of numbers", type(sample_weight).__name__)
    if weights.shape != (n_samples,):
        fail(
            where,
            "sample_weight",
            f"of shape ({n_samples},), one weight per row of X",
            f"shape {weights.shape}",
        )
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or not np.any(weights > 0):
        fail(where, "sample_weight", "finite, non-negative and not all zero", "other weights")
    return weights


def _score_targets(y: Any, shape: tuple[int, ...], where: str) -> np.ndarray:
    """``y`` as floats of exactly the predictions' shape (a column is not broadcast to n x n)."""
    try:
        truth = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        fail(where, "y", "an array of numbers", type(y).__name__)
    if len(shape) == 1 and truth.shape == (shape[0], 1):
        truth = truth[:, 0]  # A column of one target, as scikit-learn's scorers accept it.
    if truth.shape != shape:
        fail(where, "y", f"of shape {shape}, like the predictions", f"shape {truth.shape}")
    return truth
