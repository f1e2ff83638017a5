"""The run folder (SPEC section 4): its name, its creation, and run.json.

This module owns run.json: its path, its reading (with the bounds a hostile folder needs),
its writing and the record of a run's end. Every writer of run folders (the launcher, the
simulator, the TCP vm, merge, import) and every reader (the analysis, the explorer,
experiments, compare) goes through here, so the rules hold everywhere:

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
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from lclock import SCHEMA_VERSION, __version__
from lclock.core.logline import format_ts
from lclock.errors import BadInput
from lclock.logfile import describe_os_error
from lclock.safefile import BadFile, parse_json, read_small

RUN_JSON = "run.json"
SPARE = ".run.json.spare"
#: run.json is small; anything bigger is not ours (and is not read into memory). The
#: largest lclock writes (128 machines, per-link counters: n^2 lines) is about 3 MB.
MAX_RUN_JSON = 16 << 20
#: The most machines a run folder may hold for any reader (the analysis, the explorer,
#: merge, import): vector clocks and per-machine tables scale with it, so a folder claiming
#: more is not believed. lclock itself *runs* at most ``settings.MAX_MACHINES`` (128, one
#: process each); a folder imported from elsewhere may hold more.
MAX_MACHINES = 1024


class RunFolderError(BadInput):
    """The run folder or its run.json cannot be created, written or read; says why (the
    CLI prints it as one line and exits 2 where no command handled it first).

    ``reason`` is the text without the path (for a reader that names the file itself),
    ``rule`` the kind of trouble with run.json: ``meta-missing``, ``meta-unreadable`` (not
    a small regular JSON file), ``meta-type`` (JSON, but not an object).
    """

    def __init__(self, text: str, reason: str | None = None, rule: str = "meta-unreadable") -> None:
        super().__init__(text)
        self.reason = reason if reason is not None else text
        self.rule = rule


class RunEnd(NamedTuple):
    """How a run ended: run.json's status, exit_code and reason."""

    status: str
    code: int
    reason: str | None


def new_run_id(now: float | None = None) -> str:
    """``20261125T184001Z-3f9a``: the UTC start time and a short random part."""
    t = time.time() if now is None else now
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t)) + "-" + secrets.token_hex(2)


def run_json_path(run_dir: Path) -> Path:
    return run_dir / RUN_JSON


def has_run_json(run_dir: Path) -> bool:
    """Whether something named run.json is in ``run_dir`` (never opened here: a FIFO or a
    dangling link counts, for ``read_run_json`` to refuse it by name)."""
    return os.path.lexists(run_json_path(run_dir))


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


def record_end(data: dict[str, Any], end: RunEnd, ended_at: float,
               machines: list[dict[str, Any]]) -> None:
    """The record of a run's end in ``data`` (run.json): how it ended, when, each machine's
    end figures and the message balance those figures give (``messages``)."""
    crashed = [m["id"] for m in machines if m.get("reason") == "crashed" and "id" in m]
    data.update(status=end.status, exit_code=end.code, reason=end.reason,
                ended_at=format_ts(ended_at), machines=machines,
                messages=balance_of(machines, crashed))


def record_snapshots(data: dict[str, Any], machines: list[dict[str, Any]]) -> None:
    """run.json's ``snapshots`` (SPEC 12.2): each snapshot its ``settings`` plan and whether it
    completed, from the machines' own accounts (``snapshots`` in their entries; a machine
    that gave none, a crashed one, counts as not recorded). ``data`` may have been read
    from a folder (a vm's, merge's parts): what is not as lclock writes it is passed over."""
    settings = data.get("settings")
    plan = settings.get("snapshots") if isinstance(settings, dict) else None
    n = settings.get("machines") if isinstance(settings, dict) else None
    if not plan or not isinstance(plan, list) or not isinstance(n, int):
        return
    from lclock.core.snapshot import SnapshotAt, summary

    planned = [SnapshotAt(x["id"], x["machine"], x["time"]) for x in plan
               if isinstance(x, dict) and isinstance(x.get("id"), int)
               and isinstance(x.get("machine"), int) and isinstance(x.get("time"), (int, float))]
    parts = {m["id"]: [p for p in m["snapshots"] if isinstance(p, dict)] for m in machines
             if isinstance(m.get("id"), int) and isinstance(m.get("snapshots"), list)}
    data["snapshots"] = summary(planned, parts, n)


