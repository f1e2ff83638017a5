"""``lclock report`` and ``report_after_run``: files written, images embedded, odd runs survive."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import time
from pathlib import Path

from analysis_fixtures import copy_run, make_run, read_lines, write_lines

from lclock.analysis.report import FIGURES, report_after_run, write_report

REPO = Path(__file__).resolve().parents[1]
SAMPLE = Path(__file__).resolve().parent / "data" / "foreign-run-1-3-6"
PNG = b"\x89PNG\r\n\x1a\n"


def test_report_after_run_writes_everything(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", rates=(1, 3, 6), duration=60.0)
    start = time.perf_counter()
    heads = report_after_run(run)
    elapsed = time.perf_counter() - start
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
    assert elapsed < 10  # a 60 s run: a couple of seconds in practice


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
