"""The experiment runner: named settings, several trials each, one folder with everything.

An experiment is a table ``[experiments.NAME]`` of settings.toml (run keys, a description,
a number of trials). Each trial is a complete run folder, made either by the real launcher
in a subprocess (the default: the exercise is about real processes) or by the simulator in
this process (``--sim``: fast, deterministic). Trial k of every experiment uses the seed
``base + k - 1``; experiments with the same rate range therefore draw the same rates in the
same trial, which pairs them and makes their difference less noisy.

Layout of an experiment folder::

    experiment.json                 what was asked for, and progress (rewritten per trial)
    summary.json, summary.md        mean and 95% interval across trials, per experiment
    comparison.png, ...             plots across experiments
    <name>/settings.toml            the resolved settings every trial of <name> ran with
    <name>/trial-<k>/<run_id>/      the run folder of trial k
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from lclock.experiment.metrics import run_metrics
from lclock.experiment.stats import mean_ci
from lclock.settings import RunSettings, SettingsError, SettingsFile, resolve
from lclock.sim.engine import NetworkSettings, run_sim

DEFAULT_TRIALS = 5
#: Per machine, for the slowest and the fastest machine of each trial.
MACHINE_METRICS = (
    "mean_jump", "max_jump", "drift_mean", "drift_max", "max_queue", "gap_fraction", "queue_growth",
)  # fmt: skip
#: Per run: highest minus lowest Lamport clock at the same moment.
RUN_METRICS = ("spread_mean", "spread_max")
ROLES = ("slowest", "fastest")

#: Grace of a real trial past its duration before it counts as hung (start-up + stop).
REAL_TRIAL_GRACE = 60.0


class Interrupted(Exception):
    """Ctrl-C or SIGTERM while trials were running; ``code`` is the exit status (130/143)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class Experiment:
    """One named experiment, resolved: the settings each of its trials runs with."""

    name: str
    description: str
    settings: RunSettings
    trials: int


@dataclass
class Trial:
    """One run of an experiment and what it measured."""

    experiment: str
    index: int
    seed: int
    status: str = "pending"
    exit_code: int | None = None
    run_dir: Path | None = None
    wall_seconds: float = 0.0
    rates: list[int] = field(default_factory=list)
    metrics: dict[str, Any] | None = None
    error: str | None = None


