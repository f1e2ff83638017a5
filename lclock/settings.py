"""Settings: built-in defaults < settings.toml < command-line flags, all validated at the edge.

Every problem becomes one ``SettingsError`` whose text names where the bad value came from
(``--flag`` or ``file:key``), so the command line can print one clear line and exit 2 before
anything is created.
"""

from __future__ import annotations

import difflib
import math
import os
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from lclock.clock_settings import FLAGS as CLOCK_FLAGS
from lclock.clock_settings import ClockSettingsError, build_clocks
from lclock.clock_settings import check_file_table as check_clock_table
from lclock.core.clocks import ClockSettings
from lclock.core.faults import FaultSettings
from lclock.fault_settings import FLAGS as FAULT_FLAGS
from lclock.fault_settings import FaultSettingsError, build_faults, check_file_table

MAX_RATE = 10_000
MAX_MACHINES = 128
DEFAULT_SETTINGS_FILE = "settings.toml"


class SettingsError(Exception):
    """A bad setting or flag; the message is the whole line the user sees."""


@dataclass(frozen=True)
class RunSettings:
    """The resolved settings of one run (what run.json records under ``settings``)."""

    machines: int = 3
    duration: float = 60.0
    seed: int | None = None
    rate_min: int = 1
    rate_max: int = 6
    rates: tuple[int, ...] | None = None
    dice_sides: int = 10
    vector_clocks: bool = True
    output: str = "output"
    transport: str = "socketpair"
    quiet: bool = False
    report: bool = True
    # TCP transport (issue 5): where machines listen; 0 = picked free by the OS.
    tcp_host: str = "127.0.0.1"
    tcp_ports: tuple[int, ...] | None = None
    # What goes wrong on purpose (SPEC section 6): the network's and the machines' faults.
    faults: FaultSettings = FaultSettings()
    # Physical clocks and which logical clocks are kept (SPEC section 7).
    clocks: ClockSettings = ClockSettings()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, (FaultSettings, ClockSettings)):
                out[f.name] = v.to_json()
            else:
                out[f.name] = list(v) if isinstance(v, tuple) else v
        return out


# key -> (kind, description). kind drives parsing and validation.
RUN_KEYS: dict[str, str] = {
    "machines": "int",
    "duration": "float",
    "seed": "int",
    "rate_min": "int",
    "rate_max": "int",
    "rates": "intlist",
    "dice_sides": "int",
    "vector_clocks": "bool",
    "output": "str",
    "transport": "str",
    "quiet": "bool",
    "report": "bool",
}
TCP_KEYS: dict[str, str] = {"host": "str", "ports": "intlist", "secret": "str", "hosts": "strlist"}
SIM_KEYS: dict[str, str] = {
    "delay": "str", "delay_mean": "float", "delay_max": "float", "jitter": "float",
}
EXPERIMENT_KEYS: dict[str, str] = {
    **{k: v for k, v in RUN_KEYS.items() if k not in ("output", "quiet", "transport", "report")},
    "description": "str",
    "trials": "int",
    "faults": "faults",
    "clocks": "clocks",
}
TABLES: dict[str, dict[str, str]] = {"tcp": TCP_KEYS, "sim": SIM_KEYS}


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _typed(where: str, kind: str, value: Any) -> Any:
    """Check a TOML value's type; bool is not an int here (True is not 1 machine)."""
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(f"{where}: must be an integer (got {value!r})")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SettingsError(f"{where}: must be a number (got {value!r})")
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise SettingsError(f"{where}: must be true or false (got {value!r})")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise SettingsError(f"{where}: must be a string (got {value!r})")
        return value
    if kind == "intlist":
        if not isinstance(value, list) or any(
            isinstance(v, bool) or not isinstance(v, int) for v in value
        ):
            raise SettingsError(f"{where}: must be a list of integers (got {value!r})")
        return tuple(value)
    if kind == "strlist":
        if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
            raise SettingsError(f"{where}: must be a list of strings (got {value!r})")
        return tuple(value)
    raise AssertionError(kind)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise SettingsError(f"{path}: no such settings file") from None
    except IsADirectoryError:
        raise SettingsError(f"{path}: is a directory, not a settings file") from None
    except PermissionError:
        raise SettingsError(f"{path}: cannot read settings file (permission denied)") from None
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: invalid TOML: {exc}") from None


@dataclass
class SettingsFile:
    """A parsed and type-checked settings.toml, keys still tagged with where they came from."""

    path: Path | None = None
    run: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)

    def where(self, key: str) -> str:
        return f"{self.path}:{key}"


