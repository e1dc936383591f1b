"""The LR range test of a JAX model trained by an optax optimizer.

The whole training step — gradient, learning rate, update — is one jitted
function whose learning rate is a traced argument, so the test compiles once
(once per batch shape) and the loop only dispatches it; losses stay on the
device and are read a chunk at a time.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._engine import RangeTestState, range_test
from .._global_rng import GlobalRNG
from .._jsonio import json_copy
from .._plan import resolve_plan
from .._result import RangeTestResult
from .._validation import check_bool, check_callable, check_int, fail

_WHERE = "find_lr"

# optax's names of the optimizers that other frameworks spell as classes, so
# that the default suggestion (which reads info["optimizer"]) knows them.
_CLASS_NAMES = {
    "sgd": "SGD",
    "adam": "Adam",
    "adamw": "AdamW",
    "adamax": "Adamax",
    "nadam": "NAdam",
    "radam": "RAdam",
    "rmsprop": "RMSprop",
    "adagrad": "Adagrad",
    "adadelta": "Adadelta",
}

_INJECTED = (optax.InjectStatefulHyperparamsState, optax.InjectHyperparamsState)

Step = Callable[[Any, Any, Any, Any], tuple[Any, Any, jax.Array]]


def find_lr(
    loss_fn: Callable[[Any, Any], Any],
    params: Any,
    optimizer: Any,
    batches: Iterable[Any],
    *,
    opt_state: Any = None,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    mode: str = "exponential",
    smoothing: float = 0.98,
    divergence_factor: float = 4.0,
    stop_on_divergence: bool = True,
    extend: bool = True,
    schedule: str = "auto",
    total_steps: int | None = None,
    epochs: float | None = None,
    sync_every: int = 8,
    progress: bool = True,
    info: Mapping[str, Any] | None = None,
) -> RangeTestResult:
    """Run an LR range test (Smith 2017) on a JAX model trained by an optax optimizer.

    Step ``t`` takes the next batch, computes ``loss_fn(params, batch)`` and
    its gradient, and updates the parameters with ``optimizer`` at the ramp's
    learning rate ``lr_t`` (written into the optimizer state's
    ``hyperparams["learning_rate"]``). The ramp, smoothing and stop rule are
    lrscout's core (:func:`lrscout.range_test`), so the numbers equal those
    of every other integration.

    The step is one ``jax.jit`` function with the learning rate a traced
    argument: it is traced and compiled once for the whole test (again only
    for a batch of a new shape, such as a short last batch). Losses stay on
    the device; one ``jax.device_get`` reads ``sync_every`` of them at a time.
    Divergence is then decided at chunk ends, and the steps run past the stop
    are not recorded, so the result does not depend on ``sync_every``.

    The test trains private copies: ``params``, ``opt_state`` and the arrays
    in them are left as they were (JAX arrays are immutable, and only the
    copies are donated to the step), also after an exception, and so are
    NumPy's and Python's global random generators, which a data pipeline may
    draw from. Batches taken from a one-shot iterator are gone, though.

    Args:
        loss_fn: ``loss_fn(params, batch) -> loss``, the loss of one batch
            as a real scalar (shape ``()``); traced by ``jax.jit``, so
            written in ``jax.numpy``.
        params: The parameters to start from: a pytree of floating-point
            arrays.
        optimizer: An optax ``GradientTransformation`` whose state holds an
            injectable learning rate, built with
            ``optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)`` (the
            value is not used; a schedule is refused), possibly inside
            ``optax.chain`` or ``optax.multi_transform``; or a function
            ``learning_rate -> GradientTransformation`` such as ``optax.adam``
            or ``functools.partial(optax.sgd, momentum=0.9)``. With several
            injected learning rates (one per parameter group), the ramp
            keeps their ratios to the first one.
        batches: Training batches, each a pytree of arrays (a tuple
            ``(x, y)``, a dict, ...): a list, or any iterable. One shorter
            than the test is iterated again (``result.info["loader_cycled"]``);
            a one-shot iterator that runs out ends the test
            (``stop_reason == "ended"``).
        opt_state: Optimizer state to start from (e.g. a checkpoint's, with
            its moment estimates); ``None`` starts from
            ``optimizer.init(params)``. Must have that state's structure.
        start_lr: First learning rate, positive.
        end_lr: Last learning rate, greater than ``start_lr``.
        num_steps: Most optimizer steps to run, at least 2.
        mode: ``"exponential"`` or ``"linear"`` ramp.
        smoothing: EMA factor of the smoothed loss, in [0, 1).
        divergence_factor: Stop once the smoothed loss exceeds this multiple
            (> 1) of its best.
        stop_on_divergence: ``False`` runs every step unless a loss is not
            finite.
        extend: Keep ramping past ``end_lr`` while the loss has not turned
            up (see :func:`lrscout.range_test`); on by default, so the curve
            finds its own end.
        schedule: The schedule you will train with, which the suggestion
            is for (``"constant"``, ``"one_cycle"``, ``"cosine"`` as
            ``optax.cosine_decay_schedule``, ``"linear"`` as a warm-up and
            linear decay); ``"auto"`` is constant (the optimizer given here
            holds no schedule). See :meth:`lrscout.RangeTestResult.suggest`.
        total_steps: Optimizer steps of that training.
        epochs: Its epochs instead, where ``batches`` has a length.
        sync_every: Steps per device-to-host read of the losses, at least 1.
        progress: Show a tqdm bar where someone can watch it (see
            :func:`lrscout.range_test`).
        info: JSON-serialisable facts to keep in ``result.info``.

    Returns:
        The :class:`~lrscout.RangeTestResult`; ``info`` holds the framework
        (``"jax"``), the backend, the optimizer (its class-style name, such
        as ``"Adam"``, when it is one of optax's, else ``"optax"``), its
        momentum when known, the batch size (the first batch's leading
        dimension), whether the batches were cycled, and ``rerun_hint``.

    Raises:
        InvalidArgumentError: On a bad argument, before any step runs; and
            when ``loss_fn`` returns anything but a real scalar.

    Example:
        >>> import jax.numpy as jnp, numpy as np, optax
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(64, 3)).astype("float32")
        >>> y = x @ np.array([1.0, -2.0, 0.5], dtype="float32")
        >>> def loss_fn(params, batch):
        ...     inputs, targets = batch
        ...     return jnp.mean((inputs @ params["w"] - targets) ** 2)
        >>> params = {"w": jnp.zeros(3)}
        >>> result = find_lr(loss_fn, params, optax.sgd, [(x[:32], y[:32]), (x[32:], y[32:])],
        ...                  start_lr=1e-4, end_lr=10.0, num_steps=50)
        >>> result.stop_reason, result.info["optimizer"], result.info["batch_size"]
        ('diverged', 'SGD', 32)
        >>> bool(jnp.all(params["w"] == 0))  # untouched
        True
    """
    check_callable(loss_fn, "loss_fn", where=_WHERE)
    ramp: dict[str, Any] = {
        "start_lr": start_lr,
        "end_lr": end_lr,
        "num_steps": num_steps,
        "mode": mode,
        "smoothing": smoothing,
        "divergence_factor": divergence_factor,
        "stop_on_divergence": stop_on_divergence,
        "extend": extend,
    }
    # The core checks these again; checked here first, before anything runs.
    probe = RangeTestState(**ramp, where=_WHERE)
    sync_every = check_int(sync_every, "sync_every", where=_WHERE, minimum=1)
    progress = check_bool(progress, "progress", where=_WHERE)
    per_epoch = _length(batches)
    plan = resolve_plan(schedule, total_steps, epochs, steps_per_epoch=per_epoch, where=_WHERE)
    extra = json_copy(info, where=_WHERE)
    _check_params(params)
    transform, factory = _injectable(optimizer, probe.start_lr)
    # The state's structure, shapes and dtypes, without running init.
    expected = jax.eval_shape(transform.init, params)
    _lr_holders(expected)
    if opt_state is not None:
        _check_state(opt_state, expected)
    # A data pipeline may draw from the global generators (NumPy's, Python's): put back after.
    with GlobalRNG():
        batches_ = _Batches(batches)

        params_ = _private_copy(params)
        state = _private_copy(transform.init(params_) if opt_state is None else opt_state)
        holders = _lr_holders(state)
        ratios = _lr_ratios(holders)
        # Read before the test: the step donates (deletes) these arrays.
        optimizer_facts = _optimizer_facts(factory, holders[0].hyperparams)
        step = _jitted_step(loss_fn, transform, ratios)
        carry = [params_, state]
        next_batch = batches_.next

        def step_fn(lr: float) -> jax.Array:
            batch = next_batch()
            with warnings.catch_warnings():
                # A donated copy that XLA cannot reuse costs memory, not results.
                warnings.filterwarnings("ignore", message="Some donated buffers were not usable")
                carry[0], carry[1], loss = step(carry[0], carry[1], batch, lr)
            return loss

        result = range_test(
            step_fn, **ramp, sync_every=sync_every, read_losses=_read_losses, progress=progress
        )
    facts: dict[str, Any] = {
        "framework": "jax",
        "backend": jax.default_backend(),
        "jax_version": jax.__version__,
        "optax_version": optax.__version__,
        **optimizer_facts,
        "batch_size": batches_.batch_size,
        "loader_cycled": batches_.passes > 1,
        "loader_passes": batches_.passes,
        "sync_every": sync_every,
        "steps_per_epoch": per_epoch,
        "plan": plan.to_dict(),
        "rerun_hint": (
            "lrscout.optax.find_lr(loss_fn, params, optimizer, batches) with batches of {batch_size} examples"
        ),
        **extra,
    }
    if len(ratios) > 1:
        facts["lr_ratios"] = ratios
    return dataclasses.replace(result, info={**facts, **result.info})


def _length(batches: Iterable[Any]) -> int | None:
    """Batches in one pass, where the iterable has a length."""
    try:
        count = len(batches)  # type: ignore[arg-type]
    except TypeError:
        return None
    return count if count > 0 else None


# The optimizer -----------------------------------------------------------------


def _injectable(optimizer: Any, start_lr: float) -> tuple[optax.GradientTransformation, Any]:
    """``(transformation, factory)``: the transformation to train with, and the optax factory if known.

    A function of the learning rate is wrapped in ``optax.inject_hyperparams``
    here; a transformation is used as it is, and its factory is read from the
    ``inject_hyperparams`` wrapper when it is the outermost one.
    """
    if isinstance(optimizer, optax.GradientTransformation):
        try:
            inner = inspect.getclosurevars(optimizer.init).nonlocals.get("inner_factory")
        except TypeError:  # init is not a Python function
            inner = None
        return optimizer, inner
    if not callable(optimizer):
        fail(
            _WHERE,
            "optimizer",
            "an optax GradientTransformation or a function learning_rate -> GradientTransformation",
            optimizer,
            _INJECT_FIX,
        )
    built = optimizer(start_lr)
    if not isinstance(built, optax.GradientTransformation):
        fail(
            _WHERE,
            "optimizer",
            "a function returning an optax GradientTransformation when called with a learning rate",
            f"{_name_of(optimizer)} returning {type(built).__name__}",
            _INJECT_FIX,
        )
    try:
        takes_keyword = "learning_rate" in inspect.signature(optimizer).parameters
    except (TypeError, ValueError):
        takes_keyword = False
    if takes_keyword:
        return optax.inject_hyperparams(optimizer)(learning_rate=start_lr), optimizer

    def factory(learning_rate: Any) -> optax.GradientTransformation:
        transformation: optax.GradientTransformation = optimizer(learning_rate)
        return transformation

    return optax.inject_hyperparams(factory)(learning_rate=start_lr), optimizer


_INJECT_FIX = (
    "Pass optax.inject_hyperparams(optax.adam)(learning_rate=1e-3), or the function itself "
    "(optax.adam, functools.partial(optax.sgd, momentum=0.9)), so that the test can set the "
    "learning rate at every step."
)


def _holds_lr(node: Any) -> bool:
    return isinstance(node, _INJECTED) and "learning_rate" in node.hyperparams


def _lr_holders(state: Any) -> list[Any]:
    """The injected-hyperparameter states in ``state`` that hold a learning rate, in tree order."""
    holders = [node for node in jax.tree_util.tree_leaves(state, is_leaf=_holds_lr) if _holds_lr(node)]
    if not holders:
        fail(
            _WHERE,
            "optimizer",
            "a transformation whose state holds hyperparams['learning_rate']",
            "a state without one",
            _INJECT_FIX,
        )
    for holder in holders:
        if "learning_rate" in getattr(holder, "hyperparams_states", {}):
            fail(
                _WHERE,
                "optimizer",
                "built with a constant learning_rate, not a schedule",
                "a scheduled learning_rate",
                "The test sets the learning rate itself: pass learning_rate=1e-3 (any number) "
                "to optax.inject_hyperparams(...).",
            )
    return holders


def _lr_ratios(holders: list[Any]) -> list[float]:
    """Each holder's learning rate over the first one's: the ramp keeps these ratios."""
    if len(holders) == 1:
        return [1.0]
    rates = [_shortest_float(np.asarray(holder.hyperparams["learning_rate"])) for holder in holders]
    if not all(np.isfinite(rates)) or rates[0] <= 0.0 or min(rates) < 0.0:
        fail(
            _WHERE,
            "optimizer",
            "positive, finite learning rates when it injects several (their ratios are kept)",
            rates,
        )
    return [rate / rates[0] for rate in rates]


def _optimizer_facts(factory: Any, hyperparams: Mapping[str, Any]) -> dict[str, Any]:
    """The optimizer's name and heavy-ball momentum, which the default suggestion reads."""
    base = factory.func if isinstance(factory, functools.partial) else factory
    name = str(getattr(base, "__name__", ""))
    known = bool(name) and getattr(optax, name, None) is base
    facts: dict[str, Any] = {"optimizer": _CLASS_NAMES.get(name, name) if known else "optax"}
    momentum = hyperparams.get("momentum")
    if momentum is not None and np.ndim(momentum) == 0:
        facts["momentum"] = _shortest_float(np.asarray(momentum))
    elif known and name == "sgd":
        facts["momentum"] = 0.0  # optax.sgd(momentum=None): plain gradient descent
    return facts


