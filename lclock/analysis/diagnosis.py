"""Which classic bug a machine's logs show (SPEC section 10): fitted, never guessed.

For every machine and every clock (Lamport, vector, HLC) the correct rule and each rule of
the catalogue (``lclock.analysis.bugs``) predict each event's value from the previous
*logged* state, as the checker's rules do; an event tells two rules apart only where their
predictions differ. A bug is named when it fits at least ``MIN_EVIDENCE`` events that the
correct rule does not fit; the bugs are taken greedily, the one that explains most of what
is still unexplained first (ties: the one fewest of its telling events contradict), so a bug
whose every wrong event another explains better is never mentioned, and two bugs of one
machine are both named. What is not about one event's clock (the die, the schedule, one
tick doing two things, the message a sender carried) is fitted by its own evidence below.

Everything here is numpy over whole columns: a million events are fitted in about the time
they take to check. Pure: the logs in, the fits out; ``rules.diagnosis`` reports them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lclock.analysis.bugs import NAMES
from lclock.analysis.load import KIND_INTERNAL, KIND_NAMES, KIND_RECEIVE, KIND_SEND, MachineLog
from lclock.analysis.matching import match_receives
from lclock.analysis.rules import all_cols
from lclock.analysis.rules.clocks import replay
from lclock.analysis.rules.messages import Sends

MIN_EVIDENCE = 3  # telling events a bug must fit, where the correct rule does not, to be named
# die-short: named when a fair die would have hidden its largest face with a chance below
# this; mentioned as a note below NOTE_LUCK
DIE_LUCK = 1e-9
NOTE_LUCK = 1e-3
LATE_TOLERANCE_S = 0.5  # as the timing rule allows (lclock.analysis.rules.timing)
LATE_TOLERANCE_FRACTION = 0.05


@dataclass
class Fit:
    """One bug fitted to one machine: ``explained`` events that only it fits (the evidence),
    out of ``telling`` where it and the correct rule disagree, of which it fits ``fit_bug``
    and the correct rule ``fit_correct``. ``file``/``line``: its first example."""

    bug: str
    machine: int
    explained: int
    telling: int
    fit_bug: int
    fit_correct: int
    file: str
    line: int
    detail: str = ""
    #: named as a finding, or only a note; None: as the count of explained events says
    sure: bool | None = None
    #: other bugs that fit exactly as well: no event of this machine tells them apart
    alike: list[str] = field(default_factory=list)

    @property
    def named(self) -> bool:
        return self.sure if self.sure is not None else self.explained >= MIN_EVIDENCE


@dataclass
class Diagnosis:
    fits: list[Fit] = field(default_factory=list)
    #: (machine, clock) -> {event index: bug}: the named bug that explains an event, for the
    #: other findings of that event to say so rather than guess
    explains: dict[tuple[int, str], dict[int, str]] = field(default_factory=dict)

    def bug_of(self, machine: int, clock: str, k: int) -> str | None:
        return self.explains.get((machine, clock), {}).get(k)


@dataclass
class Table:
    """One clock of one machine: the logged values, what the correct rule predicts, which
    events can be judged, and each candidate bug's prediction."""

    clock: str
    got: np.ndarray
    correct: np.ndarray
    known: np.ndarray
    candidates: dict[str, np.ndarray]

    def same(self, pred: np.ndarray) -> np.ndarray:
        return self.same_as(pred, self.got)

    def differ(self, pred: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.known & ~self.same_as(pred, self.correct)
        return out

    @staticmethod
    def same_as(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return all_cols(a == b) if a.ndim > 1 else a == b


def _prev(col: np.ndarray) -> np.ndarray:
    """The logged value before each event (zeros before the first)."""
    first = np.zeros((1, *col.shape[1:]), col.dtype)
    return np.concatenate([first, col[:-1]])


def lamport_table(log: MachineLog, gap: np.ndarray) -> Table:
    L = log.lclock
    prev = _prev(L)
    kind, m = log.kind, log.msg
    recv, send, internal = kind == KIND_RECEIVE, kind == KIND_SEND, kind == KIND_INTERNAL
    correct = np.where(recv, np.maximum(prev, m) + 1, prev + 1)
    nto = log.to_ptr[1:] - log.to_ptr[:-1]
    # logs-clock-before-event: a send or internal line shows the state before its own +1,
    # so the state before an event is the line before it, +1 after such a line
    state = prev + np.concatenate(([0], kind[:-1] != KIND_RECEIVE))
    cands = {
        "receive-ignores-message": np.where(recv, prev + 1, correct),
        "receive-no-increment": np.where(recv, np.maximum(prev, m), correct),
        "receive-takes-message": np.where(recv, m + 1, correct),
        "receive-increment-inside-max": np.where(recv, np.maximum(prev, m + 1), correct),
        "send-no-increment": np.where(send, prev, correct),
        "send-per-recipient": np.where(send, prev + nto, correct),
        "internal-no-increment": np.where(internal, prev, correct),
        "logs-clock-before-event": np.where(recv, np.maximum(state, m) + 1, state),
    }
    known = ~gap & (L >= 0) & (_prev(L) >= 0) & (~recv | (m >= 0))
    return Table("lamport", L, correct, known, cands)


def vector_table(log: MachineLog, gap: np.ndarray, carried: np.ndarray | None,
                 n: int) -> Table | None:
    """``carried``: per event, the vector the message of a receive carried (-1: unknown)."""
    V = log.vclock
    me = log.id - 1
    if V is None or V.shape[1] != n or not 0 <= me < n:
        return None
    recv = log.kind == KIND_RECEIVE
    Vp = _prev(V)
    Vs = carried if carried is not None else np.full_like(V, -1)
    merged = np.where(recv[:, None], np.maximum(Vp, Vs), Vp)

    def bump(base: np.ndarray, entry: int) -> np.ndarray:
        out: np.ndarray = base.copy()
        out[:, entry] += 1
        return out

    correct = bump(merged, me)
    known = ~gap & all_cols(V >= 0) & all_cols(Vp >= 0) & (~recv | all_cols(Vs >= 0))
    # an off-by-one goes either way (V[id] with ids from 1, or V[id - 2]): the neighbour
    # entry that fits more of the machine's events is the one fitted
    wrong = [bump(merged, (me + step) % n) for step in (1, -1)]
    fit = [int(np.count_nonzero(known & all_cols(w == V))) for w in wrong]
    cands = {
        "vector-no-own-increment": np.where(recv[:, None], merged, correct),
        "vector-no-merge": np.where(recv[:, None], bump(Vp, me), correct),
        "vector-wrong-entry": wrong[0] if fit[0] >= fit[1] else wrong[1],
    }
    return Table("vector", V, correct, known, cands)


def hlc_table(log: MachineLog, gap: np.ndarray) -> Table | None:
    H, pt = log.hlc, log.pt
    if H is None or pt is None:
        return None
    recv = log.kind == KIND_RECEIVE
    prev = _prev(H)
    msg = log.msg_hlc if log.msg_hlc is not None else np.full_like(H, -1)
    correct = replay(prev, pt, recv, msg)
    not_reset = correct.copy()
    reset = correct[:, 1] == 0
    not_reset[reset, 1] = prev[reset, 1] + 1
    cands = {
        "hlc-ignores-pt": replay(prev, np.zeros_like(pt), recv, msg),
        "hlc-counter-not-reset": not_reset,
        "hlc-receive-ignores-message": replay(prev, pt, np.zeros_like(recv), msg),
    }
    known = ~gap & (pt >= 0) & all_cols(H >= 0) & all_cols(prev >= 0)
    known &= ~recv | all_cols(msg >= 0)
    return Table("hlc", H, correct, known, cands)


def _show(x: np.ndarray, k: int) -> str:
    v = x[k]
    return str(v.tolist()) if v.ndim else str(int(v))


def fit_tables(log: MachineLog, tables: list[Table]) -> tuple[list[Fit], dict[str, dict[int, str]]]:
    """The greedy cover of one machine's wrong events by the candidate bugs."""
    wrong = {t.clock: t.known & ~t.same(t.correct) for t in tables}
    fits = {(t.clock, bug): (t.differ(pred), t.same(pred))
            for t in tables for bug, pred in t.candidates.items()}
    bugs = [b for b in NAMES if any(b == bug for _, bug in fits)]  # ties: catalogue order
    out: list[Fit] = []
    explains: dict[str, dict[int, str]] = {}
    while True:
        keys = {}
        for bug in bugs:
            mine = [(d, s, wrong[c]) for (c, b), (d, s) in fits.items() if b == bug]
            cover = sum(int(np.count_nonzero(d & s & w)) for d, s, w in mine)
            against = sum(int(np.count_nonzero(d & ~s)) for d, s, _ in mine)
            if cover:
                keys[bug] = (cover, -against)
        if not keys:
            return out, explains
        best = max(keys, key=lambda b: keys[b])  # the first of the best, in catalogue order
        bugs.remove(best)
        fit, idx = _fit_of(log, best, tables, fits, wrong)
        fit.alike = [b for b in keys if b != best and keys[b] == keys[best]]
        out.append(fit)
        if fit.named:
            for clock, ks in idx.items():
                explains.setdefault(clock, {}).update(dict.fromkeys(ks.tolist(), best))


def _fit_of(log: MachineLog, bug: str, tables: list[Table],
            fits: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]],
            wrong: dict[str, np.ndarray]) -> tuple[Fit, dict[str, np.ndarray]]:
    """``bug``'s fit, and per clock the events it explains (taken out of ``wrong``)."""
    telling = fit_bug = fit_correct = 0
    first: tuple[int, str] | None = None
    idx: dict[str, np.ndarray] = {}
    for t in tables:
        if (t.clock, bug) not in fits:
            continue
        d, s = fits[(t.clock, bug)]
        mine = d & s & wrong[t.clock]
        telling += int(np.count_nonzero(d))
        fit_bug += int(np.count_nonzero(d & s))
        fit_correct += int(np.count_nonzero(d & t.same(t.correct)))
        idx[t.clock] = ks = np.flatnonzero(mine)
        if len(ks) and (first is None or ks[0] < first[0]):
            k = int(ks[0])
            first = (k, f"{KIND_NAMES[int(log.kind[k])]}: {t.clock} {_show(t.got, k)} where "
                        f"the correct rule gives {_show(t.correct, k)}")
        wrong[t.clock] = wrong[t.clock] & ~mine
    assert first is not None
    explained = sum(len(v) for v in idx.values())
    return Fit(bug, log.id, explained, telling, fit_bug, fit_correct, log.path.name,
               int(log.line[first[0]]), first[1]), idx


