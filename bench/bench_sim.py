#!/usr/bin/env python3
"""Benchmark of the simulator and the simulated experiment runner, as whole processes.

Why whole processes: the budget in issue 4 is for what a user waits for at the prompt,
interpreter start-up and imports (orjson, matplotlib) included, not for an inner loop.

    python bench/bench_sim.py [--repeat 5]

Budgets: one simulated hour of 3 machines at rates 1..6 <= 3 s; a 5-trial simulated
experiment <= 2 s. Prints the best and the median of ``--repeat`` runs of each command,
and exits 1 if a best time is over its budget.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import cpu_model  # noqa: E402 - bench/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parent.parent

CASES = [
    # (label, arguments after `python -m lclock`, budget in seconds)
    ("sim: 1 h, 3 machines, rates 1,3,6",
     ["sim", "--duration", "3600", "--rates", "1,3,6", "--seed", "1", "--quiet"], 3.0),
    ("sim: 1 h, 3 machines, rates 6,6,6 (worst case of 1..6)",
     ["sim", "--duration", "3600", "--rates", "6,6,6", "--seed", "1", "--quiet"], 3.0),
    ("experiment: baseline, --sim, 5 trials of 60 s",
     ["experiment", "baseline", "--sim", "--trials", "5", "--seed", "1", "--quiet", "--no-report"],
     2.0),
]  # fmt: skip


def time_once(args: list[str], out: Path) -> float:
    flag = "--output"
    target = out / ("exp" if args[0] == "experiment" else "runs")
    shutil.rmtree(target, ignore_errors=True)
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "lclock", *args, flag, str(target)],
        cwd=REPO,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    print(f"machine: {os.cpu_count()} CPUs ({cpu_model()}), Python {platform.python_version()}, "
          f"{platform.system()} {platform.release()}")
    over = False
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        time_once(CASES[0][1], out)  # warm the file cache and the bytecode
        for label, args, budget in CASES:
            times = [time_once(args, out) for _ in range(a.repeat)]
            best, med = min(times), statistics.median(times)
            ok = best <= budget
            over |= not ok
            print(f"{label}: best {best:.2f} s, median {med:.2f} s of {a.repeat} "
                  f"(budget {budget:g} s: {'ok' if ok else 'OVER'})")
            print(f"    python -m lclock {' '.join(args)} --output DIR")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
