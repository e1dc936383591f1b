"""Does training at the suggested learning rate work? lrscout against its peers, under three recipes.

    python benchmarks/suggestion_quality.py                # everything (cached, resumable)
    python benchmarks/suggestion_quality.py --quick        # 1 seed
    python benchmarks/suggestion_quality.py --split "held-out 4" --recipes linear
    python benchmarks/suggestion_quality.py --markdown     # writes the tables: docs page and README

For every task (``quality_tasks.py``, ``held_out_4.py``), seed and recipe
(``constant`` rate; ``one_cycle``, torch's ``OneCycleLR`` from max_lr / 8 to
max_lr; ``linear`` decay to 0 after a 10 % warm-up, Hugging Face's default),
an oracle grid of rates (6 per decade, 1e-5 to 10; the peak rate for the
decaying recipes) each trained for the task's fixed budget of T optimizer
steps from the same initial weights and batch order, scored by validation
loss; then every rule's rate trained the same way. Regret = validation loss
at the rule's rate / the best grid point's, for that recipe. A run that
diverges scores the untrained model's validation loss; the grid is swept out
from 1e-2 and stops a decade past where the loss has flattened out at
divergence or at no training (``grid_losses``). Rules:

* lrscout ``auto`` (the default): ``result.suggest(schedule=recipe,
  total_steps=T)`` on lrscout's range test as ``find_lr`` runs it; for
  one-cycle, ``OneCycleLR`` over ``result.lr_range(total_steps=T)``.
* lrscout ``refined``: ``find_lr(refine=True)`` (NumPy and PyTorch tasks), the
  same calls on its result.
* lrscout ``auto, holdout`` and ``refined, holdout`` (PyTorch tasks): the test
  and its probes train on 80 % of the training set and the probes are scored
  on the other 20 % (``refine=`` a loader of those batches), as a user with a
  validation split would; ``auto, holdout`` is the same result's ``"auto"``
  suggestion. The benchmark's validation set, which scores every rule, is
  never read. Where ``find_lr`` takes the plan (``schedule=``,
  ``total_steps=``), the refined tests are run once per recipe with it.
* fastai's ``valley`` and ``minimum/10`` on the same curve: lrscout's
  ``valley`` and ``minimum`` methods, which are checked against the real fastai
  functions on recorded curves (tests/test_peer_rules.py).
* "tlf rule": torch-lr-finder's steepest-gradient rule (lrscout's
  ``steepest``) on lrscout's curve, for every task.
* Lightning's rule, re-implemented (every task): steepest slope of the
  smoothed loss against the *linear* learning rate, skipping the first 10 and
  the last point, on its default test (exponential 1e-8 to 1, 100 steps).
* Lightning's Tuner and torch-lr-finder, the real libraries with their
  defaults (PyTorch tasks only).

The peers' rates, which know no plan, are used as the constant rate or as the
peak of the decaying schedule (one-cycle from an eighth of it, as the grid).

The tools users pick instead (``alternatives.py``, PyTorch tasks): Prodigy,
schedule-free AdamW and SGD, D-Adaptation and DoG at their documented
defaults in place of the task's optimizer, and an Optuna search over the rate
given the optimizer steps lrscout's validated run took (its test and probes),
scored against the same oracle; their cost is in training-run equivalents
(steps, the final training included, / T).

Two measures of the benchmark's own noise floor, per recipe: ``best x1.05``
and ``best /1.05`` train at the grid's best rate moved by 5 %; ``hindsight``
is the one grid rate per task that is best over all its seeds.

Tasks are split into "design" (used while choosing the default rule),
"held-out", "held-out 2", "held-out 3" and "held-out 4" (each written and
committed before a change to the rule was scored on it); the share of
task-seeds within 10 % of the grid's best leads, and the targets are printed
beside each summary. Results are cached in ``benchmarks/.cache/quality3/``
per task, seed and recipe as each run finishes, so an interrupted run
resumes; the range tests are rerun when lrscout's source changes (the trained
losses, keyed by task, seed, recipe and rate, stay); ``--fresh`` recomputes
everything.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import math
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import quality_tasks
from alternatives import ALTERNATIVES, OPTUNA, optuna_search
from held_out_4 import HELD_OUT_4
from quality_tasks import ONE_CYCLE_DIV, RECIPES, Task, grid_for

TASKS: list[Task] = [*quality_tasks.TASKS, *HELD_OUT_4]
SPLITS = ("design", "held-out", "held-out 2", "held-out 3", "held-out 4")

CACHE = Path(__file__).resolve().parent / ".cache" / "quality3"
CACHE_VERSION = 3  # 3: per task-seed-recipe files; recipes; alternatives
FLOOR_SHIFTS = {"grid best x1.05": 1.05, "grid best /1.05": 1 / 1.05}
HINDSIGHT = "hindsight task lr"
# The integrations with the refinement stage (find_lr(refine=...)).
REFINED_FRAMEWORKS = ("numpy", "pytorch")

RULES = [
    "lrscout auto",
    "lrscout refined",
    "lrscout auto, holdout",
    "lrscout refined, holdout",
    "fastai valley",
    "fastai minimum/10",
    "lightning",
    "Lightning Tuner",
    "torch-lr-finder",
    "torch-lr-finder rule",
]
FLOORS = [*FLOOR_SHIFTS, HINDSIGHT]
ALTERNATIVE_COLUMNS = [
    "lrscout auto",
    "lrscout refined, holdout",
    *(alternative.name for alternative in ALTERNATIVES),
    OPTUNA,
]
#: The targets (issue 18), per split and recipe.
TARGETS = {"within 10%": ">= 80%", "geo-mean": "<= 1.05", "worst": "<= 1.5"}


def find_task(name: str) -> Task:
    for task in TASKS:
        if task.name == name:
            return task
    raise KeyError(name)


# Peers' rules -------------------------------------------------------------------------


def lightning_steepest(result) -> float:
    lrs = result.lrs[10:-1]
    losses = result.smoothed_losses[10:-1]
    keep = np.isfinite(losses)
    lrs, losses = lrs[keep], losses[keep]
    return float(lrs[int(np.argmin(np.gradient(losses, lrs)))])


# The cache ------------------------------------------------------------------------


class Store:
    """A JSON file of results, written after every new entry (an interrupted run resumes)."""

    def __init__(self, path: Path, fresh: bool) -> None:
        self.path = path
        data = json.loads(path.read_text()) if path.exists() and not fresh else {}
        self.data = data if data.get("version") == CACHE_VERSION else {"version": CACHE_VERSION}

    def get(self, key: str, compute):
        if key not in self.data:
            self.data[key] = compute()
            self.save()
        return self.data[key]

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.data))
        temporary.replace(self.path)


def lrscout_source() -> str:
    """A digest of the lrscout package being measured: its range tests are rerun when it changes."""
    import hashlib

    import lrscout

    digest = hashlib.sha256()
    for path in sorted(Path(lrscout.__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _takes_plan(task: Task) -> bool:
    """Whether the task's ``find_lr`` takes the training plan (``schedule=``, ``total_steps=``)."""
    if task.framework == "numpy":
        from lrscout.models import find_lr
    elif task.framework == "pytorch":
        from lrscout.pytorch import LRFinder

        find_lr = LRFinder.range_test
    else:
        from lrscout.keras import find_lr
    return "schedule" in inspect.signature(find_lr).parameters


