"""``lclock cuts``: judging a cut and counting the consistent cuts of a window.

The oracle is written apart from the code: a played script keeps its messages as it sent
and took them in (tests/cut_fixtures.py), and a cut is consistent when none of them is taken
in inside it and sent outside it; the count is every cut of the box tried one by one.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cut_fixtures import STEP_S, Played, consistent, play, ts, write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lclock.analysis.causal import Causality
from lclock.analysis.cuts import Channels, TooMany, count, crossings, levels, window_box
from lclock.analysis.load import load_run

REPO = Path(__file__).resolve().parents[1]


def lclock(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lclock", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120)


def loaded(p: Played, folder: Path) -> tuple[Causality, Channels]:
    c = Causality.build(load_run(write(p, folder)))
    return c, Channels.of(c)


def box_cuts(lo: dict[int, int], hi: dict[int, int]) -> list[dict[int, int]]:
    ids = sorted(lo)
    return [dict(zip(ids, x, strict=True))
            for x in itertools.product(*(range(lo[m], hi[m] + 1) for m in ids))]


RUNS = st.tuples(st.integers(2, 4), st.integers(0, 22), st.integers(0, 10**6))
SLOW_OK = settings(max_examples=60, deadline=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture])


@SLOW_OK
@given(RUNS)
def test_a_cut_is_judged_as_the_oracle_judges_it(tmp_path: Path, shape: tuple[int, int, int]) -> None:
    n, steps, seed = shape
    p = play(n, steps, seed)
    c, ch = loaded(p, tmp_path / f"r{n}-{steps}-{seed}")
    full = {m: p.events[m] for m in range(1, n + 1)}
    for cut in box_cuts(dict.fromkeys(full, 0), full):
        bad = crossings(ch, cut)
        assert (not bad) == consistent(p, cut), cut
        want = sorted((j, r, i, s) for i, s, j, r in p.messages if r < cut[j] and s >= cut[i])
        assert [(x.receiver, x.receive_index, x.sender, x.send_index) for x in bad] == want


@SLOW_OK
@given(RUNS, st.floats(0, 2.5), st.floats(0, 2.5))
def test_the_count_and_list_of_a_window_are_every_consistent_cut_of_its_box(
        tmp_path: Path, shape: tuple[int, int, int], a: float, b: float) -> None:
    n, steps, seed = shape
    p = play(n, steps, seed)
    c, ch = loaded(p, tmp_path / f"r{n}-{steps}-{seed}")
    lo, hi = window_box(c, min(a, b), max(a, b))
    want = sorted(tuple(x[m] for m in sorted(x)) for x in box_cuts(lo, hi) if consistent(p, x))
    got = [cut for level in levels(c, ch, lo, hi) for cut in level]
    assert sorted(got) == want and len(set(got)) == len(got)
    assert [sum(x) for x in got] == sorted(sum(x) for x in got), "level by level"
    assert count(c, ch, lo, hi) == len(want)


def test_the_box_of_a_window_is_each_machines_ticks_in_it(tmp_path: Path) -> None:
    p = play(3, 30, 7)
    c, _ = loaded(p, tmp_path / "r")
    # the first tick is t0; step k (1-based) is at t0 + (k - 1) * STEP_S
    lo, hi = window_box(c, 0.95 * STEP_S, 10.05 * STEP_S)
    for m in (1, 2, 3):
        t = c.run.machines[m].ts - c.run.t0
        inside = [k for k in range(len(t)) if 0.95 * STEP_S <= t[k] <= 10.05 * STEP_S]
        assert (lo[m], hi[m]) == ((inside[0], inside[-1] + 1) if inside else (lo[m], lo[m]))
        assert all(t[k] < 0.95 * STEP_S for k in range(lo[m]))


def test_the_limit_stops_the_enumeration(tmp_path: Path) -> None:
    p = play(3, 30, 3)
    c, ch = loaded(p, tmp_path / "r")
    lo = dict.fromkeys(c.run.ids, 0)
    hi = {m: c.run.machines[m].events for m in c.run.ids}
    total = count(c, ch, lo, hi)
    assert total > 10
    assert count(c, ch, lo, hi, limit=total) == total
    with pytest.raises(TooMany):
        count(c, ch, lo, hi, limit=total - 1)


def test_a_box_whose_least_cut_is_inconsistent_starts_above_it(tmp_path: Path) -> None:
    """A box that starts after a receive but before its send: the least consistent cut of
    the box holds the send, so the enumeration starts there (and a box that cannot hold
    the send holds no consistent cut)."""
    def tick(m: int, k: int, event: str, L: int, **kw: object) -> dict[str, object]:
        return {"ts": ts(k * STEP_S), "event": event, "level": "info", "run_id": "cuts-test",
                "machine": m, "tick": k, "lclock": L, "queue_len": 0} | kw

    p = Played(2, {1: [tick(1, 1, "internal", 1, dice=7), tick(1, 2, "send", 2, dice=1, to=[2])],
                   2: [tick(2, 1, "receive", 3, **{"from": 1, "msg_lclock": 2})]})
    c, ch = loaded(p, tmp_path / "r")
    got = [cut for level in levels(c, ch, {1: 0, 2: 1}, {1: 2, 2: 1}) for cut in level]
    assert got == [(2, 1)]
    assert list(levels(c, ch, {1: 0, 2: 1}, {1: 1, 2: 1})) == []


# ---------------------------------------------------------------- the command


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Played, Path]:
    p = play(3, 40, 11)
    return p, write(p, tmp_path_factory.mktemp("cuts") / "run")


def ticks(p: Played, cut: dict[int, int]) -> str:
    return ",".join(f"{m}:{cut[m]}" for m in sorted(cut))  # the fixture's ticks are 1, 2, ...


@pytest.mark.timeout(120)
def test_the_command_judges_cuts_with_exit_status_and_the_crossing_message(folder: tuple[Played, Path]) -> None:
    p, run = folder
    full = {m: p.events[m] for m in p.lines}
    every = box_cuts(dict.fromkeys(full, 0), full)
    good = [x for x in every if consistent(p, x)]
    bad = [x for x in every if not consistent(p, x)]
    for cut in good[len(good) // 2::len(good) // 3][:2] + bad[len(bad) // 3::len(bad) // 4][:3]:
        r = lclock("cuts", str(run), "--cut", ticks(p, cut), "--json")
        ok = consistent(p, cut)
        assert r.returncode == (0 if ok else 1), r.stderr
        d = json.loads(r.stdout)
        assert d["consistent"] is ok
        if not ok:
            x = d["crossing"]
            j, rk, i, sk = min((j, r_, i, s) for i, s, j, r_ in p.messages if r_ < cut[j] and s >= cut[i])
            assert (x["receiver"], x["receive_tick"], x["sender"], x["send_tick"]) == (j, rk + 1, i, sk + 1)
            assert x["receive_at"] == f"machine-{j}.jsonl:{rk + 2}"  # line 1 is start
            assert x["send_at"] == f"machine-{i}.jsonl:{sk + 2}"


@pytest.mark.timeout(60)
def test_the_text_answer_names_the_message(folder: tuple[Played, Path]) -> None:
    p, run = folder
    i, s, j, r = p.messages[0]
    cut = {m: p.events[m] for m in p.lines} | {i: s}  # the send is outside, its receive inside
    out = lclock("cuts", str(run), "--cut", ticks(p, cut))
    assert out.returncode == 1
    assert "is not consistent" in out.stdout and f"machine-{i}.jsonl:" in out.stdout
    ok = lclock("cuts", str(run), "--cut", ticks(p, dict.fromkeys(p.lines, 0)))
    assert (ok.returncode, ok.stdout) == (0, "cut 1:0,2:0,3:0 is consistent\n")


@pytest.mark.timeout(60)
def test_count_and_list_through_the_command(folder: tuple[Played, Path]) -> None:
    p, run = folder
    full = {m: p.events[m] for m in p.lines}
    want = [x for x in box_cuts(dict.fromkeys(full, 0), full) if consistent(p, x)]
    r = lclock("cuts", str(run), "--count", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["count"] == len(want)
    listed = lclock("cuts", str(run), "--list")
    assert listed.returncode == 0
    assert sorted(listed.stdout.split()) == sorted(ticks(p, x) for x in want)
    assert f"{len(want)} consistent cut(s) of the run" in listed.stderr
    w = lclock("cuts", str(run), "--count", "--window", "1-2")
    assert w.returncode == 0 and "of the window 1-2 s" in w.stdout
    every = lclock("cuts", str(run), "--list", "--window", "1-2", "--json")
    d = json.loads(every.stdout)
    assert len(d["cuts"]) == d["count"] == int(w.stdout.split()[0]) > 0
    for cut in d["cuts"]:
        assert consistent(p, {int(m): int(t) for m, t in (x.split(":") for x in cut.split(","))})


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("args", "message"), [
    (["--cut", "1:3,2:1"], "--cut: machine 3 is not named (the run has machines 1, 2, 3; write 3:0"),
    (["--cut", "1:3,2:1,3:1,4:0"], "--cut: no machine 4 in this run (machines: 1, 2, 3)"),
    (["--cut", "1:3,2:1,3:999"], "--cut: machine 3 has no tick 999 (its last is"),
    (["--cut", "1:3,1:2"], "--cut: machine 1 is named twice"),
    (["--cut", "1:x"], "--cut: '1:x' is not MACHINE:TICK"),
    (["--cut", "1:" + "9" * 5000 + ",2:0,3:0"], "is not MACHINE:TICK"),
    (["--cut", "1:\u0661,2:0,3:0"], "--cut: '1:\u0661' is not MACHINE:TICK"),  # an Arabic-Indic 1
    (["--cut", "\uff11:0,2:0,3:0"], "is not MACHINE:TICK"),  # a fullwidth 1
    (["--count", "--window", "5-2"], "--window: expected START-END"),
    (["--count", "--window", "500-600"], "--window 500-600 starts after the run's last event"),
    (["--cut", "1:0,2:0,3:0", "--window", "0-1"], "--window: only with --count or --list"),
    (["--count", "--limit", "0"], "--limit: must be 1 or more"),
    (["--count", "--limit", "5"], "--limit: the window holds more than 5 consistent cuts"),
    ([], "one of the arguments --cut --count --list is required"),
])
def test_bad_input_is_one_line_and_exit_2(folder: tuple[Played, Path], args: list[str], message: str) -> None:
    _, run = folder
    r = lclock("cuts", str(run), *args)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


@pytest.mark.timeout(300)
def test_the_readme_examples_say_what_the_commands_print(tmp_path: Path) -> None:
    """The README's block: each `lclock cuts RUN ...` line run on the run its sim line makes,
    and the start of what its comment says found in what it prints."""
    text = (REPO / "README.md").read_text()
    block = text.split("## Consistent cuts: `lclock cuts`")[1].split("```sh\n")[1].split("```")[0]
    lines = block.splitlines()
    sim = lines[0].split("#")[0].split()
    assert sim[:2] == ["lclock", "sim"]
    made = lclock(*sim[1:], "--quiet", "--no-report", "--output", str(tmp_path))
    assert made.returncode == 0, made.stderr
    (run,) = [d for d in tmp_path.iterdir() if d.is_dir()]
    tried = 0
    for k, line in enumerate(lines):
        if not line.startswith("lclock cuts RUN"):
            continue
        cmd, _, said = line.partition("#")
        r = lclock(*[str(run) if a == "RUN" else a for a in cmd.split()[1:]])
        more = [x.partition("#")[2] for x in itertools.takewhile(lambda x: x.startswith(" "), lines[k + 1:])]
        comment = " ".join([said, *more])
        code = int(comment.rsplit("(exit ", 1)[1][0]) if "(exit " in comment else 0
        assert r.returncode == code, (line, r.stderr)
        first = said.strip().split("  ")[0].split(" ...")[0].split(" (ticks")[0]
        assert first.replace("...", "").strip() in r.stdout + r.stderr, (line, r.stdout, r.stderr)
        tried += 1
    assert tried == 4
