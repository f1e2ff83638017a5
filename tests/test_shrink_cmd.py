"""``lclock shrink``, as a user types it: a run of a buggy program shrinks to a handful of
events on two machines that still show its finding; Ctrl-C keeps the smallest so far; bad
input is one line, exit 2, and a run with nothing to shrink exit 3, nothing created.

The buggy programs are the Python reference program with one rule broken, as a student
would break it (``receive: L = L + 1``).
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from lclock.settings import RunSettings
from lclock.shrink.replay import Replay, Replayer, Target, possible
from lclock.shrink.search import SearchInterrupted
from lclock.sim.engine import NetworkSettings
from tests.conftest import started
from tests.impl_programs import IMPL, ROOT

pytestmark = pytest.mark.timeout(300)
REFERENCE = (IMPL / "python" / "vm.py").read_text()
RIGHT_RECEIVE = 'lclock = max(lclock, msg["lclock"]) + 1'


def buggy(folder: Path, slow: float = 0.0, while_exists: Path | None = None) -> str:
    """The reference program with a receive that ignores the message's clock; each tick
    takes ``slow`` seconds more (only while the file ``while_exists`` exists, if given)."""
    assert RIGHT_RECEIVE in REFERENCE
    text = REFERENCE.replace(RIGHT_RECEIVE, "lclock = lclock + 1")
    if slow:
        when = f"__import__('os').path.exists({str(while_exists)!r})" if while_exists else "True"
        text = text.replace("def tick(req):\n",
                            f"def tick(req):\n    if {when}: __import__('time').sleep({slow})\n")
    path = folder / "bad.py"
    path.write_text(text)
    return f"{sys.executable} {path}"


def lclock(*args: str, cwd: Path = ROOT) -> tuple[int, str, str]:
    with started([sys.executable, "-m", "lclock", *args], cwd=cwd, text=True) as proc:
        out, err = proc.communicate(timeout=280)
        return proc.returncode, out, err


def sim(out: Path, *flags: str, cwd: Path = ROOT) -> Path:
    code, stdout, err = lclock("sim", "--output", str(out), "--quiet", "--no-report", *flags, cwd=cwd)
    assert code == 0, err
    return cwd / stdout.strip().rpartition("run folder: ")[2]


def check(run_dir: Path) -> dict[str, Any]:
    code, out, err = lclock("check", "--json", str(run_dir))
    assert code in (0, 1), err
    return dict(json.loads(out))


def folders(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir()) if path.exists() else []


def test_a_wrong_receive_rule_shrinks_to_a_handful_of_events_on_two_machines(tmp_path: Path) -> None:
    run = sim(tmp_path / "runs", "--impl", buggy(tmp_path), "--duration", "20", "--seed", "5",
              "--machines", "4", "--loss", "0.1", "--pause", "3@2+1")
    before = check(run)
    assert before["findings"][0]["rule"] == "lamport"
    out = tmp_path / "small"
    code, stdout, err = lclock("shrink", str(run), "--output", str(out))
    assert code == 0, err
    # the bug check names is not what the smallest run keeps: said, with the way to keep it
    assert any(f.get("bug") == "receive-ignores-message" for f in before["findings"])
    assert "check names the bug receive-ignores-message" in err and "--rule bug" in err
    (small,) = folders(out)
    after = check(small)
    assert after["counts"]["machines"] == 2
    assert after["counts"]["events"] <= 12 < before["counts"]["events"]
    assert any(f["rule"] == "lamport" and f["severity"] == "error" for f in after["findings"])
    settings = json.loads((small / "run.json").read_text())["settings"]
    assert settings["faults"]["loss"] == 0 and settings["faults"]["pauses"] == []
    assert (small / "explorer.html").stat().st_size > 0
    assert (small / "story.svg").read_text().count("<circle") == after["counts"]["events"]
    from lclock.explorer import extract

    data, _notes = extract.build(small, findings=after["findings"])
    marks = data["marks"]
    ringed = [(marks["lane"][i], marks["line"][i]) for i in range(marks["n"])
              if marks["kinds"][marks["kind"][i]] == "finding"]
    named = [(f["machine"], f["line"]) for f in after["findings"] if f["severity"] == "error" and f["line"]]
    assert ringed == named and named
    story = stdout.splitlines()
    assert any("send to" in line for line in story) and any("receive from" in line for line in story)
    assert "smallest run: 2 machines, 0 faults" in stdout and f"run folder: {small}" in stdout


def ctrl_c_at(run: Path, out: Path, progress: str) -> tuple[str, str]:
    """Shrink ``run`` into ``out`` and press Ctrl-C at the first progress line that starts
    with ``progress``; its stdout and stderr, after it exited with 130."""
    cmd = [sys.executable, "-m", "lclock", "shrink", str(run), "--output", str(out)]
    with started(cmd, cwd=ROOT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(progress):
                proc.send_signal(signal.SIGINT)
                break
        rest, err = proc.communicate(timeout=280)
    assert proc.returncode == 130, err
    return rest, err


def test_ctrl_c_keeps_the_smallest_run_so_far(tmp_path: Path) -> None:
    run = sim(tmp_path / "runs", "--impl", buggy(tmp_path, slow=0.02), "--duration", "20",
              "--seed", "5", "--machines", "3")
    out = tmp_path / "small"
    rest, err = ctrl_c_at(run, out, "shrink: shrinking")
    assert "stopped: keeping the smallest run so far" in rest
    (small,) = folders(out)
    assert any(f["rule"] == "lamport" for f in check(small)["findings"])


def test_ctrl_c_before_the_replay_ends_writes_nothing(tmp_path: Path) -> None:
    """The simulator looks at a stop request every 1024 ticks: a run of 10,000 ticks whose
    program takes 2 ms a tick in the replay (not in the run itself, made at full speed) is
    stopped well before its replay ends."""
    slow = tmp_path / "slow"
    run = sim(tmp_path / "runs", "--impl", f"2={buggy(tmp_path, slow=0.002, while_exists=slow)}",
              "--duration", "5", "--seed", "5", "--rates", "1000,1000")
    slow.touch()
    out = tmp_path / "small"
    rest, err = ctrl_c_at(run, out, "shrink: replaying")
    assert "stopped before the run's replay ended: nothing written" in err and rest == ""
    assert not out.exists()


def test_a_correct_run_has_nothing_to_shrink(tmp_path: Path) -> None:
    run = sim(tmp_path / "runs", "--duration", "5", "--seed", "2")
    out = tmp_path / "small"
    code, stdout, err = lclock("shrink", str(run), "--output", str(out))
    assert code == 3 and err.strip() == "lclock shrink: nothing to shrink: check finds no error in this run"
    assert stdout == "" and not out.exists()


def test_a_rule_the_run_does_not_break_has_nothing_to_shrink(tmp_path: Path) -> None:
    run = sim(tmp_path / "runs", "--impl", f"2={buggy(tmp_path)}", "--duration", "10", "--seed", "5")
    code, _out, err = lclock("shrink", str(run), "--rule", "dice", "--output", str(tmp_path / "o"))
    assert code == 3 and "--rule dice: check finds no error of that rule here (it finds: bug, lamport)" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("case", ["no run.json", "imported", "unknown setting", "not a folder"])
def test_a_run_that_cannot_be_replayed_is_one_line_exit_2(tmp_path: Path, case: str) -> None:
    run = tmp_path / "run"
    run.mkdir()
    meta = {"schema": 1, "run_id": "run", "seed": 1, "settings": RunSettings(seed=1).to_json()}
    if case == "imported":
        (run / "run.json").write_text(json.dumps({**meta, "mode": "import"}))
    elif case == "unknown setting":
        meta["settings"]["warp_drive"] = 9
        (run / "run.json").write_text(json.dumps(meta))
    elif case == "not a folder":
        run = tmp_path / "nothing-here"
    out = tmp_path / "small"
    code, stdout, err = lclock("shrink", str(run), "--output", str(out))
    assert code == 2 and stdout == "" and len(err.splitlines()) == 1, err
    assert err.startswith("lclock shrink: error: ")
    expected = {"no run.json": "run.json: missing", "imported": "an imported run cannot be replayed",
                "unknown setting": "run.json: settings.warp_drive: this lclock has no such setting",
                "not a folder": "nothing-here: not a folder"}[case]
    assert expected in err
    assert not out.exists()


def test_a_stopped_attempt_stops_the_search_and_a_refused_shape_is_no_run(tmp_path: Path) -> None:
    from lclock.core.faults import Crash, FaultSettings
    from lclock.lifecycle import StopRequest

    stop = StopRequest()
    replayer = Replayer(Replay(RunSettings(seed=1), NetworkSettings(), "sim"), Target("lamport"),
                        tmp_path, stop)
    every_one_crashes = RunSettings(machines=2, duration=10.0, seed=1,
                                    faults=FaultSettings(crashes=(Crash(1, 5.0), Crash(2, 6.0))))
    assert not possible(every_one_crashes)
    assert replayer.attempt(every_one_crashes) is None and replayer.failed == 1
    assert replayer.attempt(RunSettings(duration=2.0, seed=1)) is None  # correct: no finding
    stop.record(signal.SIGINT)
    with pytest.raises(SearchInterrupted):
        replayer.attempt(RunSettings(duration=2.0, seed=1))
    assert folders(tmp_path) == []  # every attempt's folder is removed once judged


def test_a_changed_program_is_noted_and_a_missing_one_fails_the_replay(tmp_path: Path) -> None:
    buggy(tmp_path)  # named as a student names it, relative to where lclock starts
    run = sim(tmp_path / "runs", "--impl", "2=python3 bad.py", "--duration", "5", "--seed", "5",
              cwd=tmp_path)
    program = tmp_path / "bad.py"
    program.write_text(program.read_text() + "# changed\n")
    code, _out, err = lclock("shrink", str(run), "--output", str(tmp_path / "o"), "--quiet", cwd=tmp_path)
    assert code == 0, err
    assert "note: machine 2's program bad.py is not the one the run ran (its sha256 differs)" in err
    code, out, err = lclock("shrink", str(run), "--output", str(tmp_path / "p"))  # from elsewhere
    assert code == 2 and "run folder" not in out and len(err.splitlines()) == 1
    assert f"{run}: its replay in the simulator failed: machine 2: " in err
    assert "program bad.py is not found from here" in err
    assert not (tmp_path / "p").exists()


def test_a_finding_the_simulator_does_not_reproduce_has_nothing_to_shrink(tmp_path: Path) -> None:
    """A real run's log edited by hand: its finding is not the model's, and no seed of the
    replay shows it (the real run's seed and the 8 next ones are tried)."""
    run = sim(tmp_path / "runs", "--duration", "5", "--seed", "2")
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**meta, "mode": "real"}))
    log = run / "machine-1.jsonl"
    lines = log.read_text().splitlines()
    k = next(i for i, x in enumerate(lines) if '"event":"internal"' in x)
    edited = json.loads(lines[k])
    edited["lclock"] += 5
    lines[k] = json.dumps(edited, separators=(",", ":"))
    log.write_text("\n".join(lines) + "\n")
    assert not check(run)["ok"]
    code, stdout, err = lclock("shrink", str(run), "--output", str(tmp_path / "o"))
    assert code == 3 and stdout.startswith("shrink: replaying") and "run folder" not in stdout, err
    assert "nothing to shrink: the simulator's replay of this run does not show" in err
    assert not (tmp_path / "o").exists()


def test_view_findings_rings_the_events_check_names(tmp_path: Path) -> None:
    run = sim(tmp_path / "runs", "--impl", f"2={buggy(tmp_path)}", "--duration", "10", "--seed", "5")
    for flags, marked in (([], False), (["--findings"], True)):
        page = tmp_path / f"page{len(flags)}.html"
        code, _out, err = lclock("view", str(run), "-o", str(page), *flags)
        assert code == 0, err
        assert ("finding (lamport): receive: lclock" in page.read_text()) is marked
