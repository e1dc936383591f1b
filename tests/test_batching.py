"""Epochs, batches, steps: closed forms and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lrscout import gd_variant, minibatches, steps_per_epoch


@pytest.mark.parametrize(
    ("batch_size", "steps", "variant"),
    [
        (None, 1, "batch"),
        (1, 1797, "stochastic"),
        (32, 57, "mini-batch"),
        (1797, 1, "batch"),
        (2000, 1, "batch"),
    ],
)
def test_digits_table(batch_size, steps, variant):
    assert steps_per_epoch(1797, batch_size) == steps
    assert gd_variant(batch_size, 1797) == variant


def test_seed_formula():
    # The seed computes steps_per_epoch = int(np.ceil(x_train.shape[0] / batch_size)).
    for n in (1, 7, 1797, 60000):
        for b in (1, 2, 32, 100, 128):
            assert steps_per_epoch(n, b) == int(np.ceil(n / b))


@pytest.mark.parametrize(
    ("n", "b", "steps"), [(1797, 32, 56), (64, 32, 2), (65, 32, 2), (10, 10, 1), (10, None, 1)]
)
def test_drop_last(n, b, steps):
    assert steps_per_epoch(n, b, drop_last=True) == steps


def test_drop_last_with_batch_larger_than_set_is_an_error():
    with pytest.raises(ValueError, match="batch_size must be <= n_samples"):
        steps_per_epoch(10, 11, drop_last=True)


@given(n=st.integers(1, 500), b=st.one_of(st.none(), st.integers(1, 600)), seed=st.integers(0, 2**32 - 1))
def test_minibatches_cover_every_index_once(n, b, seed):
    batches = list(minibatches(n, b, random_state=seed))
    assert len(batches) == steps_per_epoch(n, b)
    joined = np.concatenate(batches)
    assert np.array_equal(np.sort(joined), np.arange(n))
    size = n if b is None else min(b, n)
    assert all(len(batch) == size for batch in batches[:-1])
    assert len(batches[-1]) == n - size * (len(batches) - 1)


@given(n=st.integers(2, 300), b=st.integers(1, 299), seed=st.integers(0, 1000))
def test_minibatches_drop_last_drops_only_the_short_batch(n, b, seed):
    if b > n:
        return
    batches = list(minibatches(n, b, random_state=seed, drop_last=True))
    assert len(batches) == n // b
    assert all(len(batch) == b for batch in batches)
    joined = np.concatenate(batches)
    assert len(np.unique(joined)) == len(joined) == b * (n // b)


def test_minibatches_same_seed_same_order_and_no_shuffle_is_sequential():
    first = [b.tolist() for b in minibatches(100, 7, random_state=3)]
    again = [b.tolist() for b in minibatches(100, 7, random_state=3)]
    other = [b.tolist() for b in minibatches(100, 7, random_state=4)]
    assert first == again
    assert first != other
    plain = np.concatenate(list(minibatches(100, 7, shuffle=False)))
    assert np.array_equal(plain, np.arange(100))


def test_minibatches_accepts_a_generator():
    rng = np.random.default_rng(5)
    expected = np.random.default_rng(5).permutation(20)
    assert np.array_equal(np.concatenate(list(minibatches(20, 3, random_state=rng))), expected)


def test_steps_per_epoch_accepts_integral_floats_like_the_seed():
    assert steps_per_epoch(1797, math.ceil(1797 / 57)) == 57
    assert steps_per_epoch(100.0, 10.0) == 10
