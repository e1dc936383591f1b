"""The LR range test of a scikit-learn estimator: one ``partial_fit`` per step.

Each step sets a constant learning rate on a private copy of the estimator
(``eta0`` for ``SGDClassifier`` / ``SGDRegressor``, ``learning_rate_init``
and the cached optimizer's rate for ``MLPClassifier`` / ``MLPRegressor``),
records the loss of the next mini-batch under the current model, then calls
``partial_fit`` on that batch. lrscout's own NumPy models go to
:func:`lrscout.models.find_lr`.
"""

from __future__ import annotations

import contextlib
import copy
import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

from .._batching import as_generator, gd_variant, steps_per_epoch
from .._engine import RangeTestState, range_test
from .._global_rng import GlobalRNG
from .._plan import Plan, resolve_plan
from .._result import RangeTestResult
from .._validation import check_batch_size, check_bool, fail
from ..models import GDEstimator
from ..models import find_lr as _find_lr_numpy
from ..models._find_lr import _batch_stream

_WHERE = "find_lr"
_SGD = (SGDClassifier, SGDRegressor)
_MLP = (MLPClassifier, MLPRegressor)
_SUPPORTED = "SGDClassifier, SGDRegressor, MLPClassifier, MLPRegressor or an lrscout.models estimator"
_MLP_SOLVERS = {"sgd": "SGD", "adam": "Adam"}

LossFunction = Callable[[np.ndarray, np.ndarray, float], np.ndarray]


def _hinge(p: np.ndarray, y: np.ndarray, epsilon: float) -> np.ndarray:
    loss: np.ndarray = np.maximum(0.0, 1.0 - p * y)
    return loss


def _squared_hinge(p: np.ndarray, y: np.ndarray, epsilon: float) -> np.ndarray:
    loss: np.ndarray = np.maximum(0.0, 1.0 - p * y) ** 2
    return loss


def _perceptron(p: np.ndarray, y: np.ndarray, epsilon: float) -> np.ndarray:
    loss: np.ndarray = np.maximum(0.0, -p * y)
    return loss


def _log_loss(p: np.ndarray, y: np.ndarray, epsilon: float) -> np.ndarray:
    loss: np.ndarray = np.logaddexp(0.0, -p * y)
    return loss


def _modified_huber(p: np.ndarray, y: np.ndarray, epsilon: float) -> np.ndarray:
    z = p * y
    loss: np.ndarray = np.where(z >= 1.0, 0.0, np.where(z >= -1.0, (1.0 - z) ** 2, -4.0 * z))
    return loss


def _squared_error(p: np.ndarray, y: np.ndarray, epsilon: float) -> np.ndarray:
    loss: np.ndarray = 0.5 * (p - y) ** 2
    return loss


def _huber(p: np.ndarray, y: np.ndarray, epsilon: float) -> np.ndarray:
    r = np.abs(p - y)
    loss: np.ndarray = np.where(r <= epsilon, 0.5 * r**2, epsilon * (r - 0.5 * epsilon))
    return loss


def _epsilon_insensitive(p: np.ndarray, y: np.ndarray, epsilon: float) -> np.ndarray:
    loss: np.ndarray = np.maximum(0.0, np.abs(p - y) - epsilon)
    return loss


def _squared_epsilon_insensitive(p: np.ndarray, y: np.ndarray, epsilon: float) -> np.ndarray:
    loss: np.ndarray = np.maximum(0.0, np.abs(p - y) - epsilon) ** 2
    return loss


#: The per-sample loss ``L(p, y)`` of each ``loss`` of ``SGDClassifier`` and
#: ``SGDRegressor``, as scikit-learn's SGD minimises it: ``p`` the decision
#: value, ``y`` the target (``±1`` for a classifier's one-vs-rest problem),
#: ``epsilon`` the estimator's ``epsilon``.
SGD_LOSSES: dict[str, LossFunction] = {
    "hinge": _hinge,
    "squared_hinge": _squared_hinge,
    "perceptron": _perceptron,
    "log_loss": _log_loss,
    "modified_huber": _modified_huber,
    "squared_error": _squared_error,
    "huber": _huber,
    "epsilon_insensitive": _epsilon_insensitive,
    "squared_epsilon_insensitive": _squared_epsilon_insensitive,
}


