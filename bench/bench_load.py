"""Benchmark of the Python API's loading (issue 23, SPEC 13): ``lclock.load`` with its events
DataFrame against a bare orjson parse of the same lines, side by side in one process.

The run is the fixture of bench_analysis at 1.2M events (3 machines at 1000, 2000 and 3000
ticks/s, tick lines with ``pt``, ``hlc`` and ``vclock`` as real runs write them). Each
contender is timed ``--repeat`` times, best and median shown, in alternation so that a load
change on a shared machine touches both alike:

- orjson: read each log and ``orjson.loads`` every line into a list of dicts (no columns, no
  validation: the least any Python reader of JSON lines does);
- lclock.load + events: read the folder as ``lclock analyze`` reads it and build the typed
  events DataFrame (what a notebook's first cell gets).

Also shown: the messages and machines frames, and ``happened_before`` on one pair, first
(the causal index is built) and then (a lookup).

    python bench/bench_load.py [--events 1200000] [--repeat 3] [--keep DIR]

Budget: lclock.load + events within 2.5x the orjson parse; exits 1 if missed.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from _common import machine_info  # noqa: E402 - bench/ is on sys.path

BUDGET_RATIO = 2.5
RATES = (1000, 2000, 3000)


def orjson_parse(run: Path) -> int:
    import orjson

    n = 0
    for p in sorted(run.glob("machine-*.jsonl")):
        rows = [orjson.loads(x) for x in p.read_bytes().splitlines()]
        n += len(rows)
    return n


def api_load(run: Path) -> int:
    import lclock

    return len(lclock.load(run).events)


def best_of(fn: Callable[[Path], Any], run: Path) -> float:
    gc.collect()
    t = time.perf_counter()
    fn(run)
    return time.perf_counter() - t


def main() -> int:
    from analysis_fixtures import Faults, make_run

    import lclock

    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--events", type=int, default=1_200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", metavar="DIR", help="generate the run here and keep it")
    args = ap.parse_args()
    print(f"machine: {machine_info()}; load average {os.getloadavg()[0]:.2f}")

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.keep) if args.keep else Path(tmp)
        run = base / "bench-load-run"
        if not (run / "run.json").exists():
            make_run(run, rates=RATES, duration=args.events / sum(RATES), seed=1,
                     faults=Faults(clocks=True))
        size = sum(p.stat().st_size for p in run.glob("machine-*.jsonl"))
        times: dict[str, list[float]] = {"orjson": [], "load": []}
        for _ in range(args.repeat):
            times["orjson"].append(best_of(orjson_parse, run))
            times["load"].append(best_of(api_load, run))
        r = lclock.load(run)
        events = len(r.ticks)  # run.events also has the start, connected and stop lines
        print(f"run: {events:,} events ({len(r.events):,} rows in run.events), "
              f"{size / 1e6:.0f} MB of logs, rates {RATES}")
        for name, label in (("orjson", "bare orjson parse of the lines"),
                            ("load", "lclock.load(path).events")):
            ts = sorted(times[name])
            print(f"{label:34s} best {ts[0]:6.2f} s  median {ts[len(ts) // 2]:6.2f} s  "
                  f"{events / ts[0]:>10,.0f} events/s")
        extra = _extras(r)
        for label, secs in extra.items():
            print(f"{label:34s} {secs:9.4f} s")
        ratio = min(times["load"]) / min(times["orjson"])
    ok = ratio <= BUDGET_RATIO
    print(f"ratio load/orjson: {ratio:.2f} (budget {BUDGET_RATIO}): {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


def _extras(r: Any) -> dict[str, float]:
    out = {}
    for label, fn in (("messages frame", lambda: r.messages),
                      ("machines frame", lambda: r.machines),
                      ("happened_before, first (index)", lambda: r.happened_before((1, 500),
                                                                                    (3, 9000))),
                      ("happened_before, then one pair", lambda: r.happened_before((2, 700),
                                                                                    (1, 4000)))):
        t = time.perf_counter()
        fn()
        out[label] = time.perf_counter() - t
    return out


if __name__ == "__main__":
    sys.exit(main())
