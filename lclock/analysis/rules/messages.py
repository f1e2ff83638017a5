"""Rules on the messages between machines: every receive matches a send, each message is
handled once (``dup: true`` marks a duplicate the network delivered), in FIFO order per
channel unless the run reorders, with the vector clock rule of a receive; and at a graceful
stop every message is accounted for: handled, left unprocessed, or dropped (a ``drop``
line of its sender)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lclock.analysis.load import KIND_RECEIVE, KIND_SEND, MachineLog
from lclock.analysis.rules import Context, run_rule


class Sends:
    """One machine's sends, flattened to one row per (send event, recipient)."""

    def __init__(self, log: MachineLog) -> None:
        self.log = log
        isd = np.flatnonzero(log.kind == KIND_SEND)
        counts = (log.to_ptr[1:] - log.to_ptr[:-1])[isd]
        self.event = np.repeat(isd, counts)  # index of the send event
        self.to = log.to_ids.astype(np.int64) if len(self.event) == len(log.to_ids) else np.zeros(0, np.int64)
        self.lclock = log.lclock[self.event]
        self.total = len(self.event)


def _drops(ctx: Context, sender: MachineLog) -> dict[int, np.ndarray]:
    """The Lamport times of the messages ``sender`` logged as dropped, per recipient."""
    out: dict[int, list[int]] = {}
    until = ctx.until(sender)
    for num, o in sender.lines_of("drop"):
        if until and num >= until:
            continue
        c = o.get("msg_lclock")
        to = o.get("to")
        tos = to if isinstance(to, list) else [to]
        if not isinstance(c, int) or isinstance(c, bool):
            continue
        for j in tos:
            if isinstance(j, int) and not isinstance(j, bool):
                out.setdefault(j, []).append(c)
    return {j: np.array(v, np.int64) for j, v in out.items()}


@dataclass
class Channel:
    """The messages of one channel s -> j: s's send rows to j, and j's receives from s."""

    s: int
    j: int
    rows: np.ndarray  # rows of s's Sends to j, in send order
    lclock: np.ndarray  # their Lamport times
    recv: np.ndarray  # j's receive events from s, in handling order
    dup: np.ndarray  # which of those are marked as duplicate deliveries
    matched: np.ndarray  # per receive: the channel row it handled, -1 for none
    dropped: np.ndarray  # per channel row: logged as dropped by s


def _channel(sl: Sends, log: MachineLog, s: int, rk: np.ndarray,
             drops: np.ndarray | None) -> Channel:
    ch = np.flatnonzero(sl.to == log.id)
    ch_l = sl.lclock[ch]
    c = log.msg[rk]
    order = np.argsort(ch_l, kind="stable")
    pos = np.searchsorted(ch_l[order], c)
    if len(ch_l):
        pos_c = np.minimum(pos, len(ch_l) - 1)
        found = (pos < len(ch_l)) & (ch_l[order][pos_c] == c)
        matched = np.where(found, order[pos_c], -1)
    else:
        matched = np.full(len(c), -1, np.int64)
    dup = log.dup[rk] if log.dup is not None else np.zeros(len(rk), bool)
    dropped = np.isin(ch_l, drops) if drops is not None and len(drops) else np.zeros(len(ch), bool)
    return Channel(s, log.id, ch, ch_l, rk, dup, matched, dropped)


def _unmatched(ctx: Context, log: MachineLog, sender: MachineLog, c: Channel) -> None:
    if sender.unusable.size:
        return  # the send may be on a line that could not be read: reported there
    for k in ctx.each(log, "match", c.matched < 0):
        ci = int(log.msg[c.recv[k]])
        hint = ""
        if len(c.lclock) and np.any(c.lclock == ci + 1):
            hint = (f" (machine {c.s} logged a send with lclock {ci + 1}: the message carried "
                    "the clock before the increment?)")
        ctx.finding(log, log.line[c.recv[k]], f"receive from {c.s} with msg_lclock {ci} matches "
                                              f"no send of machine {c.s} to {c.j}{hint}", "match")


def _handled_once(ctx: Context, log: MachineLog, c: Channel) -> None:
    first = (c.matched >= 0) & ~c.dup
    mr, rkf = c.matched[first], c.recv[first]
    uniq, cnt = np.unique(mr, return_counts=True)
    for u, n in zip(uniq[cnt > 1].tolist(), cnt[cnt > 1].tolist(), strict=True):
        for k in rkf[mr == u][1:]:
            ctx.finding(log, log.line[k], f"message from {c.s} with lclock {int(c.lclock[u])} "
                                          f"handled {n} times", "duplicate")


def _fifo(ctx: Context, log: MachineLog, c: Channel) -> None:
    first = (c.matched >= 0) & ~c.dup
    mr, rkf = c.matched[first], c.recv[first]
    if len(mr) < 2:
        return
    for k in ctx.each(log, "fifo", np.diff(mr) < 0):
        ctx.finding(log, log.line[rkf[k + 1]], f"FIFO broken on channel {c.s}->{c.j}: message "
                                               f"lclock {int(c.lclock[mr[k + 1]])} handled after "
                                               f"lclock {int(c.lclock[mr[k]])}", "fifo")


def _lost_in_the_middle(ctx: Context, log: MachineLog, sl: Sends, c: Channel) -> None:
    """A message never handled (nor dropped) though later ones on the channel were."""
    if log.unusable.size:
        return  # its receive may be on a line that could not be read: reported there
    handled = np.zeros(len(c.rows), bool)
    handled[c.matched[c.matched >= 0]] = True
    if not handled.any():
        return
    last = int(np.flatnonzero(handled)[-1])
    slog = sl.log
    for r in ctx.each(slog, "lost", ~handled[:last] & ~c.dropped[:last]):
        ev = int(sl.event[c.rows[r]])
        ctx.finding(slog, slog.line[ev], f"message to {c.j} (lclock {int(c.lclock[r])}) was never "
                                         f"handled by {c.j}, though later messages on the channel "
                                         "were: lost", "lost")


