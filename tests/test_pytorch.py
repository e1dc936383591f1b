"""lrscout.pytorch: exact learning rates, reference losses, known physics, bitwise restoration."""

from __future__ import annotations

import copy
import itertools
import math
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import lrscout  # noqa: E402
from lrscout.pytorch import LRFinder, find_lr  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    # Small models run faster on one thread, and the tests share two cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _regression(n: int = 64, d: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=generator)
    y = X @ torch.randn(d, 1, generator=generator) + 0.1 * torch.randn(n, 1, generator=generator)
    return X, y


def _batches(X: torch.Tensor, y: torch.Tensor, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(X[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(X), batch_size)]


def _mlp(d: int = 4, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, 8), nn.ReLU(), nn.Linear(8, 1))


def _run(model: nn.Module, optimizer: Any, loader: Any, **kwargs: Any) -> lrscout.RangeTestResult:
    """``find_lr`` with ``MSELoss`` unless ``loss_fn`` is given, and no progress bar."""
    criterion = None if "loss_fn" in kwargs else nn.MSELoss()
    # extend=False: these tests are about the planned ramp; the extension has its own tests.
    return find_lr(model, optimizer, loader, criterion, **{"progress": False, "extend": False, **kwargs})


def _hand_loop(
    model: nn.Module,
    optimizer: Any,
    batches: list[Any],
    lrs: np.ndarray,
    *,
    max_grad_norm: float | None = None,
) -> list[float]:
    """The range test written out by hand: one batch per step, the loss before the step."""
    model.train()
    losses = []
    data = itertools.cycle(batches)
    for lr in lrs:
        for group in optimizer.param_groups:
            group["lr"] = float(lr)
        optimizer.zero_grad()
        inputs, targets = next(data)
        loss = nn.functional.mse_loss(model(inputs), targets)
        loss.backward()
        if max_grad_norm is not None:
            nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        losses.append(loss.item())
    return losses


# --- imports -------------------------------------------------------------------


def test_import_lrscout_does_not_import_torch():
    code = "import sys, lrscout; sys.exit(int('torch' in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_import_without_torch_names_the_extra():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "try:\n    import lrscout.pytorch\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], timeout=60, capture_output=True, text=True)
    assert out.stdout.strip() == (
        'lrscout.pytorch needs PyTorch, which is not installed. Install it with: pip install "torch==2.13.0"'
    )


# --- learning rates and losses against oracles -----------------------------------


@pytest.mark.parametrize("mode", ["exponential", "linear"])
def test_learning_rates_equal_the_core_ramp_exactly(mode):
    X, y = _regression()
    model = nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    seen = []

    def loss_fn(model, batch):
        seen.append(optimizer.param_groups[0]["lr"])
        return nn.functional.mse_loss(model(batch[0]), batch[1])

    result = _run(
        model,
        optimizer,
        _batches(X, y, 16),
        loss_fn=loss_fn,
        start_lr=1e-5,
        end_lr=0.1,
        num_steps=30,
        mode=mode,
    )
    expected = {"exponential": lrscout.exponential_ramp, "linear": lrscout.linear_ramp}[mode](1e-5, 0.1, 30)
    assert result.stop_reason == "completed"
    np.testing.assert_array_equal(result.lrs, expected(np.arange(30)))
    assert seen == result.lrs.tolist()
    assert optimizer.param_groups[0]["lr"] == 0.5


@pytest.mark.parametrize("sync_every", [1, 8, 1000])
def test_losses_equal_a_hand_written_loop(sync_every):
    X, y = _regression(n=96)
    batches = _batches(X, y, 32)
    model = _mlp()
    reference = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    result = _run(
        model,
        optimizer,
        batches,
        start_lr=1e-4,
        end_lr=0.3,
        num_steps=25,
        stop_on_divergence=False,
        sync_every=sync_every,
    )
    expected = _hand_loop(
        reference, torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9), batches, result.lrs
    )
    assert result.stop_reason == "completed"
    assert result.losses.tolist() == expected


@pytest.mark.parametrize("groups", ["one", "two at one rate"])
def test_every_way_of_setting_the_rate_equals_a_hand_written_loop(groups):
    # One param group takes the step's shortest path, several groups the
    # general one: the same losses either way.
    X, y = _regression(n=96)
    batches = _batches(X, y, 32)
    model = _mlp()
    reference = copy.deepcopy(model)

    def optimizer_of(net):
        layers = [{"params": net[0].parameters()}, {"params": net[2].parameters()}]
        if groups == "one":
            return torch.optim.Adam(net.parameters(), lr=0.01)
        return torch.optim.Adam(layers, lr=0.01)

    optimizer = optimizer_of(model)
    result = _run(
        model, optimizer, batches, start_lr=1e-4, end_lr=0.3, num_steps=25, stop_on_divergence=False
    )
    expected = _hand_loop(reference, optimizer_of(reference), batches, result.lrs)
    assert result.losses.tolist() == expected


def test_gradient_clipping_matches_a_hand_written_loop():
    X, y = _regression(n=64)
    batches = _batches(X, y, 16)
    model = _mlp()
    reference = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    result = _run(
        model,
        optimizer,
        batches,
        max_grad_norm=0.05,
        start_lr=1e-3,
        end_lr=1.0,
        num_steps=20,
        stop_on_divergence=False,
    )
    expected = _hand_loop(
        reference, torch.optim.SGD(reference.parameters(), lr=0.1), batches, result.lrs, max_grad_norm=0.05
    )
    assert result.losses.tolist() == expected
    assert result.info["max_grad_norm"] == 0.05


