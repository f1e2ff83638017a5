"""Writing an output file a user names: whole or not at all, and never a device replaced.

A report, an export or an explorer page is written to a spare file beside its target and
renamed over it, so a reader (or a failed write: a full disk, Ctrl-C) never finds half a
file, and no ``.tmp`` is left behind. But a target that is not a regular file (``-o
/dev/null``, a FIFO, a terminal) is written into as it is: renaming over it would replace
the device itself, for every program on the machine.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any


def _is_special(path: Path) -> bool:
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False  # absent (or unreadable): a new file


@contextlib.contextmanager
def replacing(path: Path, mode: str = "wb", **kw: Any) -> Iterator[IO[Any]]:
    """An open file whose content becomes ``path`` when the block ends without an error."""
    if _is_special(path):
        with open(path, mode, **kw) as fh:  # noqa: PTH123 - a device or a FIFO: write into it
            yield fh
        return
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, mode.replace("w", "x"), **kw) as fh:  # noqa: PTH123
            yield fh
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def write_bytes(path: Path, data: bytes) -> None:
    with replacing(path) as fh:
        fh.write(data)


def write_with(path: Path, writer: Callable[[IO[str]], Any], **kw: Any) -> Any:
    """Text written by ``writer(fh)``; returns what it returns."""
    with replacing(path, "w", **kw) as fh:
        return writer(fh)
