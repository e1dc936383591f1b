"""The refinement stage: probe runs from the range test's start, scored and chosen.

Oracles: closed-form gradient descent on a quadratic, and hand-written
training loops from the same start on the same batches.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import lrscout
from lrscout._refine import refine
from lrscout._suggest import REFINE_FACTORS, probe_score, refined


def test_probe_score_is_the_mean_of_the_last_half():
    assert probe_score([5.0, 4.0, 3.0, 2.0, 1.0], 5) == pytest.approx(np.mean([3.0, 2.0, 1.0]))
    assert probe_score([1.0, math.inf], 2) == math.inf
    assert probe_score([1.0, 2.0], 3) is None  # its data ran out: no evidence


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ([0.5, 0.4], 0.1),  # the smaller rate ended lower
        ([0.4, 0.5], 0.3),
        ([0.4, 0.4], 0.3),  # a tie keeps the suggestion
        ([math.inf, 0.9], 0.1),  # the suggestion diverged
        ([None, 0.1], 0.3),  # no score for the suggestion: no evidence against it
        ([0.4, None], 0.3),
        ([math.inf, math.inf], 0.3),
    ],
)
def test_refined_choice(scores, expected):
    assert refined(0.3, [0.3, 0.1], scores) == expected


def _quadratic():
    """Gradient descent on f(w) = w**2 / 2 from w = 1: loss at step t is (1 - lr)**(2t) / 2."""
    w = [1.0]

    def step_fn(lr):
        loss = 0.5 * w[0] * w[0]  # inf, not OverflowError, once w overflows
        w[0] -= lr * w[0]
        return loss

    def start():
        w[0] = 1.0
        return step_fn

    return start


def test_probe_scores_match_the_closed_form():
    start = _quadratic()
    result = lrscout.range_test(start(), start_lr=1e-3, end_lr=100.0, num_steps=60)
    refined_result = refine(result, start)
    record = refined_result.info["refinement"]
    steps = len(result)
    assert record["probe_steps"] == steps
    assert record["suggested"] == result.suggest("auto").lr
    for probe, factor in zip(record["probes"], REFINE_FACTORS, strict=True):
        lr = record["suggested"] * factor
        expected = np.mean([0.5 * (1 - lr) ** (2 * t) for t in range(steps // 2, steps)])
        assert probe["lr"] == pytest.approx(lr, rel=1e-15)
        assert probe["steps_run"] == steps and not probe["diverged"]
        assert probe["score"] == pytest.approx(expected, rel=1e-12)
    # Below lr = 1, a larger rate converges faster here: the suggestion stays.
    assert record["lr"] == record["suggested"] < 1.0
    assert refined_result.suggestion.method == "refined"
    assert refined_result.suggestion.lr == record["lr"]
    assert refined_result.suggest("auto").lr == result.suggest("auto").lr
    # Everything else is the test as it ran.
    np.testing.assert_array_equal(refined_result.losses, result.losses)


def test_a_suggestion_that_diverges_in_its_probe_loses():
    # A step_fn that overflows at the suggested rate (as if that rate were
    # 1e10 here): its probe's loss turns infinite, so the third wins.
    start = _quadratic()
    result = lrscout.range_test(start(), start_lr=1e-3, end_lr=100.0, num_steps=60)
    suggested = result.suggest("auto").lr

    def fake_start():
        inner = start()
        return lambda lr: inner(1e10 if lr == suggested else lr)

    record = refine(result, fake_start).info["refinement"]
    assert record["probes"][0]["diverged"] and record["probes"][0]["score"] is None
    assert record["lr"] == pytest.approx(suggested / 3)


def test_a_curve_without_a_suggestion_is_returned_as_it_is():
    flat = lrscout.range_test(lambda lr: 1.0, num_steps=20)
    with pytest.raises(lrscout.NoSuggestionError):
        flat.suggest("auto")
    assert refine(flat, lambda: lambda lr: 1.0) is flat
    with pytest.raises(lrscout.NoSuggestionError, match="refine=True"):
        flat.suggest("refined")


def test_the_refinement_survives_a_json_round_trip(tmp_path):
    start = _quadratic()
    result = refine(lrscout.range_test(start(), start_lr=1e-3, end_lr=100.0, num_steps=40), start)
    result.to_json(tmp_path / "r.json")
    loaded = lrscout.RangeTestResult.from_json(tmp_path / "r.json")
    assert loaded.suggestion == result.suggestion
    assert loaded.info["refinement"] == result.info["refinement"]


@pytest.mark.parametrize(
    "record",
    [
        [],
        "0.1",
        {"lr": "0.1"},
        {"lr": -1.0},
        {"lr": 0.0},
        {"lr": True},
        {"suggested": 0.1},
        {"lr": 1e308},
        {"lr": 1e-9},
    ],
)
def test_a_malformed_refinement_is_refused_on_construction(record):
    start = _quadratic()
    data = lrscout.range_test(start(), start_lr=1e-3, end_lr=100.0, num_steps=40).to_dict()
    data["info"]["refinement"] = record
    with pytest.raises(lrscout.InvalidArgumentError, match="refinement"):
        lrscout.RangeTestResult.from_dict(data)


# NumPy models ---------------------------------------------------------------------


def test_numpy_probes_are_full_batch_training_from_zeros():
    from sklearn.datasets import load_diabetes

    from lrscout.models import LinearRegressor, find_lr

    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    y = (y - y.mean()) / y.std()
    model = LinearRegressor(batch_size=None)
    result = find_lr(model, X, y, start_lr=1e-4, refine=True)
    assert not hasattr(model, "coef_")  # still unfitted
    record = result.info["refinement"]
    steps = record["probe_steps"]
    for probe in record["probes"]:
        # Oracle: plain full-batch gradient descent on 0.5 * mean squared error, from zeros.
        w, b, losses = np.zeros(X.shape[1]), 0.0, []
        for _ in range(steps):
            residual = X @ w + b - y
            losses.append(0.5 * np.mean(residual**2))
            w = w - probe["lr"] * X.T @ residual / len(y)
            b = b - probe["lr"] * residual.mean()
        assert probe["score"] == pytest.approx(np.mean(losses[steps // 2 :]), rel=1e-9)
    assert result.suggestion.lr == refined(
        record["suggested"], [p["lr"] for p in record["probes"]], [p["score"] for p in record["probes"]]
    )


def test_numpy_refine_is_checked():
    from lrscout.models import LinearRegressor, find_lr

    with pytest.raises(lrscout.InvalidArgumentError, match="refine"):
        find_lr(LinearRegressor(), np.zeros((4, 2)), np.zeros(4), refine="yes")


# PyTorch ----------------------------------------------------------------------------


def _torch_setup():
    import torch
    from torch import nn

    torch.manual_seed(0)
    X = torch.randn(256, 5)
    y = (X @ torch.randn(5, 1)).squeeze(1) + 0.1 * torch.randn(256)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X, y),
        batch_size=32,
        shuffle=True,
        generator=torch.Generator().manual_seed(1),
    )

    def criterion(out, target):
        return nn.functional.mse_loss(out.squeeze(1), target)

    return model, optimizer, loader, criterion


def test_pytorch_probes_replay_the_same_start_and_batches(assert_same):
    import copy

    import torch

    from lrscout.pytorch import find_lr

    model, optimizer, loader, criterion = _torch_setup()
    before = (copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict()))
    generator_state = loader.generator.get_state()
    result = find_lr(model, optimizer, loader, criterion, num_steps=40, progress=False, refine=True)
    assert_same(model.state_dict(), before[0])
    assert_same(optimizer.state_dict(), before[1])
    assert torch.equal(loader.generator.get_state(), generator_state)
    record = result.info["refinement"]
    # Refinement starts from the default suggestion with the run's facts (momentum 0.9 here).
    assert result.info["momentum"] == 0.9
    assert record["suggested"] == result.suggest("auto").lr
    steps = record["probe_steps"]
    for probe in record["probes"]:
        # Oracle: a hand-written loop from copies of the same start, the loader's batches in order.
        net = copy.deepcopy(model)
        opt = torch.optim.SGD(net.parameters(), lr=probe["lr"], momentum=0.9)
        loader.generator.set_state(generator_state)
        losses: list[float] = []
        while len(losses) < steps:
            for xb, yb in loader:
                opt.zero_grad()
                loss = criterion(net(xb), yb)
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
                if len(losses) == steps:
                    break
        assert probe["steps_run"] == steps
        assert probe["score"] == pytest.approx(np.mean(losses[steps // 2 :]), rel=1e-5)
    loader.generator.set_state(generator_state)


def test_pytorch_interrupted_refinement_leaves_everything_as_it_was(monkeypatch, assert_same):
    import copy

    import lrscout.pytorch._find_lr as finder_module
    from lrscout.pytorch import find_lr

    model, optimizer, loader, criterion = _torch_setup()
    before = (copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict()))
    real = finder_module.refine_stage
    probes = {"n": 0}

    def interrupted(result, start, **kwargs):
        def second_probe_breaks():
            step_fn = start()
            probes["n"] += 1
            if probes["n"] < 2:
                return step_fn
            calls = {"n": 0}

            def step(lr):
                calls["n"] += 1
                if calls["n"] == 3:
                    raise KeyboardInterrupt
                return step_fn(lr)

            return step

        return real(result, second_probe_breaks, **kwargs)

    monkeypatch.setattr(finder_module, "refine_stage", interrupted)
    with pytest.raises(KeyboardInterrupt):
        find_lr(model, optimizer, loader, criterion, num_steps=30, progress=False, refine=True)
    assert probes["n"] == 2
    assert_same(model.state_dict(), before[0])
    assert_same(optimizer.state_dict(), before[1])


def test_pytorch_refine_is_checked_before_anything_runs():
    from lrscout.pytorch import find_lr

    model, optimizer, loader, criterion = _torch_setup()
    with pytest.raises(lrscout.InvalidArgumentError, match="refine"):
        find_lr(model, optimizer, loader, criterion, refine=1, progress=False)


def test_pytorch_refine_refuses_a_one_shot_iterator_before_anything_runs(assert_same):
    # The probes replay the test's batches: an iterator cannot be replayed.
    import copy

    from lrscout.pytorch import find_lr

    model, optimizer, loader, criterion = _torch_setup()
    before = copy.deepcopy(model.state_dict())
    batches = iter(list(loader))
    with pytest.raises(lrscout.InvalidArgumentError, match=r"train_loader.*re-iterable with refine=True"):
        find_lr(model, optimizer, batches, criterion, num_steps=20, progress=False, refine=True)
    assert len(list(batches)) == len(loader)  # not one batch taken
    assert_same(model.state_dict(), before)


def test_pytorch_refine_with_the_snapshot_on_disk(tmp_path, assert_same):
    import copy

    from lrscout.pytorch import find_lr

    model, optimizer, loader, criterion = _torch_setup()
    before = (copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict()))
    in_memory = find_lr(model, optimizer, loader, criterion, num_steps=30, progress=False, refine=True)
    on_disk = find_lr(
        model, optimizer, loader, criterion, num_steps=30, progress=False, refine=True, cache_dir=tmp_path
    )
    assert list(tmp_path.iterdir()) == []  # the snapshot file is gone
    assert on_disk.info["refinement"] == in_memory.info["refinement"]
    assert_same(model.state_dict(), before[0])
    assert_same(optimizer.state_dict(), before[1])


def test_pytorch_probes_scored_on_validation_batches():
    # Oracle: a hand-written loop from the same start; the validation loss at the
    # evaluation steps (up to 10, spread over the last half, ending at the last).
    import copy

    import torch

    from lrscout._refine import EVALUATIONS
    from lrscout.pytorch import find_lr

    model, optimizer, loader, criterion = _torch_setup()
    X_val = torch.randn(64, 5, generator=torch.Generator().manual_seed(7))
    y_val = X_val.sum(1)
    generator_state = loader.generator.get_state()
    result = find_lr(
        model, optimizer, loader, criterion, num_steps=40, progress=False, refine=[(X_val, y_val)]
    )
    record = result.info["refinement"]
    assert record["scored_on"] == "held-out"
    steps = record["probe_steps"]
    half = steps // 2
    stride = -(-(steps - half) // EVALUATIONS)
    marks = set(range(steps - 1, half - 1, -stride))
    assert len(marks) <= EVALUATIONS and steps - 1 in marks
    for probe in record["probes"]:
        net = copy.deepcopy(model)
        opt = torch.optim.SGD(net.parameters(), lr=probe["lr"], momentum=0.9)
        loader.generator.set_state(generator_state)
        step, held = 0, []
        while step < steps:
            for xb, yb in loader:
                opt.zero_grad()
                criterion(net(xb), yb).backward()
                opt.step()
                if step in marks:
                    with torch.no_grad():
                        held.append(float(criterion(net(X_val), y_val)))
                step += 1
                if step == steps:
                    break
        assert probe["score"] == pytest.approx(np.mean(held), rel=1e-5)
    loader.generator.set_state(generator_state)


@pytest.mark.parametrize(
    ("refine", "message"),
    [
        ("yes", "refine must be True, False or re-iterable validation batches"),
        ("tuple", r"pass it in a list: refine=\[\(X_val, y_val\)\]"),
        ("iterator", "not an iterator or generator"),
        (1, "refine must be True, False"),
    ],
)
def test_pytorch_refine_values_are_checked(refine, message):
    import torch

    from lrscout.pytorch import find_lr

    model, optimizer, loader, criterion = _torch_setup()
    X_val, y_val = torch.randn(8, 5), torch.randn(8)
    value = {"tuple": (X_val, y_val), "iterator": iter([(X_val, y_val)])}.get(refine, refine)
    with pytest.raises(lrscout.InvalidArgumentError, match=message):
        find_lr(model, optimizer, loader, criterion, progress=False, refine=value)


def test_pytorch_info_facts_are_read_by_the_suggestion_and_the_refinement():
    from lrscout.pytorch import find_lr

    model, optimizer, loader, criterion = _torch_setup()
    plain = find_lr(model, optimizer, loader, criterion, num_steps=30, progress=False)
    told = find_lr(
        model, optimizer, loader, criterion, num_steps=30, progress=False, refine=True, info={"batch_size": 1}
    )
    assert told.info["batch_size"] == 1 and plain.info["batch_size"] == 32
    np.testing.assert_array_equal(told.losses, plain.losses)
    # The small-batch margin (1 + 2/B): 3 for B = 1, 1.0625 for B = 32.
    assert told.suggest("auto").lr == pytest.approx(plain.suggest("auto").lr * 1.0625 / 3, rel=1e-12)
    assert told.info["refinement"]["suggested"] == told.suggest("auto").lr
