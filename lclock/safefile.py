"""Read a small file that a user named, without ever blocking or reading for ever.

``open()`` on a FIFO blocks until a writer comes (and a process blocked there cannot act on
SIGTERM), ``/dev/zero`` never ends, a device may have side effects when opened. So the path
is checked with ``stat`` first (a regular file of a sane size), opened non-blocking, checked
again on the open descriptor (the path may have been swapped in between), and read up to a
bound. Every refusal is a :class:`BadFile` whose text says what the path is instead.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

import orjson

_KINDS = (
    (stat.S_ISREG, "a file"),
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)

_ERRNO_TEXT = {
    errno.ENOENT: "no such file",
    errno.ELOOP: "too many levels of symbolic links (a symlink loop?)",
    errno.ENAMETOOLONG: "the path, or a name in it, is too long",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}


class BadFile(Exception):
    """The path cannot be read as a small regular file; the text says why (without the path)."""


def kind_of(mode: int) -> str:
    """What a file is, in words ("a named pipe (FIFO)")."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "a special file"


def os_reason(exc: OSError) -> str:
    if exc.errno in _ERRNO_TEXT:
        return _ERRNO_TEXT[exc.errno]
    return exc.strerror or str(exc)


def _is_devnull(st: os.stat_result) -> bool:
    """``/dev/null`` (by device number, under any name): the usual way to say "no file"."""
    try:
        null = os.stat(os.devnull)
    except OSError:  # pragma: no cover - no /dev/null
        return False
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == null.st_rdev


def read_small_file(path: Path, limit: int, what: str = "file", allow_devnull: bool = False) -> bytes:
    """The bytes of ``path``, which must be a regular file of at most ``limit`` bytes.

    ``what`` names the file in a refusal ("is a named pipe (FIFO), not a settings file").
    With ``allow_devnull``, ``/dev/null`` reads as empty.
    """
    try:
        st = os.stat(path)
    except ValueError:  # an embedded NUL byte
        raise BadFile("the path contains a NUL byte") from None
    except FileNotFoundError:
        if os.path.islink(path):
            raise BadFile("a symbolic link to nothing") from None
        raise BadFile(f"no such {what}") from None
    except OSError as exc:
        raise BadFile(os_reason(exc)) from None
    if allow_devnull and _is_devnull(st):
        return b""
    _check(st, limit, what)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise BadFile(f"cannot open it: {os_reason(exc)}") from None
    try:
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            raise BadFile("it was replaced while being opened")
        _check(now, limit, what)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise BadFile(f"cannot read it: {os_reason(exc)}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise BadFile(f"grew beyond {_size(limit)} while being read; a {what} is smaller")
    return b"".join(chunks)


def _check(st: os.stat_result, limit: int, what: str) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise BadFile(f"is {kind_of(st.st_mode)}, not a {what}")
    if st.st_size > limit:
        raise BadFile(f"is {_size(st.st_size)}; a {what} is at most {_size(limit)}")


def _size(n: int) -> str:
    if n >= 10**6:
        return f"{n / 10**6:.3g} MB"
    if n >= 10**3:
        return f"{n / 10**3:.3g} kB"
    return f"{n} bytes"


def json_object(data: bytes) -> dict[str, Any]:
    """``data`` as a JSON object; BadFile (saying what it is instead) otherwise."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadFile(f"not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise BadFile("not a JSON object")
    return obj


def read_json_object(path: Path, limit: int, what: str = "file") -> dict[str, Any]:
    """A small JSON file holding one object (run.json, experiment.json), read safely."""
    return json_object(read_small_file(path, limit, what))
