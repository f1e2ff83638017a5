"""The TCP transport as the worker sees it: the plan the launcher makes, and the hooks.

The launcher calls ``plan_cluster`` before it creates anything. The plan binds every
machine's listening socket right there, in the launcher: a port in use is a clear
``SettingsError`` (one line, exit 2, nothing created), port 0 lets the OS pick a free one,
and there is no window in which another program could take a port between choosing and
listening. Each worker receives its own listener (sockets pickle across ``spawn``), a
per-run secret from ``secrets.token_bytes`` and the addresses of all machines.

Inside the worker, ``connect`` builds the authenticated mesh (``lclock.tcp.mesh``) and
returns ``{peer: socket}``; from then on the worker runs exactly the same framed
``PeerChannel`` loop as with socket pairs, so framing, FIFO order and the graceful stop are
the same code. ``extra_fds`` keeps the listener in the worker's select loop, where the
``Gatekeeper`` turns away anything that connects during the run.
"""

from __future__ import annotations

import errno
import secrets
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lclock.settings import RunSettings, SettingsError
from lclock.tcp.handshake import HANDSHAKE_TIMEOUT, addr_text
from lclock.tcp.mesh import Gatekeeper, Mesh, MeshSpec, SetupError
from lclock.tcp.peersock import PeerSocket

CONNECT_TIMEOUT = 20.0  # launcher mode: every listener exists already, so this is generous


def bind_listener(host: str, port: int, where_host: str, where_port: str,
                  backlog: int = 64) -> socket.socket:
    """A listening TCP socket on host:port, or a SettingsError that names the setting."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise SettingsError(f"{where_host}: cannot resolve {host!r} ({exc.strerror})") from None
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


@dataclass
class TcpMachine:
    """One worker's TCP configuration and the worker hooks; picklable until ``connect``."""

    spec: MeshSpec
    listener: socket.socket
    connect_timeout: float = CONNECT_TIMEOUT
    gate: Gatekeeper | None = field(default=None, repr=False)

    def connect(self, worker: Any) -> dict[int, socket.socket] | None:
        """Build the mesh; None when the launcher stops us first (the worker then stops)."""

        def warn(event: str, **fields: Any) -> None:
            worker.log.warning(event, **fields)

        mesh = Mesh(self.spec, self.listener, warn)

        def on_control(ready: list[Any]) -> bool:
            worker.handle_control(ready)
            return worker.stop_reason is not None

        try:
            socks = mesh.run(time.monotonic() + self.connect_timeout, worker.control_fds(), on_control)
        except SetupError as exc:
            worker.log.error("connect_failed", error=str(exc))
            sys.stderr.write(f"lclock: machine {self.spec.me}: {exc}\n")
            mesh.close_all()
            raise SystemExit(1) from None
        if socks is None:
            return None
        # Frames still buffered when a connection fails are logged, never dropped silently.
        return {p: PeerSocket(s, p, worker) for p, s in socks.items()}

    def extra_fds(self, worker: Any) -> dict[int, Callable[[], None]]:
        """The listener stays in the worker's select loop: strangers are handshaken, then dropped."""

        def warn(event: str, **fields: Any) -> None:
            worker.log.warning(event, **fields)

        fds: dict[int, Callable[[], None]] = {}
        self.gate = Gatekeeper(self.spec, self.listener, warn, fds)
        fds.update(self.gate.fds())
        return fds  # becomes worker.extra, which the gatekeeper keeps editing


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
                        self.handshake_timeout)

    def for_machine(self, machine_id: int) -> TcpMachine:
        return TcpMachine(self.spec(machine_id), self.listeners[machine_id - 1])

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


def describe(addrs: list[tuple[str, int]]) -> str:
    return ", ".join(f"{i}={addr_text(a)}" for i, a in enumerate(addrs, 1))