def test_start_lr_none_is_the_core_default_not_the_optimizer_lr():
    X, y = _regression()
    model = nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.25)
    result = _run(model, optimizer, [(X, y)], end_lr=1e-3, num_steps=5)
    assert result.start_lr == 1e-7 == result.lrs[0]


# --- known physics: divergence thresholds of gradient descent on least squares ------


def _least_squares(beta: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Data, targets and the stability limit 2(1+beta)/lambda_max of full-batch heavy ball.

    ``nn.MSELoss`` is ``mean((Xw - y)**2)`` with no 1/2, so its Hessian is ``2 X^T X / n``.
    """
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 4)) * np.array([3.0, 1.0, 0.5, 0.2])
    y = X @ rng.standard_normal(4) + 0.1 * rng.standard_normal(64)
    lam_max = np.linalg.eigvalsh(2.0 * X.T @ X / len(X)).max()
    return torch.tensor(X), torch.tensor(y).reshape(-1, 1), 2.0 * (1.0 + beta) / lam_max


def _least_squares_test(beta: float, start: float, end: float, num_steps: int, mode: str):
    X, y, limit = _least_squares(beta)
    torch.manual_seed(0)
    model = nn.Linear(4, 1, bias=False).double()
    w0 = model.weight.detach().numpy().ravel().copy()
    # The optimizer's own lr is far past the limit: a finder that ignored the
    # ramp would diverge in every test below.
    optimizer = torch.optim.SGD(model.parameters(), lr=5 * limit, momentum=beta)
    kwargs = {"start_lr": start * limit, "end_lr": end * limit, "num_steps": num_steps, "mode": mode}
    result = _run(model, optimizer, [(X, y)], **kwargs)

    # The same heavy ball written in NumPy, driven by the core loop.
    Xn, yn = X.numpy(), y.numpy().ravel()
    w, v = w0, np.zeros(4)

    def step_fn(lr):
        nonlocal w, v
        residual = Xn @ w - yn
        v = beta * v + 2.0 * Xn.T @ residual / len(Xn)
        w = w - lr * v
        return np.mean(residual**2)

    return result, lrscout.range_test(step_fn, **kwargs), limit


@pytest.mark.parametrize("beta", [0.0, 0.9])
def test_never_diverges_below_the_stability_limit(beta):
    result, oracle, limit = _least_squares_test(beta, 1e-3, 0.99, 200, "exponential")
    assert result.stop_reason == oracle.stop_reason == "completed"
    assert result.lrs[-1] < limit
    np.testing.assert_allclose(result.losses, oracle.losses, rtol=1e-9)
    if beta == 0.0:
        # Plain gradient descent below 2/lambda_max shrinks every error component.
        assert np.all(np.diff(result.losses) <= 0.0)


@pytest.mark.parametrize(
    ("beta", "start", "end", "num_steps", "mode"),
    [
        # Just above 2/lambda_max: must stop, and soon.
        (0.0, 1.01, 1.2, 300, "linear"),
        # Heavy ball: a ramp from far below crosses 2(1+beta)/lambda_max and stops past it.
        (0.9, 1e-3, 10.0, 200, "exponential"),
    ],
)
def test_diverges_above_the_stability_limit(beta, start, end, num_steps, mode):
    result, oracle, limit = _least_squares_test(beta, start, end, num_steps, mode)
    assert result.stop_reason == oracle.stop_reason == "diverged"
    assert len(result) == len(oracle) < num_steps
    assert result.lrs[-1] > limit
    np.testing.assert_allclose(result.losses, oracle.losses, rtol=1e-9)


# --- restoration ---------------------------------------------------------------------


class _CountCalls(nn.Module):
    """Identity with a non-persistent buffer (not in ``state_dict``) that training changes."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("calls", torch.zeros(()), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.calls += 1
        return x


def _setup(kind: str) -> tuple[nn.Module, Any]:
    torch.manual_seed(1)
    if kind == "batchnorm_dropout":
        model = nn.Sequential(
            nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.3), _CountCalls(), nn.Linear(8, 1)
        )
    else:
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    groups = [
        {"params": model[0].parameters()},
        {"params": model[-1].parameters(), "lr": 0.003, "weight_decay": 1e-3},
    ]
    if kind == "batchnorm_dropout":
        groups.append({"params": model[1].parameters(), "lr": 0.02})
    optimizer_class, options = {
        "sgd": (torch.optim.SGD, {}),
        "sgd_momentum": (torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
        "adam": (torch.optim.Adam, {}),
        "adamw": (torch.optim.AdamW, {}),
        "batchnorm_dropout": (torch.optim.Adam, {}),
    }[kind]
    optimizer = optimizer_class(groups, lr=0.01, **options)
    # Some history: optimizer state, BatchNorm statistics, gradients, mixed modes.
    X, y = _regression(n=32)
    for _ in range(3):
        optimizer.zero_grad()
        nn.functional.mse_loss(model(X), y).backward()
        optimizer.step()
    nn.functional.mse_loss(model(X), y).backward()
    model[-1].bias.grad = None
    model.eval()
    model[0].train()
    return model, optimizer


def _capture(model: nn.Module, optimizer: Any) -> dict[str, Any]:
    return {
        "model": copy.deepcopy(model.state_dict()),
        "buffers": {name: buffer.clone() for name, buffer in model.named_buffers()},
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "optimizer": copy.deepcopy(optimizer.state_dict()),
        "modes": [m.training for m in model.modules()],
        "rng": torch.get_rng_state(),
        "params": [id(p) for p in model.parameters()],
        "optimizer_params": [id(p) for g in optimizer.param_groups for p in g["params"]],
    }


def _assert_same(a: Any, b: Any) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor)
        assert a.dtype == b.dtype and a.device == b.device
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, z in zip(a, b, strict=True):
            _assert_same(x, z)
    else:
        assert a == b


