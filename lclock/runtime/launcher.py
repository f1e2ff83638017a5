"""``lclock run`` / ``python launcher.py``: the run as a whole, from settings to report.

This module is the command's edge: it resolves the settings, makes the run folder and
run.json, builds one ``WorkerJob`` per machine (its plan and its transport), hands the
processes to the ``Supervisor`` (loop and stop policy), and records how the run ended.
Signals are only recorded (``lclock.lifecycle``); the supervisor's loop acts on them.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from lclock.console import Console
from lclock.core.faults import partitions_applied
from lclock.core.logline import format_ts
from lclock.core.model import machine_setup
from lclock.errors import error_line, fail, one_line, prefix
from lclock.lifecycle import (
    NAMES,
    STOP_SIGNALS,
    Interrupted,
    Stage,
    StopRequest,
    children_ignore_sigint,
    wakeup_socket,
)
from lclock.runfolder import (
    RunEnd,
    RunFolderError,
    base_run_json,
    create_run_dir,
    machine_log_path,
    new_run_id,
    record_end,
    record_snapshots,
    remove_new_run_dir,
    write_run_json,
)
from lclock.runplan import plan_run
from lclock.runtime.helpers import start_context, start_helpers
from lclock.runtime.logcounts import counts_from_log
from lclock.runtime.process import MachineProcess
from lclock.runtime.supervisor import Outcome, Policy, Supervisor
from lclock.runtime.worker import WorkerJob
from lclock.setting_table import add_options, flags_of
from lclock.settings import (
    RunSettings,
    SettingsError,
    check_output_dir,
    load_settings_file,
    resolve,
)
from lclock.transport import Transport
from lclock.transport.socketpair import SocketPairLinks, socketpair_mesh

# -- command line -------------------------------------------------------------------------


RUN_EPILOG = """\
Flags override settings.toml, which overrides the built-in defaults.
Each run writes OUTPUT/<run_id>/: run.json and machine-<id>.jsonl (one JSON
event per line), plus report.html and figures unless --no-report.
Ctrl-C stops gracefully (every message accounted for); a second Ctrl-C at once.

exit status: 0 completed; 1 failed (a machine died, could not start or could
not write its log, or messages were lost); 2 bad command line or settings;
130 Ctrl-C (SIGINT), 143 SIGTERM, 129 SIGHUP (the terminal closed): each a
graceful stop, recorded in run.json as interrupted.

examples:
  python launcher.py --duration 60
  lclock run --rates 1,3,6 --seed 42 --duration 30
  lclock run --machines 10 --quiet --no-report
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = RUN_EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    add_options(p, "run")


def settings_from_args(args: argparse.Namespace) -> RunSettings:
    """Resolve defaults < settings file < flags; raises SettingsError naming the culprit."""
    return resolve(load_settings_file(args.settings), flags_of(args))


def main(args: argparse.Namespace) -> int:
    stop: StopRequest = getattr(args, "stop_request", None) or StopRequest()
    try:
        settings = settings_from_args(args)
        where = "--output" if args.output is not None else "output"
        check_output_dir(settings.output, where)
        prepare_fd_limit(settings.machines)
    except SettingsError as exc:
        return fail("run", exc)
    if stop.requested:
        # Stopped before anything was created: leave quietly with the signal's status.
        return stop.exit_code()
    return Launcher(settings, Console(settings.quiet), stop).run()


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


