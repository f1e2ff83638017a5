"""Where simulated trials run: in this process, or in local worker processes (``--jobs N``).

Each runner is a generator of ``(spec, outcome)`` in the order trials finish; the caller
closes it (``contextlib.closing``) when it stops early, and closing stops every trial still
running: no worker process outlives the generator. Trials are independent (each has its
own seed), so where and in which order they run does not change one byte of their folders.
The Dask runner is in ``lclock.experiment.cluster``.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import signal
import threading
import time
from collections.abc import Generator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from lclock.experiment.records import Experiment
from lclock.experiment.trial import TrialOutcome, TrialSpec, run_sim_trial
from lclock.lifecycle import children_ignore_sigint, current, ignore, unblock_all_in_child

Results = Generator[tuple[TrialSpec, TrialOutcome], None, None]


def default_jobs() -> int:
    """The cores this process may use (its CPU affinity where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


#: A sweep of fewer ticks than this, without reports, runs in this process by default:
#: starting the worker processes (about a second) would cost more than they save.
SMALL_SWEEP_TICKS = 200_000


def auto_jobs(experiments: list[Experiment], report: bool, cores: int) -> int:
    """The default of --jobs: every core, unless the sweep is too small to gain from them."""
    if report:  # each trial's report takes about a second: always worth spreading
        return cores
    ticks = 0.0
    for e in experiments:
        s = e.settings
        rate = sum(s.rates) if s.rates else s.machines * (s.rate_min + s.rate_max) / 2
        ticks += e.trials * rate * s.duration
    return 1 if ticks < SMALL_SWEEP_TICKS else cores


def run_serial(specs: list[TrialSpec], root: Path) -> Results:
    for spec in specs:
        yield spec, run_sim_trial(spec, root)


PRELOAD = ["lclock.experiment.trial", "lclock.analysis.analyze"]
#: What the trials' reports need as well (about a second of imports, so only when used).
PRELOAD_REPORT = ["lclock.analysis.report", "matplotlib.pyplot"]


def _context(report: bool) -> Any:
    """forkserver with the trial's modules preloaded, as the launcher does: each worker
    forks from a clean server that has imported the simulator, the analysis (and matplotlib
    for the reports) once, instead of importing them itself."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD + (PRELOAD_REPORT if report else []))
        return ctx
    return multiprocessing.get_context("spawn")  # pragma: no cover - Windows


def _worker_init(experiment: int) -> None:
    """Ctrl-C in the terminal reaches the whole process group: the experiment decides what
    stops (it kills its workers), so a worker does not die half-way on its own. But when
    the experiment itself is gone (SIGKILLed, say), nobody can: the worker ends itself."""
    ignore((signal.SIGINT,))
    unblock_all_in_child()  # the experiment held the stop signals blocked while starting us
    threading.Thread(target=_end_with, args=(experiment,), name="lclock-end-with-experiment",
                     daemon=True).start()


def _end_with(pid: int) -> None:
    """Wait for process ``pid`` to end, then SIGKILL this worker.

    A worker's parent is the forkserver, which lives as long as any worker does (each holds
    the end of its "alive" pipe), so the parent-death signal cannot say the experiment died,
    and the worker would go on with its trial and then wait for the next one for ever.
    """
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        fd = None  # gone already
    except (AttributeError, OSError):  # pragma: no cover - not Linux 5.3+: poll
        while _alive(pid):
            time.sleep(0.5)
        fd = None
    if fd is not None:
        select.select([fd], [], [])  # readable once the process has ended
    os.kill(os.getpid(), signal.SIGKILL)


def _alive(pid: int) -> bool:  # pragma: no cover - the fallback of _end_with
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    """SIGKILL every worker process of the pool and reap it.

    ProcessPoolExecutor has no public way to stop a running task before Python 3.14
    (``kill_workers``); its ``_processes`` map has been there since 3.2.
    """
    kill = getattr(pool, "kill_workers", None)
    if callable(kill):  # pragma: no cover - Python 3.14
        kill()
        return
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for p in procs:
        try:
            p.kill()
        except (ProcessLookupError, AttributeError, ValueError):
            pass
    for p in procs:
        try:
            p.join(timeout=5)
        except (AssertionError, ValueError):  # pragma: no cover - already reaped
            pass


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Kill the workers, then wait (bounded) for the pool's manager thread to end.

    Left running, that thread closes its wakeup pipe while the interpreter's exit
    (``concurrent.futures.process._python_exit``, not under the pool's lock before Python
    3.12) writes into it: a SIGTERM right as the workers started ended in exit 143 and
    then an ``OSError: [Errno 9] Bad file descriptor`` traceback from threading._shutdown.
    """
    manager = getattr(pool, "_executor_manager_thread", None)
    _kill_workers(pool)  # first: shutdown() forgets the worker processes
    pool.shutdown(wait=False, cancel_futures=True)
    if isinstance(manager, threading.Thread) and manager.is_alive():
        manager.join(timeout=10)


def run_local(specs: list[TrialSpec], root: Path, jobs: int) -> Results:
    """Up to ``jobs`` trials at a time, each in a worker process of this host.

    The workers start while Ctrl-C is ignored here, so they ignore it from their first
    instruction; the stop signals stay blocked meanwhile (Linux keeps a blocked signal
    pending even while it is ignored), so one that comes then is not lost, as it once was
    (the experiment ran to its end, exit 0): it is raised once the pool is up, where the
    workers are stopped with the rest.
    """
    ctx = _context(any(spec.report for spec in specs))
    if ctx.get_start_method() == "forkserver":
        # Started first: starting it unblocks SIGINT and SIGTERM (multiprocessing blocks
        # them around its spawn, then unblocks them), which would reopen the window below.
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()
    stop = current()
    pool: ProcessPoolExecutor | None = None
    finished = False
    try:
        # SIGTERM and SIGHUP held back too: one that comes now is raised once the pool is
        # up, where its workers are stopped with the rest
        with children_ignore_sigint(stop, also_blocked=(signal.SIGTERM, signal.SIGHUP)):
            pool = ProcessPoolExecutor(
                max_workers=max(1, min(jobs, len(specs))),
                mp_context=ctx,
                initializer=_worker_init,
                initargs=(os.getpid(),),
            )
            futures: dict[Future[TrialOutcome], TrialSpec] = {
                pool.submit(run_sim_trial, spec, root): spec for spec in specs
            }
        stop.act_now()  # a Ctrl-C that came while the workers started
        for fut in as_completed(futures):
            spec = futures[fut]
            try:
                outcome = fut.result()
            except BrokenProcessPool as exc:
                outcome = TrialOutcome("failed", error=f"its worker process died ({exc})")
            yield spec, outcome
        finished = True
    finally:
        if pool is not None:
            with stop.shielded():
                if finished:
                    pool.shutdown(wait=True)
                else:
                    _stop_pool(pool)
