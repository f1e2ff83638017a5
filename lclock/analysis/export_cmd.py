"""``lclock export --format shiviz|csv RUN_DIR``: a ShiViz log or a flat CSV table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_NAMES = {"shiviz": "shiviz.log", "csv": "events.csv", "total-order": "total-order.csv"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder to export")
    parser.add_argument("--format", "-f", choices=sorted(DEFAULT_NAMES), default="shiviz",
                        help="shiviz: a log for ShiViz's vector-clock visualiser; csv: one row per "
                             "event for spreadsheets; total-order: every event in Lamport's total "
                             "order (L, machine id) as CSV (default: shiviz)")
    parser.add_argument("--output", "-o", metavar="FILE",
                        help="where to write ('-' for standard output; default: RUN_DIR/shiviz.log, "
                             "RUN_DIR/events.csv or RUN_DIR/total-order.csv)")


def main(args: argparse.Namespace) -> int:
    from lclock.analysis.export import ExportError, export
    from lclock.analysis.load import RunFolderError, load_run
    from lclock.analysis.memory import keep_freed_memory

    keep_freed_memory()

    try:
        run = load_run(args.run_dir)
    except RunFolderError as exc:
        sys.stderr.write(f"lclock export: {exc}\n")
        return 2
    if args.output == "-":
        path = None
    elif args.output:
        path = Path(args.output)
    else:
        path = Path(args.run_dir) / DEFAULT_NAMES[args.format]
    try:
        count, written = export(run, args.format, path)
    except ExportError as exc:
        sys.stderr.write(f"lclock export: {args.run_dir}: {exc}\n")
        return 2
    except BrokenPipeError:
        raise  # the reader of standard output went away: lclock.cli ends quietly
    except OSError as exc:
        sys.stderr.write(f"lclock export: cannot write {path}: {exc.strerror or exc}\n")
        return 2
    if written is not None:
        skipped = sum(m.skipped for m in run.machines.values())
        note = f" ({skipped} unusable line(s) skipped; run lclock check)" if skipped else ""
        sys.stderr.write(f"{count} events written to {written}{note}\n")
    return 0
