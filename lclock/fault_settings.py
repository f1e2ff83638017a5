"""The fault settings (SPEC section 6): flags, the ``[faults]`` table, and their validation.

Like every other setting: built-in defaults < settings.toml ``[faults]`` < an experiment's
``[experiments.NAME.faults]`` < flags, and every problem is one ``SettingsError`` whose text
names the flag or ``file:key``. A schedule is checked against the run it belongs to: a
machine that does not exist, a time outside the run, two partitions at once, two pauses of
one machine at once, a machine paused after its crash.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import replace
from typing import Any

from lclock.core.faults import (
    LATENCY_DISTS,
    NEMESIS_KINDS,
    Crash,
    FaultSettings,
    LinkSettings,
    Partition,
    Pause,
)
from lclock.setting_values import SettingValueError, items, known_keys, number, seconds

MAX_LATENCY_MS = 60_000.0
#: key -> settings-file type (the ``links`` sub-table is checked apart)
FAULT_KEYS: dict[str, str] = {
    "latency_ms": "number", "latency_dist": "str", "loss": "number", "duplicate": "number",
    "reorder": "bool", "partitions": "spec", "pauses": "spec", "crashes": "spec",
    "nemesis": "spec", "nemesis_interval": "number", "links": "table",
}
LINK_KEYS = ("latency_ms", "latency_dist", "loss", "duplicate")
FLAGS = {
    "latency_ms": "--latency", "latency_dist": "--latency-dist", "loss": "--loss",
    "duplicate": "--duplicate", "reorder": "--reorder", "partitions": "--partition",
    "pauses": "--pause", "crashes": "--crash", "nemesis": "--nemesis",
    "nemesis_interval": "--nemesis-interval", "links": "--link",
}


FaultSettingsError = SettingValueError
#: A schedule (the user's or the nemesis's) of at most this many faults.
MAX_SCHEDULED = 10_000
#: The nemesis strikes at most this often (seconds between its faults).
MIN_NEMESIS_INTERVAL = 0.2

def add_fault_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "faults (SPEC section 6; also the [faults] table of settings.toml)")
    g.add_argument("--latency", dest="latency_ms", type=float, metavar="MS",
                   help="mean extra one-way delay of every message, in ms (default 0)")
    g.add_argument("--latency-dist", choices=LATENCY_DISTS,
                   help="constant, uniform (0 to 2 x mean) or exponential (default constant)")
    g.add_argument("--loss", type=float, metavar="P",
                   help="probability that a message is dropped (default 0)")
    g.add_argument("--duplicate", type=float, metavar="P",
                   help="probability that a message is delivered twice (default 0)")
    g.add_argument("--reorder", action="store_const", const=True, default=None,
                   help="each message takes its own delay, so messages can overtake on a link "
                        "(default: off, links stay FIFO)")
    g.add_argument("--partition", dest="partitions", metavar="SPEC",
                   help="START-END:GROUP|GROUP... in s since the start (or in %% of the run), "
                        "';' between several; e.g. 10-20:1|2,3 or 25%%-50%%:3 (machines not "
                        "named form one more group)")
    g.add_argument("--pause", dest="pauses", metavar="SPEC",
                   help="ID@START+LENGTH in s (or %% of the run), e.g. 2@15+5 or 2@50%%+10%% "
                        "(';' between several)")
    g.add_argument("--crash", dest="crashes", metavar="SPEC",
                   help="ID@TIME in s (or %% of the run), e.g. 3@20 or 3@75%%")
    g.add_argument("--nemesis", metavar="KINDS",
                   help="random faults of these kinds (partition,pause,crash), one every "
                        "--nemesis-interval seconds, each lasting half of it")
    g.add_argument("--nemesis-interval", type=float, metavar="S",
                   help="seconds between the nemesis's faults (default 10)")
    g.add_argument("--link", dest="links", metavar="SPEC",
                   help="one link's own faults, A->B:KEY=VALUE,..., e.g. 1->2:latency_ms=50,loss=0.1 "
                        "(';' between links; keys latency_ms, latency_dist, loss, duplicate)")


def fault_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The fault flags given on the command line, as settings keys (absent: not given)."""
    return {k: getattr(args, k) for k in FLAGS if getattr(args, k, None) is not None}


