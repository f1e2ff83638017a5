"""The checks of the fault and clock keys the table of settings names: schedules written as
the flags write them (``2@15+5;3@20``), a link's own faults, and the rules that tie a schedule
to the run (machines that exist, times inside it, no overlaps).

Imported only when a run has a fault or clock key: a plain run does not pay for it.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from lclock.core.clocks import Bump, ClockSettings
from lclock.core.faults import NEMESIS_KINDS, Crash, FaultSettings, LinkSettings, Partition, Pause
from lclock.core.snapshot import SnapshotAt
from lclock.setting_checks import LINK_KEYS, MAX_SKEW_MS, Run, SettingsError, fail

#: A schedule (the user's or the nemesis's) of at most this many faults.
MAX_SCHEDULED = 10_000
#: The nemesis strikes at most this often (seconds between its faults).
MIN_NEMESIS_INTERVAL = 0.2
CLOCK_NAMES = ("vector", "hlc")
#: Snapshots of one run at the most: each is a line per machine and markers on every link.
MAX_SNAPSHOTS = 1000


# -- schedules: one string with ';' between items (as the flag takes it), or a list ------------

# A time: seconds since the start, or a percentage of the run ("50%"), so that a preset's
# schedule fits a run of any length.
_NUM = r"((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?%?)"
_N = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_PARTITION = re.compile(rf"^\s*{_NUM}\s*-\s*{_NUM}\s*:\s*(.+?)\s*$")
_PAUSE = re.compile(rf"^\s*(\d+)\s*@\s*{_NUM}\s*\+\s*{_NUM}\s*$")
_CRASH = re.compile(rf"^\s*(\d+)\s*@\s*{_NUM}\s*$")
_BUMP = re.compile(rf"^\s*(\d+)\s*@\s*({_N}%?)\s*:\s*([+-]?{_N})\s*$")
_LINK = re.compile(r"^\s*(\d+)\s*->\s*(\d+)\s*$")


def items(value: Any, where: str, example: str) -> list[str]:
    if isinstance(value, str):
        return [x for x in value.split(";") if x.strip()]
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        return [x for x in value if x.strip()]
    raise fail(where, f"must be a string like {example}, or a list of them (got {value!r})")


def seconds(text: str, run: Run) -> float:
    """``12.5`` is seconds, ``25%`` a quarter of the run."""
    if text.endswith("%"):
        # To the microsecond, as the logs have them: 30% of 0.5 s is not 0.15000000000000002.
        return round(float(text[:-1]) / 100.0 * run.duration, 6)
    return float(text)


def _matches(value: Any, where: str, pattern: re.Pattern[str], form: str, example: str) -> list[re.Match[str]]:
    out = []
    for item in items(value, where, example):
        m = pattern.match(item)
        if not m:
            raise fail(where, f"{item.strip()!r} is not {form} (e.g. {example})")
        out.append(m)
    return out


def partitions(value: Any, where: str, run: Run) -> tuple[Partition, ...]:
    out = []
    for m in _matches(value, where, _PARTITION, "START-END:GROUP|GROUP", "10-20:1|2,3"):
        groups = []
        for g in m.group(3).split("|"):
            try:
                ids = tuple(sorted(int(x) for x in g.split(",") if x.strip()))
            except ValueError:
                raise fail(where, f"{g.strip()!r} is not a group of machine ids like 2,3") from None
            if not ids:
                raise fail(where, f"{m.group(0).strip()!r} has an empty group")
            groups.append(ids)
        out.append(Partition(seconds(m.group(1), run), seconds(m.group(2), run), tuple(groups)))
    return tuple(out)


def pauses(value: Any, where: str, run: Run) -> tuple[Pause, ...]:
    return tuple(Pause(int(m.group(1)), seconds(m.group(2), run), seconds(m.group(3), run))
                 for m in _matches(value, where, _PAUSE, "ID@START+LENGTH", "2@15+5"))


def crashes(value: Any, where: str, run: Run) -> tuple[Crash, ...]:
    return tuple(Crash(int(m.group(1)), seconds(m.group(2), run))
                 for m in _matches(value, where, _CRASH, "ID@TIME", "3@20"))


def snapshots(value: Any, where: str, run: Run) -> tuple[SnapshotAt, ...]:
    """``ID@TIME;...`` (SPEC 12): numbered 1, 2, ... in time order (machine order at one time)."""
    planned = sorted((seconds(m.group(2), run), int(m.group(1)))
                      for m in _matches(value, where, _CRASH, "ID@TIME", "1@10"))
    if len(planned) > MAX_SNAPSHOTS:
        raise fail(where, f"{len(planned)} snapshots; at most {MAX_SNAPSHOTS}")
    for time, machine in planned:
        _machine(machine, where, run.n)
        if not 0 <= time < run.duration:
            raise fail(where, f"a snapshot at {time:g} s is outside the run (from 0 s to before "
                              f"its end at {run.duration:g} s)")
    return tuple(SnapshotAt(k, machine, time) for k, (time, machine) in enumerate(planned, 1))


def bumps(value: Any, where: str, run: Run) -> tuple[Bump, ...]:
    out = tuple(Bump(int(m.group(1)), seconds(m.group(2), run), float(m.group(3)))
                for m in _matches(value, where, _BUMP, "ID@TIME:MS", "2@10:+500"))
    for b in out:
        _machine(b.machine, where, run.n)
        if not 0 <= b.time < run.duration:
            raise fail(where, f"a bump at {b.time:g} s is outside the run (0 to {run.duration:g} s)")
        if b.ms == 0 or abs(b.ms) > MAX_SKEW_MS:
            raise fail(where, f"a bump of {b.ms:g} ms (must be non-zero, at most {MAX_SKEW_MS:g})")
    return out


def nemesis(value: Any, where: str, run: Run) -> tuple[str, ...]:
    kinds: list[str] = []
    for item in items(value, where, "partition,pause"):
        for kind in item.split(","):
            kind = kind.strip()
            if kind not in NEMESIS_KINDS:
                raise fail(where, f"unknown fault kind {kind!r} (choose from {', '.join(NEMESIS_KINDS)})")
            if kind not in kinds:
                kinds.append(kind)
    return tuple(kinds)


def clock_names(value: Any, where: str, run: Run) -> tuple[str, ...]:
    if isinstance(value, str):
        names = [x.strip() for x in value.split(",") if x.strip()]
    elif isinstance(value, list) and all(isinstance(x, str) for x in value):
        names = [x.strip() for x in value]
    else:
        raise fail(where, f"must be a list such as vector,hlc (got {value!r})")
    # Lamport's clock is always kept: naming it (lamport,vector) asks for nothing more
    names = [n for n in names if n != "lamport"] or ["none"]
    if names == ["none"]:
        return ()
    if "none" in names:
        raise fail(where, f"'none' (Lamport's clock alone) cannot be listed with other clocks "
                          f"(got {','.join(names)})")
    for name in names:
        if name not in CLOCK_NAMES:
            close = difflib.get_close_matches(name, CLOCK_NAMES, n=1, cutoff=0.5)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise fail(where, f"unknown clock {name!r}{hint}; choose from vector, hlc, or none")
    return tuple(dict.fromkeys(names))


# -- per-link faults: [faults.links."1->2"] or --link 1->2:loss=0.1 -------------------------------


def link_flag(value: str, where: str) -> dict[str, dict[str, Any]]:
    """``1->2:latency_ms=50,loss=0.1;2->1:loss=0.2`` as the ``[faults.links]`` table has it."""
    table: dict[str, dict[str, Any]] = {}
    for item in items(value, where, "1->2:loss=0.1"):
        name, sep, pairs = item.partition(":")
        if not sep:
            raise fail(where, f"{item.strip()!r} is not A->B:KEY=VALUE,... (e.g. 1->2:loss=0.1)")
        values: dict[str, Any] = {}
        for pair in pairs.split(","):
            key, eq, raw = (x.strip() for x in pair.partition("="))
            if not eq or not key:
                raise fail(where, f"{pair.strip()!r} is not KEY=VALUE (e.g. loss=0.1)")
            if key in values:
                raise fail(f"{where} {name.strip()}", f"{key} is given twice")
            try:
                values[key] = raw if key == "latency_dist" else float(raw)
            except ValueError:
                raise fail(where, f"{key}={raw!r} is not a number") from None
        if name.strip() in table:
            raise fail(f"{where} {name.strip()}", "the link is given twice (put its settings "
                                                  "together: 1->2:latency_ms=50,loss=0.1)")
        table[name.strip()] = values
    return table


Links = tuple[tuple[tuple[int, int], dict[str, Any]], ...]


def links(table: Any, where: str, run: Run) -> Links:
    """Each link's own faults, checked; they apply over the default link when built."""
    from lclock.setting_table import KEYS

    flag = isinstance(table, str)
    if flag:  # the --link flag
        table = link_flag(table, where)
    if not isinstance(table, dict):
        raise fail(where, "must be a table of links like [faults.links.\"1->2\"]")
    out = []
    seen: set[tuple[int, int]] = set()
    for name, values in table.items():
        # the flag's own words (--link 1->2: ...), a file's key (file:faults.links."1->2")
        lw = f"{where} {name}" if flag else f"{where}.\"{name}\""
        a, b = _link_ends(name, lw, run.n, seen)
        if not isinstance(values, dict):
            raise fail(lw, f"must be a table of {', '.join(LINK_KEYS)}")
        for key in values:
            if key not in LINK_KEYS:
                raise SettingsError(f"{lw}{':' if flag else '.'}{key}: unknown key (a link "
                                    f"has {', '.join(LINK_KEYS)})")
        out.append(((a, b), {k: KEYS[k].check(v, f"{lw}:{k}" if flag else f"{lw}.{k}", run)  # type: ignore[misc]
                             for k, v in values.items()}))
    return tuple(sorted(out, key=lambda x: x[0]))


