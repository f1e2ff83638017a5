"""From matched text-log events to the lines and run.json of a schema-v1 run folder.

What a text log does not say is either derived, and then said so, or left out, and then
declared: it is never made up. Derived: tick numbers (each machine's events counted in log
order, when the log has none) and, when a receive does not say which clock its message
carried, that clock, from the k-th send on the channel for the k-th receive (channels are
FIFO in the model; run.json says this was done, because a wrong clock *in* a message is then
invisible). Never derived: a Lamport or vector clock, the queue length, the dice, start and
stop lines. What is missing is listed in run.json's ``not_logged``, which the loader and
``lclock check`` honour: the rules about those fields are skipped, once, with one warning.
"""

from __future__ import annotations

import calendar
import functools
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson

from lclock.analysis.folder import MAX_MACHINES
from lclock.ingest.textlog import SNIPPET, Match, Problem, Spec, kind_of

_ISO = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d)(?::(\d\d)(?:[.,](\d{1,9}))?)?\s*"
                  r"(Z|z|UTC|GMT|[+-]\d\d:?\d\d)?$")
_CLOCK = re.compile(r"^(\d\d?):(\d\d):(\d\d)(?:[.,](\d{1,9}))?$")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
_DATE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)$")
# What ``lclock check`` reads (``lclock.analysis.load``): what import writes stays inside it.
LIMITS = {"clock": 2**63, "msg_clock": 2**63, "tick": 2**63, "queue": 2**31, "dice": 2**31,
          "vclock": 2**31}
# Times RFC 3339 can write (four-digit years), in epoch microseconds.
MIN_US = calendar.timegm((1, 1, 1, 0, 0, 0)) * 1_000_000
MAX_US = calendar.timegm((9999, 12, 31, 23, 59, 59)) * 1_000_000 + 999_999


class BuildError(Exception):
    """Nothing usable came out of the logs (the CLI prints it, exit 2)."""


@dataclass(slots=True)
class Parsed:
    """One event with its values interpreted (machine still a name)."""

    file: str
    line: int
    machine: str
    kind: str
    clock: int
    peer: str | None
    us: int
    vclock: str | None
    msg_clock: int | None
    tick: int | None
    queue: int | None
    dice: int | None


@dataclass
class Imported:
    """A run folder's content: the tick lines of each machine (JSON, one per line) and
    run.json, plus what to report."""

    run_id: str
    lines: dict[int, bytearray]
    meta: dict[str, Any]
    unusable: list[Problem] = field(default_factory=list)
    skipped: int = 0
    notes: list[str] = field(default_factory=list)

    counts: dict[int, int] = field(default_factory=dict)

    @property
    def events(self) -> int:
        return sum(self.counts.values())

    def machine_bytes(self, mid: int) -> bytes:
        return bytes(self.lines[mid])


# ---------------------------------------------------------------- values


def parse_date(text: str) -> int:
    """``YYYY-MM-DD`` -> epoch microseconds of its midnight UTC; ValueError otherwise."""
    m = _DATE.match(text.strip())
    y, mo, d = (int(x) for x in m.groups()) if m else (0, 0, 0)
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        raise ValueError(f"{text!r} is not a date YYYY-MM-DD")
    return calendar.timegm((y, mo, d, 0, 0, 0)) * 1_000_000


def _frac_us(frac: str | None) -> int:
    return int((frac or "0").ljust(6, "0")[:6])


def parse_time(text: str, date_us: int | None) -> int:
    """Epoch microseconds of a logged time; ValueError with the reason.

    ISO 8601 date and time (``T`` or a space, ``.`` or ``,`` before the fraction, ``Z``, an
    offset, or none: UTC); a time of day (needs ``date_us``); a number: seconds, or
    milliseconds/microseconds/nanoseconds since the epoch told apart by size, and a small
    number (below 1e8) is seconds since the log's start, counted from ``date_us`` (or
    1970-01-01).
    """
    s = text.strip()
    us = _parse_time(s, date_us)
    if not MIN_US <= us <= MAX_US:
        raise ValueError(f"time {s[:40]!r} is outside the years 1 to 9999 an RFC 3339 time can "
                         "write")
    return us


