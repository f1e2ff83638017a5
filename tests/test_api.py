"""The Python API (SPEC 13): lclock.load and lclock.simulate.

Unit tests drive the API on small simulated runs and hold each answer against what the
logs and the commands say (run.json's counters, ``lclock check``, ``lclock hb``); the
integration tests run ``lclock sim`` as a subprocess and compare its logs byte for byte with
those of ``lclock.simulate`` given the same settings.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from impl_programs import IMPL

import lclock
from lclock.analysis.load import RunFolderError
from lclock.errors import BadInput

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lclock", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env=ENV)


@pytest.fixture(scope="module")
def faulty() -> lclock.Run:
    return lclock.simulate(rates=[1, 3, 6], duration=20, seed=3, loss=0.1, duplicate=0.1)


# ---------------------------------------------------------------- the DataFrames


TICKS = ("send", "receive", "internal")


def test_events_columns_are_typed(faulty: lclock.Run) -> None:
    ev = faulty.events
    for col in ("machine", "tick", "event", "lclock", "ts", "queue_len", "from", "to",
                "msg_lclock", "dice", "pt", "hlc", "vclock", "fields", "t_s", "line"):
        assert col in ev.columns
    assert str(ev["ts"].dtype) == "datetime64[us, UTC]"
    assert str(ev["pt"].dtype) == "datetime64[us, UTC]"
    for col in ("tick", "lclock", "from", "msg_lclock", "dice", "queue_len"):
        assert str(ev[col].dtype) == "Int64"
    assert str(ev["machine"].dtype) == str(ev["line"].dtype) == "int64"
    assert isinstance(ev["event"].dtype, pd.CategoricalDtype)
    assert {*TICKS, "start", "connected", "stop", "drop", "snapshot", "error"} <= set(
        ev["event"].cat.categories)
    ticks = faulty.ticks
    assert ticks.equals(ev[ev["event"].isin(TICKS)]) and 0 < len(ticks) < len(ev)
    assert ticks["tick"].notna().all() and ticks["lclock"].notna().all()
    assert ticks["fields"].isna().all()
    recv = ticks["event"] == "receive"
    assert ticks.loc[recv, "dice"].isna().all() and ticks.loc[~recv, "dice"].notna().all()
    assert ticks.loc[~recv, "from"].isna().all() and ticks.loc[recv, "from"].notna().all()
    sends = ticks["event"] == "send"
    assert ticks.loc[sends, "to"].map(lambda t: isinstance(t, list) and len(t) >= 1).all()
    assert ticks.loc[~sends, "to"].isna().all()


def test_a_column_added_to_ticks_neither_warns_nor_reaches_events(faulty: lclock.Run) -> None:
    """The guide's own example adds a column to ``run.ticks``; on a slice of ``events`` pandas
    2 warned (SettingWithCopyWarning) on every user's screen."""
    import warnings

    ticks = faulty.ticks
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ticks["jump"] = ticks.groupby("machine")["lclock"].diff()
        ticks.loc[ticks.index[0], "lclock"] = -1
    assert "jump" not in faulty.events.columns and (faulty.events["lclock"] != -1).all()


def test_events_are_the_log_lines(faulty: lclock.Run) -> None:
    """A row per line, in order: every column the line's own value, read back with json."""
    ev = faulty.events
    lines = [json.loads(x) for x in (faulty.path / "machine-2.jsonl").read_text().splitlines()]
    mine = ev[ev["machine"] == 2]
    assert list(mine["line"]) == list(range(1, len(lines) + 1))
    columns = ("tick", "lclock", "queue_len", "from", "msg_lclock", "dice", "to", "pt", "hlc",
               "vclock")
    for (_, row), d in zip(mine.iterrows(), lines):
        assert row["event"] == d["event"] and row["ts"] == pd.Timestamp(d["ts"])
        fields = row["fields"] or {}
        assert (row["fields"] is None) == (d["event"] in TICKS)
        # each key of the line is in its column or in fields (a tick line's other keys,
        # level, send_tick, ..., are not in the frame)
        for key, want in d.items():
            if key in ("ts", "event", "run_id", "machine") or (key not in columns and not fields):
                continue
            if key in fields:
                assert fields[key] == want, key
                assert key not in columns or row[key] is None or pd.isna(row[key]), key
            elif key == "to" and isinstance(want, int):
                assert row["to"] == [want]
            elif key == "pt":
                assert row["pt"] == pd.Timestamp(want, unit="us", tz="UTC")
            else:
                assert key in columns and row[key] == want, key
        for key in columns:  # and a column the line lacks is missing
            if key not in d:
                assert row[key] is None or pd.isna(row[key]), key
    assert mine["event"].value_counts()[["start", "connected", "stop"]].tolist() == [1, 1, 1]
    assert (ev["event"] == "drop").sum() == faulty.meta["messages"]["dropped"] > 0


