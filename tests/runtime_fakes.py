"""A virtual world for the real-time loops: a clock that only moves when they wait.

``FakeWorld`` is both the ``Clock`` and the ``Waiter`` of a ``RealTimeDriver``. Time passes
only inside ``wait``: up to the timeout, or to the next scripted event, whichever comes
first. Events (a peer writes a frame, a signal arrives, the process is descheduled) are
functions run at virtual instants; what they make readable is seen through in-memory
sockets and pipes, with a real zero-timeout ``select``, so the driver's own channels and
controls are exercised unchanged. Nothing depends on the machine's speed or load.

``DriverRig`` is one machine of a socket-pair mesh run by such a world: the test holds the
peers' ends and scripts what they send and when they close.
"""

from __future__ import annotations

import heapq
import math
import select
import signal
import socket
from collections.abc import Callable, Sequence
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson

from lclock.core.faults import FaultPlan
from lclock.core.logline import parse_ts
from lclock.core.model import Message
from lclock.core.node import MachinePlan, Node
from lclock.lifecycle import StopRequest
from lclock.logfile import LogFile
from lclock.runtime.control import LauncherControl, LocalControl
from lclock.runtime.driver import Control, RealTimeDriver
from lclock.transport.framing import FrameCodec, FrameReader
from lclock.transport.socketpair import SocketPairLinks, socketpair_mesh

#: Epoch seconds at virtual monotonic 0 (exact in floats, like every instant used below).
OFFSET = 1_700_000_000.0
TICK_EVENTS = ("internal", "send", "receive")
#: A wait that would pass this many turns is a driver that spins for ever: fail, not hang.
MAX_WAITS = 200_000


