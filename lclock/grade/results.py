"""What one battery run produced, as plain data: what the scoring reads and a worker returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunResult:
    """One run of an item (one seed), or the import of a folder of logs.

    ``failure`` is ``(kind, reason, where)`` with kind crash, hang or nondeterministic;
    ``findings`` are check --json's error findings, each with ``where`` added (the run's
    log line, or the student's own file and line for logs).
    """

    label: str
    run_dir: str | None = None
    failure: tuple[str, str, str] | None = None
    findings: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: CPU seconds its programs used, all together (run.json), for scheduling only: never
    #: in a grade (it varies from one grading to the next)
    cpu_s: float | None = None


@dataclass
class ItemResult:
    name: str
    kind: str
    points: float
    skipped: str | None = None
    runs: list[RunResult] = field(default_factory=list)
