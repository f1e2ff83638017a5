"""lclock grade's pure parts: a submission's lclock.toml, the rubric, the scoring (SPEC 11).

Driven synchronously with plain data: no program runs here (tests/test_grade_cli.py runs
the real command; tests/test_grade_hostile.py the hostile class).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest

from lclock.errors import BadInput
from lclock.grade.battery import import_flags, log_files, program_args, where_of
from lclock.grade.grade_cmd import Progress, write_class
from lclock.grade.grade_one import Graded, grade_one
from lclock.grade.lanes import Lanes, hung_idle, runs_at_once, tasks_of, waits_on_the_clock
from lclock.grade.report import shrunk_section
from lclock.grade.results import ItemResult, RunResult
from lclock.grade.rubric import SHRINK_BUDGET, Item, load_rubric, parse_rubric
from lclock.grade.score import bugs_of, charges_of, rules_of, score_item
from lclock.grade.shrunk import read_shrunk, to_shrink
from lclock.grade.submission import read_submission
from lclock.grade.workspace import too_big, work_prefix


def sub_with(tmp_path: Path, text: str | None, name: str = "alice") -> Any:
    folder = tmp_path / name
    folder.mkdir()
    if text is not None:
        (folder / "lclock.toml").write_text(text)
    return read_submission(folder)


# -- submissions -------------------------------------------------------------------------------


def test_a_program_with_its_build(tmp_path: Path) -> None:
    s = sub_with(tmp_path, 'impl = "python3 vm.py"\nbuild = "make"\n')
    assert (s.kind, s.impl, s.build, s.problem) == ("program", "python3 vm.py", "make", None)


def test_a_folder_of_logs_takes_a_string_or_a_list(tmp_path: Path) -> None:
    s = sub_with(tmp_path, '[import]\nregex = ["a(?P<clock>1)", "b"]\nfiles = "logs/*.txt"\n'
                 'date = 2026-01-02\n')
    assert s.kind == "logs"
    assert s.imports == {"regex": ["a(?P<clock>1)", "b"], "files": ["logs/*.txt"],
                         "date": "2026-01-02"}
    assert import_flags(s.imports) == ["--regex", "a(?P<clock>1)", "--regex", "b",
                                       "--date", "2026-01-02"]


@pytest.mark.parametrize(("text", "words"), [
    (None, "lclock.toml: missing"),
    ("impl = [1]", "impl: expected a command line"),
    ("impl = ''", "impl: the command is empty"),
    ("impl = 'a \"b'", "impl: cannot split"),
    ("impl = 'x'\n[import]\npreset = 'text'", "either impl"),
    ("", "either impl"),
    ("colour = 1\nimpl = 'x'", "colour: unknown key"),
    ("[import]\npreset = 'text'\nregex = 'x'", "either preset or regex"),
    ("[import]\npreset = 'text'\nfiles = '../other/*.log'", "must stay inside"),
    ("[import]\npreset = 'text'\nfiles = '/etc/*'", "must stay inside"),
    ("[import]\npreset = 'text'\nshell = 'rm'", "import.shell: unknown key"),
    ("build = 'make'\n[import]\npreset = 'text'", "build: only with impl"),
    ("impl = = 1", "cannot be read"),
])
def test_a_bad_lclock_toml_is_a_line_not_a_crash(tmp_path: Path, text: str | None,
                                                 words: str) -> None:
    s = sub_with(tmp_path, text)
    assert s.kind == "bad"
    assert words in s.problem


def test_a_folder_too_big_to_copy_is_a_line_not_a_full_disk(tmp_path: Path) -> None:
    big = tmp_path / "big"
    sub = sub_with(big.parent, 'impl = "python3 vm.py"', "big")
    with (big / "data.bin").open("wb") as f:  # sparse: costs nothing here, 2 GB once copied
        f.truncate(2 * 2**30)
    graded = grade_one(big, 0, RUBRIC)
    assert graded.status == "too-big" and graded.score == 0, graded.status
    assert "not copied" in graded.files["results.json"].decode()
    assert sub.impl and not list(Path(tempfile.gettempdir()).glob(f"{work_prefix()}*"))


def test_a_folder_of_too_many_files_is_too_big(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lclock.grade.workspace.MAX_FILES", 5)
    many = tmp_path / "many"
    many.mkdir()
    for i in range(3):
        (many / f"f{i}").write_text("x")
    assert too_big(many) is None
    for i in range(3, 6):
        (many / f"f{i}").write_text("x")
    assert "more than 5 files" in str(too_big(many))


def test_log_files_stay_in_the_copy_and_skip_symlinks(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.log").write_text("x")
    (tmp_path / "evil.log").symlink_to("/etc/passwd")
    assert log_files(tmp_path, ["*.log", "sub/*.log"]) == ["a.log", "sub/b.log"]


# -- the rubric ---------------------------------------------------------------------------------


def test_the_default_rubric_ships_and_is_valid() -> None:
    r = load_rubric(None)
    kinds = {i.kind for i in r.items}
    assert kinds == {"sim", "mixed", "twice", "real", "import"}
    assert r.max_score("program") == 100 and r.max_score("logs") == 100
    assert r.bug_cost("receive-no-increment") > 0 and r.rule_cost("lamport") > 0


@pytest.mark.parametrize(("data", "words"), [
    ({}, "battery: expected at least one"),
    ({"battery": {"a": {"kind": "fly", "points": 1}}}, "battery.a.kind"),
    ({"battery": {"a": {"kind": "sim", "points": -1}}}, "battery.a.points"),
    ({"battery": {"a": {"kind": "sim", "points": 1, "seeds": []}}}, "battery.a.seeds"),
    ({"battery": {"a": {"kind": "sim", "points": 1, "seeds": [1.5]}}}, "battery.a.seeds"),
    ({"battery": {"a": {"kind": "sim", "points": 1, "duration": 0}}}, "battery.a.duration"),
    ({"battery": {"a": {"kind": "sim", "points": 1, "args": "--loss"}}}, "battery.a.args"),
    ({"battery": {"a": {"kind": "sim", "points": 1, "color": 1}}}, "battery.a.color: unknown"),
    ({"battery": {"a": {"kind": "mixed", "points": 1, "machine": 0}}}, "battery.a.machine"),
    ({"battery": {"a": {"kind": "sim", "points": 1, "skip": "yes"}}}, "battery.a.skip"),
    ({"battery": {"a": {"kind": "sim", "points": 1}}, "rules": {"lamport": "x"}}, "rules.lamport"),
    ({"battery": {"a": {"kind": "sim", "points": 1}}, "costs": {"fire": 1}}, "costs.fire: unknown"),
    ({"battery": {"a": {"kind": "sim", "points": 1}}, "extra": {}}, "extra: unknown table"),
    ({"battery": {"a": {"kind": "sim", "points": 1}}, "shrink": {"budget": 5}}, "shrink: expected"),
])
def test_a_bad_rubric_names_its_key(data: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words.replace(".", r"\.")):
        parse_rubric(data)


def test_a_rubric_file_that_is_not_toml_is_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "r.toml"
    bad.write_text("[battery\n")
    with pytest.raises(BadInput, match="r.toml: not valid TOML"):
        load_rubric(bad)
    with pytest.raises(BadInput, match="--rubric: cannot read"):
        load_rubric(tmp_path / "missing.toml")


def test_a_long_real_run_has_the_wall_time_of_its_duration(tmp_path: Path,
                                                             monkeypatch: Any) -> None:
    """The rubric allows a real run of up to an hour: a wall time of 180 s for its lclock
    made every program, a correct one too, "hang" in a real run of more than about 3 min."""
    from lclock.grade import battery
    from lclock.grade.submission import Submission
    from lclock.impl.jail import User

    walls: list[float] = []

    def fake_lclock(args: list[str], cwd: Path, user: User, wall: float = battery.WALL) -> Any:
        walls.append(wall)
        return 0, "", ""

    monkeypatch.setattr(battery, "lclock", fake_lclock)
    sub = Submission("alice", impl="python3 vm.py")
    for kind in ("real", "sim"):
        battery.program_run(Item("r", kind, 10, duration=600), sub, 1, tmp_path, tmp_path,
                            User())
    assert walls[0] > 600 + 60 and walls[1] == battery.WALL


def test_program_args_per_kind() -> None:
    mixed = Item("m", "mixed", 10, (4,), 12.0, ("--loss", "0.1"), machine=2)
    args = program_args(mixed, "python3 vm.py", 4, Path("/r"), "m-4")
    assert args[:3] == ["sim", "--impl", "2=python3 vm.py"]
    assert args[-2:] == ["--loss", "0.1"] and "--seed" in args and "--machines" in args
    twice = program_args(Item("t", "twice", 10), "x", 1, Path("/r"), "t-1")
    assert "--twice" in twice and "--impl" in twice and "x" in twice
    real = program_args(Item("r", "real", 10), "x", 1, Path("/r"), "r-1")
    # the battery checks the real run itself: no report.html nor figures of lclock run
    assert real[0] == "run" and "--no-report" in real and "--no-report" not in twice


# -- scoring -------------------------------------------------------------------------------------

RUBRIC = parse_rubric({"battery": {"a": {"kind": "sim", "points": 40}},
                       "rules": {"default": 5, "lamport": 15},
                       "bugs": {"default": 10, "receive-no-increment": 20},
                       "costs": {"crash": 100, "hang": 30, "nondeterministic": 7}})


def finding(rule: str, line: int, bug: str | None = None, count: int = 1) -> dict[str, Any]:
    f: dict[str, Any] = {"rule": rule, "severity": "error", "file": "machine-1.jsonl",
                         "line": line, "count": count, "message": f"{rule} at {line}",
                         "where": f"sim-1/machine-1.jsonl:{line}"}
    if bug:
        f["bug"] = bug
    return f


def test_a_rule_costs_once_per_item_and_names_where_it_first_shows() -> None:
    item = ItemResult("a", "sim", 40, runs=[
        RunResult("a, seed 1", "a-1", findings=[finding("lamport", 9), finding("lamport", 20)]),
        RunResult("a, seed 2", "a-2", findings=[finding("lamport", 3), finding("tick", 4)]),
    ])
    test = score_item(item, RUBRIC)
    assert test.score == 40 - 15 - 5
    assert [c.key for c in test.charges] == ["rule lamport", "rule tick"]
    assert test.charges[0].where == "sim-1/machine-1.jsonl:9" and test.charges[0].count == 3
    assert "-15 rule lamport (3 shown), first at sim-1/machine-1.jsonl:9" in test.output
    assert rules_of([test]) == ["lamport", "tick"]
    assert bugs_of([test]) == ["rule:lamport", "rule:tick"]


def test_a_named_bug_is_charged_instead_of_its_rule() -> None:
    def on1(f: dict[str, Any]) -> dict[str, Any]:
        return {**f, "machine": 1}

    item = ItemResult("a", "sim", 40, runs=[RunResult("a, seed 1", "a-1", findings=[
        on1(finding("bug", 5, "receive-no-increment")), on1(finding("lamport", 6)),
        on1(finding("bug", 7, "vector-no-merge")), on1(finding("vector", 7))])])
    test = score_item(item, RUBRIC)
    assert [c.key for c in test.charges] == ["bug receive-no-increment", "bug vector-no-merge"]
    assert test.score == 40 - 20 - 10
    assert bugs_of([test]) == ["receive-no-increment", "vector-no-merge"]


def test_the_clock_rule_a_bug_explains_is_not_charged_on_its_machine_but_is_on_another() -> None:
    """check names a bug as a finding of rule ``bug`` and, besides, each wrong event under
    its clock's rule (lamport): on that machine the bug is charged, once; a lamport finding
    on a machine no bug was named for is the rule's charge."""
    def on(machine: int, f: dict[str, Any]) -> dict[str, Any]:
        return {**f, "machine": machine}

    item = ItemResult("a", "sim", 40, runs=[RunResult("a, seed 1", "a-1", findings=[
        on(2, finding("bug", 5, "receive-ignores-message")), on(2, finding("lamport", 5)),
        on(2, finding("lamport", 9)), on(3, finding("lamport", 4))])])
    test = score_item(item, RUBRIC)
    assert [c.key for c in test.charges] == ["bug receive-ignores-message", "rule lamport"]
    assert test.charges[1].where == "sim-1/machine-1.jsonl:4" and test.charges[1].count == 1
    assert test.score == 40 - 10 - 15


