"""Fit the default rule's constants on the generated family, cross-validated leave-one-family-out.

    python benchmarks/rule_family.py     # first: the records (cached)
    python benchmarks/fit_rule.py        # the fit, its cross-validation and the probes' simulation

The rule reads one number off the curve, ``lr_min``, the rate at the
smoothed loss's minimum, and divides it by a margin:

    log(lr) = log(lr_min) - x . theta

where ``x`` holds what the run and the plan say (the optimizer's kind, its
momentum, the batch size, the schedule, how many times longer than the test
the training will run). ``theta`` minimises the mean log regret over every
task-seed and plan of the family (regret: test loss at the rule's rate over
the best of the oracle grid's, read between grid points by interpolating
``log(loss)`` in ``log(lr)``), each family weighted equally. The same fit
with one family left out scores that family: the leave-one-family-out (LOFO)
score is what the rule can be expected to do on a task unlike the ones it
was fitted on. Several forms of ``x`` are compared; the one with the best
LOFO score is the rule, and its in-sample ``theta`` goes into
``lrscout/_suggest.py`` (printed at the end, to be pasted with this script's
name beside it).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rule_family as rf
from lrscout import NoSuggestionError, RangeTestResult
from lrscout._suggest import _SMOOTHING_WIDTH, _fall_and_noise, read_curve

ADAPTIVE = {"Adam", "AdamW", "RMSprop"}


@dataclass
class Case:
    """One task-seed under one plan."""

    family: str
    task: str
    seed: int
    optimizer: str  # the class name lrscout records
    kind: str  # sgd, momentum, adaptive, adagrad
    momentum: float
    batch: int
    full_batch: bool
    n_train: int
    schedule: str
    total: int
    test_steps: int
    log_lr_min: float
    bases: dict[str, float]  # candidate curve points (log lr): minimum, steepest, onset, end, valley
    noise: float  # the fall's standard error (log scale), lrscout's _fall_and_noise
    fall: float  # the log fall to the minimum, as lrscout._suggest._fall_and_noise measures it
    width: float  # log(lr_min / lr where the smoothed loss has made a tenth of its fall)
    log_rates: np.ndarray
    log_losses: np.ndarray  # log test loss at each grid rate
    log_best: float
    probes: dict[int, np.ndarray]  # step -> log validation loss at each probe rate (constant rate)
    probe_rates: np.ndarray  # log of the probes' rates (the base grid)

    def log_regret(self, log_lr: np.ndarray | float) -> np.ndarray:
        value = np.interp(log_lr, self.log_rates, self.log_losses)
        return value - self.log_best


def _kind(task: dict) -> str:
    name = task["optimizer"]
    if name in ("momentum", "nesterov"):
        return "momentum"
    if name == "sgd":
        return "sgd"
    if name == "adagrad":
        return "adagrad"
    return "adaptive"


def load_cases() -> tuple[list[Case], dict[str, int]]:
    cases: list[Case] = []
    refused: dict[str, int] = defaultdict(int)
    for task in rf.TASKS:
        for seed in rf.SEEDS:
            record = rf.load_record(task, seed)
            if record is None:
                continue
            if "no_suggestion" in record:
                refused[task.family] += 1
                continue
            result = RangeTestResult.from_dict(record["result"])
            try:
                lrs, smooth, minimum = read_curve(result.lrs, result.losses, num_steps=result.num_steps)
            except NoSuggestionError:  # the rule refuses this curve: no rate to score
                refused[task.family] += 1
                continue
            # The fall and its noise exactly as the rule reads them (lrscout._suggest).
            fall, noise = _fall_and_noise(
                np.asarray(result.losses[: len(lrs)]),
                smooth,
                minimum,
                max(1.0, _SMOOTHING_WIDTH * result.num_steps),
            )
            tenth = smooth[0] - 0.1 * (smooth[0] - smooth[minimum])
            onset = int(np.argmax(smooth[: minimum + 1] <= tenth))
            width = float(np.log(lrs[minimum] / lrs[onset]))
            log_lrs = np.log(lrs)
            half = smooth[0] - 0.5 * (smooth[0] - smooth[minimum])
            bases = {
                "minimum": float(log_lrs[minimum]),
                "onset": float(log_lrs[onset]),
                "half": float(log_lrs[int(np.argmax(smooth[: minimum + 1] <= half))]),
                "end": float(np.log(result.lrs[-1])),
            }
            # A loss within a hundredth of the untrained one of zero counts as that hundredth:
            # a test split that a model separates perfectly would make every ratio infinite.
            floor = 0.01 * record["untrained_test_loss"]
            probes = {int(k): np.log(np.asarray(v) + floor) for k, v in record["probes"].items()}
            for key, grid in record["plans"].items():
                schedule, total = key.split("/")
                log_rates = np.log(np.asarray(grid["rates"]))
                log_losses = np.log(np.asarray(grid["losses"]) + floor)
                cases.append(
                    Case(
                        family=task.family,
                        task=task.name,
                        seed=seed,
                        optimizer=rf.CLASS_NAME[task.optimizer],
                        kind=_kind(record["task"]),
                        momentum=0.9 if task.optimizer in ("momentum", "nesterov") else 0.0,
                        batch=record["batch"],
                        full_batch=task.batch_size is None,
                        n_train=record["n_train"],
                        schedule=schedule,
                        total=int(total),
                        test_steps=len(lrs),
                        log_lr_min=float(np.log(lrs[minimum])),
                        fall=float(fall),
                        width=width,
                        bases=bases,
                        noise=float(noise),
                        log_rates=log_rates,
                        log_losses=log_losses,
                        log_best=float(log_losses.min()),
                        probes=probes,
                        probe_rates=np.log(np.asarray(record["rates"])),
                    )
                )
    return cases, dict(refused)


# Model forms ------------------------------------------------------------------------------------
# Each maps a case to its feature row; theta is fitted per form.


KINDS = ("sgd", "momentum", "adaptive", "adagrad")
# The range of log(fall) and of the horizon log(total / test steps) the family covers: the rule
# clamps both to it (a line fitted on falls of 0.1 .. 5 says nothing of a fall of 0.001).
CLAMP: dict[str, tuple[float, float]] = {}


def set_clamp(cases: list[Case]) -> None:
    falls = [math.log(max(c.fall, 1e-3)) for c in cases]
    horizons = [math.log(c.total / c.test_steps) for c in cases]
    CLAMP["fall"] = (min(falls), max(falls))
    CLAMP["horizon"] = (min(horizons), max(horizons))


def _clamped(term: str, value: float) -> float:
    low, high = CLAMP.get(term, (-math.inf, math.inf))
    return min(max(value, low), high)


SCHEDULE_TERMS = ("one_cycle", "cosine", "linear")  # constant is the base


def features(case: Case, form: str, *, known_total: bool = True, pooled: bool = False) -> list[float]:
    """The feature row of ``case`` for ``form``, "+"-joined terms:

    ``kinds`` (an intercept per optimizer kind), ``schedule`` (an offset per
    decaying schedule), ``horizon`` (a slope per kind on ``log(total / test
    steps)``), ``fall`` (``log`` of the curve's fall), ``noise`` (``log(1 + 2 /
    batch)``), ``passes`` (``log`` epochs), ``span`` (``log(lr_min / lr_half)``).
    ``known_total=False`` zeroes what needs the plan's length (the rule for an
    unknown length); ``pooled=True`` gives every kind one intercept and one
    slope (the rule for an optimizer it does not know).
    """
    kinds = [1.0] if pooled else [float(case.kind == k) for k in KINDS]
    horizon = _clamped("horizon", math.log(case.total / case.test_steps)) if known_total else 0.0
    row: list[float] = []
    for term in form.split("+"):
        if term == "kinds":
            row += kinds
        elif term == "schedule":
            row += [float(case.schedule == s) for s in SCHEDULE_TERMS]
        elif term == "horizon":
            row += [k * horizon for k in kinds]
        elif term == "fall":
            row.append(_clamped("fall", math.log(max(case.fall, 1e-3))))
        elif term == "noise":
            row.append(math.log1p(2.0 / case.batch))
        elif term == "passes":
            row.append(math.log(case.total * case.batch / case.n_train) if known_total else 0.0)
        elif term == "span":
            row.append(case.bases["minimum"] - case.bases["half"])
        else:
            raise ValueError(term)
    return row


FORMS = (
    "kinds+schedule",
    "kinds+schedule+horizon",
    "kinds+schedule+horizon+fall",
    "kinds+schedule+horizon+fall+noise",
    "kinds+schedule+horizon+passes",
)


def current_rule(case: Case) -> float:
    """The log rate of lrscout's rule before this fit (margin 3, 6 for Adam, momentum, batch)."""
    base = 6.0 if case.optimizer in ADAPTIVE else 3.0
    margin = base * 10 ** (0.3 * case.momentum) * (1.0 + 2.0 / case.batch)
    return case.log_lr_min - math.log(margin)


