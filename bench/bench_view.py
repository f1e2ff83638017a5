"""Benchmark of the explorer (issue 12): ``lclock view`` on a 1M-event run, and the page
itself in headless Chromium on a 100,000-event run.

Budgets: ``lclock view`` on 1M events in under 10 s (the whole process, interpreter start-up
included); the 100,000-event page drawn whole in under 2 s after navigation starts; pan and
zoom at 30 frames per second or more.

How the page is measured: ``performance.now()`` when the first complete frame is drawn
(the page records it; it counts from the start of navigation, so reading and parsing the
HTML, decoding the data and drawing are all in it). Then a scripted session drives the real
zoom behaviour once per animation frame (requestAnimationFrame, as a browser paces a user's
wheel and drag): zoom in from the whole run to about 1/250 of it, pan across at that zoom,
zoom out to half the run, pan there, zoom out to the whole run. Each change asks the page for
a frame, which it draws in the next animation frame, as it does for the wheel or the mouse. Frames per
second = frames / elapsed time of the session, and the slowest 5 % of frame intervals.

    python bench/bench_view.py [--events 1000000] [--page-events 100000] [--repeat 3] [--keep DIR]

Needs Chromium (apt-get install chromium) and playwright (pip). Exits 1 if a budget is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from _common import cpu_model  # noqa: E402 - bench/ is on sys.path when run as a script
from bench_analysis import timed  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

SESSION = """async () => {
  const api = window.lclockExplorer;
  const steps = [];
  for (let i = 0; i < 58; i++) steps.push(() => api.zoomBy(1.1));           // in, to ~1/250
  for (let i = 0; i < 60; i++) steps.push(() => api.panBy(i < 30 ? -40 : 40)); // across, zoomed in
  for (let i = 0; i < 50; i++) steps.push(() => api.zoomBy(1 / 1.1));        // out, to ~1/2
  for (let i = 0; i < 60; i++) steps.push(() => api.panBy(i < 30 ? 60 : -60)); // across, half the run
  for (let i = 0; i < 8; i++) steps.push(() => api.zoomBy(1 / 1.1));         // out, whole run
  const gaps = [], draws = [];
  let last = null, t0 = null;
  await new Promise((done) => {
    let i = 0;
    function frame(ts) {
      // the page drew this frame's view just before this callback (the zoom behaviour asks
      // for one frame per change, as it does for the wheel and the mouse)
      if (last !== null) { gaps.push(ts - last); draws.push(api.stats().ms); } else t0 = ts;
      last = ts;
      if (i === steps.length) { done(); return; }
      steps[i++]();
      requestAnimationFrame(frame);
    }
    requestAnimationFrame(frame);
  });
  const q = (a, p) => a.slice().sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(a.length * p))];
  return { frames: gaps.length, elapsed: last - t0, fps: gaps.length / ((last - t0) / 1000),
           gap_p50: q(gaps, 0.5), gap_p95: q(gaps, 0.95), draw_p50: q(draws, 0.5), draw_p95: q(draws, 0.95),
           draw_max: Math.max(...draws) };
}"""


def page_figures(path: Path, repeat: int) -> dict[str, Any]:
    """Best-of-``repeat`` time to the first full frame, and the session's frame rates."""
    from playwright.sync_api import sync_playwright

    loads, sessions = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for _ in range(repeat):
                page = browser.new_page(viewport={"width": 1400, "height": 820})
                page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort())
                page.goto(path.resolve().as_uri())
                page.wait_for_selector("body[data-ready='1']", timeout=120_000)
                loads.append(page.evaluate("lclockExplorer.readyAt()") / 1000)
                events = page.evaluate("lclockExplorer.stats().events")
                sessions.append(page.evaluate(SESSION))
                page.close()
        finally:
            browser.close()
    worst = min(sessions, key=lambda s: s["fps"])
    return {"events_drawn": events, "first_frame_s": min(loads), "first_frame_all_s": loads,
            "fps_worst": worst["fps"], "fps_all": [round(s["fps"], 1) for s in sessions],
            "session": worst}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--page-events", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", metavar="DIR", help="generate the runs here and keep them")
    args = ap.parse_args()
    from analysis_fixtures import make_run

    rates = (1000, 2000, 3000)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.keep) if args.keep else Path(tmp)
        big, small = base / "view-1m", base / "view-100k"
        for run, n, seed in ((big, args.events, 1), (small, args.page_events, 2)):
            if not (run / "run.json").exists():
                t = time.perf_counter()
                make_run(run, rates=rates, duration=n / sum(rates), seed=seed)
                print(f"generated {run} in {time.perf_counter() - t:.1f} s")
        cmd = [sys.executable, "-m", "lclock", "view", str(big)]
        walls, rss = [], []
        for _ in range(args.repeat):
            w, r, _ = timed(cmd)
            walls.append(w)
            rss.append(r)
        size = (big / "explorer.html").stat().st_size
        print(f"lclock view, {args.events:,} events: best {min(walls):.2f} s, median "
              f"{sorted(walls)[len(walls) // 2]:.2f} s, peak RSS {max(rss) / 1024:.0f} MiB, "
              f"page {size / 1e6:.1f} MB")
        timed([sys.executable, "-m", "lclock", "view", str(small)])
        page = page_figures(small / "explorer.html", args.repeat)
        s = page["session"]
        print(f"page, {page['events_drawn']:,} events: first full frame {page['first_frame_s']:.2f} s "
              f"after navigation; pan and zoom {page['fps_worst']:.1f} fps (worst of {args.repeat}; "
              f"frame interval p50 {s['gap_p50']:.1f} ms, p95 {s['gap_p95']:.1f} ms; draw p50 "
              f"{s['draw_p50']:.1f} ms, p95 {s['draw_p95']:.1f} ms)")
        big_page = page_figures(big / "explorer.html", 1)
        print(f"(for reference, {big_page['events_drawn']:,} events: first frame "
              f"{big_page['first_frame_s']:.2f} s, {big_page['fps_worst']:.1f} fps)")
    ok = min(walls) < 10 and page["first_frame_s"] < 2 and page["fps_worst"] >= 30
    print(json.dumps({"machine": {"nproc": os.cpu_count(), "cpu": cpu_model(),
                                  "python": platform.python_version(), "load_avg": os.getloadavg()},
                      "view_best_s": min(walls), "view_all_s": walls, "page_bytes": size,
                      "page_100k": page, "page_1m": big_page}, indent=1))
    print("budgets:", "met" if ok else "MISSED",
          "(lclock view on 1M events < 10 s; 100k-event page drawn < 2 s; pan/zoom >= 30 fps)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
