"""The launcher's policy and loop, with a fake clock and fake processes (no subprocess).

The policy is pure, so event sequences are replayed against it directly; the supervisor's
loop is then run over scripted children whose "processes" answer the control messages at
once, so a whole run -- start, go, stop, SIGTERM, SIGKILL -- takes milliseconds.
"""

from __future__ import annotations

import signal
from collections import deque
from collections.abc import Callable
from typing import Any

from lclock.lifecycle import StopRequest
from lclock.runtime.supervisor import (
    STOP_GRACE,
    TERM_GRACE,
    Action,
    Policy,
    Supervisor,
    message_balance,
)


def report(mid: int, sent_to: dict[int, int], taken_from: dict[int, int], **kw: Any) -> dict[str, Any]:
    return {"t": "done", "reason": "duration", "ticks": 10, "lclock": 12,
            "sent_to": {str(k): v for k, v in sent_to.items()},
            "taken_from": {str(k): v for k, v in taken_from.items()}, **kw}


BALANCED = {
    1: ({2: 3, 3: 1}, {2: 2, 3: 0}),
    2: ({1: 2}, {1: 3, 3: 4}),
    3: ({2: 4}, {1: 1}),
}


# -- the policy, event by event ------------------------------------------------------------


def kinds(actions: list[Action]) -> list[str]:
    return [a.kind for a in actions]


def test_go_only_when_every_machine_is_ready() -> None:
    p = Policy([1, 2, 3], duration=5.0)
    p.on_message(1, {"t": "ready"}, 0.0)
    p.on_message(2, {"t": "ready"}, 0.0)
    assert p.on_time(0.1, 1000.0) == []
    p.on_message(3, {"t": "ready"}, 0.2)
    (go,) = p.on_time(0.2, 1000.0)
    assert go.kind == "go" and 1000.0 < go.arg < 1000.1
    assert p.on_time(0.3, 1000.1) == []  # once


def test_the_clocks_every_machines_program_keeps_are_agreed_once_all_have_said() -> None:
    p = Policy([1, 2, 3], duration=5.0)
    assert p.on_message(1, {"t": "clocks", "clocks": ["lamport", "vector", "hlc"]}, 0.0) == []
    assert p.on_message(3, {"t": "clocks", "clocks": ["lamport", "hlc"]}, 0.0) == []
    (agree,) = p.on_message(2, {"t": "clocks", "clocks": ["lamport", "vector", "hlc"]}, 0.1)
    assert (agree.kind, agree.arg) == ("agree", ["lamport", "hlc"])
    assert p.on_message(2, {"t": "clocks", "clocks": ["lamport"]}, 0.2) == []  # once


def test_a_machine_whose_program_failed_stops_the_others_and_fails_the_run() -> None:
    p = Policy([1, 2, 3], duration=5.0)
    for i in (1, 2, 3):
        p.on_message(i, {"t": "ready"}, 0.0)
    p.on_time(0.0, 1000.0)
    (stop,) = p.on_message(2, {"t": "failed", "failed": "not JSON"}, 1.0)
    assert (stop.kind, stop.arg) == ("stop", "peer_failed")
    p.on_message(2, report(2, {}, {}, reason="program_failed", failed="not JSON"), 1.5)
    for i in (1, 3):
        p.on_message(i, report(i, {}, {}, reason="peer_failed"), 1.6)
    out = p.outcome()
    assert (out.status, out.code, out.reason) == ("failed", 1, "machine 2: not JSON")


def test_a_clean_run_completes() -> None:
    p = Policy([1, 2, 3], duration=5.0)
    for i in (1, 2, 3):
        p.on_message(i, {"t": "ready"}, 0.0)
    p.on_time(0.0, 1000.0)
    for i, (s, t) in BALANCED.items():
        assert p.on_message(i, report(i, s, t), 5.0) == []
        assert p.on_exit(i, 0, 5.1) == []
    out = p.outcome()
    assert (out.status, out.code, out.reason) == ("completed", 0, "duration")
    assert out.messages == {"sent": 10, "taken": 10, "lost": 0}


def test_lost_messages_fail_the_run() -> None:
    p = Policy([1, 2], duration=5.0)
    p.on_message(1, report(1, {2: 5}, {2: 1}), 5.0)
    p.on_message(2, report(2, {1: 1}, {1: 3}), 5.0)
    out = p.outcome()
    assert (out.status, out.code) == ("failed", 1)
    assert out.reason == "2 messages lost (1->2: 2)"
    assert out.messages["lost_by_link"] == {"1->2": 2}


