"""A model machine whose clock rules are a program's (SPEC 9): the world lclock's, the clocks
the program's.

``ProgramMachine`` is a ``Machine`` in every way a driver sees (the node calls ``step``, reads
``lclock``, ``ticks``, ``sent``, ``received``): the queue, the die and the peers are the
model's, read by the very same code, so a seed gives the same schedule of receives, sends
and internal events with a program as without one. Only the clocks differ: instead of the
rules, the program is asked, and its answer is what the tick logs and what its messages
carry.

``Programs`` starts one program per machine of a run, agrees with them on the clocks the run
keeps (``init``), and ends them all, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from lclock.core.model import (
    INTERNAL_EVENT,
    RECEIVE_EVENT,
    SEND_EVENT,
    Machine,
    Message,
    Step,
)
from lclock.impl import protocol as p
from lclock.impl.pipeline import Channel, LazyMessage, Pending
from lclock.impl.program import Program, ProgramFailed, ProgramSpec

#: The end of a program's stderr that run.json keeps (the file keeps 64 kB).
STDERR_IN_RUN_JSON = 4096


@dataclass(slots=True)
class ProgramMachine(Machine):
    """A machine whose clocks come from its program's answers, one request per tick."""

    program: Program | None = None
    kept: p.Clocks = field(default_factory=p.Clocks)
    timeout: float = 1.0
    #: The simulator's: a stop ends a wait for an answer (WaitInterrupted).
    stopping: Callable[[], bool] | None = None

    @classmethod
    def around(cls, machine: Machine, program: Program, kept: p.Clocks,
               timeout: float) -> ProgramMachine:
        """The same machine (its generator, peers and counters), its clocks now the program's."""
        return cls(machine.machine_id, machine.n, machine.rng, machine.dice_sides,
                   vector=kept.vector, hlc=kept.hlc, program=program, kept=kept,
                   timeout=timeout)

    def step(self, queue: deque[Message], pt: int | None = None, dup: bool = False) -> Step:
        self.ticks += 1  # pt: logged whenever the run has physical clocks, asked with HLC
        if queue:
            return self._receive(queue, pt, dup)
        dice, to = self.roll()
        do = INTERNAL_EVENT if to is None else SEND_EVENT
        done = self._ask(p.tick_request(self.ticks, do, to=to, pt=self._asked(pt)), do)
        if to is None:
            return Step(INTERNAL_EVENT, self.ticks, done.lclock, 0, vclock=done.vclock,
                        dice=dice, pt=pt, hlc=done.hlc)
        self.sent += len(to)
        assert done.msg_lclock is not None
        message = Message(self.machine_id, done.msg_lclock,
                          tuple(done.msg_vclock) if done.msg_vclock is not None else None,
                          pt, done.msg_hlc, self.ticks, done.msg)
        return Step(SEND_EVENT, self.ticks, done.lclock, 0, vclock=done.vclock, dice=dice,
                    to=to, message=message, pt=pt, hlc=done.hlc)

    def _receive(self, queue: deque[Message], pt: int | None, dup: bool) -> Step:
        msg = queue.popleft()
        raw = msg.raw if msg.raw is not None else p.builtin_message(msg.lclock, msg.vclock,
                                                                    msg.hlc)
        request = p.tick_request(self.ticks, RECEIVE_EVENT, sender=msg.sender, msg=raw, dup=dup,
                                 pt=self._asked(pt))
        try:
            done = self._ask(request, RECEIVE_EVENT)
        except ProgramFailed:
            queue.appendleft(msg)  # not received: the stop accounts for it as never handled
            raise
        self.received += 1
        return Step(RECEIVE_EVENT, self.ticks, done.lclock, len(queue), vclock=done.vclock,
                    sender=msg.sender, msg_lclock=msg.lclock, pt=pt, hlc=done.hlc,
                    msg_pt=msg.pt, msg_hlc=msg.hlc, send_tick=msg.send_tick)

    def _asked(self, pt: int | None) -> int | None:
        """The ``pt`` of a request: sent only when HLC is kept (SPEC 9.2), though the log has
        it whenever the run has physical clocks (section 7), as a built-in machine's has."""
        return pt if self.kept.hlc else None

    def _ask(self, request: bytes, do: str) -> p.Done:
        assert self.program is not None
        try:
            line = self.program.ask(request, self.timeout, self.stopping)
            done = p.parse_done(line, self.ticks, do, self.n, self.kept)
        except p.ProtocolError as e:
            failed = ProgramFailed(e.reason, e.line)
            failed.tick = self.ticks
            self.ticks -= 1  # the tick asked was not done: the log ends at the one before
            raise failed from None
        except ProgramFailed as e:
            e.tick = self.ticks
            self.ticks -= 1
            raise
        self.lclock = done.lclock
        if done.vclock is not None:
            self.vclock = done.vclock
        if done.hlc is not None:
            self.hlc_l, self.hlc_c = done.hlc
        return done


