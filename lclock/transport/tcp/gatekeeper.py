"""Guarding a machine's TCP port during the run: every newcomer is turned away, with a reason.

Anything that connects once the run has started is not a peer (all peers are connected),
but it still gets the handshake, so the warning says precisely what it was (wrong secret,
garbage, silent, ...), and it is dropped without ever touching the tick loop.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from lclock.transport.tcp.handshake import Handshake, HandshakeError, addr_text
from lclock.transport.tcp.mesh import MAX_PENDING, MeshSpec, Warn


class Gatekeeper:
    """Keeps the listener open during the run and turns every newcomer away, with a reason.

    It plugs into the driver's select loop through the driver's ``extra`` (fd -> callback),
    which it is handed explicitly and edits as handshakes come and go. Handshake
    deadlines need a clock even when a stranger sends nothing; a small timer thread exists
    only while a handshake is pending and just writes one byte to a socket pair that the
    select loop watches, so all the work stays on the worker's own thread.
    """

    def __init__(self, spec: MeshSpec, listener: socket.socket, warn: Warn,
                 extra: dict[int, Any]) -> None:
        self.spec = spec
        self.listener = listener
        self.warn = warn
        self.extra = extra  # the worker's own dict: what its select loop watches
        self.pending: dict[int, Handshake] = {}
        self.allowed = frozenset(j for j in range(1, spec.n + 1) if j != spec.me)
        self.alarm_r, self.alarm_w = socket.socketpair()
        self.alarm_r.setblocking(False)
        self.alarm_w.setblocking(False)
        self._timer: threading.Thread | None = None
        self._timer_stop = threading.Event()
        self._armed = threading.Event()
        listener.setblocking(False)

    def fds(self) -> dict[int, Callable[[], None]]:
        return {self.listener.fileno(): self.on_accept, self.alarm_r.fileno(): self.on_alarm}

    def on_accept(self) -> None:
        while True:
            try:
                sock, addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.warn("accept_failed", error=os.strerror(exc.errno or 0))
                return
            text = addr_text(addr)
            if len(self.pending) >= MAX_PENDING:  # the oldest goes (see Mesh._accept)
                self._drop(next(iter(self.pending)),
                           "crowded out: too many connections waiting for a handshake")
            h = Handshake(sock, "accept", self.spec.me, self.spec.secret, self.spec.context,
                          allowed=self.allowed, timeout=self.spec.handshake_timeout, addr=text)
            fd = h.fileno()
            self.pending[fd] = h
            self.extra[fd] = lambda fd=fd: self.on_readable(fd)
            self._arm()

    def on_readable(self, fd: int) -> None:
        h = self.pending.get(fd)
        if h is None:
            return
        try:
            h.on_readable()
        except HandshakeError as exc:
            self._drop(fd, str(exc))
            return
        if h.done:
            self._drop(fd, f"machine {h.peer} is already connected (authenticated, but the run has started)")

    def on_alarm(self) -> None:
        try:
            self.alarm_r.recv(4096)
        except OSError:
            pass
        now = time.monotonic()
        for fd, h in list(self.pending.items()):
            if h.expired(now):
                self._drop(fd, f"no complete handshake within {self.spec.handshake_timeout:g} s")

    def _drop(self, fd: int, why: str) -> None:
        h = self.pending.pop(fd)
        self.extra.pop(fd, None)
        fields: dict[str, Any] = {"peer": h.addr, "reason": why}
        if h.peer:
            fields["claimed"] = h.peer
        self.warn("intruder_rejected", **fields)
        h.sock.close()

    def _arm(self) -> None:
        self._armed.set()
        if self._timer is None:
            self._timer = threading.Thread(target=self._tick, name="lclock-gate-timer", daemon=True)
            self._timer.start()

    def _tick(self) -> None:
        """Timer thread: nudge the select loop every 0.2 s while handshakes are pending.

        It clears ``_armed`` before looking at ``pending``, and the loop adds to ``pending``
        before setting ``_armed``, so a newcomer is never left without a clock.
        """
        while not self._timer_stop.is_set():
            self._armed.clear()
            if not self.pending:
                self._armed.wait()
                continue
            if self._timer_stop.wait(0.2):
                return
            try:
                self.alarm_w.send(b"t")
            except OSError:
                return

    def turn_away_all(self, why: str) -> None:
        """The run is over: take in whoever is still in the listener's backlog and turn every
        waiting stranger away with ``why``, so none leaves without a line; then stop
        watching (later comers are refused by the closed listener, after the stop line)."""
        self.on_accept()
        for fd in list(self.pending):
            self._drop(fd, why)
        for fd in self.fds():
            self.extra.pop(fd, None)

    def close(self) -> None:
        self._timer_stop.set()
        self._armed.set()
        for fd, h in list(self.pending.items()):
            self.extra.pop(fd, None)
            h.sock.close()
        self.pending.clear()
