"""lrscout.pytorch's batches: moved to a device, sized and sliced through every container type."""

from __future__ import annotations

import dataclasses
import gc
from collections import UserDict, defaultdict, namedtuple
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from lrscout import InvalidArgumentError  # noqa: E402
from lrscout.pytorch import LRFinder  # noqa: E402
from lrscout.pytorch._batches import (  # noqa: E402
    BatchStream,
    batch_len,
    batch_mover,
    slice_batch,
    to_device,
)

META = torch.device("meta")
CPU = torch.device("cpu")
Pair = namedtuple("Pair", "inputs targets")


class Encoding(Mapping):
    """A read-only Mapping that is not a dict, built from a dict (as Hugging Face's ``BatchEncoding`` is)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = dict(data)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class NoDictConstructor(Encoding):
    """A Mapping whose constructor takes something else: it comes back as a dict."""

    def __init__(self, *pairs: tuple[str, Any]) -> None:
        super().__init__(dict(pairs))


class Tokens(UserDict):
    """A ``UserDict`` with an attribute beside its data, as ``BatchEncoding`` has its ``encodings``."""

    def __init__(self, data: dict[str, Any], encodings: Any = None) -> None:
        super().__init__(data)
        self.encodings = encodings


@dataclasses.dataclass(frozen=True)
class Sample:
    pixels: torch.Tensor
    labels: list[torch.Tensor]
    name: str = "digits"
    size: int = dataclasses.field(init=False, default=0)


def _devices(batch: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(batch, torch.Tensor):
        found.add(batch.device.type)
    elif isinstance(batch, Mapping | UserDict):
        for value in batch.values():
            found |= _devices(value)
    elif isinstance(batch, (list, tuple)):
        for value in batch:
            found |= _devices(value)
    elif dataclasses.is_dataclass(batch):
        for field in dataclasses.fields(batch):
            found |= _devices(getattr(batch, field.name))
    return found


def test_to_device_moves_tensors_inside_a_mapping_that_is_not_a_dict():
    batch = Encoding({"input_ids": torch.ones(2, 3), "mask": [torch.zeros(2)], "text": "hi"})
    moved = to_device(batch, META)
    assert type(moved) is Encoding and not isinstance(moved, dict)
    assert moved["input_ids"].device == META and moved["mask"][0].device == META
    assert moved["text"] == "hi"
    assert batch["input_ids"].device == CPU  # the batch itself is left alone


def test_to_device_keeps_each_container_type():
    tokens = Tokens({"ids": torch.ones(2)}, encodings=["fast"])
    counts: defaultdict[str, Any] = defaultdict(list, {"n": torch.ones(1)})
    batch = {
        "pair": Pair(torch.ones(2), torch.zeros(2)),
        "sample": Sample(torch.ones(2, 2), [torch.ones(1)]),
        "tokens": tokens,
        "counts": counts,
        "odd": NoDictConstructor(("x", torch.ones(1))),
        "plain": (torch.ones(1), [torch.ones(1)], 3),
    }
    moved = to_device(batch, META)
    assert _devices(moved) == {"meta"} and _devices(batch) == {"cpu"}
    assert type(moved["pair"]) is Pair
    assert type(moved["sample"]) is Sample and moved["sample"].name == "digits"
    assert type(moved["tokens"]) is Tokens and moved["tokens"].encodings == ["fast"]
    assert type(moved["counts"]) is defaultdict and moved["counts"].default_factory is list
    assert type(moved["odd"]) is dict
    assert type(moved["plain"]) is tuple and moved["plain"][2] == 3
    assert tokens["ids"].device == CPU and counts["n"].device == CPU


def test_a_batch_already_on_the_device_needs_no_mover():
    batch = Encoding({"x": torch.ones(2), "y": Pair(torch.ones(2), 1)})
    assert batch_mover(batch, CPU) is None
    move = batch_mover(batch, META)
    assert move is not None and _devices(move(batch)) == {"meta"}


def test_batch_stream_decides_the_move_on_the_first_batch_and_cycles():
    loader = [(torch.full((2,), float(i)), torch.zeros(2)) for i in range(3)]
    stream = BatchStream(loader, name="train_loader", where="test", device=CPU)
    seen = [stream.next() for _ in range(7)]
    # Nothing to move: the very batches of the loader, in order, started again twice.
    assert all(a is b for a, b in zip(seen, loader * 3, strict=False))
    assert stream.passes == 3
    moved = BatchStream(loader, name="train_loader", where="test", device=META)
    assert _devices([moved.next() for _ in range(4)]) == {"meta"}
    one_shot = BatchStream(iter(loader), name="train_loader", where="test")
    assert [float(x[0]) for x, _ in one_shot] == [0.0, 1.0, 2.0]
    with pytest.raises(InvalidArgumentError, match="test: train_loader must yield at least one batch"):
        BatchStream([], name="train_loader", where="test").next()


def test_batch_len_and_slices_through_every_container():
    batch = Encoding(
        {"scalar": torch.tensor(3.0), "x": Sample(torch.arange(12.0).reshape(6, 2), [torch.arange(6)])}
    )
    assert batch_len(batch, where="test") == 6
    part = slice_batch(batch, 2, 4, 6)
    assert type(part) is Encoding and torch.equal(part["scalar"], torch.tensor(3.0))
    assert torch.equal(part["x"].pixels, torch.tensor([[4.0, 5.0], [6.0, 7.0]]))
    assert torch.equal(part["x"].labels[0], torch.tensor([2, 3]))
    with pytest.raises(InvalidArgumentError, match="test: a batch must hold a tensor with a batch dimension"):
        batch_len({"n": torch.tensor(1.0)}, where="test")


def test_the_range_test_reads_mapping_and_dataclass_batches():
    torch.manual_seed(0)
    X = torch.randn(32, 3)
    y = X.sum(dim=1, keepdim=True)
    model = nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    batches = [Encoding({"x": X[i : i + 8], "y": Sample(y[i : i + 8], [])}) for i in range(0, 32, 8)]

    def loss_fn(model: nn.Module, batch: Any) -> torch.Tensor:
        return nn.functional.mse_loss(model(batch["x"]), batch["y"].pixels)

    result = LRFinder(model, optimizer, loss_fn=loss_fn).range_test(batches, num_steps=6, progress=False)
    assert len(result) == 6 and result.info["loader_cycled"]


class _Batches:
    """A loader whose iterators say when they are freed (as a DataLoader's stop their workers)."""

    def __init__(self, batches: list[Any], freed: list[int]) -> None:
        self.batches, self.freed = batches, freed

    def __iter__(self) -> Iterator[Any]:
        return _Iterator(iter(self.batches), self.freed)


class _Iterator:
    def __init__(self, inner: Iterator[Any], freed: list[int]) -> None:
        self.inner, self.freed = inner, freed

    def __next__(self) -> Any:
        return next(self.inner)

    def __iter__(self) -> _Iterator:
        return self

    def __del__(self) -> None:
        self.freed.append(1)


def test_the_loaders_iterators_are_freed_when_the_range_test_returns():
    X = torch.randn(16, 3)
    y = X.sum(dim=1, keepdim=True)
    freed: list[int] = []
    loader = _Batches([(X[:8], y[:8]), (X[8:], y[8:])], freed)
    model = nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    gc.disable()
    try:
        result = LRFinder(model, optimizer, nn.MSELoss()).range_test(loader, num_steps=5, progress=False)
        # Freed by reference counting alone: nothing kept in a reference cycle.
        assert len(freed) == result.info["loader_passes"] == 3
    finally:
        gc.enable()
