"""lrscout.optax: exact learning rates, a hand-written loop, known physics, one compile, untouched inputs."""

from __future__ import annotations

import functools
import itertools
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")
import jax.numpy as jnp  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_digits  # noqa: E402

import lrscout  # noqa: E402
from lrscout import InvalidArgumentError  # noqa: E402
from lrscout.optax import find_lr  # noqa: E402

# --- models and data ---------------------------------------------------------------


def _standardised(X: np.ndarray) -> np.ndarray:
    return ((X - X.mean(axis=0)) / np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)).astype(np.float32)


@pytest.fixture(scope="module")
def cancer() -> list[tuple[np.ndarray, np.ndarray]]:
    """Breast cancer in batches of 64 (the last one dropped: one batch shape, one compile)."""
    X, y = load_breast_cancer(return_X_y=True)
    X, y = _standardised(X), y.astype(np.float32)
    return [(X[i : i + 64], y[i : i + 64]) for i in range(0, 64 * (len(X) // 64), 64)]


@pytest.fixture(scope="module")
def digits() -> list[tuple[np.ndarray, np.ndarray]]:
    X, y = load_digits(return_X_y=True)
    X, y = _standardised(X), y.astype(np.int32)
    return [(X[i : i + 128], y[i : i + 128]) for i in range(0, 128 * (len(X) // 128), 128)]


def logistic_loss(params: dict[str, Any], batch: tuple[Any, Any]) -> jax.Array:
    """Mean binary cross-entropy of a logistic regression: ``log(1 + exp(-s z))``, ``s = 2y - 1``."""
    X, y = batch
    z = X @ params["w"] + params["b"]
    return jnp.mean(jax.nn.softplus(-(2.0 * y - 1.0) * z))


def logistic_params() -> dict[str, jax.Array]:
    return {"w": jnp.zeros(30, jnp.float32), "b": jnp.zeros((), jnp.float32)}


def mlp_params(seed: int = 0, n_in: int = 64, hidden: int = 16, n_out: int = 10) -> dict[str, Any]:
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    return {
        "hidden": {"w": jax.random.normal(k1, (n_in, hidden)) / np.sqrt(n_in), "b": jnp.zeros(hidden)},
        "out": {"w": jax.random.normal(k2, (hidden, n_out)) / np.sqrt(hidden), "b": jnp.zeros(n_out)},
    }


def mlp_loss(params: dict[str, Any], batch: tuple[Any, Any]) -> jax.Array:
    X, y = batch
    h = jax.nn.relu(X @ params["hidden"]["w"] + params["hidden"]["b"])
    logits = h @ params["out"]["w"] + params["out"]["b"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def _host(tree: Any) -> list[tuple[str, np.dtype[Any], bytes]]:
    """Every leaf of ``tree`` as (path, dtype, bytes): equal means bitwise equal."""
    return [
        (jax.tree_util.keystr(path), np.asarray(leaf).dtype, np.asarray(leaf).tobytes())
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
    ]


def _alive(tree: Any) -> bool:
    return not any(
        leaf.is_deleted() for leaf in jax.tree_util.tree_leaves(tree) if isinstance(leaf, jax.Array)
    )


# --- imports -----------------------------------------------------------------------


def test_import_lrscout_does_not_import_jax_or_optax():
    code = "import sys, lrscout; sys.exit(int('optax' in sys.modules or 'jax' in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_import_without_optax_names_the_extra():
    code = (
        "import sys; sys.modules['optax'] = None\n"
        "try:\n    import lrscout.optax\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], timeout=60, capture_output=True, text=True)
    assert out.stdout.strip() == (
        "lrscout.optax needs JAX and optax, which is not installed. Install it with: pip install jax optax"
    )


# --- learning rates and losses against oracles -------------------------------------


@pytest.mark.parametrize(
    ("mode", "ramp"), [("exponential", lrscout.exponential_ramp), ("linear", lrscout.linear_ramp)]
)
def test_learning_rates_equal_the_core_ramp_exactly(cancer, mode, ramp):
    result = find_lr(
        logistic_loss,
        logistic_params(),
        optax.sgd,
        cancer,
        start_lr=1e-4,
        end_lr=10.0,
        num_steps=60,
        mode=mode,
    )
    assert len(result) > 10  # logistic regression may or may not diverge by lr = 10: either is fine here
    assert np.array_equal(result.lrs, ramp(1e-4, 10.0, 60)(np.arange(len(result))))
    assert result.lrs[0] == 1e-4 and result.start_lr == 1e-4 and result.end_lr == 10.0
    assert 1e-4 <= result.suggestion.lr <= result.lrs[-1]


def _heavy_ball_losses(loss_fn, params, batches, lrs, momentum) -> list[float]:
    """The range test written out by hand, unjitted: ``m = g + mu m``, ``p = p - lr m`` (optax.sgd's rule)."""
    losses = []
    velocity = jax.tree_util.tree_map(jnp.zeros_like, params)
    data = itertools.cycle(batches)
    for lr in lrs:
        loss, grads = jax.value_and_grad(loss_fn)(params, next(data))
        velocity = jax.tree_util.tree_map(lambda v, g: g + momentum * v, velocity, grads)
        rate = jnp.float32(lr)
        params = jax.tree_util.tree_map(lambda p, v, rate=rate: p - rate * v, params, velocity)
        losses.append(float(loss))
    return losses


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_losses_equal_a_hand_written_loop(cancer, momentum):
    optimizer = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1, momentum=momentum)
    result = find_lr(logistic_loss, logistic_params(), optimizer, cancer, start_lr=1e-4, end_lr=100.0)
    assert len(result) > len(cancer) and result.info["loader_cycled"]
    expected = _heavy_ball_losses(logistic_loss, logistic_params(), cancer, result.lrs, momentum)
    np.testing.assert_allclose(result.losses, expected, rtol=1e-4)
    assert result.info["optimizer"] == "SGD" and result.info["momentum"] == pytest.approx(momentum)


def _quadratic_stop(lrs: np.ndarray, lam: float, divergence_factor: float) -> int:
    """Closed form: GD on ``lam w^2 / 2`` from ``w = 1`` has loss ``lam/2 prod (1 - lr_s lam)^2``;
    with no smoothing the test stops at the first loss over ``divergence_factor`` times the best."""
    losses = 0.5 * lam * np.concatenate([[1.0], np.cumprod((1.0 - lrs * lam) ** 2)])
    for t in range(1, len(lrs)):
        if losses[t] > divergence_factor * losses[:t].min():
            return t
    raise AssertionError("the closed form never diverges on this ramp")


@pytest.mark.parametrize("lam", [0.3, 4.0, 50.0])
def test_gradient_descent_on_a_quadratic_stops_just_past_2_over_lambda(lam):
    limit = 2.0 / lam

    def loss_fn(w, batch):
        return 0.5 * lam * w**2

    result = find_lr(loss_fn, jnp.float32(1.0), optax.sgd, [None], start_lr=1e-4, end_lr=1e3, smoothing=0.0)
    planned = lrscout.exponential_ramp(1e-4, 1e3, 100)(np.arange(100))
    stop = _quadratic_stop(planned, lam, 4.0)
    assert result.stop_reason == "diverged" and len(result) == stop + 1
    # The loss falls at every rate below the limit and the stop comes within 4 steps above it.
    below = result.lrs < limit
    assert np.all(np.diff(result.losses[: below.sum() + 1]) < 0)
    assert result.lrs[-1] > limit and result.lrs[-5] < limit
    np.testing.assert_allclose(
        result.losses,
        0.5 * lam * np.concatenate([[1.0], np.cumprod((1.0 - result.lrs * lam) ** 2)[:-1]]),
        rtol=1e-4,
    )
    assert result.suggestion.lr < limit


# --- one compile, chunked reads ---------------------------------------------------


@pytest.mark.parametrize(
    "optimizer",
    [optax.adam, optax.inject_hyperparams(optax.sgd)(learning_rate=0.1, momentum=0.9), optax.adamw],
    ids=["adam", "injected-sgd", "adamw"],
)
def test_the_step_is_traced_once_for_the_whole_test(digits, optimizer):
    traces = []

    def loss_fn(params, batch):
        traces.append(1)  # runs only while jax traces the step
        return mlp_loss(params, batch)

    result = find_lr(loss_fn, mlp_params(), optimizer, digits, start_lr=1e-5, end_lr=10.0, num_steps=60)
    assert len(result) > 2 * len(digits)  # the batches were cycled
    assert len(traces) == 1


def test_a_batch_of_a_new_shape_is_traced_again_once(cancer):
    shapes = []

    def loss_fn(params, batch):
        shapes.append(batch[0].shape)
        return logistic_loss(params, batch)

    X, y = cancer[0]
    batches = [(X, y), (X, y), (X[:10], y[:10])]
    result = find_lr(loss_fn, logistic_params(), optax.sgd, batches, end_lr=1e-2, num_steps=20, extend=False)
    assert len(result) == 20 and shapes == [(64, 30), (10, 30)]


def test_reads_losses_once_per_chunk(monkeypatch, cancer):
    reads = []
    device_get = jax.device_get

    def counted(tree):
        reads.append(np.shape(tree))
        return device_get(tree)

    monkeypatch.setattr(jax, "device_get", counted)
    taken = []

    def batches() -> Iterator[Any]:
        for batch in itertools.cycle(cancer):
            taken.append(1)
            yield batch

    result = find_lr(
        logistic_loss, logistic_params(), optax.sgd, batches(), end_lr=1e-2, num_steps=20, extend=False
    )
    assert result.stop_reason == "completed" and len(taken) == 20
    assert reads == [(8,), (8,), (4,)]

    # A stop is seen at the end of its chunk; the steps run past it are not recorded.
    reads.clear()
    taken.clear()
    poisoned = [(X, y, np.float32(np.nan if i == 10 else 0.0)) for i, (X, y) in enumerate(cancer * 3)]

    def nan_at_10(params, batch):
        return logistic_loss(params, batch[:2]) + batch[2]

    data = iter(poisoned)
    result = find_lr(
        nan_at_10, logistic_params(), optax.sgd, (taken.append(1) or b for b in data), end_lr=1e-2
    )
    assert (result.stop_reason, len(result), len(taken)) == ("non-finite", 11, 16)
    assert reads == [(8,), (8,)]


def test_the_result_does_not_depend_on_sync_every(digits):
    kwargs = {"start_lr": 1e-4, "end_lr": 100.0, "num_steps": 50}
    reference = find_lr(mlp_loss, mlp_params(), optax.adam, digits, sync_every=8, **kwargs)
    assert reference.stop_reason == "diverged"
    for sync_every in (1, 3, 100):
        result = find_lr(mlp_loss, mlp_params(), optax.adam, digits, sync_every=sync_every, **kwargs)
        assert np.array_equal(result.losses, reference.losses) and np.array_equal(result.lrs, reference.lrs)


# --- the inputs are left as they were ----------------------------------------------


def _adam_state_after_training(params, batches):
    """An optimizer state with non-zero moments, as a checkpoint would hold."""
    optimizer = optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)

    @jax.jit
    def train(params, state, batch):
        updates, state = optimizer.update(jax.grad(mlp_loss)(params, batch), state, params)
        return optax.apply_updates(params, updates), state

    state = optimizer.init(params)
    for batch in batches[:3]:
        params, state = train(params, state, batch)
    return optimizer, params, state


def test_params_and_opt_state_are_untouched(digits):
    optimizer, params, state = _adam_state_after_training(mlp_params(), digits)
    hyperparams = state.hyperparams
    before = (_host(params), _host(state), dict(hyperparams))
    result = find_lr(mlp_loss, params, optimizer, digits, opt_state=state, start_lr=1e-5, end_lr=10.0)
    assert result.stop_reason == "diverged" and result.info["optimizer"] == "Adam"
    assert (_host(params), _host(state)) == before[:2]
    assert state.hyperparams is hyperparams and hyperparams == before[2]
    assert _alive(params) and _alive(state)  # only private copies were donated
    # The test started from the given moments: it differs from a start at optimizer.init.
    fresh = find_lr(mlp_loss, params, optimizer, digits, start_lr=1e-5, end_lr=10.0)
    assert result.losses[1] != fresh.losses[1]


class Boom(RuntimeError):
    pass


def test_untouched_after_an_exception_inside_loss_fn_mid_test(digits):
    params = mlp_params()
    before = _host(params)
    seen = []

    def loss_fn(params, batch):
        seen.append(batch[0].shape[0])
        if batch[0].shape[0] != 128:
            raise Boom("loss_fn failed")
        return mlp_loss(params, batch)

    X, y = digits[0]
    with pytest.raises(Boom):
        find_lr(loss_fn, params, optax.adam, [*digits, (X[:5], y[:5])])
    assert seen == [128, 5]  # it failed at step len(digits), after those steps ran
    assert _host(params) == before and _alive(params)


def test_untouched_after_keyboard_interrupt_from_the_batches(digits):
    params = mlp_params()
    before = _host(params)

    def batches() -> Iterator[Any]:
        yield from digits
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        find_lr(mlp_loss, params, optax.sgd, batches())
    assert _host(params) == before and _alive(params)


def test_nan_loss_at_step_0(digits):
    params = mlp_params()
    before = _host(params)
    result = find_lr(lambda p, b: mlp_loss(p, b) * jnp.nan, params, optax.sgd, digits)
    assert result.stop_reason == "non-finite" and len(result) == 1 and np.isnan(result.losses[0])
    assert _host(params) == before and _alive(params)


# --- batches ----------------------------------------------------------------------------


def test_a_one_shot_iterator_that_runs_out_ends_the_test(cancer):
    result = find_lr(logistic_loss, logistic_params(), optax.sgd, iter(cancer[:5]), end_lr=1e-2, num_steps=20)
    assert (result.stop_reason, len(result), result.info["loader_cycled"]) == ("ended", 5, False)


def test_a_short_list_is_cycled_in_order(cancer):
    seen = []

    def loss_fn(params, batch):
        jax.debug.callback(lambda index: seen.append(int(index)), batch["index"], ordered=True)
        return logistic_loss(params, (batch["x"], batch["y"]))

    batches = [{"x": X, "y": y, "index": np.int32(i)} for i, (X, y) in enumerate(cancer[:3])]
    result = find_lr(loss_fn, logistic_params(), optax.sgd, batches, end_lr=1e-2, num_steps=10, extend=False)
    jax.effects_barrier()
    assert seen == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
    assert result.info["loader_passes"] == 4 and result.info["batch_size"] == 64


# --- the optimizer ----------------------------------------------------------------------


def make_sgd(learning_rate):
    return optax.sgd(learning_rate, momentum=0.9)


@pytest.mark.parametrize(
    ("optimizer", "name", "momentum"),
    [
        (optax.inject_hyperparams(optax.sgd)(learning_rate=0.5, momentum=0.9), "SGD", 0.9),
        (functools.partial(optax.sgd, momentum=0.9), "SGD", 0.9),
        (lambda lr: optax.sgd(lr, momentum=0.9), "optax", None),
        (make_sgd, "optax", None),
        (optax.chain(optax.inject_hyperparams(optax.sgd)(learning_rate=0.5, momentum=0.9)), "optax", 0.9),
    ],
    ids=["injected", "partial", "lambda", "function", "chained"],
)
def test_every_form_of_the_optimizer_trains_the_same(cancer, optimizer, name, momentum):
    reference = find_lr(logistic_loss, logistic_params(), make_sgd, cancer, start_lr=1e-4, end_lr=100.0)
    result = find_lr(logistic_loss, logistic_params(), optimizer, cancer, start_lr=1e-4, end_lr=100.0)
    assert np.array_equal(result.losses, reference.losses)
    assert result.info["optimizer"] == name and result.info.get("momentum") == momentum


@pytest.mark.parametrize(
    ("optimizer", "name"),
    [
        (optax.adam, "Adam"),
        (optax.inject_hyperparams(optax.adamw)(learning_rate=1e-3), "AdamW"),
        (optax.lion, "lion"),
    ],
)
def test_info_names_the_optimizer(digits, optimizer, name):
    result = find_lr(mlp_loss, mlp_params(), optimizer, digits, num_steps=10, extend=False, info={"run": 7})
    assert result.info["optimizer"] == name and "momentum" not in result.info
    assert result.info["framework"] == "jax" and result.info["backend"] == jax.default_backend()
    assert result.info["batch_size"] == 128 and result.info["run"] == 7
    assert result.info["rerun_hint"].format(batch_size=256).endswith("with batches of 256 examples")


def test_several_injected_learning_rates_keep_their_ratios():
    # d loss / d a = d loss / d b = 1: after steps 0..t-1, a fell by sum(lr) and b by 0.1 sum(lr).
    optimizer = optax.multi_transform(
        {
            "fast": optax.inject_hyperparams(optax.sgd)(learning_rate=1.0),
            "slow": optax.inject_hyperparams(optax.sgd)(learning_rate=0.1),
        },
        {"a": "fast", "b": "slow"},
    )
    params = {"a": jnp.float32(0.0), "b": jnp.float32(0.0)}
    result = find_lr(
        lambda p, _: p["a"] + p["b"],
        params,
        optimizer,
        [None],
        start_lr=0.01,
        end_lr=1.0,
        num_steps=10,
        stop_on_divergence=False,
        extend=False,
    )
    np.testing.assert_allclose(
        result.losses, -1.1 * np.concatenate([[0.0], np.cumsum(result.lrs)[:-1]]), rtol=1e-5
    )
    assert result.info["lr_ratios"] == [1.0, 0.1]


# --- argument checks ----------------------------------------------------------------------


def _bad(**changes: Any) -> dict[str, Any]:
    X = np.zeros((4, 30), np.float32)
    y = np.zeros(4, np.float32)
    return {
        "loss_fn": logistic_loss,
        "params": logistic_params(),
        "optimizer": optax.sgd,
        "batches": [(X, y)],
        "num_steps": 5,
        **changes,
    }


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (_bad(loss_fn="mean"), r"find_lr: loss_fn must be callable; got 'mean'"),
        (
            _bad(optimizer=optax.sgd(0.1)),
            r"optimizer must be a transformation whose state holds .*inject_hyperparams",
        ),
        (
            _bad(
                optimizer=optax.inject_hyperparams(optax.sgd)(
                    learning_rate=optax.linear_schedule(0.1, 1.0, 10)
                )
            ),
            r"optimizer must be built with a constant learning_rate, not a schedule",
        ),
        (_bad(optimizer=0.1), r"optimizer must be an optax GradientTransformation or a function"),
        (
            _bad(optimizer=lambda lr: lr),
            r"optimizer must be a function returning an optax .* returning float",
        ),
        (_bad(batches=[]), r"batches must be an iterable yielding at least one batch; got 'none'"),
        (_bad(batches=3), r"batches must be an iterable of batches"),
        (_bad(batches={"x": np.zeros(3)}), r"batches must be an iterable of batches .* pass \[batch\]"),
        (_bad(batches=[("a", "b")]), r"batches must be an iterable of batches that are pytrees of arrays"),
        (
            _bad(params={"w": jnp.zeros(30, jnp.int32)}),
            r"params must be a pytree of floating-point .*\['w'\] of dtype int32",
        ),
        (_bad(params={}), r"params must be a pytree holding at least one array"),
        (
            _bad(loss_fn=lambda p, b: b[0] @ p["w"]),
            r"loss_fn must be a function returning a scalar loss \(shape \(\)\); "
            r"got 'a loss of shape \(4,\)'",
        ),
        (
            _bad(loss_fn=lambda p, b: (logistic_loss(p, b), 0)),
            r"loss_fn must be a function returning the loss as a scalar array; got .*tuple",
        ),
        (
            _bad(opt_state=optax.adam(1e-3).init(logistic_params())),
            r"opt_state must be a state of the optimizer's structure",
        ),
        (_bad(start_lr=0.0), r"start_lr must be positive"),
        (_bad(end_lr=1e-8), r"end_lr must be greater than start_lr"),
        (_bad(num_steps=1), r"num_steps must be an integer >= 2"),
        (_bad(mode="cubic"), r"mode must be one of"),
        (_bad(smoothing=1.0), r"smoothing must be < 1"),
        (_bad(sync_every=0), r"sync_every must be an integer >= 1"),
        (_bad(progress="yes"), r"progress must be True or False"),
        (_bad(info={"x": object()}), r"info"),
    ],
)
def test_find_lr_checks_its_arguments(kwargs, match):
    params = kwargs["params"]
    before = _host(params)
    with pytest.raises(InvalidArgumentError, match=match):
        find_lr(**kwargs)
    assert _host(params) == before


def test_a_loss_of_integer_dtype_is_refused():
    kwargs = _bad(loss_fn=lambda p, b: jnp.sum(b[0] > p["b"]).astype(jnp.int32))
    with pytest.raises(
        InvalidArgumentError, match=r"a real floating-point loss; got 'a loss of dtype int32'"
    ):
        find_lr(**kwargs)


# --- the command line's runner ----------------------------------------------------------------


def test_cli_runner_is_seeded_and_reports_its_model():
    from lrscout.cli._data import load_dataset
    from lrscout.cli._find_lr import HIDDEN_UNITS, FindLRSettings
    from lrscout.cli._jax import run_find_lr

    data = load_dataset("breast-cancer")
    settings = FindLRSettings(model="mlp", start_lr=1e-4, num_steps=40, seed=3)
    first, again = run_find_lr(data, settings), run_find_lr(data, settings)
    assert np.array_equal(first.losses, again.losses) and np.array_equal(first.lrs, again.lrs)
    other = run_find_lr(data, FindLRSettings(model="mlp", start_lr=1e-4, num_steps=40, seed=4))
    assert not np.array_equal(other.losses, first.losses)
    info = first.info
    assert (info["framework"], info["optimizer"], info["momentum"]) == ("jax", "SGD", 0.9)
    assert (info["model"], info["hidden_units"], info["task"], info["seed"]) == (
        "mlp",
        HIDDEN_UNITS,
        "classification",
        3,
    )
    assert info["batch_size"] == 32
    # Softmax cross-entropy of 2 classes at the start is near log 2.
    assert abs(first.losses[0] - np.log(2)) < 0.3


def test_cli_runner_linear_regression_full_batch():
    from lrscout.cli._data import load_dataset
    from lrscout.cli._find_lr import FindLRSettings
    from lrscout.cli._jax import run_find_lr

    data = load_dataset("diabetes")
    settings = FindLRSettings(
        model="linear", batch_size=None, momentum=0.0, start_lr=1e-4, num_steps=30, extend=False
    )
    result = run_find_lr(data, settings)
    assert len(result) > 20 and result.info["batch_size"] == len(data.X) and result.info["momentum"] == 0.0
    assert result.info["model"] == "linear" and result.info["hidden_units"] is None
    # Full batch, momentum 0: least squares by hand (nn.MSELoss's mean, no 1/2) from the same start.
    w, b = _linear_start(data.X.shape[1], 0)
    X, y = data.X.astype(np.float32), data.y.astype(np.float32)
    losses = []
    for lr in result.lrs:
        residual = X @ w + b - y
        losses.append(float(np.mean(residual**2)))
        w = w - np.float32(lr) * (2.0 / len(y)) * (X.T @ residual)
        b = b - np.float32(lr) * 2.0 * residual.mean()
    np.testing.assert_allclose(result.losses, losses, rtol=1e-4)


def _linear_start(n_features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from lrscout.cli._jax import init_params

    params = init_params(jax.random.PRNGKey(seed), n_features, 1, model="linear")
    (layer,) = params
    return np.asarray(layer["w"])[:, 0], np.asarray(layer["b"])[0]


def test_a_data_pipeline_that_draws_from_the_global_generators_leaves_them_as_they_were(cancer):
    import random

    class Augmented:
        """Re-iterable batches with noise drawn from NumPy's and Python's global state."""

        def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
            for X, y in cancer[:3]:
                scale = 0.01 * random.random()
                yield X + scale * np.random.normal(size=X.shape).astype(np.float32), y  # noqa: NPY002

    np.random.seed(3)  # noqa: NPY002 (the global state, on purpose)
    random.seed(3)
    before = np.random.get_state(), random.getstate()  # noqa: NPY002
    find_lr(logistic_loss, logistic_params(), optax.sgd, Augmented(), num_steps=10, progress=False)
    after = np.random.get_state(), random.getstate()  # noqa: NPY002
    assert np.array_equal(before[0][1], after[0][1]) and before[0][2:] == after[0][2:]
    assert before[1] == after[1]
