"""Per-run metrics an experiment compares: a thin adapter over the analysis code.

The experiment runner needs, for every machine of a trial, the mean and largest clock jump,
the drift and the longest queue. Those are computed by ``lclock.analysis.analyze`` (the
same numbers ``lclock analyze`` prints); this module only picks them out of its summary.
Until that module exists a minimal stand-in computes them from the logs directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

TICK_EVENTS = ("send", "receive", "internal")


def run_metrics(run_dir: Path) -> dict[str, Any]:
    """``{"machines": [{"id", "rate", "mean_jump", "max_jump", "drift_mean", "drift_max",
    "max_queue", "ticks"}], "spread_mean", "spread_max"}`` for one run folder."""
    return _local_metrics(run_dir)


def _local_metrics(run_dir: Path) -> dict[str, Any]:
    """Stand-in until lclock.analysis.analyze exists.

    jump: how much the Lamport clock advanced on one tick (1 = no jump).
    drift of a machine: how far its Lamport clock is behind the highest clock of all
    machines at the moment of each of its ticks. spread: highest minus lowest clock.
    """
    events: list[tuple[str, int, int]] = []
    info: dict[int, dict[str, Any]] = {}
    for path in sorted(run_dir.glob("machine-*.jsonl")):
        mid = int(path.stem.split("-", 1)[1])
        rec: dict[str, Any] = {"id": mid, "rate": None, "jumps": [], "max_queue": 0, "ticks": 0}
        info[mid] = rec
        prev = 0
        for line in path.read_bytes().splitlines():
            if not line:
                continue
            e = orjson.loads(line)
            ev = e.get("event")
            if ev in TICK_EVENTS:
                lc = e["lclock"]
                rec["jumps"].append(lc - prev)
                prev = lc
                rec["ticks"] += 1
                if e["queue_len"] > rec["max_queue"]:
                    rec["max_queue"] = e["queue_len"]
                events.append((e["ts"], mid, lc))
            elif ev == "start":
                rec["rate"] = e.get("rate")
            elif ev == "stop" and isinstance(e.get("max_queue"), int):
                rec["max_queue"] = max(rec["max_queue"], e["max_queue"])
    # RFC 3339 UTC with fixed-width microseconds sorts as text.
    events.sort()
    ids = sorted(info)
    pos = {mid: k for k, mid in enumerate(ids)}
    clocks = [0] * len(ids)
    lag_sum = dict.fromkeys(ids, 0)
    lag_max = dict.fromkeys(ids, 0)
    spread_sum = 0
    spread_max = 0
    for _ts, mid, lc in events:
        clocks[pos[mid]] = lc
        top = max(clocks)
        lag = top - lc
        lag_sum[mid] += lag
        if lag > lag_max[mid]:
            lag_max[mid] = lag
        spread = top - min(clocks)
        spread_sum += spread
        if spread > spread_max:
            spread_max = spread
    machines = []
    for mid in ids:
        rec = info[mid]
        jumps = rec["jumps"]
        machines.append(
            {
                "id": mid,
                "rate": rec["rate"],
                "ticks": rec["ticks"],
                "mean_jump": sum(jumps) / len(jumps) if jumps else None,
                "max_jump": max(jumps) if jumps else None,
                "drift_mean": lag_sum[mid] / rec["ticks"] if rec["ticks"] else None,
                "drift_max": lag_max[mid],
                "max_queue": rec["max_queue"],
            }
        )
    return {
        "machines": machines,
        "spread_mean": spread_sum / len(events) if events else None,
        "spread_max": spread_max,
    }
