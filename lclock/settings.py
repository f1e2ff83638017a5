"""Settings: built-in defaults < settings.toml < command-line flags, all validated at the edge.

Every problem becomes one ``SettingsError`` whose text names where the bad value came from
(``--flag`` or ``file:key``), so the command line can print one clear line and exit 2 before
anything is created.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
import stat
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from lclock.errors import closest, cut, printable, shown
from lclock.safefile import BadFile, kind_of, os_reason, read_small_file

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
# A settings file is a few kB. The bound keeps the parse (tomllib reads about 400 kB/s of
# the worst content) well under a second.
MAX_SETTINGS_BYTES = 100_000
MAX_KEY_PARTS = 16  # tomllib takes time and memory quadratic in the parts of a dotted key
MAX_STRING = 4096  # characters of any string setting (a path is at most 4095 bytes on Linux)
MAX_DESCRIPTION = 1000
INT_RANGE = 2**63  # every integer setting fits in a signed 64-bit integer
FOLDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


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
TCP_KEYS: dict[str, str] = {"host": "host", "ports": "intlist", "secret": "str", "hosts": "hostlist"}
SIM_KEYS: dict[str, str] = {
    "delay": "str", "delay_mean": "float", "delay_max": "float", "jitter": "float",
}
EXPERIMENT_KEYS: dict[str, str] = {
    **{k: v for k, v in RUN_KEYS.items() if k not in ("output", "quiet", "transport", "report")},
    "description": "text",
    "trials": "int",
    "faults": "faults",
    "clocks": "clocks",
}
TABLES: dict[str, dict[str, str]] = {"tcp": TCP_KEYS, "sim": SIM_KEYS}


def _suggest(key: str, known: list[str]) -> str:
    close = closest(key, known) if len(key) <= 100 else None
    return f" (did you mean '{close}'?)" if close else ""


def place(path: Path | str) -> str:
    """A path as named in a message: printable, and a hostile one cut to a readable length."""
    return cut(printable(str(path)), 200)


def key_name(key: str) -> str:
    """A TOML key as named in a message: bare if it is a plain word, else quoted and cut."""
    if re.fullmatch(r"[A-Za-z0-9_-]{1,40}", key):
        return key
    return cut(json.dumps(key), 42)


_HOST_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def host_problem(host: str) -> str | None:
    """Why ``host`` is neither an IP address nor a host name (RFC 1123), or None."""
    if not host:
        return "must be a host name or an IP address (got an empty string)"
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    if len(name) > 253:
        return f"a host name has at most 253 characters (got {len(host)})"
    if not all(_HOST_LABEL.fullmatch(label) for label in name.split(".")):
        return (
            "must be an IP address or a host name of letters, digits and '-', in dot-separated "
            f"parts of at most 63 characters (got {shown(host)})"
        )
    return None


def _typed(where: str, kind: str, value: Any) -> Any:
    """Check a TOML value's type; bool is not an int here (True is not 1 machine).

    Integers beyond 64 bits and strings beyond a few kB are refused here, so nothing
    downstream ever prints, converts or stores an absurd value.
    """
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(f"{where}: must be an integer (got {shown(value)})")
        _int_range(where, value)
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SettingsError(f"{where}: must be a number (got {shown(value)})")
        if isinstance(value, int):
            _int_range(where, value)
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise SettingsError(f"{where}: must be true or false (got {shown(value)})")
        return value
    if kind in ("str", "text", "host"):
        if not isinstance(value, str):
            raise SettingsError(f"{where}: must be a string (got {shown(value)})")
        return _string(where, kind, value)
    if kind == "intlist":
        if not isinstance(value, list) or any(
            isinstance(v, bool) or not isinstance(v, int) for v in value
        ):
            raise SettingsError(f"{where}: must be a list of integers (got {shown(value)})")
        for v in value:
            _int_range(where, v)
        return tuple(value)
    if kind == "hostlist":
        if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
            raise SettingsError(f"{where}: must be a list of strings (got {shown(value)})")
        return tuple(_string(where, "host", v) for v in value)
    raise AssertionError(kind)


def _int_range(where: str, value: int) -> None:
    if not -INT_RANGE <= value < INT_RANGE:
        raise SettingsError(f"{where}: out of range (got {shown(value)})")


def _string(where: str, kind: str, value: str) -> str:
    limit = MAX_DESCRIPTION if kind == "text" else MAX_STRING
    if len(value) > limit:
        raise SettingsError(f"{where}: at most {limit} characters (got {len(value)})")
    if "\0" in value:
        raise SettingsError(f"{where}: must not contain a NUL character (got {shown(value)})")
    if kind == "host":
        problem = host_problem(value)
        if problem:
            raise SettingsError(f"{where}: {problem}")
    return value


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed file; any problem is one SettingsError starting with the path.

    The file is never opened unless it is a regular file of at most MAX_SETTINGS_BYTES
    (a FIFO would block, /dev/zero never ends). A UTF-8 byte-order mark at the start is
    accepted and skipped (Windows editors write one); a UTF-16 file is refused by name.
    """
    name = place(path)
    try:
        data = read_small_file(path, MAX_SETTINGS_BYTES, "settings file", allow_devnull=True)
    except BadFile as exc:
        raise SettingsError(f"{name}: {exc}") from None
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM):]
    elif data.startswith(UTF16_BOMS):
        raise SettingsError(
            f"{name}: is UTF-16 text (it starts with a UTF-16 byte-order mark); save it as UTF-8"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SettingsError(
            f"{name}: not UTF-8 text: byte 0x{data[exc.start]:02x} at {_position(data, exc.start)} "
            "(save the file as UTF-8)"
        ) from None
    nul = data.find(b"\0")
    if nul >= 0:
        raise SettingsError(
            f"{name}: contains a NUL byte at {_position(data, nul)} (not a text file?)"
        )
    deep = _deep_key(text)
    if deep is not None:
        raise SettingsError(
            f"{name}: a dotted key of more than {MAX_KEY_PARTS} parts near {_position(data, deep)}"
        )
    try:
        parsed: dict[str, Any] = tomllib.loads(text)
        return parsed
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{name}: invalid TOML: {exc}") from None
    except RecursionError:
        raise SettingsError(
            f"{name}: invalid TOML: arrays or tables nested too deeply"
        ) from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise SettingsError(f"{name}: invalid TOML: {cut(str(exc), 80)}") from None


_OPENER = re.compile(r""""{3}|'{3}|["'#]""")
_BASIC_BODY = re.compile(r"""(?:[^"\\\n]|\\.)*""")
_MULTI_BODY = re.compile(r"""(?:[^"\\]|\\.|"(?!""))*""", re.S)
_KEY_CHAIN = re.compile(
    rf"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]+(?:[ \t]*\.[ \t]*[A-Za-z0-9_-]+){{{MAX_KEY_PARTS}}}"
)


def _deep_key(text: str) -> int | None:
    """Where a dotted key of more than MAX_KEY_PARTS parts starts, or None.

    Strings and comments are first replaced by one placeholder character each, by a scan
    linear in the text even when strings are left open, so a chain of dots that remains can
    only be a key. The offset is one of the stripped text: close enough to point at it.
    """
    out: list[str] = []
    pos = 0
    end = len(text)
    while pos < end:
        m = _OPENER.search(text, pos)
        if m is None:
            out.append(text[pos:])
            break
        out.append(text[pos:m.start()])
        out.append("q")
        tok, pos = m.group(), m.end()
        if tok == "#":
            pos = _find(text, "\n", pos, end)
        elif tok == "'''":
            pos = _find(text, "'''", pos, end) + 3
        elif tok == "'":
            pos = min(_find(text, "'", pos, end), _find(text, "\n", pos, end)) + 1
        elif tok == '"""':
            pos = _match_end(_MULTI_BODY, text, pos) + 3
        else:
            pos = _match_end(_BASIC_BODY, text, pos) + 1
    chain = _KEY_CHAIN.search("".join(out))
    return None if chain is None else chain.start()


def _find(text: str, what: str, start: int, end: int) -> int:
    found = text.find(what, start)
    return end if found < 0 else found


def _match_end(pattern: re.Pattern[str], text: str, start: int) -> int:
    m = pattern.match(text, start)
    return start if m is None else m.end()


def _position(data: bytes, offset: int) -> str:
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


@dataclass
class SettingsFile:
    """A parsed and type-checked settings.toml, keys still tagged with where they came from."""

    path: Path | None = None
    run: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)

    def where(self, key: str) -> str:
        return f"{place(self.path) if self.path is not None else 'settings'}:{key}"