def _parse_time(s: str, date_us: int | None) -> int:
    m = _ISO.match(s)
    if m:
        y, mo, d, hh, mm, ss, frac, tz = m.groups()
        try:
            sec = _timegm(int(y), int(mo), int(d), int(hh), int(mm), int(ss or 0))
        except (ValueError, OverflowError):
            raise ValueError(f"time {s!r} is not a valid date and time") from None
        if tz and tz[0] in "+-":
            off = int(tz[1:3]) * 3600 + int(tz[-2:]) * 60
            sec -= off if tz[0] == "+" else -off
        return sec * 1_000_000 + _frac_us(frac)
    m = _CLOCK.match(s)
    if m:
        if date_us is None:
            raise ValueError(f"time {s!r} has no date (give --date YYYY-MM-DD)")
        hh, mm, ss, frac = m.groups()
        if int(hh) > 23 or int(mm) > 59 or int(ss) > 60:
            raise ValueError(f"time {s!r} is not a valid time of day")
        return date_us + (int(hh) * 3600 + int(mm) * 60 + int(ss)) * 1_000_000 + _frac_us(frac)
    if _NUMBER.match(s):
        whole, _, frac = s.partition(".")
        if len(whole) > 30:  # beyond any time (and int() of thousands of digits is refused)
            raise ValueError(f"time {s[:40]!r} is too large a number for a time")
        w = int(whole)
        if w < 10**8:  # seconds since the log's start
            return (date_us or 0) + w * 1_000_000 + _frac_us(frac)
        if w < 10**11:  # seconds since the epoch
            return w * 1_000_000 + _frac_us(frac)
        if w < 10**14:  # milliseconds
            return w * 1000 + int((frac or "0").ljust(3, "0")[:3])
        if w < 10**17:  # microseconds
            return w
        return w // 1000  # nanoseconds
    raise ValueError(f"time {s!r} is not a date and time, a time of day or a number")


def format_us(us: int) -> str:
    """RFC 3339 UTC with microseconds, from integer microseconds (no float rounding)."""
    sec, frac = divmod(us, 1_000_000)
    return f"{_second(sec)}.{frac:06d}Z"


@functools.lru_cache(maxsize=4096)
def _second(sec: int) -> str:
    t = time.gmtime(sec)  # (strftime's %Y does not pad years before 1000 to four digits)
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:"
            f"{t.tm_sec:02d}")


@functools.lru_cache(maxsize=4096)
def _timegm(y: int, mo: int, d: int, hh: int, mm: int, ss: int) -> int:
    if not (1 <= mo <= 12 and 1 <= d <= 31 and hh < 24 and mm < 60 and ss <= 60):
        raise ValueError
    return calendar.timegm((y, mo, d, hh, mm, ss))


def _int(v: str | None, what: str) -> int | None:
    if v is None or not v.strip():
        return None
    t = v.strip()
    if not (t.isascii() and t.isdigit()):
        hint = " (a vector clock? name that group vclock)" if what == "clock" and t[:1] in "{[" else ""
        raise ValueError(f"{what} {t[:40]!r} is not a whole number{hint}")
    return _bounded(t, what)


def _bounded(digits: str, what: str) -> int:
    """A whole number below what ``lclock check`` reads for ``what``; ValueError beyond."""
    limit = LIMITS[what]
    if len(digits.lstrip("0")) > len(str(limit)) or int(digits) >= limit:
        raise ValueError(f"{what} {digits[:40]!r} is too large: lclock reads {what} values "
                         f"up to {limit - 1}")
    return int(digits)


def interpret(spec: Spec, m: Match, machine_from_file: str | None, date_us: int | None
              ) -> Parsed | str | None:
    """The event, or the reason it cannot be used, or None for a word mapped to skip."""
    v = m.values
    word = (v.get("event") or "").strip()
    kind = kind_of(spec, word)
    if kind is None:
        w = word.lower() or "(empty)"
        return (f"unknown event word {word!r} (map it with --event '{w}=send', receive, internal "
                "or skip)")
    if kind == "skip":
        return None
    machine = (v.get("machine") or "").strip() if spec.has("machine") else machine_from_file
    if not machine:
        return "no machine"
    try:
        clock = _int(v.get("clock"), "clock")
        if clock is None:
            return "no clock"
        us = parse_time(v.get("time") or "", date_us)
        msg_clock = _int(v.get("msg_clock"), "msg_clock")
        tick = _int(v.get("tick"), "tick")
        queue = _int(v.get("queue"), "queue")
        dice = _int(v.get("dice"), "dice")
    except ValueError as exc:
        return str(exc)
    peer = (v.get("peer") or "").strip() or None
    if kind in ("send", "receive") and peer is None:
        return f"a {kind} without its peer ({'recipients' if kind == 'send' else 'sender'})"
    return Parsed(m.file, m.line, machine, kind, clock, peer, us, (v.get("vclock") or "").strip() or None,
                  msg_clock, tick, queue, dice if kind != "receive" else None)