def plan(
    file: SettingsFile,
    names: list[str],
    run_all: bool,
    trials: int | None,
    duration: float | None,
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
        where = f"{file.path}:experiments.{name}"
        settings = resolve(file, {"duration": duration}, overrides=table, overrides_where=where)
        n = trials if trials is not None else table.get("trials", DEFAULT_TRIALS)
        if not 1 <= n <= 1000:
            raise SettingsError(f"{where}.trials: must be an integer from 1 to 1000 (got {n})")
        out.append(Experiment(name, table.get("description", ""), settings, n))
    return out


def settings_toml(settings: RunSettings) -> str:
    """The run keys of a trial as a settings file (what the real launcher reads)."""

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
        "quiet": True,
        "report": False,
    }
    lines = ["# Written by lclock experiment: the settings of every trial of this experiment."]
    lines += [f"{k} = {val(v)}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


def _fill_from_run(trial: Trial) -> None:
    """Rates and metrics of a finished trial, from its run folder."""
    assert trial.run_dir is not None
    run = orjson.loads((trial.run_dir / "run.json").read_bytes())
    trial.rates = [m["rate"] for m in sorted(run.get("machines", []), key=lambda m: m["id"])]
    trial.metrics = run_metrics(trial.run_dir)


def run_sim_trial(exp: Experiment, trial: Trial, trial_dir: Path, net: NetworkSettings) -> None:
    """A trial in virtual time, in this process."""
    t = time.perf_counter()
    settings = replace(exp.settings, seed=trial.seed, quiet=True, report=False)
    run_dir, _results, _meta = run_sim(settings, net, trial_dir)
    trial.run_dir = run_dir
    trial.wall_seconds = time.perf_counter() - t
    trial.status, trial.exit_code = "completed", 0
    _fill_from_run(trial)


def real_command(settings_path: Path, trial_dir: Path, s: RunSettings, seed: int) -> list[str]:
    cmd = [
        sys.executable, "-m", "lclock", "run",
        "--settings", str(settings_path),
        "--output", str(trial_dir),
        "--quiet", "--no-report",
        "--duration", repr(s.duration),
        "--seed", str(seed),
        "--machines", str(s.machines),
        "--rate-min", str(s.rate_min),
        "--rate-max", str(s.rate_max),
        "--dice-sides", str(s.dice_sides),
    ]  # fmt: skip
    if s.rates:
        cmd += ["--rates", ",".join(str(r) for r in s.rates)]
    return cmd


def _stop_child(
    proc: subprocess.Popen[bytes], waits: tuple[float, float, float] = (10.0, 5.0, 5.0)
) -> None:
    """Stop the launcher the way a user would: SIGINT, then SIGTERM, then SIGKILL its group.

    ``waits`` are the seconds given to each stage; the launcher promises a graceful stop
    within about a second, so the first is generous. A second Ctrl-C while we wait skips to
    SIGKILL, and whatever happens the whole session is killed at the end, so no process of
    the trial outlives this call.
    """
    stages = tuple(zip((signal.SIGINT, signal.SIGTERM, signal.SIGKILL), waits, strict=True))
    try:
        for sig, wait in stages:
            if proc.poll() is not None:
                break
            try:
                if sig == signal.SIGINT:
                    proc.send_signal(sig)
                else:
                    os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=wait)
    finally:
        # Anything the launcher left in its session goes too (it should have left nothing).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def run_real_trial(exp: Experiment, trial: Trial, trial_dir: Path, settings_path: Path) -> None:
    """A trial of real processes: the real launcher as a subprocess in its own session.

    Its own session, so a Ctrl-C in the terminal reaches only us and we stop the launcher
    gracefully (its run folder then says ``interrupted``); killing the session in
    ``finally`` guarantees that no process of the trial outlives it.
    """
    trial_dir.mkdir(parents=True, exist_ok=True)
    cmd = real_command(settings_path, trial_dir, exp.settings, trial.seed)
    t = time.perf_counter()
    log = trial_dir / "launcher.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        with open(log, "wb") as fh:
            proc = subprocess.Popen(
                cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
            try:
                code = proc.wait(timeout=exp.settings.duration + REAL_TRIAL_GRACE)
            except subprocess.TimeoutExpired:
                _stop_child(proc)
                code = proc.wait()
                trial.error = f"did not finish within {exp.settings.duration + REAL_TRIAL_GRACE:g} s"
        trial.exit_code = code
    finally:
        if proc is not None and proc.poll() is None:
            _stop_child(proc)
        elif proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        trial.wall_seconds = time.perf_counter() - t
        runs = [p for p in trial_dir.iterdir() if p.is_dir()]
        if len(runs) == 1:
            trial.run_dir = runs[0]
        if trial.exit_code is None:  # stopped by Ctrl-C / SIGTERM while it ran
            trial.status = "interrupted"
            trial.exit_code = proc.returncode if proc is not None else None
    if trial.exit_code == 0 and trial.run_dir is not None and trial.error is None:
        trial.status = "completed"
        _fill_from_run(trial)
    else:
        trial.status = "failed"
        if trial.error is None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            trial.error = f"exit status {trial.exit_code}" + (f": {tail[0]}" if tail else "")


def roles(trial: Trial) -> dict[str, dict[str, Any]]:
    """The slowest and the fastest machine of a trial (ties: the lowest id is slowest, the
    highest id is fastest, so the two differ whenever there are two machines)."""
    assert trial.metrics is not None
    ms = trial.metrics["machines"]
    slow = min(ms, key=lambda m: (m["rate"], m["id"]))
    fast = max(ms, key=lambda m: (m["rate"], m["id"]))
    return {"slowest": slow, "fastest": fast}


def summarize_experiment(exp: Experiment, trials: list[Trial], root: Path) -> dict[str, Any]:
    """Mean and 95% interval across the completed trials of one experiment."""
    done = [t for t in trials if t.status == "completed" and t.metrics is not None]
    runs = []
    per_role: dict[str, dict[str, list[float]]] = {r: {m: [] for m in MACHINE_METRICS} for r in ROLES}
    per_run: dict[str, list[float]] = {m: [] for m in RUN_METRICS}
    for t in trials:
        entry: dict[str, Any] = {
            "trial": t.index,
            "seed": t.seed,
            "status": t.status,
            "exit_code": t.exit_code,
            "run_dir": str(t.run_dir.relative_to(root)) if t.run_dir else None,
            "rates": t.rates,
            "wall_seconds": round(t.wall_seconds, 3),
        }
        if t.error:
            entry["error"] = t.error
        if t in done:
            rl = roles(t)
            for role, m in rl.items():
                entry[role] = {"id": m["id"], "rate": m["rate"], **{k: m.get(k) for k in MACHINE_METRICS}}
                for k in MACHINE_METRICS:
                    if m.get(k) is not None:
                        per_role[role][k].append(m[k])
            assert t.metrics is not None
            for k in RUN_METRICS:
                entry[k] = t.metrics[k]
                if t.metrics[k] is not None:
                    per_run[k].append(t.metrics[k])
        runs.append(entry)
    s = exp.settings
    return {
        "name": exp.name,
        "description": exp.description,
        "settings": {
            "machines": s.machines,
            "duration": s.duration,
            "rate_min": s.rate_min,
            "rate_max": s.rate_max,
            "rates": list(s.rates) if s.rates else None,
            "dice_sides": s.dice_sides,
            "vector_clocks": s.vector_clocks,
        },
        "trials": exp.trials,
        "completed": len(done),
        "runs": runs,
        **{role: {k: mean_ci(v) for k, v in per_role[role].items()} for role in ROLES},
        "run": {k: mean_ci(v) for k, v in per_run.items()},
    }


ProgressFn = Callable[[str], None]


def run_experiments(
    experiments: list[Experiment],
    root: Path,
    base_seed: int,
    sim: bool,
    net: NetworkSettings,
    meta: dict[str, Any],
    progress: ProgressFn,
) -> tuple[dict[str, Any], list[Trial]]:
    """Run every trial of every experiment into ``root``; return the summary and the trials.

    experiment.json is rewritten after every trial, so an interrupted experiment still says
    what it did. Raises Interrupted (after stopping a running trial) on Ctrl-C / SIGTERM.
    """
    root.mkdir(parents=True, exist_ok=True)
    all_trials: dict[str, list[Trial]] = {}
    total = sum(e.trials for e in experiments)
    count = 0
    started = time.perf_counter()
    meta = {
        **meta,
        "status": "running",
        "base_seed": base_seed,
        "mode": "sim" if sim else "real",
        "code": code_version(),
    }
    if sim:
        meta["sim"] = net.to_json()
    _write_json(root / "experiment.json", meta)
    status = "interrupted"
    try:
        for exp in experiments:
            exp_dir = root / exp.name
            exp_dir.mkdir(parents=True, exist_ok=True)
            settings_path = exp_dir / "settings.toml"
            settings_path.write_text(settings_toml(exp.settings))
            trials = all_trials.setdefault(exp.name, [])
            for k in range(1, exp.trials + 1):
                count += 1
                trial = Trial(exp.name, k, base_seed + k - 1)
                trials.append(trial)
                left = ""
                if not sim:
                    remaining = total - count + 1
                    left = f", about {math.ceil(remaining * (exp.settings.duration + 3) / 60)} min left"
                progress(
                    f"[{count}/{total}] trial {k}/{exp.trials} of {exp.name} "
                    f"(seed {trial.seed}, {'sim' if sim else 'real'}, "
                    f"{exp.settings.duration:g} s{left}) ..."
                )
                trial_dir = exp_dir / f"trial-{k}"
                if sim:
                    run_sim_trial(exp, trial, trial_dir, net)
                else:
                    run_real_trial(exp, trial, trial_dir, settings_path)
                progress("    " + describe_trial(trial))
                meta["progress"] = {"done": count, "total": total}
                _write_json(root / "experiment.json", meta)
        status = "completed"
    finally:
        summary = {
            **meta,
            "status": status,
            "wall_seconds": round(time.perf_counter() - started, 3),
            "experiments": [
                summarize_experiment(e, all_trials.get(e.name, []), root) for e in experiments
            ],
        }
        summary.pop("progress", None)
        meta["status"] = status
        _write_json(root / "experiment.json", meta)
        _write_json(root / "summary.json", summary)
    return summary, [t for ts in all_trials.values() for t in ts]


def describe_trial(t: Trial) -> str:
    if t.status != "completed" or t.metrics is None:
        return f"{t.status}: {t.error or 'no run folder'}"
    rl = roles(t)
    s, f = rl["slowest"], rl["fastest"]
    return (
        f"done in {t.wall_seconds:.1f} s: rates {','.join(map(str, t.rates))}; "
        f"slowest (rate {s['rate']}) mean jump {_num(s['mean_jump'])}, "
        f"drift {_num(s['drift_mean'])}, max queue {s['max_queue']}; "
        f"fastest (rate {f['rate']}) mean jump {_num(f['mean_jump'])}"
    )


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))
    os.replace(tmp, path)


def resummarize(root: Path) -> dict[str, Any]:
    """Recompute summary.json of an existing experiment folder from its run folders.

    Why: the metrics come from the analysis code, which may improve after the runs were
    made; real trials take minutes, recomputing their numbers takes a second.
    """
    from lclock.settings import parse_settings_file

    old = orjson.loads((root / "summary.json").read_bytes())
    experiments = []
    summaries = []
    for e in old["experiments"]:
        settings = resolve(parse_settings_file(root / e["name"] / "settings.toml"), {})
        exp = Experiment(e["name"], e.get("description", ""), settings, e["trials"])
        trials = []
        for r in e["runs"]:
            t = Trial(e["name"], r["trial"], r["seed"], status=r["status"],
                      exit_code=r.get("exit_code"), wall_seconds=r.get("wall_seconds", 0.0),
                      error=r.get("error"))  # fmt: skip
            if r.get("run_dir"):
                t.run_dir = root / r["run_dir"]
            if t.status == "completed" and t.run_dir is not None:
                _fill_from_run(t)
            trials.append(t)
        experiments.append(exp)
        summaries.append(summarize_experiment(exp, trials, root))
    summary = {**old, "experiments": summaries}
    _write_json(root / "summary.json", summary)
    return summary


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
