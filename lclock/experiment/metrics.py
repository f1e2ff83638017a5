"""Per-run metrics an experiment compares: a thin adapter over ``lclock.analysis.analyze``.

The experiment runner needs, for every machine of a trial, the clock jumps, the drift and
the longest queue. They are the numbers ``lclock analyze`` prints (one definition for the
whole tool); this module only picks them out of ``analyze_run``'s summary:

- ``mean_jump`` / ``max_jump``: the Lamport clock's step L - L_prev on a receive
  (1 = no jump; ``None`` if the machine received nothing),
- ``drift_mean`` / ``drift_max``: how far the machine's Lamport clock is behind the
  fastest machine's at the same system time (0 for the fastest machine itself),
- ``max_queue``: the longest queue after an event; ``gap_fraction``: the share of clock
  values the machine skipped; ``queue_growth``: the queue's slope in messages/s,
- per run, ``spread_mean`` / ``spread_max``: highest minus lowest clock at the same time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def run_metrics(run_dir: Path) -> dict[str, Any]:
    """``{"machines": [{"id", "rate", "ticks", "mean_jump", "max_jump", "drift_mean",
    "drift_max", "max_queue", "gap_fraction", "queue_growth"}], "spread_mean", "spread_max"}``."""
    from lclock.analysis.analyze import analyze_run

    summary = analyze_run(run_dir)
    drift = summary.get("drift") or {}
    vs = drift.get("vs_fastest") or {}
    fastest = drift.get("fastest")
    machines = []
    for m in summary["machines"]:
        lag = vs.get(str(m["id"]))
        if lag is None and m["id"] == fastest:
            lag = {"mean": 0.0, "max": 0}
        lag = lag or {}
        jumps, queue, gaps = m.get("jumps") or {}, m.get("queue") or {}, m.get("gaps") or {}
        machines.append(
            {
                "id": m["id"],
                "rate": m["rate"],
                "ticks": m["ticks"],
                "mean_jump": jumps.get("mean"),
                "max_jump": jumps.get("max"),
                "drift_mean": lag.get("mean"),
                "drift_max": lag.get("max"),
                "max_queue": queue.get("max"),
                "gap_fraction": gaps.get("skipped_fraction"),
                "queue_growth": queue.get("growth_per_s"),
            }
        )
    return {
        "machines": machines,
        "spread_mean": drift.get("mean"),
        "spread_max": drift.get("max"),
    }
