"""Rules of the faults (SPEC section 6), judged against the plan run.json states.

A drop only where the plan allows it (loss on that link, a partition that cuts it at that
moment, a receiver that crashed by then), and no message delivered across a partition's
cut; duplicates only on links that duplicate; no tick while the machine is paused, and the
ticks that fell due during a pause skipped, not made up in a burst; nothing after a planned
crash; ``fault`` lines where the plan has a partition start or heal.

Times are compared as seconds since t0 (run.json's ``connected`` line); a simulated run
keeps the plan's instants exactly, a real run within ``Context.tolerance`` (50 ms), and the
findings say which. A folder whose run.json has no fault plan is judged only by what the
logs say of themselves (a drop must be of a message that was sent, a tick never falls
between a ``pause`` and its ``resume`` line).
"""

from __future__ import annotations

import bisect
from typing import Any, TypeGuard

import numpy as np

from lclock.analysis.load import KIND_SEND, MachineLog
from lclock.analysis.rules import Context, machine_rule, run_rule, tolerance_text
from lclock.analysis.timestamps import parse_ts_column, short
from lclock.core.faults import FaultPlan

DROP_REASONS = ("loss", "partition", "crashed")
# A real machine may run late after a pause by this much before a burst is a finding
# (what ``timing`` allows a late tick).
BURST_TOLERANCE_S = 0.5


def _is_int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def _drop_fields(o: dict[str, Any], s: int, n: int) -> tuple[int, int, str] | None:
    """(to, msg_lclock, reason) of a drop line, or None when one is not usable."""
    to, c, reason = o.get("to"), o.get("msg_lclock"), o.get("reason")
    if _is_int(to) and 1 <= to <= n and to != s and _is_int(c) and c >= 0 \
            and isinstance(reason, str) and reason in DROP_REASONS:
        return to, c, reason
    return None


def kept(ctx: Context, log: MachineLog, event: str) -> list[tuple[int, dict[str, Any]]]:
    """The judged ``event`` lines of a log (before a second start line)."""
    until = ctx.until(log)
    return [(num, o) for num, o in log.lines_of(event) if not until or num < until]


def seconds(ctx: Context, lines: list[tuple[int, dict[str, Any]]]) -> np.ndarray:
    """Seconds since t0 of each line (NaN where its ts is unusable)."""
    if not lines:
        return np.zeros(0)
    return parse_ts_column([o.get("ts") for _, o in lines]) - ctx.run.t0


def _plan(ctx: Context) -> FaultPlan | None:
    return ctx.run.facts.faults


# ---------------------------------------------------------------- drops


def _drop_allowed(plan: FaultPlan, s: int, j: int, reason: str, t: float, tol: float) -> bool:
    if reason == "loss":
        return plan.link(s, j).loss > 0
    if reason == "partition":
        return any(p.cuts(s, j) and p.start - tol <= t < p.end + tol for p in plan.partitions)
    crash = plan.crash_time(j)
    return crash is not None and t >= crash - tol


def _why_not(plan: FaultPlan, s: int, j: int, reason: str) -> str:
    if reason == "loss":
        return f"the plan has no loss on link {s}->{j}"
    if reason == "partition":
        spans = [f"{p.start:g}-{p.end:g} s" for p in plan.partitions if p.cuts(s, j)]
        return ("no partition of the plan cuts " + f"{s}-{j} then"
                + (f" (it is cut {', '.join(spans)})" if spans else ""))
    crash = plan.crash_time(j)
    return (f"machine {j} crashes only at {crash:g} s" if crash is not None
            else f"the plan never crashes machine {j}")


