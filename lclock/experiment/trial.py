"""One simulated trial: simulate it, write its report, measure it -- wherever it runs.

The same function runs a trial in this process (``--jobs 1``), in a local worker process
(``--jobs N``) and in a process on a Dask worker (``--cluster``), so the trial folder is
the same bytes in every case (run.json's ``wall_seconds`` aside: it is the wall time).

A trial is simulated into a staging folder ``<name>/.trial-<k>.partial/`` and renamed to
``<name>/trial-<k>/`` when it is complete, so a trial folder is either whole or absent.

``python -m lclock.experiment.trial DIR`` runs the pickled TrialSpec ``DIR/spec.pickle``
into ``DIR/out`` and pickles its TrialOutcome to ``DIR/outcome.pickle``: a cluster worker
runs a trial that way, as a child process it can kill when the experiment is stopped.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lclock.experiment.metrics import metrics_from_summary
from lclock.settings import RunSettings
from lclock.sim.engine import NetworkSettings


@dataclass(frozen=True)
class TrialSpec:
    """Everything a simulated trial needs, as plain picklable data."""

    experiment: str
    index: int
    seed: int
    settings: RunSettings
    net: NetworkSettings
    report: bool = True
    #: The experiment's command line, recorded in the trial's run.json wherever it runs.
    command: tuple[str, ...] = ()

    @property
    def folder(self) -> str:
        """The trial folder, relative to the experiment folder."""
        return f"{self.experiment}/trial-{self.index}"


@dataclass
class TrialOutcome:
    """What a trial sends back to the experiment (from a local or a remote process)."""

    status: str
    run_id: str | None = None
    rates: list[int] = field(default_factory=list)
    metrics: dict[str, Any] | None = None
    wall_seconds: float = 0.0
    error: str | None = None
    host: str = ""
    #: Remote trials only: the trial folder's files, path relative to it -> bytes.
    files: dict[str, bytes] | None = None


def staging_folder(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.partial")


@contextlib.contextmanager
def _argv(command: tuple[str, ...]) -> Iterator[None]:
    """run.json records ``sys.argv``: make it the experiment's command in any process."""
    old = sys.argv
    if command:
        sys.argv = list(command)
    try:
        yield
    finally:
        sys.argv = old


def run_sim_trial(spec: TrialSpec, root: Path) -> TrialOutcome:
    """Simulate ``spec`` into ``root/<name>/trial-<k>/``, with its report unless told not to.

    A failure of the trial itself (a full disk, a bug) comes back as a failed outcome, so
    one bad trial does not end a sweep; Ctrl-C and SIGTERM propagate.
    """
    from lclock.sim.engine import run_sim

    dest = root / spec.folder
    staging = staging_folder(dest)
    t = time.perf_counter()
    host = socket.gethostname()
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        settings = replace(spec.settings, seed=spec.seed, quiet=True, report=False)
        with _argv(spec.command):
            run_dir, _results, meta = run_sim(settings, spec.net, staging)
        os.replace(run_dir, dest)
        staging.rmdir()
        summary = _analyse(dest, spec.report)
    except Exception as exc:  # noqa: BLE001 - reported as the trial's error
        shutil.rmtree(staging, ignore_errors=True)
        return TrialOutcome("failed", error=f"{type(exc).__name__}: {exc}", host=host,
                            wall_seconds=time.perf_counter() - t)  # fmt: skip
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    rates = [m["rate"] for m in sorted(meta.get("machines", []), key=lambda m: m["id"])]
    return TrialOutcome(
        "completed",
        run_id=str(meta["run_id"]),
        rates=rates,
        metrics=metrics_from_summary(summary),
        wall_seconds=time.perf_counter() - t,
        host=host,
    )


def _analyse(run_dir: Path, report: bool) -> dict[str, Any]:
    """The analysis summary; with ``report`` also report.html, the figures, summary.json."""
    if report:
        from lclock.analysis.report import write_report

        return write_report(run_dir)[0]
    from lclock.analysis.analyze import analyze_run

    return analyze_run(run_dir)


def folder_files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder``, by its path relative to it (what a remote trial returns)."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def write_files(files: dict[str, bytes], dest: Path) -> None:
    """Put a remote trial's files at ``dest`` as if the trial had run here (whole or not at all)."""
    staging = staging_folder(dest)
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        for rel, data in files.items():
            if Path(rel).is_absolute() or ".." in Path(rel).parts:
                raise ValueError(f"refusing a file outside the trial folder: {rel!r}")
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        os.replace(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


# -- the trial as a child process (what a cluster worker runs) ------------------------------

SPEC_FILE, OUTCOME_FILE, OUT_DIR = "spec.pickle", "outcome.pickle", "out"


def _exit_with_parent(parent: int) -> None:
    """A trial process whose worker died (killed, lost) must not run on by itself."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(3)


def child_main(work: Path) -> int:
    spec: TrialSpec = pickle.loads((work / SPEC_FILE).read_bytes())
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    outcome = run_sim_trial(spec, work / OUT_DIR)
    if outcome.status == "completed":
        outcome.files = folder_files(work / OUT_DIR / spec.folder)
    tmp = work / f".{OUTCOME_FILE}.tmp"
    tmp.write_bytes(pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL))
    os.replace(tmp, work / OUTCOME_FILE)
    return 0


if __name__ == "__main__":
    # Through the module's own name, so what is pickled names lclock.experiment.trial's
    # classes, not __main__'s.
    from lclock.experiment import trial as _trial

    sys.exit(_trial.child_main(Path(sys.argv[1])))
