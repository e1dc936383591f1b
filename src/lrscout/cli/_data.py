"""Data for the command line: scikit-learn's bundled sets or a CSV file."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass

import numpy as np

from .._errors import InvalidArgumentError

DATASETS = ("digits", "breast-cancer", "diabetes")


@dataclass(frozen=True)
class Dataset:
    """Standardised features and targets ready for training."""

    name: str
    X: np.ndarray
    y: np.ndarray
    task: str  # "classification" (y: int labels 0..K-1) or "regression" (y: float)
    class_names: tuple[str, ...] = ()

    def describe(self) -> str:
        n, d = self.X.shape
        what = f"{len(self.class_names)} classes" if self.task == "classification" else "regression target"
        return f"{self.name} ({n} samples, {d} features, {what})"


def load_dataset(name: str) -> Dataset:
    """One of scikit-learn's bundled sets (shipped with it: no network)."""
    from sklearn import datasets

    loaders = {
        "digits": (datasets.load_digits, "classification"),
        "breast-cancer": (datasets.load_breast_cancer, "classification"),
        "diabetes": (datasets.load_diabetes, "regression"),
    }
    loader, task = loaders[name]
    X, y = loader(return_X_y=True)
    return _prepare(name, np.asarray(X, dtype=np.float64), np.asarray(y), task)


def load_csv(path: str, target: str | None, task: str) -> Dataset:
    """A CSV file with a header row; ``target`` names the column to predict.

    Every other column must be numeric. ``task="auto"`` treats a target with
    non-numeric values, or at most 20 distinct integer values, as class labels.
    """
    if not os.path.isfile(path):
        raise InvalidArgumentError(f"--csv: no such file: {path!r}.")
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 3:
        raise InvalidArgumentError(
            f"--csv: {path!r} needs a header row and at least 2 data rows; it has {len(rows)} rows."
        )
    header, body = rows[0], [row for row in rows[1:] if row]
    if target is None:
        raise InvalidArgumentError(
            f"--target is required with --csv; choose one of the columns: {', '.join(header)}."
        )
    if target not in header:
        raise InvalidArgumentError(
            f"--target: no column {target!r} in {path!r}; columns: {', '.join(header)}."
        )
    column = header.index(target)
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise InvalidArgumentError(
                f"--csv: line {number} of {path!r} has {len(row)} fields; the header has {len(header)}."
            )
    features = [i for i in range(len(header)) if i != column]
    if not features:
        raise InvalidArgumentError(f"--csv: {path!r} has no feature columns besides the target {target!r}.")
    try:
        X = np.array([[float(row[i]) for i in features] for row in body])
    except ValueError as error:
        raise InvalidArgumentError(f"--csv: every feature column must be numeric ({error}).") from None
    raw = [row[column] for row in body]
    return _prepare(os.path.basename(path), X, np.asarray(raw), _infer_task(raw, task))


def _infer_task(values: list[str], task: str) -> str:
    try:
        numbers = np.array([float(v) for v in values])
    except ValueError:
        if task == "regression":
            raise InvalidArgumentError("--task regression needs a numeric target column.") from None
        return "classification"
    if task != "auto":
        return task
    integral = bool(np.all(numbers == np.round(numbers)))
    return "classification" if integral and len(np.unique(numbers)) <= 20 else "regression"


def _prepare(name: str, X: np.ndarray, y: np.ndarray, task: str) -> Dataset:
    if not np.all(np.isfinite(X)):
        raise InvalidArgumentError(
            f"{name}: the features hold NaN or infinite values; clean or impute them first."
        )
    spread = X.std(axis=0)
    X = (X - X.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    if task == "classification":
        classes, labels = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise InvalidArgumentError(
                f"{name}: the target must hold at least 2 classes; got {classes.tolist()!r}."
            )
        return Dataset(name, X, labels.astype(np.int64), task, tuple(str(c) for c in classes))
    values = y.astype(np.float64)
    return Dataset(name, X, (values - values.mean()) / (values.std() or 1.0), task)
