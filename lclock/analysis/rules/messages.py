"""Rules on the messages between machines: every receive matches a send, each message is
handled once per copy the network delivered (the sender's ``dup_to`` names the recipients
that got two; the second handling, and only it, says ``dup: true``), in FIFO order per
channel unless the run reorders (the two copies of a duplicate back to back), with the
vector clock rule of a receive; and at a graceful stop every message is accounted for
(SPEC 6.8): per link, the copies sent (a message, plus one for a duplicate, less the
dropped ones: a ``drop`` line of the sender) are the copies handled plus those left
unprocessed, plus those lost when a machine crashed as planned."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lclock.analysis.load import KIND_SEND, MachineLog
from lclock.analysis.matching import Matched, SendTable, match_receives
from lclock.analysis.rules import Context, all_cols, any_cols, run_rule
from lclock.analysis.rules.clocks import carried
from lclock.analysis.rules.faults import delivered_across_a_cut


class Sends(SendTable):
    """One machine's sends, flattened to one row per (send event, recipient), with which
    rows the network delivered twice."""

    def __init__(self, log: MachineLog) -> None:
        super().__init__(log)
        ok = len(self.to) == len(log.to_ids)
        self.twice = (log.to_dup if ok and log.to_dup is not None
                      else np.zeros(len(self.to), bool))  # delivered twice (dup_to)
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
        if not isinstance(c, int) or isinstance(c, bool) or not 0 <= c < 2**63:
            continue
        for j in tos:
            if isinstance(j, int) and not isinstance(j, bool) and 0 < j < 2**31:
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
    send: np.ndarray  # per receive: the send event it handled (-1: none; lclock.analysis.matching)
    dropped: np.ndarray  # per channel row: logged as dropped by s
    twice: np.ndarray  # per channel row: delivered twice (s's dup_to names j)

    @property
    def copies(self) -> np.ndarray:
        """Per row, the copies the network delivered: none if dropped, two if duplicated."""
        return np.where(self.dropped, 0, 1 + self.twice.astype(np.int64))

    def handled(self) -> np.ndarray:
        """Per row, how many times j handled it."""
        return np.bincount(self.matched[self.matched >= 0], minlength=len(self.rows))


def _channel(sl: Sends, log: MachineLog, s: int, rk: np.ndarray, send: np.ndarray,
             drops: np.ndarray | None) -> Channel:
    """The channel s -> j of receives ``rk`` that handled the send events ``send`` (the one
    matching's answer); a receive matched to a send naming no recipient has no row."""
    ch = np.flatnonzero(sl.to == log.id)
    ch_l = sl.lclock[ch]
    ch_ev = sl.event[ch]  # in log order
    pos = np.searchsorted(ch_ev, send)
    if len(ch):
        pos_c = np.minimum(pos, len(ch) - 1)
        matched = np.where((send >= 0) & (pos < len(ch)) & (ch_ev[pos_c] == send), pos_c, -1)
    else:
        matched = np.full(len(send), -1, np.int64)
    dup = log.dup[rk] if log.dup is not None else np.zeros(len(rk), bool)
    dropped = np.isin(ch_l, drops) if drops is not None and len(drops) else np.zeros(len(ch), bool)
    return Channel(s, log.id, ch, ch_l, rk, dup, matched, send, dropped, sl.twice[ch])


def _unmatched(ctx: Context, log: MachineLog, sender: MachineLog, c: Channel) -> None:
    if sender.unusable.size:
        return  # the send may be on a line that could not be read: reported there
    for k in ctx.each(log, "match", c.send < 0):
        ci = int(log.msg[c.recv[k]])
        hint = ""
        if len(c.lclock) and np.any(c.lclock == ci + 1):
            hint = (f" (machine {c.s} logged a send with lclock {ci + 1}: the message carried "
                    "the clock before the increment?)")
        ctx.finding(log, log.line[c.recv[k]], f"receive from {c.s} with msg_lclock {ci} matches "
                                              f"no send of machine {c.s} to {c.j}{hint}", "match")


def _handled_once(ctx: Context, log: MachineLog, c: Channel) -> None:
    """Each copy the network delivered is handled at most once: a message once, a
    duplicated one (``dup_to``) at most twice; and a dropped one never."""
    ok = c.matched >= 0
    mr, rk = c.matched[ok], c.recv[ok]
    handled = c.handled()
    copies = c.copies
    for u in np.flatnonzero(handled > np.maximum(copies, 1)).tolist():
        n, lc = int(handled[u]), int(c.lclock[u])
        extra = rk[mr == u][max(int(copies[u]), 1):]
        twice = " (the network delivered it twice: dup_to)" if c.twice[u] else ""
        for k in extra.tolist():
            ctx.finding(log, log.line[k], f"message from {c.s} with lclock {lc} handled {n} "
                                          f"times{twice}", "duplicate")
    for u in np.flatnonzero(c.dropped & (handled > 0)).tolist():
        k = int(rk[mr == u][0])
        ctx.finding(log, log.line[k], f"message from {c.s} with lclock {int(c.lclock[u])} "
                                      f"handled, though machine {c.s} logged it as dropped",
                    "drop-handled")


def _dup_marks(ctx: Context, log: MachineLog, c: Channel) -> None:
    """``dup: true`` exactly on the second handling of a message (SPEC 6.4)."""
    ok = c.matched >= 0
    mr, rk, dup = c.matched[ok], c.recv[ok], c.dup[ok]
    if not len(mr) or (not dup.any() and not c.twice.any()):
        return
    order = np.argsort(mr, kind="stable")  # handlings of one message together, in order
    srt = mr[order]
    again = np.zeros(len(mr), bool)
    again[order[1:]] = srt[1:] == srt[:-1]
    for k in ctx.each(log, "dup-mark", dup & ~again):
        ctx.finding(log, log.line[rk[k]], f"receive from {c.s}: dup: true, but this is the first "
                                          f"handling of message lclock {int(c.lclock[mr[k]])}",
                    "dup-mark")
    planned = c.twice[mr] & again  # a second copy the network did deliver
    for k in ctx.each(log, "dup-mark", planned & ~dup):
        ctx.finding(log, log.line[rk[k]], f"receive from {c.s}: the second handling of message "
                                          f"lclock {int(c.lclock[mr[k]])} (delivered twice: "
                                          "dup_to) without dup: true", "dup-mark")


def _fifo(ctx: Context, log: MachineLog, c: Channel) -> None:
    """Messages handled in the order sent; the two copies of a duplicate back to back."""
    ok = c.matched >= 0
    mr, rkf, dup = c.matched[ok], c.recv[ok], c.dup[ok]
    if len(mr) < 2:
        return
    for k in ctx.each(log, "fifo", np.diff(mr) < 0):
        copy = " (a duplicate's second copy, which comes right after the first)" if dup[k + 1] else ""
        ctx.finding(log, log.line[rkf[k + 1]], f"FIFO broken on channel {c.s}->{c.j}: message "
                                               f"lclock {int(c.lclock[mr[k + 1]])}{copy} handled "
                                               f"after lclock {int(c.lclock[mr[k]])}", "fifo")


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


def _unplaced(log: MachineLog, recv_idx: np.ndarray, s: int) -> bool:
    """Whether some receive of ``log`` may have handled a message from ``s`` without
    saying so (no sender, or no message clock: an imported log), so a message that no
    receive is matched to may not be lost."""
    frm, msg = log.frm[recv_idx], log.msg[recv_idx]
    return bool(np.any((frm == 0) | ((frm == s) & (msg < 0))))


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
    ok = all_cols(Vr >= 0) & all_cols(Vs >= 0)
    bad = ok & ~(all_cols(Vs <= Vr) & any_cols(Vs < Vr))
    for k in ctx.each(log, "vector-order", bad):
        ctx.finding(log, log.line[rkf[k]], f"V(send) {Vs[k].tolist()} is not below "
                                           f"V(receive) {Vr[k].tolist()}", "vector-order")
    prevk = rkf - 1
    Vp = np.where((prevk >= 0)[:, None], log.vclock[np.maximum(prevk, 0)], 0)
    expV = np.maximum(Vp, Vs)
    expV[:, c.j - 1] += 1
    known = ~ctx.after_gap(log)[rkf]
    bad = ok & known & all_cols(Vp >= 0) & any_cols(Vr != expV)
    for k in ctx.each(log, "vector", bad):
        ctx.finding(log, log.line[rkf[k]], f"receive: vclock {Vr[k].tolist()}, expected "
                                           f"{expV[k].tolist()} (element-wise max with the "
                                           "message's vector, then own entry +1)"
                    + ctx.bug_hint(log, "vector", int(rkf[k]), ""), "vector")


def _left_over(c: Channel) -> int:
    """Copies of the channel's messages the network delivered and j did not handle."""
    return int(c.copies.sum()) - int(np.count_nonzero(c.matched >= 0))


def _conservation(ctx: Context, log: MachineLog, c: Channel, unproc_from: dict[str, Any]) -> None:
    left = _left_over(c)
    u = unproc_from.get(str(c.s), 0)
    crashed = c.s in ctx.run.facts.crashed
    if not isinstance(u, int) or left == u or (crashed and left > u):
        return  # a sender that crashed as planned lost what it still held (SPEC 6.6)
    dropped = int(np.count_nonzero(c.dropped))
    twice = int(np.count_nonzero(c.twice & ~c.dropped))
    handled = int(np.count_nonzero(c.matched >= 0))
    ctx.finding(log, log.stop_line, f"conservation broken on channel {c.s}->{c.j}: {c.s} sent "
                                    f"{len(c.rows)}"
                                    + (f" (+{twice} duplicated)" if twice else "")
                                    + f", {c.j} handled {handled}"
                                    + (f", {dropped} were dropped" if dropped else "")
                                    + f" and {u} left unprocessed: {left - u:+d} message(s) "
                                    f"{'lost' if left > u else 'from nowhere'}", "conservation")


@run_rule
def messages(ctx: Context) -> None:
    run = ctx.run
    sends = {mid: Sends(v) for mid, v in ctx.views.items()}
    ctx.messages = int(sum(s.total for s in sends.values()))
    drops = {mid: _drops(ctx, v) for mid, v in ctx.views.items()}
    matches = {j: match_receives(ctx.views[j], sends) for j in run.ids}
    for j in run.ids:
        _receiver(ctx, ctx.views[j], sends, matches[j], drops)
    if {"to", "from", "msg_lclock"} & run.not_logged:
        from lclock.analysis.rules.holes import unordered

        unordered(ctx, sends, matches)


def _receiver(ctx: Context, log: MachineLog, sends: dict[int, Sends], m: Matched,
              drops: dict[int, dict[int, np.ndarray]]) -> None:
    run, j = ctx.run, log.id
    recv_idx = m.receive
    senders = np.unique(log.frm[recv_idx]).tolist() if len(recv_idx) else []
    all_senders = sorted(set(senders) | {s for s in run.machines if s != j})
    stop = log.stop or {}
    unproc_from = stop.get("unprocessed_from")
    unproc_from = unproc_from if isinstance(unproc_from, dict) else None
    deficit = 0
    complete = True  # every channel's messages could be counted
    for s in all_senders:
        if s == 0:  # receives whose sender is not logged: lclock.analysis.rules.holes
            continue
        sl = sends.get(s)
        mine = (log.frm[recv_idx] == s) & (log.msg[recv_idx] >= 0)
        rk = recv_idx[mine]
        if sl is None:
            if len(rk) and s <= run.n:
                ctx.finding(log, log.line[rk[0]], f"receives from machine {s}, whose log is "
                                                  "missing: cannot match them", "match")
            continue
        c = _channel(sl, log, s, rk, m.send[mine], drops[s].get(j))
        blind = bool(np.any((sl.log.kind == KIND_SEND) & (sl.log.to_ptr[1:] == sl.log.to_ptr[:-1])))
        if blind:  # some send of s names no recipient: its messages are matched by clock
            from lclock.analysis.rules.holes import match_blind

            match_blind(ctx, log, sl, c)
        else:
            _unmatched(ctx, log, sl.log, c)
        _handled_once(ctx, log, c)
        _dup_marks(ctx, log, c)
        if not run.facts.reorder and not blind:
            _fifo(ctx, log, c)
            if not _unplaced(log, recv_idx, s):
                _lost_in_the_middle(ctx, log, sl, c)
        _vector_receive(ctx, log, sl, c)
        ok = c.send >= 0
        carried(ctx, log, sl.log, c.send[ok], c.recv[ok])
        delivered_across_a_cut(ctx, log, sl.log, c.send[ok], c.recv[ok])
        unknown = bool(log.unusable.size or sl.log.unusable.size)
        if log.stop is not None and not unknown:
            if unproc_from is not None:
                _conservation(ctx, log, c, unproc_from)
            deficit += _left_over(c)
        complete &= not unknown and s not in run.facts.crashed
    u = stop.get("unprocessed")
    missing_logs = any(s not in run.machines for s in range(1, run.n + 1) if s != j)
    if log.stop is not None and unproc_from is None and isinstance(u, int) and not missing_logs \
            and complete and deficit != u:
        ctx.finding(log, log.stop_line, f"conservation broken: peers sent {j} messages of which "
                                        f"{deficit} were not handled, but stop says unprocessed = "
                                        f"{u}: {deficit - u:+d} message(s) "
                                        f"{'lost' if deficit > u else 'from nowhere'}",
                    "conservation")
