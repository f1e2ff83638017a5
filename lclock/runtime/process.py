"""One machine's worker process, as the supervisor holds it: start, talk, signal, reap.

The wrapper owns exactly one child. It is the only place that knows how a worker is
started (in a multiprocessing context of ``lclock.runtime.helpers``: forkserver where
there is one, else spawn; never plain fork) and how it is signalled. psutil only inspects and signals (the Process object made at
start, so a reused pid is never mistaken for ours); the child is reaped through
multiprocessing, whose ``exitcode`` psutil's wait functions would otherwise steal.
"""

from __future__ import annotations

import contextlib
import signal
from typing import Any

import orjson
import psutil

from lclock.runtime.worker import WorkerJob, worker_main


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
