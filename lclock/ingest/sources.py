"""Opening and reading the logs a user names, with bounds: never a FIFO, a device or a file
without end, never a whole line of gigabytes in memory.

``open()`` on a FIFO blocks until a writer comes; ``/dev/zero`` never ends; a path checked with
``stat`` may be swapped before it is opened. So a log is opened non-blocking, checked on the
open descriptor (a regular file of a sane size), and read line by line up to a bound on the
file and on each line. (``lclock.safefile`` does the same for small files read whole.)
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from lclock.safefile import BadFile, kind_of, open_checked, os_reason

MAX_LOG_BYTES = 2 << 30
MAX_LINE_BYTES = 4 << 20  # a longer line is reported, not read: no event is that long
_BLOCK = 1 << 16


class BadLog(Exception):
    """A log cannot be read; the text says why (the caller names the file)."""


def unreadable(p: Path) -> str | None:
    """Why a log cannot be read, checked before anything is done (the same is checked again
    on the open file)."""
    try:
        st = p.stat()
    except FileNotFoundError:
        return "no such file"
    except (OSError, ValueError) as exc:
        return f"cannot read: {os_reason(exc) if isinstance(exc, OSError) else exc}"
    return _refusal(st) or (None if os.access(p, os.R_OK) else "not readable")


def _refusal(st: os.stat_result) -> str | None:
    if stat.S_ISDIR(st.st_mode):
        return "a folder, not a log file"
    if not stat.S_ISREG(st.st_mode):
        return f"not a regular file ({kind_of(st.st_mode)})"
    if st.st_size > MAX_LOG_BYTES:
        return f"{st.st_size} bytes: larger than lclock import reads ({MAX_LOG_BYTES} bytes)"
    return None


def open_log(p: Path) -> BinaryIO:
    """The log opened for reading, never blocking on a FIFO swapped in after the check."""
    try:
        fd = open_checked(p, _refusal)
    except BadFile as exc:
        raise BadLog(str(exc)) from None
    try:
        return os.fdopen(fd, "rb", buffering=_BLOCK)
    except BaseException:
        os.close(fd)
        raise


def read_lines(fh: BinaryIO, too_long: Callable[[int], None]) -> Iterator[str]:
    """The file's lines as text (only ``\\n`` ends one; bad UTF-8 replaced, not fatal).

    A line beyond ``MAX_LINE_BYTES`` is skipped to its end and given as empty (so the line
    numbers stay right), and ``too_long`` called with its number, for the report. ``BadLog`` if
    the file grows beyond ``MAX_LOG_BYTES`` while it is read."""
    total = 0
    num = 0
    while True:
        raw = _readline(fh, MAX_LINE_BYTES + 1)
        if not raw:
            return
        num += 1
        total += len(raw)
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            total += _skip_line(fh)
            too_long(num)
            raw = b"\n"
        if total > MAX_LOG_BYTES:
            raise BadLog(f"grew beyond {MAX_LOG_BYTES} bytes while being read")
        yield raw.decode("utf-8", errors="replace")


def _readline(fh: BinaryIO, limit: int) -> bytes:
    try:
        return fh.readline(limit)
    except OSError as exc:
        raise BadLog(f"cannot read it: {os_reason(exc)}") from None


def _skip_line(fh: BinaryIO) -> int:
    """Read past the rest of an overlong line; the bytes skipped."""
    skipped = 0
    while skipped <= MAX_LOG_BYTES:
        chunk = _readline(fh, _BLOCK)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            break
    return skipped
