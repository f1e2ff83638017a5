"""Benchmark of the causal questions and the import (issue 13): ``lclock trace``, ``lclock hb``
(two events, and ``--lamport-lies``), ``lclock export --format total-order`` on a large run,
and ``lclock import`` of the same run written as a logfmt text log; each timed as a whole
process (interpreter start-up, loading the run and matching every message included).

Budgets: every causal command on a 1M-event run in under 15 s (loading it is most of it);
``lclock import`` reads >= 10,000 lines/s (the regular expression is most of it: a preset
finds each field with a lookahead over the line).

    python bench/bench_causal.py [--events 1000000] [--repeat 1] [--keep DIR]

Exits 1 if a budget is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from _common import cpu_model  # noqa: E402 - bench/ is on sys.path when run as a script
from bench_analysis import timed  # noqa: E402


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
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--keep", metavar="DIR", help="generate the run here and keep it")
    args = ap.parse_args()
    from analysis_fixtures import make_run

    rates = (1000, 2000, 3000)
    duration = args.events / sum(rates)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.keep) if args.keep else Path(tmp)
        run = base / "bench-run"
        if not (run / "run.json").exists():
            t = time.perf_counter()
            make_run(run, rates=rates, duration=duration, seed=1)
            print(f"generated {run} in {time.perf_counter() - t:.1f} s")
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
            walls, rsss = [], []
            for _ in range(args.repeat):
                w, r = timed(cmd)
                walls.append(w)
                rsss.append(r)
            results[name] = {"best_s": min(walls), "peak_rss_mib": max(rsss) / 1024,
                             "events_per_s": lines / min(walls)}
            print(f"{name:13s} best {min(walls):6.2f} s  {lines / min(walls):>10,.0f} events/s  "
                  f"peak RSS {max(rsss) / 1024:6.0f} MiB")
    print(json.dumps({"machine": {"nproc": os.cpu_count(), "cpu": cpu_model(),
                                  "python": platform.python_version(),
                                  "load_avg": os.getloadavg()}, "events": lines,
                      "results": results}, indent=1))
    scale = lines / 1_000_000
    ok = (all(results[k]["best_s"] < 15 * max(scale, 0.1) for k in cmds if k != "import")
          and results["import"]["events_per_s"] >= 10_000)
    print("budgets:", "met" if ok else "MISSED",
          "(trace, hb, --lamport-lies, total order < 15 s per 1M events; import >= 10,000 lines/s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
