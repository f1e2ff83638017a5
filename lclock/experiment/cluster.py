"""Simulated trials on a Dask distributed cluster (``lclock experiment --sim --cluster ADDR``).

Dask does the scheduling, the load balancing and the retries: a trial whose worker is lost
(killed, its host gone) is run again on another worker by the scheduler itself, and a
trial that raised is retried ``RETRIES`` times. lclock only submits one task per trial and
writes what comes back.

Each task runs its trial as a child process of the worker (``python -m
lclock.experiment.trial``, in the worker's process group, so whoever stops the worker's
group stops it too; it also ends by itself if its worker dies) in a temporary folder, and returns the trial folder's files as
bytes, which the experiment writes into its own folder: workers on other hosts need no
shared filesystem, only the same lclock. A child process because a Python thread cannot be
stopped: on Ctrl-C the experiment sets a cluster-wide ``distributed.Event``, every task
polls it and kills its child, and the experiment waits until each task has said so.
"""

from __future__ import annotations

import contextlib
import pickle
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Generator
from pathlib import Path
from typing import Any

from lclock.experiment.dask_probe import ProbeError, probe_scheduler
from lclock.experiment.trial import (
    OUTCOME_FILE,
    SPEC_FILE,
    TrialOutcome,
    TrialSpec,
    write_files,
)
from lclock.settings import SettingsError

#: Retries of a trial whose task raised (a lost worker is rescheduled by Dask anyway).
RETRIES = 2
#: How often a running task looks whether the experiment was stopped (seconds).
STOP_POLL = 0.5
#: How long a stopped experiment waits for its tasks to confirm (seconds).
STOP_WAIT = 30.0
CONNECT_TIMEOUT = 10.0
INSTALL_HINT = "pip install 'lclock[cluster]'"

Results = Generator[tuple[TrialSpec, TrialOutcome], None, None]


def connect(address: str, timeout: float | None = None) -> Any:
    """A ``distributed.Client`` for the scheduler at ``address``; SettingsError (one line,
    naming ``--cluster``) when dask is missing or the scheduler cannot be reached or is
    not a Dask scheduler, within ``timeout`` (``connect_timeout()`` by default)."""
    if "://" not in address or address.endswith("://"):
        raise SettingsError(
            f"--cluster: give the Dask scheduler's address as tcp://HOST:PORT (got {address!r})"
        )
    try:
        from distributed import Client
    except ImportError:
        raise SettingsError(
            f"--cluster: needs dask.distributed, which is not installed ({INSTALL_HINT})"
        ) from None
    timeout = connect_timeout() if timeout is None else timeout
    unreachable = f"--cluster: cannot reach the Dask scheduler at {address}"
    try:
        probed = _probe(address, timeout)
    except (ProbeError, OSError, ValueError) as exc:
        raise SettingsError(f"{unreachable}: {first_line(exc)}") from None
    try:
        client = _open_client(Client, address, timeout)
    except Exception as exc:  # noqa: BLE001 - a peer that passed the probe, then misbehaved
        why = after_handshake(exc, timeout) if probed else (
            first_line(exc) if isinstance(exc, (OSError, TimeoutError, ValueError))
            else f"{type(exc).__name__}: {first_line(exc)}")
        raise SettingsError(f"{unreachable}: {why}") from None
    try:
        _check_workers(client)
    except BaseException:
        client.close()
        raise
    return client


def _open_client(client_class: Any, address: str, timeout: float) -> Any:
    """A Client, or its construction's exception with nothing left to run: a Client whose
    ``__init__`` failed (a peer that passed the probe, then sent garbage or a huge size) is
    otherwise closed by its ``__del__``, which waits twice the timeout on the dead
    connection and prints an "Exception ignored" traceback after lclock's one line."""
    client = client_class.__new__(client_class)
    try:
        client.__init__(address, timeout=timeout, set_as_default=False)
    except BaseException:
        client.status = "closed"  # so close(), and __del__ with it, has nothing to do
        with contextlib.suppress(Exception):  # AttributeError: it failed before its loop
            client._loop_runner.stop(timeout=1)
        raise
    return client


def after_handshake(exc: Exception, timeout: float) -> str:
    """Why a peer that sent a Dask handshake is still no scheduler to use, in one line."""
    if isinstance(exc, TimeoutError):
        return (f"it sent a Dask handshake, then no answer within {timeout:g} s (is it a "
                "Dask scheduler?)")  # fmt: skip
    if isinstance(exc, OSError):
        return first_line(exc)
    if isinstance(exc, (MemoryError, ValueError)):  # a size no scheduler sends: numpy refused
        return ("it sent a Dask handshake, then a message of an impossible size (is it a "
                "Dask scheduler of the same version?)")  # fmt: skip
    return (f"it sent a Dask handshake, then {type(exc).__name__}: {first_line(exc)} (is it a "
            "Dask scheduler of the same version?)")  # fmt: skip


