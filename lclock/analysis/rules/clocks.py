"""Rules of the physical and hybrid logical clocks (SPEC section 7).

Every HLC update is replayed from the previous *logged* value, the event's ``pt`` and (on
a receive) the message's ``msg_hlc``, by the rules of SPEC 7.3 written out here once more
with numpy: the model's own functions (``lclock.core.clocks``) are what the runs use, so
the checker must not share them, or a broken copy would pass its own check. Along every
message the receive's hlc is above the send's, and the message carried the sender's pt
and hlc. ``l - pt`` stays within [0, bound]: the bound run.json states (what the clock
plan implies), else the plan's, else a small default; and ``pt`` is the clock plan's
reading at the event's ``ts``: exact in a simulated run, within microseconds in a real
one (``ts`` and ``pt`` are read at the same moment).
"""

from __future__ import annotations

import numpy as np

from lclock.analysis.load import KIND_NAMES, KIND_RECEIVE, MachineLog
from lclock.analysis.rules import Context, all_cols, any_cols, machine_rule, run_rule
from lclock.analysis.timestamps import short

# l - pt without a clock plan or a stated bound (a run whose physical clocks are the
# hosts', which agree to well within this)
DEFAULT_HLC_BOUND_US = 100_000
# how far pt may be from the plan's reading at ts: the simulator computes both from one
# instant (1 µs of rounding), a real machine reads them together
SIM_PT_TOLERANCE_US = 1
REAL_PT_TOLERANCE_US = 10


def replay(prev: np.ndarray, pt: np.ndarray, recv: np.ndarray, msg: np.ndarray) -> np.ndarray:
    """The HLC after each event from the one before it (rows [l, c]), SPEC 7.3.

    Send or local event: l' = max(l, pt); c' = c + 1 if l' = l, else 0.
    Receive of (lm, cm): l' = max(l, lm, pt); c' = max(c, cm) + 1 if l' = l = lm;
    c + 1 if l' = l only; cm + 1 if l' = lm only; else 0.
    """
    pl, pc = prev[:, 0], prev[:, 1]
    lm, cm = msg[:, 0], msg[:, 1]
    local_l = np.maximum(pl, pt)
    recv_l = np.maximum(local_l, lm)
    new_l = np.where(recv, recv_l, local_l)
    same_l = new_l == pl
    same_m = recv & (new_l == lm)
    c = np.where(same_l & same_m, np.maximum(pc, cm) + 1,
                 np.where(same_l, pc + 1, np.where(same_m, cm + 1, 0)))
    return np.stack([new_l, c], axis=1)


def _hint(prev: list[int], got: list[int], want: list[int], pt: int, recv: bool,
          msg: list[int]) -> str:
    """The mistake that explains a wrong update, where one does."""
    if got[0] == want[0] and got[1] == prev[1] + 1 and want[1] == 0:
        return " (c must restart at 0 when l moves forward)"
    if recv and got[0] == max(prev[0], pt) and want[0] == msg[0] != got[0]:
        return " (the message's hlc was not taken in)"
    if got[0] > want[0]:
        return " (l ran ahead of max(l, pt): the naive variant that drifts without bound?)"
    if got[0] < pt:
        return "; so l < pt"
    return ""


@machine_rule
def hlc_updates(ctx: Context, log: MachineLog) -> None:
    """Every HLC update, against the previous logged value (SPEC 7.3, 7.4)."""
    H = log.hlc
    if H is None or not log.events:
        return
    if log.pt is None:
        ctx.finding(log, int(log.line[0]), "hlc without pt: the HLC updates cannot be replayed",
                    "hlc-no-pt")
        return
    recv = log.kind == KIND_RECEIVE
    prev = np.vstack([np.zeros((1, 2), np.int64), H[:-1]])
    msg = log.msg_hlc if log.msg_hlc is not None else np.full((log.events, 2), -1, np.int64)
    known = ~ctx.after_gap(log) & (log.pt >= 0) & all_cols(H >= 0)
    known &= all_cols(prev >= 0) & (~recv | all_cols(msg >= 0))
    known[1:] &= all_cols(H[:-1] >= 0)
    want = replay(prev, log.pt, recv, msg)
    bad = known & any_cols(want != H)
    ctx.hlc_bad[log.id] = bad
    for k in ctx.each(log, "hlc", bad):
        p, got, w = prev[k].tolist(), H[k].tolist(), want[k].tolist()
        pt, m = int(log.pt[k]), msg[k].tolist()
        rule = ("max(l, msg l, pt) and the receive's c" if recv[k] else "l' = max(l, pt), c")
        ctx.finding(log, log.line[k], f"{KIND_NAMES[int(log.kind[k])]}: hlc {got}, expected {w} "
                                      f"by {rule} (previous {p}, pt {pt}"
                                      + (f", message {m}" if recv[k] else "") + ")"
                                      + ctx.bug_hint(log, "hlc", k,
                                                     _hint(p, got, w, pt, bool(recv[k]), m)),
                    "hlc")
    _near_pt(ctx, log, known, bad)


