"""Programs as machines in real runs (SPEC 9): ``lclock run --impl`` with real processes.

Each test starts the real launcher in its own session (``started``), whose machines start
their programs in their jails. A reference program's run completes and ``check`` passes it;
a broken one fails its machine with an ``error`` line, the others stop gracefully, exit 1;
a pause freezes a program, a crash kills it; and nothing of any program outlives the run,
however lclock ends (its graceful stop, SIGTERM, SIGINT, SIGKILL).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import psutil
import pytest
from conftest import run_dirs, started, wait_for

from lclock.impl.host import end_leftovers
from lclock.impl.jail import JAIL_ENV
from tests.impl_programs import build, lamport_program


def program(tmp_path: Path, body: str, head: str = "") -> str:
    """A Lamport-only program whose messages carry a body of 1 kB besides the clock."""
    return lamport_program(tmp_path, body, head, pad=1000)

pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parent.parent


def lclock(*args: str, cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    with started([sys.executable, "-m", "lclock", *args], cwd) as proc:
        out, err = proc.communicate(timeout=timeout)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out.decode(), err.decode())


def end_programs(out: Path) -> None:
    """Kill what the programs of the runs in ``out`` left (frozen or in a session of their
    own), however the test ended: the launcher is killed with its group when a test fails,
    and a program's child in its own session is not in that group."""
    for run_dir in run_dirs(out):
        try:  # an experiment's trial folder is renamed after the run: the id is in run.json
            run_id = str(orjson.loads((run_dir / "run.json").read_bytes())["run_id"])
        except (OSError, ValueError, KeyError):
            run_id = run_dir.name
        end_leftovers(run_id)


def run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path, dict[str, Any]]:
    out = tmp_path / "out"
    try:
        done = lclock("run", "--output", str(out), "--no-report", "--quiet", *args)
    finally:
        end_programs(out)
    (run_dir,) = run_dirs(out)
    return done, run_dir, orjson.loads((run_dir / "run.json").read_bytes())


def lines(run_dir: Path, mid: int) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in (run_dir / f"machine-{mid}.jsonl").read_bytes().splitlines()]


def programs_of(mark: str) -> list[int]:
    """The live processes (zombies aside) whose jail mark holds ``mark`` (a run id, say)."""
    out = []
    for proc in psutil.process_iter(["environ", "status"]):
        try:
            if mark in (proc.info["environ"] or {}).get(JAIL_ENV, "") and \
                    proc.info["status"] != psutil.STATUS_ZOMBIE:
                out.append(proc.pid)
        except psutil.Error:
            pass
    return out


@pytest.mark.parametrize(("language", "transport"), [
    ("python", "socketpair"), ("c", "tcp"), ("node", "tcp"),
    pytest.param("java", "socketpair", marks=pytest.mark.slow),  # a JVM's start, per machine
])
def test_a_reference_program_runs_for_real_and_check_passes_it(language: str, transport: str,
                                                               tmp_path: Path) -> None:
    argv = build(language, tmp_path)
    done, run_dir, meta = run(tmp_path, "--impl", " ".join(argv), "--transport", transport,
                              "--duration", "4",
                              "--rates", "20,30,50", "--loss", "0.1", "--duplicate", "0.1",
                              "--clock-skew", "50", "--seed", "5")
    assert done.returncode == 0, done.stderr
    assert meta["status"] == "completed" and meta["clocks"]["kept"] == ["lamport", "vector", "hlc"]
    for mid in ("1", "2", "3"):
        entry = meta["impl"]["machines"][mid]
        assert entry["command"] == " ".join(argv) and len(entry["sha256"]) == 64
        assert "failed" not in entry
    ticks = [x for x in lines(run_dir, 1) if x.get("event") in ("internal", "send", "receive")]
    assert ticks and all("pt" in x and "hlc" in x and "vclock" in x for x in ticks)
    checked = lclock("check", str(run_dir))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert not programs_of(run_dir.name)


