"""The run options shared by every command that runs the model (run, sim, vm, experiment).

One definition, so ``lclock run``, ``lclock sim`` and ``lclock vm`` take the same flags with
the same meaning, and their values go through the same validation (lclock.settings).
"""

from __future__ import annotations

import argparse
from typing import Any

from lclock.clock_settings import add_clock_options, clock_flags
from lclock.fault_settings import add_fault_options, fault_flags


def int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 1,3,6 (got {text!r})"
        ) from None
    return values


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The options every command that runs the model shares (run, sim, vm)."""
    p.add_argument("--duration", type=float, metavar="SECONDS", help="length of the run (default 60)")
    p.add_argument("--machines", type=int, metavar="N", help="number of machines, 2..128 (default 3)")
    p.add_argument("--seed", type=int, metavar="INT", help="seed of the random choices (default: random, recorded)")
    p.add_argument("--rates", type=int_list, metavar="R1,R2,...", help="fix each machine's ticks per second, e.g. 1,3,6")
    p.add_argument("--rate-min", type=int, metavar="R", help="smallest drawn rate (default 1)")
    p.add_argument("--rate-max", type=int, metavar="R", help="largest drawn rate (default 6)")
    p.add_argument("--dice-sides", type=int, metavar="K", help="sides of the die; 1-3 send, others internal (default 10)")
    p.add_argument("--no-vector-clocks", dest="vector_clocks", action="store_const", const=False, default=None, help="do not keep vector clocks (for large N)")
    p.add_argument("--settings", metavar="PATH", help="settings file (default ./settings.toml if present)")
    p.add_argument("--output", metavar="DIR", help="folder for run folders (default ./output)")
    p.add_argument("--quiet", action="store_const", const=True, default=None, help="print nothing while running")
    add_fault_options(p)
    add_clock_options(p)


RUN_FLAGS = ("duration", "machines", "seed", "rates", "rate_min", "rate_max", "dice_sides",
             "vector_clocks", "output", "quiet", "transport", "report")


def run_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The flags as settings names; None where a flag was not given (the file decides)."""
    return {**{k: getattr(args, k, None) for k in RUN_FLAGS}, **fault_flags(args),
            **clock_flags(args)}
