"""The clock settings (SPEC section 7): flags, the ``[clocks]`` table, and their validation.

Built-in defaults < settings.toml ``[clocks]`` < an experiment's ``[experiments.NAME.clocks]``
< flags; every problem is one ``ClockSettingsError`` naming the flag or ``file:key``.
"""

from __future__ import annotations

import argparse
import difflib
import re
from dataclasses import replace
from typing import Any

from lclock.core.clocks import Bump, ClockSettings
from lclock.setting_values import SettingValueError, items, known_keys, number, seconds

CLOCK_NAMES = ("vector", "hlc")
MAX_SKEW_MS = 10_000_000.0  # about three hours: anything more is a typo
MAX_DRIFT_PPM = 100_000.0  # 10 %: a clock that fast or slow is broken, not skewed
CLOCK_KEYS = ("skew_ms", "drift_ppm", "offsets_ms", "drifts_ppm", "bumps", "clocks")
FLAGS = {"skew_ms": "--clock-skew", "drift_ppm": "--clock-drift", "bumps": "--clock-bump",
         "clocks": "--clocks", "offsets_ms": "--clock-offsets", "drifts_ppm": "--clock-drifts"}


ClockSettingsError = SettingValueError

def add_clock_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("clocks (SPEC section 7; also the [clocks] table of settings.toml)")
    g.add_argument("--clock-skew", dest="skew_ms", type=float, metavar="MS",
                   help="each machine's clock offset drawn from -MS/2..+MS/2 (default 0)")
    g.add_argument("--clock-drift", dest="drift_ppm", type=float, metavar="PPM",
                   help="each machine's clock rate error drawn from -PPM..+PPM (default 0)")
    g.add_argument("--clock-bump", dest="bumps", metavar="SPEC",
                   help="ID@TIME:MS, e.g. 2@10:+500 or 2@50%%:-500: that machine's clock "
                        "jumps by MS at TIME s (or %% of the run; ';' between several)")
    g.add_argument("--clocks", metavar="LIST",
                   help="clocks kept besides Lamport: vector, hlc, or none (default vector,hlc)")
    g.add_argument("--clock-offsets", dest="offsets_ms", type=_float_list, metavar="MS,...",
                   help="fix each machine's clock offset instead of drawing it (one per machine)")
    g.add_argument("--clock-drifts", dest="drifts_ppm", type=_float_list, metavar="PPM,...",
                   help="fix each machine's clock rate error instead of drawing it")


def _float_list(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers such as 0,5,-5 (got {text!r})") from None


def clock_flags(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k) for k in FLAGS if getattr(args, k, None) is not None}


_N = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_BUMP = re.compile(rf"^\s*(\d+)\s*@\s*({_N}%?)\s*:\s*([+-]?{_N})\s*$")


def parse_bumps(value: Any, where: str, duration: float) -> tuple[Bump, ...]:
    out = []
    for item in items(value, where, "2@10:+500"):
        m = _BUMP.match(item)
        if not m:
            raise ClockSettingsError(f"{where}: {item.strip()!r} is not ID@TIME:MS (e.g. 2@10:+500)")
        out.append(Bump(int(m.group(1)), seconds(m.group(2), duration), float(m.group(3))))
    return tuple(out)