@pytest.mark.parametrize(("language", "rate"), [("c", 1000), ("python", 500)])
def test_a_program_at_a_high_rate_is_asked_ahead_and_check_passes(language: str, rate: int,
                                                                  tmp_path: Path) -> None:
    """At hundreds of ticks a second a program's ticks are asked before the earlier ones are
    answered (SPEC 9.8): under faults, a pause, a crash and a snapshot (each waits for the
    answers asked before it), every tick is logged and ``check`` passes. Nothing here is
    timed: ``--impl-timeout`` is long, so a loaded machine makes ticks late, not failed."""
    argv = build(language, tmp_path)
    done, run_dir, meta = run(tmp_path, "--impl", " ".join(argv), "--duration", "2",
                              "--rates", f"{rate},{rate},{rate}", "--impl-timeout", "30",
                              "--loss", "0.1", "--duplicate", "0.1", "--clock-skew", "50",
                              "--pause", "2@0.5+0.3", "--crash", "3@1.5", "--snapshot", "1@1",
                              "--seed", "3")
    assert done.returncode == 0, done.stderr
    assert meta["status"] == "completed"
    by_id = {m["id"]: m for m in meta["machines"]}
    assert by_id[1]["ticks"] == 2 * rate  # every deadline kept its tick, however late
    for mid in ("1", "2"):
        answers = meta["impl"]["machines"][mid]["answer_ms"]
        assert answers["n"] == by_id[int(mid)]["ticks"]  # one answer a tick logged
    ticks = [x["tick"] for x in lines(run_dir, 1) if x["event"] in ("internal", "send", "receive")]
    assert ticks == list(range(1, 2 * rate + 1))  # logged in order, none missing
    snaps = 0
    for mid in (1, 2, 3):  # a snapshot records the clocks of its machine's last tick logged
        logged = {x["tick"]: x for x in lines(run_dir, mid)
                  if x["event"] in ("internal", "send", "receive")}
        for snap in (x for x in lines(run_dir, mid) if x["event"] == "snapshot"):
            snaps += 1
            tick = logged[snap["tick"]]
            assert (snap["lclock"], snap["vclock"]) == (tick["lclock"], tick["vclock"]), snap
    assert snaps
    checked = lclock("check", str(run_dir))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert not programs_of(run_dir.name)


def test_analyze_report_and_view_work_on_a_programs_run(tmp_path: Path) -> None:
    done, run_dir, _meta = run(tmp_path, "--impl", " ".join(build("python", tmp_path)),
                               "--duration", "3", "--rates", "5,8,10")
    assert done.returncode == 0, done.stderr
    for args in (["analyze", str(run_dir)], ["report", str(run_dir)],
                 ["view", str(run_dir)]):
        out = lclock(*args)
        assert out.returncode == 0, (args, out.stderr)
    assert (run_dir / "report.html").is_file() and (run_dir / "explorer.html").is_file()


