"""Loading a run folder into compact per-machine columns, streaming.

Every analysis tool (check, analyze, report, export, trace, hb, view) and the Python API
(lclock.api, whose DataFrames lclock.analysis.frames makes from these columns) reads runs
through this module, so a folder lclock did not write (other key order, extra fields,
missing optional run.json fields) is handled once, here. Files are read in chunks of whole
lines; each chunk is decoded straight from its bytes (``fastparse``) where its lines are
plain tick events, and parsed by orjson otherwise, and immediately turned into numpy
columns, so a 1M-event run never exists as a million Python dicts at once. Lines that cannot be used (torn, garbage,
wrong types, too long, of another run) become ``Issue``s with their line number instead of
exceptions: ``check`` reports them, the other tools skip them and say how many.

Hostile folders are the rule, not the exception (see ``folder``): memory grows with the
bytes of the logs, never with what run.json claims, and no line is held longer than
``MAX_LINE_BYTES``.
"""

from __future__ import annotations

import gc
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import IO, Any, TypeGuard

import numpy as np
import orjson

from lclock.analysis import fastparse
from lclock.analysis.folder import (
    MAX_MACHINES,
    MAX_RATE,
    Problem,
    RunFacts,
    UnreadableFile,
    inside,
    open_regular,
    read_run_json,
    run_facts,
)
from lclock.analysis.folder import machine_files as _machine_files
from lclock.analysis.timestamps import days_from_civil as _days_from_civil  # noqa: F401
from lclock.analysis.timestamps import parse_ts_column, short, ts_problem
from lclock.runfolder import RUN_JSON, RunFolderError, has_run_json

__all__ = [
    "KINDS", "KIND_INTERNAL", "KIND_NAMES", "KIND_RECEIVE", "KIND_SEND", "Issue", "MachineLog",
    "Run", "RunFolderError", "load_machine", "load_run", "machine_files", "parse_ts_column",
    "read_meta", "ts_problem", "validate_line",
]

KIND_INTERNAL, KIND_SEND, KIND_RECEIVE = 0, 1, 2
KINDS = {"internal": KIND_INTERNAL, "send": KIND_SEND, "receive": KIND_RECEIVE}
KIND_NAMES = {v: k for k, v in KINDS.items()}
CHUNK_BYTES = 2 << 20
# The longest line read: a tick line of MAX_MACHINES machines is about 12 KB.
MAX_LINE_BYTES = 1 << 20
# The byte-level reader (tests switch it off to compare it with the orjson path).
USE_FASTPARSE = True
# Non-tick lines kept whole, per kind (what the rules about them need), and at most how many.
KEPT_EVENTS = ("start", "connected", "stop", "drop", "fault", "pause", "resume", "snapshot")
MAX_KEPT = 200_000
MAX_NOTABLE = 1000
# Issues kept in full per (file, rule); beyond that only counted.
MAX_ISSUES = 1000


@dataclass
class Issue:
    """One problem found while reading or checking, tied to a file and line (0 = the whole
    file). ``rule`` names the rule, ``count`` how many lines it stands for."""

    file: str
    line: int
    text: str
    severity: str = "error"
    rule: str = ""
    count: int = 1
    machine: int | None = None
    # the generated log's place when ``file``/``line`` cite the user's own text log (``src``)
    log_file: str | None = None
    log_line: int | None = None
    bug: str | None = None  # the classic bug the finding names (SPEC 10), if it names one

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
    # The clocks of SPEC section 7, None when the log has none: ``pt`` (µs) and ``hlc``
    # ([l, c] rows) after each event, ``msg_pt``/``msg_hlc`` what a receive's message
    # carried; -1 where a line lacks the field (or it was not usable)
    pt: np.ndarray | None = None
    hlc: np.ndarray | None = None
    msg_pt: np.ndarray | None = None
    msg_hlc: np.ndarray | None = None
    # per entry of ``to_ids``: the network delivered that message twice (``dup_to``)
    to_dup: np.ndarray | None = None
    start: dict[str, Any] | None = None
    start_line: int = 0
    stop: dict[str, Any] | None = None  # the first stop line
    stop_line: int = 0
    other_events: Counter[str] = field(default_factory=Counter)
    firsts: dict[str, dict[str, Any]] = field(default_factory=dict)
    notable: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    # lines of events lclock does not know (neither ticks nor KEPT_EVENTS), at most
    # MAX_NOTABLE: what the explorer marks as "other"
    unknown: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    lines: int = 0
    skipped: int = 0
    dup: np.ndarray | None = None  # receives logged with ``dup: true`` (None: there are none)
    kept: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    run_id: str | None = None  # the run id this log was read as (lines of others left out)
    # lines that may have been events but could not be used (garbage, torn, wrong types):
    # the rules do not judge what depends on them
    unusable: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def events(self) -> int:
        return int(self.lclock.shape[0])

    def recipients(self, k: int) -> list[int]:
        return [int(x) for x in self.to_ids[self.to_ptr[k] : self.to_ptr[k + 1]]]

    def lines_of(self, event: str) -> list[tuple[int, dict[str, Any]]]:
        """(line number, object) of this log's ``event`` lines (start, stop, drop, ...)."""
        return self.kept.get(event, [])

    def skipped_before(self) -> np.ndarray:
        """Per event, the ticks skipped by pauses before it: tick k of a machine that skipped
        s ticks is due at t0 + (k - 1 + s)/rate (SPEC 6.5: skipped ticks are not made up)."""
        resumes = [(num, o.get("skipped")) for num, o in self.lines_of("resume")]
        resumes = [(num, s) for num, s in resumes if _is_int(s) and 0 <= s < 2**40]
        if not resumes:
            return np.zeros(self.events, np.int64)
        lines = np.array([num for num, _ in resumes], np.int64)
        total = np.cumsum([s for _, s in resumes])
        k = np.searchsorted(lines, self.line, side="right")
        return np.where(k > 0, total[np.maximum(k - 1, 0)], 0)


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
    facts: RunFacts = field(default_factory=RunFacts)

    @property
    def ids(self) -> list[int]:
        return sorted(self.machines)

    @property
    def not_logged(self) -> frozenset[str]:
        """What run.json says the logs do not have (``dice``, ``queue_len``, ``start``,
        ``stop``): those columns read 0 (dice) and -1 (queue_len) and mean nothing."""
        return self.facts.not_logged

    @property
    def status(self) -> str:
        return self.facts.status or str(self.meta.get("status") or "unknown")

    @property
    def run_id(self) -> str:
        return self.facts.run_id or self.path.name

    @property
    def events(self) -> int:
        return sum(m.events for m in self.machines.values())


