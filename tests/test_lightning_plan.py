"""lrscout.lightning suggests the rate for the fit's plan: its scheduler, else its trainer's length."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pl = pytest.importorskip("lightning.pytorch")
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, IterableDataset, TensorDataset  # noqa: E402

import lrscout  # noqa: E402
from lrscout.lightning import LRFinder, find_lr  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings(r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"),
    pytest.mark.filterwarnings("ignore:The '.*dataloader' does not have many workers:UserWarning"),
    pytest.mark.filterwarnings(
        "ignore:The number of training batches .* is smaller than the logging interval"
    ),
]

sched = torch.optim.lr_scheduler


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _scheduler(kind: str, optimizer: Any, trainer: Any) -> Any:
    """What configure_optimizers returns besides the optimizer, in Lightning's several forms."""
    if kind == "none":
        return optimizer
    if kind == "one_cycle":  # a dict holding a config dict, stepped per optimizer step
        cycle = sched.OneCycleLR(optimizer, max_lr=0.05, total_steps=40)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": cycle, "interval": "step"}}
    if kind == "one_cycle_estimated":  # Lightning's own idiom: the fit's length
        cycle = sched.OneCycleLR(optimizer, max_lr=0.05, total_steps=trainer.estimated_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": cycle, "interval": "step"}}
    if kind == "one_cycle_per_epoch":  # a bare scheduler in the dict: Lightning steps it per epoch
        return {
            "optimizer": optimizer,
            "lr_scheduler": sched.OneCycleLR(optimizer, max_lr=0.05, total_steps=4),
        }
    if kind == "cosine_epochs":  # lists; Lightning steps a scheduler given so once per epoch
        return [optimizer], [sched.CosineAnnealingLR(optimizer, T_max=3)]
    if kind == "cosine_every_2_epochs":
        cosine = sched.CosineAnnealingLR(optimizer, T_max=3)
        return (
            [optimizer],
            [{"scheduler": cosine, "interval": "epoch", "frequency": 2}],
        )
    if kind == "linear_warmup":
        transformers = pytest.importorskip("transformers")
        warmup = transformers.get_linear_schedule_with_warmup(optimizer, 5, 60)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": warmup, "interval": "step"}}
    if kind == "cosine_warmup":
        transformers = pytest.importorskip("transformers")
        warmup = transformers.get_cosine_schedule_with_warmup(optimizer, 5, 70)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": warmup, "interval": "step"}}
    if kind == "step":
        return {"optimizer": optimizer, "lr_scheduler": sched.StepLR(optimizer, step_size=1, gamma=0.5)}
    raise AssertionError(kind)


class Model(pl.LightningModule):
    """A linear classifier; SGD with momentum 0.9 (or Adam) under the scheduler ``kind``."""

    def __init__(self, kind: str = "none", lr: float = 0.05, adam: bool = False) -> None:
        super().__init__()
        self.kind, self.lr, self.adam = kind, lr, adam
        self.layer = nn.Linear(4, 2)
        self.batches = 0

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        x, y = batch
        self.batches += 1
        return nn.functional.cross_entropy(self.layer(x), y)

    def configure_optimizers(self) -> Any:
        if self.adam:
            optimizer: Any = torch.optim.Adam(self.parameters(), lr=self.lr, betas=(0.8, 0.99))
        else:
            optimizer = torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)
        return _scheduler(self.kind, optimizer, self.trainer)


class Spy(pl.Callback):
    """Each optimizer step's learning rate and momentum (or betas[0]), as the optimizer holds them."""

    def __init__(self) -> None:
        self.lrs: list[float] = []
        self.momenta: list[float] = []

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        group = optimizer.param_groups[0]
        self.lrs.append(float(group["lr"]))
        self.momenta.append(float(group["betas"][0] if "betas" in group else group["momentum"]))


def _loader(n: int = 96, batch_size: int = 16) -> DataLoader:
    data = torch.Generator().manual_seed(1)
    X = torch.randn(n, 4, generator=data)
    y = (X[:, 0] - X[:, 1] > 0).long()
    return DataLoader(TensorDataset(X, y), batch_size=batch_size)


class Stream(IterableDataset):
    """Batches without a length."""

    def __iter__(self) -> Any:
        data = torch.Generator().manual_seed(2)
        for _ in range(20):
            X = torch.randn(8, 4, generator=data)
            yield X, (X[:, 0] > 0).long()


