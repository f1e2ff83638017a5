"""The Python API on hostile input (SPEC 13, issue 9 section 8): a damaged run folder, a
bad question or a bad argument is one clear exception of lclock's own (a BadInput, or a
ValueError/TypeError naming the argument), never an error from deep inside pandas or numpy.

The folders are the collection of tests/test_hostile_run_folders.py, each damaged copy of a
good run loaded with ``lclock.load`` and asked everything a notebook asks.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from analysis_fixtures import copy_run, make_run
from test_hostile_run_folders import CASES

import lclock
from lclock.errors import BadInput


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("api-hostile") / "good", duration=10.0)


def _first_and_last(run: lclock.Run) -> tuple[tuple[int, int], tuple[int, int]]:
    ev = run.events
    return ((int(ev["machine"].iloc[0]), int(ev["tick"].iloc[0])),
            (int(ev["machine"].iloc[-1]), int(ev["tick"].iloc[-1])))


QUESTIONS: dict[str, Callable[[lclock.Run], Any]] = {
    "events": lambda r: r.events,
    "messages": lambda r: r.messages,
    "machines": lambda r: r.machines,
    "check": lambda r: r.check(),
    "summary": lambda r: r.summary(),
    "html": lambda r: r._repr_html_(),
    "explorer": lambda r: r.explorer_html(),
    "relation": lambda r: r.relation(*_first_and_last(r)) if len(r.events) else None,
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
