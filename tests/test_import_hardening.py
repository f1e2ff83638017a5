"""``lclock import`` against hostile inputs and interruptions (issue 18).

A user's expression that backtracks exponentially stops at its time budget, naming the line;
``--force`` deletes only what lclock made; a log or an earlier run.json that is a FIFO or a
link to /dev/zero is refused at once; a stop signal while writing leaves nothing behind; the
text preset reads the usual ways of naming a machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import started, wait_for

from lclock.ingest.presets import PRESETS
from lclock.ingest.textlog import Scan, compile_spec, scan

REPO = Path(__file__).resolve().parents[1]
GOOD = "ts=1.5 machine=1 event=internal lclock=1\n"


def lclock(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lclock", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def one_error_line(p: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    for f in fragments:
        assert f in p.stderr, p.stderr


# ---------------------------------------------------------------- a user's expression


CATASTROPHIC = (r"^(?P<time>\d+) (?P<machine>\d+) (?P<event>\w+) (?P<peer>\d*) ?"
                r"(?P<clock>\d+) (?:a|aa)+$")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("multiline", [False, True])
def test_an_exponential_expression_stops_at_its_budget_naming_the_line(
        tmp_path: Path, multiline: bool) -> None:
    log = tmp_path / "m.log"
    log.write_text("1 1 internal 1 a\n2 1 internal 2 aa\n" + "3 1 internal 3 " + "a" * 60 + "!\n")
    rx = CATASTROPHIC + (r"\n?" if multiline else "")
    p = lclock("import", "--regex", rx, str(log), "-o", str(tmp_path / "out"),
               "--regex-timeout", "0.2")
    one_error_line(p, f"{log}:3:", "0.2 s", "--regex-timeout")
    assert not (tmp_path / "out").exists() and os.listdir(tmp_path) == ["m.log"]


def test_a_budget_that_is_no_number_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text(GOOD)
    for bad in ("0", "-1", "nan", "inf"):
        p = lclock("import", "--regex", CATASTROPHIC, str(tmp_path / "a.log"),
                   "--regex-timeout", bad, "-o", str(tmp_path / "out"))
        one_error_line(p, "--regex-timeout")


@pytest.mark.parametrize("budget", [1e13, 1e30])
def test_a_huge_budget_means_no_limit_not_an_instant_stop(budget: float) -> None:
    # the regex module counts a timeout in 64-bit microseconds: 1e13 s wrapped round and
    # stopped the first line at once, saying it ran for more than 1e+13 s
    spec = compile_spec(CATASTROPHIC, need_machine=False, budget=budget)
    s = Scan("m.log")
    found = list(scan(spec, s, ["1 1 internal 1 " + "a" * 12 + "!\n", "2 1 internal 2 aa\n"]))
    assert len(found) == 1 and s.lines == 2


# ---------------------------------------------------------------- what --force deletes


def test_force_never_touches_an_old_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text(GOOD)
    out = tmp_path / "imp"
    assert lclock("import", "--preset", "logfmt", str(tmp_path / "a.log"), "-o",
                  str(out)).returncode == 0
    mine = tmp_path / ".imp.old"  # the name the import used to move the old folder to
    mine.mkdir()
    (mine / "thesis.tex").write_text("months of work")
    p = lclock("import", "--preset", "logfmt", str(tmp_path / "a.log"), "-o", str(out), "--force")
    assert p.returncode == 0, p.stderr
    assert (mine / "thesis.tex").read_text() == "months of work"
    assert sorted(x.name for x in tmp_path.iterdir()) == [".imp.old", "a.log", "imp"]


@pytest.mark.parametrize("force", [False, True])
def test_a_folder_made_while_the_import_ran_is_never_replaced(tmp_path: Path,
                                                              force: bool) -> None:
    """The output was free when the import began; a folder of the user's that appears there
    while it reads (a long import: minutes) is kept, and the import says so, exit 2."""
    from lclock.ingest.outdir import OutputTaken, Staging

    out = tmp_path / "imp"
    with pytest.raises(OutputTaken, match="already exists and is not empty"), \
            Staging(out, force=force) as stage:
        (stage.folder / "run.json").write_text("{}")
        out.mkdir()
        (out / "notes.txt").write_text("mine")
        stage.commit()
    assert os.listdir(out) == ["notes.txt"] and os.listdir(tmp_path) == ["imp"]


def test_force_keeps_an_import_folder_holding_a_file_of_the_user(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text(GOOD)
    out = tmp_path / "imp"
    assert lclock("import", "--preset", "logfmt", str(tmp_path / "a.log"), "-o",
                  str(out)).returncode == 0
    (out / "notes.txt").write_text("mine")
    p = lclock("import", "--preset", "logfmt", str(tmp_path / "a.log"), "-o", str(out), "--force")
    one_error_line(p, "notes.txt", "lclock did not write")
    assert (out / "notes.txt").read_text() == "mine" and (out / "run.json").exists()
    # what lclock's own commands write there is not in the way
    (out / "notes.txt").unlink()
    assert lclock("analyze", str(out)).returncode in (0, 1)
    p = lclock("import", "--preset", "logfmt", str(tmp_path / "a.log"), "-o", str(out), "--force")
    assert p.returncode == 0, p.stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_force_does_not_hang_on_a_run_json_that_never_ends(tmp_path: Path, kind: str) -> None:
    (tmp_path / "a.log").write_text(GOOD)
    out = tmp_path / "imp"
    out.mkdir()
    if kind == "fifo":
        os.mkfifo(out / "run.json")
    else:
        os.symlink("/dev/zero", out / "run.json")
    p = lclock("import", "--preset", "logfmt", str(tmp_path / "a.log"), "-o", str(out), "--force")
    one_error_line(p, "only an earlier import")
    assert sorted(os.listdir(out)) == ["run.json"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "folder-link"])
def test_a_log_that_is_no_regular_file_is_refused_at_once(tmp_path: Path, kind: str) -> None:
    log = tmp_path / "m.log"
    if kind == "fifo":
        os.mkfifo(log)
    elif kind == "dev-zero":
        os.symlink("/dev/zero", log)
    else:
        os.symlink(tmp_path, log)
    p = lclock("import", "--preset", "logfmt", str(log), "-o", str(tmp_path / "out"))
    one_error_line(p, str(log))
    assert not (tmp_path / "out").exists()


def test_an_overlong_line_is_reported_not_read(tmp_path: Path) -> None:
    from lclock.ingest.sources import MAX_LINE_BYTES

    log = tmp_path / "a.log"
    log.write_text(GOOD + "x" * (MAX_LINE_BYTES + 10) + "\n" + GOOD.replace("1.5", "2.5")
                   .replace("lclock=1", "lclock=2"))
    p = lclock("import", "--preset", "logfmt", str(log), "-o", str(tmp_path / "out"))
    assert p.returncode == 0, p.stderr
    assert "imported 2 events" in p.stdout and "(3 lines)" in p.stdout
    assert f"{log}:2: longer than {MAX_LINE_BYTES} bytes: not read" in p.stdout


def test_a_log_of_one_overlong_line_says_why_nothing_matched(tmp_path: Path) -> None:
    """The line is given as empty (it was not read): the error must say so, not show ''."""
    from lclock.ingest.sources import MAX_LINE_BYTES

    log = tmp_path / "a.log"
    log.write_text(GOOD.rstrip("\n") + "x" * (MAX_LINE_BYTES + 10) + "\n")
    p = lclock("import", "--preset", "logfmt", str(log), "-o", str(tmp_path / "out"))
    one_error_line(p, f"{log}:1: longer than {MAX_LINE_BYTES} bytes: not read")
    assert not (tmp_path / "out").exists()


def test_force_replaces_a_linked_output_and_keeps_what_the_link_pointed_to(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text(GOOD)
    target = tmp_path / "first"
    assert lclock("import", "--preset", "logfmt", str(tmp_path / "a.log"), "-o",
                  str(target)).returncode == 0
    link = tmp_path / "imp"
    link.symlink_to(target)
    p = lclock("import", "--preset", "logfmt", str(tmp_path / "a.log"), "-o", str(link), "--force")
    assert p.returncode == 0, p.stderr
    assert link.is_dir() and not link.is_symlink() and (link / "run.json").exists()
    assert (target / "run.json").exists()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.log", "first", "imp"]


def test_a_log_naming_more_machines_than_any_run_is_refused(tmp_path: Path) -> None:
    from lclock.ingest.runwriter import MAX_NAMES

    log = tmp_path / "a.log"
    with open(log, "w") as fh:
        for k in range(MAX_NAMES + 2):
            fh.write(f"ts=1.5 machine=n{k}x event=internal lclock=1\n")
    p = lclock("import", "--preset", "logfmt", str(log), "-o", str(tmp_path / "out"))
    one_error_line(p, f"{log}:{MAX_NAMES + 1}: more than {MAX_NAMES} machine names")
    assert sorted(os.listdir(tmp_path)) == ["a.log"]


# ---------------------------------------------------------------- stop signals


def _big_log(path: Path, lines: int) -> None:
    with open(path, "w") as fh:
        for k in range(1, lines + 1):
            fh.write(f"ts={k}.5 machine={k % 3 + 1} event=internal lclock={k}\n")


@pytest.mark.timeout(240)
@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_stop_signal_while_writing_leaves_nothing(tmp_path: Path, sig: int, code: int) -> None:
    log = tmp_path / "big.log"
    _big_log(log, 600_000)
    out = tmp_path / "o" / "imp"
    cmd = [sys.executable, "-m", "lclock", "import", "--preset", "logfmt", str(log), "-o",
           str(out)]
    with started(cmd, cwd=REPO) as proc:
        # the spare folder exists and the spill file grows: the import is writing
        assert wait_for(lambda: any(p.name.startswith(".imp.") and (p / ".events.spill").exists()
                                    for p in (tmp_path / "o").glob(".*")), 120)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and f"stopped by {signal.Signals(sig).name}: nothing written" in lines[0]
    assert not (tmp_path / "o").exists()  # nor the parent folder it made


# ---------------------------------------------------------------- how people name machines


@pytest.mark.parametrize("me,peer", [
    ("Machine 2", "machine 1"), ("machine #2", "machine #1"), ("machine_2", "machine_1"),
    ("M2", "M1"), ("m2", "m1"), ("[M2]", "M1"), ("VM2", "VM1"), ("vm 2", "vm 1"),
    ("process 2", "process 1"), ("Process-2", "process-1"), ("node2", "node1"),
    ("Node 2", "node 1"), ("P2", "P1"), ("host-2", "host-1"), ("server 2", "server 1"),
    ("worker_2", "worker_1"), ("machine-2", "machine-1"), ("Machine 2", "1"),
])
def test_the_text_preset_reads_common_machine_names(me: str, peer: str) -> None:
    spec = compile_spec(PRESETS["text"].regex, need_machine=False)
    line = f"2026-01-01 12:00:00,500 {me}: received message from {peer} (msg clock 4), clock 6"
    found = list(scan(spec, Scan("x"), [line]))
    assert len(found) == 1, line
    v = found[0].values
    assert (v["machine"], v["peer"], v["event"], v["clock"], v["msg_clock"]) == (
        "2", "1", "received", "6", "4")


def test_the_text_preset_reads_lists_of_recipients_named_in_any_way() -> None:
    spec = compile_spec(PRESETS["text"].regex, need_machine=False)
    line = "12:00:01 M1 sent a message to M2 and m3, logical clock 7"
    [m] = list(scan(spec, Scan("x"), [line]))
    assert m.values["machine"] == "1" and m.values["peer"] == "2 and m3"


@pytest.mark.parametrize(("said", "queue"), [
    ("Queue length: 3", "3"), ("queue length 3", "3"), ("queue: 3", "3"), ("queue_len=3", "3"),
    ("Queue size is 3", "3"), ("queue-length = 3", "3"), ("no queue here", None),
])
def test_the_text_preset_reads_the_queue_length_however_said(said: str, queue: str | None) -> None:
    spec = compile_spec(PRESETS["text"].regex, need_machine=False)
    line = f"12:00:01 Machine 2: received message from machine 1, {said}, logical clock 6"
    [m] = list(scan(spec, Scan("x"), [line]))
    assert m.values.get("queue") == queue and m.values["clock"] == "6"


@pytest.mark.parametrize("line", [
    "12:00:01 P2P traffic from machine 3: internal event, clock 4",  # P2P is not machine 2
    "12:00:01 ms5 machine 3 internal event, clock 4",
])
def test_letters_glued_to_other_words_are_not_machines(line: str) -> None:
    spec = compile_spec(PRESETS["text"].regex, need_machine=False)
    [m] = list(scan(spec, Scan("x"), [line]))
    assert m.values["machine"] == "3"


# ---------------------------------------------------------------- expressions of several lines


@pytest.mark.parametrize("window,span", [(40, 2), (100, 3), (333, 5), (10**6, 1000)])
def test_a_two_line_expression_read_in_windows_finds_what_the_whole_text_gives(
        monkeypatch: pytest.MonkeyPatch, window: int, span: int) -> None:
    """The ShiViz layout read a window at a time (so memory stays bounded) gives the same
    events, line numbers and left-out lines as the whole text at once."""
    import lclock.ingest.textlog as textlog

    event = PRESETS["shiviz"].example
    parts = ["(?<host>\\S*) (?<clock>{.*})\\n(?<event>.*)", ""]
    for k in range(60):
        parts.append(event.replace("L=5", f"L={k}") + ("\r\n" if k % 7 == 0 else "\n"))
        if k % 5 == 0:
            parts.append("a line of no event\n")
        if k % 9 == 0:
            parts.append("\n")
    text = "\n".join(parts[:2]) + "\n" + "".join(parts[2:])
    spec = compile_spec(PRESETS["shiviz"].regex, need_machine=False)
    whole = Scan("x")
    want = [(m.line, m.values, m.text) for m in scan(spec, whole, text, 2)]
    monkeypatch.setattr(textlog, "WINDOW", window)
    monkeypatch.setattr(textlog, "SPAN_LINES", span)
    streamed = Scan("x")
    got = [(m.line, m.values, m.text) for m in scan(spec, streamed, text.splitlines(True), 2)]
    assert got == want and len(got) == 60
    assert (streamed.lines, streamed.unmatched) == (whole.lines, whole.unmatched)
    assert whole.unmatched_count == 12