def test_faults_and_snapshots_are_rows() -> None:
    """Drops, a pause and its resume, a crash (no stop line) and a snapshot each show as rows
    holding what their lines say."""
    run = lclock.simulate(rates=[2, 4, 6], duration=20, seed=3, loss=0.2, pauses="2@5+3",
                          crashes="1@12", snapshots="1@5")
    ev = run.events
    ev_of = ev.groupby("event", observed=True).size()
    assert ev_of["drop"] == run.meta["messages"]["dropped"] > 0
    assert ev_of["pause"] == ev_of["resume"] == 1 and ev_of["snapshot"] >= 1
    stops = ev[ev["event"] == "stop"]
    assert sorted(stops["machine"]) == [2, 3]  # machine 1 crashed: no stop line
    assert (stops["lclock"] == run.machines.loc[[2, 3], "lclock"].to_numpy()).all()
    drops = ev[ev["event"] == "drop"]
    assert drops["to"].map(lambda t: isinstance(t, list) and len(t) == 1).all()
    assert drops["msg_lclock"].notna().all() and drops["lclock"].isna().all()
    reason = drops["fields"].map(lambda f: f["reason"])
    assert set(reason) == {"loss", "crashed"}  # the crash shows as drops to machine 1
    crashed = drops[reason == "crashed"]
    assert (crashed["to"].str[0] == 1).all() and (crashed["t_s"] >= 12).all()
    resume = ev[ev["event"] == "resume"].iloc[0]
    assert resume["machine"] == 2 and resume["fields"]["skipped"] > 0
    assert pd.isna(resume["tick"]) and resume["t_s"] == 8.0
    snap = ev[ev["event"] == "snapshot"].iloc[0]
    assert snap["fields"]["id"] == 1 and isinstance(snap["vclock"], list)
    assert pd.notna(snap["lclock"]) and "channels" in snap["fields"]
    for _, mine in ev.groupby("machine"):
        assert mine["line"].is_monotonic_increasing and mine["line"].is_unique
    assert len(run.ticks) == run._run.events


def test_machines_agree_with_run_json(faulty: lclock.Run) -> None:
    m = faulty.machines
    assert list(m.index) == [1, 2, 3]
    for entry in faulty.meta["machines"]:
        row = m.loc[entry["id"]]
        for key in ("rate", "ticks", "received", "unprocessed", "lclock"):
            assert row[key] == entry[key], key
        assert row["sent"] == sum(entry["sent_to"].values())
        assert bool(row["stopped"])


def test_messages_account_for_every_message(faulty: lclock.Run) -> None:
    """Per link: handled (without duplicates) + unprocessed + dropped = sent (SPEC 6.8)."""
    msg = faulty.messages
    assert set(msg["fate"].cat.categories) == {"received", "unprocessed", "dropped", "lost"}
    assert (msg["fate"] == "lost").sum() == 0
    first = msg[~msg["dup"]]
    for entry in faulty.meta["machines"]:
        s = entry["id"]
        for j, n in entry["sent_to"].items():
            link = first[(first["sender"] == s) & (first["receiver"] == int(j))]
            assert len(link) == n
            assert (link["fate"] == "dropped").sum() == entry["dropped_to"].get(j, 0)
            queued = faulty.machines.loc[int(j)]
            assert (link["fate"] == "unprocessed").sum() <= queued["unprocessed"]
    assert msg["dup"].sum() > 0  # the run has duplicates: each is a row of its own
    got = msg[msg["fate"] == "received"]
    assert got["receive_tick"].notna().all() and (got["delay_s"] > 0).all()
    assert msg.loc[msg["fate"] != "received", "receive_tick"].isna().all()
    assert (got["jump"] >= 1).all()


