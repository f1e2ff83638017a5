"""The signal policy of every command: one place, handlers only record.

Ctrl-C (SIGINT), SIGTERM and SIGHUP (the terminal or SSH session closed) all ask for the
same graceful stop; a later Ctrl-C asks for it at once. What a signal means depends on the
stage the command is in, and that table is ``decide`` below, pure, with a unit test:

=========  ===========================  ======================================
stage      first stop signal            a later one
=========  ===========================  ======================================
starting   stop (nothing left running)  Ctrl-C: stop now; others: carry on
running    stop gracefully              Ctrl-C: stop now; others: carry on
stopping   (already stopping)           Ctrl-C: stop now; others: carry on
recording  carry on (finish the record) carry on: a run's record is never torn
writing    abandon (spares discarded)   Ctrl-C: stop now; others: carry on
=========  ===========================  ======================================

A handler that acted in the middle of a write would tear a log line or a run.json, so the
handler here only appends the signal to a ``StopRequest`` and, through
``signal.set_wakeup_fd``, wakes the loop that owns the work (the launcher, the simulator,
a vm, a worker), which asks ``decide`` and acts. A command whose work is one call stack
(an experiment, a report, an import writing its folder) cannot poll: its request is made
with ``unwind=True``, and the handler, once it has recorded, raises ``Interrupted`` when
the table says stop/abandon, so that every ``finally`` on the way out discards the spare
files; ``shielded`` marks the few lines (cleaning up, writing a summary) that must not be
cut.

This module is the only one that sets signal dispositions, masks or the wakeup fd.

The command line installs the recording handlers *before* it imports a command, so a
Ctrl-C that arrives while the command is still importing is a recorded stop request like
any other, never a traceback.
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import os
import signal
import socket
import sys
from collections.abc import Iterator, Sequence
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
CAUSES: dict[int, str] = {signal.SIGINT: "sigint", signal.SIGTERM: "sigterm", signal.SIGHUP: "sighup"}
#: Exit status of a run by its cause: 128 + the signal's number for a signal.
EXIT_CODES = {"completed": 0, "failed": 1, "sigint": 130, "sigterm": 143, "sighup": 129}
NAMES = {"sigint": "Ctrl-C", "sigterm": "SIGTERM", "sighup": "SIGHUP"}
SIGNALS = {name: sig for sig, name in CAUSES.items()}
#: The exit status of a run stopped by each stop signal, by its cause.
SIGNAL_EXIT_CODES = {name: EXIT_CODES[name] for name in CAUSES.values()}
#: A machine's exit status by the reason it stopped (``lclock vm``): at its end, or at the
#: crash its fault plan asked for, 0; by a stop signal, that signal's code; else 1.
MACHINE_EXIT_CODES = {"duration": 0, "crashed": 0, **SIGNAL_EXIT_CODES}


class Stage(enum.Enum):
    """Where a command is in its life, as far as a stop signal is concerned."""

    STARTING = "starting"    # processes, sockets or folders being set up
    RUNNING = "running"
    STOPPING = "stopping"    # a stop is under way
    RECORDING = "recording"  # the record of what happened is being written: finish it
    WRITING = "writing"      # an output is being made in spare files: drop it


class Response(enum.Enum):
    """What the owner of the work does about the signals received so far."""

    STOP = "stop"            # a graceful stop: machines drain and log their stop
    STOP_NOW = "stop now"    # no graceful wait: kill, record, exit
    CARRY_ON = "carry on"    # noted (it decides the exit code if first), nothing more to do
    ABANDON = "abandon"      # unwind: the partial output is discarded


def decide(stage: Stage, signals: Sequence[int]) -> Response:
    """The stop policy: what the last of ``signals`` (all received so far, in order) asks
    for at ``stage``. Pure: the table of the module's docstring."""
    if not signals:
        return Response.CARRY_ON
    first = len(signals) == 1
    if stage is Stage.RECORDING:
        return Response.CARRY_ON
    if not first:
        return Response.STOP_NOW if signals[-1] == signal.SIGINT else Response.CARRY_ON
    if stage is Stage.WRITING:
        return Response.ABANDON
    if stage is Stage.STOPPING:
        return Response.CARRY_ON
    return Response.STOP


def exit_code(signals: Sequence[int]) -> int:
    """128 + the first stop signal's number (130, 143, 129): the first signal decides."""
    cause = CAUSES.get(signals[0]) if signals else None
    return EXIT_CODES[cause] if cause else 0


