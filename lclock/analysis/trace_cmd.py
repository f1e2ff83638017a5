"""``lclock trace RUN_DIR EVENT``: a message's life and an event's causal past and future."""

from __future__ import annotations

import argparse
import sys

from lclock.analysis.causal import EVENT_SYNTAX


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder")
    parser.add_argument("event", metavar="EVENT",
                        help=f"the event: {EVENT_SYNTAX}; a send names its message, as in "
                             "SPEC section 5 (MACHINE:LCLOCK of the send)")
    parser.add_argument("--json", action="store_true", help="print the answer as one JSON object")
    parser.add_argument("--machines", type=int, default=16, metavar="N",
                        help="machines listed in the text answer (default 16; --json lists all)")


def main(args: argparse.Namespace) -> int:
    from lclock.analysis.causal import CausalError, find_event
    from lclock.analysis.causal_answers import open_causality, print_json, trace, trace_text
    from lclock.analysis.load import RunFolderError
    from lclock.errors import fail

    try:
        c = open_causality(args.run_dir)
        e = find_event(c.run, args.event)
    except (RunFolderError, CausalError) as exc:
        return fail("trace", exc)
    d = trace(c, e)
    if args.json:
        print_json(d)
    else:
        sys.stdout.write("\n".join(trace_text(d, max(args.machines, 1))) + "\n")
    return 0
