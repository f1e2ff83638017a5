"""Logs with holes (issue 20, SPEC 5 addendum): several line shapes, times on some lines
only, receives without their sender, sends without recipients, recipients as Python lists,
yearless times, machines numbered from 0 -- imported and checked through the real commands,
with check citing the student's own file and line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from array import array
from pathlib import Path
from typing import Any

import pytest

from lclock.analysis.cite import parse_src
from lclock.ingest.build import Names, format_problem, format_us, parse_date, parse_time
from lclock.ingest.holes import Missing, TimeFill
from lclock.ingest.textlog import MAX_EXPRESSIONS, Scan, SpecError, compile_spec, scan

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "student-holes"
REGEXES = [x for x in (DATA / "regexes.txt").read_text().splitlines() if x]


def lclock(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lclock", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120)


def regex_args() -> list[str]:
    return [x for rx in REGEXES for x in ("--regex", rx)]


def logs(folder: Path) -> list[str]:
    return [str(folder / f"machine_{k}.log") for k in range(3)]


def ticks(folder: Path, mid: int) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (folder / f"machine-{mid}.jsonl").read_text().splitlines()]


def import_and_check(src: Path, out: Path, *extra: str) -> tuple[str, dict[str, Any]]:
    p = lclock("import", *logs(src), *regex_args(), "--date", "2026-01-01", "-o", str(out),
               *extra)
    assert p.returncode == 0, p.stderr
    c = lclock("check", str(out), "--json")
    assert c.returncode in (0, 1), c.stderr
    return p.stdout, json.loads(c.stdout)


def copy_logs(tmp_path: Path) -> Path:
    src = tmp_path / "logs"
    shutil.copytree(DATA, src)
    return src


def test_a_correct_student_log_with_holes_imports_and_checks_clean(tmp_path: Path) -> None:
    out = tmp_path / "imp"
    stdout, result = import_and_check(DATA, out)
    assert "imported 13 events of 3 machine(s)" in stdout
    assert "numbered from 0: machine k is id k+1" in stdout
    assert "Machine 0 -> 1, Machine 1 -> 2, Machine 2 -> 3" in stdout
    # what is missing is said once per kind and file, not per line
    m1 = str(DATA / "machine_1.log")
    assert stdout.count(f"{m1}: 1 send(s) without recipients") == 1
    assert f"{m1}: 2 line(s) without a time" in stdout
    assert stdout.count("without a time") == 3
    meta = json.loads((out / "run.json").read_text())
    assert meta["import"]["missing"][m1] == {"time": 2, "sender": 1, "msg_clock": 1,
                                             "recipients": 1}
    assert meta["import"]["machine_names"] == {"Machine 0": 1, "Machine 1": 2, "Machine 2": 3}
    assert {"to", "from", "msg_lclock"} <= set(meta["not_logged"])
    one, two, three = ticks(out, 1), ticks(out, 2), ticks(out, 3)
    assert one[1]["to"] == [2, 3] and two[2]["to"] == [1, 3] and two[4]["to"] == [3]
    assert "to" not in two[3] and "from" not in two[1] and "msg_lclock" not in two[1]
    # yearless times take their year from --date; untimed lines are marked
    assert one[0]["ts"] == "2026-03-02T17:57:01.000000Z"
    assert one[2]["ts"] == "2026-03-02T17:57:03.500000Z" and one[2]["ts_derived"] == "interpolated"
    assert two[3]["ts"] == "2026-03-02T17:57:04.500000Z" and two[3]["ts_derived"] == "interpolated"
    assert three[3]["ts"] == "2026-03-02T17:57:04.000000Z" and three[3]["ts_derived"] == "carried"
    assert "ts_derived" not in one[0]
    assert three[0]["msg_lclock"] == 2 and "from" not in three[0]
    assert result["ok"], result["findings"]
    notes = [n for n in result["notes"] if "cannot be matched by channel order" in n]
    assert len(notes) == 1 and "1 send(s) without recipients" in notes[0]
    assert "machine ids are the import's (numbered from 0: machine k is id k+1): Machine 0 " \
           "-> 1, Machine 1 -> 2, Machine 2 -> 3" in result["notes"]


def test_check_cites_the_students_own_line_of_a_wrong_receive(tmp_path: Path) -> None:
    src = copy_logs(tmp_path)
    m2 = src / "machine_2.log"
    # the classic mistake: clock + 1 instead of max(local, message) + 1
    m2.write_text(m2.read_text().replace("clock 6, logical clock 7", "clock 6, logical clock 6")
                  .replace("logical clock 8", "logical clock 7"))
    _, result = import_and_check(src, tmp_path / "imp")
    assert not result["ok"]
    bad = [f for f in result["findings"] if f["rule"] == "lamport"]
    assert len(bad) == 1, result["findings"]
    assert (bad[0]["file"], bad[0]["line"]) == (str(m2), 3)
    assert (bad[0]["log_file"], bad[0]["log_line"]) == ("machine-3.jsonl", 3)
    text = lclock("check", str(tmp_path / "imp")).stdout
    assert f"{m2}:3: receive: lclock 6, expected 7" in text


def test_a_receive_naming_its_clock_is_matched_by_it_or_shown_not_to_match(tmp_path: Path) -> None:
    src = copy_logs(tmp_path)
    m2 = src / "machine_2.log"
    m2.write_text(m2.read_text().replace("carrying 2, logical clock 3", "carrying 9, logical clock 10")
                  .replace("logical clock 5", "logical clock 11")
                  .replace("logical clock 7", "logical clock 12")
                  .replace("logical clock 8", "logical clock 13"))
    _, result = import_and_check(src, tmp_path / "imp")
    bad = [f for f in result["findings"] if f["rule"] == "match"]
    assert len(bad) == 1, result["findings"]
    assert (bad[0]["file"], bad[0]["line"]) == (str(m2), 1)
    assert "msg_lclock 9 (its sender not logged) matches no send" in bad[0]["message"]


def test_yearless_times_without_date_are_one_clear_error(tmp_path: Path) -> None:
    p = lclock("import", *logs(DATA), *regex_args(), "-o", str(tmp_path / "imp"))
    assert p.returncode == 2 and not (tmp_path / "imp").exists()
    assert "has no year (give --date YYYY-MM-DD)" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr


def test_time_format_and_date_give_what_the_layout_lacks(tmp_path: Path) -> None:
    log = tmp_path / "m1.log"
    log.write_text("02/03 17:57:01.250 internal clock=1\n02/03 17:57:02 send to=2 clock=2\n")
    rx = r"^(?P<time>\S+ \S+) (?P<event>\w+)(?: to=(?P<peer>\S+))? clock=(?P<clock>\d+)$"
    out = tmp_path / "imp"
    p = lclock("import", str(log), "--regex", rx, "--time-format", "%d/%m %H:%M:%S.%f",
               "--date", "2024-01-01", "-o", str(out))
    assert p.returncode == 0, p.stderr
    # the second line does not fit the layout (no fraction): said, not guessed
    assert "does not fit --time-format" in p.stdout
    assert ticks(out, 1)[0]["ts"] == "2024-03-02T17:57:01.250000Z"
    meta = json.loads((out / "run.json").read_text())
    assert meta["import"]["time_format"] == "%d/%m %H:%M:%S.%f"


@pytest.mark.parametrize("extra,msg", [
    (["--time-format", "%H:%M:%S"], "--time-format '%H:%M:%S' has no date: give --date"),
    (["--time-format", "%b %d %H:%M:%S"], "has no year: give --date"),
    (["--time-format", "%Q%Q %H", "--date", "2026-01-01"], "is not a layout strptime reads"),
    (["--time-format", "%H %H", "--date", "2026-01-01"], "--time-format '%H %H' gives %H twice"),
    (["--time-format", "%Y %H:%M", "--date", "2026-01-01"], "has a year but no day of the month"),
    (["--time-format", "%b %H:%M", "--date", "2026-01-01"], "has a month but no day of the month"),
    (["--time-format", "%Y" * 5000], "--time-format: give a layout of strptime codes"),
    (["--time-format", "hello", "--date", "2026-01-01"], "has no strptime code"),
    (["--date", "garbage"], "--date: 'garbage' is not a date YYYY-MM-DD"),
    (["--date", "2026-02-30x"], "--date"),
    (["--date", "2026-02-30"], "--date: '2026-02-30' is not a date YYYY-MM-DD"),
])
def test_hostile_time_arguments_are_one_line_exit_2(tmp_path: Path, extra: list[str], msg: str) -> None:
    p = lclock("import", *logs(DATA), *regex_args(), *extra, "-o", str(tmp_path / "imp"))
    assert p.returncode == 2, p.stdout
    assert msg in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert "Traceback" not in p.stderr and not (tmp_path / "imp").exists()


def test_a_reader_that_went_away_is_a_normal_end_of_the_import(tmp_path: Path) -> None:
    """`lclock import ... | head -1`: the folder is written before the summary is printed, so
    a closed pipe is the normal end of a filter (exit 0, quiet), not "cannot write DIR"."""
    import os

    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first write: deterministic EPIPE
    try:
        p = subprocess.run([sys.executable, "-m", "lclock", "import", *logs(DATA), *regex_args(),
                            "--date", "2026-01-01", "-o", str(tmp_path / "imp")],
                           stdout=w, stderr=subprocess.PIPE, text=True, cwd=REPO, timeout=120)
    finally:
        os.close(w)
    assert p.returncode == 0 and p.stderr == ""
    assert lclock("check", str(tmp_path / "imp")).returncode in (0, 1)


def test_a_thousand_expressions_are_one_line_exit_2(tmp_path: Path) -> None:
    many = [x for k in range(1000) for x in ("--regex", rf"(?P<event>e{k}) (?P<clock>\d+) (?P<time>\S+)")]
    p = lclock("import", *logs(DATA), *many, "-o", str(tmp_path / "imp"))
    assert p.returncode == 2
    assert f"--regex given 1000 times: at most {MAX_EXPRESSIONS}" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and not (tmp_path / "imp").exists()


# ---------------------------------------------------------------- the pure parts


@pytest.mark.parametrize("text", [
    "['Machine 1', 'Machine 3']", "[1, 3]", "1,3", "machines 1 and 3", "Machine_1, Machine_3",
    "M1 M3", "vm1 & vm3", "node-1;node-3", '["m1","m3"]', "(1, 3)",
])
def test_recipients_in_any_common_spelling(text: str) -> None:
    assert Names({"Machine 1", "Machine 2", "Machine 3"}).peers(text) == [1, 3]


def test_machines_are_numbered_from_0_when_a_name_or_a_peer_is_0() -> None:
    n = Names({"machine_0", "machine_1"})
    assert n.ids == {"machine_0": 1, "machine_1": 2} and "from 0" in n.numbering()
    assert n.peers("['Machine 0']") == [1]
    n = Names({"M1", "M2"}, zero=True)  # machine 0 logged nothing, but was sent to
    assert n.ids == {"M1": 2, "M2": 3} and n.peers("to M0") == [1]
    assert "from 1" in Names({"M1", "M2"}).numbering()
    assert "sorted" in Names({"alice", "bob"}).numbering()
    assert Names({"alice", "bob"}).peers("['alice', 'bob']") == [1, 2]


def test_times_fill_interpolated_between_and_carried_outside() -> None:
    # machine 1: events 0..5, timed at 1 (100) and 4 (400)
    fill = TimeFill({1: array("q", [1, 4])}, {1: array("q", [100, 400])})
    got = [fill.fill(1, us) for us in (None, 100, None, None, 400, None)]
    assert got == [(100, "carried"), (100, None), (200, "interpolated"), (300, "interpolated"),
                   (400, None), (400, "carried")]
    assert TimeFill({}, {}).fill(2, None) == (None, None)


def test_missing_is_counted_per_file_and_kind() -> None:
    m = Missing()
    for _ in range(3):
        m.add("a.log", "time")
    m.add("b.log", "sender")
    assert m.as_json() == {"a.log": {"time": 3}, "b.log": {"sender": 1}}
    assert m.lines() == ["a.log: 3 line(s) without a time (taken from the neighbouring lines "
                         "of the same machine: ts_derived)",
                         "b.log: 1 receive(s) without a sender (matched by the clock their "
                         "message carried, if logged)"]
    assert m.any("time") and not m.any("recipients")


@pytest.mark.parametrize("day", ["2026-02-30", "2026-02-31", "2026-04-31", "2025-02-29",
                                 "0000-01-01"])
def test_a_day_the_calendar_does_not_have_is_no_date(day: str) -> None:
    """30 February is refused, not read as 2 March: the day --date gives is put into every
    time of day the logs have, so a day made up by rolling over would date every line."""
    with pytest.raises(ValueError, match="is not a date YYYY-MM-DD"):
        parse_date(day)
    assert format_us(parse_date("2024-02-29")) == "2024-02-29T00:00:00.000000Z"


def test_yearless_and_formatted_times() -> None:
    d = parse_date("2026-01-01")
    assert format_us(parse_time("Mar 02 17:57:01", d)) == "2026-03-02T17:57:01.000000Z"
    assert format_us(parse_time("Feb 29 00:00:00", parse_date("2024-05-05"))) == \
        "2024-02-29T00:00:00.000000Z"  # a leap day: the year is known before strptime reads it
    with pytest.raises(ValueError, match="has no year"):
        parse_time("Mar 02 17:57:01", None)
    assert format_us(parse_time("17:57", d, "%H:%M")) == "2026-01-01T17:57:00.000000Z"
    assert format_us(parse_time("2025/03/02 01:02:03 +0100", None, "%Y/%m/%d %H:%M:%S %z")) == \
        "2025-03-02T00:02:03.000000Z"
    with pytest.raises(ValueError, match="does not fit --time-format"):
        parse_time("yesterday", d, "%H:%M")
    assert format_problem("%Y-%m-%d %H:%M:%S", None) is None
    assert format_problem("%b %d %H:%M:%S", d) is None


def test_layouts_are_read_with_their_year_in_front() -> None:
    """strptime of a day without a year is deprecated (it changes in Python 3.15): the layout
    is tried, and read, with --date's year put in front, so no warning is left to change."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert format_problem("%b %d %H:%M:%S", parse_date("2024-05-05")) is None
        assert format_problem("%d/%m %H:%M", None) is not None  # no year: refused, not probed
        assert format_us(parse_time("Feb 29 01:00:00", parse_date("2024-05-05"),
                                    "%b %d %H:%M:%S")) == "2024-02-29T01:00:00.000000Z"