# -- parsing the schedules -----------------------------------------------------------------------

# A time: seconds since the start, or a percentage of the run ("50%"), so that a preset's
# schedule fits a run of any length.
_NUM = r"((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?%?)"
_PARTITION = re.compile(rf"^\s*{_NUM}\s*-\s*{_NUM}\s*:\s*(.+?)\s*$")
_PAUSE = re.compile(rf"^\s*(\d+)\s*@\s*{_NUM}\s*\+\s*{_NUM}\s*$")
_CRASH = re.compile(rf"^\s*(\d+)\s*@\s*{_NUM}\s*$")


def parse_partitions(value: Any, where: str, duration: float) -> tuple[Partition, ...]:
    out = []
    for item in items(value, where, "10-20:1|2,3"):
        m = _PARTITION.match(item)
        if not m:
            raise FaultSettingsError(f"{where}: {item.strip()!r} is not START-END:GROUP|GROUP (e.g. 10-20:1|2,3)")
        groups = []
        for g in m.group(3).split("|"):
            try:
                ids = tuple(sorted(int(x) for x in g.split(",") if x.strip()))
            except ValueError:
                raise FaultSettingsError(f"{where}: {g.strip()!r} is not a group of machine ids like 2,3") from None
            if not ids:
                raise FaultSettingsError(f"{where}: {item.strip()!r} has an empty group")
            groups.append(ids)
        out.append(Partition(seconds(m.group(1), duration), seconds(m.group(2), duration),
                             tuple(groups)))
    return tuple(out)


def parse_pauses(value: Any, where: str, duration: float) -> tuple[Pause, ...]:
    out = []
    for item in items(value, where, "2@15+5"):
        m = _PAUSE.match(item)
        if not m:
            raise FaultSettingsError(f"{where}: {item.strip()!r} is not ID@START+LENGTH (e.g. 2@15+5)")
        out.append(Pause(int(m.group(1)), seconds(m.group(2), duration),
                         seconds(m.group(3), duration)))
    return tuple(out)


def parse_crashes(value: Any, where: str, duration: float) -> tuple[Crash, ...]:
    out = []
    for item in items(value, where, "3@20"):
        m = _CRASH.match(item)
        if not m:
            raise FaultSettingsError(f"{where}: {item.strip()!r} is not ID@TIME (e.g. 3@20)")
        out.append(Crash(int(m.group(1)), seconds(m.group(2), duration)))
    return tuple(out)


def parse_nemesis(value: Any, where: str) -> tuple[str, ...]:
    kinds = []
    for item in items(value, where, "partition,pause"):
        for kind in item.split(","):
            kind = kind.strip()
            if kind not in NEMESIS_KINDS:
                raise FaultSettingsError(
                    f"{where}: unknown fault kind {kind!r} (choose from {', '.join(NEMESIS_KINDS)})")
            if kind not in kinds:
                kinds.append(kind)
    return tuple(kinds)


# -- values --------------------------------------------------------------------------------------


def _link(values: dict[str, Any], where: dict[str, str], base: LinkSettings) -> LinkSettings:
    out = base
    if "latency_ms" in values:
        out = replace(out, latency_ms=number(values["latency_ms"], where["latency_ms"], 0,
                                              MAX_LATENCY_MS, f"a number of ms from 0 to {MAX_LATENCY_MS:g}"))
    if "latency_dist" in values:
        d = values["latency_dist"]
        if d not in LATENCY_DISTS:
            raise FaultSettingsError(f"{where['latency_dist']}: must be one of {', '.join(LATENCY_DISTS)} (got {d!r})")
        out = replace(out, latency_dist=d)
    if "loss" in values:
        out = replace(out, loss=number(values["loss"], where["loss"], 0, 1, "a probability from 0 to 1"))
    if "duplicate" in values:
        out = replace(out, duplicate=number(values["duplicate"], where["duplicate"], 0, 1,
                                             "a probability from 0 to 1"))
    return out


