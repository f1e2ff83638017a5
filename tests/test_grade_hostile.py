"""Hostile submissions, graded for what they did while the grading goes on (SPEC 11).

A hang, a crash, a fork bomb, a flood of output, a full disk, an intruder that tries to read
and write the other submissions and the grader's output, and a program that leaves a child
in a session of its own, in one class with a correct program, graded with --jobs 2. Then
the same grades, byte for byte, whatever --jobs.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import psutil
import pytest
from grade_fixtures import RUBRIC, csv_rows, grade, make_class

from lclock.grade.workspace import BLOCK, first_uid

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

HOSTILE = ["good", "hang", "crash", "forkbomb", "flood", "filldisk", "intruder", "orphan"]


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def submission_processes(grader: int) -> list[int]:
    """Live processes of the submissions of the grading whose pid is ``grader`` (the uids of
    its block: another test's grading, on another worker, has its own); a zombie is dead,
    waiting for a parent that is not lclock's to reap it."""
    first = first_uid(grader)
    return [p.pid for p in psutil.process_iter(["uids", "status"])
            if p.info["uids"] is not None and first <= p.info["uids"].real < first + BLOCK
            and p.info["status"] != psutil.STATUS_ZOMBIE]


def test_hostile_submissions_are_graded_and_harm_nothing(tmp_path: Path) -> None:
    classdir = make_class(tmp_path / "class", HOSTILE)
    out = tmp_path / "out"
    # the intruder's aims: another submission, the class, the grader's output (their modes
    # let anyone read them: only the jail keeps it out)
    (classdir / "intruder" / "targets.txt").write_text("\n".join(
        str(p) for p in (classdir / "good" / "vm.py", classdir / "good", classdir,
                         out / "rubric.toml", out, out / "good")) + "\n")
    for p in (tmp_path, classdir, *classdir.iterdir()):
        p.chmod(0o755)
    before = tree_digest(classdir)
    p = grade(str(classdir), "--rubric", str(RUBRIC), "--output", str(out), "--jobs", "2",
              cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    rows = csv_rows(out)
    assert set(rows) == set(HOSTILE)
    assert rows["good"]["score"] == rows["orphan"]["score"] == "100"
    assert rows["hang"]["bugs"] == "hang" and rows["crash"]["bugs"] == "crash"
    for name in ("hang", "crash", "forkbomb", "flood", "filldisk"):
        assert rows[name]["status"] == "failed-runs" and rows[name]["score"] == "0", name
    assert "File too large" in (out / "filldisk" / "results.json").read_text()
    if os.geteuid() == 0:  # full marks: it reached none of its aims (else it crashes)
        assert rows["intruder"]["score"] == "100", (out / "intruder" / "results.json").read_text()
    assert tree_digest(classdir) == before
    assert not list(out.rglob("intruder-was-here"))
    assert submission_processes(p.pid) == []  # the orphan's child and the bomb's are gone


def test_the_grades_are_the_same_bytes_whatever_the_jobs(tmp_path: Path) -> None:
    classdir = make_class(tmp_path / "class", ["good", "buggy", "crash", "logs-buggy",
                                               "no-config"])
    outs = []
    for jobs in ("1", "3"):
        out = tmp_path / f"out-{jobs}"
        p = grade(str(classdir), "--rubric", str(RUBRIC), "--output", str(out), "--jobs", jobs,
                  "--quiet", cwd=tmp_path)
        assert p.returncode == 0, p.stderr
        outs.append(out)
    one, three = (tree_digest(o) for o in outs)
    assert list(one) == list(three)
    for name in one:
        if name.endswith((".csv", ".json")):
            assert one[name] == three[name], name


def test_reference_programs_in_other_languages_get_full_marks(tmp_path: Path) -> None:
    """C (built by the submission's build line, as its user), JavaScript for node, and
    Python named ``python`` (which may be an interpreter only root can reach)."""
    import shutil

    from grade_fixtures import REPO

    if shutil.which("cc") is None or shutil.which("node") is None:
        pytest.skip("needs cc and node")
    classdir = tmp_path / "class"
    for name, source, toml in (
            ("c", "c/vm.c", 'impl = "./vm"\nbuild = "cc -O2 -o vm vm.c"\n'),
            ("node", "node/vm.js", 'impl = "node vm.js"\n'),
            ("python", "python/vm.py", 'impl = "python vm.py"\n')):  # "python", not python3
        (classdir / name).mkdir(parents=True)
        shutil.copy(REPO / "examples" / "impl" / source, classdir / name)
        (classdir / name / "lclock.toml").write_text(toml)
    classdir.chmod(0o700)
    p = grade(str(classdir), "--rubric", str(RUBRIC), "--output", str(tmp_path / "out"),
              "--jobs", "2", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    rows = csv_rows(tmp_path / "out")
    assert {n: (r["score"], r["status"]) for n, r in rows.items()} == \
        {"c": ("100", "full-marks"), "node": ("100", "full-marks"),
         "python": ("100", "full-marks")}
