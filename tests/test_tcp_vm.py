"""``lclock vm``: one machine per terminal, then ``lclock merge`` and ``lclock check``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from conftest import ROOT, alive, run_dirs, started
from runverify import verify
from tcp_helpers import (
    free_ports,
    lclock_check,
    lclock_cmd,
    read_log,
    wait_for_run_line,
    write_cluster,
)

pytestmark = pytest.mark.slow  # long real-process runs: once, on py311 (tox.ini)


def vm(cfg: Path, i: int, out: Path, *extra: str) -> list[str]:
    return lclock_cmd("vm", "--machine-id", str(i), "--settings", str(cfg), "--output", str(out),
                      "--wait", "30", *extra)


def run_cluster(tmp: Path, cfg: Path, outs: list[Path], timeout: float = 40) -> list[tuple[int, str]]:
    """Start every vm (machine 3 first: the others must wait for it), wait for them all."""
    with ExitStack() as stack:
        procs = {}
        for i in sorted(range(1, len(outs) + 1), reverse=True):
            procs[i] = stack.enter_context(started(vm(cfg, i, outs[i - 1]), tmp))
            time.sleep(0.2)
        results = {}
        for i, p in procs.items():
            _, err = p.communicate(timeout=timeout)
            results[i] = (p.returncode, err.decode())
    return [results[i] for i in sorted(results)]


def test_three_vms_merge_and_check(tmp_path: Path) -> None:
    cfg = write_cluster(tmp_path / "cluster.toml", free_ports(3), rates=[20, 50, 100], duration=2)
    outs = [tmp_path / f"host{i}" for i in (1, 2, 3)]
    results = run_cluster(tmp_path, cfg, outs)
    for code, err in results:
        assert code == 0, err
    assert "waiting for machine" in results[2][1] or "connected to machine" in results[2][1]
    parts = [run_dirs(o)[-1] for o in outs]
    assert len({p.name for p in parts}) == 1, "every vm writes the same run id"
    for i, part in enumerate(parts, 1):
        assert [p.name for p in part.glob("machine-*.jsonl")] == [f"machine-{i}.jsonl"]
    merged = subprocess.run(lclock_cmd("merge", *map(str, outs), "--output", str(tmp_path / "all")),
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert merged.returncode == 0, merged.stderr
    rd = tmp_path / "all" / parts[0].name
    meta = json.loads((rd / "run.json").read_text())
    assert meta["status"] == "completed" and meta["exit_code"] == 0
    assert [m["ticks"] for m in meta["machines"]] == [40, 100, 200]
    # every run has its message balance (issue 18: a vm's run.json had messages: null)
    sent = sum(sum(m["sent_to"].values()) for m in meta["machines"])
    assert meta["messages"]["sent"] == meta["messages"]["taken"] == sent > 0
    assert meta["messages"]["lost"] == 0
    t0s = {read_log(rd / f"machine-{i}.jsonl")[1]["t0"] for i in (1, 2, 3)}
    assert len(t0s) == 1, "the machines agree on one start instant"
    assert verify(rd) == []
    code, text = lclock_check(rd)
    assert code == 0, text
    analyzed = subprocess.run(lclock_cmd("analyze", str(rd)), capture_output=True, text=True,
                              timeout=120, cwd=ROOT)
    assert analyzed.returncode == 0, analyzed.stderr
    for part in [rd, *parts]:
        assert "test secret" not in (part / "run.json").read_text(), "the secret is never written"


def test_vms_sharing_one_folder_make_a_complete_run_folder(tmp_path: Path) -> None:
    cfg = write_cluster(tmp_path / "cluster.toml", free_ports(3), rates=[10, 10, 10], duration=1.5)
    out = tmp_path / "out"
    for code, err in run_cluster(tmp_path, cfg, [out, out, out]):
        assert code == 0, err
    rd = run_dirs(out)[-1]
    meta = json.loads((rd / "run.json").read_text())
    assert meta["status"] == "completed" and len(meta["machines"]) == 3
    assert "partial" not in meta
    assert meta["messages"]["lost"] == 0 and meta["messages"]["sent"] > 0
    assert "unbalanced_links" not in meta["messages"]
    assert verify(rd) == []


def test_killing_one_vm_stops_the_others_gracefully(tmp_path: Path) -> None:
    cfg = write_cluster(tmp_path / "cluster.toml", free_ports(3), rates=[20, 30, 50], duration=10)
    out = tmp_path / "out"
    with ExitStack() as stack:
        procs = [stack.enter_context(started(vm(cfg, i, out), tmp_path)) for i in (1, 2, 3)]
        rd = wait_for_run_line(out, "connected", 20, machine=2)
        assert rd is not None
        time.sleep(0.5)
        os.kill(procs[1].pid, signal.SIGKILL)
        codes = []
        for p in (procs[0], procs[2]):
            p.communicate(timeout=10)  # a hang fails here; they stopped early: peer_lost below
            codes.append(p.returncode)
    assert codes == [1, 1]
    for mid in (1, 3):
        lines = read_log(rd / f"machine-{mid}.jsonl")
        assert any(x["event"] == "peer_lost" and x["level"] == "warning" for x in lines)
        assert lines[-1]["event"] == "stop" and lines[-1]["reason"] == "peer_lost"
        assert lines[-1]["ticks"] < (20 if mid == 1 else 50) * 10
    meta = json.loads((rd / "run.json").read_text())
    assert meta["status"] == "failed" and "machine 2 ended without a report" in meta["reason"]
    # the two survivors account for every message they sent each other
    errs = [e for e in verify(rd, graceful=False) if "machine-2" not in e]
    assert errs == []
    assert alive([p.pid for p in procs]) == []
    # no reconnect loop: the ports are free again
    for port in json.loads(json.dumps(meta["settings"]["tcp_ports"])):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))


def test_ctrl_c_in_one_terminal_stops_that_vm_and_its_peers(tmp_path: Path) -> None:
    cfg = write_cluster(tmp_path / "cluster.toml", free_ports(2), rates=[20, 20], duration=10)
    out = tmp_path / "out"
    with ExitStack() as stack:
        procs = [stack.enter_context(started(vm(cfg, i, out), tmp_path)) for i in (1, 2)]
        rd = wait_for_run_line(out, "connected", 20)
        assert rd is not None
        time.sleep(0.3)
        os.killpg(procs[0].pid, signal.SIGINT)
        for p in procs:
            p.communicate(timeout=10)
    assert [p.returncode for p in procs] == [130, 1]
    assert read_log(rd / "machine-1.jsonl")[-1]["reason"] == "sigint"
    assert read_log(rd / "machine-2.jsonl")[-1]["reason"] == "peer_lost"
    assert verify(rd) == []  # both stopped gracefully: every message accounted for


@pytest.mark.parametrize(
    ("secret", "extra", "want"),
    [
        (None, [], "tcp.secret: no shared secret"),
        ("short", [], "at least 8 characters"),
        ("long enough secret", ["--machine-id", "4"], "--machine-id: must be from 1 to 3"),
    ],
)
def test_vm_bad_settings_exit_2(tmp_path: Path, secret: str | None, extra: list[str], want: str) -> None:
    cfg = write_cluster(tmp_path / "cluster.toml", free_ports(3), secret=secret)
    cmd = vm(cfg, 1, tmp_path / "out", *extra)
    env = {k: v for k, v in os.environ.items() if k != "LCLOCK_SECRET"}
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=tmp_path, env=env)
    assert p.returncode == 2
    assert want in p.stderr and p.stderr.count("\n") == 1, p.stderr
    assert not (tmp_path / "out").exists()


def test_secret_from_the_environment_and_port_in_use(tmp_path: Path) -> None:
    ports = free_ports(2)
    cfg = write_cluster(tmp_path / "cluster.toml", ports, secret=None)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", ports[0]))
        busy.listen()
        env = dict(os.environ, LCLOCK_SECRET="from the environment")
        p = subprocess.run(vm(cfg, 1, tmp_path / "out"), capture_output=True, text=True,
                           timeout=30, cwd=tmp_path, env=env)
    assert p.returncode == 2
    assert f"port {ports[0]} on 127.0.0.1 is in use" in p.stderr and "tcp.ports" in p.stderr


def test_a_vm_whose_peers_never_come_gives_up(tmp_path: Path) -> None:
    cfg = write_cluster(tmp_path / "cluster.toml", free_ports(2))
    cmd = lclock_cmd("vm", "--machine-id", "2", "--settings", str(cfg), "--wait", "1.5")
    p = subprocess.run(cmd, capture_output=True, text=True,
                       timeout=30, cwd=tmp_path, start_new_session=True)
    assert p.returncode == 1
    assert "waiting for machine 1 at 127.0.0.1:" in p.stderr
    assert "gave up" in p.stderr


def test_merge_refuses_folders_of_different_runs_or_missing_machines(tmp_path: Path) -> None:
    for name, run_id in (("a", "20260101T000000Z-aaaa"), ("b", "20260101T000000Z-bbbb")):
        d = tmp_path / name / run_id
        d.mkdir(parents=True)
        (d / "run.json").write_text(json.dumps({
            "run_id": run_id, "settings": {"machines": 2},
            "machines": [{"id": 1 if name == "a" else 2, "status": "completed"}],
        }))
        (d / f"machine-{1 if name == 'a' else 2}.jsonl").write_text("")
    p = subprocess.run(lclock_cmd("merge", str(tmp_path / "a"), str(tmp_path / "b"), "--output",
                                  str(tmp_path / "m")), capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 2 and "different runs" in p.stderr
    p = subprocess.run(lclock_cmd("merge", str(tmp_path / "a"), "--output", str(tmp_path / "m")),
                       capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 2 and "no log of machine 2" in p.stderr
    assert not (tmp_path / "m").exists()


def test_ctrl_c_while_waiting_for_peers_creates_nothing(tmp_path: Path) -> None:
    cfg = write_cluster(tmp_path / "cluster.toml", free_ports(2))
    with started(vm(cfg, 2, tmp_path / "out"), tmp_path) as p:
        time.sleep(1.0)
        os.killpg(p.pid, signal.SIGINT)
        _, err = p.communicate(timeout=10)
    assert p.returncode == 130, err.decode()
    assert "stopped before the start" in err.decode() and "Traceback" not in err.decode()
    assert not (tmp_path / "out").exists()


def test_sigterm_stops_a_running_vm_gracefully(tmp_path: Path) -> None:
    cfg = write_cluster(tmp_path / "cluster.toml", free_ports(2), rates=[20, 20], duration=10)
    out = tmp_path / "out"
    with ExitStack() as stack:
        procs = [stack.enter_context(started(vm(cfg, i, out), tmp_path)) for i in (1, 2)]
        rd = wait_for_run_line(out, "connected", 20, machine=2)
        assert rd is not None
        time.sleep(0.3)
        procs[1].send_signal(signal.SIGTERM)
        for p in procs:
            p.communicate(timeout=10)
    assert [p.returncode for p in procs] == [1, 143]
    assert read_log(rd / "machine-2.jsonl")[-1]["reason"] == "sigterm"
    meta = json.loads((rd / "run.json").read_text())
    assert meta["status"] == "interrupted" and meta["reason"] == "machine 2: sigterm"
    assert {m["id"]: m["status"] for m in meta["machines"]} == {1: "failed", 2: "interrupted"}
    assert verify(rd) == []


def _with_faults(cfg: Path, text: str) -> Path:
    cfg.write_text(cfg.read_text() + "\n" + text + "\n")
    return cfg


def test_a_planned_crash_ends_that_vm_and_the_run_completes(tmp_path: Path) -> None:
    """No launcher kills a vm: at its planned crash the vm records itself crashed and ends
    (its connections close); the others go on to the end, and check agrees."""
    cfg = _with_faults(write_cluster(tmp_path / "cluster.toml", free_ports(3), rates=[20, 20, 20],
                                     duration=3), "[faults]\ncrashes = \"3@1.5\"")
    out = tmp_path / "out"
    results = run_cluster(tmp_path, cfg, [out, out, out])
    assert [c for c, _e in results] == [0, 0, 0], results
    rd = run_dirs(out)[-1]
    meta = json.loads((rd / "run.json").read_text())
    assert meta["status"] == "completed", meta["reason"]
    m3 = meta["machines"][2]
    assert (m3["status"], m3["reason"]) == ("crashed", "crashed") and m3["crashed_at"] > 1.4
    # It halted at its planned instant (1.5 s, 30 ticks at 20/s), not later: counted in
    # ticks, since the instant it noticed is a timing of the host.
    assert 0 < m3["ticks"] <= 30, m3
    assert meta["messages"]["lost"] == 0 and "lost_in_crash" in meta["messages"]
    assert read_log(rd / "machine-3.jsonl")[-1]["event"] != "stop"
    code, text = lclock_check(rd)
    assert code == 0, text


def test_a_vm_stopped_from_outside_makes_its_peers_fail_not_hang(tmp_path: Path) -> None:
    """vm 3 is stopped (SIGSTOP) mid-run: the others cannot drain it, so they end after the
    drain timeout and record a failure naming it, instead of calling the run complete."""
    cfg = write_cluster(tmp_path / "cluster.toml", free_ports(3), rates=[20, 20, 20], duration=2)
    out = tmp_path / "out"
    with ExitStack() as stack:
        procs = [stack.enter_context(started(vm(cfg, i, out, "--no-report"), tmp_path))
                 for i in (1, 2, 3)]
        try:
            rd = wait_for_run_line(out, "connected", 20, machine=3)
            assert rd is not None
            os.kill(procs[2].pid, signal.SIGSTOP)
            for p in procs[:2]:
                p.communicate(timeout=40)
        finally:
            os.kill(procs[2].pid, signal.SIGCONT)
        procs[2].communicate(timeout=20)
    assert [p.returncode for p in procs[:2]] == [1, 1]
    meta = json.loads((rd / "run.json").read_text())
    assert meta["status"] == "failed"
    for m in meta["machines"][:2]:
        assert "machine 3 could not be drained" in m["reason"], m


def test_vms_must_plan_the_same_faults_and_clocks(tmp_path: Path) -> None:
    ports = free_ports(2)
    same = write_cluster(tmp_path / "a.toml", ports, rates=[10, 10], duration=1)
    other = _with_faults(write_cluster(tmp_path / "b.toml", ports, rates=[10, 10], duration=1),
                         "[faults]\nloss = 0.2")
    out = tmp_path / "out"
    with started(vm(same, 1, out), tmp_path) as p1, started(vm(other, 2, out), tmp_path) as p2:
        _o, err2 = p2.communicate(timeout=40)
        p1.communicate(timeout=40)
    assert p2.returncode == 2
    assert b"faults and clocks settings differ" in err2
