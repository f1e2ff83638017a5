"""What the explorer needs from a machine log beyond its tick columns, taken from the load.

The explorer draws the clocks of SPEC section 7 (``pt``, ``hlc`` on tick events,
``msg_pt``/``msg_hlc`` and ``dup`` on receives) and the other lines of a log (``drop``,
``fault``, ``pause``, ``resume``, ``stop``, warnings, errors and events it does not know).
``lclock.analysis.load`` already keeps all of them while it reads the log once, with its
bounds (no line longer than ``MAX_LINE_BYTES`` is held, at most ``MAX_KEPT`` lines of a
kind): reading the file a second time here once cost a whole unbounded line in memory.

A value that is not where or what it should be reads as absent for that event (``-1``):
``lclock check`` is the tool that reports bad lines, not the explorer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from lclock.analysis.load import MachineLog, parse_ts_column

MISSING = -1  # every clock value we read is a non-negative integer
MARKED = ("pause", "resume", "fault", "stop", "drop", "snapshot")  # kept lines the explorer draws


@dataclass
class Extras:
    """Per tick event (aligned with the MachineLog's rows) and the lines that are not ticks."""

    pt: np.ndarray
    hlc_l: np.ndarray
    hlc_c: np.ndarray
    msg_pt: np.ndarray
    msg_hlc_l: np.ndarray
    msg_hlc_c: np.ndarray
    dup: np.ndarray
    other: list[tuple[int, dict[str, Any], bytes]] = field(default_factory=list)
    other_ts: np.ndarray = field(default_factory=lambda: np.zeros(0))  # epoch s, NaN if bad
    other_dropped: int = 0  # lines beyond ``max_other``, counted but not kept

    def has(self, name: str) -> bool | None:
        """Whether every event has the field (the explorer offers only complete clocks);
        None for a log without events, which says nothing either way."""
        col: np.ndarray = getattr(self, name)
        return bool(np.all(col != MISSING)) if col.size else None


def _column(values: np.ndarray | None, m: int, part: int | None = None) -> np.ndarray:
    if values is None:
        return np.full(m, MISSING, np.int64)
    col = values[:, part] if part is not None else values
    return np.ascontiguousarray(col, np.int64)


def _text(o: dict[str, Any]) -> bytes:
    """The line again, for its tooltip (keys in the order of the file)."""
    try:
        return orjson.dumps(o)
    except TypeError:  # an integer beyond 64 bits: orjson will not write it
        import json

        return json.dumps(o).encode()


def read_extras(log: MachineLog, max_other: int = 200_000) -> Extras:
    """The section-7 fields of ``log``'s tick events and its other lines, in file order."""
    m = log.events
    ex = Extras(pt=_column(log.pt, m), hlc_l=_column(log.hlc, m, 0),
                hlc_c=_column(log.hlc, m, 1), msg_pt=_column(log.msg_pt, m),
                msg_hlc_l=_column(log.msg_hlc, m, 0), msg_hlc_c=_column(log.msg_hlc, m, 1),
                dup=log.dup.astype(bool) if log.dup is not None else np.zeros(m, bool))
    lines = [x for name in MARKED for x in log.lines_of(name)] + log.notable + log.unknown
    lines.sort(key=lambda x: x[0])
    kept = sum(len(log.lines_of(name)) for name in MARKED) + len(log.notable) + len(log.unknown)
    known = sum(log.other_events.get(name, 0) for name in ("start", "connected"))
    ex.other_dropped = max(sum(log.other_events.values()) - known - kept, 0)
    if len(lines) > max_other:
        ex.other_dropped += len(lines) - max_other
        lines = lines[:max_other]
    ex.other = [(num, o, _text(o)) for num, o in lines]
    ex.other_ts = parse_ts_column([o.get("ts") for _, o in lines])
    return ex
