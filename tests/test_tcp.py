"""``--transport tcp`` for the launcher: the handshake, and runs as good as with socket pairs."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import time
from pathlib import Path

import pytest
from conftest import alive, launcher_cmd, run_dirs, started
from runverify import verify
from tcp_helpers import free_ports, lclock_check, read_log, wait_for_run_line, write_cluster

from lclock.transport.tcp.handshake import Handshake, HandshakeError


def drive(a: Handshake, b: Handshake, limit: float = 2.0) -> None:
    """Run two in-process handshakes against each other until both are done or one fails."""
    end = time.monotonic() + limit
    while not (a.done and b.done) and time.monotonic() < end:
        for h in (a, b):
            h.flush()
        r, _, _ = select.select([a, b], [], [], 0.05)
        for h in r:
            h.on_readable()
    assert a.done and b.done


def pair(secret_a: bytes = b"s" * 16, secret_c: bytes = b"s" * 16, ctx_a: str = "run-1",
         ctx_c: str = "run-1", claimed: int = 3) -> tuple[Handshake, Handshake]:
    sa, sc = socket.socketpair()
    acc = Handshake(sa, "accept", 1, secret_a, ctx_a, allowed=frozenset({2, 3}))
    con = Handshake(sc, "connect", claimed, secret_c, ctx_c, target=1)
    return acc, con


def test_handshake_proves_both_sides() -> None:
    acc, con = pair()
    drive(acc, con)
    assert acc.peer == 3 and con.peer == 1


@pytest.mark.parametrize(
    ("kw", "why"),
    [
        ({"secret_c": b"x" * 16}, "failed to authenticate"),  # the connector sees it first
        ({"ctx_c": "another-run"}, "failed to authenticate"),  # a proof for another run
        ({"claimed": 7}, "may not connect here"),
    ],
)
def test_handshake_refuses(kw: dict, why: str) -> None:
    acc, con = pair(**kw)
    with pytest.raises(HandshakeError, match=why):
        drive(acc, con)


def test_handshake_wrong_proof_is_refused_by_the_acceptor() -> None:
    """A connector that does not check the acceptor's MAC still cannot get in."""
    from lclock.transport.tcp.handshake import T_PROOF, record

    acc, con = pair(secret_c=b"y" * 16)
    con.flush()
    select.select([acc], [], [], 1)
    acc.on_readable()  # HELLO -> CHALLENGE
    con.sock.setblocking(True)
    con.sock.recv(1024)
    con.sock.sendall(record(T_PROOF, b"\0" * 32))
    select.select([acc], [], [], 1)
    with pytest.raises(HandshakeError, match="authentication failed"):
        acc.on_readable()


def run(workdir: Path, *args: str, timeout: float = 60) -> tuple[int, str, str, Path | None]:
    cmd = launcher_cmd("--output", str(workdir / "out"), "--no-report", "--transport", "tcp", *args)
    with started(cmd, workdir) as p:
        out, err = p.communicate(timeout=timeout)
        code = p.returncode
    dirs = run_dirs(workdir / "out")
    return code, out.decode(), err.decode(), dirs[-1] if dirs else None


def test_tcp_run_is_complete_and_correct(workdir: Path) -> None:
    code, out, err, rd = run(workdir, "--duration", "2", "--rates", "20,50,100", "--seed", "3")
    assert code == 0, err
    assert rd is not None
    meta = json.loads((rd / "run.json").read_text())
    assert meta["status"] == "completed" and meta["transport"] == "tcp"
    assert [m["ticks"] for m in meta["machines"]] == [40, 100, 200]
    assert verify(rd) == []
    code, text = lclock_check(rd)
    assert code == 0, text
    for m in meta["machines"]:
        lines = read_log(rd / f"machine-{m['id']}.jsonl")
        assert not [x for x in lines if x["level"] != "info"], "no warning in a clean run"
        stop = lines[-1]
        assert stop["event"] == "stop" and stop["undelivered"] == 0
        assert stop["latency_us"]["n"] == stop["received"] + stop["unprocessed"]
    assert alive([m["pid"] for m in meta["machines"]]) == []


