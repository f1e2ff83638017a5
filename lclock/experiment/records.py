"""The records of an experiment: what was asked for (Experiment) and what each trial did.

Layout of an experiment folder::

    experiment.json              what was asked for, how it ran (command, times, hosts)
    summary.json, summary.md     mean and 95% interval across trials, per experiment
    comparison.png               the figure across experiments
    plan.txt                     --plan only: one command per trial
    <name>/settings.toml         the resolved settings every trial of <name> ran with
    <name>/trial-<k>/            the run folder of trial k (run.json, machine-*.jsonl,
                                 report.html and its figures unless --no-report)

Folders of older versions, and trials run from ``--plan`` by ``lclock run --output
<name>/trial-<k>``, hold the run folder one level deeper (``<name>/trial-<k>/<run_id>/``);
``--summarize`` and ``lclock compare`` read both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lclock.settings import RunSettings

#: Per machine, for the slowest and the fastest machine of each trial.
MACHINE_METRICS = (
    "mean_jump", "max_jump", "drift_mean", "drift_max", "max_queue", "gap_fraction", "queue_growth",
)  # fmt: skip
#: Per run: highest minus lowest Lamport clock at the same moment.
RUN_METRICS = ("spread_mean", "spread_max")
ROLES = ("slowest", "fastest")


@dataclass
class Experiment:
    """One named experiment, resolved: the settings each of its trials runs with."""

    name: str
    description: str
    settings: RunSettings
    trials: int


@dataclass
class Trial:
    """One run of an experiment and what it measured."""

    experiment: str
    index: int
    seed: int
    status: str = "pending"
    exit_code: int | None = None
    run_dir: Path | None = None
    wall_seconds: float = 0.0
    rates: list[int] = field(default_factory=list)
    metrics: dict[str, Any] | None = None
    error: str | None = None
    host: str = ""

    @property
    def folder(self) -> str:
        return trial_folder(self.experiment, self.index)


def trial_folder(name: str, index: int) -> str:
    """A trial's folder, relative to the experiment folder."""
    return f"{name}/trial-{index}"


def roles(metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The slowest and the fastest machine of a run (ties: the lowest id is slowest, the
    highest id is fastest, so the two differ whenever there are two machines)."""
    ms = metrics["machines"]
    slow = min(ms, key=lambda m: (m["rate"], m["id"]))
    fast = max(ms, key=lambda m: (m["rate"], m["id"]))
    return {"slowest": slow, "fastest": fast}


def run_entry(metrics: dict[str, Any] | None, **fields: Any) -> dict[str, Any]:
    """One run's line of a summary: ``fields`` (trial, seed, status, run_dir, ...) and, for a
    run with metrics, its slowest and fastest machine, the spread and the saturated ids."""
    entry = dict(fields)
    if metrics is not None:
        for role, m in roles(metrics).items():
            entry[role] = {"id": m["id"], "rate": m["rate"],
                           **{k: m.get(k) for k in MACHINE_METRICS}}  # fmt: skip
        for k in RUN_METRICS:
            entry[k] = metrics.get(k)
        entry["saturated"] = list(metrics.get("saturated") or [])
    return entry