# -- what is not one event's clock -----------------------------------------------------------------


def carried_vectors(log: MachineLog, sends: dict[int, Sends]) -> np.ndarray | None:
    """Per event of ``log``: the vector its receive's message carried (the matched send's,
    as ``check`` matches: ``lclock.analysis.matching``), -1 where unknown or not a receive."""
    if log.vclock is None:
        return None
    out = np.full_like(log.vclock, -1)
    m = match_receives(log, sends)
    for s in np.unique(m.sender[m.send >= 0]).tolist():
        V = sends[s].log.vclock
        if V is None or V.shape[1] != out.shape[1]:
            continue
        sel = (m.sender == s) & (m.send >= 0)
        out[m.receive[sel]] = V[m.send[sel]]
    return out


def carries_old_clock(sl: Sends, views: dict[int, MachineLog]) -> Fit | None:
    """``send-carries-old-clock`` of sender ``sl``: its messages carried one less than its
    send lines show, so they match the send of one more, and not their own."""
    me = sl.log.id
    telling = explained = fit_correct = 0
    first: tuple[int, int, str] | None = None  # (send event, receive line, receiver file)
    for j, log in views.items():
        rk = np.flatnonzero((log.kind == KIND_RECEIVE) & (log.frm == me))
        if j == me or not len(rk):
            continue
        c = log.msg[rk]
        exact = sl.to_machine(j).find(c) >= 0
        sent = sl.to_machine(j).find(c + 1)
        older = sent >= 0
        tell = exact != older
        mine = tell & older
        telling += int(np.count_nonzero(tell))
        explained += int(np.count_nonzero(mine))
        fit_correct += int(np.count_nonzero(tell & exact))
        if mine.any():
            i = int(np.flatnonzero(mine)[0])
            ev = int(sent[i])
            if first is None or ev < first[0]:
                first = (ev, int(log.line[rk[i]]), log.path.name)
    if first is None:
        return None
    ev, line, where = first
    detail = (f"send: lclock {int(sl.log.lclock[ev])}, but its message carried "
              f"{int(sl.log.lclock[ev]) - 1} ({where}:{line})")
    return Fit("send-carries-old-clock", me, explained, telling, explained, fit_correct,
               sl.log.path.name, int(sl.log.line[ev]), detail)