def _steps_run(record: Any) -> int:
    """Every probe's ``steps_run`` in a refinement record, however it nests them."""
    if isinstance(record, dict):
        own = record.get("steps_run", 0)
        return (own if isinstance(own, int) else 0) + sum(
            _steps_run(v) for k, v in record.items() if k != "steps_run"
        )
    if isinstance(record, list):
        return sum(_steps_run(v) for v in record)
    return 0


# Rates --------------------------------------------------------------------------------

Rate = tuple[float, float]  # (peak or constant rate, one-cycle div_factor)


def _without_refinement(result):
    return dataclasses.replace(result, info={k: v for k, v in result.info.items() if k != "refinement"})


def _lrscout(result, recipe: str, total: int, *, refined: bool) -> Rate | None:
    """lrscout's rate for the recipe: ``suggest(schedule=, total_steps=)``, ``lr_range()`` for one-cycle."""
    from lrscout import NoSuggestionError

    if result is None or (refined and "refinement" not in result.info):
        return None  # no default suggestion, nothing refined
    chosen = result if refined else _without_refinement(result)
    try:
        if recipe == "one_cycle":
            base, peak = chosen.lr_range(total_steps=total)
            return peak, peak / base
        return chosen.suggest(schedule=recipe, total_steps=total).lr, ONE_CYCLE_DIV
    except NoSuggestionError:
        return None