def test_several_expressions_first_match_reads_the_line() -> None:
    spec = compile_spec([r"(?P<event>send) (?P<clock>\d+) to (?P<peer>\d+)",
                         r"(?P<event>\w+) (?P<clock>\d+)(?: at (?P<time>\S+))?"],
                        need_machine=False)
    out = Scan("x.log")
    got = list(scan(spec, out, "send 1 to 2\nlocal 2 at 5\nnoise\n"))
    assert [(m.line, m.values) for m in got] == [
        (1, {"event": "send", "clock": "1", "peer": "2"}),
        (2, {"event": "local", "clock": "2", "time": "5"})]
    assert out.unmatched_count == 1 and not spec.has("peer") and spec.captures("peer")
    with pytest.raises(SpecError, match="no \\(\\?P<clock>"):
        compile_spec([r"(?P<event>\w+) (?P<clock>\d+) (?P<time>\S+)", r"(?P<event>\w+)"],
                     need_machine=False)
    with pytest.raises(SpecError, match="no \\(\\?P<time>"):
        compile_spec([r"(?P<event>\w+) (?P<clock>\d+)"], need_machine=False)
    with pytest.raises(SpecError, match="several lines"):
        compile_spec([r"(?P<event>\w+)\n(?P<clock>\d+) (?P<time>\S+)", r"(?P<event>x)(?P<clock>1)"],
                     need_machine=False)


