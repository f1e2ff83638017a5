"""Diagnosis of the classic bugs (SPEC section 10): the catalogue, fitting, and mutants.

The fitting is driven on hand-written logs (each event chosen so that it tells, or does not
tell, one rule from another), and on mutants: the built-in model with one bug, which
``check`` must name back, and a correct model, which it must never accuse.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, started
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lclock.analysis.bugs import BUGS, NAMES, listing, nearest
from lclock.analysis.check import check_run, findings_json
from lclock.analysis.diagnosis import MIN_EVIDENCE
from lclock.settings import SettingsFile, resolve
from lclock.sim.engine import NetworkSettings, run_sim

SPEC_NAMES = ("receive-ignores-message", "receive-no-increment", "receive-takes-message",
              "send-no-increment", "send-carries-old-clock", "send-per-recipient",
              "internal-no-increment", "logs-clock-before-event", "vector-no-own-increment",
              "vector-wrong-entry", "vector-no-merge", "hlc-ignores-pt", "hlc-counter-not-reset",
              "die-short", "several-per-tick", "tick-drift")


def lclock(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lclock", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


# -- the catalogue ---------------------------------------------------------------------------


def test_the_catalogue_has_every_name_of_the_spec_and_says_each() -> None:
    assert set(SPEC_NAMES) <= set(NAMES)
    assert len(NAMES) > len(SPEC_NAMES)  # and more that students make
    for b in BUGS.values():
        assert b.what and b.example and "\n" not in b.what + b.example


def test_check_bugs_lists_the_catalogue() -> None:
    p = lclock("check", "--bugs")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == listing()
    for name in NAMES:
        assert any(line.startswith(name + " ") for line in p.stdout.splitlines()), name


def test_check_bugs_json_gives_the_catalogue_to_a_script() -> None:
    import json

    p = lclock("check", "--bugs", "--json")
    assert p.returncode == 0, p.stderr
    listed = json.loads(p.stdout)
    assert [b["name"] for b in listed] == list(NAMES)
    assert all(b["what"] == BUGS[b["name"]].what and b["example"] == BUGS[b["name"]].example
               for b in listed)


def test_check_without_a_run_folder_or_bugs_is_bad_input() -> None:
    p = lclock("check")
    assert p.returncode == 2 and "RUN_DIR" in p.stderr and len(p.stderr.splitlines()) == 1


# -- fitting, on hand-written logs -----------------------------------------------------------


class Logs:
    """A tiny two-machine run written by hand: machine 1 sends to 2, which receives."""

    def __init__(self) -> None:
        self.lines: dict[int, list[dict[str, Any]]] = {1: [], 2: []}

    def event(self, mid: int, kind: str, lclock: int, **kw: Any) -> None:
        ls = self.lines[mid]
        tick = len(ls) + 1
        line = {"ts": f"2026-01-01T00:00:{tick:02d}.000000Z", "event": kind, "level": "info",
                "run_id": "hand", "machine": mid, "tick": tick, "lclock": lclock,
                "queue_len": 0, **kw}
        if kind != "receive":
            line.setdefault("dice", 1 if kind == "send" else 5)
        ls.append(line)

    def sends(self, clocks: list[int]) -> None:
        """Machine 1: sends to 2 with these clocks (internal events between, correct)."""
        now = 0
        for c in clocks:
            while now + 1 < c:
                now += 1
                self.event(1, "internal", now)
            now = c
            self.event(1, "send", c, to=[2])

    def write(self, where: Path) -> Path:
        where.mkdir()
        for mid, ls in self.lines.items():
            (where / f"machine-{mid}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in ls))
        return where


def receives(logs: Logs, pairs: list[tuple[int, int]]) -> None:
    """Machine 2 receives messages carrying m and logs the clock given: (m, logged)."""
    for m, got in pairs:
        logs.event(2, "receive", got, **{"from": 1, "msg_lclock": m})


def bugs_of(result: Any) -> list[tuple[str | None, int | None]]:
    return [(f.bug, f.machine) for f in result.findings if f.bug]


def test_three_telling_events_name_the_bug_with_counts_and_first_example(tmp_path: Path) -> None:
    logs = Logs()
    logs.sends([5, 8, 12])
    receives(logs, [(5, 1), (8, 2), (12, 3)])  # L + 1 each time: the message ignored
    result = check_run(logs.write(tmp_path / "r"))
    found = [f for f in result.findings if f.bug]
    assert [(f.bug, f.machine, f.file, f.line) for f in found] == [
        ("receive-ignores-message", 2, "machine-2.jsonl", 1)]
    assert "of the 3 events that tell it from the correct rule it fits 3, the correct rule 0" \
        in found[0].text
    # the Lamport findings of those receives say the same bug, not "without the +1"
    lamport = [f for f in result.findings if f.rule == "lamport"]
    assert len(lamport) == 3
    assert all("bug receive-ignores-message" in f.text and "without the +1" not in f.text
               for f in lamport)
    as_json = [f for f in findings_json(result) if f["rule"] == "bug"]
    assert as_json[0]["bug"] == "receive-ignores-message" and as_json[0]["line"] == 1


def test_two_telling_events_are_a_note_not_a_finding(tmp_path: Path) -> None:
    logs = Logs()
    logs.sends([5, 8])
    receives(logs, [(5, 1), (8, 2)])
    result = check_run(logs.write(tmp_path / "r"))
    assert bugs_of(result) == []
    notes = [n for n in result.notes if "receive-ignores-message" in n]
    assert len(notes) == 1 and "not enough evidence" in notes[0] and "machine-2.jsonl:1" in notes[0]
    assert MIN_EVIDENCE == 3


def test_a_note_names_every_bug_that_fits_as_well(tmp_path: Path) -> None:
    """One receive of m = L + 1 logged as L + 1 fits both "the message ignored" and "the +1
    missing": the note must not pick one (the lamport finding's own hint says the other)."""
    logs = Logs()
    logs.sends([1])
    receives(logs, [(1, 1)])
    result = check_run(logs.write(tmp_path / "r"))
    notes = [n for n in result.notes if "not enough evidence" in n]
    assert len(notes) == 1, result.notes
    assert "receive-ignores-message" in notes[0] and "receive-no-increment" in notes[0]


