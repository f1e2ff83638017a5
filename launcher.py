#!/usr/bin/env python3
"""``python launcher.py --duration 60``: runs the model (the same as ``lclock run``)."""

import sys

from lclock.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]], prog="launcher.py"))
