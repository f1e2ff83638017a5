"""Causal questions about a run: which send a receive handled, and what happened before what.

Happened-before is computed from what the logs say happened -- each machine's order of events
and every receive matched to its send by (sender, msg_lclock) as SPEC section 5 defines --
and never from the logged vector clocks. Those are what the implementation *claims*, and the
point of asking is often to find out whether the claim is right: the vectors derived here
are the truth the logged ones are compared with, and the logged ones are shown as the proof
only where they agree.

Everything here is pure (a loaded ``Run`` in, numbers and small records out), so the
commands ``trace`` and ``hb`` are thin and the rules are tested without processes.

Two facts make the answers cheap. An event's causal past on machine i is a *prefix* of
machine i's events (the first V[i] of them), and its causal future on machine i is a
*suffix* (from the first event whose vector has seen it), so "past, concurrent, future" is
three ranges per machine whatever the size of the run. And a chain of messages from A to B
is found by a breadth-first search over machines, each step asking "the earliest receive on
machine j of a message that machine i sent at or after index k", which a suffix minimum per
channel answers with one binary search.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lclock.analysis.load import KIND_NAMES, KIND_RECEIVE, KIND_SEND, MachineLog, Run
from lclock.analysis.matching import SendTable, match_receives
from lclock.errors import BadInput

EVENT_SYNTAX = "MACHINE:LCLOCK (e.g. 2:40 or 2:L40) or MACHINE:tTICK (e.g. 2:t17)"
# Each run of spaces has one place to go (two optional runs side by side backtrack
# quadratically), and numbers are bounded (int() of a 5,000-digit string raises).
_EVENT_RE = re.compile(r"^\s*m?(\d{1,18})\s*:\s*(?:([LlTt])\s*)?(\d{1,18})\s*$")
# Derived vector clocks take events x machines x 4 bytes; beyond this the question is refused.
MAX_VECTOR_CELLS = 400_000_000


class CausalError(BadInput):
    """A question that cannot be answered: bad event syntax, no such event (exit 2)."""


@dataclass(frozen=True, order=True)
class Event:
    """One tick event: the machine and its position among that machine's tick events."""

    machine: int
    index: int


@dataclass(frozen=True)
class Hop:
    """One message of a chain: sent at ``send`` and handled at ``receive``."""

    send: Event
    receive: Event


def parse_event(text: str) -> tuple[int, str, int]:
    """``2:40`` / ``2:L40`` -> (2, "L", 40); ``2:t17`` -> (2, "t", 17). Raises CausalError."""
    m = _EVENT_RE.match(text)
    if not m:
        raise CausalError(f"{text!r} is not an event: write {EVENT_SYNTAX}")
    what = (m.group(2) or "L").upper()
    return int(m.group(1)), "t" if what == "T" else "L", int(m.group(3))


def find_event(run: Run, text: str) -> Event:
    """The event a user named; the error says what exists nearby when it does not."""
    mid, what, value = parse_event(text)
    log = run.machines.get(mid)
    if log is None:
        have = ", ".join(map(str, run.ids)) or "none"
        raise CausalError(f"{text}: no machine {mid} in this run (machines: {have})")
    col = log.lclock if what == "L" else log.tick
    name = "Lamport clock" if what == "L" else "tick"
    hits = np.flatnonzero(col == value)
    if len(hits) == 1:
        return Event(mid, int(hits[0]))
    if len(hits) > 1:
        ticks = ", ".join(f"t{int(log.tick[k])}" for k in hits[:6])
        raise CausalError(f"{text}: machine {mid} logged {len(hits)} events with {name} {value} "
                          f"({ticks}): name one by its tick, e.g. {mid}:t{int(log.tick[hits[0]])}")
    if log.events == 0:
        raise CausalError(f"{text}: machine {mid} logged no tick events")
    below = col[col < value]
    above = col[col > value]
    near = []
    if below.size:
        near.append(f"{what}{int(below.max())}")
    if above.size:
        near.append(f"{what}{int(above.min())}")
    hint = f" (nearest: {' and '.join(f'{mid}:{x}' for x in near)})" if near else ""
    if what == "L":
        hint += f"; to name it by its tick write {mid}:tTICK"
    raise CausalError(f"{text}: machine {mid} has no event with {name} {value}{hint}")