# ---------------------------------------------------------------- machine names


class Names:
    """Machine names to ids 1..N: numbers as they are (0-based numbering shifted by one),
    names ending in a number by that number (machine1, node-2), other names in sorted order."""

    def __init__(self, names: set[str]) -> None:
        suffixes = {x: _suffix(x) for x in names}
        self.numeric = bool(names) and all(suffixes.values())
        if self.numeric:
            nums = {x: _number(d) for x, d in suffixes.items() if d}
            if len(set(nums.values())) != len(nums):
                self.numeric = False
        if self.numeric:
            self.shift = 1 if min(nums.values()) == 0 else 0
            self.ids = {x: k + self.shift for x, k in nums.items()}
        else:
            self.shift = 0
            self.ids = {x: k for k, x in enumerate(sorted(names, key=_natural), 1)}

    def id(self, token: str) -> int | None:
        t = token.strip()
        if t in self.ids:
            return self.ids[t]
        if self.numeric:
            d = _suffix(t)
            return _number(d) + self.shift if d else None
        return None

    def peers(self, text: str) -> list[int] | None:
        """The machines a peer text names ("2", "2,3", "machine2 and machine3", "[2, 3]")."""
        if self.numeric:
            toks = re.findall(r"\d+", text, re.ASCII)
            return [_number(t) + self.shift for t in toks] or None
        toks = [t for t in re.split(r"[\s,;|+\[\]]+|\band\b", text) if t.strip()]
        out = [self.id(t) for t in toks]
        return None if not out or any(x is None for x in out) else [x for x in out if x is not None]

    def mapping(self) -> dict[str, int]:
        """Name -> id of the machines a run can have (the others' lines were not imported)."""
        return dict(sorted(((k, v) for k, v in self.ids.items() if 1 <= v <= MAX_MACHINES),
                           key=lambda kv: kv[1]))


def _suffix(name: str) -> str | None:
    r"""The ASCII digits that end a name (``node-12`` -> "12"), or None. (Not the expression
    ``^(.*?)(\d+)$``: on a long name of digits ending in a letter it tries every split.)"""
    if "\n" in name:
        return None
    digits = name[len(name.rstrip("0123456789")):]
    return digits or None


def _number(digits: str) -> int:
    """A machine number; one of thousands of digits (which int() refuses) as the distinct
    large number it is, beyond any machine id."""
    d = digits.lstrip("0") or "0"
    if len(d) <= 18:
        return int(d)
    return 10**18 + len(d)  # out of range however it compares: refused as a machine id


def _natural(s: str) -> tuple[list[Any], str]:
    """Sort key: numbers inside names compared as numbers (node2 before node10); the name
    itself breaks ties (a01, a1), so the order never depends on a set's order."""
    parts = re.split(r"(\d+)", s)
    return [_number(t) if k % 2 else t for k, t in enumerate(parts)], s


def parse_vclock(text: str, names: Names, n: int) -> list[int]:
    """A logged vector clock: a JSON object {name: count} (ShiViz) or a list of counts."""
    t = text.strip()
    if t.startswith("{"):
        try:
            obj = orjson.loads(t)
        except orjson.JSONDecodeError:
            raise ValueError(f"vclock {t[:40]!r} is not a JSON object") from None
        if not isinstance(obj, dict):
            raise ValueError(f"vclock {t[:40]!r} is not a JSON object")
        out = [0] * n
        for k, val in obj.items():
            mid = names.id(str(k))
            if mid is None or not 1 <= mid <= n:
                raise ValueError(f"vclock names {k!r}, which is not a machine of this log")
            if not isinstance(val, int) or isinstance(val, bool) or not 0 <= val < LIMITS["vclock"]:
                raise ValueError(f"vclock entry {str(k)[:20]!r}: {str(val)[:30]} is not a count "
                                 f"from 0 to {LIMITS['vclock'] - 1}")
            out[mid - 1] = val
        return out
    toks = [x for x in re.split(r"[\s,;\[\]()]+", t) if x]
    if not toks or not all(x.isascii() and x.isdigit() for x in toks):
        raise ValueError(f"vclock {t[:40]!r} is not a list of whole numbers")
    vals = [_bounded(x, "vclock") for x in toks]
    if len(vals) != n:
        raise ValueError(f"vclock {t[:40]!r} has {len(vals)} entries for {n} machines")
    return vals