def find_lr(
    estimator: Any,
    X: Any,
    y: Any,
    *,
    batch_size: int | None = 32,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    mode: str = "exponential",
    smoothing: float = 0.98,
    divergence_factor: float = 4.0,
    stop_on_divergence: bool = True,
    extend: bool = True,
    schedule: str = "auto",
    total_steps: int | None = None,
    epochs: float | None = None,
    random_state: int | np.random.Generator | None = None,
    progress: bool = True,
) -> RangeTestResult:
    """Run an LR range test on a copy of a scikit-learn estimator; ``estimator`` is not changed.

    Step ``t`` takes the next mini-batch (epoch after epoch, from
    :func:`lrscout.minibatches` seeded by ``random_state``), records its loss
    under the current model, then calls ``partial_fit`` on it at the constant
    learning rate ``lr_t`` of the ramp:

    - ``SGDClassifier`` / ``SGDRegressor``: ``learning_rate="constant"``,
      ``eta0=lr_t``. One ``partial_fit`` is one pass of per-sample updates
      over the batch, so each update sees one sample: ``info["batch_size"]``
      is 1 (what the default suggestion reads) and
      ``info["partial_fit_batch_size"]`` the batch. The loss is the
      estimator's objective on the batch,

      .. math:: \\frac{1}{m} \\sum_i w_i L(p_i, y_i) + \\alpha R(w)

      with ``L`` its ``loss`` (see :data:`SGD_LOSSES`), ``R`` its ``penalty``
      (``l2``: ``||w||^2 / 2``; ``l1``: ``||w||_1``; ``elasticnet``: their
      mix by ``l1_ratio``), ``w_i`` its ``class_weight``; for more than two
      classes, the mean over the one-vs-rest problems it trains. With
      ``average`` the decision values are those of the averaged model,
      which ``predict`` uses.
    - ``MLPClassifier`` / ``MLPRegressor`` (``solver`` ``"sgd"`` or
      ``"adam"``): ``learning_rate="constant"``, ``learning_rate_init=lr_t``,
      and ``batch_size`` the batch, so one ``partial_fit`` is one update; the
      optimizer that the first call creates caches the rate, so it is set
      there too before each later step. The loss is the ``loss_curve_``
      entry of that call: the batch's loss (L2 term included) computed
      before the update.

    A fresh estimator is copied with ``sklearn.base.clone`` and starts as
    ``partial_fit`` would. A fitted one is deep-copied and starts from its
    fitted weights with a fresh optimizer state (no momentum or Adam moments
    carried over), as ``warm_start=True`` would: the test then measures the
    model the user has, not a re-initialised one. The copy also runs with
    ``early_stopping=False`` and ``verbose=0`` (neither applies to a
    ``partial_fit`` step). scikit-learn's ``ConvergenceWarning`` and the
    overflow warnings of a diverging step are silenced inside; a step whose
    update overflows (scikit-learn raises) records an infinite loss, which
    ends the test (``stop_reason == "non-finite"``).

    Args:
        estimator: ``SGDClassifier``, ``SGDRegressor``, ``MLPClassifier``,
            ``MLPRegressor`` (or subclasses), fitted or not; or an
            lrscout.models estimator, handed to :func:`lrscout.models.find_lr`
            with the same arguments.
        X: Training inputs, ``(n_samples, n_features)``: a finite numeric
            array (float32 is kept) or a SciPy sparse matrix.
        y: Class labels for a classifier (at least two classes; a fitted one
            knows them all), real targets for a regressor (``(n_samples,)``,
            or ``(n_samples, n_targets)`` for ``MLPRegressor``).
        batch_size: Samples per step; ``None`` is the whole set.
        start_lr, end_lr, num_steps, mode, smoothing, divergence_factor,
        stop_on_divergence, extend, progress: As in :func:`lrscout.range_test`.
        schedule: The schedule the suggestion is for (see
            :meth:`lrscout.RangeTestResult.suggest`); ``"auto"`` is the
            estimator's ``fit``: constant.
        total_steps: ``partial_fit`` batches of the training; defaults to
            ``max_iter`` epochs of ``batch_size`` when ``tol`` is ``None``
            (else ``fit`` stops when the loss settles: not known).
        epochs: Epochs of the training instead of ``total_steps``.
        random_state: Seed or ``numpy.random.Generator`` for the batch order;
            ``None`` draws fresh entropy. The estimator's own
            ``random_state`` still seeds its initial weights and the order
            within a batch; when it is ``None``, scikit-learn draws them
            from NumPy's global random state, which is put back afterwards
            (also after an error): the test leaves no trace there either.

    Returns:
        The :class:`lrscout.RangeTestResult`; ``info`` holds ``framework``
        (``"sklearn"``), ``estimator``, ``loss``, ``optimizer`` (``"SGD"`` or
        ``"Adam"``), ``momentum`` (an MLP's with ``solver="sgd"``, else 0),
        ``batch_size``, ``n_samples``, ``variant``, ``warm_start`` (started
        from fitted weights) and ``rerun_hint``.

    Raises:
        InvalidArgumentError: On a bad argument, naming it: an unsupported
            estimator, solver, ``loss`` or ``class_weight``; ``X`` that is not
            finite, numeric and 2-D; ``y`` that does not match ``X`` or the
            fitted estimator; a bad ``batch_size`` or ramp setting.

    Example:
        >>> from sklearn.linear_model import SGDRegressor
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(256, 3))
        >>> y = X @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=256)
        >>> result = find_lr(SGDRegressor(random_state=0), X, y, start_lr=1e-5, random_state=0)
        >>> result.info["optimizer"], result.info["batch_size"], result.stop_reason
        ('SGD', 1, 'diverged')
        >>> bool(1e-3 < result.suggestion.lr < 1.0)
        True
    """
    ramp: dict[str, Any] = {
        "start_lr": start_lr,
        "end_lr": end_lr,
        "num_steps": num_steps,
        "mode": mode,
        "smoothing": smoothing,
        "divergence_factor": divergence_factor,
        "stop_on_divergence": stop_on_divergence,
        "extend": extend,
    }
    RangeTestState(**ramp, where=_WHERE)  # the ramp's settings, checked under this function's name
    show = check_bool(progress, "progress", where=_WHERE)
    if isinstance(estimator, GDEstimator):
        return _find_lr_numpy(
            estimator,
            X,
            y,
            batch_size=batch_size,
            random_state=random_state,
            progress=show,
            schedule=schedule,
            total_steps=total_steps,
            epochs=epochs,
            **ramp,
        )
    _check_estimator(estimator)
    batch = check_batch_size(batch_size, where=_WHERE)
    rng = as_generator(random_state, where=_WHERE)
    features = _check_X(X)
    n = features.shape[0]
    fitted = _is_fitted(estimator)
    if fitted and estimator.n_features_in_ != features.shape[1]:
        fail(
            _WHERE,
            "X",
            f"of {estimator.n_features_in_} features, as the fitted estimator",
            f"{features.shape[1]} features",
            "Pass the columns it was fitted on, or an unfitted estimator.",
        )
    classifier = isinstance(estimator, (SGDClassifier, MLPClassifier))
    targets, classes = _check_y(estimator, y, n, classifier, fitted)

    per_epoch = steps_per_epoch(n, batch)
    # fit's own plan: a constant rate (the suggestion is its eta0 / learning_rate_init with
    # learning_rate="constant") for max_iter epochs, counted in partial_fit batches; with a
    # tol, fit stops when the loss settles, and its length is not known.
    epochs_held = None if estimator.tol is not None else int(estimator.max_iter)
    held = Plan(
        "constant",
        None if epochs_held is None else epochs_held * per_epoch,
        "estimator" if epochs_held is None else "estimator (max_iter epochs)",
    )
    plan = resolve_plan(schedule, total_steps, epochs, steps_per_epoch=per_epoch, held=held, where=_WHERE)
    model = _working_copy(estimator, fitted)
    if isinstance(model, _MLP):
        step_fn = _mlp_step_fn(model, features, targets, classes, batch, rng)
        optimizer = _MLP_SOLVERS[model.solver]
        momentum = float(model.momentum) if model.solver == "sgd" else 0.0
        update_batch = batch
    else:
        step_fn = _sgd_step_fn(model, features, targets, classes, batch, rng)
        optimizer, momentum, update_batch = "SGD", 0.0, 1
    info: dict[str, Any] = {
        "framework": "sklearn",
        "estimator": type(estimator).__name__,
        "loss": str(estimator.loss),
        "optimizer": optimizer,
        "momentum": momentum,
        "batch_size": update_batch,
        "n_samples": n,
        "variant": gd_variant(update_batch, n),
        "warm_start": fitted,
        "steps_per_epoch": per_epoch,
        "plan": plan.to_dict(),
        "rerun_hint": "lrscout.sklearn.find_lr(estimator, X, y, batch_size={batch_size})",
    }
    if isinstance(model, _SGD):
        info["partial_fit_batch_size"] = batch
    with GlobalRNG():  # an estimator with random_state=None draws from NumPy's
        return range_test(step_fn, progress=show, info=info, **ramp)


