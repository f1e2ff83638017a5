"""``lclock hb RUN_DIR A B``: did A happen before B, after it, or neither -- with the proof.

``lclock hb RUN_DIR --lamport-lies``: the pairs that Lamport clocks order but that are
concurrent, counted, with examples.
"""

from __future__ import annotations

import argparse
import sys

from lclock.analysis.causal import EVENT_SYNTAX


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder")
    parser.add_argument("events", nargs="*", metavar="EVENT",
                        help=f"two events A B: {EVENT_SYNTAX}")
    parser.add_argument("--lamport-lies", action="store_true",
                        help="instead of two events: count the pairs where L(A) < L(B) although "
                             "A and B are concurrent, with examples")
    parser.add_argument("--examples", type=int, default=5, metavar="N",
                        help="examples shown with --lamport-lies (default 5)")
    parser.add_argument("--json", action="store_true", help="print the answer as one JSON object")


def main(args: argparse.Namespace) -> int:
    from lclock.analysis.causal import CausalError, find_event, parse_event
    from lclock.analysis.causal_answers import (
        hb,
        hb_text,
        lies,
        lies_text,
        open_causality,
        print_json,
    )
    from lclock.analysis.load import RunFolderError
    from lclock.errors import fail

    want = 0 if args.lamport_lies else 2
    if len(args.events) != want:
        return fail("hb", "give two events A B (" + EVENT_SYNTAX + "), or --lamport-lies "
                          f"alone (got {len(args.events)} event(s))")
    if args.examples < 0:
        return fail("hb", f"--examples must be 0 or more (got {args.examples})")
    try:
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
    except (RunFolderError, CausalError) as exc:
        return fail("hb", exc)
    if args.json:
        print_json(d)
    else:
        sys.stdout.write("\n".join(lines) + "\n")
    return 0
