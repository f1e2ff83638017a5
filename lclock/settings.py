"""Settings: built-in defaults < settings.toml < command-line flags, all validated at the edge.

Every problem becomes one ``SettingsError`` whose text names where the bad value came from
(``--flag`` or ``file:key``), so the command line can print one clear line and exit 2 before
anything is created.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from lclock.core.clocks import ClockSettings
from lclock.core.faults import FaultSettings
from lclock.core.snapshot import SnapshotAt
from lclock.errors import closest, cut, printable, shown
from lclock.safefile import BadFile, kind_of, os_reason, read_small_file
from lclock.setting_checks import (
    MAX_MACHINES,
    MAX_RATE,
    MAX_STRING,
    RUN_RULES,
    Given,
    Run,
    SettingsError,
)
from lclock.setting_table import DEFAULT_SETTINGS_FILE, EXPERIMENT_ONLY, KEYS, Key, keys_of

__all__ = ["DEFAULT_SETTINGS_FILE", "MAX_MACHINES", "MAX_RATE", "RunSettings", "SettingsError",
           "SettingsFile", "check_folder_name", "check_output_dir", "load_settings_file",
           "parse_settings_file", "resolve", "resolve_table", "validate"]

# A settings file is a few kB. The bound keeps the parse (tomllib reads about 400 kB/s of
# the worst content) well under a second.
MAX_SETTINGS_BYTES = 100_000
MAX_KEY_PARTS = 16  # tomllib takes time and memory quadratic in the parts of a dotted key
MAX_DESCRIPTION = 1000
INT_RANGE = 2**63  # every integer setting fits in a signed 64-bit integer
FOLDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


@dataclass(frozen=True)
class RunSettings:
    """The resolved settings of one run (what run.json records under ``settings``).

    The keys, their checks and their flags are in lclock.setting_table; the defaults here.
    """

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
    # Machines run by a program of the user's (SPEC section 9): (machine id, command) pairs.
    impl: tuple[tuple[int, str], ...] | None = None
    impl_timeout: float = 1.0
    impl_limits: str = ""
    # Chandy–Lamport snapshots (SPEC section 12), numbered in time order.
    snapshots: tuple[SnapshotAt, ...] = ()
    # A bug of the catalogue (SPEC 10) the built-in machines make on purpose; "": none.
    mutant: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, (FaultSettings, ClockSettings)):
                out[f.name] = v.to_json()
            elif f.name == "snapshots":
                out[f.name] = [x.to_json() for x in v]
            else:
                out[f.name] = list(v) if isinstance(v, tuple) else v
        return out


#: The tables of settings.toml besides the top level, and what each key of them holds.
SUB_TABLES = ("tcp", "sim", "faults", "clocks")
EXPERIMENT_KEYS: dict[str, Key | str] = {
    **{k.key: k for k in keys_of("") if k.experiment}, **EXPERIMENT_ONLY,
    "faults": "faults", "clocks": "clocks"}


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
    import ipaddress

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


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


#: A TOML type: does a value have it, and what the error line says it must be.
_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "int": (_is_int, "an integer"),
    "float": (lambda v: _is_int(v) or isinstance(v, float), "a number"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "intlist": (lambda v: isinstance(v, list) and all(map(_is_int, v)), "a list of integers"),
    "hostlist": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
                 "a list of strings"),
}


def _typed(where: str, kind: str, value: Any) -> Any:
    """Check a TOML value's type; bool is not an int here (True is not 1 machine).

    Integers beyond 64 bits and strings beyond a few kB are refused here, so nothing
    downstream ever prints, converts or stores an absurd value.
    """
    if kind == "any":  # checked with the run (lclock.setting_checks)
        return value
    test, what = _TYPES["str" if kind in ("text", "host") else kind]
    if not test(value):
        raise SettingsError(f"{where}: must be {what} (got {shown(value)})")
    for v in value if isinstance(value, list) else [value]:
        if _is_int(v):
            _int_range(where, v)
        elif isinstance(v, str):
            _string(where, "host" if kind == "hostlist" else kind, v)
    if kind == "float":
        return float(value)
    return tuple(value) if isinstance(value, list) else value


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
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib

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
    top = {k.key: k for k in keys_of("")}
    for key, value in data.items():
        where = out.where(key_name(key))
        if key in top:
            out.run[key] = _typed(where, top[key].toml, value)
        elif key in SUB_TABLES:
            out.tables[key] = _table(value, where, key, {k.key: k for k in keys_of(key)})
        elif key == "experiments":
            out.experiments = _experiments(out, value, where)
        else:
            raise SettingsError(f"{where}: unknown key{_suggest(key, [*top, *SUB_TABLES, 'experiments'])}")
    return out


def _experiments(out: SettingsFile, value: Any, where: str) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict):
        raise SettingsError(f"{where}: must be a table of experiments")
    experiments = {}
    for name, exp in value.items():
        ewhere = out.where(f"experiments.{key_name(name)}")
        check_folder_name(name, ewhere, "an experiment's name")
        experiments[name] = _table(exp, ewhere, f"experiments.{name}", EXPERIMENT_KEYS)
    return experiments


def _table(value: Any, where: str, label: str, keys: dict[str, Key] | dict[str, Key | str]) -> dict[str, Any]:
    """One ``[label]`` table: every key known, every value of its type (its range is checked
    when the run is resolved: a flag may still override it)."""
    if not isinstance(value, dict):
        raise SettingsError(f"{where}: must be a table [{label}]")
    table: dict[str, Any] = {}
    for sub, subval in value.items():
        subwhere = f"{where}.{key_name(sub)}"
        kind = keys.get(sub)
        if kind is None:
            raise SettingsError(f"{subwhere}: unknown key{_suggest(sub, list(keys))}")
        if isinstance(kind, str) and kind in SUB_TABLES:  # an experiment's [faults], [clocks]
            table[sub] = _table(subval, subwhere, sub, {k.key: k for k in keys_of(kind)})
        else:
            table[sub] = _typed(subwhere, kind if isinstance(kind, str) else kind.toml, subval)
    return table


def check_folder_name(name: str, where: str, what: str = "the name") -> str:
    """A name that becomes one folder (an experiment, a run id): plain, short, no path."""
    if not FOLDER_NAME.fullmatch(name):
        raise SettingsError(
            f"{where}: {what} (it names a folder) is 1 to 64 letters, digits, '-', '_' or '.', "
            f"starting with a letter or a digit (got {shown(name)})"
        )
    return name


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


Sourced = tuple[dict[str, Any], dict[str, str]]


def _given(table: str, file: SettingsFile, flags: dict[str, Any], overrides: dict[str, Any],
           overrides_where: str | None) -> Sourced:
    """One table's values, defaults < file < overrides (an experiment) < flags, and where
    each came from."""
    values: dict[str, Any] = {}
    where: dict[str, str] = {}
    in_file = file.run if not table else file.tables.get(table, {})
    over = overrides if not table else overrides.get(table, {})
    for k in keys_of(table):
        if k.key in in_file:
            values[k.name], where[k.name] = in_file[k.key], file.where(str(k.path))
        if k.key in over:
            values[k.name] = over[k.key]
            where[k.name] = f"{overrides_where}.{k.path}" if overrides_where else k.key
        if flags.get(k.name) is not None:
            values[k.name], where[k.name] = flags[k.name], k.where
    return values, where


def _checked(given: Sourced, run: Run) -> dict[str, Any]:
    values, where = given
    return {name: KEYS[name].check(v, where[name], run) for name, v in values.items()}  # type: ignore[misc]


def resolve_table(table: str, file: SettingsFile, flags: dict[str, Any]) -> dict[str, Any]:
    """The checked keys of one table that no run key depends on (the simulator's [sim])."""
    return _checked(_given(table, file, flags, {}, None), Run(0, 0.0))


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
    given = {t: _given(t, file, flags, overrides or {}, overrides_where) for t in ("", "tcp", "faults", "clocks")}
    values, source = given[""]
    values.update(given["tcp"][0])
    source.update(given["tcp"][1])
    settings = validate(values, source)
    run = Run(settings.machines, settings.duration)
    if given["faults"][0] or given["clocks"][0]:
        from lclock.setting_schedules import build_clocks, build_faults
    if given["faults"][0]:
        settings = replace(settings, faults=build_faults(_checked(given["faults"], run), given["faults"][1], run))
    if given["clocks"][0]:
        parsed = _checked(given["clocks"], run)
        names = parsed.get("clocks")
        settings = replace(settings, clocks=build_clocks(parsed, given["clocks"][1], run))
        settings = _vector_from_clocks(settings, names, given["clocks"][1], source)
    return settings


def _vector_from_clocks(s: RunSettings, names: tuple[str, ...] | None, where: dict[str, str],
                        source: dict[str, str]) -> RunSettings:
    """``clocks`` lists the vector clock too: it decides ``vector_clocks`` unless a flag does."""
    if names is None:
        return s
    if not source.get("vector_clocks", "").startswith("--"):
        return replace(s, vector_clocks="vector" in names)
    if where.get("clocks", "").startswith("--") and ("vector" in names) != s.vector_clocks:
        raise SettingsError(f"--clocks {','.join(names) or 'none'} and --no-vector-clocks disagree "
                            "about the vector clock; give one of them")
    return s


def validate(values: dict[str, Any], source: dict[str, str]) -> RunSettings:
    """The run keys checked one by one (the table's checks), then together (RUN_RULES)."""
    default = RunSettings()
    known = {f.name: getattr(default, f.name) for f in fields(RunSettings)}
    given = Given(values, source, known)
    _check_each(values, source, Run(0, 0.0), late=False)
    for rule in RUN_RULES:
        rule(given)
    _check_each(values, source, Run(given.get("machines"), given.get("duration")), late=True)
    mutant_needs_a_builtin_machine(given)
    return replace(default, **{k: v for k, v in values.items() if k in known})


def mutant_needs_a_builtin_machine(g: Given) -> None:
    """A mutant that no machine makes (every one runs its own program, which keeps its own
    rules) would be recorded in run.json and make nothing: refused, not silently dropped."""
    mutant, programs = g.values.get("mutant"), g.values.get("impl") or ()
    if mutant and len(programs) >= g.get("machines"):
        raise SettingsError(f"{g.where('mutant')}: no built-in machine would make {mutant}: "
                            f"every machine runs a program ({g.where('impl')}), which keeps "
                            "its own rules; give ID=CMD for some machines only")


def _check_each(values: dict[str, Any], source: dict[str, str], run: Run, late: bool) -> None:
    for k in (*keys_of(""), *keys_of("tcp")):
        if k.check is not None and k.late == late and values.get(k.name) is not None:
            values[k.name] = k.check(values[k.name], source.get(k.name, k.name), run)


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
