"""``lclock check`` cross-checks the parts of a run folder (issue 9): run.json, the start and
stop lines and the events must agree, and the dice must be the seed's.

The runs are written by the real ``lclock sim`` (so run.json names an lclock version and
the replay applies); each test breaks a copy for one rule and shows that check catches it,
and nothing else.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from analysis_fixtures import Faults, copy_run, make_run, read_lines, write_lines

from lclock.analysis.check import check_run

REPO = Path(__file__).resolve().parents[1]
SAMPLE = Path(__file__).resolve().parent / "data" / "foreign-run-1-3-6"


def sim(out: Path, *flags: str) -> Path:
    p = subprocess.run([sys.executable, "-m", "lclock", "sim", "--quiet", "--no-report",
                        "--output", str(out), *flags], capture_output=True, text=True,
                       cwd=REPO, timeout=120)
    assert p.returncode == 0, p.stderr
    return next(d for d in out.iterdir() if (d / "run.json").exists())


@pytest.fixture(scope="module")
def fixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fixed rates 2, 3, 5 for 30 s."""
    return sim(tmp_path_factory.mktemp("fixed"), "--rates", "2,3,5", "--duration", "30",
               "--seed", "11")


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Rates drawn from 1..6 by each machine's generator, 4 machines."""
    return sim(tmp_path_factory.mktemp("drawn"), "--machines", "4", "--duration", "30",
               "--seed", "12")


def rules(run: Path) -> dict[str, list[str]]:
    """Rule id -> texts of the findings (warnings included)."""
    out: dict[str, list[str]] = {}
    for f in check_run(run, cap=None).findings:
        out.setdefault(f.rule, []).append(str(f))
    return out


def lines(run: Path, mid: int) -> list[dict[str, Any]]:
    return read_lines(run / f"machine-{mid}.jsonl")


def edit(run: Path, mid: int, change: Callable[[list[dict[str, Any]]], None]) -> None:
    ls = lines(run, mid)
    change(ls)
    write_lines(run / f"machine-{mid}.jsonl", ls)


def meta(run: Path, change: Callable[[dict[str, Any]], None]) -> None:
    m = orjson.loads((run / "run.json").read_bytes())
    change(m)
    (run / "run.json").write_bytes(orjson.dumps(m))


def only(run: Path, rule: str, *texts: str) -> None:
    """Check finds ``rule`` (with these texts) and nothing else."""
    found = rules(run)
    assert set(found) == {rule}, found
    for t in texts:
        assert any(t in x for x in found[rule]), found


