"""The Python API on hostile input (SPEC 13, issue 9 section 8): a damaged run folder, a
bad question or a bad argument is one clear exception of lclock's own (a BadInput, or a
ValueError/TypeError naming the argument), never an error from deep inside pandas or numpy.

The folders are the collection of tests/test_hostile_run_folders.py, each damaged copy of a
good run loaded with ``lclock.load`` and asked everything a notebook asks.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from analysis_fixtures import copy_run, make_run
from conftest import started, wait_for
from test_hostile_run_folders import CASES

import lclock
from lclock.errors import BadInput
from lclock.setting_checks import SettingsError


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("api-hostile") / "good", duration=10.0)


def _first_and_last(run: lclock.Run) -> tuple[tuple[int, int], tuple[int, int]]:
    ev = run.ticks
    return ((int(ev["machine"].iloc[0]), int(ev["tick"].iloc[0])),
            (int(ev["machine"].iloc[-1]), int(ev["tick"].iloc[-1])))


QUESTIONS: dict[str, Callable[[lclock.Run], Any]] = {
    "events": lambda r: r.events,
    "ticks": lambda r: r.ticks,
    "messages": lambda r: r.messages,
    "machines": lambda r: r.machines,
    "check": lambda r: r.check(),
    "summary": lambda r: r.summary(),
    "html": lambda r: r._repr_html_(),
    "explorer": lambda r: r.explorer_html(),
    "relation": lambda r: r.relation(*_first_and_last(r)) if len(r.ticks) else None,
    "lies": lambda r: r.lamport_lies(),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_question_on_a_hostile_folder_answers_or_is_bad_input(
        tmp_path: Path, good: Path, case: str) -> None:
    run_dir = tmp_path / case
    copy_run(good, run_dir)
    CASES[case][0](run_dir)
    try:
        run = lclock.load(run_dir)
    except BadInput as e:
        assert str(e) and "\n" not in str(e)
        return
    for name, ask in QUESTIONS.items():
        try:
            ask(run)
        except BadInput as e:
            assert str(e) and "\n" not in str(e), name


# ---------------------------------------------------------------- absurd arguments


@pytest.fixture(scope="module")
def small() -> lclock.Run:
    return lclock.simulate(rates=[2, 3, 5], duration=10, seed=2)


@pytest.mark.parametrize("event", [(1.5, 2), (1, 2.5), (True, 2), (1, False), ("1", "2"),
                                   (1, -1), (-1, 1), (10**30, 1)])
def test_an_event_is_two_integers_or_one_clear_error(small: lclock.Run, event: Any) -> None:
    # (1.5, 2) was machine 1 silently; (1, -1) was told to write MACHINE:LCLOCK
    with pytest.raises(BadInput, match=r"^\(.*\) is not an event: give \(machine, tick\)"):
        small.happened_before(event, (1, 1))


def test_numpy_integers_name_events(small: lclock.Run) -> None:
    import numpy as np

    assert small.relation((np.int64(1), np.int64(1)), (1, 1)) == "same"


@pytest.mark.parametrize("call", [
    lambda r: r.check(cap=-1), lambda r: r.check(cap=0), lambda r: r.check(cap="x"),
    lambda r: r.check(cap=True), lambda r: r.lamport_lies(examples=-1),
    lambda r: r.lamport_lies(examples="x"), lambda r: r.explorer_html(max_events=0),
    lambda r: r.explorer_html(max_events=-5), lambda r: r.explorer_html(max_events=2.5),
])
def test_a_bad_argument_is_a_value_or_type_error_naming_it(small: lclock.Run,
                                                           call: Callable[[lclock.Run], Any]) -> None:
    # check(cap=-1) listed a '... and N more' line for every rule of every file
    with pytest.raises((ValueError, TypeError), match=r"^(cap|examples|max_events) must be"):
        call(small)


def test_output_must_be_a_path() -> None:
    # output=5 wrote a folder named '5'
    with pytest.raises(SettingsError, match=r"simulate\(output=\.\.\.\)"):
        lclock.simulate(rates=[1, 2], duration=2, seed=1, output=5)


# ---------------------------------------------------------------- logs with holes


def _holes_run(folder: Path, sender: bool) -> Path:
    """An imported run of two machines: 1 sends twice to 2; 2 logs one receive from 1 without
    the message's clock (the import could not read it), so it matches neither send."""
    import json

    folder.mkdir()
    meta = {"schema": 1, "run_id": "holes", "mode": "import",
            "settings": {"machines": 2, "vector_clocks": False},
            "not_logged": ["queue_len", "dice", "msg_lclock", "start", "stop"],
            "machines": [{"id": 1}, {"id": 2}]}
    (folder / "run.json").write_text(json.dumps(meta))
    head = {"level": "info", "run_id": "holes"}
    one = [{"ts": "2026-03-02T17:57:01.000000Z", "event": "send", "machine": 1, "tick": 1,
            "lclock": 1, "to": [2]},
           {"ts": "2026-03-02T17:57:02.000000Z", "event": "send", "machine": 1, "tick": 2,
            "lclock": 2, "to": [2]}]
    two = [{"ts": "2026-03-02T17:57:03.000000Z", "event": "receive", "machine": 2, "tick": 1,
            "lclock": 3, **({"from": 1} if sender else {})}]
    for mid, lines in ((1, one), (2, two)):
        (folder / f"machine-{mid}.jsonl").write_text(
            "".join(json.dumps({**head, **d}) + "\n" for d in lines))
    return folder


