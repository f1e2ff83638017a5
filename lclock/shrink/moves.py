"""The smaller neighbours of a run's settings, boldest first, and how big a run is.

Pure functions of ``RunSettings``: fewer machines (what names a machine that is gone goes
with it: its fixed rate, clock offset, link, pause, crash, program), no faults or one kind
fewer, a shorter run (cut just after the finding's event first), fewer sends (more faces
on the die), slower machines, and other seeds. Whether a neighbour still shows the finding,
and whether it is smaller by measure, is the search's to find out.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import fields, replace
from typing import Any

from lclock.core.clocks import ClockSettings
from lclock.core.faults import FaultSettings, Partition
from lclock.settings import RunSettings
from lclock.shrink.search import Outcome

#: Other seeds tried per step, at the shape reached (seed + 1, seed + 2, ...).
SEEDS_PER_STEP = 8
#: The die never gets more faces than this (a send on 3 of them in 400 ticks is rare enough).
MAX_DICE = 400
#: Past the finding's event, a cut run lasts this much longer (s): the event is logged.
MARGIN = 0.001


def faults_count(s: RunSettings) -> int:
    """How many faults and wrong clocks a run asks for: each kind given counts one, each
    scheduled fault one more."""
    f, c = s.faults, s.clocks
    plain = [f.default.latency_ms, f.default.loss, f.default.duplicate, f.reorder,
             c.skew_ms, c.drift_ppm, c.offsets_ms, c.drifts_ppm]
    listed = [f.links, f.partitions, f.pauses, f.crashes, f.nemesis, c.bumps]
    return sum(1 for v in plain if v) + sum(len(v) for v in listed)


def neighbours(s: RunSettings, o: Outcome) -> Iterator[tuple[str, RunSettings]]:
    """Every smaller candidate of ``s`` (which showed the finding as ``o``), boldest first."""
    yield from _fewer_machines(s)
    yield from _fewer_faults(s)
    yield from _shorter(s, o)
    yield from _slower(s, o)
    yield from _fewer_sends(s)
    yield from _other_seeds(s)


def _fewer_machines(s: RunSettings) -> Iterator[tuple[str, RunSettings]]:
    n = s.machines
    for k in sorted({2, n // 2, n - 1}):
        if 2 <= k < n:
            yield f"{k} machines", with_machines(s, k)


def with_machines(s: RunSettings, n: int) -> RunSettings:
    """``s`` with machines 1..n only: whatever named a machine above n is dropped."""
    f, c = s.faults, s.clocks
    faults = replace(
        f,
        links=tuple(x for x in f.links if max(x[0]) <= n),
        partitions=tuple(p for p in (_partition_within(p, n) for p in f.partitions) if p),
        pauses=tuple(p for p in f.pauses if p.machine <= n),
        crashes=tuple(x for x in f.crashes if x.machine <= n),
    )
    clocks = replace(
        c,
        offsets_ms=c.offsets_ms[:n] if c.offsets_ms is not None else None,
        drifts_ppm=c.drifts_ppm[:n] if c.drifts_ppm is not None else None,
        bumps=tuple(b for b in c.bumps if b.machine <= n),
    )
    impl = tuple(x for x in s.impl if x[0] <= n) if s.impl else s.impl
    return replace(s, machines=n, rates=s.rates[:n] if s.rates else s.rates, faults=faults,
                   clocks=clocks, impl=impl or None)


def _partition_within(p: Partition, n: int) -> Partition | None:
    """The partition among machines 1..n, or None where it no longer cuts anything."""
    groups = tuple(g for g in (tuple(m for m in grp if m <= n) for grp in p.groups) if g)
    named = {m for g in groups for m in g}
    sides = len(groups) + (1 if len(named) < n else 0)
    return replace(p, groups=groups) if sides > 1 else None


def _fewer_faults(s: RunSettings) -> Iterator[tuple[str, RunSettings]]:
    if faults_count(s) == 0:
        return
    plain = ClockSettings(hlc=s.clocks.hlc)
    yield "no faults", replace(s, faults=FaultSettings(), clocks=plain)
    f = s.faults
    options: list[tuple[str, dict[str, Any]]] = [
        ("no loss", {"default": replace(f.default, loss=0.0)}),
        ("no duplicates", {"default": replace(f.default, duplicate=0.0)}),
        ("no latency", {"default": replace(f.default, latency_ms=0.0)}),
        ("no link faults", {"links": ()}), ("no reordering", {"reorder": False}),
        ("no partitions", {"partitions": ()}), ("no pauses", {"pauses": ()}),
        ("no crashes", {"crashes": ()}), ("no nemesis", {"nemesis": ()}),
    ]
    for name, change in options:
        candidate = replace(f, **change)
        if candidate != f:
            yield name, replace(s, faults=candidate)
    if s.clocks != plain:
        yield "exact physical clocks", replace(s, clocks=plain)


def _shorter(s: RunSettings, o: Outcome) -> Iterator[tuple[str, RunSettings]]:
    """Cut just after the finding's events first (a run is a prefix of a longer one with the
    same seed), then by halves."""
    d = s.duration
    cuts = [math.ceil((t + MARGIN) * 1000) / 1000 for t in o.times[:5]]
    cuts += [round(d * x, 3) for x in (0.125, 0.25, 0.5, 0.75, 0.9)]
    earliest = o.times[0] if o.times else 0.0
    for t in sorted(set(cuts)):
        if earliest < t < d:
            yield f"{t:g} s", with_duration(s, t)


def with_duration(s: RunSettings, d: float) -> RunSettings:
    """``s`` lasting ``d`` s: a fault that would start at or after the end is dropped, one
    that would last past it ends with the run."""
    f, c = s.faults, s.clocks
    faults = replace(
        f,
        partitions=tuple(replace(p, end=min(p.end, d)) for p in f.partitions if p.start < d),
        pauses=tuple(replace(p, length=round(min(p.end, d) - p.start, 6))
                     for p in f.pauses if p.start < d),
        crashes=tuple(x for x in f.crashes if x.time < d),
    )
    clocks = replace(c, bumps=tuple(b for b in c.bumps if b.time < d))
    return replace(s, duration=d, faults=faults, clocks=clocks)


def _slower(s: RunSettings, o: Outcome) -> Iterator[tuple[str, RunSettings]]:
    """The rates the run drew, fixed, the fastest machine halved; then every one at 1."""
    rates = s.rates or o.rates
    if not rates or max(rates) <= 1:
        return
    top = max(rates)
    halved = tuple(r if r < top else max(1, r // 2) for r in rates)
    yield f"rates {','.join(map(str, halved))}", replace(s, rates=halved)
    ones = (1,) * len(rates)
    if ones != halved:
        yield "rates all 1", replace(s, rates=ones)


def _fewer_sends(s: RunSettings) -> Iterator[tuple[str, RunSettings]]:
    k = min(MAX_DICE, s.dice_sides * 2)
    if k > s.dice_sides:
        yield f"a die of {k} sides", replace(s, dice_sides=k)


def _other_seeds(s: RunSettings) -> Iterator[tuple[str, RunSettings]]:
    seed = s.seed or 0
    for k in range(1, SEEDS_PER_STEP + 1):
        yield f"seed {seed + k}", replace(s, seed=seed + k)


# -- back from run.json --------------------------------------------------------------------------


class NotReplayable(ValueError):
    """run.json's settings cannot be made a run of this lclock again (the text says which key)."""


