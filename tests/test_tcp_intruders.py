"""Only peers of the run get in: every kind of intruder is logged as a warning and dropped,
and the run goes on and stays correct.

One launcher run serves all the kinds (they connect at the same time, during the run, to
machine 1's port); each kind then has its own test that finds its warning by the address it
connected from. A second test does the same during set-up, against a ``vm`` that is still
waiting for its peers.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from conftest import alive, launcher_cmd, run_dirs, started
from runverify import verify
from tcp_helpers import (
    INTRUDERS,
    free_ports,
    lclock_check,
    lclock_cmd,
    read_log,
    send_intruders,
    wait_for_run_line,
    write_cluster,
)

pytestmark = pytest.mark.slow  # long real-process runs: once, on py311 (tox.ini)

KINDS = sorted(INTRUDERS)


@pytest.fixture(scope="module")
def attacked_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 5 s TCP run whose machine 1 receives every kind of intruder once it is running.

    The slowest intruders are dropped at their 2 s handshake deadline, well before the end.
    """
    work = tmp_path_factory.mktemp("intruders")
    ports = free_ports(3)
    write_cluster(work / "settings.toml", ports, secret=None, rates=[20, 30, 50], duration=5)
    with started(launcher_cmd("--output", "out", "--no-report", "--transport", "tcp"), work) as p:
        if wait_for_run_line(work / "out", "connected", 20) is None:
            pytest.fail("the run did not start")
        sources = send_intruders("127.0.0.1", ports[0], KINDS)
        out, err = p.communicate(timeout=30)
        code = p.returncode
    rd = run_dirs(work / "out")[-1]
    return {"code": code, "err": err.decode(), "rd": rd, "sources": sources,
            "log": read_log(rd / "machine-1.jsonl")}


@pytest.mark.parametrize("kind", KINDS)
def test_intruder_is_logged_and_dropped(attacked_run: dict, kind: str) -> None:
    src = attacked_run["sources"][kind]
    lines = [x for x in attacked_run["log"] if x["event"] == "intruder_rejected" and x["peer"] == src]
    assert len(lines) == 1, f"{kind}: expected one warning for {src}"
    assert lines[0]["level"] == "warning"
    assert INTRUDERS[kind][1] in lines[0]["reason"], lines[0]


def test_the_attacked_run_completes_correctly(attacked_run: dict) -> None:
    assert attacked_run["code"] == 0, attacked_run["err"]
    rd: Path = attacked_run["rd"]
    meta = json.loads((rd / "run.json").read_text())
    assert meta["status"] == "completed"
    assert [m["ticks"] for m in meta["machines"]] == [100, 150, 250]
    assert verify(rd) == []
    code, text = lclock_check(rd)
    assert code == 0, text
    # no model message ever came from an intruder: every receive matches a peer's send
    stop = attacked_run["log"][-1]
    assert stop["event"] == "stop" and stop["reason"] == "duration"
    assert alive([m["pid"] for m in meta["machines"]]) == []


def test_intruders_during_setup_are_refused_and_the_cluster_still_forms(tmp_path: Path) -> None:
    """vm 1 waits for its peers; intruders come first; then the real peers join."""
    ports = free_ports(2)
    cfg = write_cluster(tmp_path / "cluster.toml", ports, rates=[20, 20], duration=1.5)

    def vm(i: int) -> list[str]:
        return lclock_cmd("vm", "--machine-id", str(i), "--settings", str(cfg),
                          "--output", str(tmp_path / "out"), "--wait", "30")

    with started(vm(1), tmp_path) as p1:
        end = time.monotonic() + 20
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", ports[0]), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        sources = send_intruders("127.0.0.1", ports[0], ["wrong_secret", "garbage", "silent"])
        with started(vm(2), tmp_path) as p2:
            _, err2 = p2.communicate(timeout=30)
            _, err1 = p1.communicate(timeout=30)
    assert p1.returncode == 0, err1.decode()
    assert p2.returncode == 0, err2.decode()
    rd = run_dirs(tmp_path / "out")[-1]
    lines = read_log(rd / "machine-1.jsonl")
    rejected = {x["peer"]: x for x in lines if x["event"] == "intruder_rejected"}
    # the probe connection above is one more stranger (it closed without a word)
    for kind in ("wrong_secret", "garbage", "silent"):
        x = rejected[sources[kind]]
        assert x["level"] == "warning" and x["during"] == "setup"
        assert INTRUDERS[kind][1] in x["reason"]
    assert "warning: intruder_rejected" in err1.decode()
    assert verify(rd) == []


def run_with_silent_strangers(tmp_path: Path, duration: float, after: float,
                              count: int) -> tuple[Path, set[int]]:
    """A TCP run of 2 machines; ``after`` s into it, ``count`` connections to machine 1 that
    never say a word, held open to the end. The run folder and the strangers' ports."""
    ports = free_ports(2)
    write_cluster(tmp_path / "settings.toml", ports, secret=None, rates=[20, 20],
                  duration=duration)
    held: list[socket.socket] = []
    try:
        with started(launcher_cmd("--output", "out", "--no-report", "--transport", "tcp"),
                     tmp_path) as p:
            if wait_for_run_line(tmp_path / "out", "connected", 20) is None:
                pytest.fail("the run did not start")
            time.sleep(after)
            for _ in range(count):
                held.append(socket.create_connection(("127.0.0.1", ports[0]), timeout=5))
            mine = {s.getsockname()[1] for s in held}
            _out, err = p.communicate(timeout=30)
    finally:
        for s in held:
            s.close()
    assert p.returncode == 0, err.decode()
    return run_dirs(tmp_path / "out")[-1], mine


def test_a_flood_of_strangers_is_counted_not_logged_line_by_line(tmp_path: Path) -> None:
    """60 connections that never say a word, held open: the oldest waiting ones are crowded
    out by the newer, the rest time out; the first 20 warnings are logged one by one and the
    others counted (``repeated``), so every stranger is accounted for in a few lines."""
    rd, _ports = run_with_silent_strangers(tmp_path, duration=5, after=0.0, count=60)
    lines = [x for x in read_log(rd / "machine-1.jsonl") if x["event"] == "intruder_rejected"]
    single = [x for x in lines if "repeated" not in x]
    counted = [x for x in lines if "repeated" in x]
    assert len(single) == 20 and counted, lines
    assert len(single) + sum(x["repeated"] for x in counted) == 60
    assert any("crowded out" in x["reason"] for x in single)
    assert verify(rd) == []


def test_strangers_still_waiting_at_the_end_are_named_before_the_stop_line(tmp_path: Path) -> None:
    """Silent connections made a second before the end: their handshake time (2 s) has not
    run out when the run stops, and each still gets its line, before the stop line."""
    rd, mine = run_with_silent_strangers(tmp_path, duration=4, after=3.0, count=3)
    lines = read_log(rd / "machine-1.jsonl")
    turned = [x for x in lines if x["event"] == "intruder_rejected"
              and int(x["peer"].rsplit(":", 1)[1]) in mine]
    assert len(turned) == 3, lines
    assert all(x["reason"] == "the run ended before its handshake was complete" for x in turned)
    stop_at = next(k for k, x in enumerate(lines) if x["event"] == "stop")
    assert all(lines.index(x) < stop_at for x in turned)
    assert verify(rd) == []
