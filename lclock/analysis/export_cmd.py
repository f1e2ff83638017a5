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
    from lclock.errors import fail
    from lclock.outfile import OutputFailed, OutputRefused, check_output

    keep_freed_memory()

    if args.output == "-":
        path = None
    elif args.output:
        path = Path(args.output)
    else:
        path = Path(args.run_dir) / DEFAULT_NAMES[args.format]
    try:
        if path is not None:
            check_output(path, [Path(args.run_dir)])  # before the work, not after it
        run = load_run(args.run_dir)
        if not run.machines:
            raise ExportError(f"{args.run_dir}: no machine logs to export")
        count, written = export(run, args.format, path)
    except (RunFolderError, ExportError, OutputRefused, OutputFailed) as exc:
        return fail("export", exc)
    except BrokenPipeError:
        raise  # the reader of standard output went away: lclock.cli ends quietly
    if written is not None:
        skipped = sum(m.skipped for m in run.machines.values())
        note = f" ({skipped} unusable line(s) skipped; run lclock check)" if skipped else ""
        sys.stderr.write(f"{count} events written to {written}{note}\n")
    return 0
