"""lrscout.lightning: exact learning rates and losses, bitwise restoration, a later fit as if untested."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pl = pytest.importorskip("lightning.pytorch")
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

import lrscout  # noqa: E402
from lrscout.lightning import LRFinder, find_lr  # noqa: E402

pytestmark = [
    # Lightning 2.6 with torch 2.13: its own code calls a deprecated torch pytree API on every fit.
    pytest.mark.filterwarnings(r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"),
    # Lightning's advice for real training (more loader workers), emitted by every tiny fit here.
    pytest.mark.filterwarnings("ignore:The '.*dataloader' does not have many workers:UserWarning"),
    pytest.mark.filterwarnings(
        "ignore:The number of training batches .* is smaller than the logging interval"
    ),
]

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# A tiny classifier and its data ------------------------------------------------


class Net(pl.LightningModule):
    """Linear -> BatchNorm -> Dropout -> Linear; records each batch's loss as a float (the oracle)."""

    def __init__(self, lr: float = 0.05, form: str = "optimizer", momentum: float = 0.9) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 2)
        )
        self.batch_losses: list[float] = []
        self.fail_at: int | None = None
        self.kept_optimizer: torch.optim.Optimizer | None = None

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        if self.fail_at is not None and len(self.batch_losses) == self.fail_at:
            raise RuntimeError("training_step failed on purpose")
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        self.batch_losses.append(loss.item())
        self.log("train_loss", loss)
        return {"loss": loss, "extra": 1} if self.hparams.form == "dict_output" else loss

    def configure_optimizers(self) -> Any:
        if self.kept_optimizer is not None:
            return self.kept_optimizer
        optimizer = torch.optim.SGD(
            [
                {"params": self.net[0].parameters()},
                {
                    "params": [*self.net[1].parameters(), *self.net[4].parameters()],
                    "lr": self.hparams.lr / 10,
                },
            ],
            lr=self.hparams.lr,
            momentum=self.hparams.momentum,
        )
        halving = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
        form = self.hparams.form
        if form == "list":
            return [optimizer]
        if form == "tuple":
            return [optimizer], [halving]
        if form == "dict":
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": halving, "interval": "step"}}
        if form == "warmup":
            # Sets every group's lr to 0 at once, as warm-up schedulers do.
            warmup = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: step / 10)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": warmup, "interval": "step"}}
        return optimizer


def _loader(
    n: int = 96, batch_size: int = 16, seed: int = 1, shuffle: bool = True, generator: Any = None
) -> DataLoader:
    """Shuffled by torch's global RNG, or by ``generator``."""
    data = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 4, generator=data)
    y = (X[:, 0] - X[:, 1] > 0).long()
    return DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=shuffle, generator=generator)


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


class LRSpy(pl.Callback):
    """Every param group's learning rate at each optimizer step, as the optimizer sees it."""

    def __init__(self) -> None:
        self.lrs: list[list[float]] = []

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        self.lrs.append([float(group["lr"]) for group in optimizer.param_groups])


class CountingCallback(pl.Callback):
    """A user callback with state in ``state_dict`` and a trace outside it."""

    def __init__(self) -> None:
        self.batches = 0
        self.trace: list[int] = []

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.batches += 1
        self.trace.append(self.batches)

    def state_dict(self) -> dict[str, Any]:
        return {"batches": self.batches}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.batches = state_dict["batches"]


#: The second param group's learning rate over the first's, as the finder computes it.
RATIO = (0.05 / 10) / 0.05


def _ramp(start: float, end: float, n: int) -> np.ndarray:
    return lrscout.exponential_ramp(start, end, n)(np.arange(n))


def _state(model: nn.Module, optimizer: Any = None) -> dict[str, Any]:
    state: dict[str, Any] = {"model": copy.deepcopy(model.state_dict()), "rng": torch.get_rng_state()}
    state["grads"] = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
    if optimizer is not None:
        state["optimizer"] = copy.deepcopy(optimizer.state_dict())
    return state


def _trained_model_and_optimizer() -> tuple[Net, torch.optim.Optimizer]:
    """A model with momentum buffers, gradients and BatchNorm statistics, its optimizer kept on it."""
    torch.manual_seed(0)
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for x, y in _loader():
        optimizer.zero_grad()
        nn.functional.cross_entropy(model.net(x), y).backward()
        optimizer.step()
    model.kept_optimizer = optimizer
    return model, optimizer


