"""Rules on Chandy–Lamport snapshots (SPEC 12.3): every completed snapshot is a consistent
cut, and each of its channels holds exactly the messages in transit across it.

A machine's ``snapshot`` line records its tick at its recording (the cut: its ticks up to
that one), its queue then, and per incoming link the messages it took in after recording
and before that link's marker. So, link by link (sender j, receiver i), the copies j sent
to i at or before its recorded tick (less those dropped, plus the second copy of a
duplicated one) are exactly the copies i handled at or before its recorded tick, plus those
in its recorded queue, plus those in the channel's state. A message taken in inside the cut
but sent outside it crossed the marker: under FIFO links that cannot happen (an error);
with ``--reorder`` it can, and it is said as a warning, not a finding.

Messages are told apart by (sender, the Lamport time the message carried), as every rule
on messages does.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from lclock.analysis.load import KIND_RECEIVE, MachineLog
from lclock.analysis.rules import Context, run_rule
from lclock.analysis.rules.messages import Sends

Part = tuple[int, dict[str, Any]]  # (line number, the snapshot line)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63


def _entries(items: Any) -> bool:
    """A recorded queue or channel: a list of ``{"from", "msg_lclock", "send_tick"}`` with
    whole numbers. An entry of another shape would be passed over by the link's sums, so a
    line holding one could hide a wrong channel behind a right count: it is not usable."""
    return isinstance(items, list) and all(
        isinstance(x, dict) and _int(x.get("from")) and _int(x.get("msg_lclock"))
        and _int(x.get("send_tick")) for x in items)


def _usable(o: dict[str, Any], mid: int, n: int) -> bool:
    """A snapshot line the link's sums read whole: every entry of its queue from another
    machine of the run, every channel keyed by one and holding only that machine's messages
    (an entry from any other would be passed over by the sums, as one of another shape)."""
    sid: Any = o.get("id")
    tick: Any = o.get("tick")
    queue: Any = o.get("queue")
    channels: Any = o.get("channels")
    peers = set(range(1, n + 1)) - {mid}
    return (_int(sid) and _int(tick) and _entries(queue) and isinstance(channels, dict)
            and all(x["from"] in peers for x in queue)
            and all(k.isascii() and k.isdigit() and int(k) in peers and _entries(v)
                    and all(x["from"] == int(k) for x in v) for k, v in channels.items()))


def _parts(ctx: Context) -> dict[int, dict[int, Part]]:
    """Per snapshot id, each machine's snapshot line (the first of that id), if usable."""
    out: dict[int, dict[int, Part]] = {}
    for mid, log in ctx.views.items():
        for num, o in log.lines_of("snapshot"):
            sid: Any = o.get("id")
            if not _usable(o, mid, ctx.run.n):
                ctx.finding(log, num, "snapshot line without a usable id, tick, queue or "
                            "channels (SPEC 12.2)", "snapshot-line")
                continue
            wrong = _wrong_state(log, o)
            if wrong is not None:
                ctx.finding(log, num, f"snapshot {sid}: {wrong} (SPEC 12.5: the state after its "
                            "last tick before the recording)", "snapshot-state")
            out.setdefault(sid, {}).setdefault(mid, (num, o))
    return out


def _wrong_state(log: MachineLog, o: dict[str, Any]) -> str | None:
    """How the recorded clocks differ from the machine's after its recorded tick (its last
    event at or before that tick; zero before any), or None when they agree: the cut is
    judged from the tick, so clocks from elsewhere would pass unseen."""
    tick: int = o["tick"]
    rows = np.flatnonzero(log.tick <= tick)
    last = int(rows[-1]) if len(rows) else None
    want = int(log.lclock[last]) if last is not None else 0
    got: Any = o.get("lclock")
    if got != want or not _int(got):
        return f"recorded lclock {got!r}, but after tick {tick} the machine's clock is {want}"
    vc: Any = o.get("vclock")
    if log.vclock is None or vc is None:
        return None
    width = log.vclock.shape[1] if log.vclock.ndim == 2 else 0
    known = [int(x) for x in log.vclock[last]] if last is not None else [0] * width
    if vc != known:
        return f"recorded vclock {vc!r}, but after tick {tick} the machine's is {known}"
    return None