def test_a_rule_finding_a_named_bug_explains_is_not_charged_twice() -> None:
    # check --json's own shape: the bug is a finding of rule "bug"; the rule findings it
    # explains name it only in their message, " (bug NAME: ...)" or "[bug NAME]"
    lam = finding("lamport", 8)
    lam["message"] = "receive: lclock 6, expected 11 (bug receive-ignores-message: L = L + 1)"
    inc = finding("lamport", 9)
    inc["message"] = "receive: lclock 5, expected 6 (the +1 is missing) [bug receive-no-increment]"
    item = ItemResult("a", "sim", 40, runs=[RunResult("a, seed 1", "a-1", findings=[
        lam, finding("bug", 8, "receive-ignores-message"), inc])])
    test = score_item(item, RUBRIC)
    assert [c.key for c in test.charges] == ["bug receive-ignores-message",
                                             "bug receive-no-increment"]
    assert test.score == 40 - 10 - 20
    assert bugs_of([test]) == ["receive-ignores-message", "receive-no-increment"]


def test_a_rule_or_bug_the_rubric_does_not_price_costs_the_whole_item() -> None:
    """As a cost not given does: a rubric without [rules] or [bugs] gave full marks."""
    bare = parse_rubric({"battery": {"a": {"kind": "sim", "points": 40}}})
    for f in (finding("lamport", 3), finding("bug", 3, "receive-no-increment")):
        test = score_item(ItemResult("a", "sim", 40, runs=[RunResult("a, seed 1", "a-1",
                                                                     findings=[f])]), bare)
        assert test.score == 0 and "-40 " in test.output, test.output


