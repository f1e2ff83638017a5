"""Which battery work may run at once: ``--jobs N`` submissions on the CPU, as many again
waiting on the clock.

Most of a program's battery keeps a core busy (lclock sim and its programs, check, shrink);
some of it only waits: the real run (its duration on the wall clock) and the runs of a
program that hangs (each waits out ``--impl-timeout`` x 10 several times, using no CPU).
A submission holds one of N CPU lanes while it computes and gives it up while it waits, so
that another submission computes meanwhile; the CPU never has more than N batteries at work
(a real run's programs must answer their ticks in time: a machine kept busier would make a
correct program late). Only the order in which things run changes, never what runs or what
it shows: the grades are the same bytes for every N.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from lclock.grade.results import ItemResult
from lclock.grade.rubric import Item


class Lanes:
    """N CPU lanes; a thread in a clock-bound step holds none."""

    def __init__(self, cpu: int) -> None:
        self.cpu = cpu
        self._free = threading.BoundedSemaphore(cpu)

    @contextmanager
    def lane(self, clock: bool) -> Iterator[None]:
        """Hold a CPU lane for the block (none when it only waits on the clock)."""
        if clock:
            yield
            return
        with self._free:
            yield


def waits_on_the_clock(item: Item, done: list[ItemResult]) -> bool:
    """Whether ``item`` will mostly wait: a real run, or any run of a program that already
    hung in this battery (its next runs hang too, as a rule, each for seconds of no CPU)."""
    return item.kind == "real" or any(
        run.failure is not None and run.failure[0] == "hang" for i in done for run in i.runs)
