"""Several real hosts on one computer: three network namespaces on a bridge, one vm in each.

Each namespace has its own network stack (its own loopback, address and routing), so the
three vms really talk across veth links and a bridge, as separate hosts would. Needs root
and ``ip``; skipped with the reason otherwise. The namespaces are deleted in a ``finally``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from conftest import ROOT, run_dirs, started
from runverify import verify
from tcp_helpers import (
    lclock_check,
    lclock_cmd,
    read_log,
    wait_for_run_line,
    write_cluster,
)

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def ip(*args: str, ns: str | None = None) -> None:
    cmd = ["ip", *args] if ns is None else ["ip", "netns", "exec", ns, "ip", *args]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=20)


@contextmanager
def three_hosts() -> Iterator[tuple[list[str], list[str]]]:
    """Namespaces h1..h3 with addresses 10.213.<k>.1..3 on a bridge in a fourth (hub) one."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    if shutil.which("ip") is None:
        pytest.skip("the ip command (iproute2) is not installed")
    tag = secrets.token_hex(2)
    hub = f"lclock-{tag}-hub"
    names = [f"lclock-{tag}-h{i}" for i in (1, 2, 3)]
    net = 100 + secrets.randbelow(150)
    addrs = [f"10.213.{net}.{i}" for i in (1, 2, 3)]
    links = [f"lcv{tag}{i}" for i in (1, 2, 3)]
    try:
        try:
            ip("netns", "add", hub)
        except subprocess.CalledProcessError as exc:
            pytest.skip(f"cannot create a network namespace here: {exc.stderr.strip()}")
        ip("link", "add", "br0", "type", "bridge", ns=hub)
        ip("link", "set", "br0", "up", ns=hub)
        for ns, addr, link in zip(names, addrs, links):
            ip("netns", "add", ns)
            ip("link", "add", link, "type", "veth", "peer", "name", link + "b")
            ip("link", "set", link, "netns", ns)
            ip("link", "set", link + "b", "netns", hub)
            ip("link", "set", link + "b", "master", "br0", ns=hub)
            ip("link", "set", link + "b", "up", ns=hub)
            ip("link", "set", "lo", "up", ns=ns)
            ip("addr", "add", f"{addr}/24", "dev", link, ns=ns)
            ip("link", "set", link, "up", ns=ns)
        yield names, addrs
    finally:
        for ns in [*names, hub]:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
        for link in links:  # only left if a namespace step failed half-way
            subprocess.run(["ip", "link", "del", link], capture_output=True, timeout=20)


def start_vms(stack: ExitStack, names: list[str], cfg: Path, outs: list[Path],
              cwd: Path) -> list[subprocess.Popen]:
    """One ``lclock vm`` per namespace, each in its own session, killed on the way out."""
    procs = []
    for i, ns in enumerate(names, 1):
        cmd = ["ip", "netns", "exec", ns, sys.executable, "-m", "lclock", "vm",
               "--machine-id", str(i), "--settings", str(cfg),
               "--output", str(outs[i - 1]), "--wait", "30"]
        procs.append(stack.enter_context(started(cmd, cwd)))
    return procs


def test_three_vms_in_three_namespaces(tmp_path: Path) -> None:
    with three_hosts() as (names, addrs):
        cfg = write_cluster(tmp_path / "cluster.toml", [7401, 7402, 7403], hosts=addrs,
                            rates=[20, 50, 100], duration=2)
        outs = [tmp_path / f"host{i}" for i in (1, 2, 3)]
        with ExitStack() as stack:
            procs = start_vms(stack, names, cfg, outs, tmp_path)
            results = []
            for p in procs:
                _, err = p.communicate(timeout=60)
                results.append((p.returncode, err.decode()))
        for code, err in results:
            assert code == 0, err
        # each vm saw its peers at their namespace addresses, not on a shared loopback
        assert f"connected to machine 1 ({addrs[0]}:7401)" in results[1][1]
        merged = subprocess.run(
            lclock_cmd("merge", *map(str, outs), "--output", str(tmp_path / "all")),
            capture_output=True, text=True, timeout=60, cwd=ROOT,
        )
        assert merged.returncode == 0, merged.stderr
        rd = run_dirs(tmp_path / "all")[-1]
        meta = json.loads((rd / "run.json").read_text())
        assert meta["status"] == "completed"
        assert [m["host"] for m in meta["machines"]] == [f"{a}:{p}" for a, p in zip(addrs, (7401, 7402, 7403))]
        assert verify(rd) == []
        code, text = lclock_check(rd)
        assert code == 0, text


def test_a_cut_link_is_noticed_and_every_vm_stops(tmp_path: Path) -> None:
    """Host 2's link goes down mid-run: no FIN, no RST, just silence. TCP's user timeout
    turns that into an error within seconds; every vm logs peer_lost and stops gracefully,
    with no hang and no reconnect loop."""
    with three_hosts() as (names, addrs):
        cfg = write_cluster(tmp_path / "cluster.toml", [7401, 7402, 7403], hosts=addrs,
                            rates=[20, 20, 20], duration=60)
        outs = [tmp_path / f"host{i}" for i in (1, 2, 3)]
        with ExitStack() as stack:
            procs = start_vms(stack, names, cfg, outs, tmp_path)
            assert wait_for_run_line(outs[1], "connected", 30, machine=2) is not None
            time.sleep(1.0)
            ip("link", "set", f"lcv{names[1].split('-')[1]}2", "down", ns=names[1])
            for p in procs:  # the timeout is the hang check; the time it takes is TCP's
                p.communicate(timeout=30)
        assert [p.returncode for p in procs] == [1, 1, 1]
        errors = []
        for i, out in enumerate(outs, 1):
            lines = read_log(run_dirs(out)[-1] / f"machine-{i}.jsonl")
            assert lines[-1]["event"] == "stop" and lines[-1]["reason"] == "peer_lost"
            errors += [x["error"] for x in lines if x["event"] == "peer_lost"]
        assert any("timed out" in e for e in errors), errors