def test_failures_cost_what_the_rubric_says_never_below_zero() -> None:
    hang = ItemResult("a", "sim", 40, runs=[
        RunResult("a, seed 1", "a-1", failure=("hang", "no answer within 1 s", "a-1/m:3"))])
    assert score_item(hang, RUBRIC).score == 10
    crash = ItemResult("a", "sim", 40, runs=[
        RunResult("a, seed 1", "a-1", failure=("crash", "exited with code 3", "a-1/m:3"))])
    assert score_item(crash, RUBRIC).score == 0
    twice = ItemResult("t", "twice", 40, runs=[
        RunResult("t, seed 1", "t-1", failure=("nondeterministic", "differ", "t-1"))])
    assert score_item(twice, RUBRIC).score == 33
    assert bugs_of([score_item(crash, RUBRIC)]) == ["crash"]


def test_a_skipped_item_is_worth_nothing_and_says_why() -> None:
    test = score_item(ItemResult("real", "real", 10, skipped="skipped by the rubric"), RUBRIC)
    assert test.to_json() == {"name": "real", "score": 0, "max_score": 0,
                              "output": "skipped by the rubric"}


def test_charges_come_out_in_the_order_they_show() -> None:
    item = ItemResult("a", "sim", 40, runs=[RunResult("r", "r", findings=[
        finding("tick", 1), finding("lamport", 2), finding("tick", 3)])])
    assert [c.key for c in charges_of(item, RUBRIC)] == ["rule tick", "rule lamport"]