class _Boom(RuntimeError):
    pass


def _failing_loss(fail: str) -> Callable[[nn.Module, Any], torch.Tensor]:
    calls = itertools.count()

    def loss_fn(model, batch):
        call = next(calls)
        loss = nn.functional.mse_loss(model(batch[0]), batch[1])
        if fail == f"error@{call}":
            raise _Boom(f"step {call}")
        if fail == f"interrupt@{call}":
            raise KeyboardInterrupt
        if fail == f"nan@{call}":
            return loss * math.nan
        return loss

    return loss_fn


@pytest.mark.parametrize("kind", ["sgd", "sgd_momentum", "adam", "adamw", "batchnorm_dropout"])
@pytest.mark.parametrize("fail", ["none", "error@0", "error@3", "error@8", "interrupt@5", "nan@0"])
def test_restores_everything_bitwise(kind, fail):
    model, optimizer = _setup(kind)
    before = _capture(model, optimizer)
    # One deepcopy, so the copied optimizer holds the copied model's parameters.
    control_model, control_optimizer = copy.deepcopy((model, optimizer))
    X, y = _regression(n=64, seed=3)
    loader = _batches(X, y, 16)
    kwargs = {"loss_fn": _failing_loss(fail), "start_lr": 1e-4, "end_lr": 10.0, "num_steps": 30}
    if fail.startswith(("error", "interrupt")):
        with pytest.raises(_Boom if fail.startswith("error") else KeyboardInterrupt):
            _run(model, optimizer, loader, **kwargs)
    else:
        result = _run(model, optimizer, loader, **kwargs)
        if fail == "nan@0":
            assert (result.stop_reason, len(result)) == ("non-finite", 1)
        else:
            assert result.stop_reason in ("completed", "diverged")
    after = _capture(model, optimizer)
    _assert_same(before, after)

    # The restored pair trains on exactly as an untouched copy does.
    for net, opt in ((model, optimizer), (control_model, control_optimizer)):
        torch.manual_seed(7)
        net.train()
        opt.zero_grad()
        nn.functional.mse_loss(net(X), y).backward()
        opt.step()
    _assert_same(model.state_dict(), control_model.state_dict())


def test_cache_dir_restores_and_removes_its_file(tmp_path):
    model, optimizer = _setup("batchnorm_dropout")
    before = _capture(model, optimizer)
    seen = []

    def loss_fn(model, batch):
        seen.append(sorted(os.listdir(tmp_path)))
        return nn.functional.mse_loss(model(batch[0]), batch[1])

    X, y = _regression(n=32)
    _run(model, optimizer, _batches(X, y, 16), loss_fn=loss_fn, cache_dir=tmp_path, num_steps=10)
    assert len(seen[0]) == 1 and seen[0][0].startswith("lrscout-snapshot-")
    assert os.listdir(tmp_path) == []
    _assert_same(before, _capture(model, optimizer))

    with pytest.raises(_Boom):
        _run(model, optimizer, _batches(X, y, 16), loss_fn=_failing_loss("error@2"), cache_dir=str(tmp_path))
    assert os.listdir(tmp_path) == []
    _assert_same(before, _capture(model, optimizer))


def test_grad_scaler_and_bf16_autocast_on_cpu():
    X, y = _regression(n=64)
    model = _mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=1)
    scale_before = scaler.get_scale()
    dtypes = []
    model[0].register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))
    before = _capture(model, optimizer)
    result = _run(
        model,
        optimizer,
        _batches(X, y, 16),
        amp_dtype=torch.bfloat16,
        grad_scaler=scaler,
        start_lr=1e-3,
        end_lr=0.1,
        num_steps=12,
    )
    full = _run(model, optimizer, _batches(X, y, 16), start_lr=1e-3, end_lr=0.1, num_steps=12)
    assert set(dtypes[:12]) == {torch.bfloat16}
    assert np.all(np.isfinite(result.losses))
    np.testing.assert_allclose(result.losses, full.losses, rtol=3e-2)
    assert result.info["amp_dtype"] == "bfloat16" and result.info["grad_scaler"] is True
    assert scaler.get_scale() == scale_before
    _assert_same(before, _capture(model, optimizer))


# --- data: accumulation, cycling, iterables, dict batches, groups, validation ------


def test_accumulating_two_batches_of_16_equals_one_batch_of_32():
    X, y = _regression(n=128)
    model = _mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    kwargs = {"start_lr": 1e-3, "end_lr": 0.5, "num_steps": 16, "stop_on_divergence": False}
    whole = _run(model, optimizer, _batches(X, y, 32), **kwargs)
    halves = _run(model, optimizer, _batches(X, y, 16), accumulation_steps=2, **kwargs)
    assert halves.info["accumulation_steps"] == 2
    np.testing.assert_allclose(halves.losses, whole.losses, rtol=1e-5)
    np.testing.assert_array_equal(halves.lrs, whole.lrs)


def test_short_loader_is_cycled_in_order():
    X, y = _regression(n=40)
    batches = _batches(X, y, 8)
    order = []

    def loss_fn(model, batch):
        order.append(next(i for i, b in enumerate(batches) if b[0] is batch[0]))
        return nn.functional.mse_loss(model(batch[0]), batch[1])

    model = nn.Linear(4, 1)
    result = _run(model, torch.optim.SGD(model.parameters(), lr=1.0), batches, loss_fn=loss_fn, num_steps=12)
    assert result.info["loader_cycled"] is True
    assert order[:12] == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]


