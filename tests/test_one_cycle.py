"""One-cycle schedules built from a range test: torch's OneCycleLR and the Keras schedule.

The core ``one_cycle`` is tested against its closed form and OneCycleLR in
test_schedules.py; here the builders must give exactly that schedule over
``result.lr_range()``.
"""

from __future__ import annotations

import numpy as np
import pytest

import lrscout
from lrscout import RangeTestResult


def _range_test_result():
    """A clean range test: loss flat, then falling over two decades, then diverging."""
    lrs = np.geomspace(1e-5, 10.0, 120)
    x = np.log10(lrs)
    losses = 2.0 - 1.5 / (1.0 + np.exp(-3.0 * (x + 2.5))) + np.where(x > 0, 3.0 * x**2, 0.0)
    return RangeTestResult(
        lrs=lrs,
        losses=losses,
        smoothed_losses=losses,
        stop_reason="completed",
        start_lr=1e-5,
        end_lr=10.0,
        num_steps=120,
        mode="exponential",
        smoothing=0.0,
        divergence_factor=4.0,
        info={"batch_size": 32, "n_samples": 1000},
    )


def _scheduled_lrs(optimizer, scheduler, total):
    lrs = [optimizer.param_groups[0]["lr"]]
    for _ in range(total - 1):
        optimizer.step()
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    return np.array(lrs)


@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("strategy", ["cos", "linear"])
@pytest.mark.parametrize(("total", "pct"), [(100, 0.3), (57, 0.25)])
def test_one_cycle_lr_from_a_result_is_the_core_schedule_at_every_step(three_phase, strategy, total, pct):
    torch = pytest.importorskip("torch")
    from lrscout.pytorch import one_cycle_scheduler

    result = _range_test_result()
    base, peak = result.lr_range(total_steps=total)  # the range for the plan the scheduler runs
    assert base < peak
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=1.0, momentum=0.9)
    scheduler = one_cycle_scheduler(
        optimizer, result, total, pct_start=pct, anneal_strategy=strategy, three_phase=three_phase
    )
    assert isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR)
    expected = lrscout.one_cycle(
        peak, total, pct_start=pct, div_factor=peak / base, anneal_strategy=strategy, three_phase=three_phase
    )(np.arange(total))
    np.testing.assert_array_equal(_scheduled_lrs(optimizer, scheduler, total), expected)
    assert expected[0] == pytest.approx(base, rel=1e-15)
    # The peak falls on a step only when pct * total is a whole number.
    assert expected.max() <= peak
    if float(pct * total).is_integer():
        assert expected.max() == pytest.approx(peak, rel=1e-15)


def test_one_cycle_lr_from_epochs_and_with_adam():
    torch = pytest.importorskip("torch")
    from lrscout.pytorch import one_cycle_scheduler

    optimizer = torch.optim.Adam(torch.nn.Linear(2, 1).parameters())
    scheduler = one_cycle_scheduler(optimizer, (0.001, 0.01), epochs=3, steps_per_epoch=20)
    assert scheduler.total_steps == 60
    assert optimizer.param_groups[0]["betas"][0] == pytest.approx(0.95)
    expected = lrscout.one_cycle(0.01, 60, div_factor=10.0)(np.arange(60))
    np.testing.assert_array_equal(_scheduled_lrs(optimizer, scheduler, 60), expected)


def test_one_cycle_scheduler_argument_checks():
    torch = pytest.importorskip("torch")
    from lrscout.pytorch import one_cycle_scheduler

    adagrad = torch.optim.Adagrad(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    momentum = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1, momentum=0.9)
    cases = [
        (lambda: one_cycle_scheduler("sgd", (0.1, 1.0), 10), TypeError, r"optimizer must be a torch.optim"),
        (lambda: one_cycle_scheduler(momentum, 0.1, 10), TypeError, r"lr_range must be a RangeTestResult"),
        (lambda: one_cycle_scheduler(momentum, (0.5, 0.1), 10), ValueError, r"max_lr must be >= base_lr"),
        (lambda: one_cycle_scheduler(momentum, (0.0, 0.1), 10), ValueError, r"base_lr must be positive"),
        (lambda: one_cycle_scheduler(momentum, (0.01, 0.1)), TypeError, r"total_steps must be given, or"),
        (
            lambda: one_cycle_scheduler(momentum, (0.01, 0.1), 10, epochs=2),
            TypeError,
            r"epochs must be None when total_steps is given",
        ),
        (
            lambda: one_cycle_scheduler(momentum, (0.01, 0.1), 1),
            ValueError,
            r"total_steps must be an integer >= 2",
        ),
        (
            lambda: one_cycle_scheduler(adagrad, (0.01, 0.1), 10, cycle_momentum=True),
            ValueError,
            r"cycle_momentum must be False for an optimizer without momentum.*Adagrad has neither",
        ),
        (
            lambda: one_cycle_scheduler(momentum, (0.01, 0.1), 10, pct_start=1.5),
            ValueError,
            r"one_cycle_scheduler: pct_start must be < 1.0; got 1.5",
        ),
    ]
    for call, error, match in cases:
        with pytest.raises(error, match=match):
            call()
    one_cycle_scheduler(adagrad, (0.01, 0.1), 10, cycle_momentum=False)
    one_cycle_scheduler(adagrad, (0.01, 0.1), 10)


