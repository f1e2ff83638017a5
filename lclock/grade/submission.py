"""What a submission is: its ``lclock.toml``, read as data and judged before anything runs.

A folder without one, or with one that cannot be used, is not an error of the grading: it
is a submission graded for what it gave, with one line saying what is wrong.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from lclock.impl.program import validate_command

CONFIG = "lclock.toml"
MAX_CONFIG_BYTES = 64 * 1024
_IMPORT_KEYS = {"preset", "regex", "files", "date", "event"}


@dataclass(frozen=True)
class Submission:
    """One student's folder: a program (``impl``), text logs (``imports``), or a problem."""

    name: str
    impl: str | None = None
    build: str | None = None
    imports: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None

    @property
    def kind(self) -> str:
        return "bad" if self.problem else "program" if self.impl else "logs"


def read_submission(folder: Path) -> Submission:
    """The submission in ``folder``; never raises for what a student wrote."""
    name = folder.name
    path = folder / CONFIG
    if path.is_symlink() or not path.is_file():
        return Submission(name, problem=f"{CONFIG}: missing (a submission needs one; see docs/GRADING.md)")
    try:
        raw = path.read_bytes()[:MAX_CONFIG_BYTES + 1]
        if len(raw) > MAX_CONFIG_BYTES:
            raise ValueError(f"longer than {MAX_CONFIG_BYTES} bytes")
        data = tomllib.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError) as e:
        return Submission(name, problem=f"{CONFIG}: cannot be read: {e}")
    try:
        return parse_config(name, data)
    except ValueError as e:
        return Submission(name, problem=f"{CONFIG}: {e}")


def parse_config(name: str, data: dict[str, Any]) -> Submission:
    """``impl`` (with an optional ``build``) or an ``[import]`` table; ValueError names the key."""
    unknown = sorted(set(data) - {"impl", "build", "import"})
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown key (expected impl, build or [import])")
    if ("impl" in data) == ("import" in data):
        raise ValueError("give either impl = \"COMMAND\" or an [import] table")
    if "impl" in data:
        impl = _command(data["impl"], "impl")
        build = _command(data["build"], "build") if "build" in data else None
        return Submission(name, impl=impl, build=build)
    if "build" in data:
        raise ValueError("build: only with impl")
    return Submission(name, imports=_imports(data["import"]))


def _command(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{key}: expected a command line (a string)")
    validate_command(value, key)
    return value


def _imports(table: Any) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ValueError("import: expected a table ([import])")
    unknown = sorted(set(table) - _IMPORT_KEYS)
    if unknown:
        raise ValueError(f"import.{unknown[0]}: unknown key (expected {', '.join(sorted(_IMPORT_KEYS))})")
    if ("preset" in table) == ("regex" in table):
        raise ValueError("import: give either preset or regex")
    out: dict[str, Any] = {}
    for key in ("preset", "regex", "files", "event"):
        if key in table:
            out[key] = _strings(table[key], f"import.{key}")
    if "date" in table:
        out["date"] = str(table["date"])
    out.setdefault("files", ["*.log"])
    for pattern in out["files"]:
        pure = PurePosixPath(pattern)
        if pure.is_absolute() or ".." in pure.parts:
            raise ValueError(f"import.files: {pattern!r} must stay inside the submission's folder")
    return out


def _strings(value: Any, key: str) -> list[str]:
    """A string or a list of strings, as a list."""
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
        raise ValueError(f"{key}: expected a string or a list of strings")
    return list(values)
