"""The peer rules are the peers' rules: valley and minimum are fastai's, steepest is torch-lr-finder's.

``tests/data/peer_rules.json`` holds real range-test curves and what the real
libraries suggest on them, recorded by ``benchmarks/record_peer_fixtures.py``
Where fastai and torch-lr-finder are installed they are also run live on
the same curves.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lrscout._jsonio import decode_floats
from lrscout._suggest import longest_descent, minimum, steepest, valley

DATA = json.loads((Path(__file__).parent / "data" / "peer_rules.json").read_text())
CURVES = DATA["curves"]
IDS = [curve["name"] for curve in CURVES]


def _arrays(curve):
    return (
        np.array(curve["lrs"]),
        decode_floats(curve["losses"], "losses", "fixture"),
        decode_floats(curve["smoothed_losses"], "smoothed_losses", "fixture"),
    )


@pytest.mark.parametrize("curve", CURVES, ids=IDS)
def test_valley_is_fastais_valley(curve):
    lrs, losses, smoothed = _arrays(curve)
    ours = valley(lrs, losses, smoothed, num_steps=curve["num_steps"])
    # fastai computes in float32 tensors: the same step, its rate rounded to float32.
    assert ours == pytest.approx(curve["fastai"]["valley"], rel=1e-6)
    assert ours in lrs


@pytest.mark.parametrize("curve", CURVES, ids=IDS)
def test_minimum_is_fastais_minimum(curve):
    lrs, losses, smoothed = _arrays(curve)
    assert minimum(lrs, losses, smoothed, num_steps=curve["num_steps"]) == pytest.approx(
        curve["fastai"]["minimum"], rel=1e-6
    )


@pytest.mark.parametrize("curve", CURVES, ids=IDS)
def test_steepest_is_torch_lr_finders_suggestion(curve):
    lrs, losses, smoothed = _arrays(curve)
    assert steepest(lrs, losses, smoothed) == curve["torch_lr_finder"]


@pytest.mark.parametrize("curve", CURVES, ids=IDS)
def test_steepest_live_against_torch_lr_finder(curve):
    torch_lr_finder = pytest.importorskip("torch_lr_finder")
    torch = pytest.importorskip("torch")
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import contextlib
    import io

    import matplotlib.pyplot as plt

    lrs, losses, smoothed = _arrays(curve)
    model = torch.nn.Linear(1, 1)
    finder = torch_lr_finder.LRFinder(model, torch.optim.SGD(model.parameters(), lr=0.1), torch.nn.MSELoss())
    finder.history = {"lr": lrs.tolist(), "loss": smoothed.tolist()}
    _, ax = plt.subplots()
    with contextlib.redirect_stdout(io.StringIO()):
        _, theirs = finder.plot(ax=ax, suggest_lr=True)
    plt.close("all")
    assert steepest(lrs, losses, smoothed) == theirs


def test_the_fixtures_cover_real_and_noisy_curves():
    assert len(CURVES) >= 8
    assert {"fastai", "torch_lr_finder"} <= set(DATA["versions"])
    assert len({curve["fastai"]["valley"] for curve in CURVES}) >= 5


def _fastai_valley_lengths(values):
    """fastai's own double loop (``fastai.callback.schedule.valley``), on a list: the oracle."""
    n = len(values)
    lds, max_start, max_end = [1] * n, 0, 0
    for i in range(1, n):
        for j in range(i):
            if values[i] < values[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    return max_start, max_end


@pytest.mark.parametrize("seed", range(40))
def test_longest_descent_is_fastais_double_loop(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 120))
    # Few distinct values: many ties, which a strict decrease must not count.
    values = rng.integers(0, 6 if seed % 2 else 1000, size=n).astype(float).tolist()
    assert longest_descent(values) == _fastai_valley_lengths(values)


class _Counted(float):
    """A float that counts the comparisons made on it."""

    count = 0

    def __lt__(self, other):
        _Counted.count += 1
        return float(self) < float(other)

    def __neg__(self):
        return _Counted(-float(self))


def test_longest_descent_takes_n_log_n_comparisons_not_n_squared():
    n = 4096
    rng = np.random.default_rng(0)
    values = [_Counted(v) for v in np.cumsum(rng.normal(-0.01, 1.0, size=n))]
    _Counted.count = 0
    longest_descent(values)
    assert _Counted.count <= n * (np.log2(n) + 1)  # fastai's loop: n (n - 1) / 2 = 8.4 million


