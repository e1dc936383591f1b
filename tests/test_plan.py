"""The training plan: resolving it, recognising schedules, and suggestions for it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import lrscout
from lrscout import RangeTestResult
from lrscout._plan import SCHEDULES, Plan, classify, multipliers, resolve_plan, sampled_plan
from lrscout._suggest import auto


def _result(info=None):
    lrs = np.geomspace(1e-4, 10.0, 80)
    losses = 1.0 / (1.0 + 30.0 * lrs) + np.where(lrs > 0.3, (lrs - 0.3) ** 2, 0.0)
    return RangeTestResult(
        lrs=lrs,
        losses=losses,
        smoothed_losses=losses,
        stop_reason="completed",
        start_lr=1e-4,
        end_lr=10.0,
        num_steps=80,
        mode="exponential",
        smoothing=0.0,
        divergence_factor=4.0,
        info=info or {},
    )


# resolve_plan ----------------------------------------------------------------------------


def test_explicit_arguments_win_field_by_field():
    held = Plan("linear", 1000, "transformers")
    assert resolve_plan(held=held, where="f") == held
    assert resolve_plan("cosine", held=held, where="f") == Plan("cosine", 1000, "argument, transformers")
    assert resolve_plan(total_steps=10, held=held, where="f") == Plan("linear", 10, "argument, transformers")
    assert resolve_plan("constant", 5, held=held, where="f") == Plan("constant", 5, "argument")
    assert resolve_plan(where="f") == Plan("constant", None, "default")


def test_epochs_count_whole_steps():
    assert resolve_plan(epochs=2.5, steps_per_epoch=10, where="f").total_steps == 25
    assert resolve_plan(epochs=0.01, steps_per_epoch=10, where="f").total_steps == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"schedule": "cosine_warmup"}, "schedule must be one of 'auto', 'constant'"),
        ({"schedule": None}, "schedule must be a string"),
        ({"total_steps": 0}, "total_steps must be an integer >= 1"),
        ({"total_steps": 2.5}, "total_steps must be a whole number"),
        ({"total_steps": True}, "total_steps must be an integer"),
        ({"epochs": -1, "steps_per_epoch": 10}, "epochs must be positive"),
        ({"epochs": 3}, "epochs must be given with data whose steps per epoch are known.*total_steps"),
        ({"epochs": 3, "total_steps": 30, "steps_per_epoch": 10}, "Pass one of total_steps and epochs"),
    ],
)
def test_bad_plans_are_refused_naming_the_argument(kwargs, match):
    with pytest.raises(lrscout.InvalidArgumentError, match=match):
        resolve_plan(**kwargs, where="find_lr")


# Recognising a schedule from its rates ---------------------------------------------------------


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("total", [20, 333, 10_000])
def test_each_schedule_is_recognised_from_its_own_shape(schedule, total):
    assert classify(multipliers(schedule, total)) == schedule


def test_warm_ups_of_any_length_and_scaled_rates_are_recognised():
    t = np.arange(1000)
    linear_no_warmup = (1000 - t) / 1000
    cosine_warm = np.where(t < 50, (t + 1) / 50, 0.5 * (1 + np.cos(np.pi * (t - 50) / 950)))
    assert classify(3e-4 * linear_no_warmup) == "linear"
    assert classify(cosine_warm) == "cosine"
    assert classify(lrscout.one_cycle(0.1, 1000)(t)) == "one_cycle"  # torch's defaults, div 25


@pytest.mark.parametrize(
    "curve",
    [
        0.5 ** np.arange(30),  # exponential decay: never a straight line or a half cosine
        np.repeat([1.0, 0.1, 0.01], 100),  # a staircase
        np.tile(np.linspace(1.0, 0.0, 50), 4),  # cycles
        np.linspace(1.0, 0.5, 100),  # falls only to a half
        np.array([1.0, 0.0]),
        np.array([]),
        np.array([1.0, np.nan, 0.5, 0.0, 0.0]),
        np.array([-1.0, 1.0, 0.5, 0.1, 0.0]),
    ],
)
def test_other_shapes_are_none_of_ours(curve):
    assert classify(curve) is None


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        (lambda step: min(1.0, (step + 1) / 100), Plan("constant", None, "test")),  # a warm-up
        (lambda step: 0.5, Plan("constant", None, "test")),
        (lambda step: 1.0 if step < 100 else 0.1, None),  # a staircase that settles below its peak
        (lambda step: [1.0, 0.1, 0.01][min(2, step // 100)], None),
        (lambda step: 1.0 / (1.0 + step), None),  # decays for ever, never to zero
    ],
)
def test_a_rate_that_never_reaches_zero_is_constant_only_if_it_settles_at_its_peak(function, expected):
    assert sampled_plan(function, source="test") == expected


# Suggestions for a plan ---------------------------------------------------------------------


def test_the_suggestion_is_for_the_recorded_plan_and_arguments_win():
    result = _result({"plan": {"schedule": "linear", "total_steps": 5000, "source": "transformers"}})
    default = result.suggestion
    assert (default.schedule, default.total_steps) == ("linear", 5000)
    assert default.lr == auto(result.lrs, result.losses, num_steps=80, schedule="linear", total_steps=5000)
    constant = result.suggest(schedule="constant")
    assert (constant.schedule, constant.total_steps) == ("constant", 5000)
    assert result.suggest(total_steps=50).total_steps == 50
    assert result.suggest(schedule="auto") == default


def test_without_a_recorded_plan_the_suggestion_is_for_constant_training_of_unknown_length():
    chosen = _result().suggestion
    assert (chosen.schedule, chosen.total_steps, chosen.method) == ("constant", None, "auto")


def test_peer_rules_do_not_read_the_plan():
    result = _result({"plan": {"schedule": "cosine", "total_steps": 100, "source": "argument"}})
    for method in ("valley", "steepest", "minimum"):
        chosen = result.suggest(method, schedule="linear", total_steps=10)
        assert chosen.schedule is None and chosen.total_steps is None
        assert chosen.lr == result.suggest(method).lr


def test_lr_range_is_the_one_cycle_peak_and_an_eighth_of_it():
    result = _result({"plan": {"schedule": "constant", "total_steps": 400, "source": "argument"}})
    peak = result.suggest(schedule="one_cycle").lr
    assert result.lr_range() == (peak / 8, peak)
    assert result.lr_range(total_steps=40)[1] == result.suggest(schedule="one_cycle", total_steps=40).lr


def test_a_refined_rate_moves_to_another_plan_as_the_rule_moves():
    plan = {"schedule": "constant", "total_steps": 300, "source": "argument"}
    base = _result({"plan": plan})
    refined_lr = base.suggestion.lr / 3
    result = _result({"plan": plan, "refinement": {"lr": refined_lr, "plan": plan}})
    assert result.suggestion.method == "refined"
    assert result.suggestion.lr == refined_lr
    ratio = base.suggest(schedule="cosine", total_steps=3000).lr / base.suggestion.lr
    assert math.isclose(
        result.suggest(schedule="cosine", total_steps=3000).lr, refined_lr * ratio, rel_tol=1e-12
    )


def test_the_plan_survives_json_and_the_summary_names_it(tmp_path):
    result = _result({"plan": {"schedule": "one_cycle", "total_steps": 900, "source": "scheduler"}})
    path = tmp_path / "result.json"
    result.to_json(path)
    again = RangeTestResult.from_json(path)
    assert again == result and again.suggestion == result.suggestion
    summary = json.loads(path.read_text())["summary"]["suggestion"]
    assert (summary["schedule"], summary["total_steps"]) == ("one_cycle", 900)


@pytest.mark.parametrize(
    ("plan", "match"),
    [
        ("cosine", r'info\["plan"\] must be an object'),
        ({"schedule": "step", "total_steps": 10}, r'info\["plan"\]\["schedule"\] must be one of'),
        (
            {"schedule": "cosine", "total_steps": -3},
            r'info\["plan"\]\["total_steps"\] must be an integer >= 1',
        ),
        (
            {"schedule": "cosine", "total_steps": 3, "source": 7},
            r'info\["plan"\]\["source"\] must be a string',
        ),
    ],
)
def test_a_result_with_an_unreadable_plan_is_refused_when_made(plan, match):
    with pytest.raises(lrscout.InvalidArgumentError, match=match):
        _result({"plan": plan})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"schedule": "warmup"}, "suggest: schedule must be one of"),
        ({"total_steps": 0}, "suggest: total_steps must be an integer >= 1"),
    ],
)
def test_suggest_refuses_a_bad_plan(kwargs, match):
    with pytest.raises(lrscout.InvalidArgumentError, match=match):
        _result().suggest(**kwargs)
