"""The default rule: what the curve can support, and the margin for the plan."""

from __future__ import annotations

import numpy as np
import pytest

from lrscout import NoSuggestionError, range_test


def _quadratic(curvature: float, w0: float = 1.0):
    """Full-batch gradient descent on ``curvature * w**2 / 2`` (deterministic: no noise)."""
    w = [w0]

    def step_fn(lr: float) -> float:
        loss = 0.5 * curvature * w[0] ** 2 + 1.0
        w[0] -= lr * curvature * w[0]
        return loss

    return step_fn


def test_a_curve_that_barely_fell_and_never_turned_up_gets_no_suggestion():
    # Rates up to 1e-6 on curvature 1: the loss falls by about 0.005 % and keeps falling.
    result = range_test(_quadratic(1.0), start_lr=1e-8, end_lr=1e-6, num_steps=100, smoothing=0.0)
    with pytest.raises(NoSuggestionError, match=r"by only 0\.0\d% of its start.*Raise end_lr"):
        result.suggest()
    for method in ("valley", "steepest", "minimum"):
        with pytest.raises(NoSuggestionError):
            result.suggest(method)


def test_a_small_fall_that_turns_up_is_read():
    # The same small fall, then divergence past lr = 2 / curvature: the curve says where training breaks.
    result = range_test(_quadratic(1.0, w0=0.08), start_lr=1e-3, end_lr=100.0, num_steps=100, smoothing=0.0)
    drop = 1 - result.losses.min() / result.losses[0]
    assert drop < 0.01 and result.stop_reason == "diverged"
    # Read, not refused: within a factor of 2 of the divergence threshold lr = 2 / curvature,
    # and no later than the step where the raw loss first rose above its start.
    suggestion = result.suggest()
    assert 1.0 < suggestion.lr < 4.0
    assert suggestion.index < int(np.argmax(result.losses > result.losses[0]))