def _shortest_float(value: np.ndarray[Any, Any]) -> float:
    """The shortest decimal that gives ``value`` in its dtype: 0.9, not float32's 0.8999999761581421."""
    if not np.issubdtype(value.dtype, np.floating):
        return float(value)
    return float(np.format_float_positional(value.dtype.type(value), unique=True))


def _name_of(function: Any) -> str:
    return str(getattr(function, "__name__", type(function).__name__))


# Parameters and state ----------------------------------------------------------


def _check_params(params: Any) -> None:
    leaves = jax.tree_util.tree_leaves_with_path(params)
    if not leaves:
        fail(_WHERE, "params", "a pytree holding at least one array", params)
    for path, leaf in leaves:
        dtype = _dtype_of(leaf)
        if dtype is None or not jnp.issubdtype(dtype, jnp.inexact):
            kind = f"type {type(leaf).__name__}" if dtype is None else f"dtype {dtype}"
            fail(
                _WHERE,
                "params",
                "a pytree of floating-point arrays (gradients need them)",
                f"params{jax.tree_util.keystr(path)} of {kind}",
                "Keep integer or static values out of params (close over them in loss_fn).",
            )


def _dtype_of(leaf: Any) -> np.dtype[Any] | None:
    if isinstance(leaf, (jax.Array, np.ndarray, np.generic)):
        return np.dtype(leaf.dtype)
    if isinstance(leaf, (bool, int, float, complex)):
        return np.asarray(leaf).dtype
    return None