@run_rule
def drops_where_the_plan_allows(ctx: Context) -> None:
    """Every ``drop`` line names a message its machine sent (once), for a reason the plan
    allows at that moment."""
    plan = _plan(ctx)
    n = ctx.run.n
    for s in ctx.run.ids:
        log = ctx.views[s]
        drops = kept(ctx, log, "drop")
        if not drops:
            continue
        isd = np.flatnonzero(log.kind == KIND_SEND)
        counts = (log.to_ptr[1:] - log.to_ptr[:-1])[isd]
        ev = np.repeat(isd, counts)
        rows = {(int(to), int(lc)): int(e) for to, lc, e in
                zip(log.to_ids.tolist(), log.lclock[ev].tolist(), ev.tolist(), strict=False)}
        times = seconds(ctx, drops)
        seen: dict[tuple[int, int], int] = {}
        for (num, o), t in zip(drops, times.tolist(), strict=True):
            fields = _drop_fields(o, s, n)
            if fields is None:
                ctx.finding(log, num, f"drop: to {short(o.get('to'))}, msg_lclock "
                                      f"{short(o.get('msg_lclock'))}, reason "
                                      f"{short(o.get('reason'))}: want a peer, a Lamport time and "
                                      f"one of {', '.join(DROP_REASONS)}", "drop-field")
                continue
            to, c, reason = fields
            key = (to, c)
            if key in seen:
                ctx.finding(log, num, f"drop: message lclock {c} to {to} dropped a second time "
                                      f"(first at line {seen[key]})", "drop-match")
                continue
            seen[key] = num
            e = rows.get(key)
            if e is None:
                if not log.unusable.size:
                    ctx.finding(log, num, f"drop: machine {s} sent no message with lclock {c} to "
                                          f"{to}", "drop-match")
                continue
            tick = o.get("tick")
            if tick is not None and tick != int(log.tick[e]):
                ctx.finding(log, num, f"drop: tick {short(tick)}, but the send of lclock {c} is "
                                      f"tick {int(log.tick[e])}", "drop-match")
            if plan is None:
                continue
            if not np.isfinite(t):
                t = float(log.ts[e]) - ctx.run.t0
            if not _drop_allowed(plan, s, to, reason, t, ctx.tolerance):
                ctx.finding(log, num, f"drop of lclock {c} to {to} ({reason}) at {t:.3f} s, "
                                      f"which the plan does not allow: {_why_not(plan, s, to, reason)}"
                                      f" ({tolerance_text(ctx)})", "drop-plan")


# ---------------------------------------------------------------- duplicates


@run_rule
def duplicates_where_the_plan_allows(ctx: Context) -> None:
    """A message delivered twice (``dup_to``) only on a link whose plan duplicates."""
    plan = _plan(ctx)
    if plan is None:
        return
    for s in ctx.run.ids:
        log = ctx.views[s]
        if log.to_dup is None or len(log.to_dup) != len(log.to_ids):
            continue
        isd = np.flatnonzero(log.kind == KIND_SEND)
        ev = np.repeat(isd, (log.to_ptr[1:] - log.to_ptr[:-1])[isd])
        never = [j for j in ctx.run.ids if j != s and plan.link(s, j).duplicate <= 0]
        bad = log.to_dup & np.isin(log.to_ids, never)
        for r in ctx.each(log, "dup-plan", bad):
            j = int(log.to_ids[r])
            ctx.finding(log, log.line[ev[r]], f"send: dup_to names {j}, but the plan does not "
                                              f"duplicate on link {s}->{j}", "dup-plan")


# ---------------------------------------------------------------- pauses


Span = tuple[int, dict[str, Any], int, dict[str, Any] | None]


def _pause_spans(ctx: Context, log: MachineLog) -> list[Span]:
    """(pause line, its object, resume line or 0, its object) of each pause in the log."""
    marks = sorted([(num, "pause", o) for num, o in kept(ctx, log, "pause")]
                   + [(num, "resume", o) for num, o in kept(ctx, log, "resume")],
                   key=lambda x: x[0])
    out: list[Span] = []
    opened: tuple[int, dict[str, Any]] | None = None
    for num, what, o in marks:
        if what == "pause":
            if opened:
                ctx.finding(log, num, f"a second pause line before the resume of the pause at "
                                      f"line {opened[0]}", "pause-line")
            else:
                opened = (num, o)
        elif not opened:
            ctx.finding(log, num, "a resume line without a pause line before it", "pause-line")
        else:
            out.append((opened[0], opened[1], num, o))
            opened = None
    if opened:
        out.append((opened[0], opened[1], 0, None))
    return out


@machine_rule
def no_tick_while_paused(ctx: Context, log: MachineLog) -> None:
    """A paused machine neither ticks nor takes messages in (SPEC 6.5): no tick between its
    ``pause`` and ``resume`` lines, nor inside a pause of the plan."""
    if not log.events:
        return
    inside = np.zeros(log.events, bool)
    spans = _pause_spans(ctx, log)
    for p, _, r, _ in spans:
        inside |= (log.line > p) & ((log.line < r) if r else True)
    plan = _plan(ctx)
    planned = plan.pauses_of(log.id) if plan is not None else []
    t = log.ts - ctx.run.t0
    tol = ctx.tolerance
    by_plan = np.zeros(log.events, bool)
    for pause in planned:
        by_plan |= (t > pause.start + tol) & (t < pause.end - tol)
    for k in ctx.each(log, "pause-tick", inside | by_plan):
        what = ("between the pause and resume lines" if inside[k]
                else f"inside the plan's pause of machine {log.id} "
                     f"({next(p.start for p in planned if p.start + tol < t[k] < p.end - tol):g} s "
                     f"+ {next(p.length for p in planned if p.start + tol < t[k] < p.end - tol):g}"
                     f" s; {tolerance_text(ctx)})")
        ctx.finding(log, log.line[k], f"{log_kind(log, k)} at {float(t[k]):.3f} s {what}: a paused "
                                      "machine does not tick", "pause-tick")
    _pauses_follow_the_plan(ctx, log, spans, planned)
    _skipped_not_made_up(ctx, log, spans)


