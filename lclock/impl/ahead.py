"""Real runs ask ahead of the answers (SPEC 9.2, 9.8): a tick is asked on its deadline and
never waits for its answer.

In lock-step (one request, then wait for its answer, per tick) a tick costs a round trip
between two processes, and each of its two wake-ups waits for a core: on a shared 2-core
machine that wait has a long tail (p99 of several ms), and a machine at 1,000 ticks/s that
waits in it falls behind its deadlines and catches up slowly, one round trip per tick. But
nothing on the schedule waits on an answer: which tick receives, sends or does nothing
depends on the queue and the die, never on a clock, and in a real run every message in the
queue is whole (its sender sent it once its own program had answered). So a real run
writes each tick's request on its deadline and goes on; the answer, when it comes, gives
the tick's logged line its clocks and its message its content, and the message leaves then.

- ``RealChannel``: one program's requests, each written as it is asked, with its deadline
  (asked + ``--impl-timeout``: a late answer fails the machine as in lock-step).
- ``Inflight``: one tick asked, what the driver does once it is answered (log its line and
  drop lines, send its message).
- ``take_back``: a tick asked but never answered (the program failed at it or before it)
  did not happen: the machine's counters and queue are put back as they were before it, so
  the stop line accounts for every message exactly as in lock-step.
"""

from __future__ import annotations

import time
from array import array
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from lclock.core.model import RECEIVE_EVENT, SEND_EVENT, Message, Step
from lclock.impl import protocol as p
from lclock.impl.pipe import ProgramGone
from lclock.impl.pipeline import Channel, Pending
from lclock.impl.program import Program, ProgramFailed

#: Answer times kept for run.json (a 1,000 ticks/s machine for half an hour).
MAX_ANSWER_SAMPLES = 2_000_000