def test_a_machine_that_dies_stops_the_others() -> None:
    p = Policy([1, 2, 3], duration=5.0)
    for i in (1, 2, 3):
        p.on_message(i, {"t": "ready"}, 0.0)
    p.on_time(0.0, 1000.0)
    acts = p.on_exit(2, -9, 1.0)
    assert kinds(acts) == ["stop"] and acts[0].arg == "peer_failed"
    assert p.on_exit(3, -15, 1.1) == []  # a consequence, not a second cause
    out = p.outcome()
    assert (out.status, out.code, out.reason) == ("failed", 1, "machine 2 died (killed by SIGKILL)")


def test_a_machine_that_exits_before_the_start_could_not_start() -> None:
    p = Policy([1, 2], duration=5.0)
    assert kinds(p.on_exit(1, 1, 0.1)) == ["stop"]
    assert p.outcome().reason == "machine 1 could not start (exit status 1)"


def test_a_machine_that_cannot_write_its_log_fails_the_run() -> None:
    p = Policy([1, 2], duration=5.0)
    acts = p.on_message(1, {"t": "done", "reason": "log_failed",
                            "log_error": "no space left on the device"}, 1.0)
    assert kinds(acts) == ["stop"]
    out = p.outcome()
    assert out.status == "failed"
    assert out.reason == "machine 1 could not write its log (no space left on the device)"


def test_stop_escalates_to_sigterm_then_sigkill() -> None:
    p = Policy([1, 2], duration=60.0)
    acts = p.on_signal(signal.SIGINT, 10.0)
    assert kinds(acts) == ["say", "stop"] and acts[1].arg == "sigint"
    assert p.on_time(10.0 + STOP_GRACE - 0.01, 0.0) == []
    assert kinds(p.on_time(10.0 + STOP_GRACE + 0.01, 0.0)) == ["terminate"]
    assert kinds(p.on_time(10.0 + STOP_GRACE + TERM_GRACE + 0.01, 0.0)) == ["kill"]
    assert p.on_time(20.0, 0.0) == []
    out = p.outcome()
    assert (out.status, out.code, out.reason, out.killed) == ("interrupted", 130, "sigint", True)


def test_second_ctrl_c_kills_at_once() -> None:
    p = Policy([1, 2], duration=60.0)
    p.on_signal(signal.SIGINT, 1.0)
    acts = p.on_signal(signal.SIGINT, 1.1)
    assert kinds(acts) == ["say", "kill"]


def test_sighup_and_sigterm_stop_gracefully_with_their_own_status() -> None:
    for sig, code, name in ((signal.SIGHUP, 129, "sighup"), (signal.SIGTERM, 143, "sigterm")):
        p = Policy([1, 2], duration=60.0)
        assert kinds(p.on_signal(sig, 1.0)) == ["say", "stop"]
        assert kinds(p.on_signal(signal.SIGINT, 1.1)) == ["say", "kill"]
        out = p.outcome()
        assert (out.status, out.code, out.reason) == ("interrupted", code, name)


def test_machines_ended_by_the_stop_are_not_failures() -> None:
    p = Policy([1, 2], duration=60.0)
    p.on_signal(signal.SIGTERM, 1.0)
    assert p.on_exit(1, -15, 1.2) == []
    assert p.outcome().status == "interrupted"


def test_overrun_stops_a_run_that_does_not_end() -> None:
    p = Policy([1], duration=1.0)
    p.on_message(1, {"t": "ready"}, 0.0)
    p.on_time(0.0, 1000.0)
    assert p.on_time(10.0, 1010.0) == []
    acts = p.on_time(20.0, 1020.0)
    assert kinds(acts) == ["stop"] and acts[0].arg == "overrun"
    assert p.outcome().reason == "machines did not stop at the end of the run"


def test_balance_names_links_it_cannot_balance() -> None:
    out = message_balance({1: report(1, {2: 3}, {}), 2: None})
    assert out["unbalanced_links"] == ["1->2"] and out["lost"] == 0


