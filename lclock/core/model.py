"""The model of one machine, as a pure state machine (SPEC section 1).

Nothing here knows about sockets, processes or time: the caller owns the queue and
the random generator and decides when a tick happens. That is what lets the real
runtime, the simulator and the unit tests drive exactly the same rules.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from lclock.core import mutant
from lclock.core.clocks import hlc_local, hlc_receive

SEND_EVENT = "send"
RECEIVE_EVENT = "receive"
INTERNAL_EVENT = "internal"
TICK_EVENTS = (SEND_EVENT, RECEIVE_EVENT, INTERNAL_EVENT)


@dataclass(frozen=True, slots=True)
class Message:
    """One message on the wire: the sender and the clocks of its send event.

    ``pt`` is the sender's physical clock (µs) and ``hlc`` its hybrid logical clock
    ``(l, c)`` at the send, when the run keeps them (SPEC section 7).
    """

    sender: int
    lclock: int
    vclock: tuple[int, ...] | None = None
    pt: int | None = None
    hlc: tuple[int, int] | None = None
    #: The sender's tick of the send: what identifies a message when a program's clocks
    #: cannot be trusted to (SPEC 9.3). 0 where the transport does not carry it.
    send_tick: int = 0
    #: The message as a program of SPEC 9 wrote it, passed on unchanged; None when a
    #: built-in machine sent it (its clocks above are all there is).
    raw: bytes | None = None

    def key(self) -> tuple[int, int]:
        """What tells this message from every other of its sender (a duplicate has it too)."""
        return (self.sender, self.send_tick or self.lclock)


@dataclass(slots=True)
class Step:
    """What one tick did: the fields of the log line, and the messages to deliver."""

    event: str
    tick: int
    lclock: int
    queue_len: int
    vclock: list[int] | None = None
    dice: int | None = None
    to: list[int] | None = None
    sender: int | None = None
    msg_lclock: int | None = None
    message: Message | None = None
    pt: int | None = None
    hlc: tuple[int, int] | None = None
    msg_pt: int | None = None
    msg_hlc: tuple[int, int] | None = None
    send_tick: int = 0

    def log_fields(self) -> dict[str, Any]:
        """The schema-v1 fields of this tick event, in a stable order."""
        return self.fill({"tick": self.tick, "event": self.event})

    def fill(self, out: dict[str, Any]) -> dict[str, Any]:
        """Add this tick event's fields to a line that has its common fields already.

        (One dict per line: a tick is the hot path of every driver.)
        """
        out["tick"] = self.tick
        out["lclock"] = self.lclock
        out["queue_len"] = self.queue_len
        if self.vclock is not None:
            out["vclock"] = self.vclock
        if self.pt is not None:
            out["pt"] = self.pt
        if self.hlc is not None:
            out["hlc"] = list(self.hlc)
        if self.event == RECEIVE_EVENT:
            out["from"] = self.sender
            out["msg_lclock"] = self.msg_lclock
            if self.send_tick:
                out["send_tick"] = self.send_tick
            if self.msg_pt is not None:
                out["msg_pt"] = self.msg_pt
            if self.msg_hlc is not None:
                out["msg_hlc"] = list(self.msg_hlc)
        else:
            out["dice"] = self.dice
            if self.event == SEND_EVENT:
                out["to"] = self.to
        return out


def machine_rng(seed: int, machine_id: int) -> random.Random:
    """The machine's own generator, seeded from (run seed, machine id).

    A string seed goes through SHA-512 in CPython (seed version 2), so the stream is the
    same on every platform and Python version we support.
    """
    return random.Random(f"lclock:{seed}:{machine_id}")


def draw_rate(rng: random.Random, rate_min: int, rate_max: int) -> int:
    """Draw the machine's clock rate: the first number its generator gives."""
    return rng.randint(rate_min, rate_max)


def machine_setup(
    seed: int, machine_id: int, rate_min: int, rate_max: int, rates: tuple[int, ...] | None
) -> tuple[int, random.Random]:
    """The machine's rate and its generator, positioned for the first dice roll.

    The rate is always drawn first, with the real range, even when ``rates`` fixes it:
    ``randint`` consumes a varying amount of the stream depending on its range, so any
    other draw would shift every later dice roll. Every driver (real, TCP, simulated)
    and the checker's replay go through here, so a seed gives one dice sequence.
    """
    rng = machine_rng(seed, machine_id)
    drawn = draw_rate(rng, rate_min, rate_max)
    return (rates[machine_id - 1] if rates else drawn), rng


