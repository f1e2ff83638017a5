"""The launcher's loop and its policy: start the machines, start them together, stop them.

Split as honcho splits its manager: ``Policy`` is pure (events in, actions out: no time,
no processes), so unit tests replay event sequences against it; ``Supervisor`` is the
loop that turns pipes, sentinels and signals into those events and carries the actions
out, with its clock, its wait function and its process factory injected.

The stop, in stages with bounded waits: ``stop`` on every control pipe (graceful: every
message accounted for), then SIGTERM (with SIGCONT, so a stopped process can act on it),
then SIGKILL. A second Ctrl-C skips to SIGKILL.
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from lclock.core.faults import FaultPlan
from lclock.lifecycle import (
    CAUSES,
    EXIT_CODES,
    NAMES,
    SIGNALS,
    Response,
    Stage,
    StopRequest,
    decide,
    drain_wakeup,
)
from lclock.runfolder import lost_reason, message_balance
from lclock.runtime.driver import DRAIN_TIMEOUT
from lclock.runtime.waiting import Clock

STOP_GRACE = 1.5  # graceful stop -> SIGTERM
#: The machine keeps the plan's instants itself (it stops ticking at a pause's start, waits
#: for the end, and halts at its crash). SIGSTOP and SIGKILL follow a moment after the
#: instant, so they never come first; SIGCONT comes a moment before the end, so that the
#: machine is running again to resume at the end itself.
SIGNAL_MARGIN = 0.02
RESUME_EARLY = 0.02
TERM_GRACE = 1.0  # SIGTERM -> SIGKILL
STOPPED_LOOK_AFTER = 0.5  # past the end: look for machines stopped from outside
KILL_GRACE = 2.0
#: A machine reports one of these as its stop reason when it could not do its part.
FAILED_REASONS = {"connect_failed": "could not connect to its peers",
                  "log_failed": "could not write its log"}


# -- the policy (pure) ----------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """What the policy wants done: ``go`` (t0), ``agree`` (the clocks every machine keeps, in
    a run with programs), ``stop`` (reason), ``terminate``, ``kill``, ``say`` (a line for the
    console), and the fault plan's ``pause``, ``resume`` and
    ``crash`` (arg: the machine)."""

    kind: str
    arg: Any = None


@dataclass
class MachineState:
    id: int
    ready: bool = False
    status: dict[str, Any] = field(default_factory=dict)
    done: dict[str, Any] | None = None
    #: The clocks its program keeps (a run with programs), and its program's record.
    clocks: list[str] | None = None
    impl: dict[str, Any] | None = None
    exitcode: int | None = None


@dataclass
class Outcome:
    status: str
    code: int
    reason: str | None
    killed: bool
    t0: float | None
    messages: dict[str, Any]
    #: Each machine's stop report (None: it never gave one).
    reports: dict[int, dict[str, Any] | None]


def describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


class Policy:
    """When to start, when and how to stop, and what the run's outcome was."""

    def __init__(self, ids: Iterable[int], duration: float, faults: FaultPlan | None = None) -> None:
        self.machines = {i: MachineState(i) for i in ids}
        self.duration = duration
        # The plan's signals, in time order: (t since t0, kind, machine).
        self.schedule: list[tuple[float, str, int]] = sorted(_schedule(faults))
        self.paused: set[int] = set()
        self.crashed: set[int] = set()
        self.applied: list[dict[str, Any]] = []
        self.cause: str | None = None  # first reason to stop early: sigint/sigterm/sighup/failed
        self.failure: str | None = None
        self.stop_sent_at: float | None = None
        self.termed = False
        self.killed = False
        self.t0: float | None = None
        self.overrun_at: float | None = None
        #: The clocks every machine keeps, once each has said (a run with programs).
        self.agreed: list[str] | None = None

    # -- events ------------------------------------------------------------------------------

    def on_message(self, mid: int, msg: dict[str, Any], now: float) -> list[Action]:
        m = self.machines[mid]
        kind = msg.pop("t", None)
        if kind == "ready":
            m.ready = True
        elif kind == "clocks":
            m.clocks = [str(c) for c in msg.get("clocks", [])]
            return self._agree()
        elif kind == "impl":
            m.impl = msg.get("entry")
        elif kind == "failed":  # its program failed it (SPEC 9.5); its stop report follows
            return self._fail(f"machine {mid}: {msg.get('failed')}", now)
        elif kind == "status":
            m.status = msg
        elif kind == "done":
            m.done = msg
            m.status = {k: msg[k] for k in ("ticks", "lclock") if k in msg}
            m.status["queue"] = msg.get("unprocessed", 0)
            reason = str(msg.get("reason"))
            why = FAILED_REASONS.get(reason)
            if why is None and msg.get("log_error"):
                why = FAILED_REASONS["log_failed"]
            if why is not None:
                detail = msg.get("log_error")
                return self._fail(f"machine {mid} {why}" + (f" ({detail})" if detail else ""), now)
            if reason == "program_failed":  # SPEC 9.5: even one that failed while stopping
                return self._fail(f"machine {mid}: {msg.get('failed')}", now)
            if reason in CAUSES.values() and not self.stopping:
                # A stop signal sent to the machine itself (or to the whole group, and it
                # was handled there first): the run is interrupted by it, not failed.
                self.cause = self.cause or reason
                return [Action("say", f"machine {mid} got {NAMES[reason]}: stopping every "
                                      "machine gracefully"), *self._stop(reason, now)]
            if reason != "duration" and not self.stopping:
                # Not asked to stop, not at its end: something outside the run stopped it
                # (a SIGTERM sent to the worker itself, say). The run cannot be whole.
                return self._fail(f"machine {mid} stopped early ({reason})", now)
        return []

    def _agree(self) -> list[Action]:
        """Once every machine has said which clocks it keeps: those all keep, in the order
        offered (SPEC 9.2)."""
        said = [m.clocks for m in self.machines.values()]
        if self.agreed is not None or any(c is None for c in said):
            return []
        first = said[0] or []
        self.agreed = [c for c in first if all(c in (other or []) for other in said)]
        return [Action("agree", self.agreed)]

    def on_exit(self, mid: int, code: int, now: float) -> list[Action]:
        """A machine ended. Without its stop report, and not because we ended it: a failure."""
        m = self.machines[mid]
        m.exitcode = code
        ended_by_us = (self.killed or self.termed or self.cause in CAUSES.values()
                       or mid in self.crashed)
        if m.done is None and not ended_by_us:
            phase = "could not start" if self.t0 is None else "died"
            return self._fail(f"machine {mid} {phase} ({describe_exit(code)})", now)
        return []

    def on_signal(self, sig: int, now: float) -> list[Action]:
        name = CAUSES.get(sig, "sigterm")
        # a machine that reported a stop signal counts as one received before this one
        before = [SIGNALS[self.cause]] if self.cause in SIGNALS else []
        if decide(Stage.RUNNING, [*before, sig]) is Response.STOP_NOW:
            return [Action("say", "second Ctrl-C: killing every machine now"), *self._kill()]
        out: list[Action] = []
        if self.cause is None:
            self.cause = name
            out.append(Action("say", f"{NAMES[name]}: stopping gracefully (press Ctrl-C "
                                     "again to stop at once)"))
        return out + self._stop(name, now)

    def on_time(self, now: float, wall: float) -> list[Action]:
        out: list[Action] = []
        if self.t0 is None and self.cause is None and all(m.ready for m in self.machines.values()):
            self.t0 = wall + 0.02 + 0.002 * len(self.machines)
            out.append(Action("go", self.t0))
        if self.t0 is not None and self.overrun_at is None:
            self.overrun_at = now + (self.t0 - wall) + self.duration + DRAIN_TIMEOUT + 5.0
        if self.t0 is not None and not self.stopping:
            out += self._faults(wall - self.t0)
        if self.overrun_at is not None and now > self.overrun_at and self.stop_sent_at is None:
            self.failure = self.failure or "machines did not stop at the end of the run"
            self.cause = self.cause or "failed"
            out += self._stop("overrun", now)
        if self.stop_sent_at is not None:
            waited = now - self.stop_sent_at
            if not self.termed and waited > STOP_GRACE:
                self.termed = True
                out.append(Action("terminate"))
            if not self.killed and waited > STOP_GRACE + TERM_GRACE:
                out += self._kill()
        return out

    def looks_for_stopped(self, wall: float) -> bool:
        """Past the end of the run, a machine still there may be one that something outside
        the run stopped (SIGSTOP, SIGTSTP): it would hold every other machine's drain."""
        return self.t0 is not None and wall > self.t0 + self.duration + STOPPED_LOOK_AFTER

    def on_stopped(self, mids: Iterable[int], now: float) -> list[Action]:
        """Machines found stopped: those the plan did not pause were stopped from outside.
        The run has failed (they missed ticks); they are continued so they can stop."""
        outsiders = sorted(set(mids) - self.paused - self.crashed)
        if not outsiders:
            return []
        names = ", ".join(map(str, outsiders))
        out = self._fail(f"machine {names} was stopped from outside the run (SIGSTOP or "
                         "SIGTSTP) and missed its ticks", now)
        return [Action("say", f"machine {names} is stopped (SIGSTOP?): continuing it so "
                              "that it can stop"), *[Action("resume", m) for m in outsiders],
                *out]

    def _faults(self, t: float) -> list[Action]:
        """The plan's pauses, resumes and crashes whose time has come."""
        out = []
        while self.schedule and self.schedule[0][0] <= t:
            _when, kind, mid = self.schedule.pop(0)
            if mid in self.crashed or self.machines[mid].exitcode is not None:
                continue
            if kind == "pause":
                self.paused.add(mid)
            elif kind == "resume":
                self.paused.discard(mid)
            else:
                self.crashed.add(mid)
                self.paused.discard(mid)
            self.applied.append({"kind": kind, "machine": mid, "at": round(t, 6)})
            out.append(Action(kind, mid))
        return out

    def next_fault_in(self, wall: float) -> float | None:
        """Seconds until the plan's next signal is due (None: nothing planned, or no start)."""
        if self.t0 is None or not self.schedule or self.stopping:
            return None
        return max(0.0, self.t0 + self.schedule[0][0] - wall)

    # -- decisions ---------------------------------------------------------------------------

    def _fail(self, text: str, now: float) -> list[Action]:
        """The first failure is the run's cause (later ones are mostly its consequences)."""
        self.failure = self.failure or text
        if self.cause is None:
            self.cause = "failed"
        return self._stop("peer_failed", now)

    def _stop(self, reason: str, now: float) -> list[Action]:
        if self.stop_sent_at is not None:
            return []
        self.stop_sent_at = now
        return [Action("stop", reason)]

    def _kill(self) -> list[Action]:
        if self.killed:
            return []
        self.killed = True
        return [Action("kill")]

    @property
    def stopping(self) -> bool:
        return self.stop_sent_at is not None

    # -- the end -----------------------------------------------------------------------------

    def outcome(self) -> Outcome:
        """The run's status, exit code and reason, from how it ended and what was lost.

        A run that lost messages is never ``completed`` with exit 0: the per-link counts
        of the machines' stop reports must balance (sent = taken in), else it failed.
        """
        cause = self.cause or "completed"
        status = {"completed": "completed", "failed": "failed"}.get(cause, "interrupted")
        code = EXIT_CODES[cause]
        reason = self.failure if cause == "failed" else ("duration" if cause == "completed" else cause)
        messages = message_balance({m.id: m.done for m in self.machines.values()}, self.crashed)
        if status == "completed":
            missing = sorted(m.id for m in self.machines.values()
                             if m.done is None and m.id not in self.crashed)
            if missing:
                status, code = "failed", 1
                reason = f"machine {', '.join(map(str, missing))} ended without a stop report"
            elif messages.get("lost"):
                status, code = "failed", 1
                reason = lost_reason(messages)
        reports = {m.id: m.done for m in self.machines.values()}
        return Outcome(status, code, reason, self.killed, self.t0, messages, reports)