def _trainer(**kwargs: Any) -> Any:
    settings: dict[str, Any] = {
        "accelerator": "cpu",
        "max_epochs": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    return pl.Trainer(**{**settings, **kwargs})


def _fit(model: Any, *callbacks: Any, data: Any = None, **trainer: Any) -> Any:
    fit = _trainer(callbacks=list(callbacks), **trainer)
    fit.fit(model, train_dataloaders=_loader() if data is None else data)
    return fit


def _plan(result: Any) -> tuple[str, int | None, str]:
    plan = result.info["plan"]
    return plan["schedule"], plan["total_steps"], plan["source"]


TEST = {"start_lr": 1e-4, "num_steps": 20, "progress": False}


# The plan read from the fit ------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "trainer", "expected"),
    [
        # 6 batches an epoch; the scheduler says the length where it has one.
        ("one_cycle", {"max_epochs": 2}, ("one_cycle", 40)),
        ("cosine_epochs", {"max_epochs": 3}, ("cosine", 3 * 6)),
        ("cosine_every_2_epochs", {"max_epochs": 6}, ("cosine", 3 * 2 * 6)),
        ("linear_warmup", {"max_epochs": 2}, ("linear", 60)),
        ("cosine_warmup", {"max_epochs": 2}, ("cosine", 70)),
        # Else the trainer's: max_steps, or epochs of batches (accumulated ones are one step).
        ("none", {"max_steps": 50, "max_epochs": -1}, ("constant", 50)),
        ("none", {"max_epochs": 4}, ("constant", 24)),
        # 6 batches accumulated 4 at a time: Lightning steps on the last 2 too.
        ("none", {"max_epochs": 3, "accumulate_grad_batches": 4}, ("constant", 3 * 2)),
        ("one_cycle_per_epoch", {"max_epochs": 4}, ("one_cycle", 4 * 6)),
        ("none", {"max_epochs": 30, "max_steps": 7}, ("constant", 7)),
        ("step", {"max_epochs": 2}, ("constant", 12)),
        ("none", {"max_epochs": -1}, ("constant", None)),
    ],
)
def test_find_lr_reads_the_plan_of_the_trainers_fit(kind, trainer, expected):
    torch.manual_seed(0)
    result = find_lr(_trainer(**trainer), Model(kind), train_dataloaders=_loader(), **TEST)
    assert _plan(result) == (*expected, "lightning")
    assert result.info["steps_per_epoch"] == -(-6 // trainer.get("accumulate_grad_batches", 1))
    chosen = result.suggestion
    assert (chosen.schedule, chosen.total_steps) == expected
    # The rate is the rule's for that plan, not the constant rule's of unknown length.
    assert chosen.lr == result.suggest(schedule=expected[0], total_steps=expected[1]).lr


@pytest.mark.parametrize(
    ("kind", "trainer"),
    [
        ("none", {"max_epochs": 3}),
        ("none", {"max_epochs": 2, "accumulate_grad_batches": 4}),
        ("none", {"max_steps": 10, "max_epochs": -1}),
        ("cosine_epochs", {"max_epochs": 3}),
        ("one_cycle_estimated", {"max_epochs": 2, "limit_train_batches": 5}),
    ],
)
def test_the_plans_length_is_the_steps_the_fit_then_runs(kind, trainer):
    # The oracle is Lightning itself: the fit afterwards, with or without the callback.
    torch.manual_seed(0)
    result = find_lr(_trainer(**trainer), Model(kind), train_dataloaders=_loader(), **TEST)
    fit = _fit(Model(kind), **trainer)
    assert result.info["plan"]["total_steps"] == fit.global_step == fit.estimated_stepping_batches
    finder = LRFinder(**TEST, update_attr=False)
    fit = _fit(Model(kind), finder, **trainer)
    assert finder.result.info["plan"] == result.info["plan"]
    assert fit.global_step == finder.result.info["plan"]["total_steps"]


def test_a_one_cycle_sized_by_estimated_stepping_batches_is_the_users_fits_length():
    # In find_lr's own fit the property counts the user's trainer's fit, not the test's steps.
    torch.manual_seed(0)
    trainer = _trainer(max_epochs=5)
    result = find_lr(trainer, Model("one_cycle_estimated"), train_dataloaders=_loader(), **TEST)
    assert _plan(result) == ("one_cycle", 30, "lightning")
    assert trainer.state.fn is None  # the user's trainer was not used


def test_data_without_a_length_takes_max_steps_or_an_unknown_length():
    torch.manual_seed(0)
    stream = DataLoader(Stream(), batch_size=None)
    result = find_lr(_trainer(max_steps=15), Model(), train_dataloaders=stream, **TEST)
    assert _plan(result) == ("constant", 15, "lightning")
    assert result.info["steps_per_epoch"] is None
    # A scheduler stepped per epoch cannot count epochs of unknown length: the trainer's length.
    result = find_lr(_trainer(max_steps=15), Model("cosine_epochs"), train_dataloaders=stream, **TEST)
    assert _plan(result) == ("cosine", 15, "lightning")
    result = find_lr(_trainer(max_epochs=2), Model(), train_dataloaders=stream, **TEST)
    assert _plan(result) == ("constant", None, "lightning")


def test_explicit_arguments_win_field_by_field():
    torch.manual_seed(0)
    model, data = Model("one_cycle"), _loader()
    cases = [
        ({"schedule": "cosine"}, ("cosine", 40, "argument, lightning")),
        ({"total_steps": 123}, ("one_cycle", 123, "argument, lightning")),
        ({"epochs": 2.5}, ("one_cycle", 15, "argument, lightning")),
        ({"schedule": "linear", "total_steps": 9}, ("linear", 9, "argument")),
    ]
    for kwargs, expected in cases:
        result = find_lr(_trainer(), model, train_dataloaders=data, **TEST, **kwargs)
        assert _plan(result) == expected, kwargs
        finder = LRFinder(**TEST, update_attr=False, **kwargs)
        _fit(Model("one_cycle"), finder, max_steps=0)
        assert _plan(finder.result) == expected, kwargs


def test_a_fit_that_only_tests_has_no_length():
    finder = LRFinder(**TEST)
    fit = _fit(Model(), finder, max_steps=0)
    assert _plan(finder.result) == ("constant", None, "lightning") and fit.global_step == 0


# The test runs at the optimizer's own momentum -----------------------------------------


@pytest.mark.parametrize("adam", [False, True], ids=["sgd-momentum", "adam-betas"])
def test_the_test_runs_at_the_optimizers_momentum_not_the_cycles_first_value(adam):
    torch.manual_seed(0)
    spy = Spy()
    result = find_lr(
        _trainer(callbacks=[spy]), Model("one_cycle", adam=adam), train_dataloaders=_loader(), **TEST
    )
    configured = 0.8 if adam else 0.9
    # Every step of the test's fit (it may run a few past the result's end, reading losses in chunks).
    assert len(spy.momenta) >= len(result) and set(spy.momenta) == {configured}  # not OneCycleLR's 0.95
    # The same test, step for step, as on the optimizer alone (no scheduler, nothing to undo).
    torch.manual_seed(0)
    oracle = find_lr(_trainer(), Model("none", adam=adam), train_dataloaders=_loader(), **TEST)
    assert np.array_equal(result.losses, oracle.losses)
    if not adam:
        assert result.info["momentum"] == 0.9


def test_in_a_users_fit_the_cycles_momentum_and_rates_are_back_for_the_training():
    # update_attr=False: the fit trains bitwise as without the callback.
    torch.manual_seed(0)
    plain_spy, plain = Spy(), Model("one_cycle")
    _fit(plain, plain_spy, max_epochs=2)
    torch.manual_seed(0)
    spy, model, finder = Spy(), Model("one_cycle"), LRFinder(**TEST, update_attr=False)
    _fit(model, spy, finder, max_epochs=2)
    tested = len(finder.result)
    assert spy.momenta[:tested] == [0.9] * tested
    assert spy.momenta[tested:] == plain_spy.momenta and plain_spy.momenta[0] == 0.95
    assert spy.lrs[tested:] == plain_spy.lrs
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), plain.state_dict().values(), strict=True)
    )


