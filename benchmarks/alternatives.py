"""What users pick instead of a range test: parameter-free optimizers and a search.

Benchmark extras only (never dependencies of lrscout). On a PyTorch task each
replaces the task's optimizer at its documented defaults (the task's momentum
and weight decay kept), trains for the task's budget and is scored like any
rule (``TorchTask.train(alternative=...)``):

* **Prodigy** (``prodigyopt``): ``lr=1``; its README recommends "either no
  scheduler or cosine annealing", so constant under the constant recipe and
  ``CosineAnnealingLR(T_max=total_steps)`` under the decaying ones.
* **Schedule-free AdamW** and, on SGD tasks, **schedule-free SGD**
  (``schedulefree``) at their default rates (0.0025 and 1.0), no schedule;
  ``optimizer.eval()`` before the validation pass, and the BatchNorm
  statistics recomputed at the evaluation point first (its README's caveat).
* **D-Adaptation** (``dadaptation``): ``DAdaptSGD`` on SGD tasks,
  ``DAdaptAdam`` otherwise (decoupled weight decay for AdamW), ``lr=1``; its
  README says to "use the same learning rate scheduler you would normally
  use", so the recipe's schedule with peak 1 (the linear warm-up one step
  ahead: at a rate of 0 on its first step it divides by zero).
* **DoG** (``dog-optimizer``): ``DoG`` with its defaults, no schedule, scored
  on the ``PolynomialDecayAverager`` model its README says it "must be
  combined with".
* **Optuna** (:func:`optuna_search`): TPE over the rate (log-uniform, the
  grid's span) with truncated runs, given the steps lrscout ran.
"""

from __future__ import annotations

import math
from typing import Any


class Alternative:
    """An optimizer that replaces the task's: how to build it, its schedule, its evaluation point."""

    name = ""

    def runs_on(self, task: Any) -> bool:
        return task.framework == "pytorch"

    def build(self, model: Any, task: Any) -> Any:
        raise NotImplementedError

    def schedule(self, recipe: str) -> str | None:
        """The schedule it trains with under ``recipe`` (``None``: a constant rate)."""
        del recipe
        return None

    def start(self, model: Any, optimizer: Any) -> None:
        del model, optimizer

    def after_step(self) -> None:
        return None

    def for_eval(self, model: Any, optimizer: Any, loader: Any) -> Any:
        """The model to score (after training)."""
        del optimizer, loader
        return model


class Prodigy(Alternative):
    name = "Prodigy"

    def build(self, model, task):
        from prodigyopt import Prodigy as Optimizer

        return Optimizer(model.parameters(), weight_decay=task.optimizer_facts()["weight_decay"])

    def schedule(self, recipe):
        return None if recipe == "constant" else "cosine"


class ScheduleFreeAdamW(Alternative):
    name = "schedule-free AdamW"

    def build(self, model, task):
        from schedulefree import AdamWScheduleFree

        return AdamWScheduleFree(model.parameters(), weight_decay=task.optimizer_facts()["weight_decay"])

    def start(self, model, optimizer):
        optimizer.train()

    def for_eval(self, model, optimizer, loader):
        import itertools

        import torch

        optimizer.eval()
        if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
            model.train()
            with torch.no_grad():
                for xb, _ in itertools.islice(loader, 50):
                    model(xb)
        return model


class ScheduleFreeSGD(ScheduleFreeAdamW):
    name = "schedule-free SGD"

    def runs_on(self, task):
        return super().runs_on(task) and task.optimizer_facts()["family"] == "sgd"

    def build(self, model, task):
        from schedulefree import SGDScheduleFree

        return SGDScheduleFree(model.parameters(), weight_decay=task.optimizer_facts()["weight_decay"])


class DAdaptation(Alternative):
    name = "D-Adaptation"

    def build(self, model, task):
        import dadaptation

        facts = task.optimizer_facts()
        if facts["family"] == "sgd":
            return dadaptation.DAdaptSGD(
                model.parameters(), momentum=facts["momentum"], weight_decay=facts["weight_decay"]
            )
        return dadaptation.DAdaptAdam(
            model.parameters(), weight_decay=facts["weight_decay"], decouple=facts["decoupled"]
        )

    def schedule(self, recipe):
        # D-Adaptation divides by the first step's gradient norm, counted only at a rate
        # above 0: the linear recipe's warm-up (0 at step 0, as in transformers) raises
        # ZeroDivisionError, so its warm-up starts one step in (1/warm-up of the peak).
        return {"constant": None, "linear": "linear, first step > 0"}.get(recipe, recipe)


class DoG(Alternative):
    name = "DoG"

    def build(self, model, task):
        from dog import DoG as Optimizer

        return Optimizer(model.parameters(), weight_decay=task.optimizer_facts()["weight_decay"])

    def start(self, model, optimizer):
        from dog import PolynomialDecayAverager

        self._averager = PolynomialDecayAverager(model)

    def after_step(self):
        self._averager.step()

    def for_eval(self, model, optimizer, loader):
        import torch

        averaged = self._averager.averaged_model
        # The averager also averages buffers; a constant buffer holding -inf (a
        # causal attention mask) becomes NaN at its first step (0 * -inf): keep
        # the model's own value for buffers that are not finite.
        averaged_buffers = dict(averaged.named_buffers())
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                if buffer.is_floating_point() and not torch.isfinite(buffer).all():
                    averaged_buffers[name].copy_(buffer)
        return averaged


ALTERNATIVES: tuple[Alternative, ...] = (
    Prodigy(),
    ScheduleFreeAdamW(),
    ScheduleFreeSGD(),
    DAdaptation(),
    DoG(),
)

OPTUNA = "Optuna (same steps)"
#: Trials of the search: about this many, each a truncated run of budget / TRIALS steps.
TRIALS = 8


def optuna_search(task: Any, seed: int, recipe: str, budget: int) -> dict[str, Any]:
    """Optuna's TPE over the rate, in ``budget`` optimizer steps (what lrscout ran).

    About :data:`TRIALS` trials, each a run of ``budget / TRIALS`` steps (at
    most the task's own budget) from the task's initial weights on 80 % of the
    training set under the recipe's shape (spanning the trial's steps), scored
    on the other 20 %: the held-out fifth lrscout's probes are scored on. The
    first half of the trials sample at random (TPE's start-up), the rest by
    TPE. Returns the best rate, the trials and the steps they used.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    total = task.total_steps(seed)
    trial_steps = min(total, max(10, math.ceil(budget / TRIALS)))
    trials = max(2, budget // trial_steps)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(1, trials // 2))
    study = optuna.create_study(direction="minimize", sampler=sampler)

    def objective(trial: Any) -> float:
        lr = trial.suggest_float("lr", 1e-5, 10.0, log=True)
        return task.train(lr, seed, recipe, steps=trial_steps, holdout=True)

    study.optimize(objective, n_trials=trials)
    return {
        "lr": float(study.best_params["lr"]),
        "trials": trials,
        "trial_steps": trial_steps,
        "steps": trials * trial_steps,
        "scores": [float(t.value) for t in study.trials],
    }