def test_listens_on_loopback_only_and_ports_from_settings(workdir: Path) -> None:
    ports = free_ports(3)
    write_cluster(workdir / "settings.toml", ports, secret=None, rates=[5, 5, 5], duration=1.5)
    with started(launcher_cmd("--output", "out", "--no-report", "--transport", "tcp"), workdir) as p:
        assert wait_for_run_line(workdir / "out", "connected", 20)
        for port in ports:
            conns = [c for c in _listeners() if c.laddr.port == port]
            assert conns and all(c.laddr.ip == "127.0.0.1" for c in conns)
        _, err = p.communicate(timeout=30)
        assert p.returncode == 0, err


def _listeners() -> list:
    import psutil

    return [c for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN]


def test_port_in_use_is_one_line_exit_2_nothing_created(workdir: Path) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        write_cluster(workdir / "settings.toml", [0, port, 0], secret=None)
        code, out, err, rd = run(workdir, "--duration", "1")
    finally:
        busy.close()
    assert code == 2
    assert err.count("\n") == 1 and "tcp.ports" in err and f"port {port}" in err and "in use" in err
    assert "Traceback" not in err
    assert rd is None


def test_killed_machine_stops_the_others_gracefully(workdir: Path) -> None:
    cmd = launcher_cmd("--output", "out", "--no-report", "--transport", "tcp",
                       "--duration", "5", "--rates", "20,30,50")
    with started(cmd, workdir) as p:
        assert wait_for_run_line(workdir / "out", "connected", 20)
        time.sleep(0.5)
        rd = run_dirs(workdir / "out")[-1]
        victim = json.loads((rd / "run.json").read_text())["machines"][1]["pid"]
        os.kill(victim, signal.SIGKILL)
        _, err = p.communicate(timeout=20)  # a hang fails here; how fast is bench's
    assert p.returncode == 1
    meta = json.loads((rd / "run.json").read_text())
    assert meta["status"] == "failed" and "machine 2" in meta["reason"]
    for mid in (1, 3):
        lines = read_log(rd / f"machine-{mid}.jsonl")
        assert lines[-1]["event"] == "stop" and lines[-1]["reason"] == "peer_failed"
    assert alive([m["pid"] for m in meta["machines"]]) == []


def test_ctrl_c_during_a_tcp_run_is_a_graceful_stop(workdir: Path) -> None:
    cmd = launcher_cmd("--output", "out", "--no-report", "--transport", "tcp",
                       "--duration", "10", "--rates", "20,30,50")
    with started(cmd, workdir) as p:
        assert wait_for_run_line(workdir / "out", "connected", 20)
        time.sleep(0.5)
        os.killpg(p.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole group
        _, err = p.communicate(timeout=20)
    assert p.returncode == 130, err
    rd = run_dirs(workdir / "out")[-1]
    meta = json.loads((rd / "run.json").read_text())
    assert meta["status"] == "interrupted"
    assert verify(rd) == []  # every message sent is received or counted as unprocessed
    assert alive([m["pid"] for m in meta["machines"]]) == []


class _FakeLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict]] = []

    def error(self, event: str, **fields: object) -> None:
        self.lines.append((event, fields))


def test_frames_buffered_when_a_peer_is_lost_are_reported_not_dropped() -> None:
    """A link that breaks loses the frames still waiting in it; each must be reported."""
    from lclock.core.model import Message
    from lclock.transport.channel import PeerChannel
    from lclock.transport.framing import FrameCodec

    a, b = socket.socketpair()
    lost: list[tuple[int, str, list[int]]] = []
    ch = PeerChannel(2, a, FrameCodec(3, True), FrameCodec(3, True),
                     on_lost=lambda peer, why, frames: lost.append((peer, why, frames)))
    size = FrameCodec(3, True).frame_size
    sent = 0
    for lc in range(1, 200_001):  # fill the socket buffer until frames queue up in the channel
        assert ch.send(Message(1, lc, (lc, 0, 0)), time.time())
        sent += 1
        if len(ch.out) > 10:
            break
    queued = len(ch.out)
    b.close()  # the peer is gone
    ch.flush()
    assert ch.broken is not None
    assert len(lost) == 1
    peer, why, frames = lost[0]
    assert peer == 2 and why
    assert len(frames) == queued >= 10
    assert frames == list(range(sent - queued + 1, sent + 1)), "the newest frames, in order"
    assert not ch.send(Message(1, sent + 1, (0, 0, 0)), time.time()), "a broken link takes nothing"
    assert size > 0


