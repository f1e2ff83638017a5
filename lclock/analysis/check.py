"""The checker: verify a run folder against the model's rules, trusting only the logs.

Every rule is checked locally against the previous *logged* state, never against a
re-simulation, so one mistake gives one finding instead of an avalanche, and a folder that
another program wrote is judged by the same rules as our own. The local rules are
vectorised with numpy so a million-event run is checked in seconds; only findings become
Python objects. Findings name ``file:line``; where a known mistake of the exercise
(DESIGN.md) explains the symptom, the finding says so.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lclock.analysis.load import (
    KIND_INTERNAL,
    KIND_NAMES,
    KIND_RECEIVE,
    KIND_SEND,
    Issue,
    MachineLog,
    Run,
    load_run,
)

DEFAULT_DICE_SIDES = 10
# Timing tolerance: a machine's ticks may run late by this much before it is a finding.
LATE_TOLERANCE_S = 0.5
LATE_TOLERANCE_FRACTION = 0.05
EARLY_TOLERANCE_S = 0.05
# The "largest face never seen" warning needs the chance of that by luck below this.
DICE_LUCK = 1e-6
# What a run that declares a field or line ``not_logged`` in run.json (an import of text
# logs) cannot have checked: the rules are skipped, and one warning says so.
NOT_LOGGED_RULES = (("dice", "the dice and what they decide"),
                    ("queue_len", "one message per tick, and no dice on a waiting queue"),
                    ("start", "the start lines"),
                    ("stop", "the stop lines and conservation of messages at the stop"))


@dataclass
class CheckResult:
    """All findings of one run, and what was checked (for the closing line)."""

    run: Run | None
    findings: list[Issue] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> list[Issue]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [f for f in self.findings if f.severity != "error"]

    @property
    def ok(self) -> bool:
        return not self.errors


class _Sink:
    """Collects findings; ``cap`` limits how many of one kind per file are kept in full."""

    def __init__(self, cap: int | None) -> None:
        self.cap = cap
        self.items: list[Issue] = []
        self.per_kind: dict[tuple[str, str], int] = defaultdict(int)

    def add(self, file: str, line: int, text: str, kind: str, severity: str = "error") -> None:
        key = (file, kind)
        self.per_kind[key] += 1
        if self.cap is None or self.per_kind[key] <= self.cap:
            self.items.append(Issue(file, int(line), text, severity))

    def close(self) -> list[Issue]:
        out = list(self.items)
        if self.cap is not None:
            for (file, kind), n in self.per_kind.items():
                if n > self.cap:
                    out.append(Issue(file, 0, f"... and {n - self.cap} more findings of the kind "
                                              f"'{kind}' (use --all to list every one)", "error"))
        return out


def check_run(run_dir: Path | str, cap: int | None = 20) -> CheckResult:
    """Check a run folder. Raises ``RunFolderError`` only if it is not a run folder at all."""
    run = load_run(run_dir, strict=True)
    sink = _Sink(cap)
    for issue in run.issues:
        sink.add(issue.file, issue.line, issue.text, "schema:" + issue.text.split(":")[0][:30],
                 issue.severity)
    _check_meta(run, sink)
    n = run.n
    sends: dict[int, _Sends] = {mid: _Sends(log) for mid, log in run.machines.items()}
    for log in run.machines.values():
        _check_machine(run, log, n, sink)
    _check_messages(run, sends, sink)
    _check_timing(run, sink)
    _check_dice_luck(run, sink)
    findings = sink.close()
    findings.sort(key=lambda f: (f.file != "run.json", f.file, f.text.startswith("... and"), f.line))
    counts = {
        "machines": len(run.machines),
        "events": run.events,
        "messages": int(sum(s.total for s in sends.values())),
    }
    return CheckResult(run, findings, counts)


# ---------------------------------------------------------------- run.json


def _check_meta(run: Run, sink: _Sink) -> None:
    meta = run.meta
    if not meta:
        return
    schema = meta.get("schema")
    if schema != 1:
        sink.add("run.json", 0, f"schema is {schema!r}, this checker knows schema 1", "meta")
    status = meta.get("status")
    if status not in ("completed", "interrupted", "failed", "running", None):
        sink.add("run.json", 0, f"unknown status {status!r}", "meta", "warning")
    if status == "running":
        sink.add("run.json", 0, "status is still 'running': the run is live or its launcher "
                                "was killed", "meta", "warning")
    if not run.machines:
        sink.add("run.json", 0, "no machine logs (machine-<id>.jsonl) in the folder", "meta")
    if run.not_logged:
        skipped = [why for key, why in NOT_LOGGED_RULES if key in run.not_logged]
        sink.add("run.json", 0, f"not_logged: {', '.join(sorted(run.not_logged))}: not checked: "
                                f"{'; '.join(skipped) or 'nothing'}", "meta", "warning")
    ms = meta.get("machines")
    if isinstance(ms, list):
        for m in ms:
            if not isinstance(m, dict) or not isinstance(m.get("id"), int):
                continue
            log = run.machines.get(m["id"])
            if log is None:
                continue
            t = m.get("ticks")
            if isinstance(t, int) and log.events and t != int(log.tick[-1]):
                sink.add("run.json", 0, f"machine {m['id']}: ticks {t} but its log ends at tick "
                                        f"{int(log.tick[-1])}", "meta")
            c = m.get("lclock")
            if isinstance(c, int) and log.events and c != int(log.lclock[-1]):
                sink.add("run.json", 0, f"machine {m['id']}: lclock {c} but its log ends at "
                                        f"lclock {int(log.lclock[-1])}", "meta")


# ---------------------------------------------------------------- one machine


def _lines(log: MachineLog, idx: np.ndarray) -> list[int]:
    return [int(x) for x in log.line[idx]]


def _check_machine(run: Run, log: MachineLog, n: int, sink: _Sink) -> None:
    f = log.path.name
    me = log.id
    E = log.events
    if E == 0:
        sink.add(f, 0, "no tick events in this log", "empty", "warning" if log.stop else "error")
    # --- start/stop lines
    if log.start is None and "start" not in run.not_logged:
        sink.add(f, 0, "no start line", "start", "warning")
    if log.stop is None and "stop" not in run.not_logged:
        sink.add(f, 0, f"no stop line: machine {me} did not stop gracefully (crashed or killed; "
                       f"run status {run.status!r}); its messages cannot be accounted for",
                 "stop")
    elif log.stop is not None:
        _check_stop(log, sink)
    for num, o in log.notable[:20]:
        what = o.get("message") or o.get("error") or o.get("reason") or ""
        sink.add(f, num, f"the machine logged {o.get('level')} '{o.get('event')}'"
                         + (f": {str(what)[:120]}" if what else ""), "logged", "warning")
    if E == 0:
        return
    tick, L, kind, q = log.tick, log.lclock, log.kind, log.qlen
    # --- ticks: 1, 2, 3, ... without gaps
    if tick[0] != 1:
        sink.add(f, log.line[0], f"first tick is {int(tick[0])}, not 1", "tick")
    d = np.diff(tick)
    for k in np.flatnonzero(d == 0):
        sink.add(f, log.line[k + 1],
                 f"tick {int(tick[k + 1])} logged a second event: one tick does exactly one thing "
                 "(whole queue handled in one tick, or one send logged as two events?)", "tick-repeat")
    for k in np.flatnonzero(d > 1):
        sink.add(f, log.line[k + 1], f"ticks jump from {int(tick[k])} to {int(tick[k + 1])}: "
                                     f"{int(d[k]) - 1} tick(s) missing", "tick-gap")
    for k in np.flatnonzero(d < 0):
        sink.add(f, log.line[k + 1], f"tick goes back from {int(tick[k])} to {int(tick[k + 1])}",
                 "tick-back")
    # --- Lamport clock, against the previous logged value
    prev = np.concatenate(([0], L[:-1]))
    recv = kind == KIND_RECEIVE
    exp = np.where(recv, np.maximum(prev, log.msg) + 1, prev + 1)
    for k in np.flatnonzero(exp != L):
        k = int(k)
        ev = KIND_NAMES[int(kind[k])]
        got, want, p = int(L[k]), int(exp[k]), int(prev[k])
        hint = ""
        if recv[k] and got == want - 1:
            hint = " (receive without the +1: L = max(L, m) + 1)"
        elif kind[k] == KIND_SEND:
            nto = int(log.to_ptr[k + 1] - log.to_ptr[k])
            if nto > 1 and got == p + nto:
                hint = f" (incremented once per recipient: a send to {nto} peers is one event, +1)"
            elif got > want:
                hint = " (incremented more than once)"
        elif got == p:
            hint = " (no increment)"
        rule = "max(L, msg_lclock) + 1" if recv[k] else "L + 1"
        sink.add(f, log.line[k], f"{ev}: lclock {got}, expected {want} = {rule} "
                                 f"(previous {p}{', message ' + str(int(log.msg[k])) if recv[k] else ''})"
                                 f"{hint}", "lamport")
    # --- C(send) < C(receive), explicitly
    for k in np.flatnonzero(recv & (log.msg >= L)):
        sink.add(f, log.line[k], f"receive: C(send) = {int(log.msg[k])} is not less than "
                                 f"C(receive) = {int(L[k])}", "lamport-order")
    # --- queue: one message per tick, and the dice only on an empty queue
    qprev = np.concatenate(([0], q[:-1]))
    if "queue_len" in run.not_logged:
        qprev = q = np.zeros_like(q)
    for k in np.flatnonzero(q < qprev - 1):
        sink.add(f, log.line[k], f"queue went from {int(qprev[k])} to {int(q[k])} in one tick: only "
                                 "one message may be handled per tick (whole queue handled at once?)",
                 "queue-drain")
    for k in np.flatnonzero((qprev > 0) & ~recv):
        sink.add(f, log.line[k], f"{KIND_NAMES[int(kind[k])]} although {int(qprev[k])} message(s) "
                                 "were waiting: a tick with a non-empty queue must handle a message",
                 "queue-skip")
    # --- dice and what they decide
    sides = run.dice_sides or DEFAULT_DICE_SIDES
    src = "run.json settings" if run.dice_sides else "the default; run.json gives none"
    rolled = (kind != KIND_RECEIVE) & ("dice" not in run.not_logged)
    dice = log.dice
    for k in np.flatnonzero(rolled & ((dice < 1) | (dice > sides))):
        sink.add(f, log.line[k], f"dice {int(dice[k])} outside 1..{sides} ({src})", "dice-range")
    for k in np.flatnonzero(recv & (dice != 0)):
        sink.add(f, log.line[k], "receive carries a dice roll: no dice are rolled on a receive",
                 "dice-receive")
    if n >= 2:
        peer_a, peer_b = me % n + 1, (me - 2) % n + 1
        everyone = [i for i in range(1, n + 1) if i != me]
        ok_range = rolled & (dice >= 1) & (dice <= sides)
        for k in np.flatnonzero(ok_range & (dice > 3) & (kind != KIND_INTERNAL)):
            sink.add(f, log.line[k], f"dice {int(dice[k])} must give an internal event, not "
                                     f"{KIND_NAMES[int(kind[k])]}", "dice-event")
        for k in np.flatnonzero(ok_range & (dice <= 3) & (kind != KIND_SEND)):
            sink.add(f, log.line[k], f"dice {int(dice[k])} must give a send, not "
                                     f"{KIND_NAMES[int(kind[k])]}", "dice-event")
        for k in np.flatnonzero(ok_range & (dice <= 3) & (kind == KIND_SEND)):
            to = log.recipients(int(k))
            dv = int(dice[k])
            want = [peer_a] if dv == 1 else [peer_b] if dv == 2 else everyone
            if sorted(to) != sorted(want):
                what = {1: "peer A (next in the ring)", 2: "peer B (previous in the ring)",
                        3: "every peer"}[dv]
                sink.add(f, log.line[k], f"dice {dv} sends to {what} = {want}, but to = {to}"
                         + (" (a send to every peer logged as separate events?)" if dv == 3 else ""),
                         "dice-to")
    # --- vector clock, against the previous logged vector (receive part in _check_messages)
    if log.vclock is not None:
        V = log.vclock
        own = V[:, me - 1]
        missing = np.any(V < 0, axis=1)
        counts = np.arange(1, E + 1)
        for k in np.flatnonzero(~missing & (own != tick) & (own != counts)):
            sink.add(f, log.line[k], f"vclock own entry {int(own[k])} should count this machine's "
                                     f"events ({int(counts[k])})", "vector")
        Vprev = np.vstack([np.zeros((1, V.shape[1]), V.dtype), V[:-1]])
        okprev = ~np.concatenate(([False], missing[:-1]))
        expV = Vprev.copy()
        expV[:, me - 1] += 1
        bad = ~missing & okprev & ~recv & np.any(expV != V, axis=1)
        for k in np.flatnonzero(bad):
            sink.add(f, log.line[k], f"{KIND_NAMES[int(kind[k])]}: vclock {V[k].tolist()}, expected "
                                     f"{expV[k].tolist()} (own entry +1, the rest unchanged)", "vector")
        bad = ~missing & okprev & recv & np.any(Vprev > V, axis=1)
        for k in np.flatnonzero(bad):
            sink.add(f, log.line[k], f"receive: vclock {V[k].tolist()} went below the previous "
                                     f"{Vprev[k].tolist()}", "vector")


def _check_stop(log: MachineLog, sink: _Sink) -> None:
    stop = log.stop or {}
    f = log.path.name
    line = log.stop_line
    for key in ("reason", "ticks", "lclock", "sent", "received", "unprocessed"):
        if key not in stop:
            sink.add(f, line, f"stop: missing {key}", "stop-field")
    E = log.events

    def cmp(key: str, actual: int, what: str) -> None:
        v = stop.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and v != actual:
            sink.add(f, line, f"stop: {key} = {v}, but the log shows {actual} {what}", "stop-field")

    if E:
        cmp("ticks", int(log.tick[-1]), "ticks")
        cmp("lclock", int(log.lclock[-1]), "as the last clock value")
    else:
        cmp("ticks", 0, "ticks")
    cmp("sent", int(len(log.to_ids)), "messages sent (counting every recipient)")
    cmp("received", int(np.count_nonzero(log.kind == KIND_RECEIVE)), "receive events")


# ---------------------------------------------------------------- messages


class _Sends:
    """One machine's sends, flattened to one row per (send event, recipient)."""

    def __init__(self, log: MachineLog) -> None:
        self.log = log
        isd = np.flatnonzero(log.kind == KIND_SEND)
        counts = (log.to_ptr[1:] - log.to_ptr[:-1])[isd]
        self.event = np.repeat(isd, counts)  # index of the send event
        self.to = log.to_ids.copy() if len(self.event) == len(log.to_ids) else np.zeros(0, np.int64)
        self.lclock = log.lclock[self.event]
        self.total = len(self.event)


