"""Rules on one machine's tick events, each against the previous *logged* state.

Judged on the machine's events up to its stop line (events after it are one finding of
their own, in ``folder``), so one mistake gives one finding at its line.
"""

from __future__ import annotations

import numpy as np

from lclock.analysis.load import KIND_INTERNAL, KIND_NAMES, KIND_RECEIVE, KIND_SEND, MachineLog
from lclock.analysis.rules import Context, all_cols, any_cols, machine_rule

LINES_LISTED = 5  # line numbers named in a finding that stands for many lines


@machine_rule
def ticks_without_gaps(ctx: Context, log: MachineLog) -> None:
    """Ticks run 1, 2, 3, ... and each tick does exactly one thing."""
    if not log.events:
        return
    tick = log.tick
    known = ~ctx.after_gap(log)
    if tick[0] != 1 and known[0]:
        ctx.finding(log, log.line[0], f"first tick is {int(tick[0])}, not 1", "tick")
    d = np.diff(tick)
    d[~known[1:]] = 1  # after an unusable line the previous tick is unknown
    for k in ctx.each(log, "tick-repeat", d == 0):
        ctx.finding(log, log.line[k + 1],
                    f"tick {int(tick[k + 1])} logged a second event: one tick does exactly one "
                    "thing (whole queue handled in one tick, or one send logged as two events?)",
                    "tick-repeat")
    for k in ctx.each(log, "tick-gap", d > 1):
        ctx.finding(log, log.line[k + 1], f"ticks jump from {int(tick[k])} to {int(tick[k + 1])}: "
                                          f"{int(d[k]) - 1} tick(s) missing", "tick-gap")
    for k in ctx.each(log, "tick-back", d < 0):
        ctx.finding(log, log.line[k + 1],
                    f"tick goes back from {int(tick[k])} to {int(tick[k + 1])}", "tick-back")


def _lamport_hint(log: MachineLog, k: int, got: int, want: int, prev: int) -> str:
    """The classic mistake that explains a wrong Lamport value, if one does."""
    kind = int(log.kind[k])
    if kind == KIND_RECEIVE:
        if got == want - 1:
            return " (receive without the +1: L = max(L, m) + 1)"
        return ""
    if kind == KIND_SEND:
        nto = int(log.to_ptr[k + 1] - log.to_ptr[k])
        if nto > 1 and got == prev + nto:
            return f" (incremented once per recipient: a send to {nto} peers is one event, +1)"
        if got > want:
            return " (incremented more than once)"
    if got == prev:
        return " (no increment)"
    return ""


def _hint(ctx: Context, log: MachineLog, k: int, got: int, want: int, prev: int) -> str:
    """The rule's guess, or the bug named for the event. A receive of m = L + 1 logged as
    L + 1 fits both the missing +1 and the ignored message: unless a bug is named for it,
    the hint names both (a run shrunk to that one receive must not say the wrong one)."""
    guess = _lamport_hint(log, k, got, want, prev)
    hint = ctx.bug_hint(log, "lamport", k, guess)
    if hint == guess and int(log.kind[k]) == KIND_RECEIVE and got == want - 1 == prev + 1:
        return (" (receive without the +1: L = max(L, m) + 1, or one that ignores the "
                "message's clock: L + 1; with m = L + 1 both give this)")
    return hint


@machine_rule
def lamport(ctx: Context, log: MachineLog) -> None:
    """L = L + 1 on a send or internal event, L = max(L, m) + 1 on a receive.

    C(send) < C(receive) follows from the receive rule, so it is said in the same finding
    (one mistake, one finding) rather than as a second one.
    """
    if not log.events:
        return
    L = log.lclock
    prev = np.concatenate(([0], L[:-1]))
    recv = log.kind == KIND_RECEIVE
    exp = np.where(recv, np.maximum(prev, log.msg) + 1, prev + 1)
    blind = recv & (log.msg < 0)  # the message's clock is not logged (an import): L > prev
    exp = np.where(blind, np.maximum(prev + 1, L), exp)
    for k in ctx.each(log, "lamport", (exp != L) & ~ctx.after_gap(log)):
        got, p = int(L[k]), int(prev[k])
        # in Python's integers: at 2**63 - 1 the int64 column's + 1 wraps to a negative
        want = max(p, int(log.msg[k])) + 1 if recv[k] else p + 1
        if blind[k]:
            ctx.finding(log, log.line[k], f"receive: lclock {got}, expected more than the "
                                          f"previous {p} (the message's clock is not logged)",
                        "lamport")
            continue
        rule = "max(L, msg_lclock) + 1" if recv[k] else "L + 1"
        msg = f", message {int(log.msg[k])}" if recv[k] else ""
        text = (f"{KIND_NAMES[int(log.kind[k])]}: lclock {got}, expected {want} = {rule} "
                f"(previous {p}{msg})"
                + _hint(ctx, log, k, got, want, p))
        if recv[k] and log.msg[k] >= got:
            text += f"; so C(send) = {int(log.msg[k])} is not less than C(receive) = {got}"
        ctx.finding(log, log.line[k], text, "lamport")