def test_many_machines_over_tcp(workdir: Path) -> None:
    """Every pair handshakes at once at start-up: 32 machines, 496 connections, no warning."""
    code, _, err, rd = run(workdir, "--duration", "1.5", "--machines", "32", "--rate-max", "10",
                           "--no-vector-clocks", "--quiet")
    assert code == 0, err
    assert rd is not None
    assert verify(rd) == []
    for path in rd.glob("machine-*.jsonl"):
        assert '"level":"warning"' not in path.read_text(), path.name


def test_machines_exit_by_themselves_when_the_launcher_is_killed(workdir: Path) -> None:
    cmd = launcher_cmd("--output", "out", "--no-report", "--transport", "tcp",
                       "--duration", "20", "--rates", "20,30,50")
    with started(cmd, workdir) as p:
        rd = wait_for_run_line(workdir / "out", "connected", 20)
        assert rd is not None
        pids = [m["pid"] for m in json.loads((rd / "run.json").read_text())["machines"]]
        p.kill()  # SIGKILL: no chance to stop anyone
        p.wait(5)
        end = time.monotonic() + 3
        while alive(pids) and time.monotonic() < end:
            time.sleep(0.05)
        assert alive(pids) == [], "machines outlived the launcher by more than 3 s"
    for i in (1, 2, 3):
        lines = read_log(rd / f"machine-{i}.jsonl")  # whole lines only
        assert lines[-1]["event"] == "stop" and lines[-1]["reason"] == "launcher_gone"


def test_mesh_setup_stops_when_told_and_ignores_other_wakeups() -> None:
    """A wake-up that is not a stop must not be taken for a peer; a stop ends set-up."""
    from lclock.transport.tcp.mesh import Mesh, MeshSpec

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    spec = MeshSpec(1, 2, [("127.0.0.1", port), ("127.0.0.1", 1)], b"k" * 16, "ctx")
    mesh = Mesh(spec, listener, lambda *a, **k: None)
    wake_r, wake_w = socket.socketpair()
    calls = []

    def on_stop(ready: list) -> bool:
        wake_r.recv(16)
        calls.append(len(calls))
        if len(calls) == 1:
            wake_w.send(b"s")  # a second wake-up, which this time means "stop"
            return False
        return True

    wake_w.send(b"x")
    # Set-up that missed the stop would end at its deadline with a SetupError, not None: a
    # far deadline, so that a busy host cannot make it pass first (no clock is measured).
    assert mesh.run(time.monotonic() + 60, [wake_r], on_stop) is None
    assert calls == [0, 1]
    listener.close()


def test_an_authenticated_challenge_gives_the_dialler_its_full_time_again() -> None:
    """A peer whose process started late answers after the dialler's first deadline: once
    its CHALLENGE proves it knows the secret, the dialler waits its full time for the OK
    instead of giving up on a link the peer already counts as up."""
    a, b = socket.socketpair()
    with a, b:
        dialler = Handshake(a, "connect", 2, b"s" * 32, "run", target=1, timeout=5.0)
        peer = Handshake(b, "accept", 1, b"s" * 32, "run", allowed=frozenset({2}), timeout=5.0)
        dialler.flush()
        dialler.deadline = time.monotonic() - 1  # its time ran out while the peer started
        peer.on_readable()  # HELLO in, CHALLENGE out
        dialler.on_readable()  # CHALLENGE in, PROOF out
        assert not dialler.expired(time.monotonic())
        peer.on_readable()  # PROOF in, OK out
        dialler.on_readable()
        assert dialler.done and peer.done