def log_kind(log: MachineLog, k: int) -> str:
    from lclock.analysis.load import KIND_NAMES

    return f"tick {int(log.tick[k])} ({KIND_NAMES[int(log.kind[k])]})"


def _pauses_follow_the_plan(ctx: Context, log: MachineLog, spans: list[Span],
                            planned: list[Any]) -> None:
    """Each pause line falls in a pause the plan has for this machine (from its start, less
    the tolerance, to its end: a machine busy at the instant logs it a little late)."""
    if _plan(ctx) is None:
        return
    pauses = kept(ctx, log, "pause")
    times = seconds(ctx, pauses)
    tol = ctx.tolerance
    for (num, _), t in zip(pauses, times.tolist(), strict=True):
        if np.isfinite(t) and not any(p.start - tol <= t < p.end for p in planned):
            when = ", ".join(f"{p.start:g}-{p.end:g} s" for p in planned) or "never"
            ctx.finding(log, num, f"pause at {t:.3f} s, but the plan pauses machine {log.id} "
                                  f"{'at ' if planned else ''}{when} ({tolerance_text(ctx)})",
                        "pause-plan")


def _skipped_not_made_up(ctx: Context, log: MachineLog, spans: list[Span]) -> None:
    """The first tick after a resume runs for a deadline after the resume: the ticks that
    fell due while paused were skipped (counted in ``skipped``), not made up in a burst;
    and no more were skipped than fell due."""
    rate = ctx.run.facts.rates.get(log.id)
    done = [(p, po, r, ro) for p, po, r, ro in spans if r and ro is not None]
    if not rate or not done:
        return

    skipped_before = log.skipped_before()
    tol = ctx.tolerance if ctx.run.facts.sim else BURST_TOLERANCE_S
    t_pause = seconds(ctx, [(p, po) for p, po, _, _ in done])
    t_resume = seconds(ctx, [(r, ro) for _, _, r, ro in done if ro is not None])
    pause_lines = sorted(p for p, _, _, _ in spans)
    for (_, _, r, ro), t_p, t_r in zip(done, t_pause.tolist(), t_resume.tolist(), strict=True):
        k = int(np.searchsorted(log.line, r))
        skipped = (ro or {}).get("skipped")
        if k >= log.events or not np.isfinite(t_r) or not _is_int(skipped):
            continue
        j = bisect.bisect_right(pause_lines, r)
        if j < len(pause_lines) and pause_lines[j] < int(log.line[k]):
            continue  # paused again before its next tick: that tick is the later resume's
        slot = int(log.tick[k]) - 1 + int(skipped_before[k])
        due = slot / rate
        said = f"{skipped} skipped"
        if np.isfinite(t_p):
            fell = int(np.ceil(t_r * rate - 1e-9) - np.ceil(t_p * rate - 1e-9))
            said += f", but {fell} fell due while paused ({t_p:.2f} s to {t_r:.2f} s)"
        if due < t_r - tol:
            ran = float(log.ts[k]) - ctx.run.t0
            ctx.finding(log, log.line[k], f"tick {int(log.tick[k])} ran at {ran:.3f} s for the "
                                          f"deadline of {due:.3f} s, after the resume at "
                                          f"{t_r:.3f} s (line {r}): {said}; the ticks due while "
                                          "paused must be skipped, not made up in a burst "
                                          "(SPEC 6.5)", "pause-burst")
        elif slot and (slot - 1) / rate > t_r + tol:
            ctx.finding(log, r, f"resume at {t_r:.3f} s: {skipped} skipped, but the first tick "
                                f"after it is for the deadline of {due:.3f} s: deadlines after "
                                "the resume were skipped too", "pause-burst")


# ---------------------------------------------------------------- crashes