def _check_state(opt_state: Any, expected: Any) -> None:
    got: Any = jax.tree_util.tree_structure(opt_state)  # PyTreeDef: its stub lacks __eq__
    want: Any = jax.tree_util.tree_structure(expected)
    if got != want:
        fail(
            _WHERE,
            "opt_state",
            "a state of the optimizer's structure, as optimizer.init(params) makes",
            f"a state of structure {got}",
            "Pass the state this optimizer made for these params, or None.",
        )
    leaves, specs = jax.tree_util.tree_leaves(opt_state), jax.tree_util.tree_leaves(expected)
    for leaf, spec in zip(leaves, specs, strict=True):
        if np.shape(leaf) != spec.shape:
            fail(
                _WHERE,
                "opt_state",
                "a state whose arrays have the shapes optimizer.init(params) gives them",
                f"shape {np.shape(leaf)} where {spec.shape} was expected",
            )


def _private_copy(tree: Any) -> Any:
    """A copy of every array in ``tree``, safe to donate, with strong dtypes.

    A weakly typed leaf (a Python float) comes back strongly typed from the
    step; making it strong now keeps the step at one trace.
    """

    def copy(leaf: Any) -> jax.Array:
        array = jnp.array(leaf, copy=True)
        return jax.lax.convert_element_type(array, array.dtype) if array.weak_type else array

    return jax.tree_util.tree_map(copy, tree)