def several_per_tick(log: MachineLog, gap: np.ndarray, queue_logged: bool) -> Fit | None:
    """Two events of one tick, or a queue that fell by more than one in a tick."""
    again = np.zeros(log.events, bool)
    again[1:] = (log.tick[1:] == log.tick[:-1]) & ~gap[1:]
    if queue_logged:
        qprev = _prev(log.qlen)
        again |= ~gap & (log.qlen < qprev - 1)
    idx = np.flatnonzero(again)
    if not len(idx):
        return None
    k = int(idx[0])
    detail = (f"tick {int(log.tick[k])} logged a second event" if k and log.tick[k] == log.tick[k - 1]
              else f"the queue went from {int(log.qlen[k - 1]) if k else 0} to {int(log.qlen[k])}")
    return Fit("several-per-tick", log.id, len(idx), len(idx), len(idx), 0, log.path.name,
               int(log.line[k]), detail)


def die_short(log: MachineLog, sides: int) -> Fit | None:
    """A die that never showed its largest face in more rolls than luck explains."""
    rolled = log.dice[(log.kind != KIND_RECEIVE) & (log.dice >= 1) & (log.dice <= sides)]
    n = len(rolled)
    if sides < 2 or n < MIN_EVIDENCE or np.any(rolled == sides):
        return None
    p = math.exp(n * math.log1p(-1.0 / sides))
    if p >= NOTE_LUCK:
        return None
    first = int(np.flatnonzero(log.kind != KIND_RECEIVE)[0])
    detail = f"the die never showed {sides} in {n} rolls (chance {p:.1e} for a fair 1..{sides} die)"
    return Fit("die-short", log.id, n, n, n, n, log.path.name, int(log.line[first]), detail,
               sure=p < DIE_LUCK)


