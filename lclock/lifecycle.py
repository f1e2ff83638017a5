"""The signal policy of every command that runs something: one place, handlers only record.

Ctrl-C (SIGINT), SIGTERM and SIGHUP (the terminal or SSH session closed) all ask for the
same graceful stop; a second Ctrl-C asks for it at once. A handler that raised, or acted,
in the middle of a write would tear a log line or a run.json, so the handlers here only
append the signal to a ``StopRequest`` and, through ``signal.set_wakeup_fd``, wake the
loop that owns the work; the loop decides what to do and when.

The command line installs the recording handlers *before* it imports a command that owns
processes, so a Ctrl-C that arrives while the command is still importing is a recorded
stop request like any other, never a traceback.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys
from collections.abc import Iterator
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
CAUSES: dict[int, str] = {signal.SIGINT: "sigint", signal.SIGTERM: "sigterm", signal.SIGHUP: "sighup"}
#: Exit status of a run by its cause: 128 + the signal's number for a signal.
EXIT_CODES = {"completed": 0, "failed": 1, "sigint": 130, "sigterm": 143, "sighup": 129}
NAMES = {"sigint": "Ctrl-C", "sigterm": "SIGTERM", "sighup": "SIGHUP"}


class StopRequest:
    """The stop signals received so far, in order; written by handlers, read by loops."""

    def __init__(self) -> None:
        self.signals: list[int] = []

    def record(self, signum: int, _frame: Any = None) -> None:
        self.signals.append(signum)

    @property
    def requested(self) -> bool:
        return bool(self.signals)

    @property
    def cause(self) -> str | None:
        """``sigint``, ``sigterm`` or ``sighup``: the first signal decides how the run ended."""
        return CAUSES.get(self.signals[0]) if self.signals else None

    @property
    def urgent(self) -> bool:
        """A second Ctrl-C: stop at once, do not wait for a graceful stop."""
        return self.signals.count(signal.SIGINT) >= 2

    def exit_code(self) -> int:
        cause = self.cause
        return EXIT_CODES[cause] if cause else 0


def install(stop: StopRequest) -> dict[int, Any]:
    """Record every stop signal in ``stop``; returns the previous handlers."""
    return {sig: signal.signal(sig, stop.record) for sig in STOP_SIGNALS}


def restore(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


@contextlib.contextmanager
def recording(stop: StopRequest) -> Iterator[StopRequest]:
    """Handlers that record into ``stop`` for the duration of the block."""
    previous = install(stop)
    try:
        yield stop
    finally:
        restore(previous)


@contextlib.contextmanager
def wakeup_socket() -> Iterator[socket.socket]:
    """A socket that becomes readable when a signal arrives (for select-style loops).

    Python runs handlers only between bytecodes of the main thread; a loop blocked in
    ``select`` would not notice a signal until its timeout without this.
    """
    r, w = socket.socketpair()
    r.setblocking(False)
    w.setblocking(False)
    old = signal.set_wakeup_fd(w.fileno(), warn_on_full_buffer=False)
    try:
        yield r
    finally:
        signal.set_wakeup_fd(old)
        r.close()
        w.close()


def drain_wakeup(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.recv(4096)


def unblock_all_in_child() -> None:
    """First thing in a new process: no signal blocked, whatever the parent's mask was.

    A mask set with pthread_sigmask survives fork *and* exec: a process started while its
    parent held SIGINT blocked would keep it blocked for ever (SigBlk in /proc/PID/status).
    """
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


@contextlib.contextmanager
def children_ignore_sigint(stop: StopRequest,
                           signals: tuple[int, ...] = (signal.SIGINT,)) -> Iterator[None]:
    """Start processes that ignore Ctrl-C from their first instruction, losing none of ours.

    A terminal's Ctrl-C reaches the whole process group; only the launcher acts on it. An
    ignored disposition survives exec, so a child started here never dies of Ctrl-C half
    started (CPython then does not install its KeyboardInterrupt handler). Our own Ctrl-C
    is kept: SIGINT stays blocked meanwhile, and Linux keeps a blocked signal pending even
    while it is ignored; one already pending is recorded first (SIG_IGN would discard it).
    The children inherit the mask as well, and unblock it first thing
    (``unblock_all_in_child``). ``signals`` widens it to more of the stop signals (the
    forkserver must survive a SIGTERM or SIGHUP sent to the whole group: it reports how
    each machine ended).
    """
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, set(signals))
    try:
        pending = signal.sigpending()
        for sig in signals:
            if sig in pending:
                stop.record(sig)
        old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in signals}
        try:
            yield
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


# -- a child that must not outlive its parent ------------------------------------------------

#: Set by a parent in a child's environment (its own pid): the child asks for SIGTERM when
#: the parent dies. A SIGKILLed ``lclock experiment`` then stops its trial run, which would
#: otherwise go on alone.
STOP_WITH_PARENT = "LCLOCK_STOP_WITH_PARENT"
_PR_SET_PDEATHSIG = 1


def signal_on_parent_death(sig: int) -> bool:
    """Ask the kernel for ``sig`` when this process's parent ends (Linux; False elsewhere).

    It fires when the parent *thread* that forked this process ends: parents here fork from
    their main thread, or (the forkserver) are single-threaded.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def child_env_stopping_with_me() -> dict[str, str]:
    """The environment for a child that should stop (SIGTERM) when this process dies."""
    return {**os.environ, STOP_WITH_PARENT: str(os.getpid())}


def stop_with_parent_if_asked() -> None:
    """Honour ``STOP_WITH_PARENT``; a parent already gone before the request counts too."""
    want = os.environ.pop(STOP_WITH_PARENT, None)
    if want is None or not signal_on_parent_death(signal.SIGTERM):
        return
    if str(os.getppid()) != want:
        os.kill(os.getpid(), signal.SIGTERM)
