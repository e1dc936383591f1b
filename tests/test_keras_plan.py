"""lrscout.keras suggests the rate for the training to come: the plan its optimizer holds, or the one given.

Runs on whatever backend KERAS_BACKEND names; tests/test_keras_backends.py
runs this file again under every other installed backend, each in its own
process.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from lrscout import InvalidArgumentError  # noqa: E402
from lrscout.keras import LRFinder, OneCycle, find_lr  # noqa: E402
from lrscout.keras._plan import optimizer_plan  # noqa: E402

schedules = keras.optimizers.schedules
needs_tensorflow = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None, reason="needs tensorflow"
)
# A short test whose loss falls clearly on every backend: the plan, not the curve, is under test.
QUICK = {
    "start_lr": 1e-3,
    "end_lr": 3.0,
    "num_steps": 24,
    "smoothing": 0.5,
    "extend": False,
    "progress": False,
}
RAMP = {"min_lr": 1e-3, "max_lr": 3.0, "mode": "exponential", "smoothing": 0.5}
N, BATCH = 100, 16


class _LinearToZero(schedules.LearningRateSchedule):
    """A schedule of the user's: linear from 0.1 to exactly zero at step ``end``."""

    def __init__(self, end):
        super().__init__()
        self.end = end

    def __call__(self, step):
        left = keras.ops.maximum(0.0, self.end - keras.ops.cast(step, "float32"))
        return 0.1 * left / self.end


class _Batches(keras.utils.PyDataset):
    """The samples of :func:`_data` in ``count`` batches."""

    def __init__(self, count):
        super().__init__()
        self._count = count
        self._x, self._y = _data()

    @property
    def num_batches(self):
        return self._count

    def __getitem__(self, i):
        size = N // self._count
        return self._x[size * i : size * (i + 1)], self._y[size * i : size * (i + 1)]


class _Rates(keras.callbacks.Callback):
    """The learning rate in force at each batch (self.model: under JAX it syncs the state first)."""

    def __init__(self):
        super().__init__()
        self.rates = []

    def on_train_batch_begin(self, batch, logs=None):
        self.rates.append(float(_numpy(self.model.optimizer.learning_rate)))


def _data():
    x = np.random.default_rng(0).normal(size=(N, 3)).astype("float32")
    return x, x @ np.array([[1.0], [-2.0], [0.5]], dtype="float32")


def _model(learning_rate):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9), loss="mse")
    return model


def _assert_for_plan(result, schedule, total_steps):
    """The default suggestion is the one for that plan, read from the same result."""
    assert result.suggestion == result.suggest(schedule=schedule, total_steps=total_steps)
    assert (result.suggestion.schedule, result.suggestion.total_steps) == (schedule, total_steps)


HELD = [
    ("cosine", lambda: schedules.CosineDecay(0.1, decay_steps=640), ("cosine", 640)),
    (
        "cosine with a short warm-up",
        lambda: schedules.CosineDecay(0.0, decay_steps=450, warmup_target=0.1, warmup_steps=50),
        ("cosine", 500),
    ),
    (
        "cosine after a long warm-up",
        lambda: schedules.CosineDecay(0.0, decay_steps=700, warmup_target=0.1, warmup_steps=300),
        ("one_cycle", 1000),
    ),
    ("polynomial, power 1", lambda: schedules.PolynomialDecay(0.1, 300, power=1.0), ("linear", 300)),
    ("lrscout's one-cycle", lambda: OneCycle(0.1, 600), ("one_cycle", 600)),
    ("a schedule of the user's", lambda: _LinearToZero(400), ("linear", 400)),
    ("a float", lambda: 0.05, ("constant", None)),
]
# Schedules that are none of lrscout's: the suggestion is for constant training.
NOT_OURS = [
    ("exponential", lambda: schedules.ExponentialDecay(0.1, 100, 0.5)),
    ("inverse time", lambda: schedules.InverseTimeDecay(0.1, 10, 0.5)),
    ("polynomial, power 2", lambda: schedules.PolynomialDecay(0.1, 300, power=2.0)),
    ("staircase", lambda: schedules.PiecewiseConstantDecay([100, 200], [0.1, 0.01, 0.001])),
]


