"""The transport of a run on one host: a full mesh of Unix stream socket pairs.

Only the processes of the run hold these sockets (the launcher closes its copies once
the workers have theirs), so frames need no authentication: a socket pair cannot be
reached from outside.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from lclock.transport import Warn
from lclock.transport.framing import FrameCodec


def socketpair_mesh(n: int) -> dict[int, dict[int, socket.socket]]:
    """ends[i][j] is machine i's end of its socket pair with machine j."""
    ends: dict[int, dict[int, socket.socket]] = {i: {} for i in range(1, n + 1)}
    for i in range(1, n + 1):
        for j in range(i + 1, n + 1):
            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            ends[i][j] = a
            ends[j][i] = b
    return ends


class SocketPairLinks:
    """One machine's ends of the mesh; picklable, so it travels to a spawned worker."""

    def __init__(self, socks: dict[int, socket.socket]) -> None:
        self.socks = socks

    def connect(self, stop_fds: list[Any], on_stop_fd: Callable[[list[Any]], bool],
                warn: Warn) -> dict[int, socket.socket] | None:
        return dict(self.socks)

    def codecs(self, peer: int, n: int, vector: bool, pt: bool = False,
               hlc: bool = False, bodies: bool = False) -> tuple[FrameCodec, FrameCodec]:
        return (FrameCodec(n, vector, pt=pt, hlc=hlc, bodies=bodies), FrameCodec(n, vector, pt=pt, hlc=hlc, bodies=bodies))

    def watch(self, extra: dict[int, Callable[[], None]], warn: Warn) -> None:
        return None

    def stop_watching(self) -> None:
        pass

    def close(self) -> None:
        return None
