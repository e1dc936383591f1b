"""Data for the command line: scikit-learn's bundled sets or a CSV file."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass

import numpy as np

from .._errors import InvalidArgumentError
from .._validation import check_option, fail

DATASETS = ("digits", "breast-cancer", "diabetes")


TASKS = ("classification", "regression")


@dataclass(frozen=True)
class Dataset:
    """Features and targets ready for training, checked here once for every framework.

    Attributes:
        name: What to call the data in reports.
        X: ``(n_samples, n_features)`` finite ``float64`` features.
        y: ``(n_samples,)``: ``int64`` labels ``0..K-1`` (``K >= 2``, each
            present) for classification, finite floats for regression.
        task: ``"classification"`` or ``"regression"``.
        class_names: The original label of each class, for classification.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    task: str
    class_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        where = "Dataset"
        check_option(self.task, "task", TASKS, where=where)
        X, y = np.asarray(self.X), np.asarray(self.y)
        if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
            fail(where, "X", "a 2-D array with at least one row and column", f"shape {X.shape}")
        if not np.issubdtype(X.dtype, np.floating) or not np.all(np.isfinite(X)):
            fail(where, "X", "finite floats", f"dtype {X.dtype}", "Drop or impute missing values first.")
        if y.shape != (X.shape[0],):
            fail(where, "y", f"of shape ({X.shape[0]},), one target per row of X", f"shape {y.shape}")
        if self.task == "regression":
            if not np.issubdtype(y.dtype, np.floating) or not np.all(np.isfinite(y)):
                fail(where, "y", "finite floats for regression", f"dtype {y.dtype}")
            return
        if not np.issubdtype(y.dtype, np.integer) or len(y) == 0 or y.min() < 0:
            fail(where, "y", "integer class labels 0..K-1 for classification", f"dtype {y.dtype}")
        present = np.unique(y)
        if len(present) < 2 or not np.array_equal(present, np.arange(len(present))):
            fail(where, "y", "labels 0..K-1 with K >= 2, each present", present.tolist()[:10])
        if self.class_names and len(self.class_names) != len(present):
            fail(where, "class_names", f"one name per class ({len(present)})", self.class_names)

    @property
    def n_classes(self) -> int:
        """Number of classes (0 for regression)."""
        return int(self.y.max()) + 1 if self.task == "classification" else 0

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