def balance_of(machines: Iterable[dict[str, Any]], crashed: Iterable[int] = ()) -> dict[str, Any]:
    """The message balance of run.json's machine entries (``message_balance`` over them)."""
    reports: dict[int, dict[str, Any] | None] = {
        m["id"]: m for m in machines
        if isinstance(m.get("id"), int) and isinstance(m.get("sent_to"), dict)}
    return message_balance(reports, crashed)


def lost_reason(messages: dict[str, Any]) -> str:
    """Why a run that lost messages failed: how many, on which links (run.json's reason)."""
    n = int(messages["lost"])
    return f"{n} message{'' if n == 1 else 's'} lost ({messages['lost_where']})"


def message_balance(reports: dict[int, dict[str, Any] | None],
                    crashed: Iterable[int] = ()) -> dict[str, Any]:
    """Per link, copies sent against copies taken in by the receiver.

    Copies sent on i->j: the messages sent, less those the fault plan dropped, plus the
    extra copies of duplicated ones. A machine that the plan crashed cannot report what it
    took in: what it had not handled is lost with it (``lost_in_crash``), counted from its
    own log by the caller (its entry then has ``taken_from`` = what it handled). What it had
    sent but not yet put on the wire (copies it held back for latency, bytes still in its
    buffer) dies with it too, so a shortfall on a link *from* a crashed machine is also
    ``lost_in_crash``. A surplus (more taken than sent) is never explained by a crash. Links
    whose two ends did not both report are named as unbalanced.
    """
    down = set(crashed)
    sent = taken = lost = dropped = duplicated = in_crash = 0
    lossy: dict[str, int] = {}
    unknown: list[str] = []
    for i, rep in sorted(reports.items()):
        if rep is None or "sent_to" not in rep:
            continue
        for peer, count in rep["sent_to"].items():
            j = int(peer)
            other = reports.get(j)
            if other is None or "taken_from" not in other:
                unknown.append(f"{i}->{j}")
                continue
            gone = int(rep.get("dropped_to", {}).get(peer, 0))
            extra = int(rep.get("dup_to", {}).get(peer, 0))
            copies = count - gone + extra
            got = int(other["taken_from"].get(str(i), 0))
            sent += count
            dropped += gone
            duplicated += extra
            taken += got
            missing = copies - got
            if missing > 0 and (j in down or i in down):
                in_crash += missing
            elif missing:
                lossy[f"{i}->{j}"] = missing
                lost += missing
    out: dict[str, Any] = {"sent": sent, "taken": taken, "lost": lost}
    if dropped:
        out["dropped"] = dropped
    if duplicated:
        out["duplicated"] = duplicated
    if down:
        out["lost_in_crash"] = in_crash
    if lossy:
        out["lost_by_link"] = lossy
        out["lost_where"] = ", ".join(f"{k}: {v}" for k, v in lossy.items())
    if unknown:
        out["unbalanced_links"] = unknown
    return out


def this_writer() -> dict[str, Any]:
    """Who writes this run.json: a reader that finds it still 'running' can then tell a live
    run from one whose writer was killed (a SIGKILL leaves no chance to say so)."""
    import psutil

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
    import psutil

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
    for ever), a symbolic link may not lead out of the folder, and a file beyond
    ``MAX_RUN_JSON`` is not ours (``lclock.safefile``). Integers beyond 64 bits are read
    (as Python's parser does), for the checker to name them.
    """
    path = run_json_path(run_dir)
    if not path.exists() and not path.is_symlink():
        raise RunFolderError(f"{path}: missing", "missing (analysing the machine logs alone)",
                             "meta-missing")
    try:
        meta = parse_json(read_small(path, run_dir, MAX_RUN_JSON, RUN_JSON))
    except BadFile as exc:
        raise RunFolderError(f"{path}: {exc}", str(exc)) from None
    except ValueError as exc:
        raise RunFolderError(f"{path}: not valid JSON ({exc})", f"unreadable: {exc}") from None
    if not isinstance(meta, dict):
        why = f"not a JSON object ({type(meta).__name__})"
        raise RunFolderError(f"{path}: {why}", why, "meta-type")
    return meta


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
