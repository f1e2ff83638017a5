"""The run options shared by every command that runs the model (run, sim, vm, experiment).

One definition, so ``lclock run``, ``lclock sim`` and ``lclock vm`` take the same flags with
the same meaning, and their values go through the same validation (lclock.settings).
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from lclock.clock_settings import add_clock_options, clock_flags
from lclock.errors import shown
from lclock.fault_settings import add_fault_options, fault_flags
from lclock.settings import DEFAULT_SETTINGS_FILE, MAX_MACHINES, RunSettings


def int_list(text: str) -> tuple[int, ...]:
    """``1,3,6``: every item an integer; an empty item (``1,,3``, ``,``) is a mistake."""
    items = text.split(",")
    if not text.strip() or any(not x.strip() for x in items):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 1,3,6 (got {shown(text)})"
        )
    return tuple(integer(x) for x in items)


def integer(text: str) -> int:
    """An integer flag's value; the range is checked where the setting is validated."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer (got {shown(text)})") from None


def number(text: str) -> float:
    """A number flag's value; nan and infinity are not numbers of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number such as 30 or 0.5 (got {shown(text)})"
        ) from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number (got {shown(text)})")
    return value


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The options every command that runs the model shares (run, sim, vm).

    The defaults in the help come from RunSettings itself, so the two cannot disagree
    (a test compares them with the README's table too).
    """
    d = RunSettings()
    p.add_argument("--duration", type=number, metavar="SECONDS",
                   help=f"length of the run (default {d.duration:g})")
    p.add_argument("--machines", type=integer, metavar="N",
                   help=f"number of machines, 2..{MAX_MACHINES} (default {d.machines})")
    p.add_argument("--seed", type=integer, metavar="INT",
                   help="seed of the random choices (default: random, recorded)")
    p.add_argument("--rates", type=int_list, metavar="R1,R2,...",
                   help="fix each machine's ticks per second, e.g. 1,3,6 (default: drawn)")
    p.add_argument("--rate-min", type=integer, metavar="R",
                   help=f"smallest drawn rate (default {d.rate_min})")
    p.add_argument("--rate-max", type=integer, metavar="R",
                   help=f"largest drawn rate (default {d.rate_max})")
    p.add_argument("--dice-sides", type=integer, metavar="K",
                   help=f"sides of the die; 1-3 send, others internal (default {d.dice_sides})")
    p.add_argument("--no-vector-clocks", dest="vector_clocks", action="store_const", const=False,
                   default=None, help="do not keep vector clocks, for large N (default: kept)")
    p.add_argument("--settings", metavar="PATH",
                   help=f"settings file (default ./{DEFAULT_SETTINGS_FILE} if present)")
    p.add_argument("--output", metavar="DIR", help=f"folder for run folders (default ./{d.output})")
    p.add_argument("--quiet", action="store_const", const=True, default=None,
                   help="print nothing while running (default: off)")
    add_fault_options(p)
    add_clock_options(p)


RUN_FLAGS = ("duration", "machines", "seed", "rates", "rate_min", "rate_max", "dice_sides",
             "vector_clocks", "output", "quiet", "transport", "report")


def run_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The flags as settings names; None where a flag was not given (the file decides)."""
    return {**{k: getattr(args, k, None) for k in RUN_FLAGS}, **fault_flags(args),
            **clock_flags(args)}