def _clocks(items: Any, sender: int) -> Counter[int]:
    """The Lamport times of the messages of ``sender`` in a recorded queue or channel."""
    out: Counter[int] = Counter()
    for x in items if isinstance(items, list) else []:
        if isinstance(x, dict) and x.get("from") == sender and _int(x.get("msg_lclock")):
            out[x["msg_lclock"]] += 1
    return out


def _sent(log: MachineLog, to: int, upto: int) -> Counter[int]:
    """Copies ``log``'s machine put on the wire to ``to`` at ticks up to ``upto``."""
    s = Sends(log)
    rows = (s.to == to) & (log.tick[s.event] <= upto)
    out: Counter[int] = Counter()
    for c, twice in zip(s.lclock[rows].tolist(), s.twice[rows].tolist()):
        out[c] += 2 if twice else 1
    for _num, o in log.lines_of("drop"):
        dropped: Any = o.get("msg_lclock")
        if o.get("to") == to and _int(dropped) and out.get(dropped, 0) > 0:
            out[dropped] -= 1
    return +out


def _handled(log: MachineLog, sender: int, upto: int) -> Counter[int]:
    rows = (log.kind == KIND_RECEIVE) & (log.frm == sender) & (log.tick <= upto)
    return Counter(log.msg[rows].tolist())


def _recorded(ctx: Context) -> dict[int, Any]:
    """run.json's ``snapshots``: each id and whether it says the snapshot completed."""
    listed = ctx.run.meta.get("snapshots")
    return {x["id"]: x.get("completed") for x in listed if isinstance(x, dict) and _int(x.get("id"))
            } if isinstance(listed, list) else {}


@run_rule
def snapshots_are_consistent(ctx: Context) -> None:
    """Every snapshot every machine completed: its cut and its channels (SPEC 12.3)."""
    reorder = ctx.run.facts.reorder
    found = _parts(ctx)
    recorded = _recorded(ctx)
    for sid in sorted(set(found) | set(recorded)):
        parts = found.get(sid, {})
        if len(parts) < ctx.run.n:
            missing = sorted(set(range(1, ctx.run.n + 1)) - set(parts))
            ctx.notes.append(f"snapshot {sid} not checked: it did not complete at machine(s) "
                             f"{', '.join(map(str, missing))}")
            if recorded.get(sid) is True and ctx.views and len(ctx.views) >= ctx.run.n:
                ctx.meta(f"snapshots: snapshot {sid} completed, says run.json, but machine(s) "
                         f"{', '.join(map(str, missing))} logged no snapshot line of it",
                         "meta-snapshots")
            continue
        for i in sorted(parts):
            for j in sorted(parts):
                if i != j:
                    _check_link(ctx, sid, j, i, parts, reorder)


def _check_link(ctx: Context, sid: int, j: int, i: int, parts: dict[int, Part],
                reorder: bool) -> None:
    """Link j -> i of snapshot ``sid``: sent before j's recording = handled before i's +
    queued at i's + the channel's state."""
    num, line = parts[i]
    rj, ri = int(parts[j][1]["tick"]), int(line["tick"])
    sent = _sent(ctx.views[j], i, rj)
    taken = _handled(ctx.views[i], j, ri) + _clocks(line["queue"], j)
    channel = _clocks(line["channels"].get(str(j)), j)
    log = ctx.views[i]
    rule, severity = ("snapshot-crossed", "warning") if reorder else ("snapshot-inconsistent", "error")
    for c in sorted((taken - sent).elements()):
        ctx.finding(log, num, f"snapshot {sid} is not a consistent cut: the message {j} -> {i} "
                    f"with lclock {c} was taken in by machine {i} before its recording (tick "
                    f"{ri}) but sent by machine {j} after its own (tick {rj}): it crossed the "
                    "marker", rule, severity)
    for c in sorted((channel - (sent - taken)).elements()):
        ctx.finding(log, num, f"snapshot {sid}: channel {j} -> {i} records the message with "
                    f"lclock {c}, which machine {j} did not send to {i} before its recording "
                    f"(tick {rj}): it crossed the marker", rule, severity)
    missing = sent - taken - channel
    if missing:
        c = min(missing)
        ctx.finding(log, num, f"snapshot {sid}: channel {j} -> {i} misses {sum(missing.values())} "
                    f"message(s) machine {j} sent before its recording (tick {rj}) and machine "
                    f"{i} had not taken in before its own (tick {ri}), first the one with "
                    f"lclock {c}" + (": it came after the marker" if reorder else ""),
                    rule, severity)
