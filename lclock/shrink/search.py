"""The search of ``lclock shrink``: greedy steps to a smaller run that still shows the finding.

Pure: what a step tries (``moves``) and how a try is run and judged (``attempt``) are given,
so the search is tested with fakes and knows nothing of the simulator. It is the greedy
half of delta debugging: from the smallest run found so far, try its smaller neighbours in
the order the moves give them (boldest first: two machines before one fewer), take the
first that still shows the finding and is smaller by measure, and start again from it.
It ends when no neighbour is both (a local minimum: nothing smaller shows the finding), when
the budget of attempts is spent, or when it is interrupted; the best so far is kept in all
three cases. Every accepted step is strictly smaller, so the search cannot cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from lclock.console import counted

S = TypeVar("S")

#: Why a search ended.
DONE, BUDGET, STOPPED = "minimal", "budget", "stopped"


class SearchInterrupted(Exception):
    """Raised by an attempt that was stopped (Ctrl-C): the search ends, keeping its best."""


@dataclass(frozen=True)
class Outcome:
    """What a run that shows the finding measured.

    ``size`` is compared as a tuple (the first entry matters most); ``times`` are the
    seconds since the start of the events the finding names (earliest first), which tell
    how short the run can be; ``rates`` the machines' ticks per second as the run drew them.
    """

    size: tuple[int, ...]
    times: tuple[float, ...] = ()
    rates: tuple[int, ...] = ()


@dataclass
class Shrunk(Generic[S]):
    """The smallest run found, its outcome, and how the search went."""

    best: S
    outcome: Outcome
    attempts: int = 0
    steps: int = 0
    ended: str = DONE


Moves = Callable[[S, Outcome], Iterator[tuple[str, S]]]
Attempt = Callable[[S], "Outcome | None"]


def search(start: S, first: Outcome, moves: Moves[S], attempt: Attempt[S], budget: int,
           say: Callable[[str], None] = lambda _line: None, spent: int = 0) -> Shrunk[S]:
    """Shrink ``start`` (which showed the finding as ``first``) with at most ``budget``
    attempts in all, ``spent`` of them already (finding ``first``); ``attempt`` returns None
    where a candidate does not show the finding."""
    result = Shrunk(start, first, attempts=spent)
    seen: set[str] = set()
    while True:
        step = _one_step(result, moves, attempt, budget, seen, say)
        if step is None:
            return result
        name, candidate, outcome = step
        result.best, result.outcome = candidate, outcome
        result.steps += 1
        say(f"step {result.steps} (attempt {result.attempts}): {name}: {describe(outcome.size)}")


def _one_step(result: Shrunk[S], moves: Moves[S], attempt: Attempt[S], budget: int,
              seen: set[str], say: Callable[[str], None]) -> tuple[str, S, Outcome] | None:
    """The first smaller neighbour that shows the finding; None when the search ends (the
    reason set on ``result``)."""
    for name, candidate in moves(result.best, result.outcome):
        key = repr(candidate)
        if key in seen:  # tried before, from another shape: it would answer the same
            continue
        if result.attempts >= budget:
            result.ended = BUDGET
            say(f"budget of {budget} attempts spent")
            return None
        seen.add(key)
        result.attempts += 1
        try:
            outcome = attempt(candidate)
        except SearchInterrupted:
            result.ended = STOPPED
            say("stopped: keeping the smallest run so far")
            return None
        if outcome is not None and outcome.size < result.outcome.size:
            return name, candidate, outcome
    result.ended = DONE
    return None


def describe(size: tuple[int, ...]) -> str:
    """The measure as words: machines, faults, events, messages (as ``lclock.shrink`` sizes)."""
    names = ("machine", "fault", "event", "message")
    return ", ".join(counted(n, w) for n, w in zip(size, names))
