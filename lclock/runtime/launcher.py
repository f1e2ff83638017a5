"""``lclock run`` / ``python launcher.py``: start N machines, watch them, stop them, clean up.

The launcher holds the loop and the policy; workers only tick. Signal handlers only record
the signal (``set_wakeup_fd`` wakes the loop); the loop waits on the workers' sentinels and
control pipes with ``multiprocessing.connection.wait``.

Shutdown stages, each with a bounded wait: ``stop`` on the control pipe (graceful: every
message accounted for), then SIGTERM, then SIGKILL. A second Ctrl-C skips to SIGKILL.
psutil only inspects the process tree (the Process objects made at start, so a reused pid
is never mistaken for ours); workers are reaped through multiprocessing, whose ``exitcode``
psutil's wait functions would otherwise steal.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import multiprocessing.connection
import resource
import secrets
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psutil

from lclock.logfmt import format_ts
from lclock.model import machine_setup
from lclock.options import add_run_options, run_flags
from lclock.runfolder import base_run_json, machine_log_path, new_run_id, write_run_json
from lclock.runtime.console import Console
from lclock.runtime.transport import socketpair_mesh
from lclock.runtime.worker import DRAIN_TIMEOUT, WorkerConfig, worker_main
from lclock.settings import (
    RunSettings,
    SettingsError,
    check_output_dir,
    load_settings_file,
    resolve,
)

STOP_GRACE = 1.5  # graceful stop -> SIGTERM
TERM_GRACE = 1.0  # SIGTERM -> SIGKILL
KILL_GRACE = 2.0
EXIT_CODES = {"completed": 0, "failed": 1, "sigint": 130, "sigterm": 143}
_BLOCK = {signal.SIGINT, signal.SIGTERM}


# -- command line -------------------------------------------------------------------------


RUN_EPILOG = """\
Flags override settings.toml, which overrides the built-in defaults.
Each run writes OUTPUT/<run_id>/: run.json and machine-<id>.jsonl (one JSON
event per line), plus report.html and figures unless --no-report.
Ctrl-C stops gracefully (every message accounted for); a second Ctrl-C at once.

exit status: 0 completed, 1 a machine died or could not start, 2 bad command
line or settings, 130 Ctrl-C (SIGINT), 143 SIGTERM.

examples:
  python launcher.py --duration 60
  lclock run --rates 1,3,6 --seed 42 --duration 30
  lclock run --machines 10 --quiet --no-report
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = RUN_EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    add_run_options(p)
    p.add_argument("--transport", choices=("socketpair", "tcp"), help="how the machines talk (default socketpair)")
    p.add_argument("--no-report", dest="report", action="store_const", const=False, default=None, help="do not write report.html at the end")


def settings_from_args(args: argparse.Namespace) -> RunSettings:
    """Resolve defaults < settings file < flags; raises SettingsError naming the culprit."""
    return resolve(load_settings_file(args.settings), run_flags(args))


def main(args: argparse.Namespace) -> int:
    from lclock.cli import EARLY_SIGNALS

    try:
        settings = settings_from_args(args)
        where = "--output" if args.output is not None else "output"
        check_output_dir(settings.output, where)
        prepare_fd_limit(settings.machines)
    except SettingsError as exc:
        sys.stderr.write(f"lclock: error: {exc}\n")
        return 2
    if EARLY_SIGNALS and not args.__dict__.get("_keep_early"):
        # Stopped before anything was created: leave quietly with the signal's status.
        return EXIT_CODES["sigint" if EARLY_SIGNALS[0] == signal.SIGINT else "sigterm"]
    return Launcher(settings, Console(settings.quiet)).run()


def prepare_fd_limit(n: int) -> None:
    """The launcher holds every socket end until the workers start: about n^2 descriptors."""
    need = n * (n - 1) + 8 * n + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            raise SettingsError(
                f"--machines: {n} machines need about {need} open files; the limit is {hard}"
            )
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


# -- the launcher -------------------------------------------------------------------------


