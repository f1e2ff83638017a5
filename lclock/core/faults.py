"""The fault model (SPEC section 6): pure, seeded, the same for every driver.

A ``FaultPlan`` is everything that will go wrong in a run, decided before it starts: the
network's extra latency, loss and duplication per link, whether links may reorder, and
the schedule of partitions, pauses and crashes (the nemesis's random draws resolved into
that schedule). A ``LinkFaults`` object then decides the fate of each message a machine
sends on one link: dropped (and why), or delivered after which delay, once or twice.

The decisions come from generators of their own, one per link, seeded from the run seed
and the link: a seed repeats the faults exactly, and the machines' generators (their
dice) never see a draw of the fault model, so every machine rolls the same dice with and
without faults. Time here is seconds since t0, given by the driver.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

LATENCY_DISTS = ("constant", "uniform", "exponential")
NEMESIS_KINDS = ("partition", "pause", "crash")


@dataclass(frozen=True)
class LinkSettings:
    """The network faults of one link (or the default of every link)."""

    latency_ms: float = 0.0
    latency_dist: str = "constant"
    loss: float = 0.0
    duplicate: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"latency_ms": self.latency_ms, "latency_dist": self.latency_dist,
                "loss": self.loss, "duplicate": self.duplicate}


@dataclass(frozen=True)
class Partition:
    """From ``start`` to ``end`` (seconds since t0) messages between groups are dropped.

    Machines that no group names form one more group together.
    """

    start: float
    end: float
    groups: tuple[tuple[int, ...], ...]

    def side(self, machine: int) -> int:
        for k, group in enumerate(self.groups):
            if machine in group:
                return k
        return -1

    def cuts(self, a: int, b: int) -> bool:
        return self.side(a) != self.side(b)

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "groups": [list(g) for g in self.groups]}

    def all_groups(self, n: int) -> list[list[int]]:
        """Every side of the cut, the unnamed machines too, as the ``fault`` lines give them."""
        groups = [list(g) for g in self.groups]
        rest = [i for i in range(1, n + 1) if self.side(i) < 0]
        return groups + [rest] if rest else groups


@dataclass(frozen=True)
class Pause:
    machine: int
    start: float
    length: float

    @property
    def end(self) -> float:
        # To the microsecond, as the log's times: 1.4 + 0.1 is 1.5000000000000002 in floats,
        # and a deadline at 1.5 would be skipped by the node but not by the checker.
        return round(self.start + self.length, 6)

    def to_json(self) -> dict[str, Any]:
        return {"machine": self.machine, "start": self.start, "length": self.length}


@dataclass(frozen=True)
class Crash:
    machine: int
    time: float

    def to_json(self) -> dict[str, Any]:
        return {"machine": self.machine, "time": self.time}


@dataclass(frozen=True)
class FaultSettings:
    """The faults as the user asked for them (settings and flags), before the nemesis draws."""

    default: LinkSettings = LinkSettings()
    links: tuple[tuple[tuple[int, int], LinkSettings], ...] = ()
    reorder: bool = False
    partitions: tuple[Partition, ...] = ()
    pauses: tuple[Pause, ...] = ()
    crashes: tuple[Crash, ...] = ()
    nemesis: tuple[str, ...] = ()
    nemesis_interval: float = 10.0

    @property
    def any(self) -> bool:
        return self != FaultSettings()

    def to_json(self) -> dict[str, Any]:
        return {
            **self.default.to_json(),
            "links": {f"{a}->{b}": s.to_json() for (a, b), s in self.links},
            "reorder": self.reorder,
            "partitions": [p.to_json() for p in self.partitions],
            "pauses": [p.to_json() for p in self.pauses],
            "crashes": [c.to_json() for c in self.crashes],
            "nemesis": list(self.nemesis),
            "nemesis_interval": self.nemesis_interval,
        }


@dataclass(frozen=True)
class FaultPlan:
    """The resolved plan of a run: what every machine and the supervisor act on."""

    seed: int
    default: LinkSettings = LinkSettings()
    links: dict[tuple[int, int], LinkSettings] = field(default_factory=dict)
    reorder: bool = False
    partitions: tuple[Partition, ...] = ()
    pauses: tuple[Pause, ...] = ()
    crashes: tuple[Crash, ...] = ()

    @property
    def network(self) -> bool:
        """Some message may be delayed, dropped or duplicated."""
        return bool(self.partitions or self.crashes or self.reorder) or any(
            s != LinkSettings() for s in (self.default, *self.links.values())
        )

    @property
    def any(self) -> bool:
        return self.network or bool(self.pauses)

    def link(self, src: int, dst: int) -> LinkSettings:
        return self.links.get((src, dst), self.default)

    def partition_at(self, t: float) -> Partition | None:
        for p in self.partitions:
            if p.start <= t < p.end:
                return p
        return None

    def crash_time(self, machine: int) -> float | None:
        times = [c.time for c in self.crashes if c.machine == machine]
        return min(times) if times else None

    def pauses_of(self, machine: int) -> list[Pause]:
        return sorted((p for p in self.pauses if p.machine == machine), key=lambda p: p.start)

    def boundaries(self) -> list[tuple[float, str, Partition]]:
        """Partition starts and heals, in time order: when every machine logs ``fault``."""
        out = []
        for p in self.partitions:
            out.append((p.start, "partition", p))
            out.append((p.end, "heal", p))
        return sorted(out, key=lambda x: (x[0], x[1] == "partition"))

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            **self.default.to_json(),
            "links": {f"{a}->{b}": s.to_json() for (a, b), s in sorted(self.links.items())},
            "reorder": self.reorder,
            "partitions": [p.to_json() for p in self.partitions],
            "pauses": [p.to_json() for p in self.pauses],
            "crashes": [c.to_json() for c in self.crashes],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultPlan:
        """Back from run.json (the checker and the analysis read the plan there)."""
        def link(d: dict[str, Any]) -> LinkSettings:
            return LinkSettings(float(d.get("latency_ms", 0.0)), str(d.get("latency_dist", "constant")),
                                float(d.get("loss", 0.0)), float(d.get("duplicate", 0.0)))

        links = {}
        for key, value in (data.get("links") or {}).items():
            a, b = key.split("->")
            links[(int(a), int(b))] = link(value)
        return cls(
            seed=int(data.get("seed", 0)),
            default=link(data),
            links=links,
            reorder=bool(data.get("reorder", False)),
            partitions=tuple(Partition(float(p["start"]), float(p["end"]),
                                       tuple(tuple(int(x) for x in g) for g in p["groups"]))
                             for p in data.get("partitions", [])),
            pauses=tuple(Pause(int(p["machine"]), float(p["start"]), float(p["length"]))
                         for p in data.get("pauses", [])),
            crashes=tuple(Crash(int(c["machine"]), float(c["time"])) for c in data.get("crashes", [])),
        )


def fault_rng(seed: int, what: str) -> random.Random:
    """A generator of the fault model, apart from every machine's (``lclock:{seed}:{id}``)."""
    return random.Random(f"lclock:faults:{seed}:{what}")


