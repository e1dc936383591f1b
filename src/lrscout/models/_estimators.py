"""Linear models trained by batch, stochastic or mini-batch gradient descent.

The ``batch_size`` hyperparameter picks the variant: ``None`` updates once per
pass over the data (batch GD), ``1`` once per sample (stochastic GD), ``k``
once per ``k`` samples (mini-batch GD). Gradients are analytic and vectorised
over each batch; with numba installed, whole epochs run compiled.
"""

from __future__ import annotations

import abc
import inspect
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .._batching import as_generator, steps_per_epoch
from .._errors import InvalidArgumentError
from .._validation import check_batch_size, check_bool, check_float, check_int

_USE_KERNELS: bool | None = None


class DivergenceWarning(RuntimeWarning):
    """Training ended with a non-finite loss: the learning rate was too high."""


def _kernels() -> Any:
    """The compiled epoch loops, or ``None`` when numba is not installed."""
    global _USE_KERNELS
    if _USE_KERNELS is False:
        return None
    try:
        from . import _kernels as kernels
    except ImportError:
        _USE_KERNELS = False
        return None
    if not _USE_KERNELS:
        # Compile (or load from numba's cache) now, so that the first
        # epoch_times_ entry measures training and not compilation.
        X, order, W, b = np.zeros((2, 1)), np.arange(2), np.zeros((2, 1)), np.zeros(2)
        rates = np.zeros(2)
        kernels.linear_epoch(
            X,
            X.copy(),
            order,
            1,
            W[:1],
            b[:1],
            W[:1].copy(),
            b[:1].copy(),
            rates,
            0.0,
            0.0,
            True,
            np.zeros(2),
        )
        kernels.softmax_epoch(
            X, order, order, 1, W, b, W.copy(), b.copy(), rates, 0.0, 0.0, True, np.zeros(2)
        )
        _USE_KERNELS = True
    return kernels


