"""A peer socket that notices, at the moment it happens, that a peer is lost.

The worker reads and writes peers through ``PeerChannel``. When a connection fails,
``PeerChannel`` drops its outgoing buffer; frames that were queued there had been counted
as sent by the tick loop, so without help they would vanish without a trace. Wrapping the
socket is how the TCP transport sees every such event without changes to the shared
runtime:

- a send or receive error: every frame still in the channel's buffer is logged as
  ``send_failed`` (``buffered: true``, with its Lamport time) and counted as undelivered,
  before ``PeerChannel`` discards it;
- EOF or an error: ``on_lost(peer, error)`` is called (``lclock vm`` uses it to stop
  gracefully when a peer goes away early).
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Callable
from typing import Any

from lclock.model import Message
from lclock.runtime.transport import encode

_LCLOCK = struct.Struct("!Q")
_LCLOCK_AT = 4 + 4  # length prefix, sender id, then the Lamport time


def frame_size(n: int, vector: bool) -> int:
    """Every frame of a run has the same size: the fixed part plus n clock entries."""
    return len(encode(Message(1, 0, (0,) * n if vector else None), 0.0))


def buffered_frames(out: bytes | bytearray, size: int) -> list[int | None]:
    """The Lamport times of the frames in an outgoing buffer (None: a partly sent one).

    The buffer holds whole frames, possibly after the tail of one already partly sent.
    """
    n = len(out)
    whole, part = divmod(n, size)
    found: list[int | None] = [None] if part else []
    for k in range(whole):
        at = part + k * size + _LCLOCK_AT
        found.append(_LCLOCK.unpack_from(out, at)[0])
    return found


class PeerSocket(socket.socket):
    """A connected peer socket (same fd) that reports losses to the worker."""

    def __init__(self, sock: socket.socket, peer: int, worker: Any,
                 on_lost: Callable[[int, str | None], None] | None = None) -> None:
        super().__init__(sock.family, sock.type, sock.proto, fileno=sock.detach())
        self.peer = peer
        self.worker = worker
        self.on_lost = on_lost
        cfg = worker.cfg
        self.size = frame_size(cfg.n, cfg.vector)
        self.reported = False

    def send(self, data: Any, flags: int = 0) -> int:
        try:
            return super().send(data, flags)
        except (BlockingIOError, InterruptedError):
            raise
        except OSError as exc:
            self._lost(exc)
            raise

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        try:
            data = super().recv(bufsize, flags)
        except (BlockingIOError, InterruptedError):
            raise
        except OSError as exc:
            self._lost(exc)
            raise
        if not data and self.on_lost is not None:
            self.on_lost(self.peer, None)
        return data

    def _lost(self, exc: OSError) -> None:
        error = os.strerror(exc.errno) if exc.errno else str(exc)
        if not self.reported:
            self.reported = True
            ch = self.worker.channels.get(self.peer)
            if ch is not None and ch.out:
                for lclock in buffered_frames(ch.out, self.size):
                    self.worker.undelivered += 1
                    self.worker.log.error("send_failed", to=self.peer, lclock=lclock,
                                          error=error, buffered=True)
        if self.on_lost is not None:
            self.on_lost(self.peer, error)
