"""NumPy models against independent oracles: lstsq, naive loops, finite differences."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import lrscout
import lrscout.models
from lrscout import steps_per_epoch
from lrscout.models import (
    DivergenceWarning,
    LinearRegressor,
    SoftmaxClassifier,
    _estimators,
    compare_variants,
    find_lr,
)


@pytest.fixture(params=["numba", "numpy"])
def engine(request):
    """The ``engine`` to run a test on: the numba epoch loops, then the pure NumPy path."""
    if request.param == "numba":
        pytest.importorskip("numba")
    return request.param


def _regression(n=200, d=5, seed=0, noise=0.3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) @ np.diag(np.linspace(0.5, 2.0, d)) + 0.3
    y = X @ rng.normal(size=d) + 1.5 + noise * rng.normal(size=n)
    return X, y


def _classification(n=300, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=2.0, size=(k, d))
    labels = rng.integers(0, k, size=n)
    return centers[labels] + rng.normal(size=(n, d)), labels


def _hessian_lambda_max(X):
    Xa = np.c_[X, np.ones(len(X))]
    return float(np.linalg.eigvalsh(Xa.T @ Xa / len(X)).max())


def test_batch_gd_converges_to_lstsq(engine):
    X, y = _regression()
    lam = _hessian_lambda_max(X)
    model = LinearRegressor(lr=1.0 / lam, batch_size=None, epochs=3000, engine=engine).fit(X, y)
    solution = np.linalg.lstsq(np.c_[X, np.ones(len(X))], y, rcond=None)[0]
    np.testing.assert_allclose(model.coef_, solution[:-1], rtol=1e-6)
    np.testing.assert_allclose(model.intercept_, solution[-1], rtol=1e-6)
    assert model.n_updates_ == 3000


@pytest.mark.parametrize("momentum", [0.0, 0.7])
@pytest.mark.parametrize("schedule", [False, True])
def test_stochastic_gd_equals_a_naive_per_sample_loop(engine, momentum, schedule):
    X, y = _regression(n=50, d=3)
    rates = lrscout.one_cycle(0.02, 150) if schedule else (lambda step: 0.01)
    lr = rates if schedule else 0.01
    model = LinearRegressor(
        lr=lr, batch_size=1, epochs=3, shuffle=False, momentum=momentum, engine=engine
    ).fit(X, y)
    w, b, vw, vb, losses, step = np.zeros(3), 0.0, np.zeros(3), 0.0, [], 0
    for _ in range(3):
        for xi, yi in zip(X, y, strict=True):
            r = float(w @ xi + b - yi)
            losses.append(0.5 * r * r)
            vw = momentum * vw + r * xi
            vb = momentum * vb + r
            w = w - rates(step) * vw
            b = b - rates(step) * vb
            step += 1
    np.testing.assert_allclose(model.coef_, w, rtol=0, atol=1e-12)
    assert abs(model.intercept_ - b) <= 1e-12
    np.testing.assert_allclose(model.loss_history_, losses, rtol=1e-12, atol=1e-14)
    assert model.n_updates_ == 150


def test_compiled_and_numpy_paths_agree():
    pytest.importorskip("numba")
    X, y = _classification()
    params = dict(lr=0.3, batch_size=7, epochs=4, momentum=0.9, alpha=0.01, random_state=3)
    fast = SoftmaxClassifier(**params, engine="numba").fit(X, y)
    slow = SoftmaxClassifier(**params, engine="numpy").fit(X, y)
    np.testing.assert_allclose(fast.coef_, slow.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fast.loss_history_, slow.loss_history_, rtol=1e-10)
    np.testing.assert_allclose(fast.epoch_losses_, slow.epoch_losses_, rtol=1e-10)
    Xr, yr = _regression()
    reg = dict(lr=0.01, batch_size=9, epochs=3, momentum=0.5, alpha=0.1, random_state=1)
    slow_r = LinearRegressor(**reg, engine="numpy").fit(Xr, np.c_[yr, -yr])
    fast_r = LinearRegressor(**reg, engine="numba").fit(Xr, np.c_[yr, -yr])
    np.testing.assert_allclose(fast_r.coef_, slow_r.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fast_r.loss_history_, slow_r.loss_history_, rtol=1e-10)
    # "auto" is numba when it imports; the range test is NumPy whatever the engine.
    assert np.array_equal(SoftmaxClassifier(**params).fit(X, y).coef_, fast.coef_)
    assert find_lr(SoftmaxClassifier(**params, engine="numba"), X, y, num_steps=20) == find_lr(
        SoftmaxClassifier(**params, engine="numpy"), X, y, num_steps=20
    )


@pytest.fixture
def without_numba(monkeypatch):
    """Make ``import numba`` fail, as where the ``fast`` extra is not installed."""
    monkeypatch.setitem(sys.modules, "numba", None)
    monkeypatch.delitem(sys.modules, "lrscout.models._kernels", raising=False)
    monkeypatch.delattr(lrscout.models, "_kernels", raising=False)
    _estimators._compiled_kernels.cache_clear()
    yield
    _estimators._compiled_kernels.cache_clear()


def test_engine_numba_without_numba_names_the_extra(without_numba):
    X, y = _regression(n=20, d=2)
    with pytest.raises(ImportError, match=r"engine='numba' needs numba, .* pip install numba \(or use"):
        LinearRegressor(engine="numba").fit(X, y)
    auto = LinearRegressor(random_state=0).fit(X, y)
    plain = LinearRegressor(random_state=0, engine="numpy").fit(X, y)
    assert np.array_equal(auto.coef_, plain.coef_)
    assert np.array_equal(auto.loss_history_, plain.loss_history_)


def test_engine_is_a_checked_hyperparameter():
    X, y = _regression(n=20, d=2)
    model = LinearRegressor(engine="gpu")
    assert model.get_params()["engine"] == "gpu" and repr(model) == "LinearRegressor(engine='gpu')"
    message = r"LinearRegressor.fit: engine must be one of 'auto', 'numba', 'numpy'; got 'gpu'"
    with pytest.raises(lrscout.InvalidArgumentError, match=message):
        model.fit(X, y)
    with pytest.raises(lrscout.InvalidArgumentError, match=r"find_lr: engine must be one of"):
        find_lr(model, X, y)


@pytest.mark.parametrize(
    "change",
    [
        {"params": {"lr": -1.0}},
        {"params": {"lr": lrscout.one_cycle(0.1, 5)}},
        {"params": {"engine": "gpu"}},
        {"params": {"epochs": 0}},
        {"X": "nan"},
        {"y": "short"},
    ],
    ids=["lr", "short-schedule", "engine", "epochs", "X-nan", "y-shape"],
)
@pytest.mark.parametrize("estimator", [LinearRegressor, SoftmaxClassifier])
def test_a_refused_fit_leaves_the_fitted_model_as_it_was(estimator, change):
    X, y = _regression(n=40, d=3) if estimator is LinearRegressor else _classification(n=40, d=3)
    model = estimator(lr=0.05, batch_size=8, epochs=2, random_state=0).fit(X, y)
    coef, intercept = np.copy(model.coef_), np.copy(model.intercept_)
    model.set_params(**change.get("params", {}))
    before = _snapshot(model)
    bad_X = np.where(X > 1, np.nan, X) if change.get("X") else X
    bad_y = y[:-1] if change.get("y") else y
    with pytest.raises(lrscout.InvalidArgumentError):
        model.fit(bad_X, bad_y)
    assert np.array_equal(model.coef_, coef) and np.array_equal(model.intercept_, intercept)
    _assert_same(before, _snapshot(model))


def test_refit_on_new_features_and_new_classes_starts_fresh():
    X, labels = _classification(n=60, d=3, k=3)
    model = SoftmaxClassifier(lr=0.1, batch_size=8, epochs=2, random_state=0).fit(X, labels)
    wider = np.c_[X, X[:, :1]]
    refit = model.fit(wider, np.array(["a", "b"])[labels % 2])
    fresh = SoftmaxClassifier(lr=0.1, batch_size=8, epochs=2, random_state=0)
    fresh.fit(wider, np.array(["a", "b"])[labels % 2])
    assert refit.classes_.tolist() == ["a", "b"] and refit.coef_.shape == (2, 4)
    assert np.array_equal(refit.coef_, fresh.coef_)


def test_last_partial_batch_averages_over_its_own_size(engine):
    X, y = _regression(n=10, d=2)
    model = LinearRegressor(lr=0.05, batch_size=4, epochs=1, shuffle=False, engine=engine).fit(X, y)
    w, b = np.zeros(2), 0.0
    for idx in (slice(0, 4), slice(4, 8), slice(8, 10)):
        r = X[idx] @ w + b - y[idx]
        w, b = w - 0.05 * (r @ X[idx]) / len(r), b - 0.05 * r.mean()
    np.testing.assert_allclose(model.coef_, w, rtol=1e-13)
    assert model.n_updates_ == steps_per_epoch(10, 4) == 3


def test_softmax_gradient_matches_finite_differences():
    X, labels = _classification(n=40, d=3, k=4)
    model = SoftmaxClassifier(alpha=0.05)
    rng = np.random.default_rng(1)
    W, b = rng.normal(size=(4, 3)), rng.normal(size=4)
    _, gW, gb = model._loss_grad(W, b, X, labels)
    eps = 1e-6
    for index in np.ndindex(W.shape):
        up, down = W.copy(), W.copy()
        up[index] += eps
        down[index] -= eps
        numeric = (
            model._loss_grad(up, b, X, labels, grad=False)[0]
            - model._loss_grad(down, b, X, labels, grad=False)[0]
        ) / (2 * eps)
        assert gW[index] == pytest.approx(numeric, rel=1e-6, abs=1e-9)
    for j in range(4):
        up, down = b.copy(), b.copy()
        up[j] += eps
        down[j] -= eps
        numeric = (
            model._loss_grad(W, up, X, labels, grad=False)[0]
            - model._loss_grad(W, down, X, labels, grad=False)[0]
        ) / (2 * eps)
        assert gb[j] == pytest.approx(numeric, rel=1e-6, abs=1e-9)


def test_softmax_loss_is_the_cross_entropy():
    X, labels = _classification(n=30, d=2, k=3)
    model = SoftmaxClassifier(lr=0.1, batch_size=None, epochs=5).fit(X, labels)
    logits = X @ model.coef_.T + model.intercept_
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict_proba(X), probabilities, rtol=1e-12)
    cross_entropy = -np.mean(np.log(probabilities[np.arange(30), labels]))
    assert model.epoch_losses_[-1] == pytest.approx(cross_entropy, rel=1e-12)


def test_two_classes_and_string_labels():
    X, labels = _classification(n=200, d=2, k=2, seed=4)
    names = np.array(["cat", "dog"])[labels]
    model = SoftmaxClassifier(lr=0.5, batch_size=16, epochs=20, random_state=0).fit(X, names)
    assert model.classes_.tolist() == ["cat", "dog"]
    assert model.coef_.shape == (2, 2)
    assert model.score(X, names) > 0.9
    assert set(model.predict(X)) <= {"cat", "dog"}


def test_multi_output_regression_shapes():
    X, y = _regression()
    Y = np.c_[y, 2 * y]
    model = LinearRegressor(lr=0.05, batch_size=None, epochs=2000).fit(X, Y)
    assert model.coef_.shape == (2, 5)
    assert model.predict(X).shape == (200, 2)
    assert model.score(X, Y) > 0.95


def test_same_seed_same_model_and_refit_starts_fresh():
    X, labels = _classification()
    a = SoftmaxClassifier(lr=0.1, batch_size=8, epochs=2, random_state=7).fit(X, labels)
    b = SoftmaxClassifier(lr=0.1, batch_size=8, epochs=2, random_state=7).fit(X, labels)
    c = SoftmaxClassifier(lr=0.1, batch_size=8, epochs=2, random_state=8).fit(X, labels)
    assert np.array_equal(a.coef_, b.coef_)
    assert not np.array_equal(a.coef_, c.coef_)
    assert np.array_equal(a.fit(X, labels).coef_, b.coef_)


def test_estimator_protocol_and_sklearn_clone():
    from sklearn.base import clone

    model = LinearRegressor(lr=0.2, batch_size=1, momentum=0.5)
    assert model.get_params()["lr"] == 0.2
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert model.set_params(lr=0.3) is model and model.lr == 0.3
    assert repr(model) == "LinearRegressor(lr=0.3, batch_size=1, momentum=0.5)"
    with pytest.raises(ValueError, match="unknown parameter 'learning_rate'"):
        model.set_params(learning_rate=1.0)


def test_divergence_warns_with_its_own_category():
    X, y = _regression()
    limit = 2 / _hessian_lambda_max(X)
    with pytest.warns(DivergenceWarning, match="training diverged"):
        model = LinearRegressor(lr=3 * limit, batch_size=None, epochs=2000).fit(X, y)
    assert not np.isfinite(model.epoch_losses_[-1])


# find_lr --------------------------------------------------------------------


def _snapshot(model):
    return {
        name: (value.copy() if isinstance(value, np.ndarray) else value)
        for name, value in vars(model).items()
    }


def _assert_same(before, after):
    assert before.keys() == after.keys()
    for name, value in before.items():
        if isinstance(value, np.ndarray):
            assert np.array_equal(value, after[name]) and value.dtype == after[name].dtype, name
        else:
            assert value == after[name], name


@pytest.mark.parametrize("fitted", [False, True])
@pytest.mark.parametrize("estimator", [LinearRegressor, SoftmaxClassifier])
def test_find_lr_leaves_the_model_as_it_was(fitted, estimator):
    X, y = _regression() if estimator is LinearRegressor else _classification()
    model = estimator(lr=0.01, batch_size=16, momentum=0.9, random_state=0)
    if fitted:
        model.fit(X, y)
    before = _snapshot(model)
    result = find_lr(model, X, y, num_steps=50)
    _assert_same(before, _snapshot(model))
    assert len(result) > 5
    assert dict(result.info)["momentum"] == 0.9


def test_find_lr_starts_from_the_fitted_parameters():
    X, y = _regression()
    model = LinearRegressor(lr=0.05, batch_size=None, epochs=50).fit(X, y)
    result = find_lr(model, X, y, num_steps=10)
    assert result.losses[0] == pytest.approx(model.epoch_losses_[-1], rel=1e-12)
    fresh = find_lr(LinearRegressor(batch_size=None), X, y, num_steps=10)
    assert fresh.losses[0] == pytest.approx(0.5 * np.mean(y**2), rel=1e-12)


def test_find_lr_steps_follow_the_data_order_and_seed():
    X, labels = _classification()
    model = SoftmaxClassifier(batch_size=32, random_state=5)
    a = find_lr(model, X, labels, num_steps=30)
    b = find_lr(model, X, labels, num_steps=30)
    c = find_lr(model, X, labels, num_steps=30, random_state=6)
    assert a == b
    assert not np.array_equal(a.losses, c.losses)
    assert a.info["batch_size"] == 32 and a.info["variant"] == "mini-batch"
    assert find_lr(model, X, labels, batch_size=None, num_steps=10).info["variant"] == "batch"


# Known physics: H = X^T X / n (with the intercept column) for 0.5 * mean squared residual.


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9])
def test_full_batch_range_test_stops_exactly_past_the_stability_limit(momentum):
    X, y = _regression()
    limit = 2 * (1 + momentum) / _hessian_lambda_max(X)
    model = LinearRegressor(batch_size=None, momentum=momentum)
    # extend=False: these tests are about the planned range only.
    kw = {"num_steps": 300, "extend": False}
    below = find_lr(model, X, y, start_lr=0.9 * limit, end_lr=0.99 * limit, mode="linear", **kw)
    assert below.stop_reason == "completed"
    far_below = find_lr(model, X, y, start_lr=1e-6, end_lr=0.99 * limit, **kw)
    assert far_below.stop_reason == "completed"
    above = find_lr(model, X, y, start_lr=0.9 * limit, end_lr=1.5 * limit, mode="linear", **kw)
    assert above.stop_reason in ("diverged", "non-finite")
    assert above.lrs[-1] > limit


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_default_suggestion_is_stable_and_trains(momentum):
    X, y = _regression()
    limit = 2 * (1 + momentum) / _hessian_lambda_max(X)
    model = LinearRegressor(batch_size=None, momentum=momentum)
    suggestion = find_lr(model, X, y).suggestion.lr
    assert suggestion < limit
    trained = LinearRegressor(lr=suggestion, batch_size=None, momentum=momentum, epochs=500).fit(X, y)
    optimum = np.linalg.lstsq(np.c_[X, np.ones(len(X))], y, rcond=None)[1][0] / (2 * len(X))
    assert np.all(np.isfinite(trained.epoch_losses_))
    assert trained.epoch_losses_[-1] < 1.05 * optimum


# compare_variants -------------------------------------------------------------


def test_compare_variants_runs_each_variant_from_the_same_start():
    X, labels = _classification()
    model = SoftmaxClassifier(momentum=0.5, random_state=0)
    before = _snapshot(model)
    comparison = compare_variants(model, X, labels, epochs=3)
    _assert_same(before, _snapshot(model))
    assert [run.variant for run in comparison.runs] == ["batch", "stochastic", "mini-batch"]
    assert [run.steps_per_epoch for run in comparison.runs] == [1, 300, 10]
    assert [run.n_updates for run in comparison.runs] == [3, 900, 30]
    assert len({run.initial_loss for run in comparison.runs}) == 1
    for run in comparison.runs:
        expected = find_lr(model, X, labels, batch_size=run.batch_size).suggestion.lr
        assert run.lr == expected
        assert run.range_test is not None
        assert run.gradient_evaluations[-1] == 3 * 300
        assert len(run.epoch_losses) == len(run.epoch_times) == 3
        # Training at the found learning rate works, for every variant.
        assert run.epoch_losses[-1] < 0.5 * run.initial_loss
    assert "mini-batch" in comparison.table()
    axes = comparison.plot()
    assert len(axes) == 3 and axes[1].get_xscale() == "log"


def test_compare_variants_with_given_learning_rates():
    X, y = _regression()
    comparison = compare_variants(LinearRegressor(), X, y, epochs=2, batch_sizes=(None, 10), lr=[0.1, 0.01])
    assert [run.lr for run in comparison.runs] == [0.1, 0.01]
    assert all(run.range_test is None for run in comparison.runs)


def test_score_reads_a_column_of_targets_as_the_targets():
    # A column used to broadcast against the predictions to n x n and score 0.5.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 2))
    y = X @ [1.0, -1.0]
    model = LinearRegressor(batch_size=None, lr=0.5, epochs=200).fit(X, y)
    assert model.score(X, y.reshape(-1, 1)) == model.score(X, y)
    assert model.score(X, y) > 0.999
    labels = (y > 0).astype(int)
    classifier = SoftmaxClassifier(lr=0.5, epochs=20, random_state=0).fit(X, labels)
    assert classifier.score(X, labels.reshape(-1, 1)) == classifier.score(X, labels)


def test_compare_variants_says_which_batch_size_has_no_learning_rate():
    from lrscout.models._compare import NoVariantRateError

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = rng.normal(size=200)  # nothing to learn: no curve falls
    with pytest.raises(NoVariantRateError) as caught:
        lrscout.compare_variants(LinearRegressor(random_state=0), X, y, epochs=1, batch_sizes=(1,))
    assert isinstance(caught.value, lrscout.InvalidArgumentError)
    assert caught.value.batch_size == 1 and "leave batch_size=1 out" in str(caught.value)