# The step ----------------------------------------------------------------------


def _jitted_step(
    loss_fn: Callable[[Any, Any], Any], transform: optax.GradientTransformation, ratios: list[float]
) -> Step:
    """``step(params, opt_state, batch, lr) -> (params, opt_state, loss)``, jitted, ``lr`` traced.

    Only the test's private copies are passed in, so the step donates them:
    XLA updates the parameters and state in place.
    """

    def checked_loss(params: Any, batch: Any) -> Any:
        loss = loss_fn(params, batch)
        _check_loss(loss)  # runs while tracing: shapes and dtypes are known, values are not
        return loss

    def set_lr(state: Any, lr: jax.Array) -> Any:
        scale = iter(ratios)

        def put(node: Any) -> Any:
            if not _holds_lr(node):
                return node
            hyperparams = dict(node.hyperparams)
            old = hyperparams["learning_rate"]
            ratio = next(scale)
            rate = lr if ratio == 1.0 else lr * ratio
            hyperparams["learning_rate"] = jnp.asarray(rate, dtype=jnp.result_type(old))
            return node._replace(hyperparams=hyperparams)

        return jax.tree_util.tree_map(put, state, is_leaf=_holds_lr)

    def step(params: Any, state: Any, batch: Any, lr: jax.Array) -> tuple[Any, Any, jax.Array]:
        loss, grads = jax.value_and_grad(checked_loss)(params, batch)
        updates, state = transform.update(grads, set_lr(state, lr), params)
        return optax.apply_updates(params, updates), state, loss

    jitted: Step = jax.jit(step, donate_argnums=(0, 1))
    return jitted