def test_the_lamport_finding_of_such_a_receive_does_not_pick_one_either(tmp_path: Path) -> None:
    """Its own hint named "the +1 missing" alone, so a run of receive-ignores-message shrunk
    to this one receive (lclock shrink, the notebook) told the student the other mistake."""
    logs = Logs()
    logs.sends([1])
    receives(logs, [(1, 1)])
    lamport = [f.text for f in check_run(logs.write(tmp_path / "r")).findings
               if f.rule == "lamport"]
    assert len(lamport) == 1
    assert "receive without the +1" in lamport[0] and "ignores the message's clock" in lamport[0]
    logs = Logs()  # a receive that tells them apart keeps the one guess that fits
    logs.sends([5])
    receives(logs, [(5, 5)])
    lamport = [f.text for f in check_run(logs.write(tmp_path / "t")).findings
               if f.rule == "lamport"]
    assert len(lamport) == 1
    assert "receive without the +1" in lamport[0] and "ignores" not in lamport[0]


def test_a_clock_at_the_largest_integer_is_not_expected_to_turn_negative(tmp_path: Path) -> None:
    top = 2**63 - 1
    logs = Logs()
    logs.event(1, "send", top, to=[2])
    receives(logs, [(top, top)])
    result = check_run(logs.write(tmp_path / "r"))
    lamport = [f.text for f in result.findings if f.rule == "lamport" and f.machine == 2]
    assert len(lamport) == 1 and f"expected {top + 1} =" in lamport[0], lamport