def settings_from_json(data: dict[str, Any]) -> RunSettings:
    """run.json's ``settings`` as the RunSettings that made them. A key this lclock has no
    setting for (a newer lclock's) is refused by name rather than dropped: the run would not
    be the same run."""
    known = {f.name for f in fields(RunSettings)}
    _check_values(data, known)
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise NotReplayable(f"settings.{key}: this lclock has no such setting")
        try:
            values[key] = _field(key, value)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise NotReplayable(f"settings.{key}: cannot be read back ({exc})") from None
    return RunSettings(**values)


def _check_values(data: dict[str, Any], known: set[str]) -> None:
    """run.json may be edited by hand: its values pass the checks a flag's would (a week at
    most, at most 128 machines, ...), or the replay would hang or be another run."""
    from lclock.setting_checks import SettingsError
    from lclock.settings import validate

    plain = {k: v for k, v in data.items() if k in known and k not in ("faults", "clocks", "impl")}
    try:
        validate(plain, {k: f"settings.{k}" for k in plain})  # (on a copy: checks only)
    except SettingsError as exc:
        raise NotReplayable(str(exc)) from None
    _check_link_and_clock_numbers(data)
    impl, n = data.get("impl"), data.get("machines", RunSettings().machines)
    if impl is not None and not (isinstance(impl, (list, tuple)) and impl and all(
            isinstance(e, (list, tuple)) and len(e) == 2 and type(e[0]) is int and type(n) is int
            and 1 <= e[0] <= n and isinstance(e[1], str) and e[1].strip() for e in impl)):
        raise NotReplayable(f"settings.impl: expected a list of [machine id, command] pairs "
                            f"(got {str(impl)[:60]!r})")


