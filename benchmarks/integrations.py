"""lrscout's framework integrations against the frameworks' own LR finders: wall time and suggestion.

- Lightning: ``lrscout.lightning.find_lr(trainer, model, ...)`` against
  ``lightning.pytorch.tuner.Tuner(trainer).lr_find(model, ...)``;
- fastai (where installed): ``lrscout.fastai.find_lr(learn, ...)`` against
  ``learn.lr_find()``, and fastai's run read by ``lrscout.fastai.auto``.

Both sides train the same 64-128-10 MLP (ReLU) on scikit-learn's digits
(bundled, no network), batch 32, SGD with momentum 0.9, for 100 steps of an
exponential ramp from 1e-7 to 10 (divergence stopping on, each side's own
rule; then with stopping off and the ramp ending at 1, so both run all 100
steps), on one CPU thread. Each method runs once to warm up, then ``--rounds``
times in turn; the table gives the median and the minimum wall time
(``time.perf_counter``: these are whole calls, with each side's setup and
restore), the steps run, the median per step, and each side's suggested learning rate (lrscout's
default rule; Lightning's steepest-gradient ``suggestion()``; fastai's
``valley``). Both restore the model afterwards: Lightning's tuner through a
checkpoint file, fastai's through ``learn.save``/``learn.load``, lrscout in
memory.

Run: ``python benchmarks/integrations.py [--rounds 5]``. Needs ``lightning``
(and fastai for its rows; see ``benchmarks/record_peer_fixtures.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

START_LR, END_LR, NUM_STEPS, BATCH_SIZE = 1e-7, 10.0, 100, 32


def digits_loader() -> DataLoader[Any]:
    X, y = load_digits(return_X_y=True)
    X = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-8)
    data = TensorDataset(torch.tensor(X, dtype=torch.float32), torch.tensor(y))
    return DataLoader(data, batch_size=BATCH_SIZE, shuffle=True, generator=torch.Generator().manual_seed(0))


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))


# Lightning ---------------------------------------------------------------------------


def lightning_methods(folder: str) -> dict[str, Callable[[], tuple[int, float | None]]]:
    import lightning.pytorch as pl
    from lightning.pytorch.tuner import Tuner

    from lrscout.lightning import find_lr

    class Classifier(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.lr = 0.01
            self.net = mlp()

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            return nn.functional.cross_entropy(self.net(x), y)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)

    def trainer() -> Any:
        # Lightning's tuner stops at the trainer's max_epochs (57 steps an epoch here).
        return pl.Trainer(
            accelerator="cpu",
            max_epochs=10,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=folder,
        )

    def lrscout_side(stop: bool) -> Callable[[], tuple[int, float | None]]:
        def run() -> tuple[int, float | None]:
            result = find_lr(
                trainer(),
                Classifier(),
                train_dataloaders=digits_loader(),
                start_lr=START_LR,
                end_lr=END_LR if stop else 1.0,
                num_steps=NUM_STEPS,
                stop_on_divergence=stop,
                extend=False,
                progress=False,
            )
            return len(result), _suggestion(lambda: result.suggestion.lr)

        return run

    def tuner_side(stop: bool) -> Callable[[], tuple[int, float | None]]:
        def run() -> tuple[int, float | None]:
            found = Tuner(trainer()).lr_find(
                Classifier(),
                train_dataloaders=digits_loader(),
                min_lr=START_LR,
                max_lr=END_LR if stop else 1.0,
                num_training=NUM_STEPS,
                early_stop_threshold=4.0 if stop else None,
                update_attr=False,
            )
            assert found is not None
            return len(found.results["lr"]), found.suggestion()

        return run

    return {
        "lightning: lrscout find_lr": lrscout_side(True),
        "lightning: Tuner.lr_find": tuner_side(True),
        "lightning, no stop, end 1: lrscout": lrscout_side(False),
        "lightning, no stop, end 1: Tuner": tuner_side(False),
    }


# fastai ------------------------------------------------------------------------------


def fastai_methods() -> dict[str, Callable[[], tuple[int, float | None]]]:
    try:
        from fastai.callback.schedule import valley
        from fastai.data.core import DataLoaders
        from fastai.learner import Learner
        from fastai.optimizer import SGD
    except ImportError:
        return {}
    from functools import partial

    from lrscout.fastai import auto_for, find_lr

    def learner() -> Any:
        dls = DataLoaders(digits_loader(), digits_loader())
        return Learner(dls, mlp(), loss_func=nn.CrossEntropyLoss(), opt_func=partial(SGD, mom=0.9))

    def lrscout_side() -> tuple[int, float | None]:
        learn = learner()
        result = find_lr(
            learn, start_lr=START_LR, end_lr=END_LR, num_steps=NUM_STEPS, extend=False, progress=False
        )
        return len(result), _suggestion(lambda: result.suggestion.lr)

    def fastai_side(rule: str) -> Callable[[], tuple[int, float | None]]:
        def run() -> tuple[int, float | None]:
            learn = learner()
            funcs = (valley,) if rule == "valley" else (auto_for(learn),)
            with learn.no_bar(), learn.no_logging(), warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # fastai's own reload, on NumPy 2
                found = learn.lr_find(START_LR, END_LR, NUM_STEPS, show_plot=False, suggest_funcs=funcs)
            return len(learn.recorder.lrs), float(found[0])

        return run

    return {
        "fastai: lrscout find_lr": lrscout_side,
        "fastai: lr_find + valley": fastai_side("valley"),
        "fastai: lr_find + lrscout auto_for": fastai_side("auto"),
    }


def _suggestion(read: Callable[[], float]) -> float | None:
    try:
        return read()
    except ValueError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")  # frameworks' advice for real training (loader workers, ...)
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as folder:
        methods = {**lightning_methods(folder), **fastai_methods()}
        times: dict[str, list[float]] = {name: [] for name in methods}
        outcome: dict[str, tuple[int, float | None]] = {}
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            for method in methods.values():
                method()  # warm-up
            for _ in range(options.rounds):
                for name, method in methods.items():
                    began = time.perf_counter()
                    outcome[name] = method()
                    times[name].append(time.perf_counter() - began)
    print(f"torch {torch.__version__}, {options.rounds} rounds, {NUM_STEPS} planned steps, one CPU thread")
    print(
        f"{'method':36s} {'median s':>9s} {'min s':>7s} {'steps':>6s} {'ms/step':>8s} {'suggested lr':>13s}"
    )
    for name, measured in times.items():
        steps, lr = outcome[name]
        shown = "none" if lr is None else f"{lr:.3g}"
        median = statistics.median(measured)
        print(
            f"{name:36s} {median:9.3f} {min(measured):7.3f} {steps:6d} "
            f"{1000 * median / steps:8.2f} {shown:>13s}"
        )


if __name__ == "__main__":
    main()
