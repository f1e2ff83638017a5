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


def _blocked_mask(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigBlk:"):
            return int(line.split()[1], 16)
    raise AssertionError("no SigBlk")


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
        for child in psutil.Process(p.pid).children(recursive=True):
            if "forkserver" in " ".join(child.cmdline()):
                assert _blocked_mask(child.pid) & (1 << (signal.SIGTERM - 1)) == 0
        os.killpg(p.pid, signal.SIGINT)
        p.communicate(timeout=20)
    assert p.returncode == 130


def test_sigterm_to_one_worker_stops_it_gracefully_and_fails_the_run(workdir: Path) -> None:
    with started(_cmd("--duration", "20", "--rates", "5,5,5"), workdir) as p:
        assert wait_for(lambda: _ticking(workdir), 20)
        os.kill(_workers(workdir)[1], signal.SIGTERM)
        _out, err = p.communicate(timeout=20)
    rd = _run_dir(workdir)
    assert rd is not None
    stops = _stops(rd)
    assert sorted(stops) == [1, 2, 3], "every machine logged its stop"
    assert stops[2]["reason"] == "sigterm"
    meta = json.loads((rd / "run.json").read_text())
    assert p.returncode == 1 and meta["status"] == "failed"
    assert "machine 2 stopped early (sigterm)" in meta["reason"]
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
            time.sleep(0.3)
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


@pytest.mark.slow
def test_a_peer_that_cannot_be_drained_makes_the_run_fail(workdir: Path) -> None:
    """A machine stopped (SIGSTOP) at the end of the run cannot be drained: messages sent to
    it are lost. The run must say so (failed, exit 1, the numbers in run.json)."""
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
    text = meta["reason"]
    assert "lost" in text or "stopped early" in text or "did not stop" in text, text
    assert meta["messages"]["sent"] >= meta["messages"]["taken"]
    assert b"Traceback" not in err
