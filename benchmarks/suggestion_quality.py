"""Does training at the suggested learning rate work? lrscout against its peers.

    python benchmarks/suggestion_quality.py             # full suite, ~6.5 min on 2 cores (cached after)
    python benchmarks/suggestion_quality.py --quick     # 1 seed
    python benchmarks/suggestion_quality.py --markdown  # writes the tables: docs page and README

For every task (``quality_tasks.py``) and seed: an oracle grid of constant
learning rates (6 per decade, 1e-5 to 10) each trained for the task's fixed
budget from the same initial weights and batch order, scored by validation
loss; then every rule's suggestion trained the same way. Regret = validation
loss at the suggestion / the best grid point's. A run that diverges scores
the untrained model's validation loss. Rules:

* lrscout ``auto`` (the default), on lrscout's range test as the one-call
  ``find_lr`` runs it (exponential 1e-7 to 10, 100 steps, EMA 0.98, stop at
  4x the best smoothed loss, extended past 10 while the loss has not turned up).
* lrscout ``refined``: ``find_lr(refine=True)`` (NumPy and PyTorch tasks):
  the same test, then probe runs from the same start at the default
  suggestion and a third of it, the lower-ending probe kept.
* lrscout ``auto, holdout`` and ``refined, holdout`` (PyTorch tasks): the
  test and its probes train on 80 % of the training set, and the probes are
  scored on the other 20 % (``refine=validation batches``), as a user with a
  validation split would; the benchmark's validation set, which scores every
  rule, is never read.
* fastai's ``valley`` and ``minimum/10`` on the same curve: lrscout's
  ``valley`` and ``minimum`` methods, which are checked against the real fastai
  functions on recorded curves (tests/test_peer_rules.py). fastai's defaults
  are the same range-test settings.
* "tlf rule": torch-lr-finder's steepest-gradient rule (lrscout's
  ``steepest``) on lrscout's curve, for every task.
* Lightning's rule, re-implemented (every task): steepest slope of the
  smoothed loss against the *linear* learning rate, skipping the first 10 and
  the last point, on its default test (exponential 1e-8 to 1, 100 steps, EMA
  0.98, stop at 4x), run by lrscout.
* Lightning's Tuner, the real library (PyTorch tasks only):
  ``Tuner(trainer).lr_find(module, train_dataloaders=loader)`` with its
  defaults on the task's model, optimizer and loader in a LightningModule,
  suggestion from ``lr_finder.suggestion()``.
* torch-lr-finder, the real library (PyTorch tasks only) with its defaults:
  ``range_test(end_lr=10, num_iter=100)`` from the optimizer's LR (1e-7, as in
  its README), suggestion from ``plot(suggest_lr=True)`` (steepest gradient).

The ``lr_range()`` row trains one-cycle over lrscout's ``(base_lr, max_lr)``
(``OneCycleLR`` / ``lrscout.one_cycle``) and divides by the same oracle.

Two measures of the benchmark's own noise floor, which no rule can be
expected to beat: ``best x1.05`` and ``best /1.05`` train at the grid's best
rate moved by 5 % (validation loss is a jagged function of the rate, and the
grid's best is the luckiest of 37 draws); ``hindsight`` is the one grid rate
per task that is best over all its seeds, chosen after seeing every seed's
validation losses.

Tasks are split into "design" (used while choosing the default rule),
"held-out" (not looked at until the rule was fixed), "held-out 2" (written
after the Adam margin was chosen, to check it) and "held-out 3" (architectures
people train — a ResNet with BatchNorm, a transformer LM with AdamW and
warm-up, an embedding model, a Keras CNN on JAX, a convex full-batch model
whose loss never turns up by end_lr, momentum SGD on the NumPy models —
written and committed before any change to the rule was scored on it); all
are reported, and the share of task-seeds within 10 % of the grid's best
leads.
Results are cached in ``benchmarks/.cache/`` per task and seed; ``--fresh``
recomputes everything.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality_tasks import TASKS, Task, find_task, grid_for

CACHE = Path(__file__).resolve().parent / ".cache" / "quality"
CACHE_VERSION = 2  # 2: range tests extend past end_lr; peer rules are the real ones
OURS = ("auto", "valley", "steepest", "minimum")  # the last three are the peers' rules
FLOOR_SHIFTS = {"grid best x1.05": 1.05, "grid best /1.05": 1 / 1.05}
HINDSIGHT = "hindsight task lr"
# The integrations with the refinement stage (find_lr(refine=True)).
REFINED_FRAMEWORKS = ("numpy", "pytorch")


# Peers' rules -------------------------------------------------------------------------
# fastai's valley and minimum/10 are lrscout's "valley" and "minimum" methods,
# checked against the real fastai functions in tests/test_peer_rules.py; the
# torch-lr-finder column runs the real library. Lightning's rule is written
# from its source: steepest slope against the *linear* learning rate, first
# 10 and last point skipped, on its own default range.


def lightning_steepest(result) -> float:
    lrs = result.lrs[10:-1]
    losses = result.smoothed_losses[10:-1]
    keep = np.isfinite(losses)
    lrs, losses = lrs[keep], losses[keep]
    return float(lrs[int(np.argmin(np.gradient(losses, lrs)))])


# Evaluation ---------------------------------------------------------------------


def _cache_path(task: Task, seed: int) -> Path:
    return CACHE / f"{task.name}-seed{seed}.json"


def _load(task: Task, seed: int, fresh: bool) -> dict:
    path = _cache_path(task, seed)
    if not fresh and path.exists():
        data = json.loads(path.read_text())
        if data.get("version") == CACHE_VERSION:
            return data
    return {"version": CACHE_VERSION, "trained": {}, "one_cycle": {}, "curves": {}}


def _save(task: Task, seed: int, data: dict) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    _cache_path(task, seed).write_text(json.dumps(data))


def _trained(task: Task, seed: int, data: dict, lr: float) -> float:
    key = repr(float(lr))
    if key not in data["trained"]:
        data["trained"][key] = task.train(float(lr), seed)
    return data["trained"][key]


def _suggestions(task: Task, seed: int, data: dict, rules_module) -> dict[str, float | None]:
    from lrscout import RangeTestResult

    curves = data["curves"]
    if "lrscout" not in curves:
        curves["lrscout"] = task.range_test(seed).to_dict()
    if "lightning" not in curves:
        curves["lightning"] = task.range_test(seed, start_lr=1e-8, end_lr=1.0).to_dict()
    if task.framework in REFINED_FRAMEWORKS and "refined" not in curves:
        curves["refined"] = task.range_test(seed, refine=True).to_dict()
    if task.framework == "pytorch" and "refined_holdout" not in curves:
        curves["refined_holdout"] = task.range_test(seed, holdout=True, refine="holdout").to_dict()
    if task.framework == "pytorch" and "lightning_tuner" not in data:
        data["lightning_tuner"] = task.lightning_tuner(seed)
    if task.framework == "pytorch" and "torch_lr_finder" not in data:
        data["torch_lr_finder"] = task.torch_lr_finder(seed)
    ours = RangeTestResult.from_dict(curves["lrscout"])
    lightning = RangeTestResult.from_dict(curves["lightning"])
    out: dict[str, float | None] = {}
    for method in OURS:
        try:
            out[f"lrscout {method}"] = ours.suggest(method).lr
        except ValueError:  # NoSuggestionError: the curve cannot support it
            out[f"lrscout {method}"] = None
    if task.framework in REFINED_FRAMEWORKS:
        refined = RangeTestResult.from_dict(curves["refined"])
        out["lrscout refined"] = refined.suggestion.lr if "refinement" in refined.info else None
    else:
        out["lrscout refined"] = "n/a"
    if task.framework == "pytorch":
        # The test on 80 % of the training data, the probes scored on the other 20 % (TorchTask.range_test).
        holdout = RangeTestResult.from_dict(curves["refined_holdout"])
        refinement = holdout.info.get("refinement")
        out["lrscout auto, holdout"] = None if refinement is None else refinement["suggested"]
        out["lrscout refined, holdout"] = None if refinement is None else refinement["lr"]
    else:
        out["lrscout auto, holdout"] = out["lrscout refined, holdout"] = "n/a"
    out["fastai valley"] = out.pop("lrscout valley")
    out["fastai minimum/10"] = out.pop("lrscout minimum")
    out["torch-lr-finder rule"] = out.pop("lrscout steepest")
    out["lightning"] = lightning_steepest(lightning) if len(lightning) > 12 else None
    out["torch-lr-finder"] = data.get("torch_lr_finder") if task.framework == "pytorch" else "n/a"
    out["Lightning Tuner"] = data.get("lightning_tuner") if task.framework == "pytorch" else "n/a"
    try:
        out["lr_range"] = ours.lr_range()
    except ValueError:
        out["lr_range"] = None
    return out


def evaluate(args: tuple[str, int, bool]) -> dict:
    """Everything for one task and seed (run in a worker process)."""
    name, seed, fresh = args
    import warnings

    warnings.simplefilter("ignore")
    os.environ.setdefault("KERAS_BACKEND", "torch")
    task = find_task(name)
    data = _load(task, seed, fresh)
    began = time.perf_counter()
    grid = grid_for(task)
    losses = [_trained(task, seed, data, lr) for lr in grid]
    best = int(np.argmin(losses))
    if not losses[best] > 0:
        raise ValueError(f"{name} seed {seed}: the validation loss reached 0; regret is undefined")
    suggestions = _suggestions(task, seed, data, None)
    regrets: dict[str, float | str | None] = {}
    # The benchmark's noise floor: the oracle's own best rate, moved by 5 %.
    for label, factor in FLOOR_SHIFTS.items():
        regrets[label] = _trained(task, seed, data, float(grid[best]) * factor) / losses[best]
    for rule, lr in suggestions.items():
        if rule == "lr_range":
            continue
        if lr is None or lr == "n/a":
            regrets[rule] = lr
            continue
        regrets[rule] = _trained(task, seed, data, lr) / losses[best]
    span = suggestions["lr_range"]
    if span is not None:
        key = f"{span[0]!r},{span[1]!r}"
        if key not in data["one_cycle"]:
            data["one_cycle"][key] = task.train(span[1], seed, schedule=("one_cycle", span[0], span[1]))
        regrets["lrscout lr_range one-cycle"] = data["one_cycle"][key] / losses[best]
    _save(task, seed, data)
    return {
        "task": name,
        "seed": seed,
        "best_lr": float(grid[best]),
        "best_loss": float(losses[best]),
        "grid_losses": [float(v) for v in losses],
        "suggestions": {k: v for k, v in suggestions.items()},
        "regrets": regrets,
        "seconds": time.perf_counter() - began,
    }


# Report ---------------------------------------------------------------------------


def _by_task(rows: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["task"], []).append(row)
    return groups


def add_hindsight(rows: list[dict]) -> None:
    """Regret of the one grid rate per task that is best over all its seeds.

    Chosen after seeing every seed's validation losses: no rule that reads a
    range-test curve knows as much. What it still misses is how far each
    seed's best rate strays from the task's.
    """
    for group in _by_task(rows).values():
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
    "lrscout lr_range one-cycle": "one-cycle",
    "grid best x1.05": "best x1.05",
    "grid best /1.05": "best /1.05",
    HINDSIGHT: "hindsight",
}


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


def tables(rows: list[dict], rules: list[str]) -> tuple[list[list[str]], list[list[str]]]:
    """The per-task table and the summary table, as rows of cells (headers first)."""
    by_task = _by_task(rows)
    per_task = [["task", "split", "best lr", *(SHORT.get(r, r) for r in rules)]]
    for task in TASKS:
        if task.name in by_task:
            group = by_task[task.name]
            cells = [
                _cell([row["regrets"].get(rule) for row in group], _gmean) for rule in rules
            ]  # n/a per task
            best = _gmean([row["best_lr"] for row in group])
            per_task.append([task.name, task.split, f"{best:.2g}", *cells])
    summary = [["split", "measure", *(SHORT.get(r, r) for r in rules)]]
    splits = list(dict.fromkeys(task.split for task in TASKS if task.name in by_task))
    # Each split, then each split's PyTorch tasks alone: where the PyTorch-only
    # peers (torch-lr-finder, Lightning's Tuner) and the holdout runs are
    # scored, on the same task-seeds as every other rule.
    for pytorch_only in (False, True):
        for split in [*splits, "all"]:
            chosen = [
                row
                for row in rows
                if (split == "all" or find_task(row["task"]).split == split)
                and (not pytorch_only or find_task(row["task"]).framework == "pytorch")
            ]
            if not chosen:
                continue
            name = f"{split}, PyTorch" if pytorch_only else split
            for label, reduce in (("within 10%", _share_within), ("geo-mean", _gmean), ("worst", max)):
                cells = [_cell([row["regrets"].get(rule) for row in chosen], reduce) for rule in rules]
                summary.append([name, label, *cells])
    return per_task, summary


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
#: The README's rows: lrscout's rules, the peers', one-cycle and the noise floor.
README_RULES = [
    "lrscout auto",
    "lrscout refined",
    "lrscout refined, holdout",
    "fastai valley",
    "fastai minimum/10",
    "lightning",
    "Lightning Tuner",
    "torch-lr-finder",
    "lrscout lr_range one-cycle",
    HINDSIGHT,
]


def readme_table(summary: list[list[str]]) -> list[list[str]]:
    """The README's summary: the "all" and "all, PyTorch" rows of ``summary``, one row per rule."""
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