@pytest.mark.parametrize("sender", [True, False], ids=["no-message-clock", "no-sender"])
def test_a_message_the_logs_cannot_place_has_a_missing_fate(tmp_path: Path, sender: bool) -> None:
    # both were called lost, though 2 received one of them and check claims no loss
    run = lclock.load(_holes_run(tmp_path / "holes", sender))
    msg = run.messages
    assert len(msg) == 2
    assert msg["fate"].isna().all() and msg["receive_tick"].isna().all()
    assert "lost" not in set(run.check()["rule"])


def test_run_json_names_the_call_not_the_kernel(tmp_path: Path, monkeypatch: Any) -> None:
    # run.json's command was sys.argv: in Jupyter, ipykernel_launcher.py -f kernel-....json
    import json

    monkeypatch.setattr(sys, "argv", ["/x/ipykernel_launcher.py", "-f", "/x/kernel-1.json"])
    run = lclock.simulate(rates=[1, 2], duration=2, seed=1, loss=0.1, output=tmp_path)
    meta = json.loads((run.path / "run.json").read_text())
    assert meta["command"] == ["lclock.simulate", "rates=[1, 2]", "duration=2", "seed=1",
                               "loss=0.1", f"output={str(tmp_path)!r}"]
    assert sys.argv == ["/x/ipykernel_launcher.py", "-f", "/x/kernel-1.json"]


def test_a_table_of_settings_toml_is_told_to_come_as_keywords() -> None:
    # faults={"loss": 0.1}, as settings.toml writes it, was "unknown setting 'faults'"
    with pytest.raises(TypeError, match=r"^simulate: the keys of \[faults\] are keywords: "
                                        r"simulate\(loss=\.\.\.\), not faults=\{\.\.\.\}$"):
        lclock.simulate(duration=2, faults={"loss": 0.1})


def test_a_folder_of_runs_names_its_runs(tmp_path: Path) -> None:
    # lclock.load("output") said only "not a run folder"
    older = lclock.simulate(rates=[1, 2], duration=2, seed=1, output=tmp_path).path
    newer = lclock.simulate(rates=[1, 2], duration=2, seed=2, output=tmp_path).path
    import os

    os.utime(older, (1, 1))
    with pytest.raises(BadInput, match=rf"not a run folder .*; it holds 2 run folders: load one, e.g. "
                                       rf"lclock.load\('{newer}'\) \(the newest\)$"):
        lclock.load(tmp_path)


def test_a_path_from_home_is_expanded(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    run = lclock.simulate(rates=[1, 2], duration=2, seed=1, output=tmp_path)
    assert lclock.load(f"~/{run.path.name}").path == run.path


def test_numpy_and_pandas_values_are_settings_like_python_ones() -> None:
    # seed=np.int64(3) (a notebook's loop over np.arange, a DataFrame's cell) was refused
    import numpy as np
    import pandas as pd

    plain = lclock.simulate(rates=[1, 3, 6], duration=5, seed=3, loss=0.25, machines=3)
    typed = lclock.simulate(rates=np.array([1, 3, 6]), duration=np.float64(5), seed=np.int64(3),
                            loss=np.float32(0.25), machines=np.int32(3))
    series = lclock.simulate(rates=pd.Series([1, 3, 6]), duration=5, seed=3, loss=0.25)
    for run in (typed, series):
        assert run.events.drop(columns="ts").equals(plain.events.drop(columns="ts"))
    with pytest.raises(SettingsError, match=r"simulate\(machines=\.\.\.\)"):
        lclock.simulate(machines=np.bool_(True))


INTERRUPTED = """
import sys, tempfile
import lclock
tempfile.tempdir = sys.argv[1]
try:
    lclock.simulate(rates=[10000] * 3, duration=600000)  # days of work: only Ctrl-C ends it
except KeyboardInterrupt:
    print("interrupted")
"""


@pytest.mark.timeout(120)
def test_ctrl_c_in_a_huge_simulation_stops_it_and_leaves_no_folder(tmp_path: Path) -> None:
    # a notebook's 'interrupt the kernel' is SIGINT: the run in memory goes with it
    def logs() -> list[Path]:
        return list(tmp_path.glob("lclock-sim-*/*/machine-1.jsonl"))

    repo = Path(__file__).resolve().parents[1]
    with started([sys.executable, "-c", INTERRUPTED, str(tmp_path)], repo) as p:
        assert wait_for(lambda: bool(logs()) or p.poll() is not None, 60)
        assert p.poll() is None, p.communicate()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    assert out.decode().strip() == "interrupted", err.decode()
    assert not list(tmp_path.iterdir())


def test_a_send_without_recipients_is_named_in_the_summary(tmp_path: Path) -> None:
    # such a send has no row in messages (no receiver to name): the summary said nothing
    folder = _holes_run(tmp_path / "holes", sender=True)
    log = folder / "machine-1.jsonl"
    log.write_text(log.read_text() + log.read_text().splitlines()[-1]
                   .replace('"tick": 2', '"tick": 3').replace('"lclock": 2', '"lclock": 3')
                   .replace(', "to": [2]', "") + "\n")
    meta = (folder / "run.json").read_text().replace('"dice", ', '"dice", "to", ')
    (folder / "run.json").write_text(meta)
    run = lclock.load(folder)
    assert len(run.messages) == 2 and (run.events["event"] == "send").sum() == 3
    assert "1 send without recipients, not in messages" in run._repr_html_()