# update_attr applies the rate for the plan ---------------------------------------------


def _expected_lrs(make: Any, lr: float, steps: int) -> list[float]:
    """A scheduler's rates on a fresh optimizer at ``lr``: what torch itself would run."""
    optimizer = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=lr, momentum=0.9)
    scheduler = make(optimizer)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def test_update_attr_makes_the_suggestion_a_one_cycles_peak_and_says_for_which_plan(caplog):
    torch.manual_seed(0)
    spy, model, finder = Spy(), Model("one_cycle"), LRFinder(**TEST)
    with caplog.at_level("INFO"):
        fit = _fit(model, spy, finder, max_steps=40, max_epochs=-1)
    chosen = finder.result.suggestion
    assert (chosen.schedule, chosen.total_steps) == ("one_cycle", 40)
    trained = spy.lrs[len(finder.result) :]
    assert len(trained) == fit.global_step == 40
    oracle = _expected_lrs(lambda o: sched.OneCycleLR(o, max_lr=chosen.lr, total_steps=40), chosen.lr, 40)
    np.testing.assert_allclose(trained, oracle, rtol=1e-12)
    assert max(trained) == pytest.approx(chosen.lr, rel=1e-12) and model.lr == chosen.lr
    assert "for a one_cycle schedule of 40 steps) on the optimizers' param groups and model.lr" in caplog.text


