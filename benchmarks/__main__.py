"""The benchmark suite in one command (outside pytest: figures are printed, never asserted).

    uv run python -m benchmarks --quick   # the CI-sized subset, a few minutes on 2 cores (make bench)
    uv run python -m benchmarks           # the figures of docs/performance.md, about an hour (make bench-full)

One benchmark at a time: each uses both cores. Exit code 1 if a benchmark fails or its
implementations disagree.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

QUICK = [
    ["benchmarks.engine", "--small-files", "20", "--big-records", "500000"],
    ["benchmarks.markets_factors", "--symbols", "300", "--years", "2", "--per-day-sample", "5"],
    ["benchmarks.end_to_end", "--scales", "0.01", "--storage", "local"],
]
FULL = [
    ["benchmarks.engine"],
    ["benchmarks.markets_factors"],
    ["benchmarks.end_to_end", "--scales", "0.1", "--storage", "local,s3"],
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the CI-sized subset")
    args = parser.parse_args(argv)
    for command in QUICK if args.quick else FULL:
        print(f"\n$ python -m {' '.join(command)}", flush=True)
        if subprocess.run([sys.executable, "-m", *command]).returncode:
            print(f"FAIL {command[0]}")
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
