"""The real-time driver: one machine's ``Node`` on a wall clock, over real sockets.

Single-threaded around one wait per loop turn (``Waiter``: ``select`` at the edge, a
virtual clock with scripted readiness in the tests): while the next tick's absolute
deadline approaches it takes every arriving message off the sockets into the queue, so
messages are received continuously whatever the tick rate, without locks and without a
second thread competing for the GIL. The node decides everything that is the model's;
this driver adds only time (the deadlines, the lateness) and I/O (the links, the log file,
the control channel).

The graceful stop: no more ticks or sends, shut down our write side, read every peer to
EOF, log ``stop`` with what was never handled. A peer that cannot be drained (stalled,
stopped, gone) is named in the stop line and the report, never silently skipped.
"""

from __future__ import annotations

import math
import os
import time
from array import array
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from lclock.core.faults import Pause
from lclock.core.logline import render
from lclock.core.node import Node, Outgoing
from lclock.core.snapshot import Marker
from lclock.logfile import LogFile, LogWriteError
from lclock.runtime.waiting import Clock, SelectWaiter, Waiter
from lclock.transport import Transport, TransportError
from lclock.transport.channel import PeerChannel
from lclock.transport.framing import FrameError
from lclock.transport.limited_warn import LimitedWarn

STATUS_INTERVAL = 0.5
GO_TIMEOUT = 60.0
# After its last tick a machine waits at most this long for its peers' EOF (a peer on an
# overloaded machine may still be catching up on late ticks).
DRAIN_TIMEOUT = 10.0
# ... but when the launcher is gone, the whole exit must take under about 2 s.
ORPHAN_DRAIN_TIMEOUT = 1.0
HURRY_DRAIN_TIMEOUT = 0.2
PAUSE_SLICE = 0.005
# A program's answers wake a machine whose next tick is further away than this; sooner, they
# are taken at that tick (SPEC 9.8).
ANSWER_WAKE = 0.002
MAX_SAMPLES = 2_000_000


class Hosted(Protocol):
    """A machine's program (``lclock.impl.host.ProgramHost``): the driver's hooks into it."""

    failure: Any
    #: Its requests and answers (``lclock.impl.ahead.RealChannel``; None: it failed init).
    channel: Any

    def failed(self, exc: Any) -> None: ...
    def abandon(self) -> None: ...
    def pause(self, stopped: bool) -> None: ...
    def kill(self) -> None: ...
    def stop(self, hurried: Any = None) -> Any: ...
    def record(self) -> dict[str, Any]: ...
    def close(self) -> dict[str, Any]: ...


class Control(Protocol):
    t0: float | None
    stop_reason: str | None
    hurry: bool
    urgent: bool
    orphaned_at: float | None
    killed_at_crash: bool

    def fds(self) -> list[Any]: ...
    def on_ready(self, ready: list[Any]) -> None: ...
    def report(self, msg: dict[str, Any]) -> None: ...


#: What to do when a peer goes away during the run: (peer, error or None for a plain EOF)
#: -> a reason to stop, or None to go on.
PeerGone = Callable[[int, "str | None"], "str | None"]


def _percentiles(samples: array[float], qs: tuple[float, ...]) -> list[float]:
    if not samples:
        return [0.0 for _ in qs]
    s = sorted(samples)
    return [s[min(len(s) - 1, int(q * len(s)))] for q in qs]