def parse_clock_names(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        names = [x.strip() for x in value.split(",") if x.strip()]
    elif isinstance(value, list) and all(isinstance(x, str) for x in value):
        names = [x.strip() for x in value]
    else:
        raise ClockSettingsError(f"{where}: must be a list such as vector,hlc (got {value!r})")
    if names in (["none"], ["lamport"]):
        return ()
    if "none" in names or "lamport" in names:
        raise ClockSettingsError(
            f"{where}: 'none' (Lamport's clock alone) cannot be listed with other clocks "
            f"(got {','.join(names)}); Lamport's is always kept")
    for name in names:
        if name not in CLOCK_NAMES:
            close = difflib.get_close_matches(name, CLOCK_NAMES, n=1, cutoff=0.5)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ClockSettingsError(
                f"{where}: unknown clock {name!r}{hint}; choose from vector, hlc, or none")
    return tuple(dict.fromkeys(names))


def _per_machine(value: Any, where: str, n: int, lo: float, hi: float, what: str) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise ClockSettingsError(f"{where}: must be a list of {n} numbers, one per machine")
    if len(value) != n:
        raise ClockSettingsError(f"{where}: {len(value)} values given for {n} machines")
    return tuple(number(v, where, lo, hi, what) for v in value)


def build_clocks(values: dict[str, Any], where: dict[str, str], n: int,
                 duration: float) -> tuple[ClockSettings, tuple[str, ...] | None]:
    """Validated clock settings, and the clock names if ``clocks`` was given."""
    s = ClockSettings()
    if "skew_ms" in values:
        s = replace(s, skew_ms=number(values["skew_ms"], where["skew_ms"], 0, MAX_SKEW_MS,
                                       f"a number of ms from 0 to {MAX_SKEW_MS:g}"))
    if "drift_ppm" in values:
        s = replace(s, drift_ppm=number(values["drift_ppm"], where["drift_ppm"], 0, MAX_DRIFT_PPM,
                                         f"a number of ppm from 0 to {MAX_DRIFT_PPM:g}"))
    if "offsets_ms" in values:
        s = replace(s, offsets_ms=_per_machine(values["offsets_ms"], where["offsets_ms"], n,
                                               -MAX_SKEW_MS, MAX_SKEW_MS, "a number of ms"))
    if "drifts_ppm" in values:
        s = replace(s, drifts_ppm=_per_machine(values["drifts_ppm"], where["drifts_ppm"], n,
                                               -MAX_DRIFT_PPM, MAX_DRIFT_PPM, "a number of ppm"))
    if "bumps" in values:
        bumps = parse_bumps(values["bumps"], where["bumps"], duration)
        for b in bumps:
            if not 1 <= b.machine <= n:
                raise ClockSettingsError(f"{where['bumps']}: machine {b.machine} does not exist (machines 1..{n})")
            if not 0 <= b.time < duration:
                raise ClockSettingsError(
                    f"{where['bumps']}: a bump at {b.time:g} s is outside the run (0 to {duration:g} s)")
            if b.ms == 0 or abs(b.ms) > MAX_SKEW_MS:
                raise ClockSettingsError(
                    f"{where['bumps']}: a bump of {b.ms:g} ms (must be non-zero, at most {MAX_SKEW_MS:g})")
        s = replace(s, bumps=bumps)
    names = None
    if "clocks" in values:
        names = parse_clock_names(values["clocks"], where["clocks"])
        s = replace(s, hlc="hlc" in names)
    return s, names


def check_file_table(table: Any, where: str) -> dict[str, Any]:
    """A ``[clocks]`` table of a settings file: known keys only (values are checked later)."""
    return known_keys(table, where, CLOCK_KEYS, "clocks")


def clocks_to_flags(s: ClockSettings, vector: bool) -> list[str]:
    """The flags that give exactly these clock settings (none for the defaults)."""
    from lclock.fault_settings import _num

    out: list[str] = []
    if s.skew_ms:
        out += ["--clock-skew", _num(s.skew_ms)]
    if s.drift_ppm:
        out += ["--clock-drift", _num(s.drift_ppm)]
    if s.offsets_ms is not None:
        out += ["--clock-offsets", ",".join(_num(x) for x in s.offsets_ms)]
    if s.drifts_ppm is not None:
        out += ["--clock-drifts", ",".join(_num(x) for x in s.drifts_ppm)]
    if s.bumps:
        out += ["--clock-bump", ";".join(f"{b.machine}@{_num(b.time)}:{'+' if b.ms > 0 else '-'}{_num(abs(b.ms))}"
                                          for b in s.bumps)]
    if not (vector and s.hlc):
        out += ["--clocks", ",".join([*(["vector"] if vector else []), *(["hlc"] if s.hlc else [])]) or "none"]
    return out