# ---------------------------------------------------------------- line validation


def _is_int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def event_name(o: Any) -> str | None:
    """The ``event`` of a parsed line when it is a string (a hostile line's may be an object
    or a list, which cannot even be looked up in a dict), else None."""
    ev = o.get("event") if isinstance(o, dict) else None
    return ev if isinstance(ev, str) else None


_I63 = 2**63
_I31 = 2**31


def _tick_problems(d: dict[str, Any], ev: str, machine_id: int, n: int | None,
                   not_logged: frozenset[str] = frozenset()) -> tuple[list[tuple[str, str]], bool]:
    """Problems of the clock fields of a tick event, and whether it is still usable (a
    field the run declares ``not_logged`` may be missing)."""
    probs: list[tuple[str, str]] = []
    usable = True
    for key in ("tick", "lclock", "queue_len"):
        v = d.get(key)
        if v is None and key in not_logged:
            continue
        if not _is_int(v):
            probs.append((f"field-{key}", f"{ev}: {key} missing or not an integer ({short(v)})"))
            usable = False
        elif v < 0:
            probs.append((f"field-{key}", f"{ev}: {key} is negative ({v})"))
            usable = False
        elif v >= _I63:
            probs.append((f"field-{key}", f"{ev}: {key} {short(v)} is beyond 64 bits"))
            usable = False
    for key in ("dice", "from", "queue_len"):  # stored as 32-bit columns
        v = d.get(key)
        if _is_int(v) and not -_I31 <= v < _I31 and not (key == "queue_len" and v >= _I63):
            probs.append((f"field-{key}", f"{ev}: {key} {short(v)} is out of range"))
            usable = False
    vc = d.get("vclock")
    if vc is not None and (
        not isinstance(vc, list) or (n is not None and len(vc) != n)
        or not all(_is_int(x) and 0 <= x < _I31 for x in vc)
    ):
        probs.append(("field-vclock", f"vclock {short(vc)} is not a list of {n or 'N'} "
                                      "non-negative integers"))
        usable = False
    if ev in ("send", "internal") and not _is_int(d.get("dice")) and not (
            d.get("dice") is None and "dice" in not_logged):
        probs.append(("field-dice", f"{ev}: dice missing or not an integer ({short(d.get('dice'))})"))
        usable = False
    if ev == "send" and not (d.get("to") is None and "to" in not_logged):
        p, u = _to_problems(d.get("to"), machine_id, n)
        probs += p
        usable &= u
        if u and "dup_to" in d:
            probs += _dup_to_problems(d.get("dup_to"), d["to"])
    if ev == "receive":
        p, u = _receive_problems(d, machine_id, n, not_logged)
        probs += p
        usable &= u
    probs += _clock_problems(d, ev)
    return probs, usable


def _clock_problems(d: dict[str, Any], ev: str) -> list[tuple[str, str]]:
    """The fields of SPEC sections 6 and 7 on a tick line: a wrong one reads as unknown
    (the line stays usable for the other rules)."""
    probs: list[tuple[str, str]] = []
    keys = ("pt", "hlc", "msg_pt", "msg_hlc") if ev == "receive" else ("pt", "hlc")
    for key in keys:
        if key not in d:
            continue
        v = d[key]
        if key.endswith("pt"):
            if not (_is_int(v) and 0 <= v < _I63):
                probs.append((f"field-{key}", f"{ev}: {key} {short(v)} is not an integer "
                                              "number of microseconds >= 0"))
        elif not _hlc_ok(v):
            probs.append((f"field-{key}", f"{ev}: {key} {short(v)} is not a pair [l, c] of "
                                          "integers >= 0"))
    if "dup" in d and not isinstance(d["dup"], bool):
        probs.append(("field-dup", f"{ev}: dup {short(d['dup'])} is not true or false"))
    elif d.get("dup") is True and ev != "receive":
        probs.append(("field-dup", f"{ev}: dup: true on a {ev}: only a receive can handle a "
                                   "duplicate"))
    return probs


def _hlc_ok(v: Any) -> bool:
    return (isinstance(v, list) and len(v) == 2
            and all(_is_int(x) and 0 <= x < _I63 for x in v))


def _dup_to_problems(dup_to: Any, to: list[int]) -> list[tuple[str, str]]:
    if (isinstance(dup_to, list) and all(_is_int(x) for x in dup_to)
            and set(dup_to) <= set(to) and len(set(dup_to)) == len(dup_to)):
        return []
    return [("field-dup_to", f"send: dup_to {short(dup_to)} is not a list of recipients of "
                             f"this send (to {short(to)}), each named once")]


def _receive_problems(d: dict[str, Any], machine_id: int, n: int | None,
                      not_logged: frozenset[str] = frozenset()
                      ) -> tuple[list[tuple[str, str]], bool]:
    """A receive's sender and message clock (either may be missing where run.json declares
    it ``not_logged``: an imported log that does not say it on every line)."""
    probs: list[tuple[str, str]] = []
    f = d.get("from")
    if f is None and "from" in not_logged:
        pass
    elif not _is_int(f) or f == machine_id or f < 1 or (n is not None and f > n):
        probs.append(("field-from", f"receive: from {short(f)} is not a peer's id"))
    m = d.get("msg_lclock")
    if m is None and "msg_lclock" in not_logged:
        pass
    elif not _is_int(m) or not 0 <= m < _I63:
        probs.append(("field-msg_lclock", "receive: msg_lclock missing or not a 64-bit "
                                          f"integer >= 0 ({short(m)})"))
    return probs, not probs


