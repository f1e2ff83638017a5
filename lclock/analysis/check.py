"""The checker: verify a run folder against the model's rules, trusting only the logs.

Every rule is checked locally against the previous *logged* state, never against a
re-simulation, so one mistake gives one finding instead of an avalanche, and a folder that
another program wrote is judged by the same rules as our own. The rules are vectorised with
numpy so a million-event run is checked in about a second; only findings become Python
objects. Findings name ``file:line``; where a known mistake of the exercise (DESIGN.md)
explains the symptom, the finding says so.

The rules themselves live in ``lclock.analysis.rules``, registered by what they look at
(the folder, one machine's events, the lines of one kind, the messages between machines);
this module runs them and groups what they find: a systematic omission (no ``level`` on any
line, no start lines) is one finding with a count, and a clock mistake is one finding at
its line, capped per kind unless ``--all``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lclock.analysis.load import Issue, Run, load_run
from lclock.analysis.rules import Context, run_rules
from lclock.console import counted

DEFAULT_DICE_SIDES = 10
LINES_SHOWN = 5  # line numbers listed in a grouped finding

# Rules whose findings are grouped per file (one finding with a count, not one per line):
# the shape of the lines, not the clocks. Prefixes, or whole names.
GROUPED_PREFIXES = ("field-", "line-", "log-")
GROUPED = {"start-missing", "stop-missing", "after-stop", "before-start", "no-vclock",
           "other-run-start"}


def grouped(rule: str) -> bool:
    return rule in GROUPED or rule.startswith(GROUPED_PREFIXES)


@dataclass
class CheckResult:
    """All findings of one run, what was checked (for the closing line), and notes on what
    was not (a replay skipped, with the reason)."""

    run: Run | None
    findings: list[Issue] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Issue]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [f for f in self.findings if f.severity != "error"]

    @property
    def ok(self) -> bool:
        return not self.errors


class Findings:
    """Collects findings, then groups and caps them (``cap`` per rule and file for rules
    listed one by one; None lists every one)."""

    def __init__(self, cap: int | None) -> None:
        self.cap = cap
        self.items: list[Issue] = []
        self.skipped: dict[tuple[str, str], tuple[int, str]] = {}

    def skip(self, file: str, rule: str, count: int, severity: str = "error") -> None:
        """Findings of ``rule`` in ``file`` that a rule did not even make (beyond the cap)."""
        n, _ = self.skipped.get((file, rule), (0, severity))
        self.skipped[(file, rule)] = (n + count, severity)

    def add(self, file: str, line: int, text: str, rule: str, severity: str = "error",
            machine: int | None = None, count: int = 1, bug: str | None = None) -> None:
        self.items.append(Issue(file, int(line), text, severity, rule=rule, count=count,
                                machine=machine, bug=bug))

    def close(self, machines: set[int]) -> list[Issue]:
        listed = [f for f in self.items if not grouped(f.rule)]
        groups = _group_per_file([f for f in self.items if grouped(f.rule)])
        out = _merge_across_files(groups, machines) + self._capped(listed)
        out.sort(key=_order)
        return out

    def _capped(self, items: list[Issue]) -> list[Issue]:
        if self.cap is None:
            return items
        seen: dict[tuple[str, str], int] = defaultdict(int)
        severity: dict[tuple[str, str], str] = {}
        out = []
        for f in items:
            key = (f.file, f.rule)
            seen[key] += 1
            severity.setdefault(key, f.severity)
            if seen[key] <= self.cap:
                out.append(f)
        for key, (n, sev) in self.skipped.items():
            seen[key] += n
            severity.setdefault(key, sev)
        for (file, rule), n in seen.items():
            if n > self.cap:
                out.append(Issue(file, 0, f"... and {n - self.cap} more findings of the kind "
                                          f"'{rule}' (use --all to list every one)",
                                 severity[(file, rule)], rule=rule, count=n - self.cap))
        return out


def _order(f: Issue) -> tuple[Any, ...]:
    return (f.file != "run.json", f.file != "machine-*.jsonl", f.file,
            f.text.startswith("... and"), f.line)


def _group_per_file(items: list[Issue]) -> list[tuple[Issue, list[int]]]:
    """One finding per (file, rule): the first one's text, the total count, the lines."""
    by: dict[tuple[str, str], list[Issue]] = defaultdict(list)
    for f in items:
        by[(f.file, f.rule or f.text)].append(f)
    out = []
    for fs in by.values():
        first = min(fs, key=lambda f: (f.line == 0, f.line))
        total = sum(f.count for f in fs)
        lines = sorted({f.line for f in fs if f.line and not f.text.startswith("... and")})
        g = Issue(first.file, first.line, first.text, first.severity, rule=first.rule,
                  count=total, machine=first.machine)
        out.append((g, lines))
    return out


