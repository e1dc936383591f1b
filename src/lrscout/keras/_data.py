"""What ``find_lr`` trains on: the inputs ``fit`` accepts, checked before anything runs.

:func:`training_data` sorts ``x`` into the kinds ``fit`` takes (arrays, a
``tf.data.Dataset``, a ``keras.utils.PyDataset``, a torch ``DataLoader`` or
another re-iterable, a generator), refuses what would fail or mislead once
training has started (no targets for a loss that needs them, an empty
dataset, a one-shot generator where the data is read again), and returns
the arguments of the test's ``fit`` together with what the refinement's
probes need: the same data batch by batch for ``train_on_batch``, and the
held-out data for ``evaluate``.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from .._errors import InvalidArgumentError
from .._validation import check_float, check_int
from ._keras import keras

#: One batch as ``train_on_batch`` takes it: inputs, targets, sample weights.
Batch = tuple[Any, Any, Any]

_ACCEPTED = (
    "an array (NumPy or backend tensor, or a list or dict of them), a tf.data.Dataset, "
    "a keras.utils.PyDataset, a torch DataLoader or a generator of (x, y) batches"
)
# The same order of samples in every probe, drawn from no generator of the user's.
_PROBE_SEED = 0


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """The test's ``fit`` arguments and the refinement's data.

    Attributes:
        fit_args: Positional arguments of ``fit`` (``x`` and ``y``).
        fit_kwargs: Keyword arguments of ``fit`` (epochs and batching).
        steps_per_epoch: Batches per epoch, ``None`` when not known.
        n_samples: Samples of array inputs, else ``None``.
        batch_size: Samples per step of array inputs, else ``None``.
        probe_batches: A fresh stream of training batches, the same in each
            call (the data read again as often as needed); ``None`` for
            one-shot data.
        validation_batches: One pass over the held-out data, batch by
            batch, in each call; ``None`` without held-out data.
    """

    fit_args: tuple[Any, ...]
    fit_kwargs: dict[str, Any]
    steps_per_epoch: int | None
    n_samples: int | None
    batch_size: int | None
    probe_batches: Callable[[], Iterator[Batch]] | None
    validation_batches: Callable[[], Iterator[Batch]] | None


def _kind(x: Any) -> str:
    if isinstance(x, keras.utils.PyDataset):
        return "pydataset"
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(x, tf.data.Dataset):
        return "dataset"
    if inspect.isgenerator(x):
        return "generator"
    if isinstance(x, Iterator):
        return "unknown"  # fit takes generators, not other iterators
    leaves = keras.tree.flatten(x) if isinstance(x, (list, tuple, Mapping)) else [x]
    if leaves and all(leaf is None or len(getattr(leaf, "shape", ())) >= 1 for leaf in leaves):
        return "arrays"
    if isinstance(x, Iterable) and not isinstance(x, (str, bytes, Mapping, list, tuple)):
        return "loader"
    return "unknown"


def _describe(data: Any, kind: str) -> str:
    """``data``'s kind as a user knows it: "keras.utils.PyDataset (Batches)", "generator"."""
    known = {"pydataset": "keras.utils.PyDataset", "dataset": "tf.data.Dataset"}.get(kind)
    return type(data).__name__ if known is None else f"{known} ({type(data).__name__})"


def _count_samples(x: Any, y: Any, *, where: str, names: tuple[str, str] = ("x", "y")) -> int:
    """Rows of the array data ``x`` (and ``y``), checked to agree."""
    leaves = [leaf for leaf in keras.tree.flatten(x) if leaf is not None]
    n = int(leaves[0].shape[0])
    for name, data in zip(names, (x, y), strict=True):
        for leaf in keras.tree.flatten(data) if data is not None else []:
            rows = getattr(leaf, "shape", (None,))
            if leaf is not None and (len(rows) < 1 or rows[0] != n):
                raise InvalidArgumentError(
                    f"{where}: every array of {name} must have one row per sample ({n}); "
                    f"got shape {tuple(rows)}."
                )
    if n < 1:
        raise InvalidArgumentError(f"{where}: {names[0]} must hold at least one sample; got {n}.")
    return n


