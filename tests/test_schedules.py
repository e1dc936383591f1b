"""Ramps and the one-cycle schedule against their closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lrscout import exponential_ramp, linear_ramp, one_cycle

positive = st.floats(1e-9, 1e3, allow_nan=False)


@given(a=positive, b=positive, n=st.integers(2, 400))
def test_ramp_endpoints_are_exact(a, b, n):
    for ramp in (linear_ramp(a, b, n), exponential_ramp(a, b, n)):
        assert ramp(0) == a
        assert ramp(n - 1) == b
        assert ramp(np.array([0, n - 1])).tolist() == [a, b]


@given(a=positive, b=positive, n=st.integers(3, 300))
def test_exponential_ratio_and_linear_difference_are_constant(a, b, n):
    steps = np.arange(n)
    lrs = exponential_ramp(a, b, n)(steps)
    np.testing.assert_allclose(lrs[1:] / lrs[:-1], (b / a) ** (1 / (n - 1)), rtol=1e-9)
    lin = linear_ramp(a, b, n)(steps)
    np.testing.assert_allclose(np.diff(lin), (b - a) / (n - 1), rtol=1e-7, atol=1e-12 * max(a, b))


def test_scalar_steps_give_floats_and_arrays_give_arrays():
    ramp = exponential_ramp(1e-3, 1.0, 4)
    assert isinstance(ramp(1), float)
    assert ramp(np.int64(1)) == ramp(1)
    assert ramp(np.arange(4)).shape == (4,)
    assert [ramp(i) for i in range(4)] == ramp(np.arange(4)).tolist()


def test_linear_ramp_reproduces_the_seed():
    # The seed's LRFinder sets min_lr + (max_lr - min_lr) * iteration / total_iterations
    # before batch `iteration` (0-based): linear_ramp with one more step.
    min_lr, max_lr, total = 1e-5, 1e-2, 3 * 57
    seed = [min_lr + (max_lr - min_lr) * (i / total) for i in range(total)]
    ours = linear_ramp(min_lr, max_lr, total + 1)(np.arange(total))
    np.testing.assert_allclose(ours, seed, rtol=1e-15, atol=0)


def test_steps_outside_the_schedule_are_rejected():
    ramp = linear_ramp(0.1, 1.0, 5)
    with pytest.raises(ValueError, match=r"step must be in \[0, 4\]"):
        ramp(5)
    with pytest.raises(ValueError, match="step must be in"):
        ramp(-1)
    with pytest.raises(TypeError, match="step must be an integer"):
        ramp(1.5)


def _one_cycle_reference(max_lr, total, pct, div, final_div, three_phase, strategy, step):
    """Smith & Topin's one-cycle written out phase by phase, for one step."""
    initial = max_lr / div
    low = initial / final_div
    if three_phase:
        phases = [
            (0.0, pct * total - 1, initial, max_lr),
            (pct * total - 1, 2 * pct * total - 2, max_lr, initial),
            (2 * pct * total - 2, total - 1, initial, low),
        ]
    else:
        phases = [(0.0, pct * total - 1, initial, max_lr), (pct * total - 1, total - 1, max_lr, low)]
    for i, (start, end, a, b) in enumerate(phases):
        if step <= end or i == len(phases) - 1:
            p = (step - start) / (end - start)
            if strategy == "cos":
                return b + (a - b) * (1 + math.cos(math.pi * p)) / 2
            return a + (b - a) * p
    raise AssertionError


@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("strategy", ["cos", "linear"])
@pytest.mark.parametrize(("total", "pct"), [(100, 0.3), (57, 0.25), (1000, 0.1)])
def test_one_cycle_matches_closed_form(three_phase, strategy, total, pct):
    schedule = one_cycle(0.4, total, pct_start=pct, anneal_strategy=strategy, three_phase=three_phase)
    got = schedule(np.arange(total))
    expected = [
        _one_cycle_reference(0.4, total, pct, 25.0, 1e4, three_phase, strategy, t) for t in range(total)
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert max(got) <= 0.4 * (1 + 1e-12)
    assert got[0] == pytest.approx(0.4 / 25)


@pytest.mark.parametrize("three_phase", [False, True])
def test_one_cycle_matches_torch_one_cycle_lr(three_phase):
    torch = pytest.importorskip("torch")
    total = 90
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.1)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=0.3, total_steps=total, pct_start=0.3, three_phase=three_phase, cycle_momentum=False
    )
    lrs = [optimizer.param_groups[0]["lr"]]
    for _ in range(total - 1):
        optimizer.step()
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    np.testing.assert_allclose(
        one_cycle(0.3, total, three_phase=three_phase)(np.arange(total)), lrs, rtol=1e-12
    )
