"""scikit-learn: lrscout.sklearn.find_lr on SGD and MLP estimators, and lrscout's own
estimators as real scikit-learn estimators, against closed forms and scikit-learn's own results."""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression, SGDClassifier, SGDRegressor
from sklearn.metrics import accuracy_score, hinge_loss, log_loss, r2_score
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted

import lrscout
import lrscout.models
from lrscout import InvalidArgumentError, minibatches
from lrscout.cli._data import load_dataset
from lrscout.cli._find_lr import FindLRSettings
from lrscout.cli._sklearn import run_find_lr
from lrscout.models import LinearRegressor, SoftmaxClassifier
from lrscout.sklearn import SGD_LOSSES, find_lr

# A ramp that runs every step: the closed forms below are checked at each one.
FULL = {"extend": False, "stop_on_divergence": False}
# A ramp that stops once the raw loss passes 4 times its best.
RAW = {"extend": False, "smoothing": 0.0}


def _batches(n, batch_size, seed):
    """The batch order find_lr draws: epoch after epoch from one seeded generator."""
    rng = np.random.default_rng(seed)
    while True:
        yield from minibatches(n, batch_size, random_state=rng)


def _unit_column(n=16):
    """One feature of ±1 (mean 0, x^2 = 1), so every Hessian below is the identity."""
    return np.tile([[1.0], [-1.0]], (n // 2, 1))


def _classification(n=120, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=2.0, size=(k, d))
    labels = rng.integers(0, k, size=n)
    return centers[labels] + rng.normal(size=(n, d)), labels


def _regression(n=100, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, X @ rng.normal(size=d) + 0.5 + 0.1 * rng.normal(size=n)


# Learning rates and losses against closed forms -------------------------------------


def _fitted_sgd_on_unit_column():
    """An SGDRegressor (no intercept, no penalty) with a weight w0 != 0 on the ±1 column."""
    X = _unit_column()
    estimator = SGDRegressor(fit_intercept=False, penalty=None, max_iter=1, tol=None, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X, 3.0 * X[:, 0])
    return estimator, X


def test_sgd_regressor_loss_follows_the_closed_form_and_diverges_past_lr_2():
    # Per-sample SGD on 0.5 (w x)^2 with x^2 = 1 (targets 0) multiplies w by (1 - lr) at
    # every sample, so a batch of m samples multiplies the loss by (1 - lr)^(2m): stable
    # exactly for lr < 2. The test starts from the fitted weight w0.
    estimator, X = _fitted_sgd_on_unit_column()
    w0 = float(estimator.coef_[0])
    y = np.zeros(len(X))
    result = find_lr(estimator, X, y, batch_size=4, start_lr=1e-3, end_lr=1.5, num_steps=30, **FULL)
    factors = np.concatenate([[1.0], np.cumprod((1.0 - result.lrs[:-1]) ** 8)])
    np.testing.assert_allclose(result.losses, 0.5 * w0**2 * factors, rtol=1e-9)
    assert result.info["batch_size"] == 1 and result.info["partial_fit_batch_size"] == 4

    ramp = find_lr(estimator, X, y, batch_size=4, start_lr=1e-2, end_lr=10.0, num_steps=60, **RAW)
    assert ramp.stop_reason == "diverged"
    np.testing.assert_array_equal(np.diff(ramp.losses) > 0, ramp.lrs[:-1] > 2.0)
    # A fresh estimator starts from w = 0: the loss of 0.5 (0 - 3x)^2.
    fresh = find_lr(clone(estimator), X, 3.0 * X[:, 0], batch_size=4, num_steps=5)
    assert fresh.losses[0] == 4.5


def test_mlp_sgd_loss_follows_the_closed_form_and_diverges_past_lr_2():
    # A linear MLP (no hidden layer) on full batches of ±1 inputs: gradient descent on a
    # quadratic with Hessian I, so the loss multiplies by (1 - lr)^2 per step.
    X = _unit_column()
    y = 3.0 * X[:, 0] + 1.0
    estimator = MLPRegressor(hidden_layer_sizes=(), solver="sgd", momentum=0.0, alpha=0.0, random_state=0)
    result = find_lr(estimator, X, y, batch_size=None, start_lr=1e-3, end_lr=1.5, num_steps=25, **FULL)
    factors = np.concatenate([[1.0], np.cumprod((1.0 - result.lrs[:-1]) ** 2)])
    np.testing.assert_allclose(result.losses, result.losses[0] * factors, rtol=1e-9)

    ramp = find_lr(estimator, X, y, batch_size=None, start_lr=1e-2, end_lr=10.0, num_steps=60, **RAW)
    assert ramp.stop_reason == "diverged"
    np.testing.assert_array_equal(np.diff(ramp.losses) > 0, ramp.lrs[:-1] > 2.0)


def _linear_mlp_loss_and_grads(W, b, X, y, alpha):
    """Squared-error loss of a linear MLP as scikit-learn defines it (L2 term / m) and its gradients."""
    m = len(X)
    r = X @ W + b - y[:, None]
    loss = 0.5 * np.mean(r**2) + 0.5 * alpha * np.sum(W**2) / m
    return loss, (X.T @ r + alpha * W) / m, r.mean(axis=0)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_mlp_from_fitted_weights_matches_a_numpy_optimizer_with_fresh_state(solver):
    X, y = _regression(n=40)
    estimator = MLPRegressor(
        hidden_layer_sizes=(), solver=solver, alpha=0.01, momentum=0.9, max_iter=5, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X, y)
    result = find_lr(estimator, X, y, batch_size=None, start_lr=1e-4, end_lr=0.5, num_steps=12, **FULL)
    assert result.info["warm_start"] is True

    W, b = estimator.coefs_[0].copy(), estimator.intercepts_[0].copy()
    state = [np.zeros_like(W), np.zeros_like(b)]
    second = [np.zeros_like(W), np.zeros_like(b)]
    expected = []
    for t, lr in enumerate(result.lrs, start=1):
        loss, gW, gb = _linear_mlp_loss_and_grads(W, b, X, y, 0.01)
        expected.append(loss)
        if solver == "adam":  # Kingma & Ba, with scikit-learn's defaults
            state = [0.9 * m + 0.1 * g for m, g in zip(state, (gW, gb), strict=True)]
            second = [0.999 * v + 0.001 * g**2 for v, g in zip(second, (gW, gb), strict=True)]
            rate = lr * math.sqrt(1 - 0.999**t) / (1 - 0.9**t)
            steps = [-rate * m / (np.sqrt(v) + 1e-8) for m, v in zip(state, second, strict=True)]
        else:  # Nesterov momentum as scikit-learn writes it
            state = [0.9 * v - lr * g for v, g in zip(state, (gW, gb), strict=True)]
            steps = [0.9 * v - lr * g for v, g in zip(state, (gW, gb), strict=True)]
        W, b = W + steps[0], b + steps[1]
    np.testing.assert_allclose(result.losses, expected, rtol=1e-9)


# Losses against scikit-learn's own -------------------------------------------------


@pytest.mark.parametrize("name", sorted(SGD_LOSSES))
def test_each_sgd_loss_equals_scikit_learns_own(name):
    oracle = SGDClassifier(loss=name, epsilon=0.3)._get_loss_function(name)
    p = np.linspace(-3.0, 3.0, 25)
    for target in (-1.0, 1.0, 0.4):
        y = np.full_like(p, target)
        if hasattr(oracle, "py_loss"):
            expected = np.array([oracle.py_loss(pi, yi) for pi, yi in zip(p, y, strict=True)])
        else:
            expected = np.empty_like(p)
            truth = (y > 0).astype(float) if name == "log_loss" else y
            if name == "log_loss" and target not in (-1.0, 1.0):
                continue
            oracle.loss(y_true=truth, raw_prediction=p, sample_weight=None, loss_out=expected)
        np.testing.assert_allclose(SGD_LOSSES[name](p, y, 0.3), expected, rtol=1e-12, atol=1e-15)


def _sgd_replica_losses(estimator, X, y, result, batch_size, seed, loss_of):
    """Step a clone through the same batches and rates; loss_of(model, Xb, yb) before each update."""
    replica = clone(estimator).set_params(learning_rate="constant")
    classes = np.unique(y)
    batches = _batches(len(X), batch_size, seed)
    losses = []
    for lr in result.lrs:
        idx = next(batches)
        losses.append(loss_of(replica, X[idx], y[idx]))
        replica.set_params(eta0=lr).partial_fit(X[idx], y[idx], classes=classes)
    return np.array(losses)


def test_sgd_binary_log_loss_is_sklearns_log_loss_plus_the_penalty():
    X, labels = _classification(k=2)
    y = np.array(["no", "yes"])[labels]
    estimator = SGDClassifier(loss="log_loss", alpha=0.01, random_state=1)
    result = find_lr(estimator, X, y, batch_size=8, random_state=3, end_lr=1.0, num_steps=15, **FULL)

    def loss_of(model, Xb, yb):
        if not hasattr(model, "coef_"):
            return math.log(2.0)
        penalty = 0.5 * 0.01 * np.sum(model.coef_**2)
        return log_loss(yb, model.predict_proba(Xb), labels=["no", "yes"]) + penalty

    expected = _sgd_replica_losses(estimator, X, y, result, 8, 3, loss_of)
    np.testing.assert_allclose(result.losses, expected, rtol=1e-10)


def test_sgd_multiclass_hinge_is_the_mean_of_the_one_vs_rest_hinge_losses():
    X, y = _classification(k=3)
    estimator = SGDClassifier(loss="hinge", penalty="elasticnet", l1_ratio=0.3, alpha=0.01, random_state=0)
    result = find_lr(estimator, X, y, batch_size=16, random_state=5, end_lr=1.0, num_steps=12, **FULL)

    def loss_of(model, Xb, yb):
        if not hasattr(model, "coef_"):
            return 1.0
        D = model.decision_function(Xb)
        per_class = []
        for k, label in enumerate(model.classes_):
            w = model.coef_[k]
            penalty = 0.01 * (0.7 * 0.5 * w @ w + 0.3 * np.abs(w).sum())
            per_class.append(hinge_loss(np.where(yb == label, 1, -1), D[:, k]) + penalty)
        return np.mean(per_class)

    expected = _sgd_replica_losses(estimator, X, y, result, 16, 5, loss_of)
    np.testing.assert_allclose(result.losses, expected, rtol=1e-10)


def test_sgd_class_weight_weighs_each_sample_of_the_objective():
    X, y = _classification(k=2)
    estimator = SGDClassifier(loss="log_loss", penalty=None, class_weight={0: 3.0, 1: 0.5}, random_state=0)
    result = find_lr(estimator, X, y, batch_size=10, random_state=0, end_lr=1.0, num_steps=10, **FULL)

    def loss_of(model, Xb, yb):
        weights = np.where(yb == 1, 0.5, 3.0)
        proba = model.predict_proba(Xb) if hasattr(model, "coef_") else np.full((len(yb), 2), 0.5)
        # log_loss divides by the sum of the weights; the SGD objective by the batch size.
        return log_loss(yb, proba, sample_weight=weights, labels=[0, 1]) * weights.sum() / len(yb)

    expected = _sgd_replica_losses(estimator, X, y, result, 10, 0, loss_of)
    np.testing.assert_allclose(result.losses, expected, rtol=1e-10)


def test_mlp_classifier_loss_is_the_log_loss_of_the_batch_before_its_update():
    X, y = _classification(k=3)
    estimator = MLPClassifier(hidden_layer_sizes=(5,), alpha=0.001, random_state=0)
    result = find_lr(estimator, X, y, batch_size=16, random_state=2, start_lr=1e-4, end_lr=0.1, num_steps=8)
    # The same steps on a clone, its loss read with scikit-learn's log_loss before each update.
    replica = clone(estimator).set_params(learning_rate="constant")
    batches = _batches(len(X), 16, 2)
    for t, lr in enumerate(result.lrs):
        idx = next(batches)
        if t:
            penalty = 0.5 * 0.001 * sum(np.sum(W**2) for W in replica.coefs_) / len(idx)
            expected = log_loss(y[idx], replica.predict_proba(X[idx]), labels=[0, 1, 2]) + penalty
            assert result.losses[t] == pytest.approx(expected, rel=1e-10)
        replica.set_params(learning_rate_init=lr, batch_size=len(idx))
        if t:
            replica._optimizer.learning_rate_init = lr
        replica.partial_fit(X[idx], y[idx], classes=[0, 1, 2])
    assert result.info["optimizer"] == "Adam" and result.info["momentum"] == 0.0


# The estimator passed in --------------------------------------------------------------


def _state(estimator):
    """Every attribute, bitwise (its pickle: arrays, RandomState, optimizer, ...) and by identity."""
    return pickle.dumps(estimator), {name: id(value) for name, value in vars(estimator).items()}


ESTIMATORS = {
    "SGDClassifier": lambda: SGDClassifier(random_state=np.random.RandomState(0)),
    "SGDRegressor": lambda: SGDRegressor(random_state=0, average=True),
    "MLPClassifier": lambda: MLPClassifier(hidden_layer_sizes=(4,), solver="sgd", random_state=0),
    "MLPRegressor": lambda: MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0),
}


def _data_for(estimator):
    return _classification() if is_classifier(estimator) else _regression()


@pytest.mark.parametrize("fitted", [False, True], ids=["fresh", "fitted"])
@pytest.mark.parametrize("kind", sorted(ESTIMATORS))
def test_find_lr_leaves_the_estimator_as_it_was(kind, fitted):
    estimator = ESTIMATORS[kind]()
    X, y = _data_for(estimator)
    if fitted:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            estimator.fit(X, y)
    params = pickle.dumps(estimator.get_params())
    state = _state(estimator)
    result = find_lr(estimator, X, y, random_state=0, num_steps=20, **FULL)
    assert len(result) == 20 and result.info["warm_start"] is fitted
    assert pickle.dumps(estimator.get_params()) == params
    assert _state(estimator) == state


def test_an_interrupted_test_leaves_the_estimator_as_it_was(monkeypatch):
    estimator = SGDClassifier(random_state=0)
    X, y = _classification()
    estimator.fit(X, y)
    state = _state(estimator)
    calls = []
    original = SGDClassifier.partial_fit

    def interrupted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SGDClassifier, "partial_fit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        find_lr(estimator, X, y, num_steps=10)
    assert len(calls) == 3 and _state(estimator) == state


# Behaviour -------------------------------------------------------------------------------


def test_classes_go_to_the_first_partial_fit():
    # Batches of 2 never hold all 3 classes: partial_fit needs classes on its first call.
    X, y = _classification(k=3)
    for estimator in (SGDClassifier(random_state=0), MLPClassifier(hidden_layer_sizes=(3,), random_state=0)):
        result = find_lr(estimator, X, y, batch_size=2, random_state=0, num_steps=10, **FULL)
        assert len(result) == 10


def test_a_fixed_seed_gives_the_same_result():
    X, y = _classification()
    for estimator in (SGDClassifier(random_state=0), MLPClassifier(hidden_layer_sizes=(3,), random_state=0)):
        first = find_lr(estimator, X, y, random_state=4, num_steps=15)
        assert first == find_lr(estimator, X, y, random_state=4, num_steps=15)
        assert not np.array_equal(first.losses, find_lr(estimator, X, y, random_state=5, num_steps=15).losses)


def test_a_diverging_run_ends_as_non_finite():
    X, y = _regression()
    sgd = find_lr(SGDRegressor(random_state=0), X, y, start_lr=1e-3, end_lr=1e300, num_steps=40, **FULL)
    assert sgd.stop_reason == "non-finite" and sgd.losses[-1] == math.inf
    mlp = MLPRegressor(hidden_layer_sizes=(3,), solver="sgd", random_state=0)
    assert find_lr(mlp, X, y, start_lr=1e-3, end_lr=1e9, num_steps=60, **FULL).stop_reason == "non-finite"


@pytest.mark.parametrize(
    ("estimator", "message"),
    [
        (SGDRegressor(random_state=0), "Floating-point under-/overflow occurred at epoch #1."),
        (
            MLPRegressor(hidden_layer_sizes=(3,), random_state=0),
            "Solver produced non-finite parameter weights.",
        ),
    ],
    ids=["sgd", "mlp"],
)
def test_an_update_that_overflows_in_scikit_learn_ends_the_test(monkeypatch, estimator, message):
    # scikit-learn raises these ValueErrors when an update leaves the floating-point range.
    X, y = _regression()
    original = type(estimator).partial_fit
    calls = []

    def overflows_at_the_fifth_step(self, *args, **kwargs):
        calls.append(1)
        original(self, *args, **kwargs)
        if len(calls) == 5:
            raise ValueError(message)
        return self

    monkeypatch.setattr(type(estimator), "partial_fit", overflows_at_the_fifth_step)
    result = find_lr(estimator, X, y, num_steps=20, **FULL)
    assert result.stop_reason == "non-finite" and len(result) == 5 and result.losses[-1] == math.inf

    def fails(self, *args, **kwargs):
        raise ValueError("a bug")

    monkeypatch.setattr(type(estimator), "partial_fit", fails)
    with pytest.raises(ValueError, match=r"^a bug$"):
        find_lr(estimator, X, y, num_steps=20)


def test_no_scikit_learn_warning_leaves_find_lr(monkeypatch):
    original = SGDClassifier.partial_fit

    def warns(self, *args, **kwargs):
        warnings.warn("Maximum number of iteration reached", ConvergenceWarning, stacklevel=2)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SGDClassifier, "partial_fit", warns)
    X, y = _classification()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        find_lr(SGDClassifier(random_state=0), 100 * X, y, end_lr=1e4, num_steps=30, stop_on_divergence=False)
        find_lr(MLPClassifier(solver="sgd", random_state=0), 100 * X, y, end_lr=1e4, num_steps=30)
    assert [w for w in caught if not issubclass(w.category, lrscout.CurveWarning)] == []


def test_sparse_input_gives_the_dense_losses():
    scipy_sparse = pytest.importorskip("scipy.sparse")
    X, y = _classification()
    X[np.abs(X) < 1.0] = 0.0
    estimator = SGDClassifier(fit_intercept=False, random_state=0)
    dense = find_lr(estimator, X, y, random_state=0, num_steps=10, end_lr=1.0, **FULL)
    sparse = find_lr(
        estimator, scipy_sparse.csr_matrix(X), y, random_state=0, num_steps=10, end_lr=1.0, **FULL
    )
    np.testing.assert_allclose(sparse.losses, dense.losses, rtol=1e-10)


def test_float32_input_stays_float32_for_the_mlp():
    X, y = _regression()
    estimator = MLPRegressor(hidden_layer_sizes=(3,), random_state=0)
    result = find_lr(estimator, X.astype(np.float32), y, random_state=0, num_steps=5)
    assert np.all(np.isfinite(result.losses))


def test_info_names_the_run_for_the_default_rule():
    X, y = _classification()
    sgd = find_lr(SGDClassifier(loss="log_loss", random_state=0), X, y, batch_size=16, num_steps=5)
    assert {k: sgd.info[k] for k in ("framework", "estimator", "loss", "optimizer", "momentum")} == {
        "framework": "sklearn",
        "estimator": "SGDClassifier",
        "loss": "log_loss",
        "optimizer": "SGD",
        "momentum": 0.0,
    }
    assert (sgd.info["batch_size"], sgd.info["n_samples"], sgd.info["variant"]) == (1, 120, "stochastic")
    assert sgd.info["rerun_hint"].format(batch_size=64).endswith("find_lr(estimator, X, y, batch_size=64)")
    mlp = MLPClassifier(solver="sgd", momentum=0.7, random_state=0)
    info = find_lr(mlp, X, y, batch_size=16, num_steps=5).info
    assert (info["optimizer"], info["momentum"], info["batch_size"], info["variant"]) == (
        "SGD",
        0.7,
        16,
        "mini-batch",
    )
    nesterov_off = find_lr(mlp.set_params(nesterovs_momentum=False), X, y, num_steps=5).info
    assert nesterov_off["momentum"] == 0.7
    assert (
        find_lr(mlp.set_params(solver="adam"), X, y, batch_size=None, num_steps=5).info["batch_size"] is None
    )


@pytest.mark.parametrize("estimator", [LinearRegressor(lr=0.1), SoftmaxClassifier(lr=0.1)], ids=repr)
def test_lrscouts_own_models_go_to_lrscout_models_find_lr(estimator):
    X, y = _regression() if isinstance(estimator, LinearRegressor) else _classification()
    ramp = {"start_lr": 1e-4, "num_steps": 20, "mode": "linear", "smoothing": 0.5, "extend": False}
    expected = lrscout.models.find_lr(estimator, X, y, batch_size=8, random_state=3, **ramp)
    assert find_lr(estimator, X, y, batch_size=8, random_state=3, **ramp) == expected


# Bad inputs ------------------------------------------------------------------------------

X_OK, Y_OK = _classification(n=30)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: find_lr(LogisticRegression(), X_OK, Y_OK),
            r"find_lr: estimator must be SGDClassifier, .*got 'Log",
        ),
        (
            lambda: find_lr(SGDClassifier, X_OK, Y_OK),
            r"estimator must be an estimator instance.*SGDClassifier\(\.\.\.\)",
        ),
        (lambda: find_lr("model", X_OK, Y_OK), r"estimator must be SGDClassifier"),
        (
            lambda: find_lr(MLPClassifier(solver="lbfgs"), X_OK, Y_OK),
            r"estimator must be .*solver 'sgd' or 'adam'.*lbfgs",
        ),
        (
            lambda: find_lr(SGDClassifier().set_params(loss="focal"), X_OK, Y_OK),
            r"estimator must be a SGDClassifier whose loss is one of .*'log_loss'.*; got 'focal'\. "
            r".*set_params",
        ),
        (
            lambda: find_lr(SGDClassifier(class_weight="balanced"), X_OK, Y_OK),
            r"class_weight is None or a dict",
        ),
        (
            lambda: find_lr(SGDClassifier(), np.where(X_OK > 1, np.nan, X_OK), Y_OK),
            r"find_lr: X must be finite",
        ),
        (lambda: find_lr(SGDClassifier(), X_OK[:, 0], Y_OK), r"X must be a non-empty 2-D array.*reshape"),
        (lambda: find_lr(SGDClassifier(), X_OK + 1j, Y_OK), r"X must be real numbers"),
        (lambda: find_lr(SGDClassifier(), [["a", "b"]] * 30, Y_OK), r"X must be a numeric 2-D array"),
        (lambda: find_lr(SGDClassifier(), X_OK, Y_OK[:-1]), r"y must be one target per row of X \(30\)"),
        (lambda: find_lr(SGDClassifier(), X_OK, None), r"y must be an array of targets"),
        (lambda: find_lr(SGDClassifier(), X_OK, np.zeros(30)), r"y must be labels of at least 2 classes"),
        (
            lambda: find_lr(SGDClassifier(), X_OK, np.linspace(0, 1, 30)),
            r"y must be 1-D class labels.*continuous",
        ),
        (lambda: find_lr(SGDClassifier(), X_OK, Y_OK[:, None]), r"y must be a 1-D array of class labels"),
        (lambda: find_lr(SGDRegressor(), X_OK, np.c_[Y_OK, Y_OK]), r"y must be 1-D; .*ravel"),
        (lambda: find_lr(SGDRegressor(), X_OK, np.where(Y_OK > 0, np.nan, 1.0)), r"y must be finite"),
        (
            lambda: find_lr(SGDClassifier().fit(X_OK, Y_OK), X_OK, Y_OK + 5),
            r"y must be labels the fitted estimator knows",
        ),
        (
            lambda: find_lr(SGDClassifier().fit(X_OK, Y_OK), X_OK[:, :2], Y_OK),
            r"X must be of 4 features, as the fitted",
        ),
        (
            lambda: find_lr(SGDClassifier(), X_OK, Y_OK, batch_size=0),
            r"find_lr: batch_size must be an integer >= 1",
        ),
        (lambda: find_lr(SGDClassifier(), X_OK, Y_OK, batch_size="32"), r"batch_size must be an integer"),
        (
            lambda: find_lr(SGDClassifier(), X_OK, Y_OK, end_lr=1e-8),
            r"find_lr: end_lr must be greater than start_lr",
        ),
        (
            lambda: find_lr(SGDClassifier(), X_OK, Y_OK, num_steps=1),
            r"find_lr: num_steps must be an integer >= 2",
        ),
        (lambda: find_lr(SGDClassifier(), X_OK, Y_OK, random_state=-1), r"find_lr: random_state must be"),
        (
            lambda: find_lr(SGDClassifier(), X_OK, Y_OK, progress="yes"),
            r"find_lr: progress must be True or False",
        ),
        (lambda: find_lr(SoftmaxClassifier(), X_OK, Y_OK, num_steps=1), r"find_lr: num_steps must be"),
    ],
)
def test_bad_arguments_are_refused_by_name(call, message):
    with pytest.raises(InvalidArgumentError, match=message):
        call()