def _peer(lr: float | None) -> Rate | None:
    return None if lr is None else (float(lr), ONE_CYCLE_DIV)


def _tests(task: Task, seed: int, store: Store, recipe: str, total: int) -> dict[str, Any]:
    """The range tests (and the real peers' answers) the rules read, for one recipe."""
    from lrscout import RangeTestResult

    def curve(key, **settings):
        record = store.get(key, lambda: _or_error(lambda: task.range_test(seed, **settings).to_dict()))
        return None if _failed(record, task, key) else RangeTestResult.from_dict(record)

    def peer(key, run):
        answer = store.get(key, lambda: _or_error(run))
        return None if _failed(answer, task, key) else answer

    plan = {"schedule": recipe, "total_steps": total} if _takes_plan(task) else {}
    suffix = f"/{recipe}" if plan else ""
    tests: dict[str, Any] = {
        "lrscout": curve("curve lrscout"),
        "lightning": curve("curve lightning", start_lr=1e-8, end_lr=1.0),
    }
    if task.framework in REFINED_FRAMEWORKS:
        tests["refined"] = curve(f"curve refined{suffix}", refine=True, **plan)
    if task.framework == "pytorch":
        tests["holdout"] = curve(f"curve holdout{suffix}", holdout=True, refine="holdout", **plan)
        tests["Lightning Tuner"] = peer("Lightning Tuner", lambda: task.lightning_tuner(seed))
        tests["torch-lr-finder"] = peer("torch-lr-finder", lambda: task.torch_lr_finder(seed))
    return tests


def _or_error(compute):
    """``compute()``, or what it raised: a tool that fails on a task is a result, not the end of the run."""
    try:
        return compute()
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}"}


def _failed(record: Any, task: Task, what: str) -> bool:
    if isinstance(record, dict) and set(record) == {"error"}:
        print(f"  {task.name}: {what} failed: {record['error'][:300]}", file=sys.stderr)
        return True
    return False


def _rates(task: Task, tests: dict[str, Any], recipe: str, total: int) -> dict[str, Any]:
    """Every rule's rate for the recipe: a Rate, ``None`` (no suggestion) or ``"n/a"``."""
    ours = tests["lrscout"]  # None (and every test below) where the integration raised
    rates: dict[str, Any] = {"lrscout auto": _lrscout(ours, recipe, total, refined=False)}
    rates["lrscout refined"] = (
        _lrscout(tests["refined"], recipe, total, refined=True) if "refined" in tests else "n/a"
    )
    if "holdout" in tests:
        rates["lrscout auto, holdout"] = _lrscout(tests["holdout"], recipe, total, refined=False)
        rates["lrscout refined, holdout"] = _lrscout(tests["holdout"], recipe, total, refined=True)
    else:
        rates["lrscout auto, holdout"] = rates["lrscout refined, holdout"] = "n/a"
    for rule, method in (
        ("fastai valley", "valley"),
        ("fastai minimum/10", "minimum"),
        ("torch-lr-finder rule", "steepest"),
    ):
        try:
            rates[rule] = None if ours is None else _peer(ours.suggest(method).lr)
        except ValueError:  # NoSuggestionError: the curve cannot support it
            rates[rule] = None
    lightning = tests["lightning"]
    rates["lightning"] = _peer(
        lightning_steepest(lightning) if lightning is not None and len(lightning) > 12 else None
    )
    for rule in ("Lightning Tuner", "torch-lr-finder"):
        rates[rule] = _peer(tests[rule]) if rule in tests else "n/a"
    return rates


def _cost(task: Task, tests: dict[str, Any], rule: str, total: int) -> float | None:
    """Optimizer steps a lrscout rate took, the final training included, in training runs."""
    key = {
        "lrscout auto": "lrscout",
        "lrscout refined": "refined",
        "lrscout auto, holdout": "holdout",
        "lrscout refined, holdout": "holdout",
    }[rule]
    result = tests.get(key)
    if result is None:
        return None
    steps = len(result) + (_steps_run(result.info.get("refinement", {})) if "refined" in rule else 0)
    return 1 + steps / total