def _to_problems(to: Any, machine_id: int, n: int | None) -> tuple[list[tuple[str, str]], bool]:
    if not isinstance(to, list) or not to or not all(_is_int(x) for x in to):
        return [("field-to", f"send: to {short(to)} is not a non-empty list of machine ids")], False
    probs: list[tuple[str, str]] = []
    usable = True
    bad = [x for x in to if x == machine_id or (n is not None and not 1 <= x <= n) or x < 1
           or x >= _I31]
    if bad:
        probs.append(("field-to", f"send: to names {short(bad)}, not a peer of machine {machine_id}"))
        usable = False
    if len(set(to)) != len(to):
        probs.append(("field-to-twice", f"send: to {short(to)} names a machine twice"))
    return probs, usable


def line_problems(d: Any, machine_id: int, n: int | None, run_id: str | None = None,
                  not_logged: frozenset[str] = frozenset()) -> tuple[list[tuple[str, str]], bool]:
    """(rule, text) of every schema problem of one parsed line, and whether it is still
    usable as a tick event.

    A line with a bad ``ts`` or ``level`` is still usable for the clock rules (the clock
    values are there); one without a usable ``tick``/``lclock``/... is not, and neither is
    a line of another run (``run_id`` given and different): it is not part of this run.
    ``not_logged`` (run.json's) lets ``dice`` and ``queue_len`` be missing.
    """
    if not isinstance(d, dict):
        return [("line-object", f"not a JSON object ({type(d).__name__})")], False
    rid = d.get("run_id")
    if run_id is not None and isinstance(rid, str) and rid != run_id:
        return [("line-other-run", f"a line of another run (run_id {short(rid)}, this run is "
                                   f"{short(run_id)}): left out")], False
    probs: list[tuple[str, str]] = []
    p = ts_problem(d.get("ts"))
    if p:
        probs.append(("field-ts", p))
    ev = d.get("event")
    if not isinstance(ev, str):
        probs.append(("field-event", "missing or non-string event"))
        return probs, False
    if not isinstance(d.get("level"), str):
        probs.append(("field-level", "missing or non-string level"))
    if not isinstance(rid, str):
        probs.append(("field-run_id", "missing or non-string run_id"))
    mid = d.get("machine")
    if not _is_int(mid):
        probs.append(("field-machine", "missing or non-integer machine"))
    elif mid != machine_id:
        probs.append(("field-machine", f"machine {short(mid)} in the log of machine {machine_id}"))
    if ev not in KINDS:
        return probs, False
    more, usable = _tick_problems(d, ev, machine_id, n, not_logged)
    return probs + more, usable


def validate_line(d: Any, machine_id: int, n: int | None, run_id: str | None = None,
                  not_logged: frozenset[str] = frozenset()) -> tuple[list[str], bool]:
    """Schema problems of one parsed line (their texts), and whether it is still usable."""
    probs, usable = line_problems(d, machine_id, n, run_id, not_logged)
    return [text for _, text in probs], usable


# ---------------------------------------------------------------- columns