def test_sparse_nan_is_refused():
    scipy_sparse = pytest.importorskip("scipy.sparse")
    X = scipy_sparse.csr_matrix(np.where(X_OK > 1, np.nan, X_OK))
    with pytest.raises(InvalidArgumentError, match=r"find_lr: X must be finite"):
        find_lr(SGDClassifier(), X, Y_OK)


# lrscout's estimators as scikit-learn estimators -------------------------------------------

with warnings.catch_warnings():
    # The estimators are scikit-learn estimators by protocol, not by inheritance (so that
    # `import lrscout` needs no scikit-learn); scikit-learn warns about that when collecting.
    warnings.filterwarnings("ignore", message="Estimator .* does not inherit from", category=UserWarning)
    # Every check passes: none is expected to fail.
    _CHECKS = parametrize_with_checks([LinearRegressor(), SoftmaxClassifier()])


@_CHECKS
def test_scikit_learn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Estimator .* does not inherit from", category=UserWarning)
        check(estimator)


def test_a_column_y_is_read_as_labels_with_scikit_learns_warning():
    from sklearn.exceptions import DataConversionWarning

    X, y = load_digits(return_X_y=True)
    X, y = X[:300] / 16.0, y[:300]
    flat = SoftmaxClassifier(epochs=2, random_state=0).fit(X, y)
    with pytest.warns(DataConversionWarning, match="A column-vector y was passed") as caught:
        column = SoftmaxClassifier(epochs=2, random_state=0).fit(X, y[:, None])
    assert caught[0].filename == __file__  # points at the caller's fit
    np.testing.assert_array_equal(column.coef_, flat.coef_)
    np.testing.assert_array_equal(column.classes_, flat.classes_)
    # What scikit-learn's own classifiers do with the same column.
    with pytest.warns(DataConversionWarning):
        SGDClassifier(max_iter=5, tol=None, random_state=0).fit(X, y[:, None])
    # A table of labels is still refused: it is not one column.
    with pytest.raises(InvalidArgumentError, match=r"y must be a 1-D array of 300 class labels"):
        SoftmaxClassifier().fit(X, np.stack([y, y], axis=1))


