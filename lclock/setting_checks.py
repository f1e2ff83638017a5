"""The checks the table of settings (lclock.setting_table) names: one value's type and range,
a schedule's syntax, and the rules that tie several keys together.

Every check takes the value, ``where`` (the flag or ``file:key`` it came from) and the run's
size when it needs it, and returns the value as the settings keep it. A problem is one
``SettingsError`` whose text is the whole line the user sees, naming ``where`` first.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

from lclock.errors import shown


class SettingsError(Exception):
    """A bad setting or flag; the message is the whole line the user sees."""


class Run(NamedTuple):
    """What a value is checked against: the run's machines and length."""

    n: int
    duration: float


Check = Callable[[Any, str, Run], Any]

MAX_RATE = 10_000
MAX_MACHINES = 128
MAX_STRING = 4096  # characters of any string setting (a path is at most 4095 bytes on Linux)
WEEK = 7 * 24 * 3600.0
MAX_LATENCY_MS = 60_000.0
MAX_SKEW_MS = 10_000_000.0  # about three hours: anything more is a typo
MAX_DRIFT_PPM = 100_000.0  # 10 %: a clock that fast or slow is broken, not skewed
LINK_KEYS = ("latency_ms", "latency_dist", "loss", "duplicate")


def fail(where: str, what: str) -> SettingsError:
    return SettingsError(f"{where}: {what}")


def later(name: str) -> Check:
    """A check of lclock.setting_schedules, which a run without faults never imports."""
    def check(value: Any, where: str, run: Run) -> Any:
        from lclock import setting_schedules

        return getattr(setting_schedules, name)(value, where, run)
    return check


def lazy(module: str, name: str) -> Check:
    """A check that lives with what it checks, imported only when the key is given."""
    def check(value: Any, where: str, run: Run) -> Any:
        import importlib

        return getattr(importlib.import_module(module), name)(value, where, run)
    return check


# -- one value -----------------------------------------------------------------------------------


def number(value: Any, where: str, lo: float, hi: float, what: str) -> float:
    """A finite number from ``lo`` to ``hi`` (a bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not lo <= value <= hi:
        raise fail(where, f"must be {what} (got {value!r})")
    return float(value)


def within(lo: float, hi: float, what: str) -> Check:
    """A number from ``lo`` to ``hi``; ``what`` says so in the error line."""
    return lambda value, where, run: number(value, where, lo, hi, what)


def above_zero(value: Any, where: str, run: Run) -> float:
    """A number of seconds > 0 (a cap: there is no upper bound)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        raise fail(where, f"must be a number of seconds > 0 (got {value!r})")
    return float(value)


def integer(lo: int, hi: int) -> Check:
    """An integer from ``lo`` to ``hi``."""
    def check(value: Any, where: str, run: Run) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise fail(where, f"must be an integer from {lo} to {hi} (got {shown(value)})")
        return value
    return check


def one_of(choices: tuple[str, ...]) -> Check:
    def check(value: Any, where: str, run: Run) -> str:
        if value not in choices:
            raise fail(where, f"must be one of {', '.join(choices)} (got {value!r})")
        return str(value)
    return check


def boolean(value: Any, where: str, run: Run) -> bool:
    if not isinstance(value, bool):
        raise fail(where, f"must be true or false (got {value!r})")
    return value


def duration(value: Any, where: str, run: Run) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
            or value <= 0:
        raise fail(where, f"must be a number of seconds > 0 (got {shown(value)})")
    if value > WEEK:
        raise fail(where, f"must be at most a week (got {shown(value)})")
    return float(value)


def transport(value: Any, where: str, run: Run) -> str:
    if value not in ("socketpair", "tcp"):
        raise fail(where, f"must be 'socketpair' or 'tcp' (got {shown(value)})")
    return str(value)


def folder(value: Any, where: str, run: Run) -> str:
    if not isinstance(value, str) or not value or "\0" in value:
        raise fail(where, f"must be a folder path (got {shown(value)})")
    if len(value) > MAX_STRING:
        raise fail(where, f"the path is too long ({len(value)} characters)")
    return value


def per_machine(lo: float, hi: float, what: str) -> Check:
    """A list of one number per machine (clock offsets, clock drifts)."""
    def check(value: Any, where: str, run: Run) -> tuple[float, ...]:
        if not isinstance(value, list):
            raise fail(where, f"must be a list of {run.n} numbers, one per machine")
        if len(value) != run.n:
            raise fail(where, f"{len(value)} values given for {run.n} machines")
        return tuple(number(v, where, lo, hi, what) for v in value)
    return check


class Given:
    """The run keys given so far and where each came from (a flag, a file's key)."""

    def __init__(self, values: dict[str, Any], source: dict[str, str], defaults: dict[str, Any]) -> None:
        self.values, self.source, self.defaults = values, source, defaults

    def get(self, key: str) -> Any:
        return self.values.get(key, self.defaults[key])

    def where(self, key: str) -> str:
        return self.source.get(key, key)

    def level(self, key: str) -> int:
        """2 for a flag, 1 for an experiment's key, 0 for the file's."""
        src = self.source.get(key, "")
        return 2 if src.startswith("--") else (1 if "experiments." in src else 0)


def rate_order(g: Given) -> None:
    rate_min, rate_max = g.get("rate_min"), g.get("rate_max")
    if rate_min > rate_max:
        key = "rate_min" if g.level("rate_min") == 2 else "rate_max"
        raise fail(g.where(key), f"rate_min ({rate_min}) must not be greater than rate_max ({rate_max})")


def rates_decide_machines(g: Given) -> None:
    """Rates given at a higher level than machines (a flag over the file) decide the number
    of machines; at the same level the two must agree."""
    if g.values.get("rates") is None:
        return
    rates, v, rw = tuple(g.values["rates"]), g.values, g.where("rates")
    if not rates:
        v["rates"] = None
        return
    for r in rates:
        if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= MAX_RATE:
            raise fail(rw, f"every rate must be an integer from 1 to {MAX_RATE} (got {shown(r)})")
    if "machines" in v and g.level("rates") > g.level("machines"):
        v["machines"] = len(rates)
    if "machines" in v and v["machines"] != len(rates):
        raise fail(rw, f"{len(rates)} rates given for {v['machines']} machines "
                       f"(set by {g.where('machines')})")
    if not 2 <= len(rates) <= MAX_MACHINES:
        raise fail(rw, f"needs from 2 to {MAX_MACHINES} rates, one per machine (got {len(rates)})")
    v["rates"], v["machines"] = rates, len(rates)


def ports_per_machine(g: Given) -> None:
    ports = g.values.get("tcp_ports")
    if ports is None:
        return
    ports, n = tuple(ports), g.get("machines")
    if ports and len(ports) != n:
        raise fail(g.where("tcp_ports"), f"{len(ports)} ports given for {n} machines")
    for p in ports:
        if not 0 <= p <= 65535:
            raise fail(g.where("tcp_ports"), f"port {p} not in 0..65535")
    g.values["tcp_ports"] = ports or None


RUN_RULES: tuple[Callable[[Given], None], ...] = (rate_order, rates_decide_machines, ports_per_machine)
