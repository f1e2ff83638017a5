"""Simulated trials on a real Dask cluster: a ``dask scheduler`` and two ``dask worker``
processes on loopback, started here in sessions of their own and killed in ``finally``."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import psutil
import pytest

from tests.conftest import kill_group, started, wait_for
from tests.tcp_helpers import free_ports
from tests.test_experiment_parallel import assert_same_results, experiment

pytestmark = pytest.mark.slow  # long real-process runs: once, on py311 (tox.ini)


def _distributed():  # type: ignore[no-untyped-def]
    """distributed, imported by the tests that use it: at the top of the module its import
    cost a second or more at every collection, also of the fast subset that skips them all."""
    return pytest.importorskip("distributed")


REPO = Path(__file__).resolve().parent.parent
ARGS = ["baseline", "--sim", "--trials", "3", "--duration", "30", "--seed", "21", "--quiet"]


def free_port() -> int:
    """A free port below the ephemeral range (see ``tcp_helpers.free_ports``)."""
    return free_ports(1)[0]


def trial_processes(scratch: Path) -> list[psutil.Process]:
    """Trial processes (``python -m lclock.experiment.trial WORK``) of this test's Dask
    workers: their WORK is under ``scratch``, the workers' TMPDIR (another test session's
    trials on the same machine are not this test's)."""
    out = []
    for p in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            argv = p.info["cmdline"] or []
            if "lclock.experiment.trial" in argv and argv[-1].startswith(str(scratch)):
                out.append(p)
    return out


class Cluster:
    def __init__(self, address: str, workers: dict[str, subprocess.Popen[bytes]],
                 scratch: Path) -> None:
        self.address = address
        self.workers = workers
        self.scratch = scratch

    def trials(self) -> list[psutil.Process]:
        return trial_processes(self.scratch)

    def client(self) -> object:
        return _distributed().Client(self.address, timeout=20, set_as_default=False)


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    distributed = _distributed()  # skips here, before any process, where it is missing
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # the workers' trials work in here
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    with contextlib.ExitStack() as stack:
        stack.enter_context(started(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", str(port), "--no-dashboard"], tmp_path))  # fmt: skip
        workers = {}
        for name in ("w1", "w2"):
            workers[name] = stack.enter_context(started(
                [sys.executable, "-m", "distributed.cli.dask_worker", address, "--name", name,
                 "--nthreads", "1", "--nworkers", "1", "--no-dashboard"], tmp_path))  # fmt: skip
        client = distributed.Client(address, timeout=60, set_as_default=False)
        try:
            client.wait_for_workers(2, timeout=90)
        finally:
            client.close()
        try:
            yield Cluster(address, workers, scratch)
        finally:
            for proc in workers.values():
                kill_group(proc)
            # a trial process ends by itself within a second of its worker's death
            assert wait_for(lambda: not trial_processes(scratch), 10), trial_processes(scratch)


def worker_address(client: object, name: str) -> str:
    info = client.scheduler_info()["workers"]  # type: ignore[attr-defined]
    return next(addr for addr, w in info.items() if w.get("name") == name)


def test_cluster_gives_the_same_bytes_as_this_host(tmp_path: Path, cluster: Cluster) -> None:
    local, remote = tmp_path / "local", tmp_path / "remote"
    r = experiment(*ARGS, "--jobs", "1", "--output", str(local))
    assert r.returncode == 0, r.stderr
    r = experiment(*ARGS, "--cluster", cluster.address, "--output", str(remote))
    assert r.returncode == 0, r.stderr
    assert_same_results(local, remote)
    meta = orjson.loads((remote / "experiment.json").read_bytes())
    assert meta["cluster"] == cluster.address and meta["jobs"] is None
    assert len(meta["timing"]) == 3 and all(t["host"] for t in meta["timing"].values())
    assert (remote / "baseline" / "trial-2" / "report.html").is_file()


def test_a_lost_workers_trial_is_retried(tmp_path: Path, cluster: Cluster) -> None:
    """Kill a worker (its whole process group, as a lost host) while it runs a trial: the
    scheduler runs that trial again on the other worker, and nothing is missing."""
    out = tmp_path / "exp"
    cmd = [sys.executable, "-m", "lclock", "experiment", "baseline", "--sim", "--trials", "6",
           "--duration", "3000", "--seed", "5", "--no-report", "--cluster", cluster.address,
           "--output", str(out)]  # fmt: skip
    client = cluster.client()
    try:
        with started(cmd, REPO, text=True) as proc:
            w1 = None

            def busy() -> bool:
                nonlocal w1
                w1 = worker_address(client, "w1")
                running = client.processing().get(w1, [])  # type: ignore[attr-defined]
                return bool(running) and bool(cluster.trials())

            assert wait_for(busy, 120, 0.05), "worker w1 never ran a trial"
            lost = list(client.processing()[w1])  # type: ignore[attr-defined,index]
            kill_group(cluster.workers["w1"])
            stdout, stderr = proc.communicate(timeout=240)
            assert proc.returncode == 0, stderr
    finally:
        client.close()  # type: ignore[attr-defined]
    assert lost and any(k.endswith(tuple(f"trial-{i}" for i in range(1, 7))) for k in lost)
    summary = orjson.loads((out / "summary.json").read_bytes())
    runs = summary["experiments"][0]["runs"]
    assert [r["status"] for r in runs] == ["completed"] * 6
    for k in range(1, 7):
        assert (out / "baseline" / f"trial-{k}" / "run.json").is_file()
    # the retried trials ran on the worker that is left
    meta = orjson.loads((out / "experiment.json").read_bytes())
    assert len(meta["timing"]) == 6


def test_ctrl_c_stops_every_remote_trial(tmp_path: Path, cluster: Cluster) -> None:
    out = tmp_path / "exp"
    cmd = [sys.executable, "-m", "lclock", "experiment", "baseline", "--sim", "--trials", "8",
           "--duration", "100000", "--seed", "5", "--no-report", "--cluster", cluster.address,
           "--output", str(out)]  # fmt: skip
    with started(cmd, REPO, text=True) as proc:
        assert wait_for(lambda: len(cluster.trials()) == 2, 120, 0.1), "trials never started"
        os.killpg(proc.pid, signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "partial results" in err and "Traceback" not in err
    # nothing of the experiment runs on the cluster any more
    assert wait_for(lambda: not cluster.trials(), 5), cluster.trials()
    client = cluster.client()
    try:
        assert wait_for(lambda: not any(client.processing().values()), 10)  # type: ignore[attr-defined]
        assert not any(client.processing().values())  # type: ignore[attr-defined]
    finally:
        client.close()  # type: ignore[attr-defined]
    summary = orjson.loads((out / "summary.json").read_bytes())
    assert summary["status"] == "interrupted"
    assert {r["status"] for r in summary["experiments"][0]["runs"]} == {"interrupted"}


def test_cluster_errors_are_one_line(tmp_path: Path) -> None:
    _distributed()
    out = tmp_path / "exp"
    r = experiment("baseline", "--sim", "--cluster", f"tcp://127.0.0.1:{free_port()}",
                   "--output", str(out))
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "--cluster: cannot reach the Dask scheduler" in r.stderr and not out.exists()
    r = experiment("baseline", "--cluster", "tcp://127.0.0.1:1", "--output", str(out))
    assert r.returncode == 2 and "--cluster: only simulated trials" in r.stderr
    r = experiment("baseline", "--sim", "--cluster", "127.0.0.1", "--output", str(out))
    assert r.returncode == 2 and "tcp://HOST:PORT" in r.stderr and not out.exists()
