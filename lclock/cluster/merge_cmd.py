"""``lclock merge DIR...``: the per-host folders of one TCP run, combined into one run folder.

Each ``lclock vm`` writes its machine log into ``OUTPUT/<run_id>/`` on its own host. Merge
takes those folders (run folders, or output folders that hold them), checks that they are
the same run (one run id, the same settings, every machine exactly once) and writes one run
folder with every machine log and a run.json for the whole run, which ``check``, ``analyze``
and ``report`` accept like any other.

The folders may come from other hosts, so nothing in them is trusted: the run id must be a
plain name (it becomes a folder name under ``--output``), every value of run.json used is
type- and range-checked, only regular files inside the folders are read, and nothing is
written unless every check passes. The merged folder is built under a temporary name and
renamed into place, so it appears whole or not at all, and never over an existing folder.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from lclock.analysis.folder import MACHINE_FILE, UnreadableFile, open_regular
from lclock.analysis.timestamps import short
from lclock.cluster.status import summarize
from lclock.core.faults import merge_applied
from lclock.errors import fail
from lclock.runfolder import (
    MAX_MACHINES,
    RunFolderError,
    has_run_json,
    machine_log_path,
    read_run_json,
    record_snapshots,
    write_run_json,
)

# Settings that must agree between the parts (output, quiet and the like may differ).
SAME_SETTINGS = ("machines", "duration", "seed", "rates", "dice_sides", "vector_clocks")
# A run id becomes a folder name: letters, digits, '.', '_', '-', not starting with a dot.
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", re.ASCII)
LOG_NAME = re.compile(r"machine-.*\.jsonl", re.S)
# Run statuses from the best to the worst: a merged run is never better than a part says.
STATUS_RANK = ("completed", "running", "interrupted", "failed")
MAX_FOLDERS = 10_000


class MergeError(Exception):
    """The folders cannot be merged; the text says why."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dirs", nargs="+", metavar="DIR",
                   help="run folders of the same run (or output folders holding them)")
    p.add_argument("--output", metavar="DIR", default="output",
                   help="where the merged run folder OUTPUT/<run_id> goes (default ./output)")
    p.add_argument("--run-id", metavar="RUN_ID",
                   help="which run to merge when the folders hold several")


def check_run_id(value: Any, where: str) -> str:
    """A run id that is safe as one folder name under --output, or MergeError."""
    if not isinstance(value, str) or not RUN_ID.match(value) or ".." in value:
        raise MergeError(f"{where}: run_id {short(value)} is not a run id (letters, digits, '.', '_' "
                         "and '-', at most 128, not starting with '.')")
    return value


def _run_folders(d: Path) -> list[Path]:
    if has_run_json(d):
        return [d]
    if d.is_dir():
        found = []
        for p in sorted(d.iterdir()):
            if has_run_json(p):
                found.append(p)
                if len(found) > MAX_FOLDERS:
                    raise MergeError(f"{d}: more than {MAX_FOLDERS} run folders")
        return found
    raise MergeError(f"{d}: no such folder")


def _load(folder: Path) -> dict[str, Any]:
    try:
        data = read_run_json(folder)
    except RunFolderError as exc:
        raise MergeError(str(exc)) from None
    if "run_id" not in data:
        raise MergeError(f"{folder}/run.json: not a run.json (no run_id)")
    check_run_id(data["run_id"], f"{folder}/run.json")
    settings = data.get("settings", {})
    if not isinstance(settings, dict):
        raise MergeError(f"{folder}/run.json: settings is not an object")
    machines = data.get("machines", [])
    if not isinstance(machines, list) or len(machines) > MAX_MACHINES:
        raise MergeError(f"{folder}/run.json: machines is not a list of at most {MAX_MACHINES} "
                         "machines")
    return data


def plan_merge(dirs: list[Path], run_id: str | None) -> tuple[str, list[tuple[Path, dict[str, Any]]]]:
    """Pick the run's folders and check they fit together."""
    if run_id is not None:
        check_run_id(run_id, "--run-id")
    found: list[tuple[Path, dict[str, Any]]] = []
    for d in dirs:
        folders = _run_folders(d)
        if not folders:
            raise MergeError(f"{d}: holds no run folder (no run.json)")
        found.extend((f, _load(f)) for f in folders)
    ids = sorted({meta["run_id"] for _, meta in found})
    if run_id is None:
        if len(ids) > 1:
            shown = ", ".join(ids[:10]) + (", ..." if len(ids) > 10 else "")
            raise MergeError(f"the folders hold different runs: {shown} (choose one with --run-id)")
        run_id = ids[0]
    parts = [(f, m) for f, m in found if m["run_id"] == run_id]
    if not parts:
        raise MergeError(f"no folder holds run {run_id}")
    return run_id, parts