def test_iterables_without_len():
    X, y = _regression(n=32)
    batches = _batches(X, y, 8)

    class Stream:
        def __iter__(self) -> Iterator[Any]:
            return iter(batches)

    model = nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    cycled = _run(model, optimizer, Stream(), end_lr=1e-2, num_steps=10)
    assert len(cycled) == 10 and cycled.info["loader_passes"] == 3

    # A generator cannot be started again: when it runs out, the test ends there.
    ended = _run(model, optimizer, (b for b in batches), end_lr=1e-2, num_steps=10)
    assert (ended.stop_reason, len(ended), ended.info["loader_cycled"]) == ("ended", 4, False)
    np.testing.assert_array_equal(ended.losses, cycled.losses[:4])

    with pytest.raises(ValueError, match="train_loader must yield at least one batch"):
        _run(model, optimizer, iter([]), num_steps=10)
    with pytest.raises(ValueError, match="train_loader must yield at least one batch"):
        _run(model, optimizer, [], num_steps=10)


def test_dict_batches_and_tuple_outputs_through_loss_fn():
    X, y = _regression(n=32)

    class TwoHeads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Linear(4, 1)

        def forward(self, x: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out = self.body(x) * scale
            return out, out.detach()

    def loss_fn(model, batch):
        prediction, _ = model(batch["inputs"]["x"], batch["inputs"]["scale"])
        return nn.functional.mse_loss(prediction, batch["target"])

    batches = [
        {"inputs": {"x": X[i : i + 8], "scale": torch.ones(())}, "target": y[i : i + 8]}
        for i in range(0, 32, 8)
    ]
    model = TwoHeads()
    reference = copy.deepcopy(model.body)
    result = _run(
        model, torch.optim.SGD(model.parameters(), lr=1.0), batches, loss_fn=loss_fn, end_lr=0.1, num_steps=8
    )
    expected = _hand_loop(
        reference,
        torch.optim.SGD(reference.parameters(), lr=1.0),
        [(b["inputs"]["x"], b["target"]) for b in batches],
        result.lrs,
    )
    assert result.losses.tolist() == expected


def test_param_groups_keep_their_ratios():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 1))
    optimizer = torch.optim.SGD(
        [{"params": model[0].parameters(), "lr": 0.1}, {"params": model[1].parameters(), "lr": 0.025}],
        lr=0.1,
    )
    seen = []

    def loss_fn(model, batch):
        seen.append([g["lr"] for g in optimizer.param_groups])
        return nn.functional.mse_loss(model(batch[0]), batch[1])

    X, y = _regression(n=16)
    result = _run(model, optimizer, [(X, y)], loss_fn=loss_fn, start_lr=1e-4, end_lr=1.0, num_steps=12)
    first, second = np.array(seen[: len(result)]).T
    np.testing.assert_array_equal(first, result.lrs)
    np.testing.assert_allclose(second, 0.25 * result.lrs, rtol=1e-15)
    assert result.info["param_group_lr_ratios"] == [1.0, 0.25]
    assert [g["lr"] for g in optimizer.param_groups] == [0.1, 0.025]


def test_validation_loader_scores_each_step_in_eval_mode():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 1))
    model.eval()
    reference = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    X, y = _regression(n=48)
    train, val = _batches(X[:32], y[:32], 8), _batches(X[32:], y[32:], 4)
    calls: list[tuple[bool, bool]] = []

    def loss_fn(model, batch):
        calls.append((any(batch[0] is v[0] for v in val), model[1].training))
        return nn.functional.mse_loss(model(batch[0]), batch[1])

    torch.manual_seed(5)
    result = _run(
        model, optimizer, train, loss_fn=loss_fn, val_loader=val, num_val_batches=2, end_lr=0.1, num_steps=6
    )
    assert calls == [(False, True), (True, False), (True, False)] * 6
    assert not model.training and not model[1].training
    assert result.info["loss_source"] == "validation" and result.info["num_val_batches"] == 2

    # Reference: a training step (same dropout masks), then the mean loss of the first two validation batches.
    ref_optimizer = torch.optim.SGD(reference.parameters(), lr=0.1)
    expected = []
    torch.manual_seed(5)
    for lr, batch in zip(result.lrs, itertools.cycle(train)):
        reference.train()
        ref_optimizer.param_groups[0]["lr"] = float(lr)
        ref_optimizer.zero_grad()
        nn.functional.mse_loss(reference(batch[0]), batch[1]).backward()
        ref_optimizer.step()
        reference.eval()
        with torch.no_grad():
            expected.append(float(sum(nn.functional.mse_loss(reference(v[0]), v[1]) for v in val[:2]) / 2))
    assert result.losses.tolist() == expected


_DEVICES = [
    "cpu",
    pytest.param(
        "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
    ),
]


