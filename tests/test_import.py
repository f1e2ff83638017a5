"""``lclock import``: text logs -> a schema-v1 run folder that check, analyze, trace and hb read.

The text logs are written here from run folders of the independent fixture generator (also
with the classic bugs switched on), in the ways people write logs: ShiViz's two-line
layout (as ``lclock export`` writes it), logfmt, sentences, one file per machine named by
its number, machines named by words. The imported events must be the original events, and
``check`` must find exactly the clock mistakes that were put in, not complaints about the
import.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from analysis_fixtures import make_run, read_lines

from lclock.analysis.causal import Causality, find_event
from lclock.analysis.export import write_shiviz
from lclock.analysis.load import KINDS, load_run
from lclock.ingest.build import Names, parse_time
from lclock.ingest.textlog import SpecError, compile_spec

REPO = Path(__file__).resolve().parents[1]
TICKS = set(KINDS)


def lclock(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lclock", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=180)


def ticks(folder: Path, mid: int) -> list[dict[str, Any]]:
    return [d for d in read_lines(folder / f"machine-{mid}.jsonl") if d["event"] in TICKS]


def as_logfmt(run: Path, msg: bool = True, vector: bool = False) -> str:
    """All machines in one file, merged by time: ts=... machine=... event=... lclock=..."""
    rows = []
    for p in sorted(run.glob("machine-*.jsonl")):
        for d in read_lines(p):
            if d["event"] not in TICKS:
                rows.append((d["ts"], f"ts={d['ts']} machine={d['machine']} note={d['event']}"))
                continue
            s = f"ts={d['ts']} machine={d['machine']} event={d['event']} lclock={d['lclock']}"
            if d["event"] == "send":
                s += f" to={','.join(map(str, d['to']))}"
            if d["event"] == "receive":
                s += f" from={d['from']}" + (f" msg_lclock={d['msg_lclock']}" if msg else "")
            if vector:
                s += f' vclock="{" ".join(map(str, d["vclock"]))}"'
            rows.append((d["ts"], s))
    return "".join(r + "\n" for _, r in sorted(rows, key=lambda x: x[0]))


def as_sentences(run: Path, folder: Path) -> list[Path]:
    """One file per machine, sentences as a student's print() would write them."""
    out = []
    for p in sorted(run.glob("machine-*.jsonl")):
        lines = []
        for d in read_lines(p):
            t = d["ts"].replace("T", " ").replace("Z", "")[:23].replace(".", ",")
            m = d["machine"]
            if d["event"] == "send":
                to = " and ".join(f"machine {x}" for x in d["to"])
                lines.append(f"{t} Machine {m}: sent message to {to}, logical clock {d['lclock']}")
            elif d["event"] == "receive":
                lines.append(f"{t} Machine {m}: received message from machine {d['from']} "
                             f"(msg clock {d['msg_lclock']}), logical clock {d['lclock']}")
            elif d["event"] == "internal":
                lines.append(f"{t} Machine {m}: internal event, logical clock {d['lclock']}")
            else:
                lines.append(f"{t} Machine {m}: {d['event']}")
        f = folder / f"vm{p.stem.split('-')[1]}.txt"
        f.write_text("\n".join(lines) + "\n")
        out.append(f)
    return out


def same_events(orig: Path, imported: Path, keys: tuple[str, ...]) -> None:
    for mid in (1, 2, 3):
        a, b = ticks(orig, mid), ticks(imported, mid)
        assert len(a) == len(b) > 0
        for x, y in zip(a, b, strict=True):
            assert {k: x.get(k) for k in keys} == {k: y.get(k) for k in keys}, (x, y)


# ---------------------------------------------------------------- round trips