def test_a_planned_crash_takes_what_its_machine_had_not_sent_or_handled() -> None:
    # 3 crashed: 2 of 1's copies to it were never handled, and 4 of its own sends to 2
    # were still held back for latency when it went
    reps = {1: report(1, {3: 5}, {3: 0}), 2: report(2, {}, {3: 6}),
            3: report(3, {1: 0, 2: 10}, {1: 3})}
    out = message_balance(reps, crashed=[3])
    assert (out["lost"], out["lost_in_crash"]) == (0, 2 + 4)
    assert "lost_by_link" not in out


def test_a_crash_does_not_explain_copies_from_nowhere() -> None:
    reps = {1: report(1, {3: 1}, {3: 0}), 3: report(3, {1: 0}, {1: 2})}
    out = message_balance(reps, crashed=[3])
    assert out["lost_by_link"] == {"1->3": -1} and out["lost_in_crash"] == 0


def test_balance_counts_dropped_and_duplicated_copies() -> None:
    reps = {1: report(1, {2: 10}, {}, dropped_to={"2": 3}, dup_to={"2": 2}),
            2: report(2, {}, {1: 9})}
    out = message_balance(reps)
    assert (out["sent"], out["dropped"], out["duplicated"], out["taken"], out["lost"]) == \
        (10, 3, 2, 9, 0)


# -- the loop, over fake processes ---------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def monotonic(self) -> float:
        return self.t

    def time(self) -> float:
        return self.t + 1_000_000.0


class FakeChild:
    """A machine process that answers its control messages at once, by a script."""

    def __init__(self, mid: int, world: FakeWorld, *, on_go: str = "finish",
                 on_stop: str = "finish", on_term: str = "exit") -> None:
        self.id = mid
        self.world = world
        self.on_go, self.on_stop, self.on_term = on_go, on_stop, on_term
        self.pid: int | None = None
        self.exitcode: int | None = None
        self.conn: object | None = object()
        self.sentinel = object()
        self.inbox: deque[dict[str, Any]] = deque()
        self.got: list[str] = []
        self.exited: int | None = None  # exit status not yet seen by the loop
        self.signals: list[str] = []
        self.frozen = False  # stopped by a signal from outside the run

    @property
    def alive(self) -> bool:
        return self.exitcode is None

    def start(self) -> None:
        self.pid = 1000 + self.id
        self.inbox.append({"t": "ready"})

    def send(self, msg: dict[str, Any]) -> None:
        self.got.append(msg["t"])
        what = self.on_go if msg["t"] == "go" else self.on_stop
        if self.frozen:
            return  # a stopped process reads nothing (it is read when it runs again)
        if what == "freeze":
            self.frozen = True
        elif what == "finish":
            s, t = BALANCED[self.id]
            self.inbox.append(report(self.id, s, t, reason=msg.get("reason", "duration")))
            self.exited = 0
        elif what == "die":
            self.exited = 1

    def messages(self) -> list[dict[str, Any]]:
        out = list(self.inbox)
        self.inbox.clear()
        return out

    def reap(self, timeout: float = 1.0) -> int:
        assert self.exited is not None
        self.exitcode = self.exited
        return self.exitcode

    def terminate(self) -> None:
        self.signals.append("term")
        if self.on_term == "exit":
            self.exited = -15

    def kill(self) -> None:
        self.signals.append("kill")
        self.exited = -9

    def pause(self) -> None:
        self.signals.append("stop")

    def resume(self) -> None:
        self.signals.append("cont")
        if self.frozen:
            self.frozen = False
            self.on_go = self.on_stop  # what it does with the stop it reads now

    def is_stopped(self) -> bool:
        return self.frozen

    def stop_now(self, grace: float) -> None:
        if self.exitcode is None and self.pid is not None:
            self.kill()
            self.reap()