def _icol(values: Sequence[Any], shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Integers as an int64 array, or ValueError: numpy would silently truncate floats or
    build a 2-D array from nested lists, and a wrong value must send its chunk to the
    careful path instead."""
    if len(values) == 0:
        return np.zeros(shape or (0,), np.int64)
    arr = np.array(values)
    if arr.dtype.kind not in "i" or arr.shape != (shape or (len(values),)):
        raise ValueError("not a column of 64-bit integers")
    return arr.astype(np.int64, copy=False)


_GET_EVENT = itemgetter("event")
_GET_HEAD = itemgetter("ts", "event", "tick", "lclock", "queue_len")
_GET_TAIL = itemgetter("event", "tick", "lclock")
_GET_QUEUE = itemgetter("queue_len")
_GET_RECV = itemgetter("from", "msg_lclock")
_GET_DICE = itemgetter("dice")
_GET_SEND = itemgetter("dice", "to")
_GET_VC = itemgetter("vclock")


def _get_dice_or_0(d: dict[str, Any]) -> Any:
    v = d.get("dice")
    return 0 if v is None else v


def _get_send_or_0(d: dict[str, Any]) -> tuple[Any, Any]:
    return _get_dice_or_0(d), d["to"]


def _get_recv_holes(d: dict[str, Any]) -> tuple[Any, Any]:
    """A receive's sender (0: not logged) and message clock (-1: not logged)."""
    f, m = d.get("from"), d.get("msg_lclock")
    return 0 if f is None else f, -1 if m is None else m


def _send_getter(no_dice: bool, no_to: bool) -> Any:
    if not no_to:
        return _get_send_or_0 if no_dice else _GET_SEND

    def get(d: dict[str, Any]) -> tuple[Any, Any]:  # a send without recipients: none
        to = d.get("to")
        return (_get_dice_or_0(d) if no_dice else d["dice"]), [] if to is None else to
    return get


def _present(col: np.ndarray) -> np.ndarray | None:
    """A clock column, or None when no line of the log has the field."""
    return col if col.size and bool((col >= 0).any()) else None


def _dup_flags(sends: list[dict[str, Any]], tos: tuple[Any, ...], total: int) -> np.ndarray:
    """Per recipient of each send: whether ``dup_to`` names it (a malformed ``dup_to`` is a
    finding of the careful validation and reads as none)."""
    flags = np.zeros(total, bool)
    k = 0
    for d, to in zip(sends, tos, strict=True):
        dt = d.get("dup_to")
        if dt and isinstance(dt, list):
            for j, x in enumerate(to):
                if x in dt:
                    flags[k + j] = True
        k += len(to)
    return flags


def _queue_or_minus_1(d: dict[str, Any]) -> Any:
    v = d.get("queue_len")
    return -1 if v is None else v


# Narrow types where the range allows: a 1M-event run is then about 75 bytes an event.
DTYPES: dict[str, Any] = {
    "line": np.int64, "ts": np.float64, "tick": np.int64, "lclock": np.int64,
    "qlen": np.int32, "kind": np.int8, "dice": np.int32, "frm": np.int32, "msg": np.int64,
    "to_n": np.int32, "to_ids": np.int32, "vclock": np.int32, "dup": np.bool_,
    "pt": np.int64, "msg_pt": np.int64, "hlc": np.int64, "msg_hlc": np.int64,
    "to_dup": np.bool_,
}
_PER_EVENT = ("ts", "tick", "lclock", "qlen", "kind", "dice", "frm", "msg", "dup", "pt",
              "msg_pt", "hlc", "msg_hlc")
_CLOCKS = ("pt", "msg_pt", "hlc", "msg_hlc")


def _clock_column(ds: list[dict[str, Any]], key: str) -> np.ndarray:
    """``key`` of every line, -1 where a line lacks it or its value is not usable (the
    careful validation says why); [l, c] rows for the hybrid clocks."""
    pair = key.endswith("hlc")
    vals = [d.get(key) for d in ds]
    shape = (len(ds), 2) if pair else (len(ds),)
    try:
        arr = np.array(vals)
        if arr.dtype.kind == "i" and arr.shape == shape and (not arr.size or arr.min() >= 0):
            return arr.astype(np.int64, copy=False)
    except (ValueError, OverflowError):
        pass
    if pair:
        return np.array([v if _hlc_ok(v) else (-1, -1) for v in vals], np.int64).reshape(shape)
    return np.array([v if _is_int(v) and 0 <= v < _I63 else -1 for v in vals], np.int64)


class _Columns:
    """Chunks of columns, concatenated once at the end. A field the run declares
    ``not_logged`` reads 0 (dice) or -1 (queue_len) where a line does not have it."""

    def __init__(self, not_logged: frozenset[str] = frozenset()) -> None:
        self.parts: dict[str, list[np.ndarray]] = {k: [] for k in DTYPES}
        self.no_queue = "queue_len" in not_logged
        no_dice = "dice" in not_logged
        self.get_dice: Any = _get_dice_or_0 if no_dice else _GET_DICE
        self.get_send: Any = _send_getter(no_dice, "to" in not_logged)
        self.get_recv: Any = (_get_recv_holes if {"from", "msg_lclock"} & not_logged
                              else _GET_RECV)

    def add(self, lines: np.ndarray, ds: list[dict[str, Any]], width: int | None) -> None:
        """Append one chunk of tick dicts; all columns or none (ValueError and the like),
        so a failed chunk can be redone safely."""
        if not ds:
            return
        new: dict[str, np.ndarray] = {"line": lines}
        m = len(ds)
        try:
            ts_v, evs, tick, lc, ql = zip(*map(_GET_HEAD, ds), strict=True)
        except KeyError:  # only lines already validated get here without a ts (or queue_len)
            ts_v = tuple(d.get("ts") for d in ds)
            evs, tick, lc = zip(*map(_GET_TAIL, ds), strict=True)
            ql = tuple(map(_queue_or_minus_1 if self.no_queue else _GET_QUEUE, ds))
        else:
            if self.no_queue:  # queue_len may be null
                ql = tuple(map(_queue_or_minus_1, ds))
        new["ts"] = parse_ts_column(ts_v)
        new["tick"] = _icol(tick)
        new["lclock"] = _icol(lc)
        new["qlen"] = _icol(ql)
        ev = np.array(evs)
        kind = ((ev == "send") * KIND_SEND + (ev == "receive") * KIND_RECEIVE).astype(np.int8)
        if not np.all((ev == "internal") | (kind > 0)):
            raise ValueError("not a tick event")
        new["kind"] = kind
        new.update(self._by_kind(ds, kind))
        if width:
            try:
                vcs = list(map(_GET_VC, ds))
                if None in vcs:
                    raise KeyError("vclock")
            except KeyError:  # validated lines without one (check says so): unknown
                vcs = [d.get("vclock") or [-1] * width for d in ds]
            new["vclock"] = _icol(vcs, (m, width))
        new["dup"] = np.fromiter((d.get("dup") is True for d in ds), bool, m)
        for key in _CLOCKS:
            new[key] = _clock_column(ds, key)
        for k, v in new.items():
            self.parts[k].append(v.astype(DTYPES[k], copy=False))

    def _by_kind(self, ds: list[dict[str, Any]], kind: np.ndarray) -> dict[str, np.ndarray]:
        """dice, from, msg_lclock and recipients, read only where the event has them."""
        m = len(ds)
        dice = np.zeros(m, np.int64)
        frm = np.zeros(m, np.int64)
        msg = np.full(m, -1, np.int64)
        to_n = np.zeros(m, np.int64)
        to_ids = np.zeros(0, np.int64)
        to_dup = np.zeros(0, bool)
        get = ds.__getitem__
        ir = np.flatnonzero(kind == KIND_RECEIVE)
        if len(ir):
            fm = _icol(list(map(self.get_recv, map(get, ir.tolist()))), (len(ir), 2))
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
            to_dup = _dup_flags([ds[k] for k in isd.tolist()], tos, len(to_ids))
        for col in (dice, frm, to_ids):
            if col.size and (col.min() < -_I31 or col.max() >= _I31):
                raise ValueError("beyond a 32-bit column")
        return {"dice": dice, "frm": frm, "msg": msg, "to_n": to_n, "to_ids": to_ids,
                "to_dup": to_dup}

    def add_columns(self, lines: np.ndarray, cols: dict[str, np.ndarray]) -> None:
        """Append columns decoded elsewhere (the byte-level reader)."""
        if not len(lines):
            return
        self.parts["line"].append(lines)
        self.parts["dup"].append(np.zeros(len(lines), bool))
        self.parts["to_dup"].append(np.zeros(len(cols["to_ids"]), bool))
        for k, v in cols.items():
            self.parts[k].append(v.astype(DTYPES[k], copy=False))

    def _cat(self, k: str, dtype: Any = None) -> np.ndarray:
        """One column, its chunks released as soon as they are joined (bounded memory)."""
        dtype = dtype or DTYPES[k]
        parts = self.parts[k]
        if not parts:
            return np.zeros(0, dtype)
        out = parts[0] if len(parts) == 1 else np.concatenate(parts)
        out = out.astype(dtype, copy=False)
        self.parts[k] = [out]
        return out

    def build(self, mid: int, path: Path, width: int | None) -> MachineLog:
        to_n = self._cat("to_n").astype(np.int64)
        vc = None
        if width:
            vc = self._cat("vclock") if self.parts["vclock"] else np.zeros((0, width), np.int32)
        line = self._cat("line", np.int64)
        to_ids = self._cat("to_ids")
        to_dup = self._cat("to_dup")
        cols = {k: self._cat(k) for k in _PER_EVENT}
        for k in ("hlc", "msg_hlc"):
            cols[k] = cols[k].reshape(-1, 2)
        if line.size > 1 and np.any(np.diff(line) < 0):
            # chunks decoded two ways come back in two runs of lines: restore file order
            order = np.argsort(line, kind="stable")
            starts = (np.cumsum(to_n) - to_n)[order]
            lens = to_n[order]
            pos = np.repeat(starts - (np.cumsum(lens) - lens), lens) + np.arange(lens.sum())
            to_ids, to_dup, to_n, line = to_ids[pos], to_dup[pos], lens, line[order]
            cols = {k: v[order] for k, v in cols.items()}
            vc = vc[order] if vc is not None else None
        to_ptr = np.zeros(len(to_n) + 1, np.int64)
        np.cumsum(to_n, out=to_ptr[1:])
        dup = cols.pop("dup")
        clocks = {k: _present(cols.pop(k)) for k in _CLOCKS}
        return MachineLog(
            id=mid, path=path, line=line, ts=cols["ts"], tick=cols["tick"],
            lclock=cols["lclock"], qlen=cols["qlen"], kind=cols["kind"], dice=cols["dice"],
            frm=cols["frm"], msg=cols["msg"], to_ptr=to_ptr, to_ids=to_ids, vclock=vc,
            dup=dup if dup.any() else None, to_dup=to_dup if to_dup.any() else None,
            pt=clocks["pt"], hlc=clocks["hlc"], msg_pt=clocks["msg_pt"],
            msg_hlc=clocks["msg_hlc"],
        )


# ---------------------------------------------------------------- reading one file


def _split_lines(buf: bytes) -> list[bytes]:
    """Lines with their newline; only \\n ends a line (JSON text never holds a raw CR)."""
    parts = buf.split(b"\n")
    lines = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _blocks(fh: IO[bytes], on_too_long: Any) -> Iterator[tuple[int, bytes, int]]:
    """(lines before it, bytes, lines in it) of whole lines, read CHUNK_BYTES at a time, in linear time.

    The last block may end without a newline (a torn line). A line that grows past
    MAX_LINE_BYTES is not kept: it is skipped to its end and reported through
    ``on_too_long(line number, bytes, torn)``, so one gigabyte without a newline costs
    one chunk of memory.
    """
    done = 0  # lines completed before ``pending``
    pending: list[bytes] = []
    pending_len = 0
    skipping = 0  # bytes of an over-long line skipped so far (0: not skipping)
    while True:
        block = fh.read(CHUNK_BYTES)
        if not block:
            break
        if skipping:
            nl = block.find(b"\n")
            if nl < 0:
                skipping += len(block)
                continue
            on_too_long(done + 1, skipping + nl, False)
            done += 1
            skipping = 0
            block = block[nl + 1:]
        cut = block.rfind(b"\n") + 1
        if cut == 0:
            pending.append(block)
            pending_len += len(block)
            if pending_len > MAX_LINE_BYTES:
                skipping, pending, pending_len = pending_len, [], 0
            continue
        buf = b"".join([*pending, block[:cut]]) if pending else block[:cut]
        pending = [block[cut:]] if cut < len(block) else []
        pending_len = len(block) - cut
        lines = int(np.count_nonzero(np.frombuffer(buf, np.uint8) == 10))  # numpy: 5x bytes.count
        yield done, buf, lines
        done += lines
    if skipping:
        on_too_long(done + 1, skipping, True)
    elif pending:
        yield done, b"".join(pending), 1


class _MachineReader:
    """Reads one machine's log into columns, collecting its other lines and issues."""

    def __init__(self, path: Path, mid: int, n: int | None, strict: bool, issues: list[Issue],
                 run_id: str | None, root: Path | None,
                 not_logged: frozenset[str] = frozenset()) -> None:
        self.path, self.mid, self.n, self.strict = path, mid, n, strict
        self.not_logged = not_logged
        self.root = root if root is not None else path.parent
        self.fname = path.name
        self.issues = issues
        self.issue_counts: Counter[str] = Counter()
        self.overflow: dict[str, Issue] = {}
        self.cols = _Columns(not_logged)
        self.width: int | None = n
        self.width_known = False
        self.run_id = run_id
        self.unusable: list[int] = []
        self.log = MachineLog(id=mid, path=path, line=np.zeros(0, np.int64), ts=np.zeros(0),
                              tick=np.zeros(0, np.int64), lclock=np.zeros(0, np.int64),
                              qlen=np.zeros(0, np.int32), kind=np.zeros(0, np.int8),
                              dice=np.zeros(0, np.int32), frm=np.zeros(0, np.int32),
                              msg=np.zeros(0, np.int64), to_ptr=np.zeros(1, np.int64),
                              to_ids=np.zeros(0, np.int32), vclock=None)

    # -- issues

    def issue(self, line: int, rule: str, text: str) -> None:
        """Record a problem; past MAX_ISSUES of one rule in this file only count it."""
        self.issue_counts[rule] += 1
        if self.issue_counts[rule] <= MAX_ISSUES:
            self.issues.append(Issue(self.fname, int(line), text, rule=rule, machine=self.mid))
            return
        extra = self.overflow.get(rule)
        if extra is None:
            extra = Issue(self.fname, int(line), "... more lines like this (not listed)",
                          rule=rule, count=0, machine=self.mid)
            self.overflow[rule] = extra
            self.issues.append(extra)
        extra.count += 1
        extra.text = f"... and {extra.count} more lines with this problem (not listed)"

    def too_long(self, line: int, size: int, torn: bool) -> None:
        self.log.lines = max(self.log.lines, line)
        self.unusable.append(line)
        self.issue(line, "line-too-long", f"line of {size} bytes, longer than the "
                                          f"{MAX_LINE_BYTES} a log line may have: not read"
                   + (" (and torn: no newline at the end of the file)" if torn else ""))

    # -- the file

    def read(self) -> MachineLog:
        gc_was = gc.isenabled()
        gc.disable()  # millions of short-lived dicts: the cyclic GC only costs time here
        try:
            with open_regular(self.path, self.root) as fh:
                for before, buf, lines in _blocks(fh, self.too_long):
                    self.chunk(before, buf, lines)
        finally:
            if gc_was:
                gc.enable()
        built = self.cols.build(self.mid, self.path, self.width)
        for name in ("line", "ts", "tick", "lclock", "qlen", "kind", "dice", "frm", "msg",
                     "to_ptr", "to_ids", "vclock", "dup", "to_dup", *_CLOCKS):
            setattr(self.log, name, getattr(built, name))
        self.log.run_id = self.run_id
        self.log.unusable = np.array(sorted(self.unusable), np.int64)
        return self.log

    def chunk(self, before: int, buf: bytes, lines: int) -> None:
        """Read ``lines`` lines (the last one perhaps without its newline)."""
        if not self.width_known and USE_FASTPARSE:
            # the first lines the careful way, until a tick line shows the log's shape
            cut = 0
            for _ in range(8):
                cut = buf.find(b"\n", cut) + 1
                if cut == 0:
                    break
            if 0 < cut < len(buf):
                self.chunk(before, buf[:cut], 8)
                buf, before, lines = buf[cut:], before + 8, lines - 8
        self.log.lines = before + lines
        token = self.run_token()
        if self.width_known and USE_FASTPARSE and (token is not None or not self.strict):
            res = fastparse.parse_chunk(buf, self.width, self.n, strict=self.strict,
                                        machine=self.mid, run_id=token)
            if res is not None:
                self.cols.add_columns(res.taken + before + 1, res.cols)
                if len(res.rest):
                    self.careful([res.line(buf, k) for k in res.rest.tolist()],
                                 (res.rest + before + 1).tolist())
                return
        raw = _split_lines(buf)
        self.careful(raw, list(range(before + 1, before + 1 + len(raw))))

    def run_token(self) -> bytes | None:
        """The run id as JSON text, what the byte reader compares lines with."""
        if self.run_id is None or len(self.run_id) > 200:
            return None
        return orjson.dumps(self.run_id)

    # -- the careful way: orjson and validation

    def careful(self, raw: list[bytes], numbers: list[int]) -> None:
        objs, nums = self.parse(raw, numbers)
        self.learn(objs)
        if not self.strict and self.take_fast(objs, nums):
            return
        self.take_validated(objs, nums)

    def parse(self, raw: list[bytes], numbers: list[int]) -> tuple[list[Any], list[int]]:
        """Parse lines: as one JSON array when they all are fine, else one by one."""
        if all(len(b) <= MAX_LINE_BYTES for b in raw):
            try:
                objs = orjson.loads(b"[" + b",".join(raw) + b"]")
                if isinstance(objs, list) and len(objs) == len(raw):
                    return objs, numbers
            except orjson.JSONDecodeError:
                pass
        objs, nums = [], []
        last = len(raw) - 1
        for k, b in enumerate(raw):
            if len(b) > MAX_LINE_BYTES:
                self.too_long(numbers[k], len(b.rstrip(b"\n")), not b.endswith(b"\n"))
                continue
            if not b.strip():
                self.issue(numbers[k], "line-empty", "empty line")
                continue
            try:
                obj = orjson.loads(b)
            except orjson.JSONDecodeError as exc:
                torn = k == last and not b.endswith(b"\n")
                what = ("torn line (no newline at the end of the file)" if torn
                        else f"not valid JSON ({str(exc).split(':')[0]})")
                snippet = b[:60].decode("utf-8", "replace").rstrip("\n")
                self.unusable.append(numbers[k])
                self.issue(numbers[k], "line-torn" if torn else "line-json", f"{what}: {snippet!r}")
                continue
            objs.append(obj)
            nums.append(numbers[k])
        return objs, nums

    def learn(self, objs: list[Any]) -> None:
        """From the first lines: whether this log has vector clocks, and (without run.json)
        which run it belongs to."""
        if self.run_id is None:
            for o in objs:
                if isinstance(o, dict) and isinstance(o.get("run_id"), str):
                    self.run_id = o["run_id"]
                    break
        if self.width_known:
            return
        for o in objs:
            if event_name(o) in KINDS:
                self.width = self.n if o.get("vclock") else None
                self.width_known = True
                return

    def take_fast(self, objs: list[Any], nums: list[int]) -> bool:
        """Columns straight from the dicts, if every tick line has the right types."""
        try:
            evs = list(map(_GET_EVENT, objs))
        except (KeyError, TypeError):
            evs = list(map(event_name, objs))
        ev_arr = np.array([e if type(e) is str else "" for e in evs], dtype=object)
        mask = (ev_arr == "send") | (ev_arr == "receive") | (ev_arr == "internal")
        ticks = objs if mask.all() else [objs[k] for k in np.flatnonzero(mask).tolist()]
        rid = self.run_id
        if rid is not None and any(d.get("run_id", rid) != rid for d in ticks):
            return False
        try:
            self.cols.add(np.array(nums, np.int64)[mask], ticks, self.width)
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError):
            return False  # some line has a wrong type: redo this chunk line by line
        for k in np.flatnonzero(~mask).tolist():
            self.other_or_skip(objs[k], nums[k])
        return True

    def take_validated(self, objs: list[Any], nums: list[int]) -> None:
        ticks: list[dict[str, Any]] = []
        tick_nums: list[int] = []
        n = self.width if self.width else self.n
        for o, num in zip(objs, nums, strict=True):
            probs, usable = line_problems(o, self.mid, n, self.run_id, self.not_logged)
            if self.strict:
                for rule, text in probs:
                    self.issue(num, rule, text)
            if usable:
                ticks.append(o)
                tick_nums.append(num)
            elif event_name(o) in KINDS:
                self.log.skipped += 1
                if probs and probs[0][0] != "line-other-run":
                    self.unusable.append(num)
            elif not probs or probs[0][0] not in ("line-object", "line-other-run"):
                self.other_or_skip(o, num)
            else:
                self.log.skipped += 1
                if probs[0][0] == "line-object":
                    self.unusable.append(num)
        if ticks and self.width:
            for o, num in zip(ticks, tick_nums, strict=True):
                if o.get("vclock") is None:
                    self.issue(num, "field-vclock-missing", "vclock missing on this line only")
        self.cols.add(np.array(tick_nums, dtype=np.int64), ticks, self.width)

    def not_kept(self, name: str, num: int) -> None:
        """A kept kind's line past MAX_KEPT: not read, and said (one warning per kind and
        file, counting them), so that no rule passes over lines it never saw in silence."""
        extra = self.overflow.get("kept:" + name)
        if extra is None:
            extra = Issue(self.fname, int(num), "", "warning", rule="lines-not-kept", count=0,
                          machine=self.mid)
            self.overflow["kept:" + name] = extra
            self.issues.append(extra)
        extra.count += 1
        extra.text = (f"{extra.count} {name} line(s) from this one on not read: a log's first "
                      f"{MAX_KEPT:,} {name} lines are all that is kept")

    def other_or_skip(self, o: Any, num: int) -> None:
        if not isinstance(o, dict) or not isinstance(o.get("event"), str):
            self.log.skipped += 1
        elif self.run_id is not None and o.get("run_id", self.run_id) != self.run_id:
            self.log.skipped += 1  # another run's line (check says so)
        else:
            self.other(o, num)

    def other(self, o: dict[str, Any], num: int) -> None:
        """A line that is not a tick event: start, stop, connected, faults, errors, ..."""
        log = self.log
        name = o["event"]
        log.other_events[name] += 1
        if name == "start" and log.start is None:
            log.start, log.start_line = o, num
        elif name == "stop" and log.stop is None:
            log.stop, log.stop_line = o, num
        if name == "connected" and name not in log.firsts:
            log.firsts[name] = o
        if name in KEPT_EVENTS:
            kept = log.kept.setdefault(name, [])
            if len(kept) < MAX_KEPT:
                kept.append((num, o))
            else:
                self.not_kept(name, num)
        elif o.get("level") in ("warning", "error"):
            if len(log.notable) < MAX_NOTABLE:
                log.notable.append((num, o))
        elif len(log.unknown) < MAX_NOTABLE:
            log.unknown.append((num, o))


