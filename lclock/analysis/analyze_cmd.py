"""``lclock analyze RUN_DIR``: print the tables and write summary.json next to the logs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder to analyse")
    parser.add_argument("--output", "-o", metavar="FILE",
                        help="where to write the summary (default: RUN_DIR/summary.json)")
    parser.add_argument("--json", action="store_true",
                        help="print the summary as JSON instead of tables")
    parser.add_argument("--no-write", action="store_true", help="do not write summary.json")


def main(args: argparse.Namespace) -> int:
    import orjson

    from lclock.analysis.analyze import compute, render
    from lclock.analysis.load import RunFolderError, load_run
    from lclock.analysis.memory import keep_freed_memory
    from lclock.errors import fail
    from lclock.outfile import OutputFailed, OutputRefused, check_output, write_bytes

    keep_freed_memory()

    out = Path(args.output) if args.output else Path(args.run_dir) / "summary.json"
    try:
        if not args.no_write:
            check_output(out, [Path(args.run_dir)])  # before the work, not after it
        run = load_run(args.run_dir)
    except (RunFolderError, OutputRefused) as exc:
        return fail("analyze", exc)
    if not run.machines:
        return fail("analyze", f"{args.run_dir}: no machine logs to analyse")
    summary, _ = compute(run)
    data = orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    if args.json:
        sys.stdout.write(data.decode())
    else:
        sys.stdout.write(render(summary) + "\n")
    if not args.no_write:
        try:
            write_bytes(out, data, runs=[run.path])
        except OutputRefused as exc:
            return fail("analyze", exc)
        except OutputFailed as exc:
            return fail("analyze", f"{exc} (use --output FILE or --no-write)")
        if not args.json:
            sys.stdout.write(f"\nsummary written to {out}\n")
    return 0
