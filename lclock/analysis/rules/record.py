"""Rules that hold run.json's account of the run to what the logs show: how each machine
ended (its reason and exit code), why the run ended, the message balance, and the faults
it says it applied. Every field run.json states is checked against the logs (here, or in
:mod:`lclock.analysis.rules.folder` for the stop-line figures and the status), so a record
that tells another story than the logs is never called consistent."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from lclock.analysis.rules import Context, run_rule
from lclock.analysis.timestamps import parse_ts_column, short

# The reasons run.json gives a machine that ended without a stop line (killed by a planned
# crash, unable to write its log, or failed by its program, SPEC 9.5); every other reason is
# a stop, which leaves a stop line.
NOT_STOPPED = (None, "crashed", "log_failed", "program_failed")
# run.json fault kinds and the log lines that show them (a partition's start and its heal
# are ``fault`` lines of that kind; a pause and a resume are lines of their own).
LINE_OF_KIND = {"partition": "fault", "heal": "fault", "pause": "pause", "resume": "resume"}


def _judged(ctx: Context) -> bool:
    """Whether the logs are whole enough to hold run.json to them: every machine's log is
    there, and the run is not still being written."""
    return len(ctx.views) >= ctx.run.n and ctx.run.status != "running"


@run_rule
def machines_ended_as_run_json_says(ctx: Context) -> None:
    """A machine whose log has no stop line did not stop: run.json cannot give it a graceful
    reason (``duration``, a signal: a stop) or, for a real process, exit code 0; one with a stop
    line that ran its whole duration exited with 0."""
    if "stop" in ctx.run.not_logged or ctx.run.status == "running":
        return
    # lclock vm: no launcher kills a vm at its planned crash; it ends itself, with 0
    vm_run = "machines_expected" in ctx.run.meta
    for mid, entry in ctx.run.facts.entries.items():
        log = ctx.views.get(mid)
        if log is None or log.unusable.size:
            continue
        reason, code = entry.get("reason"), entry.get("exit_code")
        process = isinstance(entry.get("pid"), int) and entry.get("pid") != 0
        if log.stop is None:
            if reason not in NOT_STOPPED:
                ctx.meta(f"machine {mid}: reason {short(reason)}, but its log has no stop line: "
                         "it never stopped (crashed or killed)", "meta-machine")
            if code == 0 and process and not (reason == "crashed" and vm_run):
                ctx.meta(f"machine {mid}: exit_code 0, but its log has no stop line: a process "
                         "that ends without stopping did not exit by itself", "meta-machine")
        elif log.stop.get("reason") == "duration" and isinstance(code, int) and code != 0:
            ctx.meta(f"machine {mid}: exit_code {code}, but its stop line ({log.path.name}:"
                     f"{log.stop_line}) says it ran its whole duration", "meta-machine")


@run_rule
def run_ended_as_its_machines(ctx: Context) -> None:
    """A run that says it completed (reason ``duration``) has every stop line say
    ``duration`` too: a machine stopped for another reason did not run the whole time."""
    meta = ctx.run.meta
    if meta.get("status") != "completed" or "stop" in ctx.run.not_logged:
        return
    for log in ctx.views.values():
        why = (log.stop or {}).get("reason")
        if log.stop is not None and why not in (None, "duration"):
            ctx.meta(f"status 'completed', but machine {log.id} stopped for {short(why)} "
                     f"({log.path.name}:{log.stop_line})", "meta-status")


@run_rule
def balance_is_recorded(ctx: Context) -> None:
    """Every run lclock makes (``run``, ``sim``, ``vm``, ``merge``) writes the messages'
    balance: a run.json of its own without one cannot say whether a message was lost. (An
    import has none, since a log need not show each message's fate, and another program's
    folder need not: they are not held to it.)"""
    meta, f = ctx.run.meta, ctx.run.facts
    own_run = f.lclock and meta.get("mode") != "import"
    if own_run and meta.get("status") not in (None, "running") and meta.get("messages") is None:
        ctx.meta("no messages balance (run.json messages is missing or null): whether a "
                 "message was lost cannot be told", "meta-messages")


def _applied(ctx: Context) -> list[dict[str, Any]] | None:
    """``faults.applied``, without the entries whose machine is no machine id (a list, a
    string, a bool: written by hand), which ``applied_faults_are_in_the_logs`` names."""
    faults = ctx.run.meta.get("faults")
    applied = faults.get("applied") if isinstance(faults, dict) else None
    if not isinstance(applied, list) or not all(isinstance(a, dict) for a in applied):
        return None
    return [a for a in applied if not _not_an_id(a)]


def _not_an_id(a: dict[str, Any]) -> bool:
    mid = a.get("machine")
    return mid is not None and (not isinstance(mid, int) or isinstance(mid, bool)
                                or not 0 < mid <= 1024)


def _logged_faults(ctx: Context) -> Counter[tuple[str, int | None]]:
    """(kind, machine) of each fault the logs show: a pause or resume per machine, each
    partition start or heal once (every machine logs it, with the same start and end)."""
    seen: Counter[tuple[str, int | None]] = Counter()
    spans: set[tuple[str, Any, Any]] = set()
    for log in ctx.views.values():
        until = ctx.until(log)
        for kind in ("pause", "resume"):
            seen[(kind, log.id)] += sum(1 for num, _ in log.lines_of(kind) if not until or num < until)
        for num, o in log.lines_of("fault"):
            if (not until or num < until) and o.get("kind") in ("partition", "heal"):
                spans.add((o["kind"], short(o.get("start")), short(o.get("end"))))
    for kind, _, _ in spans:
        seen[(kind, None)] += 1
    return seen


@run_rule
def applied_faults_are_in_the_logs(ctx: Context) -> None:
    """run.json ``faults.applied``: each partition, heal, pause and resume it lists has its
    line in the logs and each such line its entry; a machine it says crashed has no stop line."""
    applied = _applied(ctx)
    if applied is None or not _judged(ctx):
        return
    for i, a in enumerate(ctx.run.meta["faults"]["applied"]):
        if _not_an_id(a):
            ctx.meta(f"faults.applied[{i}]: machine {short(a.get('machine'))} is not a "
                     "machine id", "meta-faults")
    said: Counter[tuple[str, int | None]] = Counter()
    for a in applied:
        kind, mid = a.get("kind"), a.get("machine")
        if kind in ("pause", "resume"):
            said[(kind, mid)] += 1
        elif kind in ("partition", "heal"):
            said[(kind, None)] += 1
        elif kind == "crash" and mid in ctx.views and ctx.views[mid].stop is not None:
            log = ctx.views[mid]
            ctx.meta(f"faults.applied: a crash of machine {mid}, but its log ends with a stop "
                     f"line ({log.path.name}:{log.stop_line})", "meta-faults")
    seen = _logged_faults(ctx)
    for key in sorted(set(said) | set(seen), key=str):
        kind, mid = key
        if kind == "resume" and _resumed_to_stop(ctx, mid, said, seen):
            continue
        if said[key] != seen[key]:
            where = f" of machine {mid}" if mid is not None else ""
            ctx.meta(f"faults.applied lists {said[key]} {kind}(s){where}, but the logs show "
                     f"{seen[key]} ({LINE_OF_KIND[kind]} lines)", "meta-faults")


def _resumed_to_stop(ctx: Context, mid: int | None, said: Counter[tuple[str, int | None]],
                     seen: Counter[tuple[str, int | None]]) -> bool:
    """A machine paused when the run was stopped is resumed to stop: its log has one resume
    more than the plan applied (its last pause had none), and after it no tick, only its
    stop line."""
    log = ctx.views.get(mid) if mid is not None else None
    resumed = said[("resume", mid)]
    if log is None or log.stop is None or not (seen[("resume", mid)] == resumed + 1
                                               == said[("pause", mid)]):
        return False
    last = max(num for num, _ in log.lines_of("resume"))
    return not log.events or int(log.line[-1]) < last


def _log_span(ctx: Context) -> tuple[float, float] | None:
    """Epoch seconds of the first and the last line with a time, over every judged log."""
    lo, hi = np.inf, -np.inf
    for log in ctx.views.values():
        ts = log.ts[np.isfinite(log.ts)]
        extra = parse_ts_column([o.get("ts") for o in (log.start, log.stop) if o])
        every = np.concatenate([ts, extra[np.isfinite(extra)]])
        if every.size:
            lo, hi = min(lo, float(every.min())), max(hi, float(every.max()))
    return (lo, hi) if lo <= hi else None


@run_rule
def logs_within_started_and_ended(ctx: Context) -> None:
    """The logs fall between run.json's ``started_at`` and ``ended_at``: a run cannot log
    before it started or after it ended. (Held only where one host's clock wrote both: a
    cluster's vms and an import are not.)"""
    meta, f = ctx.run.meta, ctx.run.facts
    if not f.lclock or "machines_expected" in meta or meta.get("mode") == "import":
        return
    bounds = parse_ts_column([meta.get("started_at"), meta.get("ended_at")])
    span = _log_span(ctx) if _judged(ctx) else None
    if span is None:
        return
    if np.isfinite(bounds).all() and bounds[1] < bounds[0]:
        return  # ended before it started: the status rule says so, once
    tol = ctx.tolerance
    if np.isfinite(bounds[0]) and span[0] < bounds[0] - tol:
        ctx.meta(f"started_at {meta['started_at']}, but the logs begin "
                 f"{bounds[0] - span[0]:.6g} s earlier", "meta-time")
    if np.isfinite(bounds[1]) and span[1] > bounds[1] + tol:
        ctx.meta(f"ended_at {meta['ended_at']}, but the logs go on "
                 f"{span[1] - bounds[1]:.6g} s later", "meta-time")


@run_rule
def t0_is_the_logs(ctx: Context) -> None:
    """run.json's ``t0`` (and a simulated run's ``sim.epoch``, its virtual clock's start) is
    the start instant every machine was given, which each logs in its ``connected`` line: a
    record that moves it tells another story than the logs."""
    sim = ctx.run.meta.get("sim")
    said = {"t0": ctx.run.meta.get("t0"),
            "sim.epoch": sim.get("epoch") if isinstance(sim, dict) else None}
    logged = sorted({o["t0"] for log in ctx.run.machines.values()
                     if isinstance(o := log.firsts.get("connected") or {}, dict)
                     and isinstance(o.get("t0"), str)})
    for key, value in said.items():
        if not isinstance(value, str) or not logged:
            continue
        times = parse_ts_column([value, *logged])
        if np.isfinite(times).all() and not np.any(np.abs(times[1:] - times[0]) <= 1e-6):
            ctx.meta(f"{key} {short(value)}, but the connected lines say "
                     f"{short(', '.join(logged))}", "meta-time")


@run_rule
def applied_faults_at_their_instants(ctx: Context) -> None:
    """The instants ``faults.applied`` gives: in a simulated run each partition, heal, pause
    and resume is at the time of its lines (a real run's are the launcher's own readings,
    which a loaded host can delay past any tolerance: not held); in any run a crashed
    machine logs no event after its crash."""
    applied = _applied(ctx)
    if applied is None or not _judged(ctx):
        return
    for a in applied:
        kind, mid, at = a.get("kind"), a.get("machine"), a.get("at")
        if not isinstance(at, (int, float)) or isinstance(at, bool) or not math.isfinite(at):
            continue
        if kind == "crash" and mid in ctx.views:
            _crashed_at(ctx, mid, float(at))
            ts = ctx.views[mid].ts - ctx.run.t0
            ts = ts[np.isfinite(ts)]
            if ts.size and float(ts.max()) > at + ctx.tolerance:
                ctx.meta(f"faults.applied: machine {mid} crashed at {at:g} s, but its log goes "
                         f"on to {float(ts.max()):.6g} s", "meta-faults")
        elif kind in LINE_OF_KIND and ctx.run.facts.sim:
            _at_its_lines(ctx, kind, mid, float(at))


def _crashed_at(ctx: Context, mid: int, at: float) -> None:
    """The simulator's ``crashed_at`` of a machine is the instant its crash was applied."""
    said = ctx.run.facts.entries.get(mid, {}).get("crashed_at")
    if isinstance(said, (int, float)) and not isinstance(said, bool) \
            and not abs(said - at) <= ctx.tolerance:
        ctx.meta(f"machine {mid}: crashed_at {said:g} s, but faults.applied has its crash at "
                 f"{at:g} s", "meta-machine")


def _at_its_lines(ctx: Context, kind: str, mid: Any, at: float) -> None:
    """A simulated fault's instant is that of its lines: a pause or resume line of its
    machine, or a ``fault`` line of its kind (every machine logs one)."""
    from lclock.analysis.rules.faults import seconds

    own = kind in ("pause", "resume")
    logs = ([ctx.views[mid]] if mid in ctx.views else []) if own else list(ctx.views.values())
    lines = [(n, o) for log in logs for n, o in log.lines_of(LINE_OF_KIND[kind])
             if own or o.get("kind") == kind]
    t = seconds(ctx, lines)
    t = t[np.isfinite(t)]
    if t.size and not np.any(np.abs(t - at) <= ctx.tolerance):
        whose = f" of machine {mid}" if own else ""
        shown = ", ".join(f"{x:g}" for x in sorted(set(np.round(t, 6).tolist()))[:5])
        ctx.meta(f"faults.applied: a {kind}{whose} at {at:g} s, but its {LINE_OF_KIND[kind]} "
                 f"lines are at {shown} s", "meta-faults")