def parse_settings_file(path: Path) -> SettingsFile:
    """Read settings.toml and check every key's name and type; unknown keys are errors."""
    data = read_toml(path)
    out = SettingsFile(path=path)
    known_top = list(RUN_KEYS) + list(TABLES) + ["experiments", "faults", "clocks"]
    for key, value in data.items():
        where = out.where(key_name(key))
        if key in RUN_KEYS:
            out.run[key] = _typed(where, RUN_KEYS[key], value)
        elif key == "faults":
            out.tables["faults"] = _fault_table(value, where)
        elif key == "clocks":
            out.tables["clocks"] = _clock_table(value, where)
        elif key in TABLES:
            out.tables[key] = _table(out, key, value, TABLES[key])
        elif key == "experiments":
            if not isinstance(value, dict):
                raise SettingsError(f"{where}: must be a table of experiments")
            for name, exp in value.items():
                ewhere = out.where(f"experiments.{key_name(name)}")
                check_folder_name(name, ewhere, "an experiment's name")
                out.experiments[name] = _table(out, f"experiments.{name}", exp, EXPERIMENT_KEYS)
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


def check_folder_name(name: str, where: str, what: str = "the name") -> str:
    """A name that becomes one folder (an experiment, a run id): plain, short, no path."""
    if not FOLDER_NAME.fullmatch(name):
        raise SettingsError(
            f"{where}: {what} (it names a folder) is 1 to 64 letters, digits, '-', '_' or '.', "
            f"starting with a letter or a digit (got {shown(name)})"
        )
    return name