def _link_ends(name: Any, lw: str, n: int, seen: set[tuple[int, int]]) -> tuple[int, int]:
    m = _LINK.match(str(name))
    if not m:
        raise fail(lw, "a link is named \"A->B\" (e.g. \"1->2\")")
    a, b = int(m.group(1)), int(m.group(2))
    for i in (a, b):
        _machine(i, lw, n)
    if a == b:
        raise fail(lw, "a link joins two different machines")
    if (a, b) in seen:  # "1->2" and "1 -> 2" in a file
        raise fail(lw, f"the link {a}->{b} is given twice")
    seen.add((a, b))
    return a, b


# -- rules over several keys ----------------------------------------------------------------------


def _machine(i: int, where: str, n: int) -> None:
    if not 1 <= i <= n:
        raise fail(where, f"machine {i} does not exist (machines 1..{n})")


def _inside(start: float, end: float, where: str, duration: float, what: str) -> None:
    if not 0 <= start < end <= duration:
        raise fail(where, f"{what} {start:g}-{end:g} s must lie inside the run (0 to {duration:g} s) "
                          "and end after it starts")


def build_faults(parsed: dict[str, Any], where: dict[str, str], run: Run) -> FaultSettings:
    """The checked fault keys as one FaultSettings: a link's own faults over the default link."""
    default = LinkSettings(**{k: v for k, v in parsed.items() if k in LINK_KEYS})
    rest = {k: v for k, v in parsed.items() if k not in LINK_KEYS}
    if "links" in rest:
        rest["links"] = tuple((ab, _over(default, d)) for ab, d in rest["links"])
    s = FaultSettings(default=default, **rest)
    check_schedule(s, where, run)
    return s