def load_machine(path: Path, mid: int, n: int | None, strict: bool = False,
                 issues: list[Issue] | None = None, run_id: str | None = None,
                 root: Path | None = None, not_logged: frozenset[str] = frozenset()
                 ) -> MachineLog:
    """Read one machine's log. ``strict`` validates every line (for ``check``); lines of a
    run other than ``run_id`` are left out; fields in ``not_logged`` (run.json's) may be
    missing. Raises ``UnreadableFile`` (an ``Exception``) for a file that must not be read:
    not a regular file, a link out of ``root``."""
    issues = issues if issues is not None else []
    return _MachineReader(path, mid, n, strict, issues, run_id, root, not_logged).read()


# ---------------------------------------------------------------- the run folder


def machine_files(run_dir: Path) -> dict[int, Path]:
    """``machine-<id>.jsonl`` files by id (see ``folder.machine_files`` for the problems)."""
    return _machine_files(run_dir)


def read_meta(run_dir: Path, issues: list[Issue]) -> dict[str, Any]:
    """run.json as a dict, or {} with an issue: a run without it can still be analysed."""
    problems: list[Problem] = []
    meta = read_run_json(run_dir, problems)
    issues += [_from_problem(p) for p in problems]
    return meta


def _from_problem(p: Problem) -> Issue:
    return Issue(p.file, 0, p.text, p.severity, rule=p.rule)


