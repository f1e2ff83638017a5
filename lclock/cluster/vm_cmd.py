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
- the vm runs the very same ``Node`` and real-time driver as a worker of ``lclock run``,
  in-process, with a local control that already knows the agreed start;
- Ctrl-C or SIGTERM stop it gracefully; a peer that is lost (its connection breaks, or it
  closes before its last tick was due) makes it stop gracefully at once with reason
  ``peer_lost`` -- no reconnect loop, no hang;
- it writes ``OUTPUT/<run_id>/machine-<id>.jsonl`` and adds itself to that folder's
  ``run.json`` (under a lock on the folder, so vms sharing one folder build one complete run
  folder; vms on different hosts are combined with ``lclock merge``);
- it shows the run as ``lclock run`` does: a live line (or block) while it runs, the table
  at the end, and the report's headlines once the folder holds the whole run.

The clocks of the hosts should be synchronised (NTP): the start instant is wall-clock time.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import secrets
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from lclock.cluster.status import summarize
from lclock.console import Console
from lclock.core.faults import merge_applied, partitions_applied
from lclock.core.logline import format_ts
from lclock.core.model import machine_setup
from lclock.core.node import Node, last_tick_due
from lclock.errors import fail
from lclock.lifecycle import (
    MACHINE_EXIT_CODES,
    SIGNAL_EXIT_CODES,
    StopRequest,
    drain_wakeup,
    wakeup_socket,
)
from lclock.logfile import LogFile, describe_os_error
from lclock.runfolder import (
    RunFolderError,
    base_run_json,
    machine_log_path,
    new_run_id,
    record_snapshots,
    update_run_json,
)
from lclock.runplan import RunPlan, plan_run
from lclock.runtime.control import LocalControl
from lclock.runtime.driver import RealTimeDriver
from lclock.runtime.logcounts import counts_from_log
from lclock.runtime.waiting import Clock, Waiter
from lclock.setting_table import add_options, flags_of
from lclock.settings import (
    RunSettings,
    SettingsError,
    check_output_dir,
    host_problem,
    load_settings_file,
    resolve,
)
from lclock.transport import Transport
from lclock.transport.limited_warn import LimitedWarn
from lclock.transport.tcp.handshake import HANDSHAKE_TIMEOUT, addr_text
from lclock.transport.tcp.links import TcpLinks, bind_listener
from lclock.transport.tcp.mesh import Mesh, MeshSpec, SetupError

SECRET_ENV = "LCLOCK_SECRET"
MIN_SECRET = 8
START_MARGIN = 0.5  # seconds between machine 1's decision and the first tick
PEER_END_SLACK = 0.1  # hosts' clocks differ a little: an EOF this close to the end is normal


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--machine-id", type=int, required=True, metavar="ID",
                   help="which machine of the cluster this is (1..N)")
    add_options(p, "vm")
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
    flags = flags_of(args)
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
    if args.bind is not None:
        problem = host_problem(args.bind)
        if problem is not None:
            raise SettingsError(f"--bind: {problem}")
    return Cluster(settings, me, addrs, secret_text.encode(), bind)


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
        return fail("vm", exc)
    stop: StopRequest = getattr(args, "stop_request", None) or StopRequest()
    return run_vm(cluster, listener, quiet=bool(cluster.settings.quiet), wait=args.wait, stop=stop)


