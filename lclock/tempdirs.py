"""Temporary folders named after the process that made them, and the sweep of those whose
process is gone.

A process killed by a signal it does not handle (SIGTERM to a script that called
``lclock.simulate``, SIGKILL to ``lclock grade``) runs no clean-up: its temporary folders
stay. With its pid in their names, the next process of the same kind removes them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def own_prefix(kind: str) -> str:
    """``lclock-KIND-<pid>-``: the names of this process's temporary folders of ``kind``."""
    return f"lclock-{kind}-{os.getpid()}-"


def made(kind: str) -> Path:
    """A new temporary folder of ``kind`` of this process, after sweeping what dead
    processes left of that kind."""
    sweep(Path(tempfile.gettempdir()), kind)
    return Path(tempfile.mkdtemp(prefix=own_prefix(kind)))


def sweep(tmp: Path, kind: str) -> None:
    """Remove the folders ``lclock-KIND-<pid>-...`` in ``tmp`` whose process is gone (ours
    only: never a link, never another user's)."""
    import psutil

    for path in tmp.glob(f"lclock-{kind}-*-*"):
        pid = path.name.removeprefix(f"lclock-{kind}-").split("-")[0]
        try:
            mine = path.lstat().st_uid == os.geteuid() and path.is_dir() and not path.is_symlink()
        except OSError:
            continue
        if mine and pid.isdigit() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