def parse_settings_file(path: Path) -> SettingsFile:
    """Read settings.toml and check every key's name and type; unknown keys are errors."""
    data = read_toml(path)
    out = SettingsFile(path=path)
    known_top = list(RUN_KEYS) + list(TABLES) + ["experiments", "faults", "clocks"]
    for key, value in data.items():
        where = f"{path}:{key}"
        if key in RUN_KEYS:
            out.run[key] = _typed(where, RUN_KEYS[key], value)
        elif key == "faults":
            out.tables["faults"] = _fault_table(value, where)
        elif key == "clocks":
            out.tables["clocks"] = _clock_table(value, where)
        elif key in TABLES:
            if not isinstance(value, dict):
                raise SettingsError(f"{where}: must be a table [{key}]")
            table: dict[str, Any] = {}
            for sub, subval in value.items():
                subwhere = f"{path}:{key}.{sub}"
                if sub not in TABLES[key]:
                    raise SettingsError(
                        f"{subwhere}: unknown key{_suggest(sub, list(TABLES[key]))}"
                    )
                table[sub] = _typed(subwhere, TABLES[key][sub], subval)
            out.tables[key] = table
        elif key == "experiments":
            if not isinstance(value, dict):
                raise SettingsError(f"{where}: must be a table of experiments")
            for name, exp in value.items():
                ewhere = f"{path}:experiments.{name}"
                if not isinstance(exp, dict):
                    raise SettingsError(f"{ewhere}: must be a table [experiments.{name}]")
                parsed: dict[str, Any] = {}
                for sub, subval in exp.items():
                    subwhere = f"{ewhere}.{sub}"
                    if sub not in EXPERIMENT_KEYS:
                        raise SettingsError(
                            f"{subwhere}: unknown key{_suggest(sub, list(EXPERIMENT_KEYS))}"
                        )
                    if sub == "faults":
                        parsed[sub] = _fault_table(subval, subwhere)
                    elif sub == "clocks":
                        parsed[sub] = _clock_table(subval, subwhere)
                    else:
                        parsed[sub] = _typed(subwhere, EXPERIMENT_KEYS[sub], subval)
                out.experiments[name] = parsed
        else:
            raise SettingsError(f"{where}: unknown key{_suggest(key, known_top)}")
    return out


def _fault_table(value: Any, where: str) -> dict[str, Any]:
    try:
        return check_file_table(value, where)
    except FaultSettingsError as exc:
        raise SettingsError(str(exc)) from None


def _clock_table(value: Any, where: str) -> dict[str, Any]:
    try:
        return check_clock_table(value, where)
    except ClockSettingsError as exc:
        raise SettingsError(str(exc)) from None


def load_settings_file(path: str | None) -> SettingsFile:
    """The settings file to use: the one named, else ./settings.toml if present, else none."""
    if path is not None:
        return parse_settings_file(Path(path))
    default = Path(DEFAULT_SETTINGS_FILE)
    if default.is_file():
        return parse_settings_file(default)
    return SettingsFile()


def resolve(
    file: SettingsFile,
    flags: dict[str, Any],
    overrides: dict[str, Any] | None = None,
    overrides_where: str | None = None,
) -> RunSettings:
    """Merge defaults < file < overrides (an experiment) < flags, then validate the result.

    ``flags`` maps setting names to values already parsed from the command line; None means
    the flag was not given. Errors name the source of the value that is wrong.
    """
    # A broken file is an error even where a flag overrides the broken value.
    validate(dict(file.run), {k: file.where(k) for k in file.run})
    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    for key, value in file.run.items():
        values[key] = value
        source[key] = file.where(key)
    tcp = file.tables.get("tcp", {})
    if "host" in tcp:
        values["tcp_host"] = tcp["host"]
        source["tcp_host"] = file.where("tcp.host")
    if "ports" in tcp:
        values["tcp_ports"] = tcp["ports"]
        source["tcp_ports"] = file.where("tcp.ports")
    tables: dict[str, tuple[dict[str, Any], dict[str, str]]] = {"faults": ({}, {}), "clocks": ({}, {})}
    for name, (tv, tw) in tables.items():
        for key, value in file.tables.get(name, {}).items():
            tv[key] = value
            tw[key] = file.where(f"{name}.{key}")
    for key, value in (overrides or {}).items():
        if key in ("description", "trials"):
            continue
        if key in tables:
            tv, tw = tables[key]
            for sub, subval in value.items():
                tv[sub] = subval
                tw[sub] = f"{overrides_where}.{key}.{sub}" if overrides_where else sub
            continue
        values[key] = value
        source[key] = f"{overrides_where}.{key}" if overrides_where else key
    for key, value in flags.items():
        if value is None:
            continue
        if key in FAULT_FLAGS:
            tables["faults"][0][key] = value
            tables["faults"][1][key] = FAULT_FLAGS[key]
            continue
        if key in CLOCK_FLAGS:
            tables["clocks"][0][key] = value
            tables["clocks"][1][key] = CLOCK_FLAGS[key]
            continue
        values[key] = value
        source[key] = "--" + key.replace("_", "-")
    settings = validate(values, source)
    fault_values, fault_where = tables["faults"]
    clock_values, clock_where = tables["clocks"]
    try:
        if fault_values:
            settings = replace(settings, faults=build_faults(
                fault_values, fault_where, settings.machines, settings.duration))
        if clock_values:
            clocks, names = build_clocks(clock_values, clock_where, settings.machines, settings.duration)
            settings = replace(settings, clocks=clocks)
            if names is not None and not (source.get("vector_clocks", "").startswith("--")):
                settings = replace(settings, vector_clocks="vector" in names)
    except (FaultSettingsError, ClockSettingsError) as exc:
        raise SettingsError(str(exc)) from None
    return settings