def _needs_targets(model: Any) -> bool:
    """Whether Keras's own training step would compare predictions with targets."""
    step = getattr(type(model), "train_step", None)
    keras_step = str(getattr(step, "__module__", "")).startswith("keras.")
    return keras_step and "train_step" not in vars(model) and getattr(model, "loss", None) is not None


def _length(data: Any, name: str, kind: str, where: str) -> int | None:
    """Batches per pass of a dataset-like input, ``None`` if endless or unknown; refuses an empty one."""
    if kind == "pydataset":
        count = data.num_batches
    elif kind == "dataset":
        cardinality = int(data.cardinality())
        count = None if cardinality < 0 else cardinality
    else:
        try:
            count = len(data)
        except TypeError:
            count = None
    if count == 0:
        raise InvalidArgumentError(
            f"{where}: {name} must yield at least one batch; got an empty {_describe(data, kind)} "
            "(no batches). Pass data with at least one batch."
        )
    return None if count is None else int(count)


def _as_array(leaf: Any) -> Any:
    """A leaf of a batch in a form every backend's ``train_on_batch`` takes."""
    if leaf is None or isinstance(leaf, np.ndarray) or keras.ops.is_tensor(leaf):
        return leaf
    if hasattr(leaf, "detach"):  # a torch tensor under another backend
        return leaf.detach().cpu().numpy()
    if hasattr(leaf, "numpy"):  # a TensorFlow tensor under another backend
        return leaf.numpy()
    return np.asarray(leaf)


def _unpack(element: Any) -> Batch:
    x, y, weights = keras.utils.unpack_x_y_sample_weight(
        tuple(element) if isinstance(element, list) else element
    )
    return keras.tree.map_structure(_as_array, (x, y, weights))  # type: ignore[no-any-return]


def _array_batches(
    data: tuple[Any, Any, Any], n: int, batch: int, *, shuffle: bool, cycle: bool
) -> Callable[[], Iterator[Batch]]:
    def take(part: Any, rows: np.ndarray) -> Any:
        return keras.tree.map_structure(lambda leaf: None if leaf is None else leaf[rows], part)

    def batches() -> Iterator[Batch]:
        arrays = keras.tree.map_structure(
            lambda leaf: None if leaf is None else np.asarray(keras.ops.convert_to_numpy(leaf)), data
        )
        rng = np.random.default_rng(_PROBE_SEED)
        while True:
            order = rng.permutation(n) if shuffle else np.arange(n)
            for start in range(0, n, batch):
                rows = order[start : start + batch]
                yield take(arrays[0], rows), take(arrays[1], rows), take(arrays[2], rows)
            if not cycle:
                return

    return batches


def _dataset_batches(
    data: Any, kind: str, count: int | None, *, shuffle: bool, cycle: bool
) -> Callable[[], Iterator[Batch]]:
    def indexed() -> Iterator[Batch]:
        total = count
        if total is None:  # endless: fit reads it in order too
            for i in itertools.count():
                yield _unpack(data[i])
            return
        rng = np.random.default_rng(_PROBE_SEED)
        while True:
            for i in rng.permutation(total) if shuffle else range(total):
                yield _unpack(data[int(i)])
            if not cycle:
                return

    def iterated() -> Iterator[Batch]:
        numpy = kind == "dataset" and keras.backend.backend() != "tensorflow"
        while True:
            empty = True
            for element in data.as_numpy_iterator() if numpy else data:
                empty = False
                yield _unpack(element)
            if empty or not cycle:
                return

    return indexed if kind == "pydataset" else iterated


