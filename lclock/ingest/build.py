"""What a matched text-log event means: its values interpreted, its machines numbered.
(``lclock.ingest.runwriter`` turns the events into the lines and run.json of a run folder.)

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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from lclock.analysis.folder import MAX_MACHINES
from lclock.ingest.textlog import Match, Spec, kind_of

if TYPE_CHECKING:
    import datetime

_ISO = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d)(?::(\d\d)(?:[.,](\d{1,9}))?)?\s*"
                  r"(Z|z|UTC|GMT|[+-]\d\d:?\d\d)?$")
_CLOCK = re.compile(r"^(\d\d?):(\d\d):(\d\d)(?:[.,](\d{1,9}))?$")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
_DATE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)$")
# syslog's layout: a month, a day and a time of day, no year (``Mar 02 17:57:01``)
_SYSLOG = re.compile(r"^(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) {1,2}\d\d? "
                     r"\d\d:\d\d:\d\d(?:\.\d{1,6})?$", re.ASCII)
# What ``lclock check`` reads (``lclock.analysis.load``): what import writes stays inside it.
LIMITS = {"clock": 2**63, "msg_clock": 2**63, "tick": 2**63, "queue": 2**31, "dice": 2**31,
          "vclock": 2**31}
# Times RFC 3339 can write (four-digit years), in epoch microseconds.
MIN_US = calendar.timegm((1, 1, 1, 0, 0, 0)) * 1_000_000
MAX_US = calendar.timegm((9999, 12, 31, 23, 59, 59)) * 1_000_000 + 999_999


@dataclass(slots=True)
class Parsed:
    """One event with its values interpreted (machine still a name)."""

    file: str
    line: int
    machine: str
    kind: str
    clock: int
    peer: str | None
    us: int | None  # None: the line has no time (it takes its neighbours', runwriter)
    vclock: str | None
    msg_clock: int | None
    tick: int | None
    queue: int | None
    dice: int | None


# ---------------------------------------------------------------- values


def parse_date(text: str) -> int:
    """``YYYY-MM-DD`` -> epoch microseconds of its midnight UTC; ValueError otherwise (also
    for a day the calendar lacks: timegm would roll 30 February over into March)."""
    import datetime as dt

    m = _DATE.match(text.strip())
    try:
        day = dt.date(*(int(x) for x in m.groups())) if m else None
    except ValueError:
        day = None
    if day is None:
        raise ValueError(f"{text!r} is not a date YYYY-MM-DD")
    return calendar.timegm((day.year, day.month, day.day, 0, 0, 0)) * 1_000_000


def _frac_us(frac: str | None) -> int:
    return int((frac or "0").ljust(6, "0")[:6])


def parse_time(text: str, date_us: int | None, fmt: str | None = None) -> int:
    """Epoch microseconds of a logged time; ValueError with the reason.

    ISO 8601 date and time (``T`` or a space, ``.`` or ``,`` before the fraction, ``Z``, an
    offset, or none: UTC); a time of day (needs ``date_us``); a number: seconds, or
    milliseconds/microseconds/nanoseconds since the epoch told apart by size, and a small
    number (below 1e8) is seconds since the log's start, counted from ``date_us`` (or
    1970-01-01).
    """
    s = text.strip()
    us = _parse_time(s, date_us) if fmt is None else parse_with_format(s, fmt, date_us)
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
    m = _SYSLOG.match(s)
    if m:
        if date_us is None:
            raise ValueError(f"time {s!r} has no year (give --date YYYY-MM-DD)")
        return parse_with_format(s, "%b %d %H:%M:%S" + (".%f" if "." in s else ""), date_us)
    raise ValueError(f"time {s[:40]!r} is not a date and time, a time of day or a number "
                     "(give its layout with --time-format)")


_YEAR_CODES = ("%Y", "%y", "%G", "%c", "%x", "%s")
_DAY_CODES = ("%d", "%j", "%c", "%x", "%U", "%W", "%V", "%s")
_MONTH_CODES = ("%m", "%b", "%B", "%h")
MAX_FORMAT = 200  # characters of a --time-format


def format_problem(fmt: str, date_us: int | None) -> str | None:
    """Why ``--time-format`` cannot be used (with or without ``--date``), or None."""
    import datetime as dt

    if not fmt.strip() or len(fmt) > MAX_FORMAT or "\n" in fmt or "\0" in fmt:
        return f"--time-format: give a layout of strptime codes of at most {MAX_FORMAT} " \
               "characters, such as '%b %d %H:%M:%S'"
    if "%" not in fmt:
        return f"--time-format {fmt[:40]!r} has no strptime code (%Y, %m, %d, %H, ...)"
    if not _has_day(fmt) and (_has_year(fmt) or any(c in fmt for c in _MONTH_CODES)):
        return f"--time-format {fmt[:40]!r} has a {'year' if _has_year(fmt) else 'month'} " \
               "but no day of the month (%d or %j): give the whole date, or only the time " \
               "of day with --date YYYY-MM-DD"
    probe = dt.datetime(2026, 3, 2, 17, 57, 1, 500000, dt.timezone.utc)
    try:
        sample = probe.strftime(fmt)
        dt.datetime.strptime(*((sample, fmt) if _has_year(fmt) else
                               _completed(sample, fmt, date_us or _us(probe))))
    except re.error as exc:  # strptime's own expression: a code given twice
        code = re.search(r"group name '(\w+)'", str(exc))
        return f"--time-format {fmt[:40]!r} gives %{code[1] if code else '?'} twice"
    except (ValueError, TypeError) as exc:
        return f"--time-format {fmt[:40]!r} is not a layout strptime reads: {exc}"
    if date_us is None and not _has_year(fmt):
        what = "no year" if _has_day(fmt) else "no date"
        return (f"--time-format {fmt[:40]!r} has {what}: give --date YYYY-MM-DD for what "
                "the layout lacks")
    return None


def parse_with_format(s: str, fmt: str, date_us: int | None) -> int:
    """A time read by a strptime layout; what the layout lacks (the year, or the whole day)
    comes from ``date_us``. (Prepended, not replaced afterwards: 29 February in a layout
    without a year is refused by strptime's default year 1900.)"""
    import datetime as dt

    if date_us is None and not (_has_year(fmt) and _has_day(fmt)):
        raise ValueError(f"time {s[:40]!r} has no {'year' if _has_day(fmt) else 'date'} "
                         "(give --date YYYY-MM-DD)")
    try:
        t = dt.datetime.strptime(*_completed(s, fmt, date_us))
    except (ValueError, OverflowError, re.error):
        raise ValueError(f"time {s[:40]!r} does not fit --time-format") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return _us(t)


def _has_year(fmt: str) -> bool:
    return any(c in fmt for c in _YEAR_CODES)


def _has_day(fmt: str) -> bool:
    return any(c in fmt for c in _DAY_CODES)


def _completed(s: str, fmt: str, date_us: int | None) -> tuple[str, str]:
    """The time and its layout with what the layout lacks put in front, from ``date_us``:
    the year (strptime's default 1900 refuses 29 February, and a day without a year is
    deprecated), or the whole date. A layout with a year or a month but no day is refused
    by format_problem, so what is put in front never gives a code the layout has."""
    if date_us is None or (_has_year(fmt) and _has_day(fmt)):
        return s, fmt
    day = format_us(date_us)[:10]
    if _has_day(fmt):
        return f"{day[:4]}\x01{s}", f"%Y\x01{fmt}"
    return f"{day}\x01{s}", f"%Y-%m-%d\x01{fmt}"


def _us(t: datetime.datetime) -> int:
    """Integer microseconds since the epoch of an aware datetime (no float rounding)."""
    import datetime as dt

    delta: dt.timedelta = t - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


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


def interpret(spec: Spec, m: Match, machine_from_file: str | None, date_us: int | None,
              fmt: str | None = None) -> Parsed | str | None:
    """The event, or the reason it cannot be used, or None for a word mapped to skip. A
    missing time (``us`` None) or peer (``peer`` None) is kept missing: what the log does
    not say is not made up here."""
    v = m.values
    word = (v.get("event") or "").strip()
    kind = kind_of(spec, word)
    if kind is None:
        w = word.lower() or "(empty)"
        return (f"unknown event word {word!r} (map it with --event '{w}=send', receive, internal "
                "or skip)")
    if kind == "skip":
        return None
    machine = (v.get("machine") or "").strip() or machine_from_file
    if not machine:
        return "no machine"
    try:
        clock = _int(v.get("clock"), "clock")
        if clock is None:
            return "no clock"
        t = (v.get("time") or "").strip()
        us = parse_time(t, date_us, fmt) if t else None
        msg_clock = _int(v.get("msg_clock"), "msg_clock")
        tick = _int(v.get("tick"), "tick")
        queue = _int(v.get("queue"), "queue")
        dice = _int(v.get("dice"), "dice")
    except ValueError as exc:
        return str(exc)
    peer = (v.get("peer") or "").strip() or None
    return Parsed(m.file, m.line, machine, kind, clock, peer, us, (v.get("vclock") or "").strip() or None,
                  msg_clock, tick, queue, dice if kind != "receive" else None)


# ---------------------------------------------------------------- machine names


class Names:
    """Machine names to ids 1..N: numbers as they are, names ending in a number by that
    number (machine1, node-2, M3, vm_4, 'Machine 5'), other names in sorted order. Numbered
    from 0 when any machine name, or any peer named by number (``zero``), is 0: then every
    number is shifted by one (machine 0 is id 1), and run.json's ``machine_names`` says so."""

    def __init__(self, names: set[str], zero: bool = False) -> None:
        suffixes = {x: _suffix(x) for x in names}
        self.numeric = bool(names) and all(suffixes.values())
        self.clash: tuple[list[str], int] | None = None  # names that end in one number
        if self.numeric:
            nums = {x: _number(d) for x, d in suffixes.items() if d}
            if len(set(nums.values())) != len(nums):
                self.numeric = False
                self.clash = _clash(nums)
        if self.numeric:
            self.shift = 1 if zero or min(nums.values()) == 0 else 0
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
        whole = text.strip(" \t[]()'\"")
        if whole in self.ids:  # a name with a space in it ('Machine 1')
            return [self.ids[whole]]
        quoted = re.findall(r"'([^']*)'|\"([^\"]*)\"", text)
        toks = [a or b for a, b in quoted] if quoted else \
            [t for t in re.split(r"[\s,;|+\[\]()'\"]+|\band\b", text) if t.strip()]
        out = [self.id(t) for t in toks]
        return None if not out or any(x is None for x in out) else [x for x in out if x is not None]

    def numbering(self) -> str:
        """How the ids were decided, for run.json and the import's output."""
        if not self.numeric and self.clash:
            same, k = self.clash
            shown = ", ".join(repr(x[:40]) for x in same[:4]) + (" ..." if len(same) > 4 else "")
            return (f"names in sorted order: 1, 2, 3, ... ({shown} end in the same number {k}, "
                    "so the names are not read as numbers: are they one machine?)")
        if not self.numeric:
            return "names in sorted order: 1, 2, 3, ..."
        if self.shift:
            return "numbered from 0: machine k is id k+1"
        return "numbered from 1: machine k is id k"

    def mapping(self) -> dict[str, int]:
        """Name -> id of the machines a run can have (the others' lines were not imported)."""
        return dict(sorted(((k, v) for k, v in self.ids.items() if 1 <= v <= MAX_MACHINES),
                           key=lambda kv: kv[1]))


def _clash(nums: dict[str, int]) -> tuple[list[str], int] | None:
    """The first names (in sorted order) that end in one number, and that number."""
    by: dict[int, list[str]] = {}
    for name, k in nums.items():
        by.setdefault(k, []).append(name)
    same = sorted((sorted(v), k) for k, v in by.items() if len(v) > 1)
    return same[0] if same else None


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
