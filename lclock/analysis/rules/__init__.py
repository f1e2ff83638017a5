"""The rules ``lclock check`` applies, registered by what they look at.

- ``@run_rule``: the folder as a whole (run.json against the logs, the messages between
  machines, timing, the dice replay). Called once.
- ``@machine_rule``: one machine's tick events (the view of them that is judged: up to its
  stop line, and up to a second start line). Called per machine.
- ``@line_rule("stop", ...)``: every kept line of those kinds (start, stop, connected, drop,
  fault, pause, resume). Called per line.

A rule reports through ``ctx.finding(...)`` with a rule id (the kind of finding; grouped or
capped by ``check``). Adding a rule is adding a decorated function to one of the modules
below; nothing else needs to know.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from lclock.analysis.load import MachineLog, Run

if TYPE_CHECKING:
    from lclock.analysis.diagnosis import Diagnosis

SIM_TOLERANCE_S = 2e-6
REAL_TOLERANCE_S = 0.05


def tolerance_text(ctx: Context) -> str:
    """How a finding that compares times with the plan says what it allowed."""
    if ctx.run.facts.sim:
        return "a simulated run: exact to the microsecond"
    return f"within {ctx.tolerance * 1000:g} ms, a real run's tolerance"


#: The words of a rule's own guess at a mistake that say what a named bug says: the guess
#: is kept where the bug is named (and replaced by the bug where it says something else).
GUESS_OF_BUG = {
    "receive-no-increment": "receive without the +1",
    "send-per-recipient": "incremented once per recipient",
    "send-no-increment": "no increment",
    "internal-no-increment": "no increment",
    "hlc-counter-not-reset": "c must restart",
    "hlc-receive-ignores-message": "the message's hlc was not taken in",
}


class Sink(Protocol):
    """Where findings go (``check.Findings``): ``cap`` findings of a rule per file are
    listed (None: all), the others only counted through ``skip``."""

    cap: int | None

    def add(self, file: str, line: int, text: str, rule: str, severity: str = "error",
            machine: int | None = None, count: int = 1, bug: str | None = None) -> None: ...

    def skip(self, file: str, rule: str, count: int, severity: str = "error") -> None: ...


class Context:
    """What every rule sees: the run, the judged views of its logs, and the finding sink."""

    def __init__(self, run: Run, sink: Sink, default_sides: int) -> None:
        self.run = run
        self.sink = sink
        self.add = sink.add
        self.sides = run.dice_sides or default_sides
        self.sides_source = ("run.json settings" if run.dice_sides
                             else "the default; run.json gives none")
        # how far a real run's wall clock may stray from the plan's instants when times are
        # compared; the simulator keeps them exactly (to the microsecond of ``ts``)
        self.tolerance = SIM_TOLERANCE_S if run.facts.sim else REAL_TOLERANCE_S
        self.notes: list[str] = []
        self.messages = 0
        self.views: dict[int, MachineLog] = {}
        self.hlc_bad: dict[int, np.ndarray] = {}  # per machine: events whose HLC update failed
        self.second_start: dict[int, int] = {}  # machine -> line of its second start line
        self._diagnosis: Diagnosis | None = None
        for mid, log in run.machines.items():
            starts = [num for num, _ in log.lines_of("start")]
            if len(starts) > 1:
                self.second_start[mid] = starts[1]
            self.views[mid] = truncate(log, _judged_end(log, self.second_start.get(mid)))

    @property
    def diagnosis(self) -> Diagnosis:
        """The classic bugs fitted to every machine (SPEC 10), worked out once, when a rule
        first asks: the rules whose findings a named bug explains say so."""
        if self._diagnosis is None:
            from lclock.analysis.diagnosis import Facts, diagnose

            run = self.run
            facts = Facts(run.n, self.sides, dict(run.facts.rates), run.t0,
                          "dice" not in run.not_logged, "queue_len" not in run.not_logged)
            gaps = {mid: self.after_gap(v) for mid, v in self.views.items()}
            self._diagnosis = diagnose(self.views, gaps, facts)
        return self._diagnosis

    def bug_hint(self, log: MachineLog, clock: str, k: int, guess: str) -> str:
        """A finding's hint at its mistake: ``guess`` (what the rule alone makes of the one
        event), unless a named bug (SPEC 10) explains the event and the guess says
        otherwise; then the bug."""
        bug = self.diagnosis.bug_of(log.id, clock, k)
        if bug is None:
            return guess
        agrees = GUESS_OF_BUG.get(bug)
        if guess and agrees and agrees in guess:
            return f"{guess} [bug {bug}]"
        from lclock.analysis.bugs import BUGS

        return f" (bug {bug}: {BUGS[bug].what})"

    def after_gap(self, log: MachineLog) -> np.ndarray:
        """Per event: whether an unusable line lies between it and the previous event, so
        the previous logged state it would be judged against is unknown."""
        if not log.unusable.size:
            return np.zeros(log.events, bool)
        before = np.searchsorted(log.unusable, log.line)
        return before > np.concatenate(([0], before[:-1]))

    def each(self, log: MachineLog, rule: str, where: np.ndarray, severity: str = "error"
             ) -> list[int]:
        """The events of ``where`` (a mask or indexes) to report one by one: all of them, or
        with capped findings only as many as will be listed, the others counted, so a log
        wrong on every line costs no more than one wrong a few times."""
        idx = np.flatnonzero(where) if where.dtype == bool else where
        cap = self.sink.cap
        if cap is None or len(idx) <= cap:
            return [int(k) for k in idx.tolist()]
        self.sink.skip(log.path.name, rule, len(idx) - cap, severity)
        return [int(k) for k in idx[:cap].tolist()]

    def finding(self, log: MachineLog, line: int, text: str, rule: str,
                severity: str = "error", count: int = 1) -> None:
        self.add(log.path.name, int(line), text, rule, severity, log.id, count)

    def meta(self, text: str, rule: str, severity: str = "error") -> None:
        self.add("run.json", 0, text, rule, severity)

    def until(self, log: MachineLog) -> int:
        """The first line not judged in ``log`` (a second start line), or 0 for none."""
        return self.second_start.get(log.id, 0)


def _judged_end(log: MachineLog, second_start: int | None) -> int | None:
    """The line at which the judged events of a log end: its first stop line, or a second
    start line, whichever comes first (None: the whole log)."""
    ends = [x for x in (log.stop_line or None, second_start) if x]
    return min(ends) if ends else None


def truncate(log: MachineLog, end_line: int | None) -> MachineLog:
    """The log's tick events before line ``end_line`` (the log itself when none are cut)."""
    if end_line is None:
        return log
    k = int(np.searchsorted(log.line, end_line))
    if k == log.events:
        return log
    cut = int(log.to_ptr[k])
    out = MachineLog(
        id=log.id, path=log.path, line=log.line[:k], ts=log.ts[:k], tick=log.tick[:k],
        lclock=log.lclock[:k], qlen=log.qlen[:k], kind=log.kind[:k], dice=log.dice[:k],
        frm=log.frm[:k], msg=log.msg[:k], to_ptr=log.to_ptr[:k + 1], to_ids=log.to_ids[:cut],
        vclock=log.vclock[:k] if log.vclock is not None else None,
        dup=log.dup[:k] if log.dup is not None else None,
        to_dup=log.to_dup[:cut] if log.to_dup is not None else None,
        pt=_head(log.pt, k), hlc=_head(log.hlc, k), msg_pt=_head(log.msg_pt, k),
        msg_hlc=_head(log.msg_hlc, k),
    )
    for name in ("start", "start_line", "stop", "stop_line", "other_events", "firsts",
                 "notable", "unknown", "lines", "skipped", "kept", "run_id", "unusable"):
        setattr(out, name, getattr(log, name))
    return out


