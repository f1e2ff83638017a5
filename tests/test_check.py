"""``lclock check``: good runs pass; each classic mistake (DESIGN.md) gives its own finding.

Broken runs are either made by the fixture generator with a bug switched on (what a buggy
implementation would really log) or are copies of a good run edited the way a crash, a torn
write or a lost line would leave them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from analysis_fixtures import copy_run, make_run, read_lines, write_lines
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lclock.analysis.check import check_run

SAMPLE = Path(__file__).resolve().parent / "data" / "foreign-run-1-3-6"
REPO = Path(__file__).resolve().parents[1]


def texts(run: Path) -> list[str]:
    return [str(f) for f in check_run(run, cap=None).findings]


def errors(run: Path) -> list[str]:
    return [str(f) for f in check_run(run, cap=None).errors]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lclock", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120)


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("runs") / "good", duration=30.0)


def broken(tmp_path: Path, good: Path) -> Path:
    return copy_run(good, tmp_path / "broken")


# ------------------------------------------------------------------ good runs


def test_foreign_sample_passes() -> None:
    result = check_run(SAMPLE)
    assert result.ok, [str(f) for f in result.findings]
    assert result.counts["events"] == 600


def test_generated_run_passes(good: Path) -> None:
    assert check_run(good).findings == []


@pytest.mark.parametrize("rates", [(1, 1), (5, 2, 7, 3), (2, 9, 4, 4, 8, 1)])
def test_other_sizes_pass(tmp_path: Path, rates: tuple[int, ...]) -> None:
    run = make_run(tmp_path / "r", rates=rates, duration=25.0, seed=3)
    assert check_run(run).findings == []


def test_run_without_vector_clocks_passes(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", vector=False, duration=20.0)
    assert check_run(run).findings == []


def test_cli_exit_0_and_closing_line(good: Path) -> None:
    p = cli("check", str(good))
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.splitlines()[-1].startswith("OK: every rule holds")
    assert "note: dice not replayed from the seed: run.json does not name an lclock" in p.stdout


# ------------------------------------------------------------------ the classic mistakes


def bug_run(tmp_path: Path, bug: str, **kw: object) -> Path:
    return make_run(tmp_path / bug, bug=bug, duration=60.0, **kw)  # type: ignore[arg-type]


def test_dice_range_1_to_9_is_warned(tmp_path: Path) -> None:
    run = bug_run(tmp_path, "dice_1_9")
    result = check_run(run)
    assert result.ok  # statistical: a warning, not a rule violation
    warn = [str(f) for f in result.warnings]
    assert any("dice never showed 10" in w and "1..9" in w for w in warn), warn


def test_dice_outside_range_is_an_error(tmp_path: Path, good: Path) -> None:
    run = broken(tmp_path, good)
    path = run / "machine-3.jsonl"
    lines = read_lines(path)
    k = next(i for i, d in enumerate(lines) if d.get("event") == "internal")
    lines[k]["dice"] = 11
    write_lines(path, lines)
    assert any(f"machine-3.jsonl:{k + 1}: dice 11 outside 1..10" in t for t in errors(run))


def test_another_die_convention_is_one_finding_per_value(tmp_path: Path, good: Path) -> None:
    """An implementation whose internal events are logged with die values 1..3 (the student
    numbered the faces differently) makes the same mistake on every such roll: one finding
    per machine and die value, with the count and the first lines, not one per line."""
    run = broken(tmp_path, good)
    wrong = {}
    for mid in (1, 2, 3):
        path = run / f"machine-{mid}.jsonl"
        lines = read_lines(path)
        ks = [k for k, d in enumerate(lines) if d.get("event") == "internal" and d["dice"] == 4]
        for k in ks:
            lines[k]["dice"] = 2
        wrong[mid] = [k + 1 for k in ks]
        write_lines(path, lines)
    result = check_run(run, cap=None)
    found = [f for f in result.findings if f.rule == "dice-event"]
    assert sorted(f.machine for f in found) == [m for m in (1, 2, 3) if wrong[m]]
    for f in found:
        lines = wrong[f.machine or 0]
        assert f.line == lines[0] and f.count == len(lines)
        assert f.text.startswith("dice 2 must give a send, not internal")
        if len(lines) > 1:
            assert f"({len(lines)} rolls, lines {', '.join(map(str, lines[:5]))}" in f.text


def test_send_before_increment(tmp_path: Path) -> None:
    found = errors(bug_run(tmp_path, "send_before_increment"))
    assert any("matches no send" in t and "clock before the increment" in t for t in found), found


def test_broadcast_incremented_twice(tmp_path: Path) -> None:
    found = errors(bug_run(tmp_path, "broadcast_double_increment"))
    assert any("incremented once per recipient" in t for t in found), found


def test_broadcast_logged_as_two_events(tmp_path: Path) -> None:
    found = errors(bug_run(tmp_path, "broadcast_two_events"))
    assert any("dice 3 sends to every peer" in t and "separate events" in t for t in found), found


def test_receive_without_plus_one(tmp_path: Path) -> None:
    found = errors(bug_run(tmp_path, "receive_no_plus1"))
    assert any("receive without the +1" in t for t in found), found
    assert any("C(send) = " in t and "is not less than C(receive)" in t for t in found)


def test_whole_queue_in_one_tick(tmp_path: Path) -> None:
    found = errors(bug_run(tmp_path, "whole_queue"))
    assert any("logged a second event" in t and "whole queue" in t for t in found), found


def test_whole_queue_logged_as_one_receive(tmp_path: Path, good: Path) -> None:
    """A buggy machine that drains the queue but logs one receive: the queue drops by >1."""
    run = broken(tmp_path, good)
    path = run / "machine-1.jsonl"
    lines = read_lines(path)
    k = next(i for i, d in enumerate(lines) if d.get("queue_len", 0) >= 3)
    lines[k + 1]["queue_len"] = 0
    write_lines(path, lines)
    assert any(f"machine-1.jsonl:{k + 2}: queue went from" in t and "whole queue" in t
               for t in errors(run))


def test_sleep_after_work_drifts(tmp_path: Path) -> None:
    found = errors(bug_run(tmp_path, "sleep_after_work"))
    assert any("ticks fall behind the rate" in t and "sleeping" in t for t in found), found


def test_timing_not_judged_without_rates_in_run_json(tmp_path: Path) -> None:
    run = bug_run(tmp_path, "sleep_after_work", settings=False)
    meta = orjson.loads((run / "run.json").read_bytes())
    for m in meta["machines"]:
        del m["rate"]
    (run / "run.json").write_bytes(orjson.dumps(meta))
    assert not any("behind the rate" in t for t in texts(run))


def test_missing_ts(tmp_path: Path, good: Path) -> None:
    run = broken(tmp_path, good)
    path = run / "machine-2.jsonl"
    lines = read_lines(path)
    del lines[4]["ts"]
    write_lines(path, lines)
    assert "machine-2.jsonl:5: missing ts (every line needs the system time)" in errors(run)


def test_message_silently_lost(tmp_path: Path) -> None:
    found = errors(bug_run(tmp_path, "lose_message"))
    assert any("conservation broken on channel" in t and "lost" in t for t in found), found


def test_message_lost_without_unprocessed_from(tmp_path: Path) -> None:
    run = bug_run(tmp_path, "lose_message")
    for p in run.glob("machine-*.jsonl"):
        lines = read_lines(p)
        for d in lines:
            d.pop("unprocessed_from", None)
        write_lines(p, lines)
    found = errors(run)
    assert any("conservation broken: peers sent" in t and "lost" in t for t in found), found


# ------------------------------------------------------------------ other damage


def test_torn_last_line(tmp_path: Path, good: Path) -> None:
    run = broken(tmp_path, good)
    path = run / "machine-2.jsonl"
    data = path.read_bytes()
    n = data.count(b"\n")
    path.write_bytes(data[:-25])
    found = errors(run)
    assert any(t.startswith(f"machine-2.jsonl:{n}: torn line") for t in found), found


def test_garbage_line(tmp_path: Path, good: Path) -> None:
    run = broken(tmp_path, good)
    path = run / "machine-1.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines.insert(3, b"\x00\xffgarbage{\n")
    path.write_bytes(b"".join(lines))
    found = errors(run)
    assert any(t.startswith("machine-1.jsonl:4: not valid JSON") for t in found), found


def test_missing_machine_file(tmp_path: Path, good: Path) -> None:
    run = broken(tmp_path, good)
    (run / "machine-2.jsonl").unlink()
    found = errors(run)
    assert any(t.startswith("machine-2.jsonl: missing") for t in found), found


def test_crashed_machine_without_stop(tmp_path: Path, good: Path) -> None:
    run = broken(tmp_path, good)
    path = run / "machine-3.jsonl"
    lines = read_lines(path)
    write_lines(path, lines[: len(lines) // 2])
    meta = orjson.loads((run / "run.json").read_bytes())
    meta["status"] = "failed"
    (run / "run.json").write_bytes(orjson.dumps(meta))
    found = errors(run)
    assert any(t.startswith("machine-3.jsonl: no stop line") and "'failed'" in t for t in found)


def test_fifo_broken(tmp_path: Path, good: Path) -> None:
    run = broken(tmp_path, good)
    path = run / "machine-1.jsonl"
    lines = read_lines(path)
    rec = [i for i, d in enumerate(lines) if d.get("event") == "receive" and d["from"] == 3]
    a, b = rec[3], rec[4]
    lines[a]["msg_lclock"], lines[b]["msg_lclock"] = lines[b]["msg_lclock"], lines[a]["msg_lclock"]
    write_lines(path, lines)
    assert any("FIFO broken on channel 3->1" in t for t in errors(run))


def test_vector_clock_error(tmp_path: Path, good: Path) -> None:
    run = broken(tmp_path, good)
    path = run / "machine-2.jsonl"
    lines = read_lines(path)
    k = next(i for i, d in enumerate(lines) if d.get("event") == "internal" and i > 10)
    lines[k]["vclock"][0] += 1
    write_lines(path, lines)
    assert any(t.startswith(f"machine-2.jsonl:{k + 1}: internal: vclock") for t in errors(run))


def test_tick_gap(tmp_path: Path, good: Path) -> None:
    run = broken(tmp_path, good)
    path = run / "machine-3.jsonl"
    lines = read_lines(path)
    del lines[10]
    write_lines(path, lines)
    assert any(t.startswith("machine-3.jsonl:11: ticks jump from") for t in errors(run))


def test_wrong_types_are_findings_not_tracebacks(tmp_path: Path, good: Path) -> None:
    run = broken(tmp_path, good)
    path = run / "machine-2.jsonl"
    lines = read_lines(path)
    lines[3]["lclock"] = "7"
    lines[4]["to"] = "everyone"
    lines[5] = [1, 2, 3]  # type: ignore[call-overload]
    write_lines(path, lines)
    p = cli("check", str(run))
    assert p.returncode == 1
    assert "Traceback" not in p.stderr
    assert "machine-2.jsonl:4:" in p.stdout and "lclock missing or not an integer" in p.stdout
    assert "machine-2.jsonl:6: not a JSON object (list)" in p.stdout


# ------------------------------------------------------------------ bad input: exit 2


def test_missing_folder_exit_2(tmp_path: Path) -> None:
    p = cli("check", str(tmp_path / "nope"))
    assert p.returncode == 2
    assert p.stderr.strip().endswith("no such folder") and "Traceback" not in p.stderr


def test_not_a_run_folder_exit_2(tmp_path: Path) -> None:
    p = cli("check", str(tmp_path))
    assert p.returncode == 2
    assert "not a run folder" in p.stderr and p.stderr.count("\n") == 1


def test_logged_errors_are_reported_as_warnings(tmp_path: Path, good: Path) -> None:
    run = broken(tmp_path, good)
    path = run / "machine-2.jsonl"
    lines = read_lines(path)
    lines.insert(5, {"ts": lines[4]["ts"], "event": "error", "level": "error",
                     "run_id": lines[4]["run_id"],
                     "machine": 2, "message": "peer 3 closed the connection"})
    write_lines(path, lines)
    result = check_run(run)
    assert result.ok
    assert [str(w) for w in result.warnings] == [
        "machine-2.jsonl:6: the machine logged error 'error': peer 3 closed the connection"]


# ------------------------------------------------------------------ properties


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rates=st.lists(st.integers(1, 15), min_size=2, max_size=5),
       seed=st.integers(0, 10**6), pick=st.floats(0, 1), delta=st.sampled_from([-1, 1, 2]))
def test_any_good_run_passes_and_any_clock_edit_is_caught(
        tmp_path_factory: pytest.TempPathFactory, rates: list[int], seed: int, pick: float,
        delta: int) -> None:
    run = make_run(tmp_path_factory.mktemp("p") / "r", rates=tuple(rates), duration=6.0,
                   seed=seed, settings=True)
    assert check_run(run).findings == []
    mid = 1 + int(pick * len(rates)) % len(rates)
    path = run / f"machine-{mid}.jsonl"
    lines = read_lines(path)
    ticks = [i for i, d in enumerate(lines) if "tick" in d]
    k = ticks[int(pick * (len(ticks) - 1))]
    lines[k]["lclock"] += delta
    write_lines(path, lines)
    found = errors(run)
    assert any(t.startswith(f"machine-{mid}.jsonl:{k + 1}: ") and "lclock" in t for t in found), found


def test_without_run_json_the_logs_are_still_checked(tmp_path: Path, good: Path) -> None:
    run = broken(tmp_path, good)
    (run / "run.json").unlink()
    result = check_run(run)
    assert result.ok
    assert [str(w) for w in result.warnings] == [
        "run.json: missing (analysing the machine logs alone)"]
    assert result.counts["events"] > 0


def test_findings_are_capped_per_kind_unless_all(tmp_path: Path) -> None:
    run = bug_run(tmp_path, "receive_no_plus1")
    capped = [str(f) for f in check_run(run, cap=20).findings]
    full = [str(f) for f in check_run(run, cap=None).findings]
    assert len(full) > len(capped)
    assert any("more findings of the kind 'lamport' (use --all" in t for t in capped)
    p = cli("check", "--all", str(run))
    assert p.returncode == 1 and "use --all" not in p.stdout
    assert p.stdout.count("receive without the +1") == sum("receive without the +1" in t
                                                           for t in full)


@pytest.mark.parametrize("chunk", [None, 2048])
def test_damaged_copies_never_raise(tmp_path: Path, good: Path, chunk: int | None,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Random damage (flipped bytes, cut files, duplicated or lost lines, odd values, a lost
    file): every tool gives findings or skips lines, never an exception. Small chunks put
    the damage in front of the byte-level reader too."""
    import io
    import random

    from lclock.analysis import load as loader
    from lclock.analysis.analyze import analyze_run, headlines
    from lclock.analysis.export import write_csv, write_shiviz
    from lclock.analysis.load import RunFolderError, load_run
    from lclock.errors import BadInput

    if chunk:
        monkeypatch.setattr(loader, "CHUNK_BYTES", chunk)

    rng = random.Random(7)
    odd = [b'"lclock":-', b'"lclock":"', b'"lclock":1e3,"x":', b'"lclock":null,"y":',
           b'"lclock":[1],"z":', b'"lclock":99999999999999999999,"q":']
    for it in range(40):
        run = copy_run(good, tmp_path / str(it))
        files = sorted(run.glob("machine-*.jsonl")) + [run / "run.json"]
        for _ in range(rng.randint(1, 4)):
            f = rng.choice(files)
            if not f.exists():
                continue
            b = bytearray(f.read_bytes())
            op = rng.randint(0, 5)
            if op == 0 and b:
                for _ in range(rng.randint(1, 5)):
                    b[rng.randrange(len(b))] = rng.randrange(256)
            elif op == 1:
                b = b[: rng.randrange(len(b) + 1)]
            elif op in (2, 3):
                lines = bytes(b).split(b"\n")
                k = rng.randrange(len(lines))
                if op == 2:
                    lines.insert(k, lines[rng.randrange(len(lines))])
                else:
                    del lines[k]
                b = bytearray(b"\n".join(lines))
            elif op == 4:
                j = bytes(b).find(b'"lclock":', rng.randrange(len(b) or 1))
                if j >= 0:
                    b[j:j + 9] = rng.choice(odd)
            else:
                f.unlink()
                continue
            f.write_bytes(bytes(b))
        try:
            check_run(run)
            assert len(headlines(analyze_run(run))) == 3
            loaded = load_run(run)
            write_csv(loaded, io.StringIO())
            try:
                write_shiviz(loaded, io.StringIO())
            except BadInput:  # a run without vector clocks
                pass
        except RunFolderError:
            pass


@pytest.mark.parametrize("flags", [["--rates", "1,3,6"], ["--machines", "5", "--rate-max", "20"],
                                   ["--rates", "4,9", "--no-vector-clocks"]])
def test_simulator_runs_pass_check(tmp_path: Path, flags: list[str]) -> None:
    """Runs of ``lclock sim`` (another team's writer of the same schema) pass the checker."""
    p = cli("sim", "--duration", "120", "--seed", "5", "--quiet", "--no-report", "--output",
            str(tmp_path), *flags)
    assert p.returncode == 0, p.stderr
    run = next(d for d in tmp_path.iterdir() if (d / "run.json").exists())
    result = check_run(run)
    assert result.findings == [], [str(f) for f in result.findings]
    assert result.counts["events"] > 200


def test_cli_json_findings(tmp_path: Path) -> None:
    run = bug_run(tmp_path, "lose_message")
    p = cli("check", "--json", str(run))
    assert p.returncode == 1
    data = orjson.loads(p.stdout)
    assert data["ok"] is False and data["counts"]["machines"] == 3
    assert any(f["severity"] == "error" and "conservation broken" in f["message"]
               and f["rule"] == "conservation" and f["machine"] in (1, 2, 3) and f["count"] == 1
               for f in data["findings"])
