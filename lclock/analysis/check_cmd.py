"""``lclock check RUN_DIR``: exit 0 when every rule holds, 1 with the findings, 2 on bad input."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder to check")
    parser.add_argument("--all", action="store_true",
                        help="list every finding (default: at most 20 of a kind per file)")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="print only the findings, not the notes and the closing line")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object: ok, counts, notes, and the findings, each "
                             "with its rule, severity, file, machine, line, count and message")


def main(args: argparse.Namespace) -> int:
    from lclock.analysis.check import check_run, findings_json, format_findings, summary_line
    from lclock.analysis.memory import keep_freed_memory

    keep_freed_memory()
    from lclock.analysis.load import RunFolderError
    from lclock.errors import fail

    try:
        result = check_run(args.run_dir, cap=None if args.all else 20)
    except RunFolderError as exc:
        return fail("check", exc)
    out = sys.stdout
    if args.json:
        import json

        out.write(json.dumps({"ok": result.ok, "counts": result.counts, "notes": result.notes,
                              "findings": findings_json(result)}, indent=1) + "\n")
        return 0 if result.ok else 1
    for line in format_findings(result):
        out.write(line + "\n")
    if not args.quiet:
        for note in result.notes:
            out.write(f"note: {note}\n")
        out.write(summary_line(result, args.run_dir) + "\n")
    return 0 if result.ok else 1