@pytest.mark.parametrize("device", _DEVICES)
def test_reads_losses_once_per_chunk(monkeypatch, device):
    counts = dict.fromkeys(["item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__"], 0)
    for name in counts:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            counts[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    X, y = _regression(n=64)
    X, y = X.to(device), y.to(device)
    model = _mlp().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = _capture(model, optimizer)
    steps = []

    def loss_fn(model, batch):
        steps.append(1)
        return nn.functional.mse_loss(model(batch[0]), batch[1])

    result = _run(
        model,
        optimizer,
        _batches(X, y, 16),
        loss_fn=loss_fn,
        end_lr=1e-2,
        num_steps=20,
        sync_every=8,
        max_grad_norm=1.0,
    )
    assert result.stop_reason == "completed" and len(steps) == 20
    assert counts == {**dict.fromkeys(counts, 0), "tolist": 3}
    assert result.info["device"] == str(next(model.parameters()).device)
    _assert_same(before, _capture(model, optimizer))

    # A stop is seen at the end of its chunk; the steps run past it are not recorded.
    counts.update(dict.fromkeys(counts, 0))
    steps.clear()
    diverging = _failing_loss("nan@10")
    result = _run(
        model, optimizer, _batches(X, y, 16), loss_fn=lambda m, b: (steps.append(1), diverging(m, b))[1]
    )
    assert (result.stop_reason, len(result), len(steps)) == ("non-finite", 11, 16)
    assert counts == {**dict.fromkeys(counts, 0), "tolist": 2}


def test_progress_bar(capsys, monkeypatch):
    X, y = _regression(n=16)
    model = nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    _run(model, optimizer, [(X, y)], num_steps=5, progress=True)
    assert capsys.readouterr().err == ""  # stderr is no terminal here: no bar for a log
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    _run(model, optimizer, [(X, y)], num_steps=5, progress=True)
    assert "LR range test" in capsys.readouterr().err
    _run(model, optimizer, [(X, y)], num_steps=5, progress=False)
    assert capsys.readouterr().err == ""


def test_find_lr_and_info():
    X, y = _regression(n=64)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=16)
    model = nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    result = find_lr(model, optimizer, loader, nn.MSELoss(), max_grad_norm=5.0, num_steps=10, progress=False)
    assert dict(result.info) == {
        "framework": "pytorch",
        "torch_version": str(torch.__version__),
        "device": "cpu",
        "batch_size": 16,
        "accumulation_steps": 1,
        "world_size": 1,
        "loss_source": "training",
        "num_val_batches": None,
        "loader_cycled": True,
        "loader_passes": 3,
        "param_group_lr_ratios": [1.0],
        "amp_dtype": None,
        "grad_scaler": False,
        "max_grad_norm": 5.0,
        "sync_every": 8,
        "steps_per_epoch": 4,
        "plan": {"schedule": "constant", "total_steps": None, "source": "default"},
        "optimizer": "SGD",
        "momentum": 0.0,
    }
    assert lrscout.RangeTestResult.from_dict(result.to_dict()) == result


# --- argument checks ----------------------------------------------------------------


def _model_and_optimizer() -> tuple[nn.Module, Any]:
    model = nn.Linear(4, 1)
    return model, torch.optim.SGD(model.parameters(), lr=0.1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"model": "net"}, TypeError, "LRFinder: model must be a torch.nn.Module; got 'net'"),
        ({"optimizer": None}, TypeError, "LRFinder: optimizer must be a torch.optim.Optimizer; got None"),
        (
            {"criterion": None},
            TypeError,
            "LRFinder: criterion must be given when loss_fn is None; got None. Pass",
        ),
        ({"loss_fn": lambda m, b: 0}, TypeError, "LRFinder: loss_fn must be None when criterion is given"),
        ({"criterion": 3}, TypeError, "LRFinder: criterion must be callable; got 3"),
        ({"criterion": None, "loss_fn": "f"}, TypeError, "LRFinder: loss_fn must be callable; got 'f'"),
        ({"device": 3}, TypeError, "LRFinder: device must be a torch.device"),
        ({"device": "gpu!"}, ValueError, "LRFinder: device must be a valid device string"),
        ({"amp_dtype": torch.float32}, ValueError, "LRFinder: amp_dtype must be None, torch.bfloat16"),
        ({"amp_dtype": "bf16"}, TypeError, "LRFinder: amp_dtype must be None, torch.bfloat16"),
        ({"grad_scaler": True}, TypeError, "LRFinder: grad_scaler must be a torch.amp.GradScaler"),
        ({"max_grad_norm": 0.0}, ValueError, "LRFinder: max_grad_norm must be positive; got 0.0"),
        ({"max_grad_norm": "1"}, TypeError, "LRFinder: max_grad_norm must be a real number"),
        ({"cache_dir": 3}, TypeError, "LRFinder: cache_dir must be a path or None; got 3"),
        (
            {"cache_dir": "/no/such/dir"},
            ValueError,
            "LRFinder: cache_dir must be an existing directory.*Create",
        ),
    ],
)
def test_finder_checks_its_arguments(kwargs, error, match):
    model, optimizer = _model_and_optimizer()
    arguments = {"model": model, "optimizer": optimizer, "criterion": nn.MSELoss(), **kwargs}
    with pytest.raises(error, match=match):
        LRFinder(arguments.pop("model"), arguments.pop("optimizer"), arguments.pop("criterion"), **arguments)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"train_loader": 5}, TypeError, "LRFinder.range_test: train_loader must be an iterable of batches"),
        ({"val_loader": 5}, TypeError, "LRFinder.range_test: val_loader must be an iterable"),
        (
            {"val_loader": iter([])},
            TypeError,
            "LRFinder.range_test: val_loader must be re-iterable.*not an iterator",
        ),
        (
            {"num_val_batches": 2},
            ValueError,
            "LRFinder.range_test: num_val_batches must be None without val_loader",
        ),
        (
            {"val_loader": [], "num_val_batches": 0},
            ValueError,
            "LRFinder.range_test: num_val_batches must be an",
        ),
        ({"start_lr": 0.0}, ValueError, "LRFinder.range_test: start_lr must be positive; got 0.0"),
        ({"start_lr": "1"}, TypeError, "LRFinder.range_test: start_lr must be a real number"),
        (
            {"end_lr": 1e-8},
            ValueError,
            r"LRFinder.range_test: end_lr must be greater than start_lr \(1e-07\)",
        ),
        ({"num_steps": 1}, ValueError, "LRFinder.range_test: num_steps must be an integer >= 2; got 1"),
        ({"mode": "cosine"}, ValueError, "LRFinder.range_test: mode must be one of 'exponential', 'linear'"),
        (
            {"accumulation_steps": 0},
            ValueError,
            "LRFinder.range_test: accumulation_steps must be an integer >= 1",
        ),
        ({"sync_every": 0}, ValueError, "LRFinder.range_test: sync_every must be an integer >= 1; got 0"),
        ({"progress": 1}, TypeError, "LRFinder.range_test: progress must be True or False; got 1"),
        ({"smoothing": 1.0}, ValueError, "LRFinder.range_test: smoothing must be < 1.0"),
        ({"divergence_factor": 1.0}, ValueError, "LRFinder.range_test: divergence_factor must be > 1.0"),
        (
            {"stop_on_divergence": None},
            TypeError,
            "LRFinder.range_test: stop_on_divergence must be True or False",
        ),
    ],
)
def test_range_test_checks_its_arguments_before_anything_runs(kwargs, error, match):
    model, optimizer = _model_and_optimizer()
    X, y = _regression(n=8)
    arguments = {"train_loader": [(X, y)], "progress": False, **kwargs}
    calls = []
    finder = LRFinder(
        model, optimizer, loss_fn=lambda m, b: calls.append(1) or nn.functional.mse_loss(m(b[0]), b[1])
    )
    with pytest.raises(error, match=match):
        finder.range_test(arguments.pop("train_loader"), **arguments)
    assert calls == []


