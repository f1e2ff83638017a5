#!/usr/bin/env python3
"""Benchmark of a program as a machine (SPEC 9) in the simulator and in real runs.

    python bench/bench_impl.py [--repeat 3] [--duration 3600] [--real-rate 1000]
    python bench/bench_impl.py --part real --real-duration 10 [--lockstep-from DIR]

Real runs: ``lclock run`` of 3 machines at ``--real-rate`` ticks/s for ``--real-duration``
seconds, built in, then with every machine the C reference program, then the Python one
(each asked ahead of its answers, SPEC 9.8), interleaved in each round; how late the ticks
were (the stop lines' ``lateness_ms``: p50, p99 and max of the latest machine), how long
the programs took to answer (run.json's ``answer_ms``, from the request written to the
answer read), whether every tick was done, and the CPU of lclock's workers and of the
programs. ``--lockstep-from DIR`` adds the C program under another checkout of lclock
(one that asks in lock-step, say ``git archive`` of an older commit), in the same rounds.

Issue 19's goal: a simulated hour of 3 machines at 6 ticks/s with the Python reference
program within 3x the built-in model's time, measured side by side in one run. Each round
runs the built-in model, then the same run with every machine a reference program (Python,
C, node), as whole ``lclock sim`` processes (start-up and the programs' start included),
so the ratios compare like with like on a shared machine. Then where the time goes: the
programs' own CPU (run.json's ``impl.machines.*.cpu_s``), lclock's CPU beyond the model's,
and of that, what encoding the requests and judging the answers costs (measured here, in
process), the rest being the pipes and the bookkeeping.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine_info, timed_child  # noqa: E402 - bench/ is on sys.path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lclock.impl import protocol as p  # noqa: E402


def programs(into: Path) -> dict[str, str]:
    exe = into / "vm"
    subprocess.run(["cc", "-O2", "-o", str(exe), str(REPO / "examples/impl/c/vm.c")], check=True)
    return {"python": f"{sys.executable} examples/impl/python/vm.py",
            "c": str(exe), "node": "node examples/impl/node/vm.js"}


def one(label: str, impl: str | None, duration: int, out: Path) -> dict[str, float]:
    folder = out / label
    cmd = [sys.executable, "-m", "lclock", "sim", "--duration", str(duration), "--rates",
           "6,6,6", "--seed", "1", "--quiet", "--output", str(folder)]
    if impl:
        cmd += ["--impl", impl]
    wall, cpu, _rss = timed_child(cmd, REPO)
    run = json.loads(next(folder.glob("*/run.json")).read_text())
    prog_cpu = sum(m.get("cpu_s") or 0.0 for m in run.get("impl", {}).get("machines", {}).values())
    ticks = sum(m["ticks"] for m in run["machines"])
    return {"wall": wall, "cpu": cpu, "programs_cpu": prog_cpu, "ticks": ticks}


def protocol_cost(n: int = 200_000) -> float:
    """µs per tick that lclock spends writing a request and judging its answer."""
    clocks = p.Clocks()
    answer = (b'{"type": "done", "tick": 7, "lclock": 12, "vclock": [3, 12, 5], "hlc": '
              b'[1767225600123456, 2], "msg": {"lclock": 12, "vclock": [3, 12, 5], "hlc": '
              b'[1767225600123456, 2]}}')
    t = time.perf_counter()
    for _ in range(n):
        p.tick_request(7, "send", to=[1, 3], pt=1_767_225_600_123_456)
        p.parse_done(answer, 7, "send", 3, clocks)
    return (time.perf_counter() - t) / n * 1e6


def real(impl: str | None, rate: int, duration: int, out: Path,
         repo: Path = REPO) -> dict[str, float]:
    """One real run of 3 machines at ``rate`` (lclock as found in ``repo``): its ticks'
    lateness and its programs' answer times (worst machine), ticks done against those due,
    and CPU seconds of the workers and of the programs."""
    cmd = [sys.executable, "-m", "lclock", "run", "--duration", str(duration), "--rates",
           f"{rate},{rate},{rate}", "--seed", "1", "--quiet", "--no-report", "--output", str(out)]
    if impl:
        cmd += ["--impl", impl]
    subprocess.run(cmd, cwd=repo, check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONPATH": str(repo)})
    run = json.loads(next(out.glob("*/run.json")).read_text())
    machines = run["machines"]
    progs = run.get("impl", {}).get("machines", {}).values()
    late = {q: max(m["lateness_ms"][q] for m in machines) for q in ("p50", "p99", "max")}
    answer = {f"answer_{q}": max((m.get("answer_ms") or {}).get(q, math.nan) for m in progs)
              if progs else math.nan for q in ("p50", "p99", "max")}
    return {**late, **answer, "ticks": sum(m["ticks"] for m in machines),
            "due": 3 * rate * duration, "workers_cpu": sum(m["cpu_s"] for m in machines),
            "programs_cpu": sum(m.get("cpu_s") or 0.0 for m in progs),
            "completed": float(run["status"] == "completed")}


def real_part(progs: dict[str, str], rate: int, duration: int, repeat: int, tmp: Path,
              lockstep: Path | None) -> None:
    cases: list[tuple[str, str | None, Path]] = [
        ("built-in", None, REPO), ("C", progs["c"], REPO), ("Python", progs["python"], REPO)]
    if lockstep is not None:
        cases.append(("C, lock-step", progs["c"], lockstep.resolve()))
    rows: dict[str, list[dict[str, float]]] = {}
    for r in range(repeat):
        for label, impl, repo in cases:
            out = tmp / f"real-{label.replace(' ', '')}-{r}"
            rows.setdefault(label, []).append(real(impl, rate, duration, out, repo))
    print(f"\nrun --rates {rate},{rate},{rate} --duration {duration}, {repeat} rounds, medians "
          "(the latest machine's; lateness of the ticks, then the programs' answer times):")
    print(f"{'machines':<13} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'ans p50':>8} "
          f"{'ans p99':>8} {'ans max':>8} {'ticks':>7} {'due':>7} {'workers CPU':>11} "
          f"{'progs CPU':>9}")
    for label, xs in rows.items():
        med = {k: statistics.median(x[k] for x in xs) for k in xs[0]}
        print(f"{label:<13} {med['p50']:7.2f} {med['p99']:7.2f} {med['max']:7.1f} "
              f"{med['answer_p50']:8.3f} {med['answer_p99']:8.2f} {med['answer_max']:8.1f} "
              f"{med['ticks']:7.0f} {med['due']:7.0f} {med['workers_cpu']:11.2f} "
              f"{med['programs_cpu']:9.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--duration", type=int, default=3600)
    ap.add_argument("--part", choices=("sim", "real", "both"), default="both")
    ap.add_argument("--real-rate", type=int, default=1000)
    ap.add_argument("--real-duration", type=int, default=10)
    ap.add_argument("--lockstep-from", type=Path, default=None,
                    help="a checkout of an older lclock whose real runs ask in lock-step")
    args = ap.parse_args()
    print(f"machine: {machine_info()}")
    if args.part != "sim":
        with tempfile.TemporaryDirectory() as tmp:
            real_part(programs(Path(tmp)), args.real_rate, args.real_duration, args.repeat,
                      Path(tmp), args.lockstep_from)
    if args.part != "real":
        sim_part(args)


def sim_part(args: argparse.Namespace) -> None:
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        progs = programs(Path(tmp))
        for r in range(args.repeat):
            for label, impl in [("built-in", None), *progs.items()]:
                out = Path(tmp) / f"r{r}"
                results.setdefault(label, []).append(one(label, impl, args.duration, out))
    base = statistics.median(x["wall"] for x in results["built-in"])
    base_cpu = statistics.median(x["cpu"] for x in results["built-in"])
    print(f"\nsim --duration {args.duration} --rates 6,6,6, {args.repeat} rounds, medians:")
    print(f"{'machines':<10} {'wall s':>8} {'x model':>8} {'CPU s':>8} {'programs':>9} "
          f"{'lclock':>8} {'µs/tick':>8}")
    for label, rows in results.items():
        wall = statistics.median(x["wall"] for x in rows)
        cpu = statistics.median(x["cpu"] for x in rows)
        prog = statistics.median(x["programs_cpu"] for x in rows)
        ticks = rows[0]["ticks"]
        lclock = cpu - prog
        print(f"{label:<10} {wall:8.2f} {wall / base:8.2f} {cpu:8.2f} {prog:9.2f} "
              f"{lclock:8.2f} {(lclock - base_cpu) / ticks * 1e6:8.1f}")
    print(f"\nlclock's protocol work (a request written, an answer judged): "
          f"{protocol_cost():.1f} µs per tick, in process")
    print("µs/tick: lclock's own CPU per tick beyond the model's (protocol, pipes, bookkeeping)")


if __name__ == "__main__":
    main()
