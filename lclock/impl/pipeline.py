"""Programs asked ahead of their answers: how the simulator keeps a program from being the
bottleneck (SPEC 9.2, "lclock may write the next requests before it has read the answers").

One request and its answer between two processes cost 80-130 µs here, against about 15 µs
for a built-in tick: in lock-step a simulated hour of three program machines is ten times
slower than the model. But the schedule does not wait on the answers: which tick receives,
sends or does nothing depends on the queue and the die, never on a clock. Only a receive
needs its message's *content*, which is another program's answer to its send. So the
simulator decides every tick at once, writes each request as soon as it can be written
(a receive waits only for the one answer that carries its message), and fills in the
clocks of the logged lines when the answers come.

- ``Pending``: one tick asked and not yet answered: its request, the line to fill, and the
  message it sends (a ``LazyMessage``, whose clocks its answer will give).
- ``Channel``: one program's requests in order: those not yet writable (a receive whose
  message is not known yet) and those written, awaiting their answers.
- ``Pipeline``: every channel of a run; moves what can move, and waits when the simulator
  needs an answer now (a built-in machine taking a program's message, a crash, the end).

Every dependency points back in time (a message is received after it was sent), so the
wait always ends, unless a program hangs, which is a failure like any other. A failure
found ahead of time is not reported from here: the simulator replays the run in lock-step,
so the failure shows at the tick where it happened, with the others stopped at that
instant, exactly as a lock-step run would have it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from lclock.core.model import RECEIVE_EVENT, SEND_EVENT, Message
from lclock.impl import protocol as p
from lclock.impl.pipe import ProgramGone, wait
from lclock.impl.program import Program, ProgramFailed, WaitInterrupted

#: Requests a program may have outstanding before the simulator waits for some answers:
#: enough to keep both processes busy, few enough that the answers fit the pipe.
MAX_AHEAD = 1024
#: Engine steps between two looks at the programs' answers: often enough that a receive
#: waiting for its message is written soon after the answer that carries it.
POLL_EVERY = 16


class LazyMessage:
    """A message of a program's send, in flight before the program has said what it holds.

    It has what the network and the queue need at once (sender, the send's tick, pt) and
    gets the rest (its clocks, the program's bytes) from the answer: ``ready`` says when.
    """

    __slots__ = ("sender", "lclock", "vclock", "pt", "hlc", "send_tick", "raw", "ready")

    def __init__(self, sender: int, send_tick: int, pt: int | None) -> None:
        self.sender = sender
        self.send_tick = send_tick
        self.pt = pt
        self.lclock = 0
        self.vclock: tuple[int, ...] | None = None
        self.hlc: tuple[int, int] | None = None
        self.raw: bytes | None = None
        self.ready = False

    def key(self) -> tuple[int, int]:
        return (self.sender, self.send_tick)


class Pending:
    """One tick asked of a program: the request, and what its answer fills in."""

    __slots__ = ("tick", "do", "to", "pt", "dup", "msg", "out", "line", "drops", "done",
                 "machine")

    def __init__(self, machine: Any, tick: int, do: str, to: list[int] | None = None,
                 pt: int | None = None, msg: Message | LazyMessage | None = None,
                 dup: bool = False, out: LazyMessage | None = None) -> None:
        self.machine = machine
        self.tick, self.do, self.to, self.pt, self.msg, self.dup = tick, do, to, pt, msg, dup
        self.out = out
        self.line: dict[str, Any] | None = None
        self.drops: list[dict[str, Any]] = []
        self.done = False

    def request(self) -> bytes | None:
        """The request line, or None while the message it receives is not known yet."""
        if self.do != RECEIVE_EVENT:
            return p.tick_request(self.tick, self.do, to=self.to, pt=self.pt)
        msg = self.msg
        assert msg is not None
        if isinstance(msg, LazyMessage):
            if not msg.ready:
                return None
            raw = msg.raw
        else:
            raw = msg.raw if msg.raw is not None else p.builtin_message(msg.lclock, msg.vclock,
                                                                        msg.hlc)
        return p.tick_request(self.tick, RECEIVE_EVENT, sender=msg.sender, msg=raw,
                              dup=self.dup, pt=self.pt)

    def resolve(self, done: p.Done) -> None:
        """The answer came: the logged line, the sent message and the machine's clocks."""
        line = self.line
        assert line is not None
        line["lclock"] = done.lclock
        if done.vclock is not None:
            line["vclock"] = done.vclock
            self.machine.vclock = done.vclock
        if done.hlc is not None:
            line["hlc"] = list(done.hlc)
            self.machine.hlc_l, self.machine.hlc_c = done.hlc
        self.machine.lclock = done.lclock
        if self.do == RECEIVE_EVENT:
            msg = self.msg
            assert msg is not None
            line["msg_lclock"] = msg.lclock
            if "msg_hlc" in line and msg.hlc is not None:
                line["msg_hlc"] = list(msg.hlc)
        elif self.do == SEND_EVENT:
            self._fill_message(done)
        self.done = True

    def _fill_message(self, done: p.Done) -> None:
        out = self.out
        assert out is not None and done.msg_lclock is not None
        out.lclock = done.msg_lclock
        out.vclock = tuple(done.msg_vclock) if done.msg_vclock is not None else None
        out.hlc = done.msg_hlc
        out.raw = done.msg
        out.ready = True
        for drop in self.drops:
            drop["msg_lclock"] = done.msg_lclock


class Channel:
    """One program's requests, in order: waiting to be written, then awaiting answers."""

    def __init__(self, program: Program, n: int, kept: p.Clocks) -> None:
        self.program = program
        self.n = n
        self.kept = kept
        self.unsent: deque[Pending] = deque()
        self.awaiting: deque[Pending] = deque()

    @property
    def busy(self) -> bool:
        return bool(self.unsent or self.awaiting)

    def submit(self, pending: Pending) -> None:
        """Queue a request; it reaches the pipe at the simulator's next look (``poll``): a
        write per request would cost a system call and a wake-up of the program each."""
        self.unsent.append(pending)

    def write(self) -> None:
        """Hand every request that can be written to the pipe, in order."""
        unsent, pipes = self.unsent, self.program.pipes
        while unsent:
            request = unsent[0].request()
            if request is None:
                break
            pipes.send(request)
            self.awaiting.append(unsent.popleft())
        pipes.flush()

    def read(self) -> int:
        """Take the answers that have come; the number taken. Raises ProgramFailed."""
        pipes = self.program.pipes
        taken = 0
        try:
            pipes.pump()
            while (line := pipes.next_line()) is not None:
                if not self.awaiting:
                    raise p.ProtocolError("an answer to no request", line)
                pending = self.awaiting.popleft()
                pending.resolve(p.parse_done(line, pending.tick, pending.do, self.n, self.kept))
                taken += 1
        except p.ProtocolError as e:
            raise ProgramFailed(e.reason, e.line) from None
        except ProgramGone:
            raise ProgramFailed(self.program.why_gone()) from None
        return taken


class Pipeline:
    """Every program channel of a run, moved together."""

    def __init__(self, channels: dict[int, Channel], patience: float,
                 stopping: Callable[[], bool] | None = None) -> None:
        self.channels = channels
        self.patience = patience  # seconds without any answer before a program is hung
        #: Whether lclock is stopping: a wait then ends (WaitInterrupted).
        self.stopping = stopping

    def poll(self) -> None:
        """Move what can move without waiting."""
        chans = [ch for ch in self.channels.values() if ch.busy]
        for ch in chans:
            ch.read()
        for ch in chans:  # after every read: an answer may unblock another's receive
            ch.write()

    def until(self, ready: Any) -> None:
        """Move and wait until ``ready()``; a silence of ``patience`` seconds is a hang.

        Every channel moves, not only the one waited for: its next request may be a receive
        whose message another program's answer gives.
        """
        chans = list(self.channels.values())
        last = time.monotonic()
        while True:
            moved = sum(ch.read() for ch in chans)
            for ch in chans:  # after every read: an answer may unblock another's receive
                ch.write()
            if ready():
                return
            now = time.monotonic()
            if moved:
                last = now
            elif now - last > self.patience:
                raise ProgramFailed(f"no answer within {self.patience:g} s")
            if self.stopping is not None and self.stopping():
                raise WaitInterrupted
            busy = [ch.program.pipes for ch in chans if ch.busy]
            if busy:
                wait(busy, min(0.5 if self.stopping is None else 0.1, self.patience))

    def message(self, msg: LazyMessage) -> None:
        """A built-in machine takes ``msg`` now: its sender's answer is needed."""
        self.until(lambda: msg.ready)

    def drain(self) -> None:
        """Every request answered: before a crash, a stop, the end."""
        chans = list(self.channels.values())
        self.until(lambda: not any(ch.busy for ch in chans))

    def make_room(self, ch: Channel) -> None:
        """Wait for answers while ``ch`` has too many outstanding (memory and the pipes stay
        bounded)."""
        if len(ch.awaiting) + len(ch.unsent) > MAX_AHEAD:
            self.until(lambda: len(ch.awaiting) + len(ch.unsent) <= MAX_AHEAD // 2)