def _over(base: LinkSettings, values: dict[str, Any]) -> LinkSettings:
    from dataclasses import replace

    return replace(base, **values)


def build_clocks(parsed: dict[str, Any], where: dict[str, str], run: Run) -> ClockSettings:
    names = parsed.pop("clocks", None)
    return ClockSettings(**parsed) if names is None else ClockSettings(**parsed, hlc="hlc" in names)


def check_schedule(s: FaultSettings, where: dict[str, str], run: Run) -> None:
    """The schedule against the run: machines that exist, times inside it, no overlaps."""
    w = where.get
    _check_partitions(s.partitions, w("partitions", "partitions"), run)
    crash_at = _check_crashes(s.crashes, w("crashes", "crashes"), run)
    _check_pauses(s.pauses, w("pauses", "pauses"), run, crash_at)
    nw = w("nemesis", "nemesis")
    if s.nemesis and (s.partitions or s.pauses or s.crashes):
        raise fail(nw, "the nemesis draws its own schedule; leave out --partition, --pause and "
                       "--crash (or the nemesis)")
    if s.nemesis and run.n < 2:
        raise fail(nw, "needs at least 2 machines")
    scheduled = len(s.partitions) + len(s.pauses) + len(s.crashes)
    if scheduled > MAX_SCHEDULED:
        raise fail(w("pauses", "pauses"), f"{scheduled} scheduled faults; at most {MAX_SCHEDULED} "
                                          "(every one is a line in run.json and signals to a process)")
    if s.nemesis:
        _check_nemesis_interval(s.nemesis_interval, w("nemesis_interval", "nemesis"), run.duration)


