"""``lclock vm --machine-id ID --settings cluster.toml``: one machine of a TCP cluster.

The original form of the exercise: one machine per terminal (or per host), all reading the
same cluster settings. There is no launcher, so the vm does the launcher's jobs for itself:

- it listens on its own address from ``[tcp].hosts``/``[tcp].ports`` and dials the
  lower-numbered machines with backoff, saying whom it waits for;
- every connection is authenticated with the shared secret (``[tcp].secret`` or the
  ``LCLOCK_SECRET`` environment variable, which wins so the secret need not be in a file);
- machine 1 chooses the run id, the seed (unless the settings fix it), every machine's rate
  and the start instant, and sends them to all; the others adopt them, so every vm writes
  the same run id and the same rules;
- the vm runs the very same ``Worker`` in-process; its control pipe is a local pipe that
  already holds the "go" for the agreed start;
- Ctrl-C or SIGTERM stop it gracefully; a peer that is lost (its connection breaks, or it
  closes before its last tick was due) makes it stop gracefully at once with reason
  ``peer_lost`` -- no reconnect loop, no hang;
- it writes ``OUTPUT/<run_id>/machine-<id>.jsonl`` and adds itself to that folder's
  ``run.json`` (under a file lock, so vms sharing one folder build one complete run folder;
  vms on different hosts are combined with ``lclock merge``).

The clocks of the hosts should be synchronised (NTP): the start instant is wall-clock time.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import math
import multiprocessing
import os
import secrets
import signal
import socket
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from lclock.logfmt import format_ts
from lclock.model import machine_setup
from lclock.options import RUN_FLAGS, add_run_options
from lclock.runfolder import base_run_json, machine_log_path, new_run_id, write_run_json
from lclock.settings import (
    RunSettings,
    SettingsError,
    check_output_dir,
    load_settings_file,
    resolve,
)
from lclock.tcp.handshake import HANDSHAKE_TIMEOUT, addr_text
from lclock.tcp.mesh import Gatekeeper, Mesh, MeshSpec, SetupError
from lclock.tcp.peersock import PeerSocket
from lclock.tcp.runtime import bind_listener

SECRET_ENV = "LCLOCK_SECRET"
MIN_SECRET = 8
START_MARGIN = 0.5  # seconds between machine 1's decision and the first tick
PEER_END_SLACK = 0.1  # hosts' clocks differ a little: an EOF this close to the end is normal
EXIT = {"duration": 0, "sigint": 130, "sigterm": 143}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--machine-id", type=int, required=True, metavar="ID",
                   help="which machine of the cluster this is (1..N)")
    add_run_options(p)
    p.add_argument("--wait", type=float, default=60.0, metavar="SECONDS",
                   help="how long to wait for every peer before giving up (default 60)")
    p.add_argument("--bind", metavar="ADDR",
                   help="address to listen on (default: this machine's entry in [tcp].hosts)")


# -- settings -----------------------------------------------------------------------------


class Cluster:
    """The validated cluster description of one vm."""

    def __init__(self, settings: RunSettings, me: int, addrs: list[tuple[str, int]],
                 secret: bytes, bind: str) -> None:
        self.settings = settings
        self.me = me
        self.n = len(addrs)
        self.addrs = addrs
        self.secret = secret
        self.bind = bind

    def context(self) -> str:
        """The cluster's fingerprint, inside every MAC: another cluster's vm cannot join."""
        digest = hashlib.sha256(orjson.dumps({"n": self.n, "addrs": self.addrs})).hexdigest()
        return "vm:" + digest[:24]


def load_cluster(args: argparse.Namespace) -> Cluster:
    """Read and check everything before anything is created; SettingsError names the culprit."""
    file = load_settings_file(args.settings)
    flags = {k: getattr(args, k, None) for k in RUN_FLAGS}
    flags["transport"] = "tcp"
    settings = resolve(file, flags)
    tcp = file.tables.get("tcp", {})
    src = str(file.path) if file.path is not None else "settings"
    n = settings.machines
    ports = settings.tcp_ports
    if not ports or any(p == 0 for p in ports):
        raise SettingsError(
            f"{src}:tcp.ports: lclock vm needs a fixed port for each of the {n} machines, "
            f"e.g. ports = [7101, 7102, 7103] (got {list(ports or [])})"
        )
    hosts = list(tcp.get("hosts") or [settings.tcp_host] * n)
    if len(hosts) != n:
        raise SettingsError(f"{src}:tcp.hosts: {len(hosts)} hosts given for {n} machines")
    addrs = [(h, p) for h, p in zip(hosts, ports)]
    if len(set(addrs)) != n:
        raise SettingsError(f"{src}:tcp.hosts: two machines have the same host and port")
    me = args.machine_id
    if not 1 <= me <= n:
        raise SettingsError(f"--machine-id: must be from 1 to {n} (got {me})")
    secret_text = os.environ.get(SECRET_ENV) or tcp.get("secret")
    if not secret_text:
        raise SettingsError(
            f"{src}:tcp.secret: no shared secret; set [tcp].secret or the {SECRET_ENV} "
            "environment variable (the same on every machine)"
        )
    if len(secret_text) < MIN_SECRET:
        where = SECRET_ENV if os.environ.get(SECRET_ENV) else f"{src}:tcp.secret"
        raise SettingsError(f"{where}: the secret must have at least {MIN_SECRET} characters")
    if args.wait is not None and not (args.wait > 0 and math.isfinite(args.wait)):
        raise SettingsError(f"--wait: must be a number of seconds > 0 (got {args.wait})")
    where = "--output" if args.output is not None else f"{src}:output"
    check_output_dir(settings.output, where)
    bind = args.bind if args.bind else hosts[me - 1]
    return Cluster(settings, me, addrs, secret_text.encode(), bind)


# -- the peers' expected end, to tell a lost peer from one that has finished -------------------


def last_tick_due(t0: float, rate: int, duration: float) -> float:
    """When a machine's last tick is due (the worker's own count: ceil(rate x duration))."""
    total = max(1, math.ceil(rate * duration - 1e-9))
    return t0 + (total - 1) / rate


class VmHooks:
    """The worker's ``tcp`` hooks in vm mode: the mesh is already built."""

    def __init__(self, spec: MeshSpec, listener: socket.socket, socks: dict[int, socket.socket],
                 peer_end: dict[int, float], early: list[tuple[str, dict[str, Any]]],
                 ctrl_end: Any) -> None:
        self.spec = spec
        self.listener = listener
        self.socks = socks
        self.peer_end = peer_end
        self.early = early
        self.ctrl_end = ctrl_end
        self.worker: Any = None
        self.done: dict[str, Any] | None = None
        self.gate: Gatekeeper | None = None

    def connect(self, worker: Any) -> dict[int, socket.socket]:
        self.worker = worker
        for event, fields in self.early:  # what happened before the log file existed
            worker.log.warning(event, during="setup", **fields)
        return {p: PeerSocket(s, p, worker, self.on_lost) for p, s in self.socks.items()}

    def extra_fds(self, worker: Any) -> dict[int, Any]:
        def warn(event: str, **fields: Any) -> None:
            worker.log.warning(event, **fields)
            _say(f"warning: {event} {fields.get('peer', '')}: {fields.get('reason', '')}")

        fds: dict[int, Any] = {}
        self.gate = Gatekeeper(self.spec, self.listener, warn, fds)
        fds.update(self.gate.fds())
        fds[self.ctrl_end.fileno()] = self.drain
        return fds

    def drain(self) -> None:
        """Read what the worker reports on its control pipe (it expects a launcher there)."""
        try:
            while self.ctrl_end.poll():
                msg = orjson.loads(self.ctrl_end.recv_bytes())
                if msg.get("t") == "done":
                    self.done = msg
        except (EOFError, OSError):
            pass

    def on_lost(self, peer: int, error: str | None) -> None:
        w = self.worker
        if w is None or w.stop_reason is not None:
            return  # already stopping: peers' EOFs are what a graceful stop waits for
        if error is None:
            if time.time() >= self.peer_end.get(peer, 0.0) - PEER_END_SLACK:
                return  # it has done its last tick: a normal end
            w.log.warning(
                "peer_lost", peer=peer, addr=self.spec.addr(peer),
                error="closed before its last tick was due (it stopped or died)",
            )
        # With an error the worker logs peer_lost itself (the channel is marked broken).
        w.stop_reason = "peer_lost"
        _say(f"machine {self.spec.me}: lost machine {peer} ({error or 'closed early'}); stopping")