def describe(run: Run, e: Event) -> dict[str, Any]:
    """The facts of one event, as plain JSON types."""
    log = run.machines[e.machine]
    k = e.index
    kind = int(log.kind[k])
    t = float(log.ts[k])
    out: dict[str, Any] = {
        "machine": e.machine, "tick": int(log.tick[k]), "lclock": int(log.lclock[k]),
        "event": KIND_NAMES[kind], "line": int(log.line[k]),
        "t_s": round(t - run.t0, 6) if np.isfinite(t) else None,
    }
    if log.vclock is not None and np.all(log.vclock[k] >= 0):
        out["vclock"] = [int(x) for x in log.vclock[k]]
    if kind == KIND_SEND:
        out["to"] = log.recipients(k)
    elif kind == KIND_RECEIVE:  # null where an imported log does not say (SPEC 5.1)
        out["from"] = int(log.frm[k]) or None
        out["msg_lclock"] = int(log.msg[k]) if log.msg[k] >= 0 else None
    return out


def name(run: Run, e: Event) -> str:
    """``2:t17 (L40, receive)``: how an event is written in every answer."""
    log = run.machines[e.machine]
    return (f"{e.machine}:t{int(log.tick[e.index])} (L{int(log.lclock[e.index])}, "
            f"{KIND_NAMES[int(log.kind[e.index])]})")


def _prefix_range(first: int, last: int) -> str:
    return "none" if last < first else f"t{first}" if first == last else f"t{first}..t{last}"


