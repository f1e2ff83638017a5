"""The reference programs keep exactly the model's clocks, request by request (SPEC 9.7).

An oracle apart from the drivers: three built-in machines (lclock.core.model) run a small
run with instant delivery, and every request they imply is put to one program per machine;
each answer must equal the model's clocks for that tick, and each message the programs carry
must be what the receivers get. A program that breaks a rule differs here on the first tick
that shows it.
"""

from __future__ import annotations

import subprocess
from collections import deque
from pathlib import Path

import pytest

from lclock.core.model import Machine, Message, machine_setup
from lclock.impl import protocol as p
from tests.impl_programs import LANGUAGES, build

N = 3
PT0 = 1_765_069_000_000_000


class Program:
    """One machine's program, driven in lock-step (the test's own simple client)."""

    def __init__(self, cmd: list[str]) -> None:
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     start_new_session=True)

    def ask(self, line: bytes) -> bytes:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line)
        self.proc.stdin.flush()
        return self.proc.stdout.readline()

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="module", params=LANGUAGES)
def command(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return build(request.param, tmp_path_factory.mktemp(request.param))


def _pt(tick: int, machine: int) -> int:
    """Physical clocks that disagree: machine 2 runs 3 ms ahead, machine 3 is 2 ms behind."""
    return PT0 + tick * 1_000 + {1: 0, 2: 3_000, 3: -2_000}[machine]


def _run(command: list[str], clocks: p.Clocks, seed: int, ticks: int) -> int:
    """Drive N programs beside N model machines; return the number of answers compared."""
    models = [Machine(i, N, machine_setup(seed, i, 1, 6, None)[1], vector=clocks.vector,
                      hlc=clocks.hlc) for i in range(1, N + 1)]
    queues: list[deque[tuple[Message, bytes]]] = [deque() for _ in range(N)]
    programs = [Program(command) for _ in range(N)]
    compared = 0
    try:
        for i, prog in enumerate(programs, 1):
            assert p.parse_init_ok(prog.ask(p.init_request(i, N, clocks)), clocks) == clocks
        for tick in range(1, ticks + 1):
            for i in range(1, N + 1):
                compared += _tick(models[i - 1], programs[i - 1], queues, clocks, tick)
        for prog in programs:
            p.parse_stop_ok(prog.ask(p.STOP_REQUEST))
    finally:
        for prog in programs:
            prog.close()
    return compared


def _tick(model: Machine, prog: Program, queues: list[deque[tuple[Message, bytes]]],
          clocks: p.Clocks, tick: int) -> int:
    me = model.machine_id
    queue = queues[me - 1]
    model_queue = deque(m for m, _raw in queue)
    pt = _pt(tick, me) if clocks.hlc else None
    step = model.step(model_queue, pt)
    if step.event == "receive":
        _msg, raw = queue.popleft()
        req = p.tick_request(step.tick, "receive", sender=step.sender, msg=raw, pt=pt)
    else:
        req = p.tick_request(step.tick, step.event, to=step.to, pt=pt)
    done = p.parse_done(prog.ask(req), step.tick, step.event, N, clocks)
    assert (done.lclock, done.vclock, done.hlc) == (step.lclock, step.vclock, step.hlc), req
    if step.event == "send":
        assert step.message is not None and step.to is not None and done.msg is not None
        assert done.msg_lclock == step.lclock
        for dst in step.to:
            queues[dst - 1].append((step.message, done.msg))
    return 1


@pytest.mark.timeout(120)
@pytest.mark.parametrize("clocks", [p.Clocks(), p.Clocks(vector=False, hlc=False),
                                    p.Clocks(vector=True, hlc=False)],
                         ids=["all-clocks", "lamport-only", "no-hlc"])
def test_a_reference_program_keeps_the_models_clocks(command: list[str], clocks: p.Clocks) -> None:
    assert _run(command, clocks, seed=7, ticks=120) == 120 * N


@pytest.mark.timeout(60)
def test_a_reference_program_answers_requests_in_any_spacing_and_order(
        command: list[str], tmp_path: Path) -> None:
    prog = Program(command)
    try:
        ok = p.parse_init_ok(prog.ask(b'{ "clocks" : ["lamport","vector"], "machines":3,'
                                      b' "machine" : 1, "type":"init", "extra": {"x":1} }\r\n'),
                             p.Clocks(hlc=False))
        assert ok == p.Clocks(hlc=False)
        done = p.parse_done(prog.ask(b'{"to": [2], "do" : "send", "tick":1, "type" : "tick"}\n'),
                            1, "send", 3, ok)
        assert (done.lclock, done.vclock) == (1, [1, 0, 0])
        done = p.parse_done(prog.ask(
            b'{"msg" : { "vclock" : [ 0, 9, 0 ] , "lclock" : 9 }, "from":2, "do":"receive",'
            b' "tick":2, "type":"tick", "dup": true}\n'), 2, "receive", 3, ok)
        assert (done.lclock, done.vclock) == (10, [2, 9, 0])
    finally:
        prog.close()
