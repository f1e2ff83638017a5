"""One machine's worker process, as the supervisor holds it: start, talk, signal, reap.

The wrapper owns exactly one child. It is the only place that knows how a worker is
started (a multiprocessing context: forkserver where there is one, else spawn; never plain
fork) and how it is signalled. psutil only inspects and signals (the Process object made at
start, so a reused pid is never mistaken for ours); the child is reaped through
multiprocessing, whose ``exitcode`` psutil's wait functions would otherwise steal.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
from typing import Any

import orjson
import psutil

from lclock.runtime.worker import WorkerJob, worker_main


def start_context() -> Any:
    """The start method: forkserver where there is one, else spawn; never plain fork.

    forkserver forks each worker from a clean single-threaded server that has already
    imported the worker's modules: 64 machines start in well under a second instead of
    several (see BENCHMARKS.md), and the worker gets only the descriptors sent to it.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["lclock.runtime.worker"])
        return ctx
    return multiprocessing.get_context("spawn")


def start_helpers(ctx: Any, ignoring_sigint: Any) -> None:
    """Start multiprocessing's resource tracker, then the forkserver, before any worker.

    The resource tracker unblocks SIGINT itself once it is started, which would open a gap
    in ``ignoring_sigint``; started first, outside it, it is only checked later. The
    forkserver is started inside it, so it and every worker forked from it ignore Ctrl-C
    from their first instruction (and the forkserver SIGTERM and SIGHUP too: killed by a
    signal to the whole group, it could no longer say how each worker ended).
    """
    if ctx.get_start_method() != "forkserver":
        return
    from multiprocessing import forkserver, resource_tracker

    resource_tracker.ensure_running()
    with ignoring_sigint():
        forkserver.ensure_running()


class MachineProcess:
    """A worker process and the launcher's end of its control pipe."""

    def __init__(self, ctx: Any, job: WorkerJob) -> None:
        self.id = job.plan.machine_id
        self.conn, child_conn = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=worker_main, args=(job, child_conn),
                                name=f"lclock-machine-{self.id}")
        self._child_conn = child_conn
        self.ps: psutil.Process | None = None
        self.exitcode: int | None = None

    def start(self) -> None:
        self.proc.start()
        self._child_conn.close()
        with contextlib.suppress(psutil.Error):
            self.ps = psutil.Process(self.proc.pid)

    @property
    def pid(self) -> int | None:
        return self.proc.pid  # type: ignore[no-any-return]

    @property
    def sentinel(self) -> int:
        return self.proc.sentinel  # type: ignore[no-any-return]

    @property
    def alive(self) -> bool:
        return self.exitcode is None

    def send(self, msg: dict[str, Any]) -> None:
        if self.conn is None:
            return
        try:
            self.conn.send_bytes(orjson.dumps(msg))
        except (OSError, ValueError):
            pass

    def messages(self) -> list[dict[str, Any]]:
        """Every message the worker has sent so far; the pipe is closed at EOF."""
        out: list[dict[str, Any]] = []
        if self.conn is None:
            return out
        try:
            while self.conn.poll():
                out.append(orjson.loads(self.conn.recv_bytes()))
        except (EOFError, OSError, orjson.JSONDecodeError):
            self.conn.close()
            self.conn = None
        return out

    def reap(self, timeout: float = 1.0) -> int:
        """Collect the exit status (the sentinel fired: the process is ending)."""
        self.proc.join(timeout)
        self.exitcode = self.proc.exitcode if self.proc.exitcode is not None else -1
        return self.exitcode

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(psutil.Error):
            if self.ps is not None and self.ps.is_running():
                self.ps.send_signal(sig)

    def terminate(self) -> None:
        """SIGTERM, then SIGCONT: a stopped (SIGSTOP) process handles SIGTERM only once
        it runs again, and must not hold up the stop until it is killed."""
        self._signal(signal.SIGTERM)
        self._signal(signal.SIGCONT)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def pause(self) -> None:
        """Really stop the process (the fault plan's pause)."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def is_stopped(self) -> bool:
        """Stopped by a signal (SIGSTOP, SIGTSTP), by whoever sent it."""
        try:
            return self.ps is not None and self.ps.status() == psutil.STATUS_STOPPED
        except psutil.Error:
            return False

    def stop_now(self, grace: float) -> None:
        """Kill it if it still runs and collect its status (the last step of every run)."""
        if self.exitcode is None:
            self.kill()
            self.resume()  # SIGKILL ends even a stopped process; a continue costs nothing
            self.proc.join(grace)
            self.exitcode = self.proc.exitcode if self.proc.exitcode is not None else -9
