"""Who may join a TCP run: a mutual challenge-response over a tiny record protocol.

A TCP port is open to anyone who can reach it, so every connection must prove that it
belongs to the run before a single model message is read from it. The idea is that of
``multiprocessing``'s authkey, made mutual: both sides send a fresh random nonce and each
answers with ``HMAC-SHA256(secret, role | context | connector id | acceptor id | nonces)``.

- The nonces make every proof single-use, so a recorded handshake cannot be replayed.
- The run context (the run id, or the cluster's fingerprint in ``vm`` mode) and both ids
  are inside the MAC, so a proof for another run or another pair of machines fails.
- The role tag differs for the two directions, so a proof the acceptor hands out can never
  be sent back as the connector's proof.
- ``hmac.compare_digest`` compares in constant time.

The handshake uses its own records (``length u16 + type u8 + body``), capped at
``MAX_RECORD`` bytes, so garbage or a giant length prefix is refused at once. Reads never
go past the record being read, so the first model frame after the handshake is left in the
socket for ``PeerChannel``. Everything is non-blocking: a slow or silent stranger only
holds a slot until its deadline, never the tick loop or the other peers.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import os
import socket
import struct
import time

MAGIC = b"LCLK"
VERSION = 1
MAX_RECORD = 1024
NONCE_BYTES = 16
MAC_BYTES = 32
HANDSHAKE_TIMEOUT = 2.0

T_HELLO = 1
T_CHALLENGE = 2
T_PROOF = 3
T_OK = 4
T_READY = 5
T_START = 6

_LEN = struct.Struct("!H")
_HELLO = struct.Struct(f"!B4sBII{NONCE_BYTES}s")
_CHALLENGE = struct.Struct(f"!BI{NONCE_BYTES}s{MAC_BYTES}s")


class HandshakeError(Exception):
    """The other side is not a peer of this run (or broke the protocol); says why."""


def record(rtype: int, body: bytes = b"") -> bytes:
    """One handshake record: length (u16) + type (u8) + body."""
    data = bytes([rtype]) + body
    if len(data) > MAX_RECORD:
        raise ValueError("record too long")
    return _LEN.pack(len(data)) + data


def proof(secret: bytes, role: bytes, context: str, connector: int, acceptor: int,
          nonce_c: bytes, nonce_a: bytes) -> bytes:
    """The MAC one side sends; everything that identifies this connection is inside it."""
    msg = b"lclock-tcp-v1|" + role + b"|" + context.encode() + b"|"
    msg += struct.pack("!II", connector, acceptor) + nonce_c + nonce_a
    return hmac.new(secret, msg, hashlib.sha256).digest()


def tune_peer_socket(sock: socket.socket) -> None:
    """Low latency, and a dead peer noticed within seconds rather than minutes.

    TCP_NODELAY: frames are small and latency is measured. Keep-alive and
    TCP_USER_TIMEOUT (Linux): a host that vanishes without a FIN or RST turns into an
    error on the socket, so the worker logs ``peer_lost`` instead of waiting for ever.
    """
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    opts = [
        (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),
        (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
    ]
    for name, value in (("TCP_KEEPIDLE", 2), ("TCP_KEEPINTVL", 1), ("TCP_KEEPCNT", 3),
                        ("TCP_USER_TIMEOUT", 5000)):
        if hasattr(socket, name):
            opts.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    for level, opt, value in opts:
        try:
            sock.setsockopt(level, opt, value)
        except OSError:
            pass


class RecordReader:
    """Reads one record at a time from a non-blocking socket without reading past it."""

    def __init__(self, first_len: int | None = None) -> None:
        self.buf = bytearray()
        # The exact length the first record must have (HELLO): anything else is refused
        # after two bytes, before we wait for a body that a stranger may never send.
        self.first_len = first_len

    def read(self, sock: socket.socket) -> tuple[int, bytes] | None:
        """Return (type, body) once a whole record is in; None if more bytes are needed.

        Raises HandshakeError on EOF, a socket error, or a length outside 1..MAX_RECORD.
        """
        while True:
            if len(self.buf) < 2:
                want = 2 - len(self.buf)
            else:
                (length,) = _LEN.unpack_from(self.buf)
                if length > MAX_RECORD:
                    raise HandshakeError(f"oversized record ({length} bytes, max {MAX_RECORD})")
                if self.first_len is not None and length != self.first_len:
                    raise HandshakeError(f"not an lclock handshake (first record of {length} bytes)")
                if length == 0:
                    raise HandshakeError("empty record")
                want = 2 + length - len(self.buf)
                if want == 0:
                    data = bytes(self.buf[2:])
                    self.buf.clear()
                    self.first_len = None
                    return data[0], data[1:]
            try:
                chunk = sock.recv(want)
            except (BlockingIOError, InterruptedError):
                return None
            except OSError as exc:
                raise HandshakeError(f"connection error: {os.strerror(exc.errno or 0)}") from None
            if not chunk:
                raise HandshakeError(
                    "closed during the handshake" + (f" ({len(self.buf)} bytes of a record)" if self.buf else "")
                )
            self.buf += chunk


class Handshake:
    """One side of one connection's handshake, driven by readiness events.

    ``role`` is ``"accept"`` (we own the listener: wait for HELLO) or ``"connect"`` (we
    dialled: send HELLO). ``allowed`` is the set of machine ids that may dial us; a
    connector names the one machine it expects to reach. After ``done`` is True, ``peer``
    is the proven machine id of the other side.
    """

    def __init__(
        self,
        sock: socket.socket,
        role: str,
        me: int,
        secret: bytes,
        context: str,
        *,
        allowed: frozenset[int] = frozenset(),
        target: int = 0,
        timeout: float = HANDSHAKE_TIMEOUT,
        addr: str = "?",
    ) -> None:
        self.sock = sock
        self.role = role
        self.me = me
        self.secret = secret
        self.context = context
        self.allowed = allowed
        self.target = target
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.addr = addr
        self.reader = RecordReader(_HELLO.size if role == "accept" else None)
        self.out = bytearray()
        self.nonce = os.urandom(NONCE_BYTES)
        self.nonce_peer = b""
        self.peer = target if role == "connect" else 0
        self.done = False
        sock.setblocking(False)
        if role == "connect":
            self.out += record(T_HELLO, _HELLO.pack(0, MAGIC, VERSION, me, target, self.nonce)[1:])

    def fileno(self) -> int:
        return self.sock.fileno()

    def wants_write(self) -> bool:
        return bool(self.out)

    def expired(self, now: float) -> bool:
        return not self.done and now >= self.deadline

    def flush(self) -> None:
        while self.out:
            try:
                n = self.sock.send(self.out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                raise HandshakeError(f"connection error: {os.strerror(exc.errno or 0)}") from None
            del self.out[:n]

    def on_readable(self) -> None:
        """Advance the protocol with what has arrived; raises HandshakeError to reject."""
        while not self.done:
            rec = self.reader.read(self.sock)
            if rec is None:
                return
            self._handle(*rec)
        self.flush()

    def frame_keys(self) -> tuple[bytes, bytes]:
        """(our sending key, our receiving key) for the frames of this connection.

        Derived like the proofs, from the secret and both fresh nonces, so every
        connection and each of its directions has keys of its own: a frame recorded on one
        connection or direction fails its tag on any other.
        """
        if self.role == "connect":
            c, a, nc, na = self.me, self.peer, self.nonce, self.nonce_peer
        else:
            c, a, nc, na = self.peer, self.me, self.nonce_peer, self.nonce
        c_to_a = proof(self.secret, b"K>", self.context, c, a, nc, na)
        a_to_c = proof(self.secret, b"K<", self.context, c, a, nc, na)
        return (c_to_a, a_to_c) if self.role == "connect" else (a_to_c, c_to_a)

    def _handle(self, rtype: int, body: bytes) -> None:
        if self.role == "accept":
            if self.nonce_peer == b"":
                self._on_hello(rtype, body)
            else:
                self._on_proof(rtype, body)
        elif self.nonce_peer == b"":
            self._on_challenge(rtype, body)
        else:
            if rtype != T_OK or body:
                raise HandshakeError(f"expected OK, got record type {rtype}")
            self.done = True

    def _on_hello(self, rtype: int, body: bytes) -> None:
        if rtype != T_HELLO or len(body) != _HELLO.size - 1:
            raise HandshakeError("not an lclock handshake (no HELLO)")
        _, magic, version, claimed, target, nonce = _HELLO.unpack(b"\0" + body)
        if magic != MAGIC:
            raise HandshakeError("not an lclock handshake (bad magic)")
        if version != VERSION:
            raise HandshakeError(f"protocol version {version}, expected {VERSION}")
        if target != self.me:
            raise HandshakeError(f"asked for machine {target}, this is machine {self.me}")
        if claimed not in self.allowed:
            raise HandshakeError(f"claims to be machine {claimed}, which may not connect here")
        self.peer = claimed
        self.nonce_peer = nonce
        mac = proof(self.secret, b"A", self.context, claimed, self.me, nonce, self.nonce)
        self.out += record(T_CHALLENGE, _CHALLENGE.pack(0, self.me, self.nonce, mac)[1:])
        self.flush()

    def _on_proof(self, rtype: int, body: bytes) -> None:
        if rtype != T_PROOF or len(body) != MAC_BYTES:
            raise HandshakeError(f"expected PROOF, got record type {rtype}")
        want = proof(self.secret, b"C", self.context, self.peer, self.me, self.nonce_peer, self.nonce)
        if not hmac.compare_digest(body, want):
            raise HandshakeError(f"authentication failed for machine {self.peer} (wrong secret or another run)")
        self.out += record(T_OK)
        self.flush()
        self.done = True

    def _on_challenge(self, rtype: int, body: bytes) -> None:
        if rtype != T_CHALLENGE or len(body) != _CHALLENGE.size - 1:
            raise HandshakeError("the other side is not an lclock machine (no CHALLENGE)")
        _, who, nonce_a, mac = _CHALLENGE.unpack(b"\0" + body)
        if who != self.target:
            raise HandshakeError(f"reached machine {who}, expected machine {self.target}")
        want = proof(self.secret, b"A", self.context, self.me, self.target, self.nonce, nonce_a)
        if not hmac.compare_digest(mac, want):
            raise HandshakeError(
                f"machine {self.target} failed to authenticate (wrong secret or another run)"
            )
        self.nonce_peer = nonce_a
        # It proved it knows the secret: our peer, not a stranger. Only its OK is left, and a
        # peer whose process started late (its listener was bound before it ran) must get
        # its full time for it, or it counts us connected while we give up and dial again.
        self.deadline = time.monotonic() + self.timeout
        mine = proof(self.secret, b"C", self.context, self.me, self.target, self.nonce, nonce_a)
        self.out += record(T_PROOF, mine)
        self.flush()


def connect_error(sock: socket.socket) -> int:
    """The result of a non-blocking connect once the socket is writable (0 = connected)."""
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)


def start_connect(addr: tuple[str, int]) -> socket.socket:
    """Begin a non-blocking connect to ``addr``; raises OSError if it fails at once."""
    infos = socket.getaddrinfo(addr[0], addr[1], type=socket.SOCK_STREAM)
    family, stype, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, stype, proto)
    sock.setblocking(False)
    err = sock.connect_ex(sockaddr)
    if err not in (0, errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK):
        sock.close()
        raise OSError(err, os.strerror(err))
    return sock


def addr_text(addr: object) -> str:
    """``host:port`` of a socket address (IPv6 in brackets)."""
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = str(addr[0])
        return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"
    return str(addr)
