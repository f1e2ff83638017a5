"""Reading text logs with a regular expression of named groups, as ShiViz does.

A user describes one event of their log by a regular expression whose named groups say
where the facts are: ``machine``, ``event`` (a word such as "sent" that is mapped to send,
receive or internal), ``clock`` (the Lamport clock after the event), ``peer`` (recipients
of a send, the sender of a receive), ``time``; optionally ``vclock``, ``msg_clock`` (the
clock a message carried), ``tick``, ``queue`` and ``dice``. An expression that contains a
newline (written ``\\n``) describes an event spread over several lines and is applied to
the whole text, as ShiViz does; otherwise it is applied to each line.

This module only reads: text in, ``Match``es (raw strings with their file and line) and
``Problem``s out. ``lclock.ingest.build`` turns matches into a schema-v1 run folder.

Expressions run on the ``regex`` module rather than ``re``: its matching takes a
``timeout``, so a user's expression that backtracks exponentially on some line (``(a|aa)+$``)
stops with a message naming that line instead of running for hours, and it knows possessive
quantifiers on every Python lclock supports (the presets use them to stay linear).
"""

from __future__ import annotations

import difflib
import itertools
import re
import sys
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field

import regex

GROUPS = ("machine", "event", "clock", "peer", "time", "vclock", "msg_clock", "tick", "queue",
          "dice")
ALIASES = {"host": "machine", "node": "machine", "process": "machine", "kind": "event",
           "lclock": "clock", "lamport": "clock", "ts": "time", "timestamp": "time",
           "vector": "vclock", "vc": "vclock", "msg_lclock": "msg_clock",
           "queue_len": "queue"}
# ``machine`` may come from the file's name instead (one log per machine).
REQUIRED = ("event", "clock")  # on every line; the others may be missing on some
KINDS = ("send", "receive", "internal", "skip")
DEFAULT_WORDS: dict[str, str] = {
    **dict.fromkeys(("send", "sent", "sends", "sending", "snd", "s", "send_message",
                     "message_sent", "msg_send"), "send"),
    **dict.fromkeys(("receive", "received", "receives", "receiving", "recv", "rcv", "rcvd",
                     "r", "recieve", "recieved", "deliver", "delivered", "message_received",
                     "msg_recv"), "receive"),
    **dict.fromkeys(("internal", "local", "int", "i", "internal_event", "local_event",
                     "compute"), "internal"),
}
_JS_GROUP = re.compile(r"\(\?<([A-Za-z_]\w*)>")
SNIPPET = 80
WINDOW = 4 << 20  # characters of a file read at a time by an expression of several lines
SPAN_LINES = 1000  # ... whose events span at most this many lines
KEEP = 1000  # lines of each kind of problem kept to show (the others are only counted)
BUDGET = 1.0  # seconds an expression may take on a line (at least; see line_budget)
BUDGET_PER_CHAR = 1e-5  # ... and 10 us for each character of a long line


# The most a budget can be: the regex module counts a timeout in 64-bit microseconds, so
# past 9.2e12 s it wraps round and stops at once; a billion seconds is no limit in practice.
MAX_BUDGET = 1e9


def line_budget(base: float, chars: int) -> float:
    """The time an expression may take on ``chars`` characters: a long line takes longer to
    read even in linear time, and a catastrophic expression needs far more than that.
    A huge ``--regex-timeout`` means no limit, never an instant stop (``MAX_BUDGET``)."""
    return min(MAX_BUDGET, max(base, chars * BUDGET_PER_CHAR * base / BUDGET))


class TooSlow(Exception):
    """The expression ran past its time budget on one line (exponential backtracking)."""

    def __init__(self, file: str, line: int, budget: float) -> None:
        super().__init__(f"{file}:{line}: the expression ran for more than {budget:.3g} s on "
                         "this line and was stopped: it backtracks too much (nested "
                         "quantifiers such as (a+)+ or (a|aa)+ try exponentially many ways); "
                         "simplify --regex, or give it more time with --regex-timeout")
        self.file, self.line, self.budget = file, line, budget


class SpecError(Exception):
    """The expression or the event words cannot be used (the CLI prints it, exit 2)."""