def test_pipeline_cross_val_score_is_finite():
    X, y = load_breast_cancer(return_X_y=True)
    pipeline = make_pipeline(StandardScaler(), SoftmaxClassifier(lr=0.1, random_state=0))
    scores = cross_val_score(pipeline, X, y, cv=3)
    assert np.all(np.isfinite(scores)) and scores.min() > 0.9


def test_grid_search_and_clone():
    X, y = load_digits(return_X_y=True)
    pipeline = make_pipeline(StandardScaler(), SoftmaxClassifier(epochs=3, random_state=0))
    search = GridSearchCV(pipeline, {"softmaxclassifier__lr": [1e-4, 0.1]}, cv=3).fit(X[:600], y[:600])
    assert search.best_params_ == {"softmaxclassifier__lr": 0.1}
    assert search.best_estimator_[-1].lr == 0.1 and search.best_score_ > 0.8
    copy_ = clone(SoftmaxClassifier(lr=0.3, batch_size=None))
    assert copy_.get_params() == SoftmaxClassifier(lr=0.3, batch_size=None).get_params()
    assert is_classifier(SoftmaxClassifier()) and is_regressor(LinearRegressor())
    assert not is_classifier(LinearRegressor()) and not is_regressor(SoftmaxClassifier())


def test_predict_before_fit_raises_not_fitted_error_and_invalid_argument_error():
    model = SoftmaxClassifier()
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    with pytest.raises(NotFittedError, match="not fitted yet") as caught:
        model.predict(X_OK)
    assert isinstance(caught.value, InvalidArgumentError)
    again = pickle.loads(pickle.dumps(caught.value))
    assert isinstance(again, NotFittedError) and str(again) == str(caught.value)
    check_is_fitted(model.fit(X_OK, Y_OK))
    assert model.n_features_in_ == 4


