"""The explorer's cuts agree with ``lclock cuts``: the page's judge (lclock/explorer/js/cuts.mjs,
run by node on the data ``lclock view`` embeds) and the command's, fed the same runs and the
same cuts, give the same verdict, the same crossing message and the same count; and each
snapshot's recorded cut is embedded and judged as the command judges it.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cut_fixtures import add_snapshots, play, write
from test_explorer_js import REPO, needs_node, run_node

from lclock.analysis.causal import Causality
from lclock.analysis.cuts import Channels
from lclock.analysis.cuts_cmd import answer
from lclock.analysis.load import load_run
from lclock.explorer import page
from lclock.explorer.extract import build

JUDGE = """
import { readFileSync } from "node:fs";
import { decodeRuns } from "%s";
import { countsOfTicks, crossingInfo, judge, snapshotCuts } from "%s";
const [run] = decodeRuns(JSON.parse(readFileSync(process.argv[2], "utf8")));
const cuts = JSON.parse(readFileSync(process.argv[3], "utf8"));
const out = cuts.map((c) => { const j = judge(run, countsOfTicks(run, c));
  return { consistent: j.consistent, crossing: crossingInfo(run, j.crossing), count: j.count }; });
const snaps = snapshotCuts(run).map((s) => ({ id: s.id, consistent: s.verdict.consistent, count: s.verdict.count,
  crossing: crossingInfo(run, s.verdict.crossing), channels: Object.fromEntries(s.parts) }));
