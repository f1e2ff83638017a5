"""Warnings that a stranger can provoke, kept from flooding a machine's log.

Anyone who can reach a TCP machine's port can make it refuse a connection, and every
refusal is a warning line. The first few of each kind are logged one by one (they say who
and why); after that they are counted, and one line now and then (and one before the stop
line) says how many more there were. Nothing is dropped without a number.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

Warn = Callable[..., None]

#: Warnings of one kind logged one by one before they are only counted.
BURST = 20
#: Seconds between two lines that count the warnings not logged one by one.
EVERY = 10.0


class LimitedWarn:
    """A ``warn(event, **fields)`` that passes on the first ``burst`` of each event, then
    a count of the rest (field ``repeated``) at most once per ``every`` seconds."""

    def __init__(self, warn: Warn, burst: int = BURST, every: float = EVERY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.warn = warn
        self.burst = burst
        self.every = every
        self.clock = clock
        self.seen: dict[str, int] = {}
        self.held: dict[str, int] = {}
        self.next_count: dict[str, float] = {}

    def __call__(self, event: str, **fields: Any) -> None:
        n = self.seen.get(event, 0) + 1
        self.seen[event] = n
        if n <= self.burst:
            self.warn(event, **fields)
            if n == self.burst:
                self.next_count[event] = self.clock() + self.every
            return
        self.held[event] = self.held.get(event, 0) + 1
        if self.clock() >= self.next_count[event]:
            self._count(event)

    def _count(self, event: str) -> None:
        held = self.held.pop(event, 0)
        if held:
            self.warn(event, repeated=held,
                      note=f"{held} more {event} warning(s) since the last one logged, "
                           "not logged one by one")
        self.next_count[event] = self.clock() + self.every

    def flush(self) -> None:
        """Say what is still only counted (before the stop line)."""
        for event in list(self.held):
            self._count(event)
