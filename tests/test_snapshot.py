"""Chandy–Lamport snapshots (SPEC 12): the pure recording, the simulator's, and check's
verification of them."""

from __future__ import annotations

import json
import random
from collections import deque
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lclock.analysis.check import check_run
from lclock.core.model import Machine, Message
from lclock.core.snapshot import Marker, Recorder, SnapshotAt, summary
from lclock.settings import SettingsError, SettingsFile, resolve
from lclock.sim.engine import NetworkSettings, run_sim


def machine(mid: int = 2, n: int = 3) -> Machine:
    return Machine(mid, n, random.Random(1))


def msg(sender: int, lclock: int, tick: int) -> Message:
    return Message(sender, lclock, None, None, None, tick)


# -- the recording, driven by hand ------------------------------------------------------------


def test_the_initiator_records_its_state_and_sends_a_marker_on_every_link() -> None:
    m = machine(2)
    m.lclock, m.ticks, m.vclock = 17, 9, [1, 9, 4]
    rec = Recorder(2, m.everyone)
    to = rec.start(1, m, deque([msg(1, 5, 3)]))
    assert to == [1, 3]
    r = rec.recordings[1]
    assert (r.lclock, r.vclock, r.tick) == (17, [1, 9, 4], 9)
    assert r.queue == [{"from": 1, "msg_lclock": 5, "send_tick": 3}]
    assert r.waiting == {1, 3} and not r.complete
    assert rec.start(1, m, deque()) == [], "a snapshot is started once"


def test_a_first_marker_records_at_once_and_its_link_is_empty() -> None:
    m = machine(2)
    m.lclock, m.ticks = 4, 3
    rec = Recorder(2, m.everyone)
    to, done = rec.marker(Marker(1, 3), m, deque())
    assert to == [1, 3] and done is None
    m.lclock = 99  # later changes do not touch what was recorded
    rec.took(msg(3, 8, 6))  # after link 3's marker: not in transit in this snapshot
    rec.took(msg(1, 7, 5))  # link 1 still records
    to, done = rec.marker(Marker(1, 1), m, deque())
    assert to == [] and done is not None
    assert done.fields() == {"id": 1, "lclock": 4, "vclock": [0, 0, 0], "tick": 3, "queue": [],
                             "channels": {"1": [{"from": 1, "msg_lclock": 7, "send_tick": 5}],
                                          "3": []}}


def test_messages_before_the_recording_are_in_the_queue_not_the_channel() -> None:
    m = machine(1)
    rec = Recorder(1, m.everyone)
    rec.took(msg(2, 3, 2))  # before any recording: nothing recorded
    rec.start(5, m, deque([msg(2, 3, 2)]))
    rec.took(msg(3, 4, 4))
    rec.marker(Marker(5, 2), m, deque())
    _, done = rec.marker(Marker(5, 3), m, deque())
    assert done is not None
    assert done.queue == [{"from": 2, "msg_lclock": 3, "send_tick": 2}]
    assert done.channels == {2: [], 3: [{"from": 3, "msg_lclock": 4, "send_tick": 4}]}


def test_a_duplicated_marker_is_ignored_and_counted() -> None:
    m = machine(1)
    rec = Recorder(1, m.everyone)
    rec.start(1, m, deque())
    assert rec.marker(Marker(1, 2), m, deque()) == ([], None)
    assert rec.marker(Marker(1, 2), m, deque()) == ([], None)
    rec.took(msg(2, 9, 9))  # link 2 is closed: not recorded
    _, done = rec.marker(Marker(1, 3), m, deque())
    assert done is not None and done.channels[2] == [] and done.extra_markers == 1


def test_two_snapshots_record_apart() -> None:
    m = machine(1)
    rec = Recorder(1, m.everyone)
    rec.start(1, m, deque())
    rec.took(msg(2, 1, 1))
    rec.marker(Marker(2, 3), m, deque())  # snapshot 2 starts here, link 3 empty
    rec.took(msg(2, 2, 2))
    assert rec.recordings[1].channels[2] == [{"from": 2, "msg_lclock": 1, "send_tick": 1},
                                             {"from": 2, "msg_lclock": 2, "send_tick": 2}]
    assert rec.recordings[2].channels[2] == [{"from": 2, "msg_lclock": 2, "send_tick": 2}]