# -- resolving the plan (the nemesis draws) ------------------------------------------------------


def resolve_plan(settings: FaultSettings, n: int, duration: float, seed: int) -> FaultPlan:
    """The plan of a run: the user's schedule plus the nemesis's random faults.

    The nemesis strikes at interval, 2 x interval, ... (before the end), each fault lasting
    half an interval: a partition into two random sides, a pause of a random machine, or
    the crash of a random machine (never one that is down already, and never the last two
    standing). Its draws come from the fault generator, so a seed repeats them.
    """
    partitions = list(settings.partitions)
    pauses = list(settings.pauses)
    crashes = list(settings.crashes)
    if settings.nemesis:
        rng = fault_rng(seed, "nemesis")
        step = settings.nemesis_interval
        k = 1
        # Times to the microsecond, as the logs have them (see Pause.end); a strike that
        # rounds to the end (59.9999999 in a 60 s run) is past it.
        while (start := round(k * step, 6)) < duration:
            end = round(min(start + step / 2, duration), 6)
            kind = rng.choice(settings.nemesis)
            down = {c.machine for c in crashes if c.time <= start}
            up = [i for i in range(1, n + 1) if i not in down]
            if kind == "crash" and len(up) > 2:
                crashes.append(Crash(rng.choice(up), start))
            elif kind == "pause" and up:
                pauses.append(Pause(rng.choice(up), start, round(end - start, 6)))
            elif kind == "partition":
                size = rng.randint(1, n - 1)
                side = tuple(sorted(rng.sample(range(1, n + 1), size)))
                partitions.append(Partition(start, end, (side,)))
            k += 1
    return FaultPlan(
        seed=seed,
        default=settings.default,
        links=dict(settings.links),
        reorder=settings.reorder,
        partitions=tuple(sorted(partitions, key=lambda p: p.start)),
        pauses=tuple(sorted(pauses, key=lambda p: (p.start, p.machine))),
        crashes=tuple(sorted(crashes, key=lambda c: (c.time, c.machine))),
    )


