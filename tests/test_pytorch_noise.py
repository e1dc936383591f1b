"""lrscout.pytorch.noise_scale: against the NumPy model, on every kind of data, restoring the model."""

from __future__ import annotations

import numpy as np
import pytest

from lrscout.models import LinearRegressor, noise_scale


def _regression(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = X @ [1.0, -2.0, 0.5, 0.3] + 0.7 * rng.normal(size=n)
    return X, y


def _torch_linear(model, torch):
    linear = torch.nn.Linear(model.coef_.shape[-1], 1).double()
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(np.atleast_2d(model.coef_)))
        linear.bias.fill_(float(model.intercept_))
    return linear


def _half_squared_error(outputs, targets):
    # LinearRegressor's loss, (1/2m) sum |r|^2; torch's MSELoss has no 1/2.
    return 0.5 * ((outputs - targets) ** 2).sum(dim=1).mean()


def test_pytorch_agrees_with_the_numpy_model():
    torch = pytest.importorskip("torch")
    from lrscout.pytorch import noise_scale as torch_noise_scale

    X, y = _regression(300)
    model = LinearRegressor(lr=0.05, batch_size=None, epochs=5).fit(X, y)
    linear = _torch_linear(model, torch)
    data = (torch.tensor(X), torch.tensor(y)[:, None])
    settings = dict(small_batch=8, big_batch=64, num_pairs=60, random_state=3)
    ours = torch_noise_scale(linear, data, _half_squared_error, **settings)
    numpy = noise_scale(model, X, y, method="two-batch", **settings)
    # Same seed, same batches: the same estimate to rounding.
    np.testing.assert_allclose(ours.pair_trace_cov, numpy.pair_trace_cov, rtol=1e-10)
    np.testing.assert_allclose(ours.pair_grad_norm_sq, numpy.pair_grad_norm_sq, rtol=1e-9)
    assert ours.interval == pytest.approx(numpy.interval, rel=1e-9)
    exact = noise_scale(model, X, y)
    low, high = ours.interval
    assert low <= exact.b_simple <= high
    assert ours.info["framework"] == "pytorch" and ours.n_samples == 300
    # MSELoss doubles every gradient: |G|^2 and tr(Sigma) 4x, B_simple unchanged.
    mse = torch_noise_scale(linear, data, torch.nn.MSELoss(), **settings)
    assert mse.grad_norm_sq == pytest.approx(4 * ours.grad_norm_sq, rel=1e-10)
    assert mse.b_simple == pytest.approx(ours.b_simple, rel=1e-10)


def test_pytorch_loader_and_dataset_inputs():
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, TensorDataset

    from lrscout.pytorch import noise_scale as torch_noise_scale

    X, y = _regression(256)
    model = LinearRegressor(lr=0.05, batch_size=None, epochs=3).fit(X, y)
    linear = _torch_linear(model, torch)
    dataset = TensorDataset(torch.tensor(X), torch.tensor(y)[:, None])
    by_dataset = torch_noise_scale(
        linear, dataset, _half_squared_error, small_batch=8, big_batch=64, num_pairs=10, random_state=3
    )
    by_tensors = torch_noise_scale(
        linear,
        dataset.tensors,
        _half_squared_error,
        small_batch=8,
        big_batch=64,
        num_pairs=10,
        random_state=3,
    )
    np.testing.assert_allclose(by_dataset.pair_trace_cov, by_tensors.pair_trace_cov, rtol=1e-12)
    # A loader: its batches are the big batches; the short last one (256 = 3 * 80 + 16) is skipped.
    loader = DataLoader(dataset, batch_size=80, shuffle=True, generator=torch.Generator().manual_seed(0))
    result = torch_noise_scale(
        linear, loader, loss_fn=lambda m, b: _half_squared_error(m(b[0]), b[1]), small_batch=16, num_pairs=8
    )
    assert (result.big_batch, result.small_batch, result.n_samples) == (80, 16, 256)
    assert result.info["batches_read"] == 8 and result.info["skipped_batches"] == 2
    exact = noise_scale(model, X, y)
    assert result.b_simple == pytest.approx(exact.b_simple, rel=0.5)


