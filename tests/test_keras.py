"""lrscout.keras: the LRFinder callback and find_lr, against Keras's own numbers.

The tests run on whatever backend KERAS_BACKEND names (torch by default, see
conftest.py); tests/test_keras_backends.py runs this file again under every
other installed backend (tensorflow, JAX), each in its own process, since
the backend is fixed when keras is imported.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import random
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
from sklearn.datasets import load_digits  # noqa: E402

import lrscout  # noqa: E402
from lrscout.keras import LRFinder, find_lr  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BACKEND = keras.backend.backend()
needs_tensorflow = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None, reason="needs tensorflow"
)


# Helpers ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype("float32"), y.astype("int64")


def _classifier(optimizer, *, hidden=16, batchnorm=False, seed=0, metrics=("accuracy",)):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((64,)), keras.layers.Dense(hidden, activation="relu")]
    if batchnorm:
        layers.append(keras.layers.BatchNormalization())
    layers.append(keras.layers.Dense(10))
    model = keras.Sequential(layers)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=list(metrics),
    )
    return model


def _numpy(value):
    if keras.backend.backend() == "torch":
        # np.array(tensor) warns about __array__ and copy= under NumPy 2.
        return value.detach().cpu().numpy().copy()
    if keras.backend.backend() == "tensorflow":
        # So does np.array(tf.Variable); .numpy() copies.
        return np.array(value.numpy(), copy=True)
    return np.array(keras.ops.convert_to_numpy(value), copy=True)


def _scalar(value):
    return _numpy(value.value if isinstance(value, keras.Variable) else value).item()


def _state_of(model):
    """Every variable a test could change, by position, as NumPy copies."""
    optimizer_variables = list(model.optimizer.variables)
    return {
        "model": [_numpy(v.value) for v in model.variables],
        "optimizer": [_numpy(v.value) for v in optimizer_variables],
        "optimizer_ids": [id(v) for v in optimizer_variables],
    }


def _assert_same_state(before, after):
    assert before["optimizer_ids"] == after["optimizer_ids"]
    for part in ("model", "optimizer"):
        assert len(before[part]) == len(after[part])
        for a, b in zip(before[part], after[part], strict=True):
            assert a.dtype == b.dtype
            assert a.tobytes() == b.tobytes()


class _Probe(keras.callbacks.Callback):
    """Records what Keras itself shows: the LR in force and the logs of each batch."""

    def __init__(self):
        super().__init__()
        self.lrs, self.logs, self.epochs = [], [], []
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self.lrs.append(_scalar(self.model.optimizer.learning_rate))

    def on_train_batch_end(self, batch, logs=None):
        self.logs.append({key: float(value) for key, value in logs.items()})
        self.epochs.append(self._epoch)


def _warm_up(model, X, y):
    """Two real steps, so moments and iteration counts are not at their zero start."""
    model.fit(X[:64], y[:64], batch_size=32, epochs=1, shuffle=False, verbose=0)


# The seed's usage ------------------------------------------------------------

# The seed's fit call keeps Keras's default verbose progress bar, which calls
# np.mean on torch tensors; NumPy 2 warns there that torch's __array__ takes no
# copy= keyword. That is between Keras, torch and NumPy, not lrscout (whose
# own tests run fit with verbose=0).
_KERAS_PROGBAR_ON_TORCH = "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"


@pytest.mark.filterwarnings(_KERAS_PROGBAR_ON_TORCH)
def test_seed_usage_verbatim(digits):
    X_train, labels = digits
    Y_train = keras.utils.to_categorical(labels, 10)
    epoch_size, batch_size = X_train.shape[0], 32
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])

    lr_finder = LRFinder(min_lr=1e-5, max_lr=1e-2, steps_per_epoch=np.ceil(epoch_size / batch_size), epochs=3)
    model.fit(X_train, Y_train, callbacks=[lr_finder])

    lr_finder.plot_loss()
    lr_finder.plot_lr()

    # fit ran its default single epoch of the three the ramp was planned for.
    steps = math.ceil(epoch_size / batch_size)
    history = lr_finder.history
    assert set(history) == {"lr", "iterations", "loss", "accuracy"}
    assert history["iterations"] == list(range(1, steps + 1))
    assert np.array_equal(history["lr"], lrscout.linear_ramp(1e-5, 1e-2, 3 * steps)(np.arange(steps)))
    assert all(len(values) == steps for values in history.values())
    assert all(0.0 <= a <= 1.0 for a in history["accuracy"])
    result = lr_finder.result
    assert (result.stop_reason, result.start_lr, result.end_lr, result.num_steps) == (
        "ended",
        1e-5,
        1e-2,
        171,
    )
    assert result.mode == "linear"
    assert np.array_equal(result.losses, history["loss"])


def test_plots_return_axes_and_save(digits, tmp_path):
    X, y = digits
    model = _classifier(keras.optimizers.SGD())
    lr_finder = LRFinder(1e-3, 1.0, mode="exponential")
    model.fit(X[:256], y[:256], batch_size=32, epochs=2, callbacks=[lr_finder], verbose=0)
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    assert lr_finder.plot_loss(ax=ax) is ax
    assert lr_finder.plot_lr(path=tmp_path / "lr.png").get_xlabel() == "step"
    assert (tmp_path / "lr.png").stat().st_size > 0
    assert lr_finder.suggestion == lr_finder.result.suggest()
    assert 1e-3 <= lr_finder.suggestion.lr <= 1.0


# Learning rates ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "ramp"), [("linear", lrscout.linear_ramp), ("exponential", lrscout.exponential_ramp)]
)
def test_ramp_is_exact_and_is_what_the_optimizer_used(digits, mode, ramp):
    X, y = digits
    model = _classifier(keras.optimizers.SGD(momentum=0.9))
    finder = LRFinder(
        1e-4, 0.5, steps_per_epoch=np.float64(4.0), epochs=3.0, mode=mode, stop_on_divergence=False
    )
    probe = _Probe()
    model.fit(X[:100], y[:100], batch_size=32, epochs=3, callbacks=[finder, probe], verbose=0)

    expected = ramp(1e-4, 0.5, 12)(np.arange(12))
    assert finder.history["iterations"] == list(range(1, 13))
    assert np.array_equal(finder.history["lr"], expected)
    assert np.array_equal(finder.result.lrs, expected)
    assert finder.result.stop_reason == "completed"
    # The optimizer holds the rate in floatx, so it ran at the float32 value.
    assert np.array_equal(np.float32(probe.lrs), np.float32(expected))


@pytest.mark.parametrize("schedule", [False, True], ids=["variable", "schedule"])
def test_each_step_trains_at_its_learning_rate(schedule):
    # loss = w with a constant gradient of 1, so plain SGD moves w by exactly -lr.
    # Nothing else reads the model during fit: under JAX a callback that
    # reads self.model forces a state sync, which would hide a missing one.
    model = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")]
    )
    lr = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5) if schedule else 0.1
    model.compile(optimizer=keras.optimizers.SGD(lr), loss=lambda y_true, y_pred: keras.ops.mean(y_pred))
    finder = LRFinder(1e-3, 1e-1, mode="exponential", stop_on_divergence=False, restore=False)
    x = np.ones((12, 1), dtype="float32")
    model.fit(x, x, batch_size=4, epochs=2, callbacks=[finder], verbose=0)
    travelled = 1.0 - _scalar(model.layers[0].kernel)
    expected = lrscout.exponential_ramp(1e-3, 1e-1, 6)(np.arange(6)).sum()
    # w is float32 near 1: each of the 6 updates is good to about one ulp of 1.
    assert travelled == pytest.approx(expected, rel=0, abs=1e-6)
    assert len(finder.history["loss"]) == 6
    if schedule:
        assert model.optimizer._learning_rate is lr


def test_steps_and_epochs_default_to_what_fit_runs(digits):
    X, y = digits
    model = _classifier(keras.optimizers.SGD())
    finder = LRFinder(stop_on_divergence=False)
    model.fit(X[:100], y[:100], batch_size=32, epochs=2, callbacks=[finder], verbose=0)
    result = finder.result
    assert (result.num_steps, len(result), result.stop_reason) == (8, 8, "completed")
    assert (result.start_lr, result.end_lr, result.mode) == (1e-5, 1e-2, "linear")


def test_finder_stops_fit_after_the_last_step(digits):
    X, y = digits
    model = _classifier(keras.optimizers.SGD())
    finder = LRFinder(1e-4, 1e-2, num_steps=5, stop_on_divergence=False)
    probe = _Probe()
    model.fit(X[:100], y[:100], batch_size=32, epochs=4, callbacks=[finder, probe], verbose=0)
    assert len(probe.logs) == 5
    assert finder.result.stop_reason == "completed"


def test_history_resets_when_training_begins_again(digits):
    X, y = digits
    model = _classifier(keras.optimizers.SGD())
    finder = LRFinder(1e-4, 1e-2, stop_on_divergence=False)
    model.fit(X[:64], y[:64], batch_size=32, epochs=3, callbacks=[finder], verbose=0)
    model.fit(X[:64], y[:64], batch_size=32, epochs=2, callbacks=[finder], verbose=0)
    assert finder.history["iterations"] == [1, 2, 3, 4]
    assert len(finder.result) == 4


# Per-batch losses ------------------------------------------------------------


def test_batch_losses_reproduce_keras_running_means(digits):
    X, y = digits
    n, batch = 100, 32
    sizes = np.array([32, 32, 32, 4])  # the short last batch is the point
    model = _classifier(keras.optimizers.SGD(momentum=0.9))
    finder = LRFinder(1e-3, 0.3, stop_on_divergence=False)
    probe = _Probe()
    model.fit(X[:n], y[:n], batch_size=batch, epochs=3, callbacks=[finder, probe], verbose=0)

    assert np.array_equal(probe.epochs, np.repeat([0, 1, 2], 4))
    for key in ("loss", "accuracy"):
        own = np.reshape(finder.history[key], (3, 4))
        logged = np.reshape([logs[key] for logs in probe.logs], (3, 4))
        running = np.cumsum(own * sizes, axis=1) / np.cumsum(sizes)
        np.testing.assert_allclose(running, logged, rtol=1e-5, atol=1e-6)
        # The first batch of an epoch is its own running mean; later ones differ.
        np.testing.assert_allclose(own[:, 0], logged[:, 0], rtol=1e-6)
    assert not np.allclose(finder.history["loss"], [logs["loss"] for logs in probe.logs])
    assert np.array_equal(finder.result.losses, finder.history["loss"])


def test_batch_losses_with_sample_weights_and_uneven_pydataset(digits):
    X, y = digits
    bounds = [0, 30, 60, 90, 97]
    weights = np.linspace(0.5, 2.0, 97).astype("float32")

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return len(bounds) - 1

        def __getitem__(self, i):
            part = slice(bounds[i], bounds[i + 1])
            return X[part], y[part], weights[part]

    model = _classifier(keras.optimizers.SGD(), metrics=())
    finder = LRFinder(1e-3, 0.1, stop_on_divergence=False)
    probe = _Probe()
    model.fit(Batches(), epochs=2, shuffle=False, callbacks=[finder, probe], verbose=0)

    # Keras weights the running loss by batch size, whatever the sample weights.
    sizes = np.diff(bounds)
    own = np.reshape(finder.history["loss"], (2, 4))
    logged = np.reshape([logs["loss"] for logs in probe.logs], (2, 4))
    np.testing.assert_allclose(np.cumsum(own * sizes, axis=1) / np.cumsum(sizes), logged, rtol=1e-5)


# Restoration ----------------------------------------------------------------


@pytest.mark.parametrize(
    "make_optimizer",
    [lambda: keras.optimizers.SGD(learning_rate=0.05, momentum=0.9), lambda: keras.optimizers.Adam(1e-3)],
    ids=["sgd-momentum", "adam"],
)
def test_restores_weights_and_optimizer_bitwise(digits, make_optimizer):
    X, y = digits
    model = _classifier(make_optimizer(), batchnorm=True)
    twin = _classifier(make_optimizer(), batchnorm=True)
    for m in (model, twin):
        _warm_up(m, X, y)
    before = _state_of(model)
    lr_before = _scalar(model.optimizer.learning_rate)

    finder = LRFinder(1e-4, 1.0, mode="exponential")
    model.fit(X[:200], y[:200], batch_size=32, epochs=2, callbacks=[finder], verbose=0)

    assert len(finder.result) > 2
    _assert_same_state(before, _state_of(model))
    assert _scalar(model.optimizer.learning_rate) == lr_before
    # Training on from here is the training the model would have had.
    for m in (model, twin):
        m.fit(X[:96], y[:96], batch_size=32, epochs=1, shuffle=False, verbose=0)
    _assert_same_state(_state_of(twin) | {"optimizer_ids": []}, _state_of(model) | {"optimizer_ids": []})


def test_restore_false_leaves_the_trained_state(digits):
    X, y = digits
    model = _classifier(keras.optimizers.SGD(0.05, momentum=0.9))
    _warm_up(model, X, y)
    iterations = int(_scalar(model.optimizer.iterations))
    finder = LRFinder(1e-4, 1e-2, restore=False, stop_on_divergence=False)
    model.fit(X[:100], y[:100], batch_size=32, epochs=2, callbacks=[finder], verbose=0)
    assert int(_scalar(model.optimizer.iterations)) == iterations + 8
    assert _scalar(model.optimizer.learning_rate) == np.float32(1e-2)


def test_forced_divergence_stops_early_and_restores(digits):
    X, y = digits
    model = _classifier(keras.optimizers.SGD(momentum=0.9))
    _warm_up(model, X, y)
    before = _state_of(model)
    finder = LRFinder(1e-3, 1e4, num_steps=200, mode="exponential")
    probe = _Probe()
    model.fit(X, y, batch_size=32, epochs=4, callbacks=[finder, probe], verbose=0)

    result = finder.result
    assert result.stop_reason in ("diverged", "non-finite")
    assert 2 < len(result) < 200
    # The losses are read 8 steps at a time: fit stops within that chunk of the stopping step.
    assert len(result) <= len(probe.logs) < len(result) + 8
    assert all(len(values) == len(result) for values in finder.history.values())
    assert result.lrs[-1] > 1.0
    _assert_same_state(before, _state_of(model))


def test_learning_rate_schedule_is_replaced_then_put_back(digits):
    X, y = digits
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    optimizer = keras.optimizers.SGD(learning_rate=schedule, momentum=0.9)
    model = _classifier(optimizer)
    _warm_up(model, X, y)
    before = _state_of(model)
    config = optimizer.get_config()
    lr_before = _scalar(optimizer.learning_rate)

    finder = LRFinder(1e-4, 0.1, mode="exponential", stop_on_divergence=False)
    probe = _Probe()
    model.fit(X[:100], y[:100], batch_size=32, epochs=2, callbacks=[finder, probe], verbose=0)

    expected = lrscout.exponential_ramp(1e-4, 0.1, 8)(np.arange(8))
    assert np.array_equal(np.float32(probe.lrs), np.float32(expected))
    assert optimizer._learning_rate is schedule
    assert optimizer.get_config() == config
    _assert_same_state(before, _state_of(model))  # iterations included
    assert _scalar(optimizer.learning_rate) == lr_before

    # The schedule drives training again, from the restored iteration count.
    probe = _Probe()
    model.fit(X[:64], y[:64], batch_size=32, epochs=1, callbacks=[probe], verbose=0)
    np.testing.assert_allclose(probe.lrs, [_scalar(schedule(2)), _scalar(schedule(3))], rtol=1e-6)


def test_schedule_is_put_back_even_with_restore_false(digits):
    X, y = digits
    schedule = keras.optimizers.schedules.InverseTimeDecay(0.1, decay_steps=1, decay_rate=0.5)
    optimizer = keras.optimizers.SGD(learning_rate=schedule)
    model = _classifier(optimizer)
    n_variables = len(optimizer.variables)
    finder = LRFinder(1e-4, 0.1, restore=False, stop_on_divergence=False)
    model.fit(X[:100], y[:100], batch_size=32, epochs=1, callbacks=[finder], verbose=0)
    assert optimizer._learning_rate is schedule
    assert len(optimizer.variables) == n_variables
    assert int(_scalar(optimizer.iterations)) == 4


# find_lr -------------------------------------------------------------------


def test_find_lr_runs_num_steps_and_leaves_the_model(digits):
    X, y = digits
    model = _classifier(keras.optimizers.Adam(), batchnorm=True)
    _warm_up(model, X, y)
    before = _state_of(model)
    result = find_lr(
        model,
        X[:100],
        y[:100],
        start_lr=1e-4,
        end_lr=1e-1,
        num_steps=10,
        stop_on_divergence=False,
        extend=False,
    )
    assert isinstance(result, lrscout.RangeTestResult)
    assert (len(result), result.stop_reason, result.mode) == (10, "completed", "exponential")
    assert np.array_equal(result.lrs, lrscout.exponential_ramp(1e-4, 1e-1, 10)(np.arange(10)))
    info = dict(result.info)
    assert info["framework"] == "keras"
    assert info["backend"] == keras.backend.backend()
    assert (info["batch_size"], info["n_samples"], info["steps_per_epoch"]) == (32, 100, 4)
    _assert_same_state(before, _state_of(model))


def test_find_lr_full_batch_and_progress(digits, capsys, monkeypatch):
    X, y = digits
    model = _classifier(keras.optimizers.SGD())
    result = find_lr(
        model, X[:50], y[:50], batch_size=None, num_steps=3, extend=False, progress=True, info={"run": 1}
    )
    assert (len(result), result.info["batch_size"], result.info["run"]) == (3, 50, 1)
    assert capsys.readouterr().err == ""  # stderr is no terminal here: no bar for a log
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    find_lr(model, X[:50], y[:50], batch_size=None, num_steps=3, extend=False, progress=True)
    assert "LR range test" in capsys.readouterr().err


class _Digits(keras.utils.PyDataset):
    def __init__(self, X, y, batch, *, interrupt_at=None):
        super().__init__()
        self.X, self.y, self.batch, self.interrupt_at = X, y, batch, interrupt_at
        self.calls = 0

    def __len__(self):
        return math.ceil(len(self.X) / self.batch)

    def __getitem__(self, i):
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        part = slice(i * self.batch, (i + 1) * self.batch)
        return self.X[part], self.y[part]


@contextlib.contextmanager
def _interrupted():
    """A KeyboardInterrupt raised by a PyDataset, as the backend passes it on.

    TensorFlow reads a PyDataset inside tf.data, which reports what the
    Python code raised as an UnknownError naming it.
    """
    if BACKEND == "tensorflow":
        import tensorflow as tf

        with pytest.raises(tf.errors.UnknownError, match="KeyboardInterrupt"):
            yield
    else:
        with pytest.raises(KeyboardInterrupt):
            yield


def test_find_lr_with_pydataset(digits):
    X, y = digits
    model = _classifier(keras.optimizers.SGD(momentum=0.9))
    # The optimizer is not built yet: fit builds it, and the test leaves it
    # built with its momentum at zero, as a first fit would find it.
    before = _state_of(model)
    result = find_lr(model, _Digits(X[:90], y[:90], 40), num_steps=7, stop_on_divergence=False, extend=False)
    assert (len(result), result.info["steps_per_epoch"], result.info["batch_size"]) == (7, 3, None)
    after = _state_of(model)
    old = len(before["optimizer"])
    kept = {
        "model": after["model"],
        "optimizer": after["optimizer"][:old],
        "optimizer_ids": after["optimizer_ids"][:old],
    }
    _assert_same_state(before, kept)
    assert all(not value.any() for value in after["optimizer"][old:])


def test_find_lr_restores_after_keyboard_interrupt(digits):
    X, y = digits
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    model = _classifier(keras.optimizers.Adam(schedule))
    _warm_up(model, X, y)
    before = _state_of(model)
    with _interrupted():
        find_lr(model, _Digits(X[:90], y[:90], 30, interrupt_at=5), num_steps=20)
    assert model.optimizer._learning_rate is schedule
    _assert_same_state(before, _state_of(model))


@pytest.mark.parametrize("interrupt", [False, True], ids=["returns", "interrupted"])
def test_find_lr_keeps_the_training_history(digits, interrupt):
    X, y = digits
    model = _classifier(keras.optimizers.SGD())
    model.fit(X[:64], y[:64], batch_size=32, epochs=2, verbose=0)
    history = model.history
    recorded = {key: list(values) for key, values in history.history.items()}
    assert len(recorded["loss"]) == 2
    if interrupt:
        with _interrupted():
            find_lr(model, _Digits(X[:90], y[:90], 30, interrupt_at=5), num_steps=20)
    else:
        find_lr(model, X[:100], y[:100], num_steps=6, stop_on_divergence=False)
    assert model.history is history
    assert history.history == recorded


def test_find_lr_gives_no_history_to_a_model_never_fitted(digits):
    X, y = digits
    model = _classifier(keras.optimizers.SGD())
    assert not hasattr(model, "history")
    find_lr(model, X[:64], y[:64], num_steps=4, stop_on_divergence=False)
    assert not hasattr(model, "history")


# Argument checks ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"min_lr": 0.0}, ValueError, r"^LRFinder: min_lr must be positive; got 0\.0\."),
        ({"min_lr": "1e-5"}, TypeError, r"^LRFinder: min_lr must be a real number"),
        (
            {"max_lr": 1e-6},
            ValueError,
            r"^LRFinder: max_lr must be greater than min_lr \(1e-05\); got 1e-06\.",
        ),
        ({"max_lr": float("inf")}, ValueError, r"^LRFinder: max_lr must be finite"),
        ({"steps_per_epoch": 0}, ValueError, r"^LRFinder: steps_per_epoch must be an integer >= 1; got 0\."),
        (
            {"steps_per_epoch": 2.5},
            ValueError,
            r"^LRFinder: steps_per_epoch must be a whole number; got 2\.5\.",
        ),
        ({"steps_per_epoch": "3"}, TypeError, r"^LRFinder: steps_per_epoch must be an integer; got '3'\."),
        ({"epochs": -1}, ValueError, r"^LRFinder: epochs must be an integer >= 1"),
        ({"num_steps": 1}, ValueError, r"^LRFinder: num_steps must be an integer >= 2; got 1\."),
        (
            {"num_steps": 10, "epochs": 2},
            ValueError,
            r"^LRFinder: num_steps must be None when steps_per_epoch",
        ),
        (
            {"mode": "cosine"},
            ValueError,
            r"^LRFinder: mode must be one of 'exponential', 'linear'; got 'cosine'",
        ),
        ({"smoothing": 1.0}, ValueError, r"^LRFinder: smoothing must be < 1\.0; got 1\.0\."),
        ({"divergence_factor": 1.0}, ValueError, r"^LRFinder: divergence_factor must be > 1\.0"),
        ({"stop_on_divergence": 1}, TypeError, r"^LRFinder: stop_on_divergence must be True or False"),
        ({"restore": "yes"}, TypeError, r"^LRFinder: restore must be True or False; got 'yes'\."),
        ({"info": {"x": object()}}, TypeError, r"^LRFinder: info must hold JSON values only"),
    ],
)
def test_lrfinder_argument_checks(kwargs, error, match):
    with pytest.raises(error, match=match):
        LRFinder(**kwargs)


@pytest.fixture
def compiled(digits):
    return _classifier(keras.optimizers.SGD())


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"batch_size": 0}, ValueError, r"^find_lr: batch_size must be an integer >= 1; got 0\. Use None"),
        ({"batch_size": 2.5}, ValueError, r"^find_lr: batch_size must be a whole number"),
        ({"start_lr": -1.0}, ValueError, r"^find_lr: start_lr must be positive; got -1\.0\."),
        (
            {"end_lr": 1e-8},
            ValueError,
            r"^find_lr: end_lr must be greater than start_lr \(1e-07\); got 1e-08\.",
        ),
        ({"num_steps": 1}, ValueError, r"^find_lr: num_steps must be an integer >= 2; got 1\."),
        ({"mode": "step"}, ValueError, r"^find_lr: mode must be one of 'exponential', 'linear'; got 'step'"),
        ({"smoothing": -0.1}, ValueError, r"^find_lr: smoothing must be >= 0\.0"),
        ({"shuffle": None}, TypeError, r"^find_lr: shuffle must be True or False; got None\."),
        ({"progress": "no"}, TypeError, r"^find_lr: progress must be True or False; got 'no'\."),
        ({"info": [1]}, TypeError, r"^find_lr: info must be a mapping of JSON values; got \[1\]\."),
    ],
)
def test_find_lr_argument_checks(digits, compiled, kwargs, error, match):
    X, y = digits
    with pytest.raises(error, match=match):
        find_lr(compiled, X[:64], y[:64], **kwargs)


def test_find_lr_model_and_data_checks(digits, compiled):
    X, y = digits
    with pytest.raises(TypeError, match=r"^find_lr: model must be a keras\.Model; got str\."):
        find_lr("model", X, y)
    bare = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])
    with pytest.raises(ValueError, match=r"^find_lr: model must be compiled .*Call model\.compile"):
        find_lr(bare, X, y)
    with pytest.raises(TypeError, match=r"^find_lr: x must be an array .*; got str\."):
        find_lr(compiled, "X", y)
    with pytest.raises(ValueError, match=r"^find_lr: y must be None when x is a generator; got ndarray\."):
        find_lr(compiled, (row for row in X), y)
    with pytest.raises(ValueError, match=r"^find_lr: every array of y must have one row per sample \(64\)"):
        find_lr(compiled, X[:64], y[:63])
    with pytest.raises(ValueError, match=r"^find_lr: y must be None when x is a keras\.utils\.PyDataset"):
        find_lr(compiled, _Digits(X, y, 32), y)


def test_checks_made_when_training_begins(digits):
    X, y = digits
    model = _classifier(keras.optimizers.SGD())
    before = _state_of(model)
    with pytest.raises(
        ValueError, match=r"^LRFinder: steps_per_epoch \* epochs must be at least 2; got 1 \* 1\."
    ):
        model.fit(X[:32], y[:32], batch_size=32, callbacks=[LRFinder()], verbose=0)
    with pytest.raises(RuntimeError, match=r"^LRFinder\.result: no range test has run yet"):
        _ = LRFinder().result
    _assert_same_state(before, _state_of(model))


@pytest.mark.skipif(BACKEND == "torch", reason="Keras's torch trainer refuses it itself")
def test_steps_per_execution_is_refused_by_the_callback(digits):
    X, _ = digits
    chunked = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])
    chunked.compile(optimizer="sgd", loss="mse", steps_per_execution=2)
    with pytest.raises(
        ValueError,
        match=r"^LRFinder: model\.steps_per_execution must be 1; got 2\..*or run lrscout\.keras\.find_lr",
    ):
        chunked.fit(X[:64], X[:64, :10], batch_size=16, callbacks=[LRFinder()], verbose=0)


def test_find_lr_runs_a_model_compiled_with_steps_per_execution(digits):
    X, y = digits
    model = _classifier(keras.optimizers.SGD(momentum=0.9))
    twin = _classifier(keras.optimizers.SGD(momentum=0.9))
    model.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"], steps_per_execution=4)
    for m in (model, twin):
        m.optimizer.build(m.trainable_variables)
    before = _state_of(model)
    result = find_lr(
        model, X[:128], y[:128], num_steps=8, stop_on_divergence=False, extend=False, shuffle=False
    )
    plain = find_lr(
        twin, X[:128], y[:128], num_steps=8, stop_on_divergence=False, extend=False, shuffle=False
    )
    # One step per learning rate, as without steps_per_execution, which is put back.
    np.testing.assert_array_equal(result.losses, plain.losses)
    assert model.steps_per_execution == 4
    _assert_same_state(before, _state_of(model))


# Models TensorFlow builds at their first step ------------------------------------------
#
# Keras's TensorFlow trainer builds the optimizer, the compiled metrics and a
# subclassed model's layers only when it first traces the training step. The
# oracle: a model that went through the test and then trains equals a twin
# that never saw the test, bitwise.


def _copy_weights(source, target):
    # get_weights() goes through np.array(tensor), which NumPy 2 warns about on torch.
    # A copy: under JAX a variable's buffer is donated to the next training step.
    for to, value in zip(target.variables, source.variables, strict=True):
        to.assign(keras.ops.copy(value.value))


def _train_state(model, X, y):
    """What a short fit from here ends at: weights and optimizer variables."""
    model.fit(X[:96], y[:96], batch_size=32, epochs=1, shuffle=False, verbose=0)
    return _state_of(model) | {"optimizer_ids": []}


class Subclassed(keras.Model):
    """A model with no Input: its weights exist only once it has been called."""

    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(16, activation="relu")
        self.out = keras.layers.Dense(10)

    def call(self, x):
        return self.out(self.hidden(x))


def _subclassed(optimizer):
    keras.utils.set_random_seed(0)
    model = Subclassed()
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


_NEVER_FITTED = {
    "adam": lambda: _classifier(keras.optimizers.Adam(1e-3)),
    "sgd-momentum": lambda: _classifier(keras.optimizers.SGD(0.05, momentum=0.9)),
    "adagrad": lambda: _classifier(keras.optimizers.Adagrad(0.05)),  # accumulators start at 0.1, not 0
    "cosine-decay": lambda: _classifier(
        keras.optimizers.SGD(keras.optimizers.schedules.CosineDecay(0.1, 1000))
    ),
    "subclassed-adam": lambda: _subclassed(keras.optimizers.Adam(1e-3)),
}


@pytest.mark.parametrize("make", list(_NEVER_FITTED.values()), ids=list(_NEVER_FITTED))
def test_find_lr_on_a_model_never_fitted_leaves_it_as_a_fresh_one(digits, make):
    X, y = digits
    model, twin = make(), make()
    result = find_lr(model, X[:200], y[:200], num_steps=20)
    assert len(result) > 2
    assert np.all(np.isfinite(result.losses))
    _assert_same_state(_train_state(twin, X, y), _train_state(model, X, y))


@pytest.mark.parametrize("fitted", [False, True], ids=["never-fitted", "fitted"])
def test_seed_usage_on_a_model_compiled_with_metrics(digits, fitted):
    # The README's example with metrics=["accuracy"]; TensorFlow builds the
    # accuracy's state only when it traces the first step.
    X, y = digits

    def make():
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.Input((64,)),
                keras.layers.Dense(32, activation="relu"),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        if fitted:
            _warm_up(model, X, y)
        return model

    model, twin = make(), make()
    lr_finder = LRFinder(min_lr=1e-5, max_lr=1e-1, steps_per_epoch=np.ceil(400 / 32), epochs=2)
    probe = _Probe()
    model.fit(X[:400], y[:400], batch_size=32, epochs=2, callbacks=[lr_finder, probe], verbose=0)
    assert set(lr_finder.history) == {"lr", "iterations", "loss", "accuracy"}
    assert len(lr_finder.history["accuracy"]) == 26
    assert all(0.0 <= a <= 1.0 for a in lr_finder.history["accuracy"])
    np.testing.assert_allclose(np.float32(probe.lrs), np.float32(lr_finder.history["lr"]), rtol=0)
    assert _scalar(model.optimizer.learning_rate) == np.float32(1e-3)
    _assert_same_state(_train_state(twin, X, y), _train_state(model, X, y))


@pytest.mark.skipif(BACKEND != "tensorflow", reason="the other trainers build the model before fit")
def test_a_model_that_only_its_first_step_can_build_is_refused(digits):
    # A model that cannot be built symbolically: TensorFlow's trainer builds
    # it when it traces the first step, after which its initial weights
    # would be lost.
    X, y = digits

    class Unbuildable(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(10)

        def call(self, x, training=None):
            if not training:  # the symbolic build calls it with training=False
                raise TypeError("this model only trains")
            return self.dense(x)

    model = Unbuildable()
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(
        ValueError,
        match=r"^find_lr: the model must be built before the test; its first step created .*kernel",
    ):
        find_lr(model, X[:64], y[:64], num_steps=4)
    assert model.optimizer._learning_rate is not None and "train_step" not in vars(model)


# Learning-rate schedules and the compiled training step -----------------------------------


def test_a_schedule_drives_the_fit_after_find_lr(digits):
    X, y = digits
    schedule = keras.optimizers.schedules.CosineDecay(0.1, 1000)
    model = _classifier(keras.optimizers.SGD(schedule))
    find_lr(model, X[:200], y[:200], num_steps=20)
    probe = _Probe()
    model.fit(X[:96], y[:96], batch_size=32, epochs=1, shuffle=False, callbacks=[probe], verbose=0)
    np.testing.assert_allclose(probe.lrs, [_scalar(schedule(step)) for step in range(3)], rtol=1e-6)
    assert probe.lrs[0] == pytest.approx(0.1, rel=1e-6)


def test_find_lr_after_a_fit_with_a_schedule_runs_its_own_ramp(digits):
    # A model fitted with a schedule (its compiled step reads the schedule)
    # and one fitted with a float, given the same weights: the ramp replaces
    # either rate, so both tests see the same losses.
    X, y = digits
    scheduled = _classifier(keras.optimizers.SGD(keras.optimizers.schedules.CosineDecay(0.1, 1000)))
    constant = _classifier(keras.optimizers.SGD(0.1))
    for model in (scheduled, constant):
        _warm_up(model, X, y)
    _copy_weights(scheduled, constant)
    constant.optimizer.iterations.assign(keras.ops.copy(scheduled.optimizer.iterations.value))
    kwargs = {"num_steps": 30, "stop_on_divergence": False, "extend": False, "shuffle": False}
    ramped = find_lr(scheduled, X[:300], y[:300], **kwargs)
    plain = find_lr(constant, X[:300], y[:300], **kwargs)
    np.testing.assert_array_equal(ramped.losses, plain.losses)
    assert ramped.losses[-1] != ramped.losses[0]


@pytest.mark.parametrize("fitted", [False, True], ids=["never-fitted", "fitted"])
def test_callback_ramps_a_schedule_after_the_step_was_compiled(fitted):
    # loss = w with a constant gradient of 1: plain SGD moves w by exactly -lr.
    model = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")]
    )
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    model.compile(
        optimizer=keras.optimizers.SGD(schedule), loss=lambda y_true, y_pred: keras.ops.mean(y_pred)
    )
    x = np.ones((12, 1), dtype="float32")
    if fitted:
        model.fit(x, x, batch_size=4, epochs=1, verbose=0)
    start = _scalar(model.layers[0].kernel)
    finder = LRFinder(1e-3, 1e-1, mode="exponential", stop_on_divergence=False, restore=False)
    model.fit(x, x, batch_size=4, epochs=2, callbacks=[finder], verbose=0)
    travelled = start - _scalar(model.layers[0].kernel)
    expected = lrscout.exponential_ramp(1e-3, 1e-1, 6)(np.arange(6)).sum()
    assert travelled == pytest.approx(expected, rel=0, abs=2e-6)
    # The next fit trains at the schedule again, from the iterations the test left.
    before = _scalar(model.layers[0].kernel)
    model.fit(x[:4], x[:4], batch_size=4, epochs=1, verbose=0)
    step = int(_scalar(model.optimizer.iterations)) - 1
    assert before - _scalar(model.layers[0].kernel) == pytest.approx(_scalar(schedule(step)), rel=1e-5)


# A custom train_step ------------------------------------------------------------------


def _loss_of_batch(y_true, y_pred):
    return keras.ops.mean(keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True))


def _custom_step_model():
    """The Keras guide's pattern: train_step computes its loss and returns {"loss": loss}."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        class Custom(keras.Sequential):
            def train_step(self, data):
                x, y = data
                with tf.GradientTape() as tape:
                    loss = _loss_of_batch(y, self(x, training=True))
                gradients = tape.gradient(loss, self.trainable_variables)
                self.optimizer.apply(gradients, self.trainable_variables)
                return {"loss": loss}

    elif BACKEND == "torch":

        class Custom(keras.Sequential):
            def train_step(self, data):
                x, y = data
                self.zero_grad()
                loss = _loss_of_batch(y, self(x, training=True))
                loss.backward()
                variables = self.trainable_variables
                self.optimizer.apply([v.value.grad for v in variables], variables)
                return {"loss": loss}

    else:
        import jax

        class Custom(keras.Sequential):
            def train_step(self, state, data):
                trainable, non_trainable, optimizer_variables, metrics_variables = state
                x, y = data

                def loss_fn(trainable):
                    y_pred, updated = self.stateless_call(trainable, non_trainable, x, training=True)
                    return _loss_of_batch(y, y_pred), updated

                (loss, non_trainable), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
                trainable, optimizer_variables = self.optimizer.stateless_apply(
                    optimizer_variables, grads, trainable
                )
                return {"loss": loss}, (trainable, non_trainable, optimizer_variables, metrics_variables)

    keras.utils.set_random_seed(0)
    model = Custom([keras.Input((64,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(10)])
    model.compile(optimizer=keras.optimizers.SGD(), loss=_loss_of_batch)
    return model


def test_losses_a_custom_train_step_returns_are_the_batch_losses(digits):
    X, y = digits
    custom = _custom_step_model()
    default = _classifier(keras.optimizers.SGD(), metrics=())
    _copy_weights(custom, default)
    before = _state_of(custom)
    kwargs = {"num_steps": 40, "shuffle": False, "stop_on_divergence": False, "extend": False}
    result = find_lr(custom, X[:400], y[:400], **kwargs)
    # The compiled loss tracker stays at zero; the step's own loss is what counts.
    np.testing.assert_allclose(result.losses, find_lr(default, X[:400], y[:400], **kwargs).losses, rtol=1e-5)
    assert result.losses.min() > 0.1
    _assert_same_state(before, _state_of(custom))


# Data as fit takes it -------------------------------------------------------------------


def _steady(**kwargs):
    return {"num_steps": 12, "stop_on_divergence": False, "extend": False, "shuffle": False, **kwargs}


@needs_tensorflow
@pytest.mark.parametrize("repeat", [False, True], ids=["finite", "repeated"])
def test_find_lr_takes_a_tf_data_dataset(digits, repeat):
    import tensorflow as tf

    X, y = digits
    model, twin = _classifier(keras.optimizers.SGD()), _classifier(keras.optimizers.SGD())
    dataset = tf.data.Dataset.from_tensor_slices((X[:160], y[:160])).batch(32)
    if repeat:
        dataset = dataset.repeat()
    before = _state_of(model)
    result = find_lr(model, dataset, **_steady(steps_per_epoch=5 if repeat else None))
    assert (len(result), result.info["steps_per_epoch"]) == (12, 5)
    # The same batches as the arrays give, in the same order.
    np.testing.assert_allclose(result.losses, find_lr(twin, X[:160], y[:160], **_steady()).losses, rtol=1e-6)
    _assert_same_state(before, _state_of(model))


def test_find_lr_takes_a_generator_and_ends_with_it(digits):
    X, y = digits
    model = _classifier(keras.optimizers.SGD())
    batches = ((X[i : i + 32], y[i : i + 32]) for i in range(0, 160, 32))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = find_lr(model, batches, **_steady())
    # Keras says its input ran out; lrscout, what that does to the curve.
    assert any(str(w.message).startswith("Your input ran out of data") for w in caught)
    assert any(str(w.message).startswith("ran short: 5 of the 12 planned steps") for w in caught)
    assert (len(result), result.stop_reason) == (5, "ended")
    twin = _classifier(keras.optimizers.SGD())
    np.testing.assert_allclose(
        result.losses, find_lr(twin, X[:160], y[:160], **_steady()).losses[:5], rtol=1e-6
    )


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_find_lr_takes_a_torch_dataloader(digits):
    import torch

    X, y = digits
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.tensor(X[:160]), torch.tensor(y[:160])), batch_size=32
    )
    model, twin = _classifier(keras.optimizers.SGD()), _classifier(keras.optimizers.SGD())
    result = find_lr(model, loader, **_steady(refine=True))
    assert (len(result), result.info["steps_per_epoch"]) == (12, 5)
    np.testing.assert_allclose(result.losses, find_lr(twin, X[:160], y[:160], **_steady()).losses, rtol=1e-6)