@pytest.mark.parametrize(("make", "expected"), [case[1:] for case in HELD], ids=[case[0] for case in HELD])
def test_keras_find_lr_suggests_for_the_optimizers_plan(make, expected):
    x, y = _data()
    result = find_lr(_model(make()), x, y, batch_size=BATCH, **QUICK)
    assert result.info["plan"] == {"schedule": expected[0], "total_steps": expected[1], "source": "keras"}
    assert result.info["steps_per_epoch"] == math.ceil(N / BATCH)
    _assert_for_plan(result, *expected)


@pytest.mark.parametrize("make", [case[1] for case in NOT_OURS], ids=[case[0] for case in NOT_OURS])
def test_keras_a_schedule_that_is_none_of_lrscouts_gives_the_constant_plan(make):
    assert optimizer_plan(make()) is None
    x, y = _data()
    result = find_lr(_model(make()), x, y, batch_size=BATCH, **QUICK)
    assert result.info["plan"] == {"schedule": "constant", "total_steps": None, "source": "default"}
    _assert_for_plan(result, "constant", None)


def _pydataset():
    return _Batches(5), None, 5


def _tf_dataset():
    import tensorflow as tf

    x, y = _data()
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH), None, math.ceil(N / BATCH)


@pytest.mark.parametrize("epochs", [3, 2.5])
@pytest.mark.parametrize(
    "data",
    [
        lambda: (*_data(), math.ceil(N / BATCH)),
        _pydataset,
        pytest.param(_tf_dataset, marks=needs_tensorflow),
    ],
    ids=["arrays", "pydataset", "tf.data"],
)
def test_keras_epochs_count_the_datas_steps_per_epoch(data, epochs):
    x, y, per_epoch = data()
    result = find_lr(_model(0.05), x, y, batch_size=BATCH, epochs=epochs, **QUICK)
    total = math.ceil(epochs * per_epoch)
    assert result.info["steps_per_epoch"] == per_epoch
    assert result.info["plan"] == {"schedule": "constant", "total_steps": total, "source": "argument, keras"}
    _assert_for_plan(result, "constant", total)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"schedule": "linear"}, ("linear", 640, "argument, keras")),
        ({"total_steps": 50}, ("cosine", 50, "argument, keras")),
        ({"epochs": 4}, ("cosine", 4 * math.ceil(N / BATCH), "argument, keras")),
        ({"schedule": "one_cycle", "total_steps": 90}, ("one_cycle", 90, "argument")),
        ({"schedule": "constant", "epochs": 1}, ("constant", math.ceil(N / BATCH), "argument")),
    ],
)
def test_keras_explicit_plan_arguments_win_field_by_field(kwargs, expected):
    x, y = _data()
    result = find_lr(
        _model(schedules.CosineDecay(0.1, decay_steps=640)), x, y, batch_size=BATCH, **kwargs, **QUICK
    )
    assert result.info["plan"] == dict(zip(("schedule", "total_steps", "source"), expected, strict=True))
    _assert_for_plan(result, *expected[:2])


def test_keras_bad_plan_arguments_are_refused_before_training():
    x, y = _data()
    model = _model(schedules.CosineDecay(0.1, decay_steps=640))
    cases = [
        ({"schedule": "step"}, r"^find_lr: schedule must be one of 'auto', 'constant'"),
        ({"total_steps": 0}, r"^find_lr: total_steps must be an integer >= 1; got 0\."),
        ({"total_steps": 2.5}, r"^find_lr: total_steps must be a whole number"),
        ({"epochs": 0}, r"^find_lr: epochs must be positive; got 0"),
        ({"epochs": "3"}, r"^find_lr: epochs must be a real number"),
        ({"epochs": 2, "total_steps": 10}, r"^find_lr: epochs must be None when total_steps is given"),
    ]
    for kwargs, match in cases:
        with pytest.raises(InvalidArgumentError, match=match):
            find_lr(model, x, y, batch_size=BATCH, **kwargs, **QUICK)
    endless = (batch for batch in [(x[:8], y[:8])] * 20)
    with pytest.raises(InvalidArgumentError, match=r"^find_lr: epochs must be given with data whose steps"):
        find_lr(model, endless, epochs=2, **QUICK)
    assert int(_numpy(model.optimizer.iterations.value)) == 0
    assert not model.optimizer.built


# The callback --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "expected"), [case[1:] for case in HELD[:4]], ids=[case[0] for case in HELD[:4]]
)
def test_keras_callback_suggests_for_the_optimizers_plan(make, expected):
    x, y = _data()
    model = _model(make())
    finder = LRFinder(**RAMP)
    model.fit(x, y, batch_size=BATCH, epochs=3, callbacks=[finder], verbose=0)
    result = finder.result
    assert result.info["plan"] == {"schedule": expected[0], "total_steps": expected[1], "source": "keras"}
    assert result.info["steps_per_epoch"] == math.ceil(N / BATCH)
    _assert_for_plan(result, *expected)


