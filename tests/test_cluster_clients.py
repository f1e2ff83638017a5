"""``experiment --cluster`` against peers that are not a Dask scheduler: a small fake
server on 127.0.0.1 for each way a peer can be wrong (silent, slow, another protocol,
garbage, gone at once, a huge size; or a true handshake, then any of these to the Client
that follows the probe). Each must end the command within its connect timeout
with exit 2 and one line on stderr: no traceback, no "Exception ignored", no stall."""

from __future__ import annotations

import random
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import ROOT, started

pytest.importorskip("distributed")

#: The connect timeout the tests give through Dask's own setting (seconds).
TIMEOUT = 2
#: How long a fake server lives at most, whatever the test does.
LIFETIME = 60.0

Behaviour = Callable[[socket.socket, threading.Event], None]


def silent(conn: socket.socket, stop: threading.Event) -> None:
    stop.wait()


def slow_drip(conn: socket.socket, stop: threading.Event) -> None:
    """A plausible size (100 bytes), then one byte at a time: each read is quick, the
    whole never comes."""
    conn.sendall(struct.pack("<Q", 100))
    while not stop.wait(0.2):
        conn.sendall(b"\x00")


def http(conn: socket.socket, stop: threading.Event) -> None:
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    stop.wait()


def garbage(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(random.Random(7).randbytes(4096))
    stop.wait()


def framed_garbage(conn: socket.socket, stop: threading.Event) -> None:
    """A small size, then that many random bytes: it passes the size check, not the decoder."""
    conn.sendall(struct.pack("<Q", 64) + random.Random(8).randbytes(64))
    stop.wait()


def close_at_once(conn: socket.socket, stop: threading.Event) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # a reset


def close_after_reading(conn: socket.socket, stop: threading.Event) -> None:
    conn.recv(4096)


def huge_size(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(struct.pack("<Q", 2**62) + b"\x00" * 1024)
    stop.wait()


def _handshake() -> bytes:
    """A scheduler's genuine handshake, framed as ``distributed.comm.tcp`` frames it."""
    import pickle

    from distributed.protocol.core import dumps
    from distributed.protocol.utils import pack_frames

    body = pack_frames(dumps({"compression": None, "python": tuple(sys.version_info)[:3],
                              "pickle-protocol": pickle.HIGHEST_PROTOCOL}))
    return struct.pack("<Q", len(body)) + body


def handshake_then_garbage(conn: socket.socket, stop: threading.Event) -> None:
    """Passes the probe (a true handshake, to the probe as to the Client), then garbage."""
    conn.sendall(_handshake())
    conn.recv(4096)
    conn.sendall(random.Random(9).randbytes(4096))
    stop.wait()


def handshake_then_huge_size(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(_handshake())
    conn.recv(4096)
    conn.sendall(struct.pack("<Q", 2**40) + b"\x00" * 64)
    stop.wait()


def handshake_then_silent(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(_handshake())
    stop.wait()


@contextmanager
def fake_server(behaviour: Behaviour) -> Iterator[int]:
    """A listener on 127.0.0.1 serving each connection with ``behaviour``; it stops when
    the ``with`` ends, or after LIFETIME seconds by itself."""
    stop = threading.Event()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.1)

    def serve(conn: socket.socket) -> None:
        with conn:
            try:
                behaviour(conn, stop)
            except OSError:
                pass  # the client went away first: that is its right

    def accept() -> None:
        end = time.monotonic() + LIFETIME
        while not stop.is_set() and time.monotonic() < end:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()
        stop.set()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        listener.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("behaviour", [silent, slow_drip, http, garbage, framed_garbage,
                                       close_at_once, close_after_reading, huge_size,
                                       handshake_then_garbage, handshake_then_huge_size,
                                       handshake_then_silent],
                         ids=lambda b: b.__name__)  # fmt: skip
def test_a_peer_that_is_no_scheduler_fails_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, behaviour: Behaviour
) -> None:
    monkeypatch.setenv("DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT", f"{TIMEOUT}s")
    out = tmp_path / "exp"
    with fake_server(behaviour) as port:
        address = f"tcp://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "lclock", "experiment", "baseline", "--sim",
               "--cluster", address, "--output", str(out)]  # fmt: skip
        with started(cmd, ROOT, text=True) as proc:
            stdout, stderr = proc.communicate()
    assert proc.returncode == 2, stderr
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith(
        f"lclock experiment: error: --cluster: cannot reach the Dask scheduler at {address}: "
    ), stderr
    assert stdout == "" and not out.exists()
    if behaviour.__name__.startswith("handshake_then"):  # said as such, not as numpy says it
        assert "it sent a Dask handshake, then " in stderr, stderr


@pytest.mark.timeout(60)
def test_nothing_listening_fails_in_one_line_once_the_timeout_is_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused connections are tried again (a scheduler may be starting), until the timeout."""
    monkeypatch.setenv("DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT", f"{TIMEOUT}s")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        cmd = [sys.executable, "-m", "lclock", "experiment", "baseline", "--sim",
               "--cluster", f"tcp://127.0.0.1:{port}", "--output", str(tmp_path / "exp")]  # fmt: skip
        with started(cmd, ROOT, text=True) as proc:
            _, stderr = proc.communicate()
    assert proc.returncode == 2 and stderr.count("\n") == 1, stderr
    assert f"nothing accepted a connection within {TIMEOUT} s" in stderr


def test_the_connect_timeout_is_lclocks_unless_dask_is_told_otherwise() -> None:
    import dask.config

    from lclock.experiment.cluster import CONNECT_TIMEOUT, connect_timeout

    assert connect_timeout() == CONNECT_TIMEOUT
    with dask.config.set({"distributed.comm.timeouts.connect": "3s"}):
        assert connect_timeout() == 3.0


@pytest.mark.timeout(60)
@pytest.mark.parametrize("behaviour", [http, garbage], ids=lambda b: b.__name__)
def test_a_vm_whose_peer_is_no_vm_says_so_once_then_gives_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, behaviour: Behaviour
) -> None:
    """``lclock vm`` dials machine 1 again every second until --wait: the same refusal was a
    warning line each time (8 in 8 s, 30 in a minute); it is said once, then the error."""
    monkeypatch.setenv("LCLOCK_SECRET", "a-secret-of-the-test")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        mine = s.getsockname()[1]
    with fake_server(behaviour) as port:
        cfg = tmp_path / "cluster.toml"
        cfg.write_text(f'machines = 2\nduration = 2\noutput = "{tmp_path / "out"}"\n[tcp]\n'
                       f'hosts = ["127.0.0.1", "127.0.0.1"]\nports = [{port}, {mine}]\n')
        cmd = [sys.executable, "-m", "lclock", "vm", "--machine-id", "2", "--settings",
               str(cfg), "--quiet", "--wait", "3"]
        with started(cmd, ROOT, text=True) as proc:
            _, stderr = proc.communicate()
    assert proc.returncode == 1, stderr
    lines = stderr.splitlines()
    warnings = [x for x in lines if "warning: peer_auth_failed" in x]
    assert warnings and len(warnings) == len(set(warnings)), stderr  # each refusal once
    assert lines[-1].startswith("lclock vm 2: error: gave up after waiting for machine 1"), stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize("behaviour", [http, handshake_then_garbage], ids=lambda b: b.__name__)
def test_grade_on_a_peer_that_is_no_scheduler_fails_in_one_line_writing_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, behaviour: Behaviour
) -> None:
    """It made the grades' folder and said 'grading 0 of 1' and 'stopped: ... the others with
    --resume' before the error: three lines, a folder, and advice that could not help."""
    monkeypatch.setenv("DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT", f"{TIMEOUT}s")
    (tmp_path / "class" / "alice").mkdir(parents=True)
    (tmp_path / "class" / "alice" / "lclock.toml").write_text('impl = "python3 vm.py"\n')
    out = tmp_path / "grades"
    with fake_server(behaviour) as port:
        address = f"tcp://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "lclock", "grade", str(tmp_path / "class"), "--output",
               str(out), "--cluster", address]
        with started(cmd, ROOT, text=True) as proc:
            stdout, stderr = proc.communicate()
    assert proc.returncode == 2, stderr
    assert stderr.count("\n") == 1 and stderr.startswith(
        f"lclock grade: error: --cluster: cannot reach the Dask scheduler at {address}: "
    ), stderr
    assert stdout == "" and not out.exists()


@pytest.mark.parametrize("address", ["tls://127.0.0.1:9", "inproc://x"])
def test_a_scheme_the_probe_cannot_read_is_not_said_to_have_shaken_hands(address: str) -> None:
    from lclock.experiment.cluster import connect
    from lclock.settings import SettingsError

    with pytest.raises(SettingsError) as err:
        connect(address, timeout=1)
    assert str(err.value).startswith(f"--cluster: cannot reach the Dask scheduler at {address}: ")
    assert "handshake" not in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("port", [0, 65536, 99999])
def test_a_port_out_of_range_is_said_at_once(port: int) -> None:
    """Linux takes port 99999 as 34463: the probe dialled that one for its whole timeout."""
    from lclock.experiment.cluster import connect
    from lclock.settings import SettingsError

    with pytest.raises(SettingsError, match=f"port {port} is not a TCP port"):
        connect(f"tcp://127.0.0.1:{port}", timeout=30)