console.log(JSON.stringify({ cuts: out, snaps }));
"""


def sim_run(out: Path) -> Path:
    p = subprocess.run([sys.executable, "-m", "lclock", "sim", "--quiet", "--no-report", "--machines", "3",
                        "--duration", "8", "--seed", "5", "--output", str(out)],
                       capture_output=True, text=True, cwd=REPO, timeout=180)
    assert p.returncode == 0, p.stderr
    (run,) = [d for d in out.iterdir() if d.is_dir()]
    return run


def random_cuts(last: dict[int, int], count: int, seed: int) -> list[dict[int, int]]:
    rng = random.Random(seed)
    return [{m: rng.randint(0, t) for m, t in last.items()} for _ in range(count)]


def page_answers(run: Path, cuts: list[dict[int, int]], tmp: Path) -> dict[str, Any]:
    data, _ = build(run)
    (tmp / "data.json").write_bytes(page.data_json({"runs": [data]}))
    (tmp / "cuts.json").write_text(json.dumps([{str(m): t for m, t in c.items()} for c in cuts]))
    js = REPO / "lclock" / "explorer" / "js"
    (tmp / "judge.mjs").write_text(JUDGE % tuple((js / f).as_uri() for f in ("data.mjs", "cuts.mjs")))
    p = run_node("judge.mjs", str(tmp / "data.json"), str(tmp / "cuts.json"), cwd=tmp)
    assert p.returncode == 0, p.stderr
    out: dict[str, Any] = json.loads(p.stdout)
    return out


def command_answers(run: Path, cuts: list[dict[int, int]]) -> list[dict[str, Any]]:
    c = Causality.build(load_run(run))
    ch = Channels.of(c)
    return [answer(c, ch, cut) for cut in cuts]


def same(py: dict[str, Any], js: dict[str, Any]) -> None:
    assert (py["consistent"], py["crossing"], py["crossing_count"]) == (js["consistent"], js["crossing"], js["count"])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    base = tmp_path_factory.mktemp("explorer-cuts")
    out = [sim_run(base / "sim")]
    for seed in (1, 2):  # receives in any order, not only the oldest message first
        out.append(write(play(3, 60, seed), base / f"played-{seed}"))
    return out


@needs_node
@pytest.mark.timeout(300)
@pytest.mark.parametrize("which", [0, 1, 2])
def test_the_page_judges_every_cut_as_the_command_does(runs: list[Path], which: int, tmp_path: Path) -> None:
    run = runs[which]
    loaded = load_run(run)
    last = {m: int(loaded.machines[m].tick[-1]) for m in loaded.ids}
    cuts = random_cuts(last, 300, which) + [dict.fromkeys(last, 0), last]
    py = command_answers(run, cuts)
    js = page_answers(run, cuts, tmp_path)["cuts"]
    assert len(js) == len(py)
    for p, j in zip(py, js, strict=True):
        same(p, j)
    kinds = {p["consistent"] for p in py}
    assert kinds == {True, False}, "the cuts tried hold both kinds"


@needs_node
@pytest.mark.timeout(300)
def test_snapshots_are_embedded_and_judged_as_the_command_judges_their_cuts(runs: list[Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    for f in runs[0].iterdir():
        (run / f.name).write_bytes(f.read_bytes())
    loaded = load_run(run)
    last = {m: int(loaded.machines[m].tick[-1]) for m in loaded.ids}
    half = {m: t // 2 for m, t in last.items()}
    bad = next(c for c in random_cuts(last, 500, 7) if not answer(*_judge_of(run), c)["consistent"])
    snaps = {"1": half, "2": bad, "3": dict.fromkeys(last, 0)}
    add_snapshots(run, snaps)
    got = page_answers(run, [], tmp_path)["snaps"]
    assert [s["id"] for s in got] == ["1", "2", "3"]
    c, ch = _judge_of(run)
    for s in got:
        cut = snaps[s["id"]]
        same(answer(c, ch, cut), s)
        for m, part in s["channels"].items():
            line = next(json.loads(x) for x in (run / f"machine-{m}.jsonl").read_text().splitlines()
                        if '"snapshot"' in x and json.loads(x)["id"] == s["id"])
            assert part["tick"] == cut[int(m)] == line["tick"]
            assert part["channels"] == line["channels"] and part["queue"] == line["queue"]
    assert not got[1]["consistent"] and got[0]["consistent"] == answer(c, ch, half)["consistent"]


def _judge_of(run: Path) -> tuple[Causality, Channels]:
    c = Causality.build(load_run(run))
    return c, Channels.of(c)


@needs_node
@pytest.mark.timeout(120)
def test_the_page_and_the_real_command_name_the_same_message(runs: list[Path], tmp_path: Path) -> None:
    run = runs[1]
    loaded = load_run(run)
    last = {m: int(loaded.machines[m].tick[-1]) for m in loaded.ids}
    cuts = random_cuts(last, 40, 3)
    py = command_answers(run, cuts)
    chosen = [next(k for k, p in enumerate(py) if p["consistent"]),
              next(k for k, p in enumerate(py) if not p["consistent"])]
    js = page_answers(run, [cuts[k] for k in chosen], tmp_path)["cuts"]
    for k, j in zip(chosen, js, strict=True):
        text = ",".join(f"{m}:{t}" for m, t in sorted(cuts[k].items()))
        r = subprocess.run([sys.executable, "-m", "lclock", "cuts", str(run), "--cut", text, "--json"],
                           capture_output=True, text=True, cwd=REPO, timeout=120)
        assert r.returncode == (0 if j["consistent"] else 1), r.stderr
        same(json.loads(r.stdout), j)


def test_long_channel_states_and_many_snapshots_are_counted_not_dropped(runs: list[Path], tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from lclock.explorer import extract

    run = tmp_path / "run"
    run.mkdir()
    for f in runs[0].iterdir():
        (run / f.name).write_bytes(f.read_bytes())
    add_snapshots(run, {"1": {1: 3, 2: 3, 3: 3}, "2": {1: 4, 2: 4, 3: 4}, "3": {1: 5, 2: 5, 3: 5}})
    log = run / "machine-2.jsonl"
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    snap = next(d for d in lines if d["event"] == "snapshot")
    snap["channels"]["1"] = [{"from": 1, "msg_lclock": k, "send_tick": k} for k in range(1, 251)]
    log.write_text("".join(json.dumps(d) + "\n" for d in lines))
    monkeypatch.setattr(extract, "MAX_SNAPSHOTS", 2)
    data, notes = build(run)
    assert [s["id"] for s in data["snaps"]] == ["1", "2"]
    assert "1 snapshot(s) beyond the first 2 are not drawn." in notes
    part = next(p for p in data["snaps"][0]["parts"] if p["m"] == 2)
    shown = part["channels"]["1"]
    assert len(shown) == extract.MAX_SNAPSHOT_MESSAGES + 1 and shown[-1] == {"more": 250 - extract.MAX_SNAPSHOT_MESSAGES}
