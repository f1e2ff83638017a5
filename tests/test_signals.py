"""Signals against the real launcher: nothing blocked, SIGHUP like SIGTERM, stopped workers,
and a run that lost messages never called ``completed``."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import psutil
import pytest
from conftest import launcher_cmd, run_dirs, session_members, started, wait_for
from runverify import load

pytestmark = pytest.mark.slow  # long real-process runs: once, on py311 (tox.ini)

STOP_SIGNALS_MASK = (1 << (signal.SIGINT - 1)) | (1 << (signal.SIGTERM - 1)) | (1 << (signal.SIGHUP - 1))


def _cmd(*args: str) -> list[str]:
    return launcher_cmd("--output", "out", "--no-report", *args)


def _run_dir(workdir: Path) -> Path | None:
    dirs = run_dirs(workdir / "out")
    return dirs[-1] if dirs else None


def _ticking(workdir: Path, n: int = 3) -> bool:
    rd = _run_dir(workdir)
    if rd is None:
        return False
    logs = list(rd.glob("machine-*.jsonl"))
    return len(logs) == n and all('"tick"' in p.read_text() for p in logs)


def _workers(workdir: Path) -> list[int]:
    rd = _run_dir(workdir)
    assert rd is not None
    meta = json.loads((rd / "run.json").read_text())
    return [m["pid"] for m in meta["machines"]]


def _mask(pid: int, field: str = "SigBlk") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no {field}")


def _blocked_mask(pid: int) -> int:
    return _mask(pid, "SigBlk")


def _continue_all(pids: list[int]) -> None:
    """A test that stops a process must never leave it stopped."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def _stops(rd: Path) -> dict[int, dict]:
    _meta, logs = load(rd)
    return {m: lines[-1] for m, lines in logs.items() if lines and lines[-1]["event"] == "stop"}


def test_no_worker_runs_with_stop_signals_blocked(workdir: Path) -> None:
    with started(_cmd("--duration", "20", "--rates", "5,5,5"), workdir) as p:
        assert wait_for(lambda: _ticking(workdir), 20)
        for pid in _workers(workdir):
            assert _blocked_mask(pid) & STOP_SIGNALS_MASK == 0, f"worker {pid}"
        servers = {psutil.Process(w).ppid() for w in _workers(workdir)}
        servers = [psutil.Process(s) for s in servers if s != p.pid]
        assert servers, "the launcher runs its workers from a forkserver"
        for server in servers:  # a signal to the group must not kill it
            assert _mask(server.pid, "SigIgn") & STOP_SIGNALS_MASK == STOP_SIGNALS_MASK
        os.killpg(p.pid, signal.SIGINT)
        p.communicate(timeout=20)
    assert p.returncode == 130


def test_sigterm_to_one_worker_interrupts_the_run_gracefully(workdir: Path) -> None:
    with started(_cmd("--duration", "20", "--rates", "5,5,5"), workdir) as p:
        assert wait_for(lambda: _ticking(workdir), 20)
        os.kill(_workers(workdir)[1], signal.SIGTERM)
        out, err = p.communicate(timeout=20)
    rd = _run_dir(workdir)
    assert rd is not None
    stops = _stops(rd)
    assert sorted(stops) == [1, 2, 3], "every machine logged its stop"
    assert stops[2]["reason"] == "sigterm"
    meta = json.loads((rd / "run.json").read_text())
    assert (p.returncode, meta["status"], meta["reason"]) == (143, "interrupted", "sigterm")
    assert b"machine 2 got SIGTERM" in out + err and b"Traceback" not in err


def test_sigterm_to_the_whole_group_interrupts_not_fails(workdir: Path) -> None:
    """``kill -TERM -- -PGID`` reaches the launcher, the forkserver and every worker at once:
    the forkserver lives on to report each worker's end, and the run is interrupted."""
    with started(_cmd("--duration", "20", "--rates", "20,20,20"), workdir) as p:
        assert wait_for(lambda: _ticking(workdir), 20)
        os.killpg(p.pid, signal.SIGTERM)
        _out, err = p.communicate(timeout=20)
    rd = _run_dir(workdir)
    assert rd is not None
    meta = json.loads((rd / "run.json").read_text())
    assert (p.returncode, meta["status"], meta["reason"]) == (143, "interrupted", "sigterm"), err
    assert sorted(_stops(rd)) == [1, 2, 3]
    assert all(m["exit_code"] == 0 for m in meta["machines"]), meta["machines"]
    assert b"Traceback" not in err


def test_ctrl_c_with_a_stopped_worker_still_stops_every_machine(workdir: Path) -> None:
    """SIGSTOP one worker, press Ctrl-C: SIGTERM (with SIGCONT) reaches it, and every
    machine logs its stop; none has to be SIGKILLed."""
    pids: list[int] = []
    try:
        with started(_cmd("--duration", "30", "--rates", "5,10,20"), workdir) as p:
            assert wait_for(lambda: _ticking(workdir), 20)
            pids = _workers(workdir)
            os.kill(pids[0], signal.SIGSTOP)
            assert wait_for(lambda: psutil.Process(pids[0]).status() == psutil.STATUS_STOPPED, 10)
            os.killpg(p.pid, signal.SIGINT)
            _out, err = p.communicate(timeout=20)
    finally:
        _continue_all(pids)
    assert p.returncode == 130, err
    rd = _run_dir(workdir)
    assert rd is not None
    stops = _stops(rd)
    assert sorted(stops) == [1, 2, 3]
    meta = json.loads((rd / "run.json").read_text())
    assert meta["status"] == "interrupted" and not meta.get("killed")
    assert wait_for(lambda: session_members(p.pid) == [], 3)


