"""A machine's log file: lines are appended whole or not at all.

Every log line must be complete JSON whatever stops the run, and a full disk is one of the
things that stop it: ``write`` then writes part of a buffer, or fails after an earlier
call wrote part of it. So the file remembers how many bytes ended on a line boundary, and
after a failed or short write it is cut back to that length before the error is raised.
The caller then knows that the log is whole but incomplete, and says so (a failed run,
with the reason), instead of leaving a torn last line behind.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


class LogWriteError(Exception):
    """The log could not be written: the message says why in a few words."""


def describe_os_error(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    if exc.errno == errno.EDQUOT:
        return "disk quota exceeded"
    if exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return str(exc)


class LogFile:
    """An append-only file of whole lines (one ``write`` per call, cut back on failure)."""

    __slots__ = ("path", "fd", "size", "error")

    def __init__(self, path: Path | str, fd: int) -> None:
        self.path = Path(path)
        self.fd = fd
        self.size = os.fstat(fd).st_size
        self.error: str | None = None

    @classmethod
    def create(cls, path: Path | str) -> LogFile:
        """A new log file; an existing file of that name is never overwritten."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o644)
        return cls(path, fd)

    def write(self, data: bytes) -> None:
        """Append ``data`` (whole lines) or, failing that, nothing; raises LogWriteError."""
        if self.error is not None:
            raise LogWriteError(self.error)
        try:
            done = os.write(self.fd, data)
            while done < len(data):  # a short write: the disk is (nearly) full
                n = os.write(self.fd, memoryview(data)[done:])
                if n <= 0:  # pragma: no cover - regular files do not do this
                    raise OSError(errno.EIO, "write made no progress")
                done += n
        except OSError as exc:
            self.error = describe_os_error(exc)
            self._cut_back()
            raise LogWriteError(self.error) from None
        self.size += done

    def _cut_back(self) -> None:
        """Back to the last line boundary (appends go on from there: O_APPEND)."""
        try:
            os.ftruncate(self.fd, self.size)
        except OSError:
            pass  # nothing more can be done: the bytes past self.size are at most one part line

    def detached(self) -> bool:
        """True when the file is no longer in any folder (its run folder was deleted)."""
        try:
            return os.fstat(self.fd).st_nlink == 0
        except OSError:
            return True

    def close(self) -> None:
        if self.fd >= 0:
            try:
                os.close(self.fd)
            finally:
                self.fd = -1