# ---------------------------------------------------------------- the run folder


class Builder:
    """Takes matches one at a time (a large log never exists as dicts) and builds the run."""

    def __init__(self, spec: Spec, run_id: str, date_us: int | None) -> None:
        self.spec = spec
        self.date_us = date_us
        self.imp = Imported(run_id, {}, {})
        self.parsed: list[Parsed] = []
        self.from_1970 = False  # times counted from the start, dated 1970 for want of --date

    def add(self, m: Match, machine_from_file: str | None) -> None:
        p = interpret(self.spec, m, machine_from_file, self.date_us)
        if p is None:
            self.imp.skipped += 1
        elif isinstance(p, str):
            self.imp.unusable.append(Problem(m.file, m.line, m.text[:SNIPPET], p))
        else:
            self.parsed.append(p)
            if self.date_us is None and not self.from_1970 and p.us < 10**8 * 1_000_000:
                self.from_1970 = bool(_NUMBER.match((m.values.get("time") or "").strip()))

    def finish(self, sources: list[dict[str, Any]]) -> Imported:
        """Resolve machine names and peers, derive what can be derived, and write the lines."""
        imp = self.imp
        names = Names({p.machine for p in self.parsed})
        peers: list[list[int] | None] = []
        for p in self.parsed:
            ids = self._peers(p, names)
            peers.append(ids)
        keep = [k for k, ids in enumerate(peers) if ids is not None]
        if not keep:
            raise BuildError("no usable event in the logs: nothing imported")
        n = max([*(names.ids[self.parsed[k].machine] for k in keep),
                 *(x for ids in peers if ids for x in ids)])
        w = _Writer(imp, names, n)
        w.write([self.parsed[k] for k in keep], [peers[k] or [] for k in keep])
        if not imp.events:
            raise BuildError("no usable event in the logs: nothing imported")
        if self.from_1970:
            imp.notes.append("the times count seconds from the start: dated from 1970-01-01 "
                             "(give --date YYYY-MM-DD for the real day)")
        _meta(imp, self.spec, names, n, self.date_us, sources, w)
        self.parsed = []
        return imp

    def _peers(self, p: Parsed, names: Names) -> list[int] | None:
        """The peers of an event ([] for an internal one), or None with a problem recorded."""
        me = names.ids[p.machine]
        if not 1 <= me <= MAX_MACHINES:
            shown = me if me < 10**18 else "(too large)"
            self.imp.unusable.append(Problem(p.file, p.line, "", f"machine {p.machine[:40]!r} is "
                                             f"machine id {shown}: lclock reads machine ids 1 to "
                                             f"{MAX_MACHINES}"))
            return None
        if p.kind == "internal":
            return []
        ids = names.peers(p.peer or "")
        why = None
        if ids is not None and any(x > MAX_MACHINES for x in ids):
            why = (f"peer {(p.peer or '')[:40]!r} names machine {max(ids) if max(ids) < 10**18 else '(too large)'}: "
                   f"lclock reads machine ids 1 to {MAX_MACHINES}")
        elif ids is None or any(x < 1 for x in ids):
            why = f"peer {p.peer!r} names no machine of this log"
        elif names.ids[p.machine] in ids:
            why = f"machine {p.machine} names itself as its peer ({p.peer!r})"
        elif p.kind == "receive" and len(ids) != 1:
            why = f"a receive names {len(ids)} senders ({p.peer!r})"
        if why:
            self.imp.unusable.append(Problem(p.file, p.line, "", why))
            return None
        return ids