class Interrupted(KeyboardInterrupt):
    """Raised by an unwinding request's handler; ``code`` is the exit status (130/143/129).

    A KeyboardInterrupt, so that no ``except Exception`` on the way out swallows it.
    """

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class StopRequest:
    """The stop signals received so far, in order; written by the handler, read by loops.

    ``unwind``: the owner cannot poll (one call stack); the handler raises ``Interrupted``
    when ``decide`` says stop, stop now or abandon. ``stage`` is set by the owner.
    """

    def __init__(self, unwind: bool = False, stage: Stage = Stage.RUNNING) -> None:
        self.signals: list[int] = []
        self.unwind = unwind
        self.stage = stage

    def record(self, signum: int, _frame: Any = None) -> None:
        self.signals.append(signum)

    def on_signal(self, signum: int, _frame: Any = None) -> None:
        """The signal handler: record; an unwinding owner is then unwound (see the table)."""
        self.record(signum)
        self.act_now()

    def act_now(self) -> None:
        """For an unwinding owner: raise ``Interrupted`` if the signals so far ask it to."""
        if not self.unwind or decide(self.stage, self.signals) is Response.CARRY_ON:
            return
        self.stage = Stage.STOPPING
        raise Interrupted(self.exit_code())

    @property
    def requested(self) -> bool:
        return bool(self.signals)

    @property
    def cause(self) -> str | None:
        """``sigint``, ``sigterm`` or ``sighup``: the first signal decides how the run ended."""
        return CAUSES.get(self.signals[0]) if self.signals else None

    @property
    def urgent(self) -> bool:
        """A Ctrl-C after an earlier stop signal: stop at once, no graceful stop."""
        return any(decide(Stage.STOPPING, self.signals[:k + 1]) is Response.STOP_NOW
                   for k in range(1, len(self.signals)))

    def exit_code(self) -> int:
        return exit_code(self.signals)

    @contextlib.contextmanager
    def unwinding(self, stage: Stage) -> Iterator[StopRequest]:
        """From now on the handler unwinds this owner at ``stage``; a signal that came
        before is acted on at once (the block is not entered)."""
        before = (self.unwind, self.stage)
        self.unwind, self.stage = True, stage
        try:
            if self.signals and decide(stage, self.signals[:1]) is not Response.CARRY_ON:
                self.stage = Stage.STOPPING
                raise Interrupted(self.exit_code())
            yield self
        finally:
            self.unwind, self.stage = before

    @contextlib.contextmanager
    def shielded(self) -> Iterator[None]:
        """Lines that must not be cut (a clean-up, a record): signals are only recorded
        meanwhile, then acted on as the stage before says."""
        before = self.stage
        self.stage = Stage.RECORDING
        try:
            yield
        finally:
            self.stage = before
        if before is not Stage.STOPPING:
            self.act_now()


#: The request the installed handlers record into (one per process: handlers are too).
_installed: StopRequest | None = None


def current() -> StopRequest:
    """The installed stop request; a fresh one (nothing installed: not a signal owner)."""
    return _installed if _installed is not None else StopRequest()


def install(stop: StopRequest, signals: Sequence[int] = STOP_SIGNALS) -> dict[int, Any]:
    """Record every stop signal in ``stop``; returns the previous handlers."""
    global _installed
    _installed = stop
    return {sig: signal.signal(sig, stop.on_signal) for sig in signals}


def restore(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def ignore(signals: Sequence[int]) -> None:
    """Ignore these signals from now on (where a process may not set them: nothing)."""
    for sig in signals:
        with contextlib.suppress(OSError, ValueError):
            signal.signal(sig, signal.SIG_IGN)


@contextlib.contextmanager
def recording(stop: StopRequest) -> Iterator[StopRequest]:
    """Handlers that record into ``stop`` for the duration of the block."""
    global _installed
    before = _installed
    previous = install(stop)
    try:
        yield stop
    finally:
        restore(previous)
        _installed = before


def worker_signals(stop: StopRequest) -> tuple[socket.socket, socket.socket]:
    """A machine's worker: SIGTERM is recorded; Ctrl-C and SIGHUP are the launcher's.

    Both reach the whole process group (a terminal's Ctrl-C, a closed terminal's SIGHUP);
    the launcher turns them into a graceful stop of every machine, and a worker that acted
    on them itself would die without its stop line. A SIGCONT (back from a pause) gets a
    handler so that the returned wakeup socket pair (read end first) wakes the loop at once.
    """
    ignore((signal.SIGINT, signal.SIGHUP))
    install(stop, (signal.SIGTERM,))
    signal.signal(signal.SIGCONT, lambda _sig, _frame: None)
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    wake_w.setblocking(False)
    signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
    return wake_r, wake_w


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
                           signals: tuple[int, ...] = (signal.SIGINT,),
                           also_blocked: tuple[int, ...] = ()) -> Iterator[None]:
    """Start processes that ignore Ctrl-C from their first instruction, losing none of ours.

    A terminal's Ctrl-C reaches the whole process group; only the launcher acts on it. An
    ignored disposition survives exec, so a child started here never dies of Ctrl-C half
    started (CPython then does not install its KeyboardInterrupt handler). Our own Ctrl-C
    is kept: SIGINT stays blocked meanwhile, and Linux keeps a blocked signal pending even
    while it is ignored; one already pending is recorded first (SIG_IGN would discard it).
    The children inherit the mask as well, and unblock it first thing
    (``unblock_all_in_child``). ``signals`` widens it to more of the stop signals (the
    forkserver must survive a SIGTERM or SIGHUP sent to the whole group: it reports how
    each machine ended). ``also_blocked`` are held back but not ignored: they reach our
    handler as the block ends.
    """
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, set(signals) | set(also_blocked))
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


def end_of_command() -> None:
    """After a command that owns processes is done: stop signals ignored for the last
    milliseconds of the interpreter's exit (at finalization CPython puts SIGINT back to its
    default action, and a late second Ctrl-C would end the process by the signal instead
    of with the status the command returned)."""
    ignore(STOP_SIGNALS)


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