_LINK = re.compile(r"^\s*(\d+)\s*->\s*(\d+)\s*$")


def parse_link_flag(value: str, where: str) -> dict[str, dict[str, Any]]:
    """``1->2:latency_ms=50,loss=0.1;2->1:loss=0.2`` as the ``[faults.links]`` table has it."""
    table: dict[str, dict[str, Any]] = {}
    for item in items(value, where, "1->2:loss=0.1"):
        name, sep, pairs = item.partition(":")
        if not sep:
            raise FaultSettingsError(f"{where}: {item.strip()!r} is not A->B:KEY=VALUE,... (e.g. 1->2:loss=0.1)")
        values: dict[str, Any] = {}
        for pair in pairs.split(","):
            key, eq, raw = pair.partition("=")
            key, raw = key.strip(), raw.strip()
            if not eq or not key:
                raise FaultSettingsError(f"{where}: {pair.strip()!r} is not KEY=VALUE (e.g. loss=0.1)")
            if key in values:
                raise FaultSettingsError(f"{where} {name.strip()}: {key} is given twice")
            if key == "latency_dist":
                values[key] = raw
                continue
            try:
                values[key] = float(raw)
            except ValueError:
                raise FaultSettingsError(f"{where}: {key}={raw!r} is not a number") from None
        if name.strip() in table:
            raise FaultSettingsError(f"{where} {name.strip()}: the link is given twice (put its "
                                     "settings together: 1->2:latency_ms=50,loss=0.1)")
        table[name.strip()] = values
    return table


def _links(table: Any, where: str, base: LinkSettings, n: int) -> tuple[tuple[tuple[int, int], LinkSettings], ...]:
    flag = isinstance(table, str)
    if flag:  # the --link flag
        table = parse_link_flag(table, where)
    if not isinstance(table, dict):
        raise FaultSettingsError(f"{where}: must be a table of links like [faults.links.\"1->2\"]")
    out = []
    seen: set[tuple[int, int]] = set()
    for name, values in table.items():
        # the flag's own words (--link 1->2: ...), a file's key (file:faults.links."1->2")
        lw = f"{where} {name}" if flag else f"{where}.\"{name}\""
        m = _LINK.match(str(name))
        if not m:
            raise FaultSettingsError(f"{lw}: a link is named \"A->B\" (e.g. \"1->2\")")
        a, b = int(m.group(1)), int(m.group(2))
        for i in (a, b):
            if not 1 <= i <= n:
                raise FaultSettingsError(f"{lw}: machine {i} does not exist (machines 1..{n})")
        if a == b:
            raise FaultSettingsError(f"{lw}: a link joins two different machines")
        if (a, b) in seen:  # "1->2" and "1 -> 2" in a file
            raise FaultSettingsError(f"{lw}: the link {a}->{b} is given twice")
        seen.add((a, b))
        if not isinstance(values, dict):
            raise FaultSettingsError(f"{lw}: must be a table of {', '.join(LINK_KEYS)}")
        for key in values:
            if key not in LINK_KEYS:
                raise FaultSettingsError(f"{lw}{':' if flag else '.'}{key}: unknown key (a link "
                                         f"has {', '.join(LINK_KEYS)})")
        keys = {k: f"{lw}:{k}" if flag else f"{lw}.{k}" for k in LINK_KEYS}
        out.append(((a, b), _link(values, keys, base)))
    return tuple(sorted(out))


# -- the whole ------------------------------------------------------------------------------------


