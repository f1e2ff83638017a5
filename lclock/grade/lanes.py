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

A program that hung while using next to no CPU (it sleeps, or waits on a pipe) hangs again
as a rule: each of its runs waits out timeouts, half a minute or more. Its remaining runs
are made a few at once, outside the lanes (in its one copy, as its machines share it in a
run), so that it takes a minute, not ten. Which runs it makes, and what each is judged
by, stay the same; the choice depends on what the submission's runs did, never on N.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from lclock.grade.results import ItemResult, RunResult
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


#: CPU seconds (its programs' together) below which a run that hung only waited: a program
#: that sleeps or blocks, not one that spins (whose next runs would keep a core busy).
IDLE_CPU_S = 2.0
#: Runs of a program that hung idle made at once: each mostly waits (a tick's answer,
#: ``--impl-timeout`` x 10, several times), so together they cost one wait, not ten.
AT_ONCE = 6


def hung_idle(done: list[ItemResult]) -> bool:
    """Whether a run of the program hung while its programs used next to no CPU."""
    return any(run.failure is not None and run.failure[0] == "hang" and run.cpu_s is not None
               and run.cpu_s < IDLE_CPU_S for i in done for run in i.runs)


def waits_on_the_clock(item: Item, done: list[ItemResult]) -> bool:
    """Whether ``item`` will mostly wait: a real run, or a run of a program that already hung
    idle in this battery (its next runs hang too, as a rule, each for seconds of no CPU)."""
    return item.kind == "real" or hung_idle(done)


Task = tuple[ItemResult, Item, int]


def tasks_of(items: list[Item]) -> tuple[list[ItemResult], list[Task]]:
    """An empty result per item (a skipped one says so), and its runs to make: one per seed."""
    results = [ItemResult(i.name, i.kind, i.points) for i in items]
    tasks: list[Task] = []
    for result, item in zip(results, items):
        if item.skip:
            result.skipped = "skipped by the rubric"
        else:
            tasks += [(result, item, seed) for seed in item.seeds]
    return results, tasks


def runs_at_once(tasks: list[Task], run: Callable[[Item, int], RunResult]) -> None:
    """The runs, ``AT_ONCE`` at a time, each put in its item's result in seed order."""
    with ThreadPoolExecutor(AT_ONCE) as pool:
        made = list(pool.map(lambda task: run(task[1], task[2]), tasks))
    for (result, _item, _seed), one in zip(tasks, made):
        result.runs.append(one)
