"""Frames: how a model message crosses a byte stream, checked before the model sees it.

A stream socket is a byte stream, not a message stream: every message is a frame,
``length (4 bytes, big-endian) + payload [+ tag]``. The payload is
``lclock (u64) + send_tick (u64) + sent_at (f64, epoch seconds) + deliver_at (f64, seconds
since t0; 0: at once) [+ pt (i64 µs)] [+ hlc l (i64 µs) + hlc c (u32)] + vclock (n x u64, or
nothing) [+ body length (u32) + body]``. The body is the message as a program of SPEC 9
wrote it (a JSON object of at most 64 kB, on one line), present in the frames of a run that
has programs (``bodies``), so those frames alone vary in length, within that bound.
``send_tick`` is the sender's tick of the send, which identifies a message
whatever clock it carries (SPEC 9.3).
``deliver_at`` is when the fault plan's latency lets the message into the receiver's
queue (SPEC section 6); pt and hlc are the sender's clocks (SPEC section 7), present when
the run keeps them.

Nothing in a frame is trusted: its length must be exactly what this run's frames have,
every field must be in range, and the sender is the peer at the other end of the
connection, never a number the frame states. A frame that fails any of this is a
``FrameError`` and the connection that sent it is dropped; no frame ever reaches the
model unchecked, so no frame can crash a machine.

A snapshot's marker (SPEC 12) is a frame of its own kind, told apart by its length: its
payload is ``snapshot (u64) + deliver_at (f64)``, 16 bytes, which no message's payload (at
least 32) has. It travels the same stream, so it keeps the link's order and its tags.

Over TCP a frame also carries a tag, ``HMAC-SHA256(key, sequence number + payload)`` cut
to 16 bytes, with a key per direction derived from the handshake and a sequence number
that counts the frames of the connection (kept by both ends, never sent). A frame injected,
changed, replayed, reordered or dropped on the path then fails its tag.
"""

from __future__ import annotations

import hmac
import math
import struct

import orjson

from lclock.core.model import Message
from lclock.core.snapshot import Marker

_HEAD = struct.Struct("!I")
_FIXED = struct.Struct("!QQdd")
_SEQ = struct.Struct("!Q")
_PT = struct.Struct("!q")
_HLC = struct.Struct("!qI")
_BODY = struct.Struct("!I")
#: A program's message is at most this long (SPEC 9.2: 64 kB); a longer body is refused.
MAX_BODY = 64 * 1024
_MARKER = struct.Struct("!Qd")
TAG_BYTES = 16
MAX_VECTOR = 1024
#: Clock values beyond this are refused: no run gets near it, and the model's integers
#: then always fit the 64 bits that the log writer and the analysis expect.
MAX_CLOCK = 2**62
RECV_CHUNK = 1 << 16
MAX_SNAPSHOT = 1 << 20
#: What a reader yields: a message or a marker, when it was sent (epoch s; 0 for a marker)
#: and when it may enter the queue (s since t0; 0: at once).
Arrival = tuple["Message | Marker", float, float]


class FrameError(Exception):
    """The byte stream is not a sequence of valid frames of this run: drop the connection."""


