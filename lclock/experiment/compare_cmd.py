"""``lclock compare RUN... | EXPERIMENT_DIR...``: the same metrics side by side, with intervals.

Any set of folders: run folders (five runs a student made by hand, grouped by their
settings, so runs of the same settings are one column with its interval), experiment
folders (one column per experiment), or both. Text by default, ``--json`` for tools,
``--figure`` for the picture the experiment summary draws.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lclock.errors import BadInput
from lclock.runfolder import RunFolderError, has_run_json, read_run_json

#: run.json settings that do not change what a run measures (where it went, how it printed).
_NOT_COMPARED = {"seed", "output", "quiet", "report", "transport", "tcp_host", "tcp_ports"}

EPILOG = """\
examples:
  lclock compare output/run-a output/run-b output/run-c     five runs made by hand
  lclock compare runs/four                                  the experiments of a folder
  lclock compare runs/rates-1-6 runs/rates-5-6 --figure cmp.png --json > cmp.json

Run folders with the same settings (machines, rates, die, duration, mode) form one
group; each experiment of an experiment folder is a group. A group whose runs are partly
saturated (a machine's queue grew without bound) is shown as two columns.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("folders", nargs="+", metavar="FOLDER",
                        help="run folders and/or experiment folders")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    parser.add_argument("--figure", metavar="PNG", help="also draw the comparison figure here")
    parser.add_argument("--runs", action="store_true", help="also list every run")


def _settings_key(meta: dict[str, Any]) -> tuple[Any, ...]:
    settings: dict[str, Any] = meta["settings"] if isinstance(meta.get("settings"), dict) else {}
    same = {k: v for k, v in settings.items() if k not in _NOT_COMPARED}
    return (meta.get("mode") or "real", tuple(sorted((k, repr(v)) for k, v in same.items())))


def _group_name(meta: dict[str, Any]) -> str:
    from lclock.experiment.compare import faults_text, settings_text

    settings = meta.get("settings")
    if not isinstance(settings, dict) or "machines" not in settings:
        return "runs without settings"
    broken = faults_text(settings)
    return (settings_text(settings) + (f", {broken}" if broken else "")
            + (f" ({meta['mode']})" if meta.get("mode") == "sim" else ""))


def _read_run(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(run.json or {}, the run's summary line)."""
    from lclock.experiment.metrics import run_metrics
    from lclock.experiment.records import run_entry

    meta: dict[str, Any] = {}
    if has_run_json(path):
        try:
            meta = read_run_json(path)
        except RunFolderError as exc:
            raise BadInput(str(exc)) from None
    status = str(meta.get("status") or "completed")
    fields: dict[str, Any] = {"run_dir": str(path), "seed": meta.get("seed"), "status": status}
    if status != "completed":
        fields["error"] = f"run {status}" + (f": {meta['reason']}" if meta.get("reason") else "")
        return meta, run_entry(None, rates=[], **fields)
    try:
        metrics = run_metrics(path)
    except RunFolderError as exc:
        raise BadInput(str(exc)) from None
    if not metrics["machines"]:
        raise BadInput(f"{path}: no machine logs to compare")
    rates = [m["rate"] for m in sorted(metrics["machines"], key=lambda m: m["id"])]
    return meta, run_entry(metrics, rates=rates, **fields)


def load_groups(folders: list[str]) -> list[dict[str, Any]]:
    """The groups to compare, in the order the folders were given."""
    from lclock.experiment.compare import group_summary
    from lclock.experiment.gather import is_experiment, load_experiment, trial_entries
    from lclock.experiment.runner import settings_json

    paths = [Path(f) for f in folders]
    for p in paths:
        if not p.exists():
            raise BadInput(f"{p}: no such folder")
        if not p.is_dir():
            raise BadInput(f"{p}: not a folder")
    is_exp = [is_experiment(p) for p in paths]
    several = sum(is_exp) > 1
    groups: list[dict[str, Any]] = []
    by_key: dict[tuple[Any, ...], dict[str, Any]] = {}
    for p, exp in zip(paths, is_exp, strict=True):
        if exp:
            _meta, experiments, trials = load_experiment(p)  # NotAnExperiment: a BadInput
            for e in experiments:
                runs = trial_entries(trials[e.name], p)
                for r in runs:
                    r["run_dir"] = str(p / r["run_dir"]) if r.get("run_dir") else None
                name = f"{p.name}/{e.name}" if several else e.name
                groups.append(group_summary(name, runs, source=str(p), description=e.description,
                                            settings=settings_json(e.settings)))  # fmt: skip
            continue
        if not has_run_json(p) and not any(p.glob("machine-*.jsonl")):
            raise BadInput(f"{p}: neither a run folder (run.json, machine-*.jsonl) nor an "
                           "experiment folder (experiment.json)")  # fmt: skip
        meta, entry = _read_run(p)
        key = _settings_key(meta)
        if key not in by_key:
            settings: dict[str, Any] = (
                meta["settings"] if isinstance(meta.get("settings"), dict) else {}
            )
            by_key[key] = {"name": _group_name(meta), "runs": [],
                           "settings": {k: v for k, v in settings.items() if k not in _NOT_COMPARED}}
            groups.append(by_key[key])
        by_key[key]["runs"].append(entry)
    out = []
    names: dict[str, int] = {}
    for g in groups:
        if "completed" in g:  # an experiment, summarised already
            out.append(g)
            continue
        names[g["name"]] = names.get(g["name"], 0) + 1
        name = g["name"] if names[g["name"]] == 1 else f"{g['name']} #{names[g['name']]}"
        out.append(group_summary(name, g["runs"], settings=g["settings"]))
    return out


def main(args: argparse.Namespace) -> int:
    import orjson

    from lclock.experiment.compare import render_text
    from lclock.experiment.metrics import SATURATION_RULE

    groups = load_groups(args.folders)  # BadInput: lclock.cli prints it, exit 2
    if args.figure is not None:
        from lclock.experiment.report import comparison_figure

        target = Path(args.figure)
        if not target.parent.is_dir():
            raise BadInput(f"--figure: {target.parent} is not a folder")
        if any(g["completed"] for g in groups):
            comparison_figure({"experiments": groups}, target)
        else:
            sys.stderr.write("lclock compare: no completed run, no figure\n")
    if args.json:
        data = {"saturation_rule": SATURATION_RULE, "groups": groups}
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE).decode())
    else:
        import shutil

        width = shutil.get_terminal_size((100, 24)).columns
        sys.stdout.write(render_text(groups, show_runs=args.runs, width=max(width, 60)))
        if args.figure is not None and any(g["completed"] for g in groups):
            sys.stdout.write(f"figure: {args.figure}\n")
    return 0