def test_a_note_on_an_imported_log_cites_the_users_own_line(tmp_path: Path) -> None:
    logs = Logs()
    logs.sends([5, 8])
    for m, got in [(5, 1), (8, 2)]:  # two receives that ignore the message: a note
        logs.event(2, "receive", got, src=f"machine_2.log:{got + 40}",
                   **{"from": 1, "msg_lclock": m})
    run = logs.write(tmp_path / "r")
    (run / "run.json").write_text(json.dumps({"mode": "import", "run_id": "hand"}))
    notes = [n for n in check_run(run).notes if "not enough evidence" in n]
    assert len(notes) == 1 and "first at machine_2.log:41" in notes[0], notes


def test_events_that_tell_nothing_never_mention_a_bug(tmp_path: Path) -> None:
    """Messages behind the receiver's clock: L + 1 is also max(L, m) + 1, so ignoring the
    message cannot be told from the correct rule; and a correct log mentions no bug."""
    logs = Logs()
    logs.sends([1, 2, 3])
    for c in range(1, 6):
        logs.event(2, "internal", c)
    receives(logs, [(1, 6), (2, 7), (3, 8)])
    result = check_run(logs.write(tmp_path / "r"))
    assert bugs_of(result) == [] and not any("bug" in f.rule for f in result.findings)
    assert not any("evidence" in n for n in result.notes), result.notes


def test_several_bugs_on_one_machine_and_others_on_another_are_each_named(tmp_path: Path) -> None:
    logs = Logs()
    logs.sends([5, 8, 12])
    for _ in range(3):  # machine 1: internal events that do not advance the clock
        logs.event(1, "internal", 12)
    receives(logs, [(5, 1), (8, 2), (12, 3)])
    for _ in range(3):  # machine 2: so do its internal events, besides ignoring messages
        logs.event(2, "internal", 3)
    result = check_run(logs.write(tmp_path / "r"))
    assert sorted(bugs_of(result)) == [("internal-no-increment", 1), ("internal-no-increment", 2),
                                       ("receive-ignores-message", 2)]


def test_the_bug_that_explains_more_wins_over_one_that_fits_a_few(tmp_path: Path) -> None:
    """Right after a receive, a line that shows the clock before its own +1 looks like a
    send without an increment; elsewhere it does not: one bug, named once."""
    logs = Logs()
    logs.sends([5, 8, 12])
    receives(logs, [(5, 6)])
    logs.event(2, "internal", 6)
    logs.event(2, "internal", 7)
    receives(logs, [(8, 10)])  # max(8, 7 + 1) + 1: the state was one ahead of the line
    logs.event(2, "internal", 10)
    logs.event(2, "internal", 11)
    receives(logs, [(12, 14)])
    logs.event(2, "internal", 14)
    result = check_run(logs.write(tmp_path / "r"))
    assert bugs_of(result) == [("logs-clock-before-event", 2)]


def test_a_vector_off_by_one_either_way_is_named(tmp_path: Path) -> None:
    """``V[me - 2] += 1`` (Python's -1 wraps to the last machine) is as classic an off-by-one
    as ``V[me % n]``: each machine of three advances the entry of the machine before it."""
    for step, name in ((1, "next"), (-1, "previous")):
        logs = Logs()
        logs.lines[3] = []
        for mid in (1, 2, 3):
            for k in range(1, 5):
                v = [0, 0, 0]
                v[(mid - 1 + step) % 3] = k
                logs.event(mid, "internal", k, vclock=v)
        result = check_run(logs.write(tmp_path / name))
        assert sorted(bugs_of(result)) == [("vector-wrong-entry", m) for m in (1, 2, 3)], name