def test_summary_says_what_did_not_complete() -> None:
    plan = [SnapshotAt(1, 1, 2.0), SnapshotAt(2, 3, 4.0)]
    m = machine(1)
    a = Recorder(1, m.everyone)
    a.start(1, m, deque())
    a.lost(1, 2, "loss")
    a.marker(Marker(1, 3), m, deque())
    parts = {1: a.status(), 2: [], 3: [{"id": 1, "recorded": True, "complete": True,
                                         "waiting_for": [], "extra_markers": 0,
                                         "markers_lost": []}]}
    out = summary(plan, parts, 3)
    assert out[0] == {"id": 1, "machine": 1, "time": 2.0, "completed": False,
                      "not_recorded": [2], "waiting_for": {"1": [2]},
                      "markers_lost": [{"from": 1, "to": 2, "reason": "loss"}]}
    assert out[1]["completed"] is False and out[1]["not_recorded"] == [1, 2, 3]


# -- the setting --------------------------------------------------------------------------------


def test_the_schedule_is_numbered_in_time_order() -> None:
    s = resolve(SettingsFile(), {"machines": 3, "duration": 10.0, "snapshots": "3@50%; 1@2"})
    assert s.snapshots == (SnapshotAt(1, 1, 2.0), SnapshotAt(2, 3, 5.0))
    assert s.to_json()["snapshots"] == [{"id": 1, "machine": 1, "time": 2.0},
                                        {"id": 2, "machine": 3, "time": 5.0}]


@pytest.mark.parametrize(("value", "says"), [
    ("4@1", "machine 4"), ("1@10", "outside the run"), ("1@x", "is not ID@TIME"),
    ("1@101%", "outside the run"),
    # 10 s "outside the run (0 to 10 s)" read as a contradiction: the end is not in the run
    ("1@100%", r"a snapshot at 10 s is outside the run \(from 0 s to before its end at 10 s\)"),
])
def test_a_bad_schedule_names_the_flag(value: str, says: str) -> None:
    with pytest.raises(SettingsError, match=f"^--snapshot: .*{says}"):
        _resolve_flag(value)


def _resolve_flag(value: str) -> None:
    import argparse

    from lclock.setting_table import add_options, flags_of

    parser = argparse.ArgumentParser()
    add_options(parser, "sim")
    args = parser.parse_args(["--machines", "3", "--duration", "10", "--snapshot", value])
    resolve(SettingsFile(), flags_of(args))


# -- the simulator ------------------------------------------------------------------------------


def simulate(tmp_path: Path, **flags: Any) -> tuple[Path, dict[str, Any]]:
    s = resolve(SettingsFile(), {"machines": 3, "duration": 10.0, "seed": 3, **flags})
    run_dir, _machines, meta = run_sim(s, NetworkSettings(), tmp_path / "out")
    return run_dir, meta


def snapshot_lines(run_dir: Path) -> dict[int, list[dict[str, Any]]]:
    out = {}
    for path in sorted(run_dir.glob("machine-*.jsonl")):
        lines = [orjson.loads(x) for x in path.read_bytes().splitlines()]
        out[int(path.stem.split("-")[1])] = [x for x in lines if x["event"] == "snapshot"]
    return out


def test_every_machine_logs_each_completed_snapshot_once(tmp_path: Path) -> None:
    run_dir, meta = simulate(tmp_path, snapshots="1@2;2@50%")
    assert [(x["id"], x["completed"]) for x in meta["snapshots"]] == [(1, True), (2, True)]
    for mid, lines in snapshot_lines(run_dir).items():
        assert [x["id"] for x in lines] == [1, 2], mid
        for x in lines:
            assert set(x) >= {"id", "lclock", "vclock", "tick", "queue", "channels"}
            assert set(x["channels"]) == {str(p) for p in (1, 2, 3) if p != mid}
    result = check_run(run_dir)
    assert result.ok and not result.warnings, [str(f) for f in result.findings]