@dataclass
class Causality:
    """The matched messages and the derived vector clocks of one run."""

    run: Run
    # per machine, per event: the machine whose send a receive handled (0: none; not always
    # the logged ``from``: a receive whose sender is not logged is matched by its clock)
    sender: dict[int, np.ndarray]
    # per machine, per event: the index of the matched send on machine ``sender`` (-1: none)
    send_index: dict[int, np.ndarray]
    # (sender, receiver) -> (send indexes, receive indexes), sorted by send index
    channels: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]
    vc: dict[int, np.ndarray]
    unmatched: list[Event] = field(default_factory=list)
    cyclic: list[Event] = field(default_factory=list)
    _sufmin: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @classmethod
    def build(cls, run: Run) -> Causality:
        cells = run.events * max(run.n, 1)
        if cells > MAX_VECTOR_CELLS:
            raise CausalError(f"{run.path}: {run.events} events x {run.n} machines is too large "
                              "to compute happened-before in memory")
        sender, send_index, channels, unmatched = match_run(run)
        vc, cyclic = _derive_vectors(run, sender, send_index)
        return cls(run, sender, send_index, channels, vc, unmatched, cyclic)

    # ------------------------------------------------------------ relations

    def seen(self, later: Event, earlier: Event) -> bool:
        """Whether ``earlier`` is in the causal past of ``later`` (or is it)."""
        return int(self.vc[later.machine][later.index, earlier.machine - 1]) >= earlier.index + 1

    def relation(self, a: Event, b: Event) -> str:
        """``same``, ``before`` (a -> b), ``after`` (b -> a) or ``concurrent``."""
        if a == b:
            return "same"
        if self.seen(b, a):
            return "before"
        if self.seen(a, b):
            return "after"
        return "concurrent"

    def past_counts(self, e: Event) -> dict[int, int]:
        """Per machine, how many of its first events are in e's past (e itself counted)."""
        row = self.vc[e.machine][e.index]
        return {i: int(row[i - 1]) for i in self.run.ids}

    def future_first(self, e: Event) -> dict[int, int]:
        """Per machine, the index of its first event in e's future (its event count if none)."""
        out = {}
        own = e.index + 1
        for i in self.run.ids:
            col = self.vc[i][:, e.machine - 1]
            out[i] = int(np.searchsorted(col, own, side="left"))
        out[e.machine] = e.index  # e itself starts its own machine's future
        return out

    def regions(self, e: Event) -> dict[int, dict[str, Any]]:
        """Per machine: the ticks in e's past, concurrent with e, and in its future."""
        past = self.past_counts(e)
        fut = self.future_first(e)
        out = {}
        for i in self.run.ids:
            log = self.run.machines[i]
            E = log.events
            p = past[i] - (1 if i == e.machine else 0)  # e is not its own past
            f = fut[i] + (1 if i == e.machine else 0)
            out[i] = {"events": E, "past": p, "concurrent": max(f - past[i], 0),
                      "future": E - f,
                      "past_ticks": _ticks(log, 0, p), "concurrent_ticks": _ticks(log, past[i], f),
                      "future_ticks": _ticks(log, f, E)}
        return out

    # ------------------------------------------------------------ messages

    def send_of(self, e: Event) -> Event | None:
        """The send whose message the receive ``e`` handled (None: not a receive, or unmatched)."""
        k = int(self.send_index[e.machine][e.index])
        if k < 0:
            return None
        return Event(int(self.sender[e.machine][e.index]), k)

    def receives_of(self, send: Event) -> list[Event]:
        """Every receive that handled a message of this send (a duplicate shows twice)."""
        out = []
        for j in self.run.ids:
            ch = self.channels.get((send.machine, j))
            if ch is None:
                continue
            s_idx, r_idx = ch
            lo = int(np.searchsorted(s_idx, send.index, side="left"))
            hi = int(np.searchsorted(s_idx, send.index, side="right"))
            out += [Event(j, int(r)) for r in np.sort(r_idx[lo:hi])]
        return out

    def chain(self, a: Event, b: Event) -> list[Hop] | None:
        """A chain of messages from a to b (fewest messages first); [] on one machine; None if
        b is not in a's future."""
        if a.machine == b.machine:
            return [] if a.index <= b.index else None
        never = 1 << 62
        reach = {a.machine: a.index}  # the earliest index of each machine reachable from a
        history: dict[int, list[tuple[int, Hop | None]]] = {a.machine: [(a.index, None)]}
        frontier = {a.machine}
        while frontier and reach.get(b.machine, never) > b.index:
            improved: dict[int, tuple[int, Hop]] = {}
            for i in frontier:
                for j in self.run.ids:
                    if j == i:
                        continue
                    hit = self._earliest(i, j, reach[i])
                    if hit is None:
                        continue
                    s, r = hit
                    best = min(reach.get(j, never), improved[j][0] if j in improved else never)
                    if r < best:
                        improved[j] = (r, Hop(Event(i, s), Event(j, r)))
            for j, (r, h) in improved.items():
                reach[j] = r
                history.setdefault(j, []).append((r, h))
            frontier = set(improved)
        if reach.get(b.machine, never) > b.index:
            return None
        hops: list[Hop] = []
        need_m, need_k = b.machine, b.index
        while True:
            step = next(x[1] for x in history[need_m] if x[0] <= need_k)
            if step is None:
                break
            hops.append(step)
            need_m, need_k = step.send.machine, step.send.index
        return hops[::-1]

    def _earliest(self, i: int, j: int, k: int) -> tuple[int, int] | None:
        """(send index, receive index) of the earliest receive on j of a message i sent at or
        after index k."""
        ch = self.channels.get((i, j))
        if ch is None:
            return None
        if (i, j) not in self._sufmin:
            r_idx = ch[1]
            mins = np.minimum.accumulate(r_idx[::-1])[::-1]
            # where each suffix's minimum sits: the first position at or after q that holds
            # its own suffix's minimum (such a "record" holds the minimum of q's suffix too)
            rec = np.where(r_idx == mins, np.arange(len(r_idx)), len(r_idx))
            best = np.minimum.accumulate(rec[::-1])[::-1]
            self._sufmin[(i, j)] = (mins, best)
        s_idx, r_idx = ch
        mins, best = self._sufmin[(i, j)]
        p = int(np.searchsorted(s_idx, k, side="left"))
        if p >= len(s_idx):
            return None
        q = int(best[p])
        return int(s_idx[q]), int(r_idx[q])

    # ------------------------------------------------------------ logged vectors

    def logged_agrees(self, e: Event) -> bool | None:
        """Whether the logged vector clock of e is the derived one (None: none logged)."""
        V = self.run.machines[e.machine].vclock
        if V is None or np.any(V[e.index] < 0):
            return None
        return bool(np.array_equal(V[e.index], self.vc[e.machine][e.index]))


def _ticks(log: MachineLog, lo: int, hi: int) -> str:
    """Ticks of events lo..hi-1 of a machine, as a range."""
    if hi <= lo:
        return "none"
    return _prefix_range(int(log.tick[lo]), int(log.tick[hi - 1]))


ChannelMap = dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]


def match_run(run: Run) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray], ChannelMap, list[Event]]:
    """Every receive matched to its send as ``check`` matches it (``lclock.analysis.matching``):
    per machine and event the sender (0: none) and its send's index (-1: none), the channels
    (sender, receiver) -> (send indexes, receive indexes) sorted by send, and the receives
    that match no send."""
    tables = {s: SendTable(log) for s, log in run.machines.items()}
    senders: dict[int, np.ndarray] = {}
    send_index: dict[int, np.ndarray] = {}
    channels: ChannelMap = {}
    unmatched: list[Event] = []
    for j, log in run.machines.items():
        m = match_receives(log, tables)
        idx = np.full(log.events, -1, np.int64)
        frm = np.zeros(log.events, np.int64)
        idx[m.receive], frm[m.receive] = m.send, m.sender
        send_index[j], senders[j] = idx, frm
        unmatched += [Event(j, int(k)) for k in m.receive[m.send < 0]]
        for s in np.unique(m.sender[m.send >= 0]).tolist():
            sel = (m.sender == s) & (m.send >= 0)
            s_idx, r_idx = m.send[sel], m.receive[sel]
            order = np.lexsort((r_idx, s_idx))
            channels[(s, j)] = (s_idx[order], r_idx[order])
    return senders, send_index, channels, sorted(unmatched)


