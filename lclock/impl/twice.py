"""``lclock sim --twice``: is the program deterministic? Run it twice and find where not.

In the simulator a seed repeats a run byte for byte when every machine is deterministic
(SPEC 9.4). A program that reads the time, its own random numbers, a hash of an object's
address or the order of a set gives another run the second time; the first line that
differs shows where, which is usually enough to find the call. Lines are compared as the
logs have them, without ``run_id`` (the second run has a folder of its own).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

import orjson

#: How much of each differing line the report quotes.
_QUOTE = 300


@dataclass(frozen=True)
class Difference:
    machine: int
    line: int  # 1-based
    first: str
    second: str

    def describe(self) -> str:
        return (f"the two runs differ first at machine-{self.machine}.jsonl line {self.line}:\n"
                f"  first:  {self.first}\n  second: {self.second}\n"
                "a program that reads the time, the clock or its own random numbers gives "
                "another run each time: take every choice from the requests lclock sends")


def _comparable(raw: bytes) -> bytes:
    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw
    if isinstance(line, dict):
        line.pop("run_id", None)
        return orjson.dumps(line)
    return raw


def _quote(raw: bytes | None) -> str:
    if raw is None:
        return "(no such line: the log ends before)"
    text = raw.decode("utf-8", "replace")
    return text if len(text) <= _QUOTE else text[: _QUOTE - 1] + "…"


def first_difference(first: Path, second: Path, machines: int) -> Difference | None:
    """The earliest line (by its time in the run) where two run folders' logs differ; None:
    the same. The earliest, not the first machine's: a program's difference shows first on
    its own machine, and only later in what its messages do to the others."""
    found = []
    for mid in range(1, machines + 1):
        diff = _first_in(first, second, mid)
        if diff is not None:
            found.append((_ts(diff[0]) or _ts(diff[1]) or "", mid, diff))
    if not found:
        return None
    _when, mid, (la, lb, line) = min(found, key=lambda f: (f[0], f[1]))
    return Difference(mid, line, _quote(la), _quote(lb))


def _first_in(first: Path, second: Path, mid: int
              ) -> tuple[bytes | None, bytes | None, int] | None:
    name = f"machine-{mid}.jsonl"
    pairs = zip_longest(_lines(first / name), _lines(second / name))
    for i, (la, lb) in enumerate(pairs, 1):
        if la is None or lb is None or (la != lb and _comparable(la) != _comparable(lb)):
            return la, lb, i
    return None


def _ts(raw: bytes | None) -> str | None:
    """A line's time as written (RFC 3339 UTC strings order as the times do)."""
    if raw is None:
        return None
    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    ts = line.get("ts") if isinstance(line, dict) else None
    return ts if isinstance(ts, str) else None


def _lines(path: Path) -> Iterator[bytes]:
    """A log's lines, read as they are compared (a log may be far larger than memory)."""
    try:
        with path.open("rb") as f:
            for line in f:
                yield line.rstrip(b"\n")
    except FileNotFoundError:
        return
