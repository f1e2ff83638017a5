"""The shrunk counterexample of a student's report: ``lclock shrink`` on the first simulated
run whose finding costs points (SPEC 10.2, 11.1).

A student reads a two-machine, five-event story faster than a thirty-second run. The
shrink runs as every lclock of the battery does (the submission's user, limits, wall
time), on the run the battery already made; what it shows goes in report.html only, never
in the grades: a shrink that fails or finds nothing costs nothing and is said in one line.
Nothing kept names a path or a time, so a regrade gives the same page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lclock.grade.results import ItemResult, RunResult
from lclock.grade.rubric import Rubric
from lclock.impl.jail import User

#: Battery kinds whose runs are simulated, hence replayed exactly by ``lclock shrink``.
SIMULATED = ("sim", "mixed", "twice")
#: Lines of shrink's output that name its folders (another each grading): left out.
_PATH_LINES = ("shrink: ", "pictures: ", "run folder: ")
#: An event handler in a tag (``<svg onload=...>``), which lclock's pictures never have.
_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=")


@dataclass(frozen=True)
class Shrunk:
    """What the report shows: the run shrunk and its finding's rule; the diagram and the
    story, or ``problem`` (one line) when there are none."""

    label: str
    rule: str
    svg: str | None = None
    story: list[str] = field(default_factory=list)
    problem: str | None = None


def to_shrink(items: list[ItemResult], rubric: Rubric) -> tuple[RunResult, str] | None:
    """(the first simulated run with a finding that costs points, the rule to keep): a
    catalogue bug's finding before a plain rule's, as the bug is what the grade names."""
    for item in items:
        if item.kind not in SIMULATED or item.skipped is not None:
            continue
        for run in item.runs:
            if run.run_dir is None or run.failure is not None:
                continue
            rule = _costly_rule(run.findings, rubric)
            if rule is not None:
                return run, rule
    return None


def _costly_rule(findings: list[dict[str, Any]], rubric: Rubric) -> str | None:
    bugs = [f for f in findings if isinstance(f.get("bug"), str) and rubric.bug_cost(f["bug"]) > 0]
    rules = [f for f in findings if not isinstance(f.get("bug"), str)
             and rubric.rule_cost(str(f.get("rule"))) > 0]
    first = next(iter(bugs or rules), None)
    return None if first is None else str(first.get("rule"))


def shrink_first(items: list[ItemResult], rubric: Rubric, copy: Path, runs: Path,
                 user: User) -> Shrunk | None:
    """Shrink the first run to shrink (None: the rubric turns it off, or nothing costs)."""
    from lclock.grade.battery import lclock

    chosen = to_shrink(items, rubric) if rubric.shrink > 0 else None
    if chosen is None:
        return None
    run, rule = chosen
    out = runs / "shrunk"
    args = ["shrink", str(runs / str(run.run_dir)), "--rule", rule, "--budget",
            str(rubric.shrink), "--output", str(out)]
    code, stdout, stderr = lclock(args, copy, user)
    return read_shrunk(run.label, rule, code, stdout, stderr, (copy, runs))


def read_shrunk(label: str, rule: str, code: int, stdout: str, stderr: str,
                private: tuple[Path, ...] = ()) -> Shrunk:
    """The story.svg of the folder shrink names, and its printed story, path lines left
    out; or the one line saying why there is none (its folders' paths hidden)."""
    folder = _run_folder(stdout)
    svg = _svg(folder / "story.svg") if folder is not None else None
    story = [ln for ln in stdout.splitlines() if ln.strip() and not ln.startswith(_PATH_LINES)]
    if svg is not None and code == 0:
        return Shrunk(label, rule, svg, story)
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    why = lines[-1].strip() if lines else f"lclock shrink exited with code {code}"
    for path in private:
        why = why.replace(str(path), "<work>")
    return Shrunk(label, rule, problem=why[:300])


def _run_folder(stdout: str) -> Path | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith("run folder: "):
            return Path(line.removeprefix("run folder: ").strip())
    return None


def _svg(path: Path) -> str | None:
    """The picture, if it is the SVG shrink draws (lclock escapes every text in it; a
    script or a handler would not be ours, so such a file is not embedded)."""
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    low = text.lower()
    if not low.lstrip().startswith("<svg") or "<script" in low or _HANDLER.search(low):
        return None
    return text