@machine_rule
def one_message_per_tick(ctx: Context, log: MachineLog) -> None:
    """A tick handles one message, and only rolls the dice when the queue is empty."""
    if not log.events or "queue_len" in ctx.run.not_logged:
        return
    q = log.qlen
    recv = log.kind == KIND_RECEIVE
    qprev = np.concatenate(([0], q[:-1]))
    qprev[ctx.after_gap(log)] = 0  # unknown: judged as if empty
    for k in ctx.each(log, "queue-drain", q < qprev - 1):
        ctx.finding(log, log.line[k], f"queue went from {int(qprev[k])} to {int(q[k])} in one "
                                      "tick: only one message may be handled per tick (whole "
                                      "queue handled at once?)", "queue-drain")
    for k in ctx.each(log, "queue-skip", (qprev > 0) & ~recv):
        ctx.finding(log, log.line[k], f"{KIND_NAMES[int(log.kind[k])]} although {int(qprev[k])} "
                                      "message(s) were waiting: a tick with a non-empty queue "
                                      "must handle a message", "queue-skip")


@machine_rule
def dice_decide_the_event(ctx: Context, log: MachineLog) -> None:
    """Dice in 1..sides on every non-receive tick; 1, 2, 3 send to A, B, everyone."""
    if not log.events:
        return
    sides, n = ctx.sides, ctx.run.n
    recv = log.kind == KIND_RECEIVE
    rolled = ~recv
    dice, kind = log.dice, log.kind
    for k in ctx.each(log, "dice-receive", recv & (dice != 0)):
        ctx.finding(log, log.line[k], "receive carries a dice roll: no dice are rolled on a receive",
                    "dice-receive")
    if "dice" in ctx.run.not_logged:
        return  # what the dice said is not known (run.json not_logged)
    for k in ctx.each(log, "dice-range", rolled & ((dice < 1) | (dice > sides))):
        ctx.finding(log, log.line[k], f"dice {int(dice[k])} outside 1..{sides} ({ctx.sides_source})",
                    "dice-range")
    if n < 2:
        return
    ok_range = rolled & (dice >= 1) & (dice <= sides)
    _dice_events(ctx, log, ok_range & (dice > 3) & (kind != KIND_INTERNAL), "an internal event")
    _dice_events(ctx, log, ok_range & (dice <= 3) & (kind != KIND_SEND), "a send")
    _recipients_follow_the_dice(ctx, log, ok_range & (dice <= 3) & (kind == KIND_SEND))


def _dice_events(ctx: Context, log: MachineLog, wrong: np.ndarray, should: str) -> None:
    """One finding per die value and event kind, with its count and first lines: an
    implementation that maps the die differently (say 4 sends) is one mistake, made on every
    roll of that value, not one finding per line burying the others."""
    idx = np.flatnonzero(wrong)
    if not idx.size:
        return
    keys = log.dice[idx].astype(np.int64) * 8 + log.kind[idx]
    for key in np.unique(keys).tolist():
        ks = idx[keys == key]
        k0 = int(ks[0])
        lines = [int(x) for x in log.line[ks[:LINES_LISTED]].tolist()]
        more = ", ..." if len(ks) > LINES_LISTED else ""
        note = (f" ({len(ks)} rolls, lines {', '.join(map(str, lines))}{more})"
                if len(ks) > 1 else "")
        ctx.finding(log, log.line[k0], f"dice {int(log.dice[k0])} must give {should}, not "
                                       f"{KIND_NAMES[int(log.kind[k0])]}{note}", "dice-event",
                    count=len(ks))


