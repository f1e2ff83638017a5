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
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

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

    def same_file(now: os.stat_result) -> str | None:
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            return "it was replaced while being opened"
        _check(now, limit, what)
        return None

    fd = open_checked(path, same_file)
    try:
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


def open_checked(path: Path, refuse: Callable[[os.stat_result], str | None]) -> int:
    """A descriptor of ``path`` for reading, opened non-blocking (a FIFO swapped in after a
    check cannot block us) and judged on the open descriptor by ``refuse`` (a reason, or
    None). BadFile says why not; the descriptor is the caller's to close."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise BadFile(f"cannot open it: {os_reason(exc)}") from None
    try:
        why = refuse(os.fstat(fd))
        if why:
            raise BadFile(why)
        return fd
    except BaseException:
        os.close(fd)
        raise


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


# -- a file that a run folder names -----------------------------------------------------------

def _folder_kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` (resolved) lies inside the folder ``root`` (resolved)."""
    try:
        target = path.resolve(strict=True)
        base = root.resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop (RuntimeError before 3.13)
        return False
    return target == base or base in target.parents


def open_regular(path: Path, root: Path) -> IO[bytes]:
    """Open a file the run folder ``root`` names, for reading, only if it is a plain file of it.

    Opened non-blocking and checked on the open descriptor, so a FIFO swapped in after a
    check can still not block us, and a symbolic link may only lead to a file inside
    ``root``: a downloaded folder must not make a report quote the reader's own files.
    """
    try:
        if path.is_symlink() and not inside(path, root):
            raise BadFile("a symbolic link that leads out of the run folder: not read")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise BadFile(f"unreadable: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BadFile(f"{_folder_kind(st.st_mode)}, not a regular file: not read")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise


def read_small(path: Path, root: Path, limit: int, what: str) -> bytes:
    """The whole of a small file of the run folder ``root``, refusing one beyond ``limit``."""
    with open_regular(path, root) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > limit:
            raise BadFile(f"{size} bytes, more than the {limit >> 20} MiB a {what} may have: "
                          "not read")
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise BadFile(f"more than the {limit >> 20} MiB a {what} may have: not read")
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(data: bytes) -> Any:
    """A JSON document: orjson, or for what orjson will not read (integers beyond 64 bits,
    numbers beyond a double) Python's own parser, so each such value becomes a finding of
    its own instead of the whole file being unreadable. ValueError names the problem."""
    import json

    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        first = exc
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise ValueError(str(first)) from None
