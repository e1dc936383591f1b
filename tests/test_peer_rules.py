"""The peer rules are the peers' rules: valley and minimum are fastai's, steepest is torch-lr-finder's.

``tests/data/peer_rules.json`` holds real range-test curves and what the real
libraries suggest on them, recorded by ``benchmarks/record_peer_fixtures.py``
(fastai cannot be installed with its dependencies here; its suggestion
functions can, see that script). Where torch-lr-finder is installed it is
also run live on the same curves.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lrscout._jsonio import decode_floats
from lrscout._suggest import minimum, steepest, valley

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