def _table(out: SettingsFile, name: str, value: Any, keys: dict[str, str]) -> dict[str, Any]:
    """One ``[name]`` table: every key known, every value of its kind."""
    if not isinstance(value, dict):
        raise SettingsError(f"{out.where(name)}: must be a table [{name}]")
    table: dict[str, Any] = {}
    for sub, subval in value.items():
        subwhere = out.where(f"{name}.{key_name(sub)}")
        if sub not in keys:
            raise SettingsError(f"{subwhere}: unknown key{_suggest(sub, list(keys))}")
        if keys[sub] == "faults":
            table[sub] = _fault_table(subval, subwhere)
        elif keys[sub] == "clocks":
            table[sub] = _clock_table(subval, subwhere)
        else:
            table[sub] = _typed(subwhere, keys[sub], subval)
    return table


def load_settings_file(path: str | None) -> SettingsFile:
    """The settings file to use: the one named, else ./settings.toml if present, else none.

    A ./settings.toml that is there but is not a regular file (a folder, a FIFO, a dangling
    link) is an error, not silently skipped: the user meant it to be read.
    """
    if path is not None:
        if not path:
            raise SettingsError("--settings: must be a file path (got an empty string)")
        return parse_settings_file(Path(path))
    default = Path(DEFAULT_SETTINGS_FILE)
    if os.path.lexists(default):
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
            flag_says = source.get("vector_clocks", "").startswith("--")
            if names is not None and flag_says and clock_where.get("clocks", "").startswith("--") \
                    and ("vector" in names) != settings.vector_clocks:
                raise SettingsError(
                    f"--clocks {','.join(names) or 'none'} and --no-vector-clocks disagree about "
                    "the vector clock; give one of them")
            if names is not None and not flag_says:
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
            raise SettingsError(
                f"{where(key)}: must be an integer from {lo} to {hi} (got {shown(v)})"
            )

    check_int("machines", 2, MAX_MACHINES)
    check_int("rate_min", 1, MAX_RATE)
    check_int("rate_max", 1, MAX_RATE)
    check_int("dice_sides", 3, 1_000_000)
    check_int("seed", 0, 2**63 - 1)
    if "duration" in values:
        d = values["duration"]
        if not isinstance(d, (int, float)) or isinstance(d, bool) or not math.isfinite(d) or d <= 0:
            raise SettingsError(f"{where('duration')}: must be a number of seconds > 0 (got {shown(d)})")
        if d > 7 * 24 * 3600:
            raise SettingsError(f"{where('duration')}: must be at most a week (got {shown(d)})")
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
                        f"{where('rates')}: every rate must be an integer from 1 to {MAX_RATE} (got {shown(r)})"
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
            f"{where('transport')}: must be 'socketpair' or 'tcp' (got {shown(transport)})"
        )
    output = values.get("output", s.output)
    if not isinstance(output, str) or not output or "\0" in output:
        raise SettingsError(f"{where('output')}: must be a folder path (got {shown(output)})")
    if len(output) > MAX_STRING:
        raise SettingsError(f"{where('output')}: the path is too long ({len(output)} characters)")
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
    """Fail early (before anything is created) if the output folder cannot be written.

    The nearest part of the path that exists must be a writable folder; a symlink loop, a
    dangling link, an over-long path or a file on the way is named before anything is made.
    """
    if not path or "\0" in path:
        raise SettingsError(f"{where}: must be a folder path (got {shown(path)})")
    p = Path(path)
    probe = p
    while True:
        try:
            st = os.stat(probe)
            break
        except FileNotFoundError:
            if os.path.islink(probe):
                raise SettingsError(f"{where}: {place(probe)} is a symbolic link to nothing") from None
            if probe.parent == probe:
                raise SettingsError(f"{where}: {place(p)}: no such folder") from None
            probe = probe.parent
        except OSError as exc:
            raise SettingsError(f"{where}: {place(probe)}: {os_reason(exc)}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise SettingsError(
            f"{where}: {place(probe)} exists and is {kind_of(st.st_mode)}, not a folder"
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise SettingsError(f"{where}: folder {place(probe)} is not writable")
    return p
