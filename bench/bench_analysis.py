"""Benchmark of the analysis side (issues 3, 9, 10, 11): ``lclock check``, ``lclock analyze``
(with the clock comparison of SPEC 7.5) and ``lclock report`` on a 1M-event run whose tick
lines carry ``pt`` and ``hlc`` as real runs now write them, each timed as a whole process
(interpreter start-up and imports included).

Budgets: check and analyze read >= 500,000 events/s; report finishes in under 30 s. Peak
memory is the child's maximum resident set size (getrusage RUSAGE_CHILDREN, measured in a
fresh wrapper process per command so the figures do not mix). CPU seconds (user + system)
are printed too, with the events per CPU second: on a shared machine they move less than
the wall time, which waits for the CPU others hold.

    python bench/bench_analysis.py [--events 1000000] [--repeat 3] [--keep DIR]

Exits 1 if a budget is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from _common import cpu_model  # noqa: E402 - bench/ is on sys.path when run as a script

WRAPPER = """
import resource, subprocess, sys, time
t = time.perf_counter()
p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
wall = time.perf_counter() - t
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(wall, r.ru_maxrss, r.ru_utime + r.ru_stime, p.returncode)
"""
BUDGET_EVENTS_S = 500_000
BUDGET_REPORT_S = 30.0


def timed(cmd: list[str]) -> tuple[float, int, float]:
    """(wall seconds, peak RSS in KiB, CPU seconds) of one whole child process."""
    out = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], capture_output=True, text=True,
                         check=True, cwd=REPO)
    wall, rss, cpu, rc = out.stdout.split()
    if int(rc) != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {rc}")
    return float(wall), int(rss), float(cpu)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", metavar="DIR", help="generate the run here and keep it")
    args = ap.parse_args()
    from analysis_fixtures import Faults, make_run

    rates = (1000, 2000, 3000)
    print("load average before:", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    duration = args.events / sum(rates)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.keep) if args.keep else Path(tmp)
        run = base / "bench-run"
        if not (run / "run.json").exists():
            t = time.perf_counter()
            make_run(run, rates=rates, duration=duration, seed=1, faults=Faults(clocks=True))
            print(f"generated {run} in {time.perf_counter() - t:.1f} s")
        size = sum(p.stat().st_size for p in run.glob("machine-*.jsonl"))
        lines = sum(p.read_bytes().count(b"\n") for p in run.glob("machine-*.jsonl"))
        events = lines - 2 * len(rates)
        print(f"run: {events} events, {size / 1e6:.0f} MB of logs, rates {rates}")
        results = {}
        for name, cmd in (
            ("check", [sys.executable, "-m", "lclock", "check", str(run)]),
            ("analyze", [sys.executable, "-m", "lclock", "analyze", str(run), "--no-write"]),
            ("report", [sys.executable, "-m", "lclock", "report", str(run), "-o",
                        str(base / "report")]),
        ):
            walls, rsss, cpus = [], [], []
            for _ in range(args.repeat):
                w, r, c = timed(cmd)
                walls.append(w)
                rsss.append(r)
                cpus.append(c)
            results[name] = {"best_s": min(walls), "median_s": sorted(walls)[len(walls) // 2],
                             "cpu_s": min(cpus), "peak_rss_mib": max(rsss) / 1024,
                             "events_per_s": events / min(walls),
                             "events_per_cpu_s": events / min(cpus)}
            print(f"{name:8s} best {min(walls):6.2f} s  median {results[name]['median_s']:6.2f} s"
                  f"  cpu {min(cpus):5.2f} s  {events / min(walls):>10,.0f} events/s "
                  f"({events / min(cpus):,.0f} per CPU s)  peak RSS "
                  f"{max(rsss) / 1024:6.0f} MiB   ({' '.join(cmd[1:4])} ...)")
    print(json.dumps({"machine": {"nproc": os.cpu_count(), "cpu": cpu_model(),
                                  "python": platform.python_version(),
                                  "load_avg_after": os.getloadavg()}, "events": events,
                      "results": results}, indent=1))
    ok = (results["check"]["events_per_s"] >= BUDGET_EVENTS_S
          and results["analyze"]["events_per_s"] >= BUDGET_EVENTS_S
          and results["report"]["best_s"] < BUDGET_REPORT_S)
    print("budgets:", "met" if ok else "MISSED",
          "(check and analyze >= 500,000 events/s; report < 30 s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
