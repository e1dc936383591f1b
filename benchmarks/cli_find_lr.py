"""End-to-end time of `lrscout find-lr` (the README's main job), as a user runs it.

    python benchmarks/cli_find_lr.py [--repeats 5]

Runs the installed `lrscout find-lr` command in a fresh process each time
(interpreter start, imports, data loading, the range test, the plot) and
prints the median and spread of the wall times. Goal: under 3 s.
"""

from __future__ import annotations

import argparse
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
    times = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(options.repeats):
            began = time.perf_counter()
            subprocess.run(
                [command, "find-lr", "--quiet", *options.args], cwd=folder, check=True, capture_output=True
            )
            times.append(time.perf_counter() - began)
    print(f"lrscout find-lr {' '.join(options.args)}".strip())
    print(
        f"runs: {len(times)}, median {statistics.median(times):.2f} s, "
        f"min {min(times):.2f} s, max {max(times):.2f} s (goal: under 3 s)"
    )


if __name__ == "__main__":
    main()
