"""What an imported log does not say on some lines: times taken from the neighbours, and
the count of each kind of missing fact, said once per file instead of once per line.

A line without a time gets one from the timed lines of the same machine around it, in log
order: *interpolated* between the previous and the next timed line (spread evenly over the
untimed lines between them), or *carried* from the only neighbour there is (the first timed
line for the lines before it, the last for the lines after it). The written line says so
(``ts_derived``), so nothing guessed passes for logged. Nothing else is filled in: a
missing peer or message clock stays missing, and ``lclock check`` says what it cannot check.
"""

from __future__ import annotations

from array import array
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

# Kinds of missing facts, as the import's output and run.json's import.missing name them.
MISSING = {
    "time": "without a time (taken from the neighbouring lines of the same machine: "
            "ts_derived)",
    "recipients": "send(s) without recipients (check cannot match their messages)",
    "sender": "receive(s) without a sender (matched by the clock their message carried, "
              "if logged)",
    "msg_clock": "receive(s) without the clock their message carried (and no channel order "
                 "to take it from)",
}


class TimeFill:
    """Times for the untimed events of each machine, from the timed ones around them.

    ``at[mid]``/``us[mid]``: the index (among that machine's events, in log order) and the
    time of each timed event, gathered in an earlier pass; ``fill`` is then called for every
    event of the machine, in the same order."""

    def __init__(self, at: Mapping[int, array[int]], us: Mapping[int, array[int]]) -> None:
        self.at, self.us = at, us
        self.index: defaultdict[int, int] = defaultdict(int)  # events seen, per machine
        self.next: defaultdict[int, int] = defaultdict(int)  # timed events passed, per machine

    def fill(self, mid: int, us: int | None) -> tuple[int | None, str | None]:
        """The event's time and how it was had: None (logged), "interpolated", "carried";
        (None, None) when the machine has no timed line at all."""
        k = self.index[mid]
        self.index[mid] = k + 1
        if us is not None:
            self.next[mid] += 1
            return us, None
        at, times, j = self.at.get(mid, array("q")), self.us.get(mid, array("q")), self.next[mid]
        if not len(at):
            return None, None
        if j == 0:
            return times[0], "carried"
        if j >= len(at):
            return times[-1], "carried"
        k0, k1, t0, t1 = at[j - 1], at[j], times[j - 1], times[j]
        return t0 + (t1 - t0) * (k - k0) // (k1 - k0), "interpolated"


class Missing:
    """How many lines of each file lack each kind of fact (``MISSING``)."""

    def __init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = {}

    def add(self, file: str, kind: str) -> None:
        per = self.counts.setdefault(file, {})
        per[kind] = per.get(kind, 0) + 1

    def any(self, kind: str) -> bool:
        return any(kind in per for per in self.counts.values())

    def lines(self) -> list[str]:
        """One line per file and kind, for the import's output."""
        return [f"{file}: {n} line(s) {MISSING[kind]}" if kind == "time"
                else f"{file}: {n} {MISSING[kind]}"
                for file, per in self.counts.items() for kind, n in per.items()]

    def as_json(self) -> dict[str, Any]:
        return {file: dict(per) for file, per in self.counts.items()}
