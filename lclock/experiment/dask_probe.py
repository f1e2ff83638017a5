"""Is a Dask scheduler answering at ``tcp://HOST:PORT``? Asked on a plain socket, bounded.

``distributed.Client(timeout=...)`` bounds its TCP connect, not the handshake after it:
against a port that accepts and never speaks it waits for ever. It also allocates
whatever size the peer's first 8 bytes announce (an HTTP server's ``HTTP/1.1`` reads as
3 EiB), and a Client whose construction failed is closed by ``Client.__del__`` with a
20 s stall and an "Exception ignored" traceback. So before any Client, one connection
exchanges handshakes as a Client would (so an HTTP server answers, and the scheduler
sees a whole handshake, then a closed connection): every step within one deadline, the
announced size checked before anything is read, the bytes built and decoded by
distributed's own ``dumps`` and ``loads``. A peer that fails here never meets a Client.
"""

from __future__ import annotations

import pickle
import socket
import struct
import sys
import time
from typing import Any

#: A scheduler's handshake is about 60 bytes; anything announcing more is something else.
MAX_HANDSHAKE = 64 * 1024
#: Pause between connection attempts while nothing listens yet (a scheduler starting up).
RETRY_PAUSE = 0.2


class ProbeError(Exception):
    """Why the peer is not a Dask scheduler we can use (one line, for the user)."""


def probe_scheduler(host: str, port: int, timeout: float) -> None:
    """Return once a Dask handshake came from ``host:port`` within ``timeout`` seconds;
    ProbeError otherwise."""
    deadline = time.monotonic() + timeout
    with _connect(host, port, deadline, timeout) as sock:
        _send_handshake(sock, deadline)
        first = _read(sock, 8, deadline, timeout)
        size = struct.unpack("<Q", first)[0]
        if size > MAX_HANDSHAKE:
            raise ProbeError(f"it does not speak Dask's protocol (it answered {first!r}...; "
                             "is it a Dask scheduler?)")  # fmt: skip
        _check_handshake(_read(sock, size, deadline, timeout))


def _connect(host: str, port: int, deadline: float, timeout: float) -> socket.socket:
    """Connect, trying again while it is refused (the scheduler may be starting)."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ProbeError(f"nothing accepted a connection within {timeout:g} s")
        try:
            return socket.create_connection((host, port), timeout=left)
        except ConnectionRefusedError:
            time.sleep(min(RETRY_PAUSE, max(0.0, deadline - time.monotonic())))
        except TimeoutError:
            raise ProbeError(f"nothing accepted a connection within {timeout:g} s") from None
        except OSError as exc:
            raise ProbeError(exc.strerror or str(exc)) from None


def _send_handshake(sock: socket.socket, deadline: float) -> None:
    """Ours, as ``distributed.comm.tcp`` frames it: a size, then distributed's frames."""
    from distributed.protocol.core import dumps
    from distributed.protocol.utils import pack_frames

    info = {"compression": None, "python": tuple(sys.version_info)[:3],
            "pickle-protocol": pickle.HIGHEST_PROTOCOL}  # fmt: skip
    body = pack_frames(dumps(info))
    try:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        sock.sendall(struct.pack("<Q", len(body)) + body)
    except OSError as exc:  # a full buffer past the deadline included: not a scheduler
        raise ProbeError(f"the connection failed during Dask's handshake: "
                         f"{exc.strerror or exc}") from None  # fmt: skip


def _read(sock: socket.socket, n: int, deadline: float, timeout: float) -> bytes:
    """Exactly ``n`` bytes before ``deadline`` (a peer dripping bytes is no faster)."""
    data = bytearray()
    while len(data) < n:
        left = deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            sock.settimeout(left)
            chunk = sock.recv(n - len(data))
        except TimeoutError:
            raise ProbeError(f"it accepted the connection but sent no Dask handshake within "
                             f"{timeout:g} s (is it a Dask scheduler?)") from None  # fmt: skip
        except OSError as exc:
            raise ProbeError(f"the connection failed during Dask's handshake: "
                             f"{exc.strerror or exc}") from None  # fmt: skip
        if not chunk:
            raise ProbeError("it closed the connection before sending a Dask handshake "
                             "(is it a Dask scheduler?)")  # fmt: skip
        data += chunk
    return bytes(data)


def _check_handshake(body: bytes) -> None:
    """The bytes decode, with distributed's own functions, to a handshake."""
    from distributed.protocol.core import loads
    from distributed.protocol.utils import unpack_frames

    try:
        msg: Any = loads(unpack_frames(body), deserialize=False)
    except Exception:  # noqa: BLE001 - whatever a stranger's bytes make the decoder raise
        msg = None
    if not isinstance(msg, dict) or "python" not in msg:
        raise ProbeError("it does not speak Dask's protocol (its first message is not a "
                         "Dask handshake; is it a Dask scheduler?)")  # fmt: skip