def test_score_equals_r2_score_and_accuracy_score():
    rng = np.random.default_rng(0)
    X, y = _regression()
    weights = rng.uniform(0.0, 2.0, size=len(y))
    model = LinearRegressor(lr=0.05, epochs=3, random_state=0).fit(X, y)
    predicted = model.predict(X)
    assert model.score(X, y) == pytest.approx(r2_score(y, predicted), rel=1e-12)
    assert model.score(X, y, sample_weight=weights) == pytest.approx(
        r2_score(y, predicted, sample_weight=weights), rel=1e-12
    )
    Y = np.c_[y, -2 * y + 1, np.full(len(y), 4.0)]  # the constant target scores 0, as in r2_score
    multi = LinearRegressor(lr=0.05, epochs=3, random_state=0).fit(X, Y)
    assert multi.score(X, Y) == pytest.approx(r2_score(Y, multi.predict(X)), rel=1e-12)
    exact = LinearRegressor(lr=0.5, epochs=1, batch_size=None).fit(X, np.zeros(len(y)))
    assert exact.score(X, np.zeros(len(y))) == r2_score(np.zeros(len(y)), exact.predict(X)) == 1.0
    with pytest.warns(UserWarning, match="not well-defined"):
        expected = r2_score(y[:1], predicted[:1])
    assert math.isnan(model.score(X[:1], y[:1])) and math.isnan(expected)

    Xc, labels = _classification()
    classifier = SoftmaxClassifier(lr=0.01, epochs=1, random_state=0).fit(Xc, labels)
    guess = classifier.predict(Xc)
    assert classifier.score(Xc, labels) == accuracy_score(labels, guess)
    w = rng.uniform(0.0, 2.0, size=len(labels))
    assert classifier.score(Xc, labels, sample_weight=w) == pytest.approx(
        accuracy_score(labels, guess, sample_weight=w), rel=1e-12
    )
    with pytest.raises(InvalidArgumentError, match=r"score: sample_weight must be finite, non-negative"):
        classifier.score(Xc, labels, sample_weight=-w)


