#!/usr/bin/env python3
"""``python launcher.py --duration 60``: runs the model (the same as ``lclock run``)."""

import sys

if __name__ == "__main__":
    try:
        from lclock.cli import entry
    except KeyboardInterrupt:  # Ctrl-C while still importing: nothing was created yet
        sys.exit(130)
    sys.exit(entry(["run", *sys.argv[1:]], prog="launcher.py"))
