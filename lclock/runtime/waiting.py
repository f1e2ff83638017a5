"""The one place a machine's loop blocks: wait for descriptors or a deadline, and read the time.

The real-time driver needs two things from the outside world besides its sockets' data:
the clocks, and a wait "until any of these is readable (or writable), or this long has
passed". Both are injected (``Clock``, ``Waiter``) so that the driver runs in tests on a
virtual clock with scripted readiness, in milliseconds and without a flake.

What is waited for is anything ``select`` takes: an int descriptor, or any object with a
``fileno()`` (a socket, a ``Connection``, a peer channel, a child program's stdout pipe);
the waiter hands back the very objects it was given, so the caller dispatches on them.
"""

from __future__ import annotations

import select
from collections.abc import Sequence
from typing import Any, Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...
    def time(self) -> float: ...


class Waiter(Protocol):
    def wait(self, readers: Sequence[Any], writers: Sequence[Any],
             timeout: float) -> tuple[list[Any], list[Any]]:
        """(the readers readable, the writers writable), as soon as one is, or both empty
        once ``timeout`` seconds (>= 0; 0: just look) have passed."""
        ...


class SelectWaiter:
    """``select`` itself: its timeouts are microseconds (poll and epoll round to
    milliseconds, too coarse for 10,000 ticks/s), at the price of descriptors below
    FD_SETSIZE (1024), which the worker makes sure of (``worker.low_fd``)."""

    __slots__ = ()

    def wait(self, readers: Sequence[Any], writers: Sequence[Any],
             timeout: float) -> tuple[list[Any], list[Any]]:
        r, w, _x = select.select(readers, writers, (), timeout)
        return r, w
