"""The real-time driver on a virtual clock: deadlines, lateness, intake, stop, pause, crash.

Each test scripts a world (``runtime_fakes``): when peers send and close, when a signal
arrives, when the process is descheduled. The driver runs unchanged over socket pairs,
its log file and its control; only time is virtual, so a run of seconds takes
milliseconds and says exactly which rule failed.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime_fakes import DriverRig

from lclock.core.faults import Crash, FaultPlan, Pause
from lclock.runtime.driver import (
    DRAIN_TIMEOUT,
    HURRY_DRAIN_TIMEOUT,
    ORPHAN_DRAIN_TIMEOUT,
    PAUSE_SLICE,
)
from lclock.transport import TransportError

pytestmark = pytest.mark.timeout(60)
T0 = DriverRig.T0


@pytest.fixture
def rigs(tmp_path: Path) -> Iterator[list[DriverRig]]:
    made: list[DriverRig] = []
    yield made
    for rig in made:
        rig.close()


def rig_of(rigs: list[DriverRig], tmp_path: Path, **kw: object) -> DriverRig:
    rig = DriverRig(tmp_path, **kw)  # type: ignore[arg-type]
    rigs.append(rig)
    return rig


# -- ticks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("spin", [0.0, 0.001])
def test_ticks_run_at_their_absolute_deadlines(rigs: list[DriverRig], tmp_path: Path,
                                               spin: float) -> None:
    rig = rig_of(rigs, tmp_path, rates=(4, 4, 4), duration=2.0, spin=spin, cost=1e-5)
    rig.every_peer_ends(T0 + 2.1)
    done = rig.run()
    ticks = rig.ticks()
    assert [x["tick"] for x in ticks] == list(range(1, 9))
    # Never early, and (a loop turn costs 10 µs here) never drifting: deadline k is T0 + k/4.
    for k, line in enumerate(ticks):
        assert T0 + k / 4 <= rig.when(line) < T0 + k / 4 + 1e-4
    assert done["reason"] == "duration" and done["ticks"] == 8
    stop = rig.lines("stop")[0]
    assert stop["lateness_ms"]["max"] < 0.1


def test_a_late_tick_runs_at_once_and_none_is_skipped_or_merged(rigs: list[DriverRig],
                                                                tmp_path: Path) -> None:
    rig = rig_of(rigs, tmp_path, rates=(4, 4, 4), duration=2.0)

    def descheduled() -> None:
        rig.world.t = T0 + 1.05  # the process sleeps through the deadlines 0.5, 0.75, 1.0

    rig.world.at(T0 + 0.3, descheduled)
    rig.every_peer_ends(T0 + 2.1)
    rig.run()
    ticks = rig.ticks()
    assert [x["tick"] for x in ticks] == list(range(1, 9))
    at = [rig.when(x) for x in ticks]
    # The three overdue ticks run one after the other as soon as it wakes, each its own
    # event; the next one keeps its deadline (absolute: no drift from the lateness).
    assert at[:2] == [T0, T0 + 0.25]
    assert at[2:5] == [T0 + 1.05] * 3
    assert at[5:] == [T0 + 1.25, T0 + 1.5, T0 + 1.75]
    late = sorted(rig.driver.lateness)
    assert late[-3:] == pytest.approx([0.05, 0.3, 0.55], abs=1e-6)
    assert rig.lines("stop")[0]["lateness_ms"]["max"] == pytest.approx(550, abs=1e-3)


def test_at_ten_thousand_ticks_per_second_every_deadline_is_kept(rigs: list[DriverRig],
                                                                 tmp_path: Path) -> None:
    rig = rig_of(rigs, tmp_path, rates=(10_000, 1, 1), duration=0.05, spin=0.001, cost=2e-6)
    rig.every_peer_ends(T0 + 0.1)
    done = rig.run()
    ticks = rig.ticks()
    assert done["ticks"] == len(ticks) == 500
    assert all(T0 + k / 10_000 <= rig.when(x) for k, x in enumerate(ticks))
    # The spin is capped at 1 % of the period (1 µs here), and the wait before it is one
    # select: about one or two waits per tick, not a busy loop.
    assert len(rig.world.waits) < 4 * 500


# -- taking messages in ------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [1, 100])
def test_messages_are_taken_in_as_they_arrive_whatever_the_tick_rate(
        rigs: list[DriverRig], tmp_path: Path, rate: int) -> None:
    rig = rig_of(rigs, tmp_path, rates=(rate, 1, 1), duration=3.0)
    arrivals = [T0 + 0.1 + 0.0017 * i for i in range(5)]  # between two ticks at any rate here
    for at in arrivals:
        rig.send_from(2, at)
    taken = [rig.probe(at + 1e-9, lambda: rig.driver.node.taken_from[2]) for at in arrivals]
    rig.every_peer_ends(T0 + 3.1)
    done = rig.run()
    # Each message entered the queue the moment it arrived, not at the next tick.
    assert [p[0] for p in taken] == [1, 2, 3, 4, 5]
    assert max(rig.driver.latency) == 0.0
    assert done["taken_from"] == {"2": 5}
    assert done["received"] + done["unprocessed"] == 5


def test_received_messages_are_handled_one_per_tick_in_arrival_order(
        rigs: list[DriverRig], tmp_path: Path) -> None:
    rig = rig_of(rigs, tmp_path, rates=(2, 1, 1), duration=3.0)
    for at in (T0 + 0.1, T0 + 0.2, T0 + 0.3):
        rig.send_from(2, at)
    rig.send_from(3, T0 + 0.25)
    rig.every_peer_ends(T0 + 3.1)
    done = rig.run()
    got = [(x["from"], x["msg_lclock"]) for x in rig.lines("receive")]
    received_or_queued = len(got) + done["unprocessed"]
    assert received_or_queued == 4
    assert got == [(2, 1), (2, 2), (3, 1), (2, 3)][: len(got)]


# -- the stop -----------------------------------------------------------------------------------


def test_a_stop_ends_ticking_drains_in_flight_messages_and_counts_the_unhandled(
        rigs: list[DriverRig], tmp_path: Path) -> None:
    rig = rig_of(rigs, tmp_path, rates=(4, 4, 4), duration=5.0)
    rig.send_from(2, T0 + 0.55)  # queued, never handled: no tick after the stop
    rig.signal(signal.SIGINT, T0 + 0.6)
    rig.send_from(3, T0 + 0.7)  # in flight when the stop came: the drain takes it in
    rig.every_peer_ends(T0 + 0.8)
    done = rig.run()
    assert [rig.when(x) for x in rig.ticks()] == [T0, T0 + 0.25, T0 + 0.5]
    stop = rig.lines("stop")[0]
    assert stop["reason"] == done["reason"] == "sigint"
    assert stop["unprocessed"] == 2 and stop["unprocessed_from"] == {"2": 1, "3": 1}
    assert stop["taken_from"] == {"2": 1, "3": 1}
    assert "undrained" not in stop and "drain_timeout" not in {x["event"] for x in rig.lines()}
    assert rig.when(stop) == pytest.approx(T0 + 0.8)
    # Our side was shut down: each peer read everything we sent, then EOF.
    sent = {j: rig.received_by(j) for j in (2, 3)}
    assert sum(len(m) for m in sent.values()) == stop["sent"]
    assert rig.peer(2).recv(1) == b""


def test_a_peer_that_never_closes_is_named_in_the_stop_line(rigs: list[DriverRig],
                                                             tmp_path: Path) -> None:
    rig = rig_of(rigs, tmp_path, rates=(4, 4, 4), duration=1.0)
    rig.close_from(2, T0 + 1.1)  # peer 3 stalls: it never closes
    done = rig.run()
    stop = rig.lines("stop")[0]
    assert stop["undrained"] == [3] == done["undrained"]
    (timeout,) = rig.lines("drain_timeout")
    assert timeout["peers"] == [3]
    assert rig.when(stop) == pytest.approx(T0 + 0.75 + DRAIN_TIMEOUT, abs=0.25)


def test_a_second_ctrl_c_ends_the_drain_at_once(rigs: list[DriverRig], tmp_path: Path) -> None:
    rig = rig_of(rigs, tmp_path, rates=(4, 4, 4), duration=5.0)
    rig.signal(signal.SIGINT, T0 + 0.6)
    rig.signal(signal.SIGINT, T0 + 0.9)  # nobody closes: without it the drain would wait 10 s
    rig.run()
    stop = rig.lines("stop")[0]
    assert stop["reason"] == "sigint" and stop["undrained"] == [2, 3]
    assert rig.when(stop) == pytest.approx(T0 + 0.9)


def test_the_launchers_stop_message_stops_the_machine(rigs: list[DriverRig],
                                                      tmp_path: Path) -> None:
    rig = rig_of(rigs, tmp_path, rates=(4, 4, 4), duration=5.0, launcher=True)
    rig.tell(T0 + 0.4, {"t": "stop", "reason": "duration"})
    rig.every_peer_ends(T0 + 0.45)
    done = rig.run()
    assert done["reason"] == "duration" and done["ticks"] == 2
    said = [x["t"] for x in rig.heard()]
    assert said[0] == "ready" and said[-1] == "done" and "status" in said


def test_the_launchers_death_stops_the_machine_and_bounds_the_drain(
        rigs: list[DriverRig], tmp_path: Path) -> None:
    rig = rig_of(rigs, tmp_path, rates=(4, 4, 4), duration=5.0, launcher=True)
    launcher = rig.launcher
    assert launcher is not None
    rig.world.at(T0 + 0.4, launcher.close)  # the launcher is gone (even SIGKILL closes its end)
    done = rig.run()  # nobody closes: the drain is cut to ORPHAN_DRAIN_TIMEOUT
    assert done["reason"] == "launcher_gone"
    assert rig.control.orphaned_at == pytest.approx(T0 + 0.4)
    assert rig.when(rig.lines("stop")[0]) <= T0 + 0.4 + ORPHAN_DRAIN_TIMEOUT + 0.2 + 1e-6


def test_sigterm_from_the_launcher_hurries_the_drain(rigs: list[DriverRig], tmp_path: Path) -> None:
    rig = rig_of(rigs, tmp_path, rates=(4, 4, 4), duration=5.0, launcher=True)
    rig.signal(signal.SIGTERM, T0 + 0.6)  # nobody closes: the drain lasts HURRY_DRAIN_TIMEOUT
    done = rig.run()
    assert done["reason"] == "sigterm" and done["undrained"] == [2, 3]
    assert rig.when(rig.lines("stop")[0]) == pytest.approx(T0 + 0.6 + HURRY_DRAIN_TIMEOUT)


def test_a_log_that_cannot_be_written_stops_the_machine(rigs: list[DriverRig],
                                                       tmp_path: Path) -> None:
    rig = rig_of(rigs, tmp_path, rates=(4, 4, 4), duration=5.0)
    rig.world.at(T0 + 0.3, lambda: setattr(rig.log, "error", "No space left on device"))
    rig.every_peer_ends(T0 + 0.6)
    done = rig.run()
    assert done["reason"] == "log_failed" and done["log_error"] == "No space left on device"
    # The tick at T0 + 0.5 could not be logged and nothing ran after it; the lines before
    # the failure are whole, and the stop line is not half written.
    assert [x["tick"] for x in rig.ticks()] == [1, 2] and rig.lines("stop") == []
    assert done["ticks"] == 3


def test_a_peer_sending_garbage_is_dropped_and_named(rigs: list[DriverRig],
                                                     tmp_path: Path) -> None:
    rig = rig_of(rigs, tmp_path, rates=(4, 4, 4), duration=1.0)
    rig.send_from(2, T0 + 0.1)
    rig.world.at(T0 + 0.3, lambda: rig.peer(2).sendall(b"\xff" * 64))
    rig.close_from(3, T0 + 1.0)  # peer 2 never closes: its dropped link is not waited for
    done = rig.run()
    (bad,) = rig.lines("bad_frame")
    (lost,) = rig.lines("peer_lost")
    assert bad["peer"] == lost["peer"] == 2 and rig.when(bad) == T0 + 0.3
    assert done["reason"] == "duration" and done["lost_peers"] == [2] and "undrained" not in done
    assert done["taken_from"] == {"2": 1}  # what it sent before the garbage counts
    assert rig.when(rig.lines("stop")[0]) == pytest.approx(T0 + 1.0)


def test_a_machine_that_cannot_connect_stops_without_a_tick(rigs: list[DriverRig],
                                                             tmp_path: Path) -> None:
    rig = rig_of(rigs, tmp_path, rates=(4, 4, 4), duration=1.0)

    def unreachable(*_args: object) -> None:
        raise TransportError("machine 2 at 127.0.0.1:7102: connection refused")

    rig.driver.transport.connect = unreachable  # type: ignore[method-assign,assignment]
    done = rig.run()
    assert done["reason"] == "connect_failed" and done["ticks"] == 0
    (failed,) = rig.lines("connect_failed")
    assert "connection refused" in failed["error"]
    assert [x["event"] for x in rig.lines()] == ["start", "connect_failed", "stop"]


# -- pause, crash -----------------------------------------------------------------------------


def test_a_pause_skips_its_deadlines_and_takes_nothing_in(rigs: list[DriverRig],
                                                          tmp_path: Path) -> None:
    plan = FaultPlan(seed=1, pauses=(Pause(1, 0.6, 0.5),))
    rig = rig_of(rigs, tmp_path, rates=(4, 4, 4), duration=2.0, faults=plan)
    rig.send_from(2, T0 + 0.8)
    during = rig.probe(T0 + 1.05, lambda: len(rig.driver.node.queue))
    after = rig.probe(T0 + 1.2, lambda: rig.driver.node.taken_from[2])
    rig.every_peer_ends(T0 + 2.1)
    rig.run()
    ticks = rig.ticks()
    # Deadlines 0.75 and 1.0 fell in the pause: skipped, not run late; numbers keep no gap.
    assert [rig.when(x) for x in ticks] == [T0 + k for k in (0, 0.25, 0.5, 1.25, 1.5, 1.75)]
    assert [x["tick"] for x in ticks] == list(range(1, 7))
    (pause,) = rig.lines("pause")
    (resume,) = rig.lines("resume")
    assert rig.when(pause) == pytest.approx(T0 + 0.6)
    assert resume["skipped"] == 2 and rig.when(resume) == pytest.approx(T0 + 1.1, abs=PAUSE_SLICE)
    assert during == [0] and after == [1]  # read only once the pause was over
    # While paused it listened to the control only, in short slices (SIGSTOP-safe).
    paused_waits = [w for at, w in rig.world.waits if T0 + 0.6 <= at < T0 + 1.1]
    assert paused_waits and max(paused_waits) <= PAUSE_SLICE


def test_a_stop_during_a_pause_ends_it(rigs: list[DriverRig], tmp_path: Path) -> None:
    plan = FaultPlan(seed=1, pauses=(Pause(1, 0.6, 5.0),))
    rig = rig_of(rigs, tmp_path, rates=(4, 4, 4), duration=10.0, faults=plan)
    rig.signal(signal.SIGTERM, T0 + 1.1)
    rig.every_peer_ends(T0 + 1.2)
    done = rig.run()
    assert done["reason"] == "sigterm" and done["ticks"] == 3
    (resume,) = rig.lines("resume")
    # Cut short at 1.1: the deadlines 0.75 and 1.0 had come (skipped), 1.25 had not (and the
    # stopping machine does not run it).
    assert resume["skipped"] == 2 and resume["paused_s"] == pytest.approx(0.5, abs=PAUSE_SLICE)


def test_a_planned_crash_ends_the_machine_without_a_stop_line(rigs: list[DriverRig],
                                                              tmp_path: Path) -> None:
    plan = FaultPlan(seed=1, crashes=(Crash(1, 0.6),))
    rig = rig_of(rigs, tmp_path, rates=(4, 4, 4), duration=2.0, faults=plan)
    rig.send_from(2, T0 + 0.55)
    done = rig.run()
    assert done["reason"] == "crashed" and done["ticks"] == 3
    assert rig.lines("stop") == [] and len(rig.ticks()) == 3
    assert rig.driver.halted
    assert rig.world.t == pytest.approx(T0 + 0.6)  # a vm returns at once: no drain


def test_a_crashed_worker_waits_to_be_killed(rigs: list[DriverRig], tmp_path: Path) -> None:
    plan = FaultPlan(seed=1, crashes=(Crash(1, 0.6),))
    rig = rig_of(rigs, tmp_path, rates=(4, 4, 4), duration=5.0, faults=plan, launcher=True)
    rig.tell(T0 + 3.0, {"t": "stop"})
    done = rig.run()
    assert done["reason"] == "crashed" and done["ticks"] == 3
    assert rig.world.t == pytest.approx(T0 + 3.0)  # it waited, silent, for the launcher
    assert rig.lines("stop") == []
    assert rig.heard()[-1] == done


# -- more descriptors ----------------------------------------------------------------------------


def test_any_descriptor_can_join_the_wait(rigs: list[DriverRig], tmp_path: Path) -> None:
    """A plain fd (here a pipe, as a program's stdout would be) is watched with the peers,
    and its callback runs the moment it is readable, between ticks."""
    rig = rig_of(rigs, tmp_path, rates=(1, 1, 1), duration=2.0)
    r, w = os.pipe()
    heard: list[tuple[float, bytes]] = []
    rig.driver.extra[r] = lambda: heard.append((rig.world.t, os.read(r, 100)))

    def program_answers() -> None:
        os.write(w, b"answer\n")

    rig.world.at(T0 + 0.3, program_answers)
    rig.every_peer_ends(T0 + 2.1)
    try:
        rig.run()
    finally:
        os.close(r)
        os.close(w)
    assert heard == [(T0 + 0.3, b"answer\n")]
    assert [rig.when(x) for x in rig.ticks()] == [T0, T0 + 1]
