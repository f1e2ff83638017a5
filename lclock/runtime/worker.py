"""One model machine as a real OS process: the tick loop, the receiver and the graceful stop.

The worker is single-threaded around one ``select`` call per loop turn: it waits for the
next tick's absolute deadline while taking every arriving message off the sockets into
the queue, so messages are received continuously whatever the tick rate, without locks
and without a second thread competing for the GIL.

Signals: SIGINT is ignored (a terminal's Ctrl-C reaches the whole process group; only the
launcher acts on it). SIGTERM, a ``stop`` on the control pipe, or the launcher's death
(the parent sentinel reads EOF, even after SIGKILL) start the graceful stop: no more ticks
or sends, shut down our write side, read every peer to EOF, log ``stop``.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import select
import signal
import socket
import sys
import time
from array import array
from collections import Counter, deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import orjson
import structlog

from lclock.logfmt import format_ts
from lclock.model import Machine, Message, machine_setup
from lclock.runtime.transport import FrameError, PeerChannel, encode

STATUS_INTERVAL = 0.5
GO_TIMEOUT = 60.0
# After its last tick a machine waits at most this long for its peers' EOF (a peer on an
# overloaded machine may still be catching up on late ticks).
DRAIN_TIMEOUT = 10.0
# ... but when the launcher is gone, the whole exit must take under about 2 s.
ORPHAN_DRAIN_TIMEOUT = 1.0
MAX_SAMPLES = 2_000_000


@dataclass
class WorkerConfig:
    """Everything a worker needs; picklable, so it travels to a spawned process."""

    machine_id: int
    n: int
    run_id: str
    log_path: str
    seed: int
    rate: int
    duration: float
    dice_sides: int = 10
    vector: bool = True
    # The range the rates are drawn from: the draw comes first in the machine's generator
    # even when the rate is fixed, so the dice that follow depend on it.
    rate_min: int = 1
    rate_max: int = 6
    # Wake this long before a tick is due and poll until it is: a sleeping process wakes
    # late on a busy machine (p50 ~0.25 ms, p99 several ms here), a polling one does not.
    # The launcher turns it off for large N, where the polling would add up.
    spin: float = 0.001
    peer_socks: dict[int, socket.socket] = field(default_factory=dict)
    # TCP mode (lclock.tcp): an object with ``connect(cfg, log) -> dict[int, socket]`` and
    # ``extra_fds() -> dict[int, callable]`` for the listener that keeps refusing strangers.
    tcp: Any = None


def _render(_logger: Any, method: str, ed: dict[str, Any]) -> bytes:
    """structlog renderer: schema-v1 order (ts, event, level, run_id, machine, ...)."""
    line = {"ts": format_ts(time.time()), "event": ed.pop("event"), "level": method}
    line.update(ed)
    try:
        return orjson.dumps(line)
    except TypeError:  # integers beyond 64 bits: never lose the line
        import json

        return json.dumps(line, default=str).encode()


def make_logger(path: str, run_id: str, machine_id: int) -> Any:
    """A structlog logger writing whole lines to an unbuffered file: one write() per line.

    One write per line means a process killed at any moment leaves only whole lines.
    """
    fh = open(path, "ab", buffering=0)  # noqa: SIM115 - lives as long as the process
    return structlog.wrap_logger(
        structlog.BytesLogger(fh),
        processors=[_render],
        wrapper_class=structlog.make_filtering_bound_logger(0),
        cache_logger_on_first_use=True,
    ).bind(run_id=run_id, machine=machine_id)


# select() takes descriptors below FD_SETSIZE (1024) only, but a spawned child inherits the
# launcher's numbers, which run into the thousands for 64 machines. A child has few open
# files, so dup() gives it low numbers; select() keeps its microsecond timeouts (poll and
# epoll round to milliseconds).
def _low_fd(fd: int) -> int:
    """A low duplicate of an fd that multiprocessing still owns (and will close itself)."""
    return fd if fd < 512 else os.dup(fd)


def _low_fd_socket(sock: socket.socket) -> socket.socket:
    if sock.fileno() < 512:
        return sock
    new = sock.dup()
    sock.close()
    return new


def _low_fd_connection(conn: Connection) -> Connection:
    if conn.fileno() < 512:
        return conn
    new = Connection(os.dup(conn.fileno()))
    conn.close()
    return new


def _percentiles(samples: array, qs: tuple[float, ...]) -> list[float]:
    if not samples:
        return [0.0 for _ in qs]
    s = sorted(samples)
    return [s[min(len(s) - 1, int(q * len(s)))] for q in qs]


class Worker:
    def __init__(self, cfg: WorkerConfig, ctrl: Connection) -> None:
        self.cfg = cfg
        self.ctrl = _low_fd_connection(ctrl)
        self.log = make_logger(cfg.log_path, cfg.run_id, cfg.machine_id)
        _drawn, rng = machine_setup(cfg.seed, cfg.machine_id, cfg.rate_min, cfg.rate_max, None)
        self.machine = Machine(cfg.machine_id, cfg.n, rng, cfg.dice_sides, cfg.vector)
        self.queue: deque[Message] = deque()
        self.max_queue = 0
        self.channels: dict[int, PeerChannel] = {}
        self.stop_reason: str | None = None
        self.undelivered = 0
        self.lateness = array("f")
        self.latency = array("f")
        self.parent = multiprocessing.parent_process()
        self.parent_sentinel: int | None = None
        if self.parent is not None and self.parent.sentinel is not None:
            self.parent_sentinel = _low_fd(self.parent.sentinel)
        self.wake_r, self.wake_w = socket.socketpair()
        self.extra: dict[int, Any] = {}
        self.hurry = False
        self.orphaned_at: float | None = None  # when the launcher was found gone

    # -- set-up -------------------------------------------------------------------------

    def install_signals(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.wake_w.setblocking(False)
        self.wake_r.setblocking(False)
        signal.set_wakeup_fd(self.wake_w.fileno(), warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, _signum: int, _frame: Any) -> None:
        self.hurry = True  # the launcher's second stage: finish the drain quickly
        if self.stop_reason is None:
            self.stop_reason = "sigterm"

    def send_ctrl(self, msg: dict[str, Any]) -> None:
        try:
            self.ctrl.send_bytes(orjson.dumps(msg))
        except (OSError, ValueError):
            self._orphaned()

    def _orphaned(self) -> None:
        """The launcher is gone (even SIGKILL closes its pipes): stop, and fast."""
        if self.orphaned_at is None:
            self.orphaned_at = time.monotonic()
        if self.stop_reason is None:
            self.stop_reason = "launcher_gone"

    def control_fds(self) -> list[Any]:
        fds: list[Any] = [self.ctrl, self.wake_r]
        if self.parent_sentinel is not None:
            fds.append(self.parent_sentinel)
        return fds

    def handle_control(self, ready: list[Any]) -> dict[str, Any] | None:
        """React to the launcher, a signal or the launcher's death; return a 'go' message."""
        go = None
        for r in ready:
            if r is self.ctrl:
                try:
                    while self.ctrl.poll():
                        msg = orjson.loads(self.ctrl.recv_bytes())
                        if msg.get("t") == "go":
                            go = msg
                        elif msg.get("t") == "stop" and self.stop_reason is None:
                            self.stop_reason = str(msg.get("reason", "stop"))
                except (EOFError, OSError):
                    self._orphaned()
            elif r is self.wake_r:
                try:
                    self.wake_r.recv(512)
                except OSError:
                    pass
            elif r == self.parent_sentinel:
                self._orphaned()
        return go

    def read_peer(self, ch: PeerChannel) -> None:
        try:
            items = ch.read()
        except FrameError as exc:
            self.log.error("bad_frame", peer=ch.peer, error=str(exc))
            ch.read_open = False
            return
        if items:
            now = time.time()
            q = self.queue
            lat = self.latency
            for msg, sent_at in items:
                q.append(msg)
                if len(lat) < MAX_SAMPLES:
                    lat.append(now - sent_at)
            if len(q) > self.max_queue:
                self.max_queue = len(q)
        if not ch.read_open and ch.broken is not None:
            self.log.warning("peer_lost", peer=ch.peer, error=ch.broken)

    def poll_io(self, timeout: float) -> dict[str, Any] | None:
        """One select: read peers into the queue, flush sends, handle control. Returns 'go'."""
        readers: list[Any] = self.control_fds()
        readers.extend(ch for ch in self.channels.values() if ch.read_open)
        readers.extend(self.extra)
        writers = [ch for ch in self.channels.values() if ch.out]
        try:
            r, w, _ = select.select(readers, writers, [], max(0.0, timeout))
        except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for safety
            return None
        go = None
        for x in r:
            if isinstance(x, PeerChannel):
                self.read_peer(x)
            elif isinstance(x, int) and x in self.extra:
                self.extra[x]()
            else:
                go = self.handle_control([x]) or go
        for ch in w:
            ch.flush()
        return go

    # -- the run ------------------------------------------------------------------------

    def run(self) -> int:
        cfg = self.cfg
        self.log.info(
            "start",
            rate=cfg.rate,
            seed=cfg.seed,
            pid=os.getpid(),
            machines=cfg.n,
            dice_sides=cfg.dice_sides,
            vector_clocks=cfg.vector,
            peer_a=self.machine.peer_a,
            peer_b=self.machine.peer_b,
        )
        socks = cfg.peer_socks
        if cfg.tcp is not None:
            socks = cfg.tcp.connect(self)
            if socks is None:
                return self.graceful_stop()  # no ticks: stop before the start
            self.extra = cfg.tcp.extra_fds(self)
        self.channels = {p: PeerChannel(p, _low_fd_socket(s)) for p, s in socks.items()}
        self.send_ctrl({"t": "ready", "pid": os.getpid()})
        go = None
        deadline = time.monotonic() + GO_TIMEOUT
        while go is None and self.stop_reason is None:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop_reason = "start_timeout"
                break
            go = self.poll_io(min(left, 1.0))
        if go is None:
            return self.graceful_stop()  # no ticks: stop before the start
        t0_wall = float(go["t0"])
        self.log.info("connected", peers=sorted(self.channels), t0=format_ts(t0_wall), t0_epoch=t0_wall)
        self.tick_loop(t0_wall)
        return self.graceful_stop()

    def tick_loop(self, t0_wall: float) -> None:
        cfg = self.cfg
        rate = cfg.rate
        total = max(1, math.ceil(rate * cfg.duration - 1e-9))
        t0 = t0_wall - time.time() + time.monotonic()
        machine = self.machine
        queue = self.queue
        channels = self.channels
        log_info = self.log.info
        lateness = self.lateness
        mono = time.monotonic
        walltime = time.time
        next_status = mono()
        # Spin at most 1% of the tick period, so polling never costs more than 1% of a core.
        spin = min(cfg.spin, 0.01 / rate)
        done = 0
        polled = False  # the sockets were read since the last tick
        while done < total and self.stop_reason is None:
            due = t0 + done / rate
            now = mono()
            if now < due:
                wait = due - now - spin
                self.poll_io(wait if wait > 0 else 0.0)
                polled = True
                continue
            # Late or on time: run the tick now, after taking in what has arrived (unless
            # the wait that just ended did that: one select per tick, not two).
            if not polled:
                self.poll_io(0.0)
                if self.stop_reason is not None:
                    break
            polled = False
            if len(lateness) < MAX_SAMPLES:
                lateness.append(now - due)
            step = machine.step(queue)
            done += 1
            fields = step.log_fields()
            log_info(**fields)
            msg = step.message
            if msg is not None:
                frame = encode(msg, walltime())
                for peer in step.to or ():
                    ch = channels.get(peer)
                    if ch is None or not ch.send(frame):
                        self.undelivered += 1
                        self.log.error(
                            "send_failed",
                            to=peer,
                            lclock=msg.lclock,
                            tick=step.tick,
                            error=(ch.broken if ch is not None else "no channel") or "closed",
                        )
            if now >= next_status:
                next_status = now + STATUS_INTERVAL
                self.send_ctrl(
                    {"t": "status", "ticks": done, "lclock": machine.lclock, "queue": len(queue)}
                )
        if self.stop_reason is None:
            self.stop_reason = "duration"

    def graceful_stop(self) -> int:
        """Stop sending, read every peer to EOF, log ``stop`` with what was never handled."""
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while True:
            for ch in self.channels.values():
                if ch.write_open and not ch.out:
                    ch.shutdown_write()
            if all(not ch.read_open and not ch.out for ch in self.channels.values()):
                break
            if self.orphaned_at is not None:
                deadline = min(deadline, self.orphaned_at + ORPHAN_DRAIN_TIMEOUT)
            if self.hurry:
                deadline = min(deadline, time.monotonic() + 0.2)
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.poll_io(min(left, 0.2))
        open_peers = sorted(ch.peer for ch in self.channels.values() if ch.read_open)
        unsent = sum(1 for ch in self.channels.values() if ch.out)
        if open_peers:
            self.log.warning("drain_timeout", peers=open_peers)
        m = self.machine
        from_counts = Counter(msg.sender for msg in self.queue)
        lat = _percentiles(self.lateness, (0.5, 0.99, 1.0))
        net = _percentiles(self.latency, (0.5, 0.99))
        stats = {
            "reason": self.stop_reason,
            "ticks": m.ticks,
            "lclock": m.lclock,
            "sent": m.sent,
            "received": m.received,
            "unprocessed": len(self.queue),
            "unprocessed_from": {str(k): v for k, v in sorted(from_counts.items())},
            "max_queue": self.max_queue,
            "undelivered": self.undelivered,
            "lateness_ms": {"p50": lat[0] * 1e3, "p99": lat[1] * 1e3, "max": lat[2] * 1e3},
            "latency_us": {"p50": net[0] * 1e6, "p99": net[1] * 1e6, "n": len(self.latency)},
        }
        t = os.times()
        stats["cpu_s"] = round(t.user + t.system, 3)
        if unsent:
            stats["unsent_channels"] = unsent
        self.log.info("stop", **stats)
        self.send_ctrl({"t": "done", **stats})
        for ch in self.channels.values():
            ch.close()
        return 0


def worker_main(cfg: WorkerConfig, ctrl: Connection) -> None:
    """Entry point of the spawned process."""
    try:
        w = Worker(cfg, ctrl)
        w.install_signals()
    except OSError as exc:
        sys.stderr.write(f"lclock: machine {cfg.machine_id}: cannot start: {exc}\n")
        sys.exit(1)
    code = w.run()
    sys.exit(code)
