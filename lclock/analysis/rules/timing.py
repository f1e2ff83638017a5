"""Rules on time and chance: ticks on their absolute deadlines, and a fair die."""

from __future__ import annotations

import math

import numpy as np

from lclock.analysis.load import KIND_RECEIVE, MachineLog
from lclock.analysis.rules import Context, machine_rule, run_rule

# A machine's ticks may run late by this much before it is a finding.
LATE_TOLERANCE_S = 0.5
LATE_TOLERANCE_FRACTION = 0.05
EARLY_TOLERANCE_S = 0.05
# The "largest face never seen" warning needs the chance of that by luck below this.
DICE_LUCK = 1e-6


@machine_rule
def ts_never_goes_back(ctx: Context, log: MachineLog) -> None:
    if log.events < 2:
        return
    dt = np.diff(log.ts)
    for k in ctx.each(log, "ts-back", dt < -0.001, "warning"):
        ctx.finding(log, log.line[k + 1], f"ts goes back {-float(dt[k]):.3f} s from the previous "
                                          "event", "ts-back", "warning")


@machine_rule
def ticks_on_their_deadlines(ctx: Context, log: MachineLog) -> None:
    """Tick k is due at t0 + (k-1)/rate (skipped ticks counted): judged only when run.json
    states the rate, late by a tolerance, early by a little."""
    r = ctx.run.facts.rates.get(log.id)
    ts = log.ts
    bad = ~np.isfinite(ts)
    if not r or log.events < 2 or bad.all():
        return
    due = ctx.run.t0 + (log.tick - 1 + log.skipped_before()) / r
    late = ts - due
    fin = np.flatnonzero(~bad)
    tail = fin[-max(1, len(fin) // 10):]
    elapsed = float(ts[fin[-1]] - ctx.run.t0)
    tol = max(LATE_TOLERANCE_S, LATE_TOLERANCE_FRACTION * elapsed)
    med = float(np.median(late[tail]))
    if med > tol:
        k = int(tail[-1])
        achieved = (log.events - 1) / max(float(ts[fin[-1]] - ts[fin[0]]), 1e-9)
        ctx.finding(log, log.line[k], f"ticks fall behind the rate: tick {int(log.tick[k])} ran "
                                      f"{float(late[k]):.2f} s after its deadline t0 + (k-1)/{r} "
                                      f"(achieved {achieved:.2f} ticks/s for rate {r}; sleeping "
                                      "1/rate after the work drifts)", "timing")
    early = np.flatnonzero(late < -EARLY_TOLERANCE_S)
    if len(early):
        k = int(early[0])
        ctx.finding(log, log.line[k], f"tick {int(log.tick[k])} ran {-float(late[k]):.3f} s "
                                      f"before its deadline t0 + (k-1)/{r} ({len(early)} early "
                                      "tick(s))", "timing")


@run_rule
def dice_are_fair(ctx: Context) -> None:
    """A fair die shows every face eventually: a face never seen in many rolls is a bug."""
    sides = ctx.run.dice_sides
    if not sides or "dice" in ctx.run.not_logged:
        return
    rolls = [v.dice[v.kind != KIND_RECEIVE] for v in ctx.views.values()]
    allr = np.concatenate(rolls) if rolls else np.zeros(0, np.int64)
    nr = len(allr)
    if nr == 0:
        return
    p_face = 1.0 / sides
    p_never = math.exp(nr * math.log1p(-p_face)) if p_face < 1 else 0.0
    if p_never >= DICE_LUCK:
        return
    target = ctx.views[ctx.run.ids[0]]
    for face in (sides, 1):
        if not np.any(allr == face):
            ctx.finding(target, 0, f"dice never showed {face} in {nr} rolls (chance "
                                   f"{p_never:.1e} for a fair 1..{sides} die): the range looks "
                                   f"like {'1..' + str(sides - 1) if face == sides else '2..' + str(sides)}",
                        "dice-luck", "warning")
