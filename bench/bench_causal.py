"""Benchmark of the causal questions and the import (issue 13): ``lclock trace``, ``lclock hb``
(two events, and ``--lamport-lies``), ``lclock export --format total-order`` on a large run,
and ``lclock import`` of the same run written as a logfmt text log; each timed as a whole
process (interpreter start-up, loading the run and matching every message included).

Budgets, in CPU time (the wall time of a shared machine follows its load): every causal
command on a 1M-event run in under 15 s (loading it is most of it);
``lclock import`` reads >= 10,000 lines/s (the regular expression is most of it: a preset
finds each field with a lookahead over the line).

    python bench/bench_causal.py [--events 1000000] [--repeat 1] [--keep DIR]

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


def timed(cmd: list[str]) -> tuple[float, float, int]:
    return timed_child(cmd, REPO)


def logfmt(run: Path, out: Path) -> int:
    """The run's tick events as one logfmt text log (what a student's logger might write)."""
    import orjson

    n = 0
    with open(out, "w") as fh:
        for p in sorted(run.glob("machine-*.jsonl")):
            for raw in p.open("rb"):
                d = orjson.loads(raw)
                if d["event"] not in ("send", "receive", "internal"):
                    continue
                s = f"ts={d['ts']} machine={d['machine']} event={d['event']} lclock={d['lclock']}"
                if d["event"] == "send":
                    s += f" to={','.join(map(str, d['to']))}"
                elif d["event"] == "receive":
                    s += f" from={d['from']} msg_lclock={d['msg_lclock']}"
                fh.write(s + "\n")
                n += 1
    return n


def main() -> int:
    args = run_arguments(__doc__, repeat=1)
    rates = RATES
    with generated_run(args.events, args.keep) as (base, run):
        text = base / "bench-run.log"
        lines = logfmt(run, text)
        print(f"run: {lines} events, rates {rates}; text log {text.stat().st_size / 1e6:.0f} MB")
        mid = lines // len(rates) // 2
        lc = [sys.executable, "-m", "lclock"]
        cmds = {
            "trace": [*lc, "trace", str(run), f"2:t{mid}"],
            "hb": [*lc, "hb", str(run), f"1:t{mid // 2}", f"3:t{mid * 2}"],
            "lamport_lies": [*lc, "hb", str(run), "--lamport-lies"],
            "total_order": [*lc, "export", "-f", "total-order", str(run), "-o", os.devnull],
            "import": [*lc, "import", "--preset", "logfmt", str(text), "--force", "-o",
                       str(base / "imported")],
        }
        results = {}
        for name, cmd in cmds.items():
            runs = [timed(cmd) for _ in range(args.repeat)]
            wall, cpu, rss = min(r[0] for r in runs), min(r[1] for r in runs), max(r[2] for r in runs)
            results[name] = {"best_wall_s": wall, "best_cpu_s": cpu, "peak_rss_mib": rss / 1024,
                             "events_per_cpu_s": lines / cpu}
            print(f"{name:13s} wall {wall:6.2f} s  cpu {cpu:6.2f} s  {lines / cpu:>10,.0f} "
                  f"events per cpu-s  peak RSS {rss / 1024:6.0f} MiB")
    print(json.dumps({"machine": {"nproc": os.cpu_count(), "cpu": cpu_model(),
                                  "python": platform.python_version(),
                                  "load_avg": os.getloadavg()}, "events": lines,
                      "results": results}, indent=1))
    scale = lines / 1_000_000
    ok = (all(results[k]["best_cpu_s"] < 15 * max(scale, 0.1) for k in cmds if k != "import")
          and results["import"]["events_per_cpu_s"] >= 10_000)
    print("budgets:", "met" if ok else "MISSED", "(CPU time: trace, hb, --lamport-lies, total "
          "order < 15 s per 1M events; import >= 10,000 lines per second)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
