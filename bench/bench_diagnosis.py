"""Benchmark of the diagnosis of SPEC section 10: what fitting every catalogue bug to every
machine adds to ``lclock check`` on a run of about a million events.

Simulates the run (a correct model, or ``--mutant NAME``) into a temporary folder, or reuses
``--keep DIR``; loads it once, then times the diagnosis alone (all machines, all clocks,
every bug) and the whole ``check_run``, in CPU seconds of this process (on a shared machine
they move less than the wall time), best of ``--repeat``.

    python bench/bench_diagnosis.py [--events 1000000] [--mutant NAME] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def best_cpu(f: object, repeat: int) -> float:
    out = []
    for _ in range(repeat):
        t = time.process_time()
        f()  # type: ignore[operator]
        out.append(time.process_time() - t)
    return min(out)


def main() -> int:
    from lclock.analysis.check import Findings, check_run
    from lclock.analysis.load import load_run
    from lclock.analysis.memory import keep_freed_memory
    from lclock.analysis.rules import Context
    from lclock.settings import SettingsFile, resolve
    from lclock.sim.engine import NetworkSettings, run_sim

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--mutant", default="")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", metavar="DIR")
    args = ap.parse_args()
    keep_freed_memory()  # as lclock check does
    print("load average before:", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    rates = (1000, 2000, 3000)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.keep) if args.keep else Path(tmp)
        runs = sorted(base.glob("sim-*"))
        if not runs:
            s = resolve(SettingsFile(), {"rates": list(rates), "machines": 3, "seed": 1,
                                         "duration": args.events / sum(rates),
                                         "skew_ms": 20.0, "mutant": args.mutant})
            runs = [run_sim(s, NetworkSettings(), base)[0]]
        run = load_run(runs[0], strict=True)
        print(f"run: {run.events} events, mutant {args.mutant or 'none'}")

        def diagnosis() -> None:
            Context(run, Findings(20), 10).diagnosis  # noqa: B018 - computed on access

        d = best_cpu(diagnosis, args.repeat)
        c = best_cpu(lambda: check_run(runs[0]), args.repeat)
        print(f"diagnosis alone: {d:.2f} CPU s ({run.events / d:,.0f} events/s)")
        print(f"check_run (reading included): {c:.2f} CPU s; the diagnosis is {100 * d / c:.0f} %")
    print("load average after:", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
