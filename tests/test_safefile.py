"""lclock.safefile on the cases a real run cannot stage as root: no permission, a path swapped
between the stat and the open, a file that grows while it is read."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from lclock import safefile
from lclock.safefile import BadFile, read_small_file


def test_reads_a_small_regular_file(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_bytes(b"machines = 3\n")
    assert read_small_file(tmp_path / "s.toml", 100) == b"machines = 3\n"


def test_devnull_only_when_allowed(tmp_path: Path) -> None:
    assert read_small_file(Path(os.devnull), 100, allow_devnull=True) == b""
    with pytest.raises(BadFile, match="character device"):
        read_small_file(Path(os.devnull), 100)


def test_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "s.toml").write_text("x = 1\n")

    def denied(*_a: object, **_k: object) -> int:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(safefile.os, "open", denied)
    with pytest.raises(BadFile, match="cannot open it: permission denied"):
        read_small_file(tmp_path / "s.toml", 100, "settings file")


def test_swapped_between_stat_and_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A regular file at stat() time, a FIFO by open(): the descriptor is checked again."""
    target = tmp_path / "s.toml"
    target.write_text("x = 1\n")
    real_open = os.open

    def swap(path: str, flags: int, *a: int) -> int:
        os.unlink(path)
        os.mkfifo(path)
        return real_open(path, flags, *a)  # non-blocking: returns at once

    monkeypatch.setattr(safefile.os, "open", swap)
    with pytest.raises(BadFile, match="replaced while being opened|named pipe"):
        read_small_file(target, 100)


def test_grows_while_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "s.toml"
    target.write_bytes(b"x" * 10)
    monkeypatch.setattr(safefile.os, "read", lambda _fd, n: b"y" * n)  # never ends
    with pytest.raises(BadFile, match="grew beyond 100 bytes"):
        read_small_file(target, 100)