# Evaluation ---------------------------------------------------------------------


#: The grid is trained outward from 1e-2, up then down, and each sweep stops after
#: STOP_AFTER (a decade) consecutive flat points: a point is flat when it recovers
#: at most 10 % of the way from the untrained loss to the best so far (the running
#: best only falls, so a point once flat stays flat). Up, past such a run the loss
#: only diverges; down, it only learns less, so the downward sweep counts flat
#: points once some rate has trained to 90 % of the untrained loss or lower (a
#: start above the divergence point is flat too). The points left out count at the
#: untrained loss.
GRID_START, STOP_AFTER, FLAT = 1e-2, 6, 0.9


def grid_losses(grid: np.ndarray, trained, initial: float) -> list[float | None]:
    """The grid's validation losses (``None`` where the sweep stopped before the point)."""
    losses: list[float | None] = [None] * len(grid)
    start = int(np.argmin(np.abs(np.log(grid / GRID_START))))
    best = math.inf
    for step in (1, -1):
        run, i = 0, start if step == 1 else start - 1
        while 0 <= i < len(grid) and run < STOP_AFTER:
            loss = trained(float(grid[i]))
            losses[i], best = loss, min(best, loss)
            counting = step == 1 or best <= 0.9 * initial
            run = run + 1 if counting and loss >= best + FLAT * (initial - best) else 0
            i += step
    return losses


def _key(rate: Rate, recipe: str) -> str:
    return f"{rate[0]!r}/{rate[1]!r}" if recipe == "one_cycle" else repr(rate[0])


def evaluate(args: tuple[str, int, tuple[str, ...], bool, bool]) -> list[dict]:
    """Every recipe for one task and seed (run in a worker process): one row per recipe."""
    name, seed, recipes, with_alternatives, fresh = args
    task = find_task(name)
    # A fresh process per job (maxtasksperchild=1): Keras's backend is chosen before it is imported.
    os.environ.update({"KERAS_BACKEND": "torch", **task.env})
    import warnings

    warnings.simplefilter("ignore")
    shared = Store(CACHE / f"{task.name}-seed{seed}.json", fresh)
    source = lrscout_source()
    if shared.data.get("lrscout source") != source:
        # The rule or the refinement changed: its range tests (and probes) are rerun; the trained
        # losses, keyed by rate, recipe and task, stay.
        shared.data = {k: v for k, v in shared.data.items() if not k.startswith("curve ")}
        shared.data["lrscout source"] = source
        shared.save()
    total = shared.get("total_steps", lambda: task.total_steps(seed))
    initial = shared.get("initial loss", lambda: task.initial_loss(seed))
    rows = []
    for recipe in recipes:
        began = time.perf_counter()
        store = Store(CACHE / f"{task.name}-seed{seed}-{recipe}.json", fresh)

        def trained(rate: Rate, recipe=recipe, store=store) -> float:
            return store.get(
                _key(rate, recipe), lambda: task.train(rate[0], seed, recipe, div_factor=rate[1])
            )

        grid = grid_for(task)
        swept = grid_losses(grid, lambda lr, trained=trained: trained((lr, ONE_CYCLE_DIV)), initial)
        losses = [initial if v is None else v for v in swept]
        best = int(np.argmin(losses))
        if not losses[best] > 0:
            raise ValueError(f"{name} seed {seed} {recipe}: the validation loss reached 0; no regret")
        tests = _tests(task, seed, shared, recipe, total)
        rates = _rates(task, tests, recipe, total)
        regrets: dict[str, Any] = {}
        for label, factor in FLOOR_SHIFTS.items():
            regrets[label] = trained((float(grid[best]) * factor, ONE_CYCLE_DIV)) / losses[best]
        for rule, rate in rates.items():
            regrets[rule] = rate if rate is None or rate == "n/a" else trained(rate) / losses[best]
        costs = {rule: _cost(task, tests, rule, total) for rule in RULES[:4]}
        if with_alternatives:
            for alternative in ALTERNATIVES:
                if not alternative.runs_on(task):
                    regrets[alternative.name] = "n/a"
                    continue
                key = f"{alternative.name}/{alternative.schedule(recipe)}"
                loss = shared.get(
                    key,
                    lambda alternative=alternative, recipe=recipe: _or_error(
                        lambda: task.train(1.0, seed, recipe, alternative=alternative)
                    ),
                )
                regrets[alternative.name] = None if _failed(loss, task, key) else loss / losses[best]
                costs[alternative.name] = 1.0
            holdout = tests.get("holdout")
            if holdout is None:
                regrets[OPTUNA] = "n/a"
            else:
                budget = len(holdout) + _steps_run(holdout.info.get("refinement", {}))
                search = store.get(
                    f"optuna {budget}",
                    lambda recipe=recipe, budget=budget: optuna_search(task, seed, recipe, budget),
                )
                rates[OPTUNA] = (search["lr"], ONE_CYCLE_DIV)
                regrets[OPTUNA] = trained(rates[OPTUNA]) / losses[best]
                costs[OPTUNA] = 1 + search["steps"] / total
        rows.append(
            {
                "task": name,
                "seed": seed,
                "recipe": recipe,
                "total_steps": total,
                "best_lr": float(grid[best]),
                "best_loss": float(losses[best]),
                "grid_losses": [float(v) for v in losses],
                "grid_trained": sum(v is not None for v in swept),
                "rates": rates,
                "regrets": regrets,
                "costs": costs,
                "seconds": time.perf_counter() - began,
            }
        )
    return rows