def test_where_a_finding_shows_prefers_the_students_own_line(tmp_path: Path) -> None:
    (tmp_path / "machine-1.jsonl").write_text('{"event":"start"}\n{"event":"send","src":"m1.log:7"}\n')
    assert where_of(tmp_path, {"file": "machine-1.jsonl", "line": 2}, "imp") == "m1.log:7"
    assert where_of(tmp_path, {"file": "machine-1.jsonl", "line": 1}, "imp") == "imp/machine-1.jsonl:1"
    assert where_of(tmp_path, {"src": "a.log:3", "file": "x", "line": 1}, "imp") == "a.log:3"
    assert where_of(tmp_path, {"file": "run.json", "line": None}, "imp") == "imp"
    # check of an import already cites the student's file (and the run's in log_file)
    cited = {"file": "logs/m2.log", "line": 2, "log_file": "machine-2.jsonl", "log_line": 2}
    assert where_of(tmp_path, cited, "logs") == "logs/m2.log:2"


def test_progress_estimates_the_time_left() -> None:
    said: list[str] = []
    now = [0.0]
    p = Progress(3, said.append, clock=lambda: now[0])
    now[0] = 10.0
    p.done(Graded("a", 5, 10, "deductions", []))
    now[0] = 20.0
    p.done(Graded("b", 10, 10, "full-marks", []))
    now[0] = 30.0
    p.done(Graded("c", 0, 10, "no-config", []))
    assert said[0] == "[1/3] a: 5/10 (deductions); about 20 s left"
    assert said[1].endswith("about 10 s left") and said[2] == "[3/3] c: 0/10 (no-config)"


def test_progress_keeps_a_name_with_a_newline_on_one_line() -> None:
    said: list[str] = []
    Progress(1, said.append).done(Graded("bad\nname\x1b[2J", 0, 10, "no-config", []))
    assert said == ["[1/1] 'bad\\nname\\x1b[2J': 0/10 (no-config)"]


@pytest.mark.parametrize(("args", "words"), [
    (["--loss", "2"], "battery.a.args: --loss: must be a probability"),
    (["--colour"], "battery.a.args: --colour: unknown option"),
    (["--crash", "9@50%"], "battery.a.args: --crash: machine 9 does not exist"),
    # flags lclock grade sets itself: a rubric's would win (the last one does) and write
    # the runs where it says (--output /etc) or run something else than the submission
    (["--output", "/etc"], "battery.a.args: --output: lclock grade sets it itself"),
    (["--out=/etc"], "battery.a.args: --output: lclock grade sets it itself"),
    (["--impl", "sh -c id"], "battery.a.args: --impl: lclock grade sets it itself"),
    (["--seed", "3"], "battery.a.args: --seed: lclock grade sets it itself"),
])
def test_flags_lclock_sim_refuses_are_a_rubric_error(tmp_path: Path, args: list[str],
                                                     words: str) -> None:
    """Else every run of every submission would fail, each charged a crash."""
    import json

    path = tmp_path / "r.toml"
    path.write_text(f'[battery.a]\nkind = "sim"\npoints = 1\nargs = {json.dumps(args)}\n')
    with pytest.raises(BadInput, match=f"r.toml: {words}"):
        load_rubric(path)


def test_a_students_settings_toml_is_never_read(tmp_path: Path) -> None:
    args = program_args(Item("s", "sim", 1), "x", 1, tmp_path / "runs", "s-1")
    assert args[args.index("--settings") + 1] == str(tmp_path / "settings.toml")


def test_python_stands_in_where_only_root_can_reach_it() -> None:
    """pyenv's interpreters in a home only root enters: ``python`` becomes the first
    ``python3`` every user can run; nothing is added where ``python`` is reachable.
    (In a folder of /tmp of its own: pytest's tmp_path is closed to other users.)"""
    import shutil
    import tempfile

    from lclock.grade.workspace import compat_bin

    base = Path(tempfile.mkdtemp(prefix="lclock-test-path-"))
    try:
        base.chmod(0o755)
        closed, open_ = base / "closed", base / "open"
        for folder, mode, names in ((closed, 0o700, ("python", "python3")),
                                    (open_, 0o755, ("python3",))):
            folder.mkdir()
            for name in names:
                (folder / name).write_text("#!/bin/sh\n")
                (folder / name).chmod(0o755)
            folder.chmod(mode)
        (base / "work").mkdir()
        made = compat_bin(base / "work", f"{closed}:{open_}")
        assert made == base / "work" / "bin"
        assert (made / "python").resolve() == open_ / "python3"
        (open_ / "python").symlink_to(open_ / "python3")  # now a python others can run
        assert compat_bin(base / "w2", f"{closed}:{open_}") is None
    finally:
        shutil.rmtree(base)