def _machine_count(parts: list[tuple[Path, dict[str, Any]]]) -> int:
    first = parts[0][1]
    n = first["settings"].get("machines") if isinstance(first.get("settings"), dict) else None
    if n is None:
        n = first.get("machines_expected")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_MACHINES:
        raise MergeError(f"{parts[0][0]}/run.json: settings.machines {short(n)} is not a machine count "
                         f"from 1 to {MAX_MACHINES}")
    return n


def _same_settings(parts: list[tuple[Path, dict[str, Any]]]) -> None:
    settings = parts[0][1].get("settings", {})
    for folder, meta in parts[1:]:
        other = meta.get("settings", {})
        for key in SAME_SETTINGS:
            if other.get(key) != settings.get(key):
                raise MergeError(f"{folder}: setting {key} is {short(other.get(key))}, but "
                                 f"{parts[0][0]} has {short(settings.get(key))}: not the same run")


def _is_regular(path: Path, root: Path) -> bool:
    """A machine log we may copy: a regular file inside its folder (not a FIFO, not a link
    that leads elsewhere). A missing log is another host's; anything else is refused."""
    if not path.exists() and not path.is_symlink():
        return False
    try:
        open_regular(path, root).close()
    except UnreadableFile as exc:
        raise MergeError(f"{path}: {exc}") from None
    return True


def _entry(folder: Path, m: Any, n: int) -> tuple[int, dict[str, Any]]:
    mid = m.get("id") if isinstance(m, dict) else None
    if isinstance(mid, bool) or not isinstance(mid, int) or not 1 <= mid <= n:
        raise MergeError(f"{folder}/run.json: a machines entry {short(m)} has no machine id "
                         f"from 1 to {n}")
    for key in ("status", "ended_at", "reason"):
        if m.get(key) is not None and not isinstance(m[key], str):
            raise MergeError(f"{folder}/run.json: machine {mid}: {key} is not a string")
    return mid, m


def _stray_logs(folder: Path, listed: set[int], n: int) -> None:
    """Every machine log of a part must be one merge copies: named ``machine-<id>.jsonl``
    for an id of the run that its run.json lists. Any other (``machine-02.jsonl`` beside
    ``machine-2.jsonl``, ``machine-9.jsonl`` in a run of 3) would be silently left out or
    picked by chance: refused, named."""
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        raise MergeError(f"{folder}: cannot list: {exc.strerror or exc}") from None
    stray = []
    for name in names:
        if not LOG_NAME.fullmatch(name):
            continue
        m = MACHINE_FILE.match(name)
        mid = int(m.group(1)) if m and len(m.group(1)) <= 9 else None
        if mid is None:
            stray.append(f"{name} (not a name lclock gives a log)")
        elif name != f"machine-{mid}.jsonl":
            own = f"machine-{mid}.jsonl"
            stray.append(f"{name} (a second log of machine {mid}, besides {own})" if own in names
                         else f"{name} (not the name lclock gives machine {mid}'s log, {own})")
        elif not 1 <= mid <= n:
            stray.append(f"{name} (the run has machines 1 to {n})")
        elif mid not in listed:
            stray.append(f"{name} (its run.json lists no machine {mid})")
    if stray:
        shown = "; ".join(stray[:5]) + ("; ..." if len(stray) > 5 else "")
        raise MergeError(f"{folder}: machine log(s) merge cannot place: {shown}; move them "
                         "out of the folder")


def _collect(parts: list[tuple[Path, dict[str, Any]]], n: int
             ) -> tuple[dict[int, dict[str, Any]], dict[int, Path]]:
    machines: dict[int, dict[str, Any]] = {}
    logs: dict[int, Path] = {}
    for folder, meta in parts:
        entries = [_entry(folder, m, n) for m in meta.get("machines", [])]
        _stray_logs(folder, {mid for mid, _ in entries}, n)
        for mid, entry in entries:
            log = machine_log_path(folder, mid)
            if not _is_regular(log, folder):
                continue  # another host's entry in a shared run.json; its log is elsewhere
            if mid in logs and logs[mid].resolve() != log.resolve():
                if not filecmp.cmp(logs[mid], log, shallow=False):
                    raise MergeError(f"machine {mid} appears in {logs[mid].parent} and in {folder}")
                continue
            machines[mid] = entry
            logs[mid] = log
    return machines, logs


