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
from lrscout._suggest import (
    REFINE_FACTORS,
    REFINE_ROUNDS,
    REFINE_SHRINK,
    probe_score,
    refined,
    survivors,
)


def test_probe_score_is_the_mean_of_the_last_half():
    assert probe_score([5.0, 4.0, 3.0, 2.0, 1.0], 5) == pytest.approx(np.mean([3.0, 2.0, 1.0]))
    assert probe_score([1.0, math.inf], 2) == math.inf
    assert probe_score([1.0, 2.0], 3) is None  # its data ran out: no evidence


@pytest.mark.parametrize(
    ("scores", "keep", "expected"),
    [
        ([0.5, 0.4, 0.3], 2, [0.9, 0.3]),
        ([0.3, 0.3, 0.3], 2, [0.3, 0.1]),  # ties: nearer the suggestion (0.3) first, then the smaller
        ([None, 0.4, math.inf], 2, [0.3]),  # no score and diverged are out
        ([None, math.inf, math.inf], 1, []),
    ],
)
def test_survivors(scores, keep, expected):
    assert survivors(0.3, [0.1, 0.3, 0.9], scores, keep) == expected


def test_refined_moves_a_share_of_the_way_on_a_log_scale():
    assert refined(0.1, 0.4, 0.5) == pytest.approx(0.2)
    assert refined(0.1, 0.4, 0.0) == 0.1 and refined(0.1, 0.4, 1.0) == pytest.approx(0.4)
    assert refined(0.1, None) == 0.1


def _quadratic(curvature=1.0):
    """Gradient descent on f(w) = c w**2 / 2 from w = 1: loss at step t is c (1 - c lr)**(2t) / 2."""
    w = [1.0]

    def step_fn(lr):
        loss = 0.5 * curvature * w[0] * w[0]  # inf, not OverflowError, once w overflows
        w[0] -= lr * curvature * w[0]
        return loss

    def start():
        w[0] = 1.0
        return step_fn

    return start


