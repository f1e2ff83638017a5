"""Physical clocks that can be wrong, and the hybrid logical clock (SPEC section 7).

Every machine reads its own physical clock: the host's time, plus an offset, plus a rate
error (drift) accumulated since the start, plus the bumps (sudden jumps, Jepsen's clock
nemesis) that have happened. ``ClockPlan`` holds those per machine, drawn from a generator
of their own (never the machines'), so a seed repeats them and the dice stay the same.

The hybrid logical clock is that of Kulkarni et al., "Logical Physical Clocks" (2014),
algorithm in Figure 5: a pair (l, c) where l follows the largest physical time heard of
and c counts events that happened while l stood still. Here l is in microseconds. The
update functions are pure and take the physical reading as an argument.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

US = 1_000_000


@dataclass(frozen=True)
class Bump:
    """Machine ``machine``'s clock jumps by ``ms`` (may be negative) at ``time`` s after t0."""

    machine: int
    time: float
    ms: float

    def to_json(self) -> dict[str, Any]:
        return {"machine": self.machine, "time": self.time, "ms": self.ms}


@dataclass(frozen=True)
class ClockSettings:
    """The physical clocks as the user asked for them (settings and flags)."""

    skew_ms: float = 0.0
    drift_ppm: float = 0.0
    offsets_ms: tuple[float, ...] | None = None
    drifts_ppm: tuple[float, ...] | None = None
    bumps: tuple[Bump, ...] = ()
    hlc: bool = True

    @property
    def wrong(self) -> bool:
        """Some machine's physical clock differs from the host's."""
        return bool(self.skew_ms or self.drift_ppm or self.offsets_ms or self.drifts_ppm or self.bumps)

    def to_json(self) -> dict[str, Any]:
        return {
            "skew_ms": self.skew_ms, "drift_ppm": self.drift_ppm,
            "offsets_ms": list(self.offsets_ms) if self.offsets_ms is not None else None,
            "drifts_ppm": list(self.drifts_ppm) if self.drifts_ppm is not None else None,
            "bumps": [b.to_json() for b in self.bumps], "hlc": self.hlc,
        }


@dataclass(frozen=True)
class ClockPlan:
    """Every machine's physical clock: offsets (µs), drifts (ppm) and bumps, resolved."""

    offsets_us: tuple[int, ...]
    drifts_ppm: tuple[float, ...]
    bumps: tuple[Bump, ...] = ()

    def reading(self, machine: int, host: float, t0: float) -> int:
        """Machine ``machine``'s physical clock at host time ``host`` (epoch s), in µs."""
        since = host - t0
        us = round(host * US) + self.offsets_us[machine - 1]
        us += round(self.drifts_ppm[machine - 1] * since)  # ppm x seconds = µs
        for b in self.bumps:
            if b.machine == machine and since >= b.time:
                us += round(b.ms * 1000)
        return us

    def bound_us(self, duration: float) -> int:
        """How far an HLC's l may run ahead of its own machine's physical clock (SPEC 7.4).

        l only ever takes a physical reading of some machine, carried forward. So l - pt is
        at most the largest lead one machine's clock had over another's at one moment (the
        readings are piecewise linear in host time, so the corners suffice: the start, the
        end, each side of each bump), plus what a machine's own backward bumps took away
        from its later readings.
        """
        n = len(self.offsets_us)
        corners = {0.0, duration}
        for b in self.bumps:
            corners.update((max(0.0, b.time - 1e-9), b.time))
        spread = 0
        for t in corners:
            readings = [self.reading(i, t, 0.0) for i in range(1, n + 1)]
            spread = max(spread, max(readings) - min(readings))
        back = max((sum(-round(b.ms * 1000) for b in self.bumps if b.machine == i and b.ms < 0)
                    for i in range(1, n + 1)), default=0)
        return spread + back + 1  # + 1 µs of rounding

    def to_json(self) -> dict[str, Any]:
        return {"offsets_us": list(self.offsets_us), "drifts_ppm": list(self.drifts_ppm),
                "bumps": [b.to_json() for b in self.bumps]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClockPlan:
        return cls(tuple(int(x) for x in data["offsets_us"]),
                   tuple(float(x) for x in data["drifts_ppm"]),
                   tuple(Bump(int(b["machine"]), float(b["time"]), float(b["ms"]))
                         for b in data.get("bumps", [])))


def resolve_clocks(settings: ClockSettings, n: int, seed: int) -> ClockPlan:
    """Offsets and drifts: fixed per machine, or drawn uniformly (offset in ±skew/2, drift
    in ±drift) from the clocks' own generator."""
    rng = random.Random(f"lclock:clocks:{seed}")
    draws = [(rng.uniform(-0.5, 0.5), rng.uniform(-1.0, 1.0)) for _ in range(n)]
    offsets = (tuple(round(ms * 1000) for ms in settings.offsets_ms) if settings.offsets_ms is not None
               else tuple(round(u * settings.skew_ms * 1000) for u, _ in draws))
    drifts = (tuple(settings.drifts_ppm) if settings.drifts_ppm is not None
              else tuple(d * settings.drift_ppm for _, d in draws))
    return ClockPlan(offsets, drifts, tuple(sorted(settings.bumps, key=lambda b: (b.time, b.machine))))


# -- the hybrid logical clock (Kulkarni et al. 2014, Figure 5) ------------------------------------


def hlc_local(l: int, c: int, pt: int) -> tuple[int, int]:  # noqa: E741 - the paper's names
    """Send or local event: l' = max(l, pt); c' = c + 1 if l' = l, else 0."""
    new_l = max(l, pt)
    return new_l, (c + 1 if new_l == l else 0)


def hlc_receive(l: int, c: int, lm: int, cm: int, pt: int) -> tuple[int, int]:  # noqa: E741
    """Receive of (lm, cm): l' = max(l, lm, pt); c' = max(c, cm) + 1 if l' = l = lm;
    c + 1 if l' = l only; cm + 1 if l' = lm only; else 0."""
    new_l = max(l, lm, pt)
    if new_l == l and new_l == lm:
        return new_l, max(c, cm) + 1
    if new_l == l:
        return new_l, c + 1
    if new_l == lm:
        return new_l, cm + 1
    return new_l, 0