# The callback --------------------------------------------------------------------


def test_callback_ramps_every_group_and_records_each_steps_loss():
    torch.manual_seed(0)
    model = Net()
    spy = LRSpy()
    finder = LRFinder(start_lr=1e-4, end_lr=1e-1, num_steps=10, sync_every=3, progress=False)
    # max_steps=0: the fit itself trains no step; the test runs before it, in on_fit_start.
    _trainer(max_epochs=3, max_steps=0, callbacks=[spy, finder]).fit(model, _loader())
    result = finder.result
    expected = _ramp(1e-4, 1e-1, 10)
    assert result.stop_reason == "completed"
    np.testing.assert_array_equal(result.lrs, expected)
    # The second group keeps its ratio (1/10) to the first.
    assert spy.lrs == [[lr, lr * RATIO] for lr in expected]
    np.testing.assert_array_equal(result.losses, np.float32(model.batch_losses).astype(np.float64))
    assert result.info["framework"] == "lightning"
    assert result.info["optimizer"] == "SGD" and result.info["momentum"] == 0.9
    assert result.info["batch_size"] == 16 and result.info["param_group_lr_ratios"] == [1.0, RATIO]
    # 96 samples in batches of 16: 6 steps per epoch, so the loader was started twice.
    assert result.info["loader_cycled"] is True and result.info["loader_passes"] == 2


def test_callback_stops_training_on_divergence():
    torch.manual_seed(0)
    model = Net()
    finder = LRFinder(start_lr=1e-3, end_lr=1e6, num_steps=60, sync_every=1, progress=False)
    trainer = _trainer(max_epochs=20, max_steps=0, callbacks=[finder])
    trainer.fit(model, _loader())
    result = finder.result
    assert result.stop_reason in ("diverged", "non_finite")
    assert len(result) < 60
    # sync_every=1: the stop is read at the step that diverged, and the test trains no further.
    assert len(model.batch_losses) == len(result)
    assert trainer.global_step == 0  # the test's steps are not the fit's


def test_result_does_not_depend_on_sync_every():
    results = []
    for sync_every in (1, 4, 100):
        torch.manual_seed(0)
        finder = LRFinder(start_lr=1e-3, end_lr=1e6, num_steps=60, sync_every=sync_every, progress=False)
        _trainer(max_epochs=20, max_steps=0, callbacks=[finder]).fit(Net(), _loader())
        results.append(finder.result)
    for result in results[1:]:
        np.testing.assert_array_equal(result.losses, results[0].losses)
        assert result.stop_reason == results[0].stop_reason


def test_callback_restores_model_optimizer_and_rng_bitwise(assert_same):
    def fit(finder: Any) -> tuple[dict[str, Any], Any]:
        model, optimizer = _trained_model_and_optimizer()
        model.net[0].weight.grad = torch.full_like(model.net[0].weight, 0.5)
        before = _state(model, optimizer)
        groups = optimizer.param_groups
        _trainer(max_epochs=3, max_steps=0, callbacks=[] if finder is None else [finder]).fit(
            model, _loader()
        )
        assert optimizer.param_groups is groups and groups[0]["lr"] == 0.05
        return before, _state(model, optimizer)

    finder = LRFinder(start_lr=1e-3, end_lr=10.0, num_steps=12, update_attr=False, progress=False)
    before, after = fit(finder)
    assert len(finder.result) > 2
    # As a fit without the test leaves them: the weights and optimizer state as before; the
    # gradients cleared and the global RNG drawn from (to check the train dataloader) by the fit.
    _, plain = fit(None)
    assert_same(after, plain)
    assert_same(after["model"], before["model"])
    assert_same(after["optimizer"], before["optimizer"])


def test_callback_restores_after_an_exception(assert_same):
    model, optimizer = _trained_model_and_optimizer()
    before = _state(model, optimizer)
    model.fail_at = 5
    finder = LRFinder(start_lr=1e-3, end_lr=10.0, num_steps=12, progress=False)
    with pytest.raises(RuntimeError, match="on purpose"):
        _trainer(max_epochs=3, callbacks=[finder]).fit(model, _loader())
    assert len(model.batch_losses) == 5  # it trained before failing
    assert_same(_state(model, optimizer), before)


