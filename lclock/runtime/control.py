"""What tells a running machine when to start and when to stop, and hears how it went.

Two kinds, one interface, so the real-time driver does not care which it has:

- ``LauncherControl``: a worker process of ``lclock run``. The launcher sends ``go`` (the
  shared start instant t0) and ``stop`` over a pipe and reads ``ready``, ``status`` and
  ``done``. SIGTERM (the launcher's second stage) asks to stop and hurry; the launcher's
  death, even by SIGKILL, reads as EOF on its sentinel and stops the machine fast.
- ``LocalControl``: a machine with no launcher (``lclock vm``). The start instant is known
  already; Ctrl-C, SIGTERM and SIGHUP ask to stop, a second Ctrl-C to stop at once.

Signal handlers only record (``lclock.lifecycle``); the driver's select loop wakes on the
wakeup socket and asks the control what was asked for.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import orjson

from lclock.lifecycle import StopRequest, drain_wakeup
from lclock.runtime.waiting import Clock


class LauncherControl:
    """A worker's side of the pipe to its launcher."""

    def __init__(self, conn: Connection, parent_sentinel: int | None, wake: socket.socket,
                 stop: StopRequest, clock: Clock = time) -> None:
        self.conn = conn
        self.clock = clock  # the driver's: orphaned_at bounds its drain
        self.parent_sentinel = parent_sentinel
        self.wake = wake
        self.stop = stop
        self.t0: float | None = None
        #: The clocks every machine keeps, once the launcher has said (a run with programs).
        self.agreed: list[str] | None = None
        self.stop_reason: str | None = None
        self.hurry = False  # finish the graceful stop quickly (SIGTERM: the second stage)
        self.urgent = False  # stop at once, no drain (unused here: the launcher kills)
        self.orphaned_at: float | None = None  # when the launcher was found gone
        # At a planned crash the launcher kills the process; the machine only waits.
        self.killed_at_crash = True

    def fds(self) -> list[Any]:
        if self.orphaned_at is not None:
            # The launcher is gone: its pipe and sentinel stay readable (EOF) for ever, and
            # watching them would turn every wait of the drain into a busy loop.
            return [self.wake]
        fds: list[Any] = [self.conn, self.wake]
        if self.parent_sentinel is not None:
            fds.append(self.parent_sentinel)
        return fds

    def on_ready(self, ready: list[Any]) -> None:
        for r in ready:
            if r is self.conn:
                self._read_conn()
            elif r is self.wake:
                drain_wakeup(self.wake)
            elif r == self.parent_sentinel:
                self._orphaned()
        if self.stop.requested:  # a SIGTERM to the worker: the launcher's second stage too
            if self.stop_reason is None:
                self.stop_reason = self.stop.cause
            self.hurry = True

    def _read_conn(self) -> None:
        try:
            while self.conn.poll():
                msg = orjson.loads(self.conn.recv_bytes())
                if msg.get("t") == "go":
                    self.t0 = float(msg["t0"])
                elif msg.get("t") == "agreed":
                    self.agreed = [str(c) for c in msg["clocks"]]
                elif msg.get("t") == "stop" and self.stop_reason is None:
                    self.stop_reason = str(msg.get("reason", "stop"))
        except (EOFError, OSError):
            self._orphaned()

    def _orphaned(self) -> None:
        """The launcher is gone (even SIGKILL closes its pipes): stop, and fast."""
        if self.orphaned_at is None:
            self.orphaned_at = self.clock.monotonic()
        if self.stop_reason is None:
            self.stop_reason = "launcher_gone"

    def report(self, msg: dict[str, Any]) -> None:
        try:
            self.conn.send_bytes(orjson.dumps(msg))
        except (OSError, ValueError):
            self._orphaned()


class LocalControl:
    """A machine that is its own launcher (``lclock vm``): signals are its only input."""

    def __init__(self, t0: float, wake: socket.socket, stop: StopRequest,
                 on_status: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.t0: float | None = t0
        self.on_status = on_status
        self.wake = wake
        self.stop = stop
        self.stop_reason: str | None = None
        self.hurry = False
        self.urgent = False
        self.orphaned_at: float | None = None
        self.done: dict[str, Any] | None = None
        #: The record of the machine's program, if it has one (run.json's ``impl``).
        self.impl: dict[str, Any] | None = None
        # Nobody kills a vm at its planned crash: the machine returns, and the vm ends.
        self.killed_at_crash = False

    def fds(self) -> list[Any]:
        return [self.wake]

    def on_ready(self, ready: list[Any]) -> None:
        if self.wake in ready:
            drain_wakeup(self.wake)
        if self.stop.requested and self.stop_reason is None:
            self.stop_reason = self.stop.cause
        if self.stop.urgent:
            self.urgent = self.hurry = True

    def report(self, msg: dict[str, Any]) -> None:
        kind = msg.get("t")
        if kind == "done":
            self.done = msg
        elif kind == "impl":
            self.impl = msg.get("entry")
        elif kind == "status" and self.on_status is not None:
            self.on_status({k: v for k, v in msg.items() if k != "t"})
