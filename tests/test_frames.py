"""Frames are checked, and over TCP authenticated, before the model sees them.

Unit tests drive the codec; the end-to-end tests put a relay on the path between two
``lclock vm`` and inject frames through it, as an attacker on the network would: a
frame of the wrong size, a Lamport clock of 10**12, a replayed frame. None may crash a
machine or reach its clocks; the connection that carried it is dropped and logged.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import pytest
from conftest import started, wait_for
from tcp_helpers import free_ports, lclock_cmd, read_log, write_cluster

from lclock.core.model import Message
from lclock.transport.framing import MAX_BODY, MAX_CLOCK, FrameCodec, FrameError, FrameReader


def pair(key: bytes | None = b"k" * 32, n: int = 3, vector: bool = True) -> tuple[FrameCodec, FrameReader]:
    return FrameCodec(n, vector, key), FrameReader(FrameCodec(n, vector, key), peer=2)


def test_frames_round_trip_and_the_sender_comes_from_the_link() -> None:
    send, recv = pair()
    data = b"".join(send.encode(Message(99, lc, (lc, 1, 2)), 1000.0 + lc) for lc in range(1, 6))
    got = recv.feed(data[:7]) + recv.feed(data[7:])
    assert [(m.sender, m.lclock, m.vclock, t) for m, t, _d in got] == [
        (2, lc, (lc, 1, 2), 1000.0 + lc) for lc in range(1, 6)
    ]


def test_without_vector_clocks_frames_are_short() -> None:
    send, recv = pair(key=None, vector=False)
    (msg, _t, _d), = recv.feed(send.encode(Message(1, 5, None, send_tick=3), 1.0))
    assert msg.vclock is None and send.frame_size == 4 + 32
    assert (msg.lclock, msg.send_tick) == (5, 3)


@pytest.mark.parametrize("vector_len", [0, 2, 4, 1024])
def test_a_frame_of_the_wrong_size_is_refused(vector_len: int) -> None:
    other = FrameCodec(vector_len, vector_len > 0, b"k" * 32) if vector_len else FrameCodec(3, False, b"k" * 32)
    _send, recv = pair()
    with pytest.raises(FrameError, match="frames have"):
        recv.feed(other.encode(Message(1, 5, tuple([1] * vector_len) or None), 1.0))


def test_a_changed_or_injected_frame_fails_its_tag() -> None:
    send, recv = pair()
    frame = bytearray(send.encode(Message(1, 5, (5, 0, 0)), 1.0))
    frame[4:12] = struct.pack("!Q", 10**12)
    with pytest.raises(FrameError, match="authentication"):
        recv.feed(bytes(frame))
    forged, recv2 = FrameCodec(3, True, b"x" * 32), pair()[1]
    with pytest.raises(FrameError, match="authentication"):
        recv2.feed(forged.encode(Message(1, 5, (5, 0, 0)), 1.0))


def test_a_replayed_or_reordered_frame_fails_its_tag() -> None:
    send, recv = pair()
    a = send.encode(Message(1, 1, (1, 0, 0)), 1.0)
    b = send.encode(Message(1, 2, (2, 0, 0)), 2.0)
    recv.feed(a)
    with pytest.raises(FrameError):
        recv.feed(a)  # replay
    send2, recv2 = pair()
    a2, b2 = send2.encode(Message(1, 1, (1, 0, 0)), 1.0), send2.encode(Message(1, 2, (2, 0, 0)), 2.0)
    with pytest.raises(FrameError):
        recv2.feed(b2 + a2)  # reordered
    assert b and a2


@pytest.mark.parametrize("field", ["lclock", "send_tick", "vclock", "sent_at", "deliver_at"])
def test_out_of_range_fields_are_refused_even_unauthenticated(field: str) -> None:
    send, recv = pair(key=None)
    payload = bytearray(send.encode(Message(1, 5, (5, 0, 0), send_tick=4), 1.0))
    if field == "lclock":
        payload[4:12] = struct.pack("!Q", MAX_CLOCK + 1)
    elif field == "send_tick":
        payload[12:20] = struct.pack("!Q", 2**64 - 1)
    elif field == "vclock":
        payload[36:44] = struct.pack("!Q", 2**64 - 1)
    elif field == "sent_at":
        payload[20:28] = struct.pack("!d", float("nan"))
    else:
        payload[28:36] = struct.pack("!d", -1.0)
    with pytest.raises(FrameError):
        recv.feed(bytes(payload))


# -- end to end: a relay on the path between vms ----------------------------------------------


#: One frame of the runs below: three machines and the default clocks (vector, physical
#: and hybrid too), tagged.
FRAME = FrameCodec(3, True, b"k" * 32, pt=True, hlc=True).frame_size


class Link:
    """One relayed connection: its socket toward the target, whether both ends are still
    open, and the last whole frame that flowed toward the target (once one has)."""

    def __init__(self, upstream: socket.socket) -> None:
        self.upstream = upstream
        self.open = True
        self.last_frame = b""


class Relay(threading.Thread):
    """Forwards one address to another, both ways; can inject bytes toward the target
    into the connections that are still open (a peer closing its connection is its
    business, not a failure of the relay)."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        super().__init__(daemon=True)
        self.server = socket.create_server(listen)
        self.target = target
        self.links: list[Link] = []
        self.lock = threading.Lock()
        self.stopped = False

    def run(self) -> None:
        self.server.settimeout(0.2)
        while not self.stopped:
            try:
                client, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:  # not listening yet: the dialler retries
                client.close()
                continue
            link = Link(upstream)
            with self.lock:
                self.links.append(link)
            threading.Thread(target=self._pump, args=(client, upstream, link, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, link, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, link: Link, up: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    break
                if up and len(data) % FRAME == 0:  # whole frames (the handshake is shorter)
                    link.last_frame = data[-FRAME:]
                dst.sendall(data)
        except OSError:
            pass
        link.open = False

    def framed(self) -> list[Link]:
        """The open connections that have carried a whole frame."""
        with self.lock:
            return [x for x in self.links if x.open and x.last_frame]

    def inject(self, make: Callable[[Link], bytes]) -> int:
        """Send ``make(link)`` into every open connection that carries frames; how many took it."""
        sent = 0
        for link in self.framed():
            try:
                link.upstream.sendall(make(link))
                sent += 1
            except OSError:  # it closed meanwhile
                link.open = False
        return sent

    def close(self) -> None:
        self.stopped = True
        self.server.close()
        with self.lock:
            for link in self.links:
                try:
                    link.upstream.close()
                except OSError:
                    pass


def _frame(lclock: int, vlen: int) -> bytes:
    """A frame as an attacker on the path makes it: the run's layout with ``vlen`` vector
    entries, tagged with a key of its own (it cannot know the connection's)."""
    codec = FrameCodec(vlen, True, b"attacker" * 4, pt=True, hlc=True)
    return codec.encode(Message(1, lclock, (lclock,) * vlen, 0, (0, 0), 1), time.time())


@pytest.mark.parametrize("attack", ["wrong-vector-length", "huge-clock", "replay"])
def test_injected_frames_never_reach_a_machine(tmp_path: Path, attack: str) -> None:
    p1, p2, p3 = free_ports(3)
    # Machine 1 is reached through the relay at 127.0.0.2; it listens on 127.0.0.1 itself.
    cfg = write_cluster(tmp_path / "c.toml", [p1, p2, p3], rates=[20, 20, 20], duration=4,
                        hosts=["127.0.0.2", "127.0.0.1", "127.0.0.1"])
    relay = Relay(("127.0.0.2", p1), ("127.0.0.1", p1))
    relay.start()
    out = tmp_path / "out"
    try:
        with ExitStack() as stack:
            procs = {}
            for i in (1, 2, 3):
                extra = ["--bind", "127.0.0.1"] if i == 1 else []
                cmd = lclock_cmd("vm", "--machine-id", str(i), "--settings", str(cfg),
                                 "--output", str(out), "--wait", "30", "--quiet", *extra)
                procs[i] = stack.enter_context(started(cmd, tmp_path))
            # both peers' connections to machine 1 carry frames through the relay now
            assert wait_for(lambda: len(relay.framed()) == 2, 30), "no frames through the relay"
            if attack == "wrong-vector-length":
                sent = relay.inject(lambda _link: _frame(7, 2))
            elif attack == "huge-clock":
                sent = relay.inject(lambda _link: _frame(10**12, 3))
            else:
                sent = relay.inject(lambda link: link.last_frame)  # its last whole frame, again
            assert sent >= 1, "every connection closed before the attack"
            results = {}
            for i, p in procs.items():
                _o, err = p.communicate(timeout=40)
                results[i] = (p.returncode, err.decode())
    finally:
        relay.close()
    for _i, (_code, err) in results.items():
        assert "Traceback" not in err, err
    (rd,) = [p for p in out.iterdir() if p.is_dir()]
    logs = {i: read_log(rd / f"machine-{i}.jsonl") for i in (1, 2, 3)}
    for i, lines in logs.items():
        assert lines[-1]["event"] == "stop", f"machine {i} has no stop line"
        assert all(x.get("lclock", 0) < 10**9 for x in lines), "no injected clock got in"
        assert all(x.get("msg_lclock", 0) < 10**9 for x in lines)
    bad = [x for x in logs[1] if x["event"] == "bad_frame"]
    assert bad and bad[0]["level"] == "error" and bad[0]["peer"] in (2, 3)


def test_frames_carry_the_physical_and_hybrid_clocks() -> None:
    send = FrameCodec(3, True, b"k" * 32, pt=True, hlc=True)
    recv = FrameReader(FrameCodec(3, True, b"k" * 32, pt=True, hlc=True), peer=1)
    msg = Message(1, 9, (9, 0, 0), pt=1_767_225_600_123_456, hlc=(1_767_225_600_200_000, 3))
    ((got, _t, _d),) = recv.feed(send.encode(msg, 1.0))
    assert (got.pt, got.hlc, got.lclock, got.vclock) == (msg.pt, msg.hlc, 9, (9, 0, 0))
    assert send.frame_size == 4 + 32 + 8 + 12 + 24 + 16


def bodies(key: bytes | None = b"k" * 32) -> tuple[FrameCodec, FrameReader]:
    return (FrameCodec(3, True, key, hlc=True, bodies=True),
            FrameReader(FrameCodec(3, True, key, hlc=True, bodies=True), peer=2))


def test_frames_carry_a_programs_message_body_of_any_length_within_the_bound() -> None:
    send, recv = bodies()
    raws = [b'{"lclock":5,"note":"' + b"x" * k + b'"}' for k in (0, 1, 1000, MAX_BODY - 30)]
    msgs = [Message(1, 5, (5, 0, 0), hlc=(7, 0), send_tick=k + 1, raw=raw)
            for k, raw in enumerate(raws)] + [Message(1, 6, (6, 0, 0), hlc=(8, 0), send_tick=9)]
    data = b"".join(send.encode(m, 1.0) for m in msgs)
    got = [m for chunk in range(0, len(data), 4096) for m, _t, _d in recv.feed(data[chunk:chunk + 4096])]
    assert [m.raw for m in got] == [*raws, None]  # a built-in machine's message has no body
    assert [m.send_tick for m in got] == [1, 2, 3, 4, 9]


@pytest.mark.parametrize(("raw", "why"), [
    (b"x" * (MAX_BODY + 1), "this run's frames have"),
    (b"[1, 2]", "not a JSON object"),
    (b"{oops", "not JSON"),
    (b'{"a":\n1}', "not on one line"),
])
def test_a_body_too_long_or_not_one_json_object_on_one_line_is_refused(raw: bytes, why: str) -> None:
    send, recv = bodies(key=None)
    with pytest.raises(FrameError, match=why):
        recv.feed(send.encode(Message(1, 5, (5, 0, 0), hlc=(7, 0), raw=raw), 1.0))


def test_a_body_length_that_disagrees_with_the_frame_is_refused() -> None:
    send, recv = bodies(key=None)
    frame = bytearray(send.encode(Message(1, 5, (5, 0, 0), hlc=(7, 0), raw=b'{"a":1}'), 1.0))
    at = 4 + send.payload_size - 4
    frame[at:at + 4] = struct.pack("!I", 3)
    with pytest.raises(FrameError, match="a message body of 3 bytes"):
        recv.feed(bytes(frame))