@pytest.mark.parametrize(
    ("setup", "error", "match"),
    [
        (
            # A negative rate is refused; 0 (a warm-up scheduler's first step) is accepted below.
            "negative_lr",
            ValueError,
            r"optimizer.param_groups\[0\]\['lr'\] must be >= 0.0; got -0.1. The ramp keeps",
        ),
        (
            "bad_batch",
            TypeError,
            r"train_loader must be a list of \(inputs, targets\) batches when criterion is given; got 'a "
            r"list of 1 whose first entry is an int'",
        ),
        ("vector_loss", TypeError, r"criterion must return a scalar tensor; got shape \(2, 1\)"),
        ("float_loss", TypeError, "loss_fn must return a scalar tensor; got float"),
        ("empty_val", ValueError, "val_loader must yield at least one batch; got an empty list"),
    ],
)
def test_errors_found_while_running(setup, error, match):
    model, optimizer = _model_and_optimizer()
    before = _capture(model, optimizer)
    X, y = _regression(n=2)
    loader: Any = [(X, y)]
    criterion: Any = nn.MSELoss()
    kwargs: dict[str, Any] = {}
    if setup == "negative_lr":
        optimizer.param_groups[0]["lr"] = -0.1
        before = _capture(model, optimizer)
    elif setup == "bad_batch":
        loader = [3]
    elif setup == "vector_loss":
        criterion = nn.MSELoss(reduction="none")
    elif setup == "float_loss":
        criterion, kwargs["loss_fn"] = None, lambda m, b: 1.0
    elif setup == "empty_val":
        kwargs["val_loader"] = []
    finder_kw = {"loss_fn": kwargs.pop("loss_fn")} if "loss_fn" in kwargs else {}
    with pytest.raises(error, match=match):
        LRFinder(model, optimizer, criterion, **finder_kw).range_test(loader, progress=False, **kwargs)
    _assert_same(before, _capture(model, optimizer))


def test_find_lr_extends_the_ramp_until_the_loss_turns_up():
    # Full-batch least squares diverges past lr = 2 / lambda_max of X^T X / n (MSELoss has no 1/2:
    # its Hessian is 2 X^T X / n); the planned ramp stops far below that, at 1e-2.
    torch.manual_seed(0)
    X = torch.randn(64, 3)
    y = X @ torch.tensor([[1.0], [-2.0], [0.5]])
    model = nn.Linear(3, 1, bias=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    limit = 1.0 / float(torch.linalg.eigvalsh(X.T @ X / 64).max())
    result = find_lr(model, optimizer, [(X, y)], nn.MSELoss(), start_lr=1e-5, end_lr=1e-2, progress=False)
    assert result.info["extension"]["planned_end_lr"] == 1e-2 and result.info["extension"]["extra_steps"] > 0
    assert result.stop_reason in ("diverged", "non-finite") and result.lrs[-1] > limit
    assert result.lrs[99] == 1e-2
    ratios = result.lrs[1:] / result.lrs[:-1]
    assert np.allclose(ratios, ratios[0], rtol=1e-9)
    assert result.suggestion.lr < limit


def test_a_warm_up_schedulers_zero_learning_rate_is_accepted():
    # Hugging Face's linear warm-up sets every group's lr to 0 at step 0; the ramp sets absolute rates.
    torch.manual_seed(0)
    X = torch.randn(32, 3)
    y = X @ torch.tensor([[1.0], [-2.0], [0.5]])
    model = nn.Linear(3, 1)
    optimizer = torch.optim.SGD([{"params": [model.weight]}, {"params": [model.bias], "lr": 0.0}], lr=0.1)
    warmup = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: step / 10)
    assert [group["lr"] for group in optimizer.param_groups] == [0.0, 0.0]
    result = find_lr(model, optimizer, [(X, y)], nn.MSELoss(), num_steps=20, progress=False, extend=False)
    assert result.info["param_group_lr_ratios"] == [1.0, 0.0]  # the schedulers' base rates 0.1 and 0
    assert [group["lr"] for group in optimizer.param_groups] == [0.0, 0.0]
    assert warmup.last_epoch == 0


