"""Epoch times of lrscout's NumPy models beside scikit-learn's SGD, same data, same run.

    python benchmarks/numpy_engine.py [--repeats 5]

Prints, per data set and batch size, the time of one epoch for lrscout
(``engine="numba"``, the compiled epoch loop), for lrscout's pure NumPy path
(``engine="numpy"``, what ``"auto"`` runs when numba is not installed), and,
for batch size 1, scikit-learn's SGDClassifier /
SGDRegressor (log loss / squared loss, constant learning rate, no penalty)
and the ratio. lrscout's time includes the loss on the whole set that fit
records after every epoch.
scikit-learn's classifier trains one-vs-rest binary models; lrscout's is a
softmax over all classes: the same number of weights per epoch.
"""

from __future__ import annotations

import argparse
import time
import warnings
from functools import partial

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier, SGDRegressor

from lrscout.models import LinearRegressor, SoftmaxClassifier


def _seconds_per_epoch(make, X, y, epochs, repeats):
    """Median over repeats of fit wall time / epochs (everything fit does)."""
    times = []
    for _ in range(repeats):
        model = make()
        began = time.perf_counter()
        model.fit(X, y)
        times.append((time.perf_counter() - began) / epochs)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    digits_X, digits_y = load_digits(return_X_y=True)
    digits_X = (digits_X - digits_X.mean(0)) / (digits_X.std(0) + 1e-12)
    rng = np.random.default_rng(0)
    synth_X = rng.normal(size=(100_000, 100))
    synth_y = synth_X @ rng.normal(size=100) + rng.normal(size=100_000)
    tasks = [
        (
            "digits 1797x64, 10 classes",
            digits_X,
            digits_y,
            SoftmaxClassifier,
            0.01,
            lambda: SGDClassifier(
                loss="log_loss",
                penalty=None,
                learning_rate="constant",
                eta0=0.01,
                max_iter=3,
                tol=None,
                shuffle=True,
                random_state=0,
            ),
        ),
        (
            "synthetic 100000x100 regression",
            synth_X,
            synth_y,
            LinearRegressor,
            0.001,
            lambda: SGDRegressor(
                penalty=None,
                learning_rate="constant",
                eta0=0.001,
                max_iter=3,
                tol=None,
                shuffle=True,
                random_state=0,
            ),
        ),
    ]
    header = (
        f"{'data':32s} {'batch':>6s} {'lrscout ms/epoch':>17s} {'NumPy path':>11s} "
        f"{'sklearn SGD':>12s} {'lrscout/sklearn':>16s}"
    )
    print("ms per epoch = fit wall time / epochs, median of", args.repeats, "fits (3 epochs each)")
    print(header)
    print("-" * len(header))
    for name, X, y, estimator, lr, sklearn_model in tasks:
        for batch in (1, 32, None):
            ours = partial(estimator, lr=lr, batch_size=batch, epochs=3, random_state=0)
            fast = _seconds_per_epoch(partial(ours, engine="numba"), X, y, 3, args.repeats)
            plain = _seconds_per_epoch(
                partial(ours, engine="numpy"), X, y, 3, 1 if batch == 1 else args.repeats
            )
            size = "full" if batch is None else str(batch)
            row = f"{name:32s} {size:>6s} {fast * 1e3:17.2f} {plain * 1e3:11.1f}"
            if batch == 1:
                theirs = _seconds_per_epoch(sklearn_model, X, y, 3, args.repeats)
                row += f" {theirs * 1e3:12.2f} {fast / theirs:16.2f}"
            print(row)


if __name__ == "__main__":
    main()