def test_shiviz_round_trip_keeps_every_event(tmp_path: Path) -> None:
    orig = make_run(tmp_path / "orig", rates=(1, 3, 6), duration=30.0)
    log = tmp_path / "run.shiviz"
    with open(log, "w") as fh:
        write_shiviz(load_run(orig), fh)
    p = lclock("import", "--preset", "shiviz", str(log), "-o", str(tmp_path / "imp"))
    assert p.returncode == 0, p.stderr
    assert "imported" in p.stdout and "did not match" not in p.stdout
    same_events(orig, tmp_path / "imp", ("event", "tick", "lclock", "vclock", "to", "from",
                                         "msg_lclock", "dice", "ts"))
    meta = json.loads((tmp_path / "imp" / "run.json").read_text())
    assert meta["mode"] == "import" and meta["not_logged"] == ["queue_len", "start", "stop"]
    assert meta["import"]["machine_names"] == {"machine1": 1, "machine2": 2, "machine3": 3}
    p = lclock("check", str(tmp_path / "imp"))
    assert p.returncode == 0, p.stdout
    assert p.stdout.count("[warning]") == 1 and "not_logged" in p.stdout


def test_sentences_one_file_per_machine(tmp_path: Path) -> None:
    orig = make_run(tmp_path / "orig", rates=(2, 5, 3), duration=20.0)
    files = as_sentences(orig, tmp_path)
    out = tmp_path / "imp"
    p = lclock("import", "--preset", "text", *map(str, files), "-o", str(out))
    assert p.returncode == 0, p.stderr
    # the start and stop lines are not events: reported with their file and line
    assert "6 line(s) did not match the expression" in p.stdout
    assert f"{files[0]}:1: '" in p.stdout and "Machine 1: start" in p.stdout
    assert "tick numbers counted" in p.stdout
    same_events(orig, out, ("event", "tick", "lclock", "to", "from", "msg_lclock"))
    first = ticks(out, 1)[0]
    assert first["src"] == f"{files[0]}:2" and "queue_len" not in first and "dice" not in first
    assert lclock("check", str(out)).returncode == 0
    a = lclock("analyze", str(out), "--json", "--no-write")
    s = json.loads(a.stdout)
    assert all(m["queue"]["mean"] is None for m in s["machines"])
    assert all(m["jumps"]["count"] for m in s["machines"])


def test_messages_without_their_clock_are_paired_in_fifo_order(tmp_path: Path) -> None:
    orig = make_run(tmp_path / "orig", rates=(1, 3, 6), duration=20.0)
    (tmp_path / "all.log").write_text(as_logfmt(orig, msg=False))
    out = tmp_path / "imp"
    p = lclock("import", "--preset", "logfmt", str(tmp_path / "all.log"), "-o", str(out))
    assert p.returncode == 0, p.stderr
    assert "k-th send on its channel" in p.stdout
    same_events(orig, out, ("event", "lclock", "from", "msg_lclock"))
    assert json.loads((out / "run.json").read_text())["import"]["derived"] == ["tick", "msg_lclock"]
    assert lclock("check", str(out)).returncode == 0


# ---------------------------------------------------------------- clock mistakes come through


@pytest.mark.parametrize("bug,finding", [
    ("receive_no_plus1", "receive without the +1"),
    ("send_before_increment", "the message carried the clock before the increment"),
    ("broadcast_double_increment", "incremented once per recipient"),
])
def test_check_finds_the_clock_mistakes_of_an_imported_log(tmp_path: Path, bug: str, finding: str) -> None:
    orig = make_run(tmp_path / "orig", rates=(1, 3, 6), duration=20.0, bug=bug)
    (tmp_path / "all.log").write_text(as_logfmt(orig, vector=True))
    out = tmp_path / "imp"
    assert lclock("import", "--preset", "logfmt", str(tmp_path / "all.log"), "-o",
                  str(out)).returncode == 0
    p = lclock("check", str(out), "--json")
    assert p.returncode == 1
    found = json.loads(p.stdout)["findings"]
    assert any(finding in f["message"] for f in found)
    # nothing about what the import could not know
    noise = [f for f in found if any(w in f["message"] for w in (
        "queue_len", "dice", "start line", "stop line", "unprocessed"))]
    assert [f["severity"] for f in noise] == ["warning"]


# ---------------------------------------------------------------- own expressions


