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
