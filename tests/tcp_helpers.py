"""Helpers of the TCP tests (no tests here): ports, cluster files, and intruders.

Each intruder is a function ``(host, port) -> local address`` that misbehaves in one way
and returns the ``host:port`` it connected from, which is exactly what the machine logs as
``peer`` in its ``intruder_rejected`` warning, so a test can find the line for each one.
"""

from __future__ import annotations

import json
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from lclock.core.model import Message
from lclock.transport.framing import FrameCodec
from lclock.transport.tcp.handshake import (
    MAGIC,
    NONCE_BYTES,
    T_HELLO,
    T_PROOF,
    VERSION,
    RecordReader,
    addr_text,
    proof,
    record,
)

ROOT = Path(__file__).resolve().parent.parent


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(k: int) -> list[int]:
    """k different ports that were free a moment ago, picked at random below the kernel's
    ephemeral range. A port from ``bind(0)`` is in that range, where every outgoing
    connection of the tests running alongside (a 32-machine run makes 496) takes its
    local port: one could take it before the run under test binds it ("port in use")."""
    low = _ephemeral_low()
    pool = range(10000, low) if low > 11000 else range(low, 65536)
    socks: list[socket.socket] = []
    for port in random.sample(pool, min(len(pool), 1000)):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            s.close()
            continue
        socks.append(s)
        if len(socks) == k:
            break
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    assert len(ports) == k, "no free ports"
    return ports


def write_cluster(path: Path, ports: list[int], *, secret: str | None = "test secret 1234",
                  rates: list[int] | None = None, duration: float = 2.0,
                  hosts: list[str] | None = None) -> Path:
    lines = [f"machines = {len(ports)}", f"duration = {duration}"]
    if rates:
        lines.append(f"rates = {json.dumps(rates)}")
    lines += ["", "[tcp]", f"ports = {json.dumps(ports)}"]
    if hosts:
        lines.append(f"hosts = {json.dumps(hosts)}")
    if secret is not None:
        lines.append(f'secret = "{secret}"')
    path.write_text("\n".join(lines) + "\n")
    return path


def lclock_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "lclock", *args]


def lclock_check(run_dir: Path) -> tuple[int, str]:
    """``lclock check RUN_DIR`` as a user runs it."""
    p = subprocess.run(lclock_cmd("check", str(run_dir)), capture_output=True, text=True,
                       timeout=120, cwd=ROOT)
    return p.returncode, p.stdout + p.stderr


def read_log(path: Path) -> list[dict]:
    raw = path.read_bytes()
    assert raw == b"" or raw.endswith(b"\n"), f"{path}: last line not whole"
    return [json.loads(x) for x in raw.decode().splitlines()]


