"""A real run's program asked ahead of its answers (``lclock.impl.ahead``), without processes.

``RealChannel`` is driven over real pipes with a fake program at their other ends and a
fake clock: each request reaches the program as it is asked, answers resolve their ticks in
order, a wrong answer or a silent program fails at the tick asked, and a line nobody asked
for waits for the next request (as in lock-step). ``take_back`` undoes ticks asked but never
answered, so that a failed machine's counters are those of its last answered tick.
"""

from __future__ import annotations

import os
import random
from collections import Counter, deque
from typing import Any

import orjson
import pytest

from lclock.core.faults import FaultPlan, LinkSettings
from lclock.core.model import RECEIVE_EVENT, SEND_EVENT, Message
from lclock.core.node import MachinePlan, Node
from lclock.impl import protocol as p
from lclock.impl.ahead import Inflight, RealChannel, take_back
from lclock.impl.machine import AheadMachine
from lclock.impl.pipe import Pipes
from lclock.impl.pipeline import Channel, Pending
from lclock.impl.program import ProgramFailed

LAMPORT = p.Clocks(vector=False, hlc=False)


class FakeProgram:
    """The program's ends of three pipes: what it was asked, what it answers."""

    def __init__(self) -> None:
        in_r, self.stdin_w = os.pipe()
        self.stdout_r, self.out_w = os.pipe()
        self.stderr_r, self.err_w = os.pipe()
        self.asked_r = in_r
        self.pipes = Pipes(self.stdin_w, self.stdout_r, self.stderr_r)
        self.gone_reason = "exited with code 3"

    def asked(self) -> list[dict[str, Any]]:
        os.set_blocking(self.asked_r, False)
        try:
            data = os.read(self.asked_r, 1 << 16)
        except BlockingIOError:
            return []
        return [orjson.loads(x) for x in data.splitlines()]

    def answer(self, *lines: bytes) -> None:
        os.write(self.out_w, b"".join(x + b"\n" for x in lines))

    def why_gone(self) -> str:
        return self.gone_reason

    def close(self) -> None:
        for fd in (self.asked_r, self.stdin_w, self.stdout_r, self.out_w, self.stderr_r,
                   self.err_w):
            try:
                os.close(fd)
            except OSError:
                pass


class Time:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def prog() -> Any:
    fake = FakeProgram()
    yield fake
    fake.close()


def machine_of(channel: Channel, seed: int = 4) -> Any:
    """A Lamport-only machine 1 of 3 that asks through ``channel``."""
    out = AheadMachine(1, 3, random.Random(seed), 10, vector=False, hlc=False, kept=LAMPORT)
    out.channel = channel
    return out


def internal(machine: Any, tick: int) -> Pending:
    pending = Pending(machine, tick, "internal")
    pending.line = {"event": "internal", "tick": tick, "lclock": 0}
    return pending


def test_each_request_is_written_as_asked_and_answers_resolve_in_order(prog: Any) -> None:
    clock = Time()
    ch = RealChannel(prog, 3, LAMPORT, 0.5, clock)
    machine = machine_of(ch)
    first, second = internal(machine, 1), internal(machine, 2)
    ch.submit(first)
    assert [x["tick"] for x in prog.asked()] == [1]  # at once: no answer awaited first
    clock.t += 0.001
    ch.submit(second)
    assert [x["tick"] for x in prog.asked()] == [2]
    assert list(ch.deadlines) == [100.5, 100.501]
    clock.t += 0.003
    prog.answer(b'{"type":"done","tick":1,"lclock":1}')
    assert ch.read() == 1 and first.done and not second.done
    assert first.line is not None and first.line["lclock"] == 1 and machine.lclock == 1
    prog.answer(b'{"tick":2,"lclock":5,"type":"done","extra":true}')
    assert ch.read() == 1 and second.done and machine.lclock == 5
    answers = ch.answer_ms()
    assert answers is not None and answers["n"] == 2
    assert answers["max"] == pytest.approx(4.0, abs=0.01)  # asked at 100.0, read at 100.004
    assert ch.overdue() is None and ch.next_deadline() is None


def test_a_missing_answer_fails_at_its_deadline_naming_its_tick(prog: Any) -> None:
    clock = Time()
    ch = RealChannel(prog, 3, LAMPORT, 0.5, clock)
    machine = machine_of(ch)
    for tick in (1, 2, 3):
        ch.submit(internal(machine, tick))
        clock.t += 0.1
    prog.answer(b'{"type":"done","tick":1,"lclock":1}')
    assert ch.read() == 1
    clock.t = 100.1 + 0.5 - 0.001
    assert ch.overdue() is None  # tick 2 still has a moment
    clock.t = 100.1 + 0.5
    failed = ch.overdue()
    assert failed is not None and failed.tick == 2
    assert failed.reason == "no answer within 0.5 s" and '"tick":2' in failed.line


def test_an_answer_there_when_looked_at_counts_even_past_its_deadline(prog: Any) -> None:
    """As in lock-step: an answer read at the look is taken; only one not there is late."""
    clock = Time()
    ch = RealChannel(prog, 3, LAMPORT, 0.5, clock)
    ch.submit(internal(machine_of(ch), 1))
    prog.answer(b'{"type":"done","tick":1,"lclock":1}')
    clock.t += 0.7
    assert ch.read() == 1 and ch.overdue() is None