def test_markers_change_no_message_and_no_dice(tmp_path: Path) -> None:
    """A snapshot adds its lines and nothing else: the other lines are the same bytes."""
    faults = {"latency_ms": 30.0, "latency_dist": "exponential", "loss": 0.1, "duplicate": 0.1}
    with_snap, _ = simulate(tmp_path / "a", snapshots="1@1;2@4", **faults)
    without, _ = simulate(tmp_path / "b", **faults)
    for path in sorted(without.glob("machine-*.jsonl")):
        theirs = [x for x in (with_snap / path.name).read_bytes().splitlines()
                  if b'"event":"snapshot"' not in x]
        assert [json.loads(x)["lclock"] for x in theirs if b'"lclock"' in x] == \
            [json.loads(x)["lclock"] for x in path.read_bytes().splitlines() if b'"lclock"' in x]


def test_a_lost_marker_leaves_the_snapshot_incomplete(tmp_path: Path) -> None:
    run_dir, meta = simulate(tmp_path, snapshots="1@2", partitions="1-3:1")
    snap = meta["snapshots"][0]
    assert snap["completed"] is False
    assert {x["reason"] for x in snap["markers_lost"]} == {"partition"}
    assert snap["not_recorded"] == [2, 3] and snap["waiting_for"] == {"1": [2, 3]}
    assert not snapshot_lines(run_dir)[2]
    result = check_run(run_dir)
    assert result.ok
    assert any("snapshot 1 not checked" in n for n in result.notes)


def test_a_crashed_machine_never_completes_it(tmp_path: Path) -> None:
    _run_dir, meta = simulate(tmp_path, snapshots="1@5", crashes="3@2")
    snap = meta["snapshots"][0]
    assert snap["completed"] is False and snap["not_recorded"] == [3]


def test_a_paused_initiator_starts_when_it_goes_on(tmp_path: Path) -> None:
    run_dir, meta = simulate(tmp_path, snapshots="2@3", pauses="2@2+3")
    assert meta["snapshots"][0]["completed"] is True
    first = snapshot_lines(run_dir)[2][0]
    assert first["ts"] >= "2026-01-01T00:00:05"
    assert check_run(run_dir).ok


FAULTS = st.fixed_dictionaries({}, optional={
    "latency_ms": st.sampled_from([5.0, 80.0, 400.0]),
    "latency_dist": st.sampled_from(["constant", "uniform", "exponential"]),
    "loss": st.sampled_from([0.05, 0.3]),
    "duplicate": st.sampled_from([0.1, 0.4]),
    "pauses": st.just("2@3+2"),
    "crashes": st.just("3@8"),
    "partitions": st.just("2-4:1"),
})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), faults=FAULTS, n=st.integers(2, 5),
       times=st.lists(st.floats(0.0, 9.9), min_size=1, max_size=4))
def test_fifo_snapshots_are_consistent_and_account_for_every_message(
        tmp_path_factory: pytest.TempPathFactory, seed: int, faults: dict[str, Any], n: int,
        times: list[float]) -> None:
    """Whatever the seed and the faults, under FIFO links every completed snapshot is a
    consistent cut whose channels hold exactly the messages in transit (check finds nothing),
    and one without a lost marker or a crashed machine completes."""
    if n < 3:
        faults = {k: v for k, v in faults.items() if k not in ("crashes", "pauses")}
    spec = ";".join(f"{k % n + 1}@{t:.3f}" for k, t in enumerate(times))
    s = resolve(SettingsFile(), {"machines": n, "duration": 10.0, "seed": seed,
                                 "snapshots": spec, **faults})
    run_dir, _m, meta = run_sim(s, NetworkSettings(), tmp_path_factory.mktemp("p"))
    result = check_run(run_dir)
    assert result.ok and not result.warnings, [str(f) for f in result.findings]
    lines = snapshot_lines(run_dir)
    for snap in meta["snapshots"]:
        logged = [mid for mid, xs in lines.items() if any(x["id"] == snap["id"] for x in xs)]
        assert snap["completed"] == (len(logged) == n)
        lost = snap.get("markers_lost") or "crashes" in faults
        if not lost:
            assert snap["completed"], snap