def fastai_minimum(case: Case) -> float:
    return case.log_lr_min - math.log(10.0)


def weights_of(cases: list[Case]) -> np.ndarray:
    counts: dict[str, int] = defaultdict(int)
    for case in cases:
        counts[case.family] += 1
    return np.array([1.0 / counts[c.family] for c in cases])


class Curves:
    """Every case's regret curve as arrays, for a vectorised objective.

    Every grid is uniform in ``log(lr)`` (``rule_family.GRID`` times the
    curve's minimum rate), so interpolation is an index computation.
    """

    def __init__(self, cases: list[Case]):
        self.first = np.array([c.log_rates[0] for c in cases])
        self.step = np.array([c.log_rates[1] - c.log_rates[0] for c in cases])
        width = max(len(c.log_losses) for c in cases)
        # Grids extended downward are longer: the others are padded past their top, with their top.
        self.values = np.array(
            [np.pad(c.log_losses - c.log_best, (0, width - len(c.log_losses)), mode="edge") for c in cases]
        )
        self.lr_min = np.array([c.log_lr_min for c in cases])

    def log_regret(self, log_lr: np.ndarray) -> np.ndarray:
        position = np.clip((log_lr - self.first) / self.step, 0.0, self.values.shape[1] - 1.0)
        low = np.minimum(np.floor(position).astype(int), self.values.shape[1] - 2)
        frac = position - low
        rows = np.arange(len(low))
        return (1 - frac) * self.values[rows, low] + frac * self.values[rows, low + 1]


