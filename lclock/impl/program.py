"""One machine's program, running: started in its jail, asked, stopped, and accounted for.

This is the edge between the protocol (pure, ``lclock.impl.protocol``) and the drivers: it
owns the process and the time it is given. Whatever goes wrong is a ``ProgramFailed`` with
the reason a student can act on ("no answer to tick 7 within 1 s", "exited with code 1",
"killed: over its memory limit") and the offending line; the driver turns it into the
machine's ``error`` line and fails the run (SPEC 9.5).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lclock.impl import protocol as p
from lclock.impl.config import Limits
from lclock.impl.jail import Jail, User
from lclock.impl.pipe import Pipes, ProgramGone, wait

#: How long a program has to answer (SPEC 9.4): a tick, and ``init`` for slow starters.
TICK_TIMEOUT = 1.0
INIT_TIMEOUT = 10.0
#: After ``stop_ok`` a program must exit within this.
EXIT_TIMEOUT = 2.0


class ProgramFailed(Exception):
    """The program broke the protocol or died: its machine fails with this reason."""

    def __init__(self, reason: str, line: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line
        #: Where a driver met it: (seconds since t0, machine index).
        self.at = (0.0, 0)
        #: The tick the program was asked and failed (None: not a tick's answer).
        self.tick: int | None = None


class WaitInterrupted(Exception):
    """lclock was asked to stop while it waited for a program's answer (its ``init``, or
    in the simulator a tick's, a second after the stop): not the program's failure, and
    no reason to wait out its timeout."""


@dataclass(frozen=True)
class ProgramSpec:
    """What runs as one machine: the command line as given, and how it is held."""

    command: str
    cwd: Path = field(default_factory=Path.cwd)
    limits: Limits = Limits()
    timeout: float = TICK_TIMEOUT
    user: User = User()

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.command)

    def identity(self) -> dict[str, Any]:
        """run.json's record of the program: its command and the file it names, with its
        sha256, so a result can be tied to the exact code that produced it."""
        path = program_file(self.argv, self.cwd)
        out: dict[str, Any] = {"command": self.command, "file": None, "sha256": None}
        if path is not None:  # as the command names it: no host path of the run's maker
            out["file"] = os.path.relpath(path, self.cwd) if not path.is_relative_to(
                Path("/usr")) else path.name
            out["sha256"] = _sha256(path)
        return out


def specs_of(settings: Any, cwd: Path | None = None) -> dict[int, ProgramSpec] | None:
    """The programs a run's settings name, by machine id (None: every machine built in).
    Relative paths resolve in ``cwd``, the folder lclock was started in (SPEC 9.1)."""
    if not settings.impl:
        return None
    from lclock.impl.config import Limits

    limits = Limits.parse(settings.impl_limits)
    where = cwd or Path.cwd()
    user = User.from_env(os.environ)
    return {mid: ProgramSpec(cmd, where, limits, settings.impl_timeout, user)
            for mid, cmd in settings.impl}


def program_file(argv: list[str], cwd: Path) -> Path | None:
    """The first file the command names: a binary given as a path, or the first argument
    that is a file (relative to ``cwd``: a script in any language), else the executable
    found on PATH."""
    for i, arg in enumerate(argv):
        if arg.startswith("-") or (i == 0 and "/" not in arg):
            continue  # a bare command name is looked up on PATH, never in cwd
        path = cwd / arg
        if path.is_file():
            return path
    found = shutil.which(argv[0]) if argv else None
    return Path(found) if found else None


def _cannot_start(stderr: bytes) -> str | None:
    """The jail's own "lclock: cannot start CMD: why" line, if the program's stderr ends in
    it (a command not found, not executable): a clearer reason than exit code 127."""
    lines = stderr.rstrip(b"\n").rsplit(b"\n", 1)
    last = lines[-1].decode("utf-8", "replace")
    return last.removeprefix("lclock: ") if last.startswith("lclock: cannot start ") else None


def _sha256(path: Path) -> str | None:
    try:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()
    except OSError:
        return None


def validate_command(command: str, where: str) -> list[str]:
    """A command line as settings and flags take it: split, and not empty. ValueError names
    ``where`` (the flag or file:key)."""
    try:
        argv = shlex.split(command)
    except ValueError as e:
        raise ValueError(f"{where}: cannot split {command!r} like a shell line ({e})") from None
    if not argv:
        raise ValueError(f"{where}: the command is empty")
    return argv


class Program:
    """One running program, asked one request at a time (lock-step)."""

    def __init__(self, spec: ProgramSpec, machine: int, machines: int, seed: int,
                 scratch: Path, name: str, batch: bool = False) -> None:
        self.spec = spec
        self.machine = machine
        scratch.mkdir(parents=True, exist_ok=True)
        spec.user.owns(scratch)
        env = {**os.environ, "LCLOCK_MACHINE": str(machine), "LCLOCK_MACHINES": str(machines),
               "LCLOCK_SEED": str(seed), "LCLOCK_SCRATCH": str(scratch)}
        try:
            self.jail = Jail(spec.argv, spec.cwd, env, spec.limits, name, spec.user, batch)
        except OSError as e:
            raise ProgramFailed(f"cannot start {spec.command!r}: {e.strerror or e}") from None
        proc = self.jail.proc
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        self.pipes = Pipes(proc.stdin.fileno(), proc.stdout.fileno(), proc.stderr.fileno())
        self.ended = False
        self.cpu_s: float | None = None
        self._stop_asked: tuple[float, float] | None = None  # (when, its timeout)

    # -- the conversation ----------------------------------------------------------------------

    def ask(self, request: bytes, timeout: float,
            stopping: Callable[[], bool] | None = None) -> bytes:
        """Write ``request`` and return the program's answer line, or fail the machine."""
        self.pipes.send(request)
        return self.answer(request, timeout, stopping=stopping)

    def answer(self, request: bytes, timeout: float, end: float | None = None,
               stopping: Callable[[], bool] | None = None) -> bytes:
        """The next answer line, waiting at most ``timeout`` seconds for it (until ``end``
        on the monotonic clock, when it was asked earlier). ``stopping``, looked at every
        0.1 s, ends the wait with WaitInterrupted when it says so."""
        end = time.monotonic() + timeout if end is None else end
        pipes = self.pipes
        while True:
            try:
                pipes.pump()
                line = pipes.next_line()
            except p.ProtocolError as e:
                raise ProgramFailed(e.reason, e.line) from None
            except ProgramGone:
                raise ProgramFailed(self.why_gone(), p.quote(request)) from None
            if line is not None:
                return line
            if self.exited():
                raise ProgramFailed(self.why_gone(), p.quote(request))
            left = end - time.monotonic()
            if left <= 0:
                raise ProgramFailed(p.no_answer(timeout, pipes.partial), p.quote(request))
            if stopping is not None and stopping():
                raise WaitInterrupted
            wait([pipes], min(left, 0.5 if stopping is None else 0.1))

    def exited(self) -> bool:
        """Whether the program's own process ended with nothing more to say: an early exit,
        even while children it left hold its stdout open (a fork bomb's did, and each run
        waited out the answer timeout)."""
        if self.jail.proc.poll() is None:
            return False
        try:
            self.pipes.pump()  # what it wrote before it exited is still its answer
        except (p.ProtocolError, ProgramGone):
            return True
        return not self.pipes.lines

    def init(self, machines: int, clocks: p.Clocks, timeout: float = INIT_TIMEOUT,
             stopping: Callable[[], bool] | None = None) -> p.Clocks:
        line = self.ask(p.init_request(self.machine, machines, clocks), timeout, stopping)
        kept: p.Clocks = self._judged(lambda: p.parse_init_ok(line, clocks))
        return kept

    def ask_stop(self, patience: float = 1.0) -> None:
        """Send ``stop`` now, its answer awaited by ``stop``: when the programs of a run are
        asked together, those that hang are waited for at once, not one after another
        (three hung programs cost one timeout, not three)."""
        if self._stop_asked is None:
            self.cpu_s = self.jail.cpu_seconds()  # while it can still be read
            self.pipes.send(p.STOP_REQUEST)
            self.pipes.flush()
            self._stop_asked = (time.monotonic(), self.spec.timeout * patience)

    def stop(self, patience: float = 1.0, stopping: Callable[[], bool] | None = None) -> None:
        """The polite end: ``stop``, ``stop_ok``, and an exit within 2 s (SPEC 9.2).
        ``patience`` multiplies the answer timeout, as for ticks (the simulator's 10)."""
        self.ask_stop(patience)
        assert self._stop_asked is not None
        asked, timeout = self._stop_asked
        line = self.answer(p.STOP_REQUEST, timeout, asked + timeout, stopping)
        self._judged(lambda: p.parse_stop_ok(line))
        self.pipes.broken_in = True  # end of input: a reading loop ends by itself
        if self.jail.proc.stdin is not None:  # closed through its owner: never the fd twice
            with contextlib.suppress(OSError):
                self.jail.proc.stdin.close()
        try:
            code = self.jail.proc.wait(timeout=EXIT_TIMEOUT)
        except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired: still running
            raise ProgramFailed(f"did not exit within {EXIT_TIMEOUT:g} s of stop_ok") from None
        if code != 0:
            raise ProgramFailed(f"exited with code {code} after stop_ok")

    @staticmethod
    def _judged(parse: Any) -> Any:
        try:
            return parse()
        except p.ProtocolError as e:
            raise ProgramFailed(e.reason, e.line) from None

    # -- the end ---------------------------------------------------------------------------------

    def why_gone(self) -> str:
        """Why the program stopped answering, in words a student can act on."""
        try:
            code = self.jail.proc.wait(timeout=1.0)
        except Exception:  # noqa: BLE001 - closed its stdout but still runs
            return "closed its stdout"
        if self.jail.cgroups.oom_killed():
            return "killed: over its memory limit"
        if code < 0:
            sig = -code
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else sig
            if sig == signal.SIGXCPU:
                return "killed: over its CPU time limit"
            if sig == signal.SIGXFSZ:
                return "killed: wrote a file over its size limit"
            return f"killed by signal {sig} ({name})"
        if code == 127:  # the jail's trampoline could not exec the command: it said why
            self.pipes.read_stderr()
            said = _cannot_start(bytes(self.pipes.err_tail))
            if said:
                return said
        return f"exited with code {code}"

    def pause(self, stopped: bool) -> None:
        self.jail.pause(stopped)

    def close(self) -> None:
        """Kill whatever is left of the program and keep the end of its stderr."""
        if not self.ended:
            self.ended = True
            self.cpu_s = self.jail.cpu_seconds() or self.cpu_s
            self.jail.kill()
            self.pipes.read_stderr()

    @property
    def stderr_tail(self) -> bytes:
        return bytes(self.pipes.err_tail)
