"""One submission, graded: copied, built, run through the battery, scored, reported.

``grade_one`` is what a worker runs (a thread, a process of the pool, a Dask task): it
takes a folder and returns the submission's files as bytes, so that where it ran changes
nothing in what is written.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lclock.grade.battery import program_run, run_item
from lclock.grade.build import run_build
from lclock.grade.lanes import Lanes, hung_idle, runs_at_once, tasks_of, waits_on_the_clock
from lclock.grade.report import student_page
from lclock.grade.results import ItemResult
from lclock.grade.rubric import Rubric
from lclock.grade.score import Test, bugs_of, rules_of, score_item
from lclock.grade.shrunk import Shrunk, shrink_first
from lclock.grade.submission import Submission, read_submission
from lclock.grade.workspace import end_processes, prepare, too_big, user_for, work_prefix
from lclock.impl.jail import User


@dataclass
class Graded:
    """A graded submission: its row of grades.csv and its files (path in its folder -> bytes)."""

    name: str
    score: float
    max_score: float
    status: str
    bugs: list[str]
    files: dict[str, bytes] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        from lclock.grade.score import _num

        return {"submission": self.name, "score": _num(self.score),
                "max_score": _num(self.max_score), "status": self.status,
                "bugs": ";".join(self.bugs)}


def grade_one(folder: Path, index: int, rubric: Rubric, hide: tuple[str, ...] = (),
              lanes: Lanes | None = None) -> Graded:
    """Grade the submission in ``folder`` (number ``index`` of the class: its user); its
    programs never see the folders ``hide``; ``lanes`` say when it may use the CPU (other
    submissions graded at once share them; none: its own)."""
    lanes = lanes or Lanes(1)
    sub = read_submission(folder)
    if sub.problem is not None:
        return _bad(sub, rubric, sub.problem, "no-config" if "missing" in sub.problem else "bad-config")
    big = too_big(folder)
    if big is not None:
        return _bad(sub, rubric, big, "too-big")
    user = user_for(index, hide)
    with tempfile.TemporaryDirectory(prefix=work_prefix()) as tmp:
        Path(tmp).chmod(0o711)
        try:
            return _graded_in(folder, Path(tmp), sub, index, rubric, user, lanes)
        finally:
            end_processes(user)  # what a run left (a fork bomb's children, a hidden session)


def _graded_in(folder: Path, tmp: Path, sub: Submission, index: int, rubric: Rubric,
               user: User, lanes: Lanes) -> Graded:
    """The build, the battery, its scores and the shrunk counterexample, in the work folder
    ``tmp``."""
    with lanes.lane(clock=False):
        copy, runs = prepare(folder, tmp / "w", user)
        problem = run_build(sub.build, copy, user, str(index)) if sub.build else None
        end_processes(user)  # what the build left
    if problem is not None:
        return _bad(sub, rubric, problem, "build-failed", dropped=user.uid >= 0)
    items = battery(rubric, sub, copy, runs, user, lanes)
    with lanes.lane(clock=False):
        tests = [score_item(i, rubric) for i in items]
        shrunk = shrink_first(items, rubric, copy, runs, user)
        return _graded(sub, tests, items, runs, user.uid >= 0, shrunk)


def battery(rubric: Rubric, sub: Submission, copy: Path, runs: Path, user: User,
            lanes: Lanes) -> list[ItemResult]:
    """Every item of the rubric for the submission's kind, in order, a run at a time; a run
    that waits on the clock holds no CPU lane, and once a run hung idle, the rest are made
    a few at once (lclock.grade.lanes)."""
    todo = [item for item in rubric.items if item.applies_to(sub.kind)]
    if sub.impl is None:  # a folder of logs: one import and check per item
        out = []
        for item in todo:
            with lanes.lane(clock=False):
                out.append(run_item(item, sub, copy, runs, user))
        return out
    items, tasks = tasks_of(todo)
    for n, (result, item, seed) in enumerate(tasks):
        if hung_idle(items):
            runs_at_once(tasks[n:], lambda i, s: program_run(i, sub, s, copy, runs, user))
            break
        with lanes.lane(clock=waits_on_the_clock(item, items)):
            result.runs.append(program_run(item, sub, seed, copy, runs, user))
        end_processes(user)  # what one run left must not weigh on the next
    return items


def _graded(sub: Submission, tests: list[Test], items: list[Any], runs: Path,
            dropped: bool, shrunk: Shrunk | None = None) -> Graded:
    score = sum(t.score for t in tests)
    top = sum(t.max_score for t in tests)
    failed = any(c.key in ("crash", "hang") for t in tests for c in t.charges)
    status = "failed-runs" if failed else "full-marks" if score >= top else "deductions"
    g = Graded(sub.name, score, top, status, bugs_of(tests))
    g.files["results.json"] = results_json(g, tests, sub, dropped)
    g.files["report.html"] = student_page(g.row(), tests, items, runs, rules_of(tests),
                                          shrunk).encode()
    return g


def _bad(sub: Submission, rubric: Rubric, problem: str, status: str,
         dropped: bool = False) -> Graded:
    """A submission that never ran: every point of its kind lost, with the reason;
    ``dropped``: its build ran as a user of its own (the summary says so when not)."""
    kind = "logs" if sub.imports else "program"
    top = rubric.max_score(kind)
    tests = [Test("submission", 0.0, top, problem)]
    g = Graded(sub.name, 0.0, top, status, [])
    g.files["results.json"] = results_json(g, tests, sub, dropped)
    g.files["report.html"] = student_page(g.row(), tests, [], None, []).encode()
    return g


def results_json(g: Graded, tests: list[Test], sub: Submission, dropped: bool) -> bytes:
    """Gradescope's results.json (score, tests with name, score, max_score, output)."""
    from lclock.grade.score import _num

    data = {"score": _num(g.score), "output": _summary(g, sub, dropped),
            "tests": [t.to_json() for t in tests]}
    return (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode()


def _summary(g: Graded, sub: Submission, dropped: bool) -> str:
    what = f"program: {sub.impl}" if sub.impl else "text logs" if sub.imports else "no submission"
    text = f"{g.name} ({what}): {g.status}"
    if g.bugs:
        text += "; found: " + ", ".join(g.bugs)
    if sub.impl and not dropped:
        text += " (graded as lclock's own user, not root: no user of its own)"
    return text
