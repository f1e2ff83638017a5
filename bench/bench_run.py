#!/usr/bin/env python3
"""Benchmarks of the core run (issue 2). Prints its figures; BENCHMARKS.md records them.

    python bench/bench_run.py                 # everything (about 4 minutes)
    python bench/bench_run.py fidelity        # rates 1..6 for 60 s: tick counts, lateness
    python bench/bench_run.py throughput      # highest rate 3 machines keep within 1 %
    python bench/bench_run.py startup         # command -> all ticking; Ctrl-C -> all gone
    python bench/bench_run.py scale           # 64 machines at 10 ticks/s for 30 s

Every figure is measured from the run folder the real launcher writes, so it is what a
user would get. The machine is shared and noisy: compare ratios measured in one run.
"""

from __future__ import annotations

import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from _common import machine_info  # noqa: E402

from lclock.core.logline import parse_ts  # noqa: E402


def launch(out: Path, *args: str, timeout: float = 600) -> Path:
    cmd = [sys.executable, str(ROOT / "launcher.py"), "--output", str(out), "--quiet", "--no-report", *args]
    proc = subprocess.Popen(cmd, start_new_session=True)
    try:
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if proc.returncode != 0:
        raise SystemExit(f"launcher failed with {proc.returncode}: {cmd}")
    return sorted(p for p in out.iterdir() if p.is_dir())[-1]


def tick_times(run_dir: Path, mid: int) -> list[float]:
    out = []
    with open(run_dir / f"machine-{mid}.jsonl", "rb") as fh:
        for line in fh:
            if b'"tick"' in line:
                out.append(parse_ts(json.loads(line)["ts"]))
    return out


def fidelity(duration: float = 60.0) -> None:
    with tempfile.TemporaryDirectory() as d:
        rd = launch(Path(d), "--rates", "1,2,3,4,5,6", "--duration", str(duration))
        meta = json.loads((rd / "run.json").read_text())
        print(f"fidelity: 6 machines at rates 1..6 for {duration:g} s")
        worst = 0.0
        for m in meta["machines"]:
            want = m["rate"] * duration
            lat = m["lateness_ms"]
            worst = max(worst, lat["p99"])
            print(
                f"  rate {m['rate']}: {m['ticks']} ticks (expected {want:g}, off by {m['ticks'] - want:+g}); "
                f"lateness p50 {lat['p50']:.3f} ms, p99 {lat['p99']:.3f} ms, max {lat['max']:.3f} ms"
            )
        print(f"  worst p99 lateness {worst:.3f} ms (goal <= 2 ms)")


def log_ceiling(lines: int = 200_000) -> float:
    """Lines/s a bare loop of ticks logs the way a worker does (node line, render, one write)."""
    from lclock.core.logline import render
    from lclock.core.node import MachinePlan, Node
    from lclock.logfile import LogFile

    with tempfile.TemporaryDirectory() as d:
        log = LogFile.create(Path(d) / "x.jsonl")
        node = Node(MachinePlan(1, 3, "bench", 1, duration=1e9, dice_sides=10**6))
        t = time.perf_counter()
        for _ in range(lines):
            log.write(render(node.tick(time.time())[0]))
        log.close()
        return lines / (time.perf_counter() - t)


def keeps_schedule(rd: Path, duration: float) -> tuple[bool, str]:
    meta = json.loads((rd / "run.json").read_text())
    ok = True
    parts = []
    for m in meta["machines"]:
        rate = m["rate"]
        ts = tick_times(rd, m["id"])
        achieved = (len(ts) - 1) / (ts[-1] - ts[0]) if len(ts) > 1 else 0.0
        late = m["lateness_ms"]["max"] / 1e3
        good = m["ticks"] == math.ceil(rate * duration) and abs(achieved / rate - 1) <= 0.01 and late <= 0.01 * duration
        ok &= good
        cpu = m.get("cpu_s", 0.0) / duration
        parts.append(
            f"m{m['id']} achieved {achieved:.0f}/s, max late {late * 1e3:.1f} ms, "
            f"p99 {m['lateness_ms']['p99']:.2f} ms, CPU {cpu:.0%} of a core"
        )
    return ok, "; ".join(parts)