def test_empty_data_is_refused_before_training(digits):
    X, y = digits
    model = _classifier(keras.optimizers.SGD())
    before = _state_of(model)
    with pytest.raises(
        ValueError, match=r"^find_lr: x must yield at least one batch; got an empty keras\.utils"
    ):
        find_lr(model, _Digits(X[:0], y[:0], 32))
    with pytest.raises(ValueError, match=r"^find_lr: x must hold at least one sample; got 0\."):
        find_lr(model, X[:0], y[:0])
    # Keras looks into a generator before training and refuses an empty one itself.
    with pytest.raises(ValueError, match=r"generator must yield at least one batch"):
        find_lr(model, (batch for batch in []))
    with pytest.raises(TypeError, match=r"^find_lr: x must be an array .*; got list_iterator\."):
        find_lr(model, iter([(X[:8], y[:8])]))
    _assert_same_state(before, _state_of(model))


@needs_tensorflow
def test_empty_tf_data_dataset_is_refused(digits):
    import tensorflow as tf

    X, y = digits
    empty = tf.data.Dataset.from_tensor_slices((X[:0], y[:0])).batch(32)
    with pytest.raises(ValueError, match=r"^find_lr: x must yield at least one batch; got an empty tf\.data"):
        find_lr(_classifier(keras.optimizers.SGD()), empty)