class RealChannel(Channel):
    """One program's requests in a real run: written as asked, answered in order, each
    within ``timeout`` seconds of its asking."""

    def __init__(self, program: Program, n: int, kept: p.Clocks, timeout: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(program, n, kept)
        self.timeout = timeout
        #: The driver's monotonic clock (a virtual one in tests).
        self.clock = clock
        self.deadlines: deque[float] = deque()  # of ``awaiting``, in the same order
        self.asked_at: deque[float] = deque()
        #: Seconds from each request's asking to its answer (run.json's ``answer_ms``).
        self.answer_s: array[float] = array("f")

    def submit(self, pending: Pending) -> None:
        """Write the request now (the tick's deadline). In a real run it never waits for
        another answer: the message a receive takes arrived whole."""
        request = pending.request()
        assert request is not None, "a real run's queue holds whole messages only"
        pipes = self.program.pipes
        pipes.send(request)
        pipes.flush()
        now = self.clock()
        self.awaiting.append(pending)
        self.asked_at.append(now)
        self.deadlines.append(now + self.timeout)

    def fds(self) -> tuple[list[int], list[int]]:
        """What to wait on: stderr always (read continuously), stdout while an answer is
        awaited (an unasked line waits in the pipe for the next request, as in lock-step),
        stdin while a request waits for room in the pipe."""
        pipes = self.program.pipes
        readers = [] if pipes.closed_err else [pipes.stderr]
        if self.awaiting and not pipes.closed_out and pipes.failure is None:
            readers.append(pipes.stdout)
        return readers, [pipes.stdin] if pipes.wants_write else []

    def next_deadline(self) -> float | None:
        return self.deadlines[0] if self.deadlines else None

    def read(self, stderr: bool = True) -> int:
        """Take the answers that have come, in order; the number taken. Raises
        ProgramFailed (its ``tick`` the tick asked) for a wrong answer or a program gone.
        ``stderr``: read it too (False: a wait said it has nothing)."""
        pipes = self.program.pipes
        pipes.flush()
        if stderr:
            pipes.read_stderr()
        awaiting = self.awaiting
        if not awaiting:
            return 0
        taken = 0
        try:
            pipes.read_answers()
            now = self.clock()
            while awaiting and (line := pipes.next_line()) is not None:
                pending = awaiting[0]
                done = p.parse_done(line, pending.tick, pending.do, self.n, self.kept)
                awaiting.popleft()
                self.deadlines.popleft()
                if len(self.answer_s) < MAX_ANSWER_SAMPLES:
                    self.answer_s.append(now - self.asked_at.popleft())
                else:
                    self.asked_at.popleft()
                pending.resolve(done)
                taken += 1
        except p.ProtocolError as e:
            raise self._failed(e.reason, e.line) from None
        except ProgramGone:
            raise self._failed(self.program.why_gone(), self._head_request()) from None
        return taken

    def overdue(self) -> ProgramFailed | None:
        """The failure of the oldest request if its answer is late (SPEC 9.4), else None.
        A program whose own process has exited says so, not "no answer": a child it left
        holds its stdout open, so no end of file told it sooner (the simulator's reason)."""
        if self.deadlines and self.clock() >= self.deadlines[0]:
            program = self.program
            why = (program.why_gone() if program.exited()
                   else p.no_answer(self.timeout, program.pipes.partial))
            return self._failed(why, self._head_request())
        return None

    def _head_request(self) -> str:
        request = self.awaiting[0].request()
        return p.quote(request) if request is not None else ""

    def _failed(self, reason: str, line: str) -> ProgramFailed:
        failed = ProgramFailed(reason, line)
        failed.tick = self.awaiting[0].tick
        return failed

    def answer_ms(self) -> dict[str, float] | None:
        """How long the program took to answer (p50, p99, max, in ms) and how many answers."""
        if not self.answer_s:
            return None
        s = sorted(self.answer_s)
        n = len(s)
        return {"p50": round(s[n // 2] * 1e3, 3), "p99": round(s[min(n - 1, int(0.99 * n))] * 1e3, 3),
                "max": round(s[-1] * 1e3, 3), "n": n}


@dataclass(slots=True)
class Inflight:
    """A tick asked, its answer awaited: what the driver logs and sends once it comes."""

    pending: Pending
    step: Step
    #: The copies of its message (None: one to each recipient, at once; a perfect network).
    sends: list[Any] | None
    #: The drop lines of its message (their ``msg_lclock`` is filled by the answer).
    extra: list[dict[str, Any]]

    @property
    def done(self) -> bool:
        return self.pending.done


def take_back(node: Any, asked: Iterable[Inflight]) -> None:
    """Undo ticks that were asked but never answered (the program failed): the machine's
    counters, the messages their receives took off the queue (back at its head, in order),
    the dice-sent counts per link. The deadlines they used stay used (as a failed tick's
    does in lock-step); nothing of them was logged or sent."""
    machine = node.machine
    for entry in reversed(list(asked)):
        pending = entry.pending
        machine.ticks -= 1
        if pending.do == RECEIVE_EVENT:
            msg = pending.msg
            assert isinstance(msg, Message)
            node.queue.appendleft(msg)
            machine.received -= 1
            if pending.dup:
                node.dup_received -= 1
            elif node.seen is not None:
                node.seen.discard(msg.key())
        elif pending.do == SEND_EVENT:
            _untake_send(node, entry)


def _untake_send(node: Any, entry: Inflight) -> None:
    to = entry.pending.to or []
    node.machine.sent -= len(to)
    for dst in to:
        _less(node.sent_to, dst, 1)
    for drop in entry.extra:
        _less(node.dropped_to, drop["to"], 1)
    copies = Counter(out.dst for out in entry.sends or ())
    for dst in entry.pending.line.get("dup_to", ()) if entry.pending.line else ():
        _less(node.dup_to, dst, copies[dst] - 1)


def _less(counts: Counter[int], key: int, n: int) -> None:
    """``counts[key] -= n``, the key gone at 0 (as if it had never been counted)."""
    left = counts[key] - n
    if left > 0:
        counts[key] = left
    else:
        del counts[key]
