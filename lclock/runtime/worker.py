"""A machine as a worker process of ``lclock run``: the process edge around the driver.

Everything here is what a *process* needs and the node and driver must not know: the
signal set-up of a child (no inherited mask; Ctrl-C and SIGHUP left to the launcher;
SIGTERM as the launcher's second stage), descriptors renumbered for ``select``, the log
file, and the pipe to the launcher.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from lclock.core.node import MachinePlan, Node
from lclock.lifecycle import (
    StopRequest,
    signal_on_parent_death,
    unblock_all_in_child,
    worker_signals,
)
from lclock.logfile import LogFile, describe_os_error
from lclock.runtime.control import LauncherControl
from lclock.runtime.driver import RealTimeDriver
from lclock.transport import Transport


@dataclass
class WorkerJob:
    """Everything a worker needs; picklable, so it travels to a forked or spawned process."""

    plan: MachinePlan
    log_path: str
    transport: Transport
    # Poll this long before each deadline (the launcher turns it off for large N, where
    # the polling would add up; see RealTimeDriver).
    spin: float = 0.001
    #: The run has programs (SPEC 9): every machine agrees on the clocks with the launcher
    #: before it connects, and frames carry the programs' messages.
    agree: bool = False
    #: This machine's program (``lclock.impl.program.ProgramSpec``), if it runs one.
    program: Any = None


# select() takes descriptors below FD_SETSIZE (1024) only, but a spawned child inherits the
# launcher's numbers, which run into the thousands for 64 machines. A child has few open
# files, so dup() gives it low numbers; select() keeps its microsecond timeouts (poll and
# epoll round to milliseconds).
def low_fd(fd: int) -> int:
    """A low duplicate of an fd that multiprocessing still owns (and will close itself)."""
    return fd if fd < 512 else os.dup(fd)


def low_fd_socket(sock: socket.socket) -> socket.socket:
    if sock.fileno() < 512:
        return sock
    new = sock.dup()
    sock.close()
    return new


def low_fd_connection(conn: Connection) -> Connection:
    if conn.fileno() < 512:
        return conn
    new = Connection(os.dup(conn.fileno()))
    conn.close()
    return new


def let_forkserver_end_with_launcher() -> None:
    """Close this worker's copy of the forkserver's "alive" pipe.

    multiprocessing hands every child a copy so that the forkserver (which exits at EOF on
    that pipe) outlives the children too. A worker starts no process, and a forkserver kept
    alive by a stopped worker would never end and so never wake that worker.
    """
    fs = sys.modules.get("multiprocessing.forkserver")
    server = getattr(fs, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if isinstance(fd, int):
        with contextlib.suppress(OSError):
            os.close(fd)
        server._forkserver_alive_fd = None  # type: ignore[union-attr]


def worker_main(job: WorkerJob, conn: Connection) -> None:
    """Entry point of the worker process."""
    unblock_all_in_child()
    # A machine the launcher paused (SIGSTOP) would stay stopped for ever if the launcher
    # died; its parent (the forkserver) ends with the launcher, and this wakes it to notice.
    signal_on_parent_death(signal.SIGCONT)
    let_forkserver_end_with_launcher()
    stop = StopRequest()
    wake_r, _wake_w = worker_signals(stop)
    conn = low_fd_connection(conn)
    parent = multiprocessing.parent_process()
    sentinel = low_fd(parent.sentinel) if parent is not None and parent.sentinel is not None else None
    control = LauncherControl(conn, sentinel, wake_r, stop)
    try:
        log = LogFile.create(job.log_path)
    except OSError as exc:
        why = f"cannot create {job.log_path}: {describe_os_error(exc)}"
        sys.stderr.write(f"lclock: machine {job.plan.machine_id}: {why}\n")
        control.report({"t": "done", "reason": "log_failed", "log_error": why})
        sys.exit(1)
    host = None
    plan = job.plan
    if job.agree:
        host, plan = start_program(job, control)
    try:
        node = Node(plan)
        if host is not None:
            host.wrap(node, lambda: _stopping(control))
        driver = RealTimeDriver(node, log, job.transport, control, spin=job.spin,
                                low_fd=low_fd_socket, program=host, bodies=job.agree)
        done = driver.run()
    finally:
        if host is not None:
            host.close()
    log.close()
    sys.exit(1 if done.get("reason") in ("connect_failed", "program_failed") else 0)


def _stopping(control: LauncherControl) -> bool:
    """Whether the launcher (or a signal) has asked this machine to stop, looked at now."""
    try:
        ready, _w, _x = select.select(control.fds(), [], [], 0)
    except InterruptedError:
        ready = []
    control.on_ready(ready)
    return control.stop_reason is not None


#: How long a machine waits for the launcher's word on the clocks (every program's init).
AGREE_TIMEOUT = 120.0


def start_program(job: WorkerJob, control: LauncherControl) -> tuple[Any, Any]:
    """Start this machine's program (if it has one) and agree with the launcher on the
    clocks every machine keeps (SPEC 9.2); the host and the machine's plan narrowed to them.

    A machine without a program offers every clock; a stop before the word comes leaves
    the plan as it is (the machine then stops before its first tick).
    """
    from lclock.impl.host import ProgramHost, narrowed_plan, offered_clocks

    host = None
    kept = offered_clocks(job.plan).names()
    if job.program is not None:
        host = ProgramHost(job.program, job.plan, Path(job.log_path).parent)
        kept = host.start(lambda: _stopping(control))
    control.report({"t": "clocks", "clocks": kept})
    deadline = time.monotonic() + AGREE_TIMEOUT
    while control.agreed is None and control.stop_reason is None:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            ready, _w, _x = select.select(control.fds(), [], [], min(left, 1.0))
        except InterruptedError:
            ready = []
        control.on_ready(ready)
    if control.agreed is None:
        return host, job.plan
    return host, narrowed_plan(job.plan, control.agreed)
