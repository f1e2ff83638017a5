"""Framing and the non-blocking peer channel shared by every transport.

A stream socket is a byte stream, not a message stream: every message is a frame,
``length (4 bytes, big-endian) + payload``. The payload is
``sender (u32) + lclock (u64) + sent_at (f64, epoch seconds) + vclock (n x u64)``.
Frames longer than ``MAX_FRAME`` are refused, so a stranger cannot make us allocate
gigabytes.

``PeerChannel`` owns one connected socket in non-blocking mode with an outgoing buffer:
a send never blocks the tick loop, so two machines that write to each other at once
cannot deadlock on full socket buffers.
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Callable

from lclock.model import Message

_HEAD = struct.Struct("!I")
_FIXED = struct.Struct("!IQd")
MAX_VECTOR = 1024
MAX_FRAME = _FIXED.size + 8 * MAX_VECTOR
RECV_CHUNK = 1 << 16


class FrameError(Exception):
    """The byte stream is not a sequence of valid frames (garbage or an intruder)."""


def encode(msg: Message, sent_at: float) -> bytes:
    vc = msg.vclock or ()
    payload = _FIXED.pack(msg.sender, msg.lclock, sent_at)
    if vc:
        payload += struct.pack(f"!{len(vc)}Q", *vc)
    return _HEAD.pack(len(payload)) + payload


def decode_payload(payload: bytes | memoryview) -> tuple[Message, float]:
    n = len(payload) - _FIXED.size
    if n < 0 or n % 8:
        raise FrameError(f"bad payload length {len(payload)}")
    sender, lclock, sent_at = _FIXED.unpack_from(payload)
    vc = struct.unpack_from(f"!{n // 8}Q", payload, _FIXED.size) if n else None
    return Message(sender, lclock, vc), sent_at


class FrameReader:
    """Accumulates bytes and yields whole frames; keeps a partial frame for the next read."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[Message, float]]:
        buf = self.buf
        buf += data
        out: list[tuple[Message, float]] = []
        pos = 0
        end = len(buf)
        while end - pos >= 4:
            (length,) = _HEAD.unpack_from(buf, pos)
            if length > MAX_FRAME or length < _FIXED.size:
                raise FrameError(f"frame of {length} bytes (allowed {_FIXED.size}..{MAX_FRAME})")
            if end - pos - 4 < length:
                break
            out.append(decode_payload(memoryview(buf)[pos + 4 : pos + 4 + length]))
            pos += 4 + length
        if pos:
            del buf[:pos]
        return out

    @property
    def pending(self) -> int:
        return len(self.buf)


_GONE = (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.ESHUTDOWN, errno.ECONNABORTED)


class PeerChannel:
    """One peer's connected socket: framed, non-blocking, with an outgoing buffer."""

    __slots__ = ("peer", "sock", "reader", "out", "read_open", "write_open", "broken", "on_close")

    def __init__(self, peer: int, sock: socket.socket) -> None:
        self.peer = peer
        self.sock = sock
        sock.setblocking(False)
        self.reader = FrameReader()
        self.out = bytearray()
        self.read_open = True  # False once the peer's EOF was read
        self.write_open = True  # False once we shut down our side
        self.broken: str | None = None  # why the connection failed, if it did
        self.on_close: Callable[[PeerChannel], None] | None = None

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, frame: bytes) -> bool:
        """Queue a frame and try to send now; False if the peer is gone (undelivered)."""
        if self.broken is not None or not self.write_open:
            return False
        if self.out:
            self.out += frame
            return True
        try:
            n = self.sock.send(frame)
        except BlockingIOError:
            n = 0
        except OSError as exc:
            self._fail(exc)
            return False
        if n < len(frame):
            self.out += frame[n:]
        return True

    def flush(self) -> None:
        """Send what the buffer holds, as far as the socket takes it."""
        while self.out and self.broken is None:
            try:
                n = self.sock.send(self.out)
            except BlockingIOError:
                return
            except OSError as exc:
                self._fail(exc)
                return
            del self.out[:n]

    def read(self) -> list[tuple[Message, float]]:
        """Read what is available; on EOF mark the read side closed."""
        try:
            data = self.sock.recv(RECV_CHUNK)
        except BlockingIOError:
            return []
        except OSError as exc:
            self._fail(exc)
            self.read_open = False
            return []
        if not data:
            self.read_open = False
            if self.reader.pending:
                raise FrameError(f"stream ended inside a frame ({self.reader.pending} bytes)")
            return []
        return self.reader.feed(data)

    def shutdown_write(self) -> None:
        """Tell the peer we will send nothing more (it reads EOF after our last frame)."""
        if self.write_open:
            self.write_open = False
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def _fail(self, exc: OSError) -> None:
        if self.broken is None:
            self.broken = (
                errno.errorcode.get(exc.errno or 0, str(exc)) if exc.errno in _GONE else str(exc)
            )
        self.out.clear()
        self.write_open = False


def socketpair_mesh(n: int) -> dict[int, dict[int, socket.socket]]:
    """A full mesh of Unix stream socket pairs: ends[i][j] is machine i's end towards j."""
    ends: dict[int, dict[int, socket.socket]] = {i: {} for i in range(1, n + 1)}
    for i in range(1, n + 1):
        for j in range(i + 1, n + 1):
            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            ends[i][j] = a
            ends[j][i] = b
    return ends
