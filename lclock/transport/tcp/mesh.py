"""Building the authenticated full mesh of one machine, and guarding its port afterwards.

Machine ``i`` dials every machine ``j < i`` and accepts the machines ``j > i``, so each pair
has exactly one connection and nobody needs to break a tie. Everything runs in one
``select`` loop with deadlines: peers that are not up yet are retried with backoff,
strangers are handshaken in parallel with the real peers, and a stranger that is slow or
silent only holds its slot until its handshake deadline.

In ``vm`` mode (no launcher to say "go") the machines also agree on the start: every
machine other than 1 sends READY to machine 1 once its own connections are all up;
machine 1, when it has every READY, sends START (run id, seed, start instant, rates) to
everyone. Only then does anyone begin to tick.

After set-up the listener stays open for the whole run (``gatekeeper.Gatekeeper``).
"""

from __future__ import annotations

import errno
import os
import random
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from lclock.transport.tcp.handshake import (
    HANDSHAKE_TIMEOUT,
    T_READY,
    T_START,
    Handshake,
    HandshakeError,
    RecordReader,
    addr_text,
    connect_error,
    record,
    start_connect,
    tune_peer_socket,
)

MAX_PENDING = 16  # concurrent unauthenticated connections; past it the oldest is dropped
BACKOFF_FIRST = 0.05
BACKOFF_MAX = 2.0
PROGRESS_EVERY = 1.0  # how often to look whether there is news
PROGRESS_REPEAT = 10.0  # how often to repeat the same news

Warn = Callable[..., None]


class SetupError(Exception):
    """The mesh could not be built (a peer never came, or left before the start)."""


@dataclass
class MeshSpec:
    """What one machine must know about the cluster; picklable (travels to a spawned worker)."""

    me: int
    n: int
    addrs: list[tuple[str, int]]  # addrs[i - 1] is where machine i listens
    secret: bytes
    context: str  # inside every MAC: the run id, or the cluster's fingerprint in vm mode
    handshake_timeout: float = HANDSHAKE_TIMEOUT
    #: How long a handshake we dialled may take, if not ``handshake_timeout``: under the
    #: launcher every address is a listener it bound for that peer, so nobody else can
    #: answer there and a silence is a peer whose process has not started yet (on a busy
    #: host, seconds): dialling again would only leave it a dead connection to reject.
    dial_timeout: float | None = None
    #: How long a handshake accepted during set-up may take, if not ``handshake_timeout``:
    #: under the launcher the dialler is a machine of the run whose process may not get a
    #: core for seconds on a busy host (32 machines starting on 2 busy cores were cut off
    #: at 2 s mid-handshake, and both sides logged warnings). A stranger gains nothing by
    #: it: the pending handshakes are turned away as soon as every peer is in, and set-up
    #: itself has a deadline. During the run the ``Gatekeeper`` keeps ``handshake_timeout``.
    accept_timeout: float | None = None

    def addr(self, i: int) -> str:
        return addr_text(self.addrs[i - 1])


class _Dial:
    """Our outgoing connection to one lower-numbered machine, with retry and backoff."""

    def __init__(self, peer: int) -> None:
        self.peer = peer
        self.sock: socket.socket | None = None
        self.hs: Handshake | None = None
        self.next_try = 0.0
        self.attempts = 0
        self.last_error = "not tried yet"

    def fail(self, why: str, now: float) -> None:
        self.last_error = why
        if self.sock is not None:
            self.sock.close()
        self.sock = None
        self.hs = None
        delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** min(self.attempts, 10))
        self.next_try = now + delay * random.uniform(0.8, 1.2)


