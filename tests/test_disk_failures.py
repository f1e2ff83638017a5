"""A full disk, a run folder deleted or made read-only mid-run, against the real programs.

Required everywhere: every line whole, run.json final and honest (a failed run with the
reason), one clear line on stderr, no traceback, nothing half-written left; a disk that
is full before the start is bad input (exit 2, nothing created).

The full disk is a small tmpfs mounted for the test (root only, as in CI).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import fill, launcher_cmd, run_dirs, started, tmpfs, wait_for
from runverify import load

pytestmark = pytest.mark.slow  # long real-process runs: once, on py311 (tox.ini)

REPO = Path(__file__).resolve().parent.parent


def whole_lines(rd: Path) -> None:
    for p in rd.glob("machine-*.jsonl"):
        raw = p.read_bytes()
        assert raw == b"" or raw.endswith(b"\n"), f"{p.name}: torn last line"
        for line in raw.splitlines():
            json.loads(line)


def no_leftovers(rd: Path) -> None:
    names = sorted(p.name for p in rd.iterdir())
    assert all(n == "run.json" or n.startswith("machine-") for n in names), names


def one_clear_line(err: bytes) -> str:
    text = err.decode()
    assert "Traceback" not in text, text
    lines = text.splitlines()
    assert len(lines) == 1 and ("error" in text or "failed" in text), text
    return text


def lclock(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "lclock", *args], cwd=cwd, capture_output=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)},
                          stdin=subprocess.DEVNULL)


def test_run_on_a_disk_that_fills_fails_honestly(workdir: Path) -> None:
    with tmpfs(workdir / "small", "200k") as out:
        with started(launcher_cmd("--output", str(out), "--no-report", "--quiet", "--duration", "20",
                                  "--rates", "2000,2000,2000"), workdir) as p:
            _o, err = p.communicate(timeout=60)
        (rd,) = run_dirs(out)
        whole_lines(rd)
        no_leftovers(rd)
        meta = json.loads((rd / "run.json").read_text())
        assert p.returncode == 1
        assert meta["status"] == "failed" and meta["exit_code"] == 1
        assert "no space left" in meta["reason"], meta["reason"]
        text = one_clear_line(err)
        assert "no space left" in text


def test_run_on_a_full_disk_is_bad_input(workdir: Path) -> None:
    with tmpfs(workdir / "full", "64k") as out:
        fill(out)
        with started(launcher_cmd("--output", str(out), "--no-report", "--duration", "2"), workdir) as p:
            _o, err = p.communicate(timeout=30)
        assert p.returncode == 2, err
        assert sorted(x.name for x in out.iterdir()) == ["filler"], "nothing created"
        text = err.decode()
        assert "Traceback" not in text and text.count("\n") == 1 and "--output" in text


def test_sim_on_a_disk_that_fills_fails_honestly(workdir: Path) -> None:
    with tmpfs(workdir / "small", "300k") as out:
        r = lclock("sim", "--output", str(out), "--quiet", "--duration", "600",
                   "--rates", "100,100,100", "--seed", "1", cwd=workdir)
        (rd,) = run_dirs(out)
        whole_lines(rd)
        no_leftovers(rd)
        meta = json.loads((rd / "run.json").read_text())
        assert r.returncode == 1, r.stderr
        assert meta["status"] == "failed" and "no space left" in meta["reason"]
        assert "no space left" in one_clear_line(r.stderr)


def test_sim_on_a_full_disk_is_bad_input(workdir: Path) -> None:
    with tmpfs(workdir / "full", "64k") as out:
        fill(out)
        r = lclock("sim", "--output", str(out), "--duration", "10", cwd=workdir)
        assert r.returncode == 2, r.stderr
        assert sorted(x.name for x in out.iterdir()) == ["filler"]
        assert b"Traceback" not in r.stderr and r.stderr.count(b"\n") == 1


@pytest.mark.parametrize("command", ["run", "sim"])
def test_no_room_to_keep_aside_for_run_json_is_bad_input(workdir: Path, command: str) -> None:
    """Room for the first run.json but not for the spare that guarantees the last one: the
    run does not start (exit 2, nothing created) rather than risk never finishing run.json."""
    with tmpfs(workdir / "nearly", "128k") as out:
        (out / "filler").write_bytes(b"\0" * (96 << 10))
        args = ["--output", str(out), "--no-report", "--duration", "2"] if command == "run" else \
            ["--output", str(out), "--duration", "2"]
        r = (subprocess.run(launcher_cmd(*args), cwd=workdir, capture_output=True, timeout=60,
                            stdin=subprocess.DEVNULL)
             if command == "run" else lclock("sim", *args, cwd=workdir))
        assert r.returncode == 2, r.stderr
        assert sorted(x.name for x in out.iterdir()) == ["filler"], "nothing created"
        assert b"no room" in r.stderr and r.stderr.count(b"\n") == 1, r.stderr


def test_sim_never_touches_a_run_folder_it_did_not_create(workdir: Path) -> None:
    r = lclock("sim", "--output", "out", "--duration", "5", "--seed", "3", "--run-id", "mine",
               cwd=workdir)
    assert r.returncode == 0
    rd = workdir / "out" / "mine"
    before = {p.name: p.read_bytes() for p in rd.iterdir()}
    r = lclock("sim", "--output", "out", "--duration", "9", "--seed", "4", "--run-id", "mine",
               cwd=workdir)
    assert r.returncode == 2 and b"exists already" in r.stderr
    assert {p.name: p.read_bytes() for p in rd.iterdir()} == before
    # The default run id of a repeated simulation gets a new folder, never the old one.
    for _ in range(2):
        assert lclock("sim", "--output", "o2", "--duration", "5", "--seed", "3", cwd=workdir).returncode == 0
    names = sorted(p.name for p in (workdir / "o2").iterdir())
    assert len(names) == 2 and names[1] == names[0] + "-2"


def test_run_folder_deleted_mid_run(workdir: Path) -> None:
    with started(launcher_cmd("--output", "out", "--no-report", "--duration", "4",
                              "--rates", "20,20,20"), workdir) as p:
        assert wait_for(lambda: bool(run_dirs(workdir / "out")), 20)
        (rd,) = run_dirs(workdir / "out")
        assert wait_for(lambda: len(list(rd.glob("machine-*.jsonl"))) == 3, 20)
        time.sleep(1.0)
        shutil.rmtree(rd)
        _o, err = p.communicate(timeout=30)
    assert p.returncode == 1, err
    text = one_clear_line(err)
    assert "deleted" in text or "No such file" in text or "no such file" in text, text
    assert not rd.exists(), "a deleted run folder is not re-created half-empty"


def test_run_folder_made_read_only_mid_run(workdir: Path) -> None:
    """chmod is not enough for root; an immutable folder (chattr +i) refuses even root."""
    with started(launcher_cmd("--output", "out", "--no-report", "--duration", "3",
                              "--rates", "20,20,20"), workdir) as p:
        assert wait_for(lambda: bool(run_dirs(workdir / "out")), 20)
        (rd,) = run_dirs(workdir / "out")
        assert wait_for(lambda: len(list(rd.glob("machine-*.jsonl"))) == 3, 20)
        r = subprocess.run(["chattr", "+i", str(rd)], capture_output=True, text=True)
        if r.returncode != 0:
            p.kill()
            pytest.skip(f"chattr +i not supported here: {r.stderr.strip()}")
        try:
            _o, err = p.communicate(timeout=30)
        finally:
            subprocess.run(["chattr", "-i", str(rd)], capture_output=True)
    assert p.returncode == 1, err
    one_clear_line(err)
    meta = json.loads((rd / "run.json").read_text())
    assert meta["status"] == "running", "the old run.json stays whole (it could not be replaced)"
    whole_lines(rd)
    _meta, logs = load(rd)
    assert all(lines[-1]["event"] == "stop" for lines in logs.values())


def test_an_experiment_whose_trials_all_fill_the_disk_says_failed(workdir: Path) -> None:
    (workdir / "s.toml").write_text("[experiments.big]\nrates = [100, 100, 100]\nduration = 600\n")
    with tmpfs(workdir / "small", "400k") as out:
        r = lclock("experiment", "big", "--settings", "s.toml", "--sim", "--trials", "2",
                   "--jobs", "1", "--no-plots", "--output", str(out / "e"), cwd=workdir)
        assert r.returncode == 1, r.stderr
        assert b"2 trial(s) failed" in r.stderr and b"Traceback" not in r.stderr
        meta = json.loads((out / "e" / "experiment.json").read_text())
        assert meta["status"] == "failed"
        runs = json.loads((out / "e" / "summary.json").read_text())["experiments"][0]["runs"]
        assert [x["status"] for x in runs] == ["failed", "failed"]
        assert all("no space left" in x["error"] for x in runs)