def _closed_form_score(lr, steps, curvature=1.0):
    losses = [0.5 * curvature * (1 - curvature * lr) ** (2 * t) for t in range(steps)]
    return float(np.mean(losses[steps // 2 :]))


def test_rounds_of_probes_match_the_closed_form():
    start = _quadratic()
    result = lrscout.range_test(start(), start_lr=1e-3, end_lr=100.0, num_steps=60, progress=False)
    refined_result = refine(result, start)
    record = refined_result.info["refinement"]
    suggested = result.suggest("auto").lr
    assert record["suggested"] == suggested and record["scored_on"] == "training"
    alive = [suggested * factor for factor in REFINE_FACTORS]
    for entry, (share, keep) in zip(record["rounds"], REFINE_ROUNDS, strict=True):
        steps = max(1, round(share * len(result)))
        assert entry["steps"] == steps
        assert [probe["lr"] for probe in entry["probes"]] == pytest.approx(alive, rel=1e-15)
        scores = []
        for probe in entry["probes"]:
            lr = probe["lr"]
            if abs(1 - lr) >= 1:  # |1 - lr| >= 1: the iterate does not shrink (diverges past 2)
                assert probe["diverged"] or probe["score"] is not None
            expected = _closed_form_score(lr, steps)
            if math.isfinite(expected) and expected < 1e300:
                assert probe["score"] == pytest.approx(expected, rel=1e-12)
            scores.append(expected if math.isfinite(expected) else math.inf)
        ranked = sorted(range(len(alive)), key=lambda i: (scores[i], abs(math.log(alive[i] / suggested))))
        alive = [alive[i] for i in ranked[:keep] if math.isfinite(scores[i])]
    assert record["picked"] == pytest.approx(alive[0], rel=1e-15)
    assert record["lr"] == pytest.approx(suggested * (alive[0] / suggested) ** REFINE_SHRINK, rel=1e-12)
    assert refined_result.suggestion.method == "refined"
    assert refined_result.suggestion.lr == record["lr"]
    assert refined_result.suggest("auto").lr == suggested
    np.testing.assert_array_equal(refined_result.losses, result.losses)  # the test as it ran


def test_a_diverging_probe_is_dropped_and_all_diverging_is_said():
    start = _quadratic()
    result = lrscout.range_test(start(), start_lr=1e-3, end_lr=100.0, num_steps=60, progress=False)
    suggested = result.suggest("auto").lr

    def high_rates_blow_up():
        inner = start()
        return lambda lr: inner(1e30 if lr > suggested else lr)

    record = refine(result, high_rates_blow_up).info["refinement"]
    first = record["rounds"][0]["probes"]
    assert [p["diverged"] for p in first] == [f > 1 for f in REFINE_FACTORS]
    assert all(p["score"] is None for p in first if p["diverged"])
    assert record["picked"] <= suggested

    def everything_blows_up():
        inner = start()
        return lambda lr: inner(1e30)

    with pytest.warns(lrscout.CurveWarning, match="probes diverged"):
        blown = refine(result, everything_blows_up)
    assert blown.info["refinement"]["picked"] is None
    assert blown.suggestion.lr == suggested
    assert blown.warnings[-1].startswith("probes diverged")


def test_held_out_data_that_gives_no_finite_loss_is_refused_before_any_probe():
    start = _quadratic()
    result = lrscout.range_test(start(), start_lr=1e-3, end_lr=100.0, num_steps=40, progress=False)
    steps = {"n": 0}

    def counting_start():
        inner = start()

        def step_fn(lr):
            steps["n"] += 1
            return inner(lr)

        return step_fn

    with pytest.raises(
        lrscout.InvalidArgumentError, match=r"val_data gives a loss of nan at the test's start"
    ):
        refine(result, counting_start, evaluate=lambda: float("nan"), held_out="val_data")
    assert steps["n"] == 0


def test_probes_scored_on_held_out_data_use_one_evaluation_at_their_end():
    # Held-out loss: 1.5 w**2 at the probe's last iterate, w = (1 - lr)**steps.
    w = [1.0]

    def start():
        w[0] = 1.0

        def step_fn(lr):
            loss = 0.5 * w[0] * w[0]
            w[0] -= lr * w[0]
            return loss

        return step_fn

    calls = {"n": 0}

    def evaluate():
        calls["n"] += 1
        return 1.5 * w[0] * w[0]

    result = lrscout.range_test(start(), start_lr=1e-3, end_lr=100.0, num_steps=40, progress=False)
    record = refine(result, start, evaluate=evaluate).info["refinement"]
    assert record["scored_on"] == "held-out"
    probes = [probe for entry in record["rounds"] for probe in entry["probes"]]
    for entry in record["rounds"]:
        for probe in entry["probes"]:
            expected = 1.5 * (1 - probe["lr"]) ** (2 * entry["steps"])
            if not probe["diverged"]:
                assert probe["score"] == pytest.approx(expected, rel=1e-12)
    finished = sum(not probe["diverged"] for probe in probes)
    assert calls["n"] == finished + 1  # one evaluation per finished probe, and one before any


def test_a_curve_without_a_suggestion_is_returned_as_it_is():
    flat = lrscout.range_test(lambda lr: 1.0, num_steps=20, progress=False)
    with pytest.raises(lrscout.NoSuggestionError):
        flat.suggest("auto")
    assert refine(flat, lambda: lambda lr: 1.0) is flat
    with pytest.raises(lrscout.NoSuggestionError, match="refine=True"):
        flat.suggest("refined")


def test_the_refinement_survives_a_json_round_trip(tmp_path):
    start = _quadratic()
    result = refine(
        lrscout.range_test(start(), start_lr=1e-3, end_lr=100.0, num_steps=40, progress=False), start
    )
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
        {"lr": 0.1, "plan": {"schedule": "sometimes"}},
    ],
)
def test_a_malformed_refinement_is_refused_on_construction(record):
    start = _quadratic()
    data = lrscout.range_test(start(), start_lr=1e-3, end_lr=100.0, num_steps=40, progress=False).to_dict()
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
    result = find_lr(model, X, y, start_lr=1e-4, refine=True, progress=False)
    assert not hasattr(model, "coef_")  # still unfitted
    record = result.info["refinement"]
    for entry in record["rounds"]:
        steps = entry["steps"]
        for probe in entry["probes"]:
            # Oracle: plain full-batch gradient descent on 0.5 * mean squared error, from zeros.
            w, b, losses = np.zeros(X.shape[1]), 0.0, []
            for _ in range(steps):
                residual = X @ w + b - y
                losses.append(0.5 * np.mean(residual**2))
                w = w - probe["lr"] * X.T @ residual / len(y)
                b = b - probe["lr"] * residual.mean()
            if not probe["diverged"]:
                assert probe["score"] == pytest.approx(np.mean(losses[steps // 2 :]), rel=1e-9)
    assert result.suggestion.lr == refined(record["suggested"], record["picked"])


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
    for entry in record["rounds"]:
        steps = entry["steps"]
        for probe in entry["probes"]:
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
            if probe["diverged"]:
                assert not np.all(np.isfinite(losses))
                continue
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
    # Oracle: a hand-written loop from the same start; the validation loss after its last step.
    import copy

    import torch

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
    for entry in record["rounds"]:
        steps = entry["steps"]
        for probe in entry["probes"]:
            net = copy.deepcopy(model)
            opt = torch.optim.SGD(net.parameters(), lr=probe["lr"], momentum=0.9)
            loader.generator.set_state(generator_state)
            step = 0
            while step < steps:
                for xb, yb in loader:
                    opt.zero_grad()
                    criterion(net(xb), yb).backward()
                    opt.step()
                    step += 1
                    if step == steps:
                        break
            with torch.no_grad():
                held = float(criterion(net(X_val), y_val))
            if np.isfinite(held) and not probe["diverged"]:
                assert probe["score"] == pytest.approx(held, rel=1e-5)
    loader.generator.set_state(generator_state)


def test_pytorch_validation_batches_without_a_finite_loss_are_refused_before_the_probes():
    import torch

    from lrscout.pytorch import find_lr

    model, optimizer, loader, criterion = _torch_setup()
    X_val = torch.full((8, 5), float("nan"))
    with pytest.raises(lrscout.InvalidArgumentError, match=r"refine gives a loss of nan at the test's start"):
        find_lr(
            model, optimizer, loader, criterion, num_steps=30, progress=False, refine=[(X_val, X_val[:, 0])]
        )


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
    from lrscout._suggest import margin
    from lrscout.pytorch import find_lr

    model, optimizer, loader, criterion = _torch_setup()
    plain = find_lr(model, optimizer, loader, criterion, num_steps=30, progress=False)
    told = find_lr(
        model, optimizer, loader, criterion, num_steps=30, progress=False, refine=True, info={"momentum": 0.0}
    )
    assert told.info["momentum"] == 0.0 and plain.info["momentum"] == 0.9
    np.testing.assert_array_equal(told.losses, plain.losses)

    def rule_margin(momentum):
        rates, smooth, minimum = lrscout._suggest.read_curve(
            plain.lrs, plain.losses, num_steps=plain.num_steps
        )
        fall, _ = lrscout._suggest._fall_and_noise(
            plain.losses[: len(rates)], smooth, minimum, max(1.0, 0.04 * plain.num_steps)
        )
        return margin(
            optimizer="SGD",
            momentum=momentum,
            schedule="constant",
            total_steps=None,
            test_steps=len(rates),
            fall=fall,
        )

    ratio = rule_margin(0.9) / rule_margin(0.0)
    assert told.suggest("auto").lr == pytest.approx(plain.suggest("auto").lr * ratio, rel=1e-12)
    assert told.info["refinement"]["suggested"] == told.suggest("auto").lr
