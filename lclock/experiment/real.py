"""Real trials: the real launcher (``lclock run``) as a subprocess, one trial at a time.

Real trials measure timing, so they must not share a host's cores: they run one after
another here, or, with ``--plan``, as one self-contained command per trial for a batch
system (Slurm job array, GNU parallel over SSH, a Kubernetes Job), and ``--summarize``
gathers what comes back. The command of a planned trial is exactly the one run here.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from lclock.experiment.records import Experiment, Trial, trial_folder
from lclock.lifecycle import child_env_stopping_with_me
from lclock.runfolder import read_run_json
from lclock.setting_table import to_flags
from lclock.settings import RunSettings

#: Grace of a real trial past its duration before it counts as hung (start-up + stop).
REAL_TRIAL_GRACE = 60.0
LOCAL_PROGRAM = (sys.executable, "-m", "lclock")


def real_command(
    s: RunSettings,
    seed: int,
    output: Path | str,
    *,
    quiet: bool = True,
    report: bool = True,
    program: tuple[str, ...] = LOCAL_PROGRAM,
) -> list[str]:
    """``lclock run`` with every setting of the trial as a flag.

    ``--settings /dev/null`` makes it self-contained: a settings.toml in the folder where
    a batch system starts it cannot change the trial.
    """
    trial = replace(s, seed=seed, output=str(output), quiet=quiet, report=report,
                    transport="socketpair")
    return [*program, "run", "--settings", os.devnull, *to_flags(trial)]


def plan_lines(
    experiments: list[Experiment], root: Path | str, base_seed: int, report: bool
) -> list[str]:
    """One shell command per trial, in trial order: ``lclock run ... --output
    ROOT/<name>/trial-<k>`` (the run folder lands one level below; --summarize reads it)."""
    lines = []
    for exp in experiments:
        for k in range(1, exp.trials + 1):
            out = Path(root) / trial_folder(exp.name, k)
            cmd = real_command(exp.settings, base_seed + k - 1, out, quiet=False, report=report,
                               program=("lclock",))  # fmt: skip
            lines.append(shlex.join(cmd))
    return lines


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


def _settle(staging: Path, dest: Path) -> Path | None:
    """Move the launcher's run folder up to ``dest`` (no extra level); its stderr, if it
    said anything, goes along as launcher.log. Returns the run folder, if there is one."""
    runs = [p for p in staging.iterdir() if p.is_dir()]
    log = staging / "launcher.log"
    if len(runs) != 1:
        os.replace(staging, dest)  # whatever is there, for the user to look at
        return None
    os.replace(runs[0], dest)
    if log.exists() and log.stat().st_size:
        os.replace(log, dest / "launcher.log")
    shutil.rmtree(staging, ignore_errors=True)
    return dest


def run_real_trial(
    exp: Experiment, trial: Trial, root: Path, *, live: bool = False, report: bool = True
) -> None:
    """A trial of real processes: the real launcher as a subprocess in its own session.

    Its own session, so a Ctrl-C in the terminal reaches only us and we stop the launcher
    gracefully (its run folder then says ``interrupted``); killing the session in
    ``finally`` guarantees that no process of the trial outlives it. With ``live`` the
    launcher's own display (progress, end table) goes to our stdout.
    """
    dest = root / trial.folder
    staging = dest.with_name(f".{dest.name}.running")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    cmd = real_command(exp.settings, trial.seed, staging, quiet=not live, report=report)
    t = time.perf_counter()
    log = staging / "launcher.log"
    proc: subprocess.Popen[bytes] | None = None
    limit = exp.settings.duration + REAL_TRIAL_GRACE
    try:
        with open(log, "wb") as fh, _display(live, staging, dest) as shown:
            proc = subprocess.Popen(
                cmd, stdout=fh if shown is None else shown, stderr=fh, stdin=subprocess.DEVNULL,
                start_new_session=True, env=child_env_stopping_with_me(),
            )  # fmt: skip
            try:
                code = proc.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                _stop_child(proc)
                code = proc.wait()
                trial.error = f"did not finish within {limit:g} s"
        trial.exit_code = code
    finally:
        if proc is not None and proc.poll() is None:
            _stop_child(proc)
        elif proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        trial.wall_seconds = time.perf_counter() - t
        tail = _last_line(log)
        trial.run_dir = _settle(staging, dest)
        if trial.exit_code is None:  # stopped by Ctrl-C / SIGTERM while it ran
            trial.status = "interrupted"
            trial.exit_code = proc.returncode if proc is not None else None
    if trial.exit_code == 0 and trial.run_dir is not None and trial.error is None:
        trial.status = "completed"
        fill_from_run(trial)
    else:
        trial.status = "failed"
        if trial.error is None:
            trial.error = f"exit status {trial.exit_code}" + (f": {tail}" if tail else "")


def _display(live: bool, staging: Path, dest: Path) -> contextlib.AbstractContextManager[int | None]:
    """With ``live``, the launcher's stdout: ours, with its run folder's paths shown as they
    will be once it is moved to ``dest``."""
    if not live:
        return contextlib.nullcontext()
    from lclock.experiment.relabel import relabelled_stdout

    return relabelled_stdout(staging, dest)


def _last_line(path: Path) -> str | None:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return None
    return lines[-1] if lines else None


def fill_from_run(trial: Trial) -> None:
    """Rates and metrics of a finished trial, from its run folder (analysed now)."""
    from lclock.experiment.metrics import run_metrics

    assert trial.run_dir is not None
    run = read_run_json(trial.run_dir)
    trial.rates = [m["rate"] for m in sorted(run.get("machines", []), key=lambda m: m["id"])]
    trial.metrics = run_metrics(trial.run_dir)