class GDEstimator(abc.ABC):
    """Shared machinery: hyperparameters, parameter state, the update rule.

    Subclasses define the loss (``_loss_grad``), how targets are encoded
    (``_encode_targets``) and the compiled epoch (``_kernel_name``).
    """

    _kernel_name = ""

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
    ) -> None:
        self.lr = lr
        self.batch_size = batch_size
        self.epochs = epochs
        self.momentum = momentum
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.shuffle = shuffle
        self.random_state = random_state

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

    @staticmethod
    def _check_X(X: Any, where: str, n_features: int | None = None) -> np.ndarray:
        try:
            array = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidArgumentError(
                f"{where}: X must be a numeric 2-D array; got {type(X).__name__}."
            ) from None
        if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
            raise InvalidArgumentError(
                f"{where}: X must be a non-empty 2-D array (n_samples, n_features); got shape {array.shape}. "
                "Reshape a single feature with X.reshape(-1, 1)."
            )
        if not np.all(np.isfinite(array)):
            raise InvalidArgumentError(f"{where}: X must be finite; it holds NaN or infinite values.")
        if n_features is not None and array.shape[1] != n_features:
            raise InvalidArgumentError(
                f"{where}: X must have {n_features} features, as in fit; got {array.shape[1]}."
            )
        return np.ascontiguousarray(array)

    def _check_fitted(self, where: str) -> None:
        if not hasattr(self, "coef_"):
            raise InvalidArgumentError(
                f"{where}: this {type(self).__name__} is not fitted yet; call fit(X, y) first."
            )

    # Subclass hooks -------------------------------------------------------------

    @abc.abstractmethod
    def _encode_targets(self, y: Any, n_samples: int, where: str) -> tuple[np.ndarray, int, dict[str, Any]]:
        """Targets as the loss wants them, the number of outputs, and the
        attributes that ``fit`` sets from them (``classes_``, ...).

        Must not change ``self``: ``find_lr`` encodes targets too.
        """

    @abc.abstractmethod
    def _loss_grad(
        self, W: np.ndarray, b: np.ndarray, X: np.ndarray, T: np.ndarray, *, grad: bool = True
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """Objective on batch ``(X, T)`` and its gradients (empty when ``grad=False``)."""

    # Training -----------------------------------------------------------------

    def _prepare(self, X: Any, y: Any, where: str) -> tuple[np.ndarray, np.ndarray, int, dict[str, Any]]:
        self._check_params(where)
        state = self._state()
        array = self._check_X(X, where, None if state is None else state[0].shape[1])
        return (array, *self._encode_targets(y, array.shape[0], where))

    def _objective(self, W: np.ndarray, b: np.ndarray, X: np.ndarray, T: np.ndarray) -> float:
        return self._loss_grad(W, b, X, T, grad=False)[0]

    def fit(self, X: Any, y: Any) -> GDEstimator:
        """Train from zero weights for ``epochs`` passes over ``(X, y)``.

        Sets ``coef_``, ``intercept_``, ``loss_history_`` (loss of each
        update's batch, before the update), ``epoch_losses_`` (objective on the
        whole set after each epoch), ``epoch_times_`` (seconds of updates per
        epoch), ``n_updates_`` (``epochs * steps_per_epoch``).

        Returns:
            ``self``.
        """
        where = f"{type(self).__name__}.fit"
        self._forget()
        X_, T, n_outputs, fitted = self._prepare(X, y, where)
        W = np.zeros((n_outputs, X_.shape[1]))
        b = np.zeros(n_outputs)
        for name, value in fitted.items():
            setattr(self, name, value)
        self._train(X_, T, W, b, where)
        return self

    def _forget(self) -> None:
        """Drop what an earlier fit learned, so a refit starts fresh."""
        for name in [n for n in vars(self) if n.endswith("_") and not n.startswith("_")]:
            delattr(self, name)

    def _train(self, X: np.ndarray, T: np.ndarray, W: np.ndarray, b: np.ndarray, where: str) -> None:
        n = X.shape[0]
        batch = n if self.batch_size is None else min(int(self.batch_size), n)
        steps = steps_per_epoch(n, batch)
        epochs = int(self.epochs)
        lrs = self._learning_rates(epochs * steps, where)
        rng = as_generator(self.random_state, where=where)
        momentum, alpha, intercept = float(self.momentum), float(self.alpha), bool(self.fit_intercept)
        VW, Vb = np.zeros_like(W), np.zeros_like(b)
        history = np.empty(epochs * steps)
        epoch_losses = np.empty(epochs)
        epoch_times = np.empty(epochs)
        kernels = _kernels()
        epoch_fn = None if kernels is None else getattr(kernels, self._kernel_name)
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

    @abc.abstractmethod
    def _state(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(W, b)`` as 2-D / 1-D copies when fitted, else ``None``."""

    def _step_fn(
        self, X: np.ndarray, T: np.ndarray, n_outputs: int, batch_size: int | None, rng: np.random.Generator
    ) -> Callable[[float], float]:
        """A range-test ``step_fn`` that trains a private copy of the parameters.

        Starts from the fitted parameters when there are any, else from
        zeros as ``fit`` does; draws batches epoch after epoch, reshuffled
        per epoch when ``shuffle`` is set.
        """
        n, d = X.shape
        state = self._state()
        W, b = (np.zeros((n_outputs, d)), np.zeros(n_outputs)) if state is None else state
        VW, Vb = np.zeros_like(W), np.zeros_like(b)
        batches = _batch_stream(n, n if batch_size is None else min(batch_size, n), bool(self.shuffle), rng)
        momentum = float(self.momentum)

        def step_fn(lr: float) -> float:
            idx = next(batches)
            return self._update(W, b, VW, Vb, X[idx], T[idx], lr, momentum)

        return step_fn


def _batch_stream(n: int, batch: int, shuffle: bool, rng: np.random.Generator) -> Iterator[np.ndarray]:
    steps = steps_per_epoch(n, batch)
    while True:
        order = rng.permutation(n) if shuffle else np.arange(n)
        for step in range(steps):
            yield order[step * batch : (step + 1) * batch]


def _penalty(W: np.ndarray, alpha: float) -> float:
    return 0.5 * alpha * float(np.vdot(W, W)) if alpha else 0.0


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
    _single_target: bool
    coef_: np.ndarray
    intercept_: float | np.ndarray

    def _encode_targets(self, y: Any, n_samples: int, where: str) -> tuple[np.ndarray, int, dict[str, Any]]:
        try:
            targets = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"{where}: y must be numeric; got {type(y).__name__}.") from None
        if targets.ndim not in (1, 2) or targets.shape[0] != n_samples:
            raise InvalidArgumentError(
                f"{where}: y must have shape ({n_samples},) or ({n_samples}, n_targets) to match X; "
                f"got {targets.shape}."
            )
        if not np.all(np.isfinite(targets)):
            raise InvalidArgumentError(f"{where}: y must be finite; it holds NaN or infinite values.")
        T = np.ascontiguousarray(targets.reshape(n_samples, -1))
        return T, T.shape[1], {"_single_target": targets.ndim == 1}

    def _loss_grad(
        self, W: np.ndarray, b: np.ndarray, X: np.ndarray, T: np.ndarray, *, grad: bool = True
    ) -> tuple[float, np.ndarray, np.ndarray]:
        R = X @ W.T + b - T
        m = X.shape[0]
        loss = 0.5 * float(np.vdot(R, R)) / m + _penalty(W, self.alpha)
        if not grad:
            return loss, W[:0], b[:0]
        gW = R.T @ X / m
        if self.alpha:
            gW += self.alpha * W
        return loss, gW, R.mean(axis=0)

    def _set_fitted(self, W: np.ndarray, b: np.ndarray) -> None:
        if self._single_target:
            self.coef_ = W[0].copy()
            self.intercept_ = float(b[0])
        else:
            self.coef_ = W.copy()
            self.intercept_ = b.copy()

    def _state(self) -> tuple[np.ndarray, np.ndarray] | None:
        if not hasattr(self, "coef_"):
            return None
        return np.atleast_2d(self.coef_).copy(), np.atleast_1d(
            np.asarray(self.intercept_, dtype=np.float64)
        ).copy()

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets, ``X @ coef_.T + intercept_``."""
        where = "LinearRegressor.predict"
        self._check_fitted(where)
        W, b = self._state()  # type: ignore[misc]
        out: np.ndarray = self._check_X(X, where, W.shape[1]) @ W.T + b
        return out[:, 0] if self._single_target else out

    def score(self, X: Any, y: Any) -> float:
        """Coefficient of determination R^2 (averaged over targets)."""
        predicted = self.predict(X)
        truth = np.asarray(y, dtype=np.float64).reshape(predicted.shape)
        residual = ((truth - predicted) ** 2).sum(axis=0)
        total = ((truth - truth.mean(axis=0)) ** 2).sum(axis=0)
        return float(np.mean(1.0 - residual / total))


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
    classes_: np.ndarray
    coef_: np.ndarray
    intercept_: np.ndarray

    def _encode_targets(self, y: Any, n_samples: int, where: str) -> tuple[np.ndarray, int, dict[str, Any]]:
        labels = np.asarray(y)
        if labels.ndim != 1 or labels.shape[0] != n_samples:
            raise InvalidArgumentError(
                f"{where}: y must be a 1-D array of {n_samples} class labels to match X; "
                f"got shape {labels.shape}."
            )
        if hasattr(self, "classes_"):
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
                f"{where}: y must hold at least 2 classes; got only {classes.tolist()!r}."
            )
        return np.ascontiguousarray(encoded.astype(np.int64)), len(classes), {"classes_": classes}

    def _loss_grad(
        self, W: np.ndarray, b: np.ndarray, X: np.ndarray, T: np.ndarray, *, grad: bool = True
    ) -> tuple[float, np.ndarray, np.ndarray]:
        Z = X @ W.T + b
        Z -= Z.max(axis=1, keepdims=True)
        E = np.exp(Z)
        total = E.sum(axis=1)
        m = X.shape[0]
        rows = np.arange(m)
        loss = float(np.mean(np.log(total) - Z[rows, T])) + _penalty(W, self.alpha)
        if not grad:
            return loss, W[:0], b[:0]
        P = E / total[:, None]
        P[rows, T] -= 1.0
        gW = P.T @ X / m
        if self.alpha:
            gW += self.alpha * W
        return loss, gW, P.mean(axis=0)

    def _set_fitted(self, W: np.ndarray, b: np.ndarray) -> None:
        self.coef_ = W.copy()
        self.intercept_ = b.copy()

    def _state(self) -> tuple[np.ndarray, np.ndarray] | None:
        if not hasattr(self, "coef_"):
            return None
        return self.coef_.copy(), self.intercept_.copy()

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        where = "SoftmaxClassifier.predict_proba"
        self._check_fitted(where)
        Z = self._check_X(X, where, self.coef_.shape[1]) @ self.coef_.T + self.intercept_
        Z -= Z.max(axis=1, keepdims=True)
        E = np.exp(Z)
        probabilities: np.ndarray = E / E.sum(axis=1, keepdims=True)
        return probabilities

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each sample."""
        probabilities = self.predict_proba(X)
        labels: np.ndarray = self.classes_[np.argmax(probabilities, axis=1)]
        return labels

    def score(self, X: Any, y: Any) -> float:
        """Accuracy."""
        return float(np.mean(self.predict(X) == np.asarray(y)))