# Checks -------------------------------------------------------------------------


def _check_estimator(estimator: Any) -> None:
    if isinstance(estimator, type):
        fail(
            _WHERE,
            "estimator",
            f"an estimator instance ({_SUPPORTED})",
            f"the class {estimator.__name__}",
            f"Pass {estimator.__name__}(...) instead.",
        )
    if not isinstance(estimator, _SGD + _MLP):
        fail(
            _WHERE,
            "estimator",
            _SUPPORTED,
            type(estimator).__name__,
            "Other estimators have no partial_fit at a learning rate. For a Pipeline, pass its last "
            "step with X transformed by the others: find_lr(pipe[-1], pipe[:-1].fit_transform(X), y).",
        )
    name = type(estimator).__name__
    if isinstance(estimator, _MLP) and estimator.solver not in _MLP_SOLVERS:
        fail(
            _WHERE,
            "estimator",
            f"a {name} with solver 'sgd' or 'adam' (the solvers with partial_fit and a learning rate)",
            estimator.solver,
            "Range-test it with estimator.set_params(solver='adam') or solver='sgd'.",
        )
    if isinstance(estimator, _SGD):
        if estimator.loss not in SGD_LOSSES:
            fail(
                _WHERE,
                "estimator",
                f"a {name} whose loss is one of {', '.join(map(repr, SGD_LOSSES))}",
                estimator.loss,
                "Set one of those with estimator.set_params(loss=...).",
            )
        weights = getattr(estimator, "class_weight", None)
        if weights is not None and not isinstance(weights, dict):
            fail(
                _WHERE,
                "estimator",
                f"a {name} whose class_weight is None or a dict (partial_fit accepts no other)",
                weights,
                "Pass the weights as a dict, e.g. from sklearn.utils.class_weight.compute_class_weight.",
            )