@dataclass
class Slot:
    """One machine as the launcher sees it."""

    id: int
    rate: int
    proc: Any = None
    conn: Any = None
    ps: psutil.Process | None = None
    ready: bool = False
    status: dict[str, Any] = field(default_factory=dict)
    done: dict[str, Any] | None = None
    exitcode: int | None = None


class Launcher:
    def __init__(self, settings: RunSettings, console: Console) -> None:
        self.s = settings
        self.console = console
        self.seed = settings.seed if settings.seed is not None else secrets.randbelow(2**31)
        self.slots = [Slot(i, self._rate(i)) for i in range(1, settings.machines + 1)]
        self.run_id = new_run_id()
        self.run_dir = Path(settings.output) / self.run_id
        self.signals: list[int] = []
        self.cause: str | None = None  # first reason to stop early: sigint/sigterm/failed
        self.failure: str | None = None
        self.stop_sent_at: float | None = None
        self.termed = False
        self.killed = False
        self.t0: float | None = None
        self.started = time.time()
        self.run_json: dict[str, Any] = {}

    def _rate(self, i: int) -> int:
        return machine_setup(self.seed, i, self.s.rate_min, self.s.rate_max, self.s.rates)[0]

    # -- signals --------------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.signals.append(signum)

    def _install_signals(self) -> socket.socket:
        from lclock.cli import EARLY_SIGNALS

        self.signals.extend(EARLY_SIGNALS)
        EARLY_SIGNALS.clear()
        r, w = socket.socketpair()
        r.setblocking(False)
        w.setblocking(False)
        self._wake_w = w
        self._old_wakeup = signal.set_wakeup_fd(w.fileno(), warn_on_full_buffer=False)
        self._old_handlers = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        return r

    def _restore_signals(self) -> None:
        """Back to the caller's handlers (the command line's: they only record), not to
        Python's default, so a Ctrl-C while the interpreter exits is no traceback."""
        signal.set_wakeup_fd(self._old_wakeup)
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)

    def _handle_signals(self) -> None:
        while self.signals:
            sig = self.signals.pop(0)
            if self.cause in ("sigint", "sigterm") and sig == signal.SIGINT:
                # A second Ctrl-C: stop at once.
                self.console.line("second Ctrl-C: killing every machine now")
                self._kill_all()
                continue
            name = "sigint" if sig == signal.SIGINT else "sigterm"
            if self.cause is None:
                self.cause = name
                self.console.line(
                    f"{'Ctrl-C' if name == 'sigint' else 'SIGTERM'}: stopping gracefully "
                    "(press Ctrl-C again to stop at once)"
                )
            self._begin_stop(name)

    # -- stopping -------------------------------------------------------------------------

    def _alive(self) -> list[Slot]:
        return [s for s in self.slots if s.proc is not None and s.exitcode is None]

    def _send(self, slot: Slot, msg: dict[str, Any]) -> None:
        if slot.conn is None:
            return
        try:
            slot.conn.send_bytes(orjson.dumps(msg))
        except (OSError, ValueError):
            pass

    def _begin_stop(self, reason: str) -> None:
        if self.stop_sent_at is not None:
            return
        self.stop_sent_at = time.monotonic()
        for slot in self._alive():
            self._send(slot, {"t": "stop", "reason": reason})

    def _kill_all(self) -> None:
        self.killed = True
        for slot in self._alive():
            with contextlib.suppress(psutil.Error):
                if slot.ps is not None and slot.ps.is_running():
                    slot.ps.kill()

    def _escalate(self) -> None:
        if self.stop_sent_at is None:
            return
        waited = time.monotonic() - self.stop_sent_at
        if not self.termed and waited > STOP_GRACE:
            self.termed = True
            for slot in self._alive():
                with contextlib.suppress(psutil.Error):
                    if slot.ps is not None and slot.ps.is_running():
                        slot.ps.terminate()
        if not self.killed and waited > STOP_GRACE + TERM_GRACE:
            self._kill_all()

    # -- the run --------------------------------------------------------------------------

    def run(self) -> int:
        self.tcp_plan = None
        if self.s.transport == "tcp":
            from lclock.tcp.runtime import plan_cluster  # issue 5

            try:
                self.tcp_plan = plan_cluster(self.s, self.run_id)
            except SettingsError as exc:
                sys.stderr.write(f"lclock: error: {exc}\n")
                return 2
        # Handlers first: a Ctrl-C from here on is a graceful stop, never a traceback.
        wake_r = self._install_signals()
        try:
            self.run_dir.mkdir(parents=True, exist_ok=False)
        except OSError as exc:
            sys.stderr.write(f"lclock: error: --output: cannot create {self.run_dir}: {exc.strerror}\n")
            return 2
        self.run_json = base_run_json(self.run_id, self.seed, self.s.to_json(), self.started)
        self.run_json["transport"] = self.s.transport
        self.run_json["machines"] = [self._machine_json(s) for s in self.slots]
        write_run_json(self.run_dir, self.run_json)
        self.console.line(
            f"lclock run {self.run_id}: {self.s.machines} machines, rates "
            f"{','.join(str(s.rate) for s in self.slots)}, {self.s.duration:g} s, seed {self.seed}"
        )
        try:
            self._handle_signals()
            if self.cause is None:
                self._start_workers()
            self._loop(wake_r)
        except BaseException as exc:  # a bug of ours: never leave run.json saying 'running'
            self.cause, self.failure = "failed", f"launcher error: {exc!r}"
            raise
        finally:
            self._kill_all_if_any_left()
            # Our handlers stay until run.json is final: a late Ctrl-C is only recorded.
            try:
                status, code = self._write_final()
            finally:
                self._restore_signals()
        # The run is over and recorded; Ctrl-C during the report just ends the report.
        if status == "completed" and self.s.report:
            old = signal.signal(signal.SIGINT, signal.default_int_handler)
            try:
                self._report()
            except KeyboardInterrupt:
                sys.stderr.write("lclock: report interrupted (the run itself is complete)\n")
                code = EXIT_CODES["sigint"]
            finally:
                signal.signal(signal.SIGINT, old)
        self.console.line(f"run folder: {self.run_dir}")
        return code

    def _start_workers(self) -> None:
        ctx = _context()
        self._start_helpers(ctx)
        n = self.s.machines
        mesh = socketpair_mesh(n) if self.s.transport == "socketpair" else None
        tcp_plan = self.tcp_plan
        try:
            for slot in self.slots:
                if self.signals:
                    self._handle_signals()
                if self.cause is not None:
                    break
                cfg = WorkerConfig(
                    machine_id=slot.id,
                    n=n,
                    run_id=self.run_id,
                    log_path=str(machine_log_path(self.run_dir, slot.id)),
                    seed=self.seed,
                    rate=slot.rate,
                    duration=self.s.duration,
                    dice_sides=self.s.dice_sides,
                    vector=self.s.vector_clocks,
                    rate_min=self.s.rate_min,
                    rate_max=self.s.rate_max,
                    spin=0.001 if n <= 16 else 0.0,  # each spins <= 1% of a core
                    peer_socks=mesh[slot.id] if mesh is not None else {},
                    tcp=tcp_plan.for_machine(slot.id) if tcp_plan is not None else None,
                )
                parent_conn, child_conn = ctx.Pipe(duplex=True)
                proc = ctx.Process(
                    target=worker_main, args=(cfg, child_conn), name=f"lclock-machine-{slot.id}"
                )
                with self._sigint_ignored():
                    proc.start()
                child_conn.close()
                if mesh is not None:
                    for s in mesh[slot.id].values():
                        s.close()
                    mesh[slot.id] = {}
                slot.proc, slot.conn = proc, parent_conn
                with contextlib.suppress(psutil.Error):
                    slot.ps = psutil.Process(proc.pid)
        finally:
            # The workers have their own copies now; a crashed peer must read as EOF.
            if mesh is not None:
                for ends in mesh.values():
                    for s in ends.values():
                        s.close()
            if tcp_plan is not None:
                tcp_plan.close()
        self.run_json["machines"] = [self._machine_json(s) for s in self.slots]
        write_run_json(self.run_dir, self.run_json)
        if self.cause is not None:
            self._begin_stop(self.cause)

    @contextlib.contextmanager
    def _sigint_ignored(self) -> Any:
        """Ignore SIGINT in what is started inside, without losing a Ctrl-C of our own.

        A terminal's Ctrl-C reaches the whole process group. A signal mask does not
        survive into a new interpreter, but an ignored disposition does, and CPython then
        never installs its KeyboardInterrupt handler: a child started here cannot die of
        Ctrl-C half-started. Our own Ctrl-C is kept: SIGINT stays blocked throughout, and
        Linux keeps a blocked signal pending even while it is ignored; one that is already
        pending is taken from sigpending() first (setting SIG_IGN would discard it).
        """
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _BLOCK)
        try:
            if signal.SIGINT in signal.sigpending():
                self.signals.append(signal.SIGINT)
            old = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                yield
            finally:
                signal.signal(signal.SIGINT, old)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)

    def _start_helpers(self, ctx: Any) -> None:
        """Start multiprocessing's resource tracker, then the forkserver, before any worker.

        The resource tracker unblocks SIGINT itself once it is started, which would open
        a gap in ``_sigint_ignored``; started first, outside it, it is only checked later.
        The forkserver is started inside it, so it and every worker forked from it ignore
        SIGINT from their first instruction.
        """
        if ctx.get_start_method() != "forkserver":
            return
        from multiprocessing import forkserver, resource_tracker

        resource_tracker.ensure_running()
        with self._sigint_ignored():
            forkserver.ensure_running()

    def _loop(self, wake_r: socket.socket) -> None:
        next_draw = time.monotonic() + self.console.interval
        overrun_at: float | None = None
        while self._alive():
            waitables: list[Any] = [wake_r]
            for slot in self._alive():
                waitables.append(slot.proc.sentinel)
                if slot.conn is not None:
                    waitables.append(slot.conn)
            timeout = max(0.0, min(next_draw - time.monotonic(), 0.25))
            ready = multiprocessing.connection.wait(waitables, timeout)
            for r in ready:
                if r is wake_r:
                    with contextlib.suppress(OSError):
                        wake_r.recv(4096)
                    continue
                for slot in self.slots:
                    if r is slot.conn:
                        self._read_conn(slot)
                    elif slot.proc is not None and r == slot.proc.sentinel:
                        self._reap(slot)
            if self.signals:
                self._handle_signals()
            self._check_all_ready()
            self._escalate()
            now = time.monotonic()
            if self.t0 is not None and overrun_at is None:
                overrun_at = now + (self.t0 - time.time()) + self.s.duration + DRAIN_TIMEOUT + 5.0
            if overrun_at is not None and now > overrun_at and self.stop_sent_at is None:
                self.failure = self.failure or "machines did not stop at the end of the run"
                self.cause = self.cause or "failed"
                self._begin_stop("overrun")
            if now >= next_draw:
                next_draw = now + self.console.interval
                if self.t0 is not None and self.stop_sent_at is None:
                    self.console.progress(
                        time.time() - self.t0,
                        self.s.duration,
                        [{"id": s.id, "rate": s.rate, **s.status} for s in self.slots],
                    )

    def _read_conn(self, slot: Slot) -> None:
        try:
            while slot.conn.poll():
                msg = orjson.loads(slot.conn.recv_bytes())
                kind = msg.pop("t", None)
                if kind == "ready":
                    slot.ready = True
                elif kind == "status":
                    slot.status = msg
                elif kind == "done":
                    slot.done = msg
                    slot.status = {k: msg[k] for k in ("ticks", "lclock") if k in msg}
                    slot.status["queue"] = msg.get("unprocessed", 0)
        except (EOFError, OSError):
            slot.conn.close()
            slot.conn = None

    def _reap(self, slot: Slot) -> None:
        if slot.conn is not None:
            self._read_conn(slot)
        slot.proc.join(1.0)  # the sentinel fires as the process exits; reap it
        slot.exitcode = slot.proc.exitcode if slot.proc.exitcode is not None else -1
        stopping_on_signal = self.cause in ("sigint", "sigterm")
        if slot.done is None and not (self.killed or self.termed or stopping_on_signal):
            how = _describe_exit(slot.exitcode)
            phase = "could not start" if self.t0 is None else "died"
            msg = f"machine {slot.id} {phase} ({how})"
            self.failure = self.failure or msg
            sys.stderr.write(f"lclock: {msg}\n")
            if self.cause is None:
                self.cause = "failed"
            self._begin_stop("peer_failed")

    def _check_all_ready(self) -> None:
        if self.t0 is not None or self.cause is not None:
            return
        if all(s.ready for s in self.slots):
            self.t0 = time.time() + 0.02 + 0.002 * len(self.slots)
            for slot in self.slots:
                self._send(slot, {"t": "go", "t0": self.t0})

    def _kill_all_if_any_left(self) -> None:
        """Nothing may outlive the launcher: workers, or anything they started."""
        for slot in self.slots:
            if slot.proc is not None and slot.exitcode is None:
                with contextlib.suppress(psutil.Error):
                    if slot.ps is not None and slot.ps.is_running():
                        slot.ps.kill()
                slot.proc.join(KILL_GRACE)
                slot.exitcode = slot.proc.exitcode if slot.proc.exitcode is not None else -9
        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                child.kill()

    def _machine_json(self, slot: Slot) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": slot.id,
            "rate": slot.rate,
            "pid": slot.proc.pid if slot.proc is not None else None,
            "exit_code": slot.exitcode,
            "ticks": None,
            "lclock": None,
        }
        if slot.done:
            out.update(slot.done)
        return out

    def _write_final(self) -> tuple[str, int]:
        """Complete run.json and print the table; returns (status, exit code)."""
        cause = self.cause or "completed"
        status = {"completed": "completed", "failed": "failed"}.get(cause, "interrupted")
        code = EXIT_CODES[cause]
        reason = self.failure if cause == "failed" else ("duration" if cause == "completed" else cause)
        if cause == "completed" and any(s.done is None for s in self.slots):
            status, code, reason = "failed", 1, "a machine ended without a stop report"
        self.run_json.update(
            status=status,
            ended_at=format_ts(time.time()),
            exit_code=code,
            reason=reason,
            t0=format_ts(self.t0) if self.t0 is not None else None,
            machines=[self._machine_json(s) for s in self.slots],
        )
        if self.killed:
            self.run_json["killed"] = True
        write_run_json(self.run_dir, self.run_json)
        self.console.summary(
            [{"id": s.id, "rate": s.rate, **(s.done or {"ticks": s.status.get("ticks", "-")})} for s in self.slots]
        )
        if status == "failed" or (status != "completed" and not self.s.quiet):
            sys.stderr.write(f"lclock: run {status}: {reason}\n")
        return status, code

    def _report(self) -> None:
        try:
            from lclock.analysis.report import report_after_run
        except ImportError:
            return
        try:
            headlines = report_after_run(self.run_dir)
        except Exception as exc:  # the run itself is fine; say what failed and go on
            sys.stderr.write(f"lclock: warning: report not written: {exc}\n")
            return
        for h in headlines:
            self.console.line(h)
        self.console.line(f"report: {self.run_dir / 'report.html'}")


def _context() -> Any:
    """The start method: forkserver where there is one, else spawn; never plain fork.

    forkserver forks each worker from a clean single-threaded server that has already
    imported the worker's modules: 64 machines start in well under a second instead of
    several (see BENCHMARKS.md), the worker gets only the descriptors sent to it, and
    they arrive with low numbers. The server is started while SIGINT is ignored (see
    ``_start_ignoring_sigint``), so it and every worker it forks ignore Ctrl-C from the
    first instruction.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["lclock.runtime.worker"])
        return ctx
    return multiprocessing.get_context("spawn")


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"
