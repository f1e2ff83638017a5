"""Programs as machines in the simulator (SPEC 9): the same run as the model, or a failure
that is the program's, never lclock's.

A reference program keeps exactly the model's clocks, so a simulated run of it is the
built-in run of the same seed, line for line (the run id aside), under faults and skewed
clocks too. A broken program fails its machine with an ``error`` line that says why; the
others stop gracefully; the run is ``failed``; nothing of any program is left running.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import orjson
import psutil
import pytest

from lclock.analysis.check import check_run
from lclock.impl.jail import JAIL_ENV
from lclock.impl.machine import Programs
from lclock.impl.program import ProgramSpec
from lclock.impl.protocol import Clocks
from lclock.sim.engine import NetworkSettings, run_sim
from tests.impl_programs import LANGUAGES, build, sim_settings
from tests.impl_programs import lamport_program as program

pytestmark = pytest.mark.timeout(180)

BASE = sim_settings("--duration", "20", "--seed", "11", "--rates", "2,3,5")


def lines(run_dir: Path, mid: int) -> list[dict[str, object]]:
    out = []
    for raw in (run_dir / f"machine-{mid}.jsonl").read_bytes().splitlines():
        line = orjson.loads(raw)
        line.pop("run_id")
        out.append(line)
    return out


def no_program_left() -> bool:
    """No program this test process started is alive (programs of other lclocks running on
    the same machine at the same time, another test session's, are not ours to judge)."""
    ours = f"lclock-{os.getpid()}-"
    for proc in psutil.process_iter(["environ"]):
        try:
            mark = (proc.info["environ"] or {}).get(JAIL_ENV, "")
            if mark.startswith(ours) and proc.status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.Error:
            pass
    return True


@pytest.fixture(scope="module", params=LANGUAGES)
def command(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    argv = build(request.param, tmp_path_factory.mktemp(request.param))
    return " ".join(argv)


SETTINGS = {
    "perfect": BASE,
    "faults-and-skew": sim_settings("--duration", "20", "--seed", "11", "--rates", "2,3,5",
                                    "--loss", "0.2", "--duplicate", "0.2", "--latency", "300",
                                    "--reorder", "--clock-skew", "200", "--clock-drift", "500",
                                    "--pause", "1@4+3"),
}


@pytest.mark.parametrize("case", list(SETTINGS))
def test_a_reference_program_runs_exactly_as_the_model(command: str, case: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def no_replay(*_a: object) -> None:
        raise AssertionError("asked ahead, a correct program needs no replay in lock-step")

    monkeypatch.setattr("lclock.impl.machine.Programs.restart", no_replay)
    settings = SETTINGS[case]
    model, _m, _meta = run_sim(settings, NetworkSettings(), tmp_path / "model")
    ran, machines, meta = run_sim(settings, NetworkSettings(), tmp_path / "impl",
                                  impl={i: ProgramSpec(command) for i in (1, 2, 3)})
    assert meta["status"] == "completed" and meta["exit_code"] == 0
    for mid in (1, 2, 3):
        assert lines(ran, mid) == lines(model, mid)
        entry = meta["impl"]["machines"][str(mid)]
        assert entry["command"] == command and entry["sha256"]
    assert [m["lclock"] for m in machines] == [m["lclock"] for m in _m]
    assert no_program_left()


def test_one_machine_of_a_program_among_built_in_ones(command: str, tmp_path: Path) -> None:
    model, _m, _meta = run_sim(BASE, NetworkSettings(), tmp_path / "model")
    ran, _machines, meta = run_sim(BASE, NetworkSettings(), tmp_path / "impl",
                                   impl={2: ProgramSpec(command)})
    assert meta["status"] == "completed"
    assert list(meta["impl"]["machines"]) == ["2"]
    for mid in (1, 2, 3):
        assert lines(ran, mid) == lines(model, mid)


BROKEN = {
    "wrong-tick": ('if req["tick"] == 5: done["tick"] = 4',
                   "answer for tick 4, expected tick 5 (a tick already answered: answered twice, "
                   "or the wrong tick written?)"),
    "not-json": ('if req["tick"] == 5: print("hello", flush=True); continue', "not JSON"),
    "exits": ('if req["tick"] == 5: sys.exit(3)', "exited with code 3"),
    "killed": ('if req["tick"] == 5: os.kill(os.getpid(), 9)', "killed by signal 9 (SIGKILL)"),
    # its child holds its stdout open: the exit is still seen, not waited out as a hang
    "exits-leaving-a-child": ('if req["tick"] == 5: os.fork() and sys.exit(3); time.sleep(60)',
                              "exited with code 3"),
    "extra-clock": ('if req["tick"] == 5: done["vclock"] = [1, 2, 3]', "keeps no vector clock"),
    "float": ('if req["tick"] == 5: done["lclock"] = 5.0', "must be an integer"),
    "hangs": ('if req["tick"] == 5: time.sleep(60)', "no answer within 2 s"),
    "no-newline": ('if req["tick"] == 5: sys.stdout.write(json.dumps({"type": "done", "tick": 5}));'
                   ' sys.stdout.flush(); time.sleep(60)',
                   'no answer within 2 s (it wrote 27 bytes with no end of line: '
                   '{"type": "done", "tick": 5}; every answer ends with \\n)'),
    "endless-line": ('if req["tick"] == 5: sys.stdout.write("x" * 3_000_000); sys.stdout.flush();'
                     ' time.sleep(60)', "a line of more than 1048576 bytes"),
    "nan": ('if req["tick"] == 5: print(json.dumps(done).replace("5", "NaN", 1), flush=True);'
            ' continue', "not JSON: NaN"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_program_fails_its_machine_and_the_others_stop(case: str,
                                                                tmp_path: Path) -> None:
    body, reason = BROKEN[case]
    spec = ProgramSpec(program(tmp_path, body), timeout=0.2)
    run_dir, machines, meta = run_sim(BASE, NetworkSettings(), tmp_path / "out",
                                      impl={2: spec})
    assert (meta["status"], meta["exit_code"]) == ("failed", 1)
    assert meta["reason"].startswith("machine 2: ") and reason in meta["reason"]
    last = lines(run_dir, 2)[-1]
    assert (last["event"], last["level"], last["tick"]) == ("error", "error", 5)
    assert reason in str(last["reason"])
    for mid in (1, 3):
        stop = lines(run_dir, mid)[-1]
        assert (stop["event"], stop["reason"]) == ("stop", "peer_failed")
    entry = next(m for m in machines if m["id"] == 2)
    assert entry["exit_code"] == 1 and reason in entry["failed"]
    assert entry["reason"] == "program_failed"
    assert reason in meta["impl"]["machines"]["2"]["failed"]["reason"]
    assert no_program_left()


def test_a_program_that_fails_init_fails_the_run_before_any_tick(tmp_path: Path) -> None:
    script = tmp_path / "bad.py"
    script.write_text("import sys\nsys.stderr.write('cannot start: no config\\n')\nsys.exit(2)\n")
    run_dir, _machines, meta = run_sim(BASE, NetworkSettings(), tmp_path / "out",
                                       impl={1: ProgramSpec(f"{sys.executable} {script}")})
    assert meta["status"] == "failed" and "exited with code 2" in meta["reason"]
    assert [line["event"] for line in lines(run_dir, 1)] == ["start", "connected", "error"]
    assert "cannot start: no config" in meta["impl"]["machines"]["1"]["stderr_tail"]
    assert (run_dir / "machine-1.stderr").read_bytes() == b"cannot start: no config\n"
    assert no_program_left()


def test_a_command_that_cannot_start_says_so_not_only_its_exit_code(tmp_path: Path) -> None:
    run_dir, _machines, meta = run_sim(BASE, NetworkSettings(), tmp_path / "out",
                                       impl={2: ProgramSpec("no-such-program-19 --x")})
    reason = "cannot start no-such-program-19: No such file or directory"
    assert (meta["status"], meta["reason"]) == ("failed", f"machine 2: {reason}")
    assert lines(run_dir, 2)[-1]["reason"] == reason
    assert no_program_left()


def test_in_the_simulator_stop_has_the_patience_of_a_tick(tmp_path: Path) -> None:
    """Time stands still while a program thinks: ``stop`` too may take ``--impl-timeout``
    x 10, as every tick may (SPEC 9.4), not the bare timeout of a real run."""
    command = program(tmp_path, "", head="""\
        _send = send
        def send(obj):
            if obj["type"] == "stop_ok":
                time.sleep(0.5)
            _send(obj)
    """)
    run_dir, _machines, meta = run_sim(BASE, NetworkSettings(), tmp_path / "out",
                                       impl={2: ProgramSpec(command, timeout=0.2)})
    assert (meta["status"], meta["exit_code"]) == ("completed", 0), meta.get("reason")
    assert lines(run_dir, 2)[-1]["event"] == "stop"
    assert no_program_left()


@pytest.mark.slow
def test_after_a_failure_the_other_programs_are_asked_to_stop_at_once(tmp_path: Path) -> None:
    """Machine 1 hangs; machines 2 and 3 get ``stop`` together, not the second only after
    the first has answered (or timed out: after one program hung, its peers often hang
    too, and each would cost a whole timeout in turn). Each, on ``stop``, waits a moment
    for the other's mark: only asked at once do both see it."""
    marks = tmp_path / "marks"
    marks.mkdir()
    command = program(tmp_path, 'if req["tick"] == 5 and ME == 1: time.sleep(60)', head=f"""\
        ME = int(os.environ["LCLOCK_MACHINE"])
        MARKS = {str(marks)!r}
        _send = send
        def send(obj):
            if obj["type"] == "stop_ok":
                open(os.path.join(MARKS, f"stop-{{ME}}"), "w").close()
                other = os.path.join(MARKS, f"stop-{{5 - ME}}")
                end = time.monotonic() + 2
                while not os.path.exists(other) and time.monotonic() < end:
                    time.sleep(0.01)
                if os.path.exists(other):
                    open(os.path.join(MARKS, f"saw-{{ME}}"), "w").close()
            _send(obj)
    """)
    spec = ProgramSpec(command, timeout=0.3)
    run_dir, _machines, meta = run_sim(BASE, NetworkSettings(), tmp_path / "out",
                                       impl={1: spec, 2: spec, 3: spec})
    assert meta["status"] == "failed" and meta["reason"].startswith("machine 1: no answer")
    for mid in (2, 3):
        assert lines(run_dir, mid)[-1]["reason"] == "peer_failed"
    assert sorted(p.name for p in marks.iterdir()) == ["saw-2", "saw-3", "stop-2", "stop-3"]
    assert no_program_left()


def test_a_lamport_only_program_narrows_the_run_to_lamport(tmp_path: Path) -> None:
    run_dir, _machines, meta = run_sim(BASE, NetworkSettings(), tmp_path / "out",
                                       impl={3: ProgramSpec(program(tmp_path, ""))})
    assert meta["status"] == "completed"
    assert meta["clocks"]["kept"] == ["lamport"] and meta["impl"]["clocks_kept"] == ["lamport"]
    assert "keeps only lamport" in meta["impl"]["note"]
    assert meta["settings"]["vector_clocks"] is False and meta["settings"]["clocks"]["hlc"] is False
    assert meta["impl"]["clocks_offered"] == ["lamport", "vector", "hlc"]
    for mid in (1, 2, 3):
        ticks = [line for line in lines(run_dir, mid) if "tick" in line]
        assert ticks and all("vclock" not in line and "hlc" not in line for line in ticks)


@pytest.mark.parametrize("flags", [("--snapshot", "1@50%"), ()], ids=["lock-step", "ahead"])
def test_a_program_that_keeps_every_clock_runs_beside_a_lamport_only_one(
        flags: tuple[str, ...], tmp_path: Path) -> None:
    """The reference program kept every clock offered, but the run keeps only Lamport's:
    it is started again and offered only those, so it answers none of the others (an
    answer with a clock the run does not keep would fail it)."""
    settings = sim_settings("--duration", "20", "--seed", "11", "--rates", "2,3,5", *flags)
    reference = " ".join(build("python", tmp_path))
    impl = {1: ProgramSpec(reference), 2: ProgramSpec(program(tmp_path, ""))}
    run_dir, _machines, meta = run_sim(settings, NetworkSettings(), tmp_path / "out", impl=impl)
    assert meta["status"] == "completed", meta["reason"]
    assert meta["impl"]["clocks_kept"] == ["lamport"]
    assert meta["impl"]["machines"]["1"]["started_again"] == (
        "it kept ['lamport', 'vector', 'hlc'], the run keeps ['lamport']")
    assert "started_again" not in meta["impl"]["machines"]["2"]
    assert not check_run(run_dir).errors
    programs = Programs(impl, tmp_path, 11, 3)
    try:
        assert programs.start(Clocks()) == Clocks(vector=False, hlc=False)
        assert programs.own[1] == Clocks(vector=False, hlc=False)
    finally:
        programs.close()
    assert no_program_left()


def test_a_program_is_not_started_again_when_the_run_keeps_more_than_it(tmp_path: Path) -> None:
    """A real run stopped before the launcher's word on the clocks keeps its plan (every
    clock): the Lamport-only program is left as it is, not started again nor failed."""
    programs = Programs({1: ProgramSpec(program(tmp_path, ""))}, tmp_path, 11, 3)
    try:
        assert programs.start(Clocks()) == Clocks(vector=False, hlc=False)
        first = programs.running[1]
        programs.reoffer(Clocks())
        assert programs.running[1] is first and not programs.failures
    finally:
        programs.close()


def test_with_physical_clocks_a_lamport_only_programs_lines_have_pt(tmp_path: Path) -> None:
    """Physical clocks are logged on every tick whether or not HLC is kept (section 7),
    a program's machine as a built-in one's; only the request leaves ``pt`` out."""
    settings = sim_settings("--duration", "20", "--seed", "11", "--rates", "2,3,5",
                            "--clock-skew", "200")
    run_dir, _machines, meta = run_sim(settings, NetworkSettings(), tmp_path / "out",
                                       impl={2: ProgramSpec(program(tmp_path, ""))})
    assert meta["status"] == "completed" and meta["clocks"]["pt"] is True
    ticks = [x for x in lines(run_dir, 2) if x["event"] in ("internal", "send", "receive")]
    assert ticks and all("pt" in x for x in ticks)
    assert not check_run(run_dir).errors


def test_a_stop_while_a_program_is_silent_ends_the_simulation_without_its_timeout(
        tmp_path: Path) -> None:
    """Ctrl-C while the simulator waits for a hung program (it would wait 10 x the answer
    timeout, then replay the run in lock-step and wait again): a second later the run ends,
    interrupted, not failed; run.json claims no stop report the logs do not have."""
    import glob
    import signal
    import threading

    from lclock.lifecycle import StopRequest
    from lclock.sim.engine import SimStopped

    body = """\
    if req["tick"] == 3:
        open(os.path.join(os.environ["LCLOCK_SCRATCH"], "hung"), "w").close()
        time.sleep(120)
    """
    spec = ProgramSpec(program(tmp_path, body), timeout=5.0)
    stop = StopRequest()
    hung = str(tmp_path / "out" / "*" / "machine-2.scratch" / "hung")

    def press_ctrl_c() -> None:
        while not glob.glob(hung):
            time.sleep(0.02)
        stop.record(signal.SIGINT)

    watcher = threading.Thread(target=press_ctrl_c, daemon=True)
    watcher.start()
    with pytest.raises(SimStopped):
        run_sim(BASE, NetworkSettings(), tmp_path / "out", impl={2: spec}, stop=stop)
    (run_dir,) = [Path(p) for p in glob.glob(str(tmp_path / "out" / "*"))]
    meta = orjson.loads((run_dir / "run.json").read_bytes())
    assert meta["status"] == "interrupted" and meta["reason"] == "sigint"
    assert all(m["ticks"] is None and "stop" in m["note"] for m in meta["machines"])
    assert not any(x["event"] == "error" for x in lines(run_dir, 2))
    assert no_program_left()


def test_a_planned_crash_kills_the_program(tmp_path: Path) -> None:
    settings = sim_settings("--duration", "20", "--seed", "11", "--rates", "2,3,5",
                            "--crash", "2@5")
    run_dir, _machines, meta = run_sim(settings, NetworkSettings(), tmp_path / "out",
                                       impl={2: ProgramSpec(program(tmp_path, ""))})
    assert meta["status"] == "completed"
    assert lines(run_dir, 2)[-1]["event"] != "stop"
    assert no_program_left()


def test_the_program_gets_its_environment_and_a_scratch_folder(tmp_path: Path) -> None:
    body = '''if req["tick"] == 1:
        open(os.path.join(os.environ["LCLOCK_SCRATCH"], "env.json"), "w").write(json.dumps(
            {k: v for k, v in os.environ.items() if k.startswith("LCLOCK_")}))'''
    run_dir, _machines, meta = run_sim(BASE, NetworkSettings(), tmp_path / "out",
                                       impl={2: ProgramSpec(program(tmp_path, body))})
    env = orjson.loads((run_dir / "machine-2.scratch" / "env.json").read_bytes())
    assert {k: env[k] for k in ("LCLOCK_MACHINE", "LCLOCK_MACHINES", "LCLOCK_SEED")} == {
        "LCLOCK_MACHINE": "2", "LCLOCK_MACHINES": "3", "LCLOCK_SEED": "11"}
    assert meta["status"] == "completed"
    assert os.path.samefile(env["LCLOCK_SCRATCH"], run_dir / "machine-2.scratch")