def test_continuous_labels_are_refused_by_the_classifier():
    with pytest.raises(InvalidArgumentError, match=r"y must be class labels; got 'a continuous target"):
        SoftmaxClassifier().fit(X_OK, np.linspace(0, 1, 30))
    assert SoftmaxClassifier(epochs=1).fit(X_OK, Y_OK.astype(float)).classes_.tolist() == [0.0, 1.0, 2.0]


def test_the_estimators_import_scikit_learn_only_when_it_asks():
    code = (
        "import sys, lrscout.models as m; m.SoftmaxClassifier().fit([[0.0], [1.0]], [0, 1]); "
        "before = 'sklearn' in sys.modules; m.SoftmaxClassifier().__sklearn_tags__(); "
        "print(before, 'sklearn' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]


# Command line -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dataset", "model", "estimator", "optimizer", "momentum"),
    [
        ("breast-cancer", "linear", "SGDClassifier", "SGD", 0.0),
        ("diabetes", "linear", "SGDRegressor", "SGD", 0.0),
        ("breast-cancer", "mlp", "MLPClassifier", "SGD", 0.9),
        ("diabetes", "mlp", "MLPRegressor", "SGD", 0.9),
    ],
)
def test_cli_runner(dataset, model, estimator, optimizer, momentum):
    data = load_dataset(dataset)
    settings = FindLRSettings(model=model, start_lr=1e-4, num_steps=12, seed=7)
    result = run_find_lr(data, settings)
    assert result.lrs[0] == 1e-4 and result.num_steps >= 12
    info = result.info
    assert (info["framework"], info["estimator"], info["optimizer"], info["momentum"]) == (
        "sklearn",
        estimator,
        optimizer,
        momentum,
    )
    assert (info["model"], info["seed"], info["task"]) == (model, 7, data.task)
    assert info["loss"] == ("log_loss" if data.task == "classification" else "squared_error")
    assert result == run_find_lr(data, settings)


