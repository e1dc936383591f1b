"""RangeTestResult: immutability, files, suggestions, plots."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrscout import RangeTestResult, range_test
from lrscout._suggest import _FALL_RANGE, _HORIZON_RANGE, auto, margin


def _result(losses, lrs=None, stop_reason="completed", **info):
    n = len(losses)
    lrs = np.geomspace(1e-5, 1.0, n) if lrs is None else lrs
    return RangeTestResult(
        lrs=lrs,
        losses=losses,
        smoothed_losses=losses,
        stop_reason=stop_reason,
        start_lr=float(lrs[0]),
        end_lr=float(lrs[-1]),
        num_steps=n,
        mode="exponential",
        smoothing=0.0,
        divergence_factor=4.0,
        info=info,
    )


def _curve(seed=0, n=100, noise=0.02):
    """A typical range-test curve: flat, falling, minimum, then blowing up."""
    rng = np.random.default_rng(seed)
    x = np.linspace(-5, 1, n)
    clean = 2.0 - 1.5 / (1 + np.exp(-3 * (x + 2))) + np.exp(4 * (x - 0.6))
    losses = clean * np.exp(rng.normal(0, noise, n))
    step = iter(losses)
    return range_test(lambda lr: next(step), start_lr=1e-5, end_lr=10.0, num_steps=n, divergence_factor=1e9)


def test_arrays_are_read_only_copies_and_fields_frozen():
    losses = np.array([3.0, 2.0, 1.0])
    result = _result(losses)
    losses[0] = 99.0
    assert result.losses[0] == 3.0
    with pytest.raises(ValueError, match="read-only"):
        result.losses[0] = 1.0
    with pytest.raises(AttributeError):
        result.stop_reason = "diverged"  # type: ignore[misc]
    with pytest.raises(TypeError):
        result.info["x"] = 1  # type: ignore[index]


def test_json_round_trip_is_exact_with_non_finite_values(tmp_path):
    result = _curve()
    path = tmp_path / "r.json"
    result.to_json(path)
    assert RangeTestResult.from_json(path) == result
    odd = _result([1.0, 0.1 + 0.2, math.inf], stop_reason="non-finite", framework="numpy", batch_size=None)
    odd.to_json(path)
    back = RangeTestResult.from_json(path)
    assert back == odd
    assert back.losses[1] == 0.1 + 0.2
    assert dict(back.info) == {"framework": "numpy", "batch_size": None}
    json.loads(path.read_text())  # strict JSON: no bare NaN / Infinity


def test_csv_has_one_row_per_step_at_full_precision(tmp_path):
    result = _curve()
    path = tmp_path / "r.csv"
    result.to_csv(path)
    with path.open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["step", "lr", "loss", "smoothed_loss", "trend"]
    assert len(rows) == len(result) + 1
    assert [float(r[1]) for r in rows[1:]] == result.lrs.tolist()
    assert [float(r[2]) for r in rows[1:]] == result.losses.tolist()
    assert [float(r[3]) for r in rows[1:]] == result.smoothed_losses.tolist()
    assert [float(r[4]) for r in rows[1:]] == result.trend.tolist()


def test_json_saves_the_trend_the_plot_draws(tmp_path):
    result = _curve()
    path = tmp_path / "r.json"
    result.to_json(path)
    assert json.loads(path.read_text())["trend"] == result.trend.tolist()
    assert RangeTestResult.from_json(path) == result  # derived from the losses: read, not trusted
    assert RangeTestResult.from_json(path).trend.tolist() == result.trend.tolist()


@pytest.mark.parametrize(
    ("edit", "error", "match"),
    [
        (lambda d: d.update(format="pickle"), ValueError, "not an lrscout result"),
        (lambda d: d.pop("losses"), ValueError, "fields missing"),
        (lambda d: d.update(extra=1), ValueError, "unexpected"),
        (
            lambda d: d.update(losses=d["losses"][:-1]),
            ValueError,
            "losses must have one entry per learning rate",
        ),
        (lambda d: d.update(lrs=["a", *d["lrs"][1:]]), ValueError, r"lrs\[0\] must be a number"),
        (lambda d: d.update(num_steps="100"), TypeError, "num_steps must be an integer"),
        (lambda d: d.update(stop_reason="bored"), ValueError, "stop_reason must be one of"),
        (lambda d: d.update(lrs={"0": 1}), TypeError, "lrs must be a list"),
        (lambda d: d.update(info=[]), TypeError, "info must be an object"),
    ],
)
def test_from_json_rejects_bad_files(tmp_path, edit, error, match):
    data = _curve().to_dict()
    edit(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(error, match=match):
        RangeTestResult.from_json(path)


def test_from_json_rejects_non_json_and_bare_nan(tmp_path):
    path = tmp_path / "bad.json"
    path.write_bytes(b"\x80\x04\x95 pickle")
    with pytest.raises(ValueError, match="not valid JSON"):
        RangeTestResult.from_json(path)
    data = json.dumps(_curve().to_dict()).replace('"lrs": [', '"lrs": [NaN, ', 1)
    path.write_text(data)
    with pytest.raises(ValueError, match="bare NaN"):
        RangeTestResult.from_json(path)


@pytest.mark.parametrize("method", ["auto", "valley", "steepest", "minimum"])
def test_suggestions_on_a_typical_curve_lie_in_the_descent(method):
    result = _curve()
    suggestion = result.suggest(method)
    assert suggestion.method == method
    assert result.lrs[0] <= suggestion.lr <= result.lrs[-1]
    assert abs(math.log(result.lrs[suggestion.index] / suggestion.lr)) <= math.log(
        result.lrs[1] / result.lrs[0]
    )
    assert float(suggestion) == suggestion.lr


def test_the_default_suggestion_is_auto():
    result = _curve()
    assert result.suggestion == result.suggest() == result.suggest("auto")


@pytest.mark.parametrize(
    "info",
    [
        {"optimizer": "SGD"},
        {"optimizer": "Adam", "batch_size": 2},
        {"optimizer": "SGD", "momentum": 0.9},
        {"optimizer": "Adagrad"},
        {"optimizer": "Lion"},
    ],
)
def test_auto_reads_the_recorded_optimizer_and_momentum(info):
    curve = _curve(noise=0.05)
    adjusted = _result(curve.losses, curve.lrs, **info).suggest("auto").lr
    expected = auto(curve.lrs, curve.losses, optimizer=info["optimizer"], momentum=info.get("momentum", 0.0))
    assert adjusted == expected


def _margin(optimizer="SGD", momentum=0.0, schedule="constant", total_steps=None, fall=1.0):
    return margin(
        optimizer=optimizer,
        momentum=momentum,
        schedule=schedule,
        total_steps=total_steps,
        test_steps=100,
        fall=fall,
    )


def test_the_margin_orders_optimizers_schedules_and_lengths_as_training_does():
    # Adam's normalised steps need a wider margin than plain SGD's; heavy-ball momentum
    # multiplies the effective step by 1 / (1 - beta), so beta = 0.5 lies between 0 and 0.9.
    assert _margin("Adam") > _margin("SGD")
    assert _margin("SGD") < _margin("SGD", momentum=0.5) < _margin("SGD", momentum=0.9)
    # A decaying schedule spends few steps at its peak: the peak can sit higher than a constant rate.
    for schedule in ("one_cycle", "cosine", "linear"):
        assert _margin(schedule=schedule, fall=5.0) < _margin(fall=5.0)
    # Longer training at a constant rate wants a smaller rate, never a larger one.
    for optimizer in ("SGD", "Adam", "Adagrad", None):
        lengths = [_margin(optimizer, total_steps=t) for t in (100, 1_000, 10_000)]
        assert lengths == sorted(lengths)
    # Never below 1: the rate does not lie past the curve's minimum.
    assert min(_margin(schedule=s, total_steps=10, fall=1e-6) for s in ("constant", "one_cycle")) >= 1.0


def test_the_margin_holds_at_the_edge_of_the_fitted_range():
    low, high = _FALL_RANGE
    assert _margin("Adam", fall=math.exp(low) / 100) == _margin("Adam", fall=math.exp(low))
    assert _margin("Adam", fall=math.exp(high) * 100) == _margin("Adam", fall=math.exp(high))
    longest = 100 * math.exp(_HORIZON_RANGE[1])
    assert _margin("Adam", total_steps=round(longest * 100)) == _margin(
        "Adam", total_steps=round(longest * 1.01)
    )


def test_lr_range_brackets_the_suggestion():
    result = _curve()
    base, peak = result.lr_range()
    assert result.lrs[0] <= base < result.suggestion.lr < peak <= result.lrs[-1]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(20, 300), noise=st.floats(0.0, 0.2))
def test_suggestions_stay_inside_the_tested_range(seed, n, noise):
    result = _curve(seed, n, noise)
    for method in ("auto", "valley", "steepest", "minimum"):
        try:
            lr = result.suggest(method).lr
        except ValueError as error:
            assert "suggest:" in str(error)
            continue
        assert result.lrs[0] <= lr <= result.lrs[-1]
    base, peak = result.lr_range()
    assert result.lrs[0] <= base <= peak <= result.lrs[-1]


@pytest.mark.parametrize("method", ["auto", "valley", "steepest", "minimum"])
def test_a_curve_that_never_descends_raises_and_says_what_to_try(method):
    result = _result(np.linspace(1.0, 3.0, 50))
    with pytest.raises(ValueError, match=r"no decrease of the loss.*smaller start_lr"):
        result.suggest(method)


@pytest.mark.parametrize("method", ["auto", "valley", "steepest", "minimum"])
def test_a_curve_too_short_raises(method):
    result = _result([1.0, 0.5, math.nan], stop_reason="non-finite")
    with pytest.raises(ValueError, match=r"needs at least 5 finite losses.*recorded 2"):
        result.suggest(method)


def test_minimum_below_the_tested_range_raises():
    result = _result(np.concatenate([[1.0, 0.5, 0.2, 0.1, 0.05], np.linspace(0.1, 5.0, 40)]))
    with pytest.raises(ValueError, match="below the tested start_lr"):
        result.suggest("minimum")


def test_unknown_method():
    with pytest.raises(
        ValueError, match="method must be one of 'auto', 'refined', 'valley', 'steepest', 'minimum'"
    ):
        _curve().suggest("best")


def test_plots_return_axes_and_write_files(tmp_path):
    import matplotlib.pyplot as plt

    result = _curve()
    ax = result.plot(path=tmp_path / "loss.png")
    assert ax.get_xscale() == "log"
    assert (tmp_path / "loss.png").stat().st_size > 1000
    labels = [line.get_label() for line in ax.get_lines()]
    assert any(label.startswith("suggested lr") for label in labels)
    _, own = plt.subplots()
    assert result.plot_lr(ax=own, path=tmp_path / "lr.png") is own
    assert own.get_yscale() == "log"
    np.testing.assert_array_equal(own.get_lines()[0].get_ydata(), result.lrs)


def test_plot_of_a_curve_without_suggestion_still_draws():
    ax = _result(np.linspace(1.0, 3.0, 50)).plot()
    assert any("no suggestion" in text.get_text() for text in ax.get_legend().get_texts())


def _curve_result(losses):
    n = len(losses)
    return RangeTestResult(
        lrs=np.geomspace(1e-4, 10.0, n),
        losses=losses,
        smoothed_losses=losses,
        stop_reason="completed",
        start_lr=1e-4,
        end_lr=10.0,
        num_steps=n,
        mode="exponential",
        smoothing=0.0,
        divergence_factor=4.0,
    )


# Losses at the ends of the float range: matplotlib's transforms and the smoother's sums
# overflowed, and _repr_html_ / plot(path=) raised from inside matplotlib.
HUGE = {
    "falling near the largest float": np.linspace(1.7e308, 1e308, 50),
    "falling to a valley near the largest float": np.r_[
        np.linspace(1.7e308, 1e307, 40), np.linspace(1e307, 1.7e308, 10)
    ],
    "from +1e308 to -1e308": np.r_[np.linspace(1e308, 1e300, 40), -1e308 * np.ones(10)],
    "negative, to -1e308": -np.geomspace(1.0, 1e308, 50),
    "denormal": np.linspace(1e-308, 1e-320, 50),
    "huge with nan": np.r_[np.linspace(1.7e308, 1e308, 45), [np.nan] * 5],
}


@pytest.mark.parametrize("name", HUGE)
def test_losses_at_the_ends_of_the_float_range_still_render(name, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    result = _curve_result(HUGE[name])
    assert result._repr_html_().startswith('<div class="lrscout"><img src="data:image/png;base64,')
    result.plot(path=tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes().startswith(b"\x89PNG")
    smooth = __import__("lrscout")._suggest.zero_lag_smooth(HUGE[name][np.isfinite(HUGE[name])])
    assert np.all(np.isfinite(smooth))
    # The trend the plot draws and the files keep: finite wherever the losses are.
    assert np.all(np.isfinite(result.trend[np.isfinite(HUGE[name])]))


def test_a_huge_curve_suggests_what_its_scaled_copy_suggests():
    # The smoother works in the curve's own units: a curve and the same curve times 1e300
    # have their minimum at the same step.
    x = np.log10(np.geomspace(1e-4, 10.0, 60))
    curve = 1.0 / (1.0 + np.exp(3 * (x + 2))) + np.where(x > 0, x**2, 0.0) + 0.1
    assert _curve_result(curve * 1.5e307).suggest("auto").lr == _curve_result(curve).suggest("auto").lr