@pytest.mark.parametrize("form", ["optimizer", "list", "tuple", "dict", "warmup", "dict_output"])
def test_every_configure_optimizers_form_ramps_exactly_and_schedulers_do_not_step(form):
    torch.manual_seed(0)
    model = Net(form=form)
    spy = LRSpy()
    finder = LRFinder(start_lr=1e-4, end_lr=1e-1, num_steps=8, progress=False)
    trainer = _trainer(max_epochs=2, max_steps=0, callbacks=[spy, finder])
    trainer.fit(model, _loader())
    expected = _ramp(1e-4, 1e-1, 8)
    # A scheduler stepping (StepLR halves, the warm-up ramps from 0) would change these.
    assert spy.lrs == [[lr, lr * RATIO] for lr in expected]
    configs = trainer.lr_scheduler_configs
    if form in ("tuple", "dict", "warmup"):
        assert len(configs) == 1  # put back after the test
        assert configs[0].scheduler.last_epoch == 0  # and never stepped
    else:
        assert configs == []


def test_gradient_accumulation_records_the_mean_loss_of_each_step():
    torch.manual_seed(0)
    model = Net()
    spy = LRSpy()
    finder = LRFinder(start_lr=1e-4, end_lr=1e-1, num_steps=5, sync_every=2, progress=False)
    trainer = _trainer(max_epochs=5, max_steps=0, accumulate_grad_batches=2, callbacks=[spy, finder])
    trainer.fit(model, _loader(n=64))
    batches = np.float32(model.batch_losses)
    pairs = (batches[0:10:2] + batches[1:10:2]) / np.float32(2)
    np.testing.assert_allclose(finder.result.losses, pairs, rtol=1e-6)
    np.testing.assert_array_equal(finder.result.lrs, _ramp(1e-4, 1e-1, 5))
    assert [lrs[0] for lrs in spy.lrs] == list(_ramp(1e-4, 1e-1, 5))
    assert len(model.batch_losses) == 10 and finder.result.info["accumulation_steps"] == 2


