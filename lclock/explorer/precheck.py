"""Refuse a hostile run folder before anything in it is opened.

A FIFO named ``run.json`` or ``machine-1.jsonl`` blocks ``open()`` for ever, a device never
ends, and a run.json that claims a billion machines makes any reader size its tables by
that. ``stat`` first, then read only regular files of sane size and sane claims: one
clear line (exit 2) instead of a hang or a memory blow-up.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

from lclock.explorer.extract import ViewError
from lclock.runfolder import (
    MAX_MACHINES,
    MAX_RUN_JSON,
    RUN_JSON,
    RunFolderError,
    read_run_json,
    run_json_path,
)

_MACHINE_FILE = re.compile(r"^machine-(\d+)\.jsonl$")


def _regular(path: Path, what: str) -> os.stat_result | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ViewError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ViewError(f"{path}: {what} is not a regular file")
    return st


def _claimed(meta: Any) -> int:
    """The largest machine count or id that run.json claims."""
    if not isinstance(meta, dict):
        return 0
    out = 0
    settings = meta.get("settings")
    if isinstance(settings, dict):
        n = settings.get("machines")
        if isinstance(n, int) and not isinstance(n, bool):
            out = n
    machines = meta.get("machines")
    if isinstance(machines, list):
        out = max(out, len(machines))
        for m in machines:
            mid = m.get("id") if isinstance(m, dict) else None
            if isinstance(mid, int) and not isinstance(mid, bool):
                out = max(out, mid)
    return out


def precheck(run_dir: Path) -> None:
    """Raise ViewError when the folder cannot be read safely (or is not a folder)."""
    try:
        st = os.stat(run_dir)
    except OSError as exc:
        raise ViewError(f"{run_dir}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ViewError(f"{run_dir}: not a folder")
    try:
        names = os.listdir(run_dir)
    except OSError as exc:
        raise ViewError(f"{run_dir}: cannot list: {exc.strerror or exc}") from None
    for name in names:
        if _MACHINE_FILE.match(name):
            _regular(run_dir / name, "a machine log")
    meta_st = _regular(run_json_path(run_dir), RUN_JSON)
    if meta_st is None:
        return
    if meta_st.st_size > MAX_RUN_JSON:
        raise ViewError(f"{run_json_path(run_dir)}: {meta_st.st_size:,} bytes is not a run.json "
                        f"(at most {MAX_RUN_JSON:,})")
    try:
        meta = read_run_json(run_dir)
    except RunFolderError:
        return  # the loader reads the logs alone and says why
    n = _claimed(meta)
    if n > MAX_MACHINES:
        raise ViewError(f"{run_json_path(run_dir)}: claims {n:,} machines, more than the "
                        f"{MAX_MACHINES:,} a run can have")
