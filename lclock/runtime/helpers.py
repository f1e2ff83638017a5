"""multiprocessing's helper processes of a run: the start method, the forkserver and the
resource tracker; started as early as ``lclock run`` can, and ended with it.

Why a module of its own, importing only multiprocessing: the command line starts the
forkserver *before* it imports the launcher and resolves the settings (``lclock.cli``), so
the forkserver's interpreter start and its preload of the worker's modules run on another
core while the launcher is still importing, instead of after it (start-up, BENCHMARKS.md).
A run that ends before its first worker (bad settings, an unusable output folder, Ctrl-C
while starting) ends them too: a bad input leaves no process behind, as before.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections.abc import Callable
from typing import Any

#: What the forkserver imports once, so that no worker imports it again: the worker, and
#: the default transport (a worker's job unpickles it). Not ``__main__``: multiprocessing
#: (3.10 to 3.13) never hands the forkserver the main script's path, so each worker still
#: runs launcher.py again as ``__mp_main__`` (a few lines behind its ``__main__`` guard).
PRELOAD = ["lclock.runtime.worker", "lclock.transport.socketpair"]


def start_context() -> Any:
    """The start method: forkserver where there is one, else spawn; never plain fork.

    forkserver forks each worker from a clean single-threaded server that has already
    imported the worker's modules: 64 machines start in well under a second instead of
    several (see BENCHMARKS.md), and the worker gets only the descriptors sent to it.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


def start_helpers(ctx: Any, ignoring_sigint: Callable[[], Any]) -> None:
    """Start multiprocessing's resource tracker, then the forkserver, before any worker.

    The resource tracker unblocks SIGINT itself once it is started, which would open a gap
    in ``ignoring_sigint``; started first, outside it, it is only checked later. The
    forkserver is started inside it, so it and every worker forked from it ignore Ctrl-C
    from their first instruction (and the forkserver SIGTERM and SIGHUP too: killed by a
    signal to the whole group, it could no longer say how each worker ended). Both are
    idempotent: helpers already running are kept.
    """
    if ctx.get_start_method() != "forkserver":
        return
    from multiprocessing import forkserver, resource_tracker

    resource_tracker.ensure_running()
    with ignoring_sigint():
        forkserver.ensure_running()


def end_helpers() -> None:
    """Kill and collect the forkserver and the resource tracker, if this process started them.

    Called when ``lclock run`` is over, whichever way: after a run its workers are already
    collected (and the launcher killed every descendant); before one, the helpers started
    early would otherwise live on until the forkserver's preload was done, holding the
    command's standard output and error open.
    """
    from multiprocessing import forkserver, resource_tracker

    server: Any = forkserver._forkserver
    tracker: Any = resource_tracker._resource_tracker
    for pid in (server._forkserver_pid, tracker._pid):
        if pid is not None:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    # Their own stop: close the pipe that keeps each alive, collect it, forget it (a pid
    # collected elsewhere is forgotten all the same, or the next run would wait on it).
    for stop in (server._stop, tracker._stop):
        with contextlib.suppress(OSError):
            stop()
    server._forkserver_pid = tracker._pid = None