def wait_for_line(path: Path, event: str, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and f'"event":"{event}"' in path.read_text():
            return True
        time.sleep(0.02)
    return False


def wait_for_run_line(out: Path, event: str, timeout: float, machine: int = 1) -> Path | None:
    """Wait until the newest run folder in ``out`` has ``event`` in a machine's log."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        dirs = sorted(p for p in out.iterdir() if p.is_dir()) if out.exists() else []
        if dirs and wait_for_line(dirs[-1] / f"machine-{machine}.jsonl", event, 0.05):
            return dirs[-1]
        time.sleep(0.05)
    return None


# -- intruders ------------------------------------------------------------------------------


def _connect(host: str, port: int) -> socket.socket:
    s = socket.create_connection((host, port), timeout=5)
    return s


def _hold(s: socket.socket, seconds: float) -> None:
    """Keep the connection until the machine drops it (or ``seconds`` pass)."""
    s.settimeout(0.1)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            if s.recv(4096) == b"":
                return
        except TimeoutError:
            continue
        except OSError:
            return


def _hello(claimed: int, target: int) -> tuple[bytes, bytes]:
    nonce = os.urandom(NONCE_BYTES)
    body = MAGIC + bytes([VERSION]) + struct.pack("!II", claimed, target) + nonce
    return record(T_HELLO, body), nonce


def wrong_secret(host: str, port: int) -> str:
    """Speaks the protocol perfectly, as machine 2, but with a wrong secret."""
    s = _connect(host, port)
    me = addr_text(s.getsockname())
    hello, nonce_c = _hello(2, 1)
    s.sendall(hello)
    s.settimeout(5)
    s.setblocking(True)
    reader = RecordReader()
    rec = None
    while rec is None:
        rec = reader.read(s)
    _, body = rec
    nonce_a = body[4 : 4 + NONCE_BYTES]
    s.sendall(record(T_PROOF, proof(b"not the secret", b"C", "guess", 2, 1, nonce_c, nonce_a)))
    _hold(s, 5)
    s.close()
    return me


def impostor(host: str, port: int) -> str:
    """A well-formed HELLO from a machine id the run does not have."""
    s = _connect(host, port)
    me = addr_text(s.getsockname())
    s.sendall(_hello(9, 1)[0])
    _hold(s, 5)
    s.close()
    return me


def stranger(host: str, port: int) -> str:
    """No handshake at all: straight to a model frame, as a machine of another run might."""
    s = _connect(host, port)
    me = addr_text(s.getsockname())
    s.sendall(FrameCodec(3, True).encode(Message(2, 5, (0, 5, 0)), time.time()))
    _hold(s, 5)
    s.close()
    return me


def garbage(host: str, port: int) -> str:
    """Bytes of the right first length, then nonsense."""
    s = _connect(host, port)
    me = addr_text(s.getsockname())
    s.sendall(b"\x00\x1e" + bytes(range(200, 230)))
    _hold(s, 5)
    s.close()
    return me


def oversized(host: str, port: int) -> str:
    """A length prefix of about 4 GB: must be refused before any allocation."""
    s = _connect(host, port)
    me = addr_text(s.getsockname())
    s.sendall(b"\xff\xff\xff\xff" + b"x" * 64)
    _hold(s, 5)
    s.close()
    return me


def slow(host: str, port: int) -> str:
    """A valid HELLO, one byte every 0.3 s: never finishes in time."""
    s = _connect(host, port)
    me = addr_text(s.getsockname())
    hello, _ = _hello(2, 1)
    for b in hello:
        try:
            s.sendall(bytes([b]))
        except OSError:
            break
        time.sleep(0.3)
    s.close()
    return me


def silent(host: str, port: int) -> str:
    """Connects and says nothing (a half-open connection)."""
    s = _connect(host, port)
    me = addr_text(s.getsockname())
    _hold(s, 5)
    s.close()
    return me


def half_closed(host: str, port: int) -> str:
    """Sends half a HELLO, then shuts its write side."""
    s = _connect(host, port)
    me = addr_text(s.getsockname())
    s.sendall(_hello(2, 1)[0][:10])
    s.shutdown(socket.SHUT_WR)
    _hold(s, 5)
    s.close()
    return me


INTRUDERS: dict[str, tuple[Callable[[str, int], str], str]] = {
    # kind: (intruder, what the warning's reason must say)
    "wrong_secret": (wrong_secret, "authentication failed"),
    "impostor": (impostor, "claims to be machine 9"),
    "stranger": (stranger, "not an lclock handshake"),
    "garbage": (garbage, "not an lclock handshake"),
    "oversized": (oversized, "oversized record"),
    "slow": (slow, "no complete handshake within"),
    "silent": (silent, "no complete handshake within"),
    "half_closed": (half_closed, "closed during the handshake"),
}


def send_intruders(host: str, port: int, kinds: list[str]) -> dict[str, str]:
    """Run the intruders at once, in threads; return kind -> local address used."""
    out: dict[str, str] = {}
    errors: list[BaseException] = []

    def go(kind: str) -> None:
        try:
            out[kind] = INTRUDERS[kind][0](host, port)
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(k,), daemon=True) for k in kinds]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors, errors
    return out