def test_inputs_without_targets_are_refused_unless_the_model_needs_none(digits):
    X, _ = digits
    model = _classifier(keras.optimizers.SGD())
    with pytest.raises(
        ValueError, match=r"^find_lr: y must be given with array inputs, since the model's loss"
    ):
        find_lr(model, X[:64])
    # A model with no compiled loss (its loss added by a layer) trains on x alone.
    keras.utils.set_random_seed(0)
    inputs = keras.Input((64,))
    hidden = keras.layers.Dense(8)(inputs)

    class Penalty(keras.layers.Layer):
        def call(self, x):
            self.add_loss(keras.ops.mean(keras.ops.square(x - 1.0)))
            return x

    autoencoder = keras.Model(inputs, Penalty()(hidden))
    autoencoder.compile(optimizer=keras.optimizers.SGD())
    result = find_lr(autoencoder, X[:64], num_steps=6, extend=False)
    assert len(result) == 6 and result.losses[0] > 0


# The refinement stage and held-out data -----------------------------------------------------


def _seed_everything(seed):
    from keras.src.backend.common import global_state

    # set_random_seed seeds the generator that keras.random makes on first use,
    # not one an earlier test made: drop that one.
    global_state.set_global_attribute("global_seed_generator", None)
    keras.utils.set_random_seed(seed)
    if "torch" in sys.modules:  # Keras seeds torch only as its backend
        import torch

        torch.manual_seed(seed)


