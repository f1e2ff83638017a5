"""The experiment runner: named settings, several trials each, one folder with everything.

An experiment is a table ``[experiments.NAME]`` (the presets shipped in
``lclock/presets.toml``, or a settings file's): run keys, a description, a number of
trials. Each trial is a complete run folder, made either by the real launcher in a
subprocess (the default: the exercise is about real processes) or by the simulator
(``--sim``: fast, deterministic; here, in local worker processes, or on a Dask cluster).
Trial k of every experiment uses the seed ``base + k - 1``; experiments with the same rate
range therefore draw the same rates in the same trial, which pairs them and makes their
difference less noisy. The folder layout is in ``lclock.experiment.records``.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from lclock.experiment.compare import group_summary, settings_text
from lclock.experiment.gather import load_experiment, trial_entries
from lclock.experiment.metrics import SATURATION_RULE
from lclock.experiment.pool import Results
from lclock.experiment.records import Experiment, Trial, roles
from lclock.experiment.trial import TrialSpec, staging_folder
from lclock.lifecycle import Interrupted
from lclock.settings import RunSettings, SettingsError, SettingsFile, parse_settings_file, resolve
from lclock.sim.engine import NetworkSettings

DEFAULT_TRIALS = 5
PRESETS = Path(__file__).resolve().parent.parent / "presets.toml"

__all__ = ["DEFAULT_TRIALS", "Experiment", "Interrupted", "Sweep", "Trial", "plan",
           "resummarize", "run_experiments", "settings_toml", "summarize_experiment",
           "with_presets"]  # fmt: skip


# -- planning ---------------------------------------------------------------------------


def with_presets(file: SettingsFile) -> dict[str, Path | None]:
    """Add the shipped presets to ``file.experiments`` (the file's own tables win); returns
    where each experiment is defined, for error messages and ``--list``."""
    presets = parse_settings_file(PRESETS)
    origin: dict[str, Path | None] = {name: PRESETS for name in presets.experiments}
    origin.update({name: file.path for name in file.experiments})
    file.experiments = {**presets.experiments, **file.experiments}
    return origin


def plan(
    file: SettingsFile,
    names: list[str],
    run_all: bool,
    trials: int | None,
    duration: float | None,
    origin: dict[str, Path | None] | None = None,
) -> list[Experiment]:
    """Resolve the named experiments (or every one) against the settings file.

    Errors (an unknown name, a bad value in a table, a bad flag) raise SettingsError naming
    the flag or ``file:experiments.NAME.key``.
    """
    known = list(file.experiments)
    if run_all:
        if names:
            raise SettingsError("--all: give either experiment names or --all, not both")
        names = known
        if not names:
            raise SettingsError(f"{file.path or 'settings'}: defines no [experiments.NAME] tables")
    if not names:
        raise SettingsError("NAME: give one or more experiment names, or --all")
    if trials is not None and not 1 <= trials <= 1000:
        raise SettingsError(f"--trials: must be an integer from 1 to 1000 (got {trials})")
    out = []
    seen = set()
    for name in names:
        if name in seen:
            raise SettingsError(f"NAME: experiment {name!r} given twice")
        seen.add(name)
        if name not in file.experiments:
            where = file.path or "settings"
            raise SettingsError(
                f"{where}: no experiment named {name!r} (defined: {', '.join(known) or 'none'})"
            )
        table = file.experiments[name]
        where = f"{(origin or {}).get(name, file.path)}:experiments.{name}"
        settings = resolve(file, {"duration": duration}, overrides=table, overrides_where=where)
        n = trials if trials is not None else table.get("trials", DEFAULT_TRIALS)
        if not 1 <= n <= 1000:
            raise SettingsError(f"{where}.trials: must be an integer from 1 to 1000 (got {n})")
        out.append(Experiment(name, table.get("description", ""), settings, n))
    return out


def settings_toml(settings: RunSettings) -> str:
    """The run keys of a trial as a settings file: the record of what every trial of an
    experiment ran with (and what --summarize reads back)."""

    def val(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (tuple, list)):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if isinstance(v, str):
            return orjson.dumps(v).decode()
        return repr(v)

    keys = {
        "machines": settings.machines,
        "duration": settings.duration,
        "rate_min": settings.rate_min,
        "rate_max": settings.rate_max,
        "rates": list(settings.rates or ()),
        "dice_sides": settings.dice_sides,
        "vector_clocks": settings.vector_clocks,
        "transport": "socketpair",
    }
    lines = ["# Written by lclock experiment: the settings of every trial of this experiment."]
    lines += [f"{k} = {val(v)}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


def settings_json(s: RunSettings) -> dict[str, Any]:
    return {
        "machines": s.machines,
        "duration": s.duration,
        "rate_min": s.rate_min,
        "rate_max": s.rate_max,
        "rates": list(s.rates) if s.rates else None,
        "dice_sides": s.dice_sides,
        "vector_clocks": s.vector_clocks,
    }


def experiment_meta(experiments: list[Experiment]) -> dict[str, Any]:
    """The part of experiment.json that says what was asked for."""
    return {
        "experiments": [{"name": e.name, "description": e.description, "trials": e.trials,
                         "settings": settings_json(e.settings)} for e in experiments],  # fmt: skip
        # The form of older versions, still read by tools that know only it.
        "names": [e.name for e in experiments],
        "trials": {e.name: e.trials for e in experiments},
    }


def prepare_folder(root: Path, experiments: list[Experiment], meta: dict[str, Any]) -> None:
    """experiment.json and each experiment's settings.toml: enough for --summarize."""
    root.mkdir(parents=True, exist_ok=True)
    for exp in experiments:
        (root / exp.name).mkdir(exist_ok=True)
        (root / exp.name / "settings.toml").write_text(settings_toml(exp.settings))
    write_json(root / "experiment.json", meta)


# -- summaries --------------------------------------------------------------------------


def summarize_experiment(exp: Experiment, trials: list[Trial], root: Path) -> dict[str, Any]:
    """Mean and 95% interval across the completed trials of one experiment."""
    return group_summary(exp.name, trial_entries(trials, root), description=exp.description,
                         settings=settings_json(exp.settings), trials=exp.trials)  # fmt: skip


def build_summary(
    meta: dict[str, Any], experiments: list[Experiment], trials: dict[str, list[Trial]], root: Path
) -> dict[str, Any]:
    """summary.json: only what the trials' results decide (no times, no paths, no command),
    so the same experiment gives the same bytes however and wherever its trials ran."""
    missing = [t.folder for e in experiments for t in trials.get(e.name, [])
               if t.status in ("missing", "running")]  # fmt: skip
    summary: dict[str, Any] = {
        "schema": 2,
        "mode": meta.get("mode"),
        "base_seed": meta.get("base_seed"),
    }
    if meta.get("sim"):
        summary["sim"] = meta["sim"]
    summary["status"] = meta.get("status")
    summary["saturation_rule"] = SATURATION_RULE
    if missing:
        summary["missing"] = missing
    summary["experiments"] = [summarize_experiment(e, trials.get(e.name, []), root) for e in experiments]
    return summary


def resummarize(root: Path) -> dict[str, Any]:
    """Recompute summary.json of an experiment folder from whatever run folders it holds.

    Why: the metrics come from the analysis code, which may improve after the runs were
    made; and trials run elsewhere (``--plan``) come back one by one.
    Raises ``NotAnExperiment`` for a folder that is not one.
    """
    meta, experiments, trials = load_experiment(root)
    if meta.get("status") == "planned":
        done = all(t.status not in ("missing", "running") for ts in trials.values() for t in ts)
        meta = {**meta, "status": "completed" if done else "incomplete"}
    summary = build_summary(meta, experiments, trials, root)
    write_json(root / "summary.json", summary)
    return summary


# -- running ----------------------------------------------------------------------------


@dataclass
class Sweep:
    """How the trials run."""

    sim: bool
    net: NetworkSettings
    report: bool = True
    #: Simulated trials at a time on this host (1 = in this process).
    jobs: int = 1
    #: A connected ``distributed.Client`` (``--cluster``), or None.
    client: Any = None
    #: Real trials: show the launcher's live display.
    live: bool = False

    def where(self) -> str:
        if not self.sim:
            return "real processes, one trial at a time"
        if self.client is not None:
            from lclock.experiment.cluster import workers

            n = workers(self.client)
            now = f"{n} workers now" if n else "no worker yet: the trials wait for one"
            return f"simulated on the Dask cluster at {self.client.scheduler.address} ({now})"
        return f"simulated, {self.jobs} at a time" if self.jobs > 1 else "simulated, in this process"


ProgressFn = Callable[[str], None]


def _sim_results(sweep: Sweep, specs: list[TrialSpec], root: Path) -> Results:
    from lclock.experiment import pool

    if sweep.client is not None:
        from lclock.experiment.cluster import run_on_cluster

        return run_on_cluster(sweep.client, specs, root)
    if sweep.jobs > 1 and len(specs) > 1:
        return pool.run_local(specs, root, sweep.jobs)
    return pool.run_serial(specs, root)


def _mark_unfinished(trials: dict[str, list[Trial]], root: Path, sim: bool) -> None:
    """Trials an interruption left pending or running are interrupted; their staging goes,
    and (simulated) their folder too: a trial folder is there if and only if it counts."""
    for ts in trials.values():
        for t in ts:
            if t.status in ("pending", "running"):
                t.status, t.error = "interrupted", "the experiment was stopped"
                shutil.rmtree(staging_folder(root / t.folder), ignore_errors=True)
                if sim:
                    shutil.rmtree(root / t.folder, ignore_errors=True)


def run_experiments(
    experiments: list[Experiment],
    root: Path,
    base_seed: int,
    sweep: Sweep,
    meta: dict[str, Any],
    progress: ProgressFn,
) -> tuple[dict[str, Any], list[Trial]]:
    """Run every trial of every experiment into ``root``; return the summary and the trials.

    experiment.json is rewritten after every trial, so an interrupted experiment still says
    what it did. Raises Interrupted or KeyboardInterrupt (after stopping every running
    trial, here or on the cluster) on Ctrl-C / SIGTERM; summary.json is written anyway.
    """
    trials = {e.name: [Trial(e.name, k, base_seed + k - 1) for k in range(1, e.trials + 1)]
              for e in experiments}  # fmt: skip
    total = sum(e.trials for e in experiments)
    started = time.perf_counter()
    meta = {**meta, "status": "running", "base_seed": base_seed,
            "mode": "sim" if sweep.sim else "real", "code": code_version(),
            **experiment_meta(experiments), "timing": {}}  # fmt: skip
    if sweep.sim:
        meta["sim"] = sweep.net.to_json()
        meta["jobs"] = sweep.jobs if sweep.client is None else None
        meta["cluster"] = sweep.client.scheduler.address if sweep.client is not None else None
    prepare_folder(root, experiments, meta)
    status = "interrupted"
    done = 0

    def finished(t: Trial) -> None:
        nonlocal done
        done += 1
        progress(f"[{done}/{total}] {t.folder} (seed {t.seed}): {describe_trial(t)}")
        meta["timing"][t.folder] = {"wall_seconds": round(t.wall_seconds, 3),
                                    **({"host": t.host} if t.host else {})}  # fmt: skip
        meta["progress"] = {"done": done, "total": total}
        write_json(root / "experiment.json", meta)

    progress(f"{total} trials of {', '.join(e.name for e in experiments)} ({sweep.where()}) "
             f"into {root}")  # fmt: skip
    try:
        if sweep.sim:
            _run_sim(experiments, trials, root, base_seed, sweep, finished, meta)
        else:
            _run_real(experiments, trials, root, sweep, finished, progress)
        status = tried_status([t for ts in trials.values() for t in ts])
    finally:
        _mark_unfinished(trials, root, sweep.sim)
        meta["status"] = status
        meta["wall_seconds"] = round(time.perf_counter() - started, 3)
        meta.pop("progress", None)
        write_json(root / "experiment.json", meta)
        summary = build_summary(meta, experiments, trials, root)
        write_json(root / "summary.json", summary)
    return summary, [t for ts in trials.values() for t in ts]


def tried_status(tried: list[Trial]) -> str:
    """Every trial was tried: ``completed`` only if every one completed; ``failed`` if
    none did (a full disk, a broken setting); ``incomplete`` in between."""
    ok = sum(t.status == "completed" for t in tried)
    return "completed" if ok == len(tried) else "failed" if ok == 0 else "incomplete"


def _run_sim(
    experiments: list[Experiment],
    trials: dict[str, list[Trial]],
    root: Path,
    base_seed: int,
    sweep: Sweep,
    finished: Callable[[Trial], None],
    meta: dict[str, Any],
) -> None:
    command = tuple(str(a) for a in meta.get("command") or sys.argv)
    specs = [TrialSpec(e.name, k, base_seed + k - 1, e.settings, sweep.net, sweep.report, command)
             for e in experiments for k in range(1, e.trials + 1)]  # fmt: skip
    with contextlib.closing(_sim_results(sweep, specs, root)) as results:
        for spec, outcome in results:
            t = trials[spec.experiment][spec.index - 1]
            t.status, t.error, t.host = outcome.status, outcome.error, outcome.host
            t.exit_code = 0 if outcome.status == "completed" else None
            t.wall_seconds, t.rates, t.metrics = outcome.wall_seconds, outcome.rates, outcome.metrics
            if outcome.status == "completed":
                t.run_dir = root / t.folder
            else:  # e.g. its worker died half-way: leave no half-written trial behind
                shutil.rmtree(staging_folder(root / t.folder), ignore_errors=True)
            finished(t)


def _run_real(
    experiments: list[Experiment],
    trials: dict[str, list[Trial]],
    root: Path,
    sweep: Sweep,
    finished: Callable[[Trial], None],
    progress: ProgressFn,
) -> None:
    from lclock.experiment.real import run_real_trial

    left = sum(e.trials for e in experiments)
    for exp in experiments:
        for t in trials[exp.name]:
            minutes = math.ceil(left * (exp.settings.duration + 3) / 60)
            progress(f"--- {exp.name} trial {t.index}/{exp.trials} (seed {t.seed}, "
                     f"{exp.settings.duration:g} s; about {minutes} min left) ---")  # fmt: skip
            t.status = "running"
            run_real_trial(exp, t, root, live=sweep.live, report=sweep.report)
            left -= 1
            finished(t)


def describe_trial(t: Trial) -> str:
    if t.status != "completed" or t.metrics is None:
        return f"{t.status}: {t.error or 'no run folder'}"
    rl = roles(t.metrics)
    s, f = rl["slowest"], rl["fastest"]
    sat = t.metrics.get("saturated") or []
    head = f"done in {t.wall_seconds:.1f} s: rates {','.join(map(str, t.rates))}; "
    if s["rate"] == f["rate"]:  # every machine at one rate: no slowest or fastest to name
        body = (f"machine {s.get('id', '?')} (rate {s['rate']}, as every machine) mean jump "
                f"{_num(s['mean_jump'])}, drift {_num(s['drift_mean'])}, max queue {s['max_queue']}")
    else:
        body = (f"slowest (rate {s['rate']}) mean jump {_num(s['mean_jump'])}, "
                f"drift {_num(s['drift_mean'])}, max queue {s['max_queue']}; "
                f"fastest (rate {f['rate']}) mean jump {_num(f['mean_jump'])}")
    return head + body + (f"; SATURATED: machine {', '.join(map(str, sat))}" if sat else "")


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))
    os.replace(tmp, path)


def code_version() -> dict[str, Any]:
    """The lclock version and, in a git checkout, the commit and whether files were changed:
    real results depend on the runtime's timing, so an experiment records what code ran."""
    from lclock import __version__

    out: dict[str, Any] = {"lclock": __version__}
    repo = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                              text=True, timeout=5)  # fmt: skip
        if head.returncode == 0:
            out["git_commit"] = head.stdout.strip()
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no",
                                    "lclock"], cwd=repo, capture_output=True, text=True,
                                   timeout=5)  # fmt: skip
            out["git_dirty"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def describe_experiments(file: SettingsFile, origin: dict[str, Path | None]) -> list[str]:
    """``--list``: every experiment known here, its settings and where it is defined."""
    lines = []
    for name, table in file.experiments.items():
        try:
            s = settings_text(settings_json(resolve(file, {}, overrides=table,
                                                    overrides_where=f"{origin.get(name)}:experiments.{name}")))
        except SettingsError as exc:
            s = f"invalid: {exc}"
        src = origin.get(name)
        where = "preset" if src == PRESETS else str(src)
        desc = table.get("description", "")
        lines.append(f"{name:<30} {s}" + (f" — {desc}" if desc else "") + f"  [{where}]")
    return lines
