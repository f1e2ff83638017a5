"""``lclock view RUN_DIR [RUN_DIR2]``: the explorer, one self-contained HTML file."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from lclock.analysis.window import parse_window

BIG_LOGS = 100_000_000


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lclock.explorer.extract import MAX_EVENTS

    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder to explore")
    parser.add_argument("run_dir2", metavar="RUN_DIR2", nargs="?",
                        help="a second run folder: both runs one above the other on a shared "
                             "time axis, with their differences in jumps, drift and queues")
    parser.add_argument("--output", "-o", metavar="FILE",
                        help="where to write the page (default: RUN_DIR/explorer.html, or "
                             "RUN_DIR/explorer-vs-<RUN_DIR2's name>.html for two runs)")
    parser.add_argument("--open", action="store_true",
                        help="open the page in the default web browser when written")
    parser.add_argument("--window", type=parse_window, metavar="START,END",
                        help="embed only the events from START to END seconds after the run's "
                             "start, when its machines began (its first event for an imported "
                             "log): for runs too large to embed whole")
    parser.add_argument("--max-events", type=_positive, default=MAX_EVENTS, metavar="N",
                        help=f"the most events to embed per run (default {MAX_EVENTS:,}); a "
                             "larger run shows its first part, with a note")
    parser.add_argument("--findings", action="store_true",
                        help="check the run first and ring in red the events its error findings "
                             "name (hover one for the finding)")


def default_output(run_dirs: list[Path]) -> Path:
    if len(run_dirs) == 1:
        return run_dirs[0] / "explorer.html"
    return run_dirs[0] / f"explorer-vs-{run_dirs[1].resolve().name}.html"


def write_explorer(run_dirs: list[Path], output: Path | None = None,
                   window: tuple[float, float] | None = None,
                   max_events: int | None = None, findings: list[list[dict[str, Any]]] | None = None
                   ) -> tuple[Path, list[dict[str, Any]], list[str]]:
    """Build and write the page; returns (path, the runs' data, notes). Raises ViewError.
    ``findings`` (check's, one list per run) are marked at the events they name."""
    from lclock.explorer import extract, page
    from lclock.explorer.precheck import precheck
    from lclock.outfile import OutputFailed, OutputRefused, check_output

    path = output or default_output(run_dirs)
    try:
        check_output(path, run_dirs)  # before the work, not after it
    except OutputRefused as exc:
        raise extract.ViewError(str(exc)) from None
    for d in run_dirs:
        precheck(d)
    runs, notes = [], []
    for k, d in enumerate(run_dirs):
        data, n = extract.build(d, window, max_events or extract.MAX_EVENTS,
                                findings[k] if findings else None)
        runs.append(data)
        notes += [f"{d.name}: {x}" if len(run_dirs) > 1 else x for x in n]
    if path.is_dir():
        raise extract.ViewError(f"--output {path}: is a folder (name the file)")
    if not path.parent.is_dir():
        raise extract.ViewError(f"--output {path}: folder {path.parent} does not exist")
    try:
        page.write(path, page.render(runs), run_dirs)
    except (OutputRefused, OutputFailed) as exc:
        raise extract.ViewError(str(exc)) from None
    return path, runs, notes


def main(args: argparse.Namespace) -> int:
    dirs = [Path(args.run_dir)] + ([Path(args.run_dir2)] if args.run_dir2 else [])
    started = time.perf_counter()
    size = sum(_log_bytes(d) for d in dirs)
    if size > BIG_LOGS:  # a few seconds: say what is going on
        sys.stdout.write(f"reading {size / 1e6:,.0f} MB of logs...\n")
        sys.stdout.flush()
    found = [_findings(d) for d in dirs] if args.findings else None
    path, runs, notes = write_explorer(  # ViewError: lclock.cli prints it, exit 2
        dirs, Path(args.output) if args.output else None, args.window, args.max_events, found)
    for note in notes:
        sys.stdout.write(f"note: {note}\n")
    shown = ", ".join(f"{r['run']['events']:,} events on {r['run']['n']} machines" for r in runs)
    sys.stdout.write(f"explorer written to {path} ({shown}; "
                     f"{time.perf_counter() - started:.1f} s)\n")
    if args.open:
        _open(path)
    return 0


def _findings(run_dir: Path) -> list[dict[str, Any]]:
    """``check --json``'s findings of a run (a folder check cannot read: the page says why)."""
    from lclock.analysis.check import check_run, findings_json
    from lclock.runfolder import RunFolderError

    try:
        return findings_json(check_run(run_dir))
    except RunFolderError:
        return []


def _log_bytes(run_dir: Path) -> int:
    """The size of the machine logs (0 for anything unreadable: the build says why)."""
    try:
        return sum(p.stat().st_size for p in run_dir.glob("machine-*.jsonl") if p.is_file())
    except OSError:
        return 0


def _open(path: Path) -> None:
    import webbrowser

    try:
        ok = webbrowser.open(path.resolve().as_uri())
    except webbrowser.Error:
        ok = False
    if not ok:
        sys.stdout.write(f"could not open a web browser here: open {path} yourself\n")
