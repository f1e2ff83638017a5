"""The pipes to and from one program: written and read without ever blocking lclock.

A program that never reads its stdin would block a plain ``write`` once the pipe is full; one
that writes without end would fill memory; one that floods stderr would block itself (and
then stop answering). So every pipe here is non-blocking: requests wait in a buffer until
the pipe takes them, answers are cut into lines as they come (a line longer than the
protocol allows is an error as soon as it is, not when it ends), and stderr is read
continuously, keeping its last 64 kB for run.json and the ``machine-<id>.stderr`` file.

The caller owns the wait: ``wants_read``/``wants_write`` say which descriptors matter, and
``pump`` moves what can move. The simulator waits with a selector (``wait``); the real-time
driver puts the same descriptors into its own wait with the tick deadlines.
"""

from __future__ import annotations

import os
import select
from collections import deque
from collections.abc import Callable

from lclock.impl.protocol import MAX_LINE, ProtocolError

#: The end of stderr kept (SPEC 9: the last 64 kB).
STDERR_TAIL = 64 * 1024
_CHUNK = 1 << 16


class ProgramGone(Exception):
    """The program closed its stdout (it exited, or was killed): no more answers will come."""


class Pipes:
    """Non-blocking line I/O with one program's stdin, stdout and stderr."""

    def __init__(self, stdin: int, stdout: int, stderr: int) -> None:
        for fd in (stdin, stdout, stderr):
            os.set_blocking(fd, False)
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.out = bytearray()
        self.partial = bytearray()
        self.lines: deque[bytes] = deque()
        self.err_tail = bytearray()
        self.err_bytes = 0
        self.closed_out = False
        self.closed_err = False
        self.broken_in = False
        self.failure: ProtocolError | None = None  # raised by next_line, after earlier lines

    # -- writing -----------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Queue ``data`` for the program's stdin; written as the pipe takes it."""
        self.out += data

    @property
    def wants_write(self) -> bool:
        return bool(self.out) and not self.broken_in

    def flush(self) -> None:
        """Write what the pipe takes now. A program that closed stdin gets nothing more
        (its answers, or their absence, tell the rest)."""
        while self.out and not self.broken_in:
            try:
                n = os.write(self.stdin, self.out[:_CHUNK])
            except BlockingIOError:
                return
            except (BrokenPipeError, ConnectionResetError):
                self.broken_in = True
                self.out.clear()
                return
            del self.out[:n]

    # -- reading -----------------------------------------------------------------------------

    def read_answers(self) -> None:
        """Take what stdout has into complete lines. A line too long is kept as the failure
        ``next_line`` raises once the lines before it are taken: a read here may happen in a
        wait for any program (``wait``), where no one handles one program's error."""
        if self.closed_out or self.failure is not None:
            return
        try:
            self.closed_out = _drain(self.stdout, self._split)
        except ProtocolError as e:
            self.failure = e
            self.partial.clear()

    def _split(self, chunk: bytes) -> None:
        start = 0
        while True:
            nl = chunk.find(b"\n", start)
            if nl < 0:
                self.partial += chunk[start:]
                if len(self.partial) > MAX_LINE:
                    raise ProtocolError(f"a line of more than {MAX_LINE} bytes", self.partial)
                return
            if self.partial:
                self.partial += chunk[start:nl]
                line = bytes(self.partial)
                self.partial.clear()
            else:
                line = chunk[start:nl]
            if len(line) > MAX_LINE:
                raise ProtocolError(f"a line of {len(line)} bytes, more than the {MAX_LINE} "
                                    "allowed", line)
            self.lines.append(line)
            start = nl + 1

    def read_stderr(self) -> None:
        """Keep the end of stderr; read it all, so the program never blocks on it."""
        if not self.closed_err:
            self.closed_err = _drain(self.stderr, self._keep_err)

    def _keep_err(self, chunk: bytes) -> None:
        self.err_bytes += len(chunk)
        self.err_tail += chunk
        if len(self.err_tail) > STDERR_TAIL:
            del self.err_tail[: len(self.err_tail) - STDERR_TAIL]

    def next_line(self) -> bytes | None:
        """The oldest complete answer line, or None; ProgramGone once none can come."""
        if self.lines:
            return self.lines.popleft()
        if self.failure is not None:
            raise self.failure
        if self.closed_out:
            raise ProgramGone
        return None

    def pump(self) -> None:
        self.flush()
        self.read_answers()
        self.read_stderr()

    # -- waiting (the simulator's; the real-time driver has its own) ---------------------------

    def read_fds(self) -> list[int]:
        return [fd for fd, closed in ((self.stdout, self.closed_out or self.failure is not None),
                                      (self.stderr, self.closed_err)) if not closed]


def _drain(fd: int, take: Callable[[bytes], None]) -> bool:
    """Hand what a non-blocking pipe holds now to ``take``; True once it has ended.

    A read shorter than asked for has emptied the pipe: no second read to be told so (it
    would cost a system call and an exception at every look; what comes meanwhile, or the
    end, is read at the next look, which the pipe's readiness brings about)."""
    while True:
        try:
            chunk = os.read(fd, _CHUNK)
        except BlockingIOError:
            return False
        if not chunk:
            return True
        take(chunk)
        if len(chunk) < _CHUNK:
            return False


def wait(pipes: list[Pipes], timeout: float) -> bool:
    """Wait until any of ``pipes`` can move (or ``timeout`` s); then move it. False: timed out.

    ``select`` on the few descriptors of a run's programs: nothing to set up or tear down per
    call, which a selector object would cost on every wait of the simulator.
    """
    readers: dict[int, Pipes] = {}
    writers: dict[int, Pipes] = {}
    for p in pipes:
        for fd in p.read_fds():
            readers[fd] = p
        if p.wants_write:
            writers[p.stdin] = p
    if not readers and not writers:
        return True
    readable, writable, _ = select.select(list(readers), list(writers), [], timeout)
    moved = {id(readers[fd]): readers[fd] for fd in readable}
    moved.update({id(writers[fd]): writers[fd] for fd in writable})
    for p in moved.values():
        p.pump()
    return bool(moved)