def _schedule(faults: FaultPlan | None) -> list[tuple[float, str, int]]:
    if faults is None:
        return []
    out = [(p.start + SIGNAL_MARGIN, "pause", p.machine) for p in faults.pauses]
    out += [(max(p.start + SIGNAL_MARGIN, p.end - RESUME_EARLY), "resume", p.machine)
            for p in faults.pauses]
    out += [(c.time + SIGNAL_MARGIN, "crash", c.machine) for c in faults.crashes]
    return out


# -- the loop (I/O) -------------------------------------------------------------------------


class Child(Protocol):
    """What the supervisor needs of a machine process (``process.MachineProcess``)."""

    id: int
    exitcode: int | None

    @property
    def sentinel(self) -> Any: ...
    @property
    def pid(self) -> int | None: ...
    @property
    def alive(self) -> bool: ...
    conn: Any

    def start(self) -> None: ...
    def send(self, msg: dict[str, Any]) -> None: ...
    def messages(self) -> list[dict[str, Any]]: ...
    def reap(self, timeout: float = 1.0) -> int: ...
    def terminate(self) -> None: ...
    def kill(self) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def is_stopped(self) -> bool: ...
    def stop_now(self, grace: float) -> None: ...


class Printer(Protocol):
    interval: float

    def line(self, text: str) -> None: ...
    def progress(self, elapsed: float, duration: float, machines: list[dict[str, Any]]) -> None: ...