def applied_exactly(plan: FaultPlan, n: int) -> list[dict[str, Any]]:
    """What a driver that keeps the plan to the instant applied (the simulator does)."""
    out: list[dict[str, Any]] = []
    for pause in plan.pauses:
        out.append({"kind": "pause", "machine": pause.machine, "at": pause.start})
        out.append({"kind": "resume", "machine": pause.machine, "at": pause.end})
    for c in plan.crashes:
        out.append({"kind": "crash", "machine": c.machine, "at": c.time})
    out.extend(partitions_applied(plan, n, math.inf))
    return sorted(out, key=lambda x: (x["at"], x["kind"]))


def partitions_applied(plan: FaultPlan, n: int, until: float) -> list[dict[str, Any]]:
    """The cuts and heals due before ``until``: every machine applies them at send time by
    the plan's instants, so a run applies them exactly as planned (its ``fault`` lines say when
    each machine noticed)."""
    out: list[dict[str, Any]] = []
    for part in plan.partitions:
        if part.start < until:
            out.append({"kind": "partition", "groups": part.all_groups(n), "at": part.start})
        if part.end < until:
            out.append({"kind": "heal", "groups": part.all_groups(n), "at": part.end})
    return out


def merge_applied(*lists: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``faults.applied`` of several machines as one list: each fault once (the vms of a
    cluster each apply, and record, the same cuts and heals), in order of time."""
    import json

    seen: dict[str, dict[str, Any]] = {}
    for items in lists:
        for a in items:
            if isinstance(a, dict):
                seen.setdefault(json.dumps(a, sort_keys=True), a)
    return sorted(seen.values(), key=lambda a: (a.get("at", 0.0), str(a.get("kind"))))


# -- a message's fate ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Fate:
    """What happens to one message: dropped (``drop`` says why), or let into the receiver's
    queue at each time of ``arrivals`` (s since t0; two of them: it is duplicated).

    Times, not delays: a link's FIFO order is decided on these very numbers, and a delay
    added back to a send time need not give the same float.
    """

    drop: str | None
    arrivals: tuple[float, ...] = ()


class LinkFaults:
    """The fault model of one link as its sender sees it: one generator, the FIFO clamp."""

    __slots__ = ("src", "dst", "plan", "settings", "rng", "last_arrival", "_draw", "_marker_rng")

    def __init__(self, plan: FaultPlan, src: int, dst: int) -> None:
        self.src = src
        self.dst = dst
        self.plan = plan
        self.settings = plan.link(src, dst)
        self.rng = fault_rng(plan.seed, f"{src}->{dst}")
        self.last_arrival = -math.inf  # seconds since t0 (without reordering: never earlier)
        # Markers of snapshots (SPEC 12) draw their fates from a generator of their own: a
        # snapshot never changes what happens to the messages.
        self._marker_rng: random.Random | None = None
        s = self.settings
        mean = s.latency_ms / 1000.0
        self._draw: Callable[[random.Random], float]
        if mean == 0 or s.latency_dist == "constant":
            self._draw = lambda rng: mean
        elif s.latency_dist == "uniform":
            self._draw = lambda rng: rng.uniform(0.0, 2 * mean)
        else:
            self._draw = lambda rng: rng.expovariate(1.0 / mean)

    def marker_fate(self, t: float) -> Fate:
        """The fate of a snapshot's marker sent at ``t``: the link's faults, its FIFO order."""
        if self._marker_rng is None:
            self._marker_rng = fault_rng(self.plan.seed, f"marker:{self.src}->{self.dst}")
        return self.fate(t, self._marker_rng)

    def fate(self, t: float, rng: random.Random | None = None) -> Fate:
        """The fate of a message sent at ``t`` (seconds since t0).

        The draws are made in a fixed order whatever the outcome (loss, duplicate, the
        delays), so one message's fate never shifts the next one's draws.
        """
        s = self.settings
        rng = rng or self.rng
        lost = s.loss > 0 and rng.random() < s.loss
        dup = s.duplicate > 0 and rng.random() < s.duplicate
        delays = [self._draw(rng) for _ in range(2 if dup else 1)]
        crash = self.plan.crash_time(self.dst)
        if crash is not None and t >= crash:
            return Fate("crashed")
        part = self.plan.partition_at(t)
        if part is not None and part.cuts(self.src, self.dst):
            return Fate("partition")
        if lost:
            return Fate("loss")
        arrivals = [t + d for d in delays]
        if not self.plan.reorder:
            for k, at in enumerate(arrivals):  # a link stays FIFO: never before an earlier one
                if at < self.last_arrival:
                    arrivals[k] = at = self.last_arrival
                self.last_arrival = at
        return Fate(None, tuple(arrivals))


def link_faults(plan: FaultPlan, src: int, peers: Iterable[int]) -> dict[int, LinkFaults]:
    return {dst: LinkFaults(plan, src, dst) for dst in peers}
