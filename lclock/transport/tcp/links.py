"""The TCP transport: the plan the launcher makes, and the links of one machine.

The launcher calls ``plan_cluster`` before it creates anything. The plan binds every
machine's listening socket right there, in the launcher: a port in use is a clear
``SettingsError`` (one line, exit 2, nothing created), port 0 lets the OS pick a free one,
and there is no window in which another program could take a port between choosing and
listening. Each worker receives its own listener (sockets pickle across ``spawn``), a
per-run secret from ``secrets.token_bytes`` and the addresses of all machines.

Inside the worker, ``TcpLinks.connect`` builds the authenticated mesh
(``lclock.transport.tcp.mesh``) and returns ``{peer: socket}``; from then on the machine
runs exactly the same ``PeerChannel`` loop as with socket pairs, so FIFO order and the
graceful stop are the same code. Only the frames differ: over TCP each carries a tag under
a key from its connection's handshake. ``watch`` keeps the listener in the run loop, where
the ``Gatekeeper`` turns away anything that connects during the run.
"""

from __future__ import annotations

import errno
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lclock.errors import shown
from lclock.settings import RunSettings, SettingsError
from lclock.transport import TransportError
from lclock.transport.framing import FrameCodec
from lclock.transport.tcp.gatekeeper import Gatekeeper
from lclock.transport.tcp.handshake import HANDSHAKE_TIMEOUT
from lclock.transport.tcp.mesh import Mesh, MeshSpec, SetupError, Warn

CONNECT_TIMEOUT = 20.0  # launcher mode: set-up fails this long after its last new peer (generous:
#                        every listener exists already, a silence is a process not started yet)


def bind_listener(host: str, port: int, where_host: str, where_port: str,
                  backlog: int = 64) -> socket.socket:
    """A listening TCP socket on host:port, or a SettingsError that names the setting."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise SettingsError(f"{where_host}: cannot resolve {shown(host)} ({exc.strerror})") from None
    except (UnicodeError, ValueError) as exc:  # a label over 63 characters, a NUL, ...
        raise SettingsError(f"{where_host}: {shown(host)} is not a host name ({exc})") from None
    family, stype, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, stype, proto)
    try:
        # Lets a fixed port be reused while an earlier run's connections sit in TIME_WAIT;
        # on Linux it does not let two sockets listen on the same port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise SettingsError(f"{where_port}: port {port} on {host} is in use") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise SettingsError(f"{where_host}: {host} is not an address of this host") from None
        if exc.errno == errno.EACCES:
            raise SettingsError(f"{where_port}: no permission to listen on port {port} of {host}") from None
        raise SettingsError(f"{where_port}: cannot listen on {host}:{port} ({exc.strerror})") from None
    return sock


class TcpLinks:
    """The TCP transport of one machine: its mesh of authenticated connections.

    In launcher mode (``prebuilt`` None) ``connect`` builds the mesh inside the worker; in
    vm mode the mesh was built before the machine started (it also agreed on the start),
    and ``connect`` hands it over. Either way the listener stays in the run loop, where the
    ``Gatekeeper`` turns away anything that connects during the run. Picklable until
    ``connect``: it travels to a spawned worker.
    """

    def __init__(self, spec: MeshSpec, listener: socket.socket,
                 prebuilt: tuple[dict[int, socket.socket], dict[int, tuple[bytes, bytes]]] | None = None,
                 connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.spec = spec
        self.listener = listener
        self.connect_timeout = connect_timeout
        self.socks, self.keys = prebuilt if prebuilt is not None else ({}, {})
        self.gate: Gatekeeper | None = None

    def connect(self, stop_fds: list[Any], on_stop_fd: Callable[[list[Any]], bool],
                warn: Warn) -> dict[int, socket.socket] | None:
        """Build the mesh; None when told to stop first; TransportError when it cannot."""
        if self.socks:
            return dict(self.socks)
        mesh = Mesh(self.spec, self.listener, warn)
        try:
            socks = mesh.run(time.monotonic() + self.connect_timeout, stop_fds, on_stop_fd,
                             idle=self.connect_timeout)
        except SetupError as exc:
            mesh.close_all()
            raise TransportError(str(exc)) from None
        if socks is None:
            return None
        self.socks, self.keys = socks, mesh.keys
        return dict(socks)

    def codecs(self, peer: int, n: int, vector: bool, pt: bool = False,
               hlc: bool = False, bodies: bool = False) -> tuple[FrameCodec, FrameCodec]:
        send_key, recv_key = self.keys[peer]
        return (FrameCodec(n, vector, send_key, pt=pt, hlc=hlc, bodies=bodies),
                FrameCodec(n, vector, recv_key, pt=pt, hlc=hlc, bodies=bodies))

    def watch(self, extra: dict[int, Callable[[], None]], warn: Warn) -> None:
        """Keep the listener in the run loop (``extra``: fd -> callback, edited as it goes)."""
        self.gate = Gatekeeper(self.spec, self.listener, warn, extra)
        extra.update(self.gate.fds())

    def stop_watching(self) -> None:
        if self.gate is not None:
            self.gate.turn_away_all("the run ended before its handshake was complete")

    def close(self) -> None:
        if self.gate is not None:
            self.gate.close()
        self.listener.close()


@dataclass
class TcpPlan:
    """What the launcher decided for a TCP run: addresses, secret, listeners."""

    run_id: str
    addrs: list[tuple[str, int]]
    secret: bytes
    listeners: list[socket.socket]
    handshake_timeout: float = HANDSHAKE_TIMEOUT

    def spec(self, machine_id: int) -> MeshSpec:
        return MeshSpec(machine_id, len(self.addrs), self.addrs, self.secret, self.run_id,
                        self.handshake_timeout, dial_timeout=CONNECT_TIMEOUT,
                        accept_timeout=CONNECT_TIMEOUT)

    def for_machine(self, machine_id: int) -> TcpLinks:
        return TcpLinks(self.spec(machine_id), self.listeners[machine_id - 1])

    def close(self) -> None:
        for s in self.listeners:
            s.close()


def plan_cluster(settings: RunSettings, run_id: str) -> TcpPlan:
    """Bind every machine's listener now (or fail with a SettingsError), make the secret."""
    n = settings.machines
    host = settings.tcp_host
    ports = list(settings.tcp_ports) if settings.tcp_ports else [0] * n
    if len(ports) != n:
        raise SettingsError(f"tcp.ports: {len(ports)} ports given for {n} machines")
    fixed = [p for p in ports if p]
    if len(set(fixed)) != len(fixed):
        raise SettingsError(f"tcp.ports: the same port is given twice ({ports})")
    listeners: list[socket.socket] = []
    try:
        for p in ports:
            listeners.append(bind_listener(host, p, "tcp.host", "tcp.ports", backlog=n + 16))
    except SettingsError:
        for s in listeners:
            s.close()
        raise
    addrs = [(host, s.getsockname()[1]) for s in listeners]
    return TcpPlan(run_id, addrs, secrets.token_bytes(32), listeners)
