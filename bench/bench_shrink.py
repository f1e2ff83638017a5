#!/usr/bin/env python3
"""How long ``lclock shrink`` takes on a run of a buggy program (SPEC 10.x).

    python bench/bench_shrink.py [--seeds 1,2,3] [--duration 60] [--machines 3]

Each case is a simulated run of every machine running the Python reference program with
the classic wrong receive (``receive: L = L + 1``), plain and under faults; then the whole
``lclock shrink`` process is timed (its programs' start and every attempt included). Printed
per case: the run's size, the smallest run's size, the attempts, wall and CPU seconds (the
CPU time includes the programs', which run in parallel), and wall seconds per attempt.
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine_info  # noqa: E402 - bench/ is on sys.path

REPO = Path(__file__).resolve().parent.parent
RIGHT = 'lclock = max(lclock, msg["lclock"]) + 1'
CASES = {"plain": [], "faults": ["--loss", "0.1", "--duplicate", "0.05", "--latency", "50",
                                 "--pause", "2@10%+5%", "--clock-skew", "100"]}


def lclock(*args: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "lclock", *args], cwd=cwd, capture_output=True,
                          text=True, check=True, stdin=subprocess.DEVNULL)
    return done.stdout


def cpu_children() -> float:
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def one(work: Path, program: str, seed: int, args: argparse.Namespace, faults: list[str]) -> str:
    out = lclock("sim", "--impl", program, "--duration", str(args.duration), "--machines",
                 str(args.machines), "--seed", str(seed), *faults, "--output", "runs", "--quiet",
                 cwd=work)
    run = out.strip().rpartition("run folder: ")[2]
    cpu0, t0 = cpu_children(), time.perf_counter()
    text = lclock("shrink", run, "--output", "small", cwd=work)
    wall, cpu = time.perf_counter() - t0, cpu_children() - cpu0
    first = re.search(r"shrinking \S+: (.*?) \(seed", text)
    last = re.search(r"smallest run: (.*?); .*\((\d+) steps, (\d+) attempts, (\w+)\)", text)
    if first is None or last is None:
        raise SystemExit(f"unexpected output of shrink:\n{text}")
    attempts = int(last.group(3))
    return (f"| {seed} | {first.group(1)} | {last.group(1)} | {last.group(2)} | {attempts} "
            f"| {last.group(4)} | {wall:.1f} | {cpu:.1f} | {wall / attempts:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--machines", type=int, default=3)
    args = ap.parse_args()
    print(machine_info())
    with tempfile.TemporaryDirectory(prefix="bench-shrink-") as tmp:
        work = Path(tmp)
        reference = (REPO / "examples" / "impl" / "python" / "vm.py").read_text()
        (work / "bad.py").write_text(reference.replace(RIGHT, "lclock = lclock + 1"))
        program = f"{sys.executable} bad.py"
        for name, faults in CASES.items():
            print(f"\n{name}: {args.machines} machines, {args.duration:g} s {' '.join(faults)}")
            print("| seed | run | smallest | steps | attempts | ended | wall s | CPU s | wall s/attempt |")
            print("|---|---|---|---|---|---|---|---|---|")
            for seed in (int(s) for s in args.seeds.split(",")):
                print(one(work, program, seed, args, faults), flush=True)


if __name__ == "__main__":
    main()