class _Writer:
    """Each machine's events in log order as schema-v1 lines."""

    def __init__(self, imp: Imported, names: Names, n: int) -> None:
        self.imp, self.names, self.n = imp, names, n
        self.derived_msg = 0
        self.first_us: int | None = None
        self.last_us: int | None = None
        self.has_queue = self.has_dice = True
        self.last: dict[int, tuple[int, int]] = {}

    def write(self, events: list[Parsed], peers: list[list[int]]) -> None:
        imp, names = self.imp, self.names
        by_machine: dict[int, list[int]] = defaultdict(list)
        for k, p in enumerate(events):
            by_machine[names.ids[p.machine]].append(k)
        # sends per channel in log order, for receives that do not say what their message carried
        channel: dict[tuple[int, int], list[int]] = defaultdict(list)
        for mid, ks in by_machine.items():
            for k in ks:
                if events[k].kind == "send":
                    for j in peers[k]:
                        channel[(mid, j)].append(events[k].clock)
        taken: dict[tuple[int, int], int] = defaultdict(int)
        derived_tick = any(p.tick is None for p in events)
        self.vector = all(p.vclock is not None for p in events)
        for mid in sorted(by_machine):
            out = bytearray()  # (orjson's small results carry spare capacity: append, not keep)
            tick = count = 0
            for k in by_machine[mid]:
                p = events[k]
                tick = p.tick if p.tick is not None else tick + 1
                d = self._line(p, mid, tick, peers[k], channel, taken)
                if d is not None:
                    out += orjson.dumps(d, option=orjson.OPT_APPEND_NEWLINE)
                    count += 1
                    self.last[mid] = (tick, p.clock)
            imp.lines[mid] = out
            imp.counts[mid] = count
        if derived_tick:
            imp.notes.append("tick numbers counted 1, 2, 3, ... per machine in log order (the log "
                             "has none)")
        if self.derived_msg:
            imp.notes.append(f"the clock carried by {self.derived_msg} message(s) was taken from the "
                             "k-th send on its channel for the k-th receive (the log does not say "
                             "it): a wrong clock in a message cannot be seen; log it (group "
                             "msg_clock) to have it checked")
        self.derived = [x for x, on in (("tick", derived_tick), ("msg_lclock", self.derived_msg))
                        if on]

    def _line(self, p: Parsed, mid: int, tick: int, peers: list[int],
              channel: dict[tuple[int, int], list[int]], taken: dict[tuple[int, int], int]
              ) -> dict[str, Any] | None:
        d: dict[str, Any] = {"ts": format_us(p.us), "event": p.kind, "level": "info",
                             "run_id": self.imp.run_id, "machine": mid, "tick": tick,
                             "lclock": p.clock}
        if p.queue is not None:
            d["queue_len"] = p.queue
        else:
            self.has_queue = False
        if self.vector and p.vclock is not None:
            try:
                d["vclock"] = parse_vclock(p.vclock, self.names, self.n)
            except ValueError as exc:
                self.imp.unusable.append(Problem(p.file, p.line, "", str(exc)))
                return None
        if p.kind != "receive":
            if p.dice is not None:
                d["dice"] = p.dice
            else:
                self.has_dice = False
        if p.kind == "send":
            d["to"] = peers
        elif p.kind == "receive":
            s = peers[0]
            msg = p.msg_clock
            if msg is None:
                sent = channel.get((s, mid), [])
                k = taken[(s, mid)]
                if k >= len(sent):
                    self.imp.unusable.append(Problem(
                        p.file, p.line, "", f"receive number {k + 1} from machine {s}, but machine "
                        f"{s} logged only {len(sent)} send(s) to {mid} (and the log does not say "
                        "which clock the message carried)"))
                    return None
                msg = sent[k]
                self.derived_msg += 1
            taken[(s, mid)] += 1
            d["from"] = s
            d["msg_lclock"] = msg
        d["src"] = f"{p.file}:{p.line}"
        self.first_us = p.us if self.first_us is None else min(self.first_us, p.us)
        self.last_us = p.us if self.last_us is None else max(self.last_us, p.us)
        return d


def _meta(imp: Imported, spec: Spec, names: Names, n: int, date_us: int | None,
          sources: list[dict[str, Any]], w: _Writer) -> None:
    from lclock import __version__

    not_logged = [k for k, has in (("queue_len", w.has_queue), ("dice", w.has_dice)) if not has]
    if not_logged:
        imp.notes.append(f"not in the logs, so left out (check skips the rules about them): "
                         f"{', '.join(not_logged)}; start and stop lines")
    else:
        imp.notes.append("not in the logs: start and stop lines (check skips conservation)")
    imp.meta.update({
        "schema": 1,
        "run_id": imp.run_id,
        "mode": "import",
        "started_at": format_us(w.first_us) if w.first_us is not None else None,
        "ended_at": format_us(w.last_us) if w.last_us is not None else None,
        "machines": [{"id": mid, "ticks": t, "lclock": c} for mid, (t, c) in sorted(w.last.items())],
        "settings": {"machines": n, "vector_clocks": w.vector},
        "not_logged": [*not_logged, "start", "stop"],
        "import": {
            "sources": sources,
            "regex": spec.source,
            "event_words": dict(sorted(spec.words.items())),
            "machine_names": names.mapping(),
            "derived": w.derived,
            "date": format_us(date_us)[:10] if date_us is not None else None,
            "lclock_version": __version__,
        },
    })