def first(ls: list[dict[str, Any]], pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    return next(d for d in ls if pred(d))


# ------------------------------------------------------------------ the good runs pass


def test_sim_runs_pass_with_the_dice_replayed(fixed: Path, drawn: Path) -> None:
    for run in (fixed, drawn):
        result = check_run(run)
        assert result.findings == [], [str(f) for f in result.findings]
        assert result.notes == [f"dice replayed from seed {11 if run == fixed else 12} for "
                                f"{3 if run == fixed else 4} machine(s)"]


def test_foreign_folder_says_the_replay_was_skipped() -> None:
    result = check_run(SAMPLE)
    assert result.ok and result.findings == []
    assert result.notes == ["dice not replayed from the seed: run.json does not name an lclock "
                            "version, so the dice need not follow the seed"]
    p = subprocess.run([sys.executable, "-m", "lclock", "check", str(SAMPLE)], capture_output=True,
                       text=True, cwd=REPO, timeout=60)
    assert p.returncode == 0
    assert "note: dice not replayed from the seed" in p.stdout


# ------------------------------------------------------------------ ticks against rate x duration


def test_fewer_ticks_than_rate_times_duration(tmp_path: Path, fixed: Path) -> None:
    run = copy_run(fixed, tmp_path / "r")
    meta(run, lambda m: m["settings"].update(duration=32))
    only(run, "tick-count", "machine-1.jsonl:", "60 ticks, but rate 2 for 32 s makes 64 in a "
                            "completed run", "machine-3.jsonl:")


def test_an_interrupted_run_may_have_fewer_but_never_more(tmp_path: Path, fixed: Path) -> None:
    run = copy_run(fixed, tmp_path / "r")
    meta(run, lambda m: (m["settings"].update(duration=32), m.update(status="interrupted")))
    assert "tick-count" not in rules(run)
    meta(run, lambda m: m["settings"].update(duration=20))
    assert any("60 ticks, but rate 2 for 20 s makes 40" in t for t in rules(run)["tick-count"])


def test_expected_ticks_is_the_runtimes_count() -> None:
    from lclock.analysis.rules.folder import expected_ticks

    assert [expected_ticks(r, d) for r, d in ((1, 60), (3, 0.1), (3, 1 / 3), (7, 0.3))] == [
        60, 1, 1, 3]


# ------------------------------------------------------------------ start lines and run.json


@pytest.mark.parametrize(("key", "value", "text"), [
    ("rate", 4, "start: rate 4, but run.json says 3"),
    ("seed", 99, "start: seed 99, but run.json says 11"),
    ("machines", 4, "start: machines 4, but run.json says 3"),
    ("dice_sides", 6, "start: dice_sides 6, but run.json says 10"),
    ("vector_clocks", False, "start: vector_clocks False, but run.json says True"),
    ("peer_a", 1, "start: peer_a 1, but in a ring of 3 machine 2's peer_a is 3"),
])
def test_start_line_disagrees_with_run_json(tmp_path: Path, fixed: Path, key: str, value: Any,
                                            text: str) -> None:
    run = copy_run(fixed, tmp_path / "r")
    edit(run, 2, lambda ls: first(ls, lambda d: d["event"] == "start").update({key: value}))
    only(run, "start-meta", f"machine-2.jsonl:1: {text}")


def test_drawn_rate_must_be_the_seeds(tmp_path: Path, drawn: Path) -> None:
    """With drawn rates the seed decides each rate too: run.json and the start line saying
    another rate are both caught."""
    run = copy_run(drawn, tmp_path / "r")
    rate = orjson.loads((run / "run.json").read_bytes())["machines"][2]["rate"]
    other = rate % 6 + 1
    meta(run, lambda m: m["machines"][2].update(rate=other))
    found = rules(run)
    assert any(f"machine 3: rate {other}, but seed 12 draws rate {rate}" in t
               for t in found["replay-rate"]), found
    assert any(f"start: rate {rate}, but run.json says {other}" in t
               for t in found["start-meta"]), found


@pytest.mark.parametrize("key", ["ticks", "lclock", "sent", "received", "unprocessed",
                                 "max_queue", "reason"])
def test_run_json_machine_figures_disagree_with_the_stop_line(tmp_path: Path, fixed: Path,
                                                               key: str) -> None:
    run = copy_run(fixed, tmp_path / "r")
    meta(run, lambda m: m["machines"][0].update({key: 12345 if key != "reason" else "sigint"}))
    only(run, "meta-machine", f"run.json: machine 1: {key} ")


# ------------------------------------------------------------------ one run per log


def test_lines_of_another_run(tmp_path: Path, fixed: Path, drawn: Path) -> None:
    run = copy_run(fixed, tmp_path / "r")
    stranger = [d for d in lines(drawn, 1) if d["event"] in ("internal", "send")][:4]
    edit(run, 1, lambda ls: ls.__setitem__(slice(5, 5), stranger))
    found = rules(run)
    assert set(found) == {"line-other-run"}, found
    other_id = stranger[0]["run_id"]
    assert found["line-other-run"] == [
        f"machine-1.jsonl:6: a line of another run (run_id {other_id!r}, this run is "
        f"{fixed.name!r}): left out [4 lines: 6, 7, 8, 9]"]


def test_events_after_the_stop_line(tmp_path: Path, fixed: Path) -> None:
    run = copy_run(fixed, tmp_path / "r")

    def after(ls: list[dict[str, Any]]) -> None:
        last = [d for d in ls if "tick" in d][-1]
        ls.append(dict(last, event="internal", tick=last["tick"] + 1, lclock=last["lclock"] + 1,
                       dice=9, queue_len=0))
        ls.append(dict(ls[-1], tick=last["tick"] + 2, lclock=last["lclock"] + 2))

    edit(run, 2, after)
    n = len(lines(run, 2))
    only(run, "after-stop", f"machine-2.jsonl:{n - 1}: tick event after the stop line (line "
                            f"{n - 2}): a machine does nothing after it stops [2 lines")


def test_second_start_and_stop_lines(tmp_path: Path, fixed: Path) -> None:
    run = copy_run(fixed, tmp_path / "r")
    edit(run, 3, lambda ls: ls.append(dict(ls[-1])))
    only(run, "second-stop", "a second stop line (the first is line")
    edit(run, 3, lambda ls: ls.append(dict(ls[0])))
    edit(run, 3, lambda ls: ls.extend(x for x in lines(fixed, 3)[1:6]))
    found = rules(run)
    assert set(found) == {"second-stop", "second-start"}, found
    assert "the log holds another run of this machine from here on" in found["second-start"][0]


def test_a_machine_without_vector_clocks(tmp_path: Path, fixed: Path) -> None:
    run = copy_run(fixed, tmp_path / "r")
    edit(run, 2, lambda ls: [d.pop("vclock", None) for d in ls])
    only(run, "no-vclock", "machine-2.jsonl:", "no vector clocks in this log, but run.json "
                           "settings say vector_clocks = true")


# ------------------------------------------------------------------ stop lines and events


@pytest.mark.parametrize(("key", "text"), [
    ("ticks", "stop: ticks = 1000, but the log shows"),
    ("lclock", "stop: lclock = 1000, but the log shows"),
    ("sent", "stop: sent = 1000, but the log shows"),
    ("received", "stop: received = 1000, but the log shows"),
])
def test_stop_counters_disagree_with_the_events(tmp_path: Path, fixed: Path, key: str,
                                                text: str) -> None:
    run = copy_run(fixed, tmp_path / "r")
    edit(run, 1, lambda ls: ls[-1].update({key: 1000}))
    meta(run, lambda m: m["machines"][0].update({key: 1000}))  # run.json agrees with the stop line
    only(run, "stop-field", text)


def test_stop_unprocessed_is_checked_by_conservation(tmp_path: Path, fixed: Path) -> None:
    run = copy_run(fixed, tmp_path / "r")
    u = lines(run, 1)[-1]["unprocessed"]
    edit(run, 1, lambda ls: ls[-1].update(unprocessed=u + 1))
    meta(run, lambda m: m["machines"][0].update(unprocessed=u + 1))
    found = rules(run)
    assert set(found) == {"stop-field"}, found
    assert "unprocessed_from adds up to" in found["stop-field"][0]


# ------------------------------------------------------------------ the dice replay


def test_an_edited_roll_is_caught_by_the_replay(tmp_path: Path, fixed: Path) -> None:
    run = copy_run(fixed, tmp_path / "r")
    ls = lines(run, 3)
    k = next(i for i, d in enumerate(ls) if d["event"] == "internal" and d["dice"] < 10 and i > 20)
    ls[k]["dice"] += 1  # still an internal event: only the seed can tell
    write_lines(run / "machine-3.jsonl", ls)
    only(run, "replay", f"machine-3.jsonl:{k + 1}: dice {ls[k]['dice']} on tick "
                        f"{ls[k]['tick']}, but seed 11 rolls {ls[k]['dice'] - 1}", "1 of ")


def test_a_swapped_pair_of_rolls_is_caught(tmp_path: Path, drawn: Path) -> None:
    run = copy_run(drawn, tmp_path / "r")
    ls = lines(run, 1)
    idx = [i for i, d in enumerate(ls) if d["event"] == "internal"]
    a, b = next((x, y) for x, y in zip(idx, idx[1:], strict=False) if ls[x]["dice"] != ls[y]["dice"])
    ls[a]["dice"], ls[b]["dice"] = ls[b]["dice"], ls[a]["dice"]
    write_lines(run / "machine-1.jsonl", ls)
    only(run, "replay", "2 of ")


def test_dice_and_recipients_must_agree(tmp_path: Path, fixed: Path) -> None:
    run = copy_run(fixed, tmp_path / "r")
    edit(run, 2, lambda ls: first(ls, lambda d: d["event"] == "send" and d["dice"] == 1
                                  ).update(to=[1]))
    found = rules(run)
    assert "dice-to" in found and any("dice 1 sends to peer A" in t for t in found["dice-to"])


@pytest.mark.parametrize("sides", [3, 6, 10, 16, 17, 1000, 2**31 - 1, 2**32, 2**40])
def test_fast_rolls_are_randint(sides: int) -> None:
    from lclock.analysis.rules.replay import rolls
    from lclock.core.model import machine_setup

    for seed, mid, rates in ((0, 1, None), (21, 1, (1, 3, 6)), (10**30, 3, None)):
        rate, want_rng = machine_setup(seed, mid, 1, 6, rates)
        want = [want_rng.randint(1, sides) for _ in range(3000)]
        got_rate, got = rolls(seed, mid, 1, 6, rates, sides, 3000)
        assert got_rate == rate and got.tolist() == want


# ------------------------------------------------------------------ the new lines are accepted


def test_fault_lines_and_clock_fields_are_accepted(tmp_path: Path) -> None:
    """Drops, duplicate deliveries, a pause, partition lines, pt and hlc: no finding."""
    run = make_run(tmp_path / "r", rates=(5, 5, 6), duration=12.0,
                   faults=Faults(drop_every=7, duplicate_every=5, pause=(2, 4.0, 2.0),
                                 fault_lines=True, clocks=True))
    text = "".join(p.read_text() for p in run.glob("machine-*.jsonl"))
    for word in ('"dup":true', '"event":"drop"', '"event":"pause"', '"event":"resume"',
                 '"event":"fault"', '"hlc":', '"msg_hlc":', '"pt":', '"msg_pt":'):
        assert word in text, word
    result = check_run(run)
    assert result.findings == [], [str(f) for f in result.findings]
    p = subprocess.run([sys.executable, "-m", "lclock", "analyze", str(run), "--no-write"],
                       capture_output=True, text=True, cwd=REPO, timeout=60)
    assert p.returncode == 0 and "Traceback" not in p.stderr


def test_a_dropped_message_still_counts_as_lost_without_its_drop_line(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", rates=(5, 5, 6), duration=12.0, faults=Faults(drop_every=7))
    for mid in (1, 2, 3):
        edit(run, mid, lambda ls: ls.__setitem__(slice(None), [d for d in ls
                                                               if d["event"] != "drop"]))
    assert "conservation" in rules(run)


# ------------------------------------------------------------------ grouped findings


def test_a_systematic_omission_is_one_finding(tmp_path: Path) -> None:
    """No level, no run_id on any line and no start or stop lines: one finding each, with
    a count, and the one clock mistake still stands out."""
    run = make_run(tmp_path / "r", duration=20.0)
    for mid in (1, 2, 3):
        edit(run, mid, lambda ls: ls.__setitem__(slice(None), [
            {k: v for k, v in d.items() if k not in ("level", "run_id")}
            for d in ls if d["event"] not in ("start", "stop")]))
    mid = next(m for m in (1, 2, 3) if lines(run, m)[-1]["event"] == "internal")
    ls = lines(run, mid)
    ls[-1]["lclock"] += 1  # the last event incremented twice
    write_lines(run / f"machine-{mid}.jsonl", ls)
    meta(run, lambda m: m.pop("machines"))
    result = check_run(run)
    texts = [str(f) for f in result.findings]
    run_wide = sorted(f.rule for f in result.findings if f.file == "machine-*.jsonl")
    assert run_wide == ["field-level", "field-run_id", "start-missing", "stop-missing"], texts
    total = sum(len(lines(run, m)) for m in (1, 2, 3))
    level = next(f for f in result.findings if f.rule == "field-level")
    assert level.count == total and f"in all 3 machine logs, {total} lines" in level.text
    lamport = [f for f in result.findings if f.rule == "lamport"]
    assert [(f.file, f.line) for f in lamport] == [(f"machine-{mid}.jsonl", len(ls))], texts
    assert len(result.findings) == 5, texts


def test_a_missing_plus_one_is_one_finding_per_receive(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", bug="receive_no_plus1", duration=30.0)
    result = check_run(run, cap=None)
    lamport = [f for f in result.findings if f.rule == "lamport"]
    assert lamport and all("receive without the +1" in f.text for f in lamport)
    assert not any("C(send)" in f.text and f.rule != "lamport" for f in result.findings)
    assert len({(f.file, f.line) for f in lamport}) == len(lamport)  # one finding per line
    assert any("so C(send) = " in f.text and "is not less than C(receive)" in f.text
               for f in lamport)


def test_json_findings_are_structured(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", bug="whole_queue", duration=30.0)
    for mid in (1, 2, 3):
        edit(run, mid, lambda ls: [d.pop("level") for d in ls])
    p = subprocess.run([sys.executable, "-m", "lclock", "check", "--json", str(run)],
                       capture_output=True, text=True, cwd=REPO, timeout=60)
    assert p.returncode == 1, p.stderr
    data = json.loads(p.stdout)
    assert set(data) == {"ok", "counts", "notes", "findings"}
    base = {"rule", "severity", "file", "machine", "line", "count", "message"}
    for f in data["findings"]:  # a named classic bug (SPEC 10) says which, and only it
        assert set(f) == (base | {"bug"} if f["rule"] == "bug" else base)
    # the whole queue handled in one tick is the catalogue's several-per-tick, named
    assert {f["bug"] for f in data["findings"] if f["rule"] == "bug"} == {"several-per-tick"}
    level = [f for f in data["findings"] if f["rule"] == "field-level"]
    assert len(level) == 1 and level[0]["machine"] is None and level[0]["count"] > 100
    repeat = [f for f in data["findings"] if f["rule"] == "tick-repeat"]
    assert repeat and all(f["machine"] in (1, 2, 3) and f["line"] > 0 and f["count"] == 1
                          for f in repeat)


# ------------------------------------------------------------------ both readers agree


def _columns(run: Any) -> dict[str, Any]:
    out = {}
    for mid, m in run.machines.items():
        for f in ("line", "tick", "lclock", "qlen", "kind", "dice", "frm", "msg", "to_ptr",
                  "to_ids", "vclock", "dup", "unusable", "pt", "hlc", "msg_pt", "msg_hlc",
                  "to_dup"):
            out[(mid, f)] = getattr(m, f)
        out[(mid, "ts")] = np.round(m.ts, 6)
        out[(mid, "rest")] = (m.start, m.stop, m.skipped, m.lines, dict(m.other_events))
    out["issues"] = sorted((i.file, i.line, i.text, i.count) for i in run.issues)
    return out


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            assert (x is None and y is None) or (
                x is not None and y is not None and x.dtype == y.dtype
                and np.array_equal(x, y, equal_nan=x.dtype.kind == "f")), k
        else:
            assert x == y, k


MUTATIONS = [
    lambda b: b.replace(b'"lclock":', b'"lclock": ', 1),
    lambda b: b.replace(b'"level":"info"', b'"level":"debug"'),
    lambda b: b.replace(b'"level":"info"', b'"level":5'),
    lambda b: b.replace(b'"machine":', b'"machine":1', 1),
    lambda b: b.replace(b',"tick":', b',"tick":0', 1),
    lambda b: b.replace(b'"run_id":"', b'"run_id":"x', 1),
    lambda b: b.replace(b'"run_id":"', b'"run_id":"\\u0072', 1),
    lambda b: b.replace(b'}\n', b'} \n'),
    lambda b: b.replace(b'}\n', b'}}\n'),
    lambda b: b.replace(b'{"ts"', b'{ "ts"'),
    lambda b: b.replace(b',"', b', "'),
    lambda b: b.replace(b',"', b',,"', 1),
    lambda b: b.replace(b'Z"', b'Z\\u0000"', 1),
    lambda b: b.replace(b'T00:', b'T24:'),
    lambda b: b.replace(b'-01T', b'-31T').replace(b'-01-', b'-02-'),
    lambda b: b.replace(b'"queue_len":0', b'"queue_len":00'),
    lambda b: b.replace(b'"dice":', b'"dice":-', 1),
    lambda b: b.replace(b'"to":[', b'"to":[1,', 1),
    lambda b: b.replace(b'"to":[', b'"to":[9,', 1),
    lambda b: b.replace(b'"from":', b'"from":9', 1),
    lambda b: b.replace(b'"vclock":[', b'"vclock":[1,', 1),
    lambda b: b.replace(b'"vclock":[', b'"vclock":[ ', 1),
    lambda b: b.replace(b'"hlc":[', b'"hlc":[1,', 1),
    lambda b: b.replace(b'"pt":', b'"pt":"', 1),
    lambda b: b.replace(b'"pt":1', b'"pt":01', 1),
    lambda b: b.replace(b'"pt":1', b'"pt":11', 1),
    lambda b: b.replace(b'"pt":1', b'"pt":-1', 1),
    lambda b: b.replace(b'"msg_pt":1', b'"msg_pt":1.5', 1),
    lambda b: b.replace(b'"hlc":[1', b'"hlc":[ 1', 1),
    lambda b: b.replace(b'"hlc":[1', b'"hlc":[1,2,1', 1),
    lambda b: b.replace(b',0],', b',00],', 1),
    lambda b: b.replace(b'"msg_hlc":[', b'"msg_hlc":[1,', 1),
    lambda b: b.replace(b'"dup_to":[', b'"dup_to":[9,', 1),
    lambda b: b.replace(b'"dup":true', b'"dup":1', 1),
    lambda b: b.replace(b'"event":"internal"', b'"event":"internal","dup":true', 1),
    lambda b: b.replace(b'"event":"send"', b'"event":"send","x":{"tick":1}', 1),
    lambda b: b.replace(b',"dice":', b',"dice\\u0000":', 1),
    lambda b: b.replace(b'"tick":', b'"tick":1,"tick":', 1),
    lambda b: b.replace(b'\xe2', b'\xff'),
    lambda b: b + b'{"ts":"2026-01-01T00:00:00.000000Z"',
]


@pytest.mark.parametrize("clocks", [False, True])
def test_strict_byte_reader_agrees_with_orjson_on_damaged_logs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clocks: bool) -> None:
    """check's byte reader takes a line only if the careful way would find nothing wrong
    with it and read the same values: on many damaged copies both load the same run."""
    from lclock.analysis import fastparse
    from lclock.analysis import load as L

    monkeypatch.setattr(L, "CHUNK_BYTES", 3000)
    good = make_run(tmp_path / "g", rates=(4, 7, 5), duration=12.0,
                    faults=Faults(clocks=clocks, duplicate_every=20 if clocks else 0))
    rng = random.Random(3 + clocks)
    taken = []
    real = fastparse.parse_chunk

    def counting(*args: Any, **kw: Any) -> Any:
        res = real(*args, **kw)
        taken.append(0 if res is None else len(res.taken))
        return res

    monkeypatch.setattr(fastparse, "parse_chunk", counting)
    for it in range(len(MUTATIONS)):
        run = copy_run(good, tmp_path / f"c{it}")
        for mid in (1, 2, 3):
            raw = (run / f"machine-{mid}.jsonl").read_bytes().splitlines(keepends=True)
            for k in rng.sample(range(len(raw)), min(6, len(raw))):
                raw[k] = MUTATIONS[(it + k) % len(MUTATIONS)](raw[k])
            (run / f"machine-{mid}.jsonl").write_bytes(b"".join(raw))
        monkeypatch.setattr(L, "USE_FASTPARSE", False)
        careful = L.load_run(run, strict=True)
        monkeypatch.setattr(L, "USE_FASTPARSE", True)
        taken.clear()
        fast = L.load_run(run, strict=True)
        assert sum(taken) > 0.8 * fast.events
        _same(_columns(careful), _columns(fast))
        monkeypatch.setattr(L, "USE_FASTPARSE", False)
        a = check_run(run, cap=None)
        monkeypatch.setattr(L, "USE_FASTPARSE", True)
        b = check_run(run, cap=None)
        assert [str(f) for f in a.findings] == [str(f) for f in b.findings]


@pytest.mark.parametrize("strict", [False, True])
def test_logs_read_two_at_a_time_load_the_same_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   strict: bool) -> None:
    """A large run's logs are read by two threads at once: the columns, the issues and
    their order, and check's findings are those of reading them one after the other."""
    from lclock.analysis import load as L

    run = copy_run(make_run(tmp_path / "g", rates=(4, 7, 5), duration=12.0,
                            faults=Faults(clocks=True, duplicate_every=20)), tmp_path / "c")
    rng = random.Random(11)
    for mid in (1, 2, 3):
        raw = (run / f"machine-{mid}.jsonl").read_bytes().splitlines(keepends=True)
        for k in rng.sample(range(len(raw)), 5):
            raw[k] = MUTATIONS[k % len(MUTATIONS)](raw[k])
        (run / f"machine-{mid}.jsonl").write_bytes(b"".join(raw))
    (run / "machine-4.jsonl").mkdir()  # an unreadable one among them
    monkeypatch.setattr(L, "CHUNK_BYTES", 3000)
    one_by_one = L.load_run(run, strict=strict)
    findings = [str(f) for f in check_run(run, cap=None).findings]
    monkeypatch.setattr(L, "PARALLEL_BYTES", 0)
    threads: list[str] = []
    real = L.load_machine

    def spy(*args: Any, **kw: Any) -> Any:
        import threading

        threads.append(threading.current_thread().name)
        return real(*args, **kw)

    monkeypatch.setattr(L, "load_machine", spy)
    two = L.load_run(run, strict=strict)
    if len(os.sched_getaffinity(0)) >= 2:  # one CPU: read one after the other anyway
        assert threads and all(t.startswith("lclock-load") for t in threads)
    _same(_columns(one_by_one), _columns(two))
    assert [str(i) for i in one_by_one.issues] == [str(i) for i in two.issues]
    assert any("machine-4" in str(i) for i in two.issues)
    assert [str(f) for f in check_run(run, cap=None).findings] == findings


ZERO = {"ticks": 0, "lclock": 0, "sent": 0, "received": 0, "unprocessed": 0,
        "unprocessed_from": {}, "max_queue": 0, "undelivered": 0, "sent_to": {},
        "taken_from": {}}


def _interrupted_while_starting(run: Path, keep_ticks: bool) -> None:
    """Edit a run into what a Ctrl-C while machines 2 and 3 were being started leaves (as
    a real run did): run.json interrupted, no pid for them and no logs; machine 1 with its
    start line and a stop line of zeros (or, forged, its ticks kept)."""
    meta = orjson.loads((run / "run.json").read_bytes())
    meta["status"], meta["reason"], meta["exit_code"] = "interrupted", "sigint", 130
    for e in meta["machines"]:
        if e["id"] != 1:
            e.update(pid=None, exit_code=None, ticks=None, lclock=None)
        elif not keep_ticks:
            e.update(ZERO, reason="sigint")
    (run / "run.json").write_bytes(orjson.dumps(meta))
    for mid in (2, 3):
        (run / f"machine-{mid}.jsonl").unlink()
    if not keep_ticks:
        lines = [orjson.loads(x) for x in (run / "machine-1.jsonl").read_bytes().splitlines()]
        stop = {**lines[-1], **ZERO, "reason": "sigint", "ts": lines[0]["ts"]}
        (run / "machine-1.jsonl").write_bytes(orjson.dumps(lines[0]) + b"\n" +
                                              orjson.dumps(stop) + b"\n")


def test_check_on_a_run_interrupted_while_starting(tmp_path: Path) -> None:
    """Ctrl-C 0.25 s after ``lclock run`` started leaves a run whose run.json says two
    machines never started (pid null): check said FAILED ("missing: run.json names this
    machine but its log is not there"). Now that is a warning; but a run where any machine
    ticked cannot have had a machine that never started, so there it stays a finding."""
    run = sim(tmp_path / "a", "--duration", "2", "--seed", "3")
    _interrupted_while_starting(run, keep_ticks=False)
    report = check_run(run, cap=None)
    assert report.ok, [str(f) for f in report.errors]
    assert sum("before this machine started" in str(f) for f in report.warnings) == 2

    forged = sim(tmp_path / "b", "--duration", "2", "--seed", "3")
    _interrupted_while_starting(forged, keep_ticks=True)
    report = check_run(forged, cap=None)
    assert not report.ok
    assert any("missing" in str(f) for f in report.findings)


def test_check_cross_checks_status_exit_code_reason_and_times(tmp_path: Path) -> None:
    """run.json's status, exit_code, reason and instants were never compared with each
    other: a completed run's folder edited to say 'failed' with exit code 0, 'completed'
    with exit code 1 or reason 'sigint', or ended before it started, passed check."""
    base = sim(tmp_path / "base", "--duration", "3", "--seed", "6")
    assert check_run(base, cap=None).ok
    lies = {
        "failed-0": {"status": "failed"},
        "interrupted-0": {"status": "interrupted"},
        "completed-1": {"exit_code": 1},
        "completed-sigint": {"reason": "sigint"},
        "interrupted-wrong-code": {"status": "interrupted", "reason": "sigterm",
                                   "exit_code": 130},
        "ended-first": {"ended_at": "2025-01-01T00:00:00.000000Z"},
    }
    for name, change in lies.items():
        run = tmp_path / name
        shutil.copytree(base, run)
        meta = orjson.loads((run / "run.json").read_bytes())
        meta.update(change)
        (run / "run.json").write_bytes(orjson.dumps(meta))
        found = rules(run)
        assert set(found) == {"meta-status"}, (name, found)
