"""``lclock analyze`` and ``analyze_run``: metrics checked against brute force on small runs."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest
from analysis_fixtures import copy_run, make_run, read_lines

from lclock.analysis.analyze import analyze_run, headlines, peer_faces, theory

SAMPLE = Path(__file__).resolve().parent / "data" / "foreign-run-1-3-6"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("a") / "run", rates=(1, 3, 6), duration=40.0)


def test_summary_has_the_documented_keys(run: Path) -> None:
    s = analyze_run(run)
    orjson.dumps(s)  # JSON-serialisable
    assert s["machines_n"] == 3 and [m["id"] for m in s["machines"]] == [1, 2, 3]
    for m in s["machines"]:
        for key in ("id", "rate", "ticks", "achieved_rate", "jumps", "queue", "theory", "delay",
                    "mix", "gaps", "lateness", "events"):
            assert key in m
        assert set(m["jumps"]) >= {"mean", "max", "p50", "p95", "count"}
        assert set(m["queue"]) >= {"mean", "max", "final", "growth_per_s"}
        assert set(m["theory"]) >= {"arrival_rate", "growth_per_s"}
    assert set(s["drift"]) >= {"mean", "max", "final", "fastest", "vs_fastest"}


def test_counts_and_jumps_match_the_log(run: Path) -> None:
    s = analyze_run(run)
    for m in s["machines"]:
        lines = [d for d in read_lines(run / f"machine-{m['id']}.jsonl") if "tick" in d]
        assert m["ticks"] == len(lines)
        assert m["events"]["receive"] == sum(d["event"] == "receive" for d in lines)
        prev = 0
        jumps = []
        for d in lines:
            if d["event"] == "receive":
                jumps.append(d["lclock"] - prev)
            prev = d["lclock"]
        if jumps:
            assert m["jumps"]["max"] == max(jumps)
            assert m["jumps"]["mean"] == pytest.approx(sum(jumps) / len(jumps), abs=1e-3)
            assert m["jumps"]["count"] == len(jumps)
        assert m["gaps"]["skipped_values"] == lines[-1]["lclock"] - len(lines)
        stop = read_lines(run / f"machine-{m['id']}.jsonl")[-1]
        assert m["queue"]["final"] == stop["unprocessed"]
        assert m["achieved_rate"] == pytest.approx(m["rate"], rel=0.01)


def test_concurrency_matches_brute_force(tmp_path: Path) -> None:
    r = make_run(tmp_path / "small", rates=(2, 3, 5), duration=8.0)
    s = analyze_run(r)
    events = []
    for i in (1, 2, 3):
        events += [(i, d["vclock"]) for d in read_lines(r / f"machine-{i}.jsonl") if "tick" in d]

    def before(a: list[int], b: list[int]) -> bool:
        return all(x <= y for x, y in zip(a, b, strict=True)) and a != b

    conc = pairs = 0
    for (i, a), (j, b) in itertools.combinations(events, 2):
        if i == j:
            continue
        pairs += 1
        conc += not before(a, b) and not before(b, a)
    assert s["concurrency"]["pairs"] == pairs
    assert s["concurrency"]["concurrent"] == conc


def test_drift_is_the_spread_of_the_clocks(run: Path) -> None:
    s = analyze_run(run)
    d = s["drift"]
    final = [m for m in s["machines"]]
    last = []
    for m in final:
        lines = [x for x in read_lines(run / f"machine-{m['id']}.jsonl") if "tick" in x]
        last.append(lines[-1]["lclock"])
    assert d["final"] == max(last) - min(last)
    assert d["fastest"] == 3 and d["max"] >= d["final"]


def test_theory_matches_a_hand_solution() -> None:
    """Rates 1, 3, 6 and a d10: machine 1 saturates; solved by hand in the module docs."""
    lam, dice_rate = theory([1.0, 3.0, 6.0], 10)
    assert dice_rate[0] == pytest.approx(0.0, abs=1e-9)
    assert dice_rate[2] == pytest.approx(5.625, rel=1e-6)
    assert lam[0] == pytest.approx(1.5, rel=1e-6)
    assert lam[0] - 1.0 == pytest.approx(0.5, rel=1e-6)


def test_peer_faces_two_machines_all_three_faces() -> None:
    assert peer_faces(2).tolist() == [[0, 3], [3, 0]]
    assert np.all(peer_faces(5).sum(axis=1) == 6)


def test_theory_predicts_the_slow_machines_queue() -> None:
    s = analyze_run(SAMPLE)
    m1 = s["machines"][0]
    assert m1["theory"]["growth_per_s"] == pytest.approx(0.5, abs=0.01)
    assert m1["queue"]["growth_per_s"] == pytest.approx(0.5, abs=0.15)
    assert s["machines"][2]["theory"]["growth_per_s"] == 0
    assert len(headlines(s)) == 3


def test_cli_prints_tables_and_writes_summary(tmp_path: Path) -> None:
    r = copy_run(SAMPLE if SAMPLE.exists() else make_run(tmp_path / "g"), tmp_path / "copy")
    p = subprocess.run([sys.executable, "-m", "lclock", "analyze", str(r)], capture_output=True,
                       text=True, cwd=REPO, timeout=120)
    assert p.returncode == 0, p.stderr
    for title in ("Lamport jumps on receive", "Drift:", "Theory:", "Queues and message delay"):
        assert title in p.stdout
    s = orjson.loads((r / "summary.json").read_bytes())
    assert s == analyze_run(r)


def test_cli_bad_input_exit_2(tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, "-m", "lclock", "analyze", str(tmp_path / "x")],
                       capture_output=True, text=True, cwd=REPO, timeout=60)
    assert p.returncode == 2 and "no such folder" in p.stderr and "Traceback" not in p.stderr


def test_damaged_run_still_analysed(tmp_path: Path, run: Path) -> None:
    r = copy_run(run, tmp_path / "d")
    data = (r / "machine-2.jsonl").read_bytes()
    (r / "machine-2.jsonl").write_bytes(data[:-30])  # torn, stop line lost
    s = analyze_run(r)
    assert s["machines"][1]["stopped"] is False
    assert s["skipped_lines"] >= 1


def _same_runs(a: object, b: object) -> None:
    assert a.machines.keys() == b.machines.keys()  # type: ignore[attr-defined]
    for k in a.machines:  # type: ignore[attr-defined]
        x, y = a.machines[k], b.machines[k]  # type: ignore[attr-defined]
        for f in ("line", "tick", "lclock", "qlen", "kind", "dice", "frm", "msg", "to_ptr",
                  "to_ids", "vclock"):
            u, v = getattr(x, f), getattr(y, f)
            assert (u is None and v is None) or (u.dtype == v.dtype and np.array_equal(u, v)), f
        assert np.allclose(x.ts, y.ts, equal_nan=True, atol=1e-6)
        assert (x.start, x.stop, x.skipped) == (y.start, y.stop, y.skipped)
    assert [str(i) for i in a.issues] == [str(i) for i in b.issues]  # type: ignore[attr-defined]


@pytest.mark.parametrize("vector", [True, False])
def test_byte_reader_agrees_with_orjson(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        vector: bool) -> None:
    """The vectorised reader (analyze's speed) must decode exactly what orjson does, also
    when a chunk mixes odd lines: spaces after colons, extra keys, a nested duplicate key,
    a huge number, a torn last line."""
    from lclock.analysis import load as L

    monkeypatch.setattr(L, "CHUNK_BYTES", 4096)  # many chunks, so the byte path is used
    r = make_run(tmp_path / "r", rates=(7, 3, 9, 5), duration=30.0, vector=vector)
    p = r / "machine-3.jsonl"
    lines = p.read_bytes().splitlines(keepends=True)
    lines[40] = lines[40].replace(b'"lclock":', b'"lclock": ')
    lines[41] = lines[41].replace(b'"tick":', b'"extra":{"tick":1},"tick":')
    lines[42] = lines[42].replace(b'"queue_len":0', b'"queue_len":99999999999')
    lines[43] = lines[43].replace(b'"level":"info"', b'"level":"info","note":"a \\"ts\\": b"')
    lines[44] = lines[44].replace(b'"queue_len":0', b'"queue_len":0.0')
    lines[45] = lines[45].replace(b'"tick":', b'"tick":1e0,"t":')
    p.write_bytes(b"".join(lines)[:-10])
    monkeypatch.setattr(L, "USE_FASTPARSE", False)
    careful = L.load_run(r)
    monkeypatch.setattr(L, "USE_FASTPARSE", True)
    from lclock.analysis import fastparse

    taken = []
    real = fastparse.parse_chunk

    def counting(*args: object, **kw: object) -> object:
        res = real(*args, **kw)  # type: ignore[arg-type]
        taken.append(0 if res is None else len(res.taken))
        return res

    monkeypatch.setattr(fastparse, "parse_chunk", counting)
    fast = L.load_run(r)
    assert sum(taken) > 0.8 * fast.events  # the byte reader really did the work
    _same_runs(careful, fast)
    if SAMPLE.exists():
        monkeypatch.setattr(L, "USE_FASTPARSE", False)
        a = L.load_run(SAMPLE)
        monkeypatch.setattr(L, "USE_FASTPARSE", True)
        _same_runs(a, L.load_run(SAMPLE))


@pytest.mark.parametrize(
    ("rates", "sides"),
    [([1, 3, 6], 10), ([10] * 64, 10), ([1] * 20, 5), (list(range(1, 21)), 5), ([1, 2, 3, 4, 5, 6], 3)],
)
def test_theory_is_the_fixed_point_for_many_machines(rates: list[int], sides: int) -> None:
    """d = max(0, r - d K) must hold; a half-damped iteration oscillated for large N."""
    import numpy as np

    from lclock.analysis.analyze import peer_faces, theory

    lam, d = theory(rates, sides)
    k = peer_faces(len(rates)) / sides
    r = np.asarray(rates, dtype=float)
    assert np.max(np.abs(d - np.maximum(0.0, r - d @ k))) < 1e-9
    assert np.allclose(lam, d @ k)
    assert (d >= 0).all()


@pytest.mark.parametrize("rates", [(3, 3, 3), (2, 5, 5), (4, 4, 1, 4)])
def test_ties_are_named_and_behind_is_never_negative(tmp_path: Path, rates: tuple[int, ...]) -> None:
    """Equal rates: 'the fastest' is every machine with the top rate, said so; how far a
    clock is behind is measured from the leading clock, so it is never negative."""
    r = make_run(tmp_path / "r", rates=rates, duration=30.0, seed=4)
    s = analyze_run(r)
    top = max(rates)
    tied = [i for i, x in enumerate(rates, 1) if x == top]
    assert s["drift"]["fastest_ids"] == tied
    for v in s["drift"]["behind_leader"].values():
        assert v["mean"] >= 0 and v["max"] >= 0 and v["final"] >= 0
    drift = headlines(s)[1]
    if len(tied) == len(rates):
        assert "every machine runs at the same rate" in drift
    else:
        names = ", ".join(map(str, tied[:-1])) + f" and {tied[-1]}"
        assert f"machines {names} (rate {top}) are the fastest" in drift
    p = subprocess.run([sys.executable, "-m", "lclock", "analyze", str(r), "--no-write"],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    table = p.stdout.split("behind the leading one", 1)[1].split("\n\n", 1)[0]
    rows = [line.split() for line in table.splitlines()[3:] if line.strip()]
    assert len(rows) == len(rates) and all(float(x) >= 0 for row in rows for x in row[1:]), table
