"""``lclock vm``'s machine, after the mesh: run, end, record, on a virtual clock.

``run_machine`` is given what the mesh would have built (machine 1's START, the links) and
a scripted world; it runs the real driver and writes the real run folder. Each test says
how the peers behave and checks the vm's exit code, its run.json entry and its log; the
table of outcomes itself (``machine_outcome``) is checked case by case.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from runtime_fakes import OFFSET, Peers, log_lines

from lclock.cluster.vm_cmd import Cluster, PeerEnds, agreed_run, machine_outcome, run_machine
from lclock.core.faults import Crash, FaultSettings, Partition, Pause
from lclock.settings import RunSettings
from lclock.transport.socketpair import SocketPairLinks

pytestmark = pytest.mark.timeout(60)
T0 = Peers.T0
NO_FAULTS = FaultSettings()
RATES = [4, 4, 4]  # deadlines 0, 0.25, 0.5, 0.75 of a 1 s run: the last is due at T0 + 0.75


def cluster(tmp_path: Path, faults: FaultSettings = NO_FAULTS) -> Cluster:
    settings = RunSettings(machines=3, duration=1.0, output=str(tmp_path), transport="tcp",
                           quiet=True, report=False, tcp_ports=(7101, 7102, 7103),
                           faults=faults)
    addrs = [("127.0.0.1", p) for p in (7101, 7102, 7103)]
    return Cluster(settings, 1, addrs, b"secret-secret", "127.0.0.1")


START: dict[str, Any] = {"run_id": "20261207T000000Z-vmtest", "t0": OFFSET + T0, "seed": 7,
                         "rates": RATES, "duration": 1.0, "dice_sides": 10, "rate_min": 1,
                         "rate_max": 6, "vector_clocks": False}


@pytest.fixture
def peers() -> Iterator[Peers]:
    p = Peers(3, cost=1e-5)  # a vm spins before each deadline: each look takes 10 µs here
    yield p
    p.close()


class Links(SocketPairLinks):
    """Machine 1's ends, saying whether the vm released them (as TcpLinks.close does)."""

    closed = False

    def close(self) -> None:
        self.closed = True


def run(peers: Peers, tmp_path: Path, faults: FaultSettings = NO_FAULTS,
        links: Links | None = None) -> tuple[int, dict[str, Any], list[dict[str, Any]]]:
    """Run machine 1; (exit code, its run.json entry, its log)."""
    early = [("stranger", {"at": "2026-12-07T00:00:00Z", "addr": "10.0.0.9:1"})]
    links = links or Links(peers.mesh[1])
    code = run_machine(cluster(tmp_path, faults), links, START, early, True,
                       peers.stop, peers.wake_r, clock=peers.world, waiter=peers.world)
    run_dir = tmp_path / START["run_id"]
    data = orjson.loads((run_dir / "run.json").read_bytes())
    (entry,) = data["machines"]
    return code, entry, log_lines(run_dir / "machine-1.jsonl")


def test_a_clean_run_completes_and_is_recorded(peers: Peers, tmp_path: Path) -> None:
    peers.every_peer_ends(T0 + 0.8)  # each after its last tick (due at T0 + 0.75)
    code, entry, log = run(peers, tmp_path)
    assert code == 0
    assert (entry["status"], entry["reason"], entry["exit_code"]) == ("completed", "duration", 0)
    assert entry["ticks"] == 4 and entry["rate"] == 4
    # Its times are the run's clock's (the virtual one here), and the early warning is logged.
    assert entry["ended_at"].startswith("2023-11-14T22:13:21.8")
    (warning,) = [x for x in log if x["event"] == "stranger"]
    assert warning["during"] == "setup" and warning["addr"] == "10.0.0.9:1"
    assert log[-1]["event"] == "stop"


