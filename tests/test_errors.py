"""Every public entry checks its arguments and names the one at fault."""

from __future__ import annotations

import numpy as np
import pytest

import lrscout
from lrscout.models import LinearRegressor, SoftmaxClassifier, compare_variants, find_lr

X = np.random.default_rng(0).normal(size=(20, 3))
y = X @ [1.0, 2.0, 3.0]
labels = np.arange(20) % 2


def _step(lr):
    return 1.0


CASES = [
    (
        lambda: lrscout.steps_per_epoch(0, 32),
        ValueError,
        r"steps_per_epoch: n_samples must be an integer >= 1; got 0",
    ),
    (
        lambda: lrscout.steps_per_epoch(10, 0),
        ValueError,
        r"batch_size must be an integer >= 1; got 0.*Use None",
    ),
    (lambda: lrscout.steps_per_epoch(10, 2.5), ValueError, r"batch_size must be a whole number; got 2.5"),
    (lambda: lrscout.steps_per_epoch(10, "32"), TypeError, r"batch_size must be an integer; got '32'"),
    (lambda: lrscout.steps_per_epoch(10, True), TypeError, r"batch_size must be an integer; got True"),
    (lambda: lrscout.steps_per_epoch(10, 3, drop_last="yes"), TypeError, r"drop_last must be True or False"),
    (
        lambda: lrscout.gd_variant(-1, 10),
        ValueError,
        r"gd_variant: batch_size must be an integer >= 1; got -1",
    ),
    (
        lambda: list(lrscout.minibatches(10, 3, random_state=-1)),
        ValueError,
        r"random_state must be an integer >= 0",
    ),
    (
        lambda: lrscout.minibatches(10, 3, random_state="a"),
        TypeError,
        r"minibatches: random_state must be an integer",
    ),
    (
        lambda: lrscout.linear_ramp(0.0, 1.0, 10),
        ValueError,
        r"linear_ramp: start_lr must be positive; got 0.0",
    ),
    (lambda: lrscout.exponential_ramp(1e-3, float("nan"), 10), ValueError, r"end_lr must be finite; got nan"),
    (lambda: lrscout.exponential_ramp(1e-3, 1.0, 1), ValueError, r"num_steps must be an integer >= 2; got 1"),
    (
        lambda: lrscout.range_test(_step, start_lr=1e-3, end_lr=1e-5),
        ValueError,
        r"range_test: end_lr must be greater than start_lr \(0.001\); got 1e-05",
    ),
    (
        lambda: lrscout.range_test(_step, mode="cosine"),
        ValueError,
        r"range_test: mode must be one of 'exponential', 'linear'; got 'cosine'",
    ),
    (lambda: lrscout.range_test(_step, smoothing=1.0), ValueError, r"smoothing must be < 1.0; got 1.0"),
    (
        lambda: lrscout.range_test(_step, divergence_factor=1.0),
        ValueError,
        r"divergence_factor must be > 1.0",
    ),
    (lambda: lrscout.range_test(_step, num_steps=10.5), ValueError, r"num_steps must be a whole number"),
    (lambda: lrscout.range_test("step"), TypeError, r"range_test: step_fn must be callable; got 'step'"),
    (
        lambda: lrscout.range_test(_step, sync_every=0),
        ValueError,
        r"sync_every must be an integer >= 1; got 0",
    ),
    (lambda: lrscout.range_test(_step, progress=1), TypeError, r"progress must be True or False; got 1"),
    (lambda: lrscout.one_cycle(-1.0, 100), ValueError, r"one_cycle: max_lr must be positive; got -1.0"),
    (lambda: lrscout.one_cycle(0.1, 100, pct_start=1.0), ValueError, r"pct_start must be < 1.0; got 1.0"),
    (
        lambda: lrscout.one_cycle(0.1, 100, anneal_strategy="exp"),
        ValueError,
        r"anneal_strategy must be one of",
    ),
    (
        lambda: lrscout.one_cycle(0.1, 3, pct_start=0.1),
        ValueError,
        r"pct_start \* total_steps must leave every",
    ),
    (
        lambda: LinearRegressor(lr=-0.1).fit(X, y),
        ValueError,
        r"LinearRegressor.fit: lr must be positive; got -0.1",
    ),
    (
        lambda: LinearRegressor(lr=lrscout.one_cycle(0.1, 5), batch_size=4).fit(X, y),
        ValueError,
        r"lr must give a positive, finite learning rate for every update step 0..49.*one_cycle\(max_lr, 50\)",
    ),
    (lambda: LinearRegressor(batch_size=0).fit(X, y), ValueError, r"LinearRegressor.fit: batch_size must be"),
    (lambda: LinearRegressor(epochs=0).fit(X, y), ValueError, r"epochs must be an integer >= 1; got 0"),
    (lambda: LinearRegressor(momentum=1.0).fit(X, y), ValueError, r"momentum must be < 1.0; got 1.0"),
    (lambda: LinearRegressor(alpha=-1).fit(X, y), ValueError, r"alpha must be >= 0.0; got -1"),
    (lambda: LinearRegressor(shuffle="no").fit(X, y), TypeError, r"shuffle must be True or False; got 'no'"),
    (
        lambda: LinearRegressor().fit(X[:, 0], y),
        ValueError,
        r"X must be a non-empty 2-D array.*reshape\(-1, 1\)",
    ),
    (lambda: LinearRegressor().fit(np.where(X > 1, np.nan, X), y), ValueError, r"X must be finite"),
    (lambda: LinearRegressor().fit(X, y[:-1]), ValueError, r"y must have shape \(20,\) or \(20, n_targets\)"),
    (lambda: LinearRegressor().fit([["a", "b"]], [1]), TypeError, r"X must be a numeric 2-D array"),
    (
        lambda: SoftmaxClassifier().fit(X, np.zeros(20)),
        ValueError,
        r"y must hold at least 2 classes; got only \[0.0\]",
    ),
    (
        lambda: SoftmaxClassifier().fit(X, np.stack([labels, labels], axis=1)),
        ValueError,
        r"y must be a 1-D array of 20 class",
    ),
    (lambda: SoftmaxClassifier().predict(X), ValueError, r"not fitted yet; call fit\(X, y\) first"),
    (
        lambda: LinearRegressor().fit(X, y).predict(X[:, :2]),
        ValueError,
        r"X must have 3 features, as in fit; got 2",
    ),
    (lambda: find_lr("model", X, y), TypeError, r"find_lr: model must be an lrscout.models estimator"),
    (lambda: find_lr(LinearRegressor(), X, y, batch_size=-4), ValueError, r"find_lr: batch_size must be"),
    (
        lambda: find_lr(LinearRegressor(), X, y, end_lr=0.0),
        ValueError,
        r"range_test: end_lr must be positive",
    ),
    (
        lambda: find_lr(SoftmaxClassifier().fit(X, labels), X, labels + 5),
        ValueError,
        r"y holds labels the fitted model does not know: \[5, 6\]",
    ),
    (
        lambda: compare_variants(LinearRegressor(), X, y, epochs=0),
        ValueError,
        r"compare_variants: epochs must be",
    ),
    (
        lambda: compare_variants(LinearRegressor(), X, y, epochs=1, batch_sizes=32),
        TypeError,
        r"batch_sizes must be a non-empty sequence",
    ),
    (
        lambda: compare_variants(LinearRegressor(), X, y, epochs=1, lr="best"),
        ValueError,
        r"lr must be 'auto', a positive float or one float per batch size; got 'best'",
    ),
    (
        lambda: compare_variants(LinearRegressor(), X, y, epochs=1, lr=[0.1]),
        ValueError,
        r"lr must give one learning rate per batch size \(3\); got 1",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), CASES)
def test_bad_input_raises_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_the_table_is_big_enough():
    assert len(CASES) >= 20