@dataclass
class Spec:
    """A compiled description of a log's events."""

    pattern: regex.Pattern[str]
    groups: dict[str, str]  # our name -> the group's name in the expression
    multiline: bool
    words: dict[str, str]
    source: str  # the expression as given
    budget: float | None = None  # seconds per line (None: a preset, linear, not timed)
    # every expression and its groups, tried in order (a line is read by the first that
    # matches); ``pattern``/``groups`` are the first's
    alternatives: list[tuple[regex.Pattern[str], dict[str, str]]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def has(self, name: str) -> bool:
        """Whether every expression captures ``name`` (so every line may have it)."""
        return all(name in g for _, g in self.alternatives or [(self.pattern, self.groups)])

    def captures(self, name: str) -> bool:
        """Whether some expression captures ``name``."""
        return any(name in g for _, g in self.alternatives or [(self.pattern, self.groups)])


@dataclass
class Match:
    """One event as the log wrote it: raw strings, not yet interpreted (``text`` is its
    first line, for reports)."""

    file: str
    line: int
    values: dict[str, str | None]
    text: str


@dataclass
class Problem:
    """A line that did not match, or matched but cannot be used, and why."""

    file: str
    line: int
    text: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}: {self.text!r}"


@dataclass
class Scan:
    """What one file gave: how many lines and events, and every line that was left out."""

    file: str
    lines: int = 0
    matched: int = 0
    unmatched: list[Problem] = field(default_factory=list)  # the first ``keep`` of them
    unmatched_count: int = 0
    keep: int = KEEP

    def miss(self, line: int, text: str, reason: str = "did not match") -> None:
        """A line that did not match: counted, and kept while fewer than ``keep`` are."""
        self.unmatched_count += 1
        if len(self.unmatched) < self.keep:
            self.unmatched.append(Problem(self.file, line, text[:SNIPPET], reason))


MAX_EXPRESSIONS = 64  # expressions a log may be described by (--regex given several times)


def compile_spec(expression: str | list[str], words: dict[str, str] | None = None, *,
                 need_machine: bool = True, budget: float | None = None) -> Spec:
    """Check and compile the expression(s); ``SpecError`` names what is wrong in one line.

    Several expressions describe a log of several line shapes: a line is read by the first
    that matches. Each must capture the event and the clock; the others groups may be
    missing from some (a line without a time takes it from its neighbours, one without its
    peer is imported without it); a time must be captured by at least one."""
    exprs = [expression] if isinstance(expression, str) else list(expression)
    if not exprs:
        raise SpecError("--regex: no expression given")
    if len(exprs) > MAX_EXPRESSIONS:
        raise SpecError(f"--regex given {len(exprs)} times: at most {MAX_EXPRESSIONS} "
                        "expressions (one per shape of line)")
    alts = [_compile_one(x, need_machine, several=len(exprs) > 1) for x in exprs]
    multiline = any(m for _, _, m in alts)
    if multiline and len(alts) > 1:
        raise SpecError("--regex: an expression of several lines (with \\n) cannot be given "
                        "with others: give it alone")
    if not any("time" in g for _, g, _ in alts):
        raise SpecError("--regex: no (?P<time>...) group: it must capture " + _WHAT["time"])
    table = dict(DEFAULT_WORDS)
    for w, k in (words or {}).items():
        if k not in KINDS:
            raise SpecError(f"--event {w}={k}: the kind must be one of {', '.join(KINDS)}")
        table[w.strip().lower()] = k
    spec = Spec(alts[0][0], alts[0][1], multiline, table,
                exprs[0] if len(exprs) == 1 else " | ".join(exprs), budget)
    spec.alternatives = [(p, g) for p, g, _ in alts]
    spec.sources = exprs
    return spec


_WHAT = {"machine": "the machine that logged the event (or one file per machine, named "
                    "with its number)",
         "event": "the event word (send, receive, internal, ...)",
         "clock": "the Lamport clock after the event",
         "peer": "the recipients of a send and the sender of a receive",
         "time": "the time of the event"}