# Report ---------------------------------------------------------------------------


def _groups(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["task"], row["recipe"]), []).append(row)
    return groups


def add_hindsight(rows: list[dict]) -> None:
    """Regret of the one grid rate per task and recipe that is best over all its seeds.

    Chosen after seeing every seed's validation losses: no rule that reads a
    range-test curve knows as much. What it still misses is how far each
    seed's best rate strays from the task's.
    """
    for group in _groups(rows).values():
        log_regret = sum(np.log(np.asarray(row["grid_losses"]) / row["best_loss"]) for row in group)
        chosen = int(np.argmin(log_regret))
        for row in group:
            row["regrets"][HINDSIGHT] = row["grid_losses"][chosen] / row["best_loss"]


def _gmean(values: list[float]) -> float:
    return float(math.exp(np.mean(np.log(values)))) if values else math.nan


def _share_within(values: list[float | None], tolerance: float = 1.10) -> float:
    """Share of task-seeds trained to within 10 % of the grid's best (a failure counts as a miss)."""
    return sum(v is not None and v <= tolerance for v in values) / len(values)


#: Column titles, at most 10 characters.
SHORT = {
    "lrscout auto": "auto",
    "lrscout refined": "refined",
    "lrscout auto, holdout": "auto hold",
    "lrscout refined, holdout": "ref. hold",
    "fastai valley": "fastai val",
    "fastai minimum/10": "fastai min",
    "lightning": "Ltng rule",
    "Lightning Tuner": "Ltng tuner",
    "torch-lr-finder": "tlf",
    "torch-lr-finder rule": "tlf rule",
    "grid best x1.05": "best x1.05",
    "grid best /1.05": "best /1.05",
    HINDSIGHT: "hindsight",
    "Prodigy": "Prodigy",
    "schedule-free AdamW": "SF AdamW",
    "schedule-free SGD": "SF SGD",
    "D-Adaptation": "D-Adapt",
    "DoG": "DoG",
    OPTUNA: "Optuna",
}
MEASURES = (("within 10%", _share_within), ("geo-mean", _gmean), ("worst", max))


def _cell(values: list, reduce) -> str:
    """A cell: ``reduce`` over the regrets where the rule ran ("n/a": nowhere; "fails": no suggestion)."""
    values = [v for v in values if v != "n/a"]
    if not values:
        return "n/a"
    if reduce is _share_within:
        return f"{reduce(values):.0%}"
    if any(v is None for v in values):
        return "fails"
    return f"{reduce(values):.3f}"


def _selections(rows: list[dict], pytorch_only: bool) -> list[tuple[str, list[dict]]]:
    """Each split, then all of them (the split's PyTorch tasks alone with ``pytorch_only``)."""
    out = []
    present = [s for s in SPLITS if any(find_task(row["task"]).split == s for row in rows)]
    for split in [*present, "all"]:
        chosen = [
            row
            for row in rows
            if (split == "all" or find_task(row["task"]).split == split)
            and (not pytorch_only or find_task(row["task"]).framework == "pytorch")
        ]
        if chosen:
            out.append((f"{split}, PyTorch" if pytorch_only else split, chosen))
    return out