def run_vm(cluster: Cluster, listener: socket.socket, quiet: bool, wait: float,
           stop: StopRequest) -> int:
    """Build the mesh and agree on the start with the other vms, then run this machine."""
    me = cluster.me
    spec = MeshSpec(me, cluster.n, cluster.addrs, cluster.secret, cluster.context(), HANDSHAKE_TIMEOUT)
    early: list[tuple[str, dict[str, Any]]] = []
    shown: set[str] = set()

    def say_warning(event: str, **fields: Any) -> None:
        """Logged every time; on the screen once: a peer that is no vm (an HTTP server, a
        silent port) is tried again every second until --wait, with the same refusal."""
        early.append((event, {"at": format_ts(time.time()), **fields}))
        text = f"lclock vm {me}: warning: {event}: " + ", ".join(f"{k}={v}" for k, v in fields.items())
        if text not in shown:
            shown.add(text)
            _say(text)

    warn = LimitedWarn(say_warning)  # strangers knocking must not flood the screen

    def progress(text: str) -> None:
        if not quiet:
            _say(text)

    if stop.requested:  # Ctrl-C while lclock was still importing
        listener.close()
        _say(f"lclock vm {me}: stopped before the start")
        return stop.exit_code()
    progress(f"machine {me} of {cluster.n}: listening on {addr_text(listener.getsockname())}")
    mesh = Mesh(spec, listener, warn, progress, coordinate=True,
                start_info=lambda: start_info(cluster))
    with wakeup_socket() as wake:
        try:
            def told_to_stop(_ready: list[Any]) -> bool:
                drain_wakeup(wake)
                return stop.requested

            socks = mesh.run(time.monotonic() + wait, [wake], told_to_stop)
        except SetupError as exc:
            mesh.close_all()
            listener.close()
            _say(f"lclock vm {me}: error: {exc}")
            return 1
        if socks is None or mesh.start is None:
            listener.close()
            _say(f"lclock vm {me}: stopped before the start")
            return stop.exit_code() or 130
        warn.flush()
        if me != 1 and mesh.start.get("plan") != plan_digest(cluster.settings):
            listener.close()
            for sock in socks.values():
                sock.close()
            _say(f"lclock vm {me}: error: {PLAN_DIFFERS}")
            return 2
        links = TcpLinks(spec, listener, prebuilt=(socks, mesh.keys))
        return run_machine(cluster, links, mesh.start, early, quiet, stop, wake)


PLAN_DIFFERS = ("machine 1's faults and clocks settings differ from this vm's ([faults] and "
                "[clocks] of the settings file, snapshots, and their flags): every vm of a "
                "cluster must plan the same faults, clocks and snapshots")


def start_info(cluster: Cluster) -> dict[str, Any]:
    """Machine 1's choices for the whole cluster (START): run id, seed, rates, the instant."""
    s = cluster.settings
    seed = s.seed if s.seed is not None else secrets.randbelow(2**31)
    rates = [machine_setup(seed, i, s.rate_min, s.rate_max, s.rates)[0]
             for i in range(1, cluster.n + 1)]
    t0 = time.time() + START_MARGIN + 0.01 * cluster.n
    return {"run_id": new_run_id(), "t0": t0, "seed": seed, "rates": rates,
            "duration": s.duration, "dice_sides": s.dice_sides,
            "rate_min": s.rate_min, "rate_max": s.rate_max, "vector_clocks": s.vector_clocks,
            "plan": plan_digest(s)}