def test_messages_match_trace(faulty: lclock.Run) -> None:
    """Each message's receives and jumps are those ``lclock trace`` gives (a duplicate twice)."""
    msg = faulty.messages
    got = msg[msg["fate"] == "received"]
    for s, tick in list(got[["sender", "send_tick"]].drop_duplicates().itertuples(index=False))[:40]:
        t = faulty.trace((int(s), int(tick)))["message"]
        mine = got[(got["sender"] == s) & (got["send_tick"] == tick)]
        want = sorted((r["machine"], r["tick"], r["jump"], r["delay_s"]) for r in t["receives"])
        have = sorted(zip(mine["receiver"], mine["receive_tick"], mine["jump"],
                          mine["delay_s"].round(6)))
        assert want == have


def test_a_crash_shows_as_missing_counts_and_lost_messages() -> None:
    """A machine the plan crashed has no stop line: its unprocessed count is missing, and
    what it had taken in but not handled is lost, as run.json's balance counts it."""
    run = lclock.simulate(rates=[2, 4, 6], duration=20, seed=3, crashes="1@10", loss=0.05)
    m = run.machines
    assert not m.loc[1, "stopped"] and pd.isna(m.loc[1, "unprocessed"])
    assert m.loc[[2, 3], "stopped"].all() and m.loc[[2, 3], "unprocessed"].notna().all()
    fates = run.messages["fate"].value_counts()
    balance = run.meta["messages"]
    assert fates["lost"] == balance["lost"] + balance["lost_in_crash"] >= 1
    assert fates["dropped"] == balance["dropped"]
    assert fates["received"] + fates["unprocessed"] == balance["taken"]


def test_unusable_lines_are_left_out_and_named_by_check(tmp_path: Path) -> None:
    run = lclock.simulate(rates=[2, 3], duration=5, seed=1, output=tmp_path)
    log = run.path / "machine-1.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    lines[4] = lines[4][: len(lines[4]) // 2] + "\n"  # a torn line
    log.write_text("".join(lines))
    again = lclock.load(run.path)
    assert len(again.events) == len(run.events) - 1
    assert 5 not in set(again.events.loc[again.events["machine"] == 1, "line"])
    found = again.check()
    assert (found["file"] == "machine-1.jsonl").any() and (found["line"] == 5).any()


# ---------------------------------------------------------------- check and causality


def test_check_is_empty_on_a_good_run(faulty: lclock.Run) -> None:
    found = faulty.check()
    assert isinstance(found, pd.DataFrame) and found.empty
    assert list(found.columns) == ["rule", "severity", "file", "machine", "line", "count",
                                   "message", "log_line"]


def test_check_gives_the_findings_of_lclock_check(tmp_path: Path) -> None:
    run = lclock.simulate(rates=[2, 3], duration=5, seed=1, output=tmp_path)
    log = run.path / "machine-2.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    k = next(i for i, x in enumerate(lines) if '"event":"internal"' in x and i > 5)
    d = json.loads(lines[k])
    d["lclock"] += 7  # an internal event that jumps: the clock rule is broken
    lines[k] = json.dumps(d, separators=(",", ":")) + "\n"
    log.write_text("".join(lines))
    found = lclock.load(run.path).check()
    cmd = json.loads(cli("check", "--json", "--all", str(run.path)).stdout)
    errors = [f for f in cmd["findings"] if f["severity"] == "error"]
    assert len(found) == len(errors) >= 1
    assert list(found["message"]) == [f["message"] for f in errors]
    assert (found["severity"] == "error").all()