class RealTimeDriver:
    def __init__(
        self,
        node: Node,
        log: LogFile,
        transport: Transport,
        control: Control,
        *,
        spin: float = 0.001,
        clock: Clock = time,
        waiter: Waiter | None = None,
        on_peer_gone: PeerGone | None = None,
        low_fd: Callable[[Any], Any] = lambda s: s,
        program: Hosted | None = None,
        bodies: bool = False,
    ) -> None:
        self.node = node
        self.log = log
        self.transport = transport
        self.control = control
        # Wake this long before a tick is due and poll until it is: a sleeping process
        # wakes late on a busy machine (p50 ~0.25 ms, p99 several ms), a polling one does not.
        self.spin = spin
        self.clock = clock
        self.waiter = waiter if waiter is not None else SelectWaiter()
        self._wait = self.waiter.wait  # bound once: one wait per tick at 10,000 ticks/s
        self.on_peer_gone = on_peer_gone
        self.low_fd = low_fd
        # The machine's program (SPEC 9), and whether frames carry programs' messages.
        self.program = program
        self.bodies = bodies
        self.channels: dict[int, PeerChannel] = {}
        self.extra: dict[int, Callable[[], None]] = {}  # more fds to watch (TCP's gatekeeper)
        self.stop_reason: str | None = None
        #: (``pause`` or ``resume``, wall time) of each it logged: a vm lists them in
        #: run.json's faults.applied (no launcher paused it, so none saw them).
        self.pauses: list[tuple[str, float]] = []
        self.log_error: str | None = None
        self.warnings: LimitedWarn | None = None  # the transport's, once connected
        self.t0_wall: float | None = None
        self.t0_mono = 0.0
        self.lateness: array[float] = array("f")
        # How long after its planned delivery a delayed message entered the queue.
        self.delivery_lateness: array[float] = array("f")
        self.latency: array[float] = array("f")
        self.lost_peers: set[int] = set()
        self.halted = False  # crashed by the fault plan
        # A program's ticks are asked on their deadlines and logged when answered (SPEC
        # 9.8): the ticks asked (``lclock.impl.ahead.Inflight``) and, behind them, the lines
        # that must wait for them to keep the log in order.
        self.asking = program.channel if program is not None else None
        if self.asking is not None:
            self.asking.clock = clock.monotonic
        self.inflight: deque[Any] = deque()
        self.in_order = False  # writing the head of ``inflight``: its lines go straight out

    # -- logging ---------------------------------------------------------------------------

    def write(self, line: dict[str, Any]) -> None:
        """Log one line whole (after the ticks still awaiting their answers); a log that
        cannot be written stops the machine, once."""
        if self.inflight and not self.in_order:
            self.inflight.append(line)
            return
        if self.log_error is not None:
            return
        try:
            self.log.write(render(line))
        except LogWriteError as exc:
            self.log_error = str(exc)
            self._stop("log_failed")

    def emit(self, event: str, level: str = "info", **fields: Any) -> None:
        self.write(self.node.line(event, self.clock.time(), level, **fields))

    def _stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason

    def stopping(self) -> bool:
        """A stop was asked for (a call: the loops must re-read it after every wait)."""
        return self.stop_reason is not None

    # -- the links -------------------------------------------------------------------------

    def _lost(self, peer: int, why: str, frames: list[int]) -> None:
        """A link broke: the frames still waiting on it are lost, each logged."""
        for lclock in frames:
            self.node.undelivered += 1
            self.emit("send_failed", "error", to=peer, lclock=lclock, error=why, buffered=True)
        self._peer_gone(peer, why)

    def _peer_gone(self, peer: int, why: str | None) -> None:
        """A link broke (``why``) or read EOF (None): log a loss, ask the policy whether to stop.

        EOF is how every peer ends its part of the run; only the policy knows whether it
        came too early (``lclock vm``: before the peer's last tick was due).
        """
        if peer in self.lost_peers:
            return
        reason = None
        if self.on_peer_gone is not None and self.stop_reason is None:
            reason = self.on_peer_gone(peer, why)
        if why is None and reason is None:
            return
        self.lost_peers.add(peer)
        self.emit("peer_lost", "warning", peer=peer,
                  error=why or "closed before its last tick was due (it stopped or died)")
        if reason is not None:
            self._stop(reason)

    def _read_peer(self, ch: PeerChannel) -> None:
        was_open = ch.read_open
        try:
            items = ch.read()
        except FrameError as exc:
            self.emit("bad_frame", "error", peer=ch.peer, error=str(exc))
            ch.drop(f"sent a bad frame: {exc}")
            return
        if items:
            now = self.clock.time()
            node = self.node
            lat = self.latency
            held = False
            for msg, sent_at, deliver_at in items:
                if deliver_at > 0:
                    # The plan's latency (deliver_at: s since t0). Even a message already due
                    # goes through the held ones, so that it never overtakes an earlier one
                    # of its link still held (a marker too: SPEC 12).
                    node.hold(msg, deliver_at)
                    held = True
                elif isinstance(msg, Marker):
                    self._marker(msg, now)
                    continue
                else:
                    node.take(msg)
                if len(lat) < MAX_SAMPLES and sent_at:
                    lat.append(now - sent_at)
            if held:
                self._release(self.clock.monotonic() - self.t0_mono)
        if was_open and not ch.read_open and ch.broken is None:
            self._peer_gone(ch.peer, None)  # EOF: normal at the end, a loss before it

    # -- snapshots (SPEC 12) ------------------------------------------------------------------

    def _marker(self, marker: Marker, ts: float) -> None:
        """A marker came in: recorded at once (not at the next tick), markers sent on."""
        self._settle()
        to, lines = self.node.take_marker(marker, ts)
        for line in lines:
            self.write(line)
        self._send_markers(marker.snapshot, to)

    def _start_snapshots(self, t: float) -> None:
        """Start every snapshot of this machine due by ``t`` (s since t0)."""
        node = self.node
        while (due := node.next_snapshot()) is not None and due.time <= t:
            self._settle()
            snapshot, to = node.start_snapshot()
            self._send_markers(snapshot, to)

    def _send_markers(self, snapshot: int, to: list[int]) -> None:
        """A marker to each of ``to``, with the links' faults; one dropped, or on a link that
        is gone, is recorded as lost: its snapshot does not complete."""
        node = self.node
        assert node.snap is not None
        t = self.clock.monotonic() - self.t0_mono
        for dst in to:
            fate = node.marker_fate(dst, t)
            if fate.drop is not None:
                node.snap.lost(snapshot, dst, fate.drop)
                continue
            ch = self.channels.get(dst)
            for at in fate.arrivals:
                if ch is None or not ch.send_marker(snapshot, at):
                    node.snap.lost(snapshot, dst, "closed")

    def _markers_released(self) -> None:
        """What markers the held ones let out did: their lines, and markers sent on."""
        out, self.node.snap_out = self.node.snap_out, []
        for snapshot, to, lines in out:
            for line in lines:
                self.write(line)
            self._send_markers(snapshot, to)

    def poll_io(self, timeout: float) -> None:
        """One wait: read peers into the queue, flush sends, hear the control, take the
        program's answers (the wait ends by the oldest one's deadline)."""
        control = self.control
        readers: list[Any] = control.fds()
        readers.extend(ch for ch in self.channels.values() if ch.read_open)
        readers.extend(self.extra)
        writers: list[Any] = [ch for ch in self.channels.values() if ch.out]
        prog: tuple[int, ...] = ()
        answered = err = False
        if self.asking is not None:
            timeout, prog, answered = self._program_wait(readers, writers, timeout)
        r, w = self._wait(readers, writers, max(0.0, timeout))
        heard = []
        for x in r:
            if isinstance(x, PeerChannel):
                self._read_peer(x)
            elif isinstance(x, int) and x in self.extra:
                self.extra[x]()
            elif prog and x in prog:
                answered = True
                err = err or x == self._stderr_fd()
            else:
                heard.append(x)
        for ch in w:
            if isinstance(ch, PeerChannel):
                ch.flush()
            else:
                answered = True
        if answered or self._overdue():
            self._answers(err)
        if heard or control.stop_reason is not None:
            control.on_ready(heard)
            if control.stop_reason is not None:
                self._stop(control.stop_reason)

    # -- a program's ticks, asked ahead (SPEC 9.8) --------------------------------------------

    def _program_wait(self, readers: list[Any], writers: list[Any],
                      timeout: float) -> tuple[float, tuple[int, ...], bool]:
        """Add the program's pipes to a wait: the wait's timeout (until the oldest answer's
        deadline at most), the program's descriptors (none once it failed), and whether to
        take its answers after the wait whatever it saw.

        A wait shorter than ``ANSWER_WAKE`` (the next tick is near) watches the program's
        stderr only: its answers are taken when the wait ends, so a fast machine wakes once
        a tick, as a built-in one does, not twice (on a loaded machine each wake-up waits
        for a core). A longer wait watches its stdout too: an answer is logged and its
        message sent at once. Its stderr is read when a wait says it has something.
        """
        asking = self.asking
        if asking is None or self.program is None or self.program.failure is not None:
            return timeout, (), False
        deadline = asking.next_deadline()
        if deadline is not None:
            timeout = min(timeout, deadline - self.clock.monotonic())
        pr, pw = asking.fds()
        if timeout < ANSWER_WAKE:
            pr, pw = [fd for fd in pr if fd == asking.program.pipes.stderr], []
        readers.extend(pr)
        writers.extend(pw)
        return timeout, (*pr, *pw), timeout < ANSWER_WAKE

    def _stderr_fd(self) -> int:
        assert self.asking is not None
        return int(self.asking.program.pipes.stderr)

    def _overdue(self) -> bool:
        deadline = self.asking.next_deadline() if self.asking is not None else None
        return deadline is not None and self.clock.monotonic() >= deadline

    def _ask(self, t: float, sent_at: float) -> None:
        """A program's tick: asked now, logged and its message sent when answered."""
        node = self.node
        line, step, sends, extra = node.tick(sent_at, t)
        machine: Any = node.machine  # an ``AheadMachine``: ``last`` is the tick just asked
        pending = machine.last
        pending.line, pending.drops = line, extra
        from lclock.impl.ahead import Inflight

        self.inflight.append(Inflight(pending, step, sends, extra))

    def _answers(self, stderr: bool = True) -> None:
        """Take the program's answers (and its stderr, if ``stderr``): log the ticks
        answered and send their messages, in order; a wrong, missing or late answer fails
        the machine."""
        asking, program = self.asking, self.program
        if asking is None or program is None or program.failure is not None:
            return
        from lclock.impl.program import ProgramFailed

        failure: ProgramFailed | None = None
        try:
            asking.read(stderr)
        except ProgramFailed as exc:
            failure = exc
        self._log_answered()
        failure = failure or asking.overdue()
        if failure is not None:
            self._failed_ahead(failure)

    def _log_answered(self) -> None:
        """Write out the head of ``inflight`` as far as its ticks are answered."""
        inflight = self.inflight
        self.in_order = True
        try:
            while inflight:
                head = inflight[0]
                if isinstance(head, dict):
                    inflight.popleft()
                    self.write(head)
                    continue
                if not head.done:
                    break
                inflight.popleft()
                self.write(head.pending.line)
                for other in head.extra:
                    self.write(other)
                self._send(head.step, head.sends, self.clock.time())
        finally:
            self.in_order = False

    def _failed_ahead(self, exc: Any) -> None:
        """The program failed at tick ``exc.tick``: that tick and the ones asked after it
        did not happen (taken back), its error line, then the lines that waited."""
        waiting = self._take_back_asked()
        self._program_failed(exc)
        for line in waiting:
            self.write(line)

    def _take_back_asked(self) -> list[dict[str, Any]]:
        """Undo the ticks asked and not answered; the other lines that waited behind them."""
        from lclock.impl.ahead import take_back

        waiting = list(self.inflight)
        self.inflight.clear()
        take_back(self.node, [x for x in waiting if not isinstance(x, dict)])
        assert self.asking is not None
        self.asking.awaiting.clear()
        self.asking.deadlines.clear()
        return [line for line in waiting if isinstance(line, dict)]

    def _settle(self) -> None:
        """Wait for every answer asked for (each by its deadline): before what needs the
        machine's clocks (a snapshot, a pause, a crash, the stop) or the links' order.

        Hurried to stop (the launcher's SIGTERM, after its grace) while the program is still
        silent, it waits no more: those ticks did not happen (taken back, as at a failure,
        but without an error: the program is not to blame for the stop), the program is
        asked nothing more, and the machine stops gracefully before it is killed.
        """
        asking = self.asking
        if asking is None:
            return
        control = self.control
        while True:
            self._answers()
            if not asking.awaiting or self.program is None or self.program.failure is not None:
                return
            if control.hurry:
                for line in self._take_back_asked():
                    self.write(line)
                self.program.abandon()
                return
            readers, writers = asking.fds()
            heard = control.fds()
            deadline = asking.next_deadline()
            r, _w = self._wait([*readers, *heard], writers,
                               max(0.0, deadline - self.clock.monotonic()))
            control.on_ready([x for x in r if any(x is h for h in heard)])

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Start, connect, wait for the start instant, tick, stop; returns the done report."""
        node = self.node
        self.write(node.start_line(self.clock.time(), pid=os.getpid()))
        if self.program is not None and self.program.failure is not None:
            self._program_failed(self.program.failure)  # at init: no tick
            return self.graceful_stop()
        if not self._connect():
            return self.graceful_stop()
        self.control.report({"t": "ready", "pid": os.getpid()})
        t0 = self._wait_for_go()
        if t0 is None:
            return self.graceful_stop()  # no ticks: stopped before the start
        self.write(node.connected_line(self.clock.time(), sorted(self.channels), t0))
        self.tick_loop(t0)
        return self.graceful_stop()

    def _connect(self) -> bool:
        control = self.control

        def told_to_stop(ready: list[Any]) -> bool:
            control.on_ready(ready)
            return control.stop_reason is not None

        def emit_warning(event: str, **fields: Any) -> None:
            self.emit(event, "warning", **fields)

        warn = self.warnings = LimitedWarn(emit_warning)

        try:
            socks = self.transport.connect(control.fds(), told_to_stop, warn)
        except TransportError as exc:
            self.emit("connect_failed", "error", error=str(exc))
            self._stop("connect_failed")
            return False
        if socks is None:
            self._stop(control.stop_reason or "stopped")
            return False
        plan = self.node.plan
        for peer, sock in socks.items():
            send_codec, recv_codec = self.transport.codecs(peer, plan.n, plan.vector, plan.pt,
                                                           plan.hlc, self.bodies)
            self.channels[peer] = PeerChannel(
                peer, self.low_fd(sock), send_codec, recv_codec, on_lost=self._lost
            )
        self.transport.watch(self.extra, warn)
        return True

    def _wait_for_go(self) -> float | None:
        control = self.control
        deadline = self.clock.monotonic() + GO_TIMEOUT
        while control.t0 is None and self.stop_reason is None:
            left = deadline - self.clock.monotonic()
            if left <= 0:
                self._stop("start_timeout")
                break
            self.poll_io(min(left, 1.0))
        return control.t0 if self.stop_reason is None else None

    def tick_loop(self, t0_wall: float) -> None:
        node = self.node
        clock = self.clock
        rate = node.rate
        t0 = t0_wall - clock.time() + clock.monotonic()
        self.t0_wall, self.t0_mono = t0_wall, t0
        # a snapshot to start is looked after with the faults: an instant of the plan
        faulty = (node.plan.faults is not None and node.plan.faults.any) or bool(node.snaps_due)
        lateness = self.lateness
        mono = clock.monotonic
        report = self.control.report
        next_status = mono()
        # Spin at most 1% of the tick period, so polling never costs more than 1% of a core.
        spin = min(self.spin, 0.01 / rate)
        polled = False  # the sockets were read since the last tick
        while not node.finished and not self.stopping():
            due = t0 + node.slot / node.pace
            now = mono()
            if faulty:
                wake = self._faults(now - t0)
                if wake is None:
                    break  # crashed by the plan
                if wake < 0:
                    continue  # it paused: the time and the schedule moved on, look again
                if wake + t0 < due and now < due:
                    self.poll_io(max(0.0, min(wake + t0, due) - now))
                    continue
            if now < due:
                wait = due - now - spin
                self.poll_io(wait if wait > 0 else 0.0)
                polled = True
                continue
            # Late or on time: run the tick now, after taking in what has arrived (unless
            # the wait that just ended did that: one select per tick, not two).
            if not polled:
                self.poll_io(0.0)
                if self.stopping():
                    break
            polled = False
            if len(lateness) < MAX_SAMPLES:
                lateness.append(now - due)
            self._tick(now - t0)
            if now >= next_status:
                next_status = now + STATUS_INTERVAL
                report({"t": "status", "ticks": node.machine.ticks,
                        "lclock": node.machine.lclock, "queue": len(node.queue)})
        self._stop("duration")

    def _tick(self, t: float) -> None:
        node = self.node
        if node.held:
            self._release(t)
        sent_at = self.clock.time()
        if self.asking is not None:
            self._ask(t, sent_at)
            return
        line, step, sends, extra = node.tick(sent_at, t)
        write = self.write
        write(line)
        for other in extra:
            write(other)
        self._send(step, sends, sent_at)

    def _send(self, step: Any, sends: list[Outgoing] | None, sent_at: float) -> None:
        """A tick's message to its recipients (each copy as the fault plan has it)."""
        msg = step.message
        if msg is None:
            return
        node = self.node
        channels = self.channels
        if sends is None:  # no faults: one copy to each recipient, at once
            sends = [Outgoing(dst, 0.0) for dst in step.to or ()]
        for out in sends:
            ch = channels.get(out.dst)
            if ch is None or not ch.send(msg, sent_at, out.at):
                node.undelivered += 1
                self.emit("send_failed", "error", to=out.dst, lclock=msg.lclock,
                          tick=step.tick, error=(ch.broken if ch else None) or "closed")

    def _program_failed(self, exc: Any) -> None:
        """The program failed its machine (SPEC 9.5): its error line, its end, and the stop
        (the launcher stops the others)."""
        assert self.program is not None
        self.program.failed(exc)
        self.emit("error", "error", reason=exc.reason, line=exc.line,
                  tick=exc.tick if exc.tick is not None else self.node.machine.ticks)
        self.stop_reason = "program_failed"  # even if found after its last tick
        self.control.report({"t": "failed", "failed": exc.reason})  # the others stop now

    # -- faults ----------------------------------------------------------------------------

    def _faults(self, t: float) -> float | None:
        """Act on the fault plan at ``t`` (s since t0); when to look again (s since t0), -1
        after a pause (everything the caller knew is stale), None once crashed.

        The machine keeps to the plan itself, exactly: it stops ticking and taking messages
        in at a pause's start and until its end (the supervisor really stops the process
        meanwhile), and it halts at its crash (the supervisor kills it).
        """
        node = self.node
        if node.crashed_by(t):
            self._halt()
            return None
        if node.boundaries and node.boundaries[0][0] <= t:
            for line in node.due_fault_lines(self.clock.time(), t):
                self.write(line)
        pause = node.next_pause()
        if pause is not None and pause.start <= t:
            self._pause(pause)
            return -1.0
        if node.held:
            self._release(t)
        self._start_snapshots(t)
        snap = node.next_snapshot()
        times = [x for x in (node.next_release(), node.next_boundary(),
                             pause.start if pause is not None else None, node.crash_at,
                             snap.time if snap is not None else None)
                 if x is not None]
        return min(times) if times else math.inf

    def _release(self, t: float) -> None:
        """Held messages whose planned delivery has come enter the queue; how late, kept."""
        late = self.delivery_lateness
        if self.node.snap is not None and any(
                isinstance(msg, Marker) and due <= t for due, _seq, msg in self.node.held):
            self._settle()  # a marker let out records the machine's clocks
        for due in self.node.release(t):
            if len(late) < MAX_SAMPLES:
                late.append(t - due)
        if self.node.snap_out:
            self._markers_released()

    def _pause(self, pause: Pause) -> None:
        """Neither tick nor take messages in until the pause ends; then skip what fell due."""
        clock = self.clock
        self._settle()  # what it was asked before the pause it answers before it
        if self.stopping():
            return
        self.pauses.append(("pause", clock.time()))
        self.write(self.node.pause(pause, self.pauses[-1][1]))
        if self.program is not None:
            self.program.pause(True)
        end = self.t0_mono + pause.end
        while self.stop_reason is None:
            left = end - clock.monotonic()
            if left <= 0:
                break
            self._wait_control(left)
        if self.program is not None:
            self.program.pause(False)
        self.pauses.append(("resume", clock.time()))
        self.write(self.node.resume(self.pauses[-1][1], clock.monotonic() - self.t0_mono))

    def _halt(self) -> None:
        """The plan crashes this machine now: it does nothing more, and waits to be killed.

        No stop line: a crashed machine's log just ends. Should nobody kill it (the
        launcher gone, or the run stopping first), it leaves the same way, silently. A vm
        (no launcher) returns at once and its process ends, closing its connections.
        """
        self.halted = True
        self._settle()  # what it was asked before the crash it did (the log shows it)
        if self.program is not None:  # recorded, then killed: the launcher kills us soon
            self.control.report({"t": "impl", "entry": self.program.record()})
            self.program.kill()
        if not self.control.killed_at_crash:
            return  # a vm: it ends itself, as a crash would
        while self.stop_reason is None:
            self._wait_control(1.0)

    def _wait_control(self, timeout: float) -> None:
        """Wait listening to the control only (a paused or crashed machine reads no peer).

        In short slices: a process stopped (SIGSTOP) inside select() may sit out the whole
        timeout again once continued, so the wait is never longer than a slice past SIGCONT
        (which also wakes it at once: the worker has a SIGCONT handler).
        """
        control = self.control
        r, _w = self._wait(control.fds(), (), min(timeout, PAUSE_SLICE))
        control.on_ready(r)
        if control.stop_reason is not None:
            self._stop(control.stop_reason)

    # -- the end ---------------------------------------------------------------------------

    def drain(self) -> list[int]:
        """Shut down our sending side, read every peer to EOF; the peers left undrained."""
        control = self.control
        mono = self.clock.monotonic
        deadline = mono() + DRAIN_TIMEOUT
        channels = self.channels.values()
        while True:
            for ch in channels:
                if ch.write_open and not ch.out:
                    ch.shutdown_write()
            if all(not ch.read_open and not ch.out for ch in channels):
                break
            if control.orphaned_at is not None:
                deadline = min(deadline, control.orphaned_at + ORPHAN_DRAIN_TIMEOUT)
            if control.hurry:
                deadline = min(deadline, mono() + (0.0 if control.urgent else HURRY_DRAIN_TIMEOUT))
            left = deadline - mono()
            if left <= 0:
                break
            self.poll_io(min(left, 0.2))
        return sorted(ch.peer for ch in channels if ch.read_open or ch.out)

    def graceful_stop(self) -> dict[str, Any]:
        """Drain, then log ``stop`` with what was never handled; returns the done report."""
        if self.halted:  # crashed by the plan: no drain, no stop line
            crashed: dict[str, Any] = {"t": "done", "reason": "crashed",
                                       "ticks": self.node.machine.ticks,
                                       "lclock": self.node.machine.lclock}
            if self.node.snap is not None:
                crashed["snapshots"] = self.node.snap.status()
            self.control.report(crashed)
            return crashed
        self._settle()  # every tick asked is logged and its message sent before the drain
        undrained = self.drain()
        self.node.release_all(self.clock.time())
        if self.node.snap_out:
            self._markers_released()
        self.transport.stop_watching()
        if self.warnings is not None:
            self.warnings.flush()
        if undrained:
            self.emit("drain_timeout", "warning", peers=undrained)
        self._end_program()
        reason = self.stop_reason or "stopped"
        line = self.node.stop_line(self.clock.time(), reason, **self._stop_extras(undrained))
        self.write(line)
        if self.log_error is None and self.log.detached():
            self.log_error = "the log file was deleted during the run"
        done: dict[str, Any] = {"t": "done", **{k: v for k, v in line.items() if k not in _HEADER}}
        if self.program is not None and self.program.failure is not None:
            done["failed"] = self.program.failure.reason
        if self.log_error is not None:
            done["log_error"] = self.log_error
        if self.node.snap is not None:
            done["snapshots"] = self.node.snap.status()
        self.control.report(done)
        for ch in self.channels.values():
            ch.close()
        self.transport.close()
        return done

    def _end_program(self) -> None:
        """The program's polite end, and its record for run.json (before the stop line and
        the done report: a program that does not stop as the protocol says fails its
        machine)."""
        program = self.program
        if program is None:
            return
        if program.failure is None:
            exc = program.stop(self._hurried)
            if exc is not None:
                self.emit("error", "error", reason=exc.reason, line=exc.line,
                          tick=self.node.machine.ticks)
                self._stop("program_failed")
                self.stop_reason = "program_failed"
        self.control.report({"t": "impl", "entry": program.close()})

    def _hurried(self) -> bool:
        """Whether the stop is hurried (the launcher's SIGTERM), looked at now: a program's
        ``stop_ok`` is then waited for no longer."""
        control = self.control
        heard = control.fds()
        r, _w = self._wait(heard, (), 0.0)
        control.on_ready(r)
        return control.hurry

    def _stop_extras(self, undrained: list[int]) -> dict[str, Any]:
        """What the stop line adds to the node's counters: how the run went in real time."""
        lat = _percentiles(self.lateness, (0.5, 0.99, 1.0))
        net = _percentiles(self.latency, (0.5, 0.99))
        extra: dict[str, Any] = {
            "lateness_ms": {"p50": lat[0] * 1e3, "p99": lat[1] * 1e3, "max": lat[2] * 1e3},
            "latency_us": {"p50": net[0] * 1e6, "p99": net[1] * 1e6, "n": len(self.latency)},
        }
        if self.delivery_lateness:
            d = _percentiles(self.delivery_lateness, (0.5, 0.99, 1.0))
            extra["delivery_lateness_ms"] = {"p50": d[0] * 1e3, "p99": d[1] * 1e3,
                                             "max": d[2] * 1e3, "n": len(self.delivery_lateness)}
        t = os.times()
        extra["cpu_s"] = round(t.user + t.system, 3)
        if undrained:
            extra["undrained"] = undrained
        if self.lost_peers:
            extra["lost_peers"] = sorted(self.lost_peers)
        return extra


_HEADER = ("ts", "event", "level", "run_id", "machine")