def test_own_regex_names_machines_by_words_and_files_by_number(tmp_path: Path) -> None:
    log = tmp_path / "node-7.log"
    log.write_text(
        "[00:00:01.000] SEND alice->bob L=1 V={\"alice\":1}\n"
        "[00:00:01.500] RECV bob<-alice L=2 V={\"alice\":1,\"bob\":1}\n"
        "[00:00:02.000] TICK carol L=1 V={\"carol\":1}\n"
        "garbage line\n"
        "[00:00:03.000] SEND bob->carol L=3 V={\"alice\":1,\"bob\":2}\n"
        "[00:00:04.000] RECV carol<-bob L=4 V={\"alice\":1,\"bob\":2,\"carol\":2}\n")
    rx = (r"^\[(?<time>[\d:.]+)\] (?<event>\w+) (?<machine>\w+)(?:->|<-)?(?<peer>\w+)? "
          r"L=(?<clock>\d+) V=(?<vclock>\{.*\})$")
    out = tmp_path / "imp"
    p = lclock("import", "--regex", rx, str(log), "--event", "tick=internal", "--date",
               "2026-03-01", "-o", str(out))
    assert p.returncode == 0, p.stderr
    assert "alice -> 1, bob -> 2, carol -> 3" in p.stdout
    assert "1 line(s) did not match the expression" in p.stdout and f"{log}:4" in p.stdout
    bob = ticks(out, 2)
    assert [(d["event"], d["lclock"], d["vclock"]) for d in bob] == [
        ("receive", 2, [1, 1, 0]), ("send", 3, [1, 2, 0])]
    assert bob[0]["ts"] == "2026-03-01T00:00:01.500000Z" and bob[1]["to"] == [3]
    run = load_run(out)
    c = Causality.build(run)
    assert c.relation(find_event(run, "1:L1"), find_event(run, "3:L4")) == "before"
    assert c.relation(find_event(run, "3:L1"), find_event(run, "1:L1")) == "concurrent"
    assert lclock("check", str(out)).returncode == 0


def test_machine_from_the_file_name(tmp_path: Path) -> None:
    for mid, body in ((1, "1.0 send 2 c=1\n2.0 recv 2 c=4\n"), (2, "1.5 recv 1 c=2\n2.5 send 1 c=3\n")):
        (tmp_path / f"machine_{mid}.log").write_text(body)
    rx = r"^(?P<time>\S+) (?P<event>\w+) (?P<peer>\d+) c=(?P<clock>\d+)$"
    out = tmp_path / "imp"
    p = lclock("import", "--regex", rx, str(tmp_path / "machine_1.log"),
               str(tmp_path / "machine_2.log"), "-o", str(out))
    assert p.returncode == 0, p.stderr
    assert [(d["event"], d["lclock"], d.get("msg_lclock")) for d in ticks(out, 1)] == [
        ("send", 1, None), ("receive", 4, 3)]
    assert ticks(out, 2)[0]["ts"] == "1970-01-01T00:00:01.500000Z"  # seconds from the start
    assert lclock("check", str(out)).returncode == 0