# -- the shrunk counterexample -----------------------------------------------------------------

def _run(label: str, *findings: dict[str, Any], failure: Any = None) -> RunResult:
    return RunResult(label, label.replace(", seed ", "-"), failure, list(findings))


def test_the_run_to_shrink_is_the_first_simulated_one_that_costs_a_bug_before_a_rule() -> None:
    rubric = parse_rubric({"battery": {"a": {"kind": "sim", "points": 1}},
                           "rules": {"default": 10, "vector": 0}, "bugs": {"default": 15}})
    lamport = {"rule": "lamport", "message": "m"}
    bug = {"rule": "bug", "bug": "receive-ignores-message", "message": "m"}
    logs = ItemResult("logs", "import", 10, runs=[_run("import", lamport)])
    real = ItemResult("real", "real", 10, runs=[_run("real, seed 1", lamport)])
    sim = ItemResult("sim", "sim", 10, runs=[
        _run("sim, seed 1", lamport, failure=("crash", "x", "y")),  # a failed run: no finding
        _run("sim, seed 2", {"rule": "vector", "message": "free"}),  # costs nothing here
        _run("sim, seed 3", lamport, bug), _run("sim, seed 4", lamport)])
    run, rule = to_shrink([logs, real, sim], rubric) or (None, "")
    assert run is not None and (run.label, rule) == ("sim, seed 3", "bug")
    assert to_shrink([logs, real], rubric) is None
    plain = ItemResult("sim", "twice", 10, runs=[_run("sim, seed 4", lamport)])
    assert to_shrink([plain], rubric) == (plain.runs[0], "lamport")


@pytest.mark.parametrize(("text", "budget"), [
    ("", SHRINK_BUDGET), ("shrink = false\n", 0), ("shrink = 0\n", 0), ("shrink = true\n", SHRINK_BUDGET),
    ("shrink = 7\n", 7)])
def test_the_rubric_sets_the_shrink_budget(tmp_path: Path, text: str, budget: int) -> None:
    (tmp_path / "r.toml").write_text(text + '[battery.a]\nkind = "sim"\npoints = 1\n')
    assert load_rubric(tmp_path / "r.toml").shrink == budget


@pytest.mark.parametrize("value", ["-1", "1.5", '"yes"', "100001"])
def test_a_bad_shrink_budget_names_the_key(tmp_path: Path, value: str) -> None:
    (tmp_path / "r.toml").write_text(f'shrink = {value}\n[battery.a]\nkind = "sim"\npoints = 1\n')
    with pytest.raises(BadInput, match=r"r\.toml: shrink: expected true, false or a whole number"):
        load_rubric(tmp_path / "r.toml")


