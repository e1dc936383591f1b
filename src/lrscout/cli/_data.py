"""Data for the command line: scikit-learn's bundled sets or a CSV file."""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from typing import Any

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
    X, y = bundled_data(name)
    task = "regression" if name == "diabetes" else "classification"
    return _prepare(name, np.asarray(X, dtype=np.float64), np.asarray(y), task)


def bundled_data(name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` of a bundled set, as ``sklearn.datasets.load_*(return_X_y=True)`` returns them.

    Read straight from the files scikit-learn ships (``sklearn/datasets/data``)
    with the parsing its loaders use: importing ``sklearn.datasets`` costs
    seconds (it imports SciPy, pandas and joblib), reading the files
    milliseconds. Where the files are not found (another layout of
    scikit-learn), scikit-learn's own loader reads them.
    """
    folder = _bundled_folder()
    if folder is not None:
        if name == "digits":
            data = _read_gzip_table(os.path.join(folder, "digits.csv.gz"), delimiter=",")
            return data[:, :-1], data[:, -1].astype(int, copy=False)
        if name == "breast-cancer":
            path = os.path.join(folder, "breast_cancer.csv")
            data = np.loadtxt(path, delimiter=",", skiprows=1, encoding="utf-8")
            return data[:, :-1], data[:, -1].astype(int)
        raw = _read_gzip_table(os.path.join(folder, "diabetes_data_raw.csv.gz"))
        target = _read_gzip_table(os.path.join(folder, "diabetes_target.csv.gz"))
        # load_diabetes(scaled=True): sklearn.preprocessing.scale, then a unit norm per column.
        scaled = raw - raw.mean(axis=0)
        scaled /= raw.std(axis=0)
        scaled /= raw.shape[0] ** 0.5
        return scaled, target
    from sklearn import datasets

    loader = {
        "digits": datasets.load_digits,
        "breast-cancer": datasets.load_breast_cancer,
        "diabetes": datasets.load_diabetes,
    }[name]
    X, y = loader(return_X_y=True)
    return np.asarray(X), np.asarray(y)


#: The bundled files, as scikit-learn's loaders read them.
_BUNDLED_FILES = ("digits.csv.gz", "breast_cancer.csv", "diabetes_data_raw.csv.gz", "diabetes_target.csv.gz")


def _bundled_folder() -> str | None:
    """``sklearn/datasets/data`` where every bundled file is there, found without importing scikit-learn."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("sklearn")
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        folder = os.path.join(location, "datasets", "data")
        if all(os.path.isfile(os.path.join(folder, file)) for file in _BUNDLED_FILES):
            return folder
    return None


def _read_gzip_table(path: str, **kwargs: Any) -> np.ndarray:
    import gzip

    with gzip.open(path, mode="rt", encoding="utf-8") as handle:
        data: np.ndarray = np.loadtxt(handle, **kwargs)
    return data


#: Delimiters the CSV reader recognises (comma, semicolon as Excel writes it in
#: many locales, tab, pipe).
DELIMITERS = ",;\t|"
#: The largest field the CSV reader accepts (the csv module's default is 128 KiB).
MAX_FIELD = 64 * 1024 * 1024


def load_csv(path: str, target: str | None, task: str) -> Dataset:
    """A CSV file with a header row; ``target`` names the column to predict.

    Read with the standard library's ``csv`` module (no pandas needed for a
    table of numbers): UTF-8 with or without the byte-order mark Excel writes,
    the delimiter sniffed among :data:`DELIMITERS`, blank lines skipped,
    fields of any length. Every other column must be numeric, with no empty
    cell. ``task="auto"`` treats a target with non-numeric values, or at most
    20 distinct integer values, as class labels; numeric labels are compared
    as numbers (``"1"`` and ``"1.0"`` are one class).

    Raises:
        InvalidArgumentError: Naming ``--csv`` or ``--target`` and, for a bad
            cell, its line and column.
    """
    if not os.path.exists(path):
        raise InvalidArgumentError(f"--csv: no such file: {path!r}.")
    if os.path.isdir(path):
        raise InvalidArgumentError(f"--csv: {path!r} is a folder; give a CSV file.")
    header, body, lines = _read_table(path)
    if target is None:
        raise InvalidArgumentError(
            f"--target is required with --csv; choose one of the columns: {', '.join(header)}."
        )
    if target not in header:
        raise InvalidArgumentError(
            f"--target: no column {target!r} in {path!r}; columns: {', '.join(header)}."
        )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise InvalidArgumentError(
            f"--csv: {path!r} names columns more than once: {', '.join(map(repr, repeated))}. "
            "Rename them so that each column, the target above all, is named once."
        )
    column = header.index(target)
    features = [i for i in range(len(header)) if i != column]
    if not features:
        raise InvalidArgumentError(f"--csv: {path!r} has no feature columns besides the target {target!r}.")
    X = np.empty((len(body), len(features)))
    for r, (row, line) in enumerate(zip(body, lines, strict=True)):
        for c, i in enumerate(features):
            X[r, c] = _number(row[i], path, line, header[i])
    raw = [row[column].strip() for row in body]
    for value, line in zip(raw, lines, strict=True):
        if not value:
            raise InvalidArgumentError(f"--csv: {path!r} line {line}, column {target!r}: the cell is empty.")
    chosen = _infer_task(raw, task)
    if chosen == "classification":
        y, names = _labels(raw)
        return _prepare(os.path.basename(path), X, y, chosen, names)
    return _prepare(os.path.basename(path), X, np.array([float(v) for v in raw]), chosen)


def _read_table(path: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, data rows and their line numbers, every row as long as the header."""
    with open(path, "rb") as handle:
        data = handle.read()
    if b"\x00" in data:
        raise InvalidArgumentError(f"--csv: {path!r} is not a text file (it holds NUL bytes).")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidArgumentError(
            f"--csv: {path!r} is not UTF-8 text (byte {data[error.start]:#04x} at offset {error.start}). "
            "Save it as UTF-8 (in Excel: CSV UTF-8)."
        ) from None
    previous = csv.field_size_limit(MAX_FIELD)
    try:
        delimiter = _delimiter(text)
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, **_DIALECT)
        rows: list[tuple[int, list[str]]] = []
        begins = 1
        try:
            for row in reader:
                if any(cell.strip() for cell in row):
                    rows.append((reader.line_num, row))
                begins = reader.line_num + 1
        except csv.Error as error:
            what = (
                "a quoted field opened there is never closed"
                if "end of data" in str(error)
                else f"{error}; a field that holds quotes must be quoted whole, its quotes doubled"
            )
            raise InvalidArgumentError(
                f"--csv: {path!r} line {begins}: {what} (the csv module: {error})."
            ) from None
    finally:
        csv.field_size_limit(previous)
    if len(rows) < 3:
        raise InvalidArgumentError(
            f"--csv: {path!r} needs a header row and at least 2 data rows; it has {len(rows)} rows."
        )
    header = [name.strip() for name in rows[0][1]]
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise InvalidArgumentError(
                f"--csv: line {line} of {path!r} has {len(row)} fields; the header has {len(header)}."
            )
    return header, [row for _, row in rows[1:]], [line for line, _ in rows[1:]]


#: How lrscout reads a CSV file: double quotes (doubled inside a field), spaces
#: after a delimiter skipped, and strict: a quote left open or a character
#: after a closing quote is an error, not a field that swallows the rows after it.
_DIALECT: dict[str, Any] = {"quotechar": '"', "doublequote": True, "skipinitialspace": True, "strict": True}
#: The rows the delimiter is chosen on, and the most text they are read from.
_SNIFF_ROWS = 20
_SNIFF_CHARS = 65536


def _delimiter(text: str) -> str:
    """The delimiter among :data:`DELIMITERS` that splits the first rows into one count of fields.

    In one pass over at most the first 64 KiB per candidate (the standard
    library's ``csv.Sniffer`` takes time quadratic in the quotes of its
    sample). The first candidate whose header has two fields or more and
    whose first rows all have as many wins; else the one that splits the
    header into the most fields (the reader then names the bad row); else
    a comma.
    """
    sample = text[:_SNIFF_CHARS]
    if len(text) > _SNIFF_CHARS:
        sample = sample[: sample.rfind("\n") + 1] or sample  # whole lines only
    best, widest = ",", 1
    for candidate in DELIMITERS:
        counts = []
        lenient = {**_DIALECT, "strict": False}
        reader = csv.reader(io.StringIO(sample, newline=""), delimiter=candidate, **lenient)
        try:
            for row in reader:
                if any(cell.strip() for cell in row):
                    counts.append(len(row))
                if len(counts) > _SNIFF_ROWS:
                    break
        except csv.Error:
            continue
        if len(text) > _SNIFF_CHARS and len(counts) > 1:
            counts.pop()  # the last row may be cut short by the sample's end
        if not counts or counts[0] < 2:
            continue
        if all(count == counts[0] for count in counts):
            return candidate
        if counts[0] > widest:
            best, widest = candidate, counts[0]
    return best


def _number(cell: str, path: str, line: int, column: str) -> float:
    text = cell.strip()
    if not text:
        raise InvalidArgumentError(
            f"--csv: {path!r} line {line}, column {column!r}: the cell is empty. "
            "Fill or drop missing values first."
        )
    try:
        value = float(text)
    except ValueError:
        raise InvalidArgumentError(
            f"--csv: every feature column must be numeric; {path!r} line {line}, column {column!r} "
            f"holds {text[:40]!r}."
        ) from None
    if not math.isfinite(value):
        raise InvalidArgumentError(
            f"--csv: {path!r} line {line}, column {column!r}: {text[:40]!r} is not a finite number."
        )
    return value


def _labels(values: list[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Class indices ``0..K-1`` and a name per class; numeric labels compare as numbers."""
    try:
        keys: list[Any] = [float(v) for v in values]
    except ValueError:
        keys = list(values)
    classes = sorted(set(keys))
    index = {key: i for i, key in enumerate(classes)}
    names = tuple(_label_name(key) for key in classes)
    return np.array([index[key] for key in keys], dtype=np.int64), names


def _label_name(key: Any) -> str:
    if isinstance(key, float) and key.is_integer():
        return str(int(key))
    return str(key)


def _infer_task(values: list[str], task: str) -> str:
    try:
        numbers = np.array([float(v) for v in values])
    except ValueError:
        if task == "regression":
            raise InvalidArgumentError("--task regression needs a numeric target column.") from None
        return "classification"
    if task != "auto":
        return task
    finite = bool(np.all(np.isfinite(numbers)))
    integral = finite and bool(np.all(numbers == np.round(numbers)))
    return "classification" if integral and len(np.unique(numbers)) <= 20 else "regression"


def _standardise(values: np.ndarray, name: str, what: str) -> np.ndarray:
    """Zero mean and unit spread per column, without overflow for huge values.

    Each column is first divided by its largest magnitude, so its mean and
    variance stay finite for values up to the largest float.
    """
    scale = np.max(np.abs(values), axis=0)
    scaled = values / np.where(scale > 0, scale, 1.0)
    centred = scaled - scaled.mean(axis=0)
    spread = centred.std(axis=0)
    out: np.ndarray = centred / np.where(spread > 0, spread, 1.0)
    if not np.all(np.isfinite(out)):
        raise InvalidArgumentError(f"{name}: the {what} could not be standardised (not finite).")
    return out


def _prepare(
    name: str, X: np.ndarray, y: np.ndarray, task: str, class_names: tuple[str, ...] | None = None
) -> Dataset:
    if not np.all(np.isfinite(X)):
        raise InvalidArgumentError(
            f"{name}: the features hold NaN or infinite values; clean or impute them first."
        )
    X = _standardise(X, name, "features")
    if task == "classification":
        if class_names is None:
            classes, labels = np.unique(y, return_inverse=True)
            class_names = tuple(str(c) for c in classes)
            y = labels
        if len(class_names) < 2:
            raise InvalidArgumentError(
                f"{name}: the target must hold at least 2 classes; got {list(class_names)!r}."
            )
        return Dataset(name, X, np.asarray(y, dtype=np.int64), task, class_names)
    values = np.asarray(y, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise InvalidArgumentError(f"{name}: the target holds NaN or infinite values.")
    return Dataset(name, X, _standardise(values[:, None], name, "target")[:, 0], task)
