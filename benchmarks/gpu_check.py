"""Prove lrscout's CUDA path on one GPU: restore, host syncs, overhead, torch.compile. Prints PASS or FAIL.

    python benchmarks/gpu_check.py                        # one CUDA GPU, under 5 minutes
    python benchmarks/gpu_check.py --device cpu --quick   # the same checks, small, on the CPU (CI)

Without a CUDA device the first form prints one ``SKIP`` line and exits 0.
Each check prints ``PASS``, ``FAIL`` or ``INFO`` (a measurement not judged,
such as timings on the CPU) with what it measured; the exit status is 1 when
any check failed. On a ResNet-18 (CIFAR layout, 11.2 M parameters, BatchNorm,
dropout before the classifier; 3x32x32 inputs, batch 256):

* **restore**: after a range test and after one that raises, weights,
  buffers, gradients, optimizer state (AdamW), the GradScaler, train/eval
  modes and the CPU and CUDA RNG states are bitwise as before; with bf16
  autocast and a pinned-memory ``DataLoader``, and with fp16 + ``GradScaler``.
* **host syncs per step**: ``torch.cuda.set_sync_debug_mode("warn")`` counts
  every synchronizing CUDA call and a ``TorchFunctionMode`` every read of a
  tensor's value on the host (``item``, ``tolist``, ``float``, ...), over
  tests of ``N`` and ``2N`` steps; the difference over ``N`` is the rate per
  step, which must be at most 1/8 (one read per chunk of 8). With a
  GradScaler, whose ``step`` reads an inf flag on every step by PyTorch's
  design, the rate beyond a bare loop's own.
* **overhead**: time per step of ``LRFinder.range_test`` against a bare
  training loop (``zero_grad``, forward under autocast, ``backward``,
  ``step``), from the same difference of ``N`` and ``2N`` steps, medians of
  rounds taken in turn; at most 1.02x passes. The snapshot and restore
  (fixed, once per test) are reported beside it, with the whole test's ratio.
* **torch.compile**: the test on ``torch.compile(model)`` runs, restores
  bitwise, and a second test compiles nothing new; its overhead is reported.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Host reads of a tensor's value: on CUDA each waits for the device.
HOST_READS = ("item", "tolist", "__float__", "__int__", "__bool__", "__index__", "numpy", "cpu")


@dataclass(frozen=True)
class Sizes:
    width: int  # ResNet-18's first stage (64: the real one)
    image: int
    batch: int
    restore_steps: int
    sync_steps: int  # N: tests of N and 2N steps
    time_steps: int  # N for the overhead
    rounds: int


FULL = Sizes(width=64, image=32, batch=256, restore_steps=40, sync_steps=64, time_steps=100, rounds=5)
QUICK = Sizes(width=2, image=8, batch=2, restore_steps=6, sync_steps=8, time_steps=2, rounds=1)
#: The ramp of every timed or counted test: low enough that nothing diverges.
STEADY = {"start_lr": 1e-5, "end_lr": 1e-3, "stop_on_divergence": False, "extend": False, "progress": False}


class Report:
    """The checks' lines, and whether any failed."""

    def __init__(self) -> None:
        self.failed: list[str] = []
        self.passed = 0

    def check(self, name: str, ok: bool | None, detail: str) -> None:
        """``ok`` True: PASS, False: FAIL, None: INFO (measured, not judged)."""
        word = "INFO" if ok is None else ("PASS" if ok else "FAIL")
        if ok is False:
            self.failed.append(name)
        elif ok:
            self.passed += 1
        print(f"{word} {name}: {detail}", flush=True)


def resnet18(width: int, classes: int = 10) -> Any:
    """ResNet-18 in the CIFAR layout (3x3 stem, no max-pool), dropout before the classifier."""
    from torch import nn

    def block(inputs: int, outputs: int, stride: int) -> nn.Module:
        class Basic(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.body = nn.Sequential(
                    nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False),
                    nn.BatchNorm2d(outputs),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False),
                    nn.BatchNorm2d(outputs),
                )
                self.shortcut = (
                    nn.Identity()
                    if stride == 1 and inputs == outputs
                    else nn.Sequential(
                        nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs)
                    )
                )

            def forward(self, x: Any) -> Any:
                return nn.functional.relu(self.body(x) + self.shortcut(x))

        return Basic()

    widths = [width, 2 * width, 4 * width, 8 * width]
    layers: list[nn.Module] = [
        nn.Conv2d(3, width, 3, 1, 1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
    ]
    previous = width
    for stage, channels in enumerate(widths):
        layers += [block(previous, channels, 1 if stage == 0 else 2), block(channels, channels, 1)]
        previous = channels
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.1), nn.Linear(previous, classes)]
    return nn.Sequential(*layers)


