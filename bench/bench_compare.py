#!/usr/bin/env python3
"""The same measurements on two source trees, interleaved: is the new code slower?

    python bench/bench_compare.py --baseline REV [--rounds 5]        # this tree against REV
    python bench/bench_compare.py --variants                          # this tree: clocks, faults

A shared, noisy machine cannot give absolute figures that mean much, but it can give ratios
measured in one run: each round runs every variant once, in turn, so a burst of load hits
both. Per variant it reports the median of the rounds:

- worker CPU per tick at 10,000 ticks/s (3 machines, 5 s; ``cpu_s`` of each stop line),
  the worst tick lateness and whether the rate was kept (every tick, max lateness <= 1 %);
- start-up: from starting ``launcher.py`` to the last machine's first tick;
- Ctrl-C: from SIGINT to every process of the run gone;
- the simulator: one simulated hour of 3 machines at 6 ticks/s, as a whole process.

``--baseline REV`` checks REV out into a temporary git worktree (removed afterwards).
``--variants`` compares, in this tree: the default run (pt and HLC kept), ``--clocks vector``
(no pt, no HLC), and faults on (10 ms exponential latency, 10 % loss); and the simulator
with every fault against none.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from _common import machine_info  # noqa: E402

RATE = 10_000
DURATION = 5.0
ALL_FAULTS = ["--latency", "10", "--latency-dist", "exponential", "--loss", "0.1", "--duplicate",
              "0.05", "--partition", "600-1200:1", "--pause", "2@1800+60", "--crash", "3@3000"]


def env_for(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.rstrip("Z") + "+00:00").timestamp()


def run_launcher(tree: Path, out: Path, *args: str, sigint_at: float | None = None) -> tuple[Path, float, float | None]:
    """Run ``launcher.py`` of ``tree``; (run folder, start time, seconds from SIGINT to gone).

    "Gone": the launcher has exited and every machine process with it (the pids from
    run.json), as bench_run.py measures it.
    """
    import psutil

    cmd = [sys.executable, str(tree / "launcher.py"), "--output", str(out), "--quiet", "--no-report", *args]
    t_start = time.time()
    proc = subprocess.Popen(cmd, cwd=out.parent, start_new_session=True, env=env_for(tree),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gone = None
    try:
        if sigint_at is not None:
            time.sleep(sigint_at)
            rd = sorted(p for p in out.iterdir() if p.is_dir())[-1]
            pids = [m["pid"] for m in json.loads((rd / "run.json").read_text())["machines"]]
            procs = [psutil.Process(pid) for pid in pids if pid]
            t = time.monotonic()
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=30)
            while any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in procs):
                time.sleep(0.001)
            gone = time.monotonic() - t
        else:
            proc.wait(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return sorted(p for p in out.iterdir() if p.is_dir())[-1], t_start, gone


def throughput(tree: Path, work: Path, *args: str) -> dict[str, float]:
    rd, _t, _g = run_launcher(tree, work / "tp", "--rates", f"{RATE},{RATE},{RATE}",
                              "--duration", str(DURATION), *args)
    meta = json.loads((rd / "run.json").read_text())
    ms = meta["machines"]
    ticks = sum(m["ticks"] for m in ms)
    cpu = sum(m["cpu_s"] for m in ms)
    late = max(m["lateness_ms"]["max"] for m in ms)
    kept = all(m["ticks"] == int(RATE * DURATION) for m in ms) and late <= 10 * DURATION
    return {"cpu_us_per_tick": cpu / ticks * 1e6, "max_late_ms": late, "kept": float(kept)}


def startup(tree: Path, work: Path) -> dict[str, float]:
    rd, t_start, _g = run_launcher(tree, work / "su", "--rates", "5,5,5", "--duration", "0.5")
    firsts = []
    for p in rd.glob("machine-*.jsonl"):
        for line in p.read_text().splitlines():
            e = json.loads(line)
            if "tick" in e:
                firsts.append(_epoch(e["ts"]))
                break
    return {"startup_ms": (max(firsts) - t_start) * 1e3}


def ctrl_c(tree: Path, work: Path) -> dict[str, float]:
    _rd, _t, gone = run_launcher(tree, work / "cc", "--rates", "5,50,500", "--duration", "30",
                                 sigint_at=1.5)
    return {"ctrl_c_ms": (gone or 0.0) * 1e3}


def sim_hour(tree: Path, work: Path, *args: str) -> dict[str, float]:
    out = work / "sim"
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lclock", "sim", "--duration", "3600", "--rates", "6,6,6",
                    "--seed", "1", "--quiet", "--output", str(out), *args],
                   check=True, env=env_for(tree), cwd=work, stdout=subprocess.DEVNULL)
    return {"sim_hour_s": time.perf_counter() - t}


@contextlib.contextmanager
def baseline_tree(rev: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="lclock-baseline-"))
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(path), rev], check=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=False)


def measure(variants: dict[str, tuple[Path, list[str], list[str]]], rounds: int,
            parts: list[str]) -> dict[str, dict[str, list[float]]]:
    results: dict[str, dict[str, list[float]]] = {v: {} for v in variants}
    for r in range(rounds):
        for name, (tree, run_args, sim_args) in variants.items():
            with tempfile.TemporaryDirectory() as d:
                work = Path(d)
                got: dict[str, float] = {}
                if "throughput" in parts:
                    got |= throughput(tree, work, *run_args)
                if "startup" in parts:
                    got |= startup(tree, work)
                if "ctrl_c" in parts:
                    got |= ctrl_c(tree, work)
                if "sim" in parts:
                    got |= sim_hour(tree, work, *sim_args)
            for k, v in got.items():
                results[name].setdefault(k, []).append(v)
            print(f"round {r + 1} {name}: " + ", ".join(f"{k} {v:.3g}" for k, v in got.items()), flush=True)
    return results


def report(results: dict[str, dict[str, list[float]]]) -> None:
    names = list(results)
    keys = list(results[names[0]])
    print("\nmedians (ratio to the first variant):")
    print("| figure | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for k in keys:
        meds = [statistics.median(results[n][k]) for n in names]
        cells = [f"{meds[0]:.3g}"] + [f"{m:.3g} ({m / meds[0]:.2f}x)" if meds[0] else f"{m:.3g}" for m in meds[1:]]
        print(f"| {k} | " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline", metavar="REV", help="compare this tree against REV")
    ap.add_argument("--variants", action="store_true", help="clocks and faults on and off, this tree")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--parts", default="throughput,startup,ctrl_c,sim")
    a = ap.parse_args()
    print(machine_info())
    with os.popen("uptime") as up:
        print("load at the start:", up.read().strip())
    parts = a.parts.split(",")
    if a.baseline:
        with baseline_tree(a.baseline) as old:
            # The new tree's default keeps pt and HLC, which the baseline did not have.
            results = measure({f"baseline {a.baseline}": (old, [], []), "this tree": (ROOT, [], []),
                               "this tree, --clocks vector": (ROOT, ["--clocks", "vector"],
                                                              ["--clocks", "vector"])},
                              a.rounds, parts)
    else:
        results = measure({"default (pt, HLC)": (ROOT, [], []),
                           "--clocks vector": (ROOT, ["--clocks", "vector"], ["--clocks", "vector"]),
                           "faults: 10 ms exp, 10 % loss": (ROOT, ["--latency", "10", "--latency-dist",
                                                                   "exponential", "--loss", "0.1"], []),
                           "sim: every fault": (ROOT, [], ALL_FAULTS)},
                          a.rounds, parts)
    with os.popen("uptime") as up:
        print("load at the end:", up.read().strip())
    report(results)


if __name__ == "__main__":
    main()