def test_update_attr_keeps_a_warm_up_at_zero():
    torch.manual_seed(0)
    spy, finder = Spy(), LRFinder(**TEST)
    _fit(Model("linear_warmup"), spy, finder, max_steps=12, max_epochs=-1)
    chosen = finder.result.suggestion
    assert (chosen.schedule, chosen.total_steps) == ("linear", 60)
    transformers = pytest.importorskip("transformers")
    oracle = _expected_lrs(lambda o: transformers.get_linear_schedule_with_warmup(o, 5, 60), chosen.lr, 12)
    trained = spy.lrs[len(finder.result) :]
    assert trained[0] == 0.0
    np.testing.assert_allclose(trained, oracle, rtol=1e-12)


def test_find_lr_update_attr_says_for_which_plan(caplog):
    torch.manual_seed(0)
    model = Model("cosine_epochs")
    with caplog.at_level("INFO"):
        result = find_lr(_trainer(max_epochs=3), model, train_dataloaders=_loader(), update_attr=True, **TEST)
    assert model.lr == result.suggestion.lr
    said = f"find_lr: model.lr set to {model.lr:.3g} (lrscout's auto suggestion for a cosine schedule"
    assert f"{said} of 18 steps)" in caplog.text


# Bad plan arguments, refused before any batch --------------------------------------------

BAD = [
    ({"schedule": "cyclic"}, r"schedule must be one of"),
    ({"schedule": None}, r"schedule must be a string, one of 'auto'"),
    ({"total_steps": 0}, r"total_steps must be an integer >= 1"),
    ({"total_steps": 1.5}, r"total_steps must be a whole number; got 1\.5\. Give the optimizer steps"),
    ({"total_steps": True}, r"total_steps must be an integer"),
    ({"epochs": 0}, r"epochs must be"),
    ({"epochs": float("nan")}, r"epochs must be"),
    ({"epochs": "3"}, r"epochs must be"),
    ({"epochs": 2, "total_steps": 10}, r"epochs must be None when total_steps is given"),
]


@pytest.mark.parametrize(("kwargs", "match"), BAD, ids=[str(row[0]) for row in BAD])
def test_bad_plan_arguments_are_refused_up_front(kwargs, match):
    with pytest.raises(lrscout.InvalidArgumentError, match=rf"^LRFinder: {match}"):
        LRFinder(**kwargs)
    model = Model()
    with pytest.raises(lrscout.InvalidArgumentError, match=rf"^find_lr: {match}"):
        find_lr(_trainer(), model, train_dataloaders=_loader(), progress=False, **kwargs)
    assert model.batches == 0


def test_epochs_of_data_without_a_length_are_refused_before_the_first_batch():
    model = Model()
    before = copy.deepcopy(model.state_dict())
    stream = DataLoader(Stream(), batch_size=None)
    with pytest.raises(lrscout.InvalidArgumentError, match=r"find_lr: epochs must be given with data whose"):
        find_lr(_trainer(max_steps=5), model, train_dataloaders=stream, epochs=2, progress=False)
    assert model.batches == 0
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), before.values(), strict=True))
