"""The fault plan of a run (SPEC section 6), as spans the explorer can shade.

run.json's ``faults.plan`` is the resolved plan (the nemesis's draws included), in the
format ``lclock.core.faults.FaultPlan`` writes. The per-machine ``fault``/``pause`` lines
in the logs stay the primary source; the plan only adds what a log cannot show (the whole
partition at once, a crash's instant). A plan that is not readable is no plan: another
program's run.json may hold anything.
"""

from __future__ import annotations

from typing import Any

from lclock.core.faults import FaultPlan

MAX_ITEMS = 10_000
EMPTY: dict[str, list[dict[str, Any]]] = {"partitions": [], "pauses": [], "crashes": []}


def fault_plan(meta: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Partitions, pauses and crashes planned for the run (seconds since t0)."""
    faults = meta.get("faults")
    raw = faults.get("plan") if isinstance(faults, dict) else None
    if not isinstance(raw, dict):
        return {k: [] for k in EMPTY}
    try:
        plan = FaultPlan.from_json(raw)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
        return {k: [] for k in EMPTY}
    return {
        "partitions": [{"start_s": p.start, "end_s": p.end, "groups": [list(g) for g in p.groups]}
                       for p in plan.partitions[:MAX_ITEMS]],
        "pauses": [{"machine": p.machine, "start_s": p.start, "end_s": p.end}
                   for p in plan.pauses[:MAX_ITEMS]],
        "crashes": [{"machine": c.machine, "at_s": c.time} for c in plan.crashes[:MAX_ITEMS]],
    }