def test_an_imported_student_log_whose_receive_does_clock_plus_one(tmp_path: Path) -> None:
    """The instructor's case of issue 20, in a log format of the student's own, without the
    message's clock: check names the bug on the receives, at the student's file and line."""
    t = iter(range(10, 60))
    vm2 = [f"2026-03-02T17:57:{next(t)}.000 VM2 {e}; clock={c}" for e, c in [
        ("INTERNAL", 1), ("INTERNAL", 2), ("INTERNAL", 3), ("INTERNAL", 4), ("SENT to VM1", 5),
        ("INTERNAL", 6), ("INTERNAL", 7), ("SENT to VM1", 8), ("INTERNAL", 9),
        ("INTERNAL", 10), ("INTERNAL", 11), ("SENT to VM1", 12)]]
    vm1 = ["# VM 1 starting, 1 tick/s"] + [
        f"2026-03-02T17:57:{next(t)}.000 VM1 {e}; clock={c}" for e, c in [
            ("INTERNAL", 1), ("RECEIVED from VM2", 2), ("RECEIVED from VM2", 3),
            ("RECEIVED from VM2", 4)]]
    (tmp_path / "vm1.log").write_text("\n".join(vm1) + "\n")
    (tmp_path / "vm2.log").write_text("\n".join(vm2) + "\n")
    rx = (r"^(?P<time>\S+) VM(?P<machine>\d+) (?P<event>SENT|RECEIVED|INTERNAL)"
          r"(?: (?:to|from) VM(?P<peer>\d+))?; clock=(?P<clock>\d+)$")
    p = lclock("import", "--regex", rx, "--output", "run", "vm1.log", "vm2.log", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    p = lclock("check", "--json", "run", cwd=tmp_path)
    found = json.loads(p.stdout)["findings"]
    bugs = [(f["bug"], f["file"], f["line"], f["count"]) for f in found if f["rule"] == "bug"]
    assert bugs == [("receive-ignores-message", "vm1.log", 3, 3)], found
    wrong = [f for f in found if f["rule"] == "lamport"]
    assert [f["line"] for f in wrong] == [3, 4, 5]
    assert all("the message's clock is not used" in f["message"] for f in wrong)
    # with more wrong receives than check lists, the summary line names the student's file
    (tmp_path / "vm1.log").write_text("\n".join(vm1[:2] + vm1[2:] * 9) + "\n")
    (tmp_path / "vm2.log").write_text("\n".join(vm2 * 9) + "\n")
    assert lclock("import", "--regex", rx, "--output", "run2", "vm1.log", "vm2.log",
                  cwd=tmp_path).returncode == 0
    out = lclock("check", "run2", cwd=tmp_path).stdout
    assert "vm1.log: ... machine 1: and " in out and "machine-1.jsonl" not in out, out


# -- mutants: the built-in model with one bug ------------------------------------------------

MUTANT_RUN = {"machines": 4, "duration": 120.0, "rate_min": 2, "rate_max": 6, "skew_ms": 50.0}


def simulate(tmp: Path, **settings: Any) -> Path:
    s = resolve(SettingsFile(), {**MUTANT_RUN, **settings})
    run_dir, _, meta = run_sim(s, NetworkSettings(), tmp)
    assert meta["settings"]["mutant"] == settings.get("mutant", "")
    return run_dir


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("bug", NAMES)
def test_every_mutant_is_diagnosed_back(tmp_path: Path, bug: str, seed: int) -> None:
    result = check_run(simulate(tmp_path, mutant=bug, seed=seed))
    found = [f for f in result.findings if f.bug]
    assert any(f.bug == bug for f in found), [str(f) for f in found]
    # where a machine's events cannot tell two bugs apart, the finding says both
    assert all(f.bug == bug or bug in f.text.partition("; the first:")[2]
               and "would fit as well" in f.text for f in found), \
        [str(f) for f in found]


@pytest.mark.parametrize("bug", ["receive-ignores-message", "send-carries-old-clock",
                                 "vector-no-merge", "hlc-counter-not-reset"])
def test_mutants_under_faults_are_diagnosed_back(tmp_path: Path, bug: str) -> None:
    result = check_run(simulate(tmp_path, mutant=bug, seed=9, loss=0.1, duplicate=0.1,
                                reorder=True, latency_ms=30.0))
    assert {b for b, _ in bugs_of(result)} == {bug}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("bug", ["receive-ignores-message", "several-per-tick", "tick-drift"])
def test_sim_mutant_then_check_json_names_it(tmp_path: Path, bug: str) -> None:
    p = lclock("sim", "--mutant", bug, "--seed", "4", "--duration", "120", "--machines", "4",
               "--output", str(tmp_path), "--quiet", "--no-report")
    assert p.returncode == 0, p.stderr
    (run,) = tmp_path.iterdir()
    assert json.loads((run / "run.json").read_text())["settings"]["mutant"] == bug
    c = lclock("check", "--json", str(run))
    assert c.returncode == 1, c.stderr
    named = [f for f in json.loads(c.stdout)["findings"] if f["rule"] == "bug"]
    assert named and {f["bug"] for f in named} == {bug}
    assert all(f["file"].startswith("machine-") and f["line"] > 0 for f in named)


def test_an_unknown_mutant_is_one_line_with_the_nearest_names(tmp_path: Path) -> None:
    p = lclock("sim", "--mutant", "receive-ignore-message", "--output", str(tmp_path))
    assert p.returncode == 2 and not list(tmp_path.iterdir())
    (line,) = p.stderr.splitlines()
    assert "--mutant" in line and "receive-ignores-message" in line
    assert nearest("receive-ignore-message")[0] == "receive-ignores-message"


def test_an_unknown_mutant_in_capitals_or_nothing_like_a_name_reads_once() -> None:
    assert nearest("RECEIVE_IGNORES_MESSAGE")[0] == "receive-ignores-message"
    for odd in (" ", "zzz"):
        p = lclock("sim", "--mutant", odd, "--duration", "1")
        assert p.returncode == 2 and len(p.stderr.splitlines()) == 1, p.stderr
        assert p.stderr.count("lclock check --bugs") == 1, p.stderr


def test_a_mutant_that_no_machine_would_make_is_refused(tmp_path: Path) -> None:
    """Every machine runs a program: the mutant would be recorded and make nothing."""
    vm = f"{sys.executable} examples/impl/python/vm.py"
    p = lclock("sim", "--mutant", "receive-ignores-message", "--impl", vm, "--duration", "1",
               "--output", str(tmp_path / "out"))
    assert p.returncode == 2 and len(p.stderr.splitlines()) == 1, p.stderr
    assert "--mutant" in p.stderr and "--impl" in p.stderr
    assert not (tmp_path / "out").exists()
    p = lclock("sim", "--mutant", "receive-ignores-message", "--impl", f"2={vm}", "--duration",
               "1", "--machines", "2", "--output", str(tmp_path / "out"), "--quiet")
    assert p.returncode == 0, p.stderr


def test_an_unknown_mutant_in_settings_names_the_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text('mutant = "vector-no-merj"\n')
    p = lclock("sim", "--settings", str(tmp_path / "s.toml"), "--output", str(tmp_path / "o"))
    assert p.returncode == 2 and "mutant" in p.stderr and "vector-no-merge" in p.stderr
    assert len(p.stderr.splitlines()) == 1 and not (tmp_path / "o").exists()


@pytest.mark.timeout(120)
def test_run_mutant_runs_real_machines_with_the_bug(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "lclock", "run", "--mutant", "receive-no-increment",
           "--duration", "4", "--rates", "20,20,20", "--output", str(tmp_path), "--no-report",
           "--quiet"]
    with started(cmd, ROOT) as proc:
        _, err = proc.communicate(timeout=100)
        assert proc.returncode == 0, err
    (run,) = [d for d in tmp_path.iterdir() if d.is_dir()]
    assert json.loads((run / "run.json").read_text())["settings"]["mutant"] == "receive-no-increment"
    result = check_run(run)
    assert {b for b, _ in bugs_of(result)} == {"receive-no-increment"}


# -- a correct implementation is never accused -----------------------------------------------

FAULTS = st.sampled_from([
    {}, {"loss": 0.2}, {"duplicate": 0.2}, {"reorder": True, "latency_ms": 40.0},
    {"partitions": "5-15:1|2"}, {"crashes": "2@10"}, {"pauses": "1@5+6"},
    {"nemesis": "partition,pause,crash", "nemesis_interval": 4.0, "loss": 0.05},
])
CLOCKS = st.sampled_from([
    {}, {"skew_ms": 300.0}, {"drift_ppm": 2000.0, "skew_ms": 20.0}, {"bumps": "1@8:-400"},
    {"clocks": "none"}, {"clocks": "hlc"}, {"clocks": "vector"},
])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31), n=st.integers(2, 5), faults=FAULTS, clocks=CLOCKS,
       rates=st.sampled_from([(1, 6), (5, 20), (1, 1)]))
