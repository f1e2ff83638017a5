"""``lclock report``: summary.json, the PNG figures and one self-contained report.html.

This module only orders the work: the numbers come from ``analyze.compute``, the figures
from :mod:`lclock.analysis.figures` and :mod:`lclock.analysis.spacetime`, the page from
:mod:`lclock.analysis.report_page` (its template is report.html); the explorer is only
linked (and, after a run, written first by :func:`report_after_run`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lclock.analysis.analyze import Series, compute, headlines
from lclock.analysis.figures import (
    fig_clock_compare,
    fig_clocks,
    fig_drift,
    fig_jumps,
    fig_queues,
    png,
)
from lclock.analysis.load import Run, load_run
from lclock.analysis.report_page import FIGURES, render_html
from lclock.analysis.spacetime import choose_window, fault_anchor, fig_spacetime
from lclock.analysis.window import check_window
from lclock.errors import BadInput

__all__ = ["FIGURES", "report_after_run", "write_report"]


def _images(run: Run, series: Series, summary: dict[str, Any],
            window: tuple[float, float]) -> dict[str, bytes]:
    """Every figure of the report as PNG bytes, drawn in memory."""
    faults = summary.get("faults")
    figs: dict[str, Callable[[], Any]] = {
        "clocks": lambda: fig_clocks(run, series, faults),
        "clockcmp": lambda: fig_clock_compare(run, series, summary),
        "drift": lambda: fig_drift(run, series, faults),
        "queues": lambda: fig_queues(run, series, summary),
        "jumps": lambda: fig_jumps(run, series),
        "spacetime": lambda: fig_spacetime(run, window, faults),
    }
    return {name: png(make()) for name, make in figs.items()}


def write_report(run_dir: Path | str, out_dir: Path | str | None = None,
                 window: tuple[float, float] | None = None) -> tuple[dict[str, Any], list[str], Path]:
    """Write summary.json, the PNGs and report.html; returns (summary, headlines, html path).

    All of them or none: they are drawn in memory first and then written together
    (``outfile.all_or_none``), so a full disk leaves no partial report (and a folder this
    call created is removed again). Raises ``BadInput``, ``RunFolderError``,
    ``OutputRefused`` (an output folder that is another run's) or ``OutputFailed``.
    """
    import orjson

    from lclock.outfile import OutputFailed, all_or_none, check_folder

    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir
    check_folder(out, [run_dir])  # before the work, not after it
    run = load_run(run_dir)
    if not run.machines:
        raise BadInput(f"{run_dir}: no machine logs to report on")
    if window is not None:
        check_window(run, window)  # before anything is written
    if out.exists() and not out.is_dir():
        raise BadInput(f"--output {out}: not a folder")
    summary, series = compute(run)
    heads = headlines(summary)
    win = choose_window(run, window, fault_anchor(summary.get("faults"), run))
    images = _images(run, series, summary, win)
    path = out / "report.html"
    explorer = next((os.path.relpath(p, out) for p in (out / "explorer.html",
                     run_dir / "explorer.html") if p.is_file()), None)
    page = render_html(summary, heads, images, win, explorer).encode("utf-8")
    made = _make_folder(out)
    try:
        with all_or_none([run_dir]) as files:
            files.add(out / "summary.json",
                      orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))
            for name, data in images.items():
                files.add(out / f"{name}.png", data)
            files.add(path, page)
    except OutputFailed:
        for d in made:
            with contextlib.suppress(OSError):
                d.rmdir()
        raise
    return summary, heads, path


def _make_folder(out: Path) -> list[Path]:
    """Create ``out`` and its missing parents; returns the folders created, deepest first."""
    from lclock.outfile import OutputFailed

    missing = []
    d = out
    while not d.exists() and d != d.parent:
        missing.append(d)
        d = d.parent
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputFailed(out, exc) from None
    return missing


def report_after_run(run_dir: Path) -> list[str]:
    """For the launcher: the explorer and the whole report into the run folder (report.html
    links explorer.html), and three headline findings."""
    from lclock.explorer.view_cmd import write_explorer

    try:
        write_explorer([Path(run_dir)])
    except Exception as exc:  # the report is still worth writing without it
        sys.stderr.write(f"lclock: warning: explorer not written: {exc}\n")
    _, heads, _ = write_report(run_dir)
    return heads