def _compile_one(expression: str, need_machine: bool, several: bool
                 ) -> tuple[regex.Pattern[str], dict[str, str], bool]:
    text = _JS_GROUP.sub(r"(?P<\1>", expression)  # ShiViz writes JavaScript's (?<name>...)
    which = f" {expression[:40]!r}" if several else ""
    try:
        pattern = regex.compile(text, regex.MULTILINE | regex.VERSION0)
    except (regex.error, ValueError, OverflowError, RecursionError) as exc:
        msg = getattr(exc, "msg", None) or str(exc)
        pos = getattr(exc, "pos", None)
        at = f" at position {pos}" if pos is not None else ""
        raise SpecError(f"--regex{which}: not a valid regular expression: {msg}{at}") from None
    groups: dict[str, str] = {}
    for g in pattern.groupindex:
        ours = ALIASES.get(g.lower(), g.lower())
        if ours not in GROUPS:
            near = difflib.get_close_matches(ours, [*GROUPS, *ALIASES], n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise SpecError(f"--regex{which}: unknown group (?P<{g}>...){hint}; the groups are "
                            f"{', '.join(GROUPS)}")
        if ours in groups:
            raise SpecError(f"--regex{which}: groups (?P<{groups[ours]}>...) and (?P<{g}>...) "
                            f"both name the {ours}")
        groups[ours] = g
    needed = (("machine",) if need_machine else ()) + REQUIRED
    missing = [g for g in needed if g not in groups]
    if missing:
        raise SpecError(f"--regex{which}: no (?P<{missing[0]}>...) group: it must capture "
                        f"{_WHAT[missing[0]]}" + (f" (also missing: {', '.join(missing[1:])})"
                                                  if missing[1:] else ""))
    return pattern, groups, "\n" in text or "\\n" in text


def parse_words(items: list[str]) -> dict[str, str]:
    """``--event sent=send --event got,recv=receive`` -> {"sent": "send", ...}."""
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise SpecError(f"--event {item}: write WORD=KIND (KIND: {', '.join(KINDS)})")
        left, kind = item.rsplit("=", 1)
        kind = kind.strip().lower()
        if kind not in KINDS:
            raise SpecError(f"--event {item}: the kind must be one of {', '.join(KINDS)}")
        for w in left.split(","):
            if not w.strip():
                raise SpecError(f"--event {item}: an empty word")
            out[w.strip().lower()] = kind
    return out


def kind_of(spec: Spec, word: str) -> str | None:
    """The kind a logged event word stands for: the whole word, else its first word."""
    w = word.strip().lower()
    if w in spec.words:
        return spec.words[w]
    first = re.split(r"[^\w]+", w, maxsplit=1)[0] if w else ""
    return spec.words.get(first)


def scan(spec: Spec, out: Scan, text: str | Iterable[str], skip_lines: int = 0
         ) -> Iterator[Match]:
    """Every event the expression finds in one file (its whole text, or its lines one by one
    for an expression of one line), one at a time; the lines it leaves out go to ``out``.
    ``TooSlow`` if the expression runs past its budget on a line."""
    if spec.multiline and isinstance(text, str):
        yield from _scan_text(spec, out, text, skip_lines)
        return
    if spec.multiline:
        yield from _scan_windows(spec, out, text, skip_lines)
        return
    lines: Iterable[str] = _lines(text) if isinstance(text, str) else text
    alts = spec.alternatives or [(spec.pattern, spec.groups)]
    budget = spec.budget
    file = out.file
    num = 0
    for num, raw in enumerate(lines, 1):  # noqa: B007 - num is the line count after the loop
        line = raw.rstrip("\r\n")
        if num <= skip_lines or not line.strip():
            continue
        for pattern, groups in alts:  # the first expression that matches reads the line
            if budget is None:
                m = pattern.search(line)
            else:
                m = _timed(pattern, line, 0, line_budget(budget, len(line)), file, num)
            if m is not None:
                out.matched += 1
                yield Match(file, num, _group_values(groups, m), line)
                break
        else:
            out.miss(num, line)
    out.lines = num


def _timed(pattern: regex.Pattern[str], text: str, pos: int, budget: float, file: str,
           line: int) -> regex.Match[str] | None:
    try:
        return pattern.search(text, pos, timeout=budget)
    except TimeoutError:
        raise TooSlow(file, line, budget) from None


def _lines(text: str) -> list[str]:
    """Lines as a file gives them: only ``\n`` ends a line."""
    parts = text.split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    return parts


def _scan_text(spec: Spec, out: Scan, text: str, skip_lines: int) -> Iterator[Match]:
    """The whole-text form (an event over several lines): text between matches is reported
    line by line. The expression has the budget of the whole text it reads."""
    text = text.replace("\r\n", "\n")
    out.lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
    start = 0
    for _ in range(skip_lines):
        nl = text.find("\n", start)
        start = len(text) if nl < 0 else nl + 1
    yield from _window(spec, out, text, start, skip_lines + 1, final=True)


def _scan_windows(spec: Spec, out: Scan, lines: Iterable[str], skip_lines: int
                  ) -> Iterator[Match]:
    """The whole-text form on a stream of lines, a window of about ``WINDOW`` characters at a
    time: the same events as on the whole text for events of at most ``SPAN_LINES`` lines
    (and ``WINDOW`` characters), in memory that does not grow with the file."""
    it = iter(lines)
    count = sum(1 for _ in itertools.islice(it, skip_lines))
    text, pos, line_no = "", 0, count + 1
    buf: list[str] = []
    size = 0
    for raw in it:
        count += 1
        buf.append(raw)
        size += len(raw)
        if size >= WINDOW:
            text = text + "".join(buf).replace("\r\n", "\n")
            buf, size = [], 0
            pos, line_no = yield from _window(spec, out, text, pos, line_no, final=False)
            start = text.rfind("\n", 0, pos) + 1  # keep the line's start: ^ and lookbehinds
            text, pos = text[start:], pos - start
    text = text + "".join(buf).replace("\r\n", "\n")
    yield from _window(spec, out, text, pos, line_no, final=True)
    out.lines = count


def _window(spec: Spec, out: Scan, text: str, pos: int, line_no: int, final: bool
            ) -> Generator[Match, None, tuple[int, int]]:
    """The events of ``text`` from ``pos`` that start before its last ``SPAN_LINES`` lines (all
    of them in the last window); the position and line number reached."""
    cut = len(text) if final else _tail_start(text)
    budget = None if spec.budget is None else line_budget(spec.budget, len(text) - pos)
    found = spec.pattern.finditer(text, pos, timeout=budget)
    while True:
        try:
            m = next(found, None)
        except TimeoutError:
            raise TooSlow(out.file, line_no, budget or 0.0) from None
        if m is None or m.start() >= cut and not final:
            break
        if m.end() == m.start():
            continue
        line_no = _gap(out, text, pos, m.start(), line_no)
        out.matched += 1
        yield Match(out.file, line_no, _values(spec, m), m.group(0).split("\n", 1)[0])
        line_no += m.group(0).count("\n")
        pos = m.end()
    if pos < cut:  # no event starts there: those lines are left out for good
        line_no = _gap(out, text, pos, cut, line_no)
        pos = cut
    return pos, line_no


def _tail_start(text: str) -> int:
    """Where the last ``SPAN_LINES`` lines (at most ``WINDOW`` characters) of ``text`` start:
    an event starting there may go on in the next window."""
    k = len(text) - 1
    for _ in range(SPAN_LINES):
        k = text.rfind("\n", 0, k) if k > 0 else -1
    return max(k + 1, text.rfind("\n", 0, max(len(text) - WINDOW, 0)) + 1)


def _gap(out: Scan, text: str, lo: int, hi: int, line_no: int) -> int:
    """Report the non-blank lines of text[lo:hi] as unmatched; return the line number at hi."""
    seg = text[lo:hi]
    for k, part in enumerate(seg.split("\n")):
        if part.strip():
            out.miss(line_no + k, part)
    return line_no + seg.count("\n")


def _values(spec: Spec, m: regex.Match[str]) -> dict[str, str | None]:
    return _group_values(spec.groups, m)


def _group_values(groups: dict[str, str], m: regex.Match[str]) -> dict[str, str | None]:
    return {ours: _unquote(m.group(g)) for ours, g in groups.items()}


def _unquote(v: str | None) -> str | None:
    """A value without surrounding blanks and one pair of quotes (logfmt's ``a="x y"``);
    interned, since the same few machine names and peers come back on every line."""
    if v is None:
        return None
    v = v.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
        v = v[1:-1].strip()
    return sys.intern(v) if len(v) < 16 else v