def per_task_table(rows: list[dict], recipe: str, columns: list[str]) -> list[list[str]]:
    groups = _groups(rows)
    table = [["task", "split", "steps", "best lr", *(SHORT.get(c, c) for c in columns)]]
    for task in TASKS:
        group = groups.get((task.name, recipe))
        if group:
            cells = [_cell([row["regrets"].get(c) for row in group], _gmean) for c in columns]
            best = _gmean([row["best_lr"] for row in group])
            table.append([task.name, task.split, str(group[0]["total_steps"]), f"{best:.2g}", *cells])
    return table


def summary_table(rows: list[dict], recipe: str, columns: list[str], *, pytorch_only=False, cost=False):
    """Split x measure for one recipe, the targets beside (and the mean cost with ``cost``)."""
    chosen_rows = [row for row in rows if row["recipe"] == recipe]
    table = [["split", "measure", *(SHORT.get(c, c) for c in columns), "target"]]
    selections = _selections(chosen_rows, False) if not pytorch_only else []
    selections += _selections(chosen_rows, True) if pytorch_only or not cost else []
    for name, chosen in selections:
        for label, reduce in MEASURES:
            cells = [_cell([row["regrets"].get(c) for row in chosen], reduce) for c in columns]
            table.append([name, label, *cells, TARGETS[label]])
        if cost:
            means = []
            for c in columns:
                values = [row["costs"].get(c) for row in chosen if row["costs"].get(c) is not None]
                means.append(f"{np.mean(values):.2f}" if values else "n/a")
            table.append([name, "cost (runs)", *means, ""])
    return table


def short_table(rows: list[dict], columns: list[str]) -> list[list[str]]:
    """One line per recipe and measure, over every task-seed (the first table of the docs page)."""
    table = [["recipe", "measure", *(SHORT.get(c, c) for c in columns), "target"]]
    for recipe in RECIPES:
        chosen = [row for row in rows if row["recipe"] == recipe]
        if not chosen:
            continue
        for label, reduce in MEASURES:
            cells = [_cell([row["regrets"].get(c) for row in chosen], reduce) for c in columns]
            table.append([recipe, label, *cells, TARGETS[label]])
    return table


def as_text(table: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = [
        " ".join(
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in table
    ]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])