def test_a_peer_that_closes_before_its_last_tick_stops_the_vm(
        peers: Peers, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    peers.close_from(2, T0 + 0.3)
    peers.close_from(3, T0 + 0.35)
    code, entry, log = run(peers, tmp_path)
    assert code == 1
    assert (entry["status"], entry["reason"]) == ("failed", "peer_lost")
    assert entry["ticks"] == 2  # ticks at T0 and T0 + 0.25; none after the loss
    assert [x["peer"] for x in log if x["event"] == "peer_lost"] == [2]
    assert "machine 1: lost machine 2 (closed early); stopping" in capsys.readouterr().err


def test_ctrl_c_interrupts_the_vm_with_its_exit_status(peers: Peers, tmp_path: Path) -> None:
    peers.signal(signal.SIGINT, T0 + 0.4)
    peers.every_peer_ends(T0 + 0.45)
    code, entry, _log = run(peers, tmp_path)
    assert code == 130
    assert (entry["status"], entry["reason"], entry["ticks"]) == ("interrupted", "sigint", 2)


def test_a_peer_that_is_never_drained_fails_the_vm(peers: Peers, tmp_path: Path) -> None:
    peers.close_from(2, T0 + 0.8)  # machine 3 never closes its side
    code, entry, _log = run(peers, tmp_path)
    assert code == 1 and entry["status"] == "failed"
    assert entry["reason"].startswith("machine 3 could not be drained")
    assert entry["undrained"] == [3]


def test_a_peer_that_crashes_as_planned_is_no_loss(peers: Peers, tmp_path: Path) -> None:
    faults = FaultSettings(crashes=(Crash(2, 0.3),))
    peers.close_from(2, T0 + 0.3)  # its process ends at its crash
    peers.close_from(3, T0 + 0.8)
    code, entry, log = run(peers, tmp_path, faults)
    assert code == 0 and entry["status"] == "completed" and entry["ticks"] == 4
    assert not [x for x in log if x["event"] == "peer_lost"]


def test_its_own_planned_crash_ends_the_vm_as_crashed(peers: Peers, tmp_path: Path) -> None:
    faults = FaultSettings(crashes=(Crash(1, 0.6),))
    links = Links(peers.mesh[1])
    code, entry, log = run(peers, tmp_path, faults, links)
    assert code == 0
    assert (entry["status"], entry["reason"], entry["crashed_at"]) == ("crashed", "crashed", 0.6)
    assert entry["ticks"] == 3 and not [x for x in log if x["event"] == "stop"]
    assert links.closed  # its connections end with it, at once
    assert peers.world.t == pytest.approx(T0 + 0.6)


def test_the_faults_a_vm_applied_are_in_run_json(peers: Peers, tmp_path: Path) -> None:
    """A vm records what it applied (the cuts and heals every machine applies by the plan's
    instants, its own pause and resume, its crash): its run.json listed none, and check
    failed lclock's own folder of any cluster run with a partition or a pause."""
    faults = FaultSettings(partitions=(Partition(0.1, 0.2, ((1,), (2, 3))),),
                           pauses=(Pause(1, 0.3, 0.2),), crashes=(Crash(1, 0.6),))
    run(peers, tmp_path, faults)
    data = orjson.loads((tmp_path / START["run_id"] / "run.json").read_bytes())
    applied = [(a["kind"], a.get("machine"), a["at"]) for a in data["faults"]["applied"]]
    assert applied == [("partition", None, 0.1), ("heal", None, 0.2), ("pause", 1, 0.3),
                       ("resume", 1, 0.5), ("crash", 1, 0.6)], applied


def test_vms_sharing_a_folder_list_each_fault_once() -> None:
    from lclock.core.faults import merge_applied

    cut = {"kind": "partition", "groups": [[1], [2, 3]], "at": 0.1}
    mine = [cut, {"kind": "pause", "machine": 1, "at": 0.3}]
    theirs = [dict(cut), {"kind": "crash", "machine": 2, "at": 0.05}]
    assert merge_applied(mine, theirs) == [theirs[1], cut, mine[1]]


# -- the pieces -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("done", "crashed", "expected"),
    [
        ({"reason": "duration"}, set(), (0, "completed", "duration")),
        ({"reason": "sigterm"}, set(), (143, "interrupted", "sigterm")),
        ({"reason": "sighup", "undrained": [2]}, set(), (129, "interrupted", "sighup")),
        ({"reason": "peer_lost", "lost_peers": [2]}, set(), (1, "failed", "peer_lost")),
        ({"reason": "duration", "log_error": "disk full"}, set(), (1, "failed", "duration")),
        ({"reason": "crashed"}, set(), (0, "crashed", "crashed")),
        ({"reason": "connect_failed"}, set(), (1, "failed", "connect_failed")),
        ({}, set(), (1, "failed", "stopped")),
        ({"reason": "duration", "undrained": [3], "lost_peers": [2]}, {2},
         (1, "failed", "machine 3 could not be drained (stalled or gone): messages from it "
                       "may be lost")),
        ({"reason": "duration", "undrained": [2]}, {2}, (0, "completed", "duration")),
    ],
)
def test_machine_outcome(done: dict[str, Any], crashed: set[int],
                         expected: tuple[int, str, str]) -> None:
    assert machine_outcome(done, crashed) == expected


def test_start_fixes_the_runs_choices(tmp_path: Path) -> None:
    run = agreed_run(cluster(tmp_path), {**START, "seed": 11, "duration": 2.5, "dice_sides": 6})
    assert (run.settings.seed, run.settings.duration, run.settings.dice_sides) == (11, 2.5, 6)
    assert run.rates == (4, 4, 4) and run.t0 == OFFSET + T0
    assert run.run_dir == tmp_path / START["run_id"]
    assert run.plans.machine(2).rate == 4


def test_peer_ends_tells_a_normal_end_from_a_loss(peers: Peers, tmp_path: Path) -> None:
    faults = FaultSettings(crashes=(Crash(3, 0.5),))
    policy = PeerEnds(cluster(tmp_path, faults), agreed_run(cluster(tmp_path, faults), START),
                      peers.world)
    peers.world.t = T0 + 0.5
    assert policy(2, None) == "peer_lost"  # closed before its last tick (0.75)
    assert policy(3, "ECONNRESET") is None  # crashed as planned
    peers.world.t = T0 + 0.7  # within PEER_END_SLACK of machine 2's last tick
    assert policy(2, None) is None
    assert policy(2, "ECONNRESET") == "peer_lost"  # a broken link is a loss whenever
