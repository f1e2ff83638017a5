"""A TCP run's status from its machines' own entries in run.json.

Each ``lclock vm`` records only itself; the run's status follows from all of them, the same
way whether the vms share one folder (``lclock vm``) or their folders are combined later
(``lclock merge``).
"""

from __future__ import annotations

from typing import Any

from lclock.lifecycle import SIGNAL_EXIT_CODES as INTERRUPTED
from lclock.runfolder import balance_of, lost_reason


def machine_status(m: dict[str, Any]) -> str:
    """A machine's own status: an ``lclock vm`` entry states it; the entries of ``lclock
    run`` and ``lclock sim`` have only ``reason`` and ``exit_code``, and it follows from
    them. A planned crash (reason ``crashed``) is ``crashed``, part of a run that completes."""
    st = m.get("status")
    if isinstance(st, str):
        return st
    reason, code = m.get("reason"), m.get("exit_code")
    if reason == "crashed":
        return "crashed"
    if reason is None and code is None:
        return "running"  # never reported
    if reason in INTERRUPTED or code in INTERRUPTED.values():
        return "interrupted"
    if reason == "duration" and code in (0, None):
        return "completed"
    return "failed"


def summarize(machines: list[dict[str, Any]], n: int) -> dict[str, Any]:
    """The run's status from its machines' own.

    A machine that stopped because it lost a peer is a consequence, not a cause: the cause
    is the machine that was interrupted (Ctrl-C, SIGTERM) or that never reported (killed).
    """
    def ids(ms: list[dict[str, Any]]) -> str:
        return ", ".join(str(m["id"]) for m in ms)

    by: dict[str, list[dict[str, Any]]] = {}
    for m in machines:
        st = machine_status(m)
        if st == "failed" and m.get("reason") == "peer_lost":
            st = "lost"
        by.setdefault(st, []).append(m)
    ended = [m["ended_at"] for m in machines if m.get("ended_at")]
    out: dict[str, Any] = {"ended_at": max(ended) if ended and "running" not in by else None}
    if "failed" in by:
        m = by["failed"][0]
        out.update(status="failed", exit_code=m.get("exit_code"), reason=f"machine {m['id']}: {m.get('reason')}")
    elif "interrupted" in by:
        m = by["interrupted"][0]
        out.update(status="interrupted", exit_code=m.get("exit_code"),
                   reason=f"machine {m['id']}: {m.get('reason')}")
    elif "lost" in by:
        why = f"machine {ids(by['lost'])} lost a peer"
        if "running" in by:
            why = f"machine {ids(by['running'])} ended without a report (killed?); " + why
        out.update(status="failed", exit_code=1, reason=why)
    elif "running" in by:
        out.update(status="running", exit_code=None, reason=None)
    else:
        out.update(status="completed", exit_code=0, reason="duration")
    out["messages"] = balance_of(machines, [m["id"] for m in by.get("crashed", [])])
    if out["status"] == "completed" and len(machines) >= n and out["messages"].get("lost"):
        # as lclock run: a run that lost messages is never completed
        out.update(status="failed", exit_code=1, reason=lost_reason(out["messages"]))
    if len(machines) < n:
        out["partial"] = f"this folder holds machines {ids(machines)} of {n}; combine with lclock merge"
    return out
