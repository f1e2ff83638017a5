"""The small analysis commands: check, analyze, report, export, schema, trace and hb.

Each is a :class:`Command` (its options and its main), named in ``lclock.cli.COMMANDS``
as ``lclock.analysis.commands:NAME``. A main only reads its arguments, calls the analysis
and prints; bad input is raised (``lclock.errors.BadInput`` and its kinds), and the CLI
prints it as one line with exit status 2. Heavy modules are imported inside the mains, so
``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from lclock.errors import BadInput


class Command(NamedTuple):
    add_arguments: Callable[[argparse.ArgumentParser], None]
    main: Callable[[argparse.Namespace], int]


def _run_dir(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help=f"the run folder {what}".rstrip())


def _json_answer(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the answer as one JSON object")


# ---- check ---------------------------------------------------------------------------------


def _check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", nargs="?", help="the run folder to check")
    parser.add_argument("--bugs", action="store_true",
                        help="list the classic bugs check names (SPEC 10), each with what it "
                             "does and an example; no run folder needed")
    parser.add_argument("--all", action="store_true",
                        help="list every finding (default: at most 20 of a kind per file)")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="print only the findings, not the notes and the closing line")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object: ok, counts, notes, and the findings, each "
                             "with its rule, severity, file, machine, line, count and message "
                             "(with --bugs: the catalogue as a JSON list)")


def _check_main(args: argparse.Namespace) -> int:
    """Exit 0 when every rule holds, 1 with the findings (2 on bad input, from the CLI)."""
    import json

    from lclock.analysis.check import check_json, check_run, format_findings, summary_line
    from lclock.analysis.memory import keep_freed_memory

    if args.bugs:
        from lclock.analysis.bugs import CATALOGUE, listing

        if args.json:  # what a script reads: each bug's name, what it does, its example
            sys.stdout.write(json.dumps([{"name": b.name, "what": b.what, "example": b.example}
                                         for b in CATALOGUE], indent=1) + "\n")
            return 0
        sys.stdout.write("".join(line + "\n" for line in listing()))
        return 0
    if args.run_dir is None:
        raise BadInput("RUN_DIR: the run folder to check is required (or --bugs)")
    keep_freed_memory()
    result = check_run(args.run_dir, cap=None if args.all else 20)
    out = sys.stdout
    if args.json:
        out.write(json.dumps(check_json(result), indent=1) + "\n")
        return 0 if result.ok else 1
    for line in format_findings(result):
        out.write(line + "\n")
    if not args.quiet:
        for note in result.notes:
            out.write(f"note: {note}\n")
        out.write(summary_line(result, args.run_dir) + "\n")
    return 0 if result.ok else 1


check = Command(_check_arguments, _check_main)


# ---- analyze -------------------------------------------------------------------------------


def _analyze_arguments(parser: argparse.ArgumentParser) -> None:
    _run_dir(parser, "to analyse")
    parser.add_argument("--output", "-o", metavar="FILE",
                        help="where to write the summary (default: RUN_DIR/summary.json)")
    parser.add_argument("--json", action="store_true",
                        help="print the summary as JSON instead of tables")
    parser.add_argument("--no-write", action="store_true", help="do not write summary.json")


def _analyze_main(args: argparse.Namespace) -> int:
    """Print the tables (or the JSON) and write summary.json next to the logs."""
    import orjson

    from lclock.analysis.analyze import compute, render
    from lclock.analysis.load import load_run
    from lclock.analysis.memory import keep_freed_memory
    from lclock.outfile import OutputFailed, check_output, write_bytes

    keep_freed_memory()
    out = Path(args.output) if args.output else Path(args.run_dir) / "summary.json"
    if not args.no_write:
        check_output(out, [Path(args.run_dir)])  # before the work, not after it
    run = load_run(args.run_dir)
    if not run.machines:
        raise BadInput(f"{args.run_dir}: no machine logs to analyse")
    summary, _ = compute(run)
    data = orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    sys.stdout.write(data.decode() if args.json else render(summary) + "\n")
    if args.no_write:
        return 0
    try:
        write_bytes(out, data, runs=[run.path])
    except OutputFailed as exc:
        raise BadInput(f"{exc} (use --output FILE or --no-write)") from None
    if not args.json:
        sys.stdout.write(f"\nsummary written to {out}\n")
    return 0


analyze = Command(_analyze_arguments, _analyze_main)


# ---- report --------------------------------------------------------------------------------


def _report_arguments(parser: argparse.ArgumentParser) -> None:
    from lclock.analysis.window import parse_window

    _run_dir(parser, "to report on")
    parser.add_argument("--output", "-o", metavar="DIR",
                        help="folder for report.html, the PNGs and summary.json (default: RUN_DIR)")
    parser.add_argument("--window", type=parse_window, metavar="START,END",
                        help="time window of the space-time diagram, seconds after the run's start, "
                             "when its machines began (its first event for an imported log; "
                             "default: the first ~150 events)")


def _report_main(args: argparse.Namespace) -> int:
    """report.html with embedded figures, the PNGs and summary.json."""
    from lclock.analysis.memory import keep_freed_memory
    from lclock.analysis.report import write_report

    keep_freed_memory()
    _, heads, path = write_report(args.run_dir, args.output, args.window)
    for h in heads:
        sys.stdout.write(h + "\n")
    sys.stdout.write(f"report written to {path}\n")
    return 0


report = Command(_report_arguments, _report_main)


# ---- export --------------------------------------------------------------------------------

EXPORT_NAMES = {"shiviz": "shiviz.log", "csv": "events.csv", "total-order": "total-order.csv"}


def _export_arguments(parser: argparse.ArgumentParser) -> None:
    _run_dir(parser, "to export")
    parser.add_argument("--format", "-f", choices=sorted(EXPORT_NAMES), default="shiviz",
                        help="shiviz: a log for ShiViz's vector-clock visualiser; csv: one row per "
                             "event for spreadsheets; total-order: every event in Lamport's total "
                             "order (L, machine id) as CSV (default: shiviz)")
    parser.add_argument("--output", "-o", metavar="FILE",
                        help="where to write ('-' for standard output; default: RUN_DIR/shiviz.log, "
                             "RUN_DIR/events.csv or RUN_DIR/total-order.csv)")


def _export_main(args: argparse.Namespace) -> int:
    """A ShiViz log, a flat CSV table or the total order; the count on stderr."""
    from lclock.analysis.export import export
    from lclock.analysis.load import load_run
    from lclock.analysis.memory import keep_freed_memory
    from lclock.outfile import check_output

    keep_freed_memory()
    if args.output == "-":
        path = None
    else:
        path = Path(args.output) if args.output else Path(args.run_dir) / EXPORT_NAMES[args.format]
        check_output(path, [Path(args.run_dir)])  # before the work, not after it
    run = load_run(args.run_dir)
    if not run.machines:
        raise BadInput(f"{args.run_dir}: no machine logs to export")
    count, written = export(run, args.format, path)  # a closed stdout: lclock.cli ends quietly
    if written is not None:
        skipped = sum(m.skipped for m in run.machines.values())
        note = f" ({skipped} unusable line(s) skipped; run lclock check)" if skipped else ""
        sys.stderr.write(f"{count} events written to {written}{note}\n")
    return 0


export = Command(_export_arguments, _export_main)


# ---- schema --------------------------------------------------------------------------------


def _schema_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--compact", action="store_true", help="one line instead of indented")


def _schema_main(args: argparse.Namespace) -> int:
    """The JSON Schema of the log lines, for validators and loaders."""
    import json

    from lclock.analysis.schema import LOG_LINE_SCHEMA

    sys.stdout.write(json.dumps(LOG_LINE_SCHEMA, indent=None if args.compact else 2) + "\n")
    return 0


schema = Command(_schema_arguments, _schema_main)


# ---- trace ---------------------------------------------------------------------------------


def _trace_arguments(parser: argparse.ArgumentParser) -> None:
    from lclock.analysis.causal import EVENT_SYNTAX

    _run_dir(parser, "")
    parser.add_argument("event", metavar="EVENT",
                        help=f"the event: {EVENT_SYNTAX}; a send names its message, as in "
                             "SPEC section 5 (MACHINE:LCLOCK of the send)")
    _json_answer(parser)
    parser.add_argument("--machines", type=int, default=16, metavar="N",
                        help="machines listed in the text answer (default 16; --json lists all)")


def _trace_main(args: argparse.Namespace) -> int:
    """A message's life and an event's causal past and future."""
    from lclock.analysis.causal import find_event
    from lclock.analysis.causal_answers import open_causality, print_json, trace, trace_text

    c = open_causality(args.run_dir)
    d = trace(c, find_event(c.run, args.event))
    if args.json:
        print_json(d)
    else:
        sys.stdout.write("\n".join(trace_text(d, max(args.machines, 1))) + "\n")
    return 0


trace = Command(_trace_arguments, _trace_main)


# ---- hb ------------------------------------------------------------------------------------


def _hb_arguments(parser: argparse.ArgumentParser) -> None:
    from lclock.analysis.causal import EVENT_SYNTAX

    _run_dir(parser, "")
    parser.add_argument("events", nargs="*", metavar="EVENT",
                        help=f"two events A B: {EVENT_SYNTAX}")
    parser.add_argument("--lamport-lies", action="store_true",
                        help="instead of two events: count the pairs where L(A) < L(B) although "
                             "A and B are concurrent, with examples")
    parser.add_argument("--examples", type=int, default=5, metavar="N",
                        help="examples shown with --lamport-lies (default 5)")
    _json_answer(parser)


def _hb_main(args: argparse.Namespace) -> int:
    """Did A happen before B, after it, or neither -- with the proof; or, with
    ``--lamport-lies``, the pairs Lamport clocks order although they are concurrent."""
    from lclock.analysis.causal import EVENT_SYNTAX, find_event, parse_event
    from lclock.analysis.causal_answers import (
        hb,
        hb_text,
        lies,
        lies_text,
        open_causality,
        print_json,
    )

    want = 0 if args.lamport_lies else 2
    if len(args.events) != want:
        raise BadInput("give two events A B (" + EVENT_SYNTAX + "), or --lamport-lies "
                       f"alone (got {len(args.events)} event(s))")
    if args.examples < 0:
        raise BadInput(f"--examples must be 0 or more (got {args.examples})")
    for x in args.events:
        parse_event(x)  # a typo is reported before the run is read
    c = open_causality(args.run_dir)
    if args.lamport_lies:
        d = lies(c, args.examples)
        lines = lies_text(d)
    else:
        a, b = (find_event(c.run, x) for x in args.events)
        d = hb(c, a, b)
        lines = hb_text(d)
    if args.json:
        print_json(d)
    else:
        sys.stdout.write("\n".join(lines) + "\n")
    return 0


hb = Command(_hb_arguments, _hb_main)