@pytest.mark.parametrize("seed", range(6))
def test_reordering_makes_a_warning_never_a_finding(tmp_path: Path, seed: int) -> None:
    run_dir, _meta = simulate(tmp_path, seed=seed, snapshots="1@2;2@4;3@6;1@8", reorder=True,
                              latency_ms=300.0, latency_dist="exponential")
    result = check_run(run_dir)
    assert result.ok, [str(f) for f in result.errors]
    assert all(f.rule == "snapshot-crossed" for f in result.warnings if "snapshot" in f.rule)


def test_reordering_crosses_markers_somewhere(tmp_path: Path) -> None:
    """Over several seeds with long random delays, some message crosses a marker: check
    names it (the rule is not a check that cannot fire)."""
    crossed = []
    for seed in range(8):
        run_dir, _ = simulate(tmp_path / str(seed), seed=seed, snapshots="1@2;2@4;3@6;1@8",
                              reorder=True, latency_ms=300.0, latency_dist="exponential")
        crossed += [f for f in check_run(run_dir).warnings if f.rule == "snapshot-crossed"]
    assert crossed and "crossed the marker" in crossed[0].text


# -- check catches a snapshot line that lies --------------------------------------------------


def _rewrite(run_dir: Path, mid: int, change: Any) -> None:
    path = run_dir / f"machine-{mid}.jsonl"
    out = []
    for raw in path.read_bytes().splitlines():
        o = orjson.loads(raw)
        if o["event"] == "snapshot":
            change(o)
        out.append(orjson.dumps(o))
    path.write_bytes(b"\n".join(out) + b"\n")


def _busy(tmp_path: Path) -> Path:
    run_dir, meta = simulate(tmp_path, snapshots="1@3", latency_ms=400.0, rates=(5, 5, 5))
    assert meta["snapshots"][0]["completed"]
    return run_dir


def test_check_finds_a_channel_that_lost_a_message(tmp_path: Path) -> None:
    run_dir = _busy(tmp_path)
    lines = snapshot_lines(run_dir)
    mid, sender = next((mid, k) for mid, xs in lines.items() for k, v in xs[0]["channels"].items() if v)
    _rewrite(run_dir, mid, lambda o: o["channels"][sender].pop())
    result = check_run(run_dir)
    assert not result.ok
    assert any(f.rule == "snapshot-inconsistent" and "misses 1 message" in f.text
               for f in result.errors)


def test_check_finds_a_cut_that_is_not_consistent(tmp_path: Path) -> None:
    """A receiver whose recorded tick is moved late enough to take in a message sent after
    the sender's recording: an orphan receive inside the cut."""
    run_dir = _busy(tmp_path)
    _rewrite(run_dir, 2, lambda o: o.update(tick=o["tick"] + 20))
    result = check_run(run_dir)
    assert any(f.rule == "snapshot-inconsistent" and "not a consistent cut" in f.text
               for f in result.errors), [str(f) for f in result.findings]


