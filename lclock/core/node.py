"""One model machine with everything around the model that every driver shares.

The model (``lclock.core.model``) knows the clock rules of one tick. A running machine needs
more, and all of it used to be written three times (real worker, simulator, TCP vm):
the set-up from the seed, the queue the network fills, the tick schedule on absolute
deadlines, the counters, and the schema-v1 lines it logs. That is the node. It is pure:
the driver tells it what time it is and what arrived, and it answers with the lines to log
and the messages to send. What differs between a real, a TCP and a simulated machine is
only the driver around it: how time passes and how bytes move.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from lclock.core.logline import format_ts
from lclock.core.model import Machine, Message, Step, machine_setup


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

    @property
    def rate(self) -> int:
        return machine_setup(self.seed, self.machine_id, self.rate_min, self.rate_max, self.rates)[0]


class Node:
    """A machine, its queue, its schedule, its counters and its log lines."""

    __slots__ = (
        "plan", "id", "run_id", "rate", "total", "slot", "machine", "queue", "max_queue",
        "undelivered", "sent_to", "taken_from",
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
        self.machine = Machine(plan.machine_id, plan.n, rng, plan.dice_sides, plan.vector)
        self.queue: deque[Message] = deque()
        self.max_queue = 0
        # Messages of our sends that never left (the peer was gone, the link broke).
        self.undelivered = 0
        # Per link, the messages sent to each peer and taken in from each: with the
        # peers' own counts they show, link by link, that every message is accounted for.
        self.sent_to: Counter[int] = Counter()
        self.taken_from: Counter[int] = Counter()

    # -- the schedule ----------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.slot >= self.total

    def next_due(self) -> float:
        """Seconds after t0 at which the next tick is due (meaningless once finished)."""
        return self.slot / self.rate

    # -- what happens ----------------------------------------------------------------------

    def take(self, msg: Message) -> None:
        """A message arrived from the network: into the queue, handled by a later tick."""
        q = self.queue
        q.append(msg)
        self.taken_from[msg.sender] += 1
        if len(q) > self.max_queue:
            self.max_queue = len(q)

    def tick(self, ts: float) -> tuple[dict[str, Any], Step]:
        """Run the next tick at epoch time ``ts``; its log line, and the step (what to send)."""
        self.slot += 1
        step = self.machine.step(self.queue)
        if step.to:
            sent_to = self.sent_to
            for peer in step.to:
                sent_to[peer] += 1
        return self.tick_line(step, ts), step

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
        out = self.line(step.event, ts)
        out.update(step.log_fields())
        return out

    def start_line(self, ts: float, pid: int, **extra: Any) -> dict[str, Any]:
        m = self.machine
        return self.line(
            "start", ts,
            rate=self.rate, seed=self.plan.seed, pid=pid, machines=self.plan.n,
            dice_sides=self.plan.dice_sides, vector_clocks=self.plan.vector,
            peer_a=m.peer_a, peer_b=m.peer_b, **extra,
        )

    def connected_line(self, ts: float, peers: list[int], t0: float) -> dict[str, Any]:
        return self.line("connected", ts, peers=peers, t0=format_ts(t0), t0_epoch=t0)

    def stop_fields(self, reason: str) -> dict[str, Any]:
        """The counters of the stop line (and of run.json): every message accounted for."""
        m = self.machine
        from_counts = Counter(msg.sender for msg in self.queue)
        return {
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

    def stop_line(self, ts: float, reason: str, **extra: Any) -> dict[str, Any]:
        return self.line("stop", ts, **self.stop_fields(reason), **extra)


def _by_peer(counts: Counter[int]) -> dict[str, int]:
    """Per-peer counts as JSON wants them: string keys, in id order."""
    return {str(k): v for k, v in sorted(counts.items())}