def plan_digest(s: RunSettings) -> str:
    """What every vm must agree on besides what START carries: the faults and clocks asked
    for (each vm draws its part of the plan itself, from the shared seed)."""
    plan: dict[str, Any] = {"faults": s.faults.to_json(), "clocks": s.clocks.to_json()}
    if s.impl:  # frames then carry the programs' messages: every vm must know it
        plan["bodies"] = True
    if s.snapshots:  # SPEC 12 (left out when none: the digest of a run without stays the same)
        plan["snapshots"] = [x.to_json() for x in s.snapshots]
    body = orjson.dumps(plan, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(body).hexdigest()[:32]


@dataclass(frozen=True)
class AgreedRun:
    """What machine 1's START fixed for every vm of the cluster, and this vm's share of it."""

    settings: RunSettings
    plans: RunPlan
    run_id: str
    t0: float
    rates: tuple[int, ...]

    @property
    def duration(self) -> float:
        return self.settings.duration

    @property
    def run_dir(self) -> Path:
        return Path(self.settings.output) / self.run_id

    def crash_at(self) -> dict[int, float]:
        """The planned crash instant (epoch s) of every machine the plan crashes."""
        faults = self.plans.faults
        return {c.machine: self.t0 + c.time for c in faults.crashes} if faults else {}


def agreed_run(cluster: Cluster, start: dict[str, Any]) -> AgreedRun:
    """This vm's settings with START's choices in them (seed, rates, duration, ...)."""
    t0 = float(start["t0"])
    rates = tuple(int(r) for r in start["rates"])
    settings = replace(
        cluster.settings, seed=int(start["seed"]), duration=float(start["duration"]),
        rate_min=int(start.get("rate_min", cluster.settings.rate_min)),
        rate_max=int(start.get("rate_max", cluster.settings.rate_max)),
        rates=cluster.settings.rates, dice_sides=int(start["dice_sides"]),
        vector_clocks=bool(start["vector_clocks"]), transport="tcp",
    )
    run_id = str(start["run_id"])
    plans = plan_run(settings, run_id, int(start["seed"]), rates)
    return AgreedRun(settings, plans, run_id, t0, rates)


class PeerEnds:
    """The vm's policy for a peer that goes away: ``RealTimeDriver``'s ``on_peer_gone``.

    A peer that is lost, or closes before its last tick was due, ends this run; one that
    closes after its last tick, or crashes as planned, is a normal end.
    """

    def __init__(self, cluster: Cluster, run: AgreedRun, clock: Clock) -> None:
        self.me = cluster.me
        self.clock = clock
        self.crash_at = run.crash_at()
        self.end = {j: run.t0 + last_tick_due(run.rates[j - 1], run.duration)
                    for j in range(1, cluster.n + 1) if j != cluster.me}

    def __call__(self, peer: int, error: str | None) -> str | None:
        now = self.clock.time()
        if error is None and now >= self.end.get(peer, 0.0) - PEER_END_SLACK:
            return None  # it has done its last tick: a normal end
        if peer in self.crash_at and now >= self.crash_at[peer] - PEER_END_SLACK:
            return None  # it crashed as planned (a reset connection, maybe)
        _say(f"machine {self.me}: lost machine {peer} ({error or 'closed early'}); stopping")
        return "peer_lost"


def run_machine(cluster: Cluster, links: Transport, start: dict[str, Any],
                early: list[tuple[str, dict[str, Any]]], quiet: bool, stop: StopRequest,
                wake: socket.socket, *, clock: Clock = time,
                waiter: Waiter | None = None) -> int:
    """Run the agreed machine, record it in run.json, show how it went."""
    me = cluster.me
    run = agreed_run(cluster, start)
    base, entry = _run_json_parts(cluster, run, clock)
    log = _open_run_folder(run.run_dir, me, base, entry, cluster.n)
    if log is None:
        links.close()
        return 1
    console = Console(quiet)
    control = LocalControl(run.t0, wake, stop, on_status=_progress(console, me, run, clock))
    node = Node(run.plans.machine(me))
    host = _start_program(run, me, node)
    driver = RealTimeDriver(node, log, links, control, clock=clock, waiter=waiter,
                            on_peer_gone=PeerEnds(cluster, run, clock), program=host,
                            bodies=bool(run.settings.impl))
    for event, fields in early:  # what happened before the log file existed
        driver.emit(event, "warning", during="setup", **fields)
    console.line(f"machine {me}: run {run.run_id}, rate {run.rates[me - 1]}, start at "
                 f"{format_ts(run.t0)}, {run.duration:g} s; folder {run.run_dir}")
    try:
        done = driver.run()
    finally:
        if host is not None:
            control.impl = host.close()
    log.close()
    return _finish(cluster, run, links, done, base, entry, console, clock, control.impl,
                   driver.pauses)


def _start_program(run: AgreedRun, me: int, node: Node) -> Any:
    """This vm's program (SPEC 9), started and asked ``init``, its machine's clocks now its
    answers; None if the machine is built in.

    The vms of a cluster have no launcher to agree on fewer clocks: a program must keep every
    clock the cluster keeps (``--clocks`` narrows them for all), or it fails its machine.
    """
    if not run.settings.impl:
        return None
    from lclock.impl.host import ProgramHost
    from lclock.impl.program import ProgramFailed, specs_of

    spec = (specs_of(run.settings) or {}).get(me)
    if spec is None:
        return None
    host = ProgramHost(spec, node.plan, run.run_dir)
    kept = host.start()
    if host.failure is None and kept != host.offered.names():
        host.failed(ProgramFailed(
            f"keeps only {', '.join(kept)}, but the cluster keeps "
            f"{', '.join(host.offered.names())}: lclock vm cannot narrow the clocks of the other "
            "vms (give every vm --clocks with the clocks your program keeps)"))
    host.wrap(node)
    return host


def _run_json_parts(cluster: Cluster, run: AgreedRun,
                    clock: Clock) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the run.json this vm would start the folder with, this machine's entry in it)."""
    me = cluster.me
    plan = run.plans.machine(me)
    base = base_run_json(run.run_id, plan.seed, run.settings.to_json(), clock.time())
    base.update(transport="tcp", t0=format_ts(run.t0), hosts=[addr_text(a) for a in cluster.addrs])
    base.update(run.plans.run_json())
    entry: dict[str, Any] = {"id": me, "rate": run.rates[me - 1], "pid": os.getpid(),
                             "exit_code": None, "ticks": None, "lclock": None,
                             "host": addr_text(cluster.addrs[me - 1]), "status": "running"}
    return base, entry


def _open_run_folder(run_dir: Path, me: int, base: dict[str, Any], entry: dict[str, Any],
                     n: int) -> LogFile | None:
    """The folder (shared by the vms of one host), this machine's log, and its entry in
    run.json; None, said on stderr, if any of them cannot be made."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)  # shared by the vms of one host
        log = LogFile.create(machine_log_path(run_dir, me))
        record(run_dir, base, entry, n)
    except (OSError, RunFolderError) as exc:
        why = describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
        _say(f"lclock vm {me}: error: cannot start the run folder {run_dir}: {why}")
        return None
    return log


def _progress(console: Console, me: int, run: AgreedRun,
              clock: Clock) -> Callable[[dict[str, Any]], None]:
    """The live line, as often as lclock run shows it (0.5 s on a terminal, else 10 s)."""
    next_progress = [0.0]

    def on_status(msg: dict[str, Any]) -> None:
        now = clock.monotonic()
        if now < next_progress[0]:
            return
        next_progress[0] = now + console.interval
        console.progress(clock.time() - run.t0, run.duration,
                         [{"id": me, "rate": run.rates[me - 1], **msg}])

    return on_status


def machine_outcome(done: dict[str, Any], crashed_peers: set[int]) -> tuple[int, str, str]:
    """(exit code, status, reason) of this vm from its machine's done report."""
    reason = str(done.get("reason") or "stopped")
    code = MACHINE_EXIT_CODES.get(reason, 1)
    if done.get("log_error"):
        code = 1
    status = "completed" if code == 0 else ("interrupted" if code in SIGNAL_EXIT_CODES.values() else "failed")
    stuck = sorted(set(done.get("undrained", [])) | set(done.get("lost_peers", [])))
    stuck = [j for j in stuck if j not in crashed_peers]
    if stuck and code == 0:
        # a peer that never closed its side (stopped, stalled, killed behind a firewall):
        # what it sent last may never have arrived, and no launcher can count it
        code, status = 1, "failed"
        reason = (f"machine {', '.join(map(str, stuck))} could not be drained "
                  "(stalled or gone): messages from it may be lost")
    if reason == "crashed":
        status = "crashed"
    return code, status, reason


def _finish(cluster: Cluster, run: AgreedRun, links: Transport, done: dict[str, Any],
            base: dict[str, Any], entry: dict[str, Any], console: Console, clock: Clock,
            impl: dict[str, Any] | None = None,
            pauses: list[tuple[str, float]] | None = None) -> int:
    """Record how this machine ended in run.json, show it; the vm's exit code. ``pauses``:
    the driver's, (kind, wall time) of each pause and resume it logged."""
    me, n, run_dir = cluster.me, cluster.n, run.run_dir
    code, status, reason = machine_outcome(done, set(run.crash_at()))
    entry.update({k: v for k, v in done.items() if k != "t"})
    if reason == "crashed":  # as planned: the vm ends here, its connections with it
        entry.update(counts_from_log(machine_log_path(run_dir, me)))
        entry["crashed_at"] = round(clock.time() - run.t0, 6)
        links.close()
    entry.update(exit_code=code, status=status, reason=reason, ended_at=format_ts(clock.time()))
    try:
        data = record(run_dir, base, entry, n, impl, _applied(run, me, entry, clock, pauses or []))
    except RunFolderError as exc:
        _say(f"lclock vm {me}: error: the run's record is incomplete: {exc}")
        return code or 1
    console.summary([entry])
    if done.get("log_error"):
        _say(f"lclock vm {me}: error: the log is incomplete: {done['log_error']}")
    if done.get("failed"):
        _say(f"lclock vm {me}: error: machine {me}: {done['failed']}")
    console.always(f"run folder: {run_dir} ({len(data['machines'])} of {n} machines here)")
    if data.get("status") == "completed" and not data.get("partial") and run.settings.report:
        _report(run_dir, console)
    return code


def _applied(run: AgreedRun, me: int, entry: dict[str, Any], clock: Clock,
             pauses: list[tuple[str, float]]) -> list[dict[str, Any]]:
    """What this vm applied of the plan, as ``faults.applied`` lists it: the cuts and heals
    due so far (every machine applies them by the plan's instants), its pauses and resumes
    (the driver's, at the instants of their lines), its crash."""
    faults = run.plans.faults
    if faults is None:
        return []
    out = partitions_applied(faults, len(run.rates), clock.time() - run.t0)
    out += [{"kind": kind, "machine": me, "at": round(t - run.t0, 6)} for kind, t in pauses]
    if entry.get("reason") == "crashed" and isinstance(entry.get("crashed_at"), float):
        out.append({"kind": "crash", "machine": me, "at": entry["crashed_at"]})
    return out


def record(run_dir: Path, base: dict[str, Any], entry: dict[str, Any], n: int,
           impl: dict[str, Any] | None = None,
           applied: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Add or replace this machine's entry in the folder's run.json (and its program's, in
    ``impl``, and the faults it applied, in ``faults.applied``); recompute the status."""

    def change(data: dict[str, Any] | None) -> dict[str, Any]:
        data = dict(base) if data is None else data
        if impl is not None:
            record_program(data, entry["id"], impl)
        if applied and isinstance(data.get("faults"), dict):
            old = data["faults"].get("applied")
            data["faults"]["applied"] = merge_applied(old if isinstance(old, list) else [],
                                                      applied)
        machines = [m for m in data.get("machines", []) if m.get("id") != entry["id"]]
        machines.append(entry)
        machines.sort(key=lambda m: m["id"])
        data["machines"] = machines
        data["machines_expected"] = n
        data.pop("partial", None)  # set again by summarize while machines are missing
        data.update(summarize(machines, n))
        record_snapshots(data, machines)
        return data

    return update_run_json(run_dir, change)


def record_program(data: dict[str, Any], me: int, impl: dict[str, Any]) -> None:
    """run.json's ``impl`` of a vm's folder: each program of a vm that shares it."""
    entry = dict(impl)
    limits = entry.pop("limits", None)
    kept = data.get("clocks", {}).get("kept", [])
    out = data.setdefault("impl", {"machines": {}, "clocks_offered": kept, "clocks_kept": kept})
    out["machines"][str(me)] = entry
    if limits is not None:
        out["limits"] = limits


def _report(run_dir: Path, console: Console) -> None:
    """The last vm of a shared folder writes the report, as ``lclock run`` does."""
    try:
        from lclock.analysis.report import report_after_run

        for h in report_after_run(run_dir):
            console.line(h)
    except Exception as exc:  # the run itself is fine
        _say(f"lclock vm: warning: report not written: {exc}")