def _random_draws():
    # NumPy's global generator is what fit shuffles arrays with.
    draws = [random.random(), float(np.random.random())]  # noqa: NPY002
    if "torch" in sys.modules:
        import torch

        draws.append(float(torch.rand(())))
    draws.append(float(_numpy(keras.random.uniform(()))))
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        draws.append(float(tf.random.uniform(())))
    return draws


@pytest.mark.parametrize("data", ["arrays", "pydataset"])
def test_find_lr_leaves_every_global_random_state(digits, data):
    X, y = digits
    model = _classifier(keras.optimizers.SGD(), batchnorm=True)
    x = (X[:200], y[:200]) if data == "arrays" else (_Digits(X[:200], y[:200], 32),)
    _seed_everything(7)
    expected = _random_draws()
    _seed_everything(7)
    find_lr(model, *x, num_steps=10, shuffle=True, refine=True)
    assert _random_draws() == expected


@pytest.mark.parametrize("held_out", [None, "validation_data", "validation_split"])
def test_refine_probes_from_the_tests_start_and_restores(digits, held_out, monkeypatch):
    X, y = digits
    model = _classifier(keras.optimizers.SGD(momentum=0.9), batchnorm=True)
    _warm_up(model, X, y)
    before = _state_of(model)
    kwargs = {"validation_data": (X[300:400], y[300:400])} if held_out == "validation_data" else {}
    if held_out == "validation_split":
        kwargs = {"validation_split": 0.25}
    first_losses = []
    train_on_batch = type(model).train_on_batch

    def spy(self, *args, **kw):
        logs = train_on_batch(self, *args, **kw)
        first_losses.append(logs["loss"])
        return logs

    monkeypatch.setattr(type(model), "train_on_batch", spy)
    result = find_lr(model, X[:300], y[:300], num_steps=30, shuffle=False, refine=True, **kwargs)
    record = result.info["refinement"]
    assert result.suggestion.method == "refined"
    assert record["scored_on"] == ("training" if held_out is None else "held-out")
    assert result.info["n_samples"] == (225 if held_out == "validation_split" else 300)
    # Every round's probes, in the order they ran.
    probes = [probe for entry in record["rounds"] for probe in entry["probes"]]
    assert len(probes) >= 2
    # Each probe's first step is the test's first step (the same state and
    # batch; the loss is taken before the step, whatever its rate).
    steps = [probe["steps_run"] for probe in probes]
    starts = np.cumsum([0, *steps[:-1]])
    np.testing.assert_allclose(np.asarray(first_losses)[starts], result.losses[0], rtol=1e-6)
    _assert_same_state(before, _state_of(model))
    # And a second run, from the same state, is the same run.
    monkeypatch.undo()
    again = find_lr(model, X[:300], y[:300], num_steps=30, shuffle=False, refine=True, **kwargs)
    assert again.info["refinement"] == record


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"validation_data": "held"}, r"^find_lr: validation_data scores the refinement's probes"),
        ({"validation_split": 0.2}, r"^find_lr: validation_split scores the refinement's probes"),
        (
            {"refine": True, "validation_data": ((x, y) for x, y in [(1, 2)])},
            r"^find_lr: validation_data must be re-iterable",
        ),
        (
            {"refine": True, "validation_data": (1, 2, 3, 4)},
            r"^find_lr: validation_data must be \(x_val, y_val\)",
        ),
        (
            {"refine": True, "validation_data": (np.zeros((5, 64)), np.zeros(4))},
            r"^find_lr: every array of validation_data's y must have one row per sample \(5\)",
        ),
        (
            {"refine": True, "validation_split": 0.2, "validation_data": (np.zeros((5, 64)), np.zeros(5))},
            r"^find_lr: validation_split must be 0\.0 when validation_data is given",
        ),
        (
            {"refine": True, "validation_split": 1.0},
            r"^find_lr: validation_split must be < 1\.0; got 1\.0\.",
        ),
        (
            {"refine": True, "validation_split": 0.99},
            r"^find_lr: validation_split must leave samples on both",
        ),
        ({"refine": "yes"}, r"^find_lr: refine must be True or False; got 'yes'\."),
        ({"steps_per_epoch": 4}, r"^find_lr: steps_per_epoch must be None with array inputs"),
    ],
)
def test_validation_and_refine_argument_checks(digits, compiled, kwargs, match):
    X, y = digits
    before = _state_of(compiled)
    with pytest.raises(ValueError, match=match):
        find_lr(compiled, X[:64], y[:64], **kwargs)
    _assert_same_state(before, _state_of(compiled))


