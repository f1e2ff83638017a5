"""What the faults did to a run (SPEC section 6), for summary.json, the tables and the report.

- ``drops``: per link ``"s->j"``: messages sent, dropped by reason (loss, partition,
  crashed), delivered twice (the sender's ``dup_to``).
- ``partitions``, ``pauses``, ``crashes``: the schedule, from run.json's plan when it has
  one, else from the ``fault``/``pause``/``resume`` lines (seconds since t0).
- ``after``: the jump each machine's Lamport clock takes on its first receive after a
  partition heals (every machine) or after its pause ends: the message that arrives first
  may carry a clock far ahead, what its peers did meanwhile.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lclock.analysis.load import KIND_RECEIVE, MachineLog, Run
from lclock.analysis.timestamps import parse_ts_column

REASONS = ("loss", "partition", "crashed")


def _secs(run: Run, lines: list[tuple[int, dict[str, Any]]]) -> np.ndarray:
    if not lines:
        return np.zeros(0)
    return parse_ts_column([o.get("ts") for _, o in lines]) - run.t0


def _r(x: float | None, nd: int = 6) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), nd)


def drops_per_link(run: Run) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}

    def entry(s: int, j: int) -> dict[str, int]:
        return out.setdefault(f"{s}->{j}", {"sent": 0, **dict.fromkeys(REASONS, 0),
                                            "dropped": 0, "duplicated": 0})

    for s in run.ids:
        log = run.machines[s]
        if len(log.to_ids):
            ids, cnt = np.unique(log.to_ids, return_counts=True)
            for j, c in zip(ids.tolist(), cnt.tolist(), strict=True):
                entry(s, j)["sent"] = c
        if log.to_dup is not None:
            ids, cnt = np.unique(log.to_ids[log.to_dup], return_counts=True)
            for j, c in zip(ids.tolist(), cnt.tolist(), strict=True):
                entry(s, j)["duplicated"] = c
        for _, o in log.lines_of("drop"):
            j, reason = o.get("to"), o.get("reason")
            if isinstance(j, int) and not isinstance(j, bool) and reason in REASONS:
                e = entry(s, j)
                e[reason] += 1
                e["dropped"] += 1
    return {k: out[k] for k in sorted(out, key=lambda k: tuple(int(x) for x in k.split("->")))}


def schedule(run: Run) -> dict[str, list[dict[str, Any]]]:
    """Partitions, pauses and crashes, from the plan, or from the logs' own lines."""
    plan = run.facts.faults
    if plan is not None:
        return {
            "partitions": [{"start": p.start, "end": p.end, "groups": [list(g) for g in p.groups]}
                           for p in plan.partitions],
            "pauses": [{"machine": p.machine, "start": p.start, "end": p.end}
                       for p in plan.pauses],
            "crashes": [{"machine": c.machine, "time": c.time} for c in plan.crashes],
        }
    parts: list[dict[str, Any]] = []
    pauses: list[dict[str, Any]] = []
    for mid in run.ids:
        log = run.machines[mid]
        faults = log.lines_of("fault")
        if not parts:
            t = _secs(run, faults)
            open_at = None
            for (_, o), at in zip(faults, t.tolist(), strict=True):
                if o.get("kind") == "partition":
                    open_at = at
                elif o.get("kind") == "heal" and open_at is not None:
                    parts.append({"start": _r(open_at), "end": _r(at), "groups": o.get("groups")})
                    open_at = None
        pause_t = _secs(run, log.lines_of("pause"))
        resume_t = _secs(run, log.lines_of("resume"))
        for a, b in zip(pause_t.tolist(), resume_t.tolist(), strict=False):
            pauses.append({"machine": mid, "start": _r(a), "end": _r(b)})
    return {"partitions": parts, "pauses": pauses, "crashes": []}


def _heal_times(run: Run, log: MachineLog, sched: dict[str, list[dict[str, Any]]]
                ) -> list[float]:
    """When the partitions healed for this machine: its own heal lines, else the plan."""
    lines = [(n, o) for n, o in log.lines_of("fault") if o.get("kind") == "heal"]
    if lines:
        return [float(x) for x in _secs(run, lines) if np.isfinite(x)]
    return [float(p["end"]) for p in sched["partitions"] if p.get("end") is not None]


def _resume_times(run: Run, log: MachineLog, sched: dict[str, list[dict[str, Any]]]
                  ) -> list[float]:
    lines = log.lines_of("resume")
    if lines:
        return [float(x) for x in _secs(run, lines) if np.isfinite(x)]
    return [float(p["end"]) for p in sched["pauses"] if p["machine"] == log.id and p.get("end")]


def jumps_after(run: Run, sched: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The Lamport jump of each machine's first receive after a heal or its resume."""
    out: list[dict[str, Any]] = []
    for mid in run.ids:
        log = run.machines[mid]
        rk = np.flatnonzero(log.kind == KIND_RECEIVE)
        if not rk.size:
            continue
        L = log.lclock
        prev = np.concatenate(([0], L[:-1]))
        jump_all = (L - prev)[rk]
        t = log.ts[rk] - run.t0
        mean = float(jump_all.mean())
        for what, times in (("heal", _heal_times(run, log, sched)),
                            ("resume", _resume_times(run, log, sched))):
            for at in times:
                p = int(np.searchsorted(t, at - 1e-9))
                if p >= len(rk):
                    continue
                k = int(rk[p])
                out.append({"machine": mid, "after": what, "at_s": _r(at, 3),
                            "receive_at_s": _r(float(t[p]), 3), "line": int(log.line[k]),
                            "from": int(log.frm[k]), "jump": int(L[k] - prev[k]),
                            "mean_jump": _r(mean, 3)})
    return sorted(out, key=lambda e: (e["at_s"] or 0, e["machine"]))


def fault_summary(run: Run) -> dict[str, Any] | None:
    """The ``faults`` entry of summary.json; None for a run without any fault."""
    sched = schedule(run)
    drops = drops_per_link(run)
    any_drop = any(e["dropped"] or e["duplicated"] for e in drops.values())
    plan = run.facts.faults
    if (plan is None or not plan.any) and not any_drop and not any(sched.values()):
        return None
    return {
        "planned": plan is not None,
        "reorder": bool(plan.reorder) if plan is not None else run.facts.reorder,
        "links": drops,
        "dropped": {r: sum(e[r] for e in drops.values()) for r in REASONS},
        "duplicated": sum(e["duplicated"] for e in drops.values()),
        **sched,
        "after": jumps_after(run, sched),
    }
