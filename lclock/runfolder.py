"""The run folder (SPEC section 4): its name, its creation, and run.json.

Every writer of run folders (the launcher, the simulator, the TCP vm, merge) goes through
here, so the rules hold everywhere:

- a run folder is created new, never reused: nothing ever writes into (or deletes from) a
  folder this process did not create;
- run.json is always replaced atomically (a spare file is written, then renamed), so a
  reader never sees half a file, whatever kills the writer;
- run.json must end honest even when the disk fills during the run. A spare file with
  room for the final run.json is reserved while there is space, so the last write needs no
  new disk blocks: it is written into the spare and renamed over run.json.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import platform
import secrets
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import psutil

from lclock import SCHEMA_VERSION, __version__
from lclock.core.logline import format_ts
from lclock.logfile import describe_os_error
from lclock.safefile import BadFile, read_json_object

RUN_JSON = "run.json"
SPARE = ".run.json.spare"
#: run.json is small; anything bigger is not ours (and is not read into memory).
MAX_RUN_JSON = 16 << 20


class RunFolderError(Exception):
    """The run folder or its run.json cannot be created, written or read; says why."""


class RunEnd(NamedTuple):
    """How a run ended: run.json's status, exit_code and reason."""

    status: str
    code: int
    reason: str | None


def new_run_id(now: float | None = None) -> str:
    """``20261125T184001Z-3f9a``: the UTC start time and a short random part."""
    t = time.time() if now is None else now
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t)) + "-" + secrets.token_hex(2)


def machine_log_path(run_dir: Path, machine_id: int) -> Path:
    return run_dir / f"machine-{machine_id}.jsonl"


def create_run_dir(output: Path, run_id: str, suffix_if_taken: bool = False) -> Path:
    """Create ``output/run_id`` as a new folder (its parents as needed).

    A folder of that name that exists is never reused: RunFolderError, or with
    ``suffix_if_taken`` the next free ``run_id-2``, ``run_id-3``, ...
    """
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunFolderError(f"cannot create {output}: {describe_os_error(exc)}") from None
    for k in range(1, 10_000):
        name = run_id if k == 1 else f"{run_id}-{k}"
        path = output / name
        try:
            path.mkdir()
            return path
        except FileExistsError:
            if not suffix_if_taken:
                raise RunFolderError(
                    f"{path} exists already; lclock never writes into a run folder it did "
                    "not create (choose another run id, or remove it)"
                ) from None
        except OSError as exc:
            raise RunFolderError(f"cannot create {path}: {describe_os_error(exc)}") from None
    raise RunFolderError(f"{output}: too many run folders named {run_id}")


def remove_new_run_dir(run_dir: Path) -> None:
    """Remove a run folder this process created a moment ago and could not start.

    Only what lclock puts in a run folder is removed, then the folder if it is empty:
    a run that could not start leaves nothing behind, and nothing else is ever deleted.
    """
    for name in (RUN_JSON, SPARE):
        with contextlib.suppress(OSError):
            (run_dir / name).unlink()
    for log in run_dir.glob("machine-*.jsonl"):
        with contextlib.suppress(OSError):
            log.unlink()
    with contextlib.suppress(OSError):
        run_dir.rmdir()


def base_run_json(run_id: str, seed: int, settings: dict[str, Any], started: float) -> dict[str, Any]:
    """The fields every writer of a run folder (launcher, simulator, vm, merge) fills the same way."""
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
        "writer": this_writer(),
    }


def this_writer() -> dict[str, Any]:
    """Who writes this run.json: a reader that finds it still 'running' can then tell a live
    run from one whose writer was killed (a SIGKILL leaves no chance to say so)."""
    try:
        since = round(psutil.Process().create_time(), 2)
    except psutil.Error:
        since = None
    return {"pid": os.getpid(), "host": socket.gethostname(), "since": since}


def writer_gone(meta: dict[str, Any]) -> str | None:
    """Why a run.json that says 'running' will never say more, or None when it may.

    Only a writer on this host can be looked at; a pid now used by another process (its
    start time differs) counts as gone.
    """
    w = meta.get("writer")
    if meta.get("status") != "running" or not isinstance(w, dict):
        return None
    pid, host, since = w.get("pid"), w.get("host"), w.get("since")
    if host != socket.gethostname() or not isinstance(pid, int) or isinstance(pid, bool) \
            or pid <= 0:
        return None
    try:
        alive = psutil.Process(pid)
        if not isinstance(since, (int, float)) or abs(alive.create_time() - since) < 1.0:
            return None
    except (psutil.Error, OverflowError, ValueError):
        pass
    return f"the process that wrote it (pid {pid}) is gone: the run was cut short (killed)"


