"""Loading a run folder into compact per-machine columns, streaming.

Every analysis tool (check, analyze, report, export) reads runs through this module, so a
folder lclock did not write (other key order, extra fields, missing optional run.json
fields) is handled once, here. Files are read in chunks of lines; each chunk is parsed by
orjson and immediately turned into numpy columns, so a 1M-event run never exists as a
million Python dicts at once. Lines that cannot be used (torn, garbage, wrong types) become
``Issue``s with their line number instead of exceptions: ``check`` reports them, the other
tools skip them and say how many.
"""

from __future__ import annotations

import contextlib
import gc
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from lclock.analysis import fastparse
from lclock.core.logline import parse_ts

KIND_INTERNAL, KIND_SEND, KIND_RECEIVE = 0, 1, 2
KINDS = {"internal": KIND_INTERNAL, "send": KIND_SEND, "receive": KIND_RECEIVE}
KIND_NAMES = {v: k for k, v in KINDS.items()}
CHUNK_BYTES = 2 << 20
# The byte-level reader for analyze/report/export (``check`` always parses with orjson).
USE_FASTPARSE = True
_MACHINE_FILE = re.compile(r"^machine-(\d+)\.jsonl$")
_TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")


class RunFolderError(Exception):
    """The folder cannot be read as a run at all (the CLI prints it and exits 2)."""


@dataclass
class Issue:
    """One problem found while reading, tied to a file and line (0 = the whole file)."""

    file: str
    line: int
    text: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.text}"


@dataclass
class MachineLog:
    """One machine's tick events as numpy columns, in file order, plus its few other lines."""

    id: int
    path: Path
    line: np.ndarray
    ts: np.ndarray
    tick: np.ndarray
    lclock: np.ndarray
    qlen: np.ndarray
    kind: np.ndarray
    dice: np.ndarray
    frm: np.ndarray
    msg: np.ndarray
    to_ptr: np.ndarray
    to_ids: np.ndarray
    vclock: np.ndarray | None
    start: dict[str, Any] | None = None
    start_line: int = 0
    stop: dict[str, Any] | None = None
    stop_line: int = 0
    other_events: Counter[str] = field(default_factory=Counter)
    firsts: dict[str, dict[str, Any]] = field(default_factory=dict)
    notable: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    lines: int = 0
    skipped: int = 0

    @property
    def events(self) -> int:
        return int(self.lclock.shape[0])

    def recipients(self, k: int) -> list[int]:
        return [int(x) for x in self.to_ids[self.to_ptr[k] : self.to_ptr[k + 1]]]


@dataclass
class Run:
    """A loaded run folder: run.json (possibly empty), machines, and reading issues."""

    path: Path
    meta: dict[str, Any]
    machines: dict[int, MachineLog]
    issues: list[Issue]
    n: int
    rates: dict[int, int]
    dice_sides: int | None
    t0: float
    # fields and lines the run declares it does not log (run.json ``not_logged``), e.g. an
    # imported text log: ``dice``, ``queue_len``, ``start``, ``stop``
    not_logged: frozenset[str] = frozenset()

    @property
    def ids(self) -> list[int]:
        return sorted(self.machines)

    @property
    def status(self) -> str:
        return str(self.meta.get("status") or "unknown")

    @property
    def run_id(self) -> str:
        return str(self.meta.get("run_id") or self.path.name)

    @property
    def events(self) -> int:
        return sum(m.events for m in self.machines.values())


