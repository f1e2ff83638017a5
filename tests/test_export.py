"""``lclock export``: the ShiViz log passes ShiViz's validation rules (re-implemented here), and
the CSV is one flat table that round-trips to the logs."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from analysis_fixtures import make_run, read_lines

from lclock.analysis.export import write_csv, write_shiviz
from lclock.analysis.load import load_run
from lclock.errors import BadInput

REPO = Path(__file__).resolve().parents[1]
SAMPLE = Path(__file__).resolve().parent / "data" / "foreign-run-1-3-6"


def js_to_py_regex(rx: str) -> str:
    """ShiViz's expressions use JS named groups (?<name>...); Python spells them (?P<name>...)."""
    return re.sub(r"\(\?<([A-Za-z_]\w*)>", r"(?P<\1>", rx)


def shiviz_validate(text: str) -> list[tuple[str, str, dict[str, int]]]:
    """Parse a ShiViz file and apply ShiViz's checks; raise AssertionError on the first failure.

    The checks are those ShiViz applies when it builds its graph: the file starts with the
    parser expression and the delimiter line; every entry matches it with a JSON clock that
    names its own host; a host's own entry starts at 1 and rises by exactly 1 per event; any
    other host named is a known host with a value from 1 to its number of events; a host's
    view of another never goes back; and the vectors are consistent (transitivity): if e
    has seen host h's k-th event, e's clock is at least that event's clock everywhere.
    """
    first, delim, body = text.split("\n", 2)
    assert "(?<event>" in first and "(?<host>" in first and "(?<clock>" in first
    assert delim == ""  # one execution
    rx = re.compile(js_to_py_regex(first), re.MULTILINE)
    entries = []
    pos = 0
    for m in rx.finditer(body):
        assert body[pos:m.start()].strip() == "", f"unparsed text: {body[pos:m.start()]!r}"
        pos = m.end()
        clock = json.loads(m.group("clock"))
        assert isinstance(clock, dict) and all(isinstance(v, int) for v in clock.values())
        entries.append((m.group("host"), m.group("event"), clock))
    assert body[pos:].strip() == ""
    per_host: dict[str, list[dict[str, int]]] = {}
    for h, _, clock in entries:
        assert h in clock, f"{h}: own host missing from its clock {clock}"
        seq = per_host.setdefault(h, [])
        expected = len(seq) + 1
        assert clock[h] == expected, f"{h}: own entry {clock[h]}, expected {expected}"
        seq.append(clock)
    for h, seq in per_host.items():
        for a, b in zip(seq, seq[1:], strict=False):
            for other, v in a.items():
                assert b.get(other, 0) >= v, f"{h}: view of {other} goes back"
        for clock in seq:
            for other, v in clock.items():
                assert other in per_host, f"{h}: unknown host {other}"
                assert 1 <= v <= len(per_host[other]), f"{h}: {other}={v} out of range"
                if other != h:
                    seen = per_host[other][v - 1]
                    for x, w in seen.items():
                        assert clock.get(x, 0) >= w, f"{h} {clock} has not seen {other}'s {seen}"
    return entries


def test_validator_rejects_bad_logs() -> None:
    head = "(?<event>.*)\\n(?<host>\\S*) (?<clock>{.*})\n\n"
    with pytest.raises(AssertionError, match="own entry"):
        shiviz_validate(head + 'a\nm1 {"m1":2}\n')
    with pytest.raises(AssertionError, match="out of range"):
        shiviz_validate(head + 'a\nm1 {"m1":1}\nb\nm2 {"m2":1,"m1":2}\n')
    with pytest.raises(AssertionError, match="has not seen"):
        shiviz_validate(head + 'a\nm1 {"m1":1,"m3":1}\nb\nm2 {"m2":1,"m1":1}\n'
                        'c\nm3 {"m3":1}\n')


@pytest.mark.parametrize("rates", [(1, 3, 6), (2, 2), (4, 1, 7, 3, 5)])
def test_shiviz_export_passes_validation(tmp_path: Path, rates: tuple[int, ...]) -> None:
    run = load_run(make_run(tmp_path / "r", rates=rates, duration=20.0))
    buf = io.StringIO()
    count = write_shiviz(run, buf)
    entries = shiviz_validate(buf.getvalue())
    assert count == len(entries) == run.events
    assert {h for h, _, _ in entries} == {f"machine{i}" for i in run.ids}


def test_cli_shiviz_on_foreign_run(tmp_path: Path) -> None:
    out = tmp_path / "x.log"
    p = subprocess.run([sys.executable, "-m", "lclock", "export", "--format", "shiviz",
                        str(SAMPLE), "-o", str(out)], capture_output=True, text=True, cwd=REPO,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert len(shiviz_validate(out.read_text())) == 600


def test_shiviz_needs_vector_clocks(tmp_path: Path) -> None:
    run = load_run(make_run(tmp_path / "r", vector=False, duration=5.0))
    with pytest.raises(BadInput, match="no vector clocks"):
        write_shiviz(run, io.StringIO())
    p = subprocess.run([sys.executable, "-m", "lclock", "export", str(run.path)],
                       capture_output=True, text=True, cwd=REPO, timeout=60)
    assert p.returncode == 2 and "no vector clocks" in p.stderr


def test_csv_round_trips_the_logs(tmp_path: Path) -> None:
    path = make_run(tmp_path / "r", rates=(2, 5, 3), duration=15.0)
    run = load_run(path)
    buf = io.StringIO()
    count = write_csv(run, buf)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert count == len(rows) == run.events
    assert list(rows[0])[:12] == ["machine", "line", "ts", "t_s", "tick", "event", "lclock",
                                  "queue_len", "dice", "to", "from", "msg_lclock"]
    ts = [r["ts"] for r in rows]
    assert ts == sorted(ts)  # merged by time
    for i in (1, 2, 3):
        logged = [d for d in read_lines(path / f"machine-{i}.jsonl") if "tick" in d]
        mine = [r for r in rows if r["machine"] == str(i)]
        assert [int(r["lclock"]) for r in mine] == [d["lclock"] for d in logged]
        assert [r["ts"] for r in mine] == [d["ts"] for d in logged]
        assert [[int(r[f"v{j}"]) for j in (1, 2, 3)] for r in mine] == [d["vclock"] for d in logged]
        for r, d in zip(mine, logged, strict=True):
            if d["event"] == "send":
                assert r["to"] == " ".join(map(str, d["to"]))
            if d["event"] == "receive":
                assert int(r["from"]) == d["from"] and r["dice"] == ""


def test_csv_default_path(tmp_path: Path) -> None:
    path = make_run(tmp_path / "r", duration=5.0)
    p = subprocess.run([sys.executable, "-m", "lclock", "export", "--format", "csv", str(path)],
                       capture_output=True, text=True, cwd=REPO, timeout=60)
    assert p.returncode == 0 and (path / "events.csv").exists()
    assert "events written to" in p.stderr
