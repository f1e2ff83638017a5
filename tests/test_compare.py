"""``lclock compare`` and the saturation rule: runs made by hand, experiment folders, both."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from lclock.experiment.compare import display_rows, group_summary
from lclock.experiment.metrics import run_metrics, saturated
from lclock.experiment.stats import mean_ci

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def lclock(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lclock", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=ENV)  # fmt: skip


# -- the saturation rule ------------------------------------------------------------------


@pytest.mark.parametrize("received, left, growth, expected", [
    (100, 30, 0.5, True),      # a third of what arrived still waits, and the queue grew
    (10, 10, None, True),      # no slope known: the share decides
    (100, 4, 0.5, False),      # a few leftovers are not saturation
    (1000, 50, 0.1, False),    # 5% of what arrived: a stable, long queue
    (100, 30, -0.2, False),    # a burst at the end of a shrinking queue
    (0, 0, None, False),
])  # fmt: skip
def test_saturation_rule(received: int, left: int, growth: float | None, expected: bool) -> None:
    assert saturated(received, left, growth) is expected


def _run(k: int, sat: bool, jump: float) -> dict:
    machine = {"mean_jump": jump, "max_jump": 3, "drift_mean": 1.0, "drift_max": 2,
               "max_queue": 40 if sat else 2, "gap_fraction": 0.1, "queue_growth": 0.0}
    return {"trial": k, "status": "completed", "saturated": [1] if sat else [],
            "slowest": {"id": 1, "rate": 1, **machine}, "fastest": {"id": 3, "rate": 6, **machine},
            "spread_mean": 1.0, "spread_max": 2}  # fmt: skip


def test_a_mixed_group_is_never_one_mean() -> None:
    runs = [_run(1, True, 4.0), _run(2, False, 2.0), _run(3, True, 5.0), _run(4, False, 2.5),
            {"trial": 5, "status": "failed", "error": "x"}]
    g = group_summary("x", runs)
    assert g["completed"] == 4 and g["saturated_runs"] == 2
    assert g["by_saturation"]["saturated"]["slowest"]["mean_jump"]["mean"] == 4.5
    assert g["by_saturation"]["unsaturated"]["slowest"]["mean_jump"]["mean"] == 2.25
    rows = display_rows([g])
    assert [r["label"] for r in rows] == ["x (saturated: 2)", "x (not saturated: 2)"]
    assert [len(r["runs"]) for r in rows] == [2, 2]
    # all alike: one row, marked when they all saturated
    (row,) = display_rows([group_summary("y", [_run(1, True, 4.0), _run(2, True, 5.0)])])
    assert row["label"] == "y (saturated)" and "by_saturation" not in group_summary("y", [])


def test_eight_groups_fit_a_terminal() -> None:
    """Eight groups named by their whole settings: the table stays within the width, its
    columns headed A..H with the full names in a key below; every number is still there."""
    from lclock.experiment.compare import fitted, render_text, side_by_side

    names = [f"8 machines, rates 1,2,3,4,5,6,7,{k}, 10-sided die, 60 s, faults loss=0.{k} (sim)"
             for k in range(8)]
    groups = [group_summary(n, [_run(1, False, 2.0 + k), _run(2, False, 2.5 + k)])
              for k, n in enumerate(names)]
    text = render_text(groups, width=100)
    table = text.split("\n\n")[1:-1]
    assert all(len(line) <= 100 for part in table for line in part.splitlines()), text
    for k, n in enumerate(names):
        assert f"{'ABCDEFGH'[k]} = {n}" in text
    headers, body = side_by_side(display_rows(groups))
    *blocks, key = "\n".join(fitted(headers, body, 100)).split("\n\n")
    assert len(blocks) > 1 and key.splitlines()[0] == f"A = {names[0]}"
    rows = [[re.split(r"\s{2,}", line.strip()) for line in b.splitlines()[2:]] for b in blocks]
    for i, row in enumerate(body):  # each metric's cells, in order, across the blocks
        cells = [c for block in rows for c in block[i][1:]]
        assert cells == [c for c in row[1:] if c], row[0]
    assert f"A = {names[0]}" not in render_text(groups[:1], width=200)  # it fits: its own name


# -- runs made by hand --------------------------------------------------------------------


@pytest.fixture(scope="module")
def hand_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("hand")
    for seed in (1, 2, 3):
        for rates in ("2,3,4", "5,5,6"):
            r = lclock("sim", "--rates", rates, "--duration", "30", "--seed", str(seed),
                       "--output", str(out), "--quiet", "--no-report")
            assert r.returncode == 0, r.stderr
    return sorted(p for p in out.iterdir() if p.is_dir())


def test_compare_runs_made_by_hand(hand_runs: list[Path], tmp_path: Path) -> None:
    fig = tmp_path / "cmp.png"
    r = lclock("compare", *map(str, hand_runs), "--figure", str(fig), "--runs")
    assert r.returncode == 0, r.stderr
    text = r.stdout
    slow_group = "3 machines, rates 2,3,4, 10-sided die, 30 s (sim)"
    assert slow_group in text and "3 machines, rates 5,5,6, 10-sided die, 30 s (sim)" in text
    assert "3 of 3 runs completed" in text and "mean jump" in text and "max spread" in text
    for run in hand_runs:  # --runs lists every run
        assert str(run) in text
    assert fig.stat().st_size > 10_000 and f"figure: {fig}" in text
    # the numbers are lclock analyze's, and the interval is over the runs
    data = orjson.loads(lclock("compare", *map(str, hand_runs), "--json").stdout)
    (g,) = [g for g in data["groups"] if g["name"] == slow_group]
    mine = [run_metrics(p) for p in hand_runs if "rates 2,3,4" in _label(p)]
    jumps = [min(m["machines"], key=lambda x: x["rate"])["mean_jump"] for m in mine]
    assert g["slowest"]["mean_jump"] == mean_ci(jumps) and g["completed"] == 3
    assert "seed" not in g["settings"] and g["settings"]["rates"] == [2, 3, 4]


def test_groups_that_differ_only_in_faults_or_clocks_say_how(tmp_path: Path) -> None:
    """Two groups of runs with the same model but other faults are told apart by their
    faults, not by a bare "#2" under the same name."""
    flags = [(), ("--loss", "0.3"), ("--latency", "50", "--latency-dist", "exponential",
                                      "--clock-skew", "100", "--partition", "5-10:1")]
    for extra in flags:
        r = lclock("sim", "--rates", "1,3,6", "--duration", "20", "--seed", "1", *extra,
                   "--output", str(tmp_path), "--quiet", "--no-report")
        assert r.returncode == 0, r.stderr
    r = lclock("compare", *map(str, sorted(tmp_path.iterdir())))
    assert r.returncode == 0, r.stderr
    base = "3 machines, rates 1,3,6, 10-sided die, 20 s"
    heads = {line.split(":")[0] for line in r.stdout.splitlines() if line.startswith(base)}
    assert heads == {f"{base} (sim)", f"{base}, faults loss=0.3 (sim)",
                     f"{base}, faults latency_ms=50 latency_dist=exponential partitions=1; "
                     "clocks skew_ms=100 (sim)"}, heads
    assert "#2" not in r.stdout


def _label(run: Path) -> str:
    s = orjson.loads((run / "run.json").read_bytes())["settings"]
    return "rates " + ",".join(map(str, s["rates"]))


def test_compare_counts_only_completed_runs(hand_runs: list[Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(hand_runs[0], broken)
    meta = orjson.loads((broken / "run.json").read_bytes())
    meta["status"], meta["reason"] = "interrupted", "sigint"
    (broken / "run.json").write_bytes(orjson.dumps(meta))
    r = lclock("compare", str(hand_runs[0]), str(broken))
    assert r.returncode == 0, r.stderr
    assert "1 of 2 runs completed" in r.stdout
    assert f"not counted: {broken} (interrupted: run interrupted: sigint)" in r.stdout


@pytest.mark.parametrize("make, fragment", [
    (lambda p: p / "nope", "no such folder"),
    (lambda p: p, "neither a run folder"),
    (lambda p: (p / "f.txt").write_text("x") and p / "f.txt", "not a folder"),
])  # fmt: skip
def test_compare_bad_input(tmp_path: Path, make, fragment: str) -> None:
    r = lclock("compare", str(make(tmp_path)))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and fragment in r.stderr, r.stderr
    assert r.stderr.startswith("lclock compare: error: ")


# -- experiment folders -------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_experiments(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """baseline with seeds 4..6 for 20 s: trials 1 and 3 saturate machine 1, trial 2 not."""
    root = tmp_path_factory.mktemp("exps")
    a, b = root / "a", root / "b"
    for out, names in ((a, ["baseline"]), (b, ["small-variation", "baseline"])):
        r = lclock("experiment", *names, "--sim", "--trials", "3", "--duration", "20", "--seed",
                   "4", "--output", str(out), "--no-report", "--no-plots", "--quiet")
        assert r.returncode == 0, r.stderr
    return a, b


def test_experiment_summary_shows_saturated_trials_apart(two_experiments: tuple[Path, Path]) -> None:
    a, _ = two_experiments
    summary = orjson.loads((a / "summary.json").read_bytes())
    (e,) = summary["experiments"]
    assert [bool(r["saturated"]) for r in e["runs"]] == [True, False, True]
    assert e["saturated_runs"] == 2 and set(e["by_saturation"]) == {"saturated", "unsaturated"}
    md = (a / "summary.md").read_text()
    assert "| baseline (saturated: 2) |" in md and "| baseline (not saturated: 1) |" in md
    assert "| baseline | 1 |" not in md.split("## Runs")[0]  # no row that mixes both kinds
    assert "Saturated trials: a machine is saturated when" in md


def test_compare_experiment_folders(two_experiments: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = two_experiments
    r = lclock("compare", str(b))
    assert r.returncode == 0, r.stderr
    assert "small-variation [" in r.stdout and "baseline (saturated: 2)" in r.stdout
    # several experiment folders: the groups are named by folder
    data = orjson.loads(lclock("compare", str(a), str(b), "--json").stdout)
    assert [g["name"] for g in data["groups"]] == ["a/baseline", "b/small-variation", "b/baseline"]
    base_a, base_b = data["groups"][0], data["groups"][2]
    assert base_a["slowest"] == base_b["slowest"]  # same seeds, same settings, same numbers
    # the experiment's own summary and compare agree
    own = orjson.loads((a / "summary.json").read_bytes())["experiments"][0]
    assert own["slowest"] == base_a["slowest"] and own["by_saturation"] == base_a["by_saturation"]
    # an experiment folder and runs together
    run = b / "baseline" / "trial-2"
    r = lclock("compare", str(a), str(run))
    assert r.returncode == 0 and "1 of 1 runs completed" in r.stdout


def test_old_layout_still_reads(two_experiments: tuple[Path, Path], tmp_path: Path) -> None:
    """Folders of the previous version: <name>/trial-<k>/<run_id>/, experiment.json with
    names and trials only. --summarize and compare read them."""
    a, _ = two_experiments
    old = tmp_path / "old"
    shutil.copytree(a, old)
    for k in (1, 2, 3):
        trial = old / "baseline" / f"trial-{k}"
        run_id = orjson.loads((trial / "run.json").read_bytes())["run_id"]
        tmp = old / "baseline" / "tmp"
        trial.rename(tmp)
        trial.mkdir()
        tmp.rename(trial / run_id)
    meta = orjson.loads((old / "experiment.json").read_bytes())
    del meta["experiments"]
    (old / "experiment.json").write_bytes(orjson.dumps(meta))
    r = lclock("experiment", "--summarize", str(old), "--quiet")
    assert r.returncode == 0, r.stderr
    new = orjson.loads((old / "summary.json").read_bytes())["experiments"][0]
    ref = orjson.loads((a / "summary.json").read_bytes())["experiments"][0]
    assert new["slowest"] == ref["slowest"] and new["completed"] == 3
    assert new["runs"][0]["run_dir"].startswith("baseline/trial-1/sim-")
    assert lclock("compare", str(old)).returncode == 0
