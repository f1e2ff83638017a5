"""The run folder (SPEC section 4): its name, run.json, and the machine log paths.

run.json is always replaced atomically (write a temporary file, then rename), so a reader
never sees half a file, whatever kills the writer.
"""

from __future__ import annotations

import os
import platform
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from lclock import SCHEMA_VERSION, __version__
from lclock.logfmt import format_ts


def new_run_id(now: float | None = None) -> str:
    """``20261125T184001Z-3f9a``: the UTC start time and a short random part."""
    t = time.time() if now is None else now
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t)) + "-" + secrets.token_hex(2)


def machine_log_path(run_dir: Path, machine_id: int) -> Path:
    return run_dir / f"machine-{machine_id}.jsonl"


def write_run_json(run_dir: Path, data: dict[str, Any]) -> None:
    path = run_dir / "run.json"
    tmp = run_dir / f".run.json.{os.getpid()}.tmp"
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))
    os.replace(tmp, path)


def read_run_json(run_dir: Path) -> dict[str, Any]:
    return orjson.loads((run_dir / "run.json").read_bytes())


def base_run_json(run_id: str, seed: int, settings: dict[str, Any], started: float) -> dict[str, Any]:
    """The fields every writer of a run folder (launcher, simulator, merge) fills the same way."""
    return {
        "schema": SCHEMA_VERSION,
        "run_id": run_id,
        "status": "running",
        "started_at": format_ts(started),
        "ended_at": None,
        "exit_code": None,
        "reason": None,
        "seed": seed,
        "settings": settings,
        "machines": [],
        "command": list(sys.argv),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "lclock_version": __version__,
    }
