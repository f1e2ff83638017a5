"""Rules on the lines that are not tick events: what a start and a stop line must say,
including the stop line's per-link counters (SPEC 6.8).

The fault lines of SPEC section 6 (``drop``, ``fault``, ``pause``, ``resume``) are judged
against the plan in ``faults``; ``messages`` and ``timing`` take drops, duplicates and
skipped ticks into account.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lclock.analysis.load import KIND_RECEIVE, MachineLog
from lclock.analysis.rules import Context, line_rule
from lclock.analysis.timestamps import short

STOP_FIELDS = ("reason", "ticks", "lclock", "sent", "received", "unprocessed")


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, int) and not isinstance(v, bool) else None


@line_rule("stop")
def stop_counts_the_events(ctx: Context, log: MachineLog, num: int, stop: dict[str, Any]) -> None:
    """The first stop line's counters agree with the events logged before it."""
    if num != log.stop_line:
        return  # a second stop line is a finding of its own (folder)
    for key in STOP_FIELDS:
        if key not in stop:
            ctx.finding(log, num, f"stop: missing {key}", "stop-field")

    def compare(key: str, actual: int, what: str) -> None:
        v = _int(stop.get(key))
        if v is not None and v != actual:
            ctx.finding(log, num, f"stop: {key} = {v}, but the log shows {actual} {what}",
                        "stop-field")
        elif key in stop and v is None:
            ctx.finding(log, num, f"stop: {key} is {short(stop[key])}, not an integer", "stop-field")

    _unprocessed_adds_up(ctx, log, num, stop)
    if log.unusable.size:
        return  # the counts include lines that could not be read (reported there)
    _link_counters(ctx, log, num, stop)
    compare("ticks", int(log.tick[-1]) if log.events else 0, "ticks")
    if log.events:
        compare("lclock", int(log.lclock[-1]), "as the last clock value")
    compare("sent", int(len(log.to_ids)), "messages sent (counting every recipient)")
    compare("received", int(np.count_nonzero(log.kind == KIND_RECEIVE)), "receive events")


# Per-link counters of a stop line (SPEC 6.8) and what the log shows for each.
LINK_COUNTERS = {"sent_to": "messages sent to", "dropped_to": "drop lines to",
                 "dup_to": "messages delivered twice (dup_to) to",
                 "taken_from": "messages taken in (handled or left unprocessed) from"}


def link_counts(ctx: Context, log: MachineLog, unprocessed_from: Any = None
                ) -> dict[str, Any]:
    """What a machine's per-link counters should say, from its judged events and lines:
    sent_to, dropped_to, dup_to (ids as strings, zero counts left out), received_dups,
    and taken_from when ``unprocessed_from`` is known."""
    def per(ids: np.ndarray) -> dict[str, int]:
        vals, cnt = np.unique(ids, return_counts=True)
        return {str(int(v)): int(c) for v, c in zip(vals, cnt, strict=True)}

    until = ctx.until(log)
    dropped = [o.get("to") for num, o in log.lines_of("drop") if not until or num < until]
    out: dict[str, Any] = {
        "sent_to": per(log.to_ids),
        "dropped_to": per(np.array([x for x in map(_int, dropped)
                                    if x is not None and -2**63 <= x < 2**63], np.int64)),
        "dup_to": per(log.to_ids[log.to_dup]) if log.to_dup is not None else {},
        "received_dups": int(log.dup.sum()) if log.dup is not None else 0,
    }
    if isinstance(unprocessed_from, dict):
        recv = log.kind == KIND_RECEIVE
        taken = per(log.frm[recv])
        for k, v in unprocessed_from.items():
            if _int(v):
                taken[str(k)] = taken.get(str(k), 0) + int(v)
        out["taken_from"] = taken
    return out


def _nonzero(v: Any) -> Any:
    return {str(k): x for k, x in v.items() if x != 0} if isinstance(v, dict) else v


def _link_counters(ctx: Context, log: MachineLog, num: int, stop: dict[str, Any]) -> None:
    """The stop line's per-link counters agree with the log (where it has them)."""
    if not any(k in stop for k in (*LINK_COUNTERS, "received_dups")):
        return
    want = link_counts(ctx, log, stop.get("unprocessed_from"))
    for key, what in LINK_COUNTERS.items():
        if key in stop and key in want and _nonzero(stop[key]) != want[key]:
            ctx.finding(log, num, f"stop: {key} = {short(stop[key])}, but the log shows "
                                  f"{short(want[key])} ({what} each machine)", "stop-field")
    got = stop.get("received_dups")
    if got is not None and got != want["received_dups"]:
        ctx.finding(log, num, f"stop: received_dups = {short(got)}, but the log shows "
                              f"{want['received_dups']} receives with dup: true", "stop-field")


def _unprocessed_adds_up(ctx: Context, log: MachineLog, num: int, stop: dict[str, Any]) -> None:
    """unprocessed_from (per sender) sums to unprocessed, and max_queue is the most seen."""
    total = _int(stop.get("unprocessed"))
    per = stop.get("unprocessed_from")
    if per is not None:
        if not isinstance(per, dict) or not all(_int(v) is not None and v >= 0 for v in per.values()):
            ctx.finding(log, num, f"stop: unprocessed_from {short(per)} is not an object of "
                                  "counts per sender", "stop-field")
        elif total is not None and sum(per.values()) != total:
            ctx.finding(log, num, f"stop: unprocessed_from adds up to {sum(per.values())}, but "
                                  f"unprocessed = {total}", "stop-field")
    most = _int(stop.get("max_queue"))
    seen = max(int(log.qlen.max()) if log.events else 0, total or 0)
    if most is not None and most < seen:
        ctx.finding(log, num, f"stop: max_queue = {most}, but {seen} message(s) were seen "
                              "waiting at once", "stop-field")


@line_rule("start")
def start_states_rate_seed_pid(ctx: Context, log: MachineLog, num: int, start: dict[str, Any]
                               ) -> None:
    """SPEC 5: a start line has at least rate, seed and pid, as integers."""
    if num != log.start_line:
        return  # a second start line is a finding of its own (folder)
    from lclock.analysis.folder import MAX_RATE

    for key, lo, hi in (("rate", 1, MAX_RATE), ("seed", None, None), ("pid", 0, None)):
        if key not in start:
            ctx.finding(log, num, f"start: missing {key}", "start-field", "warning")
            continue
        v = _int(start[key])
        if v is None or (lo is not None and v < lo) or (hi is not None and v > hi):
            want = f"an integer from {lo} to {hi}" if hi else "an integer" if lo is None else \
                f"an integer >= {lo}"
            ctx.finding(log, num, f"start: {key} {short(start[key])} is not {want}", "start-field")
