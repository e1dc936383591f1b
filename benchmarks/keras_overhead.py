"""Per-batch cost of ``lrscout.keras.LRFinder`` against a plain ``fit``, on every installed Keras backend.

    python benchmarks/keras_overhead.py            # a Markdown table, one row per backend
    python benchmarks/keras_overhead.py --repeats 3

Each backend runs in its own process (Keras fixes its backend at import), one
thread each. The model is a 64-128-128-10 MLP on the digits, batch 32, SGD
with momentum, compiled with an accuracy metric; its training step is traced
before timing. A batch's cost is the slope between a short and a long
``fit`` (``--short`` and ``--long`` batches, one epoch, no shuffling), so
what is paid once per test (the snapshot, the swap of the learning rate and
the new trace of the training step, the restore) is apart from it and
reported on its own, as the time a short ``fit`` with the finder takes over
a plain one. Each figure is the median over ``--repeats`` rounds, the
variants interleaved within a round.
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


def measure(short: int, long: int, repeats: int) -> dict[str, float]:
    """Run in the backend's own process: seconds per batch with and without the finder."""
    import keras
    import numpy as np
    from sklearn.datasets import load_digits

    from lrscout.keras import LRFinder

    if keras.backend.backend() == "torch":
        import torch

        torch.set_num_threads(1)
    X, y = load_digits(return_X_y=True)
    repeat = -(-long * 32 // len(X))
    X = np.tile((X / 16.0).astype("float32"), (repeat, 1))
    y = np.tile(y.astype("int64"), repeat)
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

    def fit(steps: int, finder: bool) -> float:
        callbacks = [LRFinder(1e-5, 1e-4, num_steps=steps, stop_on_divergence=False)] if finder else None
        start = time.perf_counter()
        model.fit(
            X[: steps * 32],
            y[: steps * 32],
            batch_size=32,
            epochs=1,
            shuffle=False,
            verbose=0,
            callbacks=callbacks,
        )
        return time.perf_counter() - start

    for finder in (False, True):
        fit(short, finder)  # traces
    times: dict[tuple[bool, int], list[float]] = {(f, n): [] for f in (False, True) for n in (short, long)}
    for _ in range(repeats):
        for finder in (False, True):
            for steps in (short, long):
                times[(finder, steps)].append(fit(steps, finder))
    median = {key: statistics.median(values) for key, values in times.items()}
    per_batch = {f: (median[(f, long)] - median[(f, short)]) / (long - short) for f in (False, True)}
    return {
        "plain_per_batch": per_batch[False],
        "finder_per_batch": per_batch[True],
        "ratio": per_batch[True] / per_batch[False],
        "once_per_test": median[(True, short)]
        - median[(False, short)]
        - short * (per_batch[True] - per_batch[False]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", type=int, default=40, help="batches of the short fit")
    parser.add_argument("--long", type=int, default=240, help="batches of the long fit")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args.short, args.long, args.repeats)))
        return 0
    print("| backend | plain `fit`, per batch | with `LRFinder`, per batch | ratio | once per test |")
    print("|---|---|---|---|---|")
    for backend in BACKENDS:
        if importlib.util.find_spec(backend) is None:
            print(f"| {backend} | not installed | | | |")
            continue
        command = [sys.executable, __file__, "--worker", backend]
        command += ["--short", str(args.short), "--long", str(args.long), "--repeats", str(args.repeats)]
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