BROKEN = {
    "wrong-tick": ('if req["tick"] == 5: done["tick"] = 4',
                   "answer for tick 4, expected tick 5 (a tick already answered: answered twice, "
                   "or the wrong tick written?)"),
    "not-json": ('if req["tick"] == 5: print("hello", flush=True); continue', "not JSON"),
    "exits": ('if req["tick"] == 5: sys.stderr.write("bye\\n"); sys.exit(3)',
              "exited with code 3"),
    "late": ('if req["tick"] == 5: time.sleep(60)', "no answer within 0.5 s"),
    # its child holds its stdout open: the exit is named at the deadline, not "no answer"
    "exits-leaving-a-child": ('if req["tick"] == 5: os.fork() and sys.exit(3); time.sleep(60)',
                              "exited with code 3"),
    "no-newline": ('if req["tick"] == 5: sys.stdout.write(json.dumps({"type": "done", "tick": 5}));'
                   ' sys.stdout.flush(); time.sleep(60)',
                   'no answer within 0.5 s (it wrote 27 bytes with no end of line: '
                   '{"type": "done", "tick": 5}; every answer ends with \\n)'),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_program_fails_its_machine_and_the_others_stop(case: str,
                                                                tmp_path: Path) -> None:
    body, reason = BROKEN[case]
    done, run_dir, meta = run(tmp_path, "--impl", f"2={program(tmp_path, body)}",
                              "--impl-timeout", "0.5", "--duration", "6", "--rates", "5,5,5")
    assert done.returncode == 1 and f"run failed: machine 2: {reason}" in done.stderr
    assert (meta["status"], meta["exit_code"]) == ("failed", 1)
    assert meta["reason"] == f"machine 2: {reason}"
    error = next(x for x in lines(run_dir, 2) if x["event"] == "error")
    assert (error["level"], error["tick"], error["reason"]) == ("error", 5, reason)
    assert "tick" in error["line"] or case == "not-json"
    for mid in (1, 3):
        assert (lines(run_dir, mid)[-1]["event"], lines(run_dir, mid)[-1]["reason"]) == (
            "stop", "peer_failed")
    entry = meta["machines"][1]
    assert (entry["exit_code"], entry["reason"], entry["failed"]) == (1, "program_failed", reason)
    assert meta["impl"]["machines"]["2"]["failed"]["reason"] == reason
    if case == "exits":
        assert meta["impl"]["machines"]["2"]["stderr_tail"] == "bye\n"
    checked = lclock("check", str(run_dir))
    assert "run.json:" not in checked.stdout, checked.stdout  # the record is true to the logs
    assert not programs_of(run_dir.name)


def test_a_program_that_fails_init_fails_the_run_before_any_tick(tmp_path: Path) -> None:
    script = tmp_path / "bad.py"
    script.write_text("import sys\nsys.stderr.write('no config\\n')\nsys.exit(2)\n")
    done, run_dir, meta = run(tmp_path, "--impl", f"1={sys.executable} {script}",
                              "--duration", "3")
    assert done.returncode == 1 and meta["reason"] == "machine 1: exited with code 2"
    assert [x["event"] for x in lines(run_dir, 1)] == ["start", "error", "stop"]
    assert not any(x["event"] in ("internal", "send", "receive") for x in lines(run_dir, 2))
    assert meta["impl"]["machines"]["1"]["stderr_tail"] == "no config\n"


HIDES = '''\
signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
'''


def test_a_program_that_ignores_sigterm_and_hides_a_child_leaves_nothing(tmp_path: Path) -> None:
    body = 'if req["tick"] == 3: time.sleep(60)'
    done, run_dir, meta = run(tmp_path, "--impl", program(tmp_path, body, head=HIDES),
                              "--impl-timeout", "0.5", "--duration", "4", "--rates", "5,5,5")
    assert done.returncode == 1 and "no answer within 0.5 s" in meta["reason"]
    assert not programs_of(run_dir.name)


def test_a_lamport_only_program_narrows_every_machine_to_lamport(tmp_path: Path) -> None:
    done, run_dir, meta = run(tmp_path, "--impl", f"3={program(tmp_path, '')}",
                              "--duration", "3", "--rates", "5,5,5")
    assert done.returncode == 0, done.stderr
    assert meta["clocks"]["kept"] == ["lamport"] and "keeps only lamport" in meta["impl"]["note"]
    for mid in (1, 2, 3):
        assert lines(run_dir, mid)[0]["vector_clocks"] is False
        ticks = [x for x in lines(run_dir, mid) if x["event"] in ("internal", "send", "receive")]
        assert ticks and all("vclock" not in x and "hlc" not in x for x in ticks)
    assert lclock("check", str(run_dir)).returncode == 0


def test_a_program_that_keeps_every_clock_runs_beside_a_lamport_only_one(tmp_path: Path) -> None:
    """Each machine's program answers its own ``init``; the run keeps only Lamport's, so
    the reference program, which kept every clock, is started again offered only those."""
    reference = " ".join(build("python", tmp_path))
    done, run_dir, meta = run(tmp_path, "--impl", f"1={reference}",
                              "--impl", f"3={program(tmp_path, '')}",
                              "--duration", "3", "--rates", "5,5,5", "--clock-skew", "100")
    assert done.returncode == 0, done.stderr
    assert meta["clocks"]["kept"] == ["lamport"]
    assert "the run keeps ['lamport']" in meta["impl"]["machines"]["1"]["started_again"]
    ticks = [x for x in lines(run_dir, 1) if x["event"] in ("internal", "send", "receive")]
    assert ticks and all("vclock" not in x and "pt" in x for x in ticks)
    assert lclock("check", str(run_dir)).returncode == 0


STAMPS = '''\
import threading
def stamp():
    while True:
        sys.stderr.write("%.3f\\n" % time.time()); sys.stderr.flush(); time.sleep(0.02)
threading.Thread(target=stamp, daemon=True).start()
'''


def test_a_pause_freezes_the_program_and_a_crash_kills_it(tmp_path: Path) -> None:
    done, run_dir, meta = run(tmp_path, "--impl", program(tmp_path, "", head=STAMPS),
                              "--duration", "6", "--rates", "5,5,5", "--pause", "2@1+2.5",
                              "--crash", "3@3")
    assert done.returncode == 0, done.stderr
    assert [a["kind"] for a in meta["faults"]["applied"]] == ["pause", "crash", "resume"]
    # the program's own clock thread stood still while its machine was paused
    stamps = [float(x) for x in (run_dir / "machine-2.stderr").read_text().split()]
    assert max(b - a for a, b in zip(stamps, stamps[1:])) > 1.5
    assert lines(run_dir, 3)[-1]["event"] != "stop"
    assert len(meta["impl"]["machines"]["3"]["sha256"]) == 64
    # what the crashed program wrote to stderr is kept as the others' is; its empty
    # scratch folder goes as theirs does
    crashed = (run_dir / "machine-3.stderr").read_text().split()
    assert crashed and all(float(x) > 0 for x in crashed)
    assert not (run_dir / "machine-3.scratch").exists()
    assert lclock("check", str(run_dir)).returncode == 0
    assert not programs_of(run_dir.name)


@contextmanager
def hiding_programs_running(tmp_path: Path, out: Path,
                            rates: str) -> Iterator[tuple[subprocess.Popen[Any], str]]:
    """``lclock run --impl`` of a program that hides a child in a session of its own, once
    every program and child runs: (the lclock process, the run's mark)."""
    cmd = [sys.executable, "-m", "lclock", "run", "--impl", program(tmp_path, "", head=HIDES),
           "--duration", "60", "--rates", rates, "--output", str(out), "--no-report"]
    with started(cmd, ROOT) as proc:
        assert wait_for(lambda: len(run_dirs(out)) == 1, 60)
        mark = run_dirs(out)[0].name
        assert wait_for(lambda: len(programs_of(mark)) >= 6, 60)  # programs, children
        yield proc, mark


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_nothing_of_a_program_outlives_lclock_however_it_ends(how: int, tmp_path: Path) -> None:
    out = tmp_path / "out"
    try:
        with hiding_programs_running(tmp_path, out, "5,5,5") as (proc, mark):
            time.sleep(0.5)
            proc.send_signal(how)
            proc.wait(timeout=30)
            assert wait_for(lambda: not programs_of(mark), 15), programs_of(mark)
    finally:
        end_programs(out)


def status(pid: int) -> str | None:
    """The process's state, None once it is gone (it may end while we look)."""
    try:
        return str(psutil.Process(pid).status())
    except psutil.Error:
        return None


def stopped_before_any_tick(proc: subprocess.Popen[bytes], out: Path) -> str:
    """That the run ``proc`` made in ``out`` ended on Ctrl-C before its first tick, every
    machine gracefully (its stop line logged, exit 0); the run's id."""
    meta = orjson.loads((run_dirs(out)[0] / "run.json").read_bytes())
    assert proc.returncode == 130 and meta["status"] == "interrupted"
    assert [m["exit_code"] for m in meta["machines"]] == [0, 0, 0]
    for mid in (1, 2, 3):
        log = lines(run_dirs(out)[0], mid)
        assert [x["event"] for x in log] == ["start", "stop"]
        assert log[-1]["reason"] == "sigint"
    return str(meta["run_id"])


def test_a_stop_while_programs_have_not_answered_init_is_graceful(tmp_path: Path) -> None:
    """Ctrl-C while every program is still silent after its start (a slow starter): the
    machines stop at once and gracefully (each logs its stop, exits 0), none waits out the
    init timeout and is killed by the launcher with an empty log."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "lclock", "run", "--impl",
           program(tmp_path, "", head="time.sleep(60)\n"), "--duration", "5",
           "--rates", "5,5,5", "--output", str(out), "--no-report", "--quiet"]
    try:
        with started(cmd, ROOT) as proc:
            assert wait_for(lambda: len(run_dirs(out)) == 1, 60)
            mark = run_dirs(out)[0].name
            assert wait_for(lambda: len(programs_of(mark)) >= 3, 60)
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
        stopped_before_any_tick(proc, out)
        assert not programs_of(mark)
    finally:
        end_programs(out)


def test_a_stop_while_a_program_started_again_has_not_answered_init_is_graceful(
        tmp_path: Path) -> None:
    """The same in the second ``init`` of a program started again (it kept clocks the
    Lamport-only machine 1 does not): machines 2 and 3 were SIGKILLed after the grace, with
    empty logs, as that ``init`` was not watched for the stop."""
    again = tmp_path / "again.py"
    again.write_text(textwrap.dedent(f"""\
        import os, runpy, time
        mark = os.path.join({str(tmp_path)!r}, os.path.basename(os.environ["LCLOCK_SCRATCH"]))
        if os.path.exists(mark):  # the second start: silent in init
            open(mark + ".again", "w").close()
            time.sleep(60)
        open(mark, "w").close()
        runpy.run_path({str(ROOT / "examples" / "impl" / "python" / "vm.py")!r})
    """))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "lclock", "run", "--impl", f"1={program(tmp_path, '')}",
           "--impl", f"2={sys.executable} {again}", "--impl", f"3={sys.executable} {again}",
           "--duration", "5", "--rates", "5,5,5", "--output", str(out), "--no-report",
           "--quiet"]
    try:
        with started(cmd, ROOT) as proc:
            assert wait_for(lambda: len(list(tmp_path.glob("*.again"))) == 2, 60)
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
        assert not programs_of(stopped_before_any_tick(proc, out))
    finally:
        end_programs(out)


HANGS_AT_3 = """\
if req["tick"] == 3:
    open(os.path.join(os.environ["LCLOCK_SCRATCH"], "hung"), "w").close()
    time.sleep(60)
"""


def test_a_stop_while_a_program_is_silent_stops_gracefully_after_the_grace(
        tmp_path: Path) -> None:
    """Ctrl-C while every program sits on a tick (its timeout far off): once the launcher's
    grace is over, the machines give up the unanswered ticks (not done, no error: lclock
    stopped, the program did not fail) and stop gracefully, before they would be killed."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "lclock", "run", "--impl",
           program(tmp_path, HANGS_AT_3), "--impl-timeout", "60",
           "--duration", "30", "--rates", "5,5,5", "--output", str(out), "--no-report",
           "--quiet"]

    def asked_tick_3(mid: int) -> bool:
        """The program has tick 3 and will not answer it (it said so in its scratch)."""
        return (run_dirs(out)[0] / f"machine-{mid}.scratch" / "hung").exists()

    try:
        with started(cmd, ROOT) as proc:
            assert wait_for(lambda: len(run_dirs(out)) == 1, 60)
            mark = run_dirs(out)[0].name
            assert wait_for(lambda: all(asked_tick_3(mid) for mid in (1, 2, 3)), 60)
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
        run_dir = run_dirs(out)[0]
        meta = orjson.loads((run_dir / "run.json").read_bytes())
        assert proc.returncode == 130 and meta["status"] == "interrupted"
        assert [m["exit_code"] for m in meta["machines"]] == [0, 0, 0]
        for mid in (1, 2, 3):
            log = lines(run_dir, mid)
            assert log[-1]["event"] == "stop" and log[-1]["reason"] == "sigint"
            assert log[-1]["ticks"] == 2 and not any(x["event"] == "error" for x in log)
            assert "failed" not in meta["impl"]["machines"][str(mid)]
        assert lclock("check", str(run_dir)).returncode == 0
        assert not programs_of(mark)
    finally:
        end_programs(out)