def test_refine_refuses_a_generator(digits, compiled):
    X, y = digits
    with pytest.raises(ValueError, match=r"^find_lr: x must be re-iterable with refine=True"):
        find_lr(compiled, ((X[i : i + 8], y[i : i + 8]) for i in range(0, 64, 8)), refine=True)


def test_refine_with_a_held_out_dataset(digits):
    X, y = digits
    model = _classifier(keras.optimizers.Adam())
    before = _state_of(model)
    result = find_lr(
        model,
        _Digits(X[:256], y[:256], 32),
        validation_data=_Digits(X[256:320], y[256:320], 32),
        refine=True,
        num_steps=20,
    )
    assert result.info["refinement"]["scored_on"] == "held-out"
    after = _state_of(model)
    old = len(before["optimizer"])
    _assert_same_state(before, {k: v[:old] if k != "model" else v for k, v in after.items()})


# Errors inside a training step ---------------------------------------------------------------


def test_callback_puts_the_model_back_after_an_interrupt_inside_a_step(digits):
    X, y = digits

    class Interrupting(keras.layers.Layer):
        def call(self, x, training=None):
            if training:
                raise KeyboardInterrupt
            return x

    keras.utils.set_random_seed(0)
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10), Interrupting()])
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss="mse")
    before = _state_of(model)
    train_function = model.train_function
    with pytest.raises(KeyboardInterrupt):
        model.fit(X[:64], y[:64, None] * np.ones((1, 10)), callbacks=[LRFinder()], verbose=0)
    assert model.optimizer._learning_rate is schedule
    assert "train_step" not in vars(model)
    assert model.train_function is train_function or train_function is None
    _assert_same_state(before, _state_of(model))


def test_metrics_state_is_restored(digits):
    X, y = digits
    model = _classifier(keras.optimizers.SGD())
    _warm_up(model, X, y)
    before = model.get_metrics_result()
    find_lr(model, X[:200], y[:200], num_steps=10)
    assert model.get_metrics_result() == before


# Imports and backends ------------------------------------------------------------


def test_missing_keras_names_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "lrscout.keras" or m.startswith("lrscout.keras.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "keras", None)
    with pytest.raises(ImportError, match=r"^lrscout\.keras needs Keras 3, .* with: pip install keras$"):
        import lrscout.keras  # noqa: F401


def test_import_lrscout_does_not_import_keras():
    code = "import sys, lrscout; assert 'keras' not in sys.modules, 'keras imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)