def _check_loss(loss: Any) -> None:
    shape, dtype = getattr(loss, "shape", None), getattr(loss, "dtype", None)
    if shape is None or dtype is None:
        fail(
            _WHERE,
            "loss_fn",
            "a function returning the loss as a scalar array",
            f"a function returning {type(loss).__name__}",
            "Return one value, e.g. jnp.mean(losses); to return more, close over it instead.",
        )
    if tuple(shape) != ():
        fail(
            _WHERE,
            "loss_fn",
            "a function returning a scalar loss (shape ())",
            f"a loss of shape {tuple(shape)}",
            "Reduce it over the batch, e.g. return jnp.mean(losses).",
        )
    if not jnp.issubdtype(dtype, jnp.floating):
        fail(
            _WHERE,
            "loss_fn",
            "a function returning a real floating-point loss",
            f"a loss of dtype {dtype}",
        )


def _read_losses(losses: list[jax.Array]) -> list[float]:
    """A chunk of on-device losses as floats: one stack, one transfer."""
    values: list[float] = np.asarray(jax.device_get(jnp.stack(losses)), dtype=np.float64).tolist()
    return values


# Batches -----------------------------------------------------------------------


class _Batches:
    """Endless batches from ``batches``, iterated again each time it runs out.

    The first batch is taken at once: an empty iterable fails before the test,
    and it gives the batch size. A one-shot iterator cannot be iterated again:
    when it runs out, ``next`` raises ``StopIteration``, which ends the test.
    """

    def __init__(self, batches: Iterable[Any]) -> None:
        if isinstance(batches, (Mapping, jax.Array, np.ndarray)) or not isinstance(batches, Iterable):
            fail(
                _WHERE,
                "batches",
                "an iterable of batches (a list, a generator, a data loader)",
                f"{type(batches).__name__}",
                "For one batch, pass [batch].",
            )
        iterator = iter(batches)
        first = next(iterator, _NOTHING)
        if first is _NOTHING:
            fail(_WHERE, "batches", "an iterable yielding at least one batch", "none")
        self.batch_size = _batch_size(first)
        self._passes = [1]
        self.next: Callable[[], Any] = _cycle(batches, iterator, first, self._passes).__next__

    @property
    def passes(self) -> int:
        """How many times the batches were iterated (more than 1: cycled)."""
        return self._passes[0]


_NOTHING = object()


def _cycle(batches: Iterable[Any], iterator: Iterator[Any], first: Any, passes: list[int]) -> Iterator[Any]:
    # A generator holding no reference to its _Batches: no reference cycle
    # keeps the user's iterator alive after the test.
    restartable = iterator is not batches
    yield first
    while True:
        # Not ``yield from``: closing this generator would close a one-shot
        # iterator of the caller's too.
        for batch in iterator:
            yield batch
        if not restartable:
            return
        iterator = iter(batches)
        passes[0] += 1
        batch = next(iterator, _NOTHING)
        if batch is _NOTHING:
            return
        yield batch


def _batch_size(batch: Any) -> int | None:
    """The leading dimension of the batch's first array that has one; checks the leaves."""
    size = None
    for path, leaf in jax.tree_util.tree_leaves_with_path(batch):
        if _dtype_of(leaf) is None:
            fail(
                _WHERE,
                "batches",
                "an iterable of batches that are pytrees of arrays",
                f"a batch holding {type(leaf).__name__} at batch{jax.tree_util.keystr(path)}",
                "Keep non-array values out of the batches (close over them in loss_fn).",
            )
        if size is None and np.ndim(leaf) > 0:
            size = int(np.shape(leaf)[0])
    return size