def _peek_width(path: Path, root: Path) -> int | None:
    """The length of the vector clock on the first tick line of a log (None: no vector
    clock, or no tick line near the start), read from its first megabyte only."""
    try:
        with open_regular(path, root) as fh:
            head = fh.read(MAX_LINE_BYTES)
    except UnreadableFile:
        return None
    for raw in head.split(b"\n")[:64]:
        try:
            o = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if event_name(o) in KINDS:
            vc = o.get("vclock")
            return len(vc) if isinstance(vc, list) and 1 <= len(vc) <= MAX_MACHINES else None
    return None


def _machine_count(facts: RunFacts, files: dict[int, Path], run_dir: Path,
                   issues: list[Issue]) -> int:
    """N, from the evidence of the logs before the claims of run.json.

    The vector clocks say how many machines the run had; when every log that has them
    agrees, that is N, and a run.json that says otherwise is a finding (judging the logs by
    a wrong N would turn every line into a finding). Without vector clocks, N is the most
    any source names (each already bounded by MAX_MACHINES), so missing logs show.
    """
    claimed = max([facts.machines or 0, len(facts.fixed_rates or ()), *facts.ids, 0])
    widths = {w for w in (_peek_width(p, run_dir) for p in files.values()) if w}
    # A directory, FIFO or device named like a log is no evidence of a machine: it is
    # reported as unreadable, and must not turn every line of the real logs into findings.
    top_file = max((mid for mid, p in files.items() if _readable(p, run_dir)), default=0)
    if len(widths) != 1:
        return max(claimed, top_file)
    n = max(widths.pop(), top_file)
    said = facts.machines if facts.machines is not None else (len(facts.ids) or None)
    if said is not None and said != n:
        what = "settings.machines" if facts.machines is not None else "machines[]"
        issues.append(Issue(RUN_JSON, 0, f"{what} says {said} machines, but the logs' vector "
                                           f"clocks have {n} entries: judged as a run of {n}",
                            rule="meta-machines"))
    beyond = [i for i in facts.ids if i > n]
    if beyond:
        issues.append(Issue(RUN_JSON, 0, f"machines[] names machine {short(beyond)}, but the "
                                           f"run has {n} machines", rule="meta-machines"))
    return n