def hlc_bound(ctx: Context) -> tuple[int, str]:
    """The bound of l - pt, and where it comes from."""
    f = ctx.run.facts
    if f.hlc_bound_us is not None:
        return f.hlc_bound_us, "run.json clocks.hlc_bound_us"
    if f.clocks is not None and f.duration is not None and len(f.clocks.offsets_us) >= ctx.run.n:
        return f.clocks.bound_us(f.duration), "the bound the clock plan implies"
    return DEFAULT_HLC_BOUND_US, "the default without a clock plan"


def _near_pt(ctx: Context, log: MachineLog, known: np.ndarray, bad: np.ndarray) -> None:
    """pt <= l <= pt + bound (SPEC 7.4; l < pt is said by the replay where it judged)."""
    assert log.hlc is not None and log.pt is not None
    ok = (log.pt >= 0) & (log.hlc[:, 0] >= 0)
    lead = log.hlc[:, 0] - log.pt
    for k in ctx.each(log, "hlc-pt", ok & (lead < 0) & ~known):
        ctx.finding(log, log.line[k], f"hlc l {int(log.hlc[k, 0])} is below pt {int(log.pt[k])}: "
                                      "l = max(l, pt) never is", "hlc-pt")
    bound, source = hlc_bound(ctx)
    for k in ctx.each(log, "hlc-bound", ok & (lead > bound) & ~bad):
        ctx.finding(log, log.line[k], f"hlc l - pt = {int(lead[k])} µs, beyond the bound of "
                                      f"{bound} µs ({source}): l follows a physical clock that "
                                      "was never that far ahead", "hlc-bound")


def carried(ctx: Context, log: MachineLog, sender: MachineLog, sends: np.ndarray,
            recvs: np.ndarray) -> None:
    """Along messages (``sends[k]`` of ``sender`` handled by ``recvs[k]`` of ``log``): the
    message carried the sender's pt and hlc, and the receive's hlc is above the send's."""
    for key, rule in (("pt", "pt-carried"), ("hlc", "hlc-carried")):
        mine = getattr(log, "msg_" + key)
        theirs = getattr(sender, key)
        if mine is None or theirs is None or not len(recvs):
            continue
        got, sent = mine[recvs], theirs[sends]
        if key == "hlc":
            valid = all_cols(got >= 0) & all_cols(sent >= 0)
            wrong = valid & any_cols(got != sent)
        else:
            wrong = (got >= 0) & (sent >= 0) & (got != sent)
        for k in ctx.each(log, rule, wrong):
            g, s = got[k].tolist(), sent[k].tolist()
            ctx.finding(log, log.line[recvs[k]], f"receive from {sender.id}: msg_{key} {g}, but the "
                                                 f"send (line {int(sender.line[sends[k]])}) has "
                                                 f"{key} {s}", rule)
    if log.hlc is None or sender.hlc is None or not len(recvs):
        return
    a, b = sender.hlc[sends], log.hlc[recvs]
    valid = all_cols(a >= 0) & all_cols(b >= 0)
    below = (a[:, 0] < b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] < b[:, 1]))
    said = ctx.hlc_bad.get(log.id)
    wrong = valid & ~below & (~said[recvs] if said is not None else True)
    for k in ctx.each(log, "hlc-order", wrong):
        ctx.finding(log, log.line[recvs[k]], f"receive from {sender.id}: hlc {b[k].tolist()} is "
                                             f"not above the send's {a[k].tolist()}: the HLC "
                                             "must order every message", "hlc-order")