class TwoOptimizers(pl.LightningModule):
    """Manual optimization with two optimizers, as a GAN steps a generator and a critic."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.first = nn.Linear(4, 4)
        self.second = nn.Linear(4, 2)
        self.seen: list[tuple[float, float]] = []

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        first, second = self.optimizers()
        loss = nn.functional.cross_entropy(self.second(torch.relu(self.first(x))), y)
        first.zero_grad()
        second.zero_grad()
        self.manual_backward(loss)
        self.seen.append((first.param_groups[0]["lr"], second.param_groups[0]["lr"]))
        first.step()
        second.step()
        return loss

    def configure_optimizers(self) -> Any:
        return (
            torch.optim.Adam(self.first.parameters(), lr=1e-3),
            torch.optim.SGD(self.second.parameters(), lr=4e-3),
        )


def test_manual_optimization_ramps_every_optimizer_keeping_their_ratio():
    torch.manual_seed(0)
    model = TwoOptimizers()
    finder = LRFinder(start_lr=1e-4, end_lr=1e-2, num_steps=6, progress=False)
    _trainer(max_epochs=2, max_steps=0, callbacks=[finder]).fit(model, _loader())
    expected = _ramp(1e-4, 1e-2, 6)
    assert model.seen == [(lr, lr * (4e-3 / 1e-3)) for lr in expected]
    assert finder.result.info["optimizer"] == "Adam" and finder.result.info["num_optimizers"] == 2


@pytest.mark.filterwarnings("ignore:`training_step` returned `None`:UserWarning")
def test_a_training_step_without_a_loss_is_an_error_and_state_is_restored(assert_same):
    class NoLoss(Net):
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            super().training_step(batch, batch_idx)
            return None

    model, optimizer = _trained_model_and_optimizer()
    model.__class__ = NoLoss
    before = _state(model, optimizer)
    with pytest.raises(lrscout.InvalidArgumentError, match="training_step must return the batch's loss"):
        _trainer(callbacks=[LRFinder(num_steps=5, progress=False)]).fit(model, _loader())
    assert_same(_state(model, optimizer), before)


class WithValidation(Net):
    def validation_step(self, batch: Any, batch_idx: int) -> Any:
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self.net(x), y))


def _users_fit(root: Path, finder: Any = None, **kwargs: Any) -> tuple[Any, Net, LRSpy]:
    """A fit as users write it: default checkpointing, a CSV logger, two epochs."""
    from lightning.pytorch.loggers import CSVLogger

    torch.manual_seed(0)
    model = WithValidation(form="tuple")
    spy = LRSpy()
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=2,
        default_root_dir=root,
        logger=CSVLogger(root),
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[spy] + ([] if finder is None else [finder]),
        **kwargs,
    )
    trainer.fit(model, _loader(), _loader(seed=2, shuffle=False))
    return trainer, model, spy


def _files(root: Path) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for path in sorted(root.rglob("*.*")):
        name = str(path.relative_to(root))
        if path.suffix == ".ckpt":
            checkpoint = torch.load(path, weights_only=False)
            found[name] = (checkpoint["global_step"], checkpoint["epoch"], checkpoint["state_dict"])
        elif path.suffix == ".csv":
            found[name] = path.read_text()
    return found


def test_in_a_users_fit_the_callback_leaves_checkpoints_logs_and_steps_as_without_it(assert_same, tmp_path):
    trainer, model, spy = _users_fit(tmp_path / "plain")
    finder = LRFinder(start_lr=1e-4, num_steps=30, update_attr=False, progress=False)
    tested, tested_model, tested_spy = _users_fit(tmp_path / "tested", finder)
    assert len(finder.result) > 10
    # The fit trained as without the test: same steps, weights, checkpoint, metrics.csv.
    assert tested.global_step == trainer.global_step == 12 and tested.state.finished
    assert_same(copy.deepcopy(tested_model.state_dict()), copy.deepcopy(model.state_dict()))
    plain, files = _files(tmp_path / "plain"), _files(tmp_path / "tested")
    assert list(files) == list(plain) and any(name.endswith(".ckpt") for name in files)
    for name, content in plain.items():
        if name.endswith(".ckpt"):
            assert files[name][:2] == content[:2]
            assert_same(files[name][2], content[2])
        else:
            assert files[name] == content, name
    # The spy, a user callback, saw the test's ramp, then the fit's own rates.
    assert tested_spy.lrs[len(finder.result) :] == spy.lrs
    np.testing.assert_array_equal([lrs[0] for lrs in tested_spy.lrs[: len(finder.result)]], finder.result.lrs)


def test_by_default_the_fit_trains_on_at_the_suggestion_and_says_so(tmp_path, caplog):
    finder = LRFinder(start_lr=1e-4, num_steps=40, progress=False)
    with caplog.at_level("INFO"):
        trainer, model, spy = _users_fit(tmp_path, finder)
    lr = finder.result.suggestion.lr
    after = spy.lrs[len(finder.result) :]
    assert len(after) == trainer.global_step == 12
    # Every group at the suggestion (times its ratio), and StepLR (per epoch) halving from there.
    assert after[0] == pytest.approx([lr, lr * RATIO]) and after[-1] == pytest.approx(
        [lr / 2, lr * RATIO / 2]
    )
    assert model.hparams.lr == lr
    # StepLR is none of lrscout's schedules: the plan is constant, over the fit's 12 steps.
    said = f"LRFinder: learning rate set to {lr:.3g} (lrscout's auto suggestion for a constant schedule"
    assert f"{said} of 12 steps)" in caplog.text
    assert "model.lr" in caplog.text


def test_find_lr_says_what_update_attr_set(caplog):
    torch.manual_seed(0)
    model = Net()
    with caplog.at_level("INFO"):
        result = find_lr(_trainer(), model, train_dataloaders=_loader(), update_attr=True, progress=False)
    lr = result.suggestion.lr
    assert (
        f"find_lr: model.lr set to {lr:.3g} (lrscout's auto suggestion for a constant schedule of 6 steps)"
        in caplog.text
    )


class Interrupted(Net):
    """Ctrl-C in the middle of a training step."""

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        if len(self.batch_losses) == 4:
            raise KeyboardInterrupt
        return super().training_step(batch, batch_idx)


def test_ctrl_c_in_find_lr_reaches_the_caller_as_keyboard_interrupt(assert_same):
    import signal

    model, optimizer = _trained_model_and_optimizer()
    model.__class__ = Interrupted
    before = _state(model, optimizer)
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        find_lr(_trainer(), model, train_dataloaders=_loader(), num_steps=20, progress=False)
    assert len(model.batch_losses) == 4  # it was training
    assert_same(_state(model, optimizer), before)
    assert model._trainer is None
    # Lightning ignores Ctrl-C after catching one; the next Ctrl-C must still stop the program.
    assert signal.getsignal(signal.SIGINT) is handler


def test_find_lr_does_not_warn_about_a_validation_step_without_a_val_dataloader():
    # Warnings are errors here: Lightning's PossibleUserWarning would fail the call.
    torch.manual_seed(0)
    result = find_lr(
        _trainer(), WithValidation(), train_dataloaders=_loader(), num_steps=10, extend=False, progress=False
    )
    assert len(result) == 10


def test_result_before_any_fit_is_an_error():
    with pytest.raises(RuntimeError, match="no range test has run"):
        _ = LRFinder().result


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"start_lr": 1.0, "end_lr": 0.1}, "end_lr must be greater than start_lr"),
        ({"start_lr": -1.0}, "start_lr must be"),
        ({"num_steps": 1}, "num_steps must be an integer >= 2"),
        ({"mode": "cosine"}, "mode must be"),
        ({"smoothing": 1.0}, "smoothing must be"),
        ({"divergence_factor": 1.0}, "divergence_factor must be"),
        ({"sync_every": 0}, "sync_every must be an integer >= 1"),
        ({"progress": "yes"}, "progress must be"),
        ({"extend": 1}, "extend must be"),
        ({"info": {"x": object()}}, "info"),
    ],
)
def test_bad_finder_arguments(kwargs, match):
    with pytest.raises(lrscout.InvalidArgumentError, match=match):
        LRFinder(**kwargs)


def test_an_optimizer_with_lr_zero_is_refused_before_training(assert_same):
    class ZeroLR(Net):
        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.0)

    model = ZeroLR()
    before = _state(model)
    with pytest.raises(lrscout.InvalidArgumentError, match="the first param group's learning rate must be"):
        _trainer(callbacks=[LRFinder(num_steps=5, progress=False)]).fit(model, _loader())
    assert_same(_state(model), before)
    assert model.batch_losses == []


# find_lr -----------------------------------------------------------------------


def _train(find_first: bool, own_generator: bool, **find_kwargs: Any) -> tuple[dict[str, Any], Any]:
    torch.manual_seed(0)
    np.random.seed(0)  # noqa: NPY002 (the global state that find_lr must restore)
    model = Net(form="tuple")
    trainer = _trainer(max_epochs=2)
    loader = _loader(generator=torch.Generator().manual_seed(7) if own_generator else None)
    result = None
    if find_first:
        result = find_lr(trainer, model, train_dataloaders=loader, progress=False, **find_kwargs)
    trainer.fit(model, loader)
    return copy.deepcopy(model.state_dict()), result


@pytest.mark.parametrize("own_generator", [False, True], ids=["global-rng", "loader-generator"])
def test_fit_after_find_lr_trains_bitwise_as_without_it(assert_same, own_generator):
    without, _ = _train(False, own_generator)
    after, result = _train(True, own_generator, start_lr=1e-4, num_steps=40)
    assert result is not None and len(result) > 10
    assert_same(after, without)


def test_find_lr_equals_the_callback_in_a_fit_of_its_own():
    torch.manual_seed(0)
    model = Net()
    result = find_lr(
        _trainer(), model, train_dataloaders=_loader(), start_lr=1e-4, num_steps=30, progress=False
    )
    torch.manual_seed(0)
    finder = LRFinder(start_lr=1e-4, num_steps=30, extend=True, progress=False)
    _trainer(max_steps=0, callbacks=[finder]).fit(Net(), _loader())
    np.testing.assert_array_equal(result.losses, finder.result.losses)
    np.testing.assert_array_equal(result.lrs, finder.result.lrs)
    assert result.stop_reason == finder.result.stop_reason
    # The same rate for the same plan: find_lr's is the trainer's 6 steps, the callback's fit has none.
    assert finder.result.info["plan"]["total_steps"] is None
    assert result.suggestion == finder.result.suggest(total_steps=6)


def test_find_lr_leaves_trainer_model_and_callbacks_as_they_were(assert_same, tmp_path):
    from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor
    from lightning.pytorch.loggers import CSVLogger

    model, optimizer = _trained_model_and_optimizer()
    counting = CountingCallback()
    # Would stop the test's fit at the end of its first epoch (6 steps): left out of it.
    stopping = EarlyStopping(monitor="train_loss", stopping_threshold=100.0, check_on_train_epoch_end=True)
    logger = CSVLogger(tmp_path)
    trainer = _trainer(logger=logger, callbacks=[counting, stopping, LearningRateMonitor()])
    before = _state(model, optimizer)
    callbacks = list(trainer.callbacks)
    result = find_lr(trainer, model, train_dataloaders=_loader(), num_steps=20, progress=False)
    assert len(result) > 6
    assert counting.trace[:3] == [1, 2, 3] and counting.batches == 0  # it ran; its state is back
    assert_same(_state(model, optimizer), before)
    assert model._trainer is None and trainer.callbacks == callbacks and trainer.global_step == 0
    assert not any(tmp_path.rglob("metrics.csv"))  # self.log went to no file
    trainer.fit(model, _loader())
    assert trainer.global_step == 6 and any(tmp_path.rglob("metrics.csv"))


def test_find_lr_restores_after_an_exception(assert_same):
    model, optimizer = _trained_model_and_optimizer()
    model.fail_at = 4
    before = _state(model, optimizer)
    with pytest.raises(RuntimeError, match="on purpose"):
        find_lr(_trainer(), model, train_dataloaders=_loader(), num_steps=20, progress=False)
    assert_same(_state(model, optimizer), before)
    assert model._trainer is None


def test_find_lr_with_a_datamodule_and_update_attr():
    class Data(pl.LightningDataModule):
        def train_dataloader(self) -> DataLoader:
            return _loader(batch_size=8)

    torch.manual_seed(0)
    model = Net()
    data = Data()
    result = find_lr(_trainer(), model, datamodule=data, start_lr=1e-4, update_attr=True, progress=False)
    assert model.hparams.lr == result.suggestion.lr != 0.05
    assert result.info["batch_size"] == 8 and data.trainer is None
    # Passed where trainer.fit also takes it.
    again = find_lr(_trainer(), Net(), train_dataloaders=data, start_lr=1e-4, progress=False)
    assert again.info["batch_size"] == 8 and data.trainer is None


def test_update_attr_sets_a_plain_attribute():
    class Plain(Net):
        def __init__(self) -> None:
            super().__init__()
            self.learning_rate = 0.05

    torch.manual_seed(0)
    model = Plain()
    result = find_lr(
        _trainer(),
        model,
        train_dataloaders=_loader(),
        start_lr=1e-4,
        update_attr=True,
        attr_name="learning_rate",
        progress=False,
    )
    assert model.learning_rate == result.suggestion.lr


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("trainer", None), {}, "trainer must be a lightning.pytorch.Trainer"),
        ((None, "model"), {}, "model must be a lightning.pytorch.LightningModule"),
        ((None, None), {"datamodule": 3}, "datamodule must be"),
        ((None, None), {"update_attr": 1}, "update_attr must be"),
        ((None, None), {"update_attr": True, "attr_name": "nope"}, "attr_name must be an attribute"),
        ((None, None), {"update_attr": True, "attr_name": ""}, "attr_name must be a non-empty string"),
        ((None, None), {"num_steps": 1}, "num_steps must be"),
        ((None, None), {"end_lr": 1e-9}, "end_lr must be greater than start_lr"),
    ],
)
def test_bad_find_lr_arguments(args, kwargs, match):
    model = Net()
    trainer = _trainer()
    given = [trainer if args[0] is None else args[0], model if args[1] is None else args[1]]
    with pytest.raises(lrscout.InvalidArgumentError, match=match):
        find_lr(*given, train_dataloaders=_loader(), progress=False, **kwargs)
    assert model.batch_losses == []


def _empty_loader() -> DataLoader:
    return DataLoader(TensorDataset(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)), batch_size=16)


# Data the test's fit would run no step on, or would hang on (it has no epoch limit): refused up front.
UP_FRONT = [
    (
        "one-shot generator",
        {"train_dataloaders": lambda: (batch for batch in _loader())},
        r"train_dataloaders must be re-iterable \(a DataLoader or a list of batches\); got 'a one-shot "
        r"generator'",
    ),
    (
        "iter() of a loader",
        {"train_dataloaders": lambda: iter(_loader())},
        r"train_dataloaders must be re-iterable",
    ),
    (
        "generator in a list",
        {"train_dataloaders": lambda: [_loader(), iter([])]},
        r"train_dataloaders must be re-iterable",
    ),
    (
        "empty loader",
        {"train_dataloaders": _empty_loader},
        r"train_dataloaders must be dataloaders of at least",
    ),
    ("empty list", {"train_dataloaders": []}, r"train_dataloaders must be dataloaders of at least one batch"),
    (
        "every batch dropped",
        {
            "train_dataloaders": lambda: DataLoader(
                TensorDataset(torch.zeros(8, 4)), batch_size=16, drop_last=True
            )
        },
        r"train_dataloaders must be dataloaders of at least one batch; got 'an empty DataLoader'",
    ),
    (
        "limit_train_batches=0",
        {"trainer": {"limit_train_batches": 0}},
        r"trainer.limit_train_batches must be positive",
    ),
    (
        "limit_train_batches=0.0",
        {"trainer": {"limit_train_batches": 0.0}},
        r"trainer.limit_train_batches must be",
    ),
]


@pytest.mark.parametrize(("kwargs", "match"), [row[1:] for row in UP_FRONT], ids=[row[0] for row in UP_FRONT])
def test_find_lr_refuses_data_it_cannot_train_on_before_its_fit(kwargs, match):
    kwargs = {name: value() if callable(value) else value for name, value in kwargs.items()}
    model = Net()
    trainer = _trainer(**kwargs.pop("trainer", {}))
    with pytest.raises(lrscout.InvalidArgumentError, match=match):
        find_lr(trainer, model, progress=False, **kwargs)
    assert model.batch_losses == []


def test_a_train_dataloader_hook_that_runs_dry_ends_the_test_instead_of_hanging():
    # A hook may hand out a one-shot iterator: the test's fit starts it again each epoch, and
    # an epoch without a batch ends the fit ("ended", the steps it had) instead of looping.
    batches = list(_loader())

    class Dry(Net):
        def train_dataloader(self) -> Any:
            return iter(batches)

    model = Dry()
    result = find_lr(_trainer(), model, num_steps=20, progress=False)
    assert result.stop_reason == "ended" and len(result) == len(batches)
    assert any(message.startswith("ran short") for message in result.warnings)


def test_the_callbacks_test_on_a_hook_that_runs_dry_ends_instead_of_hanging():
    # The callback's test runs as a loop of its own with no epoch limit, before the fit: a
    # one-shot iterator ends it as it ends find_lr's, and the fit then runs its own epochs.
    batches = list(_loader())

    class Dry(Net):
        def train_dataloader(self) -> Any:
            return iter(batches)

    finder = LRFinder(num_steps=20, progress=False)
    _trainer(max_epochs=2, callbacks=[finder]).fit(Dry())
    assert finder.result.stop_reason == "ended" and len(finder.result) == len(batches)


@pytest.mark.filterwarnings("ignore:Total length of .* across ranks is zero")
def test_an_empty_train_dataloader_hook_is_named_after_the_fit():
    class Empty(Net):
        def train_dataloader(self) -> Any:
            return _empty_loader()

    with pytest.raises(lrscout.InvalidArgumentError, match=r"ran no training batch.*train_dataloader\(\)"):
        find_lr(_trainer(), Empty(), num_steps=20, progress=False)


def test_find_lr_refuses_a_strategy_it_cannot_copy():
    from lightning.pytorch.strategies import SingleDeviceStrategy

    class Custom(SingleDeviceStrategy):
        pass

    trainer = _trainer(strategy=Custom(device=torch.device("cpu")))
    with pytest.raises(lrscout.InvalidArgumentError, match=r"single-device or DDP strategy.*LRFinder"):
        find_lr(trainer, Net(), train_dataloaders=_loader(), progress=False)


# DDP ----------------------------------------------------------------------------

_DDP_SCRIPT = r"""
import json, os, sys, warnings
import torch
import lightning.pytorch as pl
sys.path.insert(0, {tests!r})
from test_lightning import Net, _loader, _trainer
from lrscout.lightning import LRFinder, find_lr

