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

    keep_freed_memory()

    try:
        run = load_run(args.run_dir)
    except RunFolderError as exc:
        sys.stderr.write(f"lclock analyze: {exc}\n")
        return 2
    if not run.machines:
        sys.stderr.write(f"lclock analyze: {args.run_dir}: no machine logs to analyse\n")
        return 2
    summary, _ = compute(run)
    data = orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    if args.json:
        sys.stdout.write(data.decode())
    else:
        sys.stdout.write(render(summary) + "\n")
    if not args.no_write:
        out = Path(args.output) if args.output else Path(args.run_dir) / "summary.json"
        try:
            out.write_bytes(data)
        except OSError as exc:
            sys.stderr.write(f"lclock analyze: cannot write {out}: {exc.strerror or exc} "
                             "(use --output FILE or --no-write)\n")
            return 2
        if not args.json:
            sys.stdout.write(f"\nsummary written to {out}\n")
    return 0