class Setup:
    """The model, data and settings of one run of the checks."""

    def __init__(self, device: str, sizes: Sizes) -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.sizes = sizes
        self.cuda = self.device.type == "cuda"
        generator = torch.Generator().manual_seed(0)
        shape = (sizes.batch, 3, sizes.image, sizes.image)
        self.cpu_batches = [
            (
                torch.randn(shape, generator=generator),
                torch.randint(0, 10, (sizes.batch,), generator=generator),
            )
            for _ in range(8)
        ]
        # On the GPU, inputs in the model's channels-last layout (no conversion in the step).
        layout = torch.channels_last if self.cuda else torch.contiguous_format
        self.batches = [
            (x.to(self.device, memory_format=layout), y.to(self.device)) for x, y in self.cpu_batches
        ]
        self.criterion = torch.nn.CrossEntropyLoss()

    def model(self, seed: int = 0) -> Any:
        self.torch.manual_seed(seed)
        model = resnet18(self.sizes.width).to(self.device)
        # Channels-last is the tensor cores' layout; on the CPU it makes bf16 convolutions crawl.
        return model.to(memory_format=self.torch.channels_last) if self.cuda else model

    def loader(self) -> Any:
        """A pinned-memory DataLoader (on CUDA) over the CPU copies of the batches."""
        torch = self.torch
        x = torch.cat([x for x, _ in self.cpu_batches])
        y = torch.cat([y for _, y in self.cpu_batches])
        return torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(x, y), batch_size=self.sizes.batch, pin_memory=self.cuda
        )

    def scaler(self) -> Any:
        return self.torch.amp.GradScaler(self.device.type)

    def synchronize(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def warm(self, model: Any, optimizer: Any, amp_dtype: Any, scaler: Any = None) -> None:
        """Two steps and a third backward: optimizer state, gradients, BatchNorm statistics, RNG used."""
        torch = self.torch
        model.train()
        for index, (x, y) in enumerate(self.batches[:3]):
            optimizer.zero_grad()
            with torch.autocast(self.device.type, dtype=amp_dtype):
                loss = self.criterion(model(x), y)
            (loss if scaler is None else scaler.scale(loss)).backward()
            if index < 2:
                if scaler is None:
                    optimizer.step()
                else:
                    scaler.step(optimizer)
                    scaler.update()


def capture(setup: Setup, model: Any, optimizer: Any, scaler: Any = None) -> dict[str, Any]:
    """Clones of everything the test must give back."""
    torch = setup.torch
    state = optimizer.state_dict()
    return {
        "weights": {name: p.detach().clone() for name, p in model.named_parameters()},
        "buffers": {name: b.clone() for name, b in model.named_buffers()},
        "grads": {name: None if p.grad is None else p.grad.clone() for name, p in model.named_parameters()},
        "optimizer state": {
            index: {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in s.items()}
            for index, s in state["state"].items()
        },
        "learning rates": [group["lr"] for group in optimizer.param_groups],
        "modes": [module.training for module in model.modules()],
        "CPU RNG": torch.get_rng_state(),
        "CUDA RNG": torch.cuda.get_rng_state_all() if setup.cuda else [],
        "GradScaler": scaler.state_dict() if scaler is not None else None,
    }


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Names of what is not bitwise as before."""
    import torch

    def bits(t: Any) -> Any:
        # The bytes, not the numbers: a NaN gradient (fp16 overflow) equals itself here.
        return t.detach().contiguous().reshape(-1).view(torch.uint8)

    def same(a: Any, b: Any) -> bool:
        if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
            return (
                isinstance(a, torch.Tensor)
                and isinstance(b, torch.Tensor)
                and a.dtype == b.dtype
                and a.shape == b.shape
                and a.device == b.device
                and torch.equal(bits(a), bits(b))
            )
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
        return bool(a == b)

    return [key for key in before if not same(before[key], after[key])]


def check_restore(setup: Setup, report: Report) -> None:
    from lrscout.pytorch import find_lr

    torch = setup.torch
    steps = setup.sizes.restore_steps
    for label, amp_dtype, use_scaler in (
        ("bf16 autocast", torch.bfloat16, False),
        ("fp16 + GradScaler", torch.float16, True),
    ):
        model = setup.model()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
        scaler = setup.scaler() if use_scaler else None
        setup.warm(model, optimizer, amp_dtype, scaler)
        settings = {"amp_dtype": amp_dtype, "grad_scaler": scaler, "num_steps": steps, "progress": False}
        before = capture(setup, model, optimizer, scaler)
        result = find_lr(model, optimizer, setup.loader(), setup.criterion, **settings)
        changed = differences(before, capture(setup, model, optimizer, scaler))
        report.check(
            f"restore after a test ({label}, pinned DataLoader)"
            if not use_scaler
            else f"restore after a test ({label})",
            not changed and len(result) >= 2,
            f"{len(result)} steps ({result.stop_reason}); "
            + (f"changed: {', '.join(changed)}" if changed else "everything bitwise"),
        )

        counter = itertools.count()

        def failing(net: Any, batch: Any, calls: Any = counter) -> Any:
            if next(calls) == 5:
                raise RuntimeError("raised at step 5")
            return setup.criterion(net(batch[0]), batch[1])

        raised = ""
        try:
            find_lr(model, optimizer, setup.batches, loss_fn=failing, **settings)
        except RuntimeError as error:
            raised = str(error)
        changed = differences(before, capture(setup, model, optimizer, scaler))
        report.check(
            f"restore after an exception ({label})",
            raised == "raised at step 5" and not changed,
            f"raised {raised!r}; " + (f"changed: {', '.join(changed)}" if changed else "everything bitwise"),
        )


class _HostReads:
    """Counts reads of tensor values on the host, through a TorchFunctionMode."""

    def __init__(self) -> None:
        from torch.overrides import TorchFunctionMode

        counts = self

        class Mode(TorchFunctionMode):
            def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
                if getattr(func, "__name__", "") in HOST_READS:
                    counts.n += 1
                return func(*args, **(kwargs or {}))

        self.n = 0
        self.mode = Mode()


def count_syncs(setup: Setup, run: Callable[[int], None], steps: int) -> dict[str, float]:
    """Synchronizing calls (CUDA's sync debug mode) and host reads per step, from N and 2N steps."""
    torch = setup.torch
    totals: dict[str, list[int]] = {"syncs": [], "host reads": []}
    for n in (steps, 2 * steps):
        reads = _HostReads()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if setup.cuda:
                torch.cuda.set_sync_debug_mode("warn")
            try:
                with reads.mode:
                    run(n)
                setup.synchronize()
            finally:
                if setup.cuda:
                    torch.cuda.set_sync_debug_mode("default")
        totals["syncs"].append(sum("synchroniz" in str(w.message) for w in caught))
        totals["host reads"].append(reads.n)
    return {key: (values[1] - values[0]) / steps for key, values in totals.items()}


def bare_loop(
    setup: Setup, model: Any, optimizer: Any, amp_dtype: Any, scaler: Any = None
) -> Callable[[int], None]:
    """``run(n)``: n plain training steps (the loop a user writes), cycling the device batches."""
    torch = setup.torch
    batches = itertools.cycle(setup.batches)

    def run(n: int) -> None:
        model.train()
        for _ in range(n):
            x, y = next(batches)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(setup.device.type, dtype=amp_dtype):
                loss = setup.criterion(model(x), y)
            if scaler is None:
                loss.backward()
                optimizer.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()

    return run


def finder_loop(
    setup: Setup, model: Any, optimizer: Any, amp_dtype: Any, scaler: Any = None
) -> Callable[[int], None]:
    """``run(n)``: one range test of n steps on the device batches, model restored after."""
    from lrscout.pytorch import LRFinder

    finder = LRFinder(model, optimizer, setup.criterion, amp_dtype=amp_dtype, grad_scaler=scaler)

    def run(n: int) -> None:
        result = finder.range_test(setup.batches, num_steps=n, **STEADY)
        if len(result) != n:
            raise RuntimeError(f"the test ran {len(result)} of {n} steps ({result.stop_reason})")

    return run


def _configs(setup: Setup) -> list[tuple[str, Any, bool]]:
    torch = setup.torch
    return [("bf16 autocast", torch.bfloat16, False), ("fp16 + GradScaler", torch.float16, True)]


def _pair(
    setup: Setup, amp_dtype: Any, use_scaler: bool, model_of: Callable[[Any], Any] = lambda m: m
) -> tuple[Any, Any]:
    """A bare loop and a finder, each on its own model (SGD, momentum 0.9, weight decay), warmed."""
    torch = setup.torch
    runs = []
    for make in (bare_loop, finder_loop):
        model = setup.model()
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-4)
        scaler = setup.scaler() if use_scaler else None
        setup.warm(model, optimizer, amp_dtype, scaler)
        runs.append(make(setup, model_of(model), optimizer, amp_dtype, scaler))
    return runs[0], runs[1]


def check_syncs(setup: Setup, report: Report) -> None:
    steps = setup.sizes.sync_steps
    for label, amp_dtype, use_scaler in _configs(setup):
        bare, finder = _pair(setup, amp_dtype, use_scaler)
        bare(2)
        finder(2)  # warm-up: cuDNN's choices, the caching allocator
        ours, theirs = count_syncs(setup, finder, steps), count_syncs(setup, bare, steps)
        measures = ("syncs", "host reads") if setup.cuda else ("host reads",)
        extra = {key: ours[key] - (theirs[key] if use_scaler else 0.0) for key in measures}
        beyond = " beyond the bare loop's (GradScaler.step reads its inf flag)" if use_scaler else ""
        # The control: GradScaler.step's read on every step of the bare loop must be seen.
        blind = [key for key in measures if use_scaler and theirs[key] < 0.5]
        report.check(
            f"host syncs per step ({label})",
            not blind and all(value <= 1 / 8 for value in extra.values()),
            ", ".join(f"{key}: {ours[key]:.3f} per step, bare loop {theirs[key]:.3f}" for key in measures)
            + f"; lrscout's own{beyond}: "
            + ", ".join(f"{extra[key]:.3f}" for key in measures)
            + " (at most 1/8)"
            + (f"; the count missed GradScaler's reads ({', '.join(blind)}): not counting" if blind else ""),
        )


def time_per_step(
    setup: Setup, runs: dict[str, Callable[[int], None]], steps: int, rounds: int
) -> dict[str, Any]:
    """Per round and method: seconds for N and 2N steps; medians of the per-step and fixed costs."""
    timings: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    names = list(runs)
    for round_ in range(rounds):
        order = names if round_ % 2 == 0 else names[::-1]
        for name in order:
            pair = []
            for n in (steps, 2 * steps):
                setup.synchronize()
                began = time.perf_counter()
                runs[name](n)
                setup.synchronize()
                pair.append(time.perf_counter() - began)
            timings[name].append((pair[0], pair[1]))
    per_step = {name: [(t2 - t1) / steps for t1, t2 in timings[name]] for name in names}
    return {
        "per_step": {name: statistics.median(values) for name, values in per_step.items()},
        "ratio": statistics.median(f / b for f, b in zip(per_step["lrscout"], per_step["bare"], strict=True)),
        "whole": statistics.median(
            f[0] / b[0] for f, b in zip(timings["lrscout"], timings["bare"], strict=True)
        ),
        "fixed": statistics.median(
            (f[0] - steps * fs) - (b[0] - steps * bs)
            for f, b, fs, bs in zip(
                timings["lrscout"], timings["bare"], per_step["lrscout"], per_step["bare"], strict=True
            )
        ),
    }


def _timing_text(timed: dict[str, Any]) -> str:
    ours, bare = 1e3 * timed["per_step"]["lrscout"], 1e3 * timed["per_step"]["bare"]
    return (
        f"{ours:.3f} ms per step against {bare:.3f} ms: {timed['ratio']:.3f}x (at most 1.02x); "
        f"snapshot and restore {1e3 * timed['fixed']:.1f} ms per test"
    )


def check_overhead(setup: Setup, report: Report) -> None:
    sizes = setup.sizes
    # Off the GPU the timings are not judged: one configuration runs the code.
    for label, amp_dtype, use_scaler in _configs(setup)[: None if setup.cuda else 1]:
        bare, finder = _pair(setup, amp_dtype, use_scaler)
        bare(3)
        finder(3)
        timed = time_per_step(setup, {"bare": bare, "lrscout": finder}, sizes.time_steps, sizes.rounds)
        report.check(
            f"overhead vs a bare loop ({label}, ResNet-18, batch {sizes.batch})",
            timed["ratio"] <= 1.02 if setup.cuda else None,
            _timing_text(timed)
            + f"; a test of {sizes.time_steps} steps {timed['whole']:.3f}x the bare loop's time",
        )


def check_compile(setup: Setup, report: Report, backend: str) -> None:
    import torch._dynamo

    from lrscout.pytorch import find_lr

    torch = setup.torch
    counters = torch._dynamo.utils.counters
    torch._dynamo.reset()
    model = setup.model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    setup.warm(model, optimizer, torch.bfloat16)
    compiled = torch.compile(model, backend=backend)
    settings = {"amp_dtype": torch.bfloat16, "num_steps": setup.sizes.restore_steps, "progress": False}
    before = capture(setup, model, optimizer)
    graphs = counters["stats"]["unique_graphs"]
    began = time.perf_counter()
    first = find_lr(compiled, optimizer, setup.batches, setup.criterion, **settings)
    first_s = time.perf_counter() - began
    compiled_graphs = counters["stats"]["unique_graphs"] - graphs
    second = find_lr(compiled, optimizer, setup.batches, setup.criterion, **settings)
    new_graphs = counters["stats"]["unique_graphs"] - graphs - compiled_graphs
    changed = differences(before, capture(setup, model, optimizer))
    # GPU kernels with atomics (cuDNN's backward among them) may differ in the last bits from
    # run to run: the second curve is reported, not judged.
    same = "the same curve" if first == second else "a curve that differs (nondeterministic kernels)"
    report.check(
        f"torch.compile (backend {backend!r}): restore and recompiles",
        not changed and compiled_graphs >= 1 and new_graphs == 0 and len(first) >= 2,
        f"{len(first)} steps, the first test {first_s:.1f} s with {compiled_graphs} graphs compiled; "
        f"a second test compiled {new_graphs} new graphs and gave {same}; "
        + (f"changed: {', '.join(changed)}" if changed else "everything bitwise"),
    )
    # The same compiled model for both loops: one compilation.
    bare = bare_loop(setup, compiled, optimizer, torch.bfloat16)
    finder = finder_loop(setup, compiled, optimizer, torch.bfloat16)
    bare(3)
    finder(3)
    timed = time_per_step(
        setup, {"bare": bare, "lrscout": finder}, setup.sizes.time_steps, setup.sizes.rounds
    )
    report.check(
        "overhead vs a bare loop (torch.compile, bf16 autocast)",
        timed["ratio"] <= 1.02 if setup.cuda else None,
        _timing_text(timed),
    )


CHECKS = ("restore", "syncs", "overhead", "compile")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default; SKIP without one) or cpu")
    parser.add_argument(
        "--quick", action="store_true", help="a small model and few steps (the CPU run in CI)"
    )
    parser.add_argument("--checks", nargs="+", choices=CHECKS, default=list(CHECKS))
    parser.add_argument(
        "--compile-backend",
        default=None,
        help="torch.compile backend (default: inductor; eager with --quick)",
    )
    args = parser.parse_args(argv)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            f"SKIP: no CUDA device (torch {torch.__version__}, torch.cuda.is_available() is False): nothing "
            "was checked. Run this on a machine with an NVIDIA GPU; --device cpu --quick runs the checks "
            "on the CPU."
        )
        return 0
    began = time.perf_counter()
    setup = Setup(args.device, QUICK if args.quick else FULL)
    name = torch.cuda.get_device_name(setup.device) if setup.cuda else "CPU"
    print(
        f"lrscout GPU check: torch {torch.__version__}, {name}, ResNet-18 width {setup.sizes.width}",
        flush=True,
    )
    if setup.cuda:
        torch.backends.cudnn.benchmark = True
    report = Report()
    backend = args.compile_backend or ("eager" if args.quick else "inductor")
    with warnings.catch_warnings():
        # The curves of these short, steady ramps are not what is checked.
        from lrscout import CurveWarning

        warnings.simplefilter("ignore", CurveWarning)
        if "restore" in args.checks:
            check_restore(setup, report)
        if "syncs" in args.checks:
            check_syncs(setup, report)
        if "overhead" in args.checks:
            check_overhead(setup, report)
        if "compile" in args.checks:
            check_compile(setup, report, backend)
    elapsed = time.perf_counter() - began
    if report.failed:
        judged = len(report.failed) + report.passed
        print(f"FAILED {len(report.failed)} of {judged} checks ({elapsed:.0f} s): {', '.join(report.failed)}")
        return 1
    print(f"all {report.passed} judged checks passed ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
