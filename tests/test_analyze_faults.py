"""analyze, report and export on faults and clocks (issues 10 and 11, SPEC 6 and 7.5).

The figures of summary.json are recomputed here from the raw log lines with plain Python
(no numpy, no lclock.analysis), so a mistake in the vectorised analysis cannot hide
behind the same mistake in its test.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import re
import subprocess
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from analysis_fixtures import copy_run, read_lines, write_lines
from test_check_faults import FAULTY
from test_consistency import sim
from test_export import shiviz_validate

from lclock.analysis.analyze import analyze_run, render
from lclock.analysis.export import write_csv, write_shiviz
from lclock.analysis.load import load_run
from lclock.analysis.report import FIGURES, write_report
from lclock.analysis.spacetime import choose_window, fault_anchor

REPO = Path(__file__).resolve().parents[1]
TICKS = ("send", "receive", "internal")


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sim(tmp_path_factory.mktemp("faulty"), *FAULTY)


@pytest.fixture(scope="module")
def summary(faulty: Path) -> dict[str, Any]:
    return analyze_run(faulty)


def since_t0(ts: str) -> float:
    """Seconds after the simulator's epoch (2026-01-01T00:00:00Z)."""
    t = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return (t - datetime(2026, 1, 1, tzinfo=timezone.utc)).total_seconds()


def logs(run: Path) -> dict[int, list[dict[str, Any]]]:
    return {int(p.stem.split("-")[1]): read_lines(p) for p in sorted(run.glob("machine-*.jsonl"))}


