"""run.json read by its one owner (lclock.runfolder) from a folder anyone may have made,
and the record of a run's end (its message balance) computed from machine entries."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lclock.analysis.folder import Problem
from lclock.analysis.folder import read_run_json as read_for_analysis
from lclock.cluster.status import summarize
from lclock.runfolder import (
    MAX_RUN_JSON,
    RunEnd,
    RunFolderError,
    balance_of,
    has_run_json,
    read_run_json,
    record_end,
)


def refused(folder: Path, rule: str, *texts: str) -> RunFolderError:
    with pytest.raises(RunFolderError) as exc:
        read_run_json(folder)
    assert exc.value.rule == rule
    for t in texts:
        assert t in exc.value.reason, exc.value.reason
    assert str(folder / "run.json") in str(exc.value)
    return exc.value


@pytest.mark.timeout(10)  # a FIFO opened for reading would block for ever
def test_a_fifo_is_never_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "run.json")
    assert has_run_json(tmp_path)
    refused(tmp_path, "meta-unreadable", "a FIFO, not a regular file")


@pytest.mark.timeout(10)  # /dev/zero never ends
def test_a_symlink_to_dev_zero_is_never_read(tmp_path: Path) -> None:
    (tmp_path / "run.json").symlink_to("/dev/zero")
    refused(tmp_path, "meta-unreadable", "leads out of the run folder")


@pytest.mark.timeout(10)
def test_a_link_inside_the_folder_to_a_device_is_refused_too(tmp_path: Path) -> None:
    (tmp_path / "dev").symlink_to("/dev/zero")
    (tmp_path / "run.json").symlink_to(tmp_path / "dev")
    refused(tmp_path, "meta-unreadable")


def test_a_huge_run_json_is_not_read(tmp_path: Path) -> None:
    with open(tmp_path / "run.json", "wb") as fh:  # sparse: no disk used
        fh.truncate(MAX_RUN_JSON + 1)
    refused(tmp_path, "meta-unreadable", f"{MAX_RUN_JSON + 1} bytes", "not read")


@pytest.mark.parametrize(("content", "rule", "text"), [
    (b"[1, 2]", "meta-type", "not a JSON object (list)"),
    (b"42", "meta-type", "not a JSON object (int)"),
    (b"null", "meta-type", "not a JSON object (NoneType)"),
    (b"{not json", "meta-unreadable", "unreadable"),
    (b"\xff\xfe", "meta-unreadable", "unreadable"),
    (b"", "meta-unreadable", "unreadable"),
    (b'{"a": NaN}', "meta-unreadable", "unreadable"),
])
def test_what_is_not_an_object_is_refused(tmp_path: Path, content: bytes, rule: str,
                                          text: str) -> None:
    (tmp_path / "run.json").write_bytes(content)
    refused(tmp_path, rule, text)


def test_missing_is_its_own_rule(tmp_path: Path) -> None:
    assert not has_run_json(tmp_path)
    refused(tmp_path, "meta-missing", "missing")
    problems: list[Problem] = []
    assert read_for_analysis(tmp_path, problems) == {}
    assert [(p.file, p.rule, p.severity) for p in problems] == [("run.json", "meta-missing", "warning")]


def test_wrong_types_are_problems_for_the_analysis_never_exceptions(tmp_path: Path) -> None:
    from lclock.analysis.folder import run_facts

    (tmp_path / "run.json").write_bytes(
        b'{"status": 7, "seed": "x", "settings": [], "machines": {"id": 1}, "messages": "many"}')
    problems: list[Problem] = []
    meta = read_for_analysis(tmp_path, problems)
    assert problems == []  # a JSON object: read
    run_facts(meta, problems)
    assert {p.rule for p in problems} >= {"meta-type"}


# -- the record of a run's end -----------------------------------------------------------------

def entry(mid: int, sent: dict[str, int], taken: dict[str, int], **kw: object) -> dict[str, object]:
    return {"id": mid, "reason": "duration", "exit_code": 0, "sent_to": sent, "taken_from": taken,
            **kw}


def test_record_end_gives_every_run_its_balance() -> None:
    machines = [entry(1, {"2": 3}, {"2": 1}), entry(2, {"1": 1}, {"1": 3})]
    data: dict[str, object] = {"status": "running"}
    record_end(data, RunEnd("completed", 0, "duration"), 0.0, machines)
    assert data["messages"] == {"sent": 4, "taken": 4, "lost": 0}
    assert (data["status"], data["exit_code"], data["reason"]) == ("completed", 0, "duration")
    assert data["ended_at"] == "1970-01-01T00:00:00.000000Z"


def test_a_loss_is_named_by_link() -> None:
    got = balance_of([entry(1, {"2": 5}, {}), entry(2, {}, {"1": 3})])
    assert got["lost"] == 2 and got["lost_by_link"] == {"1->2": 2}


def test_a_machine_without_figures_leaves_its_links_unbalanced() -> None:
    got = balance_of([entry(1, {"2": 5}, {}), {"id": 2, "reason": None}])
    assert got["unbalanced_links"] == ["1->2"] and got["lost"] == 0


def test_a_tcp_run_that_lost_messages_is_not_completed() -> None:
    machines = [entry(1, {"2": 5}, {"2": 0}, status="completed", ended_at="x"),
                entry(2, {"1": 0}, {"1": 4}, status="completed", ended_at="x")]
    out = summarize(machines, 2)
    assert out["status"] == "failed" and out["exit_code"] == 1
    assert "1 message lost (1->2: 1)" in out["reason"]
    machines[1]["taken_from"] = {"1": 5}
    out = summarize(machines, 2)
    assert out["status"] == "completed" and out["messages"]["lost"] == 0
