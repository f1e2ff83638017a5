"""The small checks every table of settings shares ([faults], [clocks]): numbers in a range,
known keys with a suggestion, schedules written as the flags write them.

A problem is a ``SettingValueError`` whose text is the whole line the user sees, naming the
flag or ``file:key`` first; lclock.settings turns it into a SettingsError.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import Any


class SettingValueError(Exception):
    """A bad value in a table of settings; the message is the whole line."""


def number(value: Any, where: str, lo: float, hi: float, what: str) -> float:
    """A finite number from ``lo`` to ``hi`` (a bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not lo <= value <= hi:
        raise SettingValueError(f"{where}: must be {what} (got {value!r})")
    return float(value)


def items(value: Any, where: str, example: str) -> list[str]:
    """A schedule: one string with ';' between its items (as the flag takes it), or a list."""
    if isinstance(value, str):
        return [x for x in value.split(";") if x.strip()]
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        return [x for x in value if x.strip()]
    raise SettingValueError(f"{where}: must be a string like {example}, or a list of them (got {value!r})")


def known_keys(table: Any, where: str, keys: Iterable[str], name: str) -> dict[str, Any]:
    """A table of a settings file whose keys are all known (values are checked later)."""
    if not isinstance(table, dict):
        raise SettingValueError(f"{where}: must be a table [{name}]")
    known = list(keys)
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise SettingValueError(f"{where}.{key}: unknown key{hint}")
    return dict(table)


def seconds(text: str, duration: float) -> float:
    """A time of a schedule in seconds: ``12.5`` is seconds, ``25%`` a quarter of the run
    (so a preset's schedule fits a run of any length)."""
    if text.endswith("%"):
        # To the microsecond, as the logs have them: 30% of 0.5 s is not 0.15000000000000002.
        return round(float(text[:-1]) / 100.0 * duration, 6)
    return float(text)