def objective(theta: np.ndarray, X: np.ndarray, curves: Curves, w: np.ndarray) -> float:
    return float(np.dot(w, curves.log_regret(curves.lr_min - X @ theta)) / w.sum())


def fit(cases: list[Case], form: str, *, known_total: bool = True, pooled: bool = False) -> np.ndarray:
    """``theta`` of ``form`` that minimises the family-weighted mean log regret over ``cases``.

    The objective is piecewise linear in ``theta`` and not convex, so the
    search starts from weighted least squares on each case's best margin
    (where its grid is lowest), then alternates Powell and Nelder-Mead from
    that point and from perturbed copies of the best so far.
    """
    X = np.array([features(c, form, known_total=known_total, pooled=pooled) for c in cases])
    w = weights_of(cases)
    curves = Curves(cases)
    best_margin = np.array([c.log_lr_min - c.log_rates[int(np.argmin(c.log_losses))] for c in cases])
    root = np.sqrt(w)
    start = np.linalg.lstsq(X * root[:, None], best_margin * root, rcond=None)[0]
    rng = np.random.default_rng(0)
    best_x, best_f = start, objective(start, X, curves, w)
    for attempt in range(6):
        x0 = best_x if attempt == 0 else best_x + 0.3 * rng.normal(size=len(start))
        for method in ("Powell", "Nelder-Mead"):
            options = {"xtol": 1e-3, "ftol": 1e-7} if method == "Powell" else {"xatol": 1e-3, "fatol": 1e-7}
            found = minimize(objective, x0, args=(X, curves, w), method=method, options=options)
            x0 = found.x
            if found.fun < best_f:
                best_x, best_f = np.asarray(found.x), float(found.fun)
    return best_x


def scores(log_regrets: np.ndarray) -> dict[str, float]:
    regrets = np.exp(log_regrets)
    return {
        "within 10%": float(np.mean(regrets <= 1.10)),
        "geo-mean": float(np.exp(np.mean(log_regrets))),
        "worst": float(regrets.max()),
    }


def evaluate(cases: list[Case], predict) -> np.ndarray:
    return np.array([float(c.log_regret(predict(c))) for c in cases])


def evaluate_priors(cases: list[Case], priors: np.ndarray) -> np.ndarray:
    return np.array([float(c.log_regret(p)) for c, p in zip(cases, priors, strict=True)])


def family_means(cases: list[Case], log_regrets: np.ndarray) -> dict[str, float]:
    by: dict[str, list[float]] = defaultdict(list)
    for case, value in zip(cases, log_regrets, strict=True):
        by[case.family].append(value)
    return {name: float(np.exp(np.mean(v))) for name, v in by.items()}


