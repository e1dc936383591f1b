"""Per-batch cost of ``lrscout.keras.LRFinder`` against a plain ``fit``, on every installed Keras backend.

    python benchmarks/keras_overhead.py            # a Markdown table, one row per backend
    python benchmarks/keras_overhead.py --repeats 3

Each backend runs in its own process (Keras fixes its backend at import), one
thread each. The model is a 64-128-128-10 MLP on the digits, batch 32, SGD
with momentum, compiled with an accuracy metric. Each ``fit`` runs
``--steps`` batches in one epoch without shuffling, with and without the
finder, the two interleaved over ``--repeats`` rounds; the figures are
medians. A batch's cost is the time from the start of batch ``--skip`` to
the end of ``fit`` (the last step's result read back, so that JAX's
asynchronous dispatch is waited for), over the batches in between: what
the test pays once (the snapshot, the swap of the learning rate, the new
trace of the training step) comes before it and is reported on its own,
as the extra time a ``fit`` with the finder takes to reach that batch;
the restore at the end is counted per batch. A clock callback that only
reads the time when a batch begins is in both runs (a batch-begin hook
keeps Keras's asynchronous batch-end dispatch of a plain ``fit``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

BACKENDS = ("tensorflow", "torch", "jax")
ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "JAX_PLATFORMS": "cpu",
    "TF_CPP_MIN_LOG_LEVEL": "3",
}


def measure(steps: int, skip: int, repeats: int) -> dict[str, float]:
    """Run in the backend's own process: seconds per batch with and without the finder."""
    import keras
    import numpy as np
    from sklearn.datasets import load_digits

    from lrscout.keras import LRFinder

    if keras.backend.backend() == "torch":
        import torch

        torch.set_num_threads(1)
    X, y = load_digits(return_X_y=True)
    repeat = -(-steps * 32 // len(X))
    X = np.tile((X / 16.0).astype("float32"), (repeat, 1))[: steps * 32]
    y = np.tile(y.astype("int64"), repeat)[: steps * 32]
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )

    class Clock(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            if batch == skip:
                self.start = time.perf_counter()

    def fit(finder: bool) -> tuple[float, float]:
        clock = Clock()
        callbacks = [clock]
        if finder:
            callbacks.append(LRFinder(1e-5, 1e-4, num_steps=steps, stop_on_divergence=False))
        began = time.perf_counter()
        model.fit(X, y, batch_size=32, epochs=1, shuffle=False, verbose=0, callbacks=callbacks)
        float(keras.ops.sum(model.layers[-1].kernel.value))  # wait for the last step
        ended = time.perf_counter()
        return clock.start - began, (ended - clock.start) / (steps - skip)

    for finder in (False, True):
        fit(finder)  # traces
    rounds: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for _ in range(repeats):
        for finder in (False, True):
            rounds[finder].append(fit(finder))
    setup = {f: statistics.median(r[0] for r in rounds[f]) for f in rounds}
    per_batch = {f: statistics.median(r[1] for r in rounds[f]) for f in rounds}
    return {
        "plain_per_batch": per_batch[False],
        "finder_per_batch": per_batch[True],
        "ratio": per_batch[True] / per_batch[False],
        "once_per_test": setup[True] - setup[False],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="batches per fit")
    parser.add_argument("--skip", type=int, default=5, help="batches before the clock starts")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args.steps, args.skip, args.repeats)))
        return 0
    print("| backend | plain `fit`, per batch | with `LRFinder`, per batch | ratio | once per test |")
    print("|---|---|---|---|---|")
    for backend in BACKENDS:
        if importlib.util.find_spec(backend) is None:
            print(f"| {backend} | not installed | | | |")
            continue
        command = [sys.executable, __file__, "--worker", backend]
        command += ["--steps", str(args.steps), "--skip", str(args.skip), "--repeats", str(args.repeats)]
        env = {**os.environ, **ONE_THREAD, "KERAS_BACKEND": backend}
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"| {backend} | failed: {done.stderr.strip().splitlines()[-1]} | | | |")
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"| {backend} | {row['plain_per_batch'] * 1e3:.3f} ms | {row['finder_per_batch'] * 1e3:.3f} ms "
            f"| {row['ratio']:.3f}× | {row['once_per_test'] * 1e3:.0f} ms |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
