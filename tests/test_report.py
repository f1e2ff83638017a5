"""``lclock report`` and ``report_after_run``: files written, images embedded, odd runs survive."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

from analysis_fixtures import copy_run, make_run, read_lines, write_lines

from lclock.analysis.report import FIGURES, report_after_run, write_report

REPO = Path(__file__).resolve().parents[1]
SAMPLE = Path(__file__).resolve().parent / "data" / "foreign-run-1-3-6"
PNG = b"\x89PNG\r\n\x1a\n"


def test_report_after_run_writes_everything(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", rates=(1, 3, 6), duration=60.0)
    heads = report_after_run(run)
    assert len(heads) == 3 and all(isinstance(h, str) and "\n" not in h for h in heads)
    assert heads[0].startswith("Largest Lamport jump")
    assert heads[1].startswith("Drift")
    assert heads[2].startswith("Queue")
    for name in FIGURES:
        assert (run / f"{name}.png").read_bytes().startswith(PNG)
    assert (run / "summary.json").exists()
    page = (run / "report.html").read_text()
    embedded = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(embedded) == len(FIGURES)
    assert all(base64.b64decode(e).startswith(PNG) for e in embedded)
    assert "src='http" not in page and "<script" not in page  # self-contained


def test_cli_report_on_foreign_run_with_window(tmp_path: Path) -> None:
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, "-m", "lclock", "report", str(SAMPLE), "-o", str(out),
                        "--window", "10,20"], capture_output=True, text=True, cwd=REPO,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert "report written to" in p.stdout
    assert "10.00 s to 20.00 s" in (out / "report.html").read_text()


def test_cli_bad_window_and_missing_folder(tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, "-m", "lclock", "report", str(tmp_path), "--window", "5"],
                       capture_output=True, text=True, cwd=REPO, timeout=60)
    assert p.returncode == 2 and "START,END" in p.stderr
    p = subprocess.run([sys.executable, "-m", "lclock", "report", str(tmp_path / "none")],
                       capture_output=True, text=True, cwd=REPO, timeout=60)
    assert p.returncode == 2 and "no such folder" in p.stderr and "Traceback" not in p.stderr


def test_many_machines_no_vectors(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", rates=(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), duration=10.0,
                   vector=False)
    summary, heads, path = write_report(run)
    assert summary["concurrency"] is None and path.exists()


def test_crashed_machine_report(tmp_path: Path) -> None:
    run = copy_run(make_run(tmp_path / "g", duration=20.0), tmp_path / "c")
    lines = read_lines(run / "machine-2.jsonl")
    write_lines(run / "machine-2.jsonl", lines[: len(lines) // 3])
    heads = report_after_run(run)
    assert len(heads) == 3


def _text_of(page: str) -> str:
    """The page without its embedded images (whose base64 may spell anything)."""
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)


def test_log_fields_cannot_inject_html(tmp_path: Path) -> None:
    """Every field that came from the run (its id, status, a headline, a link's name, a
    partition's groups) is escaped: markup in them is shown as text, never run."""
    from lclock.analysis.analyze import analyze_run
    from lclock.analysis.report_page import render_html

    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>'\""
    summary = analyze_run(make_run(tmp_path / "run", rates=(1, 3), duration=5.0))
    summary.update(run_id=evil, status=evil)
    summary["machines"][0]["id"] = evil
    summary["drift"]["fastest"] = evil
    summary["faults"] = {"dropped": {"loss": 1, "partition": 0, "crashed": 0}, "duplicated": 0,
                         "reorder": False, "after": [],
                         "links": {evil: {"sent": 1, "loss": 1, "partition": 0, "crashed": 0,
                                          "dropped": 1, "duplicated": 0}},
                         "partitions": [{"start": 1.0, "end": 2.0, "groups": evil}],
                         "pauses": [], "crashes": []}
    page = render_html(summary, [evil], {}, (0.0, 1.0), explorer="x'><script>.html")
    assert "<script" not in page and "<img" not in page and "onerror=alert" not in page.replace(
        "&lt;img src=x onerror=alert", "")
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 6


def test_no_none_or_nan_reaches_the_page(tmp_path: Path) -> None:
    """Missing numbers (no HLC bound without a clock plan, a drift of an idle run) show as
    '-' or in words, never as None or nan."""
    from lclock.analysis.analyze import analyze_run, render
    from lclock.analysis.report_page import hlc_text, render_html

    assert "None" not in hlc_text({"max_l_minus_pt_us": 0, "bound_us": None, "max_c": 3})
    assert "no bound recorded" in hlc_text({"max_l_minus_pt_us": 0, "bound_us": None, "max_c": 3})
    assert "bound 250 µs" in hlc_text({"max_l_minus_pt_us": 7, "bound_us": 250, "max_c": None})
    summary = analyze_run(make_run(tmp_path / "run", rates=(1, 3), duration=5.0))
    summary["drift"].update(mean=float("nan"), max=None, final=None, p95=float("nan"))
    summary["machines"][0]["jumps"]["mean"] = float("nan")
    summary["machines"][1]["delay"]["mean"] = None
    text = _text_of(render_html(summary, ["h"], {}, (0.0, 1.0)))
    assert not re.search(r"\bNone\b|\bnan\b", text), re.findall(r".{40}(?:None|nan).{20}", text)
    assert not re.search(r"\bNone\b|\bnan\b", render(summary))


def test_wide_tables_scroll_inside_the_page(tmp_path: Path) -> None:
    """A table of 16 columns never runs off the page's right edge: every table sits in a box
    that scrolls sideways, and the page says so in its style."""
    _, _, page = write_report(make_run(tmp_path / "run", rates=(1, 3, 6), duration=5.0))
    html = page.read_text()
    assert ".table{overflow-x:auto" in html
    assert html.count("<div class='table'><table>") == html.count("<table>") > 2