# -- run.json shared by the vms writing into one folder ---------------------------------------


def update_run_json(run_dir: Path, base: dict[str, Any], entry: dict[str, Any], n: int) -> dict[str, Any]:
    """Add or replace this machine's entry in run.json, under a lock; recompute the status."""
    lock_path = run_dir / ".run.json.lock"
    with open(lock_path, "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            try:
                data = orjson.loads((run_dir / "run.json").read_bytes())
            except (FileNotFoundError, orjson.JSONDecodeError):
                data = dict(base)
            machines = [m for m in data.get("machines", []) if m.get("id") != entry["id"]]
            machines.append(entry)
            machines.sort(key=lambda m: m["id"])
            data["machines"] = machines
            data["machines_expected"] = n
            data.pop("partial", None)  # set again by summarize while machines are missing
            data.update(summarize(machines, n))
            write_run_json(run_dir, data)
            return data
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def summarize(machines: list[dict[str, Any]], n: int) -> dict[str, Any]:
    """The run's status from its machines' own.

    A machine that stopped because it lost a peer is a consequence, not a cause: the cause
    is the machine that was interrupted (Ctrl-C, SIGTERM) or that never reported (killed).
    """
    def ids(ms: list[dict[str, Any]]) -> str:
        return ", ".join(str(m["id"]) for m in ms)

    by: dict[str, list[dict[str, Any]]] = {}
    for m in machines:
        st = m.get("status", "running")
        if st == "failed" and m.get("reason") == "peer_lost":
            st = "lost"
        by.setdefault(st, []).append(m)
    ended = [m["ended_at"] for m in machines if m.get("ended_at")]
    out: dict[str, Any] = {"ended_at": max(ended) if ended and "running" not in by else None}
    if "failed" in by:
        m = by["failed"][0]
        out.update(status="failed", exit_code=m.get("exit_code"), reason=f"machine {m['id']}: {m.get('reason')}")
    elif "interrupted" in by:
        m = by["interrupted"][0]
        out.update(status="interrupted", exit_code=m.get("exit_code"),
                   reason=f"machine {m['id']}: {m.get('reason')}")
    elif "lost" in by:
        why = f"machine {ids(by['lost'])} lost a peer"
        if "running" in by:
            why = f"machine {ids(by['running'])} ended without a report (killed?); " + why
        out.update(status="failed", exit_code=1, reason=why)
    elif "running" in by:
        out.update(status="running", exit_code=None, reason=None)
    else:
        out.update(status="completed", exit_code=0, reason="duration")
    if len(machines) < n:
        out["partial"] = f"this folder holds machines {ids(machines)} of {n}; combine with lclock merge"
    return out


def _early_signals() -> list[int]:
    """Signals the command line recorded for us while it was still importing this module."""
    from lclock import cli

    early = list(getattr(cli, "EARLY_SIGNALS", []))
    del getattr(cli, "EARLY_SIGNALS", [])[:]
    return early


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


# -- main -------------------------------------------------------------------------------------


def main(args: argparse.Namespace) -> int:
    try:
        cluster = load_cluster(args)
        listener = bind_listener(cluster.bind, cluster.addrs[cluster.me - 1][1],
                                 f"{args.settings or 'settings'}:tcp.hosts",
                                 f"{args.settings or 'settings'}:tcp.ports", backlog=cluster.n + 16)
    except SettingsError as exc:
        sys.stderr.write(f"lclock: error: {exc}\n")
        return 2
    return run_vm(cluster, listener, quiet=bool(cluster.settings.quiet), wait=args.wait)


def run_vm(cluster: Cluster, listener: socket.socket, quiet: bool, wait: float) -> int:
    s = cluster.settings
    me = cluster.me
    spec = MeshSpec(me, cluster.n, cluster.addrs, cluster.secret, cluster.context(), HANDSHAKE_TIMEOUT)
    early: list[tuple[str, dict[str, Any]]] = []

    def warn(event: str, **fields: Any) -> None:
        early.append((event, {"at": format_ts(time.time()), **fields}))
        _say(f"lclock vm {me}: warning: {event}: " + ", ".join(f"{k}={v}" for k, v in fields.items()))

    def progress(text: str) -> None:
        if not quiet:
            _say(text)

    def start_info() -> dict[str, Any]:
        seed = s.seed if s.seed is not None else secrets.randbelow(2**31)
        rates = [machine_setup(seed, i, s.rate_min, s.rate_max, s.rates)[0]
                 for i in range(1, cluster.n + 1)]
        t0 = time.time() + START_MARGIN + 0.01 * cluster.n
        return {"run_id": new_run_id(), "t0": t0, "seed": seed, "rates": rates,
                "duration": s.duration, "dice_sides": s.dice_sides,
                "rate_min": s.rate_min, "rate_max": s.rate_max, "vector_clocks": s.vector_clocks}

    # Ctrl-C / SIGTERM while waiting for peers: stop cleanly, nothing half-written.
    stop_r, stop_w = socket.socketpair()
    stop_w.setblocking(False)
    got: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        got.append(signum)
        try:
            stop_w.send(b"s")
        except OSError:
            pass

    old_int = signal.signal(signal.SIGINT, on_signal)
    old_term = signal.signal(signal.SIGTERM, on_signal)
    got.extend(_early_signals())  # Ctrl-C while lclock was still importing
    if got:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
        listener.close()
        _say(f"lclock vm {me}: stopped before the start")
        return 130 if signal.SIGINT in got else 143
    progress(f"machine {me} of {cluster.n}: listening on {addr_text(listener.getsockname())}")
    mesh = Mesh(spec, listener, warn, progress, coordinate=True, start_info=start_info)
    try:
        socks = mesh.run(time.monotonic() + wait, [stop_r], lambda _r: bool(got))
    except SetupError as exc:
        mesh.close_all()
        _say(f"lclock vm {me}: error: {exc}")
        return 1
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
    if socks is None:
        _say(f"lclock vm {me}: stopped before the start")
        return 130 if signal.SIGINT in got else 143
    start = mesh.start
    assert start is not None
    return run_machine(cluster, listener, spec, socks, start, early, quiet)


def run_machine(cluster: Cluster, listener: socket.socket, spec: MeshSpec,
                socks: dict[int, socket.socket], start: dict[str, Any],
                early: list[tuple[str, dict[str, Any]]], quiet: bool) -> int:
    from lclock.runtime.worker import Worker, WorkerConfig

    me, n = cluster.me, cluster.n
    t0 = float(start["t0"])
    rates = [int(r) for r in start["rates"]]
    duration = float(start["duration"])
    settings = replace(
        cluster.settings, seed=int(start["seed"]), rates=tuple(rates), duration=duration,
        dice_sides=int(start["dice_sides"]), vector_clocks=bool(start["vector_clocks"]),
        transport="tcp",
    )
    run_id = str(start["run_id"])
    run_dir = Path(settings.output) / run_id
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _say(f"lclock vm {me}: error: cannot create {run_dir}: {exc.strerror}")
        return 1
    base = base_run_json(run_id, int(start["seed"]), settings.to_json(), time.time())
    base.update(transport="tcp", t0=format_ts(t0),
                hosts=[addr_text(a) for a in cluster.addrs])
    entry: dict[str, Any] = {"id": me, "rate": rates[me - 1], "pid": os.getpid(),
                             "exit_code": None, "ticks": None, "lclock": None,
                             "host": addr_text(cluster.addrs[me - 1]), "status": "running"}
    update_run_json(run_dir, base, entry, n)

    peer_end = {j: last_tick_due(t0, rates[j - 1], duration) for j in range(1, n + 1) if j != me}
    ctrl_end, worker_end = multiprocessing.Pipe(duplex=True)
    ctrl_end.send_bytes(orjson.dumps({"t": "go", "t0": t0}))  # the agreed start, as a launcher would
    hooks = VmHooks(spec, listener, socks, peer_end, early, ctrl_end)
    cfg = WorkerConfig(
        machine_id=me, n=n, run_id=run_id, log_path=str(machine_log_path(run_dir, me)),
        seed=int(start["seed"]), rate=rates[me - 1], duration=duration,
        dice_sides=settings.dice_sides, vector=settings.vector_clocks,
        rate_min=int(start.get("rate_min", settings.rate_min)),
        rate_max=int(start.get("rate_max", settings.rate_max)), tcp=hooks,
    )
    worker = Worker(cfg, worker_end)
    worker.install_signals()
    presses: list[int] = []

    def on_sigint(_signum: int, _frame: Any) -> None:
        # In a terminal of its own, Ctrl-C is for this vm: graceful first, at once the second time.
        presses.append(1)
        if len(presses) > 1:
            os._exit(130)
        if worker.stop_reason is None:
            worker.stop_reason = "sigint"

    signal.signal(signal.SIGINT, on_sigint)
    for signum in _early_signals():  # arrived between the set-up and these handlers
        if worker.stop_reason is None:
            worker.stop_reason = "sigint" if signum == signal.SIGINT else "sigterm"
    if not quiet:
        _say(f"machine {me}: run {run_id}, rate {rates[me - 1]}, start at {format_ts(t0)}, "
             f"{duration:g} s; folder {run_dir}")
    worker.run()
    hooks.drain()
    if hooks.gate is not None:
        hooks.gate.close()
    listener.close()
    reason = worker.stop_reason or "duration"
    code = EXIT.get(reason, 1)
    status = "completed" if code == 0 else ("interrupted" if code in (130, 143) else "failed")
    done = dict(hooks.done or {})
    done.pop("t", None)
    entry.update(done)
    entry.update(exit_code=code, status=status, reason=reason, ended_at=format_ts(time.time()))
    data = update_run_json(run_dir, base, entry, n)
    if not quiet:
        _say(f"machine {me}: {status} ({reason}): {entry.get('ticks')} ticks, clock "
             f"{entry.get('lclock')}, sent {entry.get('sent')}, received {entry.get('received')}, "
             f"unprocessed {entry.get('unprocessed')}")
        _say(f"run folder: {run_dir} ({len(data['machines'])} of {n} machines here)")
    return code
