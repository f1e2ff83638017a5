"""The simulator: the pure model driven by a virtual clock and a simulated network.

Why a simulator at all: a real run of one minute takes one minute; exploring how jumps,
drift and queues depend on the rates and the dice needs hundreds of runs. The simulator
runs the very same ``lclock.core.node.Node`` as the real runtime (not a copy: the same
set-up, schedule, counters and log lines), on the same absolute-deadline schedule, but time is a number in a heap, not a wall clock, so an hour
of model time takes a fraction of a second and the same seed always gives the same bytes.

What is modelled, and what is not:

- ticks: machine i's tick k is due at ``(k - 1) / rate`` (SPEC 1.3), k = 1..ceil(rate*T)
  as in the real worker (when it runs: see scheduling below).
- the network: every message of a send event gets its own delay from a seeded generator
  (constant, uniform on 0..2*mean, or exponential), and channels are FIFO like a socket:
  a message never overtakes an earlier one on the same channel i->j.
- the real worker takes messages off its sockets "continuously" while it waits for the
  next deadline; here a message enters the queue at its arrival time. An arrival and a
  tick at exactly the same instant: the arrival goes first.
- scheduling: a real tick runs a little after its deadline (the process has to get a CPU),
  and when two machines have a deadline at the same instant (all of them at t0; rates 2
  and 4 every half second) that lateness decides whether a message sent at that instant
  is handled on this tick or the next. So each tick runs at ``deadline + J``, J drawn from
  an exponential of mean ``jitter`` (never before the previous tick; 0 = exactly on the
  deadline). The default is calibrated on real runs (NOTEBOOK.md, section 2).
- the end: every machine stops ticking at T; messages still in flight are then delivered
  into the queues and counted as ``unprocessed``, as in the real graceful stop.

NOTEBOOK.md measures how well this agrees with real runs.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import random
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from lclock.core.clocks import ClockSettings
from lclock.core.faults import applied_exactly
from lclock.core.logline import format_ts, render
from lclock.core.node import Node, Outgoing
from lclock.core.snapshot import Marker
from lclock.impl.machine import AheadMachine, Programs, narrowed_settings
from lclock.impl.pipeline import POLL_EVERY, LazyMessage, Pipeline
from lclock.impl.program import ProgramFailed, ProgramSpec, WaitInterrupted, specs_of
from lclock.impl.protocol import Clocks
from lclock.lifecycle import EXIT_CODES, StopRequest
from lclock.logfile import LogFile, LogWriteError
from lclock.runfolder import (
    RunEnd,
    RunFolderError,
    base_run_json,
    create_run_dir,
    machine_log_path,
    record_end,
    record_snapshots,
    remove_new_run_dir,
    write_run_json,
)
from lclock.runplan import RunPlan, plan_run

# The delay models and the defaults of [sim] are entries of the table of settings.
from lclock.setting_table import DEFAULT_DELAY as DEFAULT_DELAY
from lclock.setting_table import DEFAULT_DELAY_MEAN as DEFAULT_DELAY_MEAN
from lclock.setting_table import DEFAULT_JITTER as DEFAULT_JITTER
from lclock.settings import RunSettings, SettingsFile, resolve_table

#: Virtual time 0 of every simulated run: 2026-01-01T00:00:00Z. Fixed so that the logs of
#: a seed are byte-identical whenever and wherever the simulation runs.
SIM_EPOCH = 1_767_225_600.0


#: Time stands still while a program thinks: only one silent for --impl-timeout x this is
#: hung (SPEC 9.4), at every request: ticks, in lock-step or ahead, and stop.
SIM_PATIENCE = 10.0
#: Lines buffered per machine before one write: a write per line would dominate run time.
_FLUSH_LINES = 4096
#: Ticks between two looks at the stop request (a look costs little; a stop within ms).
_STOP_CHECK_EVERY = 1024


@dataclass(frozen=True)
class NetworkSettings:
    """The simulated environment: how long a message takes from send to the receiver's
    queue, and how late a tick runs after its deadline."""

    delay: str = DEFAULT_DELAY
    delay_mean: float = DEFAULT_DELAY_MEAN
    #: Optional cap on every drawn delay (the exponential has a long tail); None = no cap.
    delay_max: float | None = None
    #: Mean of the exponential tick lateness in seconds; 0 = every tick exactly on time.
    jitter: float = DEFAULT_JITTER

    def to_json(self) -> dict[str, Any]:
        return {
            "delay": self.delay,
            "delay_mean": self.delay_mean,
            "delay_max": self.delay_max,
            "jitter": self.jitter,
        }


def resolve_network(file: SettingsFile, flags: dict[str, Any]) -> NetworkSettings:
    """Built-in defaults < the settings file's ``[sim]`` table < flags, validated (the keys
    and their checks are in lclock.setting_table)."""
    return NetworkSettings(**resolve_table("sim", file, flags))


def sim_run_id(seed: int, settings: RunSettings, net: NetworkSettings,
               impl: dict[int, ProgramSpec] | None = None) -> str:
    """``sim-<seed>-<hash>``: deterministic, so re-running a simulation names the same folder.

    The hash covers exactly the settings that change the logs.
    """
    key = {
        "machines": settings.machines,
        "duration": settings.duration,
        "rate_min": settings.rate_min,
        "rate_max": settings.rate_max,
        "rates": list(settings.rates) if settings.rates else None,
        "dice_sides": settings.dice_sides,
        "vector_clocks": settings.vector_clocks,
        **net.to_json(),
    }
    if settings.faults.any:
        key["faults"] = settings.faults.to_json()
    if settings.clocks != ClockSettings():
        key["clocks"] = settings.clocks.to_json()
    if impl:
        key["impl"] = {str(mid): spec.command for mid, spec in sorted(impl.items())}
    if settings.snapshots:
        key["snapshots"] = [x.to_json() for x in settings.snapshots]
    if settings.mutant:
        key["mutant"] = settings.mutant
    digest = hashlib.sha256(orjson.dumps(key, option=orjson.OPT_SORT_KEYS)).hexdigest()[:8]
    return f"sim-{seed}-{digest}"


def _delay_fn(net: NetworkSettings, rng: random.Random) -> Any:
    """A function returning one message delay in seconds."""
    mean, cap = net.delay_mean, net.delay_max
    if net.delay == "constant" or mean == 0:
        d = mean if cap is None else min(mean, cap)
        return lambda: d
    if net.delay == "uniform":
        hi = 2 * mean
        draw = (lambda: rng.uniform(0.0, hi)) if cap is None else (lambda: min(rng.uniform(0.0, hi), cap))
        return draw
    lam = 1.0 / mean
    if cap is None:
        return lambda: rng.expovariate(lam)
    return lambda: min(rng.expovariate(lam), cap)


class SimStopped(Exception):
    """A stop signal arrived during the simulation; the folder keeps what was done.

    As in a real run's graceful stop, every machine has a stop line at ``t`` (seconds of
    simulated time) and the messages then in flight are in their receivers' queues;
    ``machines`` are their run.json entries.
    """

    def __init__(self, t: float = 0.0, machines: list[dict[str, Any]] | None = None) -> None:
        super().__init__(t)
        self.t = t
        self.machines = machines or []


class _BufferedLog:
    """A machine's log in the simulator: lines gathered and written whole, in batches.

    A write per line would dominate the run time; a batch is written with one call to
    ``LogFile.write``, which leaves the file on a line boundary even when the disk fills.
    """

    __slots__ = ("file", "lines")

    def __init__(self, file: LogFile) -> None:
        self.file = file
        self.lines: list[bytes] = []

    def add(self, line: dict[str, Any]) -> None:
        self.lines.append(render(line))
        if len(self.lines) >= _FLUSH_LINES:
            self.flush()

    def flush(self) -> None:
        if self.lines:
            data = b"".join(self.lines)
            self.lines.clear()
            self.file.write(data)


class _OrderedLog(_BufferedLog):
    """The log of a machine whose program answers later (``lclock.impl.pipeline``): a line
    waits until every tick before it has its clocks, so the file stays in order."""

    __slots__ = ("waiting",)

    def __init__(self, file: LogFile) -> None:
        super().__init__(file)
        self.waiting: deque[tuple[dict[str, Any], Any]] = deque()

    def add(self, line: dict[str, Any]) -> None:
        if self.waiting:
            self.waiting.append((line, None))
        else:
            super().add(line)

    def add_pending(self, line: dict[str, Any], extra: list[dict[str, Any]], pending: Any) -> None:
        self.waiting.append((line, pending))
        for other in extra:  # drop lines: their message's clock comes with the same answer
            self.waiting.append((other, pending))

    def settle(self) -> None:
        """Take every line whose clocks have come, in order, to be written."""
        waiting, lines = self.waiting, self.lines
        while waiting and (waiting[0][1] is None or waiting[0][1].done):
            lines.append(render(waiting.popleft()[0]))
        if len(lines) >= _FLUSH_LINES:
            _BufferedLog.flush(self)

    def flush(self) -> None:
        self.settle()
        _BufferedLog.flush(self)


class ReplayInLockstep(Exception):
    """A program failed while asked ahead: the run is made again, one request at a time, so
    the failure shows where it happened."""


ARRIVAL, CONTROL, TICK = 0, 1, 2


class Simulation:
    """The virtual-time driver: every machine is a ``Node``; time is a number in a heap.

    Heap entries are ``(time, kind, order, machine index, payload)``. At one instant a
    message arriving goes first, then what the fault plan does (a pause, a resume, a
    partition's start or heal, a crash), then the tick: an arrival at the instant of a tick
    is queued first, and a pause that starts at a deadline skips that tick. ``order`` keeps
    FIFO among equal times (ticks of one instant go in machine order).
    """

    def __init__(self, plan: RunPlan, net: NetworkSettings, epoch: float = SIM_EPOCH,
                 programs: Programs | None = None, ahead: bool = False) -> None:
        settings = plan.settings
        seed = plan.seed
        self.settings = settings
        self.epoch = epoch
        n = settings.machines
        faults = self.faults = plan.faults
        self.nodes = [Node(plan.machine(i)) for i in range(1, n + 1)]
        # Machines run by a program of the user's (SPEC 9): their clocks are its answers.
        self.programs = programs
        self.pipeline: Pipeline | None = None
        if programs is not None and not programs.failures:
            kept = Clocks(vector=settings.vector_clocks, hlc=settings.clocks.hlc)
            channels = {}
            for mid, spec in programs.specs.items():
                node = self.nodes[mid - 1]
                if ahead:
                    node.machine = machine = programs.wrap_ahead(mid, node.machine, kept)
                    assert machine.channel is not None
                    channels[mid] = machine.channel
                    self.pipeline = Pipeline(channels, spec.timeout * SIM_PATIENCE,
                                             programs.stopping)
                else:
                    node.machine = programs.wrap(mid, node.machine, kept, patience=SIM_PATIENCE)
        self.failed: tuple[int, ProgramFailed] | None = None
        # The network and the scheduling have generators of their own: changing the delay
        # model or the jitter never changes the dice.
        self.delay = _delay_fn(net, random.Random(f"lclock:net:{seed}"))
        # Markers (SPEC 12) take the network's delay from a generator of their own: a
        # snapshot changes no message's arrival.
        self.marker_delay = _delay_fn(net, random.Random(f"lclock:net:markers:{seed}"))
        self.jitter_lam = 1.0 / net.jitter if net.jitter > 0 else 0.0
        self.expo = random.Random(f"lclock:jitter:{seed}").expovariate
        self.fifo = faults is None or not faults.reorder
        self.last_tick = [0.0] * n
        self.dead = [False] * n
        # Each machine has one tick chain: a resume starts a new one (generation + 1) and
        # a tick of an older chain, still in the heap, is dropped. Otherwise a pause during
        # which no tick fell due left the old tick pending and added a second chain.
        self.gen = [0] * n
        self.stopped: str | None = None  # the stop line's reason once stopped early
        self.last_arrival: dict[tuple[int, int], float] = {}
        self.heap: list[tuple[float, int, int, int, Any]] = []
        self.order = itertools.count(1)

    def _push(self, t: float, kind: int, idx: int, payload: Any) -> None:
        # Ticks at one instant go in machine order; everything else in the order pushed.
        order = idx + 1 if kind == TICK else next(self.order)
        heapq.heappush(self.heap, (t, kind, order, idx, payload))

    def _plan_faults(self) -> None:
        for idx, node in enumerate(self.nodes):
            for pause in node.pauses:
                self._push(pause.start, CONTROL, idx, ("pause", pause))
                self._push(pause.end, CONTROL, idx, ("resume", pause))
            for when, _kind, _p in node.boundaries:
                self._push(when, CONTROL, idx, ("fault", None))
            if node.crash_at is not None:
                self._push(node.crash_at, CONTROL, idx, ("crash", None))
            for snap in node.snaps_due:
                self._push(snap.time, CONTROL, idx, ("snapshot", None))

    def run(self, logs: list[_BufferedLog], stop: StopRequest | None = None) -> None:
        """Simulate to the end (or until ``stop`` is requested), writing every line."""
        epoch = self.epoch
        for node, log in zip(self.nodes, logs):
            log.add(node.start_line(epoch, pid=0))
            # As in the real runtime: t0, the shared start instant, once all are connected.
            log.add(node.connected_line(epoch, node.machine.everyone, epoch))
        for idx in range(len(self.nodes)):
            self._push(self._lateness(), TICK, idx, 0)
        self._plan_faults()
        try:
            if self.programs is not None and self.programs.failures:  # at init: no tick
                mid, exc = next(iter(self.programs.failures.items()))
                exc.at = (0.0, mid - 1)
                raise exc
            self._loop(logs, stop)
            self._settle(logs)
        except WaitInterrupted:  # a stop, and a program silent since: given up (SPEC 9.8)
            self.stopped = GIVEN_UP
            raise SimStopped(max(self.last_tick)) from None
        except ProgramFailed as exc:  # the program's machine fails; the others stop
            if self.pipeline is not None:
                raise ReplayInLockstep from exc
            self._program_failed(exc, logs)
            return
        # The heap ran empty: every message still in flight after the last tick has been
        # taken into its queue, unhandled, as in the real graceful stop. A crashed machine
        # has no stop line.
        self._ask_stop([idx for idx in range(len(self.nodes)) if not self.dead[idx]])
        for idx, log in enumerate(logs):
            if not self.dead[idx]:
                self._end(idx, epoch + max(self.settings.duration, self.last_tick[idx]),
                          "duration", log)

    def _end(self, idx: int, ts: float, reason: str, log: _BufferedLog) -> None:
        """A machine's last line: its stop line, once its program (if any) has stopped as the
        protocol says; a program that does not is its machine's failure instead."""
        node = self.nodes[idx]
        if self.programs is not None and node.id in self.programs.specs:
            self.programs.stop(node.id, patience=SIM_PATIENCE)
            exc = self.programs.failures.get(node.id)
            if exc is not None:
                log.add(node.line("error", ts, "error", reason=exc.reason, line=exc.line,
                                  tick=node.machine.ticks))
                self.dead[idx] = True
                self.failed = self.failed or (node.id, exc)
                return
        log.add(node.stop_line(ts, reason))

    def _settle(self, logs: list[_BufferedLog]) -> None:
        """Every program's answers in (asked ahead), every line in its log."""
        if self.pipeline is not None:
            self.pipeline.drain()
            for log in logs:
                if isinstance(log, _OrderedLog):
                    log.settle()

    def _ahead_tick(self, node: Node, ts: float, t: float, log: _BufferedLog) -> Any:
        """A tick in a run whose programs are asked ahead: a program's tick is logged when
        its answer comes; a built-in machine taking a program's message waits for it."""
        pipeline = self.pipeline
        assert pipeline is not None
        machine = node.machine
        if isinstance(machine, AheadMachine):
            line, step, sends, extra = out = node.tick(ts, t)
            pending = machine.last
            assert pending is not None and isinstance(log, _OrderedLog)
            pending.line, pending.drops = line, extra
            log.add_pending(line, extra, pending)
            assert machine.channel is not None
            pipeline.make_room(machine.channel)
            return out
        head: Any = node.queue[0] if node.queue else None  # a program's message, maybe
        if isinstance(head, LazyMessage) and not head.ready:
            pipeline.message(head)
        out = node.tick(ts, t)
        log.add(out[0])
        for other in out[3]:
            log.add(other)
        return out

    def _loop(self, logs: list[_BufferedLog], stop: StopRequest | None) -> None:
        """The events in time order until the heap runs empty."""
        heap = self.heap
        pop, push = heapq.heappop, heapq.heappush
        epoch, nodes, dead = self.epoch, self.nodes, self.dead
        bufs = [log.lines for log in logs]
        last_tick, send = self.last_tick, self._send
        jitter, expo = self.jitter_lam, self.expo
        dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
        delay, fifo, last_arrival = self.delay, self.fifo, self.last_arrival
        order, gen = self.order, self.gen
        program_tick = self._program_tick if self.programs is not None else None
        steps = 0
        while heap:
            t, kind, _order, idx, payload = pop(heap)
            if dead[idx]:
                continue  # crashed: what reaches it is lost with it
            if kind != TICK:
                self._event(kind, idx, t, payload, logs)
                continue
            node = nodes[idx]
            if node.paused is not None or payload != gen[idx]:
                continue  # a paused machine's resume starts a new tick chain
            # A tick: the hot path of every simulation, kept inline.
            if program_tick is not None:
                line, step, sends, extra = program_tick(node, idx, t, logs, steps)
            else:
                line, step, sends, extra = node.tick(epoch + t, t)
                buf = bufs[idx]
                try:
                    buf.append(dumps(line, option=newline))
                except TypeError:  # beyond 64 bits: the renderer's fallback
                    buf.append(render(line))
                for other in extra:
                    buf.append(render(other))
                if len(buf) >= _FLUSH_LINES:
                    logs[idx].flush()
            if step.to:
                src = node.id
                msg = step.message
                if sends is None and fifo:  # the perfect network (inline: hot)
                    for dst in step.to:
                        arrival = t + delay()
                        prev = last_arrival.get((src, dst))
                        if prev is not None and prev > arrival:
                            arrival = prev
                        last_arrival[(src, dst)] = arrival
                        push(heap, (arrival, ARRIVAL, next(order), dst - 1, msg))
                else:
                    for out in sends if sends is not None else [Outgoing(d, 0.0) for d in step.to]:
                        send(src, out.dst, msg, t, out.at)
            last_tick[idx] = t
            if node.slot < node.total:
                due = node.slot / node.pace + (expo(jitter) if jitter else 0.0)
                # A late tick never overtakes the previous one.
                push(heap, (due if due > t else t, TICK, idx + 1, idx, payload))
            steps += 1
            if stop is not None and not steps % _STOP_CHECK_EVERY and stop.requested:
                self._stop_now(logs, t, stop.cause or "interrupted")
                raise SimStopped(t)

    def _event(self, kind: int, idx: int, t: float, payload: Any,
               logs: list[_BufferedLog]) -> None:
        """What is not a tick: a message arriving, or what the fault plan does."""
        if kind == CONTROL:
            self._control(idx, t, payload, logs[idx])
            return
        node = self.nodes[idx]
        if node.paused is not None and t < node.paused.end:  # taken in when it resumes
            self._push(node.paused.end, ARRIVAL, idx, payload)
        elif type(payload) is Marker:
            to, lines = node.take_marker(payload, self.epoch + t)
            for line in lines:
                logs[idx].add(line)
            self._send_markers(idx, payload.snapshot, to, t)
        else:
            node.take(payload)

    def _send_markers(self, idx: int, snapshot: int, to: list[int], t: float) -> None:
        """Markers on their links, with the links' faults and FIFO order (SPEC 12.1); a
        dropped one is recorded: its snapshot never completes."""
        node = self.nodes[idx]
        assert node.snap is not None
        for dst in to:
            fate = node.marker_fate(dst, t)
            if fate.drop is not None:
                node.snap.lost(snapshot, dst, fate.drop)
                continue
            for planned in fate.arrivals:
                arrival = max(t + self.marker_delay(), planned)
                if self.fifo:
                    prev = self.last_arrival.get((node.id, dst))
                    if prev is not None and prev > arrival:
                        arrival = prev
                    self.last_arrival[(node.id, dst)] = arrival
                self._push(arrival, ARRIVAL, dst - 1, Marker(snapshot, node.id))

    def _program_tick(self, node: Node, idx: int, t: float, logs: list[_BufferedLog],
                      steps: int) -> Any:
        """A tick in a run with programs: asked ahead (answers looked at every few steps), or
        in lock-step when the run is replayed to show a failure where it happened."""
        log = logs[idx]
        if self.pipeline is not None:
            out = self._ahead_tick(node, self.epoch + t, t, log)
            if not steps % POLL_EVERY:  # answers in, lines out: memory stays bounded
                self.pipeline.poll()
                for each in logs:
                    if isinstance(each, _OrderedLog):
                        each.settle()
            return out
        try:
            out = node.tick(self.epoch + t, t)
        except ProgramFailed as exc:
            exc.at = (t, idx)
            raise
        log.add(out[0])
        for other in out[3]:
            log.add(other)
        return out

    def _program_failed(self, exc: ProgramFailed, logs: list[_BufferedLog]) -> None:
        """A program failed its machine at the current event: its ``error`` line, then the
        graceful stop of every other machine (SPEC 9.5)."""
        t, idx = exc.at
        node = self.nodes[idx]
        logs[idx].add(node.line("error", self.epoch + t, "error", reason=exc.reason,
                                line=exc.line, tick=exc.tick or node.machine.ticks))
        self.dead[idx] = True
        self.failed = (node.id, exc)
        if self.programs is not None:
            self.programs.failures[node.id] = exc
            self.programs.kill(node.id)
        self._stop_now(logs, t, "peer_failed")

    def _stop_now(self, logs: list[_BufferedLog], t: float, reason: str) -> None:
        """The graceful stop at ``t``: what is in flight is taken into its queue (as the real
        stop drains the links), a pause is cut short, and every machine up logs its stop."""
        self.stopped = reason
        self._settle(logs)
        for _at, kind, _order, idx, payload in sorted(self.heap):
            # a marker in flight is lost with the stop: its snapshot does not complete
            if kind == ARRIVAL and not self.dead[idx] and type(payload) is not Marker:
                self.nodes[idx].take(payload)
        self.heap.clear()
        live = [idx for idx in range(len(self.nodes)) if not self.dead[idx]]
        for idx in live:
            if self.nodes[idx].paused is not None:
                logs[idx].add(self.nodes[idx].resume(self.epoch + max(t, self.last_tick[idx]), t))
        self._ask_stop(live)
        for idx in live:
            self._end(idx, self.epoch + max(t, self.last_tick[idx]), reason, logs[idx])

    def _ask_stop(self, live: list[int]) -> None:
        """Every live program asked to stop at once (each answer then awaited in turn, within
        its own timeout from now): after a program hung, its peers often hang too."""
        if self.programs is not None:
            self.programs.ask_stop([self.nodes[idx].id for idx in live], patience=SIM_PATIENCE)

    def _control(self, idx: int, t: float, payload: tuple[str, Any], log: _BufferedLog) -> None:
        node = self.nodes[idx]
        what, pause = payload
        ts = self.epoch + t
        if what == "pause":
            log.add(node.pause(pause, ts))
        elif what == "resume":
            log.add(node.resume(ts, t))
            self._schedule(idx, t)
        elif what == "fault":
            for line in node.due_fault_lines(ts, t):
                log.add(line)
        elif what == "snapshot":
            if node.paused is not None:  # a stopped process starts it when it goes on
                self._push(node.paused.end, CONTROL, idx, payload)
                return
            snapshot, to = node.start_snapshot()
            self._send_markers(idx, snapshot, to, t)
        elif what == "crash":
            self.dead[idx] = True
            if self.programs is not None and node.id in self.programs.specs:
                if self.pipeline is not None:  # what it was asked before the crash it did
                    self.pipeline.drain()
                self.programs.kill(node.id)  # a crash kills the machine's program too

    def _lateness(self) -> float:
        return self.expo(self.jitter_lam) if self.jitter_lam else 0.0

    def _schedule(self, idx: int, t: float) -> None:
        node = self.nodes[idx]
        self.gen[idx] += 1
        if not node.finished:
            due = node.next_due() + self._lateness()
            # A late tick never overtakes the previous one.
            self._push(max(due, t), TICK, idx, self.gen[idx])

    def _send(self, src: int, dst: int, msg: Any, t: float, planned: float) -> None:
        """The network's own delay, or the fault plan's arrival when later; FIFO unless
        reordering."""
        arrival = max(t + self.delay(), planned)
        if self.fifo:
            prev = self.last_arrival.get((src, dst))
            if prev is not None and prev > arrival:
                arrival = prev
            self.last_arrival[(src, dst)] = arrival
        self._push(arrival, ARRIVAL, dst - 1, msg)


def simulate(
    plan: RunPlan,
    net: NetworkSettings,
    run_dir: Path,
    epoch: float = SIM_EPOCH,
    stop: StopRequest | None = None,
    programs: Programs | None = None,
) -> list[dict[str, Any]]:
    """Simulate one run into ``run_dir`` (which must exist); each machine's stop counters.

    Only the machine log files are written here; run.json is the caller's (see ``run_sim``).
    ``programs`` (started, agreed on the clocks) run the machines they name (SPEC 9); a
    machine whose program failed has ``failed`` (the reason) in its entry.
    Raises SimStopped (``stop`` was requested) or LogWriteError; either way every line
    made so far is written whole.
    """
    # A snapshot records a machine's clocks when a marker comes: a program asked ahead may
    # not have answered for its last tick yet, so a run with snapshots goes in lock-step.
    if programs is not None and not programs.failures and not plan.settings.snapshots:
        try:
            return _simulate_once(plan, net, run_dir, epoch, stop, programs, ahead=True)
        except ReplayInLockstep:
            programs.restart(Clocks(vector=plan.settings.vector_clocks,
                                    hlc=plan.settings.clocks.hlc))
            for mid in range(1, plan.settings.machines + 1):
                machine_log_path(run_dir, mid).unlink(missing_ok=True)
    return _simulate_once(plan, net, run_dir, epoch, stop, programs, ahead=False)


def _simulate_once(plan: RunPlan, net: NetworkSettings, run_dir: Path, epoch: float,
                   stop: StopRequest | None, programs: Programs | None,
                   ahead: bool) -> list[dict[str, Any]]:
    sim = Simulation(plan, net, epoch, programs, ahead)
    logs: list[_BufferedLog] = []
    try:
        for node in sim.nodes:
            file = LogFile.create(machine_log_path(run_dir, node.id))
            ordered = ahead and isinstance(node.machine, AheadMachine)
            logs.append(_OrderedLog(file) if ordered else _BufferedLog(file))
        try:
            sim.run(logs, stop)
        except SimStopped as exc:
            exc.machines = (_entries(sim, sim.stopped or "interrupted")
                            if sim.stopped != GIVEN_UP else _given_up(sim))
            raise
    finally:
        _close_logs(logs)
    return _entries(sim, "duration")


def _given_up(sim: Simulation) -> list[dict[str, Any]]:
    """The machines' entries of a run stopped while a program was silent: no machine gave
    a stop report (the logs end at the last tick answered, without a stop line), as in a
    real run whose machines were killed; nothing is claimed that the logs do not show."""
    return [{"id": node.id, "rate": node.rate, "ticks": None, "lclock": None,
             "note": GIVEN_UP_NOTE} for node in sim.nodes]


def _entries(sim: Simulation, reason: str) -> list[dict[str, Any]]:
    """The machines' run.json entries: the stop counters, or a crashed machine's."""
    failures = sim.programs.failures if sim.programs is not None else {}
    if sim.failed is not None:  # the others stopped because of it
        reason = "peer_failed"
    out = []
    for node in sim.nodes:
        if node.id in failures:  # its program failed it: no stop report, like a crash
            entry = {**node.crashed_fields(), "reason": "program_failed",
                     "failed": failures[node.id].reason, "exit_code": 1}
            entry.pop("crashed_at", None)
        elif sim.dead[node.id - 1]:
            entry = node.crashed_fields()
        else:
            entry = node.stop_fields(reason)
        if node.snap is not None:
            entry["snapshots"] = node.snap.status()
        out.append({"id": node.id, "rate": node.rate, **entry})
    return out


def _close_logs(logs: list[_BufferedLog]) -> None:
    """Write what every log still holds (an interrupted run stays readable), then close."""
    error: LogWriteError | None = None
    for log in logs:
        try:
            log.flush()
        except LogWriteError as exc:
            error = error or exc
        finally:
            log.file.close()
    if error is not None:
        raise error


def _first_record(settings: RunSettings, rid: str, seed: int, net: NetworkSettings,
                  epoch: float) -> tuple[dict[str, Any], RunPlan]:
    """run.json as a simulation starts, and its plan: a simulation applies the plan exactly,
    so what the faults will do is known before it runs."""
    meta = base_run_json(rid, seed, settings.to_json(), epoch)
    meta["mode"] = "sim"
    meta["sim"] = {**net.to_json(), "epoch": format_ts(epoch)}
    plan = plan_run(settings, rid, seed)
    meta.update(plan.run_json())
    if plan.faults is not None:
        meta["faults"]["applied"] = applied_exactly(plan.faults, settings.machines)
    return meta, plan


def _stopped(exc: SimStopped, stop: StopRequest | None, plan: RunPlan, meta: dict[str, Any]
             ) -> tuple[RunEnd, list[dict[str, Any]], float]:
    """How a simulation a stop signal ended is recorded: its cause, its machines, its instant,
    and of the fault plan what it had done by then."""
    cause = stop.cause if stop is not None else None
    ended = RunEnd("interrupted", EXIT_CODES.get(cause or "sigint", 130), cause or "interrupted")
    if plan.faults is not None:
        meta["faults"]["applied"] = [a for a in meta["faults"]["applied"] if a["at"] <= exc.t]
    return ended, [{"pid": 0, "exit_code": 0, **m} for m in exc.machines], exc.t


#: ``Simulation.stopped`` when a stop came while a program was silent (``_given_up``).
GIVEN_UP = "stopped_while_program_silent"
GIVEN_UP_NOTE = ("no stop line: the run was stopped while a program was silent, and its "
                 "answers were not waited for")
#: Seconds the simulator still waits for the programs' answers after a stop signal: a
#: graceful stop takes what they answer by then; a silent one is given up.
STOP_SILENCE = 1.0


def silent_after(stop: StopRequest | None) -> Any:
    """``stopping`` for the simulator's programs: true once a stop was asked ``STOP_SILENCE``
    seconds ago (counted from the first look that saw it), so a hung program (the simulator
    waits 10 x ``--impl-timeout`` for one) never holds a Ctrl-C."""
    if stop is None:
        return None
    seen: list[float] = []

    def stopping() -> bool:
        if not stop.requested:
            return False
        now = time.monotonic()
        if not seen:
            seen.append(now)
        return now - seen[0] >= STOP_SILENCE

    return stopping


def _offered(settings: RunSettings) -> Clocks:
    return Clocks(vector=settings.vector_clocks, hlc=settings.clocks.hlc)


def _kept(meta: dict[str, Any]) -> Clocks:
    kept = meta.get("clocks", {}).get("kept", [])
    return Clocks(vector="vector" in kept, hlc="hlc" in kept)


def _start_programs(programs: Programs, settings: RunSettings, rid: str, seed: int,
                    meta: dict[str, Any]) -> RunPlan:
    """Start the programs and agree on the clocks: the plan keeps only those every machine
    keeps (run.json says which). A program that fails to start is logged by the run."""
    kept = _offered(settings)
    try:
        kept = programs.start(kept)
    except ProgramFailed:  # in programs.failures: the run logs it
        pass
    except WaitInterrupted:  # stopped before every program answered init: no tick
        raise SimStopped(0.0) from None
    narrowed = narrowed_settings(settings, kept)
    plan = plan_run(narrowed, rid, seed)
    meta["clocks"] = plan.run_json()["clocks"]
    meta["settings"] = narrowed.to_json()  # what the run kept (impl.clocks_offered: asked)
    return plan


def run_sim(
    settings: RunSettings, net: NetworkSettings, output: Path, run_id: str | None = None,
    epoch: float = SIM_EPOCH, stop: StopRequest | None = None,
    impl: dict[int, ProgramSpec] | None = None,
) -> tuple[Path, list[dict[str, Any]], dict[str, Any]]:
    """Make a new run folder under ``output``, simulate into it, write run.json.

    ``impl``: the machines run by a program of the user's (SPEC 9), by id (default: as the
    settings say); a run whose program failed ends ``failed``.

    Returns the run folder, the machines' run.json entries and the run.json written. A
    folder that exists is never touched: an explicit ``run_id`` that exists is a
    RunFolderExists error; the default deterministic id gets a suffix (-2, -3, ...).
    Raises SimStopped or LogWriteError after run.json says how the run ended.
    """
    seed = settings.seed if settings.seed is not None else random.SystemRandom().randrange(2**31)
    settings_used = settings if settings.seed == seed else replace(settings, seed=seed)
    impl = impl if impl is not None else specs_of(settings)
    run_dir = create_run_dir(output, run_id) if run_id else create_run_dir(
        output, sim_run_id(seed, settings_used, net, impl), suffix_if_taken=True)
    rid = run_dir.name
    wall0 = time.time()
    meta, plan = _first_record(settings_used, rid, seed, net, epoch)
    try:
        write_run_json(run_dir, meta, reserve_next=True, must_reserve=True)
    except RunFolderError:
        remove_new_run_dir(run_dir)  # a disk full before the start: nothing is left
        raise
    ended = RunEnd("interrupted", 130, "interrupted")
    machines: list[dict[str, Any]] = []
    ended_t = settings_used.duration
    programs = Programs(impl, run_dir, seed, settings_used.machines,
                        stopping=silent_after(stop)) if impl else None
    try:
        if programs is not None:
            plan = _start_programs(programs, settings_used, rid, seed, meta)
        machines = [{"pid": 0, "exit_code": 0, **m}
                    for m in simulate(plan, net, run_dir, epoch, stop, programs)]
        failed = [m for m in machines if "failed" in m]
        record_snapshots(meta, machines)
        ended = (RunEnd("failed", 1, f"machine {failed[0]['id']}: {failed[0]['failed']}")
                 if failed else RunEnd("completed", 0, "duration"))
    except SimStopped as exc:
        ended, machines, ended_t = _stopped(exc, stop, plan, meta)
        record_snapshots(meta, machines)
        raise
    except LogWriteError as exc:
        ended = RunEnd("failed", 1, f"cannot write the machine logs: {exc}")
        raise
    finally:
        if programs is not None:  # ended whatever happened, and recorded
            programs.close()
            meta["impl"] = programs.run_json(_offered(settings_used), _kept(meta))
        record_end(meta, ended, epoch + ended_t, machines)
        meta["wall_seconds"] = round(time.time() - wall0, 3)
        try:
            write_run_json(run_dir, meta)
        except RunFolderError as exc:
            raise LogWriteError(str(exc)) from None
    return run_dir, machines, meta
