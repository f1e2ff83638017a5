"""lclock grade through the real command: a small class, its outputs, bad input (SPEC 11)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import psutil
import pytest
from grade_fixtures import REPO, csv_rows, grade, make_class

from tests.conftest import started, wait_for

QUICK = REPO / "tests" / "data" / "grade-quick-rubric.toml"
SHRINK = REPO / "tests" / "data" / "grade-shrink-rubric.toml"

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("grade")
    make_class(tmp / "class", ["good", "buggy", "logs-good", "logs-buggy", "no-config",
                               "bad-config"])
    p = grade(str(tmp / "class"), "--rubric", str(QUICK), "--output", str(tmp / "out"), cwd=tmp)
    assert p.returncode == 0, p.stderr
    return tmp / "out", p.stdout


@pytest.mark.slow
def test_the_gradebook_has_a_row_per_submission(graded: tuple[Path, str]) -> None:
    out, _ = graded
    rows = csv_rows(out)
    assert list(rows) == ["bad-config", "buggy", "good", "logs-buggy", "logs-good", "no-config"]
    assert (rows["good"]["score"], rows["good"]["max_score"], rows["good"]["status"]) == \
        ("100", "100", "full-marks")
    assert rows["logs-good"]["score"] == "100"
    assert int(rows["buggy"]["score"]) < 100 and rows["buggy"]["status"] == "deductions"
    assert rows["buggy"]["bugs"] and not rows["good"]["bugs"]  # rule:lamport, or its bug
    assert int(rows["logs-buggy"]["score"]) < 100
    assert rows["no-config"]["status"] == "no-config" and rows["no-config"]["score"] == "0"
    assert rows["bad-config"]["status"] == "bad-config"


@pytest.mark.slow
def test_gradescope_results_name_the_rule_and_where_it_shows(graded: tuple[Path, str]) -> None:
    out, _ = graded
    res = json.loads((out / "buggy" / "results.json").read_text())
    assert res["score"] == sum(t["score"] for t in res["tests"])
    assert all({"name", "score", "max_score", "output"} <= set(t) for t in res["tests"])
    lost = [t for t in res["tests"] if t["score"] < t["max_score"]]
    assert lost and "rule lamport" in lost[0]["output"]
    assert "first at sim-1/machine-" in res["tests"][0]["output"]  # the run's log line
    logs = json.loads((out / "logs-buggy" / "results.json").read_text())
    assert "first at machine-1.log:" in logs["tests"][0]["output"]  # the student's own line
    bad = json.loads((out / "bad-config" / "results.json").read_text())
    assert "lclock.toml: impl: expected a command line" in bad["tests"][0]["output"]


@pytest.mark.slow
def test_reports_and_the_class_summary(graded: tuple[Path, str]) -> None:
    out, stdout = graded
    page = (out / "buggy" / "report.html").read_text()
    assert "Space-time diagram" in page and "data:image/png;base64," in page
    assert "rule lamport" in page
    summary = (out / "summary.html").read_text()
    assert "data:image/png;base64," in summary and "buggy/report.html" in summary
    assert "[6/6]" in stdout and "left" in stdout


@pytest.mark.slow
def test_resume_grades_only_what_is_not_graded(graded: tuple[Path, str], tmp_path: Path) -> None:
    out, _ = graded
    before = (out / "grades.csv").read_bytes()
    (out / "logs-good" / "grade.json").unlink()
    p = grade(str(out.parent / "class"), "--rubric", str(QUICK), "--output", str(out),
              "--resume", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "grading 1 of 6" in p.stdout and "logs-good" in p.stdout and "buggy" not in p.stdout
    assert (out / "grades.csv").read_bytes() == before


@pytest.mark.slow
def test_an_earlier_grading_is_not_overwritten(graded: tuple[Path, str], tmp_path: Path) -> None:
    out, _ = graded
    before = (out / "grades.csv").read_bytes()
    p = grade(str(out.parent / "class"), "--rubric", str(QUICK), "--output", str(out), cwd=tmp_path)
    assert p.returncode == 2 and "--output" in p.stderr and "--resume" in p.stderr
    p = grade(str(out.parent / "class"), "--output", str(out), "--resume", cwd=tmp_path)
    assert p.returncode == 2 and "another rubric" in p.stderr
    assert (out / "grades.csv").read_bytes() == before


@pytest.mark.slow
def test_the_buggy_report_shows_its_shrunk_bug_the_same_whatever_the_jobs(tmp_path: Path) -> None:
    """The shrunk run's diagram (inline SVG) and story name the bug; the good program has
    none; two gradings with other --jobs write the same bytes (no path, no time)."""
    make_class(tmp_path / "class", ["good", "buggy"])
    outs = []
    for jobs in ("2", "1"):
        out = tmp_path / f"out{jobs}"
        p = grade("class", "--rubric", str(SHRINK), "--jobs", jobs, "--output", str(out),
                  cwd=tmp_path)
        assert p.returncode == 0, p.stderr
        outs.append(out)
    page = (outs[0] / "buggy" / "report.html").read_text()
    shrunk = page.split("Shrunk counterexample: sim, seed 1 (bug)", 1)[1].split("<h2>", 1)[0]
    assert "<svg xmlns" in shrunk and "</svg>" in shrunk
    story = shrunk.split("<pre>", 1)[1]
    assert story.startswith("smallest run: 2 machines")
    assert "bug receive-ignores-message" in story and "receive from" in story
    assert str(tmp_path) not in page and "/tmp" not in page
    good = (outs[0] / "good" / "report.html").read_text()
    assert "shrunk counterexample" not in good.lower() and "<svg" not in good
    for name in ("grades.csv", "buggy/results.json", "buggy/report.html", "good/report.html"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


def test_a_folder_of_logs_and_one_without_lclock_toml(tmp_path: Path) -> None:
    """The quick one (no program runs): import, check, score, and a clear line."""
    make_class(tmp_path / "class", ["logs-good", "no-config"])
    (tmp_path / "class" / "notes.txt").write_text("not a submission")
    (tmp_path / "class" / ".git").mkdir()
    (tmp_path / "class" / ".DS_Store").write_text("")
    p = grade("class", "--rubric", str(QUICK), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "left out 'notes.txt': not a folder, not a submission" in p.stdout
    assert "left out '.git': a hidden folder, not a submission" in p.stdout  # none silently
    assert ".DS_Store" not in p.stdout
    for extra in ([], ["--resume"]):  # the second time, "out" is there: not a submission
        p = grade(".", "--rubric", str(QUICK), "--output", "out", *extra, cwd=tmp_path / "class")
        assert p.returncode == 0, p.stderr
    assert "left out 'out': it holds the grades" in p.stdout and "grading 0 of 2" in p.stdout
    assert set(csv_rows(tmp_path / "class" / "out")) == {"logs-good", "no-config"}
    out = tmp_path / "output" / "grade-class"
    rows = csv_rows(out)
    assert rows["logs-good"]["score"] == rows["logs-good"]["max_score"] == "100"
    assert rows["no-config"]["status"] == "no-config"
    res = json.loads((out / "no-config" / "results.json").read_text())
    assert res["score"] == 0 and "lclock.toml: missing" in res["tests"][0]["output"]


def test_a_folder_named_as_a_file_of_the_gradebook_is_left_out_with_a_line(
        tmp_path: Path) -> None:
    """A folder named rubric.toml stopped the grading with a traceback (its results could
    not be written where the rubric's copy is), and one named grades.csv would have taken
    the gradebook's place."""
    make_class(tmp_path / "class", ["no-config"])
    for name in ("rubric.toml", "grades.csv", "summary.html"):
        (tmp_path / "class" / name).mkdir()
    p = grade("class", "--rubric", str(QUICK), "--output", "out", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    for name in ("rubric.toml", "grades.csv", "summary.html"):
        assert f"left out '{name}': the name of a file of the gradebook" in p.stdout
    assert set(csv_rows(tmp_path / "out")) == {"no-config"}
    assert (tmp_path / "out" / "rubric.toml").is_file()


@pytest.mark.parametrize(("args", "words"), [
    (["nowhere"], "SUBMISSIONS_DIR: nowhere is not a folder"),
    ([".", "--jobs", "0"], "--jobs"),
    ([".", "--rubric", "missing.toml"], "--rubric: cannot read"),
    ([".", "--jobs", "2", "--cluster", "tcp://x:1"], "not allowed with"),
    (["/"], "SUBMISSIONS_DIR: / holds the temporary folder"),
])
def test_bad_input_is_one_line_and_creates_nothing(tmp_path: Path, args: list[str],
                                                   words: str) -> None:
    p = grade(*args, cwd=tmp_path)
    assert p.returncode == 2
    assert words in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "output").exists()


def test_a_bad_rubric_key_is_named(tmp_path: Path) -> None:
    (tmp_path / "r.toml").write_text('[battery.sim]\nkind = "sim"\npoints = "ten"\n')
    p = grade(".", "--rubric", "r.toml", cwd=tmp_path)
    assert p.returncode == 2 and "r.toml: battery.sim.points: expected a number" in p.stderr


def programs_running(proc: psutil.Process, seen: set[int], count: int = 1) -> bool:
    """Whether ``count`` hostile programs run below ``proc``; every descendant is noted."""
    found = 0
    with contextlib.suppress(psutil.Error):
        for kid in proc.children(recursive=True):
            seen.add(kid.pid)
            with contextlib.suppress(psutil.Error):
                found += "hostile.py" in " ".join(kid.cmdline())
    return found >= count


def alive(pids: set[int]) -> list[int]:
    out = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
    return out


@pytest.mark.timeout(120)
def test_ctrl_c_stops_the_grading_and_every_run(tmp_path: Path) -> None:
    """The battery's lclock processes are in sessions of their own (a Ctrl-C at the terminal
    does not reach them): the grader kills them, and their programs die with them."""
    classdir = make_class(tmp_path / "class", ["hang", "good"])
    rubric = tmp_path / "slow.toml"  # a hang is found after 1000 s: only a kill ends it sooner
    rubric.write_text('[battery.sim]\nkind = "sim"\npoints = 1\nargs = ["--impl-timeout", "100"]\n')
    cmd = [sys.executable, "-m", "lclock", "grade", str(classdir), "--rubric", str(rubric),
           "--jobs", "2", "--output", str(tmp_path / "out")]
    seen: set[int] = set()
    with started(cmd, tmp_path) as proc:
        me = psutil.Process(proc.pid)
        assert wait_for(lambda: programs_running(me, seen), 60)
        os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(timeout=60)
        err = proc.stderr.read().decode() if proc.stderr else ""
        assert code == 130, err
        assert "stopped: " in err and "the others with --resume" in err, err  # never silent
    assert wait_for(lambda: not alive(seen), 15), alive(seen)


@pytest.mark.timeout(120)
def test_a_killed_grader_takes_every_run_along(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL, which the grader cannot answer: its runs die with it, their programs too."""
    # a temporary folder of its own: a grading of another test at once sweeps a dead
    # grader's work folder from the shared one, before this test could see it was left
    base = Path(tempfile.mkdtemp(prefix="lclock-test-killed-"))
    base.chmod(0o711)  # as root, the submission's user passes through to its copy
    monkeypatch.setenv("TMPDIR", str(base))
    try:
        _killed_grader(tmp_path, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _killed_grader(tmp_path: Path, base: Path) -> None:
    classdir = make_class(tmp_path / "class", ["hang"])
    rubric = tmp_path / "slow.toml"  # a hang is found after 1000 s: only a kill ends it sooner
    rubric.write_text('[battery.sim]\nkind = "sim"\npoints = 1\nargs = ["--impl-timeout", "100"]\n')
    cmd = [sys.executable, "-m", "lclock", "grade", str(classdir), "--rubric", str(rubric),
           "--output", str(tmp_path / "out")]
    seen: set[int] = set()
    with started(cmd, tmp_path) as proc:
        assert wait_for(lambda: programs_running(psutil.Process(proc.pid), seen, 3), 60)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    # each watchdog is a Python process to start on a loaded machine: a minute, not 15 s
    assert wait_for(lambda: not alive(seen), 60), alive(seen)
    # its work folder stays (nothing ran to remove it) until the next grading sweeps it
    left = list(base.glob(f"lclock-grade-{proc.pid}-*"))
    assert left
    make_class(tmp_path / "next", ["no-config"])
    assert grade("next", "--quiet", cwd=tmp_path).returncode == 0
    assert not [p for p in left if p.exists()]


def test_a_class_larger_than_a_block_of_users_is_refused(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Submission i ran as uid base + i mod 10,000: the 10,001st shared the first's user."""
    from lclock.cli import main
    from lclock.grade import workspace

    monkeypatch.setattr(workspace, "BLOCK", 2)
    for name in ("a", "b", "c"):
        (tmp_path / "class" / name).mkdir(parents=True)
    assert main(["grade", str(tmp_path / "class"), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "3 submissions; lclock grade takes at most 2 at once" in err
    assert not (tmp_path / "out").exists()