def test_the_schema_takes_snapshot_lines_and_refuses_a_broken_one(tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from lclock.analysis.schema import LOG_LINE_SCHEMA

    v = jsonschema.Draft202012Validator(LOG_LINE_SCHEMA)
    run_dir, _ = simulate(tmp_path, snapshots="1@2", latency_ms=300.0)
    lines = [x for xs in snapshot_lines(run_dir).values() for x in xs]
    assert len(lines) == 3 and all(not list(v.iter_errors(x)) for x in lines)
    broken = {**lines[0], "channels": {"x": []}, "queue": [{"from": 0}]}
    assert len(list(v.iter_errors(broken))) == 3


def test_a_planned_trial_says_its_snapshots_as_a_flag() -> None:
    """An experiment's trial command (``to_flags``) gives the same snapshots back."""
    from lclock.setting_table import to_flags

    s = resolve(SettingsFile(), {"machines": 3, "duration": 10.0, "snapshots": "3@50%;1@2"})
    flags = to_flags(s)
    assert flags[flags.index("--snapshot") + 1] == "1@2.0;3@5.0"
    again = resolve(SettingsFile(), {"machines": 3, "duration": 10.0,
                                     "snapshots": flags[flags.index("--snapshot") + 1]})
    assert again.snapshots == s.snapshots


def test_hostile_snapshot_lines_are_findings_not_crashes(tmp_path: Path) -> None:
    run_dir = _busy(tmp_path)
    path = run_dir / "machine-1.jsonl"
    lines = path.read_bytes().splitlines()
    stop = next(k for k, x in enumerate(lines) if b'"event":"stop"' in x)
    base = {"ts": "2026-01-01T00:00:09.000000Z", "event": "snapshot", "level": "info",
            "run_id": run_dir.name, "machine": 1}
    bad = [{**base, "id": "x", "tick": 1, "queue": [], "channels": {}},
           {**base, "id": 9, "tick": 2**63 - 1, "queue": [1, None, {"from": "a"}],
            "channels": {"2": "no", "zz": [{}]}},
           {**base, "id": 10, "tick": 3, "queue": {}, "channels": []}]
    lines[stop:stop] = [orjson.dumps(x) for x in bad]
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = check_run(run_dir)
    rules = [f.rule for f in result.findings]
    assert rules.count("snapshot-line") == 3  # junk in a queue or channel too (id 9)
    assert not any("snapshot 9" in n for n in result.notes)


@pytest.mark.parametrize("junk", [
    lambda o: o["queue"].append({"from": 2, "msg_lclock": "11", "send_tick": 10}),
    lambda o: o["channels"].setdefault("3", []).append([3, 15, 11]),
    lambda o: o["channels"].update({"x9": []}),
    lambda o: o["queue"].append(None),
    # well formed, but from no machine the link's sums read: passed over, they too left it OK
    lambda o: o["channels"].setdefault("3", []).append({"from": 1, "msg_lclock": 15,
                                                        "send_tick": 11}),
    lambda o: o["channels"].update({"9": [{"from": 9, "msg_lclock": 15, "send_tick": 11}]}),
    lambda o: o["queue"].append({"from": 9, "msg_lclock": 15, "send_tick": 11}),
    lambda o: o["queue"].append({"from": 2, "msg_lclock": 15, "send_tick": 11}),
])
def test_a_complete_snapshot_with_junk_in_a_queue_or_channel_is_a_finding(
        tmp_path: Path, junk: Any) -> None:
    """An entry the link's sums cannot read would be passed over: added beside the right
    entries, it left the snapshot checked OK. So would one from a machine other than its
    channel's (or from no machine of the run, or from the recorder itself)."""
    run_dir = _busy(tmp_path)
    _rewrite(run_dir, 2, junk)
    result = check_run(run_dir)
    assert not result.ok
    assert sorted({f.rule for f in result.findings}) == ["meta-snapshots", "snapshot-line"]


@pytest.mark.parametrize(("change", "words"), [
    (lambda o: o.update(lclock=o["lclock"] + 1), "recorded lclock"),
    (lambda o: o.update(lclock=9999), "recorded lclock 9999"),
    (lambda o: o.update(lclock="7"), "recorded lclock '7'"),
    (lambda o: o.update(vclock=[0] * len(o["vclock"])), "recorded vclock"),
    (lambda o: o.update(tick=o["tick"] - 1), "after tick"),  # the clocks of another tick
])
def test_recorded_clocks_that_are_not_the_machines_are_a_finding(
        tmp_path: Path, change: Any, words: str) -> None:
    """The cut is judged from the recorded tick: clocks that are not the machine's after it
    (SPEC 12.5) would otherwise pass unseen."""
    run_dir = _busy(tmp_path)
    assert check_run(run_dir).ok
    _rewrite(run_dir, 2, change)
    result = check_run(run_dir)
    state = [f for f in result.findings if f.rule == "snapshot-state"]
    assert len(state) == 1 and words in state[0].text and state[0].file == "machine-2.jsonl"


def test_the_explorer_still_shows_snapshot_lines(tmp_path: Path) -> None:
    from lclock.analysis.load import load_run
    from lclock.explorer.extras import read_extras

    run_dir, _ = simulate(tmp_path, snapshots="1@2")
    run = load_run(run_dir)
    ex = read_extras(run.machines[1])
    assert ex.other_dropped == 0
    assert [o["event"] for _n, o, _t in ex.other].count("snapshot") == 1


@pytest.mark.timeout(120)
def test_a_program_s_machine_takes_part_in_lock_step(tmp_path: Path) -> None:
    """With ``--impl`` the simulator goes in lock-step when there are snapshots, so what a
    program's machine records is its clocks after its last answered tick."""
    import subprocess
    import sys

    from impl_programs import build

    cmd = " ".join(build("python", tmp_path))
    out = subprocess.run([sys.executable, "-m", "lclock", "sim", "--settings", "/dev/null",
                          "--duration", "10", "--seed", "2", "--impl", f"2={cmd}", "--snapshot",
                          "1@2;2@5", "--latency", "100", "--output", str(tmp_path / "out"),
                          "--quiet"], capture_output=True, text=True, timeout=100)
    assert out.returncode == 0, out.stderr
    (run_dir,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    meta = json.loads((run_dir / "run.json").read_text())
    assert [s["completed"] for s in meta["snapshots"]] == [True, True]
    result = check_run(run_dir)
    assert result.ok and not result.warnings, [str(f) for f in result.findings]


def test_a_marker_of_no_planned_snapshot_is_passed_over() -> None:
    from lclock.core.node import MachinePlan, Node

    plain = Node(MachinePlan(1, 3, "r", 5, 10.0))
    assert plain.take_marker(Marker(1, 2), 0.0) == ([], [])
    planned = Node(MachinePlan(1, 3, "r", 5, 10.0, snapshots=(SnapshotAt(1, 2, 1.0),)))
    assert planned.take_marker(Marker(7, 2), 0.0) == ([], [])
    assert planned.take_marker(Marker(1, 2), 0.0)[0] == [2, 3]


def test_the_settings_file_key_and_its_errors(tmp_path: Path) -> None:
    from lclock.settings import load_settings_file

    good = tmp_path / "good.toml"
    good.write_text('machines = 4\nduration = 8\nsnapshots = ["4@1", "2@50%"]\n')
    s = resolve(load_settings_file(str(good)), {})
    assert s.snapshots == (SnapshotAt(1, 4, 1.0), SnapshotAt(2, 2, 4.0))
    bad = tmp_path / "bad.toml"
    bad.write_text('machines = 3\nsnapshots = "5@1"\n')
    with pytest.raises(SettingsError, match=r"bad\.toml:snapshots: .*machine 5"):
        resolve(load_settings_file(str(bad)), {})


def test_snapshot_lines_past_those_kept_are_said_not_passed_over(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A log with more snapshot lines than the loader keeps: check says the rest were not
    read (a warning naming the first left out), instead of an OK over lines it never saw."""
    from lclock.analysis import load

    run_dir = _busy(tmp_path)
    path = run_dir / "machine-1.jsonl"
    lines = path.read_bytes().splitlines()
    stop = next(k for k, x in enumerate(lines) if b'"event":"stop"' in x)
    base = {"ts": "2026-01-01T00:00:09.000000Z", "event": "snapshot", "level": "info",
            "run_id": run_dir.name, "machine": 1, "tick": 1, "lclock": 1, "queue": [],
            "channels": {"2": [], "3": []}}
    lines[stop:stop] = [orjson.dumps({**base, "id": k}) for k in range(100, 105)]
    path.write_bytes(b"\n".join(lines) + b"\n")
    monkeypatch.setattr(load, "MAX_KEPT", 3)
    result = check_run(run_dir)
    said = [f for f in result.warnings if f.rule == "lines-not-kept"]
    assert len(said) == 1 and said[0].file == "machine-1.jsonl"
    assert said[0].count == 3 and "3 snapshot line(s)" in said[0].text
    assert said[0].line == stop + 3  # the 4th snapshot line (1-based numbers) is the first left out