def throughput(duration: float = 10.0, rates: tuple[int, ...] = (2000, 5000, 10000)) -> None:
    ceiling = log_ceiling()
    print(f"throughput: 3 machines, {duration:g} s each; bare logging loop ceiling {ceiling:,.0f} lines/s (one process)")
    best = 0
    for rate in rates:
        with tempfile.TemporaryDirectory() as d:
            rd = launch(Path(d), "--rates", f"{rate},{rate},{rate}", "--duration", str(duration))
            ok, detail = keeps_schedule(rd, duration)
        print(f"  {rate:>6}/s per machine: {'kept' if ok else 'NOT kept'} ({detail})")
        if ok:
            best = rate
        else:
            break
    print(f"  highest rate kept within 1%: {best:,} ticks/s per machine, the largest rate the model "
          f"allows (goal >= 10,000); 3 x {best:,} = {3 * best:,} lines/s in all vs {ceiling:,.0f} for one bare loop")


def startup_and_stop(repeats: int = 20) -> None:
    starts, stops = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as d:
            t = time.time()
            rd = launch(Path(d), "--rates", "10,10,10", "--duration", "0.2")
            firsts = [tick_times(rd, i)[0] for i in (1, 2, 3)]
            starts.append(max(firsts) - t)
        with tempfile.TemporaryDirectory() as d:
            cmd = [sys.executable, str(ROOT / "launcher.py"), "--output", d, "--quiet", "--no-report", "--duration", "60", "--rates", "10,10,10"]
            proc = subprocess.Popen(cmd, start_new_session=True)
            try:
                # wait until every machine ticks
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    dirs = [p for p in Path(d).iterdir() if p.is_dir()]
                    if dirs and len(list(dirs[0].glob("machine-*.jsonl"))) == 3 and all(
                        b'"tick"' in p.read_bytes() for p in dirs[0].glob("machine-*.jsonl")
                    ):
                        break
                    time.sleep(0.01)
                meta = json.loads((dirs[0] / "run.json").read_text())
                import psutil

                procs = [psutil.Process(m["pid"]) for m in meta["machines"]]
                t = time.monotonic()
                os.killpg(proc.pid, signal.SIGINT)
                proc.wait(timeout=10)
                while any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in procs):
                    time.sleep(0.002)
                stops.append(time.monotonic() - t)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
    print(f"startup: command -> all 3 machines ticking: median {statistics.median(starts) * 1e3:.0f} ms "
          f"(min {min(starts) * 1e3:.0f}, max {max(starts) * 1e3:.0f}) over {repeats} (goal <= 500 ms)")
    print(f"stop: Ctrl-C -> every process gone: median {statistics.median(stops) * 1e3:.0f} ms "
          f"(min {min(stops) * 1e3:.0f}, max {max(stops) * 1e3:.0f}) over {repeats} (goal <= 500 ms)")


def scale(n: int = 64, rate: int = 10, duration: float = 30.0) -> None:
    from runverify import verify

    with tempfile.TemporaryDirectory() as d:
        t = time.monotonic()
        rd = launch(Path(d), "--machines", str(n), "--rates", ",".join([str(rate)] * n), "--duration", str(duration))
        wall = time.monotonic() - t
        errs = verify(rd)
        meta = json.loads((rd / "run.json").read_text())
        sent = sum(m["sent"] for m in meta["machines"])
        received = sum(m["received"] for m in meta["machines"])
        unprocessed = sum(m["unprocessed"] for m in meta["machines"])
    print(f"scale: {n} machines at {rate}/s for {duration:g} s: wall {wall:.1f} s, {sent} messages sent, "
          f"{received} received + {unprocessed} unprocessed = {received + unprocessed}; "
          f"verifier: {'all rules hold, every message accounted for' if not errs else errs[:5]}")


def main() -> None:
    which = sys.argv[1:] or ["fidelity", "throughput", "startup", "scale"]
    print(f"machine: {machine_info()}")
    for w in which:
        {"fidelity": fidelity, "throughput": throughput, "startup": startup_and_stop, "scale": scale}[w]()


if __name__ == "__main__":
    main()