class FakeWorld:
    """``wait`` for the supervisor: what is ready now, or else time passes."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.children: list[FakeChild] = []
        self.at: list[tuple[float, Callable[[], None]]] = []  # scripted events

    def wait(self, waitables: list[Any], timeout: float) -> list[Any]:
        ready = []
        for c in self.children:
            if c.inbox and c.conn in waitables:
                ready.append(c.conn)
            elif c.exited is not None and c.exitcode is None and c.sentinel in waitables:
                ready.append(c.sentinel)
        if ready:
            return ready
        self.clock.t += max(timeout, 0.001)
        for when, what in [e for e in self.at if e[0] <= self.clock.t]:
            self.at.remove((when, what))
            what()
        return []


class Quiet:
    interval = 0.5

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.progress_calls = 0

    def line(self, text: str) -> None:
        self.lines.append(text)

    def progress(self, elapsed: float, duration: float, machines: list[dict[str, Any]]) -> None:
        self.progress_calls += 1


def supervise(script: dict[int, dict[str, str]], stop: StopRequest | None = None,
              events: list[tuple[float, Callable[[StopRequest], None]]] = ()) -> tuple[Any, list[FakeChild], Quiet]:
    clock = FakeClock()
    world = FakeWorld(clock)
    stop = stop or StopRequest()
    children = [FakeChild(i, world, **script.get(i, {})) for i in (1, 2, 3)]
    world.children = children
    for dt, fn in events:
        world.at.append((clock.t + dt, lambda fn=fn: fn(stop)))
    printer = Quiet()
    sup = Supervisor(list(children), Policy([1, 2, 3], duration=5.0), stop, None, printer,
                     wait=world.wait, clock=clock)
    sup.start(lambda c: c.start())
    out = sup.run()
    sup.finish()
    return out, children, printer


def test_supervisor_runs_a_clean_run() -> None:
    out, children, _printer = supervise({})
    assert (out.status, out.code) == ("completed", 0)
    assert all(c.got == ["go"] for c in children)
    assert out.reports[2]["sent_to"] == {"1": 2}


def test_supervisor_stops_everyone_when_one_dies() -> None:
    out, children, _printer = supervise({2: {"on_go": "die"}, 1: {"on_go": "wait"},
                                         3: {"on_go": "wait"}})
    assert out.status == "failed" and out.reason == "machine 2 died (exit status 1)"
    assert children[0].got == ["go", "stop"] and children[2].got == ["go", "stop"]


def test_supervisor_escalates_on_a_stuck_machine() -> None:
    """Ctrl-C while machine 3 is stopped (SIGSTOP): the others stop gracefully, 3 is terminated."""
    out, children, printer = supervise(
        {i: {"on_go": "wait"} for i in (1, 2)} | {3: {"on_go": "wait", "on_stop": "wait"}},
        events=[(1.0, lambda s: s.record(signal.SIGINT))],
    )
    assert out.status == "interrupted" and out.code == 130
    assert children[0].signals == [] and children[1].signals == []
    assert children[2].signals == ["term"]
    assert any("stopping gracefully" in x for x in printer.lines)


def test_supervisor_kills_on_the_second_ctrl_c() -> None:
    out, children, _printer = supervise(
        {i: {"on_go": "wait", "on_stop": "wait", "on_term": "ignore"} for i in (1, 2, 3)},
        events=[(1.0, lambda s: s.record(signal.SIGINT)), (1.2, lambda s: s.record(signal.SIGINT))],
    )
    assert out.killed and all(c.signals == ["kill"] for c in children)
    assert out.status == "interrupted"


def test_supervisor_stops_before_starting_when_asked() -> None:
    stop = StopRequest()
    stop.record(signal.SIGTERM)
    out, children, _printer = supervise({}, stop=stop)
    assert all(c.pid is None for c in children)
    assert (out.status, out.code) == ("interrupted", 143)


def test_a_machine_stopped_from_outside_fails_the_run_soon_after_its_end() -> None:
    out, children, printer = supervise({2: {"on_go": "freeze"}})
    assert out.status == "failed", out
    assert out.reason == ("machine 2 was stopped from outside the run (SIGSTOP or SIGTSTP) "
                          "and missed its ticks")
    assert children[1].signals[:1] == ["cont"], "continued, so that it could stop"
    assert "term" not in children[1].signals and "kill" not in children[1].signals
    assert any("machine 2 is stopped" in line for line in printer.lines)


def test_a_machine_the_plan_paused_is_not_taken_for_one_stopped_from_outside() -> None:
    p = Policy([1, 2], duration=5.0)
    p.t0 = 1000.0
    p.paused.add(2)
    assert not p.looks_for_stopped(1005.0) and p.looks_for_stopped(1006.0)
    assert p.on_stopped([2], 10.0) == [] and p.cause is None
    acts = p.on_stopped([1, 2], 10.0)
    assert [a.kind for a in acts] == ["say", "resume", "stop"] and acts[1].arg == 1