warnings.simplefilter("ignore")


class Record(pl.Callback):
    # Each rank's own batch losses and its finder's result, written when the fit ends.
    def teardown(self, trainer, pl_module, stage):
        finder = next(c for c in trainer.callbacks if isinstance(c, LRFinder))
        with open(os.path.join({folder!r}, f"rank{{trainer.global_rank}}.json"), "w") as file:
            json.dump({{"batch_losses": pl_module.batch_losses, "losses": finder.result.losses.tolist(),
                       "stop_reason": finder.result.stop_reason, "steps": trainer.global_step}}, file)


class DestroyGroup(pl.Callback):
    # A spawned worker exits after its fit: without this, gloo may abort it as it exits.
    def teardown(self, trainer, pl_module, stage):
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


if __name__ == "__main__":
    torch.manual_seed(0)
    model = Net(momentum=0.0)
    before = {{k: v.clone() for k, v in model.state_dict().items()}}
    spawned = [DestroyGroup()] if {strategy!r} == "ddp_spawn" else []
    trainer = _trainer(strategy={strategy!r}, devices=2, callbacks=[Record(), *spawned])
    result = find_lr(trainer, model, train_dataloaders=_loader(n=128, batch_size=8, shuffle=False),
                     start_lr=1e-3, end_lr=1e5, num_steps=60, sync_every=4, progress=False)
    same = all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    # The user's trainer then fits as usual.
    trainer.callbacks = [c for c in trainer.callbacks if not isinstance(c, Record)]
    trainer.fit(model, _loader(n=128, batch_size=8, shuffle=False))
    rank = os.environ.get("LOCAL_RANK", "0")
    with open(os.path.join({folder!r}, f"main{{rank}}.json"), "w") as file:
        json.dump({{"losses": result.losses.tolist(), "stop_reason": result.stop_reason, "same": same,
                   "world_size": result.info["world_size"], "strategy": result.info["strategy"],
                   "fit_steps": trainer.global_step, "status": trainer.state.status.value}}, file)
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
"""


@pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()), reason="needs gloo"
)
@pytest.mark.parametrize("strategy", ["ddp_spawn", "ddp"])
def test_ddp_ranks_agree_and_the_result_comes_back(tmp_path, strategy):
    script = tmp_path / "run_ddp.py"
    script.write_text(_DDP_SCRIPT.format(tests=str(ROOT / "tests"), folder=str(tmp_path), strategy=strategy))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
        "OMP_NUM_THREADS": "1",
    }
    if Path("/sys/class/net/lo").exists():
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(2)]
    # "ddp" runs the script once per rank; "ddp_spawn" once, its workers inside fit.
    mains = [json.loads(path.read_text()) for path in sorted(tmp_path.glob("main*.json"))]
    assert len(mains) == (2 if strategy == "ddp" else 1)
    main = mains[0]
    # Every rank recorded the mean over ranks of its batch losses, and stopped at the same step.
    n = len(main["losses"])
    first, second = (np.float32(rank["batch_losses"][:n]) for rank in ranks)
    mean = (first + second) / np.float32(2)
    np.testing.assert_array_equal(np.float32(main["losses"]), mean)
    assert ranks[0]["losses"] == ranks[1]["losses"] == main["losses"]
    assert ranks[0]["steps"] == ranks[1]["steps"] and main["stop_reason"] == "diverged"
    for each in mains:
        assert each == main
        assert each["same"] and each["world_size"] == 2 and each["strategy"] == "DDPStrategy"
        # The user's fit ran its epoch: 128 samples, 2 ranks, batches of 8 (spawned workers keep their steps).
        assert each["status"] == "finished" and each["fit_steps"] == (8 if strategy == "ddp" else 0)
