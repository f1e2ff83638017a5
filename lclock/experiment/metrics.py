"""Per-run metrics an experiment compares: a thin adapter over ``lclock.analysis.analyze``.

The experiment runner and ``lclock compare`` need, for every machine of a run, the clock
jumps, the drift and the queue. They are the numbers ``lclock analyze`` prints (one
definition for the whole tool); this module only picks them out of analyze's summary:

- ``mean_jump`` / ``max_jump``: the Lamport clock's step L - L_prev on a receive
  (1 = no jump; ``None`` if the machine received nothing),
- ``drift_mean`` / ``drift_max``: how far the machine's Lamport clock is behind the
  fastest machine's at the same system time (0 for the fastest machine itself),
- ``max_queue``: the longest queue after an event; ``gap_fraction``: the share of clock
  values the machine skipped; ``queue_growth``: the queue's slope in messages/s,
- ``received`` / ``unprocessed``: messages handled, and left waiting at the end,
- ``saturated``: see :func:`saturated`,
- per run, ``spread_mean`` / ``spread_max``: highest minus lowest clock at the same time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: A machine is saturated when at least this many messages wait unhandled at the end ...
SATURATION_MIN_LEFT = 5
#: ... and they are at least this share of every message it received (handled or not) ...
SATURATION_SHARE = 0.10
#: The rule in words, for summaries and help texts.
SATURATION_RULE = (
    f"a machine is saturated when at the end of the run at least {SATURATION_MIN_LEFT} "
    f"messages, and at least {SATURATION_SHARE:.0%} of all it received, were still waiting "
    "in its queue, and its queue grew over the run (positive fitted slope)"
)


def saturated(received: int, unprocessed: int, growth_per_s: float | None) -> bool:
    """Did the machine's queue grow without bound (messages arrived faster than it ticks)?

    Why this rule: a stable queue (arrivals slower than the tick rate) holds a few
    messages at the end whatever the run's length, so their share of what it received
    shrinks as the run gets longer; a saturated queue grows with the run, and its share
    tends to 1 - rate/arrivals (10% = arrivals 11% faster than the machine ticks). The
    floor of 5 messages keeps a short run's few leftovers from counting, and the slope
    keeps a burst at the very end from counting. Near arrivals = rate no rule can decide
    from one run; the queue figure of the trial's report shows the growth.
    """
    incoming = received + unprocessed
    if unprocessed < SATURATION_MIN_LEFT or incoming <= 0:
        return False
    if unprocessed < SATURATION_SHARE * incoming:
        return False
    return growth_per_s is None or growth_per_s > 0


def metrics_from_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """``{"machines": [{"id", "rate", "ticks", "mean_jump", "max_jump", "drift_mean",
    "drift_max", "max_queue", "gap_fraction", "queue_growth", "received", "unprocessed",
    "saturated"}], "spread_mean", "spread_max", "saturated": [ids]}`` from the summary that
    ``lclock analyze`` computes (``analyze_run`` / ``write_report``)."""
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
        received = int((m.get("events") or {}).get("receive") or 0)
        left = int(queue.get("final") or 0)
        growth = queue.get("growth_per_s")
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
                "queue_growth": growth,
                "received": received,
                "unprocessed": left,
                "saturated": saturated(received, left, growth),
            }
        )
    return {
        "machines": machines,
        "spread_mean": drift.get("mean"),
        "spread_max": drift.get("max"),
        "saturated": [m["id"] for m in machines if m["saturated"]],
    }


def run_metrics(run_dir: Path) -> dict[str, Any]:
    """The metrics of a run folder (analysed now; nothing is written)."""
    from lclock.analysis.analyze import analyze_run

    return metrics_from_summary(analyze_run(run_dir))