def _check_X(X: Any) -> Any:
    """``X`` as a float array (float32 kept) or CSR matrix, refused unless 2-D, non-empty and finite."""
    if type(X).__module__.startswith("scipy.sparse"):
        matrix = X.tocsr()
        if matrix.dtype.kind not in "biuf":
            fail(_WHERE, "X", "numeric", f"a sparse matrix of dtype {matrix.dtype}")
        values = matrix.data
    else:
        try:
            raw = np.asarray(X)
            dtype = np.float32 if raw.dtype == np.float32 else np.float64
            matrix = None if raw.dtype.kind == "c" else raw.astype(dtype, copy=False)
        except (TypeError, ValueError) as error:
            fail(_WHERE, "X", "a numeric 2-D array", type(X).__name__, f"({error})")
        if matrix is None:
            fail(_WHERE, "X", "real numbers", "complex values")
        values = matrix
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        fail(
            _WHERE,
            "X",
            "a non-empty 2-D array (n_samples, n_features)",
            f"shape {matrix.shape}",
            "Reshape a single feature with X.reshape(-1, 1).",
        )
    if not np.all(np.isfinite(values)):
        fail(_WHERE, "X", "finite", "NaN or infinite values", "Drop or impute them first.")
    return matrix


def _check_y(estimator: Any, y: Any, n: int, classifier: bool, fitted: bool) -> tuple[np.ndarray, Any]:
    """The targets, checked against ``X`` and a fitted estimator; and the classes of a classifier."""
    if y is None:
        fail(_WHERE, "y", "an array of targets, one per row of X", None)
    raw = np.asarray(y)
    if raw.shape[:1] != (n,):
        fail(_WHERE, "y", f"one target per row of X ({n})", f"shape {raw.shape}")
    if classifier:
        if raw.ndim != 1:
            fail(_WHERE, "y", "a 1-D array of class labels", f"shape {raw.shape}", "Pass y.ravel().")
        try:
            kind = type_of_target(raw)
        except ValueError as error:
            fail(_WHERE, "y", "class labels", f"labels scikit-learn refuses ({error})")
        if kind not in ("binary", "multiclass"):
            fail(
                _WHERE,
                "y",
                "1-D class labels (binary or multiclass)",
                f"a {kind} target",
                "For real targets use a regressor.",
            )
        classes = estimator.classes_ if fitted else np.unique(raw)
        unknown = np.setdiff1d(raw, classes)
        if unknown.size:
            fail(
                _WHERE,
                "y",
                f"labels the fitted estimator knows ({classes.tolist()!r})",
                f"also {unknown.tolist()[:10]!r}",
            )
        if len(classes) < 2:
            fail(_WHERE, "y", "labels of at least 2 classes", f"only {classes.tolist()!r}")
        return raw, classes
    try:
        targets = raw.astype(np.float64)
    except (TypeError, ValueError):
        fail(_WHERE, "y", "real numbers", f"dtype {raw.dtype}")
    ndims = (1, 2) if isinstance(estimator, MLPRegressor) else (1,)
    if targets.ndim not in ndims:
        fail(
            _WHERE,
            "y",
            "1-D" if ndims == (1,) else "1-D or 2-D",
            f"shape {targets.shape}",
            "Pass y.ravel() for one target." if ndims == (1,) else "",
        )
    if not np.all(np.isfinite(targets)):
        fail(_WHERE, "y", "finite", "NaN or infinite values")
    if (
        fitted
        and isinstance(estimator, MLPRegressor)
        and estimator.n_outputs_ != targets.reshape(n, -1).shape[1]
    ):
        fail(
            _WHERE,
            "y",
            f"of {estimator.n_outputs_} target(s), as the fitted estimator",
            f"shape {targets.shape}",
        )
    return targets, None