def lofo(cases: list[Case], form: str, *, known_total: bool = True, pooled: bool = False) -> np.ndarray:
    """Each family's regrets under the rule fitted without it."""
    out = np.zeros(len(cases))
    for family in sorted({c.family for c in cases}):
        train = [c for c in cases if c.family != family]
        theta = fit(train, form, known_total=known_total, pooled=pooled)
        for i, case in enumerate(cases):
            if case.family == family:
                margin = float(np.dot(features(case, form, known_total=known_total, pooled=pooled), theta))
                out[i] = float(case.log_regret(case.log_lr_min - margin))
    return out


def table(rows: list[tuple[str, dict[str, float]]]) -> str:
    lines = [f"{'rule':44s} {'within 10%':>10s} {'geo-mean':>9s} {'worst':>8s}"]
    for name, s in rows:
        lines.append(f"{name:44s} {s['within 10%']:>10.0%} {s['geo-mean']:>9.3f} {s['worst']:>8.2f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--forms", nargs="*", default=list(FORMS))
    parser.add_argument("--probes", help="simulate the refinement stage around this form's LOFO prior")
    parser.add_argument(
        "--constants", help="fit this form for lrscout/_suggest.py (known and unknown plan length)"
    )
    args = parser.parse_args()
    cases, refused = load_cases()
    tasks = {(c.task, c.seed) for c in cases}
    print(f"{len(cases)} cases: {len(tasks)} task-seeds x plans, {len({c.family for c in cases})} families")
    if refused:
        print(f"no curve to read (refused): {refused}")
    set_clamp(cases)
    print(
        "clamped to the family's range: "
        + ", ".join(f"{k} {lo:.3f} .. {hi:.3f}" for k, (lo, hi) in CLAMP.items())
    )
    past = np.mean([c.log_rates[int(np.argmin(c.log_losses))] > c.log_lr_min for c in cases])
    print(f"cases whose best rate lies past the curve's minimum (a margin below 1): {past:.0%}")
    rows = [
        ("current rule (before the fit)", scores(evaluate(cases, current_rule))),
        ("fastai minimum/10", scores(evaluate(cases, fastai_minimum))),
    ]
    fitted = {}
    for form in args.forms:
        theta = fit(cases, form)
        fitted[form] = theta
        inside = evaluate(cases, lambda c, t=theta, f=form: c.log_lr_min - float(np.dot(features(c, f), t)))
        rows.append((f"{form}: in-sample", scores(inside)))
        rows.append((f"{form}: LOFO", scores(lofo(cases, form))))
        print(table(rows[-2:]), flush=True)
    print()
    print(table(rows))
    for form, theta in fitted.items():
        print(form, np.round(theta, 3).tolist())
    if args.constants:
        print_constants(cases, args.constants)
    if args.probes:
        priors = lofo_priors(cases, args.probes)
        print()
        print(f"The refinement stage around the LOFO prior of {args.probes!r} (validation-scored probes):")
        print(
            table(
                [
                    ("prior alone (LOFO)", scores(evaluate_priors(cases, priors))),
                    *probes_report(cases, priors),
                ]
            )
        )


def print_constants(cases: list[Case], form: str) -> None:
    """The form's constants as ``lrscout/_suggest.py`` holds them, with their in-sample and LOFO scores.

    Three fits: the plan's length known; not known (the horizon terms left
    out, so the intercepts take the family's typical length); and an
    optimizer of no known kind (one intercept and slope for all kinds).
    """
    print()
    for label, known, pooled in (
        ("length known", True, False),
        ("length unknown", False, False),
        ("length known, optimizer unknown", True, True),
        ("length unknown, optimizer unknown", False, True),
    ):
        theta = fit(cases, form, known_total=known, pooled=pooled)

        def predict(c, t=theta, k=known, p=pooled):
            return c.log_lr_min - float(np.dot(features(c, form, known_total=k, pooled=p), t))

        inside, out = (
            scores(evaluate(cases, predict)),
            scores(lofo(cases, form, known_total=known, pooled=pooled)),
        )
        print(f"{form} ({label}): in-sample {inside}, LOFO {out}")
        names = []
        for term in form.split("+"):
            if term == "horizon" and not known:
                names += [f"(horizon, unused) {k}" for k in (["all"] if pooled else KINDS)]
                continue
            kinds = ["all"] if pooled else list(KINDS)
            names += {
                "kinds": [f"kind {k}" for k in kinds],
                "schedule": [f"schedule {s}" for s in SCHEDULE_TERMS],
                "horizon": [f"horizon slope {k}" for k in kinds],
            }.get(term, [term])
        for name, value in zip(names, theta, strict=True):
            print(f"    {name:24s} {value: .3f}")