# ---------------------------------------------------------------- timestamps


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_ts_column(values: Sequence[Any]) -> np.ndarray:
    """Epoch seconds of RFC 3339 strings, vectorised for the usual fixed-width form.

    ``2026-01-01T00:00:00.123456Z`` is decoded with numpy on a character view; anything
    else (other precision, an offset) goes through the general parser; a missing or bad
    value becomes NaN, which ``check`` reports and the metrics skip.
    """
    out = np.full(len(values), np.nan)
    if not values:
        return out
    try:
        arr = np.array(values, dtype="U28")
    except (TypeError, ValueError):
        arr = np.array([v if isinstance(v, str) else "" for v in values], dtype="U28")
    c = arr.view(np.uint32).reshape(len(values), 28).astype(np.int64) - 48
    digits = c[:, [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22, 23, 24, 25]]
    ok = (c[:, 27] == -48) & np.all((digits >= 0) & (digits <= 9), axis=1)
    ok &= (c[:, 4] == ord("-") - 48) & (c[:, 7] == ord("-") - 48) & (c[:, 10] == ord("T") - 48)
    ok &= (c[:, 13] == ord(":") - 48) & (c[:, 16] == ord(":") - 48) & (c[:, 19] == ord(".") - 48)
    ok &= c[:, 26] == ord("Z") - 48
    if ok.any():
        g = digits[ok]
        y = g[:, 0] * 1000 + g[:, 1] * 100 + g[:, 2] * 10 + g[:, 3]
        mo = g[:, 4] * 10 + g[:, 5]
        d = g[:, 6] * 10 + g[:, 7]
        hh = g[:, 8] * 10 + g[:, 9]
        mm = g[:, 10] * 10 + g[:, 11]
        ss = g[:, 12] * 10 + g[:, 13]
        us = g[:, 14:20] @ np.array([100000, 10000, 1000, 100, 10, 1])
        valid = (mo >= 1) & (mo <= 12) & (d >= 1) & (d <= 31) & (hh < 24) & (mm < 60) & (ss < 61)
        sec = _days_from_civil(y, mo, d) * 86400 + hh * 3600 + mm * 60 + ss
        vals = sec.astype(np.float64) + us * 1e-6
        vals[~valid] = np.nan
        out[ok] = vals
    for k in np.nonzero(~ok)[0]:
        v = values[k]
        if isinstance(v, str) and _TS_RE.match(v):
            with contextlib.suppress(ValueError):
                out[k] = parse_ts(v.replace("Z", "+00:00") if not v.endswith("Z") else v)
    return out


def ts_problem(v: Any) -> str | None:
    """Why a ``ts`` value is not an RFC 3339 UTC time, or None when it is fine."""
    if v is None:
        return "missing ts (every line needs the system time)"
    if not isinstance(v, str) or not _TS_RE.match(v):
        return f"ts {v!r} is not an RFC 3339 time"
    try:
        parse_ts(v)
    except ValueError:
        return f"ts {v!r} is not a valid date and time"
    return None


# ---------------------------------------------------------------- line validation

_INT = int


def _is_int(v: Any) -> bool:
    return isinstance(v, _INT) and not isinstance(v, bool)