def _is_fitted(estimator: Any) -> bool:
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    return True


def _working_copy(estimator: Any, fitted: bool) -> Any:
    """The estimator the test trains: a clone, or a deep copy of the fitted one with a fresh optimizer."""
    model = copy.deepcopy(estimator) if fitted else clone(estimator)
    if fitted and hasattr(model, "_optimizer"):
        # As warm_start=True: the fitted weights, with no momentum or moments from their training.
        del model._optimizer
    model.set_params(learning_rate="constant", early_stopping=False, verbose=0)
    return model


# Steps ---------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No convergence or overflow warnings out of a step: the test drives the model there on purpose."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _fit_kwargs(classes: Any) -> dict[str, Any]:
    return {} if classes is None else {"classes": classes}


def _sgd_step_fn(
    model: Any, X: Any, y: np.ndarray, classes: Any, batch: int | None, rng: np.random.Generator
) -> Callable[[float], float]:
    batches = _batch_stream(X.shape[0], batch, True, rng)
    kwargs = _fit_kwargs(classes)

    def step_fn(lr: float) -> float:
        idx = next(batches)
        X_batch, y_batch = X[idx], y[idx]
        with _quiet():
            loss = _sgd_objective(model, X_batch, y_batch, classes)
            model.eta0 = lr
            try:
                model.partial_fit(X_batch, y_batch, **kwargs)
            except ValueError as error:
                if "under-/overflow" not in str(error):
                    raise
                return math.inf  # the update at lr left the floating-point range: diverged
        return loss

    return step_fn