# The refinement stage, simulated -----------------------------------------------------------------
# A probe trains from the test's start at a constant candidate rate and is scored on validation
# data. The family records every grid rate's validation loss after 25, 50, ..., 300 steps, so a
# probe of s steps at rate r is read off those (log-loss interpolated in log-lr, s rounded to 25).

SCHEMES = {
    # name: (candidate factors of the prior's rate, [(steps as a multiple of the test's, survivors)]).
    # Every round starts its probes from the test's start again (lrscout keeps no probe's state).
    "3 at 1x": ((1 / 3, 1.0, 3.0), [(1.0, 1)]),
    "5 at 0.6x": ((1 / 4, 1 / 2, 1.0, 2.0, 4.0), [(0.6, 1)]),
    "4 halving": ((1 / 4, 1 / 2, 1.0, 2.0), [(0.35, 2), (1.0, 1)]),
    "5 halving": ((1 / 4, 1 / 2, 1.0, 2.0, 4.0), [(0.3, 2), (0.75, 1)]),
}


def probe_cost(scheme: str) -> float:
    """Steps of the probes as a multiple of the test's (every round restarts)."""
    factors, rounds = SCHEMES[scheme]
    alive, spent = len(factors), 0.0
    for steps, survivors in rounds:
        spent += alive * steps
        alive = survivors
    return spent


def _probe_loss(case: Case, log_lr: float, steps: int) -> float:
    available = sorted(case.probes)
    step = min(available, key=lambda s: abs(s - steps))
    values = np.where(np.isfinite(case.probes[step]), case.probes[step], np.inf)
    return float(np.interp(log_lr, case.probe_rates, np.minimum(values, 1e300)))


def probe_choice(case: Case, log_prior: float, scheme: str) -> float:
    """The log rate the scheme's probes pick around ``log_prior``."""
    factors, rounds = SCHEMES[scheme]
    alive = [log_prior + math.log(f) for f in factors]
    for steps, survivors in rounds:
        length = max(25, round(steps * case.test_steps))
        scored = sorted(alive, key=lambda x: _probe_loss(case, x, length))
        alive = scored[:survivors]
    return alive[0]


SHRINK = (0.0, 0.25, 0.5, 0.75, 1.0)


def lofo_priors(cases: list[Case], form: str) -> np.ndarray:
    """Each case's log rate under the rule fitted without its family."""
    out = np.zeros(len(cases))
    for family in sorted({c.family for c in cases}):
        theta = fit([c for c in cases if c.family != family], form)
        for i, case in enumerate(cases):
            if case.family == family:
                out[i] = case.log_lr_min - float(np.dot(features(case, form), theta))
    return out


def probes_report(cases: list[Case], priors: np.ndarray) -> list[tuple[str, dict[str, float]]]:
    """Regret of each probe scheme, the probe's pick moved a share ``alpha`` of the way from the prior.

    ``alpha`` is chosen leave-one-family-out too: for each family, the one that
    scores best on the others.
    """
    rows = []
    families = sorted({c.family for c in cases})
    for scheme in SCHEMES:
        picks = np.array([probe_choice(c, p, scheme) for c, p in zip(cases, priors, strict=True)])
        regrets = {
            a: np.array(
                [float(c.log_regret(p + a * (q - p))) for c, p, q in zip(cases, priors, picks, strict=True)]
            )
            for a in SHRINK
        }
        w = weights_of(cases)
        chosen = np.zeros(len(cases))
        for family in families:
            inside = np.array([c.family == family for c in cases])
            best = min(SHRINK, key=lambda a: float(np.dot(w[~inside], regrets[a][~inside])))
            chosen[inside] = regrets[best][inside]
        cost = probe_cost(scheme)
        for a in SHRINK:
            rows.append((f"probes {scheme} ({cost:.1f}x test), alpha {a}", scores(regrets[a])))
        rows.append((f"probes {scheme}, alpha chosen LOFO", scores(chosen)))
    return rows


if __name__ == "__main__":
    main()