def _check_messages(run: Run, sends: dict[int, _Sends], sink: _Sink) -> None:
    n = run.n
    for j, log in run.machines.items():
        f = log.path.name
        recv_idx = np.flatnonzero(log.kind == KIND_RECEIVE)
        senders = np.unique(log.frm[recv_idx]) if len(recv_idx) else np.zeros(0, np.int64)
        all_senders = sorted(set(int(s) for s in senders) | {s for s in run.machines if s != j})
        unproc_from = (log.stop or {}).get("unprocessed_from")
        unproc_from = unproc_from if isinstance(unproc_from, dict) else None
        deficit_total = 0
        for s in all_senders:
            sl = sends.get(s)
            rk = recv_idx[log.frm[recv_idx] == s]
            if sl is None:
                if len(rk) and s <= n:
                    sink.add(f, log.line[rk[0]], f"receives from machine {s}, whose log is missing: "
                                                 "cannot match them", "match")
                continue
            ch = np.flatnonzero(sl.to == j)  # rows of s's sends to j, in send order
            ch_l = sl.lclock[ch]
            c = log.msg[rk]
            order = np.argsort(ch_l, kind="stable")
            pos = np.searchsorted(ch_l[order], c)
            pos_c = np.minimum(pos, max(len(ch_l) - 1, 0))
            found = (pos < len(ch_l)) & (ch_l[order][pos_c] == c) if len(ch_l) else np.zeros(len(c), bool)
            matched_row = np.where(found, order[pos_c] if len(ch_l) else 0, -1)
            for k in np.flatnonzero(~found):
                ci = int(c[k])
                hint = ""
                if len(ch_l) and np.any(ch_l == ci + 1):
                    hint = (f" (machine {s} logged a send with lclock {ci + 1}: the message carried "
                            "the clock before the increment?)")
                sink.add(f, log.line[rk[k]], f"receive from {s} with msg_lclock {ci} matches no send "
                                             f"of machine {s} to {j}{hint}", "match")
            mr = matched_row[found]
            rkf = rk[found]
            # each message handled at most once
            uniq, first, cnt = np.unique(mr, return_index=True, return_counts=True)
            for u, cn in zip(uniq[cnt > 1], cnt[cnt > 1], strict=True):
                dup = rkf[mr == u][1:]
                for k in dup:
                    sink.add(f, log.line[k], f"message from {s} with lclock {int(ch_l[u])} handled "
                                             f"{int(cn)} times", "duplicate")
            # FIFO: handled in the order sent
            if len(mr) > 1:
                back = np.flatnonzero(np.diff(mr) < 0)
                for k in back:
                    sink.add(f, log.line[rkf[k + 1]], f"FIFO broken on channel {s}->{j}: message "
                                                      f"lclock {int(ch_l[mr[k + 1]])} handled after "
                                                      f"lclock {int(ch_l[mr[k]])}", "fifo")
            # lost in the middle: a message never handled though later ones on the channel were
            handled = np.zeros(len(ch), bool)
            handled[mr] = True
            if handled.any():
                last = int(np.flatnonzero(handled)[-1])
                lost = np.flatnonzero(~handled[:last])
                slog = sl.log
                for r in lost:
                    ev = int(sl.event[ch[r]])
                    sink.add(slog.path.name, slog.line[ev],
                             f"message to {j} (lclock {int(ch_l[r])}) was never handled by {j}, "
                             "though later messages on the channel were: lost", "lost")
            # V(send) < V(receive), and the receive rule with the message's vector
            if log.vclock is not None and sl.log.vclock is not None and len(mr):
                Vs = sl.log.vclock[sl.event[ch[mr]]]
                Vr = log.vclock[rkf]
                ok = np.all(Vr >= 0, axis=1) & np.all(Vs >= 0, axis=1)
                bad = ok & ~(np.all(Vs <= Vr, axis=1) & np.any(Vs < Vr, axis=1))
                for k in np.flatnonzero(bad):
                    sink.add(f, log.line[rkf[k]], f"V(send) {Vs[k].tolist()} is not below "
                                                  f"V(receive) {Vr[k].tolist()}", "vector-order")
                prevk = rkf - 1
                Vp = np.where((prevk >= 0)[:, None], log.vclock[np.maximum(prevk, 0)], 0)
                expV = np.maximum(Vp, Vs)
                expV[:, j - 1] += 1
                bad = ok & np.all(Vp >= 0, axis=1) & np.any(Vr != expV, axis=1)
                for k in np.flatnonzero(bad):
                    sink.add(f, log.line[rkf[k]], f"receive: vclock {Vr[k].tolist()}, expected "
                                                  f"{expV[k].tolist()} (element-wise max with the "
                                                  "message's vector, then own entry +1)", "vector")
            # conservation, per channel, at a graceful stop
            if log.stop is not None:
                sent_n = len(ch)
                recv_n = len(rk)
                left = sent_n - recv_n
                if unproc_from is not None:
                    u = unproc_from.get(str(s), unproc_from.get(s, 0))  # type: ignore[call-overload]
                    if isinstance(u, int) and left != u:
                        sink.add(f, log.stop_line, f"conservation broken on channel {s}->{j}: {s} sent "
                                                   f"{sent_n}, {j} handled {recv_n} and left {u} "
                                                   f"unprocessed: {left - u:+d} message(s) "
                                                   f"{'lost' if left > u else 'from nowhere'}",
                                 "conservation")
                deficit_total += left
        if log.stop is not None and unproc_from is None:
            u = log.stop.get("unprocessed")
            missing_logs = any(s not in run.machines for s in range(1, n + 1) if s != j)
            if isinstance(u, int) and not missing_logs and deficit_total != u:
                sink.add(f, log.stop_line, f"conservation broken: peers sent {j} messages of which "
                                           f"{deficit_total} were not handled, but stop says "
                                           f"unprocessed = {u}: {deficit_total - u:+d} message(s) "
                                           f"{'lost' if deficit_total > u else 'from nowhere'}",
                         "conservation")


