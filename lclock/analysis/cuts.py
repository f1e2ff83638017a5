"""Consistent cuts of a run: judging one, and counting or listing those of a window.

A cut holds a prefix of every machine's tick events (SPEC 12.4). It is consistent when no
message is taken in inside it and sent outside it. Messages are the run's matched pairs
(``causal.Causality``: a receive joined to its send by sender and Lamport time, SPEC 5), so
a cut is judged by what the logs say happened, never by the logged vector clocks.

Cuts are kept here as event *counts* per machine (a machine's cut at count c holds its
events 0..c-1); the command turns ticks into counts and back. Everything is pure.

Counting enumerates the lattice of consistent cuts (the ideals of the event order) of a box
``lo <= C <= hi``, as PoET and Garg's algorithms do, level by level: from the least
consistent cut of the box, every consistent cut of one more event is one of the cuts of the
level below plus one event whose message, if it is a receive, was sent inside the cut. Any
consistent cut other than the least one has an event it can drop and stay consistent (its
latest one above the least cut, by happened-before), so the levels reach every one of them.
A level is a set, so a cut is met once whatever the order of its events; memory is the
widest level, not the whole lattice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from lclock.analysis.causal import Causality


@dataclass(frozen=True)
class Crossing:
    """A message taken in inside a cut and sent outside it (event indexes, 0-based)."""

    sender: int
    send_index: int
    receiver: int
    receive_index: int


@dataclass(frozen=True)
class Channels:
    """Per link (sender, receiver): its matched messages as (send index, receive index)
    sorted by receive index, and the running maximum of send index + 1, so that "how much of
    the sender must a cut hold once it holds the receiver's first c events" is one search."""

    recv: dict[tuple[int, int], np.ndarray]
    send: dict[tuple[int, int], np.ndarray]
    need: dict[tuple[int, int], np.ndarray]

    @classmethod
    def of(cls, c: Causality) -> Channels:
        recv, send, need = {}, {}, {}
        for key, (s_idx, r_idx) in c.channels.items():
            order = np.argsort(r_idx, kind="stable")
            recv[key] = r_idx[order]
            send[key] = s_idx[order]
            need[key] = np.maximum.accumulate(s_idx[order] + 1)
        return cls(recv, send, need)

    def needed(self, key: tuple[int, int], count: int) -> int:
        """The sender's events a cut must hold when it holds ``count`` of the receiver's."""
        p = int(np.searchsorted(self.recv[key], count, side="left"))
        return int(self.need[key][p - 1]) if p else 0


def crossings(ch: Channels, cut: dict[int, int]) -> list[Crossing]:
    """Every message taken in inside ``cut`` and sent outside it, by receiver then receive."""
    out = []
    for (s, j), r_idx in ch.recv.items():
        if s not in cut or j not in cut:
            continue
        s_idx = ch.send[(s, j)]
        hit = np.flatnonzero((r_idx < cut[j]) & (s_idx >= cut[s]))
        out += [Crossing(s, int(s_idx[k]), j, int(r_idx[k])) for k in hit]
    return sorted(out, key=lambda x: (x.receiver, x.receive_index, x.sender, x.send_index))


def least_consistent(ch: Channels, lo: dict[int, int], hi: dict[int, int]) -> dict[int, int] | None:
    """The least consistent cut at or above ``lo``; None when it is not at or below ``hi``
    (then the box holds no consistent cut: every consistent cut above lo is above it)."""
    cut = dict(lo)
    changed = True
    while changed:
        changed = False
        for (s, j) in ch.recv:
            if s in cut and j in cut:
                want = ch.needed((s, j), cut[j])
                if want > cut[s]:
                    if want > hi[s]:
                        return None
                    cut[s] = want
                    changed = True
    return cut


class TooMany(Exception):  # noqa: N818 - a stop, not an error of the code
    """More consistent cuts than the limit: enumeration stopped."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


def levels(c: Causality, ch: Channels, lo: dict[int, int], hi: dict[int, int],
           limit: int | None = None) -> Iterator[list[tuple[int, ...]]]:
    """The consistent cuts of the box, one level (number of events) at a time, each level
    sorted; cuts as tuples of counts in machine order. Raises TooMany past ``limit``."""
    ids = sorted(lo)
    start = least_consistent(ch, lo, hi)
    if start is None:
        return
    pos = {m: p for p, m in enumerate(ids)}
    # per machine, per event of its box: (position of the sender, send index + 1) or None
    req: list[list[tuple[int, int] | None]] = []
    for m in ids:
        frm = c.sender[m]
        si = c.send_index[m]
        req.append([(pos[int(frm[k])], int(si[k]) + 1) if si[k] >= 0 and int(frm[k]) in pos else None
                    for k in range(lo[m], hi[m])])
    base = [lo[m] for m in ids]
    top = [hi[m] for m in ids]
    level = [tuple(start[m] for m in ids)]
    seen = 0
    while level:
        seen += len(level)
        if limit is not None and seen > limit:
            raise TooMany(limit)
        yield level
        level = sorted(_next_level(level, req, base, top))


def _next_level(level: list[tuple[int, ...]], req: list[list[tuple[int, int] | None]],
                base: list[int], top: list[int]) -> set[tuple[int, ...]]:
    """Every consistent cut of one more event than the cuts of ``level``."""
    nxt: set[tuple[int, ...]] = set()
    n = len(base)
    for cut in level:
        for p in range(n):
            k = cut[p]
            if k >= top[p]:
                continue
            r = req[p][k - base[p]]
            if r is not None and cut[r[0]] < r[1]:
                continue
            nxt.add(cut[:p] + (k + 1,) + cut[p + 1:])
    return nxt


def count(c: Causality, ch: Channels, lo: dict[int, int], hi: dict[int, int],
          limit: int | None = None) -> int:
    """How many consistent cuts the box holds (TooMany past ``limit``)."""
    return sum(len(x) for x in levels(c, ch, lo, hi, limit))


# ---------------------------------------------------------------- ticks, times and counts


def count_of_tick(ticks: np.ndarray, tick: int) -> int:
    """How many of a machine's first events have a tick at or below ``tick`` (a prefix)."""
    above = np.flatnonzero(ticks > tick)
    return int(above[0]) if above.size else int(ticks.size)


def tick_of_count(ticks: np.ndarray, n: int) -> int:
    """The tick a cut of ``n`` events names (0: none)."""
    return int(ticks[n - 1]) if n > 0 else 0


def window_box(c: Causality, start: float, end: float) -> tuple[dict[int, int], dict[int, int]]:
    """The box of a window (seconds since the run's t0): on every machine, a cut from just
    before its first event in the window to just after its last one; a machine with no event
    in the window keeps its events before the window, and only those."""
    run = c.run
    lo, hi = {}, {}
    for m in run.ids:
        t = run.machines[m].ts - run.t0
        inside = np.flatnonzero((t >= start) & (t <= end))
        if inside.size:
            lo[m], hi[m] = int(inside[0]), int(inside[-1]) + 1
        else:
            after = np.flatnonzero(~(t < start))  # NaN times count as after: never held
            lo[m] = hi[m] = int(after[0]) if after.size else int(t.size)
    return lo, hi
