"""``python -m lclock``: the same command line as the ``lclock`` script."""

import sys

from lclock.cli import entry

sys.exit(entry())
