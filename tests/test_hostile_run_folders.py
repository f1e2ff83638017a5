"""Hostile run folders (issue 9 section 8): every analysis command gives findings or one
clear error line, never a traceback or a hang, with memory bounded by the input.

Each case builds a damaged copy of a good run the way an attacker (or a very broken
implementation) would, then starts the real ``lclock check``, ``analyze``, ``export`` and
``report`` on it as subprocesses.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from analysis_fixtures import copy_run, make_run, read_lines, write_lines
from conftest import started
from test_consistency import sim

REPO = Path(__file__).resolve().parents[1]
WRAPPER = """
import resource, subprocess, sys
p = subprocess.run(sys.argv[1:], capture_output=True)
sys.stdout.buffer.write(b"%d %d\\n" % (p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.stdout.buffer.write(p.stderr[-4000:])
"""


def lclock(*args: str, cwd: Path = REPO, timeout: float = 120) -> tuple[int, str, str]:
    """Run the real program in its own session; (exit status, stdout, stderr)."""
    with started([sys.executable, "-m", "lclock", *args], cwd) as p:
        out, err = p.communicate(timeout=timeout)
    return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def peak(*args: str, timeout: float = 300) -> tuple[int, int, str, float]:
    """(exit status, peak RSS in MiB, stderr, seconds) of one whole ``lclock`` process."""
    t = time.perf_counter()
    with started([sys.executable, "-c", WRAPPER, sys.executable, "-m", "lclock", *args],
                 REPO) as p:
        out, _ = p.communicate(timeout=timeout)
    head, _, err = out.partition(b"\n")
    rc, rss = head.split()
    return int(rc), int(rss) // 1024, err.decode("utf-8", "replace"), time.perf_counter() - t


def sane(rc: int, err: str, what: str) -> None:
    assert "Traceback" not in err, f"{what}: {err}"
    assert rc in (0, 1, 2), f"{what}: exit {rc}: {err}"
    if rc == 2:
        assert err.count("\n") == 1, f"{what}: exit 2 needs one clear line, got {err!r}"


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("hostile") / "good", duration=10.0)


# ---------------------------------------------------------------- the cases


def _edit_line(run: Path, mid: int, pick: Callable[[dict], bool], change: Callable[[dict], None]
               ) -> int:
    path = run / f"machine-{mid}.jsonl"
    lines = read_lines(path)
    k = next(i for i, d in enumerate(lines) if pick(d))
    change(lines[k])
    write_lines(path, lines)
    return k + 1


def _raw_line(run: Path, mid: int, k: int, data: bytes) -> None:
    path = run / f"machine-{mid}.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines.insert(k, data)
    path.write_bytes(b"".join(lines))


def _meta(run: Path, change: Callable[[dict], None]) -> None:
    meta = orjson.loads((run / "run.json").read_bytes())
    change(meta)
    (run / "run.json").write_text(json.dumps(meta))


def big_ints(run: Path) -> None:
    """Integers beyond 64 bits (and at the edge) in every numeric field, log and run.json."""
    huge = 2**64 - 1  # orjson still reads it as an int; 10**30 it reads as a float
    for key, value in (("lclock", huge), ("tick", 10**30), ("queue_len", 2**63),
                       ("dice", 10**25), ("msg_lclock", huge), ("from", 2**70)):
        _edit_line(run, 1 if key not in ("msg_lclock", "from") else 3,
                   lambda d, key=key: (key in d or key == "dice") and d.get("event") != "stop"
                   and "big" not in d, lambda d, key=key, value=value: d.update({key: value, "big": 1}))
    _edit_line(run, 2, lambda d: "vclock" in d and "big" not in d,
               lambda d: d.update(vclock=[2**64 - 1, 10**30, 0], big=1))
    _edit_line(run, 2, lambda d: d.get("event") == "send" and "big" not in d,
               lambda d: d.update(to=[10**30], big=1))
    _edit_line(run, 2, lambda d: d.get("event") == "start", lambda d: d.update(rate=10**40, seed=10**40))
    _edit_line(run, 2, lambda d: d.get("event") == "stop",
               lambda d: d.update(ticks=10**40, sent=2**64 - 1, max_queue=10**40,
                                  unprocessed_from={"1": 10**30}))
    _meta(run, lambda m: m.update(seed=10**30, machines=[{"id": 10**30, "rate": 10**30}],
                                  settings={"machines": 10**30, "duration": 10**400,
                                            "dice_sides": 2**64 - 1, "rates": [10**30] * 3}))


def negative(run: Path) -> None:
    _edit_line(run, 3, lambda d: d.get("event") == "internal", lambda d: d.update(lclock=-1))
    _edit_line(run, 2, lambda d: d.get("event") == "internal", lambda d: d.update(tick=-5))
    _edit_line(run, 3, lambda d: d.get("event") == "receive",
               lambda d: d.update(msg_lclock=-3, queue_len=-1))
    _edit_line(run, 3, lambda d: d.get("event") == "send" and d.get("lclock", 0) > 0,
               lambda d: d.update(vclock=[-1, 0, 1]))
    _meta(run, lambda m: m.update(settings={"machines": -3, "duration": -1, "dice_sides": -10},
                                  machines=[{"id": -1, "rate": -3, "ticks": -1}]))


def fifo_log(run: Path) -> None:
    (run / "machine-2.jsonl").unlink()
    os.mkfifo(run / "machine-2.jsonl")


def fifo_run_json(run: Path) -> None:
    (run / "run.json").unlink()
    os.mkfifo(run / "run.json")


def device_log(run: Path) -> None:
    (run / "machine-3.jsonl").unlink()
    try:
        os.mknod(run / "machine-3.jsonl", 0o600 | 0o020000, os.makedev(1, 5))  # /dev/zero
    except PermissionError:
        pytest.skip("creating a device file needs root")


def links_outside(run: Path) -> None:
    (run / "machine-1.jsonl").unlink()
    (run / "machine-1.jsonl").symlink_to("/dev/zero")
    (run / "machine-2.jsonl").unlink()
    (run / "machine-2.jsonl").symlink_to("/etc/passwd")
    (run / "run.json").unlink()
    (run / "run.json").symlink_to("/etc/hostname")


def link_loop_and_folder(run: Path) -> None:
    (run / "machine-3.jsonl").unlink()
    (run / "machine-3.jsonl").symlink_to("machine-3.jsonl")
    (run / "machine-2.jsonl").unlink()
    (run / "machine-2.jsonl").mkdir()


def two_files_one_machine(run: Path) -> None:
    (run / "machine-02.jsonl").write_bytes((run / "machine-3.jsonl").read_bytes())
    (run / "machine-0.jsonl").write_bytes(b"")
    (run / f"machine-{'9' * 200}.jsonl").write_bytes(b"")
    (run / "machine-10000000.jsonl").write_bytes((run / "machine-1.jsonl").read_bytes())


def lying_run_json(run: Path) -> None:
    _meta(run, lambda m: m.update(settings={**m["settings"], "machines": 10**7},
                                  machines=[*m["machines"], {"id": 10**7, "rate": 2},
                                            {"id": 9, "rate": 2}]))


def run_json_not_an_object(run: Path) -> None:
    (run / "run.json").write_text("[1, 2, 3]")


def run_json_wrong_types(run: Path) -> None:
    (run / "run.json").write_text(json.dumps({
        "schema": "1", "run_id": 7, "status": ["x"], "seed": "s", "lclock_version": "0.1.0",
        "not_logged": {"dice": True},
        "settings": {"machines": "3", "duration": "x", "rates": "1,3", "dice_sides": 0,
                     "vector_clocks": "yes", "rate_min": -1},
        "machines": [{"id": "1"}, 5, {"id": 1, "rate": "fast", "ticks": [1]},
                     {"id": 2, "unprocessed_from": [1]}]}))


def empty_files(run: Path) -> None:
    (run / "machine-1.jsonl").write_bytes(b"")
    (run / "run.json").write_bytes(b"")


def binary_garbage(run: Path) -> None:
    import random

    rng = random.Random(5)
    (run / "machine-2.jsonl").write_bytes(bytes(rng.randrange(256) for _ in range(300_000)))
    (run / "machine-3.jsonl").write_bytes(b"\xff" * (5 << 20))  # no newline, past a chunk


def nul_and_bad_utf8(run: Path) -> None:
    _raw_line(run, 1, 4, b"\x00" * 100 + b"\n")
    _raw_line(run, 1, 6, b'{"ts":"2026-01-01T00:00:00.000000Z\xff\xfe","event":"internal"}\n')
    _raw_line(run, 2, 5, b'{"event":"internal","note":"a\x00b"}\n')


def deep_nesting(run: Path) -> None:
    _raw_line(run, 1, 3, b"[" * 200_000 + b"]" * 200_000 + b"\n")
    (run / "run.json").write_bytes(b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}")


CASES: dict[str, tuple[Callable[[Path], None], list[str]]] = {
    # name: (make it hostile, texts check must print)
    "big-ints": (big_ints, ["machine-1.jsonl:", "beyond 64 bits", "not an integer",
                            "start: seed 7, but run.json says 1" + "0" * 30, "settings.machines",
                            "settings.duration: expected a number", "machines[0].id",
                            "machine-2.jsonl:1: start: rate 1e+40 is not an integer from 1 to 10000000",
                            ]),
    "negative": (negative, ["lclock is negative (-1)", "tick is negative (-5)",
                            "msg_lclock missing or not a 64-bit integer >= 0 (-3)",
                            "vclock [-1, 0, 1] is not a list"]),
    "fifo-log": (fifo_log, ["machine-2.jsonl: a FIFO, not a regular file: not read"]),
    "fifo-run-json": (fifo_run_json, ["run.json: a FIFO, not a regular file: not read"]),
    "device-log": (device_log, ["machine-3.jsonl: a character device, not a regular file"]),
    "links-outside": (links_outside, ["machine-1.jsonl: a symbolic link that leads out of the "
                                      "run folder: not read", "machine-2.jsonl: a symbolic link",
                                      "run.json: a symbolic link"]),
    "link-loop-and-folder": (link_loop_and_folder, ["machine-3.jsonl: ", "machine-2.jsonl: a folder"]),
    "two-files-one-machine": (two_files_one_machine, [
        "machine-02.jsonl: a second log for machine 2 (besides machine-2.jsonl): not read",
        "machine-0.jsonl: not a machine id", "machine-10000000.jsonl: not a machine id"]),
    "lying-run-json": (lying_run_json, ["settings.machines: expected an integer from 1 to 1024, "
                                        "got 10000000", "machines[3].id",
                                        "machines[] names machine [9], but the run has 3"]),
    "run-json-not-an-object": (run_json_not_an_object, ["run.json: not a JSON object (list)"]),
    "run-json-wrong-types": (run_json_wrong_types, ["run_id: expected a string, got 7",
                                                    "settings.machines: expected an integer",
                                                    "settings.rates: expected a list",
                                                    "not_logged: expected a list"]),
    "empty-files": (empty_files, ["machine-1.jsonl: no tick events", "run.json: unreadable"]),
    "binary-garbage": (binary_garbage, ["machine-2.jsonl:", "not valid JSON",
                                        "machine-3.jsonl:1: line of 5242880 bytes, longer than"]),
    "nul-and-bad-utf8": (nul_and_bad_utf8, ["machine-1.jsonl:5: not valid JSON",
                                            "[2 lines: 5, 7]",
                                            "machine-2.jsonl:6: not valid JSON"]),
    "deep-nesting": (deep_nesting, ["machine-1.jsonl:4: not valid JSON (depth limit exceeded)",
                                    "run.json: unreadable"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_command_survives(tmp_path: Path, good: Path, case: str) -> None:
    make, expect = CASES[case]
    run = copy_run(good, tmp_path / "run")
    make(run)
    rc, out, err = lclock("check", str(run), timeout=60)
    sane(rc, err, "check")
    assert rc == 1, out + err
    for text in expect:
        assert text in out, f"{text!r} not in:\n{out}"
    for cmd in (["analyze", str(run), "--no-write"],
                ["export", "--format", "csv", str(run), "-o", str(tmp_path / "e.csv")],
                ["export", str(run), "-o", str(tmp_path / "e.log")]):
        rc, out, err = lclock(*cmd, timeout=60)
        sane(rc, err, cmd[0])


@pytest.mark.parametrize("case", ["big-ints", "lying-run-json", "binary-garbage", "links-outside"])
def test_report_survives(tmp_path: Path, good: Path, case: str) -> None:
    run = copy_run(good, tmp_path / "run")
    CASES[case][0](run)
    rc, _, err = lclock("report", str(run), "-o", str(tmp_path / "rep"), timeout=120)
    sane(rc, err, "report")


def test_nothing_readable_is_one_clear_error(tmp_path: Path) -> None:
    """A folder whose only files cannot be read is not a run folder: exit 2, one line."""
    run = tmp_path / "run"
    run.mkdir()
    os.mkfifo(run / "run.json")
    os.mkfifo(run / "machine-1.jsonl")
    for cmd in ("check", "analyze"):
        rc, _, err = lclock(cmd, str(run), timeout=30)
        assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        assert "nothing readable" in err


# ---------------------------------------------------------------- size and time


def test_a_huge_line_costs_linear_time_and_bounded_memory(tmp_path: Path, good: Path) -> None:
    """A 300 MB line without a newline (a gigabyte took 155 s and 3 GB before): skipped in
    linear time with one finding, and memory far below the line's size."""
    run = copy_run(good, tmp_path / "run")
    with open(run / "machine-2.jsonl", "ab") as fh:
        block = b"x" * (1 << 20)
        for _ in range(300):
            fh.write(block)
        fh.write(b"\n")
    for cmd in (["check", str(run)], ["analyze", str(run), "--no-write"]):
        rc, rss, err, secs = peak(*cmd)
        sane(rc, err, cmd[0])
        assert rss < 250, f"{cmd[0]}: {rss} MiB for a 300 MB line"
        assert secs < 60, f"{cmd[0]}: {secs:.0f} s"
    rc, out, _ = lclock("check", str(run))
    assert "line of 314572800 bytes, longer than the 1048576 a log line may have: not read" in out


def test_run_json_claiming_ten_million_machines_costs_nothing(tmp_path: Path, good: Path) -> None:
    run = copy_run(good, tmp_path / "run")
    lying_run_json(run)
    _meta(run, lambda m: m.update(machines=[{"id": i} for i in range(1, 200_000)]))
    for cmd in (["check", str(run)], ["analyze", str(run), "--no-write"]):
        rc, rss, err, secs = peak(*cmd)
        sane(rc, err, cmd[0])
        assert rss < 400 and secs < 60, (cmd[0], rss, secs)


def test_many_bad_lines_are_counted_not_kept(tmp_path: Path, good: Path) -> None:
    """300,000 garbage lines: a bounded number of findings, the rest counted."""
    run = copy_run(good, tmp_path / "run")
    with open(run / "machine-1.jsonl", "ab") as fh:
        fh.write(b"{nope}\n" * 300_000)
    rc, out, err = lclock("check", "--all", "--json", str(run), timeout=120)
    sane(rc, err, "check")
    data = json.loads(out)
    bad = [f for f in data["findings"] if f["rule"] == "line-json"]
    assert len(bad) == 1 and bad[0]["count"] == 300_000 and bad[0]["machine"] == 1
    assert len(out) < 200_000


# ---------------------------------------------------------------- the loader, in-process


@pytest.mark.timeout(120)
def test_lines_are_split_in_linear_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small chunks over long lines: the cost stays linear in the bytes."""
    from lclock.analysis import load

    monkeypatch.setattr(load, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(load, "MAX_LINE_BYTES", 64 << 20)
    run = tmp_path / "r"
    run.mkdir()
    line = orjson.dumps({"event": "note", "text": "y" * (32 << 20)}) + b"\n"
    (run / "machine-1.jsonl").write_bytes(line)
    log = load.load_run(run).machines[1]  # quadratic would take hours: the timeout catches it
    assert log.other_events["note"] == 1


def test_siblings_of_names_and_types_in_run_json(tmp_path: Path, good: Path) -> None:
    from lclock.analysis.check import check_run

    run = copy_run(good, tmp_path / "run")
    _meta(run, lambda m: m.update(machines=[{"id": 1, "rate": 1}, {"id": 1, "rate": 1},
                                            {"id": 2, "rate": True}, {"id": 3, "rate": 6}]))
    texts = [str(f) for f in check_run(run, cap=None).findings]
    assert any("machines[1]: machine 1 listed twice" in t for t in texts), texts
    assert any("machines[2].rate: expected an integer" in t for t in texts), texts


def test_a_lone_non_canonical_name_is_read_with_a_warning(tmp_path: Path, good: Path) -> None:
    from lclock.analysis.check import check_run

    run = copy_run(good, tmp_path / "run")
    (run / "machine-2.jsonl").rename(run / "machine-002.jsonl")
    result = check_run(run)
    assert result.ok, [str(f) for f in result.findings]
    assert [str(w) for w in result.warnings] == [
        "machine-002.jsonl: not the name lclock gives machine 2's log (machine-2.jsonl); "
        "read as machine 2"]


def test_bad_lines_keep_their_numbers(tmp_path: Path, good: Path) -> None:
    """Line numbers stay right around skipped over-long lines and torn ends."""
    from lclock.analysis import load
    from lclock.analysis.check import check_run

    run = copy_run(good, tmp_path / "run")
    path = run / "machine-1.jsonl"
    lines = read_lines(path)
    raw = [orjson.dumps(d) + b"\n" for d in lines]
    raw.insert(3, b"z" * (load.MAX_LINE_BYTES + 10) + b"\n")
    raw[6] = b'{"oops"\n'
    path.write_bytes(b"".join(raw))
    texts = [str(f) for f in check_run(run).findings]
    assert any(t.startswith("machine-1.jsonl:4: line of 1048586 bytes") for t in texts), texts
    assert any(t.startswith("machine-1.jsonl:7: not valid JSON") for t in texts), texts


def test_a_log_wrong_on_every_line_is_counted_beyond_the_cap(tmp_path: Path) -> None:
    """Findings beyond the cap are counted, not made: a run with a wrong clock on every
    receive is checked and says how many more there are. (That it costs about what a good
    run costs is measured by bench/bench_bounds.py, not asserted here.)"""
    bad = make_run(tmp_path / "bad", rates=(200, 300, 400), duration=10.0,
                   bug="receive_no_plus1")
    rc, out, err = lclock("check", str(bad))
    sane(rc, err, "bad")
    assert rc == 1, out
    assert "more findings of the kind 'lamport' (use --all to list every one)" in out
    assert len(out.splitlines()) < 200


@pytest.mark.parametrize("stray", ["folder", "link-out", "fifo"])
def test_a_stray_unreadable_log_name_does_not_change_the_machine_count(tmp_path: Path,
                                                                       stray: str) -> None:
    """A folder, a FIFO or a link out of the run folder named machine-4.jsonl in a run of
    3: check said "the logs' vector clocks have 4 entries: judged as a run of 4" and made
    every event of the real logs unusable (export wrote 0 events). It is now the one
    finding it is, and the three logs are judged as they are."""
    from lclock.analysis.check import check_run

    run = sim(tmp_path / "r", "--duration", "5", "--seed", "4", "--rates", "3,5,8")
    events = check_run(run, cap=None).counts
    path = run / "machine-4.jsonl"
    if stray == "folder":
        path.mkdir()
    elif stray == "fifo":
        os.mkfifo(path)
    else:
        outside = tmp_path / "elsewhere.jsonl"
        outside.write_bytes((run / "machine-1.jsonl").read_bytes())
        path.symlink_to(outside)
    report = check_run(run, cap=None)
    assert [f.rule for f in report.errors] == ["log-unreadable"], [str(f) for f in report.errors]
    assert report.counts == events
