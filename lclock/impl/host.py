"""One machine's program in a real run (``lclock run``, ``lclock vm``): the worker's side.

The simulator holds every program of a run in one process (``Programs``); a real run has
one process per machine, and each holds its own: started in its jail before the machine
connects, asked on the tick deadlines without waiting for the answers (``RealChannel``:
the driver logs a tick and sends its message when its answer comes), frozen with its
machine's pause, killed with its crash, stopped with its graceful stop. The driver calls
these hooks and waits on the channel's pipes; it never sees a process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil

from lclock.core.node import MachinePlan, Node
from lclock.impl import protocol as p
from lclock.impl.ahead import RealChannel
from lclock.impl.jail import JAIL_ENV, Cgroups, _own_cgroup
from lclock.impl.machine import Programs
from lclock.impl.program import ProgramFailed, ProgramSpec, WaitInterrupted


def offered_clocks(plan: MachinePlan) -> p.Clocks:
    """The clocks the run keeps besides Lamport, as ``init`` offers them."""
    return p.Clocks(vector=plan.vector, hlc=plan.hlc)


def narrowed_plan(plan: MachinePlan, kept: list[str]) -> MachinePlan:
    """The machine's plan with only the clocks every machine keeps (the launcher's word)."""
    return replace(plan, vector=plan.vector and "vector" in kept,
                   hlc=plan.hlc and "hlc" in kept)


class ProgramHost:
    """The program of one machine of a real run, from its start to its end."""

    def __init__(self, spec: ProgramSpec, plan: MachinePlan, run_dir: Path) -> None:
        self.mid = plan.machine_id
        self.programs = Programs({self.mid: spec}, run_dir, plan.seed, plan.n, batch=True)
        self.offered = offered_clocks(plan)
        self.kept = self.offered
        #: Why the program failed its machine (None: it has not).
        self.failure: ProgramFailed | None = None
        self.closed = False
        #: The program's requests and answers (None until ``wrap``, or if it failed init).
        self.channel: RealChannel | None = None
        #: lclock stopped while the program had not answered (``init``, or ticks when the
        #: launcher hurried the stop): it is asked nothing more, and not failed.
        self.abandoned = False

    def start(self, stopping: Callable[[], bool] | None = None) -> list[str]:
        """Start the program and ``init`` it; the clocks it keeps (all offered if it failed:
        it runs no tick, and its failure is logged once the machine has its log).

        ``stopping`` says whether the run is being stopped: a stop (Ctrl-C, say) while the
        program has not answered ``init`` ends it at once, not after its 10 s.
        """
        self.programs.stopping = stopping
        try:
            self.kept = self.programs.start(self.offered)
        except ProgramFailed as exc:
            self.failure = exc
        except WaitInterrupted:
            self.abandon()
        finally:
            self.programs.stopping = None
        return self.kept.names()

    def wrap(self, node: Node, stopping: Callable[[], bool] | None = None) -> None:
        """The node's machine, its clocks now the program's answers (the agreed clocks),
        asked through ``channel`` ahead of them. ``stopping`` as for ``start``: a program
        started again is in ``init`` again."""
        plan = node.plan
        self.kept = p.Clocks(vector=plan.vector, hlc=plan.hlc)
        if self.failure is None and not self.abandoned:
            self.programs.stopping = stopping
            try:  # it kept clocks another machine does not: it starts again, offered fewer
                self.programs.reoffer(self.kept)
            except ProgramFailed as exc:
                self.failure = exc
                return
            except WaitInterrupted:
                self.abandon()
                return
            finally:
                self.programs.stopping = None
            programs = self.programs
            self.channel = RealChannel(programs.running[self.mid], plan.n, self.kept,
                                       programs.specs[self.mid].timeout)
            node.machine = programs.wrap_ahead(self.mid, node.machine, self.kept, self.channel)

    def abandon(self) -> None:
        """lclock stops while the program has not answered: killed, asked nothing more."""
        self.abandoned = True
        self.programs.kill(self.mid)

    def failed(self, exc: ProgramFailed) -> None:
        """The program failed its machine: it is killed at once (its end is the machine's)."""
        self.failure = self.failure or exc
        self.programs.failures[self.mid] = self.failure
        self.programs.kill(self.mid)

    def pause(self, stopped: bool) -> None:
        """A planned pause stops the program's processes too (and its end continues them)."""
        if self.failure is None:
            self.programs.pause(self.mid, stopped)

    def kill(self) -> None:
        """A planned crash kills the program with its machine."""
        self.programs.kill(self.mid)

    def stop(self, hurried: Callable[[], bool] | None = None) -> ProgramFailed | None:
        """The polite end (``stop``, ``stop_ok``, an exit 0 within 2 s); the failure if the
        program does not end so. ``hurried``: the launcher hurries the stop (its SIGTERM),
        and a ``stop_ok`` still to come is not waited for (the program is abandoned)."""
        if self.failure is not None or self.abandoned:
            return None
        try:
            self.programs.stop(self.mid, stopping=hurried)
        except WaitInterrupted:
            self.abandon()
            return None
        failure = self.programs.failures.get(self.mid)
        if failure is not None:
            self.failure = failure
        return failure

    def close(self) -> dict[str, Any]:
        """Kill whatever is left; run.json's entry of this program."""
        if not self.closed:
            self.closed = True
            if self.failure is not None:
                self.programs.failures[self.mid] = self.failure
            self.programs.close()
        return self.record()

    def record(self) -> dict[str, Any]:
        """run.json's entry of this program as it stands (command, digest, the end of its
        stderr, how it is held, why it failed)."""
        running = self.programs.running.get(self.mid)
        if running is not None and not self.closed:
            with contextlib.suppress(OSError):
                running.pipes.read_stderr()  # what it has written so far
        entry = self.programs.run_json(self.offered, self.kept)
        out: dict[str, Any] = entry["machines"][str(self.mid)]
        out["limits"] = entry.get("limits")
        answers = self.channel.answer_ms() if self.channel is not None else None
        if answers is not None:
            out["answer_ms"] = answers
        return out

    def __enter__(self) -> ProgramHost:
        return self

    def __exit__(self, *_exc: object) -> None:
        with contextlib.suppress(Exception):
            self.close()


def end_leftovers(run_id: str, within: float = 5.0) -> list[int]:
    """Kill whatever a run's programs left behind, and remove their cgroups (the launcher,
    at the end of a real run); the pids it found.

    A machine's worker ends its program itself, but a worker SIGKILLed at its planned crash
    may die in the middle of that, its program's cgroup still frozen (a frozen process does
    not die of the parent-death signal). Every program of the run is found by its cgroups
    (``lclock-<pid>-<run id>-<machine>``) and by the mark in its environment.
    """
    dirs = [path for controller in Cgroups.CONTROLLERS
            if (parent := _own_cgroup(controller)) is not None
            for path in parent.glob(f"lclock-*-{run_id}-*")]
    found: set[int] = set()
    end = time.monotonic() + within
    while True:
        pids = _pids_in(dirs) | _marked(f"-{run_id}-")
        found |= pids
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for path in dirs:  # the kills land once thawed
            with contextlib.suppress(OSError):
                (path / "freezer.state").write_text("THAWED")
        if not pids or time.monotonic() > end:
            break
        time.sleep(0.02)
    for path in dirs:
        with contextlib.suppress(OSError):
            path.rmdir()
    return sorted(found)


def _pids_in(dirs: list[Path]) -> set[int]:
    out: set[int] = set()
    for path in dirs:
        with contextlib.suppress(OSError, ValueError):
            out.update(int(x) for x in (path / "cgroup.procs").read_text().split())
    return out


def _marked(part: str) -> set[int]:
    """Live processes whose jail mark holds ``part`` (zombies hold nothing)."""
    out = set()
    for proc in psutil.process_iter(["environ", "status"]):
        with contextlib.suppress(psutil.Error):
            if part in (proc.info["environ"] or {}).get(JAIL_ENV, "") and \
                    proc.info["status"] != psutil.STATUS_ZOMBIE:
                out.add(proc.pid)
    return out
