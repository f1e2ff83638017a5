"""Integration tests: the real launcher, real processes and sockets, checked run folders."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import alive, launcher_cmd, run_dirs, session_members, started, wait_for
from runverify import verify


def run(workdir: Path, *args: str, timeout: float = 120) -> tuple[int, str, str, Path | None]:
    with started(launcher_cmd("--output", str(workdir / "out"), "--no-report", *args), workdir) as p:
        out, err = p.communicate(timeout=timeout)
        code = p.returncode
        # Whatever the outcome, nothing the launcher started may outlive it.
        assert wait_for(lambda: session_members(p.pid) == [], 3), session_members(p.pid)
    dirs = run_dirs(workdir / "out")
    return code, out.decode(), err.decode(), dirs[-1] if dirs else None


def test_default_run_is_complete_and_correct(workdir: Path) -> None:
    code, out, err, rd = run(workdir, "--duration", "3", "--seed", "7")
    assert code == 0, err
    assert rd is not None
    meta = json.loads((rd / "run.json").read_text())
    assert meta["status"] == "completed" and meta["exit_code"] == 0 and meta["reason"] == "duration"
    assert meta["seed"] == 7 and meta["schema"] == 1
    assert len(meta["machines"]) == 3
    for m in meta["machines"]:
        assert 1 <= m["rate"] <= 6
        assert m["ticks"] == m["rate"] * 3
        assert m["exit_code"] == 0
    assert verify(rd) == []
    # the console: a per-machine table and the run folder's path
    assert "max queue" in out and "unprocessed" in out
    assert f"run folder: {rd.relative_to(workdir)}" in out or str(rd) in out
    assert alive([m["pid"] for m in meta["machines"]]) == []


def test_same_seed_same_rates(workdir: Path) -> None:
    rates = []
    for k, seed in enumerate(("1234", "1234", "99")):
        sub = workdir / f"w{k}"
        sub.mkdir()
        code, _, err, rd = run(sub, "--duration", "0.5", "--seed", seed, "--rate-max", "10000", "--quiet")
        assert code == 0, err
        meta = json.loads((rd / "run.json").read_text())
        assert meta["seed"] == int(seed)
        rates.append([m["rate"] for m in meta["machines"]])
    assert rates[0] == rates[1]
    assert rates[0] != rates[2]


@pytest.mark.parametrize("rates", ["1,3,6", "6,6,6", "1,1"])
def test_fixed_rates(workdir: Path, rates: str) -> None:
    code, _, err, rd = run(workdir, "--duration", "2", "--rates", rates)
    assert code == 0, err
    meta = json.loads((rd / "run.json").read_text())
    assert [m["rate"] for m in meta["machines"]] == [int(r) for r in rates.split(",")]
    assert verify(rd) == []


@pytest.mark.parametrize("n", [2, 16])
def test_machine_counts(workdir: Path, n: int) -> None:
    code, _, err, rd = run(workdir, "--duration", "2", "--machines", str(n), "--quiet")
    assert code == 0, err
    meta = json.loads((rd / "run.json").read_text())
    assert len(meta["machines"]) == n
    assert sorted(p.name for p in rd.glob("machine-*.jsonl")) == sorted(
        f"machine-{i}.jsonl" for i in range(1, n + 1)
    )
    assert verify(rd) == []


def test_rates_from_1_to_10000(workdir: Path) -> None:
    code, _, err, rd = run(workdir, "--duration", "2", "--rates", "1,100,10000", "--quiet")
    assert code == 0, err
    meta = json.loads((rd / "run.json").read_text())
    assert [m["ticks"] for m in meta["machines"]] == [2, 200, 20000]
    assert verify(rd) == []


def test_fractional_duration_ticks(workdir: Path) -> None:
    code, _, err, rd = run(workdir, "--duration", "0.5", "--rates", "3,4", "--quiet")
    assert code == 0, err
    meta = json.loads((rd / "run.json").read_text())
    assert [m["ticks"] for m in meta["machines"]] == [math.ceil(1.5), 2]
    assert verify(rd) == []


def test_quiet_prints_only_the_run_folder(workdir: Path) -> None:
    """No progress, no table, no findings: one line a script can capture."""
    code, out, err, rd = run(workdir, "--duration", "1", "--quiet")
    assert code == 0 and err == ""
    (line,) = out.splitlines()
    assert line.startswith("run folder: ") and line.endswith(rd.name)


@pytest.mark.slow
def test_plain_progress_when_not_a_terminal(workdir: Path) -> None:
    code, out, _, rd = run(workdir, "--duration", "11", "--rates", "1,1")
    assert code == 0
    progress = [x for x in out.splitlines() if x.startswith("[") and "remaining" in x]
    assert progress, out
    assert "\x1b[" not in out  # no cursor movement when stdout is not a terminal


def test_settings_file_and_flag_precedence(workdir: Path) -> None:
    (workdir / "settings.toml").write_text("rates = [2, 2, 2]\nduration = 30\n")
    code, _, err, rd = run(workdir, "--duration", "1")
    assert code == 0, err
    meta = json.loads((rd / "run.json").read_text())
    assert meta["settings"]["duration"] == 1.0
    assert [m["rate"] for m in meta["machines"]] == [2, 2, 2]


def test_run_json_written_at_start(workdir: Path) -> None:
    with started(launcher_cmd("--output", "out", "--duration", "2", "--quiet", "--no-report"), workdir) as p:
        assert wait_for(lambda: any((d / "run.json").exists() for d in run_dirs(workdir / "out")), 10)
        rd = run_dirs(workdir / "out")[0]
        meta = json.loads((rd / "run.json").read_text())
        assert meta["status"] == "running" and meta["ended_at"] is None
        p.wait(timeout=30)
    meta = json.loads((rd / "run.json").read_text())
    assert meta["status"] == "completed"


def test_module_and_console_script_entry_points(workdir: Path) -> None:
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "lclock", "--help"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0
    for cmd in ("run", "check", "analyze", "report", "export", "sim", "experiment", "vm"):
        assert cmd in r.stdout
    r = subprocess.run(
        [sys.executable, "-m", "lclock", "run", "--output", str(workdir / "o"), "--duration", "0.5", "--quiet", "--no-report"],
        capture_output=True, text=True, timeout=60, start_new_session=True,
    )
    assert r.returncode == 0, r.stderr


def test_64_machines(workdir: Path) -> None:
    """Descriptor numbers run into the thousands in the launcher; workers must cope."""
    code, _, err, rd = run(workdir, "--duration", "2", "--machines", "64", "--rates", ",".join(["5"] * 64), "--quiet", timeout=300)
    assert code == 0, err
    assert verify(rd) == []


def test_quiet_still_says_where_the_run_folder_is(workdir: Path) -> None:
    with started(launcher_cmd("--duration", "1", "--quiet", "--no-report", "--output", "out"), workdir) as p:
        out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    (rd,) = run_dirs(workdir / "out")
    assert out.decode().splitlines() == [f"run folder: out/{rd.name}"]


def test_a_closed_pipe_does_not_stop_the_run(workdir: Path) -> None:
    """``lclock run | head -1``: the reader goes away after one line; the run is not its business."""
    cmd = " ".join(launcher_cmd("--duration", "2", "--rates", "5,5,5", "--no-report",
                                "--output", "out")) + " | head -1"
    with started(["bash", "-c", f"set -o pipefail; {cmd}; echo rc=${{PIPESTATUS[0]}} >&2"], workdir) as p:
        out, err = p.communicate(timeout=60)
    assert len(out.decode().splitlines()) == 1
    assert "rc=0" in err.decode() and "Traceback" not in err.decode(), err
    (rd,) = run_dirs(workdir / "out")
    assert json.loads((rd / "run.json").read_text())["status"] == "completed"