def test_a_correct_model_never_gets_a_bug_named(tmp_path_factory: pytest.TempPathFactory, seed: int,
                                                n: int, faults: dict[str, Any],
                                                clocks: dict[str, Any], rates: tuple[int, int]
                                                ) -> None:
    tmp = tmp_path_factory.mktemp("ok")
    s = resolve(SettingsFile(), {"machines": n, "duration": 30.0, "seed": seed,
                                 "rate_min": rates[0], "rate_max": rates[1], **faults, **clocks})
    run_dir, _, _ = run_sim(s, NetworkSettings(), tmp)
    result = check_run(run_dir)
    assert result.ok, [str(f) for f in result.findings]
    assert bugs_of(result) == []
    assert not any("evidence" in n and "die-short" not in n for n in result.notes), result.notes


# -- the reference program with a bug (SPEC 9) -----------------------------------------------

VM = ROOT / "examples" / "impl" / "python" / "buggy_vm.py"


@pytest.mark.timeout(180)
@pytest.mark.parametrize("bug", ["receive-ignores-message", "send-carries-old-clock",
                                 "send-per-recipient", "vector-no-merge"])
def test_the_reference_program_with_a_bug_is_diagnosed(tmp_path: Path, bug: str) -> None:
    p = lclock("sim", "--impl", f"{sys.executable} {VM} --bug {bug}", "--seed", "4",
               "--duration", "120", "--machines", "4", "--output", str(tmp_path), "--quiet",
               "--no-report")
    assert p.returncode == 0, p.stderr
    (run,) = tmp_path.iterdir()
    result = check_run(run)
    assert {b for b, _ in bugs_of(result)} == {bug}, [str(f) for f in result.findings][:5]