@dataclass(slots=True)
class AheadMachine(ProgramMachine):
    """A program's machine that asks ahead of the answers (``lclock.impl.pipeline``): its
    steps have the clocks still to come, filled into the logged line when they do."""

    channel: Channel | None = None
    #: The tick just asked: the simulator links it to the line it logs.
    last: Pending | None = None

    def step(self, queue: deque[Message], pt: int | None = None, dup: bool = False) -> Step:
        self.ticks += 1
        tick = self.ticks
        kept = self.kept
        asked = self._asked(pt)
        vc = [0] * self.n if kept.vector else None
        hlc = (0, 0) if kept.hlc else None
        if queue:
            msg = queue.popleft()
            self.received += 1
            pending = Pending(self, tick, RECEIVE_EVENT, pt=asked, msg=msg, dup=dup)
            step = Step(RECEIVE_EVENT, tick, 0, len(queue), vclock=vc, sender=msg.sender,
                        msg_lclock=0, pt=pt, hlc=hlc, msg_pt=msg.pt, msg_hlc=hlc,
                        send_tick=msg.send_tick)
        else:
            dice, to = self.roll()
            if to is None:
                pending = Pending(self, tick, INTERNAL_EVENT, pt=asked)
                step = Step(INTERNAL_EVENT, tick, 0, 0, vclock=vc, dice=dice, pt=pt, hlc=hlc)
            else:
                self.sent += len(to)
                out = LazyMessage(self.machine_id, tick, pt)
                pending = Pending(self, tick, SEND_EVENT, to=to, pt=asked, out=out)
                step = Step(SEND_EVENT, tick, 0, 0, vclock=vc, dice=dice, to=to,
                            message=cast(Message, out), pt=pt, hlc=hlc)
        self.last = pending
        assert self.channel is not None
        self.channel.submit(pending)
        return step