class Mesh:
    """Builds this machine's authenticated connections to every peer."""

    def __init__(
        self,
        spec: MeshSpec,
        listener: socket.socket,
        warn: Warn,
        progress: Callable[[str], None] | None = None,
        coordinate: bool = False,
        start_info: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.spec = spec
        self.listener = listener
        self.warn = warn
        self.progress = progress
        self.coordinate = coordinate
        self.start_info = start_info
        self.conns: dict[int, socket.socket] = {}
        self.keys: dict[int, tuple[bytes, bytes]] = {}  # per peer: (send key, receive key)
        self.dials = {j: _Dial(j) for j in range(1, spec.me)}
        self.accept_from = frozenset(range(spec.me + 1, spec.n + 1))
        self.pending: list[Handshake] = []
        self.readers: dict[int, RecordReader] = {}
        self.ready_from: set[int] = set()
        self.sent_ready = False
        self.start: dict[str, Any] | None = None
        listener.setblocking(False)

    # -- the loop ---------------------------------------------------------------------------

    def run(
        self,
        deadline: float,
        stop_fds: list[Any] | None = None,
        on_stop_fd: Callable[[list[Any]], bool] | None = None,
        idle: float | None = None,
    ) -> dict[int, socket.socket] | None:
        """Connect, authenticate (and in vm mode agree on the start); None if told to stop.

        Raises SetupError when ``deadline`` (monotonic) passes first. With ``idle`` (the
        launcher's machines), each new peer moves the deadline to at least ``idle`` seconds
        later: set-up fails when it stops advancing, not because it is slow. A busy host
        starts a large run's processes over tens of seconds (32 machines at load 40: the
        last one 18 s after the first, which gave up at 20 s while peers were still
        arriving); a peer that never comes still fails it, ``idle`` after the last one.
        """
        next_progress = time.monotonic() + 0.5
        last_text, last_said = "", 0.0
        joined = 0
        while not self._finished():
            now = time.monotonic()
            if idle is not None and len(self.conns) > joined:
                joined, deadline = len(self.conns), max(deadline, now + idle)
            if now >= deadline:
                raise SetupError(f"gave up after waiting for {self._missing_text()}")
            if self.progress is not None and now >= next_progress:
                # Say it when something changed, and now and then while nothing does.
                text = f"machine {self.spec.me}: waiting for {self._missing_text()}"
                if text != last_text or now >= last_said + PROGRESS_REPEAT:
                    self.progress(text)
                    last_text, last_said = text, now
                next_progress = now + PROGRESS_EVERY
            self._start_dials(now)
            rlist, wlist = self._waiting_on(stop_fds)
            wake = min([deadline, next_progress, *self._deadlines()])
            timeout = max(0.0, min(wake - now, 0.25))
            try:
                r, w, _ = select.select(rlist, wlist, [], timeout)
            except InterruptedError:  # pragma: no cover - PEP 475 retries
                continue
            if stop_fds and on_stop_fd is not None:
                hit = [x for x in r if x in stop_fds]
                if hit and on_stop_fd(hit):
                    self.close_all()
                    return None
            self._dispatch(r, w)
            self._expire(time.monotonic())
            self._coordinate()
        for h in self.pending:
            self._reject(h, "the run is starting; not a peer")
        self.pending.clear()
        return dict(self.conns)

    def _waiting_on(self, stop_fds: list[Any] | None) -> tuple[list[Any], list[Any]]:
        """What select watches: the listener, handshakes both ways, dials whose connect is in
        progress, the peers whose coordination records are read, and the stop descriptors."""
        rlist: list[Any] = [self.listener, *self.pending]
        wlist: list[Any] = [h for h in self.pending if h.wants_write()]
        for d in self.dials.values():
            if d.hs is not None:
                rlist.append(d.hs)
                if d.hs.wants_write():
                    wlist.append(d.hs)
            elif d.sock is not None:
                wlist.append(d.sock)  # connect in progress
        rlist.extend(self.conns[p] for p in self.readers)
        if stop_fds:
            rlist.extend(stop_fds)
        return rlist, wlist

    def _dispatch(self, r: list[Any], w: list[Any]) -> None:
        """One step for everything select found ready (stop descriptors are handled by run)."""
        for x in w:
            if isinstance(x, socket.socket):
                self._connected(x)
            else:
                self._step(x, write=True)
        for x in r:
            if x is self.listener:
                self._accept()
            elif isinstance(x, Handshake):
                self._step(x, write=False)
            elif any(x is c for c in self.conns.values()):
                self._read_record(x)

    def _finished(self) -> bool:
        if len(self.conns) < self.spec.n - 1:
            return False
        return not self.coordinate or self.start is not None

    def _deadlines(self) -> list[float]:
        out = [h.deadline for h in self.pending]
        out += [d.hs.deadline for d in self.dials.values() if d.hs is not None]
        out += [d.next_try for d in self.dials.values() if d.sock is None and d.hs is None
                and d.peer not in self.conns]
        return out

    def _missing_text(self) -> str:
        missing = [j for j in range(1, self.spec.n + 1) if j != self.spec.me and j not in self.conns]
        parts = []
        for j in missing:
            if j in self.dials:
                d = self.dials[j]
                parts.append(f"machine {j} at {self.spec.addr(j)} ({d.last_error})")
            else:
                parts.append(f"machine {j} to connect to {self.spec.addr(self.spec.me)}")
        if not missing and self.coordinate:
            if self.spec.me == 1:
                waiting = sorted(set(range(2, self.spec.n + 1)) - self.ready_from)
                parts.append("machines " + ", ".join(map(str, waiting)) + " to be ready")
            else:
                parts.append("machine 1 to give the start")
        return "; ".join(parts)

    # -- dialling -----------------------------------------------------------------------------

    def _start_dials(self, now: float) -> None:
        for d in self.dials.values():
            if d.peer in self.conns or d.sock is not None or d.hs is not None or now < d.next_try:
                continue
            d.attempts += 1
            try:
                d.sock = start_connect(self.spec.addrs[d.peer - 1])
            except OSError as exc:
                d.fail(os.strerror(exc.errno) if exc.errno else str(exc), now)

    def _connected(self, sock: socket.socket) -> None:
        d = next((d for d in self.dials.values() if d.sock is sock), None)
        if d is None:
            return
        err = connect_error(sock)
        if err:
            d.fail(os.strerror(err).lower(), time.monotonic())
            return
        tune_peer_socket(sock)
        d.hs = Handshake(
            sock, "connect", self.spec.me, self.spec.secret, self.spec.context,
            target=d.peer, timeout=self.spec.dial_timeout or self.spec.handshake_timeout,
            addr=self.spec.addr(d.peer),
        )
        self._step(d.hs, write=True)

    # -- accepting ----------------------------------------------------------------------------

    def _accept(self) -> None:
        while True:
            try:
                sock, addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self.warn("accept_failed", error=os.strerror(exc.errno or 0))
                return
            text = addr_text(addr)
            # Room for every real peer at once (a large cluster starts together) and more.
            # When full, the oldest waiting connection goes: a real peer completes its
            # handshake in milliseconds, so whoever holds connections open without one
            # cannot lock the real peers out.
            accepting = [h for h in self.pending if h.role == "accept"]
            if len(accepting) >= MAX_PENDING + self.spec.n:
                oldest = accepting[0]
                self.pending.remove(oldest)
                self._reject(oldest, "crowded out: too many connections waiting for a handshake")
            tune_peer_socket(sock)
            timeout = self.spec.accept_timeout or self.spec.handshake_timeout
            self.pending.append(
                Handshake(
                    sock, "accept", self.spec.me, self.spec.secret, self.spec.context,
                    allowed=self.accept_from, timeout=timeout, addr=text,
                )
            )

    # -- handshakes ---------------------------------------------------------------------------

    def _step(self, h: Handshake, write: bool) -> None:
        try:
            if write:
                h.flush()
            else:
                h.on_readable()
        except HandshakeError as exc:
            self._failed(h, str(exc))
            return
        if h.done and not h.wants_write():
            self._authenticated(h)

    def _failed(self, h: Handshake, why: str) -> None:
        if h.role == "accept":
            self.pending.remove(h)
            self._reject(h, why)
        else:
            d = self.dials[h.target]
            self.warn("peer_auth_failed", peer=h.target, addr=h.addr, reason=why)
            d.fail(why, time.monotonic())

    def _reject(self, h: Handshake, why: str) -> None:
        fields: dict[str, Any] = {"peer": h.addr, "reason": why}
        if h.peer:
            fields["claimed"] = h.peer
        self.warn("intruder_rejected", **fields)
        h.sock.close()

    def _authenticated(self, h: Handshake) -> None:
        if h.role == "accept":
            self.pending.remove(h)
            if h.peer in self.conns:
                self._reject(h, f"machine {h.peer} is already connected")
                return
        else:
            self.dials[h.target].hs = None
            self.dials[h.target].sock = None
        self.conns[h.peer] = h.sock
        self.keys[h.peer] = h.frame_keys()
        if self.progress is not None:
            how = f"({h.addr})" if h.role == "connect" else f"(it dialled from {h.addr})"
            self.progress(f"machine {self.spec.me}: connected to machine {h.peer} {how}")
        if self.coordinate and (self.spec.me == 1 or h.peer == 1):
            self.readers[h.peer] = RecordReader()

    def _expire(self, now: float) -> None:
        """Give up on the handshakes past their deadline, after one last read: what the
        other side sent in time counts even if this process, descheduled on a busy host,
        reads it late (else one side counts the link up while the other dials again)."""
        for h in [h for h in self.pending if h.expired(now)]:
            self._step(h, write=False)
            if h in self.pending and h.expired(now):
                self.pending.remove(h)
                self._reject(h, f"no complete handshake within {h.timeout:g} s")
        for d in self.dials.values():
            if d.hs is not None and d.hs.expired(now):
                self._step(d.hs, write=False)
            if d.hs is not None and d.hs.expired(now):
                self.warn("peer_auth_failed", peer=d.peer, addr=d.hs.addr,
                          reason=f"no complete handshake within {d.hs.timeout:g} s")
                d.fail("handshake timed out", now)

    # -- agreeing on the start (vm mode) ------------------------------------------------------

    def _read_record(self, sock: socket.socket) -> None:
        peer = next(p for p, s in self.conns.items() if s is sock)
        try:
            rec = self.readers[peer].read(sock)
        except HandshakeError as exc:
            raise SetupError(f"machine {peer} left before the start ({exc})") from None
        if rec is None:
            return
        rtype, body = rec
        if self.spec.me == 1 and rtype == T_READY:
            self.ready_from.add(peer)
            return
        if self.spec.me != 1 and peer == 1 and rtype == T_START:
            try:
                start = orjson.loads(body)
            except orjson.JSONDecodeError:
                raise SetupError("machine 1 sent an unreadable START") from None
            self.start = start
            del self.readers[peer]
            return
        raise SetupError(f"machine {peer} sent an unexpected record (type {rtype})")

    def _coordinate(self) -> None:
        if not self.coordinate or len(self.conns) < self.spec.n - 1 or self.start is not None:
            return
        if self.spec.me != 1:
            if not self.sent_ready:
                self.sent_ready = True
                _send_all(self.conns[1], record(T_READY))
            return
        if self.ready_from >= set(range(2, self.spec.n + 1)):
            assert self.start_info is not None
            start = self.start_info()
            data = record(T_START, orjson.dumps(start))
            for sock in self.conns.values():
                _send_all(sock, data)
            self.start = start
            self.readers.clear()

    def close_all(self) -> None:
        for h in self.pending:
            h.sock.close()
        for d in self.dials.values():
            if d.sock is not None:
                d.sock.close()
        for s in self.conns.values():
            s.close()
        self.pending.clear()
        self.conns.clear()


def _send_all(sock: socket.socket, data: bytes, timeout: float = 2.0) -> None:
    """Send a small record on a non-blocking socket (waits for room, bounded)."""
    end = time.monotonic() + timeout
    view = memoryview(data)
    while view:
        try:
            n = sock.send(view)
            view = view[n:]
        except (BlockingIOError, InterruptedError):
            if time.monotonic() > end:
                raise SetupError("a peer does not take the start record") from None
            select.select([], [sock], [], 0.05)
        except OSError as exc:
            raise SetupError(f"a peer left before the start ({os.strerror(exc.errno or 0)})") from None