def test_src_is_read_only_when_it_is_a_place() -> None:
    assert parse_src("/home/s/machine_1.log:17") == ("/home/s/machine_1.log", 17)
    assert parse_src("C:\\logs\\m.log:3") == ("C:\\logs\\m.log", 3)
    for bad in (None, 3, "no-line", "a.log:0", "a.log:x", "a\nb:3", "a.log:" + "9" * 20):
        assert parse_src(bad) is None


def test_a_preset_of_several_expressions_reads_each_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from lclock.ingest import import_cmd, presets

    two = presets.Preset(REGEXES[0], "sends", "", more=tuple(REGEXES[1:]))
    assert two.expressions == tuple(REGEXES)
    monkeypatch.setitem(presets.PRESETS, "two", two)
    args = argparse.Namespace(preset="two", regex=None, event=[], regex_timeout=1.0)
    spec = import_cmd._spec(args)
    assert not isinstance(spec, str) and len(spec.alternatives) == len(REGEXES)
    out = Scan("m.log")
    got = list(scan(spec, out, (DATA / "machine_2.log").read_text()))
    assert len(got) == 4 and out.unmatched_count == 0


def test_a_message_received_without_its_sender_is_not_called_lost(tmp_path: Path) -> None:
    log = tmp_path / "all.log"
    log.write_text("".join(f"ts=2026-01-01T00:00:0{k}Z machine=1 event=send to=2 lclock={k}\n"
                           for k in (1, 2, 3))
                   + "ts=2026-01-01T00:00:04Z machine=2 event=receive msg_lclock=1 lclock=2\n"
                   "ts=2026-01-01T00:00:05Z machine=2 event=receive from=1 msg_lclock=2 lclock=3\n"
                   "ts=2026-01-01T00:00:06Z machine=2 event=receive from=1 msg_lclock=3 lclock=4\n")
    out = tmp_path / "imp"
    assert lclock("import", "--preset", "logfmt", str(log), "-o", str(out)).returncode == 0
    result = json.loads(lclock("check", str(out), "--json").stdout)
    assert result["ok"], result["findings"]
    # the same with the sender-less receive's clock wrong: shown not to match, at its line
    log.write_text(log.read_text().replace("msg_lclock=1 lclock=2", "msg_lclock=7 lclock=8")
                   .replace("msg_lclock=2 lclock=3", "msg_lclock=2 lclock=9")
                   .replace("msg_lclock=3 lclock=4", "msg_lclock=3 lclock=10"))
    assert lclock("import", "--preset", "logfmt", str(log), "-o", str(out), "--force").returncode == 0
    result = json.loads(lclock("check", str(out), "--json").stdout)
    assert [(f["rule"], f["file"], f["line"]) for f in result["findings"] if f["severity"] == "error"] \
        == [("match", str(log), 4)]