def test_the_report_embeds_the_shrunk_diagram_and_its_story_without_paths(tmp_path: Path) -> None:
    folder = tmp_path / "runs" / "shrunk" / "sim-1-abc"
    folder.mkdir(parents=True)
    (folder / "story.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><text>a</text></svg>')
    stdout = (f"shrink: replaying the run\nsmallest run: 2 machines\nmachine-2.jsonl:5: bug "
              f"receive-ignores-message: L <b>\n  machine-1.jsonl:6 send\n"
              f"pictures: {folder}/explorer.html\nrun folder: {folder}\n")
    shown = read_shrunk("sim, seed 1", "bug", 0, stdout, "")
    assert shown.svg is not None and shown.problem is None
    assert shown.story == ["smallest run: 2 machines",
                           "machine-2.jsonl:5: bug receive-ignores-message: L <b>",
                           "  machine-1.jsonl:6 send"]
    page = shrunk_section(shown)
    assert "<svg xmlns" in page and "receive-ignores-message: L &lt;b&gt;" in page
    assert str(tmp_path) not in page and "Shrunk counterexample: sim, seed 1 (bug)" in page


@pytest.mark.parametrize(("code", "svg", "stderr", "words"), [
    (3, None, "lclock shrink: nothing to shrink: check finds no error in this run\n", "nothing to shrink"),
    (124, None, "\nlclock: the run took more than 180 s of wall time", "more than 180 s"),
    (1, "<svg/>", "lclock shrink: error: the run written no longer shows lamport\n", "no longer shows"),
    (0, "<svg onload='alert(1)'/>", "", "exited with code 0"),  # not lclock's picture
    (2, None, "lclock shrink: error: {work}/runs/x: its replay failed\n", "<work>/runs/x"),
])
def test_a_shrink_that_shows_nothing_is_one_line(tmp_path: Path, code: int, svg: str | None,
                                                 stderr: str, words: str) -> None:
    if svg is not None:
        (tmp_path / "story.svg").write_text(svg)
    shown = read_shrunk("sim, seed 1", "lamport", code, f"run folder: {tmp_path}\n",
                        stderr.replace("{work}", str(tmp_path)), (tmp_path,))
    assert shown.svg is None and shown.problem is not None and words in shown.problem
    page = shrunk_section(shown)
    assert page.startswith("<p>No shrunk counterexample of sim, seed 1 (lamport): ")
    assert "<svg" not in page and str(tmp_path) not in page and page.count("\n") == 0


def test_the_default_rubric_shrinks_modestly() -> None:
    assert load_rubric(None).shrink == SHRINK_BUDGET == 20


def test_grades_csv_never_holds_a_formula(tmp_path: Path) -> None:
    """A submission's folder is named by a student: '=HYPERLINK(...)' must not run in the
    instructor's spreadsheet; the cell starts with a quote, the scores stay numbers."""
    out, names = tmp_path / "out", ["=HYPERLINK(\"x\")", "@SUM(A1)", "good"]
    for name in names:
        (out / name).mkdir(parents=True)
        row = {"submission": name, "score": 90, "max_score": 100, "status": "graded",
               "bugs": "-rule:lamport" if name == "good" else ""}
        (out / name / "grade.json").write_text(json.dumps(row))
    write_class(out, [tmp_path / n for n in names])
    rows = list(csv.DictReader((out / "grades.csv").open()))
    assert [r["submission"] for r in rows] == ["'=HYPERLINK(\"x\")", "'@SUM(A1)", "good"]
    assert [r["score"] for r in rows] == ["90"] * 3 and rows[2]["bugs"] == "'-rule:lamport"


_HIDER = """\
import os, sys, time
middle = os.fork()
if middle == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(300)
    os._exit(0)
os.waitpid(middle, 0)  # the hidden grandchild exists once the middle one has exited
for _ in range(5):
    if os.fork() == 0:
        time.sleep(300)
print("ready", flush=True)
time.sleep(300)
"""


@pytest.mark.timeout(60)
@pytest.mark.skipif(os.geteuid() != 0, reason="a uid of its own needs root")
def test_every_process_of_a_submissions_user_ends_however_it_hid() -> None:
    import subprocess

    import psutil

    from lclock.grade.workspace import end_processes, others_reach, user_for

    python = Path("/usr/bin/python3")
    if not others_reach(python):
        pytest.skip("no python3 an unprivileged user can run")
    user = user_for(9_999)
    proc = subprocess.Popen([str(python), "-c", _HIDER], user=user.uid, group=user.gid,
                            extra_groups=[], cwd="/", stdout=subprocess.PIPE,
                            start_new_session=True)

    def of_user() -> list[psutil.Process]:
        return [p for p in psutil.process_iter(["uids", "status"])
                if p.info["uids"] is not None and p.info["uids"].real == user.uid
                and p.info["status"] != psutil.STATUS_ZOMBIE]

    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        assert len(of_user()) >= 7  # the program, its five children, the hidden grandchild
        end_processes(user)
        proc.wait(timeout=10)
        psutil.wait_procs(of_user(), timeout=5)
        assert of_user() == []
    finally:
        for p in of_user():
            p.kill()
        proc.kill()
        proc.wait()


@pytest.mark.skipif(os.geteuid() != 0, reason="a user of its own needs root")
def test_a_failed_build_as_root_is_not_said_to_run_as_lclocks_user(tmp_path: Path) -> None:
    """The build ran as the submission's own user: its results must not claim otherwise."""
    folder = tmp_path / "class" / "broken"
    folder.mkdir(parents=True)
    (folder / "lclock.toml").write_text('impl = "./vm"\nbuild = "false"\n')
    g = grade_one(folder, 9_997, load_rubric(None), (str(tmp_path / "class"),))
    assert g.status == "build-failed"
    output = json.loads(g.files["results.json"])["output"]
    assert "build-failed" in output and "not root" not in output


def test_two_gradings_at_once_never_share_a_user() -> None:
    """Each grading's submissions run as a block of uids of its own, whatever its pid."""
    from lclock.grade.workspace import BLOCK, first_uid

    firsts = {first_uid(pid) for pid in (1234, 2234, 11234, 32767, 4_194_303)}
    assert len(firsts) == 5
    assert all(a == b or abs(a - b) >= BLOCK for a in firsts for b in firsts)
    assert max(firsts) + BLOCK <= 2**31


_LITTERER = """\
import os, sys
for d in ("/tmp", "/var/tmp", "/dev/shm"):
    if os.path.isdir(d):
        with open(os.path.join(d, sys.argv[1]), "w") as f:
            f.write("left behind")
with open("written-by-the-run", "w") as f:  # in its copy: an overlay of its own
    f.write("x" * 1000)
print(open(sys.argv[2]).read(), flush=True)  # its copy, by its absolute path, still there
print(open("written-by-the-run").read(10), os.listdir("."), flush=True)
"""


@pytest.mark.timeout(60)
@pytest.mark.skipif(os.geteuid() != 0, reason="a uid of its own and a mount namespace need root")
@pytest.mark.parametrize("in_work", [True, False])
def test_what_a_submission_writes_in_tmp_or_its_copy_ends_with_it(tmp_path: Path,
                                                                  in_work: bool) -> None:
    """/tmp, /var/tmp and /dev/shm are the machine's: a program's files there outlived the
    grading (and could fill the disk); each program gets empty ones of its own instead. Its
    copy is on the machine's disk too: many files of 64 MB could fill it; what it writes
    there goes to an overlay of its own, bounded and gone when it ends. ``in_work``: the
    copy in the grader's work folder; else right in /tmp (which must not be bound back)."""
    import uuid

    from lclock.grade.build import clean_env
    from lclock.grade.workspace import others_reach, prepare, user_for
    from lclock.impl.config import Limits
    from lclock.impl.jail import Jail

    python = Path("/usr/bin/python3")
    if not others_reach(python):
        pytest.skip("no python3 an unprivileged user can run")
    source = tmp_path / "class" / "litterer"
    source.mkdir(parents=True)
    (source / "vm.py").write_text(_LITTERER)
    marker = f"lclock-test-litter-{uuid.uuid4().hex}"
    user = user_for(9_998, (str(tmp_path / "class"),))
    with tempfile.TemporaryDirectory(prefix=work_prefix()) as tmp:
        Path(tmp).chmod(0o711)
        copy, _runs = prepare(source, Path(tmp) / "w", user)
        if not in_work:
            copy = copy.rename(Path(tempfile.gettempdir()) / f"{Path(tmp).name}-copy")
        jail = Jail([str(python), "vm.py", marker, str(copy / "vm.py")], copy, clean_env(copy),
                    Limits(cpu=20, mem=256, procs=16, fsize=16), f"lclock-{os.getpid()}-litter",
                    user)
        try:
            out, err = jail.proc.communicate(timeout=30)
        finally:
            jail.kill()
            left_in_copy = sorted(p.name for p in copy.iterdir())
            if not in_work:
                shutil.rmtree(copy)
    assert jail.proc.returncode == 0, err
    assert b"print(open(sys.argv[2])" in out and b"xxxxxxxxxx ['" in out
    assert left_in_copy == ["vm.py"]  # what it wrote there ended with it
    left = [d for d in ("/tmp", "/var/tmp", "/dev/shm") if os.path.lexists(os.path.join(d, marker))]
    for d in left:
        os.unlink(os.path.join(d, marker))
    assert left == []


# -- lanes: when a submission may use the CPU --------------------------------------------------

def test_the_real_run_and_the_runs_after_a_hang_wait_on_the_clock() -> None:
    sim, real = Item("sim", "sim", 10), Item("real", "real", 10)
    crashed = ItemResult("a", "sim", 10, runs=[_run("a, seed 1", failure=("crash", "x", "y"))])
    hung = ItemResult("b", "sim", 10, runs=[RunResult("b, seed 2", "b-2", ("hang", "x", "y"),
                                                      cpu_s=0.1)])
    assert waits_on_the_clock(real, []) and not waits_on_the_clock(sim, [])
    assert not waits_on_the_clock(sim, [crashed])
    assert waits_on_the_clock(sim, [crashed, hung])


def test_n_lanes_let_n_submissions_compute_and_any_number_wait() -> None:
    lanes = Lanes(2)
    entered = threading.Event()

    def third() -> None:
        with lanes.lane(clock=False):
            entered.set()

    with contextlib.ExitStack() as held:
        held.enter_context(lanes.lane(clock=False))
        held.enter_context(lanes.lane(clock=False))
        with lanes.lane(clock=True):  # waiting on the clock takes no lane: never blocks
            pass
        t = threading.Thread(target=third, daemon=True)
        t.start()
        assert not entered.wait(0.3)  # both lanes held: the third waits for one
    t.join(60)
    assert entered.is_set()


def test_a_run_that_hung_idle_sends_the_rest_to_the_clock_one_that_spun_does_not() -> None:
    sim = Item("sim", "sim", 10)

    def hung(cpu_s: float | None) -> list[ItemResult]:
        run = RunResult("a, seed 1", "a-1", ("hang", "no answer within 10 s", "a-1"), cpu_s=cpu_s)
        return [ItemResult("a", "sim", 10, runs=[run])]

    assert hung_idle(hung(0.1)) and waits_on_the_clock(sim, hung(0.1))
    assert not hung_idle(hung(30.0)) and not waits_on_the_clock(sim, hung(30.0))
    assert not hung_idle(hung(None))  # not known: as before, one at a time


def test_runs_made_at_once_land_in_their_items_in_seed_order() -> None:
    items = [Item("a", "sim", 10, (3, 1, 2)), Item("b", "real", 5, skip=True),
             Item("c", "twice", 7, (9,))]
    seen: list[tuple[str, int]] = []
    lock = threading.Lock()

    def run(item: Item, seed: int) -> RunResult:
        with lock:
            seen.append((item.name, seed))
        return RunResult(f"{item.name}, seed {seed}")

    results, tasks = tasks_of(items)
    runs_at_once(tasks, run)
    assert sorted(seen) == [("a", 1), ("a", 2), ("a", 3), ("c", 9)]
    assert [(r.name, r.points, [x.label for x in r.runs]) for r in results] == [
        ("a", 10, ["a, seed 3", "a, seed 1", "a, seed 2"]), ("b", 5, []), ("c", 7, ["c, seed 9"])]
    assert results[1].skipped == "skipped by the rubric"


def test_a_failures_reason_is_the_same_whatever_the_copys_path(tmp_path: Path) -> None:
    """The copy's path is another on each host (a Dask worker's pid has more digits): the
    reason was cut to length before the path was taken out, so grades differed by a byte."""
    from lclock.grade.battery import _failure

    got = []
    for copy in (Path("/tmp/lclock-grade-1-ab/w/copy"), Path("/tmp/lclock-grade-123456-abcdef/w/copy")):
        run_dir = tmp_path / str(len(str(copy))) / "sim-1"
        run_dir.mkdir(parents=True)
        tail = f"Traceback\npython3: can't open file '{copy}/vm.py': [Errno 13] Permission denied\n"
        (run_dir / "run.json").write_text(json.dumps({
            "reason": f"machine 1: exited with code 2 in {copy}",
            "impl": {"machines": {"1": {"failed": True, "stderr_tail": tail}}}}))
        got.append(_failure(run_dir, f"lclock: {copy} failed", 1, copy))
    assert got[0] == got[1]
    assert "<submission>/vm.py': [Errno 13] Permission denied" in got[0][1]


def test_the_class_figure_counts_submissions_in_whole_numbers() -> None:
    """Two submissions drew a count axis of 0.25, 0.5, 0.75 submissions."""
    import matplotlib.pyplot as plt

    from lclock.grade.report import class_figure

    rows = [{"bugs": "receive-ignores-message", "score": 70, "max_score": 100},
            {"bugs": "", "score": 100, "max_score": 100}]
    fig = class_figure(rows)
    try:
        left, right = fig.axes
        fig.canvas.draw()
        for ticks in (left.get_xticks(), right.get_yticks()):
            assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks
    finally:
        plt.close(fig)


def test_a_failure_points_at_the_error_line_of_the_machine_it_blames(tmp_path: Path) -> None:
    """A run whose reason blames machine 3 pointed at machine 1's error line (a peer's
    'peer failed' error, say)."""
    from lclock.grade.battery import _failure

    run_dir = tmp_path / "real-1"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps({"reason": "machine 3: no answer within 5 s"}))
    for mid, lines in ((1, ['{"event":"start"}', '{"event":"error","reason":"peer"}']),
                       (3, ['{"event":"start"}', '{"event":"tick"}', '{"event":"error"}'])):
        (run_dir / f"machine-{mid}.jsonl").write_text("\n".join(lines) + "\n")
    assert _failure(run_dir, "", 1, tmp_path / "copy")[2] == "real-1/machine-3.jsonl:3"
    (run_dir / "run.json").write_text(json.dumps({"reason": "interrupted"}))
    assert _failure(run_dir, "", 1, tmp_path / "copy")[2] == "real-1/machine-1.jsonl:2"