def test_pytorch_restores_the_model_and_rng_bitwise():
    torch = pytest.importorskip("torch")
    from torch import nn

    from lrscout.pytorch import noise_scale as torch_noise_scale

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.Dropout(0.3), nn.ReLU(), nn.Linear(8, 3))
    model.train()
    model[2].eval()  # a mixed train/eval state, which must come back as it was
    model[0].weight.grad = torch.ones_like(model[0].weight)
    X = torch.randn(128, 5)
    y = torch.randint(0, 3, (128,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    grad = model[0].weight.grad
    rng = torch.get_rng_state()
    result = torch_noise_scale(
        model, (X, y), nn.CrossEntropyLoss(), small_batch=8, big_batch=32, num_pairs=4, random_state=0
    )
    assert result.num_pairs == 4
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert [m.training for m in model.modules()] == modes
    assert model[0].weight.grad is grad and torch.equal(grad, torch.ones_like(grad))
    assert torch.equal(torch.get_rng_state(), rng)

    calls = []

    def failing(model_, batch):
        calls.append(1)
        if len(calls) > 5:
            raise RuntimeError("boom")
        return nn.functional.cross_entropy(model_(batch[0]), batch[1])

    with pytest.raises(RuntimeError, match="boom"):
        torch_noise_scale(model, (X, y), loss_fn=failing, small_batch=8, big_batch=32, num_pairs=4)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert [m.training for m in model.modules()] == modes
    assert torch.equal(torch.get_rng_state(), rng)


def test_pytorch_argument_checks():
    torch = pytest.importorskip("torch")
    from lrscout.pytorch import noise_scale as torch_noise_scale

    model = torch.nn.Linear(2, 1)
    data = (torch.randn(20, 2), torch.randn(20, 1))
    mse = torch.nn.MSELoss()
    cases = [
        (lambda: torch_noise_scale("net", data, mse, small_batch=2), TypeError, r"model must be a torch.nn"),
        (
            lambda: torch_noise_scale(model, data, small_batch=2),
            TypeError,
            r"criterion must be given when loss_fn is None",
        ),
        (lambda: torch_noise_scale(model, data, mse, big_batch=8), ValueError, r"small_batch must be given"),
        (lambda: torch_noise_scale(model, data, mse, small_batch=2), ValueError, r"big_batch must be given"),
        (
            lambda: torch_noise_scale(model, data, mse, small_batch=4, big_batch=40),
            ValueError,
            r"big_batch must be an integer in \[5, 20\]; got 40",
        ),
        (
            lambda: torch_noise_scale(model, [data], mse, small_batch=4, big_batch=8),
            ValueError,
            r"big_batch must be None when data is a loader",
        ),
        (
            lambda: torch_noise_scale(model, data, nn_sum(torch), small_batch=4, big_batch=8),
            ValueError,
            r"criterion must return a scalar tensor; got shape \(4, 1\)",
        ),
        (
            lambda: torch_noise_scale(model, [data] * 3, mse, small_batch=40),
            ValueError,
            r"small_batch must be smaller than the big batch \(20\)",
        ),
    ]
    for call, error, match in cases:
        with pytest.raises(error, match=match):
            call()


def nn_sum(torch):
    return lambda outputs, targets: (outputs - targets) ** 2


@pytest.mark.parametrize("loss", ["vector", "float", "one_element"])
def test_a_loss_that_is_not_a_scalar_is_one_error_in_the_range_test_and_the_noise_scale(loss):
    torch = pytest.importorskip("torch")
    from lrscout import InvalidArgumentError
    from lrscout.pytorch import find_lr
    from lrscout.pytorch import noise_scale as torch_noise_scale

    model = torch.nn.Linear(2, 1)
    X, y = torch.randn(16, 2), torch.randn(16, 1)

    def loss_fn(model, batch):
        errors = (model(batch[0]) - batch[1]) ** 2
        return {"vector": errors, "float": 1.0, "one_element": errors.mean().reshape(1)}[loss]

    messages = []
    for call in (
        lambda: find_lr(
            model, torch.optim.SGD(model.parameters(), lr=0.1), [(X[:4], y[:4])], loss_fn=loss_fn
        ),
        lambda: torch_noise_scale(model, [(X, y)] * 3, loss_fn=loss_fn, small_batch=4),
    ):
        with pytest.raises(InvalidArgumentError) as raised:
            call()
        messages.append(str(raised.value).split(": ", 1))
    (where_lr, lr_message), (where_noise, noise_message) = messages
    assert (where_lr, where_noise) == ("LRFinder.range_test", "pytorch.noise_scale")
    shape = {"vector": "shape (4, 1)", "float": "float", "one_element": "shape (1,)"}[loss]
    assert lr_message == noise_message
    assert noise_message.startswith(f"loss_fn must return a scalar tensor; got {shape}.")
