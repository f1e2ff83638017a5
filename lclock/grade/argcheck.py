"""The rubric's ``args`` judged as ``lclock sim`` would, before any submission runs.

A flag the simulator refuses would fail every run of every submission, and each would be
charged a crash for the rubric's mistake: it is one line naming the item instead.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

from lclock.grade.rubric import Item, Rubric


def check_args(rubric: Rubric, where: str) -> None:
    """ValueError naming ``where`` and the item whose args lclock sim does not take."""
    for item in rubric.items:
        if item.kind in ("sim", "mixed", "twice") and not item.skip:
            problem = sim_refuses(item)
            if problem:
                raise ValueError(f"{where}: battery.{item.name}.args: {problem}")


def sim_refuses(item: Item) -> str | None:
    """Why ``lclock sim`` would refuse the item's flags (None: it takes them)."""
    from lclock.grade.battery import program_args

    argv = program_args(item, "true", item.seeds[0], Path("output"), "check")[1:]
    try:
        owned = _owned(_parse(list(item.args)), _parse([]))
        args = _parse(argv)
    except _Refused as e:
        return str(e)
    return owned or _resolves(args)


#: The flags lclock grade gives every run: the rubric's args come last, so one of these
#: there would win: the runs written elsewhere (--output /etc), another program run, ...
OWNED = ("output", "run_id", "impl", "impl_limits", "seed", "duration", "settings", "quiet",
         "twice")


def _owned(given: Any, defaults: Any) -> str | None:
    """Which flag of lclock grade's own the args set (abbreviated or not), or None."""
    for dest in OWNED:
        if getattr(given, dest, None) != getattr(defaults, dest, None):
            return f"--{dest.replace('_', '-')}: lclock grade sets it itself"
    return None


class _Refused(Exception):
    pass


def _parse(argv: list[str]) -> Any:
    from lclock.cli import _Parser
    from lclock.sim import sim_cmd

    parser = _Parser(prog="lclock sim")
    sim_cmd.add_arguments(parser)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return parser.parse_args(argv)
    except SystemExit:
        line = err.getvalue().strip().splitlines()
        raise _Refused(line[-1].split("error: ", 1)[-1] if line else "refused") from None


def _resolves(args: Any) -> str | None:
    from lclock.setting_table import flags_of
    from lclock.settings import SettingsError, SettingsFile, resolve
    from lclock.sim.engine import resolve_network

    try:
        flags = flags_of(args)
        resolve(SettingsFile(), flags)
        resolve_network(SettingsFile(), flags)
    except SettingsError as e:
        return str(e)
    return None