@pytest.mark.parametrize(("answer", "reason"), [
    (b'{"type":"done","tick":1,"lclock":1}', "answer for tick 1, expected tick 2"),
    (b"hello", "not JSON"),
])
def test_a_wrong_answer_fails_at_the_tick_it_answers(prog: Any, answer: bytes,
                                                    reason: str) -> None:
    ch = RealChannel(prog, 3, LAMPORT, 0.5, Time())
    machine = machine_of(ch)
    ch.submit(internal(machine, 1))
    ch.submit(internal(machine, 2))
    prog.answer(b'{"type":"done","tick":1,"lclock":1}', answer)
    with pytest.raises(ProgramFailed) as failed:
        ch.read()
    assert failed.value.tick == 2 and reason in failed.value.reason
    assert failed.value.line == p.quote(answer)
    assert machine.lclock == 1  # tick 1's answer was taken before


def test_a_program_gone_fails_with_why_and_the_request_it_left(prog: Any) -> None:
    ch = RealChannel(prog, 3, LAMPORT, 0.5, Time())
    ch.submit(internal(machine_of(ch), 1))
    os.close(prog.out_w)
    prog.out_w = -1
    with pytest.raises(ProgramFailed) as failed:
        ch.read()
    assert (failed.value.reason, failed.value.tick) == ("exited with code 3", 1)
    assert '"tick":1' in failed.value.line


def test_a_line_nobody_asked_for_waits_for_the_next_request(prog: Any) -> None:
    """With nothing awaited stdout is not read (nor watched): the line is judged as the next
    request's answer, as lock-step would have it."""
    ch = RealChannel(prog, 3, LAMPORT, 0.5, Time())
    prog.answer(b'{"type":"done","tick":1,"lclock":9}')
    assert ch.read() == 0
    readers, _writers = ch.fds()
    assert prog.pipes.stdout not in readers and prog.pipes.stderr in readers
    pending = internal(machine_of(ch), 1)
    ch.submit(pending)
    assert prog.pipes.stdout in ch.fds()[0]
    assert ch.read() == 1 and pending.line is not None and pending.line["lclock"] == 9


class Recorder(Channel):
    """A channel that only keeps what it is asked (no program)."""

    def __init__(self) -> None:
        self.asked: list[Pending] = []

    def submit(self, pending: Pending) -> None:
        self.asked.append(pending)


def faulty_node(seed: int) -> tuple[Node, Recorder]:
    faults = FaultPlan(seed=seed, default=LinkSettings(loss=0.3, duplicate=0.3))
    node = Node(MachinePlan(1, 3, "run-x", seed, 60.0, rates=(5, 5, 5), vector=False,
                            hlc=False, faults=faults))
    rec = Recorder()
    node.machine = machine_of(rec, seed)
    for sender, send_tick in ((2, 1), (3, 1), (2, 2), (2, 2), (3, 4)):  # (2, 2) twice: a dup
        node.take(Message(sender, send_tick, send_tick=send_tick))
    return node, rec


def ask(node: Node, rec: Recorder, ticks: int) -> list[Inflight]:
    out = []
    for _ in range(ticks):
        line, step, sends, extra = node.tick(1.0, 0.2 * node.slot)
        pending = rec.asked[-1]
        pending.line, pending.drops = line, extra
        out.append(Inflight(pending, step, sends, extra))
    return out


def state(node: Node) -> Any:
    return (node.stop_fields("x"), list(node.queue), set(node.seen or ()), node.machine.ticks,
            node.dup_received)


def test_ticks_taken_back_leave_the_machine_as_before_them() -> None:
    seen_kinds: Counter[str] = Counter()
    for seed in range(1, 9):
        node, rec = faulty_node(seed)
        ask(node, rec, 1)  # answered: stays
        before = state(node)
        later = ask(node, rec, 12)
        for entry in later:
            seen_kinds[entry.pending.do] += 1
            seen_kinds["drop"] += len(entry.extra)
            seen_kinds["dup"] += len(entry.pending.line.get("dup_to", ()))
            seen_kinds["dup_received"] += bool(entry.pending.dup)
        assert state(node) != before
        take_back(node, later)
        assert state(node) == before, seed
    # every kind of effect was taken back somewhere among the seeds
    assert all(seen_kinds[k] for k in (RECEIVE_EVENT, SEND_EVENT, "drop", "dup",
                                        "dup_received")), seen_kinds


def test_taking_back_counts_to_zero_removes_the_link_from_the_record() -> None:
    """A link whose only send is taken back is absent from ``sent_to``, as if never counted
    (as a lock-step run that failed at that send would have it)."""
    node, rec = faulty_node(3)
    node.queue.clear()
    node.seen = set()
    later = []
    while not any(x.pending.do == SEND_EVENT for x in later):
        later += ask(node, rec, 1)
    take_back(node, later)
    assert node.stop_fields("x")["sent_to"] == {} and node.machine.sent == 0
    assert deque(node.queue) == deque()
