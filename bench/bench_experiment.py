#!/usr/bin/env python3
"""A 40-trial simulated sweep on every core against one core, as whole processes.

    python bench/bench_experiment.py [--trials 40] [--jobs 2] [--repeat 1] [--no-report]

Runs ``lclock experiment baseline --sim --trials 40 --seed 1 --quiet`` with ``--jobs 1``
and with ``--jobs N`` (default: the cores), alternately, in one run of this script, so
both see the same load; prints the times, the ratio and the load average before and
after. Target (issue 14): with 2 jobs on a 2-core machine, at most 0.6 of the time of 1
job. Exits 1 if the best ratio is over it. The two experiment folders must also hold the
same results: the script compares their summary.json byte for byte.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine_info  # noqa: E402 - bench/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parent.parent
TARGET = 0.6


def run(args: list[str], out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lclock", *args, "--output", str(out)], cwd=REPO,
                   check=True, env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    return time.perf_counter() - t


def autogroup() -> str:
    """The kernel shares the CPU between sessions, not processes, when this is on: then
    other sessions' load takes from both runs alike and hides the gain of a second job."""
    try:
        on = Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
    except OSError:
        return "unknown"
    return "on" if on else "off"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-report", action="store_true", help="trials without their report")
    a = ap.parse_args()
    base = ["experiment", "baseline", "--sim", "--trials", str(a.trials), "--duration",
            f"{a.duration:g}", "--seed", "1", "--quiet"] + (["--no-report"] if a.no_report else [])
    print(f"machine: {machine_info()}")
    print(f"command: python -m lclock {' '.join(base)} --jobs 1|{a.jobs} --output DIR")
    print(f"load average before: {load()}; autogroup scheduling: {autogroup()}")
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        one, many = Path(tmp) / "one", Path(tmp) / "many"
        for _ in range(a.repeat):
            t1 = run([*base, "--jobs", "1"], one)
            tn = run([*base, "--jobs", str(a.jobs)], many)
            same = (one / "summary.json").read_bytes() == (many / "summary.json").read_bytes()
            ratios.append(tn / t1)
            print(f"--jobs 1: {t1:.2f} s   --jobs {a.jobs}: {tn:.2f} s   ratio {tn / t1:.2f}   "
                  f"summary.json identical: {same}")
            if not same:
                return 1
    print(f"load average after: {load()}")
    best = min(ratios)
    print(f"best ratio {best:.2f} (target <= {TARGET}: {'ok' if best <= TARGET else 'OVER'})")
    return 0 if best <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
