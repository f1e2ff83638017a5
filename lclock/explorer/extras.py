"""What the explorer needs from a machine log beyond ``lclock.analysis.load``'s columns.

``load`` gives the tick events as numpy columns (the schema-v1 fields). The explorer also
draws the clocks of SPEC section 7 (``pt``, ``hlc`` on tick events, ``msg_pt``/``msg_hlc``
and ``dup`` on receives) and the other lines of a log (``drop``, ``fault``, ``pause``,
``resume``, ``stop``, warnings and errors). This module reads them in one more pass over the
file's bytes, with the same numpy key-finding as ``fastparse``: parsing a million lines
into dicts would cost seconds, the byte pass costs a fraction of one. Only the lines that
are not tick events (few, or one per dropped message) are parsed with orjson.

A value that is not where or what it should be is left out (the field reads as absent for
that event): ``lclock check`` is the tool that reports bad lines, not the explorer.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from lclock.analysis.fastparse import _find_key, _int_list, _ints, _value_start
from lclock.analysis.load import MachineLog, parse_ts_column

CHUNK_BYTES = 8 << 20
MISSING = -1  # every clock value we read is a non-negative integer
_Q, _COLON, _BSL, _NL = 34, 58, 92, 10


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


class NotARegularFile(OSError):
    """A machine log that is a FIFO, a device or a folder: never opened."""


def _open_regular(path: os.PathLike[str] | str) -> int:
    """Open for reading only what ``stat`` says is a regular file (a FIFO would block)."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise NotARegularFile(f"{path}: not a regular file")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped between stat and open
        os.close(fd)
        raise NotARegularFile(f"{path}: not a regular file")
    return fd


def _chunks(fd: int) -> Any:
    """Blocks of whole lines (the last one may lack its newline)."""
    pending = b""
    while True:
        block = os.read(fd, CHUNK_BYTES)
        if not block:
            if pending:
                yield pending
            return
        data = pending + block
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            pending = data
            continue
        yield data[:cut]
        pending = data[cut:]


def _keys_at(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of unescaped ``":`` (key ends) and the three bytes before each, packed."""
    q = np.flatnonzero((a[:-1] == _Q) & (a[1:] == _COLON))
    q = q[(q >= 4) & (a[q - 1] != _BSL)]
    code = (a[q - 3].astype(np.uint32) << 16) | (a[q - 2].astype(np.uint32) << 8) | a[q - 1]
    return q, code


def read_extras(log: MachineLog, max_other: int = 200_000) -> Extras:
    """One pass over ``log.path``: the section-7 fields of its tick events, and its other lines."""
    m = log.events
    def col() -> np.ndarray:
        return np.full(m, MISSING, np.int64)

    ex = Extras(pt=col(), hlc_l=col(), hlc_c=col(), msg_pt=col(), msg_hlc_l=col(), msg_hlc_c=col(),
                dup=np.zeros(m, bool))
    tick_lines = log.line  # 1-based line numbers of the tick events, increasing
    fd = _open_regular(log.path)
    base = 0  # lines before this chunk
    clock_keys: bool | None = None
    try:
        for buf in _chunks(fd):
            a = np.frombuffer(buf + b"\0" * 64, np.uint8)
            nl = np.flatnonzero(a[: len(buf)] == _NL)
            if not buf.endswith(b"\n"):
                nl = np.append(nl, len(buf))
            nlines = len(nl)
            lo, hi = np.searchsorted(tick_lines, [base + 1, base + nlines + 1])
            rows = np.arange(lo, hi)  # event rows whose lines are in this chunk
            is_tick = np.zeros(nlines, bool)
            is_tick[tick_lines[lo:hi] - base - 1] = True
            _other_lines(buf, nl, base, ~is_tick, ex, max_other)
            if hi > lo and clock_keys is None:  # the first tick lines tell: a run logs the
                clock_keys = b'"pt"' in buf or b'"hlc"' in buf  # clocks on every tick or never
            if hi > lo and (clock_keys or b'"dup"' in buf):  # a search costs ~15 ms per chunk
                row_of_line = np.full(nlines, -1, np.int64)
                row_of_line[tick_lines[lo:hi] - base - 1] = rows
                _tick_fields(a, nl, row_of_line, ex, bool(clock_keys))
            base += nlines
    finally:
        os.close(fd)
    ex.other_ts = parse_ts_column([o.get("ts") for _, o, _ in ex.other])
    return ex


def _other_lines(buf: bytes, nl: np.ndarray, base: int, mask: np.ndarray, ex: Extras,
                 max_other: int) -> None:
    starts = np.concatenate(([0], nl[:-1] + 1))
    for k in np.flatnonzero(mask).tolist():
        raw = buf[starts[k]:nl[k]]
        if not raw.strip():
            continue
        if len(ex.other) >= max_other:
            ex.other_dropped += 1
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue  # torn or garbage: `lclock check` names it
        if isinstance(obj, dict):
            ex.other.append((base + k + 1, obj, raw))


def _tick_fields(a: np.ndarray, nl: np.ndarray, row_of_line: np.ndarray, ex: Extras,
                 clocks: bool) -> None:
    q, code = _keys_at(a)

    def values(key: bytes) -> tuple[np.ndarray, np.ndarray]:
        """(value starts, event rows) of ``key`` on tick lines."""
        pos = _find_key(a, q, code, key)
        rows = row_of_line[np.searchsorted(nl, pos)] if pos.size else pos
        sel = rows >= 0
        return _value_start(a, pos[sel]), rows[sel]

    for key, col in ((b"pt", ex.pt), (b"msg_pt", ex.msg_pt)) if clocks else ():
        v, rows = values(key)
        if rows.size:
            vals, _, ok = _ints(a, v)
            col[rows[ok]] = vals[ok]
    for key, lcol, ccol in ((b"hlc", ex.hlc_l, ex.hlc_c), (b"msg_hlc", ex.msg_hlc_l, ex.msg_hlc_c)
                            ) if clocks else ():
        v, rows = values(key)
        if rows.size:
            mat, _, ok = _int_list(a, v, 2, 2)
            lcol[rows[ok]] = mat[ok, 0]
            ccol[rows[ok]] = mat[ok, 1]
    v, rows = values(b"dup")
    if rows.size:
        true = (a[v] == ord("t")) & (a[v + 1] == ord("r")) & (a[v + 2] == ord("u")) & (a[v + 3] == ord("e"))
        ex.dup[rows[true]] = True