def _mlp_step_fn(
    model: Any, X: Any, y: np.ndarray, classes: Any, batch: int | None, rng: np.random.Generator
) -> Callable[[float], float]:
    batches = _batch_stream(X.shape[0], batch, True, rng)
    kwargs = _fit_kwargs(classes)

    def step_fn(lr: float) -> float:
        idx = next(batches)
        model.learning_rate_init = lr
        model.batch_size = len(idx)  # one update per partial_fit
        optimizer = getattr(model, "_optimizer", None)
        if optimizer is not None:
            # Made by the first partial_fit from learning_rate_init, then kept:
            # SGD steps with its learning_rate, Adam rescales learning_rate_init.
            optimizer.learning_rate_init = lr
            optimizer.learning_rate = lr
        with _quiet():
            try:
                model.partial_fit(X[idx], y[idx], **kwargs)
            except ValueError as error:
                if "non-finite" not in str(error):
                    raise
                return math.inf  # the update at lr made the weights non-finite: diverged
        return float(model.loss_curve_[-1])

    return step_fn


def _sgd_objective(model: Any, X: Any, y: np.ndarray, classes: Any) -> float:
    """The objective of an SGD estimator on one batch, as its ``partial_fit`` minimises it.

    ``(1/m) sum_i w_i L(p_i, y_i) + alpha R(coef)``; for a classifier with
    ``K > 2`` classes, the mean over its ``K`` one-vs-rest problems (targets
    ``±1``, positive weight ``class_weight[k]``, negative 1); with two, one
    problem with classes ``classes[1]`` (+1, weight ``class_weight[1]``) and
    ``classes[0]`` (-1, ``class_weight[0]``). An estimator not fitted yet
    has the zero weights that ``partial_fit`` starts from.
    """
    loss_fn = SGD_LOSSES[model.loss]
    epsilon = float(getattr(model, "epsilon", 0.0))
    started = hasattr(model, "coef_")
    m = X.shape[0]
    if classes is None:
        p = model.predict(X) if started else np.zeros(m)
        data = np.array([np.mean(loss_fn(p, y, epsilon))])
        coef = np.atleast_2d(model.coef_) if started else None
    else:
        k = len(classes)
        decision = model.decision_function(X) if started else np.zeros(m if k == 2 else (m, k))
        P = decision.reshape(m, -1)
        weights = _class_weights(model.class_weight, classes)
        if k == 2:
            positive = (y == classes[1])[:, None]
            W = np.where(positive, weights[1], weights[0])
        else:
            positive = y[:, None] == classes[None, :]
            W = np.where(positive, weights[None, :], 1.0)
        Y = np.where(positive, 1.0, -1.0)
        data = np.mean(W * loss_fn(P, Y, epsilon), axis=0)
        coef = model.coef_ if started else None
    penalty = np.zeros_like(data) if coef is None else _penalty(model, coef)
    return float(np.mean(data + penalty))


def _class_weights(class_weight: dict[Any, float] | None, classes: np.ndarray) -> np.ndarray:
    if class_weight is None:
        return np.ones(len(classes))
    return np.array([float(class_weight.get(label, 1.0)) for label in classes.tolist()])


def _penalty(model: Any, coef: np.ndarray) -> np.ndarray:
    """``alpha R(w)`` of each row of ``coef`` (one per one-vs-rest problem),
    ``R(w) = (1 - rho) ||w||^2 / 2 + rho ||w||_1`` with ``rho`` 0 for ``l2``,
    1 for ``l1``, ``l1_ratio`` for ``elasticnet``."""
    if model.penalty is None:
        return np.zeros(coef.shape[0])
    rho = {"l2": 0.0, "l1": 1.0}.get(model.penalty, float(model.l1_ratio))
    squares, absolute = 0.5 * np.sum(coef**2, axis=1), np.sum(np.abs(coef), axis=1)
    penalty: np.ndarray = float(model.alpha) * ((1.0 - rho) * squares + rho * absolute)
    return penalty