def as_markdown(table: list[list[str]]) -> str:
    lines = ["| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in table[1:])])


ROOT = Path(__file__).resolve().parents[1]
#: Where ``--markdown`` writes: the docs site's page gets the wide tables, the README a short one.
PAGE, README = ROOT / "docs" / "benchmarks.md", ROOT / "README.md"
#: The README's rows: lrscout's rules, the peers' and the noise floor (one-cycle is a recipe).
README_RULES = [
    "lrscout auto",
    "lrscout refined",
    "lrscout refined, holdout",
    "fastai valley",
    "fastai minimum/10",
    "lightning",
    "Lightning Tuner",
    "torch-lr-finder",
    HINDSIGHT,
]


def readme_table(summary: list[list[str]]) -> list[list[str]]:
    """The README's summary: the "all" and "all, PyTorch" rows of a recipe's ``summary_table``, by rule."""
    header, rows = summary[0], {(row[0], row[1]): row for row in summary[1:]}
    measures = ("within 10%", "geo-mean", "worst")
    table = [["rule", *measures, *(f"{measure}, PyTorch" for measure in measures)]]
    for rule in README_RULES:
        column = header.index(SHORT[rule])
        table.append(
            [SHORT[rule], *(rows[(split, m)][column] for split in ("all", "all, PyTorch") for m in measures)]
        )
    return table


def write_block(path: Path, name: str, text: str) -> None:
    """Replace what stands between ``path``'s markers for ``name`` with ``text``."""
    begin = f"<!-- begin {name}: written by benchmarks/suggestion_quality.py --markdown -->"
    end = f"<!-- end {name} -->"
    page = path.read_text(encoding="utf-8")
    head, found, rest = page.partition(begin)
    _, closed, tail = rest.partition(end)
    if not (found and closed):
        raise SystemExit(f"{path}: no {begin!r} ... {end!r} block to write the tables into")
    path.write_text(f"{head}{begin}\n{text.strip()}\n{end}{tail}", encoding="utf-8")


def write_markdown(rows: list[dict], with_alternatives: bool) -> None:
    """The tables as Markdown: all of them on the docs page, the constant recipe's summary in the README."""
    write_block(PAGE, "quality tables", report(rows, True, with_alternatives))
    try:
        summary = readme_table(summary_table(rows, "constant", [*RULES, *FLOORS]))
    except KeyError:  # a run without the constant recipe, or without a PyTorch task
        print(f"wrote the tables to {PAGE.relative_to(ROOT)}; the README's summary needs the constant recipe")
        return
    write_block(README, "quality summary", as_markdown(summary))
    print(f"wrote the tables to {PAGE.relative_to(ROOT)} and {README.relative_to(ROOT)}")


def report(rows: list[dict], markdown: bool, with_alternatives: bool) -> str:
    render = as_markdown if markdown else as_text
    columns = [*RULES, *FLOORS]
    recipes = [r for r in RECIPES if any(row["recipe"] == r for row in rows)]
    heading = "### " if markdown else "== "
    parts = [
        "Regret = validation loss at the rule's rate / best of a 6-per-decade grid for the same recipe "
        "(1.000 = as good as the grid's best); cells over the task-seeds where a rule runs.",
        f"{heading}Summary: every task-seed",
        render(short_table(rows, ["lrscout auto", "lrscout refined, holdout", *RULES[4:], HINDSIGHT])),
    ]
    for recipe in recipes:
        parts += [f"{heading}Recipe {recipe}: summary", render(summary_table(rows, recipe, columns))]
        if with_alternatives:
            parts += [
                f"{heading}Recipe {recipe}: the tools users pick instead "
                "(PyTorch tasks; cost in training runs)",
                render(summary_table(rows, recipe, ALTERNATIVE_COLUMNS, pytorch_only=True, cost=True)),
            ]
    for recipe in recipes:
        extra = ALTERNATIVE_COLUMNS[2:] if with_alternatives else []
        parts += [
            f"{heading}Recipe {recipe}: per task (geometric mean over seeds)",
            render(per_task_table(rows, recipe, [*columns, *extra])),
        ]
    return "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tasks", nargs="*", help="run only these tasks")
    parser.add_argument("--split", nargs="*", choices=SPLITS, help="run only these splits")
    parser.add_argument("--recipes", nargs="*", choices=RECIPES, default=list(RECIPES))
    parser.add_argument("--no-alternatives", action="store_true", help="leave out Prodigy, ..., Optuna")
    parser.add_argument("--fresh", action="store_true", help="ignore the cache")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", help="write all rows to this file")
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="write the tables as Markdown into docs/benchmarks.md and the README's summary",
    )
    options = parser.parse_args()
    seeds = [0] if options.quick else list(range(options.seeds))
    names = options.tasks or [t.name for t in TASKS if not options.split or t.split in options.split]
    recipes = tuple(r for r in RECIPES if r in options.recipes)
    with_alternatives = not options.no_alternatives
    jobs = [(name, seed, recipes, with_alternatives, options.fresh) for name in names for seed in seeds]

    # The longest jobs first (Keras on JAX, then on TensorFlow, then held-out 4), so that
    # neither of the workers (one pool, a fresh process per job) idles at the end.
    first = {"jax": 0, "tensorflow": 1}

    def order(job):
        task = find_task(job[0])
        return first.get(task.env.get("KERAS_BACKEND", ""), 2), task.split != "held-out 4"

    jobs.sort(key=order)
    began = time.perf_counter()
    rows: list[dict] = []
    with multiprocessing.get_context("spawn").Pool(options.workers, maxtasksperchild=1) as pool:
        for done in pool.imap_unordered(evaluate, jobs):
            rows += done
            seconds = sum(row["seconds"] for row in done)
            print(f"  {done[0]['task']} seed {done[0]['seed']}: {seconds:.1f} s", file=sys.stderr)
    add_hindsight(rows)
    if options.markdown:
        write_markdown(rows, with_alternatives)
    else:
        print(report(rows, False, with_alternatives))
    print(f"\n{len(jobs)} task-seeds x {len(recipes)} recipes in {time.perf_counter() - began:.0f} s")
    if options.json:
        Path(options.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