def _check_partitions(parts: tuple[Partition, ...], pw: str, run: Run) -> None:
    for p in parts:
        _inside(p.start, p.end, pw, run.duration, "partition")
        named: set[int] = set()
        for i in (i for g in p.groups for i in g):
            _machine(i, pw, run.n)
            if i in named:
                raise fail(pw, f"machine {i} is in two groups")
            named.add(i)
        if len(p.groups) + (1 if len(named) < run.n else 0) < 2:
            raise fail(pw, f"a partition needs two sides (all {run.n} machines are in one group)")
    ordered = sorted(parts, key=lambda p: p.start)
    for a, b in zip(ordered, ordered[1:]):
        if b.start < a.end:
            raise fail(pw, f"partitions {a.start:g}-{a.end:g} and {b.start:g}-{b.end:g} overlap "
                           "(one partition at a time)")


def _check_crashes(cs: tuple[Crash, ...], cw: str, run: Run) -> dict[int, float]:
    crash_at: dict[int, float] = {}
    for c in cs:
        _machine(c.machine, cw, run.n)
        if not 0 < c.time < run.duration:
            raise fail(cw, f"crash of machine {c.machine} at {c.time:g} s must lie inside the run "
                           f"(after 0, before {run.duration:g} s)")
        if c.machine in crash_at:
            raise fail(cw, f"machine {c.machine} crashes twice")
        crash_at[c.machine] = c.time
    if len(crash_at) >= run.n:
        raise fail(cw, "every machine crashes; leave one running")
    return crash_at


def _check_pauses(ps: tuple[Pause, ...], pw: str, run: Run, crash_at: dict[int, float]) -> None:
    by_machine: dict[int, list[Pause]] = {}
    for pause in ps:
        _machine(pause.machine, pw, run.n)
        _inside(pause.start, pause.end, pw, run.duration, f"pause of machine {pause.machine}")
        if pause.machine in crash_at and pause.end > crash_at[pause.machine]:
            raise fail(pw, f"machine {pause.machine} is paused until {pause.end:g} s but crashes "
                           f"at {crash_at[pause.machine]:g} s")
        by_machine.setdefault(pause.machine, []).append(pause)
    for i, mine in by_machine.items():
        mine.sort(key=lambda x: x.start)
        for x, y in zip(mine, mine[1:]):
            if y.start < x.end:
                raise fail(pw, f"two pauses of machine {i} overlap "
                               f"({x.start:g}+{x.length:g} and {y.start:g}+{y.length:g})")


def _check_nemesis_interval(interval: float, iw: str, duration: float) -> None:
    if interval < MIN_NEMESIS_INTERVAL:
        raise fail(iw, f"one fault every {interval:g} s is too often; at least "
                       f"{MIN_NEMESIS_INTERVAL:g} s (a pause is a signal to stop and one to "
                       "continue, each some ms late)")
    if duration / interval > MAX_SCHEDULED:
        raise fail(iw, f"{duration / interval:.0f} faults in {duration:g} s; at most "
                       f"{MAX_SCHEDULED} (raise --nemesis-interval)")