def _write(dest: Path, logs: dict[int, Path], data: dict[str, Any]) -> None:
    """Build the folder under a temporary name beside ``dest``, then rename it into place
    (never over an existing folder); on any failure remove what was built."""
    tmp = dest.with_name(f".{dest.name}.merge-{os.getpid()}.tmp")
    try:
        tmp.mkdir()
    except OSError as exc:
        raise MergeError(f"cannot create {tmp}: {exc.strerror or exc}") from None
    try:
        for mid, log in logs.items():
            with open_regular(log, log.parent) as src, open(machine_log_path(tmp, mid), "xb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        write_run_json(tmp, data)
        if dest.exists() or dest.is_symlink():
            raise MergeError(f"{dest} exists already: merge writes a new folder (choose another "
                             "--output)")
        os.rename(tmp, dest)
    except (OSError, UnreadableFile, RunFolderError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise MergeError(f"cannot write {dest}: {getattr(exc, 'strerror', None) or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _status(machines: list[dict[str, Any]], n: int, parts: list[tuple[Path, dict[str, Any]]]
            ) -> dict[str, Any]:
    """The merged run's status from its machines' entries, but never better than what a
    part recorded for the whole run: a run lclock ran on one host (``lclock run``, ``lclock
    sim``) knows more than its machines' entries (messages it found lost, say)."""
    out = summarize(machines, n)
    rank = STATUS_RANK.index
    for folder, meta in parts:
        st = meta.get("status")
        if meta.get("partial") or st not in STATUS_RANK or rank(st) <= rank(out["status"]):
            continue
        reason = meta.get("reason")
        out.update(status=st, exit_code=meta.get("exit_code"),
                   reason=reason if isinstance(reason, str) else f"as {folder}/run.json says")
    return out


def merge(dirs: list[Path], output: Path, run_id: str | None = None) -> Path:
    run_id, parts = plan_merge(dirs, run_id)
    _same_settings(parts)
    n = _machine_count(parts)
    machines, logs = _collect(parts, n)
    missing = [i for i in range(1, n + 1) if i not in logs]
    if missing:
        shown = ", ".join(map(str, missing[:20])) + (", ..." if len(missing) > 20 else "")
        raise MergeError(f"no log of machine {shown} for run {run_id} in "
                         + ", ".join(str(d) for d in dirs))
    dest = output / run_id
    if dest.exists() or dest.is_symlink():
        raise MergeError(f"{dest} exists already: merge writes a new folder (choose another "
                         "--output)")
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MergeError(f"cannot create {output}: {exc.strerror or exc}") from None
    if dest.resolve().parent != output.resolve():
        raise MergeError(f"{dest} would not be inside {output}")
    ordered = [machines[i] for i in sorted(machines)]
    starts = [m["started_at"] for _, m in parts if isinstance(m.get("started_at"), str)]
    data = dict(parts[0][1])
    data.pop("partial", None)
    if isinstance(data.get("faults"), dict):  # what every host's vms applied, each once
        data["faults"] = {**data["faults"], "applied": merge_applied(*(
            m["faults"]["applied"] for _, m in parts if isinstance(m.get("faults"), dict)
            and isinstance(m["faults"].get("applied"), list)))}
    data.update(run_id=run_id, started_at=min(starts) if starts else None, machines=ordered,
                machines_expected=n, merged_from=[str(f) for f, _ in parts],
                command=list(sys.argv))
    data.update(_status(ordered, n, parts))
    record_snapshots(data, ordered)
    _write(dest, logs, data)
    return dest


def main(args: argparse.Namespace) -> int:
    try:
        dest = merge([Path(d) for d in args.dirs], Path(args.output), args.run_id)
    except MergeError as exc:
        return fail("merge", exc)
    data = read_run_json(dest)
    print(f"merged {len(data['machines'])} machines of run {data['run_id']} "
          f"({data['status']}) into {dest}")
    return 0