def _validation(
    validation_data: Any,
    validation_split: float,
    x: Any,
    y: Any,
    kind: str,
    *,
    refine: bool,
    where: str,
) -> tuple[Any, Any, tuple[str, Any] | None]:
    """``x`` and ``y`` to train on, and the held-out data with its kind (arrays as ``(x, y, w)``)."""
    split = check_float(
        validation_split, "validation_split", where=where, minimum=0.0, maximum=1.0, open_maximum=True
    )
    if validation_data is None and split == 0.0:
        return x, y, None
    given = "validation_data" if validation_data is not None else "validation_split"
    if not refine:
        raise InvalidArgumentError(
            f"{where}: {given} scores the refinement's probes, which run with refine=True; got it with "
            f"refine=False. Pass refine=True, or leave {given} out."
        )
    if validation_data is not None and split:
        raise InvalidArgumentError(
            f"{where}: validation_split must be 0.0 when validation_data is given; got {split!r}. "
            "Give one of the two."
        )
    if validation_data is None:
        if kind != "arrays":
            raise InvalidArgumentError(
                f"{where}: validation_split needs array inputs (as in fit); got x as a "
                f"{type(x).__name__}. Pass the held-out data as validation_data instead."
            )
        n = _count_samples(x, y, where=where)
        # Keras's rule: the last fraction of the samples, before any shuffling.
        cut = math.floor(n * (1.0 - split))
        if cut < 1 or cut == n:
            raise InvalidArgumentError(
                f"{where}: validation_split must leave samples on both sides; got {split!r} of {n} "
                "samples. Pass a split that keeps at least one sample for training and one held out."
            )

        def part(data: Any, rows: slice) -> Any:
            return keras.tree.map_structure(lambda leaf: None if leaf is None else leaf[rows], data)

        held = part((x, y, None), slice(cut, None))
        return part(x, slice(None, cut)), part(y, slice(None, cut)), ("arrays", held)
    held_kind = _kind(validation_data)
    if held_kind == "generator":
        raise InvalidArgumentError(
            f"{where}: validation_data must be re-iterable (it is read up to 10 times per probe); got a "
            f"{type(validation_data).__name__}. Pass arrays (x_val, y_val), a tf.data.Dataset or a "
            "keras.utils.PyDataset."
        )
    if held_kind in ("pydataset", "dataset", "loader"):
        endless = _length(validation_data, "validation_data", held_kind, where) is None and (
            held_kind == "pydataset" or int(validation_data.cardinality()) == -1
        )
        if endless:
            raise InvalidArgumentError(
                f"{where}: validation_data must be finite (each evaluation reads it once); got an endless "
                f"{_describe(validation_data, held_kind)}. Pass it without repeat(), or take() a part."
            )
        return x, y, (held_kind, validation_data)
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise InvalidArgumentError(
            f"{where}: validation_data must be (x_val, y_val), (x_val, y_val, sample_weight_val), a "
            f"tf.data.Dataset or a keras.utils.PyDataset; got a {type(validation_data).__name__}"
            f"{f' of {len(validation_data)} items' if isinstance(validation_data, (tuple, list)) else ''}."
        )
    held_x, held_y, weights = keras.utils.unpack_x_y_sample_weight(tuple(validation_data))
    if _kind(held_x) != "arrays":
        raise InvalidArgumentError(
            f"{where}: validation_data's inputs must be arrays when it is a tuple; got a "
            f"{type(held_x).__name__}. Pass a tf.data.Dataset or a keras.utils.PyDataset instead."
        )
    _count_samples(held_x, held_y, where=where, names=("validation_data's x", "validation_data's y"))
    return x, y, ("arrays", (held_x, held_y, weights))