@pytest.mark.timeout(60)
@pytest.mark.skipif(os.geteuid() != 0, reason="a uid of its own needs root")
def test_a_frozen_process_of_a_submissions_user_is_thawed_and_ended() -> None:
    """A paused program left frozen (its lclock killed mid-pause) keeps its SIGKILL pending
    until thawed: ending the user's processes spun on it for ever."""
    import subprocess

    import psutil

    from lclock.grade.workspace import end_processes, user_for
    from lclock.impl.jail import _own_cgroup
    from tests.conftest import wait_for

    parent = _own_cgroup("freezer")
    if parent is None:
        pytest.skip("no cgroup v1 freezer of ours here")
    group = parent / f"lclock-test-frozen-{os.getpid()}"
    group.mkdir()
    user = user_for(9_998)
    proc = subprocess.Popen(["/bin/sleep", "300"], user=user.uid, group=user.gid, extra_groups=[],
                            cwd="/", start_new_session=True)
    try:
        (group / "cgroup.procs").write_text(str(proc.pid))
        (group / "freezer.state").write_text("FROZEN")
        assert wait_for(lambda: (group / "freezer.state").read_text().strip() == "FROZEN", 10)
        end_processes(user)
        assert proc.wait(timeout=10) == -9
        assert not psutil.pid_exists(proc.pid)
    finally:
        (group / "freezer.state").write_text("THAWED")
        proc.kill()
        proc.wait()
        group.rmdir()