def test_a_loaders_own_generator_comes_back(tmp_path):
    # DataLoader(generator=g) draws the shuffle from g: a second test must see the same batches.
    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(64, 3), torch.randn(64, 1))
    generator = torch.Generator().manual_seed(7)
    loader = torch.utils.data.DataLoader(data, batch_size=8, shuffle=True, generator=generator)
    state = generator.get_state()
    model = nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    first = find_lr(model, optimizer, loader, nn.MSELoss(), num_steps=30, progress=False)
    assert torch.equal(generator.get_state(), state)
    again = find_lr(model, optimizer, loader, nn.MSELoss(), num_steps=30, progress=False)
    assert again == first


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_iter": 100}, r"num_iter is torch-lr-finder's name; lrscout calls it num_steps"),
        ({"step_mode": "exp"}, r"step_mode is torch-lr-finder's name; lrscout calls it mode"),
        ({"diverge_th": 5}, r"lrscout calls it divergence_factor"),
        ({"epoch": 3}, r"unexpected argument 'epoch'"),
    ],
)
def test_peer_argument_names_get_lrscouts_name(kwargs, match):
    model = nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(lrscout.InvalidArgumentError, match=match):
        find_lr(model, optimizer, [(torch.randn(4, 3), torch.randn(4, 1))], nn.MSELoss(), **kwargs)