def validate_line(d: Any, machine_id: int, n: int | None,
                  not_logged: frozenset[str] = frozenset()) -> tuple[list[str], bool]:
    """Schema problems of one parsed line, and whether it is still usable as a tick event.

    A line with a bad ``ts`` or ``level`` is still usable for the clock rules (the clock
    values are there); one without a usable ``tick``/``lclock``/... is not.
    """
    probs: list[str] = []
    if not isinstance(d, dict):
        return [f"not a JSON object ({type(d).__name__})"], False
    p = ts_problem(d.get("ts"))
    if p:
        probs.append(p)
    ev = d.get("event")
    if not isinstance(ev, str):
        probs.append("missing or non-string event")
        return probs, False
    if not isinstance(d.get("level"), str):
        probs.append("missing or non-string level")
    if not isinstance(d.get("run_id"), str):
        probs.append("missing or non-string run_id")
    mid = d.get("machine")
    if not _is_int(mid):
        probs.append("missing or non-integer machine")
    elif mid != machine_id:
        probs.append(f"machine {mid} in the log of machine {machine_id}")
    if ev not in KINDS:
        return probs, False
    usable = True
    for key in ("dice", "from", "queue_len"):  # stored as 32-bit columns
        v = d.get(key)
        if _is_int(v) and not -(2**31) <= v < 2**31:
            probs.append(f"{ev}: {key} {v} is out of range")
            usable = False
    for key in ("tick", "lclock", "queue_len"):
        v = d.get(key)
        if v is None and key in not_logged:
            continue
        if not _is_int(v):
            probs.append(f"{ev}: {key} missing or not an integer ({v!r})")
            usable = False
        elif v < 0:
            probs.append(f"{ev}: {key} is negative ({v})")
            usable = False
    vc = d.get("vclock")
    if vc is not None and (
        not isinstance(vc, list) or not all(_is_int(x) and 0 <= x < 2**31 for x in vc)
        or (n is not None and len(vc) != n)
    ):
        probs.append(f"vclock {vc!r} is not a list of {n or 'N'} non-negative integers")
        usable = False
    if ev in ("send", "internal") and not _is_int(d.get("dice")) and not (
            "dice" in not_logged and d.get("dice") is None):
        probs.append(f"{ev}: dice missing or not an integer ({d.get('dice')!r})")
        usable = False
    if ev == "send":
        to = d.get("to")
        if not isinstance(to, list) or not to or not all(_is_int(x) for x in to):
            probs.append(f"send: to {to!r} is not a non-empty list of machine ids")
            usable = False
        else:
            bad = [x for x in to if x == machine_id or (n is not None and not 1 <= x <= n) or x < 1]
            if bad:
                probs.append(f"send: to names {bad}, not a peer of machine {machine_id}")
                usable = False
            if len(set(to)) != len(to):
                probs.append(f"send: to {to} names a machine twice")
    if ev == "receive":
        f = d.get("from")
        if not _is_int(f) or f == machine_id or f < 1 or (n is not None and f > n):
            probs.append(f"receive: from {f!r} is not a peer's id")
            usable = False
        if not _is_int(d.get("msg_lclock")):
            probs.append(f"receive: msg_lclock missing or not an integer ({d.get('msg_lclock')!r})")
            usable = False
    return probs, usable


# ---------------------------------------------------------------- reading one file