def training_data(
    model: Any,
    x: Any,
    y: Any,
    *,
    batch_size: int | None,
    steps_per_epoch: Any,
    validation_data: Any,
    validation_split: Any,
    shuffle: bool,
    refine: bool,
    steps: int,
    where: str,
) -> TrainingData:
    """Check ``find_lr``'s data arguments and turn them into the test's and the probes' data.

    Args:
        model: The compiled model.
        x, y: As for ``fit``.
        batch_size: Samples per step of array inputs (``None``: all).
        steps_per_epoch: ``None`` or batches per epoch of dataset inputs.
        validation_data, validation_split: As for ``fit``; read by the probes.
        shuffle: Whether ``fit`` (and the probes) shuffle arrays and ``PyDataset`` batches.
        refine: Whether the probes will run (they read the data again).
        steps: The most steps the test runs.
        where: The caller's name, for errors.
    """
    kind = _kind(x)
    if kind == "unknown":
        raise InvalidArgumentError(f"{where}: x must be {_ACCEPTED}; got {type(x).__name__}.")
    per_epoch = (
        None
        if steps_per_epoch is None
        else check_int(steps_per_epoch, "steps_per_epoch", where=where, minimum=1)
    )
    if kind != "arrays":
        if y is not None:
            raise InvalidArgumentError(
                f"{where}: y must be None when x is a {_describe(x, kind)}; got {type(y).__name__}. "
                "The dataset yields (x, y) batches itself."
            )
        if kind == "generator" and refine:
            raise InvalidArgumentError(
                f"{where}: x must be re-iterable with refine=True (each probe reads the data again); got a "
                f"{_describe(x, kind)}. Pass arrays, a tf.data.Dataset or a keras.utils.PyDataset, or leave "
                "refine off."
            )
    elif y is None and _needs_targets(model):
        raise InvalidArgumentError(
            f"{where}: y must be given with array inputs, since the model's loss {model.loss!r} compares "
            "predictions with targets; got None. Pass y=..., or give x as a tf.data.Dataset, "
            "keras.utils.PyDataset or generator that yields (x, y) batches."
        )
    x, y, validation = _validation(validation_data, validation_split, x, y, kind, refine=refine, where=where)
    # Other kinds come in their own order (fit warns that it ignores its shuffle=True).
    fit_kwargs: dict[str, Any] = {"verbose": 0, "shuffle": shuffle and kind in ("arrays", "pydataset")}
    if kind == "arrays":
        if per_epoch is not None:
            raise InvalidArgumentError(
                f"{where}: steps_per_epoch must be None with array inputs, which make "
                f"ceil(n_samples / batch_size) steps per epoch; got {steps_per_epoch!r}."
            )
        n = _count_samples(x, y, where=where)
        batch = n if batch_size is None else batch_size
        per_epoch = math.ceil(n / batch)
        fit_kwargs.update(batch_size=batch, epochs=math.ceil(steps / per_epoch))
        return TrainingData(
            fit_args=(x, y),
            fit_kwargs=fit_kwargs,
            steps_per_epoch=per_epoch,
            n_samples=n,
            batch_size=batch,
            probe_batches=_array_batches((x, y, None), n, batch, shuffle=shuffle, cycle=True),
            validation_batches=_held_out(validation, batch),
        )
    count = None if kind == "generator" else _length(x, "x", kind, where)
    if per_epoch is not None:
        fit_kwargs.update(steps_per_epoch=per_epoch, epochs=math.ceil(steps / per_epoch))
    elif count is not None:
        per_epoch = count
        fit_kwargs["epochs"] = math.ceil(steps / count)
    elif kind == "generator" or (kind == "dataset" and int(x.cardinality()) == -1) or kind == "pydataset":
        # Endless (or one-shot) data: one epoch of exactly the steps of the test.
        fit_kwargs.update(epochs=1, steps_per_epoch=steps)
    else:
        # A pass of unknown length: as many passes as the test could need.
        fit_kwargs["epochs"] = steps
    return TrainingData(
        fit_args=(x,),
        fit_kwargs=fit_kwargs,
        steps_per_epoch=per_epoch,
        n_samples=None,
        batch_size=None,
        probe_batches=None
        if kind == "generator"
        else _dataset_batches(x, kind, count, shuffle=shuffle, cycle=True),
        validation_batches=_held_out(validation, None),
    )


def _held_out(held: tuple[str, Any] | None, batch: int | None) -> Callable[[], Iterator[Batch]] | None:
    """One pass over the held-out data; arrays in batches of the training's size (else Keras's 32)."""
    if held is None:
        return None
    kind, data = held
    if kind == "arrays":
        n = int(keras.tree.flatten(data[0])[0].shape[0])
        return _array_batches(data, n, batch or 32, shuffle=False, cycle=False)
    count = _length(data, "validation_data", kind, "validation_data")
    return _dataset_batches(data, kind, count, shuffle=False, cycle=False)
