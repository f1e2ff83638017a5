"""One peer link as a machine sees it: framed, non-blocking, and honest about losses.

A send never blocks the tick loop: frames that the socket does not take at once wait in
an outgoing queue, so two machines that write to each other at once cannot deadlock on
full socket buffers. When the connection fails, the frames still waiting can no longer be
delivered; they were counted as sent, so the channel hands their Lamport times to
``on_lost`` (the driver logs each as ``send_failed``) instead of letting them vanish.

The same class serves every transport (socket pairs, TCP); what differs is only the
``FrameCodec`` of each direction (TCP frames carry authentication tags).
"""

from __future__ import annotations

import errno
import os
import socket
from collections import deque
from collections.abc import Callable

from lclock.core.model import Message
from lclock.transport.framing import (
    RECV_CHUNK,
    Arrival,
    FrameCodec,
    FrameError,
    FrameReader,
    frame_lclock,
    is_marker,
)

_GONE = (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.ESHUTDOWN, errno.ECONNABORTED)
#: Frames handed to one sendmsg call (the kernel takes at most IOV_MAX = 1024 buffers).
_GATHER = 256

#: Called with (peer, why, Lamport times of the frames that will never be sent).
LostHandler = Callable[[int, str, list[int]], None]


def _describe(exc: OSError) -> str:
    if exc.errno in _GONE:
        return errno.errorcode.get(exc.errno or 0, str(exc))
    return os.strerror(exc.errno) if exc.errno else str(exc)


class PeerChannel:
    """One peer's connected socket, its outgoing queue and its frame reader."""

    __slots__ = (
        "peer", "sock", "send_codec", "reader", "out", "head_sent", "read_open", "write_open",
        "broken", "on_lost",
    )

    def __init__(self, peer: int, sock: socket.socket, send_codec: FrameCodec,
                 recv_codec: FrameCodec, on_lost: LostHandler | None = None) -> None:
        self.peer = peer
        self.sock = sock
        sock.setblocking(False)
        self.send_codec = send_codec
        self.reader = FrameReader(recv_codec, peer)
        self.out: deque[bytes] = deque()  # frames not yet (wholly) sent
        self.head_sent = 0  # bytes of out[0] already sent
        self.read_open = True  # False once the peer's EOF was read (or the link broke)
        self.write_open = True  # False once we shut down our side (or the link broke)
        self.broken: str | None = None  # why the connection failed, if it did
        self.on_lost = on_lost

    def fileno(self) -> int:
        return self.sock.fileno()

    @property
    def pending(self) -> bool:
        """Frames wait to be sent."""
        return bool(self.out)

    def send(self, msg: Message, sent_at: float, deliver_at: float = 0.0) -> bool:
        """Queue one message and try to send now; False if the link is gone (undelivered)."""
        if self.broken is not None or not self.write_open:
            return False
        return self._put(self.send_codec.encode(msg, sent_at, deliver_at))

    def send_marker(self, snapshot: int, deliver_at: float = 0.0) -> bool:
        """A snapshot's marker, behind every message sent before it; False if the link is
        gone (the marker is lost: its snapshot does not complete)."""
        if self.broken is not None or not self.write_open:
            return False
        return self._put(self.send_codec.encode_marker(snapshot, deliver_at))

    def _put(self, frame: bytes) -> bool:
        if self.out:
            self.out.append(frame)
            return True
        try:
            n = self.sock.send(frame)
        except BlockingIOError:
            n = 0
        except OSError as exc:
            self.out.append(frame)  # reported as lost with the rest
            self._fail(_describe(exc), reading_too=False)
            return True
        if n < len(frame):
            self.out.append(frame)
            self.head_sent = n
        return True

    def flush(self) -> None:
        """Send what waits, as far as the socket takes it."""
        out = self.out
        while out and self.broken is None:
            bufs = [memoryview(out[0])[self.head_sent :]]
            for i in range(1, min(len(out), _GATHER)):
                bufs.append(memoryview(out[i]))
            try:
                n = self.sock.sendmsg(bufs)
            except BlockingIOError:
                return
            except OSError as exc:
                self._fail(_describe(exc), reading_too=False)
                return
            n += self.head_sent
            while out and n >= len(out[0]):
                n -= len(out.popleft())
            self.head_sent = n

    def read(self) -> list[Arrival]:
        """The messages that have arrived; on EOF the read side is closed.

        Raises FrameError for anything that is not a valid frame of this run (the caller
        drops the connection).
        """
        try:
            data = self.sock.recv(RECV_CHUNK)
        except BlockingIOError:
            return []
        except OSError as exc:
            self._fail(_describe(exc), reading_too=True)
            return []
        if not data:
            self.read_open = False
            if self.reader.pending:
                raise FrameError(f"stream ended inside a frame ({self.reader.pending} bytes)")
            return []
        return self.reader.feed(data)

    def shutdown_write(self) -> None:
        """Tell the peer we send nothing more (it reads EOF after our last frame)."""
        if self.write_open:
            self.write_open = False
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def drop(self, why: str) -> None:
        """Give up on this link (it sent garbage): close it, and report what it loses."""
        self._fail(why, reading_too=True)
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def _fail(self, why: str, reading_too: bool) -> None:
        """The connection failed: nothing more can be sent, and the waiting frames are lost.

        A failed send does not end reading: what the peer sent before it went away is
        still in our socket buffer, and is taken in and accounted for like the rest.
        """
        if reading_too:
            self.read_open = False
        if self.broken is not None:
            return
        self.broken = why
        self.write_open = False
        # markers lost here are not messages: their snapshot just does not complete
        lost = [frame_lclock(f) for f in self.out if not is_marker(f)]
        self.out.clear()
        self.head_sent = 0
        if self.on_lost is not None:
            self.on_lost(self.peer, why, lost)
