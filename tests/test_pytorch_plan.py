"""The plan a PyTorch scheduler holds, and a test that runs with the optimizer's own momentum."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from lrscout import InvalidArgumentError  # noqa: E402
from lrscout._plan import Plan  # noqa: E402
from lrscout.pytorch import find_lr  # noqa: E402
from lrscout.pytorch._plan import scheduler_plan  # noqa: E402

sched = torch.optim.lr_scheduler


def _optimizer(**kwargs):
    return torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1, **kwargs)


def _hf_linear(optimizer, warmup, total):
    """Hugging Face's get_linear_schedule_with_warmup, written out."""

    def factor(step):
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return sched.LambdaLR(optimizer, factor)


def _hf_cosine(optimizer, warmup, total):
    """Hugging Face's get_cosine_schedule_with_warmup, written out (it rises again past the end)."""

    def factor(step):
        if step < warmup:
            return step / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        return max(0.0, 0.5 * (1.0 + np.cos(np.pi * progress)))

    return sched.LambdaLR(optimizer, factor)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda o: sched.OneCycleLR(o, max_lr=0.1, total_steps=777), ("one_cycle", 777)),
        (lambda o: sched.CosineAnnealingLR(o, T_max=321), ("cosine", 321)),
        (lambda o: _hf_linear(o, 0, 5000), ("linear", 5000)),
        (lambda o: _hf_linear(o, 100, 12345), ("linear", 12345)),
        (lambda o: _hf_cosine(o, 30, 300), ("cosine", 300)),
        (lambda o: _hf_cosine(o, 1000, 3_000_000), ("cosine", 3_000_000)),
        (lambda o: sched.LambdaLR(o, lambda step: min(1.0, (step + 1) / 100)), ("constant", None)),
        (lambda o: sched.LinearLR(o, start_factor=0.01, total_iters=50), ("constant", None)),
        (
            lambda o: sched.SequentialLR(
                o,
                [sched.LinearLR(o, 0.01, total_iters=50), sched.CosineAnnealingLR(o, T_max=950)],
                milestones=[50],
            ),
            ("cosine", 1000),
        ),
    ],
)
def test_a_schedulers_plan_is_read_without_stepping_it(make, expected):
    optimizer = _optimizer()
    scheduler = make(optimizer)
    before = (scheduler.state_dict(), [group["lr"] for group in optimizer.param_groups])
    plan = scheduler_plan(scheduler, source="scheduler")
    assert plan == Plan(*expected, "scheduler")
    after = (scheduler.state_dict(), [group["lr"] for group in optimizer.param_groups])
    assert repr(after) == repr(before)


@pytest.mark.parametrize(
    "make",
    [
        lambda o: sched.StepLR(o, step_size=10),
        lambda o: sched.ExponentialLR(o, gamma=0.9),
        lambda o: sched.LambdaLR(o, lambda step: 0.9**step),
        lambda o: sched.LambdaLR(o, lambda step: 1.0 if step < 10 else [][step]),  # fails past 10
        lambda o: sched.MultiplicativeLR(o, lambda step: 0.95),
    ],
)
def test_schedules_that_are_none_of_lrscouts_give_no_plan(make):
    assert scheduler_plan(make(_optimizer()), source="scheduler") is None


def _data():
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(256, 4, generator=generator)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).long()
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=32)


def test_the_test_runs_at_the_optimizers_momentum_not_the_cycles_first_value():
    torch.manual_seed(0)
    loader = _data()
    model = nn.Linear(4, 2)
    plain = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    oracle = find_lr(model, plain, loader, nn.CrossEntropyLoss(), progress=False)
    cycled = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = sched.OneCycleLR(cycled, max_lr=0.1, total_steps=800)
    assert cycled.param_groups[0]["momentum"] == 0.95  # the cycle's first value
    result = find_lr(model, cycled, loader, nn.CrossEntropyLoss(), scheduler=scheduler, progress=False)
    assert np.array_equal(result.losses, oracle.losses)  # the same test, step for step
    assert result.info["momentum"] == 0.9
    assert cycled.param_groups[0]["momentum"] == 0.95  # the scheduler's state is left as it was
    assert result.info["plan"] == {"schedule": "one_cycle", "total_steps": 800, "source": "scheduler"}
    assert result.suggestion.schedule == "one_cycle" and result.suggestion.total_steps == 800


def test_plan_arguments_win_and_epochs_count_the_loaders_steps():
    torch.manual_seed(0)
    loader = _data()  # 8 batches
    model = nn.Linear(4, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = sched.CosineAnnealingLR(optimizer, T_max=100)
    result = find_lr(
        model,
        optimizer,
        loader,
        nn.CrossEntropyLoss(),
        scheduler=scheduler,
        epochs=5,
        accumulation_steps=2,
        num_steps=20,
        progress=False,
    )
    assert result.info["plan"] == {"schedule": "cosine", "total_steps": 20, "source": "argument, scheduler"}
    assert result.info["steps_per_epoch"] == 4


def test_epochs_need_a_loader_with_a_length():
    model = nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    batches = iter([(torch.randn(8, 4), torch.randint(0, 2, (8,)))] * 10)
    with pytest.raises(InvalidArgumentError, match=r"LRFinder\.range_test: epochs must be given with data"):
        find_lr(model, optimizer, batches, nn.CrossEntropyLoss(), epochs=3, progress=False)