class FakeWorld:
    """Virtual monotonic and wall clocks, and a ``wait`` that moves them."""

    def __init__(self, cost: float = 0.0) -> None:
        self.t = 0.0
        self.cost = cost  # virtual seconds a zero-timeout look takes (a spinning loop moves on)
        self.events: list[tuple[float, int, Callable[[], None]]] = []
        self.seq = 0
        self.waits: list[tuple[float, float]] = []  # (when, timeout) of every wait

    def monotonic(self) -> float:
        return self.t

    def time(self) -> float:
        return self.t + OFFSET

    def at(self, when: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` at virtual monotonic ``when`` (or at the first wait after it)."""
        self.seq += 1
        heapq.heappush(self.events, (when, self.seq, fn))

    def wait(self, readers: Sequence[Any], writers: Sequence[Any],
             timeout: float) -> tuple[list[Any], list[Any]]:
        assert timeout >= 0, timeout
        self.waits.append((self.t, timeout))
        if len(self.waits) > MAX_WAITS:
            raise AssertionError("the loop never ends: too many waits")
        end = self.t + (timeout if timeout > 0 else self.cost)
        if end <= self.t and timeout > 0:
            end = math.nextafter(self.t, math.inf)  # a timeout too small to move the float
        while True:
            self._fire()
            r, w = _ready(readers, writers)
            if r or w or self.t >= end:
                return r, w
            self.t = min(end, self.events[0][0]) if self.events else end

    def _fire(self) -> None:
        while self.events and self.events[0][0] <= self.t:
            _when, _seq, fn = heapq.heappop(self.events)
            fn()


def _ready(readers: Sequence[Any], writers: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    r, w, _x = select.select(readers, writers, (), 0)
    return r, w


def log_lines(path: Path, event: str | None = None) -> list[dict[str, Any]]:
    """A machine log's lines (those of ``event`` only, if given)."""
    with open(path, "rb") as fh:
        out = [orjson.loads(line) for line in fh]
    return [x for x in out if event is None or x["event"] == event]


class Peers:
    """The peers' ends of machine ``me``'s socket-pair mesh, and the signals it gets
    (``stop`` and the wakeup socket ``wake_r``), scripted on a ``FakeWorld``.

    Its start instant t0 is virtual monotonic ``T0`` (1.0), so tick k (from 0) is due at
    ``T0 + k / rate``.
    """

    T0 = 1.0

    def __init__(self, n: int, me: int = 1, cost: float = 0.0) -> None:
        self.me = me
        self.world = FakeWorld(cost)
        self.mesh = socketpair_mesh(n)
        self.codec = FrameCodec(n, False)
        self.lclocks = {j: 0 for j in self.mesh[me]}
        self.stop = StopRequest()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)

    def transport(self) -> SocketPairLinks:
        """Machine ``me``'s ends, as its driver is given them."""
        return SocketPairLinks(self.mesh[self.me])

    def peer(self, j: int) -> socket.socket:
        return self.mesh[j][self.me]

    def send_from(self, j: int, at: float) -> None:
        """Peer ``j`` sends one message at virtual ``at`` (its Lamport times 1, 2, 3, ...)."""

        def send() -> None:
            self.lclocks[j] += 1
            msg = Message(sender=j, lclock=self.lclocks[j])
            self.peer(j).sendall(self.codec.encode(msg, self.world.time()))

        self.world.at(at, send)

    def close_from(self, j: int, at: float) -> None:
        """Peer ``j`` ends its part at ``at``: it shuts down its sending side (EOF to us)."""
        self.world.at(at, lambda: self.peer(j).shutdown(socket.SHUT_WR))

    def every_peer_ends(self, at: float) -> None:
        for j in self.mesh[self.me]:
            self.close_from(j, at)

    def signal(self, sig: int, at: float) -> None:
        """A stop signal at ``at``, as the handler and the wakeup fd would deliver it."""

        def deliver() -> None:
            self.stop.record(sig)
            self.wake_w.send(signal.Signals(sig).to_bytes(1, "little"))

        self.world.at(at, deliver)

    def received_by(self, j: int) -> list[Message]:
        """What peer ``j`` has read from us so far, up to our EOF if it came."""
        reader = FrameReader(self.codec, self.me)
        sock = self.peer(j)
        sock.setblocking(False)
        got: list[Message] = []
        while True:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return got
            if not data:
                return got
            got.extend(m for m, _sent, _at in reader.feed(data))

    def when(self, line: dict[str, Any]) -> float:
        """The virtual monotonic instant of a log line (its ts, to the microsecond)."""
        return round(parse_ts(line["ts"]) - OFFSET, 6)

    def close(self) -> None:
        for ends in self.mesh.values():
            for sock in ends.values():
                sock.close()
        self.wake_r.close()
        self.wake_w.close()


class DriverRig(Peers):
    """Machine ``me`` of an ``n``-machine socket-pair mesh, its driver run by a ``FakeWorld``."""

    def __init__(self, tmp: Path, *, rates: tuple[int, ...] = (4, 4, 4), duration: float = 2.0,
                 faults: FaultPlan | None = None, me: int = 1, spin: float = 0.0,
                 launcher: bool = False, cost: float = 0.0) -> None:
        super().__init__(len(rates), me, cost)
        self.plan = MachinePlan(me, len(rates), "run-fake", 7, duration, rates=rates,
                                vector=False, hlc=False, faults=faults)
        self.log_path = tmp / f"machine-{me}.jsonl"
        self.log = LogFile.create(self.log_path)
        self.control: Control
        #: The launcher's end of the control pipe (``launcher=True``: a worker of lclock run,
        #: told ``go`` already); else a vm's local control that knows t0.
        self.launcher: Connection | None = None
        self.conn: Connection | None = None
        if launcher:
            self.conn, self.launcher = Pipe()
            self.control = LauncherControl(self.conn, None, self.wake_r, self.stop,
                                           clock=self.world)
            self.launcher.send_bytes(orjson.dumps({"t": "go", "t0": OFFSET + self.T0}))
        else:
            self.control = LocalControl(OFFSET + self.T0, self.wake_r, self.stop)
        self.driver = RealTimeDriver(Node(self.plan), self.log, self.transport(),
                                     self.control, spin=spin, clock=self.world,
                                     waiter=self.world)

    def tell(self, at: float, msg: dict[str, Any]) -> None:
        """The launcher sends ``msg`` on the control pipe at ``at``."""
        assert self.launcher is not None
        launcher = self.launcher
        self.world.at(at, lambda: launcher.send_bytes(orjson.dumps(msg)))

    def heard(self) -> list[dict[str, Any]]:
        """What the machine reported to its launcher."""
        assert self.launcher is not None
        out = []
        while self.launcher.poll():
            out.append(orjson.loads(self.launcher.recv_bytes()))
        return out

    def probe(self, at: float, fn: Callable[[], Any]) -> list[Any]:
        """What ``fn()`` says at virtual ``at`` (filled in once the run has passed it)."""
        seen: list[Any] = []
        self.world.at(at, lambda: seen.append(fn()))
        return seen

    # -- the results -------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        try:
            return self.driver.run()
        finally:
            self.log.close()

    def lines(self, event: str | None = None) -> list[dict[str, Any]]:
        return log_lines(self.log_path, event)

    def ticks(self) -> list[dict[str, Any]]:
        return [x for x in self.lines() if x["event"] in TICK_EVENTS]

    def close(self) -> None:
        super().close()
        for conn in (self.conn, self.launcher):
            if conn is not None:
                conn.close()
