"""From a run's settings to what every driver runs: one plan per machine.

The launcher, the simulator and the TCP vm all start from ``RunSettings`` and a seed; here
the fault plan (with the nemesis's draws) and the clock plan are resolved once, from the
seed, and every machine gets the same ones. What run.json records of them is made here
too, so every writer of a run folder records the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lclock.core.clocks import ClockPlan, resolve_clocks
from lclock.core.faults import FaultPlan, resolve_plan
from lclock.core.node import MachinePlan
from lclock.settings import RunSettings


@dataclass(frozen=True)
class RunPlan:
    run_id: str
    seed: int
    settings: RunSettings
    faults: FaultPlan | None
    clocks: ClockPlan | None
    #: Every machine's rate fixed by the coordinator (``lclock vm``); None: as the settings say.
    rates: tuple[int, ...] | None = None

    def machine(self, i: int) -> MachinePlan:
        s = self.settings
        return MachinePlan(
            machine_id=i, n=s.machines, run_id=self.run_id, seed=self.seed, duration=s.duration,
            rate_min=s.rate_min, rate_max=s.rate_max, rates=self.rates or s.rates,
            dice_sides=s.dice_sides, vector=s.vector_clocks, faults=self.faults,
            hlc=s.clocks.hlc, clocks=self.clocks, snapshots=s.snapshots, mutant=s.mutant,
        )

    def run_json(self) -> dict[str, Any]:
        """What run.json records of the plans (SPEC 6.7 and 7.1)."""
        out: dict[str, Any] = {}
        if self.faults is not None:
            out["faults"] = {"plan": self.faults.to_json(), "applied": []}
        s = self.settings
        clocks: dict[str, Any] = {"kept": ["lamport", *(["vector"] if s.vector_clocks else []),
                                           *(["hlc"] if s.clocks.hlc else [])],
                                  "pt": s.clocks.hlc or self.clocks is not None}
        if self.clocks is not None:
            clocks["plan"] = self.clocks.to_json()
            clocks["hlc_bound_us"] = self.clocks.bound_us(s.duration)
        out["clocks"] = clocks
        return out


def plan_run(settings: RunSettings, run_id: str, seed: int,
             rates: tuple[int, ...] | None = None) -> RunPlan:
    n, duration = settings.machines, settings.duration
    faults = resolve_plan(settings.faults, n, duration, seed) if settings.faults.any else None
    clocks = resolve_clocks(settings.clocks, n, seed) if settings.clocks.wrong else None
    return RunPlan(run_id, seed, settings, faults, clocks, rates)
