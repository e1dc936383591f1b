"""What `lrscout find-lr` loads to start: the bundled data without sklearn.datasets, no pyplot."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from lrscout.cli import _data
from lrscout.cli._data import bundled_data, load_dataset

sklearn_datasets = pytest.importorskip("sklearn.datasets")

LOADERS = {
    "digits": sklearn_datasets.load_digits,
    "breast-cancer": sklearn_datasets.load_breast_cancer,
    "diabetes": sklearn_datasets.load_diabetes,
}


def _bits(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array).view(np.uint8)


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_bundled_data_read_from_the_files_equals_scikit_learns_loader_bitwise(name):
    X, y = bundled_data(name)
    X_ref, y_ref = LOADERS[name](return_X_y=True)
    assert (X.dtype, X.shape, y.dtype, y.shape) == (X_ref.dtype, X_ref.shape, y_ref.dtype, y_ref.shape)
    np.testing.assert_array_equal(_bits(X), _bits(X_ref))
    np.testing.assert_array_equal(_bits(y), _bits(y_ref))


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_without_the_files_scikit_learns_loader_reads_them(name, monkeypatch):
    fast = load_dataset(name)
    monkeypatch.setattr(_data, "_bundled_folder", lambda: None)
    slow = load_dataset(name)
    np.testing.assert_array_equal(_bits(fast.X), _bits(slow.X))
    np.testing.assert_array_equal(_bits(fast.y), _bits(slow.y))
    assert fast.class_names == slow.class_names


def test_a_scikit_learn_without_every_file_is_not_read_directly(tmp_path, monkeypatch):
    # A layout with some of the files only: scikit-learn's loaders, not a half-found folder.
    import importlib.machinery
    import importlib.util

    spec = importlib.machinery.ModuleSpec("sklearn", None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path)]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)
    (tmp_path / "datasets" / "data").mkdir(parents=True)
    for name in _data._BUNDLED_FILES[:-1]:
        (tmp_path / "datasets" / "data" / name).write_bytes(b"")
    assert _data._bundled_folder() is None
    (tmp_path / "datasets" / "data" / _data._BUNDLED_FILES[-1]).write_bytes(b"")
    assert _data._bundled_folder() == str(tmp_path / "datasets" / "data")


def _modules_after(argv: list[str], cwd) -> set[str]:
    code = (
        "import sys; from lrscout.cli import main; "
        f"assert main({argv!r}) == 0; "
        "print(' '.join(m for m in ('sklearn', 'sklearn.datasets', 'scipy', 'matplotlib', "
        "'matplotlib.pyplot') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=cwd)
    return set(done.stdout.split("\n")[-2].split())


def test_find_lr_imports_neither_scikit_learn_nor_pyplot(tmp_path):
    # What a first run costs: the data from its files, matplotlib only to draw, never pyplot.
    loaded = _modules_after(["find-lr", "--quiet"], tmp_path)
    assert loaded == {"matplotlib"}
    assert (tmp_path / "lrscout-find-lr.png").stat().st_size > 10_000


def test_find_lr_without_a_plot_imports_no_matplotlib(tmp_path):
    assert _modules_after(["find-lr", "--quiet", "--plot", "none"], tmp_path) == set()
