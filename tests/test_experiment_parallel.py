"""Simulated trials in parallel: ``--jobs N`` gives the same bytes as ``--jobs 1``, and
Ctrl-C (or SIGTERM) stops every worker process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.conftest import session_members, started, wait_for

pytestmark = pytest.mark.slow  # long real-process runs: once, on py311 (tox.ini)

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def experiment(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lclock", "experiment", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, env=ENV)  # fmt: skip


def trial_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and "/trial-" in p.as_posix()}  # fmt: skip


def assert_same_results(a: Path, b: Path) -> None:
    """Byte for byte: summary.json and every file of every trial folder. run.json differs
    in exactly two fields, the wall time and the command line (it records how it was run)."""
    assert (a / "summary.json").read_bytes() == (b / "summary.json").read_bytes()
    fa, fb = trial_files(a), trial_files(b)
    assert sorted(fa) == sorted(fb) and fa
    for name, data in fa.items():
        if name.endswith("/run.json"):
            ja, jb = orjson.loads(data), orjson.loads(fb[name])
            for j in (ja, jb):
                assert "experiment" in j.pop("command") and j.pop("wall_seconds") >= 0
            assert ja == jb, name
        else:
            assert data == fb[name], name


def test_jobs_give_the_same_bytes_as_one_job(tmp_path: Path) -> None:
    args = ["baseline", "low-internal", "--sim", "--trials", "2", "--duration", "30",
            "--seed", "11", "--quiet"]  # fmt: skip
    one, two = tmp_path / "one", tmp_path / "two"
    r1 = experiment(*args, "--jobs", "1", "--output", str(one))
    r2 = experiment(*args, "--jobs", "2", "--output", str(two))
    assert r1.returncode == 0 and r2.returncode == 0, r1.stderr + r2.stderr
    assert_same_results(one, two)
    # each trial got its report, with its figures
    for k in (1, 2):
        assert (two / "baseline" / f"trial-{k}" / "report.html").stat().st_size > 10_000
        assert (two / "baseline" / f"trial-{k}" / "queues.png").is_file()
    meta = orjson.loads((two / "experiment.json").read_bytes())
    assert meta["jobs"] == 2 and meta["status"] == "completed"
    # a worker records the experiment's command, as if the trial had run in this process
    run = orjson.loads((two / "baseline" / "trial-1" / "run.json").read_bytes())
    assert run["command"][-4:] == ["--jobs", "2", "--output", str(two)]
    assert not list(two.rglob(".*.partial"))


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_every_worker(
    tmp_path: Path, sig: int, code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C reaches the whole process group (as from a terminal), SIGTERM only the
    experiment: either way every worker is gone, and what finished is kept."""
    out = tmp_path / "exp"
    cmd = [sys.executable, "-m", "lclock", "experiment", "baseline", "--sim", "--trials", "12",
           "--duration", "4000", "--seed", "1", "--jobs", "2", "--no-report", "--output", str(out)]
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    with started(cmd, REPO, text=True) as proc:
        meta = out / "experiment.json"

        def one_done() -> bool:
            try:
                return orjson.loads(meta.read_bytes()).get("progress", {}).get("done", 0) >= 1
            except (OSError, orjson.JSONDecodeError):
                return False

        assert wait_for(one_done, 120, 0.1), "no trial finished"
        workers = [p for p in session_members(proc.pid) if p != proc.pid]
        assert workers, "the worker processes should be running"
        if sig == signal.SIGINT:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == code, err
        assert "partial results" in err and "Traceback" not in err
        assert wait_for(lambda: session_members(proc.pid) == [], 10), session_members(proc.pid)
    summary = orjson.loads((out / "summary.json").read_bytes())
    assert summary["status"] == "interrupted"
    runs = summary["experiments"][0]["runs"]
    done = [r for r in runs if r["status"] == "completed"]
    assert 1 <= len(done) < 12
    assert {r["status"] for r in runs} == {"completed", "interrupted"}
    # a trial folder is there if and only if the summary counts it
    folders = sorted(p.name for p in (out / "baseline").iterdir() if p.is_dir())
    assert folders == sorted(f"trial-{r['trial']}" for r in done)
    time.sleep(0.5)
    assert sorted(p.name for p in (out / "baseline").iterdir() if p.is_dir()) == folders


def test_a_dead_worker_fails_its_trials_and_nothing_hangs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed from outside (the OOM killer): the trials it took are failed with a
    clear error, the experiment ends (exit 1) instead of waiting forever, nothing is left."""
    import psutil

    out = tmp_path / "exp"
    cmd = [sys.executable, "-m", "lclock", "experiment", "baseline", "--sim", "--trials", "6",
           "--duration", "4000", "--seed", "1", "--jobs", "2", "--no-report", "--output", str(out)]
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    with started(cmd, REPO, text=True) as proc:

        def pool_workers() -> list[psutil.Process]:
            kids = psutil.Process(proc.pid).children()
            server = [k for k in kids if "forkserver" in " ".join(k.cmdline())]
            return server[0].children() if server else []

        assert wait_for(lambda: len(pool_workers()) == 2, 60, 0.1), "no worker processes"
        # both workers are inside a trial (its staging folder is there): the one killed has one
        assert wait_for(lambda: len(list(out.glob("baseline/.trial-*.partial"))) == 2, 60, 0.05)
        pool_workers()[0].kill()
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, err
        assert "trial(s) failed" in err and "Traceback" not in err
        assert wait_for(lambda: session_members(proc.pid) == [], 10), session_members(proc.pid)
    runs = orjson.loads((out / "summary.json").read_bytes())["experiments"][0]["runs"]
    failed = [r for r in runs if r["status"] == "failed"]
    assert failed and all("worker process died" in r["error"] for r in failed)
    assert all(r["status"] in ("completed", "failed") for r in runs)
    assert not list(out.rglob(".*.partial"))