@machine_rule
def nothing_after_a_crash(ctx: Context, log: MachineLog) -> None:
    """A machine that crashes as planned logs nothing after the crash: no tick, no stop."""
    crash = ctx.run.facts.crashed.get(log.id)
    if crash is None:
        return
    t = log.ts - ctx.run.t0
    late = np.flatnonzero(t > crash + ctx.tolerance)
    if late.size:
        k = int(late[0])
        ctx.finding(log, log.line[k], f"{log_kind(log, k)} at {float(t[k]):.3f} s, after machine "
                                      f"{log.id}'s planned crash at {crash:g} s "
                                      f"({tolerance_text(ctx)}; {late.size} tick(s) after it)",
                    "crash-tick", count=int(late.size))
    if log.stop is not None:
        ts = seconds(ctx, [(log.stop_line, log.stop)])
        if ts.size and np.isfinite(ts[0]) and ts[0] > crash + ctx.tolerance:
            ctx.finding(log, log.stop_line, f"a stop line at {float(ts[0]):.3f} s, though the plan "
                                            f"crashed machine {log.id} at {crash:g} s: a crashed "
                                            "machine stops without a word", "crash-stop")


# ---------------------------------------------------------------- partitions


def _groups(o: dict[str, Any]) -> frozenset[frozenset[int]] | None:
    g = o.get("groups")
    if not isinstance(g, list) or not all(isinstance(x, list) for x in g):
        return None
    return frozenset(frozenset(i for i in x if _is_int(i)) for x in g)


@machine_rule
def fault_lines_follow_the_plan(ctx: Context, log: MachineLog) -> None:
    """A ``fault`` line for every partition start and heal of the plan that fell within
    the machine's run, and none other (SPEC 6.7)."""
    plan = _plan(ctx)
    if plan is None:
        return
    n = ctx.run.n
    want: list[tuple[str, float, float, frozenset[frozenset[int]]]] = []
    for p in plan.partitions:
        groups = [frozenset(g) for g in p.groups]
        rest = frozenset(i for i in range(1, n + 1) if p.side(i) < 0)
        full = frozenset(groups + ([rest] if rest else []))
        want += [("partition", p.start, p.end, full), ("heal", p.start, p.end, full)]
    lines = kept(ctx, log, "fault")
    found: set[int] = set()
    for num, o in lines:
        key = (o.get("kind"), o.get("start"), o.get("end"))
        match = [k for k, w in enumerate(want) if (w[0], w[1], w[2]) == key
                 and (_groups(o) in (None, w[3]))]
        if not match or match[0] in found:
            ctx.finding(log, num, f"fault: {short(o.get('kind'))} of {short(o.get('groups'))} "
                                  f"({short(o.get('start'))}-{short(o.get('end'))} s) "
                                  + ("logged twice" if match else "is not a partition of the plan"),
                        "fault-plan")
            continue
        found.add(match[0])
    last = float(log.ts[-1]) - ctx.run.t0 if log.events and np.isfinite(log.ts[-1]) else -np.inf
    for k, (kind, start, end, _) in enumerate(want):
        at = start if kind == "partition" else end
        if k not in found and at < last - ctx.tolerance:
            ctx.finding(log, 0, f"no fault line for the {kind} at {at:g} s (partition "
                                f"{start:g}-{end:g} s of the plan), though the machine ran until "
                                f"{last:.3f} s", "fault-plan")


@run_rule
def a_note_without_a_plan(ctx: Context) -> None:
    if _plan(ctx) is not None:
        return
    logs = ctx.views.values()
    if any(log.lines_of(e) for log in logs for e in ("drop", "fault", "pause")) or any(
            log.dup is not None or log.to_dup is not None for log in logs):
        ctx.notes.append("run.json has no fault plan: drops, duplicates, pauses and partitions "
                         "checked only against the logs themselves")


def delivered_across_a_cut(ctx: Context, log: MachineLog, sender: MachineLog,
                           sends: np.ndarray, recvs: np.ndarray) -> None:
    """A message sent across a partition's cut is dropped, not held until the heal
    (SPEC 6.3): none that was sent while its link was cut is handled."""
    plan = _plan(ctx)
    if plan is None or not plan.partitions or not len(recvs):
        return
    t = sender.ts[sends] - ctx.run.t0
    tol = ctx.tolerance
    cut = np.zeros(len(sends), bool)
    for p in plan.partitions:
        if p.cuts(sender.id, log.id):
            cut |= (t >= p.start + tol) & (t < p.end - tol)
    for k in ctx.each(log, "partition-delivered", cut):
        ctx.finding(log, log.line[recvs[k]], f"receive from {sender.id} of a message sent at "
                                             f"{float(t[k]):.3f} s, while the plan's partition cut "
                                             f"{sender.id} from {log.id} ({tolerance_text(ctx)}): "
                                             "it should have been dropped", "partition-delivered")
