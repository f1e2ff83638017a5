"""The explorer in a real browser: Debian's Chromium driven by Playwright.

Each test opens a real explorer file, written by ``lclock view`` (or by ``lclock run`` itself)
from real ``lclock run`` and ``lclock sim`` folders and from the generator of
tests/explorer_fixtures.py (the clocks and faults lclock does not log yet). Every request the
page makes is routed and refused (the page's own file aside), and every console error fails
the test. What the page says it drew is compared with counts taken from the logs by plain
``json`` here, and the causal past and future it highlights with an independent
computation over the vector clocks (or, without them, over the matched messages).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import launcher_cmd, started
from cut_fixtures import add_snapshots
from explorer_fixtures import make_clock_run

from lclock.analysis.causal import Causality
from lclock.analysis.cuts import Channels
from lclock.analysis.cuts_cmd import answer
from lclock.analysis.load import load_run

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed "
                               "(pip install playwright: it is in the test extra)")

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
TICKS = ("send", "receive", "internal")

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Skipped where Chromium is truly absent, but never in CI: .ci/run installs it, and a
# browser suite that skipped itself there would hide every regression of the page.
pytestmark = [pytest.mark.skipif(not Path(CHROMIUM).exists() and not IN_CI, reason=(
    "Chromium is not installed: apt-get install -y chromium (CI's .ci/run does this)")),
    pytest.mark.slow]  # a real browser: once, on py311 (tox.ini)


# ---------------------------------------------------------------- the logs, read apart


def tick_events(run: Path) -> dict[int, list[dict[str, Any]]]:
    out = {}
    for p in sorted(run.glob("machine-*.jsonl")):
        mid = int(p.stem.split("-")[1])
        out[mid] = [d for d in map(json.loads, p.read_text().splitlines()) if d.get("event") in TICKS]
    return out


def vc_oracle(ev: dict[int, list[dict[str, Any]]], mid: int, k: int
              ) -> dict[int, tuple[set[int], set[int]]]:
    """Per machine: (indexes in the causal past, in the causal future) of event k of mid,
    by comparing whole vector clocks."""
    ve = ev[mid][k]["vclock"]
    out = {}
    for j, events in ev.items():
        past, fut = set(), set()
        for q, d in enumerate(events):
            if j == mid and q == k:
                continue
            v = d["vclock"]
            if all(a <= b for a, b in zip(v, ve, strict=True)):
                past.add(q)
            elif all(a <= b for a, b in zip(ve, v, strict=True)):
                fut.add(q)
        out[j] = (past, fut)
    return out


def graph_oracle(ev: dict[int, list[dict[str, Any]]], mid: int, k: int
                 ) -> dict[int, tuple[set[int], set[int]]]:
    """The same from happened-before's definition: program order plus send -> receive."""
    succ: dict[tuple[int, int], list[tuple[int, int]]] = {}
    pred: dict[tuple[int, int], list[tuple[int, int]]] = {}
    sends = {(j, d["lclock"]): (j, q) for j, es in ev.items() for q, d in enumerate(es)
             if d["event"] == "send"}

    def edge(a: tuple[int, int], b: tuple[int, int]) -> None:
        succ.setdefault(a, []).append(b)
        pred.setdefault(b, []).append(a)

    for j, es in ev.items():
        for q, d in enumerate(es):
            if q:
                edge((j, q - 1), (j, q))
            if d["event"] == "receive" and (d["from"], d["msg_lclock"]) in sends:
                edge(sends[(d["from"], d["msg_lclock"])], (j, q))

    def reach(start: tuple[int, int], nxt: dict[tuple[int, int], list[tuple[int, int]]]) -> set[tuple[int, int]]:
        seen, todo = set(), deque([start])
        while todo:
            for b in nxt.get(todo.popleft(), []):
                if b not in seen:
                    seen.add(b)
                    todo.append(b)
        return seen

    past, fut = reach((mid, k), pred), reach((mid, k), succ)
    return {j: ({q for (a, q) in past if a == j}, {q for (a, q) in fut if a == j}) for j in ev}


def page_sets(c: dict[str, Any]) -> dict[int, tuple[set[int], set[int]]]:
    return {ln["machine"]: (set(range(ln["pastEnd"])), set(range(ln["futureStart"], ln["n"])))
            for ln in c["lanes"]}


# ---------------------------------------------------------------- runs and pages


def view(*args: str) -> None:
    p = subprocess.run([sys.executable, "-m", "lclock", "view", *args], capture_output=True,
                       text=True, cwd=REPO, timeout=180)
    assert p.returncode == 0, p.stderr