def test_a_finding_of_an_imported_log_finds_its_event_row(tmp_path: Path) -> None:
    """check() cites the user's own line on an import (hdr.log:3, after a header), which is
    not the event's ``line`` in run.events (its place in machine-N.jsonl): ``log_line`` is,
    so findings join the events by (machine, log_line) on every kind of run."""
    (tmp_path / "a.log").write_text("# header\n1 m1 send m2 L=1\n2 m1 send m2 L=2\n")
    (tmp_path / "b.log").write_text("# header\n# more\n3 m2 receive m1 L=1\n"
                                    "4 m2 receive m1 L=2\n")
    out = tmp_path / "imp"
    p = cli("import", str(tmp_path / "a.log"), str(tmp_path / "b.log"), "-o", str(out),
            "--regex", r"^(?P<time>\d+) (?P<machine>\w+) (?P<event>\w+) (?P<peer>\w+) "
            r"L=(?P<clock>\d+)$")
    assert p.returncode == 0, p.stderr
    run = lclock.load(out)
    found = run.check()
    first = found[found["rule"] == "lamport"].iloc[0]
    assert first["file"].endswith("b.log") and (first["line"], first["log_line"]) == (3, 1)
    ev = run.events
    row = ev[(ev["machine"] == first["machine"]) & (ev["line"] == first["log_line"])]
    assert list(row["lclock"]) == [1] and list(row["msg_lclock"]) == [1]


def test_happened_before_agrees_with_lclock_hb(faulty: lclock.Run) -> None:
    pairs = [((1, 5), (3, 100)), ((3, 100), (1, 5)), ((2, 10), (2, 30)), ((1, 2), (3, 3))]
    for a, b in pairs:
        out = cli("hb", "--json", str(faulty.path), f"{a[0]}:t{a[1]}", f"{b[0]}:t{b[1]}")
        rel = json.loads(out.stdout)["relation"]
        assert faulty.relation(a, b) == rel
        assert faulty.happened_before(a, b) == (rel == "before")
        assert faulty.concurrent(a, b) == (rel == "concurrent")
        assert faulty.hb(a, b)["relation"] == rel


def test_happened_before_follows_a_message(faulty: lclock.Run) -> None:
    row = faulty.messages.query("fate == 'received'").iloc[0]
    send = (int(row["sender"]), int(row["send_tick"]))
    recv = (int(row["receiver"]), int(row["receive_tick"]))
    assert faulty.happened_before(send, recv)
    assert not faulty.happened_before(recv, send)
    assert faulty.chain(send, recv) == [(send, recv)]
    assert not faulty.happened_before(send, send)


def test_events_named_as_the_commands_name_them(faulty: lclock.Run) -> None:
    assert faulty.relation("1:t3", (1, 3)) == "same"
    with pytest.raises(BadInput, match="no event with tick 999"):
        faulty.happened_before((1, 999), (2, 1))
    with pytest.raises(BadInput, match="no machine 9"):
        faulty.happened_before((9, 1), (2, 1))
    with pytest.raises(BadInput, match="not an event"):
        faulty.happened_before("one", (2, 1))


def test_lamport_lies_is_lclock_hb_lamport_lies(faulty: lclock.Run) -> None:
    out = json.loads(cli("hb", "--json", "--lamport-lies", str(faulty.path)).stdout)
    assert faulty.lamport_lies() == out


# ---------------------------------------------------------------- showing it


def test_summary_and_explorer_are_html(faulty: lclock.Run) -> None:
    html = faulty._repr_html_()
    assert faulty.run_id in html and "<table" in html and "received" in html
    page = faulty.explorer_html()
    assert page.startswith("<!DOCTYPE html>") and 'id="lclock-data"' in page
    shown = faulty.explorer(height=500).data
    assert "<iframe srcdoc=" in shown and "height:500px" in shown
    assert "&lt;!DOCTYPE html&gt;" in shown  # the page, escaped into the attribute


# ---------------------------------------------------------------- load


def test_load_reads_what_simulate_wrote(tmp_path: Path) -> None:
    a = lclock.simulate(rates=[1, 2, 4], duration=10, seed=9, output=tmp_path)
    b = lclock.load(a.path)
    pd.testing.assert_frame_equal(a.events, b.events)
    pd.testing.assert_frame_equal(a.messages, b.messages)
    assert a.path.parent == tmp_path


def test_load_refuses_what_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(RunFolderError, match="no such folder"):
        lclock.load(tmp_path / "nope")
    with pytest.raises(RunFolderError, match="not a run folder"):
        lclock.load(tmp_path)


