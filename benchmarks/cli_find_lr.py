"""End-to-end time of `lrscout find-lr` (the README's main job), as a user runs it.

    python benchmarks/cli_find_lr.py [--repeats 5]

Runs the installed `lrscout find-lr` command in a fresh process each time
(interpreter start, imports, data loading, the range test, the plot) and
prints the median and spread of the wall times, the CPU time of the command
(what it costs on a machine with a core to spare: the wall time of a quiet
machine) and the machine's load average while it ran. Goal: 1.5 s on a quiet
machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("args", nargs="*", default=[], help="extra arguments for find-lr")
    options = parser.parse_args()
    command = shutil.which("lrscout")
    if command is None:
        raise SystemExit("install lrscout first: pip install .")
    times, cpu_times, loads = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(options.repeats):
            loads.append(os.getloadavg()[0])
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            began = time.perf_counter()
            subprocess.run(
                [command, "find-lr", "--quiet", *options.args], cwd=folder, check=True, capture_output=True
            )
            times.append(time.perf_counter() - began)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu_times.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    print(f"lrscout find-lr {' '.join(options.args)}".strip())
    print(
        f"runs: {len(times)}, wall median {statistics.median(times):.2f} s "
        f"(min {min(times):.2f}, max {max(times):.2f}); CPU median {statistics.median(cpu_times):.2f} s "
        f"(min {min(cpu_times):.2f}, max {max(cpu_times):.2f}); load average {statistics.median(loads):.1f} "
        f"on {os.cpu_count()} cores (goal: 1.5 s on a quiet machine)"
    )


if __name__ == "__main__":
    main()
