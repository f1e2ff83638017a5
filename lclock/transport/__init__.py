"""How machines talk: frames, the peer channel, and the transports that connect them.

- ``framing``: a message as a frame, checked (and over TCP authenticated) before the model
  sees it;
- ``channel``: one peer link, non-blocking, that reports the frames a broken link loses;
- ``socketpair``: the mesh of Unix socket pairs of a run on one host;
- ``tcp``: the mesh of authenticated TCP connections (handshake, mesh, gatekeeper, links).

A transport is what a machine's driver is given: it connects the machine to its peers and
says how the frames of each link are coded. Everything else (the queue, the schedule,
the graceful stop) is the same code for every transport.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any, Protocol

from lclock.transport.framing import FrameCodec

Warn = Callable[..., None]


class TransportError(Exception):
    """The machine could not be connected to its peers; the message says why."""


class Transport(Protocol):
    def connect(self, stop_fds: list[Any], on_stop_fd: Callable[[list[Any]], bool],
                warn: Warn) -> dict[int, socket.socket] | None:
        """The connected socket of every peer; None if a stop came first.

        While it waits it watches ``stop_fds`` and asks ``on_stop_fd(ready)`` whether to
        give up. Raises TransportError when the peers cannot be reached.
        """

    def codecs(self, peer: int, n: int, vector: bool, pt: bool = False,
               hlc: bool = False, bodies: bool = False) -> tuple[FrameCodec, FrameCodec]:
        """(sending codec, receiving codec) of the link to ``peer``."""

    def watch(self, extra: dict[int, Callable[[], None]], warn: Warn) -> None:
        """Add descriptors the run loop must watch (fd -> callback), if any."""

    def stop_watching(self) -> None:
        """Take back what ``watch`` added, saying what that cuts short (before the stop line,
        so the log accounts for every stranger)."""

    def close(self) -> None:
        """Release what the transport still holds once the run is over."""