_NUMBERS = {"faults": ("latency_ms", "latency_dist", "loss", "duplicate"),
            "clocks": ("skew_ms", "drift_ppm")}


def _check_link_and_clock_numbers(data: dict[str, Any]) -> None:
    """A loss of 5 or a skew of 1e300 in a hand-edited run.json: refused as the flag would be."""
    from lclock.setting_checks import Run, SettingsError
    from lclock.setting_table import keys_of

    for table, names in _NUMBERS.items():
        given = data.get(table)
        if not isinstance(given, dict):
            continue
        links = given.get("links") if table == "faults" else None
        places = [(f"settings.{table}", given), *(
            (f"settings.faults.links.{str(k)[:20]}", v) for k, v in
            (links.items() if isinstance(links, dict) else ()) if isinstance(v, dict))]
        checks = {k.name: k.check for k in keys_of(table) if k.name in names and k.check}
        for where, values in places:
            for name, check in checks.items():
                if values.get(name) is not None:
                    try:
                        check(values[name], f"{where}.{name}", Run(0, 0.0))
                    except SettingsError as exc:
                        raise NotReplayable(str(exc)) from None


def _field(key: str, value: Any) -> Any:
    if key == "faults":
        return faults_from_json(value)
    if key == "clocks":
        return clocks_from_json(value)
    return _tupled(value)


def _tupled(value: Any) -> Any:
    """JSON's lists as the tuples a frozen settings object holds (deeply)."""
    return tuple(_tupled(v) for v in value) if isinstance(value, list) else value


def faults_from_json(d: dict[str, Any]) -> FaultSettings:
    from lclock.core.faults import FaultPlan

    plan = FaultPlan.from_json(d)
    links = tuple(sorted(plan.links.items()))
    return FaultSettings(
        default=plan.default, links=links, reorder=plan.reorder, partitions=plan.partitions, pauses=plan.pauses,
        crashes=plan.crashes, nemesis=tuple(str(x) for x in d.get("nemesis", ())),
        nemesis_interval=float(d.get("nemesis_interval", 10.0)),
    )


def clocks_from_json(d: dict[str, Any]) -> ClockSettings:
    from lclock.core.clocks import Bump

    def floats(v: Any) -> tuple[float, ...] | None:
        return tuple(float(x) for x in v) if v is not None else None

    return ClockSettings(
        skew_ms=float(d.get("skew_ms", 0.0)), drift_ppm=float(d.get("drift_ppm", 0.0)),
        offsets_ms=floats(d.get("offsets_ms")), drifts_ppm=floats(d.get("drifts_ppm")),
        bumps=tuple(Bump(int(b["machine"]), float(b["time"]), float(b["ms"]))
                    for b in d.get("bumps", ())),
        hlc=bool(d.get("hlc", True)),
    )