def _lines_note(count: int, lines: list[int]) -> str:
    shown = ", ".join(map(str, lines[:LINES_SHOWN]))
    more = ", ..." if count > min(len(lines), LINES_SHOWN) else ""
    return f" [{count} lines: {shown}{more}]"


def _merge_across_files(groups: list[tuple[Issue, list[int]]], machines: set[int]
                        ) -> list[Issue]:
    """A rule that fired in every machine log read is one finding for the run."""
    by_rule: dict[str, list[tuple[Issue, list[int]]]] = defaultdict(list)
    for g, lines in groups:
        if g.file.startswith("machine-") and g.machine is not None:
            by_rule[g.rule].append((g, lines))
    out = []
    merged: set[int] = set()
    for rule, gs in by_rule.items():
        if len(machines) < 2 or {g.machine for g, _ in gs} != machines or not rule:
            continue
        first = min(gs, key=lambda x: (x[0].machine or 0))[0]
        total = sum(g.count for g, _ in gs)
        where = f"first at {first.file}:{first.line}" if first.line else f"first in {first.file}"
        per_line = any(g.line for g, _ in gs)
        text = (f"{first.text} [in all {len(gs)} machine logs"
                + (f", {total} lines; {where}]" if per_line else "]"))
        out.append(Issue("machine-*.jsonl", 0, text, first.severity, rule=rule, count=total))
        merged.update(id(g) for g, _ in gs)
    for g, lines in groups:
        if id(g) in merged:
            continue
        if g.count > 1 and lines:
            g.text += _lines_note(g.count, lines)
        out.append(g)
    return out


def check_run(run_dir: Path | str, cap: int | None = 20) -> CheckResult:
    """Check a run folder. Raises ``RunFolderError`` only if it is not a run folder at all."""
    run = load_run(run_dir, strict=True)
    sink = Findings(cap)
    for issue in run.issues:
        sink.add(issue.file, issue.line, issue.text, issue.rule or "line", issue.severity,
                 issue.machine, issue.count)
    ctx = Context(run, sink, DEFAULT_DICE_SIDES)
    run_rules(ctx)
    findings = sink.close(set(run.machines))
    if run.meta.get("mode") == "import":
        from lclock.analysis.cite import cite_in_notes, cite_sources, left_out_note, numbering_note

        cite_sources(run.path, findings)  # every rule's findings at the user's own lines
        ctx.notes[:] = cite_in_notes(run.path, ctx.notes)
        for note in (numbering_note(run.meta), left_out_note(run.meta)):
            if note:
                ctx.notes.append(note)
    counts = {"machines": len(run.machines), "events": run.events,
              "messages": ctx.messages}
    return CheckResult(run, findings, counts, ctx.notes)


def format_findings(result: CheckResult) -> list[str]:
    return [str(f) if f.severity == "error" else f"{f}  [warning]" for f in result.findings]


def check_json(result: CheckResult) -> dict[str, Any]:
    """The object ``lclock check --json`` prints: ok, counts, notes and the findings."""
    return {"ok": result.ok, "counts": result.counts, "notes": result.notes,
            "findings": findings_json(result)}


def findings_json(result: CheckResult) -> list[dict[str, Any]]:
    """Each finding as ``lclock check --json`` prints it."""
    return [_finding_json(f) for f in result.findings]


def _finding_json(f: Issue) -> dict[str, Any]:
    d: dict[str, Any] = {"rule": f.rule, "severity": f.severity, "file": f.file,
                         "machine": f.machine, "line": f.line, "count": f.count,
                         "message": f.text}
    if f.log_file is not None:  # file/line are the user's own (src); the generated place too
        d["log_file"], d["log_line"] = f.log_file, f.log_line
    if f.bug is not None:  # the classic bug the finding names (SPEC 10)
        d["bug"] = f.bug
    return d


def summary_line(result: CheckResult, run_dir: Any) -> str:
    c = result.counts
    ne, nw = len(result.errors), len(result.warnings)
    what = ", ".join(counted(int(c.get(k + "s", 0)), k) for k in ("machine", "event", "message"))
    if ne == 0:
        extra = f", {nw} warning(s)" if nw else ""
        return f"OK: every rule holds in {run_dir} ({what}{extra})"
    return f"FAILED: {ne} finding(s), {nw} warning(s) in {run_dir} ({what})"
