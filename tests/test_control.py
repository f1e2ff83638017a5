"""The controls, driven directly: what each input makes of the stop the driver reads.

No process and no signal: the launcher's pipe is an in-process ``Pipe``, the parent's
sentinel and the wakeup fd are socket pairs, a signal is ``StopRequest.record`` (what the
handler does), and the clock is a virtual one (``runtime_fakes.FakeWorld``).
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from typing import Any

import orjson
import pytest
from runtime_fakes import FakeWorld

from lclock.lifecycle import StopRequest
from lclock.runtime.control import LauncherControl, LocalControl


@dataclass
class Ends:
    """The launcher's end of the pipe, the parent's sentinel, and the wakeup socket's."""

    launcher: Connection
    parent: socket.socket
    wake_w: socket.socket
    stop: StopRequest
    clock: FakeWorld
    control: LauncherControl
    owned: list[Any] = field(default_factory=list)

    def say(self, **msg: Any) -> None:
        self.launcher.send_bytes(orjson.dumps(msg))

    def ready(self) -> list[Any]:
        """What a wait on the control's fds would return now."""
        import select

        r, _w, _x = select.select(self.control.fds(), [], [], 0)
        return r

    def heard(self) -> list[dict[str, Any]]:
        out = []
        while self.launcher.poll():
            out.append(orjson.loads(self.launcher.recv_bytes()))
        return out


@pytest.fixture
def ends() -> Iterator[Ends]:
    conn, launcher = Pipe()
    sentinel, parent = socket.socketpair()
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    stop, clock = StopRequest(), FakeWorld()
    control = LauncherControl(conn, sentinel.fileno(), wake_r, stop, clock=clock)
    e = Ends(launcher, parent, wake_w, stop, clock, control,
             owned=[conn, launcher, sentinel, parent, wake_r, wake_w])
    yield e
    for x in e.owned:
        x.close()


def test_go_gives_the_start_and_stop_the_reason(ends: Ends) -> None:
    c = ends.control
    c.on_ready(ends.ready())
    assert (c.t0, c.stop_reason) == (None, None)  # nothing said yet
    ends.say(t="go", t0=1234.5)
    c.on_ready(ends.ready())
    assert (c.t0, c.stop_reason) == (1234.5, None)
    ends.say(t="stop", reason="duration")
    ends.say(t="stop", reason="later")
    c.on_ready(ends.ready())
    assert c.stop_reason == "duration"  # the first reason stands
    assert not c.hurry and c.orphaned_at is None


def test_sigterm_stops_and_hurries(ends: Ends) -> None:
    c = ends.control
    ends.stop.record(signal.SIGTERM)
    ends.wake_w.send(b"\x0f")
    c.on_ready(ends.ready())
    assert c.stop_reason == "sigterm" and c.hurry and not c.urgent
    assert ends.ready() == []  # the wakeup byte was read: the next wait sleeps again


def test_the_launchers_sigterm_after_its_stop_hurries_the_stop(ends: Ends) -> None:
    """The launcher's second stage (SIGTERM, its grace over) comes after its stop message:
    the stop keeps its reason, and the machine now hurries (its drain, a silent program)."""
    c = ends.control
    ends.say(t="stop", reason="sigint")
    c.on_ready(ends.ready())
    assert c.stop_reason == "sigint" and not c.hurry
    ends.stop.record(signal.SIGTERM)
    ends.wake_w.send(b"\x0f")
    c.on_ready(ends.ready())
    assert c.stop_reason == "sigint" and c.hurry and not c.urgent


def test_the_launchers_death_orphans_the_machine_and_stops_watching_its_pipe(ends: Ends) -> None:
    c = ends.control
    ends.clock.t = 60.0
    ends.launcher.close()
    ends.owned.remove(ends.launcher)
    c.on_ready(ends.ready())
    assert c.stop_reason == "launcher_gone" and c.orphaned_at == 60.0
    # EOF stays readable: watched, it would make every later wait return at once.
    assert c.fds() == [c.wake] and ends.ready() == []


def test_the_parents_sentinel_orphans_the_machine_once(ends: Ends) -> None:
    c = ends.control
    ends.say(t="stop", reason="duration")
    c.on_ready(ends.ready())
    ends.clock.t = 70.0
    ends.parent.close()
    ends.owned.remove(ends.parent)
    c.on_ready(ends.ready())
    assert c.orphaned_at == 70.0
    assert c.stop_reason == "duration"  # the stop asked before it went keeps its reason
    ends.clock.t = 80.0
    c.on_ready([c.parent_sentinel])
    assert c.orphaned_at == 70.0


def test_reports_reach_the_launcher_and_a_gone_one_orphans(ends: Ends) -> None:
    c = ends.control
    c.report({"t": "ready", "pid": 1})
    assert ends.heard() == [{"t": "ready", "pid": 1}]
    ends.launcher.close()
    ends.owned.remove(ends.launcher)
    ends.clock.t = 90.0
    c.report({"t": "status", "ticks": 3})  # EPIPE: never an exception in the tick loop
    assert c.orphaned_at == 90.0 and c.stop_reason == "launcher_gone"


@pytest.fixture
def local() -> Iterator[tuple[LocalControl, StopRequest, socket.socket, list[dict[str, Any]]]]:
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    stop = StopRequest()
    shown: list[dict[str, Any]] = []
    yield LocalControl(100.0, wake_r, stop, on_status=shown.append), stop, wake_w, shown
    wake_r.close()
    wake_w.close()


def test_a_vm_knows_its_start_and_stops_on_a_signal(
        local: tuple[LocalControl, StopRequest, socket.socket, list[dict[str, Any]]]) -> None:
    c, stop, wake_w, _shown = local
    assert c.t0 == 100.0 and c.fds() == [c.wake] and not c.killed_at_crash
    c.on_ready([])
    assert (c.stop_reason, c.hurry) == (None, False)
    stop.record(signal.SIGHUP)
    wake_w.send(b"\x01")
    c.on_ready([c.wake])
    assert (c.stop_reason, c.hurry) == ("sighup", False)  # a vm drains its peers fully
    with pytest.raises(BlockingIOError):
        c.wake.recv(16)  # on_ready drained the wakeup byte


def test_a_second_ctrl_c_makes_a_vm_urgent(
        local: tuple[LocalControl, StopRequest, socket.socket, list[dict[str, Any]]]) -> None:
    c, stop, _wake_w, _shown = local
    stop.record(signal.SIGINT)
    c.on_ready([])
    assert (c.stop_reason, c.urgent) == ("sigint", False)
    stop.record(signal.SIGINT)
    c.on_ready([])
    assert (c.stop_reason, c.urgent, c.hurry) == ("sigint", True, True)


def test_a_vm_keeps_its_done_report_and_shows_its_status(
        local: tuple[LocalControl, StopRequest, socket.socket, list[dict[str, Any]]]) -> None:
    c, _stop, _wake_w, shown = local
    c.report({"t": "ready", "pid": 5})
    c.report({"t": "status", "ticks": 4, "lclock": 9, "queue": 0})
    c.report({"t": "done", "reason": "duration"})
    assert shown == [{"ticks": 4, "lclock": 9, "queue": 0}]
    assert c.done == {"t": "done", "reason": "duration"}