DATA2 = REPO / "tests" / "data" / "student-holes-2"


def import_vms(log: Path, out: Path) -> dict[str, Any]:
    rx = [x for line in (DATA2 / "regexes.txt").read_text().splitlines() if line
          for x in ("--regex", line)]
    p = lclock("import", str(log), *rx, "--time-format", "%d/%m/%Y %H:%M:%S.%f", "-o", str(out))
    assert p.returncode == 0, p.stderr
    assert "2 line(s) did not match the expression" in p.stdout  # a comment, a stray line
    assert f"{log}: 2 receive(s) without a sender" in p.stdout
    c = lclock("check", str(out), "--json")
    assert c.returncode in (0, 1), c.stderr
    result: dict[str, Any] = json.loads(c.stdout)
    return result


def test_one_log_for_all_machines_with_its_own_time_layout(tmp_path: Path) -> None:
    result = import_vms(DATA2 / "vms.log", tmp_path / "imp")
    assert result["ok"], result["findings"]
    assert not any("machine ids are the import's" in n for n in result["notes"])  # VM_k is k
    three = ticks(tmp_path / "imp", 3)
    assert three[0]["ts"] == "2026-03-02T17:57:01.500000Z" and three[0]["ts_derived"] == "carried"
    assert three[2]["msg_lclock"] == 3  # from the channel order: VM_2's sends all name theirs
    assert ticks(tmp_path / "imp", 1)[0]["to"] == [2, 3] and ticks(tmp_path / "imp", 2)[2]["to"] == [1, 3]
    # the receive without the +1, on a line whose sender is not logged: cited at its own line
    bad_log = tmp_path / "vms.log"
    bad_log.write_text((DATA2 / "vms.log").read_text().replace("clock=6 | msg=5", "clock=5 | msg=5"))
    result = import_vms(bad_log, tmp_path / "bad")
    errors = [f for f in result["findings"] if f["severity"] == "error"]
    assert [(f["rule"], f["file"], f["line"], f["log_file"], f["log_line"]) for f in errors] == [
        ("lamport", str(bad_log), 12, "machine-1.jsonl", 3)]