def connect_timeout() -> float:
    """lclock's CONNECT_TIMEOUT, unless the user set Dask's own
    ``distributed.comm.timeouts.connect`` (its config file, or the environment variable
    DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT): then theirs."""
    import dask.config
    from dask.utils import parse_timedelta

    key = "distributed.comm.timeouts.connect"
    shipped = dask.config.get(key, config=dask.config.merge(*dask.config.defaults))
    mine = dask.config.get(key)
    return CONNECT_TIMEOUT if mine == shipped else float(parse_timedelta(mine, "seconds"))


def _probe(address: str, timeout: float) -> bool:
    """Read the scheduler's handshake on a plain socket first (see ``dask_probe``): only
    plain TCP can be read that way; other schemes go straight to the Client (False)."""
    from distributed.comm.addressing import parse_address, parse_host_port

    scheme, loc = parse_address(address)
    if scheme != "tcp":
        return False
    host, port = parse_host_port(loc)
    if not 0 < int(port) < 65536:  # the kernel takes 99999 as 34463, another port
        raise ProbeError(f"port {port} is not a TCP port (1 to 65535)")
    probe_scheduler(host, port, timeout)
    return True


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_workers(client: Any) -> None:
    """Every worker present must import the same lclock, or its trials would fail (or
    worse, differ); workers that join later are checked by their first trial."""
    from lclock import __version__

    versions = client.get_versions(packages=["lclock"])
    for addr, info in sorted((versions.get("workers") or {}).items()):
        theirs = ((info or {}).get("packages") or {}).get("lclock")
        if theirs is None:
            raise SettingsError(
                f"--cluster: the Dask worker {addr} cannot import lclock (install it there too)"
            )
        if theirs != __version__:
            raise SettingsError(
                f"--cluster: the Dask worker {addr} has lclock {theirs}, this is {__version__}"
            )


def workers(client: Any) -> int:
    return len(client.scheduler_info().get("workers") or {})


def run_on_cluster(client: Any, specs: list[TrialSpec], root: Path) -> Results:
    """Submit every trial; yield each as it comes back, its files already in ``root``."""
    from distributed import Event, as_completed

    token = secrets.token_hex(4)
    stop = Event(f"lclock-stop-{token}", client=client)
    by_key: dict[str, TrialSpec] = {}
    futures = []
    for spec in specs:
        key = f"lclock-{token}-{spec.experiment}-trial-{spec.index}"
        futures.append(client.submit(remote_trial, spec, stop.name, key=key, pure=False,
                                     retries=RETRIES))  # fmt: skip
        by_key[key] = spec
    finished = False
    try:
        for fut in as_completed(futures, loop=client.loop):
            spec = by_key[fut.key]
            try:
                outcome = fut.result()
            except Exception as exc:  # noqa: BLE001 - the trial's error, after the retries
                outcome = TrialOutcome("failed", error=describe_error(exc))
            if outcome.status == "completed" and outcome.files is not None:
                write_files(outcome.files, root / spec.folder)
                outcome.files = None
            fut.release()
            yield spec, outcome
        finished = True
    finally:
        if not finished:
            _stop_all(client, stop, futures)


def _stop_all(client: Any, stop: Any, futures: list[Any]) -> None:
    """Tell every task to stop, wait until each has (it kills its trial process), then
    cancel what is left: nothing of this experiment keeps running on the cluster."""
    from distributed import wait

    try:
        stop.set()
        pending = [f for f in futures if not f.done()]
        if pending:
            with contextlib.suppress(Exception):
                wait(pending, timeout=STOP_WAIT)
    finally:
        with contextlib.suppress(Exception):
            client.cancel(futures, force=True)


def describe_error(exc: BaseException) -> str:
    name = type(exc).__name__
    if name == "KilledWorker":
        return "every Dask worker that ran it died (KilledWorker); see the workers' logs"
    if isinstance(exc, ModuleNotFoundError):
        return f"the Dask worker cannot import {exc.name} (install the same lclock there)"
    return f"{name}: {exc}"


# -- on the worker ------------------------------------------------------------------------


def remote_trial(spec: TrialSpec, stop_name: str) -> TrialOutcome:
    """What a Dask task runs: the trial as a child process, killed if the experiment stops."""
    from distributed import Event

    stop = Event(stop_name)
    if stop.is_set():
        return TrialOutcome("interrupted", error="the experiment was stopped")
    with tempfile.TemporaryDirectory(prefix="lclock-trial-") as tmp:
        work = Path(tmp)
        (work / SPEC_FILE).write_bytes(pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL))
        with open(work / "stderr.txt", "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "lclock.experiment.trial", str(work)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            )  # fmt: skip
        try:
            while True:
                try:
                    code = proc.wait(timeout=STOP_POLL)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if stop.is_set():
                    return TrialOutcome("interrupted", error="the experiment was stopped")
        finally:
            if proc.poll() is None:
                proc.kill()  # the trial process starts no process of its own
                proc.wait()
        result = work / OUTCOME_FILE
        if code != 0 or not result.is_file():
            tail = (work / "stderr.txt").read_text(errors="replace").strip().splitlines()[-1:]
            raise RuntimeError(
                f"the trial process exited with status {code}" + (f": {tail[0]}" if tail else "")
            )
        outcome: TrialOutcome = pickle.loads(result.read_bytes())
        return outcome