@dataclass
class Programs:
    """The programs of one run, by machine id: started, agreed with, and ended together."""

    specs: dict[int, ProgramSpec]
    run_dir: Path
    seed: int
    machines: int
    running: dict[int, Program] = field(default_factory=dict)
    failures: dict[int, ProgramFailed] = field(default_factory=dict)
    #: The clocks each program's ``init_ok`` kept.
    own: dict[int, p.Clocks] = field(default_factory=dict)
    #: The programs started again (``reoffer``), with what they kept the first time.
    again: dict[int, p.Clocks] = field(default_factory=dict)
    #: Whether lclock is stopping: a wait for ``init_ok`` (and in the simulator for any
    #: answer) then ends (WaitInterrupted).
    stopping: Callable[[], bool] | None = None
    #: Run the programs under SCHED_BATCH (a real run's: on waking, a program never takes
    #: the core from the machine that keeps the deadlines).
    batch: bool = False

    def start(self, offered: p.Clocks) -> p.Clocks:
        """Start every program and ``init`` it; the clocks every machine keeps.

        Raises ProgramFailed (recorded in ``failures``) for the first program that cannot
        start or answers ``init`` wrongly; the others are ended by ``close``. A program that
        kept more clocks than every machine keeps is started again (``reoffer``).
        """
        kept = offered
        for mid in sorted(self.specs):
            kept = self._launch(mid, offered).narrowed(_names(kept))
        self.reoffer(kept)
        return kept

    def _launch(self, mid: int, offered: p.Clocks) -> p.Clocks:
        """Start one program and ``init`` it with ``offered``; the clocks it keeps."""
        try:
            prog = Program(self.specs[mid], mid, self.machines, self.seed, self.scratch(mid),
                           f"lclock-{os.getpid()}-{self.run_dir.name}-{mid}", self.batch)
            self.running[mid] = prog
            own = self.own[mid] = prog.init(self.machines, offered, stopping=self.stopping)
        except ProgramFailed as e:
            self.failures[mid] = e
            raise
        return own

    def reoffer(self, kept: p.Clocks) -> None:
        """Start afresh, offered only ``kept``, every program that kept more (SPEC 9.8).

        A program learns the run's clocks from ``init`` alone: one that kept a clock another
        program does not keep would answer it, and a message from that other program would
        lack it. Raises ProgramFailed (recorded) if one then keeps fewer than offered.
        """
        for mid, own in sorted(self.own.items()):
            if own == kept or own.narrowed(_names(kept)) != kept or mid in self.failures:
                continue  # kept as offered, or the run keeps no fewer (no agreement came)
            self.running.pop(mid).close()
            shutil.rmtree(self.scratch(mid), ignore_errors=True)
            self.again[mid] = own
            again = self._launch(mid, kept)
            if again != kept:
                failure = ProgramFailed(
                    f"offered {kept.names()} after keeping {own.names()}, it kept "
                    f"{again.names()}: a program must keep every clock it kept before")
                self.failures[mid] = failure
                raise failure

    def scratch(self, mid: int) -> Path:
        """The program's own folder for files (LCLOCK_SCRATCH), inside the run folder."""
        return self.run_dir / f"machine-{mid}.scratch"

    def wrap(self, mid: int, machine: Machine, kept: p.Clocks,
             patience: float = 1.0) -> ProgramMachine:
        """Machine ``mid`` with its clocks now its program's. ``patience`` multiplies the
        answer timeout (the simulator waits 10x: time stands still while a program thinks,
        so only a hung one is failed, SPEC 9.4)."""
        out = ProgramMachine.around(machine, self.running[mid], kept,
                                    self.specs[mid].timeout * patience)
        out.stopping = self.stopping
        return out

    def wrap_ahead(self, mid: int, machine: Machine, kept: p.Clocks,
                   channel: Channel | None = None) -> AheadMachine:
        """Machine ``mid`` asking its program ahead of the answers: through ``channel`` (a
        real run's writes each request as it is asked), else the simulator's."""
        out = AheadMachine(machine.machine_id, machine.n, machine.rng, machine.dice_sides,
                           vector=kept.vector, hlc=kept.hlc, program=self.running[mid],
                           kept=kept)
        out.channel = channel or Channel(self.running[mid], machine.n, kept)
        return out

    def restart(self, offered: p.Clocks) -> None:
        """Start every program afresh (the simulator's replay in lock-step): the old ones
        killed, their scratch folders emptied."""
        for prog in self.running.values():
            prog.close()
        self.running.clear()
        self.failures.clear()
        for mid in self.specs:
            shutil.rmtree(self.scratch(mid), ignore_errors=True)
        with contextlib.suppress(ProgramFailed):  # kept in failures: the replay logs it
            self.start(offered)

    def ask_stop(self, mids: list[int], patience: float = 1.0) -> None:
        """Send each of these programs its ``stop`` at once; ``stop`` then awaits each answer
        within its timeout from now (hung programs are waited for together)."""
        for mid in mids:
            prog = self.running.get(mid)
            if prog is not None and mid not in self.failures:
                prog.ask_stop(patience)

    def stop(self, mid: int, patience: float = 1.0,
             stopping: Callable[[], bool] | None = None) -> None:
        """The polite end of one program; a failure to stop is that machine's failure.
        ``stopping`` ends the wait for ``stop_ok`` (WaitInterrupted) when it says so."""
        prog = self.running.get(mid)
        if prog is None or mid in self.failures:
            return
        try:
            prog.stop(patience, stopping)
        except ProgramFailed as e:
            self.failures[mid] = e

    def close(self) -> None:
        """Kill whatever is left of every program and write each one's stderr file."""
        for mid, prog in self.running.items():
            self._end(mid, prog)

    def _end(self, mid: int, prog: Program) -> None:
        prog.close()
        self._keep(mid, prog)

    def _keep(self, mid: int, prog: Program) -> None:
        """The program's stderr file; its scratch folder removed if it left nothing in it."""
        with contextlib.suppress(OSError):
            (self.run_dir / f"machine-{mid}.stderr").write_bytes(prog.stderr_tail)
        with contextlib.suppress(OSError):
            self.scratch(mid).rmdir()

    def pause(self, mid: int, stopped: bool) -> None:
        prog = self.running.get(mid)
        if prog is not None:
            prog.pause(stopped)

    def kill(self, mid: int) -> None:
        """A planned crash: the program dies with its machine. Its stderr is kept first: a
        real run's worker is SIGKILLed a moment after (SIGNAL_MARGIN), before any ``close``
        and maybe before the program's end is done."""
        prog = self.running.get(mid)
        if prog is not None:
            with contextlib.suppress(OSError):
                prog.pipes.read_stderr()
            self._keep(mid, prog)
            self._end(mid, prog)

    def run_json(self, offered: p.Clocks, kept: p.Clocks) -> dict[str, Any]:
        """run.json's ``impl``: each program's command, file and digest, the end of its
        stderr, how it is held, and the clocks agreed on."""
        machines: dict[str, Any] = {}
        for mid, spec in sorted(self.specs.items()):
            entry = spec.identity()
            prog = self.running.get(mid)
            if prog is not None:
                entry["stderr_tail"] = prog.stderr_tail[-STDERR_IN_RUN_JSON:].decode(
                    "utf-8", "replace")
                entry["stderr_bytes"] = prog.pipes.err_bytes
                entry["held_by"] = prog.jail.held_by
                entry["cpu_s"] = prog.cpu_s
            if mid in self.again:
                entry["started_again"] = (f"it kept {self.again[mid].names()}, the run keeps "
                                          f"{self.own.get(mid, self.again[mid]).names()}")
            failure = self.failures.get(mid)
            if failure is not None:
                entry["failed"] = {"reason": failure.reason, "line": failure.line}
            machines[str(mid)] = entry
        limits = next(iter(self.specs.values())).limits.to_json() if self.specs else None
        return impl_record(machines, offered, kept, limits)


def impl_record(machines: dict[str, Any], offered: p.Clocks, kept: p.Clocks,
                limits: dict[str, int] | None) -> dict[str, Any]:
    """run.json's ``impl`` from its programs' entries: with the clocks offered and kept, and
    a note when a program narrowed them."""
    out: dict[str, Any] = {"machines": machines, "clocks_offered": offered.names(),
                           "clocks_kept": kept.names()}
    if kept != offered:
        out["note"] = (f"a program keeps only {', '.join(kept.names())}: the run keeps "
                       "only the clocks every machine keeps")
    if limits is not None:
        out["limits"] = limits
    return out


def _names(clocks: p.Clocks) -> frozenset[str]:
    return frozenset(clocks.names())


def narrowed_settings(settings: Any, kept: p.Clocks) -> Any:
    """The run's settings with only the clocks every machine keeps."""
    return replace(settings, vector_clocks=settings.vector_clocks and kept.vector,
                   clocks=replace(settings.clocks, hlc=settings.clocks.hlc and kept.hlc))
