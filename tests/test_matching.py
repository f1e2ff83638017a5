"""One matching of receives to sends (SPEC 5.1, ``lclock.analysis.matching``): check, the
causal index behind ``trace``, ``hb`` and ``cuts``, and the API's ``messages`` frame agree on
every message of an imported log with holes (tests/data/student-holes-match, its README says
which receive handled which send). Before, a receive whose sender the log does not say was
matched by check only: ``cuts`` called a cut splitting it consistent, ``hb`` called its two
ends concurrent, ``trace`` blamed "machine 0" (the reader's code for "not logged"), and
``messages`` left its fate missing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lclock
from lclock.analysis.load import KIND_RECEIVE, KIND_SEND, Run, load_run
from lclock.analysis.matching import SendTable, match_receives
from lclock.cli import main

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "student-holes-match"
# receive (machine, tick) -> the send (machine, tick) it handled, as the fixture's README says
HANDLED = {(1, 4): (3, 2), (3, 3): (2, 5), (2, 4): (1, 3), (3, 1): (2, 2)}
UNMATCHED = {(1, 6)}  # sender not logged, and no machine sent its clock (L8)

Answer = tuple[int, str]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("match") / "imp"
    rx = [x for line in (DATA / "regexes.txt").read_text().splitlines() if line
          for x in ("--regex", line)]
    p = subprocess.run([sys.executable, "-m", "lclock", "import",
                        *(str(DATA / f"h{k}.log") for k in (1, 2, 3)), *rx,
                        "--date", "2026-01-01", "-o", str(out)],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "2 receive(s) without a sender" in p.stdout and "1 send(s) without recipients" in p.stdout
    return out


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> Answer:
    """A command run in this process: (exit status, what it printed on stdout and stderr)."""
    rc = main(list(args))
    got = capsys.readouterr()
    return rc, got.out + got.err


def as_json(answer: Answer) -> Any:
    return json.loads(answer[1])


def receives(run: Run) -> list[tuple[int, int]]:
    return [(m, int(log.tick[k])) for m, log in run.machines.items()
            for k in range(log.events) if log.kind[k] == KIND_RECEIVE]


def crossings(capsys: pytest.CaptureFixture[str], folder: Path, cut: dict[int, int]) -> int:
    text = ",".join(f"{m}:{t}" for m, t in sorted(cut.items()))
    d = as_json(cli(capsys, "cuts", str(folder), "--cut", text, "--json"))
    return int(d["crossing_count"])


def test_check_trace_hb_cuts_and_messages_match_every_receive_alike(
        folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = load_run(folder)
    assert set(receives(run)) == set(HANDLED) | UNMATCHED
    # check: a match finding for exactly the receive no send carried
    findings = as_json(cli(capsys, "check", str(folder), "--json"))["findings"]
    named = {(f["machine"], int(run.machines[f["machine"]].tick[f["log_line"] - 1]))
             for f in findings if f["rule"] == "match"}
    assert named == UNMATCHED
    assert not [f for f in findings if f["rule"] != "match" and f["severity"] == "error"]
    # trace: the same send for every receive
    traced, unmatched = {}, set()
    for m, t in receives(run):
        msg = as_json(cli(capsys, "trace", str(folder), f"{m}:t{t}", "--json"))["message"]
        if msg["matched"]:
            traced[(m, t)] = (msg["send"]["machine"], msg["send"]["tick"])
        else:
            unmatched.add((m, t))
    assert traced == HANDLED and unmatched == UNMATCHED
    # hb and the API: each send happened before the receive that handled it
    api = lclock.load(folder)
    for r, s in HANDLED.items():
        d = as_json(cli(capsys, "hb", str(folder), f"{s[0]}:t{s[1]}", f"{r[0]}:t{r[1]}", "--json"))
        assert d["relation"] == "before", (s, r)
        assert api.happened_before(s, r) and not api.happened_before(r, s)
    # messages: a received row for each, and every fate known
    rows = api.messages
    got = {(int(x.receiver), int(x.receive_tick)): (int(x.sender), int(x.send_tick))
           for x in rows.itertuples() if x.fate == "received"}
    assert got == HANDLED
    assert rows["fate"].notna().all()


def test_a_cut_is_crossed_by_the_message_the_matching_found(
        folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With every other machine whole, taking the receive into a cut adds one crossing
    message when the cut leaves out its matched send, and none when it holds it."""
    run = load_run(folder)
    last = {m: int(log.tick[-1]) for m, log in run.machines.items()}
    for (rm, rt), (sm, st) in HANDLED.items():
        for holds_send, added in ((False, 1), (True, 0)):
            cut = dict(last) | {sm: st if holds_send else st - 1}
            with_r = crossings(capsys, folder, cut | {rm: rt})
            without = crossings(capsys, folder, cut | {rm: rt - 1})
            assert with_r - without == added, ((rm, rt), (sm, st), holds_send)
    for rm, rt in UNMATCHED:  # constrains no cut
        none = dict.fromkeys(last, 0)
        assert crossings(capsys, folder, none | {rm: rt}) == crossings(capsys, folder, none | {rm: rt - 1})