def _readable(path: Path, run_dir: Path) -> bool:
    """Whether the loader will read ``path`` (see ``open_regular``), without opening it."""
    try:
        return path.is_file() and (not path.is_symlink() or inside(path, run_dir))
    except OSError:  # a symlink loop, a name too long
        return False


def _missing_logs(facts: RunFacts, files: dict[int, Path], n: int, issues: list[Issue],
                  ticked: bool) -> None:
    named = {i for i in facts.ids if i <= n} | set(range(1, min(facts.machines or 0, n) + 1))
    for mid in sorted(named - set(files)):
        entry = facts.entries.get(mid, {})
        if (facts.status in ("interrupted", "failed") and "pid" in entry
                and entry["pid"] is None and not ticked):
            # A stop (or a failure) while the machines were being started: run.json says
            # this one never started, so there is no log to miss. No machine can have
            # ticked then (ticks start once every machine is connected).
            issues.append(Issue(f"machine-{mid}.jsonl", 0,
                                f"no log: the run was {facts.status} before this machine "
                                "started (run.json has no pid for it)", "warning",
                                rule="log-missing", machine=mid))
            continue
        issues.append(Issue(f"machine-{mid}.jsonl", 0,
                            "missing: run.json names this machine but its log is not there",
                            rule="log-missing", machine=mid))