def test_cli_runner_momentum():
    data = load_dataset("breast-cancer")
    result = run_find_lr(data, FindLRSettings(model="mlp", num_steps=5, momentum=0.5))
    assert result.info["momentum"] == 0.5
    with pytest.raises(InvalidArgumentError, match=r"run_find_lr: momentum must be None or 0"):
        run_find_lr(data, FindLRSettings(model="linear", num_steps=5, momentum=0.5))
    assert (
        run_find_lr(data, FindLRSettings(model="linear", num_steps=5, momentum=0.0)).info["momentum"] == 0.0
    )


@pytest.mark.parametrize(
    "estimator",
    [
        SGDClassifier(),
        SGDRegressor(),
        MLPClassifier(hidden_layer_sizes=(4,)),
        MLPRegressor(hidden_layer_sizes=(4,)),
    ],
    ids=lambda e: type(e).__name__,
)
def test_random_state_none_leaves_numpys_global_state_as_it_was(estimator):
    # With random_state=None scikit-learn draws initial weights and shuffles from NumPy's
    # global state; the test is the user's too, and leaves it where it was.
    X, labels = _classification(n=60, k=2)
    y = labels if is_classifier(estimator) else X @ np.arange(1.0, X.shape[1] + 1)
    np.random.seed(7)  # noqa: NPY002 (the global state, on purpose)
    before = np.random.get_state()  # noqa: NPY002
    find_lr(estimator, X, y, num_steps=12, progress=False)
    after = np.random.get_state()  # noqa: NPY002
    assert np.array_equal(before[1], after[1]) and before[2:] == after[2:]
