"""What every benchmark prints first: the machine it ran on."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> str:
    return f"{os.cpu_count()} cores, {cpu_model()}, Python {platform.python_version()}, {platform.system()}"


# Runs a command as a child and prints its wall time, CPU time (user + system) and peak
# RSS; a fresh wrapper per command, so RUSAGE_CHILDREN holds that command alone.
WRAPPER = """
import resource, subprocess, sys, time
t = time.perf_counter()
p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
wall = time.perf_counter() - t
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(wall, u.ru_utime + u.ru_stime, u.ru_maxrss, p.returncode)
"""


def timed_child(cmd: list[str], cwd: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in KiB) of one whole child process; on a shared
    machine the wall time follows the load, the CPU time much less."""
    out = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], capture_output=True, text=True,
                         check=True, cwd=cwd)
    wall, cpu, rss, rc = out.stdout.split()
    if int(rc) != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {rc}")
    return float(wall), float(cpu), int(rss)


RATES = (1000, 2000, 3000)


def run_arguments(doc: str, repeat: int) -> argparse.Namespace:
    """--events, --repeat, --keep: what every benchmark on a generated run takes."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=repeat)
    ap.add_argument("--keep", metavar="DIR", help="generate the run here and keep it")
    return ap.parse_args()


@contextmanager
def generated_run(events: int, keep: str | None) -> Iterator[tuple[Path, Path]]:
    """(base folder, run folder) of a fixture run of about ``events`` events, generated once
    (kept under ``keep`` if given, else in a temporary folder)."""
    from analysis_fixtures import make_run  # tests/ is on sys.path in the benchmarks

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(keep) if keep else Path(tmp)
        run = base / "bench-run"
        if not (run / "run.json").exists():
            t = time.perf_counter()
            make_run(run, rates=RATES, duration=events / sum(RATES), seed=1)
            print(f"generated {run} in {time.perf_counter() - t:.1f} s")
        yield base, run