Wait = Callable[[list[Any], float], list[Any]]


class Supervisor:
    """Runs the policy over real (or fake) processes until every machine has ended."""

    def __init__(self, children: list[Child], policy: Policy, stop: StopRequest,
                 wake: socket.socket | None, printer: Printer, *, wait: Wait,
                 clock: Clock = time, errors: Callable[[str], None] | None = None,
                 rates: dict[int, int] | None = None) -> None:
        self.children = {c.id: c for c in children}
        self.policy = policy
        self.stop = stop
        self.wake = wake
        self.printer = printer
        self.wait = wait
        self.clock = clock
        self.rates = rates or {}
        self.seen_signals = 0

    def start(self, start_one: Callable[[Child], None]) -> None:
        """Start the children one by one; a stop request on the way ends the starting."""
        for child in self.children.values():
            self._signals()
            if self.policy.cause is not None:
                break
            start_one(child)
        self._signals()

    def _alive(self) -> list[Child]:
        return [c for c in self.children.values() if c.pid is not None and c.exitcode is None]

    def run(self) -> Outcome:
        next_draw = self.clock.monotonic() + self.printer.interval
        next_look = 0.0
        while self._alive():
            waitables: list[Any] = [self.wake] if self.wake is not None else []
            for c in self._alive():
                waitables.append(c.sentinel)
                if c.conn is not None:
                    waitables.append(c.conn)
            now = self.clock.monotonic()
            timeout = min(next_draw - now, 0.25)
            fault_in = self.policy.next_fault_in(self.clock.time())
            if fault_in is not None:
                timeout = min(timeout, fault_in)
            ready = self.wait(waitables, max(0.0, timeout))
            self._handle_ready(ready)
            self._signals()
            now = self.clock.monotonic()
            self._act(self.policy.on_time(now, self.clock.time()))
            if now >= next_look and self.policy.looks_for_stopped(self.clock.time()):
                next_look = now + 1.0
                stopped = [c.id for c in self._alive() if c.is_stopped()]
                self._act(self.policy.on_stopped(stopped, now))
            if now >= next_draw:
                next_draw = now + self.printer.interval
                self._progress()
        return self.policy.outcome()

    def _handle_ready(self, ready: list[Any]) -> None:
        now = self.clock.monotonic()
        for r in ready:
            if r is self.wake and self.wake is not None:
                drain_wakeup(self.wake)
                continue
            for c in self.children.values():
                if c.conn is not None and r is c.conn:
                    self._read(c, now)
                elif c.pid is not None and c.exitcode is None and r == c.sentinel:
                    self._read(c, now)  # its last words come before its exit
                    self._act(self.policy.on_exit(c.id, c.reap(), now))

    def _read(self, c: Child, now: float) -> None:
        for msg in c.messages():
            self._act(self.policy.on_message(c.id, msg, now))

    def _signals(self) -> None:
        sigs = self.stop.signals
        while self.seen_signals < len(sigs):
            sig = sigs[self.seen_signals]
            self.seen_signals += 1
            self._act(self.policy.on_signal(sig, self.clock.monotonic()))

    def _act(self, actions: list[Action]) -> None:
        for a in actions:
            if a.kind == "go":
                for c in self._alive():
                    c.send({"t": "go", "t0": a.arg})
            elif a.kind == "agree":
                for c in self._alive():
                    c.send({"t": "agreed", "clocks": a.arg})
            elif a.kind == "stop":
                for c in self._alive():
                    c.send({"t": "stop", "reason": a.arg})
                    if c.id in self.policy.paused:  # a stopped process cannot read it
                        c.resume()
            elif a.kind == "terminate":
                for c in self._alive():
                    c.terminate()
            elif a.kind == "kill":
                for c in self._alive():
                    c.kill()
            elif a.kind == "say":
                self.printer.line(a.arg)
            elif a.kind in ("pause", "resume", "crash"):
                child = self.children[a.arg]
                {"pause": child.pause, "resume": child.resume, "crash": child.kill}[a.kind]()

    def _progress(self) -> None:
        p = self.policy
        if p.t0 is None or p.stopping:
            return
        self.printer.progress(
            self.clock.time() - p.t0, p.duration,
            [{"id": m.id, "rate": self.rates.get(m.id), **m.status} for m in p.machines.values()],
        )

    def finish(self) -> None:
        """Nothing may outlive the run: kill and reap any child still there."""
        for c in self.children.values():
            if c.pid is not None:
                c.stop_now(KILL_GRACE)
