"""``lclock merge`` on folders from other hosts (issue 9 section 6): it trusts nothing in
them, never writes outside ``--output``, never over a folder it did not create, and a bad
folder is one clear line with exit status 2."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from analysis_fixtures import make_run
from conftest import started

REPO = Path(__file__).resolve().parents[1]
RUN_ID = "20260101T000000Z-abcd"


def merge(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    with started([sys.executable, "-m", "lclock", "merge", *args], REPO) as p:
        out, err = p.communicate(timeout=timeout)
    return p.returncode, out.decode(), err.decode()


def hosts(tmp: Path, run_id: Any = RUN_ID, name: str = "part", **meta: Any) -> list[Path]:
    """Three host folders of one run, one machine log each, as three ``lclock vm`` leave them."""
    src = make_run(tmp / "src", duration=5.0, run_id=str(run_id))
    base = json.loads((src / "run.json").read_text())
    base.update(run_id=run_id, **meta)
    out = []
    for i in (1, 2, 3):
        d = tmp / f"host{i}" / name
        d.mkdir(parents=True)
        (d / f"machine-{i}.jsonl").write_bytes((src / f"machine-{i}.jsonl").read_bytes())
        data = dict(base)
        data["machines"] = [dict(m, status="completed", ended_at="2026-01-01T00:00:05.000000Z")
                            for m in base["machines"]]
        (d / "run.json").write_text(json.dumps(data))
        out.append(d)
    return out


def refused(rc: int, err: str, *texts: str) -> None:
    assert rc == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for t in texts:
        assert t in err, err


def test_a_good_merge_still_works(tmp_path: Path) -> None:
    parts = hosts(tmp_path)
    rc, out, err = merge(*map(str, parts), "--output", str(tmp_path / "all"))
    assert rc == 0, err
    dest = tmp_path / "all" / RUN_ID
    assert sorted(p.name for p in dest.iterdir()) == ["machine-1.jsonl", "machine-2.jsonl",
                                                      "machine-3.jsonl", "run.json"]
    for i, part in enumerate(parts, 1):
        assert (dest / f"machine-{i}.jsonl").read_bytes() == (part / f"machine-{i}.jsonl").read_bytes()
    assert [m["id"] for m in json.loads((dest / "run.json").read_text())["machines"]] == [1, 2, 3]


@pytest.mark.parametrize("run_id", ["../../x", "..", ".", "/tmp/abs", "a/b", "", ".hidden",
                                    "x" * 300, 7, None, ["a"], "a\nb", "é"])
def test_run_id_must_be_a_plain_name(tmp_path: Path, run_id: Any) -> None:
    parts = hosts(tmp_path, run_id=run_id)
    out = tmp_path / "deep" / "out"
    rc, _, err = merge(*map(str, parts), "--output", str(out))
    refused(rc, err, "run_id")
    assert not out.exists()
    assert not (tmp_path / "x").exists() and not (tmp_path / "deep" / "x").exists()


def test_run_id_flag_must_be_a_plain_name(tmp_path: Path) -> None:
    parts = hosts(tmp_path)
    rc, _, err = merge(*map(str, parts), "--output", str(tmp_path / "o"), "--run-id", "../escape")
    refused(rc, err, "--run-id: run_id '../escape' is not a run id")
    assert not (tmp_path / "escape").exists()


@pytest.mark.parametrize(("meta", "text"), [
    ({"settings": {"machines": 10**12}}, "settings.machines 1000000000000 is not a machine count"),
    ({"settings": {"machines": 10**30}}, "is not a machine count"),
    ({"settings": {"machines": "3"}}, "settings.machines '3' is not a machine count"),
    ({"settings": []}, "settings is not an object"),
    ({"machines": {"id": 1}}, "machines is not a list"),
    ({"machines": [{"id": "1"}]}, "has no machine id from 1 to 3"),
    ({"machines": [{"id": 10**30}]}, "has no machine id from 1 to 3"),
    ({"machines": [{"id": 1, "status": 5}]}, "machine 1: status is not a string"),
    ({"machines": [7]}, "has no machine id"),
])
def test_types_are_checked(tmp_path: Path, meta: dict[str, Any], text: str) -> None:
    parts = hosts(tmp_path)
    for part in parts:
        data = json.loads((part / "run.json").read_text())
        if "settings" in meta and isinstance(meta["settings"], dict):
            data["settings"].update(meta["settings"])
        else:
            data.update(meta)
        (part / "run.json").write_text(json.dumps(data))
    rc, _, err = merge(*map(str, parts), "--output", str(tmp_path / "o"))
    refused(rc, err, text)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("content", [b"[1]", b"", b"\xff\xfe", b"[" * 100_000, b'{"a": 1e999}'])
def test_unreadable_run_json(tmp_path: Path, content: bytes) -> None:
    parts = hosts(tmp_path)
    (parts[1] / "run.json").write_bytes(content)
    rc, _, err = merge(*map(str, parts), "--output", str(tmp_path / "o"))
    refused(rc, err, "run.json")


def test_fifo_and_links_out_are_refused_not_read(tmp_path: Path) -> None:
    parts = hosts(tmp_path)
    (parts[0] / "machine-1.jsonl").unlink()
    os.mkfifo(parts[0] / "machine-1.jsonl")
    rc, _, err = merge(*map(str, parts), "--output", str(tmp_path / "o"), timeout=20)
    refused(rc, err, "machine-1.jsonl: a FIFO, not a regular file")
    (parts[0] / "machine-1.jsonl").unlink()
    (parts[0] / "machine-1.jsonl").symlink_to("/etc/passwd")
    rc, _, err = merge(*map(str, parts), "--output", str(tmp_path / "o"))
    refused(rc, err, "a symbolic link that leads out of the run folder")
    os.mkfifo(tmp_path / "fifo")
    (parts[1] / "run.json").unlink()
    (parts[1] / "run.json").symlink_to(tmp_path / "fifo")
    rc, _, err = merge(*map(str, parts), "--output", str(tmp_path / "o"), timeout=20)
    refused(rc, err, "run.json")
    assert not (tmp_path / "o").exists()


def test_never_over_a_folder_it_did_not_create(tmp_path: Path) -> None:
    parts = hosts(tmp_path, name=RUN_ID)
    mine = tmp_path / "o" / RUN_ID
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("keep me")
    rc, _, err = merge(*map(str, parts), "--output", str(tmp_path / "o"))
    refused(rc, err, "exists already")
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    # merging a folder into its own parent would rewrite it: refused too, nothing changed
    before = (parts[0] / "run.json").read_bytes()
    rc, _, err = merge(str(parts[0].parent), *map(str, parts[1:]), "--output",
                       str(parts[0].parent))
    assert rc == 2
    assert (parts[0] / "run.json").read_bytes() == before
    assert not list(tmp_path.rglob(".*.merge-*"))  # no temporary folder left


def test_merge_lists_what_every_host_applied_once(tmp_path: Path) -> None:
    """Each host's vms record the faults they applied; the merged run.json has them all (it
    kept the first host's alone: check then missed the other hosts' pauses and crashes)."""
    from lclock.cluster.merge_cmd import merge as merge_folders

    cut = {"kind": "partition", "groups": [[1], [2, 3]], "at": 1.0}
    applied = [[cut, {"kind": "pause", "machine": 1, "at": 2.0}], [cut],
               [cut, {"kind": "crash", "machine": 3, "at": 3.0}]]
    parts = hosts(tmp_path)
    for part, mine in zip(parts, applied, strict=True):
        data = json.loads((part / "run.json").read_text())
        data["faults"] = {"plan": {}, "applied": mine}
        (part / "run.json").write_text(json.dumps(data))
    dest = merge_folders(parts, tmp_path / "all")
    got = json.loads((dest / "run.json").read_text())["faults"]["applied"]
    assert got == [cut, applied[0][1], applied[2][1]], got