def all_cols(x: np.ndarray) -> np.ndarray:
    """Per row: every column true. For the few columns of a clock, column by column: numpy's
    reduction along a short axis costs ten times as much."""
    if x.ndim == 1:
        return x
    if x.shape[1] > 16:
        every: np.ndarray = np.all(x, axis=1)
        return every
    out: np.ndarray = x[:, 0].copy()
    for j in range(1, x.shape[1]):
        out &= x[:, j]
    return out


def any_cols(x: np.ndarray) -> np.ndarray:
    """Per row: some column true (see ``all_cols``)."""
    if x.ndim == 1:
        return x
    if x.shape[1] > 16:
        some: np.ndarray = np.any(x, axis=1)
        return some
    out: np.ndarray = x[:, 0].copy()
    for j in range(1, x.shape[1]):
        out |= x[:, j]
    return out


def _head(col: np.ndarray | None, k: int) -> np.ndarray | None:
    return col[:k] if col is not None else None


RunRule = Callable[[Context], None]
MachineRule = Callable[[Context, MachineLog], None]
LineRule = Callable[[Context, MachineLog, int, dict[str, Any]], None]

RUN_RULES: list[RunRule] = []
MACHINE_RULES: list[MachineRule] = []
LINE_RULES: dict[str, list[LineRule]] = defaultdict(list)


def run_rule(f: RunRule) -> RunRule:
    RUN_RULES.append(f)
    return f


def machine_rule(f: MachineRule) -> MachineRule:
    MACHINE_RULES.append(f)
    return f


def line_rule(*events: str) -> Callable[[LineRule], LineRule]:
    def register(f: LineRule) -> LineRule:
        for e in events:
            LINE_RULES[e].append(f)
        return f
    return register


def run_rules(ctx: Context) -> None:
    """Every registered rule, on every machine and every kept line."""
    from lclock.analysis.rules import (  # noqa: F401 - importing registers the rules
        bugs,
        clocks,
        faults,
        folder,
        lines,
        machine,
        messages,
        record,
        replay,
        snapshots,
        timing,
    )

    for mid in ctx.run.ids:
        log = ctx.views[mid]
        until = ctx.until(log)
        for event, rules in LINE_RULES.items():
            for num, obj in log.lines_of(event):
                if until and num >= until:
                    continue
                for rule in rules:
                    rule(ctx, log, num, obj)
        for mrule in MACHINE_RULES:
            mrule(ctx, log)
    for rrule in RUN_RULES:
        rrule(ctx)
