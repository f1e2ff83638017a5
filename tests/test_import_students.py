"""Four students' logs the import was not written for (tests/data/student-review20, README
there), each read with the flags the README documents, then checked: the findings cite the
student's own file and line, and name the receive rule on the buggy two only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "student-review20"
C_RX = [r"^(?P<time>\w{3} \d\d [\d:]+) Machine (?P<machine>\d+): (?P<event>received) from "
        r"(?P<peer>Machine \d+) \(queue (?P<queue>\d+)\), clock (?P<clock>\d+)$",
        r"^(?P<time>\w{3} \d\d [\d:]+) Machine (?P<machine>\d+): (?P<event>send|internal)"
        r"(?: (?P<peer>\[.*\]))?, clock (?P<clock>\d+)$"]


def lclock(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lclock", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120)


def rx(*exprs: str) -> list[str]:
    return [x for e in exprs for x in ("--regex", e)]


def test_yearless_times_without_date_name_the_flag_in_the_error(tmp_path: Path) -> None:
    """Every line timed, none datable: the one error line says why, not just 'no usable'."""
    p = lclock("import", *sorted(map(str, (DATA / "student-c").iterdir())), *rx(*C_RX),
               "-o", str(tmp_path / "imp"))
    assert p.returncode == 2 and not (tmp_path / "imp").exists()
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "has no year (give --date YYYY-MM-DD)" in p.stderr


D_RX = [r"^VM(?P<machine>\d+): (?P<event>sending) to (?P<peer>.+), clock=(?P<clock>\d+) @ "
        r"(?P<time>\S+)$",
        r"^VM(?P<machine>\d+): (?P<event>got) a message \(msg clock=(?P<msg_clock>\d+)\), "
        r"queue=(?P<queue>\d+), clock=(?P<clock>\d+) @ (?P<time>\S+)$",
        r"^VM(?P<machine>\d+): (?P<event>internal) event, clock=(?P<clock>\d+)$"]


def test_lines_the_import_left_out_are_in_run_json_and_said_by_check(tmp_path: Path) -> None:
    """Without --event got=receive, 85 receives are left out: the findings check then makes
    (internal events that seem to jump) come from that gap, which check must say."""
    out = tmp_path / "imp"
    p = lclock("import", str(DATA / "student-d" / "all_vms.log"), *rx(*D_RX),
               "--date", "2026-03-02", "-o", str(out))
    assert p.returncode == 0, p.stderr
    meta = json.loads((out / "run.json").read_text())
    assert meta["import"]["unusable"] == 85
    assert "all_vms.log:3: unknown event word 'got'" in meta["import"]["unusable_first"]
    c = lclock("check", str(out))
    assert c.returncode == 1
    assert "note: the import left out 85 line(s) that matched but could not be used" in c.stdout
    assert "all_vms.log:3: unknown event word 'got'" in c.stdout


B_RX = (r"^INFO:vm(?P<machine>\d+):(?P<event>\w+)(?: (?:to|from) (?P<peer>\S+))?"
        r"(?: queue=(?P<queue>\d+))? systime=(?P<time>\S+) clock=(?P<clock>\d+)$")


def test_a_queue_length_on_receives_only_is_not_said_absent(tmp_path: Path) -> None:
    """The classic assignment logs the queue length on receives: the import keeps it there
    and says it is on some lines only, not that the logs lack it."""
    out = tmp_path / "imp"
    p = lclock("import", *sorted(map(str, (DATA / "student-b").iterdir())), *rx(B_RX),
               "-o", str(out))
    assert p.returncode == 0, p.stderr
    assert "left out (check skips the rules about them): dice;" in p.stdout
    assert "queue_len: on some lines only (26 of 100)" in p.stdout
    lines = [json.loads(x) for x in (out / "machine-3.jsonl").read_text().splitlines()]
    assert [x["queue_len"] for x in lines[:3]] == [0, 1, 1]


def _files(name: str, glob: str) -> list[str]:
    return sorted(map(str, (DATA / name).glob(glob)))


STUDENTS: dict[str, tuple[list[str], str | None, str | None]] = {
    # name: (import arguments, the word of the lines a finding may cite (None: no finding),
    # the classic bug check must name)
    "a": (["--preset", "text", *_files("student-a", "*.log")], None, None),
    "b": ([*rx(B_RX), *_files("student-b", "*.log")], "RECEIVE", "receive-ignores-message"),
    "c": ([*rx(*C_RX), "--date", "2026-03-01", *_files("student-c", "*.txt")], None, None),
    "d": ([*rx(*D_RX), "--date", "2026-03-02", "--event", "got=receive",
           *_files("student-d", "*.log")], "got a message", "receive-no-increment"),
}


@pytest.mark.parametrize("name", sorted(STUDENTS))
def test_each_student_log_imports_and_checks_at_its_own_lines(tmp_path: Path, name: str) -> None:
    args, cited, bug = STUDENTS[name]
    out = tmp_path / "imp"
    p = lclock("import", *args, "-o", str(out))
    assert p.returncode == 0 and "could not be used" not in p.stdout, p.stdout + p.stderr
    c = lclock("check", str(out), "--json", "--all")
    result: dict[str, Any] = json.loads(c.stdout)
    errors = [f for f in result["findings"] if f["severity"] == "error"]
    assert c.returncode == (1 if cited else 0) and bool(errors) == bool(cited), errors[:3]
    for f in errors:  # the student's own file and line, and it is a receive
        path = Path(f["file"])
        assert path.parent.name == f"student-{name}", f
        text = path.read_text().splitlines()[f["line"] - 1]
        assert cited and cited in text and f["rule"] in ("lamport", "bug"), (f, text)
    # the bug named (SPEC 10), on the receives, and no other
    assert {f["bug"] for f in errors if "bug" in f} == ({bug} if bug else set()), errors[:3]


def test_names_that_end_in_the_same_number_are_said_to_clash_and_still_found_as_peers() -> None:
    """'Machine 0', 'machine 0', 'M0' and '0' in one log: not silently four machines named in
    sorted order; the clash is said, and a peer written as a whole name is still found."""
    from lclock.ingest.build import Names

    n = Names({"Machine 0", "machine 0", "M0", "Machine 1"})
    assert "'M0', 'Machine 0', 'machine 0' end in the same number 0" in n.numbering()
    assert n.peers("Machine 1") == [n.ids["Machine 1"]]
    assert n.peers("['Machine 1', 'M0']") == [n.ids["Machine 1"], n.ids["M0"]]


def test_lines_that_did_not_match_are_said_by_check(tmp_path: Path) -> None:
    """A line too long to read is not imported: the jump it leaves is check's finding, and
    check says lines were left out rather than let the finding stand alone."""
    log = tmp_path / "m.log"
    log.write_text("2026-03-02T10:00:00Z m1 internal 1\n"
                   f"2026-03-02T10:00:01Z m1 internal 2 {'x' * (5 << 20)}\n"
                   "2026-03-02T10:00:03Z m1 internal 3\n")
    out = tmp_path / "imp"
    p = lclock("import", str(log), "--regex", r"^(?P<time>\S+) m(?P<machine>\d) (?P<event>\w+) "
               r"(?P<clock>\d+).*$", "-o", str(out))
    assert p.returncode == 0, p.stderr
    c = lclock("check", str(out))
    assert c.returncode == 1 and "m.log:3: internal: lclock 3, expected 2" in c.stdout
    assert "note: the import left out 1 line(s) that did not match" in c.stdout, c.stdout


def test_the_more_findings_line_of_an_import_names_the_students_file() -> None:
    """'machine-2.jsonl: ... and 15 more findings' sent the student to a file they never
    wrote: it names their log (the generated one in log_file) when that machine's findings all come from one."""
    from lclock.analysis.cite import cite_summaries
    from lclock.analysis.load import Issue

    shown = Issue("all_vms.log", 3, "receive: ...", "error", rule="lamport")
    shown.log_file, shown.log_line = "machine-2.jsonl", 3
    more = Issue("machine-2.jsonl", 0, "... and 15 more findings of the kind 'lamport'", "error",
                 rule="lamport", count=15)
    other = Issue("machine-3.jsonl", 0, "... and 2 more", "error", rule="lamport", count=2)
    cite_summaries([shown, more, other])
    assert (more.file, more.line, more.log_file) == ("all_vms.log", 0, "machine-2.jsonl")
    assert more.text.startswith("... machine 2: and 15 more findings")  # one log, 3 machines
    assert other.file == "machine-3.jsonl"  # none of its findings was cited: left as it is