def validate(values: dict[str, Any], source: dict[str, str]) -> RunSettings:
    s = RunSettings()

    def where(key: str) -> str:
        return source.get(key, key)

    def check_int(key: str, lo: int, hi: int) -> None:
        v = values.get(key)
        if v is None:
            return
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise SettingsError(f"{where(key)}: must be an integer from {lo} to {hi} (got {v!r})")

    check_int("machines", 2, MAX_MACHINES)
    check_int("rate_min", 1, MAX_RATE)
    check_int("rate_max", 1, MAX_RATE)
    check_int("dice_sides", 3, 1_000_000)
    check_int("seed", 0, 2**63 - 1)
    if "duration" in values:
        d = values["duration"]
        if not isinstance(d, (int, float)) or isinstance(d, bool) or not math.isfinite(d) or d <= 0:
            raise SettingsError(f"{where('duration')}: must be a number of seconds > 0 (got {d!r})")
        if d > 7 * 24 * 3600:
            raise SettingsError(f"{where('duration')}: must be at most a week (got {d!r})")
        values["duration"] = float(d)
    rate_min = values.get("rate_min", s.rate_min)
    rate_max = values.get("rate_max", s.rate_max)
    if rate_min > rate_max:
        key = "rate_min" if "rate_min" in source and source["rate_min"].startswith("--") else "rate_max"
        raise SettingsError(
            f"{where(key)}: rate_min ({rate_min}) must not be greater than rate_max ({rate_max})"
        )
    rates = values.get("rates")
    if rates is not None:
        rates = tuple(rates)
        if not rates:
            values["rates"] = None
        else:
            for r in rates:
                if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= MAX_RATE:
                    raise SettingsError(
                        f"{where('rates')}: every rate must be an integer from 1 to {MAX_RATE} (got {r!r})"
                    )
            def level(key: str) -> int:
                src = source.get(key, "")
                return 2 if src.startswith("--") else (1 if "experiments." in src else 0)

            # Rates given at a higher level than machines (a flag over the file) decide
            # the number of machines; at the same level the two must agree.
            if "machines" in values and level("rates") > level("machines"):
                values["machines"] = len(rates)
            if "machines" in values and values["machines"] != len(rates):
                raise SettingsError(
                    f"{where('rates')}: {len(rates)} rates given for {values['machines']} machines "
                    f"(set by {where('machines')})"
                )
            if not 2 <= len(rates) <= MAX_MACHINES:
                raise SettingsError(
                    f"{where('rates')}: needs from 2 to {MAX_MACHINES} rates, one per machine (got {len(rates)})"
                )
            values["rates"] = rates
            values["machines"] = len(rates)
    transport = values.get("transport", s.transport)
    if transport not in ("socketpair", "tcp"):
        raise SettingsError(
            f"{where('transport')}: must be 'socketpair' or 'tcp' (got {transport!r})"
        )
    output = values.get("output", s.output)
    if not isinstance(output, str) or not output:
        raise SettingsError(f"{where('output')}: must be a folder path (got {output!r})")
    ports = values.get("tcp_ports")
    if ports is not None:
        ports = tuple(ports)
        n = values.get("machines", s.machines)
        if ports and len(ports) != n:
            raise SettingsError(
                f"{where('tcp_ports')}: {len(ports)} ports given for {n} machines"
            )
        for p in ports:
            if not 0 <= p <= 65535:
                raise SettingsError(f"{where('tcp_ports')}: port {p} not in 0..65535")
        values["tcp_ports"] = ports or None
    known = {f.name for f in fields(RunSettings)}
    return replace(s, **{k: v for k, v in values.items() if k in known})


def check_output_dir(path: str, where: str) -> Path:
    """Fail early (before anything is created) if the output folder cannot be written."""
    p = Path(path)
    probe = p
    while not probe.exists():
        parent = probe.parent
        if parent == probe:
            break
        probe = parent
    if probe.exists() and not probe.is_dir():
        raise SettingsError(f"{where}: {probe} exists and is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise SettingsError(f"{where}: folder {probe} is not writable")
    return p