def build_faults(values: dict[str, Any], where: dict[str, str], n: int, duration: float) -> FaultSettings:
    """Validated fault settings from merged raw values (``where`` names each value's source)."""
    s = FaultSettings(default=_link(values, where, LinkSettings()))
    if "reorder" in values:
        if not isinstance(values["reorder"], bool):
            raise FaultSettingsError(f"{where['reorder']}: must be true or false (got {values['reorder']!r})")
        s = replace(s, reorder=values["reorder"])
    if "links" in values:
        s = replace(s, links=_links(values["links"], where["links"], s.default, n))
    if "partitions" in values:
        s = replace(s, partitions=parse_partitions(values["partitions"], where["partitions"], duration))
    if "pauses" in values:
        s = replace(s, pauses=parse_pauses(values["pauses"], where["pauses"], duration))
    if "crashes" in values:
        s = replace(s, crashes=parse_crashes(values["crashes"], where["crashes"], duration))
    if "nemesis" in values:
        s = replace(s, nemesis=parse_nemesis(values["nemesis"], where["nemesis"]))
    if "nemesis_interval" in values:
        s = replace(s, nemesis_interval=number(values["nemesis_interval"], where["nemesis_interval"],
                                                 1e-3, 7 * 24 * 3600.0, "a number of seconds > 0"))
    check_schedule(s, where, n, duration)
    return s


def _machine(i: int, where: str, n: int) -> None:
    if not 1 <= i <= n:
        raise FaultSettingsError(f"{where}: machine {i} does not exist (machines 1..{n})")


def _within(start: float, end: float, where: str, duration: float, what: str) -> None:
    if not 0 <= start < end <= duration:
        raise FaultSettingsError(
            f"{where}: {what} {start:g}-{end:g} s must lie inside the run (0 to {duration:g} s) "
            "and end after it starts")


def check_schedule(s: FaultSettings, where: dict[str, str], n: int, duration: float) -> None:
    """The schedule against the run: machines that exist, times inside it, no overlaps."""
    w = where.get
    for p in s.partitions:
        _within(p.start, p.end, w("partitions", "partitions"), duration, "partition")
        named: set[int] = set()
        for g in p.groups:
            for i in g:
                _machine(i, w("partitions", "partitions"), n)
                if i in named:
                    raise FaultSettingsError(f"{w('partitions', 'partitions')}: machine {i} is in two groups")
                named.add(i)
        if len(p.groups) + (1 if len(named) < n else 0) < 2:
            raise FaultSettingsError(
                f"{w('partitions', 'partitions')}: a partition needs two sides (all {n} machines are in one group)")
    ordered = sorted(s.partitions, key=lambda p: p.start)
    for a, b in zip(ordered, ordered[1:]):
        if b.start < a.end:
            raise FaultSettingsError(
                f"{w('partitions', 'partitions')}: partitions {a.start:g}-{a.end:g} and "
                f"{b.start:g}-{b.end:g} overlap (one partition at a time)")
    crash_at: dict[int, float] = {}
    for c in s.crashes:
        _machine(c.machine, w("crashes", "crashes"), n)
        if not 0 < c.time < duration:
            raise FaultSettingsError(
                f"{w('crashes', 'crashes')}: crash of machine {c.machine} at {c.time:g} s must lie "
                f"inside the run (after 0, before {duration:g} s)")
        if c.machine in crash_at:
            raise FaultSettingsError(f"{w('crashes', 'crashes')}: machine {c.machine} crashes twice")
        crash_at[c.machine] = c.time
    if len(crash_at) >= n:
        raise FaultSettingsError(f"{w('crashes', 'crashes')}: every machine crashes; leave one running")
    by_machine: dict[int, list[Pause]] = {}
    for pause in s.pauses:
        pw = w("pauses", "pauses")
        _machine(pause.machine, pw, n)
        _within(pause.start, pause.end, pw, duration, f"pause of machine {pause.machine}")
        if pause.machine in crash_at and pause.end > crash_at[pause.machine]:
            raise FaultSettingsError(
                f"{pw}: machine {pause.machine} is paused until {pause.end:g} s but crashes at "
                f"{crash_at[pause.machine]:g} s")
        by_machine.setdefault(pause.machine, []).append(pause)
    for i, ps in by_machine.items():
        ps.sort(key=lambda x: x.start)
        for x, y in zip(ps, ps[1:]):
            if y.start < x.end:
                raise FaultSettingsError(
                    f"{w('pauses', 'pauses')}: two pauses of machine {i} overlap "
                    f"({x.start:g}+{x.length:g} and {y.start:g}+{y.length:g})")
    if s.nemesis and (s.partitions or s.pauses or s.crashes):
        raise FaultSettingsError(
            f"{w('nemesis', 'nemesis')}: the nemesis draws its own schedule; leave out "
            "--partition, --pause and --crash (or the nemesis)")
    if s.nemesis and n < 2:
        raise FaultSettingsError(f"{w('nemesis', 'nemesis')}: needs at least 2 machines")
    scheduled = len(s.partitions) + len(s.pauses) + len(s.crashes)
    if scheduled > MAX_SCHEDULED:
        raise FaultSettingsError(
            f"{w('pauses', 'pauses')}: {scheduled} scheduled faults; at most {MAX_SCHEDULED} "
            "(every one is a line in run.json and signals to a process)")
    if s.nemesis:
        iw = w("nemesis_interval", "nemesis")
        if s.nemesis_interval < MIN_NEMESIS_INTERVAL:
            raise FaultSettingsError(
                f"{iw}: one fault every {s.nemesis_interval:g} s is too often; at least "
                f"{MIN_NEMESIS_INTERVAL:g} s (a pause is a signal to stop and one to continue, "
                "each some ms late)")
        if duration / s.nemesis_interval > MAX_SCHEDULED:
            raise FaultSettingsError(
                f"{iw}: {duration / s.nemesis_interval:.0f} faults in {duration:g} s; at most "
                f"{MAX_SCHEDULED} (raise --nemesis-interval)")


