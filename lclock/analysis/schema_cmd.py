"""``lclock schema``: print the JSON Schema of the log lines, for validators and loaders."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--compact", action="store_true", help="one line instead of indented")


def main(args: argparse.Namespace) -> int:
    from lclock.analysis.schema import LOG_LINE_SCHEMA

    indent = None if args.compact else 2
    sys.stdout.write(json.dumps(LOG_LINE_SCHEMA, indent=indent) + "\n")
    return 0
