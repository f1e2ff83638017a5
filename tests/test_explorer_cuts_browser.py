"""Cuts in the explorer, in a real browser (Chromium driven by Playwright, as in
test_explorer_browser.py): each snapshot's cut is drawn with its channel states on hover, and
a cut dragged with the mouse is judged at once, as ``lclock cuts`` judges the same cut.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import test_explorer_browser as teb
from cut_fixtures import add_snapshots
from test_explorer_browser import REPO, Page, canvas_box

from lclock.analysis.causal import Causality
from lclock.analysis.cuts import Channels
from lclock.analysis.cuts_cmd import answer
from lclock.analysis.load import load_run


@pytest.fixture(scope="module")
def snap_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[int, int]]]:
    out = tmp_path_factory.mktemp("cuts-browser")
    p = subprocess.run([sys.executable, "-m", "lclock", "sim", "--quiet", "--no-report", "--machines", "3",
                        "--duration", "6", "--seed", "5", "--rates", "2,3,4", "--output", str(out)],
                       capture_output=True, text=True, cwd=REPO, timeout=180)
    assert p.returncode == 0, p.stderr
    (run,) = [d for d in out.iterdir() if d.is_dir()]
    snaps = {"1": {1: 6, 2: 9, 3: 12}, "2": {1: 2, 2: 14, 3: 20}}
    add_snapshots(run, snaps)
    v = subprocess.run([sys.executable, "-m", "lclock", "view", str(run)], capture_output=True, text=True,
                       cwd=REPO, timeout=180)
    assert v.returncode == 0, v.stderr
    return run, snaps


# the browser and the page fixtures, and the marks (slow; skipped without Chromium, never in CI)
browser, open_page, pytestmark = teb.browser, teb.open_page, teb.pytestmark


def judge(run: Path) -> tuple[Causality, Channels]:
    c = Causality.build(load_run(run))
    return c, Channels.of(c)


def ticks_of(text: str) -> dict[int, int]:
    return {int(m): int(t) for m, t in (x.split(":") for x in text.split(","))}


@pytest.mark.timeout(300)
def test_snapshots_are_drawn_with_their_channels(snap_run: tuple[Path, dict[str, dict[int, int]]],
                                                 open_page: Any) -> None:
    run, snaps = snap_run
    c, ch = judge(run)
    p: Page = open_page(run / "explorer.html")
    got = p.js("lclockExplorer.snapshots()")
    assert [s["id"] for s in got] == ["1", "2"]
    for s in got:
        want = answer(c, ch, snaps[s["id"]])
        assert ticks_of(s["cut"]) == snaps[s["id"]]
        assert (s["consistent"], s["crossing"]) == (want["consistent"], want["crossing"])
    box = canvas_box(p)
    x, y = p.js("lclockExplorer.snapshotXY('1', 2)")
    p.pg.mouse.move(box["x"] + x, box["y"] + y)
    tip = p.pg.locator("#tip")
    tip.wait_for(state="visible")
    text = tip.inner_text()
    assert "snapshot 1" in text and "m2: tick 9" in text and "channel m1→m2" in text, text


@pytest.mark.timeout(300)
def test_a_dragged_cut_is_judged_at_once(snap_run: tuple[Path, dict[str, dict[int, int]]], open_page: Any) -> None:
    run, _ = snap_run
    c, ch = judge(run)
    last = {m: int(c.run.machines[m].tick[-1]) for m in c.run.ids}
    start = {1: 6, 2: 9, 3: 12}
    assert answer(c, ch, start)["consistent"]
    # the first tick of a machine that, moved alone, puts a crossing message inside the cut
    moved, tick = next((m, t) for m in c.run.ids for t in range(start[m] + 1, last[m] + 1)
                       if not answer(c, ch, start | {m: t})["consistent"])
    want = answer(c, ch, start | {moved: tick})
    p: Page = open_page(run / "explorer.html")
    p.pg.click("#cut-btn")
    assert p.js("lclockExplorer.cut()") is not None, "the cut button places a cut"
    assert p.js("(t) => lclockExplorer.setCut(t)", {str(m): t for m, t in start.items()})["consistent"]
    box = canvas_box(p)
    hx, hy = p.js("(m) => lclockExplorer.cutHandleXY(m)", moved)
    ex, _ = p.js("([m, k]) => lclockExplorer.eventXY(0, m, k)", [moved, tick - 1])
    p.pg.mouse.move(box["x"] + hx, box["y"] + hy)
    p.pg.mouse.down()
    p.pg.mouse.move(box["x"] + ex + 1, box["y"] + hy, steps=6)
    p.pg.mouse.up()
    got = p.js("lclockExplorer.cut()")
    assert ticks_of(got["cut"]) == start | {moved: tick}
    assert (got["consistent"], got["crossing"], got["count"]) == (False, want["crossing"], want["crossing_count"])
    verdict = p.pg.locator("#cut-verdict")
    assert verdict.get_attribute("class") == "bad" and want["crossing"]["receive_at"] in verdict.inner_text()
    assert p.pg.get_attribute("body", "data-cut-consistent") == "0"
    # pressed away from every handle: the whole cut jumps to the pointer, each lane holding
    # its events at or left of it
    p.pg.mouse.click(box["x"] + hx + 40, box["y"] + 4)
    got = ticks_of(p.js("lclockExplorer.cut()")["cut"])
    for m in c.run.ids:
        ticks = c.run.machines[m].tick
        xs = [p.js("([m, k]) => lclockExplorer.eventXY(0, m, k)", [m, k])[0] for k in range(len(ticks))]
        held = {sum(1 for x in xs if x <= hx + 40 + d) for d in (-0.5, 0.5)}  # a pixel's rounding
        assert got[m] in {int(ticks[h - 1]) if h else 0 for h in held}, (m, got, held)
    assert p.js("lclockExplorer.cut()")["consistent"] == answer(c, ch, got)["consistent"]
    assert p.pg.get_attribute("body", "data-cut-consistent") == ("1" if answer(c, ch, got)["consistent"] else "0")