def check_file_table(table: Any, where: str) -> dict[str, Any]:
    """A ``[faults]`` table of a settings file: known keys only (values are checked later)."""
    return known_keys(table, where, FAULT_KEYS, "faults")


# -- back to flags (a planned trial is one self-contained command) --------------------------------


def _num(x: float) -> str:
    """A number as the flags read it, exactly (the shortest text that reads back as x)."""
    return repr(float(x))


def _link_text(link: LinkSettings) -> str:
    return (f"latency_ms={_num(link.latency_ms)},latency_dist={link.latency_dist},"
            f"loss={_num(link.loss)},duplicate={_num(link.duplicate)}")


def faults_to_flags(s: FaultSettings) -> list[str]:
    """The flags that give exactly these fault settings (none for a perfect run)."""
    d = s.default
    out: list[str] = []
    if d.latency_ms:
        out += ["--latency", _num(d.latency_ms)]
    if d.latency_dist != "constant":
        out += ["--latency-dist", d.latency_dist]
    if d.loss:
        out += ["--loss", _num(d.loss)]
    if d.duplicate:
        out += ["--duplicate", _num(d.duplicate)]
    if s.reorder:
        out.append("--reorder")
    if s.links:
        out += ["--link", ";".join(f"{a}->{b}:{_link_text(link)}" for (a, b), link in s.links)]
    if s.partitions:
        out += ["--partition", ";".join(
            f"{_num(p.start)}-{_num(p.end)}:" + "|".join(",".join(map(str, g)) for g in p.groups)
            for p in s.partitions)]
    if s.pauses:
        out += ["--pause", ";".join(f"{p.machine}@{_num(p.start)}+{_num(p.length)}" for p in s.pauses)]
    if s.crashes:
        out += ["--crash", ";".join(f"{c.machine}@{_num(c.time)}" for c in s.crashes)]
    if s.nemesis:
        out += ["--nemesis", ",".join(s.nemesis), "--nemesis-interval", _num(s.nemesis_interval)]
    return out