def test_valley_on_twenty_thousand_steps():
    # (Its double loop took minutes here; the other rules' smoothing sets this test's pace.)
    lrs = np.geomspace(1e-7, 10.0, 20_000)
    rng = np.random.default_rng(1)
    curve = 1.0 / (1.0 + 30.0 * lrs) + np.where(lrs > 0.3, (lrs - 0.3) ** 2, 0.0)
    noisy = curve * np.exp(rng.normal(0.0, 0.01, size=lrs.size))
    assert lrs[0] < valley(lrs, noisy, noisy) < 0.3


@pytest.mark.parametrize("curve", CURVES, ids=IDS)
def test_valley_live_against_fastai(curve):
    schedule = pytest.importorskip("fastai.callback.schedule")
    torch = pytest.importorskip("torch")
    lrs, losses, smoothed = _arrays(curve)
    num_it = curve["num_steps"]
    # What fastai's lr_find hands its suggestion functions.
    window_lrs = torch.tensor(lrs[num_it // 10 : -5])
    window = torch.tensor(smoothed[num_it // 10 : -5], dtype=torch.float32)
    bad = torch.nonzero(~torch.isfinite(window)).view(-1)
    stop = int(bad[0]) if len(bad) else len(window)  # fastai cuts at the first NaN
    theirs, _ = schedule.valley(window_lrs[:stop], window[:stop], num_it)
    assert valley(lrs, losses, smoothed, num_steps=num_it) == pytest.approx(float(theirs), rel=1e-6)


def _fastai_valley_index(losses):
    """The index fastai.callback.schedule.valley picks, from its double loop's run."""
    max_start, max_end = _fastai_valley_lengths(list(losses))
    sections = (max_end - max_start) / 3
    return max_start + int(sections) + int(sections / 2)


@pytest.mark.parametrize("seed", range(40))
def test_valley_in_n_log_n_is_fastais_double_loop(seed):
    # lrscout finds the longest decreasing run by patience sorting; the index must be fastai's
    # on every curve, plateaus (float32 ties) and repeated values included.
    from lrscout._suggest import _fastai_window

    rng = np.random.default_rng(seed)
    n = int(rng.integers(40, 160))
    lrs = np.geomspace(1e-5, 10.0, n)
    x = np.log10(lrs)
    curve = 2.0 / (1.0 + np.exp(2.0 * (x + 2.0))) + np.where(x > 0, x**2, 0.0) + 0.5
    noise = rng.normal(scale=[0.0, 0.01, 0.05][seed % 3], size=n)
    losses = np.round(curve + noise, [6, 2, 1, 6][seed % 4])  # coarse rounding: many ties
    window_rates, window = _fastai_window(lrs, losses, losses, n, "valley")
    assert valley(lrs, losses, losses, num_steps=n) == float(window_rates[_fastai_valley_index(window)])


def test_long_curves_are_smoothed_through_the_fft_and_agree_with_direct_convolution(monkeypatch):
    from lrscout import _suggest

    def direct(y, sigma):
        radius = min(len(y) - 1, int(np.ceil(3 * sigma)))
        kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
        padded = np.concatenate([np.zeros(radius), y, np.zeros(radius)])
        weights = np.concatenate([np.zeros(radius), np.ones(len(y)), np.zeros(radius)])
        return np.convolve(padded, kernel, mode="valid") / np.convolve(weights, kernel, mode="valid")

    rng = np.random.default_rng(0)
    for n in (300, 3000, 30_000):
        y = np.cumsum(rng.normal(size=n))
        sigma = 0.04 * n
        ours = _suggest._gaussian(y, sigma)
        if n * (2 * int(np.ceil(3 * sigma)) + 1) <= _suggest._DIRECT_CONVOLUTION:
            assert np.array_equal(ours, direct(y, sigma))  # short curves: the same numbers, bitwise
        else:
            np.testing.assert_allclose(ours, direct(y, sigma), rtol=1e-9, atol=1e-9 * np.abs(y).max())
    sizes = []
    real = np.convolve
    monkeypatch.setattr(np, "convolve", lambda a, v, mode: sizes.append(len(a) * len(v)) or real(a, v, mode))
    _suggest.auto(np.geomspace(1e-6, 1.0, 200_000), 1.0 / (1.0 + np.geomspace(1e-3, 1e3, 200_000)))
    assert max(sizes, default=0) <= _suggest._DIRECT_CONVOLUTION