def _derive_vectors(run: Run, sender: dict[int, np.ndarray], send_index: dict[int, np.ndarray]
                    ) -> tuple[dict[int, np.ndarray], list[Event]]:
    """Vector clocks from program order and the matched messages (a topological sweep).

    Between two receives a machine's vector only counts its own events, so rows are filled
    a block at a time and Python works once per receive. A receive whose send is not yet
    known waits; if every machine waits, the log contains a cycle (a message handled
    before it was sent, by the logged clocks' own matching): the first waiting receive is
    then treated as unmatched and reported.
    """
    sweep = _Sweep(run, sender, send_index)
    pending = set(run.machines)
    while pending:
        progress = False
        for i in sorted(pending):
            moved, done = sweep.advance(i)
            progress = progress or moved
            if done:
                pending.discard(i)
        if not progress:
            sweep.skip(min(pending))
    return sweep.V, sweep.cyclic


class _Sweep:
    """The state of :func:`_derive_vectors`: each machine's rows, how far they are filled
    (``pos``), its running vector (``cur``) and its next receive (``ptr``)."""

    def __init__(self, run: Run, sender: dict[int, np.ndarray],
                 send_index: dict[int, np.ndarray]) -> None:
        n = max(run.n, max(run.ids, default=0))
        self.events = {i: log.events for i, log in run.machines.items()}
        self.V = {i: np.zeros((log.events, n), np.int32) for i, log in run.machines.items()}
        self.pos = dict.fromkeys(run.machines, 0)
        self.cur = {i: np.zeros(n, np.int32) for i in run.machines}
        self.recv: dict[int, tuple[list[int], list[int], list[int]]] = {}
        for i in run.machines:
            rk = np.flatnonzero(send_index[i] >= 0)
            self.recv[i] = (rk.tolist(), sender[i][rk].tolist(), send_index[i][rk].tolist())
        self.ptr = dict.fromkeys(run.machines, 0)
        self.cyclic: list[Event] = []

    def fill(self, i: int, hi: int) -> None:
        """Machine i's rows up to ``hi``: its own events only since the last receive."""
        lo = self.pos[i]
        if hi > lo:
            block = self.V[i][lo:hi]
            block[:] = self.cur[i]
            block[:, i - 1] = np.arange(lo + 1, hi + 1)
            self.cur[i][i - 1] = hi
            self.pos[i] = hi

    def advance(self, i: int) -> tuple[bool, bool]:
        """Machine i as far as its sends allow: (whether anything moved, whether it is done)."""
        rks, srcs, sidx = self.recv[i]
        c, moved = self.cur[i], False
        while True:
            p = self.ptr[i]
            if p == len(rks):
                self.fill(i, self.events[i])
                return True, True
            r = rks[p]
            if self.pos[i] < r:
                self.fill(i, r)
                moved = True
            s, ks = srcs[p], sidx[p]
            if self.pos[s] <= ks:
                return moved, False  # the send is not placed yet
            np.maximum(c, self.V[s][ks], out=c)
            c[i - 1] = r + 1
            self.V[i][r] = c
            self.pos[i] = r + 1
            self.ptr[i] = p + 1
            moved = True

    def skip(self, i: int) -> None:
        """Every machine waits: a cycle. Its first waiting receive is treated as unmatched
        (it adds nothing but its own +1)."""
        self.cyclic.append(Event(i, self.recv[i][0][self.ptr[i]]))
        self.ptr[i] += 1


# ---------------------------------------------------------------- Lamport order vs causality


Example = tuple[int, int, int, int, int]  # (gap, A machine, A index, B machine, B index)