def tick_drift(log: MachineLog, rate: int | None, t0: float) -> Fit | None:
    """Ticks that fall ever further behind their deadlines t0 + (k-1)/rate, and stay behind."""
    ts = log.ts
    if not rate or log.events < 2 or not np.isfinite(ts).all():
        return None
    late = ts - (t0 + (log.tick - 1 + log.skipped_before()) / rate)
    tol = np.maximum(LATE_TOLERANCE_S, LATE_TOLERANCE_FRACTION * (ts - t0))
    telling = late > tol
    if not telling[-1]:
        return None  # caught up by the end: late under load, not drifting
    mine = telling & (late >= 0.5 * np.maximum.accumulate(late))
    idx = np.flatnonzero(mine)
    k = int(idx[0])
    detail = (f"tick {int(log.tick[k])} ran {float(late[k]):.2f} s after its deadline, tick "
              f"{int(log.tick[-1])} {float(late[-1]):.2f} s after its own (rate {rate})")
    n = int(np.count_nonzero(telling))
    return Fit("tick-drift", log.id, len(idx), n, len(idx), 0, log.path.name, int(log.line[k]),
               detail)


@dataclass
class Facts:
    """What the diagnosis needs of a run besides its logs."""

    n: int
    sides: int
    rates: dict[int, int]
    t0: float
    dice_logged: bool = True
    queue_logged: bool = True


def diagnose(views: dict[int, MachineLog], gaps: dict[int, np.ndarray], facts: Facts) -> Diagnosis:
    """Every machine's fits, the named ones first within a machine."""
    out = Diagnosis()
    sends = {mid: Sends(v) for mid, v in views.items()}
    for mid in sorted(views):
        log, gap = views[mid], gaps[mid]
        if not log.events:
            continue
        tables = [t for t in (lamport_table(log, gap),
                              vector_table(log, gap, carried_vectors(log, sends), facts.n),
                              hlc_table(log, gap)) if t is not None]
        fits, explains = fit_tables(log, tables)
        for clock, ks in explains.items():
            out.explains[(mid, clock)] = ks
        others = [several_per_tick(log, gap, facts.queue_logged),
                  die_short(log, facts.sides) if facts.dice_logged else None,
                  tick_drift(log, facts.rates.get(mid), facts.t0),
                  carries_old_clock(sends[mid], views)]
        out.fits += sorted(fits + [f for f in others if f is not None],
                           key=lambda f: (not f.named, f.line))
    return out