def _vector_receive(ctx: Context, log: MachineLog, sl: Sends, c: Channel) -> None:
    """V(send) < V(receive), and the receive's rule with the message's vector."""
    if log.vclock is None or sl.log.vclock is None:
        return
    ok_m = c.matched >= 0
    mr, rkf = c.matched[ok_m], c.recv[ok_m]
    if not len(mr) or sl.log.vclock.shape[1] != log.vclock.shape[1]:
        return
    Vs = sl.log.vclock[sl.event[c.rows[mr]]]
    Vr = log.vclock[rkf]
    ok = np.all(Vr >= 0, axis=1) & np.all(Vs >= 0, axis=1)
    bad = ok & ~(np.all(Vs <= Vr, axis=1) & np.any(Vs < Vr, axis=1))
    for k in ctx.each(log, "vector-order", bad):
        ctx.finding(log, log.line[rkf[k]], f"V(send) {Vs[k].tolist()} is not below "
                                           f"V(receive) {Vr[k].tolist()}", "vector-order")
    prevk = rkf - 1
    Vp = np.where((prevk >= 0)[:, None], log.vclock[np.maximum(prevk, 0)], 0)
    expV = np.maximum(Vp, Vs)
    expV[:, c.j - 1] += 1
    known = ~ctx.after_gap(log)[rkf]
    bad = ok & known & np.all(Vp >= 0, axis=1) & np.any(Vr != expV, axis=1)
    for k in ctx.each(log, "vector", bad):
        ctx.finding(log, log.line[rkf[k]], f"receive: vclock {Vr[k].tolist()}, expected "
                                           f"{expV[k].tolist()} (element-wise max with the "
                                           "message's vector, then own entry +1)", "vector")


def _left_over(c: Channel) -> int:
    """Messages of the channel neither handled (duplicates aside) nor dropped."""
    return len(c.rows) - int(np.count_nonzero(~c.dup)) - int(np.count_nonzero(c.dropped))


def _conservation(ctx: Context, log: MachineLog, c: Channel, unproc_from: dict[str, Any]) -> None:
    left = _left_over(c)
    u = unproc_from.get(str(c.s), 0)
    if isinstance(u, int) and left != u:
        dropped = int(np.count_nonzero(c.dropped))
        ctx.finding(log, log.stop_line, f"conservation broken on channel {c.s}->{c.j}: {c.s} sent "
                                        f"{len(c.rows)}, {c.j} handled "
                                        f"{int(np.count_nonzero(~c.dup))}"
                                        + (f", {dropped} were dropped" if dropped else "")
                                        + f" and {u} left unprocessed: {left - u:+d} message(s) "
                                        f"{'lost' if left > u else 'from nowhere'}", "conservation")


@run_rule
def messages(ctx: Context) -> None:
    run = ctx.run
    sends = {mid: Sends(v) for mid, v in ctx.views.items()}
    ctx.messages = int(sum(s.total for s in sends.values()))
    drops = {mid: _drops(ctx, v) for mid, v in ctx.views.items()}
    for j in run.ids:
        _receiver(ctx, ctx.views[j], sends, drops)


def _receiver(ctx: Context, log: MachineLog, sends: dict[int, Sends],
              drops: dict[int, dict[int, np.ndarray]]) -> None:
    run, j = ctx.run, log.id
    recv_idx = np.flatnonzero(log.kind == KIND_RECEIVE)
    senders = np.unique(log.frm[recv_idx]).tolist() if len(recv_idx) else []
    all_senders = sorted(set(senders) | {s for s in run.machines if s != j})
    stop = log.stop or {}
    unproc_from = stop.get("unprocessed_from")
    unproc_from = unproc_from if isinstance(unproc_from, dict) else None
    deficit = 0
    complete = True  # every channel's messages could be counted
    for s in all_senders:
        sl = sends.get(s)
        rk = recv_idx[log.frm[recv_idx] == s]
        if sl is None:
            if len(rk) and s <= run.n:
                ctx.finding(log, log.line[rk[0]], f"receives from machine {s}, whose log is "
                                                  "missing: cannot match them", "match")
            continue
        c = _channel(sl, log, s, rk, drops[s].get(j))
        _unmatched(ctx, log, sl.log, c)
        _handled_once(ctx, log, c)
        if not run.facts.reorder:
            _fifo(ctx, log, c)
            _lost_in_the_middle(ctx, log, sl, c)
        _vector_receive(ctx, log, sl, c)
        unknown = bool(log.unusable.size or sl.log.unusable.size)
        if log.stop is not None and not unknown:
            if unproc_from is not None:
                _conservation(ctx, log, c, unproc_from)
            deficit += _left_over(c)
        complete &= not unknown
    u = stop.get("unprocessed")
    missing_logs = any(s not in run.machines for s in range(1, run.n + 1) if s != j)
    if log.stop is not None and unproc_from is None and isinstance(u, int) and not missing_logs \
            and complete and deficit != u:
        ctx.finding(log, log.stop_line, f"conservation broken: peers sent {j} messages of which "
                                        f"{deficit} were not handled, but stop says unprocessed = "
                                        f"{u}: {deficit - u:+d} message(s) "
                                        f"{'lost' if deficit > u else 'from nowhere'}",
                    "conservation")
