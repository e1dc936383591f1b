"""Record what the real peer libraries suggest on real range-test curves, for tests/data/peer_rules.json.

lrscout's ``valley`` and ``minimum`` are fastai's rules and ``steepest`` is
torch-lr-finder's; ``tests/test_peer_rules.py`` checks them against the
numbers this script stores. fastai cannot be installed with its
dependencies here (it wants torchvision, whose CPU build does not install
beside the pinned torch), but its suggestion functions import without it, so
the fixtures are recorded once in an environment made like this:

    python -m venv --system-site-packages /tmp/fa
    /tmp/fa/bin/pip install --no-deps fastai==2.8.12 fastcore fastdownload fasttransform \\
        "fastprogress<1.0.4" "plum-dispatch<2.10"
    /tmp/fa/bin/pip install pandas requests pyyaml scipy beartype
    /tmp/fa/bin/python benchmarks/record_peer_fixtures.py

The curves themselves are lrscout range tests on scikit-learn's bundled data
and synthetic curves with known noise; each library's rule is applied to the
stored EMA curve exactly as the library applies it to its own recording
(fastai: ``Learner.lr_find`` cuts ``[num_it // 10 : -5]`` and drops from the
first NaN; torch-lr-finder: ``LRFinder.plot(suggest_lr=True)`` with its
default ``skip_start=10, skip_end=5``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits

import lrscout
from lrscout.models import LinearRegressor, SoftmaxClassifier, find_lr

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "peer_rules.json"


def _standardised(X):
    return (X - X.mean(axis=0)) / np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)


def curves():
    """Named range-test curves: NumPy models, a PyTorch MLP, synthetic curves with noise."""
    digits_X, digits_y = load_digits(return_X_y=True)
    digits_X = _standardised(digits_X)
    cancer_X, cancer_y = load_breast_cancer(return_X_y=True)
    diabetes_X, diabetes_y = load_diabetes(return_X_y=True)
    runs = {
        "numpy-softmax-digits-b32": find_lr(
            SoftmaxClassifier(batch_size=32, random_state=0), digits_X, digits_y, extend=False
        ),
        "numpy-softmax-digits-b1": find_lr(
            SoftmaxClassifier(batch_size=1, random_state=0), digits_X, digits_y, num_steps=300, extend=False
        ),
        "numpy-softmax-cancer-full": find_lr(
            SoftmaxClassifier(batch_size=None, momentum=0.9), _standardised(cancer_X), cancer_y
        ),
        "numpy-linear-diabetes-b16": find_lr(
            LinearRegressor(batch_size=16, random_state=0),
            _standardised(diabetes_X),
            (diabetes_y - diabetes_y.mean()) / diabetes_y.std(),
            num_steps=150,
        ),
    }
    from lrscout.pytorch import find_lr as torch_find_lr

    torch.manual_seed(0)
    X = torch.tensor(digits_X, dtype=torch.float32)
    y = torch.tensor(digits_y)
    batches = [(X[i : i + 32], y[i : i + 32]) for i in range(0, len(X), 32)]
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    runs["pytorch-mlp-digits-sgdm"] = torch_find_lr(
        model, optimizer, batches, torch.nn.CrossEntropyLoss(), progress=False, num_steps=120
    )
    rng = np.random.default_rng(0)
    lrs = np.geomspace(1e-7, 10.0, 100)
    for seed, noise in enumerate((0.0, 0.02, 0.1)):
        base = 1.0 / (1.0 + 3e3 * lrs) + np.where(lrs > 0.5, (lrs - 0.5) ** 2, 0.0) + 0.1
        raw = base * np.exp(noise * np.random.default_rng(seed).standard_normal(100))
        state = lrscout.RangeTestState(
            start_lr=1e-7,
            end_lr=10.0,
            num_steps=100,
            mode="exponential",
            smoothing=0.98,
            divergence_factor=4.0,
        )
        state.record(raw.tolist())
        runs[f"synthetic-noise-{noise}"] = state.result()
    del rng
    return runs


def fastai_rules(result):
    """fastai's valley, minimum and steep, applied as Learner.lr_find applies them."""
    from fastai.callback.schedule import minimum, steep, valley
    from fastai.torch_core import tensor

    num_it = result.num_steps
    lrs = tensor(result.lrs.tolist()[num_it // 10 : -5])
    losses = tensor(result.smoothed_losses.tolist()[num_it // 10 : -5])
    nan = torch.nonzero(torch.isnan(losses.view(-1)))
    if len(nan) > 0:
        lrs, losses = lrs[: min(nan)], losses[: min(nan)]
    out = {}
    for name, rule in (("valley", valley), ("minimum", minimum), ("steep", steep)):
        lr, _ = rule(lrs, losses, num_it)
        out[name] = float(lr)
    return out


def torch_lr_finder_rule(result):
    """torch-lr-finder's suggestion (steepest gradient) from LRFinder.plot on this curve."""
    from torch_lr_finder import LRFinder

    model = torch.nn.Linear(1, 1)
    finder = LRFinder(model, torch.optim.SGD(model.parameters(), lr=0.1), torch.nn.MSELoss())
    finder.history = {"lr": result.lrs.tolist(), "loss": result.smoothed_losses.tolist()}
    _, ax = plt.subplots()
    with contextlib.redirect_stdout(io.StringIO()):
        _, lr = finder.plot(ax=ax, suggest_lr=True)
    plt.close("all")
    return float(lr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    records = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, result in curves().items():
            record = {
                "name": name,
                "num_steps": result.num_steps,
                "lrs": result.lrs.tolist(),
                "losses": [lrscout._jsonio.encode_float(x) for x in result.losses],
                "smoothed_losses": [lrscout._jsonio.encode_float(x) for x in result.smoothed_losses],
                "fastai": fastai_rules(result),
                "torch_lr_finder": torch_lr_finder_rule(result),
            }
            records.append(record)
            print(f"{name:32s} fastai {record['fastai']}  torch-lr-finder {record['torch_lr_finder']:.4g}")
    import fastai
    import torch_lr_finder

    versions = {"fastai": fastai.__version__, "torch_lr_finder": getattr(torch_lr_finder, "__version__", "?")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"versions": versions, "curves": records}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