@pytest.mark.parametrize("args", [["--bug", "receive-ignore-message"], ["--bug", "die-short"],
                                  ["--bug"], ["--bg", "receive-no-increment"],
                                  ["--bug", "receive-no-increment", "--bug", "vector-no-merge"],
                                  ["receive-no-increment"]])
def test_the_buggy_program_refuses_a_bug_it_cannot_make(args: list[str]) -> None:
    """A typo in --bug ran the correct machine, and check said OK: a student would think
    check misses the bug. So did a typo in the flag, and a second bug was passed over."""
    init = '{"type":"init","machine":1,"machines":2,"clocks":["lamport"]}\n'
    p = subprocess.run([sys.executable, str(ROOT / "examples/impl/python/buggy_vm.py"), *args],
                       input=init, capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "--bug" in p.stderr and p.stdout == "", (p.returncode, p.stderr)


def test_a_mutant_is_a_setting_that_reads_back_as_its_flag() -> None:
    """An experiment's real trial is started with the flags of its settings: the mutant too."""
    from lclock.setting_table import to_flags

    s = resolve(SettingsFile(), {"mutant": "vector-no-merge", "seed": 1})
    flags = to_flags(s)
    assert flags[flags.index("--mutant") + 1] == "vector-no-merge"
    assert "--mutant" not in to_flags(resolve(SettingsFile(), {"seed": 1}))


@pytest.mark.timeout(300)
def test_an_experiment_runs_its_trials_as_the_mutant(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text('[experiments.buggy]\ntrials = 2\nduration = 20\n'
                                     'mutant = "receive-no-increment"\n')
    p = lclock("experiment", "buggy", "--settings", str(tmp_path / "s.toml"), "--sim",
               "--no-report", "--no-plots", "--output", str(tmp_path / "out"), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    metas = [json.loads(f.read_text()) for f in (tmp_path / "out").rglob("run.json")]
    assert len(metas) == 2 and all(m["settings"]["mutant"] == "receive-no-increment"
                                   for m in metas)