def message_pairs(run: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(send line, receive line) of every handled message, matched by hand."""
    ls = logs(run)
    sends = {(m, d["lclock"]): d for m, lines in ls.items() for d in lines if d["event"] == "send"}
    return [(sends[(d["from"], d["msg_lclock"])], d) for lines in ls.values() for d in lines
            if d["event"] == "receive"]


# ------------------------------------------------------------------ the clocks compared


def test_clock_comparison_counts_what_the_logs_show(faulty: Path,
                                                    summary: dict[str, Any]) -> None:
    c = summary["clocks"]
    pairs = message_pairs(faulty)
    assert c["messages"]["pairs"] == len(pairs)
    wrong_pt = sum(s["pt"] > r["pt"] for s, r in pairs)
    tied_pt = sum(s["pt"] == r["pt"] for s, r in pairs)
    assert wrong_pt > 0, "100 ms of skew must misorder some messages"
    assert c["messages"]["pt"]["misordered"] == wrong_pt
    assert c["messages"]["pt"]["tied"] == tied_pt
    assert c["messages"]["pt"]["misordered_share"] == round(wrong_pt / len(pairs), 6)
    for clock in ("lamport", "hlc"):
        assert c["messages"][clock]["misordered"] == 0 and c["messages"][clock]["tied"] == 0
    assert c["logical_clocks_ok"] is True
    ticks = [d for lines in logs(faulty).values() for d in lines if d["event"] in TICKS]
    assert c["hlc"]["max_l_minus_pt_us"] == max(d["hlc"][0] - d["pt"] for d in ticks)
    assert c["hlc"]["max_c"] == max(d["hlc"][1] for d in ticks)
    assert c["hlc"]["within_bound"] is True
    assert c["bytes_per_message"] == {"lamport": 8, "vector": 32, "pt": 8, "hlc": 12}


def test_the_sample_is_classified_by_the_vector_clocks(faulty: Path,
                                                       summary: dict[str, Any]) -> None:
    s = summary["clocks"]["sample"]
    assert s["seed"] == 3 and 99_000 < s["pairs"] <= 100_000
    assert s["causal"] + s["concurrent"] == s["pairs"] and s["concurrent"] > 0
    for clock in ("lamport", "hlc"):
        assert s["causal_misordered"][clock]["misordered"] == 0
    for clock in ("pt", "lamport", "hlc"):
        o = s["concurrent_order"][clock]
        assert abs(o["before"] + o["after"] + o["equal"] - 1) < 1e-5
    assert analyze_run(faulty)["clocks"] == summary["clocks"]  # seeded: the same sample


def test_sampled_pairs_by_hand(faulty: Path) -> None:
    """The classification rule, on pairs picked by hand: a message's send and receive are
    causal; two events whose vector clocks are incomparable are concurrent."""
    from lclock.analysis.clockcmp import _causal, _concurrent, gather

    run = load_run(faulty)
    ev = gather(run)
    assert ev.own is not None
    import numpy as np

    vec = np.concatenate([run.machines[i].vclock for i in run.ids])  # type: ignore[misc]
    rows = []
    for a in range(0, ev.n, 97):
        for b in range(5, ev.n, 89):
            if a == b or ev.machine[a] == ev.machine[b]:
                continue
            le = bool(np.all(vec[a] <= vec[b]))
            ge = bool(np.all(vec[b] <= vec[a]))
            rows.append((a, b, not le and not ge))
    conc = [(a, b) for a, b, c in rows if c]
    assert conc
    a = np.array([x for x, _ in conc])
    b = np.array([y for _, y in conc])
    out = _concurrent(ev, a, b)
    lam = sum((ev.lamport[x] < ev.lamport[y]) == (ev.ts[x] <= ev.ts[y])
              and ev.lamport[x] != ev.lamport[y] for x, y in conc)
    assert abs(out["lamport"]["before"] - lam / len(conc)) < 1e-6
    early = np.array([x if np.all(vec[x] <= vec[y]) else y for x, y, c in rows if not c])
    late = np.array([y if np.all(vec[x] <= vec[y]) else x for x, y, c in rows if not c])
    assert _causal(ev, early, late)["hlc"]["misordered"] == 0


def test_a_clock_condition_violation_is_said(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    ls = read_lines(run / "machine-1.jsonl")
    d = next(x for x in ls if x["event"] == "receive" and x["msg_lclock"] > 5)
    d["lclock"] = d["msg_lclock"]  # C(send) = C(receive)
    write_lines(run / "machine-1.jsonl", ls)
    s = analyze_run(run)
    assert s["clocks"]["logical_clocks_ok"] is False
    assert s["clocks"]["messages"]["lamport"]["tied"] == 1
    assert "VIOLATION" in render(s)


@pytest.mark.parametrize("flags, vector, hlc", [(("--clocks", "none"), False, False),
                                                (("--no-vector-clocks",), False, True)])
def test_clocks_not_kept(tmp_path: Path, flags: tuple[str, ...], vector: bool, hlc: bool) -> None:
    run = sim(tmp_path, *FAULTY, *flags)
    c = analyze_run(run)["clocks"]
    assert c["kept"]["vector"] is vector and c["kept"]["hlc"] is hlc
    assert c["sample"] is None  # nothing classifies pairs without vector clocks
    assert (c["messages"]["hlc"] is None) is not hlc
    assert c["bytes_per_message"]["vector"] is None
    assert "Clocks compared" in render(analyze_run(run))


# ------------------------------------------------------------------ faults


def test_drops_per_link_are_the_drop_lines(faulty: Path, summary: dict[str, Any]) -> None:
    f = summary["faults"]
    want: Counter[tuple[str, str]] = Counter()
    sent: Counter[str] = Counter()
    twice: Counter[str] = Counter()
    for m, lines in logs(faulty).items():
        for d in lines:
            if d["event"] == "drop":
                want[(f"{m}->{d['to']}", d["reason"])] += 1
            if d["event"] == "send":
                for j in d["to"]:
                    sent[f"{m}->{j}"] += 1
                for j in d.get("dup_to", []):
                    twice[f"{m}->{j}"] += 1
    for link, e in f["links"].items():
        assert e["sent"] == sent[link]
        assert e["duplicated"] == twice[link]
        for reason in ("loss", "partition", "crashed"):
            assert e[reason] == want[(link, reason)], (link, reason)
    assert sum(f["dropped"].values()) == sum(want.values())
    assert f["partitions"] == [{"start": 10.0, "end": 20.0, "groups": [[1]]}]
    assert f["pauses"] == [{"machine": 2, "start": 22.0, "end": 27.0}]
    assert f["crashes"] == [{"machine": 3, "time": 32.0}]


def test_the_jump_after_a_heal_and_a_resume(faulty: Path, summary: dict[str, Any]) -> None:
    after = summary["faults"]["after"]
    assert {(a["machine"], a["after"]) for a in after} >= {(1, "heal"), (2, "resume")}
    for a in after:
        ls = logs(faulty)[a["machine"]]
        ticks = [d for d in ls if d["event"] in TICKS]
        k = next(i for i, d in enumerate(ticks) if d["event"] == "receive"
                 and since_t0(d["ts"]) >= a["at_s"] - 1e-9)
        prev = ticks[k - 1]["lclock"] if k else 0
        assert a["jump"] == ticks[k]["lclock"] - prev, a
        assert a["from"] == ticks[k]["from"]


def test_lateness_counts_the_ticks_a_pause_skipped(faulty: Path, summary: dict[str, Any]) -> None:
    """Tick k of a machine that skipped s ticks is due at (k - 1 + s)/rate, as check says:
    a pause must not make every later tick look seconds late."""
    meta = json.loads((faulty / "run.json").read_text())
    rate = next(m["rate"] for m in meta["machines"] if m["id"] == 2)
    skipped, late = 0, []
    for d in logs(faulty)[2]:
        if d["event"] == "resume":
            skipped += d["skipped"]
        elif d["event"] in TICKS:
            late.append(since_t0(d["ts"]) - (d["tick"] - 1 + skipped) / rate)
    assert skipped > 0
    got = next(m for m in summary["machines"] if m["id"] == 2)["lateness"]
    assert got["max"] == pytest.approx(max(late), abs=1e-5)
    assert got["mean"] == pytest.approx(sum(late) / len(late), abs=1e-5)
    assert got["max"] < 0.1


def test_tables_show_clocks_and_faults(summary: dict[str, Any]) -> None:
    text = render(summary)
    for want in ("Clocks compared (SPEC 7.5)", "physical pt", "OK: Lamport and HLC order every "
                 "causal pair", "Faults:", "partition 10-20 s: 1 | 2,3,4",
                 "pause of machine 2: 22-27 s", "crash of machine 3 at 32 s",
                 "first receive after a partition heals or a pause ends"):
        assert want in text, want
    assert json.loads(json.dumps(summary)) == summary  # plain JSON types


def test_a_run_without_faults_has_none(tmp_path: Path) -> None:
    run = sim(tmp_path, "--machines", "3", "--duration", "10", "--seed", "2")
    s = analyze_run(run)
    assert s["faults"] is None and s["clocks"]["logical_clocks_ok"] is True
    assert "Faults:" not in render(s)


# ------------------------------------------------------------------ report


def test_report_shows_the_clocks_and_the_faults(tmp_path: Path, faulty: Path) -> None:
    summary, _, page = write_report(faulty, tmp_path / "out")
    assert "clockcmp" in FIGURES and (tmp_path / "out" / "clockcmp.png").stat().st_size > 1000
    html = page.read_text()
    for want in ("The clocks compared", "Faults", "dropped %", "three clocks",
                 "Lamport and HLC order"):
        assert want in html, want
    run = load_run(faulty)
    lo, hi = choose_window(run, None, fault_anchor(summary["faults"], run))
    assert lo < 10.0 < hi, (lo, hi)  # the space-time diagram shows the partition begin


# ------------------------------------------------------------------ exports


def test_csv_gains_the_clock_columns(faulty: Path) -> None:
    out = io.StringIO()
    n = write_csv(load_run(faulty), out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(rows) == n
    for col in ("pt", "hlc_l", "hlc_c", "msg_pt", "msg_hlc_l", "msg_hlc_c", "dup"):
        assert col in rows[0]
    by_line = {(int(r["machine"]), int(r["line"])): r for r in rows}
    dups = 0
    for m, lines in logs(faulty).items():
        for num, d in enumerate(lines, 1):
            if d["event"] not in TICKS:
                assert (m, num) not in by_line
                continue
            r = by_line[(m, num)]
            assert int(r["pt"]) == d["pt"] and [int(r["hlc_l"]), int(r["hlc_c"])] == d["hlc"]
            if d["event"] == "receive":
                assert int(r["msg_pt"]) == d["msg_pt"]
                assert [int(r["msg_hlc_l"]), int(r["msg_hlc_c"])] == d["msg_hlc"]
                assert r["dup"] == ("true" if d.get("dup") else "false")
                dups += r["dup"] == "true"
            else:
                assert r["msg_pt"] == "" and r["dup"] == ""
    assert dups > 0


def test_shiviz_of_a_faulty_run_stays_valid(faulty: Path) -> None:
    out = io.StringIO()
    n = write_shiviz(load_run(faulty), out)
    ticks = sum(d["event"] in TICKS for lines in logs(faulty).values() for d in lines)
    assert n == ticks  # drop, fault, pause lines are not events
    entries = shiviz_validate(out.getvalue())
    assert len(entries) == ticks
    assert any(" pt=" in e[1] and " hlc=" in e[1] for e in entries)


def test_cli_analyze_writes_the_new_summary(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    p = subprocess.run([sys.executable, "-m", "lclock", "analyze", str(run)],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert p.returncode == 0, p.stderr
    s = json.loads((run / "summary.json").read_text())
    assert s["clocks"]["logical_clocks_ok"] is True and s["faults"]["crashes"]


def test_a_small_run_compares_every_pair_once(tmp_path: Path) -> None:
    """Fewer distinct pairs than the sample's size: each pair once, and the concurrent ones
    are exactly those whose vector clocks are incomparable (counted by hand here)."""
    run = sim(tmp_path, "--duration", "4", "--rates", "1,2,3", "--clock-skew", "10")
    s = analyze_run(run)["clocks"]["sample"]
    ticks = [d for lines in logs(run).values() for d in lines if d["event"] in TICKS]
    n = len(ticks)
    assert s["every_pair"] is True and s["pairs"] == n * (n - 1) // 2

    def before(x: dict[str, Any], y: dict[str, Any]) -> bool:
        return all(a <= b for a, b in zip(x["vclock"], y["vclock"], strict=True))

    conc = sum(not before(x, y) and not before(y, x)
               for k, x in enumerate(ticks) for y in ticks[k + 1:])
    assert s["concurrent"] == conc and s["causal"] == s["pairs"] - conc
    assert "every one of the" in render(analyze_run(run))


def test_a_planned_crash_is_not_shown_as_a_machine_that_failed_to_stop(tmp_path: Path) -> None:
    run = sim(tmp_path, "--duration", "5", "--rates", "1,2,3", "--crash", "3@2")
    ms = {m["id"]: m for m in analyze_run(run)["machines"]}
    assert ms[3]["stopped"] is False and ms[3]["crashed_as_planned"] is True
    assert "crashed_as_planned" not in ms[1]
    rows = [r.split() for r in render(analyze_run(run)).splitlines() if r.strip().startswith("3 ")]
    assert rows and rows[0][-1] == "crashed"


def test_a_link_with_sends_and_no_drops_is_listed(summary: dict[str, Any]) -> None:
    """The faults table lists every link that carried messages: a clean link is a finding
    too (it shows where the faults did not reach), in the text and in the report."""
    from lclock.analysis.report_page import render_html

    s = copy.deepcopy(summary)
    link = next(iter(s["faults"]["links"]))
    s["faults"]["links"][link].update(sent=17, loss=0, partition=0, crashed=0, dropped=0,
                                      duplicated=0)
    row = re.compile(rf"^\s*{re.escape(link)}\s+17\s+0\s+0\s+0\s+0\s+0$", re.M)
    assert row.search(render(s)), render(s)
    page = render_html(s, ["h"], {}, (0.0, 1.0))
    assert f"<td>{link.replace('>', '&gt;')}</td><td>17</td>" in page
