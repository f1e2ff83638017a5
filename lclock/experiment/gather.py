"""Reading an experiment folder back: what was asked for, and whatever trials came back.

``lclock experiment --summarize DIR`` and ``lclock compare DIR`` both start here. The
metrics are computed again from the run folders (the analysis may have improved since the
trials ran; real trials take minutes, their numbers a second). A trial that is not there
(a batch job that has not run, or did not come back) is named, not fatal. Both layouts are
read: ``<name>/trial-<k>/`` is the run folder, or holds exactly one run folder (older
experiments, and trials run from ``--plan``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lclock.errors import BadInput
from lclock.experiment.records import Experiment, Trial, run_entry, trial_folder
from lclock.runfolder import RunFolderError, has_run_json, read_run_json, writer_gone
from lclock.safefile import BadFile, read_json_object
from lclock.settings import SettingsError, parse_settings_file, resolve


class NotAnExperiment(BadInput):
    """The folder cannot be read as an experiment (one line for the user, exit status 2)."""


#: experiment.json and summary.json grow with the trials; more than this is not ours.
MAX_EXPERIMENT_JSON = 256 << 20


def _load_json(path: Path) -> dict[str, Any]:
    try:  # a FIFO or /dev/zero in its place is refused, never read
        return read_json_object(path, MAX_EXPERIMENT_JSON, path.name)
    except BadFile as exc:
        raise NotAnExperiment(f"{path}: {exc}") from None


def _old_summary(root: Path) -> dict[str, Any] | None:
    """summary.json of an experiment folder (not a run folder's analysis summary.json)."""
    if not (root / "summary.json").is_file():
        return None
    data = _load_json(root / "summary.json")
    return data if isinstance(data.get("experiments"), list) else None


def is_experiment(root: Path) -> bool:
    """Does the folder look like an experiment folder, of this version or an older one?"""
    if (root / "experiment.json").is_file():
        return True
    try:
        return _old_summary(root) is not None
    except NotAnExperiment:
        return False


def read_meta(root: Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(experiment.json, or what an old summary.json says of it; the old summary.json)."""
    if not root.exists():
        raise NotAnExperiment(f"{root}: no such folder")
    if not root.is_dir():
        raise NotAnExperiment(f"{root}: not a folder")
    old = _old_summary(root)
    if (root / "experiment.json").is_file():
        return _load_json(root / "experiment.json"), old
    if old is not None:
        return old, old
    if has_run_json(root) or any(root.glob("machine-*.jsonl")):
        raise NotAnExperiment(
            f"{root}: a run folder, not an experiment folder (see lclock analyze or lclock compare)"
        )
    raise NotAnExperiment(f"{root}: not an experiment folder (no experiment.json)")


def planned(meta: dict[str, Any], old: dict[str, Any] | None) -> list[tuple[str, str, int]]:
    """(name, description, trials) of each experiment, from any version's files."""
    if isinstance(meta.get("experiments"), list) and all(
        isinstance(e, dict) and "trials" in e and isinstance(e["trials"], int)
        for e in meta["experiments"]
    ):
        return [(str(e["name"]), str(e.get("description") or ""), int(e["trials"]))
                for e in meta["experiments"]]  # fmt: skip
    names, counts = meta.get("names"), meta.get("trials")
    if not isinstance(names, list) or not isinstance(counts, dict):
        raise NotAnExperiment("experiment.json: no list of experiments (names, trials)")
    described = {e.get("name"): e.get("description") or "" for e in (old or {}).get("experiments", [])}
    return [(str(n), str(described.get(n, "")), int(counts.get(n, 0))) for n in names]


def find_run(trial_dir: Path) -> Path | None:
    """The run folder of a trial: the trial folder itself, or the one run folder in it."""
    if has_run_json(trial_dir):
        return trial_dir
    if not trial_dir.is_dir():
        return None
    inner = sorted(p for p in trial_dir.iterdir() if p.is_dir() and has_run_json(p))
    return inner[-1] if inner else None


def load_experiment(root: Path) -> tuple[dict[str, Any], list[Experiment], dict[str, list[Trial]]]:
    """The experiment folder as records: its meta, the experiments, each one's trials
    (with metrics for every completed trial; status ``missing`` where nothing came back)."""
    meta, old = read_meta(root)
    previous = {(e["name"], r.get("trial")): r
                for e in (old or {}).get("experiments", []) for r in e.get("runs", [])}  # fmt: skip
    base = meta.get("base_seed")
    experiments, trials = [], {}
    for name, description, n in planned(meta, old):
        path = root / name / "settings.toml"
        try:
            settings = resolve(parse_settings_file(path), {})
        except SettingsError as exc:
            raise NotAnExperiment(str(exc)) from None
        experiments.append(Experiment(name, description, settings, n))
        trials[name] = [_read_trial(root, name, k, base, previous.get((name, k))) for k in range(1, n + 1)]
    return meta, experiments, trials


def _read_trial(root: Path, name: str, k: int, base: Any, before: dict[str, Any] | None) -> Trial:
    from lclock.experiment.real import fill_from_run

    seed = base + k - 1 if isinstance(base, int) else (before or {}).get("seed", 0)
    t = Trial(name, k, seed)
    run_dir = find_run(root / trial_folder(name, k))
    if run_dir is None:
        if before is not None and before.get("status") != "completed":
            t.status, t.error = before.get("status", "failed"), before.get("error")
            t.exit_code = before.get("exit_code")
        else:
            t.status = "missing"
            t.error = "no run folder came back"
        return t
    t.run_dir = run_dir
    try:
        run = read_run_json(run_dir)
    except RunFolderError as exc:
        t.status, t.error = "failed", f"run.json unreadable: {exc.reason}"
        return t
    t.seed = run.get("seed", seed) if isinstance(run.get("seed"), int) else seed
    t.exit_code = run.get("exit_code")
    status = run.get("status")
    if status == "completed":
        t.status = "completed"
        fill_from_run(t)
    elif status == "running":
        gone = writer_gone(run)
        if gone:
            t.status, t.error = "failed", f"run.json still says running, but {gone}"
        else:
            t.status, t.error = "running", "run.json still says running (not finished, or killed)"
    else:
        t.status = str(status or "failed")
        t.error = (before or {}).get("error") or f"run {status}: {run.get('reason')}"
    return t


def trial_entries(trials: list[Trial], root: Path) -> list[dict[str, Any]]:
    """The ``runs`` lines of an experiment's summary."""
    out = []
    for t in trials:
        fields: dict[str, Any] = {
            "trial": t.index,
            "seed": t.seed,
            "status": t.status,
            "exit_code": t.exit_code,
            "run_dir": t.run_dir.relative_to(root).as_posix() if t.run_dir else None,
            "rates": t.rates,
        }
        if t.run_dir is not None:
            fields["report"] = (t.run_dir / "report.html").is_file()
        if t.error:
            fields["error"] = t.error
        done = t.status == "completed" and t.metrics is not None
        out.append(run_entry(t.metrics if done else None, **fields))
    return out