def _encode(data: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # integers beyond 64 bits from a foreign run: never lose run.json
        import json

        return (json.dumps(data, indent=2, default=str) + "\n").encode()


def _spare_size(body: bytes, machines: int) -> int:
    """Room for the final run.json: it grows by each machine's end figures, whose per-link
    counters (sent, taken, dropped, duplicated: one indented line per peer) grow with n^2."""
    return max(64 << 10, 4 * len(body)) + machines * (2048 + 128 * machines)


def write_run_json(run_dir: Path, data: dict[str, Any], reserve_next: bool = False,
                   must_reserve: bool = False) -> None:
    """Replace run.json atomically; raises RunFolderError (and leaves no part file).

    The bytes go into the spare file reserved by the previous write, if there is one, so
    that a full disk cannot stop the last write. With ``reserve_next`` (a run that is not
    over yet) a new spare is reserved afterwards for the next write; ``must_reserve``
    (the first write of a run) makes a spare that does not fit an error.
    """
    if data.get("status") != "running" and "writer" in data:
        # needed only while running; a finished run.json stays the same bytes wherever made
        data = {k: v for k, v in data.items() if k != "writer"}
    body = _encode(data)
    spare = run_dir / SPARE
    try:
        # The final record is synced to disk; one that the run will replace anyway need
        # not wait for the disk (a run's start would).
        _write_into(spare, body, sync=not reserve_next)
        os.replace(spare, run_dir / RUN_JSON)
    except OSError as exc:
        with contextlib.suppress(OSError):
            spare.unlink()
        raise RunFolderError(
            f"cannot write {run_dir / RUN_JSON}: {describe_os_error(exc)}"
        ) from None
    if reserve_next:
        machines = data.get("machines")
        size = _spare_size(body, len(machines) if isinstance(machines, list) else 0)
        if not reserve_spare(run_dir, size) and must_reserve:
            # the first write of a run: without the spare, a disk that fills during the run
            # could leave run.json saying 'running' for ever
            raise RunFolderError(
                f"no room on the disk of {run_dir.parent} for the run ({size >> 10} kB are "
                "kept aside so that run.json can always be finished)")


def _write_into(path: Path, body: bytes, sync: bool) -> None:
    """Write ``body`` into path from offset 0 (reusing its blocks), cut it there, sync."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    try:
        view = memoryview(body)
        done = 0
        while done < len(view):
            done += os.pwrite(fd, view[done:], done)
        os.ftruncate(fd, len(body))
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def reserve_spare(run_dir: Path, size: int) -> bool:
    """Reserve disk blocks for the next run.json (best effort: False when there is no room)."""
    spare = run_dir / SPARE
    try:
        fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    except OSError:
        return False
    try:
        os.posix_fallocate(fd, 0, size)
        return True
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):  # no fallocate: write zeros
            try:
                os.pwrite(fd, bytes(size), 0)
                return True
            except OSError:
                pass
        os.close(fd)
        fd = -1
        with contextlib.suppress(OSError):
            spare.unlink()
        return False
    finally:
        if fd >= 0:
            os.close(fd)


def read_run_json(run_dir: Path) -> dict[str, Any]:
    """run.json as a dict; RunFolderError for anything that is not a sane JSON object.

    A FIFO or a device in its place is never opened (open would block for ever, or read
    for ever), and a huge file is not ours (``lclock.safefile``).
    """
    path = run_dir / RUN_JSON
    try:
        return read_json_object(path, MAX_RUN_JSON, "run.json")
    except BadFile as exc:
        raise RunFolderError(f"{path}: {exc}") from None


@contextlib.contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """Exclusive access to a run folder shared by several processes (vms on one host).

    The lock is taken on the folder itself, so no lock file is ever left behind.
    """
    fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def update_run_json(
    run_dir: Path, change: Callable[[dict[str, Any] | None], dict[str, Any]]
) -> dict[str, Any]:
    """Read-modify-write run.json under the folder's lock; ``change(None)`` if it is absent."""
    with locked(run_dir):
        try:
            current: dict[str, Any] | None = read_run_json(run_dir)
        except RunFolderError:
            current = None
        data = change(current)
        write_run_json(run_dir, data, reserve_next=data.get("status") == "running")
        return data
