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
from runtime_fakes import OFFSET

from lclock.core.faults import FaultPlan, LinkSettings
from lclock.core.model import RECEIVE_EVENT, SEND_EVENT, Message
from lclock.core.node import MachinePlan, Node
from lclock.impl import protocol as p
from lclock.impl.ahead import Inflight, RealChannel, take_back
from lclock.impl.machine import AheadMachine
from lclock.impl.pipe import Pipes
from lclock.impl.pipeline import Channel, Pending
from lclock.impl.program import ProgramFailed
from lclock.transport.framing import FrameCodec, FrameReader

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
        self.ended = False  # its own process exited (its stdout may still be held open)

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

    def exited(self) -> bool:
        return self.ended

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


def test_a_program_that_exited_is_named_so_at_its_deadline(prog: Any) -> None:
    """Its own process ended but a child holds its stdout: no end of file came, so the
    deadline finds it, and says why (as the simulator does), not "no answer"."""
    clock = Time()
    ch = RealChannel(prog, 3, LAMPORT, 0.5, clock)
    ch.submit(internal(machine_of(ch), 1))
    prog.ended = True
    clock.t += 0.5
    failed = ch.overdue()
    assert failed is not None and failed.tick == 1 and failed.reason == "exited with code 3"


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


# -- the driver asking ahead, in virtual time ------------------------------------------------

class ScriptedProgram(FakeProgram):
    """A Lamport program that answers each request ``delay`` virtual seconds after it was
    written (it looks every 0.5 ms), and at tick ``wrong_at`` answers for another tick."""

    def __init__(self, world: Any, delay: float, wrong_at: int = 0) -> None:
        super().__init__()
        self.world, self.delay, self.wrong_at = world, delay, wrong_at
        self.lc = 0
        world.at(0.0, self.look)

    def look(self) -> None:
        for req in self.asked():
            self.world.at(self.world.t + self.delay, lambda req=req: self.reply(req))
        self.world.at(self.world.t + 0.0005, self.look)

    def reply(self, req: dict[str, Any]) -> None:
        if req["do"] == "receive":
            self.lc = max(self.lc, req["msg"]["lclock"]) + 1
        else:
            self.lc += 1
        tick = req["tick"] + (1 if req["tick"] == self.wrong_at else 0)
        done: dict[str, Any] = {"type": "done", "tick": tick, "lclock": self.lc}
        if req["do"] == "send":
            done["msg"] = {"lclock": self.lc}
        self.answer(orjson.dumps(done))


class FakeHost:
    """The driver's hooks into a program (``ProgramHost``'s), around a ``RealChannel``."""

    def __init__(self, channel: RealChannel) -> None:
        self.channel = channel
        self.failure: ProgramFailed | None = None

    def failed(self, exc: ProgramFailed) -> None:
        self.failure = self.failure or exc

    def pause(self, stopped: bool) -> None:
        pass

    def kill(self) -> None:
        pass

    def stop(self, _hurried: Any = None) -> None:
        return None

    def record(self) -> dict[str, Any]:
        return {"answer_ms": self.channel.answer_ms()}

    close = record


RATE, DELAY = 100, 0.035  # 3 to 4 ticks asked before the first one's answer comes


@pytest.fixture
def rig(tmp_path: Any) -> Any:
    from runtime_fakes import DriverRig

    rig = DriverRig(tmp_path, rates=(RATE, 4, 4), duration=0.5)
    yield rig
    rig.close()


def ahead_driver(rig: Any, wrong_at: int = 0) -> tuple[Any, ScriptedProgram]:
    """Machine 1 of ``rig``, its clocks a scripted program's, asked ahead of its answers."""
    from lclock.runtime.driver import RealTimeDriver

    prog = ScriptedProgram(rig.world, DELAY, wrong_at)
    node = rig.driver.node
    channel = RealChannel(prog, 3, LAMPORT, 1.0)  # type: ignore[arg-type]
    node.machine = machine_of(channel, 7)
    for j, at in ((2, 1.05), (3, 1.1), (2, 1.2), (3, 1.3)):
        rig.send_from(j, at)
    rig.every_peer_ends(1.6)
    driver = RealTimeDriver(node, rig.log, rig.transport(), rig.control, spin=0.0,
                            clock=rig.world, waiter=rig.world, program=FakeHost(channel))
    rig.driver = driver
    return driver, prog


def lamport_holds(ticks: list[dict[str, Any]]) -> bool:
    lc = 0
    for x in ticks:
        lc = max(lc, x["msg_lclock"]) + 1 if x["event"] == "receive" else lc + 1
        if x["lclock"] != lc:
            return False
    return True


def test_the_driver_asks_on_the_deadlines_and_logs_when_answered(rig: Any) -> None:
    """Each tick is asked exactly on its deadline though its answer takes 3.5 tick periods;
    the ticks are logged in order with the program's clocks, and each message leaves when
    its answer comes, not before."""
    ahead_driver(rig)
    done = rig.run()
    ticks = rig.ticks()
    assert [x["tick"] for x in ticks] == list(range(1, RATE // 2 + 1))
    assert lamport_holds(ticks) and any(x["event"] == "receive" for x in ticks)
    for k, x in enumerate(ticks):  # on its deadline (virtual time: to the microsecond)
        assert rig.when(x) == pytest.approx(rig.T0 + k / RATE, abs=2e-6)
    assert done["lateness_ms"]["max"] == pytest.approx(0.0, abs=1e-3)
    sends = {x["lclock"]: x for x in ticks if x["event"] == "send"}
    reader = FrameReader(FrameCodec(3, False), 1)
    rig.peer(2).setblocking(False)
    frames = reader.feed(rig.peer(2).recv(1 << 20))
    assert frames and [m.lclock for m, _s, _a in frames] == [
        lc for lc, x in sends.items() if 2 in x["to"]]
    for msg, sent_at, _at in frames:  # sent once answered: DELAY after its tick, or a look later
        asked = rig.when(sends[msg.lclock])
        assert DELAY <= sent_at - OFFSET - asked <= DELAY + 0.001
    assert done["reason"] == "duration" and done["ticks"] == RATE // 2


def test_a_wrong_answer_with_ticks_in_flight_ends_the_log_before_it(rig: Any) -> None:
    """The program answers tick 20 wrongly while ticks 21 to 23 are asked: the log ends at
    tick 19, then the error line; the stop line counts none of 20 to 23 (their receives'
    messages are unprocessed, their sends never left)."""
    ahead_driver(rig, wrong_at=20)
    done = rig.run()
    ticks = rig.ticks()
    assert [x["tick"] for x in ticks] == list(range(1, 20))
    error, stop = rig.lines()[-2:]
    assert (error["event"], error["tick"], stop["event"]) == ("error", 20, "stop")
    assert "expected tick 20" in error["reason"] and stop["reason"] == "program_failed"
    assert stop["ticks"] == 19 and done["ticks"] == 19
    assert stop["sent"] == sum(len(x["to"]) for x in ticks if x["event"] == "send")
    assert stop["received"] == sum(1 for x in ticks if x["event"] == "receive")
    assert stop["received"] + stop["unprocessed"] == sum(stop["taken_from"].values())
    for j in (2, 3):
        assert len(rig.received_by(j)) == stop["sent_to"].get(str(j), 0)
