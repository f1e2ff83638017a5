"""``lclock report RUN_DIR``: report.html with embedded figures, the PNGs and summary.json."""

from __future__ import annotations

import argparse
import sys


def _window(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START,END in seconds, got {text!r}") from None
    if not 0 <= lo < hi:
        raise argparse.ArgumentTypeError(f"need 0 <= START < END, got {text!r}")
    return lo, hi


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder to report on")
    parser.add_argument("--output", "-o", metavar="DIR",
                        help="folder for report.html, the PNGs and summary.json (default: RUN_DIR)")
    parser.add_argument("--window", type=_window, metavar="START,END",
                        help="time window of the space-time diagram, seconds after the first tick "
                             "(default: the first ~150 events)")


def main(args: argparse.Namespace) -> int:
    from lclock.analysis.load import RunFolderError
    from lclock.analysis.memory import keep_freed_memory
    from lclock.analysis.report import ReportError, write_report
    from lclock.errors import fail
    from lclock.outfile import OutputFailed, OutputRefused

    keep_freed_memory()

    try:
        _, heads, path = write_report(args.run_dir, args.output, args.window)
    except (RunFolderError, ReportError, OutputRefused, OutputFailed) as exc:
        return fail("report", exc)
    for h in heads:
        sys.stdout.write(h + "\n")
    sys.stdout.write(f"report written to {path}\n")
    return 0