def sim(out: Path, *args: str) -> Path:
    p = subprocess.run([sys.executable, "-m", "lclock", "sim", "--quiet", "--output", str(out), *args],
                       capture_output=True, text=True, cwd=REPO, timeout=180)
    assert p.returncode == 0, p.stderr
    (run,) = [d for d in out.iterdir() if d.is_dir()]
    view(str(run))
    return run


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("explorer-runs")
    out: dict[str, Path] = {}
    # a real run: the explorer comes with its report
    work = base / "real"
    work.mkdir()
    with started(launcher_cmd("--duration", "3", "--rates", "2,3,5,8", "--seed", "11", "--quiet",
                              "--output", str(work / "out")), work) as p:
        assert p.wait(timeout=120) == 0, p.stderr.read() if p.stderr else ""
    (run,) = list((work / "out").iterdir())
    assert (run / "explorer.html").is_file(), "lclock run did not write explorer.html"
    out["real"] = run
    out["sim"] = sim(base / "sim", "--machines", "5", "--duration", "12", "--seed", "3")
    out["novc"] = sim(base / "novc", "--machines", "4", "--duration", "12", "--seed", "5",
                      "--clocks", "none")  # Lamport clocks only
    out["many"] = sim(base / "many", "--machines", "64", "--duration", "2", "--seed", "8")
    # the sim run with its vector clocks removed: causality from the messages must agree
    stripped = base / "stripped"
    stripped.mkdir()
    for f in out["sim"].iterdir():
        if f.name.startswith("machine-"):
            rows = [json.loads(x) for x in f.read_text().splitlines()]
            for d in rows:
                d.pop("vclock", None)
            f2 = stripped / f.name
            f2.write_text("".join(json.dumps(d, separators=(",", ":")) + "\n" for d in rows))
        elif f.name == "run.json":
            (stripped / f.name).write_text(f.read_text())
    view(str(stripped))
    out["stripped"] = stripped
    out["clock"] = make_clock_run(base / "clock", rates=(3, 5, 7), duration=8.0, seed=4,
                                  offsets_ms=(0.0, 150.0, -90.0), loss=0.1,
                                  partition=(2.0, 4.0, [[1], [2, 3]]), pause=(3, 5.0, 1.0),
                                  dup=0.2, crash=(2, 7.0))
    view(str(out["clock"]))
    out["empty_lane"] = make_clock_run(base / "empty_lane", rates=(2, 3, 4), duration=5.0, seed=9)
    log = out["empty_lane"] / "machine-2.jsonl"
    log.write_text(log.read_text().splitlines()[0] + "\n")  # crashed before its first tick
    view(str(out["empty_lane"]))
    out["clock_b"] = make_clock_run(base / "clock_b", rates=(3, 5, 7), duration=8.0, seed=4,
                                    offsets_ms=(0.0, 150.0, -90.0))
    view(str(out["clock"]), str(out["clock_b"]), "--output", str(base / "compare.html"))
    out["compare"] = base / "compare.html"
    return out


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("CI: Chromium is missing (.ci/run installs it with apt-get install chromium)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


class Page:
    """A page on one explorer file, with every request and console error recorded."""

    def __init__(self, browser: Any, path: Path, width: int = 1400, height: int = 820) -> None:
        self.url = path.resolve().as_uri()
        self.ctx = browser.new_context(viewport={"width": width, "height": height})
        self.pg = self.ctx.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.pg.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.pg.on("pageerror", lambda e: self.errors.append(str(e)))
        self.pg.route("**/*", self._route)
        self.pg.goto(self.url)
        self.pg.wait_for_selector("body[data-ready='1']", timeout=30_000)

    def _route(self, route: Any) -> None:
        url = route.request.url
        if url == self.url:
            route.continue_()
        else:
            self.requests.append(url)
            route.abort()

    def js(self, expr: str, *args: Any) -> Any:
        return self.pg.evaluate(expr, *args)

    def stats(self) -> dict[str, Any]:
        return self.js("lclockExplorer.drawNow()")

    def close(self) -> None:
        try:
            assert not self.errors, f"console errors: {self.errors}"
            assert not self.requests, f"network requests: {self.requests}"
        finally:
            self.ctx.close()


@pytest.fixture
def open_page(browser: Any) -> Iterator[Any]:
    pages: list[Page] = []

    def opener(path: Path, **kw: Any) -> Page:
        p = Page(browser, path, **kw)
        pages.append(p)
        return p

    yield opener
    for p in pages:
        p.close()


def explorer(run: Path) -> Path:
    return run / "explorer.html"


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("name", ["real", "sim", "novc", "many", "stripped", "clock", "empty_lane"])
def test_every_lane_and_every_event_drawn(runs: dict[str, Path], open_page: Any, name: str) -> None:
    run = runs[name]
    ev = tick_events(run)
    p = open_page(explorer(run))
    st = p.stats()
    assert st["lanes"] == len(ev) and p.pg.get_attribute("body", "data-lanes-drawn") == str(len(ev))
    assert st["perLane"][0] == {str(m): len(e) for m, e in ev.items()}
    assert st["events"] == sum(len(e) for e in ev.values())
    sends = {(m, d["lclock"]) for m, e in ev.items() for d in e if d["event"] == "send"}
    assert p.js("lclockExplorer.runs()[0].messages") == sum(
        1 for e in ev.values() for d in e if d["event"] == "receive" and (d["from"], d["msg_lclock"]) in sends)


def sample_events(ev: dict[int, list[dict[str, Any]]], count: int, seed: int) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    picks = []
    mids = sorted(ev)
    for n in range(count):
        mid = mids[n % len(mids)]
        kinds = ("receive", "send", "internal")[n % 3]
        cands = [k for k, d in enumerate(ev[mid]) if d["event"] == kinds] or list(range(len(ev[mid])))
        picks.append((mid, rng.choice(cands)))
    return picks


@pytest.mark.parametrize("name", ["real", "sim", "many", "clock"])
def test_click_highlights_the_vector_clock_past_and_future(runs: dict[str, Path], open_page: Any,
                                                            name: str) -> None:
    run = runs[name]
    ev = tick_events(run)
    p = open_page(explorer(run))
    assert p.js("lclockExplorer.runs()[0].vc")
    for mid, k in sample_events(ev, 6, seed=len(name)):
        c = p.js("([m, k]) => lclockExplorer.select(0, m, k)", [mid, k])
        assert c["source"] == "vector clocks"
        assert page_sets(c) == vc_oracle(ev, mid, k), (name, mid, k)


@pytest.mark.parametrize("name", ["stripped", "novc"])
def test_without_vector_clocks_from_matched_messages(runs: dict[str, Path], open_page: Any,
                                                      name: str) -> None:
    run = runs[name]
    ev = tick_events(run)
    truth = tick_events(runs["sim"]) if name == "stripped" else None
    p = open_page(explorer(run))
    assert not p.js("lclockExplorer.runs()[0].vc")
    for mid, k in sample_events(ev, 8, seed=7):
        c = p.js("([m, k]) => lclockExplorer.select(0, m, k)", [mid, k])
        assert c["source"] == "matched messages"
        want = vc_oracle(truth, mid, k) if truth else graph_oracle(ev, mid, k)
        assert page_sets(c) == want, (name, mid, k)
    if truth:  # and the graph oracle agrees with the vector clocks, as it must
        mid, k = sample_events(ev, 1, seed=1)[0]
        assert graph_oracle(ev, mid, k) == vc_oracle(truth, mid, k)


def rgb(hexcolor: str) -> list[int]:
    return [int(hexcolor[i:i + 2], 16) for i in (1, 3, 5)]


def test_the_classes_are_what_is_drawn(runs: dict[str, Path], open_page: Any) -> None:
    run = runs["sim"]
    ev = tick_events(run)
    p = open_page(explorer(run))
    mid = 3
    k = len(ev[mid]) // 2
    c = p.js("([m, k]) => lclockExplorer.select(0, m, k)", [mid, k])
    sets = page_sets(c)
    t = ev[mid][k]["ts"]
    # zoom to a few events around the selection, so they are drawn as dots
    x = p.js("([m, k]) => lclockExplorer.eventXY(0, m, k)", [mid, k])
    assert x is not None
    view = p.js("lclockExplorer.view()")
    span = (view[1] - view[0]) / 6
    p.js("([a, b]) => lclockExplorer.showRange(a, b)", [x_at(p, mid, k) - span, x_at(p, mid, k) + span])
    assert p.stats()["dots"] == "vector"
    colors = p.js("lclockExplorer.colors()")
    checked = {"past": 0, "future": 0, "concurrent": 0}
    for j in ev:
        if j == mid:
            continue
        past, fut = sets[j]
        for q in range(len(ev[j])):
            xy = p.js("([m, q]) => lclockExplorer.eventXY(0, m, q)", [j, q])
            lo, hi = p.js("lclockExplorer.view()")
            if not lo < x_at(p, j, q) < hi or abs(xy[0] - x[0]) < 12:
                continue
            px = p.js("([x, y]) => lclockExplorer.pixel(x, y)", xy)[:3]
            if q in past:
                want, cls = rgb(colors["past"]), "past"
            elif q in fut:
                want, cls = rgb(colors["future"]), "future"
            else:
                want, cls = [255, 255, 255], "concurrent"
            assert max(abs(a - b) for a, b in zip(px, want, strict=True)) < 40, (j, q, cls, px, want, t)
            checked[cls] += 1
    assert all(checked.values()), checked


def x_at(p: Page, mid: int, k: int) -> float:
    """Where event k of machine mid sits on the axis (in the axis' units)."""
    return float(p.js("([m, k]) => lclockExplorer.xOf(0, m, k)", [mid, k]))


def canvas_box(p: Page) -> dict[str, float]:
    return p.pg.locator("#main").bounding_box()


def test_zoom_and_pan_with_mouse_touchpad_and_keys(runs: dict[str, Path], open_page: Any) -> None:
    run = runs["sim"]
    total = sum(len(e) for e in tick_events(run).values())
    p = open_page(explorer(run))
    box = canvas_box(p)
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 3
    full = p.js("lclockExplorer.view()")
    width = full[1] - full[0]

    def span() -> float:
        a, b = p.js("lclockExplorer.view()")
        return b - a

    p.pg.mouse.move(cx, cy)
    p.pg.mouse.wheel(0, -400)  # wheel: zoom in around the pointer
    p.pg.wait_for_function(f"lclockExplorer.view()[1] - lclockExplorer.view()[0] < {width * 0.9}")
    st = p.stats()
    assert st["events"] < total
    s1, v1 = span(), p.js("lclockExplorer.view()")
    p.pg.mouse.wheel(300, 0)  # a sideways swipe on a touchpad: pan, same zoom
    p.pg.wait_for_function(f"lclockExplorer.view()[0] > {v1[0] + s1 * 0.05}")
    assert abs(span() - s1) < s1 * 1e-6
    v2 = p.js("lclockExplorer.view()")
    p.pg.mouse.move(cx, cy)
    p.pg.mouse.down()
    p.pg.mouse.move(cx + 200, cy, steps=5)  # drag: the diagram follows the pointer
    p.pg.mouse.up()
    p.pg.wait_for_function(f"lclockExplorer.view()[0] < {v2[0] - s1 * 0.05}")
    p.pg.keyboard.down("Control")  # a pinch on a touchpad is ctrl+wheel
    p.pg.mouse.wheel(0, -100)
    p.pg.keyboard.up("Control")
    p.pg.wait_for_function(f"lclockExplorer.view()[1] - lclockExplorer.view()[0] < {s1 * 0.9}")
    s2 = span()
    p.pg.locator("#main").focus()
    p.pg.keyboard.press("-")
    p.pg.wait_for_function(f"lclockExplorer.view()[1] - lclockExplorer.view()[0] > {s2 * 1.2}")
    v3 = p.js("lclockExplorer.view()")
    p.pg.keyboard.press("ArrowRight")
    p.pg.wait_for_function(f"lclockExplorer.view()[0] > {v3[0]}")
    p.pg.keyboard.press("0")
    p.pg.wait_for_function(f"Math.abs(lclockExplorer.view()[0] - {full[0]}) < 1e-9")
    assert p.stats()["events"] == total


def test_overview_strip_chooses_the_part_shown(runs: dict[str, Path], open_page: Any) -> None:
    p = open_page(explorer(runs["sim"]))
    box = p.pg.locator("#overview-box").bounding_box()
    full = p.js("lclockExplorer.view()")
    y = box["y"] + box["height"] / 2
    x0, x1 = box["x"] + 300, box["x"] + 500
    p.pg.mouse.move(x0, y)
    p.pg.mouse.down()
    p.pg.mouse.move(x1, y, steps=6)
    p.pg.mouse.up()
    p.pg.wait_for_function(f"lclockExplorer.view()[1] - lclockExplorer.view()[0] < {(full[1] - full[0]) * 0.5}")
    a, b = p.js("lclockExplorer.view()")
    assert full[0] < a < b < full[1]


def test_hover_shows_the_log_line(runs: dict[str, Path], open_page: Any) -> None:
    run = runs["clock"]
    ev = tick_events(run)
    p = open_page(explorer(run))
    box = canvas_box(p)
    for mid in ev:
        k = next(q for q, d in enumerate(ev[mid]) if d["event"] == "receive")
        x, y = p.js("([m, k]) => lclockExplorer.eventXY(0, m, k)", [mid, k])
        p.js("([a, b]) => lclockExplorer.showRange(a, b)",
             [p.js("([m, k]) => lclockExplorer.xOf(0, m, k)", [mid, k]) - 0.3,
              p.js("([m, k]) => lclockExplorer.xOf(0, m, k)", [mid, k]) + 0.3])
        x, y = p.js("([m, k]) => lclockExplorer.eventXY(0, m, k)", [mid, k])
        p.pg.mouse.move(box["x"] + x, box["y"] + y)
        tip = p.pg.locator("#tip")
        tip.wait_for(state="visible")
        shown = json.loads(tip.locator("pre").inner_text())
        assert shown == ev[mid][k]
        assert f"machine-{mid}.jsonl:" in tip.inner_text()


def test_click_a_message(runs: dict[str, Path], open_page: Any) -> None:
    run = runs["real"]
    ev = tick_events(run)
    p = open_page(explorer(run))
    box = canvas_box(p)
    mid = max(ev, key=lambda m: sum(d["event"] == "receive" for d in ev[m]))
    k = next(q for q, d in enumerate(ev[mid]) if d["event"] == "receive" and q > 0)
    d = ev[mid][k]
    src = next(q for q, s in enumerate(ev[d["from"]]) if s["event"] == "send" and s["lclock"] == d["msg_lclock"])
    xs = p.js("([m, k]) => lclockExplorer.xOf(0, m, k)", [d["from"], src])
    xr = p.js("([m, k]) => lclockExplorer.xOf(0, m, k)", [mid, k])
    pad = max(abs(xr - xs), 0.05)
    p.js("([a, b]) => lclockExplorer.showRange(a, b)", [min(xs, xr) - pad, max(xs, xr) + pad])
    (ax, ay), (bx, by) = (p.js("([m, k]) => lclockExplorer.eventXY(0, m, k)", [d["from"], src]),
                          p.js("([m, k]) => lclockExplorer.eventXY(0, m, k)", [mid, k]))
    mx, my = ax + (bx - ax) * 0.5, ay + (by - ay) * 0.5
    assert p.js("([x, y]) => lclockExplorer.hitAt(x, y)", [mx, my])["type"] == "msg"
    p.pg.mouse.click(box["x"] + mx, box["y"] + my)
    text = p.pg.locator("#panel").inner_text()
    assert f"Message from machine {d['from']}" in text
    jump = d["lclock"] - ev[mid][k - 1]["lclock"]
    assert f"+{jump}" in text and "delay (send to handling)" in text and "queue wait" in text
    assert f"{ev[mid][k - 1]['lclock']} → {d['lclock']}" in text


def test_search_by_machine_and_clock(runs: dict[str, Path], open_page: Any) -> None:
    run = runs["clock"]
    ev = tick_events(run)
    p = open_page(explorer(run))
    target = ev[3][20]
    p.pg.select_option("#s-machine", "0:2")
    p.pg.select_option("#s-clock", "L")
    p.pg.fill("#s-value", str(target["lclock"]))
    p.pg.press("#s-value", "Enter")
    p.pg.wait_for_function("lclockExplorer.causal() !== null")
    c = p.js("lclockExplorer.causal()")
    assert (c["machine"], c["index"]) == (3, 20)
    lo, hi = p.js("lclockExplorer.view()")
    assert lo < x_at(p, 3, 20) < hi  # in sight
    # a value the machine skipped: the next one, said so
    values = {d["lclock"] for d in ev[1]}
    missing = next(v for v in range(1, max(values)) if v not in values)
    r = p.js(f"lclockExplorer.search('0:0', 'L', '{missing}')")
    assert r["count"] == 1 and "the next is" in r["message"]
    # any machine, an exact vector clock, HLC and tick
    vc = ev[2][7]["vclock"]
    r = p.js(f"lclockExplorer.search('', 'vc', '{','.join(map(str, vc))}')")
    assert r["count"] == 1 and r["selected"] == {"run": 0, "machine": 2, "index": 7}
    h = ev[1][5]["hlc"]
    r = p.js(f"lclockExplorer.search('0:0', 'hlc', '[{h[0]}, {h[1]}]')")  # as in the log
    assert r["selected"] == {"run": 0, "machine": 1, "index": 5}
    r = p.js("lclockExplorer.search('', 'tick', '3')")
    assert r["count"] == len(ev)
    r = p.js("lclockExplorer.search('', 'L', '999999')")
    assert r["count"] == 0 and "no event" in r["message"]


def test_filters_change_what_is_shown(runs: dict[str, Path], open_page: Any) -> None:
    run = runs["sim"]
    ev = tick_events(run)
    total = sum(len(e) for e in ev.values())
    p = open_page(explorer(run))
    p.pg.click("#filters summary")
    p.pg.uncheck("[data-machine='2']")
    st = p.stats()
    assert st["lanes"] == len(ev) - 1 and st["events"] == total - len(ev[2]) and "2" not in st["perLane"][0]
    p.pg.check("[data-machine='2']")
    p.pg.uncheck("[data-kind='0']")
    internal = sum(1 for e in ev.values() for d in e if d["event"] == "internal")
    assert p.stats()["events"] == total - internal
    p.pg.check("[data-kind='0']")
    p.pg.fill("#f-machines", "1,3-4")
    p.pg.press("#f-machines", "Tab")
    st = p.stats()
    assert sorted(st["perLane"][0]) == ["1", "3", "4"]
    p.pg.click("#f-all")
    assert p.stats()["lanes"] == len(ev)
    p.pg.uncheck("[data-layer='arrows']")
    assert p.stats()["arrows"] == 0


def test_axes_offered_only_for_the_clocks_a_run_has(runs: dict[str, Path], open_page: Any) -> None:
    p = open_page(explorer(runs["novc"]))
    assert p.pg.eval_on_selector_all("#axis option", "os => os.map(o => o.value)") == ["real", "lamport"]
    p = open_page(explorer(runs["sim"]))  # a simulation keeps pt and HLC by default
    assert p.pg.eval_on_selector_all("#axis option", "os => os.map(o => o.value)") == [
        "real", "lamport", "hlc", "pt"]
    p = open_page(explorer(runs["clock"]))
    assert p.pg.eval_on_selector_all("#axis option", "os => os.map(o => o.value)") == [
        "real", "lamport", "hlc", "pt"]
    ev = tick_events(runs["clock"])
    total = sum(len(e) for e in ev.values())
    for mode in ("lamport", "hlc", "pt", "real"):
        p.pg.select_option("#axis", mode)
        st = p.stats()
        assert st["mode"] == mode and st["events"] == total
    # machine 2's clock runs 150 ms ahead of machine 3's: some of its messages to 3 go
    # backwards on the physical-clock axis, never on the others
    p.pg.select_option("#axis", "pt")
    assert p.stats()["backward"] > 0
    for mode in ("real", "lamport", "hlc"):
        p.pg.select_option("#axis", mode)
        assert p.stats()["backward"] == 0


def test_faults_are_marked(runs: dict[str, Path], open_page: Any) -> None:
    run = runs["clock"]
    p = open_page(explorer(run))
    info = p.js("lclockExplorer.runs()[0]")
    drops = sum(1 for f in run.glob("machine-*.jsonl") for x in f.read_text().splitlines()
                if json.loads(x)["event"] == "drop")
    assert info["drops"] == drops > 0
    st = p.stats()
    assert st["drops"] == drops
    assert st["bands"] >= 4  # a pause, and a partition on each of the three machines
    text = p.pg.locator("#panel").inner_text()
    assert "drops" in text
    p.js("lclockExplorer.setLayer('drops', false)")
    assert p.stats()["drops"] == 0


def test_two_runs_compared(runs: dict[str, Path], open_page: Any) -> None:
    a, b = tick_events(runs["clock"]), tick_events(runs["clock_b"])
    p = open_page(runs["compare"])
    st = p.stats()
    assert st["lanes"] == len(a) + len(b)
    assert st["perLane"] == [{str(m): len(e) for m, e in a.items()}, {str(m): len(e) for m, e in b.items()}]
    assert st["diff"] is True
    text = p.pg.locator("#panel").inner_text()
    assert "A / B per machine" in text
    p.pg.select_option("#axis", "lamport")
    assert p.stats()["perLane"][1] == {str(m): len(e) for m, e in b.items()}
    c = p.js("lclockExplorer.select(1, 2, 5)")
    assert page_sets(c) == vc_oracle(b, 2, 5)
    # one zoom moves both runs: they share the axis
    p.js("lclockExplorer.showRange(10, 20)")
    st = p.stats()
    assert 0 < sum(st["perLane"][0].values()) < sum(len(e) for e in a.values())
    assert 0 < sum(st["perLane"][1].values()) < sum(len(e) for e in b.values())


def test_too_large_run_says_so(runs: dict[str, Path], open_page: Any, tmp_path: Path) -> None:
    out = tmp_path / "part.html"
    view(str(runs["sim"]), "--max-events", "100", "--output", str(out))
    p = open_page(out)
    assert "--window" in p.pg.locator("#notes").inner_text()
    assert p.stats()["events"] == 100


def test_panel_buttons_keys_and_marks(runs: dict[str, Path], open_page: Any) -> None:
    run = runs["clock"]
    ev = tick_events(run)
    p = open_page(explorer(run))
    box = canvas_box(p)
    # a receive: "show the message" opens the message that it handled
    k = next(q for q, d in enumerate(ev[1]) if d["event"] == "receive")
    p.js("([m, k]) => lclockExplorer.select(0, m, k)", [1, k])
    p.pg.click("#panel button[data-msg]")
    assert f"Message from machine {ev[1][k]['from']}" in p.pg.locator("#panel").inner_text()
    p.pg.click("#panel button[data-sel-send]")
    c = p.js("lclockExplorer.causal()")
    assert ev[c["machine"]][c["index"]]["event"] == "send"
    # keys: Esc clears, ? shows the help, / goes to the search box
    p.pg.locator("#main").focus()
    p.pg.keyboard.press("Escape")
    assert p.js("lclockExplorer.causal()") is None and "Legend" in p.pg.locator("#panel").inner_text()
    p.pg.keyboard.press("?")
    assert p.pg.locator("#help").is_visible()
    p.pg.keyboard.press("Escape")
    assert not p.pg.locator("#help").is_visible()
    p.pg.keyboard.press("/")
    assert p.js("document.activeElement.id") == "s-value"
    # search results: n and N step through them
    p.pg.locator("#main").focus()
    r = p.js("lclockExplorer.search('', 'tick', '2')")
    assert r["count"] == len(ev)
    first = p.js("lclockExplorer.causal()")["machine"]
    p.pg.keyboard.press("n")
    assert p.js("lclockExplorer.causal()")["machine"] != first
    p.pg.keyboard.press("N")
    assert p.js("lclockExplorer.causal()")["machine"] == first
    # a drop: its tooltip names the reason; a click selects the send it came from
    p.js("lclockExplorer.fit()")
    drops = [(mid, d) for mid in ev for d in map(json.loads, (run / f"machine-{mid}.jsonl").read_text().splitlines())
             if d["event"] == "drop"]
    mid, d = drops[0]
    send = next(q for q, s in enumerate(ev[mid]) if s["event"] == "send" and s["lclock"] == d["msg_lclock"])
    xs = x_at(p, mid, send)
    p.js("([a, b]) => lclockExplorer.showRange(a, b)", [xs - 0.4, xs + 0.4])
    x, y = p.js("([m, k]) => lclockExplorer.eventXY(0, m, k)", [mid, send])
    hit = p.js("([x, y]) => lclockExplorer.hitAt(x, y)", [x + 6, y])
    assert hit["type"] in ("drop", "event")
    p.pg.mouse.move(box["x"] + x + 7, box["y"] + y - 1)
    if p.js("([x, y]) => lclockExplorer.hitAt(x, y)", [x + 7, y - 1])["type"] == "drop":
        assert d["reason"] in p.pg.locator("#tip").inner_text()
    p.pg.mouse.click(box["x"] + x + 7, box["y"] + y - 1)
    c = p.js("lclockExplorer.causal()")
    assert (c["machine"], c["index"]) == (mid, send)
    # the pause band of machine 3: hover between its ends names it
    p.js("lclockExplorer.clear()")
    p.js("lclockExplorer.showRange(4.5, 6.5)")
    y3 = p.js("lclockExplorer.eventXY(0, 3, 0)")[1]
    pos = p.js("lclockExplorer.xToPx(5.5)")
    assert p.js("([x, y]) => lclockExplorer.hitAt(x, y)", [pos, y3 + 8])["type"] == "band"
    p.pg.mouse.move(box["x"] + pos, box["y"] + y3 + 8)
    assert "paused" in p.pg.locator("#tip").inner_text()


def test_two_selected_events_give_the_hb_answer_and_its_command(runs: dict[str, Path], open_page: Any) -> None:
    """The panel says how the event selected before relates to this one, as ``lclock hb``
    would, and gives the trace and hb commands that answer with the proof."""
    import subprocess
    import sys

    run = runs["sim"]
    ev = tick_events(run)
    p = open_page(explorer(run))
    seen = set()
    # pairs at random, and two neighbours on different machines (usually concurrent)
    mid = len(ev[1]) // 2
    near = next(k for k, d in enumerate(ev[2]) if d["ts"] >= ev[1][mid]["ts"])
    pairs = [*zip(sample_events(ev, 6, seed=3), sample_events(ev, 6, seed=9)), ((1, mid), (2, near))]
    for (ma, ka), (mb, kb) in pairs:
        if (ma, ka) == (mb, kb):
            continue
        p.js("([m, k]) => lclockExplorer.select(0, m, k)", [ma, ka])
        p.js("([m, k]) => lclockExplorer.select(0, m, k)", [mb, kb])
        page_rel = p.pg.get_attribute("[data-hb]", "data-hb")
        cmd = p.pg.inner_text("pre[data-cmd=hb]").split()
        assert cmd[:2] == ["lclock", "hb"] and p.pg.inner_text("pre[data-cmd=trace]").startswith("lclock trace")
        a, b = ev[ma][ka], ev[mb][kb]
        assert cmd[3:] == [f"{ma}:L{a['lclock']}", f"{mb}:L{b['lclock']}"]
        va, vb = a["vclock"], b["vclock"]
        want = ("happened before" if all(x <= y for x, y in zip(va, vb)) and va != vb else
                "happened after" if all(y <= x for x, y in zip(va, vb)) and va != vb else
                "is concurrent with")
        assert page_rel == want, (ma, ka, mb, kb)
        r = subprocess.run([sys.executable, "-m", "lclock", "hb", str(run), *cmd[3:]],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        verdict = r.stdout.splitlines()[2]  # "A happened before B", "B happened before A", ...
        said = {"happened before": "A happened before B", "happened after": "B happened before A",
                "is concurrent with": "A and B are concurrent"}[want]
        assert verdict.startswith(said), (verdict, want)
        seen.add(want)
    assert seen == {"happened before", "happened after", "is concurrent with"}


def _sweep(p: Page, selector: str, step: int, rows: int) -> int:
    """Click across an element in a grid; the number of clicks."""
    box = p.pg.locator(selector).bounding_box()
    n = 0
    for i in range(rows):
        y = box["y"] + 1 + (box["height"] - 2) * (i + 0.5) / rows
        for x in range(1, int(box["width"]) - 1, step):
            p.pg.mouse.click(box["x"] + x, y)
            n += 1
    return n


@pytest.mark.parametrize(("name", "size"), [("sim", (1400, 820)), ("clock", (1400, 820)),
                                           ("clock", (520, 420)), ("empty_lane", (1400, 820)),
                                           ("compare", (1400, 820))])
def test_clicks_anywhere_raise_no_error(runs: dict[str, Path], open_page: Any, name: str,
                                        size: tuple[int, int]) -> None:
    """Issue 18: a press on the overview strip left of the brush threw from d3's brush."""
    p = open_page(runs[name] if name == "compare" else explorer(runs[name]), width=size[0], height=size[1])
    clicks = _sweep(p, "#overview-box", 12, 3)  # the strip, its left end (the gutter) included
    clicks += _sweep(p, "#main", 45, 14)  # lanes, axis, gutter, diff charts
    for mode in p.pg.eval_on_selector_all("#axis option", "os => os.map(o => o.value)"):
        p.pg.select_option("#axis", mode)  # the time-axis switcher
        clicks += _sweep(p, "#overview-box", 40, 1) + _sweep(p, "#main", 90, 6)
    p.pg.click("#axis")
    p.pg.keyboard.press("Escape")
    box = p.pg.locator("#overview-box").bounding_box()
    p.pg.mouse.move(box["x"] + 3, box["y"] + box["height"] / 2)  # a drag from the left end
    p.pg.mouse.down()
    p.pg.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=5)
    p.pg.mouse.up()
    assert clicks > 100
    assert p.errors == [], p.errors[:3]
    assert p.stats()["events"] > 0


def test_lanes_use_the_height_of_the_chart(runs: dict[str, Path], open_page: Any) -> None:
    p = open_page(explorer(runs["clock"]))
    lay = p.js("lclockExplorer.layout()")
    rows = lay["rows"]
    assert len(rows) == 3
    covered = rows[-1]["y"] + rows[-1]["h"] / 2 - (rows[0]["y"] - rows[0]["h"] / 2)
    assert covered > 0.9 * lay["H"], lay  # not the top 40 % as before issue 18
    assert all(r["h"] == rows[0]["h"] for r in rows)


def test_clocks_equal_to_real_time_say_so(runs: dict[str, Path], open_page: Any) -> None:
    p = open_page(explorer(runs["sim"]))  # a simulation without skew: pt and HLC = ts
    labels = p.pg.eval_on_selector_all("#axis option", "os => os.map(o => o.textContent)")
    assert labels == ["real time", "Lamport time", "HLC = real time", "physical pt = real time"]
    assert p.js("lclockExplorer.same()") == ["hlc", "pt"]
    assert "= real time on every event (no clock was skewed)" in p.js("lclockExplorer.panelText()")
    text = p.js("(lclockExplorer.select(0, 1, 3), lclockExplorer.panelText())")
    assert "HLC [l, c]" not in text and "physical pt" not in text and "no clock was skewed" in text
    p.pg.select_option("#axis", "pt")  # still offered
    assert p.stats()["mode"] == "pt"
    q = open_page(explorer(runs["clock"]))  # skewed clocks: nothing to say, the rows stay
    assert q.js("lclockExplorer.same()") == []
    assert q.pg.eval_on_selector_all("#axis option", "os => os.map(o => o.textContent)")[2:] == [
        "HLC", "physical clocks (pt)"]
    text = q.js("(lclockExplorer.select(0, 2, 3), lclockExplorer.panelText())")
    assert "HLC [l, c]" in text and "physical pt" in text and "no clock was skewed" not in text


# ---------------------------------------------------------------- cuts (issue 22)
# Each snapshot's cut is drawn with its channel states on hover, and a cut dragged with the
# mouse is judged at once, as ``lclock cuts`` judges the same cut.


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


def cut_judge(run: Path) -> tuple[Causality, Channels]:
    c = Causality.build(load_run(run))
    return c, Channels.of(c)


def ticks_of(text: str) -> dict[int, int]:
    return {int(m): int(t) for m, t in (x.split(":") for x in text.split(","))}


@pytest.mark.timeout(300)
def test_snapshots_are_drawn_with_their_channels(snap_run: tuple[Path, dict[str, dict[int, int]]],
                                                 open_page: Any) -> None:
    run, snaps = snap_run
    c, ch = cut_judge(run)
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
    c, ch = cut_judge(run)
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