def _recipients_follow_the_dice(ctx: Context, log: MachineLog, sends: np.ndarray) -> None:
    me, n = log.id, ctx.run.n
    peer_a, peer_b = me % n + 1, (me - 2) % n + 1
    everyone = [i for i in range(1, n + 1) if i != me]
    idx = np.flatnonzero(sends)
    nto = (log.to_ptr[1:] - log.to_ptr[:-1])[idx]
    first = log.to_ids[log.to_ptr[idx]] if log.to_ids.size and idx.size else np.zeros(0, np.int64)
    dv = log.dice[idx]
    # the usual cases decided at once: one recipient, the right one for dice 1 or 2; and
    # a broadcast naming every peer exactly once
    simple = (nto == 1) & (((dv == 1) & (first == peer_a)) | ((dv == 2) & (first == peer_b)))
    simple |= _everyone_once(log, idx, (dv == 3) & (nto == n - 1), n)
    for k in idx[~simple].tolist():
        to = log.recipients(k)
        d = int(log.dice[k])
        want = [peer_a] if d == 1 else [peer_b] if d == 2 else everyone
        if sorted(to) != sorted(want):
            what = {1: "peer A (next in the ring)", 2: "peer B (previous in the ring)",
                    3: "every peer"}[d]
            ctx.finding(log, log.line[k], f"dice {d} sends to {what} = {want}, but to = {to}"
                        + (" (a send to every peer logged as separate events?)" if d == 3 else ""),
                        "dice-to")


def _everyone_once(log: MachineLog, idx: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """Which of the sends ``idx[rows]`` name every machine but their own exactly once."""
    out = np.zeros(len(idx), bool)
    sel = idx[rows]
    if not sel.size or sel.size * (n + 1) > 20_000_000:
        return out
    starts = log.to_ptr[sel]
    lens = log.to_ptr[sel + 1] - starts
    flat = np.repeat(starts - (np.cumsum(lens) - lens), lens) + np.arange(int(lens.sum()))
    row = np.repeat(np.arange(len(sel)), lens)
    ids = log.to_ids[flat]
    if ids.size and (ids.min() < 0 or ids.max() > n):
        return out
    hits = np.bincount(row * (n + 1) + ids, minlength=len(sel) * (n + 1))
    hits = hits.reshape(len(sel), n + 1)
    want = np.ones(n + 1, np.int64)
    want[0] = 0
    want[log.id] = 0
    out[np.flatnonzero(rows)] = all_cols(hits == want)
    return out


@machine_rule
def vector_clock(ctx: Context, log: MachineLog) -> None:
    """Own entry +1 on every event, the rest unchanged on a send or internal event, never
    lower on a receive (the receive's max with the message is checked in ``messages``)."""
    if log.vclock is None or not log.events:
        return
    me = log.id
    V = log.vclock
    if V.shape[1] < me:
        return
    recv = log.kind == KIND_RECEIVE
    own = V[:, me - 1]
    missing = any_cols(V < 0)
    counts = np.arange(1, log.events + 1)
    gap = np.cumsum(ctx.after_gap(log)) > 0  # own entry counts events, some unusable
    for k in ctx.each(log, "vector", ~missing & ~gap & (own != log.tick) & (own != counts)):
        ctx.finding(log, log.line[k], f"vclock own entry {int(own[k])} should count this "
                                      f"machine's events ({int(counts[k])})", "vector")
    Vprev = np.vstack([np.zeros((1, V.shape[1]), V.dtype), V[:-1]])
    okprev = ~np.concatenate(([False], missing[:-1])) & ~ctx.after_gap(log)
    expV = Vprev.copy()
    expV[:, me - 1] += 1
    bad = ~missing & okprev & ~recv & any_cols(expV != V)
    for k in ctx.each(log, "vector", bad):
        ctx.finding(log, log.line[k], f"{KIND_NAMES[int(log.kind[k])]}: vclock {V[k].tolist()}, "
                                      f"expected {expV[k].tolist()} (own entry +1, the rest "
                                      "unchanged)" + ctx.bug_hint(log, "vector", k, ""),
                    "vector")
    bad = ~missing & okprev & recv & any_cols(Vprev > V)
    for k in ctx.each(log, "vector", bad):
        ctx.finding(log, log.line[k], f"receive: vclock {V[k].tolist()} went below the previous "
                                      f"{Vprev[k].tolist()}", "vector")


@machine_rule
def logged_warnings(ctx: Context, log: MachineLog) -> None:
    """What the machine itself logged as a warning or an error is worth a look."""
    for num, o in log.notable[:20]:
        what = o.get("message") or o.get("error") or o.get("reason") or ""
        ctx.finding(log, num, f"the machine logged {o.get('level')} '{o.get('event')}'"
                              + (f": {str(what)[:120]}" if what else ""), "logged", "warning")