def test_plain_sgd_stays_plain_and_momentum_sgd_cycles():
    torch = pytest.importorskip("torch")
    from lrscout.pytorch import one_cycle_scheduler

    plain = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    one_cycle_scheduler(plain, (0.01, 0.1), 10)
    assert plain.param_groups[0]["momentum"] == 0
    heavy = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1, momentum=0.9)
    one_cycle_scheduler(heavy, (0.01, 0.1), 10)
    assert heavy.param_groups[0]["momentum"] == 0.95


def _numpy(value):
    import keras

    if keras.backend.backend() == "torch":
        # keras.ops.convert_to_numpy warns about __array__ and copy= under NumPy 2 there.
        return value.detach().cpu().numpy()
    return keras.ops.convert_to_numpy(value)


@pytest.fixture(scope="module")
def keras_one_cycle():
    pytest.importorskip("keras")
    from lrscout.keras import OneCycle

    return OneCycle


@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("strategy", ["cos", "linear"])
@pytest.mark.parametrize(("total", "pct"), [(100, 0.3), (57, 0.25), (1000, 0.1)])
def test_keras_schedule_equals_the_core_schedule(keras_one_cycle, three_phase, strategy, total, pct):
    schedule = keras_one_cycle(
        0.4, total, pct_start=pct, div_factor=30.0, anneal_strategy=strategy, three_phase=three_phase
    )
    expected = lrscout.one_cycle(
        0.4, total, pct_start=pct, div_factor=30.0, anneal_strategy=strategy, three_phase=three_phase
    )(np.arange(total))
    got = _numpy(schedule(np.arange(total)))
    assert got.dtype == np.float32
    # float32, as Keras optimizers hold learning rates: a few ulps everywhere, the 1e-6 floor included.
    np.testing.assert_allclose(got, expected, rtol=2e-6, atol=0)
    assert float(schedule(total + 50)) == pytest.approx(expected[-1], rel=2e-6)


def test_keras_schedule_from_a_result_and_serialisation(keras_one_cycle):
    import keras

    result = _range_test_result()
    base, peak = result.lr_range(total_steps=80)
    schedule = keras_one_cycle.from_result(result, 80, pct_start=0.25)
    assert schedule.get_config() == {
        "max_lr": peak,
        "total_steps": 80,
        "pct_start": 0.25,
        "div_factor": peak / base,
        "final_div_factor": 1e4,
        "anneal_strategy": "cos",
        "three_phase": False,
        "name": "OneCycle",
    }
    expected = lrscout.one_cycle(peak, 80, pct_start=0.25, div_factor=peak / base)(np.arange(80))
    np.testing.assert_allclose(_numpy(schedule(np.arange(80))), expected, rtol=2e-6)
    again = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert type(again) is keras_one_cycle and again.get_config() == schedule.get_config()


# Keras's torch backend saves weights through np.array(tensor), which NumPy 2 warns about.
@pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)
def test_keras_schedule_trains_a_model_and_survives_saving(keras_one_cycle, tmp_path):
    import keras

    schedule = keras_one_cycle(0.05, 12)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=schedule), loss="mse")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(48, 3)).astype("float32")
    model.fit(X, X.sum(axis=1, keepdims=True), batch_size=4, epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 12
    assert float(model.optimizer.learning_rate) == pytest.approx(float(schedule(12)), rel=1e-6)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.optimizer.learning_rate is not None
    assert type(loaded.optimizer._learning_rate) is keras_one_cycle
    assert loaded.optimizer._learning_rate.get_config() == schedule.get_config()


def test_keras_schedule_argument_checks(keras_one_cycle):
    cases = [
        (lambda: keras_one_cycle(-0.1, 10), ValueError, r"max_lr must be positive; got -0.1"),
        (lambda: keras_one_cycle(0.1, 1), ValueError, r"total_steps must be an integer >= 2; got 1"),
        (
            lambda: keras_one_cycle(0.1, 10, anneal_strategy="exp"),
            ValueError,
            r"anneal_strategy must be one of",
        ),
        (lambda: keras_one_cycle.from_result((0.2, 0.1), 10), ValueError, r"max_lr must be >= base_lr"),
        (lambda: keras_one_cycle.from_result("x", 10), TypeError, r"result must be a RangeTestResult"),
        (
            lambda: keras_one_cycle.from_result((0.01, 0.1), 10, div_factor=3.0),
            TypeError,
            r"div_factor must be left out",
        ),
    ]
    for call, error, match in cases:
        with pytest.raises(error, match=match):
            call()
