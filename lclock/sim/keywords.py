"""The settings of ``lclock sim`` given as Python keyword arguments (``lclock.simulate``).

Why not a second validation: the keywords are the keys of settings.toml (``rates``,
``loss``, ``skew_ms``, ``delay_mean``, ...), so they are put where a settings file would put
them and resolved by the very code that resolves ``lclock sim``'s file and flags
(lclock.settings with the table of lclock.setting_table). A keyword is valid exactly when
the same key in settings.toml is, and means the same; an error names the keyword.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lclock.setting_table import KEYS, Key
from lclock.settings import RunSettings, SettingsError, SettingsFile, _suggest, _typed, resolve
from lclock.sim.engine import NetworkSettings, resolve_network


class UnknownSetting(SettingsError, TypeError):
    """A keyword that is no setting of ``lclock sim`` (a TypeError too, as Python says of an
    unexpected keyword argument)."""


class _Keywords(SettingsFile):
    """A settings file that is a call's keywords: its errors name ``simulate(key=...)``."""

    def where(self, key: str) -> str:
        return f"simulate({key.rpartition('.')[2]}=...)"


def sim_keys() -> dict[str, Key]:
    """The keys ``lclock sim`` takes from settings.toml, by name."""
    return {name: k for name, k in KEYS.items()
            if k.path is not None and not k.path.startswith("tcp.") and (
                "sim" in k.commands or k.path.startswith("sim."))}


def _plain(value: Any) -> Any:
    """The value as settings.toml would give it: a tuple or range as a list, and numpy's
    scalars and arrays and pandas' Series (a notebook's values) as Python's ints, floats,
    bools and lists (their ``tolist``), so each is then checked as the same plain value."""
    if isinstance(value, (tuple, range)):
        value = list(value)
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and not isinstance(value, (str, bytes)):
        value = tolist()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value


def _tables(keys: dict[str, Key]) -> set[str]:
    """The tables of settings.toml whose keys are keywords (``faults``, ``sim``)."""
    return {k.table for k in keys.values() if k.table}


def resolve_keywords(kw: dict[str, Any]) -> tuple[RunSettings, NetworkSettings]:
    """The run's settings and the simulated network from keywords over the built-in defaults
    (as ``lclock sim --settings /dev/null`` with the same keys given as flags).

    Raises UnknownSetting for a keyword that is not a key of ``lclock sim``, SettingsError
    for a bad value (the text names the keyword).
    """
    keys = sim_keys()
    file = _Keywords(path=None)
    for name, value in kw.items():
        k = keys.get(name)
        if k is None and isinstance(value, dict) and value and name in _tables(keys):
            raise UnknownSetting(f"simulate: the keys of [{name}] are keywords: "
                                 f"simulate({next(iter(value))}=...), not {name}={{...}}")
        if k is None and name in KEYS:
            raise UnknownSetting(f"simulate: {name!r} is not a setting of lclock sim")
        if k is None:
            raise UnknownSetting(f"simulate: unknown setting {name!r}"
                                 f"{_suggest(name, list(keys))}")
        if value is None:
            continue  # as a key left out of settings.toml: its default
        value = _plain(value)
        typed = _typed(file.where(k.key), k.toml, value)
        if k.table:
            file.tables.setdefault(k.table, {})[k.key] = typed
        else:
            file.run[k.key] = typed
    return resolve(file, {}), resolve_network(file, {})


def output_folder(value: str | Path) -> Path:
    """Where ``output=`` puts the run folder, checked as ``lclock sim --output`` checks it."""
    from lclock.settings import check_output_dir

    return check_output_dir(str(value), "simulate(output=...)")
