"""Benchmark of the analysis side (issue 3): ``lclock analyze`` and ``lclock report`` on a
1M-event run, each timed as a whole process (interpreter start-up and imports included).

Budgets: analyze reads >= 500,000 events/s; report finishes in under 30 s. Peak memory is
the child's maximum resident set size (getrusage RUSAGE_CHILDREN, measured in a fresh
wrapper process per command so the figures do not mix).

    python bench/bench_analysis.py [--events 1000000] [--repeat 3] [--keep DIR]

Exits 1 if a budget is missed.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from _common import (  # noqa: E402 - bench/ is on sys.path when run as a script
    RATES,
    cpu_model,
    generated_run,
    run_arguments,
    timed_child,
)


def timed(cmd: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS in KiB) of one whole child process."""
    wall, _, rss = timed_child(cmd, REPO)
    return wall, rss


def main() -> int:
    args = run_arguments(__doc__, repeat=3)
    rates = RATES
    with generated_run(args.events, args.keep) as (base, run):
        size = sum(p.stat().st_size for p in run.glob("machine-*.jsonl"))
        lines = sum(p.read_bytes().count(b"\n") for p in run.glob("machine-*.jsonl"))
        events = lines - 2 * len(rates)
        print(f"run: {events} events, {size / 1e6:.0f} MB of logs, rates {rates}")
        results = {}
        for name, cmd in (
            ("analyze", [sys.executable, "-m", "lclock", "analyze", str(run), "--no-write"]),
            ("report", [sys.executable, "-m", "lclock", "report", str(run), "-o",
                        str(base / "report")]),
        ):
            walls, rsss = [], []
            for _ in range(args.repeat):
                w, r = timed(cmd)
                walls.append(w)
                rsss.append(r)
            results[name] = {"best_s": min(walls), "median_s": sorted(walls)[len(walls) // 2],
                             "peak_rss_mib": max(rsss) / 1024,
                             "events_per_s": events / min(walls)}
            print(f"{name:8s} best {min(walls):6.2f} s  median {results[name]['median_s']:6.2f} s"
                  f"  {events / min(walls):>10,.0f} events/s  peak RSS "
                  f"{max(rsss) / 1024:6.0f} MiB   ({' '.join(cmd[1:4])} ...)")
    print(json.dumps({"machine": {"nproc": os.cpu_count(), "cpu": cpu_model(),
                                  "python": platform.python_version(),
                                  "load_avg": os.getloadavg()}, "events": events,
                      "results": results}, indent=1))
    ok = results["analyze"]["events_per_s"] >= 500_000 and results["report"]["best_s"] < 30
    print("budgets:", "met" if ok else "MISSED",
          "(analyze >= 500,000 events/s; report < 30 s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