HANGS_AT_STOP = """\
_send = send
def send(obj):
    if obj.get("type") == "stop_ok":
        open(os.path.join(os.environ["LCLOCK_SCRATCH"], "stopping"), "w").close()
        time.sleep(60)
    _send(obj)
"""


def test_a_stop_while_programs_do_not_answer_stop_is_graceful(tmp_path: Path) -> None:
    """The run is over and every program sits on its ``stop`` (its timeout far off) when
    Ctrl-C comes: once the launcher hurries, the machines wait no more for ``stop_ok`` and
    log their stop (the program abandoned, not failed), before they would be killed."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "lclock", "run", "--impl",
           program(tmp_path, "", head=HANGS_AT_STOP), "--impl-timeout", "60",
           "--duration", "1", "--rates", "5,5,5", "--output", str(out), "--no-report", "--quiet"]
    try:
        with started(cmd, ROOT) as proc:
            assert wait_for(lambda: len(run_dirs(out)) == 1, 60)
            run_dir = run_dirs(out)[0]
            assert wait_for(lambda: all((run_dir / f"machine-{mid}.scratch" / "stopping").exists()
                                        for mid in (1, 2, 3)), 60)
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
        meta = orjson.loads((run_dir / "run.json").read_bytes())
        assert proc.returncode == 130 and meta["status"] == "interrupted"
        assert [m["exit_code"] for m in meta["machines"]] == [0, 0, 0]
        for mid in (1, 2, 3):
            assert lines(run_dir, mid)[-1]["event"] == "stop"
            assert "failed" not in meta["impl"]["machines"][str(mid)]
        assert lclock("check", str(run_dir)).returncode == 0
        assert not programs_of(run_dir.name)
    finally:
        end_programs(out)


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_a_run_killed_whole_leaves_no_program_behind(tmp_path: Path) -> None:
    """SIGKILL to the launcher and every worker at once (the group of ``lclock run``), so no
    lclock process can act: each program dies of its parent-death signal when its worker
    does, and what it started in a session of its own is ended by its worker's watchdog
    (``lclock.impl.jail``), the real-run path of what the simulator's SIGKILL test shows."""
    import os

    out = tmp_path / "out"
    try:
        with hiding_programs_running(tmp_path, out, "50,50,50") as (proc, mark):
            lclocks = [c for c in psutil.Process(proc.pid).children(recursive=True)
                       if JAIL_ENV not in c.environ()]  # the workers (and the forkserver)
            assert len(lclocks) >= 3
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            assert wait_for(lambda: not any(alive(c) for c in lclocks), 15)
            assert wait_for(lambda: not programs_of(mark), 15), programs_of(mark)
    finally:
        end_programs(out)