def write_markdown(per_task: list[list[str]], summary: list[list[str]], seeds: int) -> None:
    """The tables as Markdown: all of them on the docs page, the short one in the README."""
    write_block(
        PAGE,
        "quality tables",
        "Summary — share of task-seeds trained within 10 % of the grid's best, the geometric mean "
        f"and the worst regret:\n\n{as_markdown(summary)}\n\n"
        f"Per task (geometric mean over {seeds} seed(s)):\n\n{as_markdown(per_task)}",
    )
    write_block(README, "quality summary", as_markdown(readme_table(summary)))
    print(f"wrote the tables to {PAGE.relative_to(ROOT)} and {README.relative_to(ROOT)}")


def _set_env(env: dict[str, str]) -> None:
    """Worker initializer: the task's environment, before any framework is imported."""
    os.environ.update(env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tasks", nargs="*", help="run only these tasks")
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
    names = options.tasks or [t.name for t in TASKS]
    jobs = [(name, seed, options.fresh) for name in names for seed in seeds]
    began = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    # Tasks that need their own process environment (Keras on JAX) get a pool of their own.
    groups: dict[tuple[tuple[str, str], ...], list[tuple[str, int, bool]]] = {}
    for job in jobs:
        groups.setdefault(tuple(sorted(find_task(job[0]).env.items())), []).append(job)
    rows = []
    for env, group in groups.items():
        with context.Pool(options.workers, _set_env, (dict(env),), maxtasksperchild=4) as pool:
            for row in pool.imap_unordered(evaluate, group):
                rows.append(row)
                print(f"  {row['task']} seed {row['seed']}: {row['seconds']:.1f} s", file=sys.stderr)
    rules = [
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
        "lrscout lr_range one-cycle",
        *FLOOR_SHIFTS,
        HINDSIGHT,
    ]
    add_hindsight(rows)
    print(
        f"Regret = validation loss at the suggestion / best of a 6-per-decade grid "
        f"(geometric mean over {len(seeds)} seed(s)); lower is better, 1.000 = as good as the grid's best."
    )
    per_task, summary = tables(rows, rules)
    if options.markdown:
        write_markdown(per_task, summary, len(seeds))
    else:
        for table in (per_task, summary):
            print(as_text(table), end="\n\n")
    print(f"\n{len(jobs)} task-seeds in {time.perf_counter() - began:.0f} s")
    if options.json:
        Path(options.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