@pytest.mark.parametrize(
    ("kwargs", "fit_kwargs", "expected"),
    [
        # fit's own steps per epoch: ceil(100 / 16) = 7.
        ({"train_epochs": 4}, {}, ("constant", 4 * math.ceil(N / BATCH), "argument, keras")),
        (
            {"train_epochs": 4, "steps_per_epoch": 3, "epochs": 8},
            {},
            ("constant", 4 * math.ceil(N / BATCH), "argument, keras"),
        ),
        # Data that fit cannot measure: the finder's steps_per_epoch.
        (
            {"train_epochs": 1.5, "steps_per_epoch": 24, "epochs": 1},
            {"generator": True},
            ("constant", 36, "argument, keras"),
        ),
        ({"schedule": "cosine", "total_steps": 77}, {}, ("cosine", 77, "argument")),
    ],
)
def test_keras_callback_takes_the_plan_of_its_arguments(kwargs, fit_kwargs, expected):
    x, y = _data()
    model = _model(0.05)
    finder = LRFinder(**RAMP, **kwargs)
    if fit_kwargs.get("generator"):
        batches = (batch for batch in [(x[:BATCH], y[:BATCH])] * 24)
        model.fit(batches, epochs=1, shuffle=False, callbacks=[finder], verbose=0)
    else:
        model.fit(x, y, batch_size=BATCH, epochs=3, callbacks=[finder], verbose=0)
    assert finder.result.info["plan"] == dict(
        zip(("schedule", "total_steps", "source"), expected, strict=True)
    )
    _assert_for_plan(finder.result, *expected[:2])


def test_keras_callback_refuses_train_epochs_when_the_steps_per_epoch_are_unknown():
    x, y = _data()
    model = _model(0.05)
    batches = (batch for batch in [(x[:BATCH], y[:BATCH])] * 6)
    finder = LRFinder(num_steps=6, train_epochs=3)
    with pytest.raises(InvalidArgumentError, match=r"^LRFinder: train_epochs must be given with data whose"):
        model.fit(batches, epochs=1, shuffle=False, callbacks=[finder], verbose=0)
    assert int(_numpy(model.optimizer.iterations.value)) == 0


# The user's schedule is left as it was ------------------------------------------------


def _numpy(value):
    if keras.backend.backend() == "torch":
        # np.array(tensor) warns about __array__ and copy= under NumPy 2.
        return value.detach().cpu().numpy().copy()
    if keras.backend.backend() == "tensorflow":
        return np.array(value.numpy(), copy=True)
    return np.array(keras.ops.convert_to_numpy(value), copy=True)


@pytest.mark.parametrize("refine", [False, True], ids=["test", "refined"])
def test_keras_the_optimizers_schedule_object_is_put_back_unchanged(refine):
    x, y = _data()
    schedule = schedules.CosineDecay(0.0, decay_steps=450, warmup_target=0.1, warmup_steps=50)
    model = _model(schedule)
    model.fit(x[:32], y[:32], batch_size=BATCH, epochs=1, shuffle=False, verbose=0)  # built, iterations 2
    optimizer = model.optimizer
    config, attributes = schedule.get_config(), dict(vars(schedule))
    before = [_numpy(v.value) for v in [*model.variables, *optimizer.variables]]
    extra = {"validation_split": 0.2} if refine else {}
    result = find_lr(model, x, y, batch_size=BATCH, refine=refine, **extra, **QUICK)
    assert result.info["plan"]["schedule"] == "cosine"
    assert optimizer._learning_rate is schedule
    assert schedule.get_config() == config and vars(schedule) == attributes
    after = [_numpy(v.value) for v in [*model.variables, *optimizer.variables]]
    assert all(a.dtype == b.dtype and a.tobytes() == b.tobytes() for a, b in zip(before, after, strict=True))
    # The next fit trains on the schedule, from the restored iteration count.
    probe = _Rates()
    model.fit(x[:32], y[:32], batch_size=BATCH, epochs=1, shuffle=False, callbacks=[probe], verbose=0)
    np.testing.assert_allclose(probe.rates, [float(_numpy(schedule(step))) for step in (2, 3)], rtol=1e-6)
