"""Siblings of the hardening cases found by an adversarial review (issues 9-14).

Each test starts the real program (``lclock sim``, ``lclock check``) on a case that broke
it: pauses close together, schedule times that are not whole in floating point.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from conftest import session_members, started, wait_for
from test_consistency import rules, sim

from lclock.analysis.check import check_run

REPO = Path(__file__).resolve().parent.parent


def _ticks(run: Path, mid: int) -> list[dict]:
    out = []
    for raw in (run / f"machine-{mid}.jsonl").read_bytes().splitlines():
        d = orjson.loads(raw)
        if "tick" in d and d["event"] in ("send", "receive", "internal"):
            out.append(d)
    return out


def test_sim_pauses_with_no_tick_between_keep_one_tick_chain(tmp_path: Path) -> None:
    """A pause during which no deadline fell due once left the old tick pending while the
    resume scheduled another: two tick chains, a machine at 1 tick/s ran three ticks in
    one millisecond and more ticks than its rate allows. Now every tick keeps its deadline
    and check finds nothing (the run's own output must always pass check)."""
    run = sim(tmp_path, "--duration", "5", "--seed", "1", "--nemesis", "partition,pause,crash",
              "--nemesis-interval", "0.2")
    assert rules(run) == {}
    rates = {d["machine"]: d["rate"] for d in
             (orjson.loads((run / f"machine-{i}.jsonl").read_bytes().splitlines()[0])
              for i in (1, 2, 3))}
    for mid, rate in rates.items():
        ticks = _ticks(run, mid)
        assert len(ticks) <= rate * 5 + 1, (mid, rate, len(ticks))
        t = [d["ts"] for d in ticks]
        assert len(set(t)) == len(t), f"machine {mid} ran two ticks at one instant"


def test_schedule_times_to_the_microsecond(tmp_path: Path) -> None:
    """7% of 10 s is 0.7000000000000001 in floats: the deadline at 0.7 s lay "before" the
    pause, its tick (a little late, as every tick) fell into the pause and ran after the
    resume, and check, reading the logged 0.700000, called it a burst. Times in % of the run,
    the nemesis's times and a pause's end are now whole microseconds, as the logs are."""
    run = sim(tmp_path, "--duration", "10", "--seed", "2", "--rates", "10,10,10",
              "--pause", "1@7%+1%")
    assert rules(run) == {}
    meta = orjson.loads((run / "run.json").read_bytes())
    assert meta["faults"]["plan"]["pauses"] == [{"machine": 1, "start": 0.7, "length": 0.1}]
    resume = next(orjson.loads(x) for x in (run / "machine-1.jsonl").read_bytes().splitlines()
                  if b'"resume"' in x)
    assert resume["skipped"] == 1  # the deadline at 0.7 s fell in the pause


def test_check_accepts_two_pauses_with_no_tick_between(tmp_path: Path) -> None:
    """Back-to-back pauses of a slow machine: the first tick after the first resume lies
    after the second pause too. Check once blamed the first resume for the deadline the
    second one skipped ("deadlines after the resume were skipped too")."""
    for seed in (1, 2):
        run = sim(tmp_path / str(seed), "--duration", "20", "--seed", str(seed), "--nemesis",
                  "pause", "--nemesis-interval", "0.2", "--rates", "5,17,40")
        assert rules(run) == {}, seed


def test_ctrl_c_while_python_m_lclock_imports(tmp_path: Path) -> None:
    """Ctrl-C in the first ~10 ms of ``python -m lclock`` (while lclock.cli is imported)
    gave a KeyboardInterrupt traceback and status -2; launcher.py already left with 130.
    The signal is sent from inside the import, so the test does not race the clock."""
    code = (
        "import builtins, os, runpy, signal\n"
        "real = builtins.__import__\n"
        "def imp(name, *a, **k):\n"
        "    if name == 'lclock.cli':\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = imp\n"
        "runpy.run_module('lclock', run_name='__main__', alter_sys=True)\n"
    )
    p = subprocess.run([sys.executable, "-c", code, "run", "--output", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert p.returncode == 130, p.stderr
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "out").exists()


ZERO = {"ticks": 0, "lclock": 0, "sent": 0, "received": 0, "unprocessed": 0,
        "unprocessed_from": {}, "max_queue": 0, "undelivered": 0, "sent_to": {},
        "taken_from": {}}


def _interrupted_while_starting(run: Path, keep_ticks: bool) -> None:
    """Edit a run into what a Ctrl-C while machines 2 and 3 were being started leaves (as
    a real run did): run.json interrupted, no pid for them and no logs; machine 1 with its
    start line and a stop line of zeros (or, forged, its ticks kept)."""
    meta = orjson.loads((run / "run.json").read_bytes())
    meta["status"], meta["reason"], meta["exit_code"] = "interrupted", "sigint", 130
    for e in meta["machines"]:
        if e["id"] != 1:
            e.update(pid=None, exit_code=None, ticks=None, lclock=None)
        elif not keep_ticks:
            e.update(ZERO, reason="sigint")
    (run / "run.json").write_bytes(orjson.dumps(meta))
    for mid in (2, 3):
        (run / f"machine-{mid}.jsonl").unlink()
    if not keep_ticks:
        lines = [orjson.loads(x) for x in (run / "machine-1.jsonl").read_bytes().splitlines()]
        stop = {**lines[-1], **ZERO, "reason": "sigint", "ts": lines[0]["ts"]}
        (run / "machine-1.jsonl").write_bytes(orjson.dumps(lines[0]) + b"\n" +
                                              orjson.dumps(stop) + b"\n")


def test_check_on_a_run_interrupted_while_starting(tmp_path: Path) -> None:
    """Ctrl-C 0.25 s after ``lclock run`` started leaves a run whose run.json says two
    machines never started (pid null): check said FAILED ("missing: run.json names this
    machine but its log is not there"). Now that is a warning; but a run where any machine
    ticked cannot have had a machine that never started, so there it stays a finding."""
    run = sim(tmp_path / "a", "--duration", "2", "--seed", "3")
    _interrupted_while_starting(run, keep_ticks=False)
    report = check_run(run, cap=None)
    assert report.ok, [str(f) for f in report.errors]
    assert sum("before this machine started" in str(f) for f in report.warnings) == 2

    forged = sim(tmp_path / "b", "--duration", "2", "--seed", "3")
    _interrupted_while_starting(forged, keep_ticks=True)
    report = check_run(forged, cap=None)
    assert not report.ok
    assert any("missing" in str(f) for f in report.findings)


def test_check_cross_checks_status_exit_code_reason_and_times(tmp_path: Path) -> None:
    """run.json's status, exit_code, reason and instants were never compared with each
    other: a completed run's folder edited to say 'failed' with exit code 0, 'completed'
    with exit code 1 or reason 'sigint', or ended before it started, passed check."""
    base = sim(tmp_path / "base", "--duration", "3", "--seed", "6")
    assert check_run(base, cap=None).ok
    lies = {
        "failed-0": {"status": "failed"},
        "interrupted-0": {"status": "interrupted"},
        "completed-1": {"exit_code": 1},
        "completed-sigint": {"reason": "sigint"},
        "interrupted-wrong-code": {"status": "interrupted", "reason": "sigterm",
                                   "exit_code": 130},
        "ended-first": {"ended_at": "2025-01-01T00:00:00.000000Z"},
    }
    for name, change in lies.items():
        run = tmp_path / name
        shutil.copytree(base, run)
        meta = orjson.loads((run / "run.json").read_bytes())
        meta.update(change)
        (run / "run.json").write_bytes(orjson.dumps(meta))
        found = rules(run)
        assert set(found) == {"meta-status"}, (name, found)


def test_a_sigkilled_experiment_leaves_no_worker_behind(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """``lclock experiment --sim --jobs 2`` SIGKILLed (the OOM killer, ``kill -9``): its
    workers, forked from the forkserver (which lives as long as they do), went on with
    their trials and then waited for the next one for ever, with the forkserver and the
    resource tracker. Now each worker ends when the experiment does."""
    out = tmp_path / "exp"
    cmd = [sys.executable, "-m", "lclock", "experiment", "baseline", "--sim", "--trials", "20",
           "--duration", "200000", "--seed", "1", "--jobs", "2", "--no-report", "--output",
           str(out)]
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    with started(cmd, REPO) as proc:
        assert wait_for(lambda: len(session_members(proc.pid)) >= 5, 60, 0.1), \
            session_members(proc.pid)  # the experiment, tracker, forkserver, 2 workers
        proc.kill()
        proc.wait(timeout=10)
        assert wait_for(lambda: session_members(proc.pid) == [], 15, 0.1), \
            session_members(proc.pid)


@pytest.mark.parametrize("sig, code, reason", [(signal.SIGINT, 130, "sigint"),
                                               (signal.SIGTERM, 143, "sigterm")])
def test_an_interrupted_sim_stops_gracefully(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             sig: int, code: int, reason: str) -> None:
    """A simulation stopped by a signal left logs without stop lines, run.json without
    machines and with the full duration as ended_at: check called it FAILED ("did not stop
    gracefully ... its messages cannot be accounted for"). Now it stops as a real run does:
    what is in flight is queued, every machine up has its stop line, run.json its entries."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "lclock", "sim", "--duration", "20000", "--machines", "5",
           "--rate-min", "20", "--rate-max", "60", "--seed", "8", "--nemesis",
           "pause,crash,partition", "--nemesis-interval", "2", "--latency", "300",
           "--latency-dist", "exponential", "--loss", "0.1", "--duplicate", "0.1",
           "--quiet", "--no-report", "--output", str(out)]
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    with started(cmd, REPO, text=True) as proc:
        def going() -> bool:
            logs = list(out.glob("*/machine-*.jsonl"))
            return len(logs) == 5 and sum(p.stat().st_size for p in logs) > 500_000

        assert wait_for(going, 60, 0.05)
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    run = next(out.iterdir())
    meta = orjson.loads((run / "run.json").read_bytes())
    assert meta["status"] == "interrupted" and meta["reason"] == reason
    assert len(meta["machines"]) == 5
    assert meta["ended_at"] < "2026-01-01T05:33:20"  # not the full 20000 s
    up = [m for m in meta["machines"] if m["reason"] != "crashed"]
    assert up and all(m["reason"] == reason for m in up)
    report = check_run(run, cap=None)
    assert report.ok, [str(f) for f in report.errors[:5]]
    # what the plan had done by the stop, not the whole 20000 s of it
    stopped_at = max(a["at"] for a in meta["faults"]["applied"])
    planned = meta["faults"]["plan"]
    assert stopped_at < 20000 and len(meta["faults"]["applied"]) < (
        2 * len(planned["pauses"]) + len(planned["crashes"]) + 2 * len(planned["partitions"]))


@pytest.mark.parametrize("stray", ["folder", "link-out", "fifo"])
def test_a_stray_unreadable_log_name_does_not_change_the_machine_count(tmp_path: Path,
                                                                       stray: str) -> None:
    """A folder, a FIFO or a link out of the run folder named machine-4.jsonl in a run of
    3: check said "the logs' vector clocks have 4 entries: judged as a run of 4" and made
    every event of the real logs unusable (export wrote 0 events). It is now the one
    finding it is, and the three logs are judged as they are."""
    run = sim(tmp_path / "r", "--duration", "5", "--seed", "4", "--rates", "3,5,8")
    events = check_run(run, cap=None).counts
    path = run / "machine-4.jsonl"
    if stray == "folder":
        path.mkdir()
    elif stray == "fifo":
        os.mkfifo(path)
    else:
        outside = tmp_path / "elsewhere.jsonl"
        outside.write_bytes((run / "machine-1.jsonl").read_bytes())
        path.symlink_to(outside)
    report = check_run(run, cap=None)
    assert [f.rule for f in report.errors] == ["log-unreadable"], [str(f) for f in report.errors]
    assert report.counts == events


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_signal_while_the_workers_start_is_not_lost(
        tmp_path: Path, sig: int, code: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while ``experiment --jobs 2`` started its workers (about 0.15 to 0.45 s
    after the start here) was lost: Ctrl-C was ignored then, and the mask meant to keep
    it pending was undone by multiprocessing starting its resource tracker. The experiment
    ran to its end with exit 0. The signal is sent from inside the first submit, so the
    test does not race the clock."""
    code_text = (
        "import os, runpy, signal, sys\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "real = ProcessPoolExecutor.submit\n"
        "def submit(self, *a, **k):\n"
        f"    os.kill(os.getpid(), {int(sig)})\n"
        "    ProcessPoolExecutor.submit = real\n"
        "    return real(self, *a, **k)\n"
        "ProcessPoolExecutor.submit = submit\n"
        "runpy.run_module('lclock', run_name='__main__', alter_sys=True)\n"
    )
    out = tmp_path / "exp"
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    with started([sys.executable, "-c", code_text, "experiment", "baseline", "--sim",
                  "--trials", "6", "--duration", "3000", "--seed", "1", "--jobs", "2",
                  "--no-report", "--output", str(out)], REPO, text=True) as proc:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == code, err
        assert "stopped" in err and "Traceback" not in err
        assert wait_for(lambda: session_members(proc.pid) == [], 15), session_members(proc.pid)
    assert orjson.loads((out / "summary.json").read_bytes())["status"] == "interrupted"
