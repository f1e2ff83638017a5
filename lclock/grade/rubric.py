"""The rubric: which battery runs, and what each rule, bug and failure costs (SPEC 11).

Read from TOML and judged whole before anything runs: a mistake is one line naming the
file and key, as every other bad input of lclock.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from lclock.errors import BadInput

PROGRAM_KINDS = ("sim", "mixed", "twice", "real")
KINDS = (*PROGRAM_KINDS, "import")
COSTS = ("crash", "hang", "nondeterministic")
MAX_SEEDS = 50
MAX_DURATION = 3600.0
#: A cost the rubric does not give: the whole item.
ALL = 1e6
#: Attempts of ``lclock shrink`` on a submission's first run with a charged finding (its
#: report's small counterexample): modest, so that grading stays fast; 0 is none.
SHRINK_BUDGET = 20
MAX_SHRINK = 100_000


@dataclass(frozen=True)
class Item:
    """One battery item: what runs, with which seeds, and what it is worth."""

    name: str
    kind: str
    points: float
    seeds: tuple[int, ...] = (1,)
    duration: float = 30.0
    args: tuple[str, ...] = ()
    machine: int = 2
    skip: bool = False

    def applies_to(self, kind: str) -> bool:
        return (self.kind == "import") == (kind == "logs")


@dataclass(frozen=True)
class Rubric:
    items: tuple[Item, ...]
    rules: dict[str, float] = field(default_factory=dict)
    bugs: dict[str, float] = field(default_factory=dict)
    costs: dict[str, float] = field(default_factory=dict)
    text: str = ""
    shrink: int = SHRINK_BUDGET

    # A rule or bug the rubric prices neither by name nor by "default" costs the whole item,
    # as a cost not given does: a rubric without [rules] must not give a wrong program
    # full marks (the charge is clipped to the item's points).
    def rule_cost(self, rule: str) -> float:
        return self.rules.get(rule, self.rules.get("default", math.inf))

    def bug_cost(self, bug: str) -> float:
        return self.bugs.get(bug, self.bugs.get("default", math.inf))

    def max_score(self, kind: str) -> float:
        return sum(i.points for i in self.items if i.applies_to(kind) and not i.skip)


def default_text() -> str:
    return resources.files("lclock.grade").joinpath("default_rubric.toml").read_text("utf-8")


def load_rubric(path: Path | None) -> Rubric:
    """The rubric at ``path`` (the default one when None); BadInput names file and key."""
    where = str(path) if path is not None else "default rubric"
    if path is None:
        text = default_text()
    else:
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise BadInput(f"--rubric: cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise BadInput(f"{where}: not valid TOML: {e}") from None
    from lclock.grade.argcheck import check_args

    try:
        rubric = parse_rubric(data, text)
        check_args(rubric, where)
    except ValueError as e:
        raise BadInput(str(e) if str(e).startswith(where) else f"{where}: {e}") from None
    return rubric


def rubric_from_text(text: str) -> Rubric:
    """A rubric already validated once (a Dask task gets it as text)."""
    return parse_rubric(tomllib.loads(text), text)


def parse_rubric(data: dict[str, Any], text: str = "") -> Rubric:
    """The rubric in ``data``; ValueError names the key that is wrong."""
    unknown = sorted(set(data) - {"battery", "rules", "bugs", "costs", "shrink"})
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown table (expected battery, rules, bugs, costs; "
                         "or the key shrink)")
    battery = data.get("battery")
    if not isinstance(battery, dict) or not battery:
        raise ValueError("battery: expected at least one [battery.NAME] table")
    items = tuple(_item(name, value) for name, value in battery.items())
    costs = _numbers(data.get("costs", {}), "costs")
    bad = sorted(set(costs) - set(COSTS))
    if bad:
        raise ValueError(f"costs.{bad[0]}: unknown cost (expected {', '.join(COSTS)})")
    return Rubric(items, _numbers(data.get("rules", {}), "rules"),
                  _numbers(data.get("bugs", {}), "bugs"),
                  {k: costs.get(k, ALL) for k in COSTS}, text,
                  _shrink(data.get("shrink", SHRINK_BUDGET)))


def _shrink(v: Any) -> int:
    """``shrink``: true (the default budget), false or 0 (none), or a number of attempts."""
    if v is True:
        return SHRINK_BUDGET
    if v is False:
        return 0
    if type(v) is not int or not 0 <= v <= MAX_SHRINK:
        raise ValueError(f"shrink: expected true, false or a whole number of attempts from 0 "
                         f"to {MAX_SHRINK}")
    return v


_ITEM_KEYS = {"kind", "points", "seeds", "duration", "args", "machine", "skip"}


def _item(name: str, t: Any) -> Item:
    where = f"battery.{name}"
    if not isinstance(t, dict):
        raise ValueError(f"{where}: expected a table")
    unknown = sorted(set(t) - _ITEM_KEYS)
    if unknown:
        raise ValueError(f"{where}.{unknown[0]}: unknown key (expected {', '.join(sorted(_ITEM_KEYS))})")
    kind = t.get("kind")
    if kind not in KINDS:
        raise ValueError(f"{where}.kind: expected one of {', '.join(KINDS)}")
    points = _number(t.get("points"), f"{where}.points")
    seeds = t.get("seeds", [1])
    if (not isinstance(seeds, list) or not 1 <= len(seeds) <= MAX_SEEDS
            or not all(type(s) is int and 0 <= s < 2**63 for s in seeds)):
        raise ValueError(f"{where}.seeds: expected a list of 1 to {MAX_SEEDS} whole numbers from 0")
    duration = _number(t.get("duration", 30.0), f"{where}.duration")
    if not 0 < duration <= MAX_DURATION:
        raise ValueError(f"{where}.duration: expected seconds above 0, at most {MAX_DURATION:g}")
    args = t.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ValueError(f"{where}.args: expected a list of strings (flags of lclock sim)")
    machine = t.get("machine", 2)
    if type(machine) is not int or not 1 <= machine <= 128:
        raise ValueError(f"{where}.machine: expected a machine id from 1 to 128")
    skip = t.get("skip", False)
    if not isinstance(skip, bool):
        raise ValueError(f"{where}.skip: expected true or false")
    return Item(name, kind, points, tuple(seeds), duration, tuple(args), machine, skip)


def _numbers(t: Any, where: str) -> dict[str, float]:
    if not isinstance(t, dict):
        raise ValueError(f"{where}: expected a table of numbers")
    return {k: _number(v, f"{where}.{k}") for k, v in t.items()}


def _number(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1e6:
        raise ValueError(f"{where}: expected a number from 0 to 1000000")
    return float(v)