def test_the_explorer_draws_the_messages_the_matching_found(folder: Path) -> None:
    """The page judges cuts by the pairs it is given (``lclock view``'s verdict is to be
    ``lclock cuts``'s): they are the same pairs."""
    from lclock.explorer.extract import build

    run = load_run(folder)
    data, _ = build(folder)
    at, acc = [], 0
    for m in run.ids:  # global event index -> (machine, tick): lanes in id order, all shown
        at += [(m, int(t)) for t in run.machines[m].tick]
        acc += run.machines[m].events
    assert len(at) == acc
    enc = data["msgs"]["s"]
    s = np.concatenate(([enc["s"]], enc["s"] + np.cumsum(enc["v"]))) if "v" in enc else \
        [enc["s"] + k * enc["d"] for k in range(enc["n"])]
    pairs = {at[int(r)]: at[int(x)] for x, r in zip(s, data["msgs"]["r"], strict=True)}
    assert pairs == HANDLED


def test_the_reports_figure_draws_the_messages_the_matching_found(folder: Path) -> None:
    """The space-time figure of report.html had a matching of its own, which left out a
    receive whose sender the log does not say."""
    from lclock.analysis.spacetime import _window_messages

    run = load_run(folder)
    every = {i: np.arange(run.machines[i].events) for i in run.ids}
    ypos = {i: k for k, i in enumerate(reversed(run.ids))}
    lane = {y: i for i, y in ypos.items()}
    at = {(m, float(run.machines[m].ts[k] - run.t0)): (m, int(run.machines[m].tick[k]))
          for m in run.ids for k in range(run.machines[m].events)}
    arrows = _window_messages(run, run.ids, every, -1e9, 1e9)
    pairs = {at[(lane[y1], x1)]: at[(lane[y0], x0)] for x0, y0, x1, y1, *_ in arrows}
    assert pairs == HANDLED


def test_analyze_times_and_compares_clocks_on_the_same_messages(
        folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary = as_json(cli(capsys, "analyze", str(folder), "--json"))
    delays = {m["id"]: m["delay"]["count"] for m in summary["machines"]}
    assert delays == {j: sum(r[0] == j for r in HANDLED) for j in (1, 2, 3)}
    assert summary["clocks"]["messages"]["pairs"] == len(HANDLED)


def test_the_reviewers_cut_is_not_consistent(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = cli(capsys, "cuts", str(folder), "--cut", "1:4,2:3,3:1")
    assert rc == 1 and "not consistent" in out
    assert "machine 1 took in at tick 4" in out and "machine 3 sent at tick 2" in out


def test_no_text_calls_an_unknown_sender_machine_0(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = load_run(folder)
    texts = [cli(capsys, "check", str(folder))[1],
             cli(capsys, "cuts", str(folder), "--cut", "1:6,2:0,3:0")[1]]
    for m, log in run.machines.items():
        for t in log.tick.tolist():
            texts.append(cli(capsys, "trace", str(folder), f"{m}:t{t}")[1])
            texts.append(cli(capsys, "hb", str(folder), f"{m}:t{t}", "1:t6")[1])
    texts.append(lclock.load(folder)._repr_html_())
    for text in texts:
        assert not re.search(r"\bmachine 0\b|\bfrom 0\b|\bof 0\b", text), text
    orphan = as_json(cli(capsys, "trace", str(folder), "1:t6", "--json"))
    assert orphan["event"]["from"] is None and orphan["message"]["from"] is None
    assert "its sender not logged" in cli(capsys, "trace", str(folder), "1:t6")[1]
    assert "recipients not logged" in cli(capsys, "trace", str(folder), "2:t5")[1]


def test_the_exports_leave_an_unknown_sender_empty(folder: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """csv and total-order wrote 0 in ``from`` for a receive whose sender no log names."""
    import csv
    import io

    for fmt in ("csv", "total-order"):
        rc, text = cli(capsys, "export", str(folder), "--format", fmt, "--output", "-")
        assert rc == 0, text
        rows = [r for r in csv.DictReader(io.StringIO(text)) if r["event"] == "receive"]
        orphan = [r for r in rows if r["machine"] == "1" and r["tick"] == "6"]
        assert len(orphan) == 1 and orphan[0]["from"] == "", (fmt, orphan)
        # the raw record of the logs: a sender no log names is empty, never machine 0
        assert {r["from"] for r in rows} == {"", "1", "2"}, (fmt, rows)


def test_a_receive_without_a_sender_prefers_a_send_naming_it(folder: Path) -> None:
    """Among machines, a send naming the receiver comes before a send naming no one; among
    a sender's own, one naming the receiver before one naming no one (SPEC 5.1)."""
    run = load_run(folder)
    log1, log2 = run.machines[1], run.machines[2]
    k = int((log1.tick == 4).nonzero()[0][0])  # receive L=5 msg=4: 3:t2 sent L4 to 1
    o = int((log2.tick == 5).nonzero()[0][0])  # 2:t5: a send naming no one
    assert log2.kind[o] == KIND_SEND
    log2.lclock[o] = 4  # now machine 2 (a lower id) also has an L4 send, naming no one
    tables = {m: SendTable(v) for m, v in run.machines.items()}
    m = match_receives(log1, tables)
    i = int((m.receive == k).nonzero()[0][0])
    assert (int(m.sender[i]), int(m.send[i])) == (3, 1)
    log1.msg[k] = 9  # no send naming 1 has L9; none naming no one either
    assert match_receives(log1, tables).send[i] == -1
