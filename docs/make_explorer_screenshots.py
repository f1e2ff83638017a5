"""Regenerate the explorer screenshots of the README (docs/explorer-*.png).

A real run and the simulation of the same settings and seed, each opened with
``lclock view``, then the two compared; Chromium (apt-get install chromium) draws them.

    python docs/make_explorer_screenshots.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SETTINGS = ["--rates", "1,2,3,5", "--duration", "12", "--seed", "42", "--quiet"]


def lclock(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "lclock", *args], check=True, cwd=REPO)


def shoot(page_path: Path, png: Path, script: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 760})
        page.goto(page_path.resolve().as_uri())
        page.wait_for_selector("body[data-ready='1']")
        page.evaluate(script)
        page.screenshot(path=str(png))
        browser.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        lclock("run", *SETTINGS, "--output", str(base / "real"))
        lclock("sim", *SETTINGS, "--output", str(base / "sim"))
        (real,) = (base / "real").iterdir()
        (simulated,) = (base / "sim").iterdir()
        lclock("view", str(simulated))
        lclock("view", str(real), str(simulated), "--output", str(base / "compare.html"))
        # the causal past and future of a receive of the slowest machine, mid-run
        shoot(simulated / "explorer.html", DOCS / "explorer-causality.png", """() => {
            const api = window.lclockExplorer;
            api.showRange(3, 8.5);
            const r = api.search('0:0', 'tick', '6');
            const [x, y] = api.eventXY(0, 1, r.selected.index);
            document.getElementById('main').dispatchEvent(new MouseEvent('mousemove',
                {clientX: x + document.getElementById('main').getBoundingClientRect().left,
                 clientY: y + document.getElementById('main').getBoundingClientRect().top}));
        }""")
        shoot(base / "compare.html", DOCS / "explorer-compare.png", """() => {
            window.lclockExplorer.setAxis('lamport');
        }""")
    print("wrote", DOCS / "explorer-causality.png", "and", DOCS / "explorer-compare.png")


if __name__ == "__main__":
    main()
