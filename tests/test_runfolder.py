"""Log files and run folders: whole lines, honest run.json, nothing reused or left half-written."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import orjson
import pytest

from lclock import logfile
from lclock.logfile import LogFile, LogWriteError
from lclock.runfolder import (
    SPARE,
    RunFolderError,
    create_run_dir,
    read_run_json,
    remove_new_run_dir,
    reserve_spare,
    update_run_json,
    write_run_json,
)


def test_log_lines_are_appended_whole(tmp_path: Path) -> None:
    log = LogFile.create(tmp_path / "m.jsonl")
    log.write(b'{"a":1}\n')
    log.write(b'{"b":2}\n{"c":3}\n')
    log.close()
    assert (tmp_path / "m.jsonl").read_bytes() == b'{"a":1}\n{"b":2}\n{"c":3}\n'


def test_a_log_file_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "m.jsonl").write_bytes(b"theirs\n")
    with pytest.raises(FileExistsError):
        LogFile.create(tmp_path / "m.jsonl")
    assert (tmp_path / "m.jsonl").read_bytes() == b"theirs\n"


def test_a_full_disk_leaves_the_log_on_a_line_boundary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write cut short and then refused (ENOSPC) is cut back: no torn last line."""
    log = LogFile.create(tmp_path / "m.jsonl")
    log.write(b'{"first":1}\n')
    real_write = os.write
    calls = []

    def short_then_full(fd: int, data: bytes | memoryview) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data)[:5])  # part of the line
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(logfile.os, "write", short_then_full)
    with pytest.raises(LogWriteError, match="no space left on the device"):
        log.write(b'{"second":2}\n')
    monkeypatch.undo()
    with pytest.raises(LogWriteError):  # the log stays failed: nothing more is appended
        log.write(b'{"third":3}\n')
    log.close()
    assert (tmp_path / "m.jsonl").read_bytes() == b'{"first":1}\n'


def test_detached_notices_a_deleted_run_folder(tmp_path: Path) -> None:
    log = LogFile.create(tmp_path / "m.jsonl")
    assert not log.detached()
    (tmp_path / "m.jsonl").unlink()
    assert log.detached()
    log.close()


def test_run_folders_are_created_new(tmp_path: Path) -> None:
    a = create_run_dir(tmp_path / "out", "sim-1-abc")
    (a / "machine-1.jsonl").write_bytes(b"x\n")
    with pytest.raises(RunFolderError, match="never writes into a run folder"):
        create_run_dir(tmp_path / "out", "sim-1-abc")
    b = create_run_dir(tmp_path / "out", "sim-1-abc", suffix_if_taken=True)
    assert b.name == "sim-1-abc-2"
    assert (a / "machine-1.jsonl").read_bytes() == b"x\n"


def test_run_json_goes_through_the_spare(tmp_path: Path) -> None:
    write_run_json(tmp_path, {"status": "running"}, reserve_next=True)
    spare = tmp_path / SPARE
    assert spare.stat().st_size >= 64 << 10  # room reserved for the final write
    write_run_json(tmp_path, {"status": "completed", "machines": [1, 2, 3]})
    assert not spare.exists()
    assert read_run_json(tmp_path) == {"status": "completed", "machines": [1, 2, 3]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def test_run_json_write_failure_leaves_no_part_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lclock import runfolder

    write_run_json(tmp_path, {"status": "running"})

    def full(*_a: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runfolder.os, "pwrite", full)
    with pytest.raises(RunFolderError, match="no space left"):
        write_run_json(tmp_path, {"status": "completed"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]
    assert read_run_json(tmp_path) == {"status": "running"}


@pytest.mark.parametrize("content", [b"[1, 2]", b"{not json", b"\xff\xfe"])
def test_read_run_json_refuses_what_is_not_a_run_json(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "run.json").write_bytes(content)
    with pytest.raises(RunFolderError):
        read_run_json(tmp_path)


def test_read_run_json_never_opens_a_fifo(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "run.json")
    with pytest.raises(RunFolderError, match="a FIFO, not a regular file"):
        read_run_json(tmp_path)


def test_update_run_json_is_a_locked_read_modify_write(tmp_path: Path) -> None:
    def add(k: int):  # noqa: ANN202
        def change(data: dict | None) -> dict:
            data = data or {"machines": []}
            data["machines"].append(k)
            return data
        return change

    for k in (1, 2, 3):
        update_run_json(tmp_path, add(k))
    assert orjson.loads((tmp_path / "run.json").read_bytes())["machines"] == [1, 2, 3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]  # no lock file left


def test_remove_new_run_dir_removes_only_lclock_files(tmp_path: Path) -> None:
    d = create_run_dir(tmp_path, "r")
    write_run_json(d, {"status": "running"}, reserve_next=True)
    (d / "machine-1.jsonl").write_bytes(b"")
    remove_new_run_dir(d)
    assert not d.exists()
    d = create_run_dir(tmp_path, "s")
    (d / "notes.txt").write_text("mine")
    remove_new_run_dir(d)
    assert (d / "notes.txt").read_text() == "mine"


def test_reserve_spare_reports_no_room(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lclock import runfolder

    def full(*_a: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runfolder.os, "posix_fallocate", full)
    assert reserve_spare(tmp_path, 1 << 16) is False
    assert not (tmp_path / SPARE).exists()


def test_output_to_a_device_writes_into_it_never_replaces_it(tmp_path: Path) -> None:
    """``-o /dev/null`` once replaced /dev/null with a regular file (rename over it)."""
    from lclock.outfile import write_bytes

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    import threading

    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_bytes(fifo, b"hello\n")
    reader.join(5)
    assert got == [b"hello\n"] and fifo.is_fifo()
    before = os.stat(os.devnull)
    write_bytes(Path(os.devnull), b"nothing\n")
    after = os.stat(os.devnull)
    assert (after.st_rdev, after.st_ino) == (before.st_rdev, before.st_ino)
    write_bytes(tmp_path / "out.txt", b"a\n")
    write_bytes(tmp_path / "out.txt", b"b\n")
    assert (tmp_path / "out.txt").read_bytes() == b"b\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt", "pipe"]