_GET_EVENT = itemgetter("event")
def _icol(values: Sequence[Any], shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Integers as an int64 array, or ValueError: numpy would silently truncate floats or
    build a 2-D array from nested lists, and a wrong value must send its chunk to the
    careful path instead."""
    if len(values) == 0:
        return np.zeros(shape or (0,), np.int64)
    arr = np.array(values)
    if arr.dtype.kind not in "iu" or arr.shape != (shape or (len(values),)):
        raise ValueError("not a column of integers")
    return arr.astype(np.int64, copy=False)


_GET_HEAD = itemgetter("ts", "event", "tick", "lclock", "queue_len")
_GET_TAIL = itemgetter("event", "tick", "lclock")
_GET_RECV = itemgetter("from", "msg_lclock")
_GET_DICE = itemgetter("dice")
_GET_SEND = itemgetter("dice", "to")
_GET_VC = itemgetter("vclock")


def _get_dice_or_0(d: dict[str, Any]) -> Any:
    return d.get("dice", 0)


def _get_send_or_0(d: dict[str, Any]) -> tuple[Any, Any]:
    return d.get("dice", 0), d["to"]


# Narrow types where the range allows: a 1M-event run is then about 75 bytes an event.
DTYPES: dict[str, Any] = {
    "line": np.int64, "ts": np.float64, "tick": np.int64, "lclock": np.int64,
    "qlen": np.int32, "kind": np.int8, "dice": np.int32, "frm": np.int32, "msg": np.int64,
    "to_n": np.int32, "to_ids": np.int32, "vclock": np.int32,
}


class _Columns:
    """Chunks of columns, concatenated once at the end."""

    def __init__(self, not_logged: frozenset[str] = frozenset()) -> None:
        # a field the run declares not logged reads as 0 (dice) or -1 (queue_len)
        self.no_queue = "queue_len" in not_logged
        no_dice = "dice" in not_logged
        self.get_dice: Callable[[dict[str, Any]], Any] = _get_dice_or_0 if no_dice else _GET_DICE
        self.get_send: Callable[[dict[str, Any]], Any] = _get_send_or_0 if no_dice else _GET_SEND
        self.parts: dict[str, list[np.ndarray]] = {k: [] for k in (
            "line", "ts", "tick", "lclock", "qlen", "kind", "dice", "frm", "msg", "to_n",
            "to_ids", "vclock")}

    def add(self, lines: np.ndarray, ds: list[dict[str, Any]], width: int | None) -> None:
        """Append one chunk; all columns or none, so a failed chunk can be redone safely."""
        if not ds:
            return
        new: dict[str, np.ndarray] = {"line": lines}
        m = len(ds)
        try:
            ts_v, evs, tick, lc, ql = zip(*map(_GET_HEAD, ds), strict=True)
        except KeyError:  # only lines already validated get here without a ts (or queue_len)
            ts_v = tuple(d.get("ts") for d in ds)
            evs, tick, lc = zip(*map(_GET_TAIL, ds), strict=True)
            ql = tuple(d.get("queue_len", -1) if self.no_queue else d["queue_len"] for d in ds)
        new["ts"] = parse_ts_column(ts_v)
        new["tick"] = _icol(tick)
        new["lclock"] = _icol(lc)
        new["qlen"] = _icol(ql)
        ev = np.array(evs)
        kind = ((ev == "send") * KIND_SEND + (ev == "receive") * KIND_RECEIVE).astype(np.int8)
        if not np.all((ev == "internal") | (kind > 0)):
            raise ValueError("not a tick event")
        new["kind"] = kind
        dice = np.zeros(m, np.int64)
        frm = np.zeros(m, np.int64)
        msg = np.full(m, -1, np.int64)
        to_n = np.zeros(m, np.int64)
        to_ids = np.zeros(0, np.int64)
        get = ds.__getitem__
        ir = np.flatnonzero(kind == KIND_RECEIVE)
        if len(ir):
            fm = _icol(list(map(_GET_RECV, map(get, ir.tolist()))), (len(ir), 2))
            frm[ir] = fm[:, 0]
            msg[ir] = fm[:, 1]
        ii = np.flatnonzero(kind == KIND_INTERNAL)
        if len(ii):
            dice[ii] = _icol(list(map(self.get_dice, map(get, ii.tolist()))))
        isd = np.flatnonzero(kind == KIND_SEND)
        if len(isd):
            dice_s, tos = zip(*map(self.get_send, map(get, isd.tolist())), strict=False)
            dice[isd] = _icol(dice_s)
            to_n[isd] = np.fromiter(map(len, tos), np.int64, len(tos))
            to_ids = _icol([x for t in tos for x in t])
        new["dice"], new["frm"], new["msg"], new["to_n"], new["to_ids"] = dice, frm, msg, to_n, to_ids
        if width:
            try:
                vcs = list(map(_GET_VC, ds))
            except KeyError:
                vcs = [d.get("vclock") or [-1] * width for d in ds]
            new["vclock"] = _icol(vcs, (m, width))
        for k, v in new.items():
            self.parts[k].append(v.astype(DTYPES[k], copy=False))

    def add_columns(self, lines: np.ndarray, cols: dict[str, np.ndarray]) -> None:
        """Append columns decoded elsewhere (the byte-level reader)."""
        if not len(lines):
            return
        self.parts["line"].append(lines)
        for k, v in cols.items():
            self.parts[k].append(v.astype(DTYPES[k], copy=False))

    def build(self, mid: int, path: Path, width: int | None) -> MachineLog:
        g = self.parts

        def cat(k: str, dtype: Any = None) -> np.ndarray:
            """One column, its chunks released as soon as they are joined (bounded memory)."""
            dtype = dtype or DTYPES[k]
            parts = g[k]
            if not parts:
                return np.zeros(0, dtype)
            out = parts[0] if len(parts) == 1 else np.concatenate(parts)
            out = out.astype(dtype, copy=False)
            g[k] = [out]
            return out

        to_n = cat("to_n").astype(np.int64)
        to_ptr = np.zeros(len(to_n) + 1, np.int64)
        np.cumsum(to_n, out=to_ptr[1:])
        vc = None
        if width:
            vc = cat("vclock") if g["vclock"] else np.zeros((0, width), DTYPES["vclock"])
        line = cat("line", np.int64)
        to_ids = cat("to_ids")
        if line.size > 1 and np.any(np.diff(line) < 0):
            # chunks decoded two ways come back in two runs of lines: restore file order
            order = np.argsort(line, kind="stable")
            starts = to_ptr[:-1][order]
            lens = to_n[order]
            pos = np.repeat(starts - (np.cumsum(lens) - lens), lens) + np.arange(lens.sum())
            to_ids = to_ids[pos]
            to_n = lens
            to_ptr = np.zeros(len(to_n) + 1, np.int64)
            np.cumsum(to_n, out=to_ptr[1:])
            for k in ("ts", "tick", "lclock", "qlen", "kind", "dice", "frm", "msg"):
                g[k] = [cat(k)[order]]
            line = line[order]
            if vc is not None:
                vc = vc[order]
        return MachineLog(
            id=mid, path=path, line=line, ts=cat("ts"), tick=cat("tick"), lclock=cat("lclock"),
            qlen=cat("qlen"), kind=cat("kind"), dice=cat("dice"), frm=cat("frm"), msg=cat("msg"),
            to_ptr=to_ptr,
            to_ids=to_ids, vclock=vc,
        )


def _split_lines(buf: bytes) -> list[bytes]:
    """Lines with their newline; only \\n ends a line (JSON text never holds a raw CR)."""
    parts = buf.split(b"\n")
    lines = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _parse_chunk(raw: list[bytes], numbers: np.ndarray, issues: list[Issue], fname: str
                 ) -> tuple[list[Any], np.ndarray]:
    """Parse lines (``numbers`` are their line numbers): as one JSON array, else one by one."""
    try:
        objs = orjson.loads(b"[" + b",".join(raw) + b"]")
        if len(objs) == len(raw):
            return objs, numbers
    except orjson.JSONDecodeError:
        pass
    objs = []
    nums = []
    last = len(raw) - 1
    for k, b in enumerate(raw):
        if not b.strip():
            issues.append(Issue(fname, int(numbers[k]), "empty line"))
            continue
        try:
            obj = orjson.loads(b)
        except orjson.JSONDecodeError:
            torn = k == last and not b.endswith(b"\n")
            what = "torn line (no newline at the end of the file)" if torn else "not valid JSON"
            snippet = b[:60].decode("utf-8", "replace").rstrip("\n")
            issues.append(Issue(fname, int(numbers[k]), f"{what}: {snippet!r}"))
            continue
        objs.append(obj)
        nums.append(int(numbers[k]))
    return objs, np.array(nums, dtype=np.int64)


def load_machine(path: Path, mid: int, n: int | None, strict: bool = False,
                 issues: list[Issue] | None = None,
                 not_logged: frozenset[str] = frozenset()) -> MachineLog:
    """Read one machine's log. ``strict`` validates every line (slower; for ``check``)."""
    issues = issues if issues is not None else []
    fname = path.name
    cols = _Columns(not_logged)
    width: int | None = n
    start = stop = None
    start_line = stop_line = 0
    other: Counter[str] = Counter()
    firsts: dict[str, dict[str, Any]] = {}
    notable: list[tuple[int, dict[str, Any]]] = []
    lines_total = 0
    skipped = 0
    width_known = False
    gc_was = gc.isenabled()
    gc.disable()  # millions of short-lived dicts: the cyclic GC only costs time here
    try:
        with open(path, "rb") as fh:
            pending = b""
            while True:
                block = fh.read(CHUNK_BYTES)
                if not block and not pending:
                    break
                data = pending + block
                if block:
                    cut = data.rfind(b"\n") + 1
                    if cut == 0:  # a line longer than a chunk: read on
                        pending = data
                        continue
                    buf, pending = data[:cut], data[cut:]
                else:
                    buf, pending = data, b""
                base = lines_total
                nlines = buf.count(b"\n") + (0 if buf.endswith(b"\n") else 1)
                lines_total += nlines
                raw: list[bytes] | None = None
                numbers = np.arange(base + 1, base + 1 + nlines, dtype=np.int64)
                if not strict and width_known and USE_FASTPARSE:
                    res = fastparse.parse_chunk(buf, width, n)
                    if res is not None and len(res[2]) <= max(16, nlines // 20):
                        fcols, taken, rest = res
                        cols.add_columns(numbers[taken], fcols)
                        if not len(rest):
                            continue
                        all_lines = _split_lines(buf)
                        raw = [all_lines[k] for k in rest.tolist()]
                        numbers = numbers[rest]
                if raw is None:
                    raw = _split_lines(buf)
                objs, nums = _parse_chunk(raw, numbers, issues, fname)
                if not width_known:
                    for o in objs:
                        if isinstance(o, dict) and o.get("event") in KINDS:
                            vc = o.get("vclock")
                            width = len(vc) if isinstance(vc, list) and vc else (n if vc else None)
                            if n is not None and width is not None and width != n:
                                width = n
                            width_known = True
                            break
                ticks: list[dict[str, Any]] = []
                tick_nums: list[int] = []
                fast = not strict
                if fast:
                    try:
                        evs = list(map(_GET_EVENT, objs))
                    except (KeyError, TypeError):
                        evs = [o.get("event") if isinstance(o, dict) else None for o in objs]
                    ev_arr = np.array(evs, dtype=object)
                    mask = (ev_arr == "send") | (ev_arr == "receive") | (ev_arr == "internal")
                    if mask.all():
                        ticks = objs
                    else:
                        ticks = [objs[k] for k in np.nonzero(mask)[0].tolist()]
                        for k in np.nonzero(~mask)[0].tolist():
                            o = objs[k]
                            if isinstance(o, dict):
                                start, start_line, stop, stop_line = _other(
                                    o, int(nums[k]), other, notable, firsts, start, start_line, stop,
                                    stop_line)
                            else:
                                skipped += 1
                    tnums = nums[mask]
                    try:
                        cols.add(tnums, ticks, width)
                        continue
                    except (KeyError, TypeError, ValueError, OverflowError):
                        pass  # some line has a wrong type: redo this chunk line by line
                ticks = []
                tick_nums = []
                for o, num in zip(objs, nums.tolist(), strict=False):
                    probs, usable = validate_line(o, mid, width if width else n, not_logged)
                    if strict:
                        for p in probs:
                            issues.append(Issue(fname, num, p))
                    if isinstance(o, dict) and o.get("event") in KINDS:
                        if usable:
                            ticks.append(o)
                            tick_nums.append(num)
                        else:
                            skipped += 1
                    elif isinstance(o, dict) and isinstance(o.get("event"), str):
                        if fast:
                            continue  # already taken in the fast pass
                        start, start_line, stop, stop_line = _other(
                            o, num, other, notable, firsts, start, start_line, stop, stop_line)
                    elif not fast:
                        skipped += 1
                if ticks and width and any(len(o.get("vclock") or ()) != width for o in ticks):
                    for o, num in zip(ticks, tick_nums, strict=False):
                        if o.get("vclock") is None:
                            issues.append(Issue(fname, num, "vclock missing on this line only"))
                cols.add(np.array(tick_nums, dtype=np.int64), ticks, width)
    finally:
        if gc_was:
            gc.enable()
    log = cols.build(mid, path, width)
    log.start, log.start_line, log.stop, log.stop_line = start, start_line, stop, stop_line
    log.other_events = other
    log.firsts = firsts
    log.notable = notable
    log.lines = lines_total
    log.skipped = skipped
    return log


def _other(o: dict[str, Any], num: int, other: Counter[str], notable: list[tuple[int, dict[str, Any]]],
           notable_first: dict[str, dict[str, Any]],
           start: dict[str, Any] | None, start_line: int, stop: dict[str, Any] | None,
           stop_line: int) -> tuple[dict[str, Any] | None, int, dict[str, Any] | None, int]:
    ev = o.get("event")
    name = ev if isinstance(ev, str) else "?"
    other[name] += 1
    if name == "connected" and not notable_first.get(name):
        notable_first[name] = o
    if name == "start" and start is None:
        return o, num, stop, stop_line
    if name == "stop":
        return start, start_line, o, num
    if o.get("level") in ("warning", "error") and len(notable) < 1000:
        notable.append((num, o))
    return start, start_line, stop, stop_line


# ---------------------------------------------------------------- the run folder


def machine_files(run_dir: Path) -> dict[int, Path]:
    out = {}
    for p in run_dir.iterdir():
        m = _MACHINE_FILE.match(p.name)
        if m and p.is_file():
            out[int(m.group(1))] = p
    return dict(sorted(out.items()))


def read_meta(run_dir: Path, issues: list[Issue]) -> dict[str, Any]:
    """run.json as a dict, or {} with an issue: a run without it can still be analysed."""
    p = run_dir / "run.json"
    if not p.exists():
        issues.append(Issue("run.json", 0, "missing (analysing the machine logs alone)", "warning"))
        return {}
    try:
        meta = orjson.loads(p.read_bytes())
    except (orjson.JSONDecodeError, OSError) as exc:
        issues.append(Issue("run.json", 0, f"unreadable: {exc}"))
        return {}
    if not isinstance(meta, dict):
        issues.append(Issue("run.json", 0, "not a JSON object"))
        return {}
    return meta


def load_run(run_dir: Path | str, strict: bool = False) -> Run:
    """Load a run folder; raises ``RunFolderError`` only when there is nothing to read."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise RunFolderError(f"{run_dir}: no such folder")
    if not run_dir.is_dir():
        raise RunFolderError(f"{run_dir}: not a folder")
    issues: list[Issue] = []
    files = machine_files(run_dir)
    if not files and not (run_dir / "run.json").exists():
        raise RunFolderError(f"{run_dir}: not a run folder (no run.json, no machine-*.jsonl)")
    meta = read_meta(run_dir, issues)
    mlist = meta.get("machines") if isinstance(meta.get("machines"), list) else []
    mlist = [m for m in mlist if isinstance(m, dict) and _is_int(m.get("id"))]
    settings = meta.get("settings") if isinstance(meta.get("settings"), dict) else {}
    declared = {int(m["id"]) for m in mlist}
    n_set = settings.get("machines") if _is_int(settings.get("machines")) else None
    n = max([*declared, *files, n_set or 0]) if (declared or files or n_set) else 0
    for mid in sorted(declared | set(range(1, (n_set or 0) + 1))):
        if mid not in files:
            issues.append(Issue(f"machine-{mid}.jsonl", 0,
                                "missing: run.json names this machine but its log is not there"))
    nl = meta.get("not_logged")
    not_logged = frozenset(x for x in nl if isinstance(x, str)) if isinstance(nl, list) else frozenset()
    machines: dict[int, MachineLog] = {}
    for mid, path in files.items():
        try:
            machines[mid] = load_machine(path, mid, n or None, strict=strict, issues=issues,
                                         not_logged=not_logged)
        except OSError as exc:
            issues.append(Issue(path.name, 0, f"unreadable: {exc.strerror or exc}"))
    rates: dict[int, int] = {}
    for m in mlist:
        if _is_int(m.get("rate")) and m["rate"] > 0:
            rates[int(m["id"])] = int(m["rate"])
    srates = settings.get("rates")
    if isinstance(srates, list):
        for k, r in enumerate(srates, 1):
            if _is_int(r) and r > 0:
                rates.setdefault(k, r)
    for mid, log in machines.items():
        r = (log.start or {}).get("rate")
        if _is_int(r) and r > 0:
            rates.setdefault(mid, int(r))
    dice = settings.get("dice_sides") if _is_int(settings.get("dice_sides")) else None
    # t0: the shared start instant if the runtime logged it, else the earliest first tick
    declared_t0 = [m.firsts.get("connected", {}).get("t0_epoch") for m in machines.values()]
    declared_t0 = [float(x) for x in declared_t0 if isinstance(x, (int, float)) and x > 0]
    firsts = [float(m.ts[0]) for m in machines.values() if m.events and np.isfinite(m.ts[0])]
    t0 = min(firsts) if firsts else 0.0
    if declared_t0 and (not firsts or abs(min(declared_t0) - t0) < 60):
        t0 = min(declared_t0)
    return Run(path=run_dir, meta=meta, machines=machines, issues=issues, n=n, rates=rates,
               dice_sides=dice, t0=t0, not_logged=not_logged)
