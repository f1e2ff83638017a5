"""Snapshots in real runs (SPEC 12): worker processes over socket pairs and TCP, markers as
frames of their own kind, then ``lclock check`` on the folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import launcher_cmd, run_dirs, started

from lclock.core.snapshot import Marker
from lclock.transport.framing import FrameCodec, FrameError, FrameReader, is_marker

pytestmark = pytest.mark.timeout(180)


def run(workdir: Path, *args: str) -> tuple[int, str, Path, dict]:
    with started(launcher_cmd("--output", "out", "--no-report", "--quiet", *args), workdir) as p:
        _o, err = p.communicate(timeout=120)
    (rd,) = run_dirs(workdir / "out")
    return p.returncode, err.decode(), rd, json.loads((rd / "run.json").read_text())


def check(rd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lclock", "check", str(rd), *args],
                          capture_output=True, text=True, timeout=120)


def snapshot_lines(rd: Path) -> list[dict]:
    return [json.loads(x) for p in sorted(rd.glob("machine-*.jsonl"))
            for x in p.read_text().splitlines() if '"event":"snapshot"' in x]


# -- the frames -------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, b"k" * 32])
def test_a_marker_frame_travels_between_messages_in_order(key: bytes | None) -> None:
    from lclock.core.model import Message

    send, recv = FrameCodec(3, True, key), FrameCodec(3, True, key)
    m1, m2 = Message(2, 5, (0, 5, 0), send_tick=5), Message(2, 6, (0, 6, 0), send_tick=6)
    data = send.encode(m1, 1.0) + send.encode_marker(7, 0.5) + send.encode(m2, 2.0)
    assert is_marker(send.encode_marker(1)) and not is_marker(send.encode(m1, 1.0))
    reader = FrameReader(recv, 2)
    got = reader.feed(data[:40]) + reader.feed(data[40:])
    assert [x[0] for x in got] == [m1, Marker(7, 2), m2]
    assert got[1][2] == 0.5


def test_a_marker_with_a_bad_snapshot_or_a_bad_tag_is_refused() -> None:
    bad = FrameCodec(3, True).encode_marker(0)
    with pytest.raises(FrameError, match="snapshot 0 out of range"):
        FrameReader(FrameCodec(3, True), 1).feed(bad)
    forged = FrameCodec(3, True, b"a" * 32).encode_marker(1)
    with pytest.raises(FrameError, match="authentication tag"):
        FrameReader(FrameCodec(3, True, b"b" * 32), 1).feed(forged)


# -- real runs --------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["socketpair", "tcp"])
def test_a_real_run_completes_its_snapshots_and_check_verifies_them(
        workdir: Path, transport: str) -> None:
    code, err, rd, meta = run(workdir, "--duration", "3", "--rates", "10,20,30",
                              "--snapshot", "1@0.5;3@50%", "--transport", transport)
    assert code == 0, err
    assert [(s["id"], s["completed"]) for s in meta["snapshots"]] == [(1, True), (2, True)]
    balance = meta["messages"]  # markers are not messages: the balance stays exact
    assert balance["sent"] == balance["taken"] and balance["lost"] == 0, balance
    lines = snapshot_lines(rd)
    assert sorted((x["id"], x["machine"]) for x in lines) == [
        (i, m) for i in (1, 2) for m in (1, 2, 3)]
    result = check(rd)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in result.stdout


def test_latency_and_loss_in_a_real_run(workdir: Path) -> None:
    """FIFO links with latency and loss: every completed snapshot checks out; one whose
    marker was lost says so in run.json."""
    code, err, rd, meta = run(workdir, "--duration", "3", "--rates", "20,20,20", "--seed", "5",
                              "--latency", "40", "--latency-dist", "uniform", "--loss", "0.2",
                              "--snapshot", "1@0.5;2@1;3@1.5;1@2")
    assert code == 0, err
    for s in meta["snapshots"]:
        assert s["completed"] or s["markers_lost"], s
    result = check(rd)
    assert result.returncode == 0 and "warning" not in result.stdout, result.stdout


def test_a_run_with_snapshots_reads_everywhere(workdir: Path) -> None:
    """Every analysis command takes a folder with snapshot lines."""
    code, err, rd, _meta = run(workdir, "--duration", "2", "--rates", "10,10,10",
                               "--snapshot", "2@0.5")
    assert code == 0, err
    out = workdir / "exported"
    for args in (["analyze", str(rd)], ["report", str(rd)], ["trace", str(rd), "1:t1"],
                 ["hb", str(rd), "1:t1", "2:t2"],
                 ["export", str(rd), "--format", "csv", "--output", str(out)],
                 ["export", str(rd), "--format", "shiviz", "--output", str(out)],
                 ["view", str(rd), "--output", str(workdir / "v.html")],
                 ["compare", str(rd), str(rd)]):
        r = subprocess.run([sys.executable, "-m", "lclock", *args], capture_output=True,
                           text=True, timeout=120, cwd=workdir)
        assert r.returncode in (0, 1), (args, r.stderr)
        assert "Traceback" not in r.stderr, (args, r.stderr)


@pytest.mark.slow
def test_vms_take_a_snapshot_that_merge_records_and_check_verifies(tmp_path: Path) -> None:
    """``lclock vm``: the snapshots are a plan every vm must share; each vm's folder says its
    part, the merged folder the whole, and check verifies it."""
    import time
    from contextlib import ExitStack

    from tcp_helpers import free_ports, lclock_cmd, write_cluster

    cfg = write_cluster(tmp_path / "cluster.toml", free_ports(3), rates=[10, 20, 20], duration=2)
    cfg.write_text('snapshots = "1@0.5;3@1"\n' + cfg.read_text())
    outs = [tmp_path / f"host{i}" for i in (1, 2, 3)]
    with ExitStack() as stack:
        procs = {}
        for i in (3, 2, 1):
            procs[i] = stack.enter_context(started(lclock_cmd(
                "vm", "--machine-id", str(i), "--settings", str(cfg), "--output",
                str(outs[i - 1]), "--wait", "30", "--no-report"), tmp_path))
            time.sleep(0.2)
        for p in procs.values():
            _o, err = p.communicate(timeout=60)
            assert p.returncode == 0, err.decode()
    part = json.loads((run_dirs(outs[0])[-1] / "run.json").read_text())
    assert part["snapshots"][0]["completed"] is False, "one vm's folder knows only its part"
    merged = subprocess.run(lclock_cmd("merge", *map(str, outs), "--output", str(tmp_path / "all")),
                            capture_output=True, text=True, timeout=60)
    assert merged.returncode == 0, merged.stderr
    (rd,) = run_dirs(tmp_path / "all")
    meta = json.loads((rd / "run.json").read_text())
    assert [(s["id"], s["completed"]) for s in meta["snapshots"]] == [(1, True), (2, True)]
    result = check(rd)
    assert result.returncode == 0 and "warning" not in result.stdout, result.stdout


def test_reordering_in_a_real_run_is_a_warning_not_a_failure(workdir: Path) -> None:
    code, err, rd, meta = run(workdir, "--duration", "3", "--rates", "20,20,20", "--seed", "2",
                              "--reorder", "--latency", "200", "--latency-dist", "exponential",
                              "--snapshot", "1@0.5;2@1;3@1.5;1@2")
    assert code == 0, err
    assert all(s["completed"] for s in meta["snapshots"])
    result = check(rd)
    assert result.returncode == 0, result.stdout
    for line in result.stdout.splitlines():
        if "snapshot" in line and "crossed the marker" in line:
            assert line.endswith("[warning]"), line