def _rates(facts: RunFacts, machines: dict[int, MachineLog]) -> dict[int, int]:
    rates = dict(facts.rates)
    for mid, log in machines.items():
        r = (log.start or {}).get("rate")
        if _is_int(r) and 1 <= r <= MAX_RATE:
            rates.setdefault(mid, int(r))
    return rates


def _t0(machines: dict[int, MachineLog]) -> float:
    """The shared start instant if the runtime logged it, else the earliest first tick."""
    declared = [m.firsts.get("connected", {}).get("t0_epoch") for m in machines.values()]
    declared_t0 = [float(x) for x in declared if isinstance(x, (int, float))
                   and not isinstance(x, bool) and 0 < x < 1e11]
    firsts = [float(m.ts[0]) for m in machines.values() if m.events and np.isfinite(m.ts[0])]
    t0 = min(firsts) if firsts else 0.0
    if declared_t0 and (not firsts or abs(min(declared_t0) - t0) < 60):
        t0 = min(declared_t0)
    return t0


#: Logs smaller than this together are read one after the other (threads would cost more).
PARALLEL_BYTES = 32 << 20


def _map_machines(one: Any, files: dict[int, Path]) -> list[Any]:
    """``one`` over every machine's log; on a large run two at a time: the parser spends most
    of its time in numpy, which lets go of the GIL, so a second core reads a second log
    (about 20 % less wall time on the 1M-event benchmark)."""
    items = list(files.items())
    workers = min(2, len(items), len(os.sched_getaffinity(0)))
    sizes = [_size(p) for _m, p in items]
    if workers < 2 or sum(sizes) < PARALLEL_BYTES:
        return [one(i) for i in items]
    gc_was = gc.isenabled()
    gc.disable()  # for both readers at once (each one leaves it as it found it)
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="lclock-load") as pool:
            # the largest logs first, so that the two readers end together
            order = sorted(range(len(items)), key=lambda k: -sizes[k])
            futures = {k: pool.submit(one, items[k]) for k in order}
            return [futures[k].result() for k in range(len(items))]
    finally:
        if gc_was:
            gc.enable()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def load_run(run_dir: Path | str, strict: bool = False) -> Run:
    """Load a run folder; raises ``RunFolderError`` only when there is nothing to read."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise RunFolderError(f"{run_dir}: no such folder")
    if not run_dir.is_dir():
        raise RunFolderError(f"{run_dir}: not a folder")
    problems: list[Problem] = []
    files = _machine_files(run_dir, problems)
    if not files and not has_run_json(run_dir):
        raise RunFolderError(f"{run_dir}: not a run folder (no run.json, no machine-*.jsonl)")
    meta = read_run_json(run_dir, problems)
    facts = run_facts(meta, problems)
    issues = [_from_problem(p) for p in problems]
    n = _machine_count(facts, files, run_dir, issues)
    machines: dict[int, MachineLog] = {}

    def one(item: tuple[int, Path]) -> tuple[MachineLog | None, list[Issue]]:
        mid, path = item
        own: list[Issue] = []  # each machine its own list: the same order however run
        try:
            return load_machine(path, mid, n or None, strict=strict, issues=own,
                                run_id=facts.run_id, root=run_dir,
                                not_logged=facts.not_logged), own
        except UnreadableFile as exc:
            own.append(Issue(path.name, 0, str(exc), rule="log-unreadable", machine=mid))
            return None, own

    for (mid, _path), (log, own) in zip(files.items(), _map_machines(one, files), strict=True):
        issues.extend(own)
        if log is not None:
            machines[mid] = log
    _missing_logs(facts, files, n, issues, ticked=any(m.events for m in machines.values()))
    if not machines and not meta:
        why = "; ".join(str(i) for i in issues[:3]) + ("; ..." if len(issues) > 3 else "")
        raise RunFolderError(f"{run_dir}: not a run folder: nothing readable ({why})")
    return Run(path=run_dir, meta=meta, machines=machines, issues=issues, n=n,
               rates=_rates(facts, machines), dice_sides=facts.dice_sides, t0=_t0(machines),
               facts=facts)


assert MAX_MACHINES < 2**31  # ids fit the 32-bit columns