def test_unusable_lines_say_why_and_strict_fails(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("ts=2026-01-01T00:00:01Z machine=1 event=send to=2 lclock=1\n"
                   "ts=2026-01-01T00:00:02Z machine=2 event=got from=1 lclock=2\n"
                   "ts=12:00:03 machine=2 event=internal lclock=3\n"
                   "ts=2026-01-01T00:00:04Z machine=2 event=send lclock=4\n"
                   "hello\n")
    out = tmp_path / "imp"
    p = lclock("import", "--preset", "logfmt", str(log), "-o", str(out))
    assert p.returncode == 0, p.stderr
    assert "1 line(s) did not match" in p.stdout and f"{log}:5: 'hello'" in p.stdout
    assert "2 line(s) matched but could not be used" in p.stdout
    assert "unknown event word 'got' (map it with --event 'got=send'" in p.stdout
    assert "has no date (give --date YYYY-MM-DD)" in p.stdout
    # a send that does not say to whom is imported without recipients, and said once
    assert f"{log}: 1 send(s) without recipients" in p.stdout
    p = lclock("import", "--preset", "logfmt", str(log), "-o", str(tmp_path / "strict"),
               "--strict")
    assert p.returncode == 1 and "nothing written" in p.stdout
    assert not (tmp_path / "strict").exists()
    # mapping the word and giving the date: every event is usable
    p = lclock("import", "--preset", "logfmt", str(log), "-o", str(tmp_path / "ok"), "--event",
               "got=receive", "--date", "2026-01-01")
    assert p.returncode == 0, p.stderr
    assert "matched but could not be used" not in p.stdout  # the send without a peer is kept
    assert ticks(tmp_path / "ok", 2)[-1]["event"] == "send" and "to" not in ticks(tmp_path / "ok", 2)[-1]


@pytest.mark.parametrize("args,msg", [
    (["--regex", "(?P<machine>\\d+"], "--regex: not a valid regular expression"),
    (["--regex", r"(?P<machine>\d+) (?P<event>\w+) (?P<time>\S+) (?P<peer>\d+)"],
     "no (?P<clock>...) group: it must capture the Lamport clock"),
    (["--regex", r"(?P<machine>\d+) (?P<evnt>\w+)"], "unknown group (?P<evnt>...) (did you mean event?)"),
    (["--preset", "logfmt", "--event", "sent"], "--event sent: write WORD=KIND"),
    (["--preset", "logfmt", "--event", "sent=post"], "the kind must be one of"),
    (["--preset", "logfmt", "--date", "2026-13-01"], "--date"),
    ([], "give --regex RX or --preset NAME"),
])
def test_bad_command_lines_are_one_line_exit_2(tmp_path: Path, args: list[str], msg: str) -> None:
    log = tmp_path / "a.log"
    log.write_text("ts=1 machine=1 event=internal lclock=1\n")
    p = lclock("import", *args, str(log), "-o", str(tmp_path / "out"))
    assert p.returncode == 2, p.stdout
    assert msg in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert "Traceback" not in p.stderr and not (tmp_path / "out").exists()


def test_bad_inputs_and_outputs(tmp_path: Path) -> None:
    p = lclock("import", "--preset", "logfmt", str(tmp_path / "none.log"))
    assert p.returncode == 2 and "no such file" in p.stderr
    p = lclock("import", "--preset", "logfmt", str(tmp_path))
    assert p.returncode == 2 and "a folder" in p.stderr
    (tmp_path / "x.log").write_text("nothing here\nat all\n")
    p = lclock("import", "--preset", "logfmt", str(tmp_path / "x.log"), "-o", str(tmp_path / "o"))
    assert p.returncode == 2 and "no line of the log(s) matched" in p.stderr and "x.log:1" in p.stderr
    assert not (tmp_path / "o").exists()
    (tmp_path / "nomachine.log").write_text("1 send 2 c=1\n")
    p = lclock("import", "--regex", r"(?P<time>\S+) (?P<event>\w+) (?P<peer>\d+) c=(?P<clock>\d+)",
               str(tmp_path / "nomachine.log"))
    assert p.returncode == 2 and "holds no machine number" in p.stderr
    # an existing folder is not overwritten, unless it is an earlier import and --force is given
    good = tmp_path / "g.log"
    good.write_text("ts=1.5 machine=1 event=internal lclock=1\n")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    p = lclock("import", "--preset", "logfmt", str(good), "-o", str(taken), "--force")
    assert p.returncode == 2 and "only an earlier import" in p.stderr
    assert (taken / "keep.txt").read_text() == "mine"
    out = tmp_path / "imp"
    assert lclock("import", "--preset", "logfmt", str(good), "-o", str(out)).returncode == 0
    p = lclock("import", "--preset", "logfmt", str(good), "-o", str(out))
    assert p.returncode == 2 and "already exists" in p.stderr
    assert lclock("import", "--preset", "logfmt", str(good), "-o", str(out), "--force").returncode == 0
    assert sorted(x.name for x in tmp_path.iterdir() if x.name.startswith(".")) == []


def test_default_output_and_list_presets(tmp_path: Path) -> None:
    (tmp_path / "my run.log").write_text("ts=1.5 machine=1 event=internal lclock=1\n")
    p = lclock("import", "--preset", "logfmt", "my run.log", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    [out] = (tmp_path / "output").iterdir()
    assert re.fullmatch(rf"import-{re.escape(tmp_path.name[:32])}-my-run-[0-9a-f]{{8}}", out.name)
    assert (out / "run.json").exists() and f"into {Path('output') / out.name}\n" in p.stdout
    p = lclock("import", "--list-presets")
    assert p.returncode == 0 and all(x in p.stdout for x in ("shiviz:", "logfmt:", "text:"))


def test_default_outputs_of_two_students_logs_never_collide(tmp_path: Path) -> None:
    """The guide's loop over a class: every student has a machine_1.log."""
    outs = []
    for student in ("alice", "bob"):
        (tmp_path / student).mkdir()
        (tmp_path / student / "machine_1.log").write_text(
            f"ts=1.5 machine=1 event=internal lclock={len(student)}\n")
        p = lclock("import", "--preset", "logfmt", f"{student}/machine_1.log", cwd=tmp_path)
        assert p.returncode == 0, p.stderr
        outs.append(p.stdout.split(" into ", 1)[1].split("\n", 1)[0])
    assert len(set(outs)) == 2 and all("machine_1" in o for o in outs)
    assert [ticks(tmp_path / o, 1)[0]["lclock"] for o in outs] == [5, 3]
    # the same logs again name the same folder, which is then not overwritten
    p = lclock("import", "--preset", "logfmt", "alice/machine_1.log", cwd=tmp_path)
    assert p.returncode == 2 and outs[0] in p.stderr


# ---------------------------------------------------------------- the pieces


def test_presets_read_their_own_examples() -> None:
    from lclock.ingest.presets import PRESETS
    from lclock.ingest.textlog import Scan, scan

    for name, preset in PRESETS.items():
        spec = compile_spec(preset.regex)
        s = Scan(name)
        (m,) = list(scan(spec, s, preset.example + "\n"))
        assert s.unmatched == [], name
        assert m.values["clock"] and m.values["time"] and m.values["machine"] and m.values["event"]


@pytest.mark.parametrize("text,want", [
    ("2026-01-01T00:00:01.5Z", "2026-01-01T00:00:01.500000Z"),
    ("2026-01-01 00:00:01,123", "2026-01-01T00:00:01.123000Z"),
    ("2026-01-01T02:00:01.000001+02:00", "2026-01-01T00:00:01.000001Z"),
    ("2026-01-01T00:00:01.123456789Z", "2026-01-01T00:00:01.123456Z"),
    ("1767225601.25", "2026-01-01T00:00:01.250000Z"),
    ("1767225601250", "2026-01-01T00:00:01.250000Z"),
    ("1767225601250000", "2026-01-01T00:00:01.250000Z"),
    ("1767225601250000000", "2026-01-01T00:00:01.250000Z"),
    ("12.5", "1970-01-01T00:00:12.500000Z"),
])
def test_times(text: str, want: str) -> None:
    from lclock.ingest.build import format_us

    assert format_us(parse_time(text, None)) == want


def test_times_of_day_need_a_date() -> None:
    from lclock.ingest.build import format_us, parse_date

    with pytest.raises(ValueError, match="--date"):
        parse_time("12:00:01", None)
    assert format_us(parse_time("12:00:01.5", parse_date("2026-02-03"))) == "2026-02-03T12:00:01.500000Z"
    for bad in ("2026-13-01T00:00:00Z", "yesterday", "12:61:00"):
        with pytest.raises(ValueError):
            parse_time(bad, parse_date("2026-02-03"))


def test_machine_names() -> None:
    n = Names({"0", "1", "2"})
    assert n.mapping() == {"0": 1, "1": 2, "2": 3} and n.peers("0 and 2") == [1, 3]
    n = Names({"node-1", "node-2"})
    assert n.mapping() == {"node-1": 1, "node-2": 2} and n.peers("node-2") == [2]
    n = Names({"bob", "alice", "carol"})
    assert n.mapping() == {"alice": 1, "bob": 2, "carol": 3}
    assert n.peers("bob, carol") == [2, 3] and n.peers("dave") is None


def test_compile_spec_accepts_shiviz_syntax_and_aliases() -> None:
    spec = compile_spec(r"(?<host>\S+) (?<kind>\w+) (?<lclock>\d+) (?<peer>\S*) (?<ts>\S+)")
    assert set(spec.groups) == {"machine", "event", "clock", "peer", "time"}
    with pytest.raises(SpecError, match="both name the clock"):
        compile_spec(r"(?P<clock>\d+) (?P<lclock>\d+) (?P<machine>\d) (?P<event>\w) (?P<peer>\d) (?P<time>\d)")
    assert compile_spec(r"(?P<event>\w+)\n(?P<machine>\S+)(?P<clock>\d)(?P<peer>\d)(?P<time>\d)").multiline


# ---------------------------------------------------------------- run.json not_logged


def test_not_logged_is_honoured_by_check_analyze_and_report(tmp_path: Path) -> None:
    """A folder whose logs lack dice, queue_len, start and stop (what a text log lacks): with
    run.json's not_logged the rules about them are skipped with one warning; without it,
    every line is a finding, as before."""
    from analysis_fixtures import write_lines

    run = make_run(tmp_path / "r", rates=(1, 3, 6), duration=20.0)
    for p in run.glob("machine-*.jsonl"):
        keep = [{k: v for k, v in d.items() if k not in ("queue_len", "dice")}
                for d in read_lines(p) if d["event"] in TICKS]
        write_lines(p, keep)
    meta = json.loads((run / "run.json").read_text())
    p = lclock("check", str(run), "--json")
    assert p.returncode == 1
    texts = [f["message"] for f in json.loads(p.stdout)["findings"]]
    assert any("queue_len missing" in t for t in texts) and any("no stop line" in t for t in texts)
    meta["not_logged"] = ["dice", "queue_len", "start", "stop"]
    (run / "run.json").write_text(json.dumps(meta))
    p = lclock("check", str(run), "--json")
    assert p.returncode == 0, p.stdout
    found = json.loads(p.stdout)["findings"]
    assert [f["severity"] for f in found] == ["warning"] and "not_logged" in found[0]["message"]
    s = json.loads(lclock("analyze", str(run), "--json", "--no-write").stdout)
    for m in s["machines"]:
        assert m["queue"] == {"mean": None, "max": None, "final": None, "growth_per_s": None}
        assert set(m["mix"]["observed"].values()) == {None}
        assert m["jumps"]["count"] == sum(1 for d in ticks(run, m["id"]) if d["event"] == "receive")
    p = lclock("report", str(run), "-o", str(tmp_path / "rep"))
    assert p.returncode == 0, p.stderr
    assert "Queue lengths were not logged." in p.stdout


def test_not_logged_junk_is_a_finding_never_a_traceback(tmp_path: Path) -> None:
    """Names lclock does not know and values of the wrong type in not_logged are reported
    and ignored; the names it knows still count."""
    run = make_run(tmp_path / "r", rates=(1, 3), duration=5.0)
    meta = json.loads((run / "run.json").read_text())
    meta["not_logged"] = [1, None, {"a": [2]}, "vclock", "start", "start"]
    (run / "run.json").write_text(json.dumps(meta))
    p = lclock("check", str(run), "--json")
    assert p.returncode == 0, p.stdout
    found = [(f["severity"], f["message"]) for f in json.loads(p.stdout)["findings"]]
    assert found[0][0] == "warning" and "'vclock'] not among dice, queue_len" in found[0][1]
    assert found[1] == ("warning", "not_logged: start: not checked: the start lines")
    meta["not_logged"] = "dice"
    (run / "run.json").write_text(json.dumps(meta))
    p = lclock("check", str(run), "--json")
    assert p.returncode == 1 and "not_logged: expected a list" in p.stdout
    for cmd in (["analyze", str(run), "--no-write"], ["export", str(run), "-o", str(tmp_path / "e")]):
        p = lclock(*cmd)
        assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr


# ---------------------------------------------------------------- the checker's limits


TWO = ("ts=2026-01-01T00:00:00.5Z machine={m} event=send to=2 lclock={c}{x}\n"
       "ts=2026-01-01T00:00:01Z machine=2 event=receive from={m} lclock=9 msg_lclock={c}{y}\n")


@pytest.mark.parametrize("fields,why", [
    ({"m": str(10**23)}, "lclock reads machine ids 1 to 1024"),
    ({"m": "10000000"}, "machine id 10000000: lclock reads machine ids 1 to 1024"),
    ({"m": "9" * 5000}, "lclock reads machine ids 1 to 1024"),
    ({"c": str(10**23)}, "clock '100000000000000000000000' is too large"),
    ({"c": str(2**63)}, "lclock reads clock values up to 9223372036854775807"),
    ({"c": "9" * 5000}, "is too large"),
    ({"x": f" tick={2**63}"}, "tick '9223372036854775808' is too large"),
    ({"x": f" queue_len={2**31}"}, "lclock reads queue values up to 2147483647"),
    ({"x": f" dice={2**31}"}, "lclock reads dice values up to 2147483647"),
    ({"x": f" vclock=[{2**31},0]", "y": " vclock=[1,1]"},
     "lclock reads vclock values up to 2147483647"),
])
def test_values_check_would_refuse_are_not_imported(tmp_path: Path, fields: dict[str, str],
                                                    why: str) -> None:
    """What ``lclock check`` refuses to read, import does not write: such a line is one
    that could not be used, named with the reason (the import once ended in a traceback,
    "Integer exceeds 64-bit range", or wrote a machine-10000000.jsonl check would not read)."""
    log = tmp_path / "l.log"
    log.write_text(TWO.format(**{"m": "1", "c": "5", "x": "", "y": "", **fields}))
    out = tmp_path / "o"
    p = lclock("import", "--preset", "logfmt", str(log), "-o", str(out))
    assert "Traceback" not in p.stderr, p.stderr
    assert why in p.stdout + p.stderr, p.stdout + p.stderr
    if p.returncode == 0:
        assert all(len(f.name) < 20 for f in out.iterdir()), list(out.iterdir())
        c = lclock("check", str(out))
        assert "not a machine id" not in c.stdout and "Traceback" not in c.stderr, c.stdout
    else:
        assert p.returncode == 2 and p.stderr.startswith("lclock import: error: "), p.stderr
        assert not out.exists()
    p = lclock("import", "--preset", "logfmt", str(log), "-o", str(tmp_path / "s"), "--strict")
    assert p.returncode in (1, 2) and not (tmp_path / "s").exists()


def test_times_far_out_are_refused_and_years_written_with_four_digits(tmp_path: Path) -> None:
    log = tmp_path / "l.log"
    log.write_text("ts=0999-05-01T00:00:00Z machine=1 event=internal lclock=1\n"
                   f"ts={'9' * 25} machine=1 event=internal lclock=2\n")
    out = tmp_path / "o"
    p = lclock("import", "--preset", "logfmt", str(log), "-o", str(out))
    assert p.returncode == 0, p.stderr
    assert "outside the years 1 to 9999" in p.stdout
    (line,) = read_lines(out / "machine-1.jsonl")
    assert line["ts"] == "0999-05-01T00:00:00.000000Z"
    # (the note of the line the import left out quotes its reason, which may say RFC 3339)
    said = lclock("check", str(out)).stdout.splitlines()
    assert any(x.startswith("note: the import left out 1 line(s)") for x in said), said
    assert not [x for x in said if "RFC 3339" in x and not x.startswith("note: the import")]


def test_times_counted_from_the_start_are_dated_1970_and_the_import_says_so(tmp_path: Path) -> None:
    log = tmp_path / "l.log"
    log.write_text("ts=0.5 machine=1 event=internal lclock=1\nts=1.5 machine=1 event=internal lclock=2\n")
    p = lclock("import", "--preset", "logfmt", str(log), "-o", str(tmp_path / "a"))
    assert p.returncode == 0, p.stderr
    notes = [x for x in p.stdout.splitlines() if "1970" in x]
    assert len(notes) == 1 and "--date" in notes[0], p.stdout
    assert read_lines(tmp_path / "a" / "machine-1.jsonl")[0]["ts"].startswith("1970-01-01")
    p = lclock("import", "--preset", "logfmt", str(log), "-o", str(tmp_path / "b"),
               "--date", "2026-03-04")
    assert p.returncode == 0 and "1970" not in p.stdout, p.stdout
    assert read_lines(tmp_path / "b" / "machine-1.jsonl")[0]["ts"].startswith("2026-03-04")
    log.write_text("ts=2026-01-01T00:00:00.5Z machine=1 event=internal lclock=1\n")
    p = lclock("import", "--preset", "logfmt", str(log), "-o", str(tmp_path / "c"))
    assert p.returncode == 0 and "1970" not in p.stdout, p.stdout