class FrameCodec:
    """The frames of one direction of one link: their exact size, and their tags.

    ``key`` None: no tags (socket pairs, which only this host's processes can hold).
    """

    __slots__ = ("n", "vector", "key", "seq", "payload_size", "frame_size", "_vec", "pt", "hlc",
                 "_clocks_at", "_vec_at", "bodies", "marker_size")

    def __init__(self, n: int, vector: bool, key: bytes | None = None, *, pt: bool = False,
                 hlc: bool = False, bodies: bool = False) -> None:
        self.n = n
        self.vector = vector
        self.key = key
        self.seq = 0
        self.pt = pt or hlc
        self.hlc = hlc
        self._clocks_at = _FIXED.size
        self._vec_at = _FIXED.size + (_PT.size if self.pt else 0) + (_HLC.size if hlc else 0)
        #: Frames carry a program's message body (a run with programs, SPEC 9).
        self.bodies = bodies
        # With bodies: the size of a frame without one (the smallest this run's frames have).
        self.payload_size = self._vec_at + (8 * n if vector else 0) + (_BODY.size if bodies else 0)
        self.frame_size = _HEAD.size + self.payload_size + (TAG_BYTES if key else 0)
        self.marker_size = _HEAD.size + _MARKER.size + (TAG_BYTES if key else 0)
        self._vec = struct.Struct(f"!{n}Q") if vector else None

    def encode(self, msg: Message, sent_at: float, deliver_at: float = 0.0) -> bytes:
        payload = _FIXED.pack(msg.lclock, msg.send_tick, sent_at, deliver_at)
        if self.pt:
            payload += _PT.pack(msg.pt or 0)
        if self.hlc:
            payload += _HLC.pack(*(msg.hlc or (0, 0)))
        if self._vec is not None:
            payload += self._vec.pack(*(msg.vclock or (0,) * self.n))
        if self.bodies:
            raw = msg.raw or b""
            payload += _BODY.pack(len(raw)) + raw
        frame = _HEAD.pack(len(payload)) + payload
        if self.key is not None:
            frame += self._tag(payload)
        return frame

    def encode_marker(self, snapshot: int, deliver_at: float = 0.0) -> bytes:
        """A marker of ``snapshot``, let into the receiver at ``deliver_at`` (0: at once)."""
        payload = _MARKER.pack(snapshot, deliver_at)
        frame = _HEAD.pack(len(payload)) + payload
        return frame + self._tag(payload) if self.key is not None else frame

    def decode_marker(self, frame: memoryview, sender: int) -> tuple[Marker, float, float]:
        body = frame[_HEAD.size : _HEAD.size + _MARKER.size]
        if self.key is not None and not hmac.compare_digest(frame[_HEAD.size + _MARKER.size :],
                                                            self._tag(body)):
            raise FrameError("a frame failed its authentication tag (changed, injected or replayed)")
        snapshot, deliver_at = _MARKER.unpack_from(body)
        if not 1 <= snapshot <= MAX_SNAPSHOT:
            raise FrameError(f"snapshot {snapshot} out of range")
        if not (math.isfinite(deliver_at) and deliver_at >= 0):
            raise FrameError("a time in the frame is not a finite number")
        return Marker(snapshot, sender), 0.0, deliver_at

    def _tag(self, payload: bytes | memoryview) -> bytes:
        tag = hmac.digest(self.key or b"", _SEQ.pack(self.seq) + payload, "sha256")[:TAG_BYTES]
        self.seq += 1
        return tag

    def size_of(self, length: int) -> int:
        """The whole size of a frame whose prefix says ``length``; FrameError if no frame of
        this run has that length."""
        want = self.payload_size
        if length == want or (self.bodies and want < length <= want + MAX_BODY):
            return self.frame_size + length - want
        if self.bodies:
            raise FrameError(f"a frame of {length} bytes (this run's frames have {want} to "
                             f"{want + MAX_BODY})")
        raise FrameError(f"a frame of {length} bytes (this run's frames have {want})")

    def decode(self, frame: memoryview, sender: int) -> tuple[Message, float, float]:
        """One whole frame (length prefix included) from ``sender``; FrameError if invalid."""
        size = len(frame) - _HEAD.size - (TAG_BYTES if self.key is not None else 0)
        body = frame[_HEAD.size : _HEAD.size + size]
        if self.key is not None:
            tag = frame[_HEAD.size + size :]
            if not hmac.compare_digest(tag, self._tag(body)):
                raise FrameError("a frame failed its authentication tag (changed, injected or replayed)")
        lclock, send_tick, sent_at, deliver_at = _FIXED.unpack_from(body)
        if lclock > MAX_CLOCK:
            raise FrameError(f"Lamport clock {lclock} out of range")
        if send_tick > MAX_CLOCK:
            raise FrameError(f"send tick {send_tick} out of range")
        if not (math.isfinite(sent_at) and math.isfinite(deliver_at) and deliver_at >= 0):
            raise FrameError("a time in the frame is not a finite number")
        vclock = None
        if self._vec is not None:
            vclock = self._vec.unpack_from(body, self._vec_at)
            if max(vclock) > MAX_CLOCK:
                raise FrameError("vector clock entry out of range")
        pt = hlc = None
        at = self._clocks_at
        if self.pt:
            (pt,) = _PT.unpack_from(body, at)
            at += _PT.size
            if not 0 <= pt <= MAX_CLOCK:
                raise FrameError("physical clock out of range")
        if self.hlc:
            hlc = _HLC.unpack_from(body, at)
            if not 0 <= hlc[0] <= MAX_CLOCK:
                raise FrameError("hybrid logical clock out of range")
        raw = _body(body, self.payload_size) if self.bodies else None
        return Message(sender, lclock, vclock, pt, hlc, send_tick, raw), sent_at, deliver_at


def _body(payload: memoryview, fixed: int) -> bytes | None:
    """A frame's program message: a JSON object on one line, as the protocol passes it on
    (SPEC 9.2), or None (a built-in machine's message, which has none)."""
    (length,) = _BODY.unpack_from(payload, fixed - _BODY.size)
    if length != len(payload) - fixed:
        raise FrameError(f"a message body of {length} bytes in a frame that holds "
                         f"{len(payload) - fixed}")
    if not length:
        return None
    raw = bytes(payload[fixed:])
    if b"\n" in raw or b"\r" in raw:
        raise FrameError("a message body that is not on one line")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise FrameError("a message body that is not JSON") from None
    if not isinstance(obj, dict):
        raise FrameError("a message body that is not a JSON object")
    return raw


class FrameReader:
    """Accumulates bytes from one peer and yields its whole, valid frames."""

    __slots__ = ("buf", "codec", "peer")

    def __init__(self, codec: FrameCodec, peer: int) -> None:
        self.buf = bytearray()
        self.codec = codec
        self.peer = peer

    def feed(self, data: bytes) -> list[Arrival]:
        buf = self.buf
        buf += data
        codec = self.codec
        want = codec.payload_size
        size = codec.frame_size
        bodies = codec.bodies
        out: list[Arrival] = []
        pos = 0
        end = len(buf)
        view = memoryview(buf)
        try:
            while end - pos >= _HEAD.size:
                (length,) = _HEAD.unpack_from(buf, pos)
                if length == _MARKER.size:
                    if end - pos < codec.marker_size:
                        break
                    out.append(codec.decode_marker(view[pos : pos + codec.marker_size], self.peer))
                    pos += codec.marker_size
                    continue
                if length != want:
                    if not bodies:
                        raise FrameError(f"a frame of {length} bytes (this run's frames have {want})")
                    size = codec.size_of(length)
                elif bodies:
                    size = codec.frame_size
                if end - pos < size:
                    break
                out.append(codec.decode(view[pos : pos + size], self.peer))
                pos += size
        finally:
            view.release()
        if pos:
            del buf[:pos]
        return out

    @property
    def pending(self) -> int:
        return len(self.buf)


def is_marker(frame: bytes | bytearray | memoryview) -> bool:
    """The frame is a snapshot's marker, not a message."""
    return int(_HEAD.unpack_from(frame, 0)[0]) == _MARKER.size


def frame_lclock(frame: bytes | bytearray | memoryview) -> int:
    """The Lamport time a frame carries (to log a frame that could not be sent)."""
    return int(_FIXED.unpack_from(frame, _HEAD.size)[0])
