"""The quality benchmark's recipes are the libraries' schedules, and its grid sweep finds the grid's best."""

from __future__ import annotations

import importlib
import math
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def bench():
    """The benchmark's modules, imported with the process environment and path left as they were."""
    before, path = os.environ.get("KERAS_BACKEND"), list(sys.path)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        modules = {name: importlib.import_module(name) for name in ("quality_tasks", "suggestion_quality")}
    finally:
        sys.path[:] = path
        if before is None:
            os.environ.pop("KERAS_BACKEND", None)
        else:
            os.environ["KERAS_BACKEND"] = before
    return SimpleNamespace(**modules)


def _rates(scheduler_factory, total: int, peak: float) -> np.ndarray:
    """The rate of every step of a torch scheduler, as the benchmark's training loop steps it."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=peak)
    scheduler = scheduler_factory(optimizer)
    rates = []
    for _ in range(total):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return np.array(rates)


@pytest.mark.parametrize("total", [2, 7, 65, 226])
def test_the_linear_recipe_is_hugging_faces_linear_schedule_with_warmup(bench, total):
    transformers = pytest.importorskip("transformers")
    expected = _rates(
        lambda opt: transformers.get_linear_schedule_with_warmup(opt, math.ceil(0.1 * total), total),
        total,
        0.3,
    )
    ours = _rates(lambda opt: bench.quality_tasks.torch_scheduler(opt, "linear", 0.3, total), total, 0.3)
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=0)
    np.testing.assert_allclose(
        bench.quality_tasks.rate_table("linear", 0.3, total), expected, rtol=1e-12, atol=1e-300
    )


@pytest.mark.parametrize("total", [10, 65, 226])
def test_the_one_cycle_table_is_torchs_one_cycle_lr(bench, total):
    expected = _rates(
        lambda opt: torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=0.5, total_steps=total, div_factor=8.0, cycle_momentum=False
        ),
        total,
        0.5,
    )
    np.testing.assert_allclose(bench.quality_tasks.rate_table("one_cycle", 0.5, total), expected, rtol=1e-9)


def test_the_warm_up_one_step_ahead_starts_above_zero_and_then_is_the_same(bench):
    plain, ahead = bench.quality_tasks.linear_warmup(100), bench.quality_tasks.linear_warmup(100, ahead=1)
    assert plain(0) == 0.0 and ahead(0) == pytest.approx(0.1)
    assert [ahead(s) for s in range(10, 100)] == [plain(s) for s in range(10, 100)]


def _bowl(grid: np.ndarray, best_at: float, initial: float = 2.0) -> dict[float, float]:
    """A validation loss that learns less and less below ``best_at`` and diverges above it (capped)."""
    distance = np.log10(grid / best_at)
    below = initial - (initial - 0.2) / (1 + distance**2)
    above = np.minimum(initial, 0.2 + 0.9 * distance**2)
    return dict(zip(grid.tolist(), np.where(distance < 0, below, above).tolist(), strict=True))


@pytest.mark.parametrize("best_at", [1e-5, 3e-4, 0.01, 0.5, 10.0])
def test_the_grid_sweep_finds_the_full_grids_best_and_skips_flat_ends(bench, best_at):
    grid = np.logspace(-5, 1, 37)
    loss = _bowl(grid, best_at)
    trained = []

    def train(lr):
        trained.append(lr)
        return loss[lr]

    swept = bench.suggestion_quality.grid_losses(grid, train, initial=2.0)
    full = [loss[lr] for lr in grid.tolist()]
    assert int(np.argmin([2.0 if v is None else v for v in swept])) == int(np.argmin(full))
    assert len(trained) == len(set(trained))
    # Every point skipped is flat: at most 10 % of the way from the untrained loss to the best.
    best = min(full)
    assert all(full[i] >= best + 0.9 * (2.0 - best) for i, v in enumerate(swept) if v is None)
    if best_at in (1e-5, 10.0):  # a flat end of the grid is left out
        assert len(trained) < len(grid)


def test_a_start_above_the_divergence_point_still_finds_a_best_far_below(bench):
    grid = np.logspace(-5, 1, 37)
    loss = _bowl(grid, 1e-5)  # everything from ~0.004 up diverges
    swept = bench.suggestion_quality.grid_losses(grid, loss.__getitem__, initial=2.0)
    assert swept[0] == pytest.approx(0.2)


def test_a_dip_after_a_short_flat_stretch_is_still_found(bench):
    grid = np.logspace(-5, 1, 37)
    loss = {lr: 2.0 for lr in grid.tolist()}
    start = int(np.argmin(np.abs(np.log(grid / 1e-2))))
    loss[grid[start]] = 1.0
    loss[grid[start + 6]] = 0.5  # five flat points (less than a decade), then the best
    swept = bench.suggestion_quality.grid_losses(grid, loss.__getitem__, initial=2.0)
    assert swept[start + 6] == 0.5


def test_probe_steps_are_counted_however_the_record_nests_them(bench):
    record = {"probes": [{"steps_run": 40}, {"steps_run": 38}], "rounds": [{"probes": [{"steps_run": 5}]}]}
    assert bench.suggestion_quality._steps_run(record) == 83
    assert bench.suggestion_quality._steps_run({}) == 0


def test_lrscouts_one_cycle_rate_is_lr_range_and_the_others_the_suggestion_for_the_plan(bench):
    from lrscout import range_test

    w = [1.0]

    def step(lr):
        loss = 0.5 * w[0] ** 2
        w[0] -= lr * w[0]
        return loss

    result = range_test(step, start_lr=1e-3, end_lr=10.0, num_steps=60)
    base, peak = result.lr_range(total_steps=500)
    assert bench.suggestion_quality._lrscout(result, "one_cycle", 500, refined=False) == (peak, peak / base)
    linear = result.suggest(schedule="linear", total_steps=500).lr
    assert bench.suggestion_quality._lrscout(result, "linear", 500, refined=False) == (linear, 8.0)
    assert bench.suggestion_quality._lrscout(result, "linear", 500, refined=True) is None  # nothing refined