@machine_rule
def pt_follows_the_plan(ctx: Context, log: MachineLog) -> None:
    """pt = host time + offset + drift x (host time - t0) + the bumps so far (SPEC 7.1)."""
    plan = ctx.run.facts.clocks
    if plan is None or log.pt is None or log.id > len(plan.offsets_us) or not log.events:
        return
    ts = log.ts
    ok = np.isfinite(ts) & (log.pt >= 0)
    since = ts - ctx.run.t0
    want = (np.round(np.where(ok, ts, 0) * 1e6).astype(np.int64) + plan.offsets_us[log.id - 1]
            + np.round(plan.drifts_ppm[log.id - 1] * np.where(ok, since, 0)).astype(np.int64))
    edge = np.zeros(log.events, bool)
    bumps = [b for b in plan.bumps if b.machine == log.id]
    for b in bumps:
        want += np.where(since >= b.time, round(b.ms * 1000), 0)
        edge |= np.abs(since - b.time) < 2e-6  # either side of the jump, by ts's rounding
    tol = SIM_PT_TOLERANCE_US if ctx.run.facts.sim else REAL_PT_TOLERANCE_US
    off = log.pt - want
    wrong = ok & (np.abs(off) > tol)
    if edge.any():
        alt = np.zeros(log.events, bool)
        for b in bumps:
            jump = round(b.ms * 1000)
            alt |= (np.abs(off - jump) <= tol) | (np.abs(off + jump) <= tol)
        wrong &= ~(edge & alt)
    if not wrong.any():
        return
    first = int(np.flatnonzero(wrong)[0])
    how = ("a simulated run: exact" if ctx.run.facts.sim
           else f"within {tol} µs: ts and pt are read at the same moment")
    ctx.finding(log, log.line[first], f"pt {int(log.pt[first])} is {int(off[first]):+d} µs from the "
                                      f"clock plan's reading at ts ({int(want[first])}: offset "
                                      f"{plan.offsets_us[log.id - 1]} µs, drift "
                                      f"{plan.drifts_ppm[log.id - 1]:g} ppm"
                                      + (f", {len(bumps)} bump(s)" if bumps else "")
                                      + f"; {how}); {int(wrong.sum())} event(s) off the plan",
                "pt-plan", count=int(wrong.sum()))


@run_rule
def clocks_as_declared(ctx: Context) -> None:
    """The clocks run.json says were kept are in every log; its HLC bound is the plan's."""
    f = ctx.run.facts
    logs = [ctx.views[i] for i in ctx.run.ids if ctx.views[i].events]
    for key, said in (("hlc", f.clocks_kept is not None and "hlc" in f.clocks_kept),
                      ("pt", f.pt_kept is True)):
        for log in logs:
            col = getattr(log, key)
            if col is None and said:
                ctx.finding(log, int(log.line[0]), f"no {key} in this log, but run.json clocks "
                                                   "say it was kept", f"no-{key}")
            elif col is not None:
                _missing_on_some_lines(ctx, log, key, col)
        denied = f.clocks_kept is not None if key == "hlc" else f.pt_kept is False
        carried = [log.id for log in logs if getattr(log, key) is not None]
        if denied and not said and carried:
            ctx.meta(f"{key} in the logs, but run.json clocks say it was not kept (machine "
                     f"{short(carried[:10])[1:-1]})", "meta-clocks")
    if f.clocks is not None and len(f.clocks.offsets_us) < ctx.run.n:
        ctx.meta(f"clocks.plan gives {len(f.clocks.offsets_us)} offsets for {ctx.run.n} machines",
                 "meta-clocks")
    elif f.clocks is not None and f.hlc_bound_us is not None and f.duration is not None:
        implied = f.clocks.bound_us(f.duration)
        if implied != f.hlc_bound_us:
            ctx.meta(f"clocks.hlc_bound_us is {f.hlc_bound_us}, but the clock plan implies "
                     f"{implied} µs for a {f.duration:g} s run", "meta-clocks")


def _missing_on_some_lines(ctx: Context, log: MachineLog, key: str, col: np.ndarray) -> None:
    missing = col < 0 if col.ndim == 1 else any_cols(col < 0)
    if not missing.any():
        return
    bad_lines = {i.line for i in ctx.run.issues if i.rule == f"field-{key}"
                 and i.machine == log.id}
    rows = np.flatnonzero(missing)
    rows = rows[~np.isin(log.line[rows], list(bad_lines))] if bad_lines else rows
    for k in rows[:1].tolist():
        ctx.finding(log, int(log.line[k]), f"{key} missing on this line, though the log has it",
                    f"field-{key}-missing", count=len(rows))
