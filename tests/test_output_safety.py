"""What the analysis commands write never destroys a run folder, and a failed write leaves
nothing half-done (started as the real programs).

An ``--output`` may never replace a run.json or a machine log, nor land in another run's
folder; a report on a full disk is one line naming the file and leaves no partial report;
a spare file that a folder forbids removing is named. ``lclock merge`` gives run and sim
folders their real status and refuses logs it cannot place.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import fill, started, tmpfs

pytestmark = pytest.mark.slow  # long real-process runs: once, on py311 (tox.ini)

REPO = Path(__file__).resolve().parent.parent


def lclock(*args: str, timeout: float = 180) -> tuple[int, str, str]:
    with started([sys.executable, "-m", "lclock", *args], REPO) as p:
        out, err = p.communicate(timeout=timeout)
    return p.returncode, out.decode(), err.decode()


def refused(rc: int, err: str, command: str, *texts: str) -> None:
    assert rc == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"lclock {command}: error: "), err
    for t in texts:
        assert t in err, err


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


def sim(out: Path, *extra: str) -> Path:
    rc, _, err = lclock("sim", "--rates", "1,3,6", "--duration", "20", "--quiet", "--output",
                        str(out), *extra)
    assert rc == 0, err
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("runs")
    return sim(base / "a", "--seed", "1"), sim(base / "b", "--seed", "2")


@pytest.mark.parametrize("args,what", [
    (["view", "{run}", "--output", "{run}/run.json"], "run.json"),
    (["export", "--format", "csv", "{run}", "--output", "{run}/machine-2.jsonl"], "machine-2.jsonl"),
    (["export", "--format", "shiviz", "{run}", "-o", "{run}/machine-9.jsonl"], "machine-9.jsonl"),
    (["analyze", "{run}", "--output", "{run}/machine-3.jsonl"], "machine-3.jsonl"),
    (["export", "--format", "csv", "{run}", "--output", "{other}/machine-1.jsonl"], "machine-1.jsonl"),
    (["export", "--format", "csv", "{run}", "--output", "{other}/events.csv"], "another run's folder"),
    (["analyze", "{run}", "--output", "{other}/summary.json"], "another run's folder"),
    (["view", "{run}", "--output", "{other}/explorer.html"], "another run's folder"),
    (["report", "{run}", "--output", "{other}"], "another run's folder"),
    (["view", "{run}", "--output", "{run}/link.html"], "run.json"),
])
def test_outputs_never_destroy_a_run_folder(runs: tuple[Path, Path], tmp_path: Path,
                                            args: list[str], what: str) -> None:
    run, other = tmp_path / "run", tmp_path / "other"
    shutil.copytree(runs[0], run)
    shutil.copytree(runs[1], other)
    (run / "link.html").symlink_to(other / "run.json")
    before = digest(run), digest(other)
    filled = [a.format(run=run, other=other) for a in args]
    rc, out, err = lclock(*filled)
    refused(rc, err, args[0], what)
    assert out == ""  # refused before the work, not after it
    assert (digest(run), digest(other)) == before
    assert sorted(p.name for p in other.iterdir()) == sorted(before[1])


def test_outputs_into_the_runs_own_folder_and_elsewhere_still_work(runs: tuple[Path, Path],
                                                                   tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(runs[0], run)
    for args in (["export", "--format", "csv", str(run)], ["analyze", str(run)],
                 ["view", str(run)], ["report", str(run)],
                 ["export", "--format", "csv", str(run), "-o", str(tmp_path / "x.csv")],
                 ["report", str(run), "-o", str(tmp_path / "new" / "deeper")],
                 ["export", "--format", "csv", str(run), "-o", os.devnull]):
        rc, _, err = lclock(*args)
        assert rc == 0, f"{args}: {err}"
    assert {"events.csv", "summary.json", "explorer.html", "report.html"} <= set(digest(run))
    assert (tmp_path / "new" / "deeper" / "report.html").is_file()


def test_full_disk_leaves_no_partial_report_and_names_the_file(runs: tuple[Path, Path],
                                                                tmp_path: Path) -> None:
    """Once: "cannot write : No space left on the device" (no name) and four PNGs without a
    report.html. Now: the file named, and the folder as it was (an earlier report kept)."""
    with tmpfs(tmp_path / "disk", "4m") as disk:
        run = disk / "run"
        shutil.copytree(runs[0], run)
        (run / "report.html").write_text("the earlier report")
        fill(disk)
        before = digest(run)
        rc, _, err = lclock("report", str(run))
        refused(rc, err, "report", f"cannot write {run}/", "No space left on device")
        assert digest(run) == before
        rc, _, err = lclock("report", str(run), "--output", str(disk / "rep" / "deep"))
        refused(rc, err, "report", "No space left on device")
        assert not (disk / "rep").exists()
        for fmt in ("csv", "shiviz", "total-order"):
            rc, _, err = lclock("export", "--format", fmt, str(run), "-o", str(run / "x.out"))
            refused(rc, err, "export", f"cannot write {run}/x.out", "No space left on device")
        rc, _, err = lclock("view", str(run))
        refused(rc, err, "view", f"cannot write {run}/explorer.html")
        rc, _, err = lclock("analyze", str(run))
        refused(rc, err, "analyze", f"cannot write {run}/summary.json")
        assert digest(run) == before  # no spare file left either


def test_a_folder_that_forbids_removing_files_is_named(runs: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    """An append-only folder takes the spare file but forbids the rename and the removal:
    the message says what is left there (emptied), and the report leaves nothing else."""
    run = tmp_path / "run"
    shutil.copytree(runs[0], run)
    r = subprocess.run(["chattr", "+a", str(run)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"chattr +a is not possible here: {r.stderr.strip()}")
    try:
        rc, _, err = lclock("export", "--format", "csv", str(run))
        refused(rc, err, "export", f"cannot write {run}/events.csv",
                "the folder forbids removing files", "remove it yourself")
        rc, _, err = lclock("report", str(run))
        refused(rc, err, "report", "the folder forbids removing files")
        spare = [p for p in run.iterdir() if p.name.startswith(".")]
        assert spare and all(p.stat().st_size == 0 for p in spare)
    finally:
        subprocess.run(["chattr", "-a", str(run)], capture_output=True)


# ---------------------------------------------------------------- merge


def merged(run: Path, out: Path) -> dict[str, object]:
    rc, stdout, err = lclock("merge", str(run), "--output", str(out))
    assert rc == 0, err
    data: dict[str, object] = json.loads((out / run.name / "run.json").read_text())
    assert f"({data['status']})" in stdout
    return data


def test_merge_of_a_sim_and_of_a_real_run_with_a_planned_crash(tmp_path: Path) -> None:
    """Their machines' entries have no status of their own: it follows from reason and
    exit code (merge once called such runs "running"); a planned crash fails nothing."""
    run = sim(tmp_path / "s", "--seed", "4", "--crash", "2@10")
    data = merged(run, tmp_path / "m1")
    assert (data["status"], data["exit_code"]) == ("completed", 0)
    rc, _, err = lclock("run", "--duration", "2", "--rates", "2,3,4", "--crash", "3@1",
                        "--no-report", "--quiet", "--output", str(tmp_path / "r"), timeout=120)
    assert rc == 0, err
    (real,) = (tmp_path / "r").iterdir()
    data = merged(real, tmp_path / "m2")
    assert (data["status"], data["exit_code"]) == ("completed", 0), data
    assert [m["reason"] for m in data["machines"]] == ["duration", "duration", "crashed"]  # type: ignore[index]


def test_merge_keeps_a_worse_status_the_run_recorded(tmp_path: Path) -> None:
    run = sim(tmp_path / "s", "--seed", "4")
    meta = json.loads((run / "run.json").read_text())
    meta.update(status="failed", exit_code=1, reason="3 messages lost (1->2)")
    (run / "run.json").write_text(json.dumps(meta))
    data = merged(run, tmp_path / "m")
    assert (data["status"], data["reason"]) == ("failed", "3 messages lost (1->2)")


@pytest.mark.parametrize("extra,named", [
    ("machine-02.jsonl", "machine-02.jsonl (a second log of machine 2, besides machine-2.jsonl)"),
    ("machine-9.jsonl", "machine-9.jsonl (the run has machines 1 to 3)"),
    ("machine-x.jsonl", "machine-x.jsonl (not a name lclock gives a log)"),
])
def test_merge_refuses_logs_it_cannot_place(tmp_path: Path, extra: str, named: str) -> None:
    run = sim(tmp_path / "s", "--seed", "4")
    shutil.copy(run / "machine-2.jsonl", run / extra)
    rc, out, err = lclock("merge", str(run), "--output", str(tmp_path / "m"))
    refused(rc, err, "merge", named)
    assert not (tmp_path / "m" / run.name).exists()