def lamport_lies(c: Causality, examples: int = 5) -> dict[str, Any]:
    """Pairs of events on different machines where L(A) < L(B) but A and B are concurrent.

    For every event B and every other machine i, i's events concurrent with B are one range
    [past end, future start) of i's events, and those with L < L(B) are a prefix of i's
    events (Lamport clocks rise along a machine), so each count is a few binary searches.
    Ties (equal L on different machines, always concurrent in a correct log) are counted
    apart: there only the total order's tie-break by machine id says "before".
    """
    run = c.run
    _require_rising(run)
    n: Counter[str] = Counter()
    wide: list[Example] = []
    narrow: list[Example] = []
    for j in run.ids:
        for i in run.ids:
            if i != j and len(run.machines[j].lclock):
                _count_pairs(c, i, j, n, (wide, narrow) if examples else None)
    ordered, lies = n["ordered"], n["lies"]
    return {
        "ordered_pairs": ordered,  # pairs on different machines with L(A) < L(B)
        "concurrent": lies,  # ... of which A and B are concurrent
        "causal": n["causal"],  # ... of which A happened before B
        "clock_condition_broken": n["violated"],  # ... of which B happened before A (a bad log)
        "fraction": round(lies / ordered, 6) if ordered else None,
        # unordered pairs with L(A) = L(B) on different machines (each seen from both sides)
        "equal_clock_pairs": n["ties"] // 2,
        "examples": _lie_examples(c, wide, narrow, examples),
    }


def _require_rising(run: Run) -> None:
    for i in run.ids:
        L = run.machines[i].lclock
        if L.size > 1 and np.any(np.diff(L) <= 0):
            k = int(np.flatnonzero(np.diff(L) <= 0)[0]) + 1
            raise CausalError(f"machine {i}'s Lamport clock does not rise at tick "
                              f"{int(run.machines[i].tick[k])} ({int(L[k - 1])} then {int(L[k])}): "
                              "the comparison needs rising clocks; run lclock check")


def _count_pairs(c: Causality, i: int, j: int, n: Counter[str],
                 found: tuple[list[Example], list[Example]] | None) -> None:
    """The pairs (A on machine i, B on machine j), counted into ``n``; with ``found``, the
    widest gap (A's earliest concurrent event) and the narrowest (A's latest concurrent
    event below L(B)) of this pair of machines are added to it."""
    Lj, Li = c.run.machines[j].lclock, c.run.machines[i].lclock
    own = np.arange(1, len(Lj) + 1)
    lo = c.vc[j][:, i - 1].astype(np.int64)  # i's events in B's past: [0, lo)
    fut = np.searchsorted(c.vc[i][:, j - 1], own, side="left")  # B's future on i
    lt = np.searchsorted(Li, Lj, side="left")  # i's events with L < L(B): [0, lt)
    le = np.searchsorted(Li, Lj, side="right")
    hi = np.minimum(fut, lt)
    n_lie = np.clip(hi - lo, 0, None)
    n["ordered"] += int(lt.sum())
    n["lies"] += int(n_lie.sum())
    n["causal"] += int(np.minimum(lo, lt).sum())
    n["violated"] += int(np.clip(lt - fut, 0, None).sum())
    n["ties"] += int(np.clip(np.minimum(fut, le) - np.maximum(lo, lt), 0, None).sum())
    has = np.flatnonzero(n_lie > 0)
    if has.size and found is not None:
        wide, narrow = found
        b = int(has[np.argmax(Lj[has] - Li[lo[has]])])
        wide.append((int(Lj[b] - Li[lo[b]]), i, int(lo[b]), j, b))
        b = int(has[np.argmin(Lj[has] - Li[hi[has] - 1])])
        narrow.append((int(Lj[b] - Li[hi[b] - 1]), i, int(hi[b] - 1), j, b))


def _lie_examples(c: Causality, wide: list[Example], narrow: list[Example],
                  examples: int) -> list[dict[str, Any]]:
    """The widest gaps first, then the narrowest one: ``examples`` in all."""
    wide.sort(key=lambda x: (-x[0], x[1:]))
    picked = wide[:max(examples - 1, 0)]
    if narrow and examples:
        picked.append(min(narrow))
    return [{"a": describe(c.run, Event(i, ka)), "b": describe(c.run, Event(j, kb)), "gap": gap,
             "a_vector": [int(x) for x in c.vc[i][ka]], "b_vector": [int(x) for x in c.vc[j][kb]]}
            for gap, i, ka, j, kb in picked]


# ---------------------------------------------------------------- the total order


def total_order(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """(machine ids, event indexes) of every tick event in Lamport's total order: by L, ties
    broken by machine id (and, in a log where one machine repeats an L, by its tick order)."""
    ids = run.ids
    if not ids:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    mids = np.concatenate([np.full(run.machines[i].events, i, np.int64) for i in ids])
    idxs = np.concatenate([np.arange(run.machines[i].events, dtype=np.int64) for i in ids])
    L = np.concatenate([run.machines[i].lclock.astype(np.int64) for i in ids])
    order = np.lexsort((idxs, mids, L))
    return mids[order], idxs[order]