# ---------------------------------------------------------------- timing and dice luck


def _meta_rates(run: Run) -> dict[int, int]:
    """Rates given by run.json only (the timing rule is applied only when it states them)."""
    out: dict[int, int] = {}
    ms = run.meta.get("machines")
    if isinstance(ms, list):
        for m in ms:
            if (isinstance(m, dict) and isinstance(m.get("id"), int)
                    and isinstance(m.get("rate"), int) and m["rate"] > 0):
                out[m["id"]] = m["rate"]
    s = run.meta.get("settings")
    if isinstance(s, dict) and isinstance(s.get("rates"), list):
        for k, r in enumerate(s["rates"], 1):
            if isinstance(r, int) and r > 0:
                out.setdefault(k, r)
    return out


def _check_timing(run: Run, sink: _Sink) -> None:
    rates = _meta_rates(run)
    for mid, log in run.machines.items():
        f = log.path.name
        ts = log.ts
        bad = ~np.isfinite(ts)
        if log.events > 1:
            dt = np.diff(ts)
            for k in np.flatnonzero(dt < -0.001):
                sink.add(f, log.line[k + 1], f"ts goes back {-float(dt[k]):.3f} s from the previous "
                                             "event", "ts-back", "warning")
        r = rates.get(mid)
        if not r or log.events < 2 or bad.all():
            continue
        due = run.t0 + (log.tick - 1) / r
        late = ts - due
        fin = np.flatnonzero(~bad)
        tail = fin[-max(1, len(fin) // 10):]
        elapsed = float(ts[fin[-1]] - run.t0)
        tol = max(LATE_TOLERANCE_S, LATE_TOLERANCE_FRACTION * elapsed)
        med = float(np.median(late[tail]))
        if med > tol:
            k = int(tail[-1])
            achieved = (log.events - 1) / max(float(ts[fin[-1]] - ts[fin[0]]), 1e-9)
            sink.add(f, log.line[k], f"ticks fall behind the rate: tick {int(log.tick[k])} ran "
                                     f"{float(late[k]):.2f} s after its deadline t0 + (k-1)/{r} "
                                     f"(achieved {achieved:.2f} ticks/s for rate {r}; sleeping "
                                     "1/rate after the work drifts)", "timing")
        early = np.flatnonzero(late < -EARLY_TOLERANCE_S)
        if len(early):
            k = int(early[0])
            sink.add(f, log.line[k], f"tick {int(log.tick[k])} ran {-float(late[k]):.3f} s before "
                                     f"its deadline t0 + (k-1)/{r} ({len(early)} early tick(s))",
                     "timing")


def _check_dice_luck(run: Run, sink: _Sink) -> None:
    """A fair die shows every face eventually: a face never seen in many rolls is a bug."""
    sides = run.dice_sides
    if not sides or "dice" in run.not_logged:
        return
    rolls = [log.dice[log.kind != KIND_RECEIVE] for log in run.machines.values()]
    allr = np.concatenate(rolls) if rolls else np.zeros(0, np.int64)
    nr = len(allr)
    if nr == 0:
        return
    p_face = 1.0 / sides
    p_never = math.exp(nr * math.log1p(-p_face)) if p_face < 1 else 0.0
    if p_never >= DICE_LUCK:
        return
    target = run.ids[0]
    for face in (sides, 1):
        if not np.any(allr == face):
            sink.add(run.machines[target].path.name, 0,
                     f"dice never showed {face} in {nr} rolls (chance {p_never:.1e} for a fair "
                     f"1..{sides} die): the range looks like "
                     f"{'1..' + str(sides - 1) if face == sides else '2..' + str(sides)}",
                     "dice-luck", "warning")


def format_findings(result: CheckResult) -> list[str]:
    return [str(f) if f.severity == "error" else f"{f}  [warning]" for f in result.findings]


def summary_line(result: CheckResult, run_dir: Any) -> str:
    c = result.counts
    ne, nw = len(result.errors), len(result.warnings)
    what = f"{c.get('machines', 0)} machines, {c.get('events', 0)} events, {c.get('messages', 0)} messages"
    if ne == 0:
        extra = f", {nw} warning(s)" if nw else ""
        return f"OK: every rule holds in {run_dir} ({what}{extra})"
    return f"FAILED: {ne} finding(s), {nw} warning(s) in {run_dir} ({what})"
