"""Times a whole conformance run against the embedded reference app, phase by phase.

    python -m bench.conformance [--runs N] [--seed S]

Prints the wall time of each run, the median, and its ratio to the 60 s target.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 60.0


def one_run(seed: int) -> tuple[float, str]:
    """Run `iam-harness run` once; return its wall time and answer."""
    with tempfile.TemporaryDirectory(prefix="iam-bench-") as tmp:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "harness", "run", "--seed", str(seed), "--report-dir", tmp],
            check=False,
            capture_output=True,
        )
        elapsed = time.perf_counter() - started
        report = Path(tmp) / "report.json"
        answer = json.loads(report.read_text())["answer"] if report.exists() else "no report"
    return elapsed, answer


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"seed {args.seed}, {args.runs} run(s) of `iam-harness run` (embedded app, embedded PostgreSQL, Chromium)")
    times = []
    for n in range(args.runs):
        elapsed, answer = one_run(args.seed + n)
        times.append(elapsed)
        print(f"run {n + 1}: {elapsed:6.2f} s  answer {answer}")
    median = statistics.median(times)
    print(f"median {median:.2f} s; target {TARGET_SECONDS:.0f} s; ratio {median / TARGET_SECONDS:.2f} of the target")


if __name__ == "__main__":
    main()