@pytest.mark.timeout(120)
def test_a_run_killed_whole_while_a_program_is_paused_leaves_nothing(tmp_path: Path) -> None:
    """The same while a program is paused: frozen, it cannot die of its SIGKILL until its
    freezer group is thawed, so the watchdog thaws it (it stayed frozen, in state D, for
    ever, and lclock grade's kills of its user spun on it)."""
    import os

    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "lclock", "run", "--impl", program(tmp_path, ""),
           "--duration", "60", "--pause", "1@5%+90%", "--output", str(out), "--no-report"]
    stopped = (psutil.STATUS_DISK_SLEEP, psutil.STATUS_STOPPED)
    try:
        with started(cmd, ROOT) as proc:
            assert wait_for(lambda: len(run_dirs(out)) == 1, 60)
            mark = run_dirs(out)[0].name

            def paused() -> bool:
                return any(status(pid) in stopped for pid in programs_of(mark))

            assert wait_for(paused, 60)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            assert wait_for(lambda: not programs_of(mark), 15), programs_of(mark)
    finally:
        end_programs(out)


def vm_cluster(tmp_path: Path, cfg: Path, out: Path, *extra: str) -> list[tuple[int, str]]:
    """Every vm of the cluster (one program each), in its own session; their exits."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        stack.callback(end_programs, out)
        procs = [stack.enter_context(started(
            [sys.executable, "-m", "lclock", "vm", "--machine-id", str(i), "--settings", str(cfg),
             "--output", str(out), "--wait", "30", "--quiet", *extra], tmp_path))
            for i in (3, 2, 1)]
        results = []
        for proc in procs:
            _out, err = proc.communicate(timeout=60)
            results.append((proc.returncode, err.decode()))
    return results[::-1]


VM_CASES = {
    "c": (),
    # the Python program at a rate where its ticks are asked ahead, under faults and skew
    "python": ("--rates", "100,150,200", "--seed", "9", "--loss", "0.1", "--duplicate", "0.1",
               "--clock-skew", "50", "--impl-timeout", "30"),
}


@pytest.mark.parametrize("language", list(VM_CASES))
def test_lclock_vm_runs_one_program_per_vm_and_check_passes(language: str,
                                                           tmp_path: Path) -> None:
    from tcp_helpers import free_ports, write_cluster

    cfg = write_cluster(tmp_path / "cluster.toml", free_ports(3), rates=[10, 20, 30], duration=3)
    out = tmp_path / "out"
    results = vm_cluster(tmp_path, cfg, out, "--impl", " ".join(build(language, tmp_path)),
                         *VM_CASES[language])
    assert [code for code, _e in results] == [0, 0, 0], results
    (run_dir,) = run_dirs(out)
    meta = orjson.loads((run_dir / "run.json").read_bytes())
    assert meta["status"] == "completed" and sorted(meta["impl"]["machines"]) == ["1", "2", "3"]
    assert all(len(e["sha256"]) == 64 and e["answer_ms"]["n"] > 0
               for e in meta["impl"]["machines"].values())
    checked = lclock("check", str(run_dir))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert not programs_of(run_dir.name)


def test_a_vm_whose_program_keeps_fewer_clocks_fails_and_says_why(tmp_path: Path) -> None:
    from tcp_helpers import free_ports, write_cluster

    cfg = write_cluster(tmp_path / "cluster.toml", free_ports(3), rates=[10, 10, 10], duration=3)
    out = tmp_path / "out"
    results = vm_cluster(tmp_path, cfg, out, "--impl", f"2={program(tmp_path, '')}")
    assert results[1][0] == 1 and "keeps only lamport" in results[1][1]
    assert all(code == 1 for code, _e in results)  # the others lost their peer
    (run_dir,) = run_dirs(out)
    assert [x["event"] for x in lines(run_dir, 2)][:2] == ["start", "error"]
    assert not programs_of(run_dir.name)


def test_a_real_experiment_runs_its_trials_programs(tmp_path: Path) -> None:
    """settings.toml's ``impl`` (a table of machine ids) in a real experiment's trials."""
    settings = tmp_path / "settings.toml"
    settings.write_text(textwrap.dedent(f"""\
        machines = 3
        rates = [5, 5, 5]
        [impl]
        2 = "{program(tmp_path, '')}"
        [experiments.one]
        trials = 1
        duration = 2
    """))
    try:
        done = lclock("experiment", "one", "--settings", str(settings), "--output",
                      str(tmp_path / "out"), cwd=tmp_path)
    finally:
        end_programs(tmp_path / "out" / "one")
    assert done.returncode == 0, done.stderr
    (run_json,) = (tmp_path / "out").rglob("run.json")
    meta = orjson.loads(run_json.read_bytes())
    assert meta["status"] == "completed" and list(meta["impl"]["machines"]) == ["2"]
    assert meta["clocks"]["kept"] == ["lamport"]
