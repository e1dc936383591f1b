"""lrscout.pytorch's TrainingSnapshot: every tensor back by identity and by value, bitwise."""

from __future__ import annotations

import os
from typing import Any

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from lrscout.pytorch import LRFinder, noise_scale  # noqa: E402
from lrscout.pytorch._snapshot import TrainingSnapshot  # noqa: E402


class _ReplacesItsBuffer(nn.Module):
    """A linear layer that counts its calls in a buffer it *replaces* (not updates in place)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 1)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls = self.calls + 1
        return self.linear(x)


def _data(n: int = 32) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(n, 3, generator=generator)
    y = X @ torch.tensor([[1.0], [-2.0], [0.5]])
    return [(X[i : i + 8], y[i : i + 8]) for i in range(0, n, 8)]


def _mse(model: nn.Module, batch: Any) -> torch.Tensor:
    return nn.functional.mse_loss(model(batch[0]), batch[1])


@pytest.mark.parametrize("cache", [False, True])
def test_replaced_buffers_and_parameters_come_back_as_the_same_objects(tmp_path, cache):
    model = _ReplacesItsBuffer()
    calls, weight, bias = model.calls, model.linear.weight, model.linear.bias
    values = {"calls": calls.clone(), "weight": weight.detach().clone(), "bias": bias.detach().clone()}
    snapshot = TrainingSnapshot(model, cache_dir=tmp_path if cache else None)
    for batch in _data():
        _mse(model, batch).backward()
    model.linear.weight = nn.Parameter(torch.zeros(1, 3))
    with torch.no_grad():
        bias.add_(1.0)
    assert model.calls is not calls and float(model.calls) == 4.0
    snapshot.restore()
    assert model.calls is calls and torch.equal(calls, values["calls"])
    assert model.linear.weight is weight and torch.equal(weight, values["weight"])
    assert model.linear.bias is bias and torch.equal(bias, values["bias"])
    assert weight.grad is None and bias.grad is None
    assert os.listdir(tmp_path) == []


def test_the_range_test_puts_a_replaced_buffer_back():
    model = _ReplacesItsBuffer()
    calls = model.calls
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    result = LRFinder(model, optimizer, loss_fn=_mse).range_test(_data(), num_steps=10, progress=False)
    assert len(result) == 10
    assert model.calls is calls and torch.equal(calls, torch.zeros(()))


@pytest.mark.parametrize("cache", [False, True])
def test_a_parameter_trained_outside_the_model_comes_back_with_its_gradient(tmp_path, cache):
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    # A learnable loss temperature: the optimizer trains it, the model does not hold it.
    temperature = nn.Parameter(torch.tensor(0.5))
    optimizer = torch.optim.SGD([*model.parameters(), temperature], lr=0.01, momentum=0.9)

    def loss_fn(model: nn.Module, batch: Any) -> torch.Tensor:
        return _mse(model, batch) / temperature.exp()

    for batch in _data()[:2]:
        optimizer.zero_grad()
        loss_fn(model, batch).backward()
        optimizer.step()
    loss_fn(model, _data()[2]).backward()
    value, grad = temperature.detach().clone(), temperature.grad.clone()
    momentum = optimizer.state[temperature]["momentum_buffer"]
    momentum_value = momentum.clone()

    finder = LRFinder(model, optimizer, loss_fn=loss_fn, cache_dir=tmp_path if cache else None)
    result = finder.range_test(_data(), start_lr=1e-3, end_lr=1.0, num_steps=20, progress=False)
    assert len(result) > 1
    assert torch.equal(temperature, value) and torch.equal(temperature.grad, grad)
    assert optimizer.state[temperature]["momentum_buffer"] is momentum
    assert torch.equal(momentum, momentum_value)
    assert optimizer.param_groups[0]["params"][-1] is temperature


def test_param_groups_are_restored_in_place_with_their_tensor_learning_rate():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    lr = torch.tensor(1e-3)
    optimizer = torch.optim.Adam(
        [{"params": model[0].parameters()}, {"params": model[2].parameters(), "weight_decay": 0.1}],
        lr=lr,
        foreach=False,
    )
    for batch in _data():
        optimizer.zero_grad()
        _mse(model, batch).backward()
        optimizer.step()
    groups, group_dicts = optimizer.param_groups, list(optimizer.param_groups)
    params_lists = [group["params"] for group in groups]
    held = groups[1]  # a reference the user holds
    contents = [dict(group) for group in groups]
    state = optimizer.state
    state_dicts = {param: optimizer.state[param] for param in model.parameters()}
    state_tensors = {
        (id(param), key): (value, value.clone())
        for param in model.parameters()
        for key, value in optimizer.state[param].items()
    }

    result = LRFinder(model, optimizer, loss_fn=_mse).range_test(
        _data(), start_lr=1e-4, end_lr=1.0, num_steps=12, progress=False
    )
    assert len(result) == 12
    assert optimizer.param_groups is groups and optimizer.param_groups == group_dicts
    assert all(a is b for a, b in zip(optimizer.param_groups, group_dicts, strict=True))
    assert all(group["params"] is params for group, params in zip(groups, params_lists, strict=True))
    for group, before in zip(groups, contents, strict=True):
        assert group.keys() == before.keys()
        assert all(group[key] is before[key] for key in ("lr", "params", "betas"))
    assert held["lr"] is lr and torch.equal(lr, torch.tensor(1e-3))
    assert held["weight_decay"] == 0.1
    assert optimizer.state is state
    for param in model.parameters():
        assert optimizer.state[param] is state_dicts[param]
        for key, value in optimizer.state[param].items():
            original, copy = state_tensors[(id(param), key)]
            assert value is original and torch.equal(value, copy), key


def test_a_reference_to_a_float_param_group_sees_the_original_lr():
    model = nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    group = optimizer.param_groups[0]
    LRFinder(model, optimizer, loss_fn=_mse).range_test(_data(), end_lr=1.0, num_steps=8, progress=False)
    assert optimizer.param_groups[0] is group and group["lr"] == 0.05


class _WithExtraState(nn.Linear):
    """A module whose extra state (not a tensor) changes in training, like an FP8 scaling recipe."""

    def __init__(self) -> None:
        super().__init__(3, 1)
        self.recipe = {"steps": 0, "history": [1.0]}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.recipe["steps"] += 1
        self.recipe["history"].append(float(self.recipe["steps"]))
        return super().forward(x)

    def get_extra_state(self) -> Any:
        return self.recipe

    def set_extra_state(self, state: Any) -> None:
        self.recipe = state


def test_the_cache_file_is_read_with_weights_only(tmp_path, monkeypatch):
    model = _WithExtraState()
    optimizer = torch.optim.Adam(model.parameters(), lr=torch.tensor(0.01), foreach=False)
    _mse(model, _data()[0]).backward()
    optimizer.step()
    before = {name: value.detach().clone() for name, value in model.named_parameters()}
    loads = []
    original_load = torch.load

    def load(*args: Any, **kwargs: Any) -> Any:
        loads.append(kwargs)
        return original_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", load)
    LRFinder(model, optimizer, loss_fn=_mse, cache_dir=tmp_path).range_test(
        _data(), num_steps=6, progress=False
    )
    assert [kwargs.get("weights_only") for kwargs in loads] == [True]
    assert os.listdir(tmp_path) == []
    assert model.recipe == {"steps": 1, "history": [1.0, 1.0]}
    for name, value in model.named_parameters():
        assert torch.equal(value, before[name]), name


def test_without_an_optimizer_and_twice(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    model[1].eval()
    mean = model[1].running_mean
    rng = torch.get_rng_state()
    snapshot = TrainingSnapshot(model, cache_dir=tmp_path)
    model.train()
    _mse(model, _data()[0]).backward()
    torch.rand(3)
    snapshot.restore()
    assert model[1].running_mean is mean and torch.equal(mean, torch.zeros(4))
    assert [m.training for m in model.modules()] == [True, True, False, True]
    assert all(param.grad is None for param in model.parameters())
    assert torch.equal(torch.get_rng_state(), rng)
    with pytest.raises(RuntimeError, match="already restored"):
        snapshot.restore()


def test_noise_scale_restores_through_the_same_snapshot():
    model = _ReplacesItsBuffer()
    calls = model.calls
    X = torch.randn(64, 3, generator=torch.Generator().manual_seed(1))
    y = X.sum(dim=1, keepdim=True)
    noise_scale(model, (X, y), nn.MSELoss(), small_batch=4, big_batch=16, num_pairs=4, random_state=0)
    assert model.calls is calls and torch.equal(calls, torch.zeros(()))


@pytest.mark.parametrize("fault", ["none", "error at step 5", "interrupt at step 3", "nan at step 0"])
def test_nothing_the_user_holds_changes_whatever_happens(fault):
    # An optimizer holding a parameter outside the model, a tensor learning rate, a model with
    # BatchNorm, a loader with its own generator, warm optimizer state: every tensor comes back
    # bitwise and every reference the user holds still points at the live objects.
    import lrscout
    from lrscout.pytorch import find_lr

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
    temperature = nn.Parameter(torch.tensor(1.5))
    optimizer = torch.optim.Adam(
        [{"params": model.parameters()}, {"params": [temperature], "lr": 0.0}], lr=torch.tensor(1e-3)
    )
    data = torch.utils.data.TensorDataset(torch.randn(64, 3), torch.randn(64, 1))
    generator = torch.Generator().manual_seed(3)
    loader = torch.utils.data.DataLoader(data, batch_size=8, shuffle=True, generator=generator)
    for x, y in loader:  # warm state: moments, steps, grads, running statistics
        optimizer.zero_grad()
        (nn.functional.mse_loss(model(x), y) * temperature).backward()
        optimizer.step()
    groups, first, lr = optimizer.param_groups, optimizer.param_groups[0], optimizer.param_groups[0]["lr"]
    state = optimizer.state
    tensors = {
        **{f"model.{k}": v for k, v in model.state_dict().items()},
        "temperature": temperature,
        **{f"grad.{i}": p.grad for i, p in enumerate([*model.parameters(), temperature])},
        **{f"state.{i}.{k}": v for i, s in enumerate(state.values()) for k, v in s.items()},
        "lr": lr,
        "generator": generator.get_state(),
        "rng": torch.get_rng_state(),
    }
    before = {name: value.detach().clone() for name, value in tensors.items()}
    calls = {"n": 0}

    def loss_fn(net, batch):
        step = calls["n"]
        calls["n"] += 1
        if fault == "error at step 5" and step == 5:
            raise RuntimeError("boom")
        if fault == "interrupt at step 3" and step == 3:
            raise KeyboardInterrupt
        x, y = batch
        loss = nn.functional.mse_loss(net(x), y) * temperature
        return loss * float("nan") if fault == "nan at step 0" else loss

    if fault == "error at step 5":
        with pytest.raises(RuntimeError, match="boom"):
            find_lr(model, optimizer, loader, loss_fn=loss_fn, num_steps=30, progress=False)
    elif fault == "interrupt at step 3":
        with pytest.raises(KeyboardInterrupt):
            find_lr(model, optimizer, loader, loss_fn=loss_fn, num_steps=30, progress=False)
    else:
        result = find_lr(model, optimizer, loader, loss_fn=loss_fn, num_steps=30, progress=False)
        assert isinstance(result, lrscout.RangeTestResult)
    assert optimizer.param_groups is groups and optimizer.param_groups[0] is first
    assert first["lr"] is lr and optimizer.state is state
    after = {
        **{f"model.{k}": v for k, v in model.state_dict().items()},
        "temperature": temperature,
        **{f"grad.{i}": p.grad for i, p in enumerate([*model.parameters(), temperature])},
        **{f"state.{i}.{k}": v for i, s in enumerate(state.values()) for k, v in s.items()},
        "lr": lr,
        "generator": generator.get_state(),
        "rng": torch.get_rng_state(),
    }
    assert after.keys() == before.keys()
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    assert changed == []


# --- frozen parameters: checked, not copied --------------------------------------------


class _HalfFrozen(nn.Module):
    """A frozen 16x16 base and a trainable 16x1 head; ``write`` says how forward touches the base."""

    def __init__(self, write: str = "nothing") -> None:
        super().__init__()
        torch.manual_seed(0)
        self.base = nn.Linear(16, 16)
        self.head = nn.Linear(16, 1)
        self.base.requires_grad_(False)
        self.write = write
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == 3:
            weight = self.base.weight
            if self.write == "in place":
                with torch.no_grad():
                    weight.mul_(1.5)
            elif self.write == "through .data":  # no version bump: only the bytes tell
                weight.data[0, 0] += 1.0
            elif self.write == "swap two elements":  # every plain sum stays the same
                weight.data[[0, 1], [0, 0]] = weight.data[[1, 0], [0, 0]].clone()
            elif self.write == "zero to minus zero":  # equal as numbers, not as bits
                self.base.bias.data[0] = -0.0 if self.base.bias.data[0].item() == 0.0 else 0.0
        return self.head(torch.relu(self.base(x)))


def _half_frozen_data() -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(32, 16, generator=generator)
    return [(X[i : i + 8], X[i : i + 8, :1]) for i in range(0, 32, 8)]


def _test(model: nn.Module, optimizer: Any, **kwargs: Any) -> Any:
    return LRFinder(model, optimizer, nn.MSELoss(), **kwargs).range_test(
        _half_frozen_data(), start_lr=1e-4, end_lr=1.0, num_steps=12, progress=False
    )


@pytest.mark.parametrize("cache", [False, True])
def test_a_frozen_parameter_the_optimizer_does_not_hold_is_checked_not_copied(tmp_path, cache):
    model = _HalfFrozen()
    optimizer = torch.optim.Adam(model.head.parameters(), lr=1e-3)
    for x, y in _half_frozen_data():  # warm Adam state, gradients left in place
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    state = {k: v.clone() for k, v in optimizer.state[model.head.weight].items()}
    snapshot = TrainingSnapshot(model, optimizer, cache_dir=tmp_path if cache else None)
    assert snapshot.checked == 2  # base.weight, base.bias
    head_bytes = sum(p.nbytes for p in model.head.parameters())
    state_bytes = sum(v.nbytes for s in optimizer.state.values() for v in s.values())
    grad_bytes = sum(p.grad.nbytes for p in model.head.parameters())
    fixed = torch.get_rng_state().nbytes + 2 * 4 * 8  # RNG state, a fingerprint row per frozen parameter
    assert snapshot.nbytes == head_bytes + state_bytes + grad_bytes + fixed
    snapshot.restore()
    grads = [p.grad.clone() for p in model.head.parameters()]
    _test(model, optimizer, cache_dir=tmp_path if cache else None)
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())
    assert all(torch.equal(state[k], v) for k, v in optimizer.state[model.head.weight].items())
    assert all(torch.equal(p.grad, g) for p, g in zip(model.head.parameters(), grads, strict=True))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("write", ["in place", "through .data", "swap two elements", "zero to minus zero"])
def test_a_frozen_parameter_written_during_the_test_fails_loudly(write):
    model = _HalfFrozen(write)
    if write == "zero to minus zero":
        model.base.bias.data[0] = 0.0
    optimizer = torch.optim.SGD(model.head.parameters(), lr=0.1)
    head = model.head.weight.detach().clone()
    name = "'base.bias'" if write == "zero to minus zero" else "'base.weight'"
    with pytest.raises(
        RuntimeError, match=f"frozen parameters changed during the test: {name}.*copy_frozen=True"
    ):
        _test(model, optimizer)
    # Everything that was copied is back all the same.
    assert torch.equal(model.head.weight, head)


@pytest.mark.parametrize("write", ["in place", "through .data", "swap two elements"])
def test_copy_frozen_puts_a_written_frozen_parameter_back(write):
    model = _HalfFrozen(write)
    optimizer = torch.optim.SGD(model.head.parameters(), lr=0.1)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    _test(model, optimizer, copy_frozen=True)
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())


def test_a_frozen_parameter_the_optimizer_holds_is_copied():
    # The optimizer may step it (weight decay with a gradient from elsewhere): not ours to skip.
    model = _HalfFrozen("in place")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    assert TrainingSnapshot(model, optimizer).checked == 0
    before = {name: value.clone() for name, value in model.state_dict().items()}
    _test(model, optimizer)
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())


def test_the_device_checksum_sees_every_kind_of_change():
    # The accelerator's fingerprint, run here on CPU tensors: one bit, a swap, -0.0, a NaN payload.
    from lrscout.pytorch import _snapshot

    generator = torch.Generator().manual_seed(0)
    base = torch.randn(1000, generator=generator).to(torch.bfloat16)
    changes = {
        "one bit": lambda w: w.view(torch.int16)[500].bitwise_xor_(1),
        "swap": lambda w: w.copy_(w[torch.tensor([1, 0, *range(2, 1000)])]),
        "minus zero": lambda w: w.__setitem__(7, -0.0),
        "NaN payload": lambda w: w.view(torch.int16).__setitem__(3, 0x7FC1),
    }
    base[7] = 0.0
    base.view(torch.int16)[3] = 0x7FC0  # a NaN
    reference = _snapshot._device_checksum(base.view(torch.int16))
    for name, change in changes.items():
        changed = base.clone()
        change(changed)
        assert not torch.equal(changed.view(torch.int16), base.view(torch.int16)), name
        assert not torch.equal(_snapshot._device_checksum(changed.view(torch.int16)), reference), name
    # Blocks: the same words in one block or several give the same checksum.
    old_block = _snapshot._BLOCK
    try:
        _snapshot._BLOCK = 7
        assert torch.equal(_snapshot._device_checksum(base.view(torch.int16)), reference)
    finally:
        _snapshot._BLOCK = old_block


def test_the_host_fingerprint_hashed_in_pieces_on_threads_sees_a_change_in_any_piece(monkeypatch):
    from lrscout.pytorch import _snapshot

    monkeypatch.setattr(_snapshot, "_PIECE", 7)
    threads = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        arrays = [torch.arange(50, dtype=torch.uint8).numpy(), torch.zeros(0, dtype=torch.uint8).numpy()]
        reference = _snapshot._host_digests(arrays)
        assert reference == _snapshot._host_digests([array.copy() for array in arrays])
        assert reference[1] != reference[0]
        for position in (0, 6, 7, 49):
            changed = arrays[0].copy()
            changed[position] ^= 1
            assert _snapshot._host_digests([changed, arrays[1]])[0] != reference[0], position
    finally:
        torch.set_num_threads(threads)
