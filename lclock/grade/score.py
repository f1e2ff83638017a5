"""From what the battery saw to points: pure, so the same results give the same grades.

An item's score is its points less its charges, never below 0. A charge is a rule of check
with an error, a catalogue bug that check names (its ``bug`` field), or a failed run (crash,
hang, non-determinism), each counted once per item however many runs or events show it,
and each naming where it first shows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from lclock.grade.results import ItemResult
from lclock.grade.rubric import Rubric


@dataclass(frozen=True)
class Charge:
    key: str          # "rule lamport", "bug receive-no-increment", "crash"
    cost: float
    text: str         # the first example, in check's or the run's words
    where: str
    count: int        # how many findings or runs show it in the item


@dataclass
class Test:
    """One Gradescope test: an item, its score and the charges that explain it."""

    name: str
    score: float
    max_score: float
    output: str
    charges: list[Charge] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "score": _num(self.score), "max_score": _num(self.max_score),
                "output": self.output}


def charges_of(item: ItemResult, rubric: Rubric) -> list[Charge]:
    """The item's charges, in the order they first show (run order, then line order)."""
    found: dict[str, list[Any]] = {}  # key -> [cost, text, where, count]
    for run in item.runs:
        if run.failure is not None:
            kind, reason, where = run.failure
            _add(found, kind, rubric.costs.get(kind, 0.0), f"{run.label}: {reason}", where)
        bugged = {(f["machine"], clock_rule(f["bug"])) for f in run.findings
                  if isinstance(f.get("bug"), str) and isinstance(f.get("machine"), int)}
        named = {f.get("bug") for f in run.findings if isinstance(f.get("bug"), str)}
        for f in run.findings:
            bug = f.get("bug")
            if not isinstance(bug, str):
                bug = explained_by(str(f.get("message", "")))
                if bug in named or (f.get("machine"), f.get("rule")) in bugged:
                    continue  # its bug is charged instead: one that names it, or a finding of
                    # the clock rule on the machine a bug was named for
            if bug is not None:
                key, cost = f"bug {bug}", rubric.bug_cost(bug)
            else:
                rule = str(f.get("rule", "?"))
                key, cost = f"rule {rule}", rubric.rule_cost(rule)
            _add(found, key, cost, f"{run.label}: {f.get('message', '')}", str(f.get("where", "")),
                 int(f.get("count", 1)) if isinstance(f.get("count"), int) else 1)
    return [Charge(k, min(v[0], item.points), v[1], v[2], v[3]) for k, v in found.items()]


def clock_rule(bug: str) -> str:
    """The rule of check whose findings a catalogue bug explains: its clock's (the vector
    and HLC bugs by name; the others are Lamport's, or none that check names by clock)."""
    return "vector" if bug.startswith("vector-") else "hlc" if bug.startswith("hlc-") \
        else "lamport"


_EXPLAINED = re.compile(r"[(\[]bug ([a-z0-9-]+)[:\]]")


def explained_by(message: str) -> str | None:
    """The named bug a rule's finding says explains it: check --json gives a bug a finding
    of its own (rule ``bug``) and names it in the message of each rule finding it explains,
    as `` (bug NAME: ...)`` or ``[bug NAME]``; charging both would charge one mistake twice."""
    m = _EXPLAINED.search(message)
    return m.group(1) if m else None


def _add(found: dict[str, list[Any]], key: str, cost: float, text: str, where: str,
         count: int = 1) -> None:
    if key in found:
        found[key][3] += count
    else:
        found[key] = [cost, text, where, count]


def score_item(item: ItemResult, rubric: Rubric) -> Test:
    if item.skipped is not None:
        return Test(item.name, 0.0, 0.0, item.skipped)
    charges = charges_of(item, rubric)
    score = max(0.0, item.points - sum(c.cost for c in charges))
    lines = [f"{len(item.runs)} run(s): " + ", ".join(r.label for r in item.runs)]
    for c in charges:
        lines.append(f"-{_num(c.cost)} {c.key} ({c.count} shown), first at {c.where}: {c.text}")
    if not charges:
        lines.append("every rule holds")
    notes = sorted({n for r in item.runs for n in r.notes if "not enough evidence" in n})
    lines += [f"note: {n}" for n in notes]
    return Test(item.name, score, item.points, "\n".join(lines), charges)


def bugs_of(tests: list[Test]) -> list[str]:
    """What was charged, for grades.csv (sorted, once each): the catalogue bugs and the
    failures by name, and a rule no bug was named for as ``rule:NAME`` (check names a bug
    only where the events fit one; the rule broken still says what is wrong)."""
    out = set()
    for t in tests:
        for c in t.charges:
            kind, _, name = c.key.partition(" ")
            out.add(name if kind == "bug" else f"rule:{name}" if kind == "rule" else c.key)
    return sorted(out)


def rules_of(tests: list[Test]) -> list[str]:
    return sorted({c.key.split(" ", 1)[1] for t in tests for c in t.charges
                   if c.key.startswith("rule ")})


def _num(x: float) -> float | int:
    """A whole number as an int, so JSON and CSV read 30, not 30.0."""
    return int(x) if float(x).is_integer() else round(x, 3)
