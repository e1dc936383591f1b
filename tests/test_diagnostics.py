"""Curve warnings: what a range-test curve cannot support is said, kept, drawn and printed."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import lrscout
from lrscout import CurveWarning, RangeTestResult
from lrscout._suggest import diagnose
from lrscout.cli import main
from lrscout.models import SoftmaxClassifier, find_lr

LRS = np.geomspace(1e-5, 10.0, 100)
# Falls from lr ~1e-3, lowest near 0.3, rises past it: a curve with a clear turn.
GOOD = 1.0 / (1.0 + 30.0 * LRS) + np.where(LRS > 0.3, (LRS - 0.3) ** 2, 0.0)


def _kinds(notes):
    return [note.split(":")[0] for note in notes]


def test_a_clear_curve_draws_no_warning():
    assert diagnose(LRS, GOOD, num_steps=100, end_lr=10.0, stop_reason="diverged") == ()


def test_a_curve_still_falling_at_end_lr_never_turned_up():
    falling = 1.0 / (1.0 + 30.0 * LRS)
    notes = diagnose(LRS, falling, num_steps=100, end_lr=10.0, stop_reason="completed")
    assert _kinds(notes) == ["never turned up"]
    assert "Raise end_lr (e.g. to 100)" in notes[0]


def test_a_short_run_says_how_many_steps_and_the_fix():
    notes = diagnose(LRS[:40], GOOD[:40], num_steps=100, end_lr=10.0, stop_reason="ended", short_fix="Do X.")
    assert _kinds(notes)[0] == "ran short"
    assert "40 of the 100 planned steps" in notes[0] and notes[0].endswith("Do X.")


def test_a_curve_rising_from_the_start_asks_for_a_lower_start():
    rising = np.linspace(1.0, 3.0, 100)
    notes = diagnose(LRS, rising, num_steps=100, end_lr=10.0, stop_reason="completed")
    assert _kinds(notes) == ["diverging from the start"]
    assert "Lower start_lr (e.g. to 1e-07)" in notes[0]


def test_a_fall_inside_the_noise_is_too_noisy():
    rng = np.random.default_rng(0)
    noisy = GOOD * np.exp(1.0 * rng.standard_normal(100))  # a fall of 5 standard errors
    notes = diagnose(LRS, noisy, num_steps=100, end_lr=10.0, stop_reason="completed")
    assert "too noisy" in _kinds(notes)


def test_a_dip_among_the_first_points_of_a_flat_noisy_curve_is_no_silent_answer():
    # Heavy noise around a flat loss, lowest at the third point: the noise must
    # be measured on the curve's first 20 steps, not on the two before the dip
    # (or taken as zero for want of more), or the dip passes for a clear fall.
    losses = np.array(
        [0.995, 0.588, 0.103, 1.019, 2.528, 2.839, 0.585, 9.294, 6.984, 0.796, 0.856, 2.609,
         0.775, 1.252, 3.387, 3.286, 0.589, 0.634, 0.577, 0.986, 1.078, 0.678, 2.17]
    )  # fmt: skip
    lrs = np.geomspace(1e-5, 10.0, len(losses))
    notes = diagnose(lrs, losses, num_steps=len(losses), end_lr=10.0, stop_reason="completed")
    try:
        lrscout._suggest.auto(lrs, losses, num_steps=len(losses))
    except lrscout.NoSuggestionError:
        return
    assert "too noisy" in _kinds(notes)


def test_range_test_warns_keeps_and_round_trips(tmp_path):
    def step_fn(lr):  # gradient descent on w^2/2 far below its limit lr = 2: never turns up
        step_fn.w -= lr * step_fn.w
        return 0.5 * step_fn.w**2

    step_fn.w = 1.0
    with pytest.warns(CurveWarning, match="never turned up"):
        result = lrscout.range_test(step_fn, start_lr=1e-6, end_lr=0.01, num_steps=60)
    assert _kinds(result.warnings) == ["never turned up"]
    result.to_json(tmp_path / "r.json")
    assert RangeTestResult.from_json(tmp_path / "r.json").warnings == result.warnings
    assert "1 warnings" in repr(result)


def test_a_run_out_of_data_warns_ran_short():
    losses = iter(np.linspace(2.0, 1.0, 30))

    with pytest.warns(CurveWarning, match="ran short: 30 of the 100 planned steps"):
        result = lrscout.range_test(lambda lr: next(losses), num_steps=100)
    assert result.stop_reason == "ended"


@pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)
def test_keras_short_fit_names_the_epochs_to_pass():
    pytest.importorskip("keras")
    import os

    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    from lrscout.keras import LRFinder

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], dtype="float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(), loss="mse")
    finder = LRFinder(min_lr=1e-4, max_lr=1e-2, steps_per_epoch=4, epochs=3)
    with pytest.warns(CurveWarning, match="fit ran 1 epoch"):
        model.fit(x, y, batch_size=16, callbacks=[finder], verbose=0)
    assert "pass epochs=3 to fit" in finder.result.warnings[0]


def test_the_plot_shows_the_warning_whole(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    falling = 1.0 / (1.0 + 30.0 * LRS)
    result = RangeTestResult(
        lrs=LRS,
        losses=falling,
        smoothed_losses=falling,
        stop_reason="completed",
        start_lr=1e-5,
        end_lr=10.0,
        num_steps=100,
        mode="exponential",
        smoothing=0.0,
        divergence_factor=4.0,
        warnings=diagnose(LRS, falling, num_steps=100, end_lr=10.0, stop_reason="completed"),
    )
    ax = result.plot()
    shown = " ".join(text.get_text().replace("\n", " ") for text in ax.texts)
    assert "warning: never turned up" in shown and "Raise end_lr (e.g. to 100)." in shown
    matplotlib.pyplot.close("all")


def test_the_cli_prints_the_warning_once(tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error", CurveWarning)
        argv = [
            "find-lr",
            "--end-lr",
            "1e-2",
            "--no-extend",
            "--plot",
            "none",
            "--quiet",
            "--json",
            str(tmp_path / "r.json"),
        ]
        assert main(argv) == 0
    out = capsys.readouterr()
    assert out.out.count("warning: never turned up") == 1 and "CurveWarning" not in out.err
    assert RangeTestResult.from_json(tmp_path / "r.json").warnings[0].startswith("never turned up")


def test_models_find_lr_warns_when_the_range_is_too_short():
    X = np.random.default_rng(0).normal(size=(200, 4))
    y = (X[:, 0] > 0).astype(int)
    with pytest.warns(CurveWarning, match="never turned up"):
        find_lr(SoftmaxClassifier(batch_size=None), X, y, start_lr=1e-5, end_lr=1e-2, num_steps=50)


# The range finds its own end ---------------------------------------------------------


def test_extend_keeps_the_ratio_past_end_lr_until_divergence():
    # Gradient descent on w^2/2 diverges past lr = 2; the plan stops at 0.5.
    def step_fn(lr):
        loss = 0.5 * step_fn.w**2
        step_fn.w -= lr * step_fn.w
        return loss

    step_fn.w = 1.0
    result = lrscout.range_test(step_fn, start_lr=1e-3, end_lr=0.5, num_steps=60, extend=True)
    assert result.stop_reason == "diverged" and result.lrs[-1] > 2.0
    assert result.info["extension"]["planned_end_lr"] == 0.5
    assert result.info["extension"]["planned_num_steps"] == 60
    assert result.lrs[59] == 0.5 and len(result) == 60 + result.info["extension"]["extra_steps"]
    ratios = result.lrs[1:] / result.lrs[:-1]
    assert np.allclose(ratios, ratios[0], rtol=1e-9)
    assert (result.end_lr, result.num_steps) == (result.lrs[-1], len(result))
    assert result.warnings == ()


def test_extend_stops_at_end_lr_when_the_loss_has_turned():
    def step_fn(lr):
        loss = 0.5 * step_fn.w**2
        step_fn.w -= lr * step_fn.w
        return loss

    step_fn.w = 1.0
    result = lrscout.range_test(step_fn, start_lr=1e-3, end_lr=100.0, num_steps=60, extend=True)
    assert "extension" not in result.info and result.end_lr == 100.0


def test_extension_is_capped_at_num_steps_more():
    result = lrscout.range_test(
        lambda lr: 1.0 / (1.0 + lr), start_lr=1e-3, end_lr=1.0, num_steps=30, extend=True
    )
    assert len(result) == 60 and result.stop_reason == "completed"
    assert result.info["extension"]["extra_steps"] == 30
    assert result.lrs[-1] == pytest.approx(1.0 * 1000.0 ** (30 / 29), rel=1e-9)
    assert result.warnings[0].startswith("never turned up")


def test_full_batch_logistic_regression_finds_its_end_and_trains_well():
    # Well conditioned, full batch: the loss is still falling at the default end_lr = 10.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 5))
    y = (X @ rng.normal(size=5) + 0.5 * rng.normal(size=500) > 0).astype(int)
    model = SoftmaxClassifier(batch_size=None)
    with pytest.warns(CurveWarning, match="never turned up"):
        planned = find_lr(model, X, y, extend=False)
    result = find_lr(model, X, y)
    assert planned.stop_reason == "completed" and planned.lrs[-1] == 10.0
    assert result.stop_reason in ("diverged", "non-finite") and result.info["extension"]["extra_steps"] > 0
    assert result.warnings == ()

    def trained(lr):
        return SoftmaxClassifier(batch_size=None, lr=lr, epochs=100).fit(X, y).epoch_losses_[-1]

    best = min(trained(lr) for lr in np.geomspace(0.1, 100.0, 13))
    assert trained(result.suggestion.lr) <= 1.1 * best


def test_the_fall_standard_error_matches_monte_carlo():
    # Oracle: the spread of the smoothed fall over many noise draws around a flat curve.
    from lrscout._suggest import _fall_and_noise, zero_lag_smooth

    rng = np.random.default_rng(0)
    n, sigma, minimum = 100, 4.0, 50
    falls, errors = [], []
    for _ in range(2000):
        raw = np.exp(0.1 * rng.standard_normal(n))
        smooth = zero_lag_smooth(raw, sigma=sigma)
        fall, error = _fall_and_noise(raw, smooth, minimum, sigma)
        falls.append(fall)
        errors.append(error)
    assert np.mean(errors) == pytest.approx(np.std(falls), rel=0.1)


def test_a_longer_test_resolves_a_smaller_fall():
    # The same fall (0.15 on the log scale) under the same step-to-step noise:
    # lost in the noise over 100 steps, clear over 1000, as the advice says.
    def curve(n):
        rng = np.random.default_rng(1)
        lrs = np.geomspace(1e-5, 10.0, n)
        trend = -0.15 * np.clip(np.linspace(0, 1.2, n), 0, 1) + np.where(np.arange(n) > 0.9 * n, 5.0, 0.0)
        return lrs, np.exp(trend + 0.5 * rng.standard_normal(n))

    lrs, losses = curve(100)
    with pytest.raises(lrscout.NoSuggestionError, match="raise num_steps"):
        lrscout._suggest.auto(lrs, losses, num_steps=100)
    lrs, losses = curve(1000)
    assert lrs[0] < lrscout._suggest.auto(lrs, losses, num_steps=1000) < lrs[-1]


@pytest.mark.parametrize("offset", [-10.0, -1.0, -GOOD.max()])
def test_a_curve_below_zero_is_read_as_the_same_curve_above_it(offset):
    # The rules and the diagnosis read a loss that goes below 0 on its own scale (no log):
    # every offset below 0 gives the same answer, and the messages say which scale it is.
    shifted = GOOD + offset
    assert diagnose(LRS, shifted, num_steps=100, end_lr=10.0, stop_reason="diverged") == ()
    below = RangeTestResult(
        lrs=LRS,
        losses=shifted,
        smoothed_losses=shifted,
        stop_reason="diverged",
        start_lr=1e-5,
        end_lr=10.0,
        num_steps=100,
        mode="exponential",
        smoothing=0.0,
        divergence_factor=4.0,
    )
    reference = RangeTestResult(
        lrs=LRS,
        losses=GOOD - 20.0,
        smoothed_losses=GOOD - 20.0,
        stop_reason="diverged",
        start_lr=1e-5,
        end_lr=10.0,
        num_steps=100,
        mode="exponential",
        smoothing=0.0,
        divergence_factor=4.0,
    )
    # The same reading; the rule's arithmetic on the shifted losses may differ in the last bits.
    assert below.suggest("auto").lr == pytest.approx(reference.suggest("auto").lr, rel=1e-12)
    noisy = shifted + 1.0 * np.random.default_rng(0).standard_normal(100)
    notes = diagnose(LRS, noisy, num_steps=100, end_lr=10.0, stop_reason="completed")
    assert any(note.startswith("too noisy") and "(in loss units)" in note for note in notes)
    positive = GOOD * np.exp(1.0 * np.random.default_rng(0).standard_normal(100))
    notes = diagnose(LRS, positive, num_steps=100, end_lr=10.0, stop_reason="completed")
    assert any(note.startswith("too noisy") and "(log scale)" in note for note in notes)