def test_load_without_pandas_says_so_in_one_line(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['pandas'] = None\n"
            "import lclock\n"
            "try:\n    lclock.load('x')\n"
            "except ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=ENV, timeout=60)
    assert out.stdout.strip() == lclock.api.PANDAS_MISSING
    assert "pip install" in out.stdout and out.stdout.count("\n") == 1


def test_import_lclock_and_the_cli_do_not_import_pandas() -> None:
    code = ("import sys, lclock, lclock.cli\n"
            "print('pandas' in sys.modules, 'lclock.api' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=ENV, timeout=60)
    assert out.stdout.split() == ["False", "False"]
    assert callable(lclock.load) and "simulate" in dir(lclock)


# ---------------------------------------------------------------- simulate


def test_unknown_keyword_names_the_nearest_key() -> None:
    with pytest.raises(TypeError, match=r"unknown setting 'laetncy_ms' \(did you mean 'latency_ms'"):
        lclock.simulate(laetncy_ms=5)
    with pytest.raises(TypeError, match="'transport' is not a setting of lclock sim"):
        lclock.simulate(transport="tcp")


def test_bad_values_name_the_keyword(tmp_path: Path) -> None:
    from lclock.settings import SettingsError

    (tmp_path / "file").write_text("")
    with pytest.raises(SettingsError, match=r"^simulate\(loss=\.\.\.\): must be a probability"):
        lclock.simulate(loss=1.5)
    with pytest.raises(SettingsError, match=r"^simulate\(rates=\.\.\.\): must be a list"):
        lclock.simulate(rates="1,3")
    with pytest.raises(SettingsError, match=r"^simulate\(output=\.\.\.\)"):
        lclock.simulate(duration=1, output=tmp_path / "file" / "runs")


def test_simulate_in_memory_leaves_no_folder(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    run = lclock.simulate(duration=3, seed=2)
    where = run.path
    assert where.is_dir() and not (tmp_path / "output").exists()
    assert run.events["machine"].nunique() == 3
    del run
    gc.collect()
    assert not where.exists()


def test_what_a_killed_script_left_goes_at_the_next_simulate(tmp_path: Path,
                                                             monkeypatch: Any) -> None:
    """SIGTERM to a script ends it without its finalizers: its run's temporary folder
    stayed for ever; the next simulate sweeps it (its pid is in the name)."""
    import signal
    import subprocess
    import sys

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp))
    script = ("import os, signal, lclock\n"
              "run = lclock.simulate(duration=2, seed=1)\n"
              "print(run.path, flush=True)\n"
              "os.kill(os.getpid(), signal.SIGTERM)\n")
    p = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == -signal.SIGTERM, p.stderr
    left = Path(p.stdout.strip()).parent  # the temporary folder, the run's folder in it
    assert left.is_dir() and left.parent == tmp
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    run = lclock.simulate(duration=2, seed=1)
    assert not left.exists() and run.path.is_dir()


SAME = [
    ({"rates": [1, 3, 6], "duration": 15, "seed": 4},
     ["--rates", "1,3,6", "--duration", "15", "--seed", "4"]),
    ({"machines": 4, "duration": 12, "seed": 8, "loss": 0.1, "duplicate": 0.05,
      "latency_ms": 30, "latency_dist": "exponential", "partitions": "3-6:1|2,3,4",
      "pauses": "2@2+2", "crashes": "4@9"},
     ["--machines", "4", "--duration", "12", "--seed", "8", "--loss", "0.1", "--duplicate",
      "0.05", "--latency", "30", "--latency-dist", "exponential", "--partition", "3-6:1|2,3,4",
      "--pause", "2@2+2", "--crash", "4@9"]),
    ({"rates": [2, 5], "duration": 10, "seed": 1, "skew_ms": 200, "drift_ppm": 500,
      "bumps": "1@5:+300", "clocks": "hlc", "delay_mean": 0.01, "jitter": 0.0},
     ["--rates", "2,5", "--duration", "10", "--seed", "1", "--clock-skew", "200",
      "--clock-drift", "500", "--clock-bump", "1@5:+300", "--clocks", "hlc",
      "--delay-mean", "0.01", "--jitter", "0"]),
]


def _logs(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run_dir.glob("machine-*.jsonl"))}


