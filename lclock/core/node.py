"""One model machine with everything around the model that every driver shares.

The model (``lclock.core.model``) knows the clock rules of one tick. A running machine needs
more, and all of it used to be written three times (real worker, simulator, TCP vm):
the set-up from the seed, the queue the network fills, the tick schedule on absolute
deadlines, the counters, the faults it suffers, and the schema-v1 lines it logs. That is
the node. It is pure: the driver tells it what time it is and what arrived, and it answers
with the lines to log and the messages to send. What differs between a real, a TCP and a
simulated machine is only the driver around it: how time passes and how bytes move.

Two clocks appear in its interface: ``ts``, the epoch time written into a line, and ``t``,
seconds since the shared start t0, on which the schedule and the fault plan are defined.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, NamedTuple

from lclock.core.clocks import ClockPlan
from lclock.core.faults import Fate, FaultPlan, LinkFaults, Partition, Pause, link_faults
from lclock.core.logline import format_ts
from lclock.core.model import Machine, Message, Step, machine_setup
from lclock.core.mutant import PACE
from lclock.core.snapshot import Marker, Recorder, SnapshotAt


def ticks_in(rate: int, duration: float) -> int:
    """How many ticks a machine does in a run: those due strictly before the end, at least one.

    Tick k is due at (k - 1) / rate, so k runs from 1 to ceil(rate x duration). The small
    epsilon keeps 3 x (1/3 s) from counting a tick due exactly at the end.
    """
    return max(1, math.ceil(rate * duration - 1e-9))


def last_tick_due(rate: int, duration: float) -> float:
    """Seconds after t0 at which a machine's last tick is due."""
    return (ticks_in(rate, duration) - 1) / rate


@dataclass(frozen=True)
class MachinePlan:
    """What one machine must know to run; picklable, so it travels to a worker process.

    ``rates`` fixes every machine's rate (None: drawn from rate_min..rate_max); the node
    works out its own rate with ``machine_setup``, as every other driver does.
    """

    machine_id: int
    n: int
    run_id: str
    seed: int
    duration: float
    rate_min: int = 1
    rate_max: int = 6
    rates: tuple[int, ...] | None = None
    dice_sides: int = 10
    vector: bool = True
    faults: FaultPlan | None = None
    #: Keep the hybrid logical clock (SPEC 7); it needs the physical clock, so pt is kept too.
    hlc: bool = True
    #: The physical clocks; None: every machine reads the host's clock as it is.
    clocks: ClockPlan | None = None
    #: The snapshots of the run (SPEC 12): every machine takes part in each.
    snapshots: tuple[SnapshotAt, ...] = ()
    #: A bug of the catalogue the machine makes on purpose (SPEC 10, ``--mutant``; "": none).
    mutant: str = ""

    @property
    def pt(self) -> bool:
        """Log and send the physical clock: for the HLC, or because the clocks are wrong."""
        return self.hlc or self.clocks is not None

    @property
    def rate(self) -> int:
        return machine_setup(self.seed, self.machine_id, self.rate_min, self.rate_max, self.rates)[0]


class Outgoing(NamedTuple):
    """One copy of a message on its way: to ``dst``, entering its queue at ``at`` (s since
    t0; 0: as soon as it arrives)."""

    dst: int
    at: float


_NO_LINES: list[dict[str, Any]] = []
_NO_SENDS: list[Outgoing] = []


#: What a tick did: (its log line, the step, the copies to send, other lines to log).
#: The copies are None for "one to each of ``step.to``, at once" (the perfect network's fast
#: path); the other lines are the ``drop`` lines of messages the faults dropped. A plain
#: tuple: a tick is the hot path of every driver.
TickResult = tuple[dict[str, Any], Step, list[Outgoing] | None, list[dict[str, Any]]]


