"""The range-test loop: ramp, smoothing, stop rule, chunked reading."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from lrscout import RangeTestState, exponential_ramp, linear_ramp, range_test


class Quadratic:
    """Full-batch gradient descent on ``f(w) = 0.5 * w^T H w + shift`` (diagonal H)."""

    def __init__(self, eigenvalues, momentum=0.0, shift=0.0):
        self.h = np.asarray(eigenvalues, dtype=float)
        self.w = np.ones_like(self.h)
        self.v = np.zeros_like(self.h)
        self.momentum = momentum
        self.shift = shift

    def __call__(self, lr):
        loss = 0.5 * float(self.w @ (self.h * self.w)) + self.shift
        self.v = self.momentum * self.v + self.h * self.w
        self.w = self.w - lr * self.v
        return loss


def test_records_the_exact_ramp_and_the_raw_losses():
    seen = []

    def step_fn(lr):
        seen.append(lr)
        return 1.0 / (1 + len(seen))

    for mode, ramp in (("exponential", exponential_ramp), ("linear", linear_ramp)):
        seen.clear()
        result = range_test(step_fn, start_lr=1e-4, end_lr=1.0, num_steps=37, mode=mode)
        expected = ramp(1e-4, 1.0, 37)(np.arange(37))
        assert seen == expected.tolist()
        assert np.array_equal(result.lrs, expected)
        assert result.losses.tolist() == [1.0 / (2 + i) for i in range(37)]
        assert result.stop_reason == "completed"
        assert (result.start_lr, result.end_lr, result.num_steps, result.mode) == (1e-4, 1.0, 37, mode)


def test_smoothing_is_the_bias_corrected_ema():
    rng = np.random.default_rng(0)
    losses = rng.uniform(1, 2, size=50)
    it = iter(losses)
    result = range_test(lambda lr: next(it), num_steps=50, smoothing=0.9)
    m, expected = 0.0, []
    for t, loss in enumerate(losses):
        m = 0.9 * m + 0.1 * loss
        expected.append(m / (1 - 0.9 ** (t + 1)))
    np.testing.assert_allclose(result.smoothed_losses, expected, rtol=1e-14)
    assert result.smoothed_losses[0] == losses[0]  # no bias toward zero
    again = iter(losses)
    assert np.array_equal(
        range_test(lambda lr: next(again), num_steps=50, smoothing=0.0).smoothed_losses, losses
    )


def test_divergence_stops_at_the_first_step_over_the_factor():
    losses = [1.0, 0.5, 0.4, 0.5, 1.0, 1.5, 1.7, 100.0, 1.0]
    it = iter(losses)
    result = range_test(lambda lr: next(it), num_steps=9, smoothing=0.0, divergence_factor=4.0)
    # 1.7 > 4 * 0.4 is the first loss over four times the best.
    assert result.stop_reason == "diverged"
    assert result.losses.tolist() == losses[:7]


def test_stop_on_divergence_false_runs_all_steps():
    losses = [1.0, 0.1, 5.0, 6.0]
    it = iter(losses)
    result = range_test(lambda lr: next(it), num_steps=4, smoothing=0.0, stop_on_divergence=False)
    assert result.stop_reason == "completed"
    assert len(result) == 4


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_loss_stops_and_is_recorded(bad):
    losses = [1.0, 0.9, bad, 0.5]
    it = iter(losses)
    result = range_test(lambda lr: next(it), num_steps=4)
    assert result.stop_reason == "non-finite"
    assert len(result) == 3
    assert np.array_equal(result.losses, [1.0, 0.9, bad], equal_nan=True)
    assert math.isnan(result.smoothed_losses[-1])


@pytest.mark.parametrize("chunk", [1, 2, 3, 8, 100])
def test_chunked_reading_does_not_change_the_result(chunk):
    reference = range_test(Quadratic([4.0, 1.0]), start_lr=1e-3, end_lr=10.0, num_steps=80)
    calls = []

    def read(pending):
        calls.append(len(pending))
        return [float(x) for x in pending]

    chunked = range_test(
        Quadratic([4.0, 1.0]), start_lr=1e-3, end_lr=10.0, num_steps=80, sync_every=chunk, read_losses=read
    )
    assert chunked == reference
    assert reference.stop_reason == "diverged"
    # One read per chunk, the last one cut short by the stop.
    assert sum(calls) >= len(reference)
    assert all(size == chunk for size in calls[:-1])
    assert len(calls) == math.ceil(len(reference) / chunk)


def test_steps_past_the_stop_in_a_chunk_are_not_recorded():
    losses = [1.0, 1.0, math.nan, 1.0, 1.0, 1.0]
    it = iter(losses)
    result = range_test(lambda lr: next(it), num_steps=6, sync_every=6)
    assert len(result) == 3


def test_a_step_fn_that_runs_out_of_data_ends_the_test():
    losses = iter([1.0, 0.9, 0.8])
    result = range_test(lambda lr: next(losses), num_steps=10)
    assert result.stop_reason == "ended"
    assert result.losses.tolist() == [1.0, 0.9, 0.8]


def test_state_machine_can_be_driven_by_hand():
    state = RangeTestState(
        start_lr=0.01, end_lr=1.0, num_steps=3, mode="linear", smoothing=0.0, divergence_factor=4.0
    )
    assert [state.lr_at(i) for i in range(3)] == [0.01, 0.505, 1.0]
    assert not state.record([2.0, 1.0])
    assert state.record([0.5])
    result = state.result({"framework": "test"})
    assert result.stop_reason == "completed"
    assert dict(result.info) == {"framework": "test"}


def test_exceptions_from_step_fn_propagate():
    def step_fn(lr):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        range_test(step_fn)


def test_progress_bar_runs_on_a_terminal_only(capsys, monkeypatch):
    import io
    import sys

    range_test(Quadratic([1.0]), num_steps=10, progress=True)
    assert capsys.readouterr().err == ""  # stderr is no terminal here: nothing for a log

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    range_test(Quadratic([1.0]), num_steps=10, progress=True)
    assert "LR range test" in sys.stderr.getvalue()


# Known physics: full-batch GD on a quadratic diverges exactly past lr = 2 / lambda_max,
# with heavy-ball momentum beta past 2 (1 + beta) / lambda_max.


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9])
@pytest.mark.parametrize(("start", "mode"), [(1e-3, "exponential"), (0.9, "linear")])
def test_quadratic_never_stops_below_the_stability_limit(momentum, start, mode):
    h = [10.0, 3.0, 0.5]
    limit = 2 * (1 + momentum) / max(h)
    result = range_test(
        Quadratic(h, momentum), start_lr=start * limit, end_lr=0.99 * limit, num_steps=300, mode=mode
    )
    assert result.stop_reason == "completed"


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9])
def test_quadratic_stops_above_the_stability_limit(momentum):
    h = [10.0, 3.0, 0.5]
    limit = 2 * (1 + momentum) / max(h)
    # A ramp through lr = 1 / lambda_max would annihilate the unstable direction
    # before the limit is reached; start close to the limit so it survives.
    result = range_test(
        Quadratic(h, momentum), start_lr=0.9 * limit, end_lr=1.5 * limit, num_steps=300, mode="linear"
    )
    assert result.stop_reason in ("diverged", "non-finite")
    assert result.lrs[-1] > limit


def test_a_huge_plan_costs_nothing_up_front():
    # num_steps=10**13 used to tabulate the whole ramp (80 TB) before the first step.
    calls = []

    def step_fn(lr):
        if len(calls) == 5:
            raise StopIteration
        calls.append(lr)
        return 1.0

    result = range_test(step_fn, start_lr=1e-7, end_lr=10.0, num_steps=10**13)
    assert (len(result), result.stop_reason, result.num_steps) == (5, "ended", 10**13)
    assert np.array_equal(result.lrs, exponential_ramp(1e-7, 10.0, 10**13)(np.arange(5)))
    assert calls == result.lrs.tolist()


def test_a_ramp_to_the_largest_floats_stays_finite():
    # log(end / start) overflowed for end_lr / start_lr > 1.8e308.
    ramp = exponential_ramp(1e-300, 1e300, 5)(np.arange(5))
    assert np.all(np.isfinite(ramp))
    assert ramp[0] == 1e-300 and ramp[-1] == 1e300
    assert np.allclose(np.log10(ramp), [-300, -150, 0, 150, 300])


def _one_step_at_a_time(step_fn, **settings):
    """The loop as the definition reads: one step, then its loss recorded, until the state stops."""
    state = RangeTestState(**settings)
    for step in range(state.max_steps):
        try:
            loss = step_fn(state.lr_at(step))
        except StopIteration:
            break
        if state.record([float(loss)]):
            break
    return state.result()


CURVES = {
    # Diverges inside the planned ramp.
    "diverges": dict(start_lr=1e-3, end_lr=10.0, num_steps=80),
    # Still falling at end_lr: the extension runs, then diverges.
    "extends": dict(start_lr=1e-6, end_lr=1e-3, num_steps=40, extend=True),
    # Never diverges: every planned step, then the whole extension.
    "completes": dict(start_lr=1e-6, end_lr=1e-5, num_steps=30, extend=True),
    "linear": dict(start_lr=1e-3, end_lr=1.0, num_steps=57, mode="linear", extend=True),
}
DEFAULTS = dict(mode="exponential", smoothing=0.98, divergence_factor=4.0, extend=False)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 8, 64, 10_000])
@pytest.mark.parametrize("curve", sorted(CURVES))
def test_chunks_give_the_result_of_one_step_at_a_time_and_run_to_their_end(curve, chunk):
    settings = {**DEFAULTS, **CURVES[curve]}
    reference = _one_step_at_a_time(Quadratic([4.0, 1.0]), **settings)
    lrs_seen = []
    quadratic = Quadratic([4.0, 1.0])

    def step_fn(lr):
        lrs_seen.append(lr)
        return quadratic(lr)

    chunked = range_test(step_fn, sync_every=chunk, **settings)
    assert chunked == reference
    # Every step of the chunk that holds the stop runs; no step of a later chunk does.
    state = RangeTestState(**settings)
    end = next(end for begin, end in state.chunks(chunk) if end >= len(reference))
    assert lrs_seen == [state.lr_at(step) for step in range(end)]


@pytest.mark.parametrize("chunk", [1, 4, 100])
def test_data_running_out_mid_chunk_ends_the_test_with_the_steps_that_ran(chunk):
    losses = [3.0, 2.0, 1.5, 1.2, 1.1, 1.0, 0.9]
    settings = {**DEFAULTS, "start_lr": 1e-3, "end_lr": 1.0, "num_steps": 20}

    def replay():
        it = iter(losses)
        return lambda lr: next(it)

    reference = _one_step_at_a_time(replay(), **settings)
    assert range_test(replay(), sync_every=chunk, **settings) == reference
    assert reference.stop_reason == "ended" and len(reference) == len(losses)


def test_chunks_end_at_the_planned_end_and_cover_the_extension():
    state = RangeTestState(**{**DEFAULTS, "start_lr": 1e-3, "end_lr": 1.0, "num_steps": 10, "extend": True})
    assert state.max_steps == 20
    assert list(state.chunks(4)) == [(0, 4), (4, 8), (8, 10), (10, 14), (14, 18), (18, 20)]
    assert list(state.chunks(100)) == [(0, 10), (10, 20)]
    plain = RangeTestState(**{**DEFAULTS, "start_lr": 1e-3, "end_lr": 1.0, "num_steps": 10})
    assert list(plain.chunks(3)) == [(0, 3), (3, 6), (6, 9), (9, 10)]


def test_the_rate_table_read_a_chunk_at_a_time_is_the_ramp_read_a_step_at_a_time():
    from lrscout import _engine

    settings = {**DEFAULTS, "start_lr": 1e-7, "end_lr": 10.0, "num_steps": 3 * _engine._BLOCK, "extend": True}
    by_step = RangeTestState(**settings)
    expected = [by_step.lr_at(step) for step in range(by_step.max_steps)]
    by_chunk = RangeTestState(**settings)
    # Chunks larger than a block are read a block at a time, and come out the same.
    got = [
        lr for begin, end in by_chunk.chunks(_engine._BLOCK + 5) for lr in by_chunk.lrs_between(begin, end)
    ]
    assert got == expected
    # As many steps as distinct rates fit between start_lr and end_lr allow (more are refused).
    huge = RangeTestState(**{**settings, "num_steps": 2**40})
    assert list(itertools.islice(huge.lrs_between(0, 2**40), 3)) == [huge.lr_at(i) for i in range(3)]
    assert len(huge._lrs) <= _engine._BLOCK


# Losses of any sign. The stop rule once read "smoothed > 4 x best", which a negative loss meets
# at its second step (-9.9 > 4 x -10); the same physics must hold whatever the loss's offset.

SHIFTS = [-1e6, -10.0, -1.0, -1e-3, 0.0, 1e-3, 10.0]


@pytest.mark.parametrize("shift", SHIFTS)
@pytest.mark.parametrize(("start", "mode"), [(1e-3, "exponential"), (0.9, "linear")])
def test_a_shifted_quadratic_never_stops_below_the_stability_limit(shift, start, mode):
    h = [10.0, 3.0, 0.5]
    limit = 2 / max(h)
    result = range_test(
        Quadratic(h, shift=shift), start_lr=start * limit, end_lr=0.99 * limit, num_steps=300, mode=mode
    )
    assert result.stop_reason == "completed"
    assert not any(message.startswith("diverging from the start") for message in result.warnings)


@pytest.mark.parametrize("shift", SHIFTS)
def test_a_shifted_quadratic_stops_above_the_stability_limit(shift):
    h = [10.0, 3.0, 0.5]
    limit = 2 / max(h)
    result = range_test(
        Quadratic(h, shift=shift), start_lr=0.9 * limit, end_lr=3 * limit, num_steps=300, mode="linear"
    )
    assert result.stop_reason in ("diverged", "non-finite")
    assert result.lrs[-1] > limit


class GaussianNLL:
    """Gradient descent on the negative log-likelihood of a variance: ``0.5 s + 0.5 v exp(-s)``.

    ``s`` is the log variance and ``v`` the data's variance; the minimum, ``0.5 (log v + 1)``, is
    negative for ``v < 1/e``, and its curvature there is 0.5: gradient descent is stable for
    ``lr < 4``.
    """

    def __init__(self, variance=0.01):
        self.v, self.s = variance, 0.0

    def __call__(self, lr):
        loss = 0.5 * self.s + 0.5 * self.v * math.exp(-self.s)
        self.s -= lr * (0.5 - 0.5 * self.v * math.exp(-self.s))
        return loss


@pytest.mark.parametrize("mode", ["exponential", "linear"])
def test_a_gaussian_nll_through_zero_stops_only_past_its_limit(mode):
    below = range_test(GaussianNLL(), start_lr=1e-3, end_lr=3.9, num_steps=300, mode=mode)
    assert below.stop_reason == "completed" and below.losses[0] > 0 > below.losses.min()
    above = range_test(GaussianNLL(), start_lr=1e-3, end_lr=40.0, num_steps=300, mode=mode)
    assert above.stop_reason == "diverged" and above.lrs[-1] > 4.0
    assert above.suggestion.lr < 4.0


@pytest.mark.parametrize(
    ("name", "losses"),
    [
        ("zeros, then a hair", [0.0, 0.0, 0.0, 1e-9] + [1e-9] * 46),
        ("all zeros", [0.0] * 50),
        ("flat negative", [-5.0] * 50),
        ("flat negative, noisy", list(-5.0 + 0.01 * np.random.default_rng(0).normal(size=50))),
        ("flat around zero, noisy, from below", [-0.004, *(0.01 * np.random.default_rng(1).normal(size=49))]),
        ("falling from zero", list(-np.linspace(0.0, 3.0, 50))),
        ("falling negative", list(-10.0 - np.linspace(0.0, 1.0, 50))),
    ],
)
def test_curves_that_do_not_rise_never_diverge(name, losses):
    it = iter(losses)
    result = range_test(lambda lr: next(it), num_steps=len(losses))
    assert result.stop_reason == "completed", name


def test_noise_below_zero_is_not_divergence():
    # 300 noisy flat curves at -5, and around 0 from a first loss below it: none stops.
    for seed in range(300):
        for level in (-5.0, 0.0):
            losses = level + 0.01 * np.random.default_rng(seed).normal(size=100)
            losses[0] = level - abs(losses[0] - level)
            step_fn = iter(losses).__next__
            assert range_test(lambda lr, f=step_fn: f(), num_steps=100).stop_reason == "completed", (
                seed,
                level,
            )


def test_a_loss_at_zero_that_then_blows_up_stops():
    losses = [0.0, 0.0, 0.0, 1e-9, *([1e-9] * 6), *np.geomspace(1e-6, 1e6, 40)]
    it = iter(losses)
    result = range_test(lambda lr: next(it), num_steps=len(losses))
    assert result.stop_reason == "diverged" and 10 < len(result) < len(losses)


@pytest.mark.parametrize("smoothing", [0.0, 0.98])
def test_a_negative_loss_that_blows_up_still_stops(smoothing):
    # -10 falling to -12 (its depth: 12, more than its range of 2), then rising past the best by
    # three depths: past 24.
    losses = [*np.linspace(-10.0, -12.0, 20), *np.geomspace(1.0, 1e6, 30)]
    it = iter(losses)
    result = range_test(lambda lr: next(it), num_steps=len(losses), smoothing=smoothing)
    best = float(np.min(result.smoothed_losses))
    assert result.stop_reason == "diverged"
    assert result.smoothed_losses[-1] - best > 3 * abs(best) >= result.smoothed_losses[-2] - best


def test_for_positive_losses_the_rule_is_still_a_factor_over_the_best():
    # An independent implementation of the rule that positive losses have always had.
    rng = np.random.default_rng(0)
    for trial in range(200):
        losses = np.exp(np.cumsum(rng.normal(scale=0.3, size=60)))
        beta, factor = [0.0, 0.5, 0.9, 0.98][trial % 4], [1.5, 4.0][trial % 2]
        average, best, expected = 0.0, math.inf, len(losses)
        for t, loss in enumerate(losses):
            average = beta * average + (1 - beta) * loss
            smooth = average / (1 - beta ** (t + 1))
            if t > 0 and smooth > factor * best:
                expected = t + 1
                break
            best = min(best, smooth)
        step_fn = iter(losses).__next__
        result = range_test(lambda lr, f=step_fn: f(), num_steps=60, smoothing=beta, divergence_factor=factor)
        assert len(result) == expected


def test_a_ramp_of_two_adjacent_floats_is_allowed_when_it_can_be_told_apart():
    # Two steps at two distinct floats is a ramp; ten cannot all differ (see test_bad_inputs).
    result = range_test(lambda lr: 1.0, start_lr=1.0, end_lr=math.nextafter(1.0, 2.0), num_steps=2)
    assert result.lrs.tolist() == [1.0, math.nextafter(1.0, 2.0)]


def test_max_lr_caps_the_extension():
    calls = []

    def falling(lr):
        calls.append(lr)
        return 1.0 / len(calls)

    result = range_test(falling, start_lr=1e-3, end_lr=1.0, num_steps=20, extend=True, max_lr=5.0)
    assert len(result) > 20 and result.lrs[-1] <= 5.0
    assert max(calls) <= 5.0