def _only_run(output: Path) -> Path:
    runs = [p for p in output.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.mark.parametrize(("kw", "flags"), SAME, ids=["plain", "faults", "clocks"])
def test_simulate_gives_the_events_of_lclock_sim(kw: dict[str, Any], flags: list[str],
                                                 tmp_path: Path) -> None:
    out = cli("sim", "--settings", "/dev/null", "--quiet", "--output", str(tmp_path), *flags)
    assert out.returncode == 0, out.stderr
    cmd_dir = _only_run(tmp_path)
    run = lclock.simulate(**kw)
    assert run.run_id == cmd_dir.name
    assert _logs(run.path) == _logs(cmd_dir)
    theirs = json.loads((cmd_dir / "run.json").read_text())["settings"]
    assert {**run.meta["settings"], "output": None, "quiet": None} == {
        **theirs, "output": None, "quiet": None}
    pd.testing.assert_frame_equal(run.events, lclock.load(cmd_dir).events)


@pytest.mark.timeout(120)
def test_simulate_with_impl_is_lclock_sim_impl(tmp_path: Path) -> None:
    prog = f"{sys.executable} {IMPL / 'python' / 'vm.py'}"
    flags = ["--rates", "2,3,4", "--duration", "6", "--seed", "5", "--loss", "0.05"]
    out = cli("sim", "--settings", "/dev/null", "--quiet", "--output", str(tmp_path / "cmd"),
              "--impl", prog, *flags)
    assert out.returncode == 0, out.stderr
    run = lclock.simulate(rates=[2, 3, 4], duration=6, seed=5, loss=0.05, impl=prog,
                          output=tmp_path / "api")
    assert run.meta.get("impl")  # run.json records the programs
    assert _logs(run.path) == _logs(_only_run(tmp_path / "cmd"))
    assert run.check().empty
    assert np.array_equal(run.machines["ticks"].to_numpy(), [12, 18, 24])


def test_a_failed_program_gives_a_failed_run_not_an_exception() -> None:
    run = lclock.simulate(rates=[2, 3], duration=3, seed=1, impl="false")
    assert run.status == "failed" and "machine 1" in run.meta["reason"]
    assert run.machines["ticks"].tolist() == [0, 0] and pd.isna(run.machines.loc[1, "lclock"])


def test_lines_past_the_readers_cap_are_warned_of(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader keeps a bounded number of unknown lines: a frame without all of them says so."""
    from lclock.analysis import load as _load

    run = lclock.simulate(rates=[2, 3], duration=3, seed=1, output=tmp_path)
    log = run.path / "machine-1.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    odd = [json.dumps({"ts": "2026-01-01T00:00:01.000000Z", "event": f"odd{k}", "level": "info",
                       "run_id": run.run_id, "machine": 1}) + "\n" for k in range(5)]
    log.write_text("".join(lines[:3] + odd + lines[3:]))
    whole = lclock.load(run.path).events
    assert (whole["event"].astype(str).str.startswith("odd")).sum() == 5
    monkeypatch.setattr(_load, "MAX_NOTABLE", 2)
    capped = lclock.load(run.path)
    with pytest.warns(UserWarning, match=r"machine 1: 3\b"):
        ev = capped.events
    assert len(ev) == len(whole) - 3


def test_a_value_no_column_holds_stays_in_fields(tmp_path: Path) -> None:
    """A non-tick line's clock in a run whose ticks log none (no vclock column) is kept in
    fields, as is a value of the wrong type for its column; nothing of the line is dropped."""
    run = lclock.simulate(rates=[2, 3], duration=3, seed=1, vector_clocks=False, output=tmp_path)
    log = run.path / "machine-2.jsonl"
    odd = {"ts": "2026-01-01T00:00:01.000000Z", "event": "fault", "level": "info",
           "run_id": run.run_id, "machine": 2, "vclock": [1, 2], "lclock": "x", "tick": 4}
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:3] + [json.dumps(odd) + "\n"] + lines[3:]))
    ev = lclock.load(run.path).events
    assert "vclock" not in ev.columns
    row = ev[ev["event"] == "fault"].iloc[0]
    assert row["fields"] == {"level": "info", "vclock": [1, 2], "lclock": "x"}
    assert row["tick"] == 4 and pd.isna(row["lclock"]) and row["line"] == 4
