"""Chandy–Lamport snapshots (SPEC section 12), one machine's part of them, as pure code.

A snapshot is started by one machine at a planned instant: it records its state and sends a
marker on every outgoing link. A machine taking in its first marker of a snapshot records
at once (not at its next tick) and sends markers; from its recording on it records, link by
link, every message it takes in until that link's marker comes. When every incoming link's
marker has come its part is complete and it logs one ``snapshot`` line.

Nothing here knows about sockets or time: the driver (simulator, worker, vm) tells the
``Recorder`` what arrived and sends the markers it is told to send. Markers are not model
messages: they take no tick, carry no clock and are not counted in sent or received.

A duplicated marker (``--duplicate``): the second copy of a marker on a link whose marker has
come already is ignored (counted in ``markers_extra``): on a FIFO link every message sent
before the marker came before its first copy, so the first copy closes the link's channel.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from lclock.core.model import Machine, Message


@dataclass(frozen=True)
class SnapshotAt:
    """A planned snapshot: number ``id`` (1, 2, ... in time order), started by ``machine``
    at ``time`` seconds after t0."""

    id: int
    machine: int
    time: float

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "machine": self.machine, "time": self.time}


class Marker(NamedTuple):
    """A marker on the wire: the snapshot it belongs to and the machine that sent it."""

    snapshot: int
    sender: int


def entry(msg: Message) -> dict[str, int]:
    """A message as a snapshot line lists it (in a queue or in a channel)."""
    return {"from": msg.sender, "msg_lclock": msg.lclock, "send_tick": msg.send_tick}


@dataclass
class Recording:
    """One machine's part of one snapshot: its recorded state and its incoming channels."""

    id: int
    lclock: int
    vclock: list[int] | None
    tick: int
    queue: list[dict[str, int]]
    waiting: set[int]  # incoming links whose marker has not come yet
    channels: dict[int, list[dict[str, int]]] = field(default_factory=dict)
    extra_markers: int = 0
    markers_lost: list[dict[str, Any]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.waiting

    def fields(self) -> dict[str, Any]:
        """The ``snapshot`` line's own fields (SPEC 12.2)."""
        out: dict[str, Any] = {"id": self.id, "lclock": self.lclock}
        if self.vclock is not None:
            out["vclock"] = self.vclock
        out["tick"] = self.tick
        out["queue"] = self.queue
        out["channels"] = {str(k): v for k, v in sorted(self.channels.items())}
        return out


class Recorder:
    """Every snapshot of one machine: what it recorded, and which links it still records."""

    __slots__ = ("me", "peers", "recordings", "recording_from")

    def __init__(self, me: int, peers: Iterable[int]) -> None:
        self.me = me
        self.peers = list(peers)  # every other machine: incoming and outgoing links alike
        self.recordings: dict[int, Recording] = {}
        # per incoming link, the recordings that record it now (the hot path looks here)
        self.recording_from: dict[int, list[Recording]] = {}

    def start(self, snapshot: int, machine: Machine, queue: Iterable[Message]) -> list[int]:
        """This machine starts ``snapshot``: it records; the peers to send a marker to."""
        if snapshot in self.recordings:
            return []
        self._record(snapshot, machine, queue, closed=None)
        return list(self.peers)

    def marker(self, m: Marker, machine: Machine, queue: Iterable[Message]
               ) -> tuple[list[int], Recording | None]:
        """A marker came in: the peers to send markers to (a first marker: all of them), and
        the recording if this marker completed it."""
        rec = self.recordings.get(m.snapshot)
        if rec is None:
            self._record(m.snapshot, machine, queue, closed=m.sender)
            rec = self.recordings[m.snapshot]
            return list(self.peers), rec if rec.complete else None
        if m.sender not in rec.waiting:
            rec.extra_markers += 1  # a duplicated marker: its link is closed already
            return [], None
        rec.waiting.discard(m.sender)
        self.recording_from[m.sender].remove(rec)
        return [], rec if rec.complete else None

    def lost(self, snapshot: int, dst: int, reason: str) -> None:
        """The network dropped the marker this machine sent to ``dst`` (loss, partition, a
        crashed peer): ``dst`` never completes the snapshot, and run.json says why."""
        self.recordings[snapshot].markers_lost.append({"to": dst, "reason": reason})

    def took(self, msg: Message) -> None:
        """A message was taken in: recorded in every channel still recording its link."""
        recs = self.recording_from.get(msg.sender)
        if recs:
            item = entry(msg)
            for rec in recs:
                rec.channels[msg.sender].append(dict(item))

    def _record(self, snapshot: int, machine: Machine, queue: Iterable[Message],
                closed: int | None) -> None:
        """Record the state now; every incoming link but ``closed`` is recorded from now on
        (the link a first marker came on is empty: FIFO, everything before it came before)."""
        waiting = {p for p in self.peers if p != closed}
        rec = Recording(snapshot, machine.lclock, list(machine.vclock) if machine.vector else None,
                        machine.ticks, [entry(msg) for msg in queue], waiting,
                        {p: [] for p in self.peers})
        self.recordings[snapshot] = rec
        for p in waiting:
            self.recording_from.setdefault(p, []).append(rec)

    def status(self) -> list[dict[str, Any]]:
        """What run.json says of this machine's part of each snapshot it recorded."""
        return [{"id": r.id, "recorded": True, "complete": r.complete,
                 "waiting_for": sorted(r.waiting), "extra_markers": r.extra_markers,
                 "markers_lost": r.markers_lost}
                for r in sorted(self.recordings.values(), key=lambda r: r.id)]


def summary(plan: Iterable[SnapshotAt], parts: dict[int, list[dict[str, Any]]],
            n: int) -> list[dict[str, Any]]:
    """run.json's ``snapshots``: each planned snapshot, whether it completed (every machine
    recorded and had every incoming marker) and, if not, which parts are missing.

    ``parts`` maps each machine id to its ``Recorder.status()`` (a machine that gave none,
    a crashed one, recorded nothing that is known).
    """
    out = []
    for snap in plan:
        mine = {mid: next((p for p in ps if p["id"] == snap.id), None) for mid, ps in parts.items()}
        not_recorded = [mid for mid in range(1, n + 1) if mine.get(mid) is None]
        waiting = {str(mid): p["waiting_for"] for mid, p in sorted(mine.items())
                   if p is not None and p["waiting_for"]}
        lost = [{"from": mid, **x} for mid, p in sorted(mine.items()) if p is not None
                for x in p.get("markers_lost", [])]
        done = not not_recorded and not waiting
        entry_: dict[str, Any] = {**snap.to_json(), "completed": done}
        if not done:
            entry_["not_recorded"] = not_recorded
            entry_["waiting_for"] = waiting  # receiver id -> senders whose marker never came
        if lost:
            entry_["markers_lost"] = lost
        out.append(entry_)
    return out
