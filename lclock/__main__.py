"""``python -m lclock``: the same command line as the ``lclock`` script."""

import sys

try:
    from lclock.cli import entry
except KeyboardInterrupt:  # Ctrl-C while still importing: nothing was created yet
    sys.exit(130)

sys.exit(entry())