def test_a_dict_batch_with_a_criterion_asks_for_loss_fn():
    model = nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    batch = {"inputs": torch.randn(4, 3), "labels": torch.randn(4, 1)}
    with pytest.raises(lrscout.InvalidArgumentError, match=r"Pass loss_fn\(model, batch\)"):
        find_lr(model, optimizer, [batch], nn.MSELoss(), progress=False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_a_device_this_build_cannot_use_is_refused_up_front():
    model = nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(lrscout.InvalidArgumentError, match=r"LRFinder: device must be a device this"):
        LRFinder(model, optimizer, nn.MSELoss(), device="cuda")


def test_a_fastai_optim_wrapper_is_unwrapped():
    import types

    model = nn.Linear(3, 1)
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    finder = LRFinder(model, types.SimpleNamespace(opt=sgd), nn.MSELoss())
    assert finder.optimizer is sgd
    result = finder.range_test([(torch.randn(8, 3), torch.randn(8, 1))], num_steps=10, progress=False)
    assert len(result) == 10 and sgd.param_groups[0]["lr"] == 0.1


class _Counting(nn.Module):
    """A linear model that counts its forward passes: a refusal up front runs none."""

    def __init__(self, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 1, dtype=dtype)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        out: torch.Tensor = self.layer(x)
        return out


def _lbfgs(model: nn.Module) -> Any:
    return torch.optim.LBFGS(model.parameters())


_X, _Y = _regression(n=16)
_PAIRS = [(_X[:8], _Y[:8]), (_X[8:], _Y[8:])]

# What the test could only fail on after training, or never finish: each refused before any step.
UP_FRONT = [
    ("refine empty", {"refine": []}, r"refine must yield at least one batch; got an empty list"),
    (
        "refine [X_val, y_val]",
        {"refine": [_X, _Y]},
        r"refine must be a list of \(inputs, targets\) batches when criterion is given; got 'a list of "
        r"2 whose first entry is a tensor of shape \(16, 4\)'. For one batch \(X, y\), pass "
        r"refine=\[\(X, y\)\]",
    ),
    ("refine of ints", {"refine": [1, 2]}, r"refine must be a list of \(inputs, targets\) batches"),
    (
        "refine of dicts",
        {"refine": [{"x": _X, "y": _Y}]},
        r"refine must be a list of \(inputs, targets\) batches.*a dict",
    ),
    (
        "refine empty DataLoader",
        {"refine": torch.utils.data.DataLoader(torch.utils.data.TensorDataset(_X[:0], _Y[:0]), batch_size=4)},
        r"refine must yield at least one batch; got an empty DataLoader",
    ),
    ("val_loader empty", {"val_loader": []}, r"val_loader must yield at least one batch; got an empty list"),
    ("val_loader [X, y]", {"val_loader": [_X, _Y]}, r"val_loader must be a list of \(inputs, targets\)"),
    (
        "train_loader [X, y]",
        {"train_loader": [_X, _Y]},
        r"train_loader must be a list of \(inputs, targets\) batches.*pass train_loader=\[\(X, y\)\]",
    ),
    (
        "train_loader drops every batch",
        {
            "train_loader": torch.utils.data.DataLoader(
                torch.utils.data.TensorDataset(_X, _Y), batch_size=32, drop_last=True
            )
        },
        r"train_loader must yield at least one batch; got an empty DataLoader",
    ),
    (
        "end_lr past float32",
        {"start_lr": 1e30, "end_lr": 1e40},
        r"end_lr must be at most 3.403e\+38; got 1e\+40. The optimizer's parameters are float32",
    ),
    ("end_lr 1e308", {"end_lr": 1e308}, r"end_lr must be at most 3.403e\+38"),
    (
        "end_lr past float16",
        {"end_lr": 1e5, "dtype": torch.float16},
        r"end_lr must be at most 6.55e\+04.*float16",
    ),
    (
        "end_lr = nextafter(start_lr)",
        {"start_lr": 1e-3, "end_lr": math.nextafter(1e-3, 1.0)},
        r"end_lr must be far enough above start_lr \(0.001\) for 100 distinct learning rates",
    ),
    (
        "LBFGS",
        {"optimizer": _lbfgs},
        r"LRFinder: optimizer must be an optimizer whose step\(\) runs without a closure; got 'LBFGS",
    ),
]


@pytest.mark.parametrize(("change", "match"), [row[1:] for row in UP_FRONT], ids=[row[0] for row in UP_FRONT])
def test_refused_before_any_step(change, match):
    change = dict(change)
    model = _Counting(change.pop("dtype", torch.float32))
    make = change.pop("optimizer", lambda m: torch.optim.SGD(m.parameters(), lr=0.1))
    optimizer = make(model)
    loader = change.pop("train_loader", _PAIRS)
    with pytest.raises(lrscout.InvalidArgumentError, match=match):
        find_lr(model, optimizer, loader, nn.MSELoss(), progress=False, **change)
    assert model.calls == 0


def test_a_model_on_the_meta_device_is_refused():
    model = nn.Linear(4, 1, device="meta")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(
        lrscout.InvalidArgumentError, match=r"LRFinder: model must be a model whose .*meta device"
    ):
        find_lr(model, optimizer, _PAIRS, nn.MSELoss(), progress=False)
    buffered = nn.BatchNorm1d(4)
    buffered.register_buffer("scale", torch.ones(4, device="meta"))
    with pytest.raises(lrscout.InvalidArgumentError, match=r"meta device \(e.g. one of shape \(4,\)\)"):
        LRFinder(buffered, torch.optim.SGD(buffered.parameters(), lr=0.1), nn.MSELoss())


@pytest.mark.parametrize("loss", [torch.tensor(True), torch.tensor([False])])
def test_a_boolean_loss_is_refused(loss):
    model, optimizer = _model_and_optimizer()
    with pytest.raises(lrscout.InvalidArgumentError, match=r"a boolean, not a number"):
        lrscout.range_test(lambda lr: loss, num_steps=3)
    del model, optimizer


@pytest.mark.parametrize("optimizer_class", [torch.optim.SGD, torch.optim.Adam])
def test_the_extension_stops_at_the_largest_rate_the_parameters_hold(optimizer_class):
    # A loss that keeps falling whatever the rate: the ramp extends toward float32's largest
    # value. It stops short of it, and Adam (lr / (1 - beta1) overflows first) ends the test
    # on a non-finite loss instead of torch's "cannot be converted ... without overflow".
    model = nn.Linear(4, 1)
    optimizer = optimizer_class(model.parameters(), lr=0.1)
    before = _capture(model, optimizer)
    calls = [0]

    def loss_fn(m: nn.Module, batch: Any) -> torch.Tensor:
        calls[0] += 1
        return (m(batch[0]) * 0.0).sum() + 1.0 / calls[0]

    result = find_lr(
        model, optimizer, _PAIRS, loss_fn=loss_fn, start_lr=1e30, end_lr=1e36, num_steps=20, progress=False
    )
    assert result.lrs[-1] <= float(torch.finfo(torch.float32).max) and len(result) > 20
    assert result.stop_reason == ("completed" if optimizer_class is torch.optim.SGD else "non-finite")
    _assert_same(before, _capture(model, optimizer))


def test_a_data_pipeline_that_draws_from_the_global_generators_leaves_them_as_they_were():
    import random

    class Augmented(torch.utils.data.Dataset[Any]):
        def __len__(self) -> int:
            return 16

        def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
            noise = float(np.random.normal()) + random.random()  # noqa: NPY002 (the global state)
            return _X[i] + 0.01 * noise + 0.01 * torch.randn(()), _Y[i]

    loader = torch.utils.data.DataLoader(Augmented(), batch_size=4, shuffle=True)
    model, optimizer = _model_and_optimizer()
    states = (random.getstate(), np.random.get_state()[1].tobytes(), torch.get_rng_state())  # noqa: NPY002
    find_lr(model, optimizer, loader, nn.MSELoss(), num_steps=12, progress=False)
    lrscout.pytorch.noise_scale(model, Augmented(), nn.MSELoss(), small_batch=2, big_batch=8, num_pairs=4)
    assert random.getstate() == states[0]
    assert np.random.get_state()[1].tobytes() == states[1]  # noqa: NPY002
    assert torch.equal(torch.get_rng_state(), states[2])


@pytest.mark.parametrize(
    ("loader", "expected"),
    [
        ("list", 16),
        ("dict batches", 16),
        ("batch_sampler", 8),
        ("generator", 16),
    ],
)
def test_batch_size_is_read_from_the_first_batch_when_the_loader_has_none(loader, expected):
    X, y = _regression(n=64)
    if loader == "list":
        data: Any = _batches(X, y, 16)
    elif loader == "dict batches":
        data = [{"x": X[i : i + 16], "y": y[i : i + 16]} for i in range(0, 64, 16)]
    elif loader == "batch_sampler":  # DataLoader.batch_size is None with a batch_sampler
        sampler = torch.utils.data.BatchSampler(torch.utils.data.SequentialSampler(range(64)), 8, False)
        data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_sampler=sampler)
        assert data.batch_size is None
    else:
        data = iter(_batches(X, y, 16))
    model = nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    kwargs: dict[str, Any] = {"num_steps": 4}
    if loader == "dict batches":
        kwargs["loss_fn"] = lambda model, batch: nn.functional.mse_loss(model(batch["x"]), batch["y"])
    result = _run(model, optimizer, data, **kwargs)
    assert result.info["batch_size"] == expected
    # ... which the default rule reads, as for a DataLoader of that batch size.
    loader_of_same = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=expected)
    assert result.info["batch_size"] == loader_of_same.batch_size


@pytest.mark.parametrize(
    ("name", "pointer"),
    [
        ("plot", r"result\.plot\(\)"),
        ("reset", r"puts the model and the optimizer back itself"),
        ("history", r"result\.lrs.*result\.smoothed_losses"),
        ("best_loss", r"result\.smoothed_losses"),
    ],
)
def test_torch_lr_finder_names_point_to_lrscouts(name, pointer):
    model = nn.Linear(4, 1)
    finder = LRFinder(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.MSELoss())
    with pytest.raises(AttributeError, match=rf"LRFinder has no {name} \(torch-lr-finder's\): .*{pointer}"):
        getattr(finder, name)
    assert not hasattr(finder, name)
    with pytest.raises(AttributeError, match=r"'LRFinder' object has no attribute 'plott'"):
        finder.plott  # noqa: B018
    assert copy.copy(finder).model is model  # copy and pickle find what they look for