class Node:
    """A machine, its queue, its schedule, its faults, its counters and its log lines."""

    __slots__ = (
        "plan", "id", "run_id", "rate", "total", "slot", "machine", "queue", "max_queue",
        "undelivered", "sent_to", "taken_from", "dropped_to", "dup_to", "links", "held",
        "held_seq", "pauses", "paused", "crash_at", "boundaries", "seen", "dup_received",
        "t0", "pt_on", "clock_plan", "snap", "snaps_due", "snap_out", "snap_ids", "pace",
    )

    def __init__(self, plan: MachinePlan) -> None:
        self.plan = plan
        self.id = plan.machine_id
        self.run_id = plan.run_id
        self.rate, rng = machine_setup(
            plan.seed, plan.machine_id, plan.rate_min, plan.rate_max, plan.rates
        )
        self.total = ticks_in(self.rate, plan.duration)
        # The index of the next deadline: tick slot+1 is due at slot / rate after t0. It
        # equals the number of ticks done unless a pause skipped deadlines.
        self.slot = 0
        self.machine = Machine(plan.machine_id, plan.n, rng, plan.dice_sides, plan.vector,
                               hlc=plan.hlc, mutant=plan.mutant)
        # What the deadlines divide by: the rate, or for ``tick-drift`` a slower pace (the
        # same division as before for every other machine, so a seed repeats its run)
        self.pace: float = self.rate / PACE if plan.mutant == "tick-drift" else self.rate
        self.queue: deque[Message] = deque()
        self.max_queue = 0
        # The shared start (epoch s): the physical clocks drift from it. Set when connected.
        self.t0 = 0.0
        self.pt_on = plan.pt
        self.clock_plan = plan.clocks
        # Messages of our sends that never left (the peer was gone, the link broke).
        self.undelivered = 0
        # Per link, the messages sent to each peer and taken in from each: with the
        # peers' own counts they show, link by link, that every message is accounted for.
        self.sent_to: Counter[int] = Counter()
        self.taken_from: Counter[int] = Counter()
        self.dropped_to: Counter[int] = Counter()
        self.dup_to: Counter[int] = Counter()  # extra copies sent (duplication)
        self.dup_received = 0
        faults = plan.faults
        self.links: dict[int, LinkFaults] | None = (
            link_faults(faults, self.id, self.machine.everyone)
            if faults is not None and faults.network else None
        )
        # Messages that arrived before their planned delivery time: (t, order, message).
        self.held: list[tuple[float, int, Message | Marker]] = []
        self.held_seq = 0
        self.pauses: deque[Pause] = deque(faults.pauses_of(self.id) if faults else ())
        self.paused: Pause | None = None
        self.crash_at = faults.crash_time(self.id) if faults else None
        self.boundaries: deque[tuple[float, str, Partition]] = deque(
            faults.boundaries() if faults else ()
        )
        # (sender, Lamport time) of every message handled, to tell a duplicate: only kept
        # when the plan duplicates messages.
        dup = faults is not None and any(
            s.duplicate > 0 for s in (faults.default, *faults.links.values())
        )
        self.seen: set[tuple[int, int]] | None = set() if dup else None
        # Snapshots (SPEC 12): this machine's part of each, and those it starts, in time order.
        self.snap = Recorder(self.id, self.machine.everyone) if plan.snapshots else None
        self.snap_ids = frozenset(x.id for x in plan.snapshots)
        self.snaps_due: deque[SnapshotAt] = deque(
            sorted((x for x in plan.snapshots if x.machine == self.id), key=lambda x: x.time))
        # What markers let out of the held ones did (``release``): (snapshot, peers to send
        # markers to, lines to log), for the driver to act on.
        self.snap_out: list[tuple[int, list[int], list[dict[str, Any]]]] = []

    # -- the schedule ----------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.slot >= self.total

    def next_due(self) -> float:
        """Seconds after t0 at which the next tick is due (meaningless once finished)."""
        return self.slot / self.pace

    def next_pause(self) -> Pause | None:
        return self.pauses[0] if self.pauses else None

    def crashed_by(self, t: float) -> bool:
        """The plan crashes this machine at or before ``t``: it does nothing from then on."""
        return self.crash_at is not None and t >= self.crash_at

    # -- what happens ----------------------------------------------------------------------

    def take(self, msg: Message) -> None:
        """A message arrived from the network: into the queue, handled by a later tick."""
        q = self.queue
        q.append(msg)
        self.taken_from[msg.sender] += 1
        if self.snap is not None:
            self.snap.took(msg)
        if len(q) > self.max_queue:
            self.max_queue = len(q)

    def hold(self, msg: Message | Marker, until: float) -> None:
        """A message arrived before its planned delivery (``until``, s since t0): keep it."""
        self.held_seq += 1
        heapq.heappush(self.held, (until, self.held_seq, msg))

    def next_release(self) -> float | None:
        return self.held[0][0] if self.held else None

    def release(self, t: float) -> list[float]:
        """Every held message due by ``t`` enters the queue, in delivery order; their due times."""
        held = self.held
        due = []
        while held and held[0][0] <= t:
            when, _seq, msg = heapq.heappop(held)
            if isinstance(msg, Marker):
                self._marker_later(msg, self.t0 + t)
                continue
            self.take(msg)
            due.append(when)
        return due

    def release_all(self, ts: float = 0.0) -> None:
        """The end: what is still held is in flight, taken in unhandled (like the drain)."""
        while self.held:
            msg = heapq.heappop(self.held)[2]
            if isinstance(msg, Marker):
                self._marker_later(msg, ts)
            else:
                self.take(msg)

    def _marker_later(self, marker: Marker, ts: float) -> None:
        to, lines = self.take_marker(marker, ts)
        self.snap_out.append((marker.snapshot, to, lines))

    def tick(self, ts: float, t: float = 0.0) -> TickResult:
        """Run the next tick at epoch time ``ts`` (``t`` s after t0): its line and its sends."""
        self.slot += 1
        dup = False
        seen = self.seen
        if seen is not None and self.queue:
            key = self.queue[0].key()
            dup = key in seen
            seen.add(key)
        step = self.machine.step(self.queue, self.physical(ts) if self.pt_on else None, dup)
        line = self.tick_line(step, ts)
        if dup:
            line["dup"] = True
            self.dup_received += 1
        if self.plan.mutant == "several-per-tick" and step.event == "receive" and self.queue:
            return line, step, _NO_SENDS, [self._same_tick(ts)]
        to = step.to
        if not to:
            return line, step, _NO_SENDS, _NO_LINES
        sent_to = self.sent_to
        for dst in to:
            sent_to[dst] += 1
        if self.links is None:  # a perfect network: every message, once, at once
            return line, step, None, _NO_LINES
        return self._route(line, step, ts, t)

    def _same_tick(self, ts: float) -> dict[str, Any]:
        """``several-per-tick``: a second message handled, and logged, in the same tick."""
        seen = self.seen
        dup = False
        if seen is not None:
            key = self.queue[0].key()
            dup = key in seen
            seen.add(key)
        step = self.machine.step(self.queue, self.physical(ts) if self.pt_on else None)
        self.machine.ticks -= 1
        step.tick -= 1
        line = self.tick_line(step, ts)
        if dup:
            line["dup"] = True
            self.dup_received += 1
        return line

    def _route(self, line: dict[str, Any], step: Step, ts: float, t: float) -> TickResult:
        """Each message's fate under the fault plan: dropped (logged), delayed, duplicated."""
        assert self.links is not None and step.to is not None and step.message is not None
        msg_lclock = step.message.lclock  # a program's message may carry another clock
        sends: list[Outgoing] = []
        extra: list[dict[str, Any]] = []
        for dst in step.to:
            fate = self.links[dst].fate(t)
            if fate.drop is not None:
                self.dropped_to[dst] += 1
                extra.append(self.line("drop", ts, to=dst, msg_lclock=msg_lclock,
                                       reason=fate.drop, tick=step.tick, send_tick=step.tick))
                continue
            if len(fate.arrivals) > 1:
                self.dup_to[dst] += len(fate.arrivals) - 1
                line.setdefault("dup_to", []).append(dst)
            for at in fate.arrivals:
                sends.append(Outgoing(dst, at))
        return line, step, sends, extra

    # -- snapshots (SPEC 12) ------------------------------------------------------------------

    def next_snapshot(self) -> SnapshotAt | None:
        """The next snapshot this machine starts (its time is s since t0)."""
        return self.snaps_due[0] if self.snaps_due else None

    def start_snapshot(self) -> tuple[int, list[int]]:
        """Start the next planned snapshot now: its id and the peers to send a marker to (it
        waits for theirs: never complete at once)."""
        assert self.snap is not None
        snap = self.snaps_due.popleft()
        return snap.id, self.snap.start(snap.id, self.machine, self.queue)

    def take_marker(self, marker: Marker, ts: float) -> tuple[list[int], list[dict[str, Any]]]:
        """A marker came in at ``ts``: the peers to send markers to, and the lines to log. A
        marker of no planned snapshot (a peer that plans others) is passed over."""
        if self.snap is None or marker.snapshot not in self.snap_ids:
            return [], []
        to, done = self.snap.marker(marker, self.machine, self.queue)
        return to, [self.line("snapshot", ts, **done.fields())] if done is not None else []

    def marker_fate(self, dst: int, t: float) -> Fate:
        """What the network does to a marker sent to ``dst`` at ``t``: as to a message."""
        if self.links is None:
            return Fate(None, (0.0,))
        return self.links[dst].marker_fate(t)

    def physical(self, ts: float) -> int:
        """This machine's physical clock (µs) at host time ``ts``: right, or as planned wrong."""
        if self.clock_plan is None:
            return round(ts * 1_000_000)
        return self.clock_plan.reading(self.id, ts, self.t0)

    def pause(self, pause: Pause, ts: float) -> dict[str, Any]:
        """The plan pauses this machine now: no tick and no message taken in until the end."""
        self.pauses.popleft()
        self.paused = pause
        return self.line("pause", ts, length=pause.length, until_t=pause.end)

    def resume(self, ts: float, t: float) -> dict[str, Any]:
        """Back from a pause at ``t``: the deadlines that fell due while paused are skipped.

        Normally ``t`` is the planned end; a pause cut short (the run stops meanwhile) skips
        only the deadlines that have come.
        """
        pause = self.paused
        assert pause is not None
        self.paused = None
        skipped = 0
        until = min(pause.end, t)
        while not self.finished and pause.start <= self.slot / self.rate < until:
            self.slot += 1
            skipped += 1
        return self.line("resume", ts, skipped=skipped, paused_s=round(t - pause.start, 6))

    def due_fault_lines(self, ts: float, t: float) -> list[dict[str, Any]]:
        """``fault`` lines for the partitions that started or healed by ``t``."""
        out = []
        b = self.boundaries
        while b and b[0][0] <= t:
            _when, kind, p = b.popleft()
            out.append(self.line("fault", ts, kind=kind, groups=p.all_groups(self.plan.n),
                                 start=p.start, end=p.end))
        return out

    def next_boundary(self) -> float | None:
        return self.boundaries[0][0] if self.boundaries else None

    # -- log lines (schema v1, SPEC section 5) ----------------------------------------------

    def line(self, event: str, ts: float, level: str = "info", **fields: Any) -> dict[str, Any]:
        """Any line this machine logs: the common fields first, in the schema's order."""
        out: dict[str, Any] = {
            "ts": format_ts(ts),
            "event": event,
            "level": level,
            "run_id": self.run_id,
            "machine": self.id,
        }
        out.update(fields)
        return out

    def tick_line(self, step: Step, ts: float) -> dict[str, Any]:
        """The line of one tick event. Every field every tick line has is added here."""
        return step.fill({"ts": format_ts(ts), "event": step.event, "level": "info",
                          "run_id": self.run_id, "machine": self.id})

    def start_line(self, ts: float, pid: int, **extra: Any) -> dict[str, Any]:
        m = self.machine
        return self.line(
            "start", ts,
            rate=self.rate, seed=self.plan.seed, pid=pid, machines=self.plan.n,
            dice_sides=self.plan.dice_sides, vector_clocks=self.plan.vector, hlc=self.plan.hlc,
            peer_a=m.peer_a, peer_b=m.peer_b, **extra,
        )

    def connected_line(self, ts: float, peers: list[int], t0: float) -> dict[str, Any]:
        """Connected, with the shared start t0 (from which the physical clocks drift)."""
        self.t0 = t0
        return self.line("connected", ts, peers=peers, t0=format_ts(t0), t0_epoch=t0)

    def stop_fields(self, reason: str) -> dict[str, Any]:
        """The counters of the stop line (and of run.json): every message accounted for."""
        m = self.machine
        from_counts = Counter(msg.sender for msg in self.queue)
        out = {
            "reason": reason,
            "ticks": m.ticks,
            "lclock": m.lclock,
            "sent": m.sent,
            "received": m.received,
            "unprocessed": len(self.queue),
            "unprocessed_from": _by_peer(from_counts),
            "max_queue": self.max_queue,
            "undelivered": self.undelivered,
            "sent_to": _by_peer(self.sent_to),
            "taken_from": _by_peer(self.taken_from),
        }
        if self.links is not None:
            out["dropped_to"] = _by_peer(self.dropped_to)
            out["dup_to"] = _by_peer(self.dup_to)
        if self.seen is not None:
            out["received_dups"] = self.dup_received
            out["unprocessed_dups"] = self._queued_dups()
        return out

    def crashed_fields(self) -> dict[str, Any]:
        """run.json's entry of a machine the plan crashed (it gave no stop report): what its
        log shows, as the launcher reads it back (``taken_from`` = what it handled; what
        was still queued died with it)."""
        m = self.machine
        handled = self.taken_from - Counter(msg.sender for msg in self.queue)
        out: dict[str, Any] = {"reason": "crashed", "crashed_at": self.crash_at, "ticks": m.ticks,
                               "lclock": m.lclock, "sent": m.sent, "received": m.received,
                               "sent_to": _by_peer(self.sent_to), "taken_from": _by_peer(handled)}
        if self.links is not None:
            out["dropped_to"] = _by_peer(self.dropped_to)
            out["dup_to"] = _by_peer(self.dup_to)
        return out

    def _queued_dups(self) -> int:
        """Copies in the queue whose message was handled, or is queued, already."""
        seen = set(self.seen or ())
        dups = 0
        for msg in self.queue:
            key = msg.key()
            if key in seen:
                dups += 1
            seen.add(key)
        return dups

    def stop_line(self, ts: float, reason: str, **extra: Any) -> dict[str, Any]:
        return self.line("stop", ts, **self.stop_fields(reason), **extra)


def _by_peer(counts: Counter[int]) -> dict[str, int]:
    """Per-peer counts as JSON wants them: string keys, in id order."""
    return {str(k): v for k, v in sorted(counts.items())}