@pytest.mark.parametrize("whole_group", [False, True])
def test_sighup_stops_gracefully_like_sigterm(workdir: Path, whole_group: bool) -> None:
    """The terminal closes: SIGHUP to the launcher (or, as a terminal does, to the group)."""
    with started(_cmd("--duration", "30", "--rates", "5,10,20"), workdir) as p:
        assert wait_for(lambda: _ticking(workdir), 20)
        if whole_group:
            os.killpg(p.pid, signal.SIGHUP)
        else:
            p.send_signal(signal.SIGHUP)
        _out, err = p.communicate(timeout=20)
    assert p.returncode == 129, err
    rd = _run_dir(workdir)
    assert rd is not None
    meta = json.loads((rd / "run.json").read_text())
    assert (meta["status"], meta["reason"], meta["exit_code"]) == ("interrupted", "sighup", 129)
    assert sorted(_stops(rd)) == [1, 2, 3]
    assert b"Traceback" not in err


def test_a_machine_stopped_from_outside_fails_the_run_and_is_drained(workdir: Path) -> None:
    """A machine stopped (SIGSTOP) by someone else before the end of the run missed its
    ticks: the run fails and says why; the launcher continues it soon after the end, so it
    stops gracefully and no message is lost."""
    pids: list[int] = []
    try:
        with started(_cmd("--duration", "3", "--rates", "20,20,20", "--dice-sides", "3"), workdir) as p:
            assert wait_for(lambda: _ticking(workdir), 20)
            pids = _workers(workdir)
            time.sleep(1.5)
            os.kill(pids[2], signal.SIGSTOP)
            _out, err = p.communicate(timeout=60)
    finally:
        _continue_all(pids)
    rd = _run_dir(workdir)
    assert rd is not None
    meta = json.loads((rd / "run.json").read_text())
    assert p.returncode == 1, err
    assert meta["status"] == "failed" and meta["exit_code"] == 1
    assert "machine 3 was stopped from outside the run" in meta["reason"], meta["reason"]
    assert meta["messages"]["lost"] == 0 and sorted(_stops(rd)) == [1, 2, 3]
    assert not meta.get("killed")
    assert b"Traceback" not in err


def test_a_killed_launcher_leaves_no_machine_behind_even_a_paused_one(workdir: Path) -> None:
    """SIGKILL the launcher while the fault plan holds machine 2 stopped (SIGSTOP): the
    forkserver ends with the launcher, which wakes the paused worker (its parent-death
    signal is SIGCONT); every machine then logs its stop, and check says the run's writer
    is gone."""
    pids: list[int] = []
    try:
        with started(_cmd("--duration", "30", "--rates", "5,5,5", "--pause", "2@0.5+25"),
                     workdir) as p:
            assert wait_for(lambda: _ticking(workdir), 20)
            pids = _workers(workdir)
            assert wait_for(lambda: psutil.Process(pids[1]).status() == psutil.STATUS_STOPPED, 10)
            p.kill()
            p.wait(timeout=10)
            assert wait_for(lambda: not any(psutil.pid_exists(w) and
                                            psutil.Process(w).status() != psutil.STATUS_ZOMBIE
                                            for w in pids), 15), "a worker outlived the launcher"
    finally:
        _continue_all(pids)
    rd = _run_dir(workdir)
    assert rd is not None
    stops = _stops(rd)
    assert sorted(stops) == [1, 2, 3]
    assert {s["reason"] for s in stops.values()} == {"launcher_gone"}
    from lclock.analysis.check import check_run  # noqa: PLC0415
    text = " ".join(f.text for f in check_run(rd).findings)
    assert "the process that wrote it" in text and "is gone" in text


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_stop_signal_during_the_report_ends_the_report(workdir: Path, sig: int, code: int) -> None:
    """The run is over and recorded when the report starts: SIGTERM or SIGHUP then ends the
    report at once with its own status, and run.json still says completed."""
    cmd = launcher_cmd("--output", "out", "--duration", "1.5", "--rates", "100,100,100")
    with started(cmd, workdir) as p:
        assert p.stdout is not None
        seen = b""
        while b"max queue" not in seen:  # the end table: the report comes next
            line = p.stdout.readline()
            assert line, "the run ended before its table"
            seen += line
        time.sleep(0.2)
        p.send_signal(sig)
        _out, err = p.communicate(timeout=30)
    assert p.returncode == code, err
    assert b"report interrupted by" in err and b"Traceback" not in err
    rd = _run_dir(workdir)
    assert rd is not None
    assert json.loads((rd / "run.json").read_text())["status"] == "completed"
