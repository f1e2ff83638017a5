"""``lclock merge DIR...``: the per-host folders of one TCP run, combined into one run folder.

Each ``lclock vm`` writes its machine log into ``OUTPUT/<run_id>/`` on its own host. Merge
takes those folders (run folders, or output folders that hold them), checks that they are
the same run (one run id, the same settings, every machine exactly once) and writes one run
folder with every machine log and a run.json for the whole run, which ``check``, ``analyze``
and ``report`` accept like any other. Nothing is written unless every check passes.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

import orjson

from lclock.cluster.status import summarize
from lclock.runfolder import machine_log_path, write_run_json

# Settings that must agree between the parts (output, quiet and the like may differ).
SAME_SETTINGS = ("machines", "duration", "seed", "rates", "dice_sides", "vector_clocks")


class MergeError(Exception):
    """The folders cannot be merged; the text says why."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dirs", nargs="+", metavar="DIR",
                   help="run folders of the same run (or output folders holding them)")
    p.add_argument("--output", metavar="DIR", default="output",
                   help="where the merged run folder OUTPUT/<run_id> goes (default ./output)")
    p.add_argument("--run-id", metavar="RUN_ID",
                   help="which run to merge when the folders hold several")


def _run_folders(d: Path) -> list[Path]:
    if (d / "run.json").is_file():
        return [d]
    if d.is_dir():
        return sorted(p for p in d.iterdir() if (p / "run.json").is_file())
    raise MergeError(f"{d}: no such folder")


def _load(folder: Path) -> dict[str, Any]:
    try:
        data = orjson.loads((folder / "run.json").read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise MergeError(f"{folder}/run.json: unreadable ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("run_id"), str):
        raise MergeError(f"{folder}/run.json: not a run.json (no run_id)")
    return data


def plan_merge(dirs: list[Path], run_id: str | None) -> tuple[str, list[tuple[Path, dict[str, Any]]]]:
    """Pick the run's folders and check they fit together."""
    found: list[tuple[Path, dict[str, Any]]] = []
    for d in dirs:
        folders = _run_folders(d)
        if not folders:
            raise MergeError(f"{d}: holds no run folder (no run.json)")
        found.extend((f, _load(f)) for f in folders)
    ids = sorted({meta["run_id"] for _, meta in found})
    if run_id is None:
        if len(ids) > 1:
            raise MergeError(
                "the folders hold different runs: " + ", ".join(ids) + " (choose one with --run-id)"
            )
        run_id = ids[0]
    parts = [(f, m) for f, m in found if m["run_id"] == run_id]
    if not parts:
        raise MergeError(f"no folder holds run {run_id}")
    return run_id, parts


def merge(dirs: list[Path], output: Path, run_id: str | None = None) -> Path:
    run_id, parts = plan_merge(dirs, run_id)
    first = parts[0][1]
    settings = first.get("settings", {})
    for folder, meta in parts[1:]:
        other = meta.get("settings", {})
        for key in SAME_SETTINGS:
            if other.get(key) != settings.get(key):
                raise MergeError(
                    f"{folder}: setting {key} is {other.get(key)!r}, but {parts[0][0]} has "
                    f"{settings.get(key)!r}: not the same run"
                )
    n = int(settings.get("machines") or first.get("machines_expected") or 0)
    machines: dict[int, dict[str, Any]] = {}
    logs: dict[int, Path] = {}
    for folder, meta in parts:
        for m in meta.get("machines", []):
            mid = m.get("id")
            log = machine_log_path(folder, mid)
            if not log.is_file():
                continue  # another host's entry in a shared run.json; its log is elsewhere
            if mid in logs and logs[mid].resolve() != log.resolve():
                if logs[mid].read_bytes() != log.read_bytes():
                    raise MergeError(f"machine {mid} appears in {logs[mid].parent} and in {folder}")
                continue
            machines[mid] = m
            logs[mid] = log
    missing = [i for i in range(1, n + 1) if i not in logs]
    if missing:
        raise MergeError(
            "no log of machine " + ", ".join(map(str, missing)) + f" for run {run_id} in "
            + ", ".join(str(d) for d in dirs)
        )
    dest = output / run_id
    sources = {f.resolve() for f, _ in parts}
    if dest.exists() and dest.resolve() not in sources:
        raise MergeError(f"{dest} exists already")
    dest.mkdir(parents=True, exist_ok=True)
    for mid, log in logs.items():
        target = machine_log_path(dest, mid)
        if not (target.exists() and target.resolve() == log.resolve()):
            shutil.copyfile(log, target)
    ordered = [machines[i] for i in sorted(machines)]
    started = min(str(m.get("started_at")) for _, m in parts if m.get("started_at"))
    data = dict(first)
    data.pop("partial", None)
    data.update(
        run_id=run_id,
        started_at=started,
        machines=ordered,
        machines_expected=n,
        merged_from=[str(f) for f, _ in parts],
        command=list(sys.argv),
    )
    data.update(summarize(ordered, n))
    write_run_json(dest, data)
    return dest


def main(args: argparse.Namespace) -> int:
    try:
        dest = merge([Path(d) for d in args.dirs], Path(args.output), args.run_id)
    except MergeError as exc:
        sys.stderr.write(f"lclock merge: error: {exc}\n")
        return 2
    data = orjson.loads((dest / "run.json").read_bytes())
    print(f"merged {len(data['machines'])} machines of run {data['run_id']} "
          f"({data['status']}) into {dest}")
    return 0