def ring_peers(machine_id: int, n: int) -> tuple[int, int]:
    """Peer A (next in ring order) and peer B (previous), ids 1..n."""
    a = machine_id % n + 1
    b = (machine_id - 2) % n + 1
    return a, b


@dataclass(slots=True)
class Machine:
    """One model machine: its clocks and the decision it takes on every tick."""

    machine_id: int
    n: int
    rng: random.Random
    dice_sides: int = 10
    vector: bool = True
    hlc: bool = False
    lclock: int = 0
    hlc_l: int = 0
    hlc_c: int = 0
    ticks: int = 0
    sent: int = 0
    received: int = 0
    vclock: list[int] = field(default_factory=list)
    peer_a: int = 0
    peer_b: int = 0
    everyone: list[int] = field(default_factory=list)
    #: A bug of the catalogue (SPEC 10) this machine makes on purpose ("": none): its ticks
    #: go through ``lclock.core.mutant``, the correct rules below stay as they are.
    mutant: str = ""
    faces: int = 0  # the faces the die shows: dice_sides, one fewer for ``die-short``

    def __post_init__(self) -> None:
        if self.n < 2:
            raise ValueError("a model needs at least 2 machines")
        if not 1 <= self.machine_id <= self.n:
            raise ValueError(f"machine id {self.machine_id} not in 1..{self.n}")
        if self.dice_sides < 3:
            raise ValueError("dice_sides must be at least 3")
        self.peer_a, self.peer_b = ring_peers(self.machine_id, self.n)
        self.everyone = [i for i in range(1, self.n + 1) if i != self.machine_id]
        if self.vector and not self.vclock:
            self.vclock = [0] * self.n
        self.faces = self.dice_sides - (self.mutant == "die-short")

    def roll(self) -> tuple[int, list[int] | None]:
        """The die of an empty queue's tick, and whom it sends to (None: internal), SPEC 1.5.

        The one place the die is read, for the model's clock rules and a program's alike.
        """
        dice = self.rng.randint(1, self.faces)
        if dice > 3:
            return dice, None
        if dice == 1:
            return dice, [self.peer_a]
        if dice == 2:
            return dice, [self.peer_b]
        return dice, list(self.everyone)

    def step(self, queue: deque[Message], pt: int | None = None, dup: bool = False) -> Step:
        """Do exactly one tick's action; the caller delivers ``step.message`` to ``step.to``.

        ``pt``: the machine's physical clock now (µs). ``dup``: the queue's head is a duplicate
        (treated as any other; a program is told, SPEC 9.2). One message at most: handling
        the whole queue in one tick is a classic mistake (a mutant makes one, SPEC 10)."""
        if self.mutant:
            return mutant.step(self, queue, pt)
        self.ticks += 1
        me = self.machine_id - 1
        if queue:
            msg = queue.popleft()
            self.lclock = max(self.lclock, msg.lclock) + 1
            self.received += 1
            vc = None
            if self.vector:
                own = self.vclock
                if msg.vclock is not None:
                    for i, v in enumerate(msg.vclock):
                        if v > own[i]:
                            own[i] = v
                own[me] += 1
                vc = list(own)
            hlc = None
            if self.hlc and pt is not None:
                lm, cm = msg.hlc if msg.hlc is not None else (0, 0)
                self.hlc_l, self.hlc_c = hlc = hlc_receive(self.hlc_l, self.hlc_c, lm, cm, pt)
            return Step(
                RECEIVE_EVENT,
                self.ticks,
                self.lclock,
                len(queue),
                vclock=vc,
                sender=msg.sender,
                msg_lclock=msg.lclock,
                pt=pt,
                hlc=hlc,
                msg_pt=msg.pt,
                msg_hlc=msg.hlc,
                send_tick=msg.send_tick,
            )
        dice, to = self.roll()
        self.lclock += 1
        vc = None
        if self.vector:
            self.vclock[me] += 1
            vc = list(self.vclock)
        hlc = None
        if self.hlc and pt is not None:
            self.hlc_l, self.hlc_c = hlc = hlc_local(self.hlc_l, self.hlc_c, pt)
        if to is None:
            return Step(INTERNAL_EVENT, self.ticks, self.lclock, 0, vclock=vc, dice=dice,
                        pt=pt, hlc=hlc)
        self.sent += len(to)
        message = Message(self.machine_id, self.lclock, tuple(vc) if vc is not None else None,
                          pt, hlc, self.ticks)
        return Step(
            SEND_EVENT, self.ticks, self.lclock, 0, vclock=vc, dice=dice, to=to, message=message,
            pt=pt, hlc=hlc,
        )
