"""A real trial's live display, with the paths its files will have when the user reads them.

The launcher of a real trial writes its run folder inside ``.trial-N.running/`` and says
where ("run folder: ...", "report: ..."); once it has ended, that folder becomes
``trial-N``, so the paths it printed would not exist. Its output passes through here and
every ``<staging>/<run folder>`` in it is printed as the final folder. On a terminal it
goes through a pseudo-terminal, so the launcher still redraws its progress in place.
"""

from __future__ import annotations

import os
import re
import sys
import termios
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

#: How long the end of a trial waits for the last of its output to be copied (seconds).
DRAIN_WAIT = 5.0
#: A line longer than this is passed on in pieces (a path in it may then stay as it was).
MAX_LINE = 1 << 16


@contextmanager
def relabelled_stdout(staging: Path, dest: Path) -> Iterator[int]:
    """A descriptor to give the launcher as its stdout (the caller's copy is closed on the
    way out: the copy ends when the launcher's do)."""
    if sys.stdout.isatty():
        read_fd, write_fd = os.openpty()
        attrs = termios.tcgetattr(write_fd)
        attrs[1] &= ~termios.ONLCR  # its bytes as they are: "\n" stays "\n"
        termios.tcsetattr(write_fd, termios.TCSANOW, attrs)
    else:
        read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    copier = threading.Thread(target=copy_lines, daemon=True,
                              args=(read_fd, sys.stdout.buffer, rewriter(staging, dest)))  # fmt: skip
    copier.start()
    try:
        yield write_fd
    except BaseException:
        os.close(write_fd)  # stopped: the copy goes on by itself while the launcher stops
        raise
    os.close(write_fd)
    copier.join(DRAIN_WAIT)


def rewriter(staging: Path, dest: Path) -> Callable[[bytes], bytes]:
    """``<staging>/<run folder>`` becomes ``dest`` wherever it stands."""
    pattern = re.compile(re.escape(os.fsencode(staging)) + rb"/[^/\s]+")
    final = os.fsencode(dest)
    return lambda data: pattern.sub(lambda _m: final, data)


def copy_lines(fd: int, out: BinaryIO, rewrite: Callable[[bytes], bytes]) -> None:
    """Whole lines from ``fd`` to ``out``, rewritten, until the other ends are closed; it
    owns ``fd``. A reader gone from ``out`` only ends the printing, never the draining (a
    launcher blocked on a full pipe would hang the trial)."""
    pending = b""
    printing = True
    try:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: every slave end of the pseudo-terminal is closed
                chunk = b""
            pending += chunk
            cut = len(pending) if not chunk or len(pending) > MAX_LINE else pending.rfind(b"\n") + 1
            if cut and printing:
                printing = _write(out, rewrite(pending[:cut]))
            pending = pending[cut:]
            if not chunk:
                return
    finally:
        os.close(fd)


def _write(out: BinaryIO, data: bytes) -> bool:
    try:
        out.write(data)
        out.flush()
        return True
    except (OSError, ValueError):  # the reader went away (a closed pipe, a closed terminal)
        return False