class Launcher:
    """One run of ``lclock run``: its folder, its machines, its record."""

    def __init__(self, settings: RunSettings, console: Console, stop: StopRequest) -> None:
        self.settings = settings
        self.console = console
        self.stop = stop
        self.seed = settings.seed if settings.seed is not None else secrets.randbelow(2**31)
        n = settings.machines
        self.rates = {
            i: machine_setup(self.seed, i, settings.rate_min, settings.rate_max, settings.rates)[0]
            for i in range(1, n + 1)
        }
        self.run_id = new_run_id()
        self.run_dir = Path(settings.output) / self.run_id
        self.plans = plan_run(settings, self.run_id, self.seed)
        self.faults = self.plans.faults
        self.started = time.time()
        self.run_json: dict[str, Any] = {}
        self.children: list[MachineProcess] = []
        self.tcp_plan: Any = None
        # The machines run by a program of the user's (SPEC 9), by id; None: all built in.
        self.programs: dict[int, Any] | None = None
        if settings.impl:
            from lclock.impl.program import specs_of

            self.programs = specs_of(settings)

    def run(self) -> int:
        if self.settings.transport == "tcp":
            from lclock.transport.tcp.links import plan_cluster

            try:
                self.tcp_plan = plan_cluster(self.settings, self.run_id)
            except SettingsError as exc:
                return fail("run", exc)
        try:
            self._create_folder()
        except RunFolderError as exc:
            if self.tcp_plan is not None:
                self.tcp_plan.close()
            return fail("run", f"--output: {exc}")
        self.console.line(
            f"lclock run {self.run_id}: {self.settings.machines} machines, rates "
            f"{','.join(str(r) for r in self.rates.values())}, {self.settings.duration:g} s, seed {self.seed}"
        )
        outcome = self._supervise()
        code = self._record(outcome)
        if outcome.status == "completed" and code == 0 and self.settings.report:
            code = self._report()
        self.console.always(f"run folder: {self.run_dir}")
        return code

    def _create_folder(self) -> None:
        """The run folder and the first run.json; a disk full already is bad input."""
        self.run_dir = create_run_dir(Path(self.settings.output), self.run_id)
        self.run_json = base_run_json(self.run_id, self.seed, self.settings.to_json(), self.started)
        self.run_json["transport"] = self.settings.transport
        self.run_json["machines"] = [self._machine_json(i) for i in self.rates]
        self.run_json.update(self.plans.run_json())
        try:
            write_run_json(self.run_dir, self.run_json, reserve_next=True, must_reserve=True)
        except RunFolderError:
            remove_new_run_dir(self.run_dir)
            raise

    def _supervise(self) -> Outcome:
        policy = Policy(self.rates, self.settings.duration, self.faults)
        self.policy = policy
        if self.programs:
            from lclock.impl.jail import make_subreaper

            make_subreaper()  # what a program's machine leaves when it is killed comes here
        with wakeup_socket() as wake:
            supervisor = Supervisor([], policy, self.stop, wake, self.console, wait=_wait,
                                    rates=self.rates)
            try:
                self._start(supervisor)
                return supervisor.run()
            except BaseException as exc:  # a bug of ours: never leave run.json saying 'running'
                policy.cause, policy.failure = "failed", f"launcher error: {exc!r}"
                self._record(policy.outcome())
                raise
            finally:
                supervisor.finish()
                _kill_descendants()
                if self.programs:
                    from lclock.impl.host import end_leftovers

                    end_leftovers(self.run_id)

    def _start(self, supervisor: Supervisor) -> None:
        ctx = start_context()
        start_helpers(ctx, lambda: children_ignore_sigint(self.stop, STOP_SIGNALS))
        n = self.settings.machines
        mesh = socketpair_mesh(n) if self.tcp_plan is None else None
        for i in self.rates:
            transport: Transport = (
                SocketPairLinks(mesh[i]) if mesh is not None else self.tcp_plan.for_machine(i)
            )
            job = WorkerJob(self.plans.machine(i), str(machine_log_path(self.run_dir, i)), transport,
                            spin=0.001 if n <= 16 else 0.0,  # each spins <= 1% of a core
                            agree=self.programs is not None,
                            program=(self.programs or {}).get(i))
            child = MachineProcess(ctx, job)
            self.children.append(child)
            supervisor.children[i] = child

        def start_one(child: Any) -> None:
            with children_ignore_sigint(self.stop):
                child.start()
            if mesh is not None:  # the worker has its own copies now
                for sock in mesh[child.id].values():
                    sock.close()

        try:
            supervisor.start(start_one)
        finally:
            # A crashed peer must read as EOF: no copy of a worker's socket may stay here.
            if mesh is not None:
                for ends in mesh.values():
                    for sock in ends.values():
                        sock.close()
            if self.tcp_plan is not None:
                self.tcp_plan.close()
        self.run_json["machines"] = [self._machine_json(i) for i in self.rates]
        with contextlib.suppress(RunFolderError):  # the final write says what went wrong
            write_run_json(self.run_dir, self.run_json, reserve_next=True, must_reserve=True)

    def _machine_json(self, i: int, done: dict[str, Any] | None = None) -> dict[str, Any]:
        child = next((c for c in self.children if c.id == i), None)
        out: dict[str, Any] = {
            "id": i,
            "rate": self.rates[i],
            "pid": child.pid if child is not None else None,
            "exit_code": child.exitcode if child is not None else None,
            "ticks": None,
            "lclock": None,
        }
        if done:
            out.update(done)
        return out

    def _record(self, outcome: Outcome) -> int:
        """Complete run.json and print the table; returns the exit code."""
        reports = dict(outcome.reports)
        for i in self.policy.crashed:
            reports[i] = {**counts_from_log(machine_log_path(self.run_dir, i)), "reason": "crashed",
                          **(reports.get(i) or {})}
        if self.faults is not None:
            ran = time.time() - outcome.t0 if outcome.t0 is not None else 0.0
            self.run_json["faults"]["applied"] = sorted(
                self.policy.applied + partitions_applied(self.faults, self.settings.machines, ran),
                key=lambda a: (a["at"], a["kind"]))
        self.run_json["t0"] = format_ts(outcome.t0) if outcome.t0 is not None else None
        if self.programs is not None:
            self._record_programs()
        # the balance again, from the entries: with what the crashed machines logged
        entries = [self._machine_json(i, reports.get(i)) for i in self.rates]
        record_end(self.run_json, RunEnd(outcome.status, outcome.code, outcome.reason),
                   time.time(), entries)
        record_snapshots(self.run_json, entries)
        if outcome.killed:
            self.run_json["killed"] = True
        code = outcome.code
        problem = None
        try:
            write_run_json(self.run_dir, self.run_json)
        except RunFolderError as exc:
            problem = f"the run's record is incomplete: {exc}"
            code = code or 1
        self.console.summary(
            [{"id": i, "rate": r, **(reports.get(i) or {"ticks": "-"})} for i, r in self.rates.items()]
        )
        # One line on stderr says how a run that did not complete ended, and why.
        if outcome.status == "failed":
            text = f"run failed: {outcome.reason}"
            sys.stderr.write(f"{prefix('run')}: {one_line(text + ('; ' + problem if problem else ''))}\n")
        elif problem is not None:
            sys.stderr.write(error_line("run", problem) + "\n")
        elif outcome.status != "completed" and not self.settings.quiet:
            sys.stderr.write(f"{prefix('run')}: run {outcome.status}: {outcome.reason}\n")
        return code

    def _record_programs(self) -> None:
        """run.json's ``impl`` (SPEC 9.3): each program's command and digest, what its worker
        reported of it, and the clocks agreed on (the run's ``clocks`` and ``settings`` keep
        only those)."""
        from lclock.impl.machine import impl_record, narrowed_settings
        from lclock.impl.protocol import Clocks

        assert self.programs is not None
        settings = self.settings
        offered = Clocks(vector=settings.vector_clocks, hlc=settings.clocks.hlc)
        agreed = self.policy.agreed
        kept = offered if agreed is None else Clocks(vector=offered.vector and "vector" in agreed,
                                                    hlc=offered.hlc and "hlc" in agreed)
        machines: dict[str, Any] = {}
        limits = None
        for mid, spec in sorted(self.programs.items()):
            entry = {**spec.identity(), **(self.policy.machines[mid].impl or {})}
            limits = entry.pop("limits", None) or spec.limits.to_json()
            machines[str(mid)] = entry
            kept_err = self.run_dir / f"machine-{mid}.stderr"
            if entry.get("stderr_tail") and not kept_err.exists():  # a worker killed first
                with contextlib.suppress(OSError):
                    kept_err.write_text(entry["stderr_tail"])
        if kept != offered:
            narrowed = narrowed_settings(settings, kept)
            self.run_json["clocks"] = plan_run(narrowed, self.run_id, self.seed).run_json()["clocks"]
            self.run_json["settings"] = narrowed.to_json()
        self.run_json["impl"] = impl_record(machines, offered, kept, limits)

    def _report(self) -> int:
        """The run is over and recorded; a stop signal during the report just ends the
        report (Ctrl-C 130, SIGTERM 143, SIGHUP 129), saying the run itself is complete."""
        try:
            # a signal that arrived while the run was being recorded ends it before it starts
            with self.stop.unwinding(Stage.WRITING):
                from lclock.analysis.report import report_after_run

                headlines = report_after_run(self.run_dir)
        except Interrupted as exc:
            name = self.stop.cause or "sigint"
            sys.stderr.write(f"{prefix('run')}: report interrupted by {NAMES[name]} (the run "
                             "itself is complete)\n")
            return exc.code
        except Exception as exc:  # the run itself is fine; say what failed and go on
            sys.stderr.write(f"{prefix('run')}: warning: report not written: {one_line(exc)}\n")
            return 0
        for h in headlines:
            self.console.line(h)
        self.console.line(f"report: {self.run_dir / 'report.html'}")
        return 0


def _wait(waitables: list[Any], timeout: float) -> list[Any]:
    import multiprocessing.connection

    return multiprocessing.connection.wait(waitables, timeout)


def _kill_descendants() -> None:
    """Nothing may outlive the launcher: anything the workers started, at any depth."""
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            child.kill()
