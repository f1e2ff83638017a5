"""Rules that cross-check the parts of a run folder: run.json, the start and stop lines,
and the events, so that a folder whose parts disagree is never called consistent."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lclock.analysis.folder import STATUSES
from lclock.analysis.load import MachineLog
from lclock.analysis.rules import Context, machine_rule, run_rule
from lclock.analysis.timestamps import parse_ts_column, short
from lclock.lifecycle import EXIT_CODES
from lclock.runfolder import writer_gone

# What a run that declares a field or line ``not_logged`` in run.json (an import of text
# logs) cannot have checked: the rules about it are skipped, and one warning says so.
NOT_LOGGED_RULES = (("dice", "the dice and what they decide"),
                    ("queue_len", "one message per tick, and no dice on a waiting queue"),
                    ("start", "the start lines"),
                    ("stop", "the stop lines and conservation of messages at the stop"),
                    ("to", "the messages of sends without recipients (by channel order)"),
                    ("from", "the messages of receives without a sender (by channel order)"),
                    ("msg_lclock", "the receive rule where the message's clock is not logged "
                                   "(only L > previous L)"))

# The stop signals' reasons and the exit codes they give (129, 130, 143).
SIGNAL_CODES = {k: v for k, v in EXIT_CODES.items() if k.startswith("sig")}

# Per-machine figures run.json repeats from the stop line (the per-link counts as well: a
# run.json that moves a message from one link to another still adds up).
FROM_STOP = ("reason", "ticks", "lclock", "sent", "received", "unprocessed", "unprocessed_from",
             "max_queue", "undelivered", "sent_to", "taken_from", "dropped_to", "dup_to",
             "received_dups", "unprocessed_dups")


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, int) and not isinstance(v, bool) else None


@run_rule
def run_json_basics(ctx: Context) -> None:
    run, meta = ctx.run, ctx.run.meta
    if not meta:
        return
    schema = meta.get("schema")
    if schema != 1:
        ctx.meta(f"schema is {short(schema)}, this checker knows schema 1", "meta-schema")
    status = meta.get("status")
    if status is not None and status not in STATUSES:
        ctx.meta(f"unknown status {short(status)}", "meta-status", "warning")
    if status == "running":
        gone = writer_gone(meta)
        ctx.meta(f"status is still 'running', but {gone}" if gone else
                 "status is still 'running': the run is live or its launcher was killed",
                 "meta-status", "warning")
    if not run.machines:
        ctx.meta("no machine logs (machine-<id>.jsonl) in the folder", "meta-logs")
    _status_agrees(ctx, meta)
    f = run.facts
    if f.machines is not None:
        extra = [i for i in f.ids if i > f.machines]
        if extra:
            ctx.meta(f"machines[] names machine {short(extra)}, but settings.machines is "
                     f"{f.machines}", "meta-machines")
        if f.ids and len(f.ids) != f.machines and not meta.get("partial"):
            ctx.meta(f"machines[] lists {len(f.ids)} machine(s), but settings.machines is "
                     f"{f.machines}", "meta-machines")
        if f.fixed_rates is not None and len(f.fixed_rates) != f.machines:
            ctx.meta(f"settings.rates has {len(f.fixed_rates)} rates for {f.machines} machines",
                     "meta-machines")


def _status_agrees(ctx: Context, meta: dict[str, Any]) -> None:
    """status, exit_code, reason and the two instants tell one story (SPEC section 4 and the
    exit statuses of ``lclock run``): a run.json that says ``failed`` with exit code 0, or
    ``completed`` after a Ctrl-C, is not what any run wrote."""
    status, code, reason = meta.get("status"), _int(meta.get("exit_code")), meta.get("reason")
    signal = reason if isinstance(reason, str) and reason in SIGNAL_CODES else None
    said = f"status {short(status)} with exit_code {short(meta.get('exit_code'))}"
    if status == "completed" and code not in (None, 0):
        ctx.meta(f"{said}: a completed run exits with 0", "meta-status")
    elif status in ("failed", "interrupted") and code == 0:
        ctx.meta(f"{said}: exit code 0 is a completed run's", "meta-status")
    elif status == "interrupted" and code is not None and code not in SIGNAL_CODES.values():
        ctx.meta(f"{said}: an interrupted run exits with 130, 143 or 129", "meta-status")
    if signal is not None and status in ("completed", "failed"):
        ctx.meta(f"status {short(status)} with reason {signal!r}: a run a signal stopped is "
                 "interrupted", "meta-status")
    elif signal is not None and code is not None and status == "interrupted" \
            and code != SIGNAL_CODES[signal]:
        ctx.meta(f"reason {signal!r} with exit_code {code}: {signal} exits with "
                 f"{SIGNAL_CODES[signal]}", "meta-status")
    started, ended = meta.get("started_at"), meta.get("ended_at")
    if isinstance(started, str) and isinstance(ended, str):
        t = parse_ts_column([started, ended])
        if np.isfinite(t).all() and t[1] < t[0]:
            ctx.meta(f"ended_at {ended} is before started_at {started}", "meta-status")


@run_rule
def not_logged_is_not_checked(ctx: Context) -> None:
    """One warning for what run.json says the logs do not have: the rules about it are
    skipped (each rule asks ``ctx.run.not_logged``)."""
    nl = ctx.run.not_logged
    if nl:
        skipped = [why for key, why in NOT_LOGGED_RULES if key in nl]
        ctx.meta(f"not_logged: {', '.join(sorted(nl))}: not checked: {'; '.join(skipped)}",
                 "meta-not-logged", "warning")


@run_rule
def run_json_machines_agree(ctx: Context) -> None:
    """run.json's per-machine figures are the stop line's (or, without one, the log's)."""
    from lclock.analysis.rules.lines import link_counts

    for mid, entry in ctx.run.facts.entries.items():
        log = ctx.views.get(mid)
        if log is None:
            continue
        stop = log.stop or {}
        if log.stop is None and not log.unusable.size:  # a crashed machine: from its log
            _crashed_counts(ctx, mid, entry, link_counts(ctx, log, unprocessed_from={}))
        for key in FROM_STOP:
            if key in entry and key in stop and entry[key] is not None \
                    and _nonzero(entry[key]) != _nonzero(stop[key]):
                ctx.meta(f"machine {mid}: {key} {short(entry[key])}, but its stop line "
                         f"({log.path.name}:{log.stop_line}) says {short(stop[key])}",
                         "meta-machine")
        for key, actual in (("ticks", log.tick), ("lclock", log.lclock)):
            v = _int(entry.get(key))
            if v is not None and key not in stop and log.events and v != int(actual[-1]):
                ctx.meta(f"machine {mid}: {key} {v} but its log ends at {key} "
                         f"{int(actual[-1])}", "meta-machine")


def _nonzero(v: Any) -> Any:
    """A per-link count as both sides write it: ids as strings, links of 0 left out."""
    return {str(k): x for k, x in v.items() if x != 0} if isinstance(v, dict) else v


def _crashed_counts(ctx: Context, mid: int, entry: dict[str, Any], want: dict[str, Any]) -> None:
    """A crashed machine's counts are its log's (the launcher counts them from it): the
    messages it sent and handled, per link and in all."""
    want = {**want, "sent": sum(want["sent_to"].values()),
            "received": sum(want["taken_from"].values())}
    for key in ("sent_to", "dropped_to", "dup_to", "taken_from", "sent", "received"):
        got = entry.get(key)
        if isinstance(got, dict) and _nonzero(got) != want[key] \
                or _int(got) is not None and got != want[key]:
            ctx.meta(f"machine {mid}: {key} {short(got)}, but its log shows "
                     f"{short(want[key])}", "meta-machine")


@run_rule
def message_balance(ctx: Context) -> None:
    """run.json ``messages`` (the launcher's balance): its sent and dropped are the logs',
    it adds up (sent + duplicates = taken in + dropped + lost + lost in a planned crash),
    and a completed run lost none."""
    bal = ctx.run.meta.get("messages")
    if not isinstance(bal, dict):
        return
    # dropped, duplicated and lost_in_crash are left out when there were none
    v = {k: _int(bal.get(k, 0 if k in ("dropped", "lost_in_crash") else None))
         for k in ("sent", "taken", "lost", "dropped", "lost_in_crash")}
    logs = list(ctx.views.values())
    if any(log.unusable.size for log in logs) or len(logs) < ctx.run.n:
        return
    drops = sum(len(log.lines_of("drop")) for log in logs)
    seen = {"sent": sum(len(log.to_ids) for log in logs), "dropped": drops}
    dups = sum(int(log.to_dup.sum()) for log in logs if log.to_dup is not None)
    if "duplicated" in bal:
        seen["duplicated"] = dups
        v["duplicated"] = _int(bal.get("duplicated"))
    for key, actual in seen.items():
        if v[key] is not None and v[key] != actual:
            ctx.meta(f"messages.{key} is {v[key]}, but the logs show {actual}", "meta-messages")
    if None not in v.values():
        ins = v["sent"] + dups  # type: ignore[operator]
        outs = v["taken"] + v["dropped"] + v["lost"] + v["lost_in_crash"]  # type: ignore[operator]
        if ins != outs:
            ctx.meta(f"messages do not add up: sent {v['sent']} + {dups} duplicated = {ins}, but "
                     f"taken {v['taken']} + dropped {v['dropped']} + lost {v['lost']} + lost in a "
                     f"crash {v['lost_in_crash']} = {outs}", "meta-messages")
    if v["lost"] and ctx.run.status == "completed":
        ctx.meta(f"messages.lost is {v['lost']}, yet the run says completed: a lost message "
                 "must fail the run", "meta-messages")


@machine_rule
def start_and_stop_lines(ctx: Context, log: MachineLog) -> None:
    if log.start is None and "start" not in ctx.run.not_logged:
        ctx.finding(log, 0, "no start line", "start-missing", "warning")
    crash = ctx.run.facts.crashed.get(log.id)
    if log.stop is None and crash is not None:
        ctx.notes.append(f"machine {log.id} crashed as planned at {crash:g} s: no stop line, and "
                         "the messages it held were lost with it (SPEC 6.6)")
    elif log.stop is None and "stop" not in ctx.run.not_logged:
        ctx.finding(log, 0, f"no stop line: machine {log.id} did not stop gracefully (crashed or "
                            f"killed; run status {ctx.run.status!r}); its messages cannot be "
                            "accounted for", "stop-missing")
    if not log.events:
        ctx.finding(log, 0, "no tick events in this log", "empty",
                    "warning" if log.stop else "error")


@machine_rule
def one_run_per_log(ctx: Context, log: MachineLog) -> None:
    """One start line first, one stop line last, and no tick events outside them."""
    full = ctx.run.machines[log.id]
    until = ctx.until(log)  # a second start line ends what is judged (0: nothing does)
    starts = [num for num, _ in full.lines_of("start")]
    stops = [num for num, _ in full.lines_of("stop") if not until or num < until]
    if len(starts) > 1:
        ctx.finding(log, starts[1], f"a second start line (the first is line {starts[0]}): the "
                                    "log holds another run of this machine from here on, which is "
                                    "not checked", "second-start")
    for num in stops[1:]:
        ctx.finding(log, num, f"a second stop line (the first is line {stops[0]})", "second-stop")
    if log.stop_line:
        after = full.line[(full.line > log.stop_line) & ((full.line < until) if until else True)]
        if after.size:
            ctx.finding(log, int(after[0]), f"tick event after the stop line (line "
                                            f"{log.stop_line}): a machine does nothing after it "
                                            "stops", "after-stop", count=int(after.size))
    if log.start_line and log.events:
        before = log.line[log.line < log.start_line]
        if before.size:
            ctx.finding(log, int(before[0]), f"tick event before the start line (line "
                                             f"{log.start_line})", "before-start",
                        count=int(before.size))


@machine_rule
def start_agrees_with_run_json(ctx: Context, log: MachineLog) -> None:
    """The start line states the machine's rate, the seed and the settings run.json has."""
    start = log.start
    f = ctx.run.facts
    if not start:
        return
    n = ctx.run.n
    said = {"rate": f.rates.get(log.id), "seed": f.seed, "machines": f.machines,
            "dice_sides": f.dice_sides, "vector_clocks": f.vector_clocks}
    for key, want in said.items():
        got = start.get(key)
        if want is not None and key in start and got != want:
            ctx.finding(log, log.start_line, f"start: {key} {short(got)}, but run.json says "
                                             f"{short(want)}", "start-meta")
    if n >= 2:
        for key, want in (("peer_a", log.id % n + 1), ("peer_b", (log.id - 2) % n + 1)):
            if key in start and start[key] != want:
                ctx.finding(log, log.start_line, f"start: {key} {short(start[key])}, but in a ring "
                                                 f"of {n} machine {log.id}'s {key} is {want}",
                            "start-meta")


@run_rule
def vector_clocks_everywhere(ctx: Context) -> None:
    """In a run with vector clocks every machine keeps them."""
    logs = [ctx.views[i] for i in ctx.run.ids if ctx.views[i].events]
    with_vc = [log for log in logs if log.vclock is not None]
    said = ctx.run.facts.vector_clocks
    if said is False:
        for log in with_vc:
            ctx.finding(log, 0, "vector clocks logged, but run.json settings say "
                                "vector_clocks = false", "vclock-unexpected", "warning")
        return
    if said or with_vc:
        why = "run.json settings say vector_clocks = true" if said else "the other machines have them"
        for log in logs:
            if log.vclock is None:
                ctx.finding(log, int(log.line[0]), f"no vector clocks in this log, but {why}",
                            "no-vclock")


def expected_ticks(rate: int, duration: float) -> int:
    """How many ticks a machine runs in a whole run: tick k is due at (k-1)/rate < duration."""
    return max(1, math.ceil(rate * duration - 1e-9))


@run_rule
def ticks_match_rate_and_duration(ctx: Context) -> None:
    """A machine of a completed run ran rate x duration ticks (less those skipped while
    paused); never more, and fewer only when the run or the machine stopped early."""
    f = ctx.run.facts
    if f.duration is None:
        return
    for mid in ctx.run.ids:
        log = ctx.views[mid]
        rate = f.rates.get(mid)
        if rate is None:
            continue
        skipped = sum(_int(o.get("skipped")) or 0 for _, o in log.lines_of("resume"))
        want = expected_ticks(rate, f.duration) - skipped
        got = int(log.tick[-1]) if log.events else 0
        reason = (log.stop or {}).get("reason")
        whole = ctx.run.status == "completed" and log.stop is not None and reason in (None, "duration")
        if got > want or (got < want and whole):
            line = int(log.line[-1]) if log.events else 0
            ctx.finding(log, line, f"{got} ticks, but rate {rate} for {f.duration:g} s makes "
                                   f"{want}" + (f" ({skipped} skipped while paused)" if skipped else "")
                        + ("" if got > want else f" in a {ctx.run.status} run"), "tick-count")


@run_rule
def run_ids_agree(ctx: Context) -> None:
    """Without run.json, every machine's log must still be of one run."""
    if ctx.run.facts.run_id is not None:
        return
    ids = {mid: log.run_id for mid, log in ctx.run.machines.items() if log.run_id}
    if len(set(ids.values())) > 1:
        first = ctx.run.ids[0]
        for mid, rid in ids.items():
            if rid != ids.get(first):
                log = ctx.views[mid]
                ctx.finding(log, log.start_line, f"run_id {short(rid)}, but machine {first}'s log "
                                                 f"is of run {short(ids.get(first))}",
                            "other-run-start")
