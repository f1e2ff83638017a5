"""Ready-made expressions for common ways of writing a log (``lclock import --preset NAME``).

Each is an ordinary expression with the groups of ``lclock.ingest.textlog``; the facts of a
line may come in any order because each is found by a lookahead ``(?=...)``. ``--regex``
takes the same kind of expression, so a preset is also a starting point for one's own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    regex: str
    about: str
    example: str
    header: str | None = None  # a first line that marks a header of this many lines to skip
    header_lines: int = 0
    more: tuple[str, ...] = ()  # further expressions, for further shapes of line

    @property
    def expressions(self) -> tuple[str, ...]:
        """Every expression, in the order a line tries them."""
        return (self.regex, *self.more)


# Every preset runs in time linear in the length of a line, whatever the line holds: each
# lookahead starts at the line's start (``^``), is atomic once it succeeded, and scans the line
# once; at each place it tries a keyword followed by possessive runs (``*+``, ``++``) that
# never give back what they took, so a run of blanks or digits after a keyword is read once
# per keyword, not once per way of splitting it (``\s*#?\s*`` before a run of 16,000 blanks
# was 16,000^2 tries). tests/test_import_linear.py feeds them megabyte lines of every kind.
_VALUE = r'(?:"[^"]*+"|\S++)'

SHIVIZ = (
    r"^(?=.*?\b(?P<event>send|sent|receive|received|recv|internal|local)\b)"
    r"(?=(?:.*?\b(?:to|from) (?P<peer>[^\s(]++))?)"
    r"(?=.*?(?<!message )\bL=(?P<clock>\d++))"
    r"(?=(?:.*?\bmessage L=(?P<msg_clock>\d++))?)"
    r"(?=(?:.*?\btick=(?P<tick>\d++))?)"
    r"(?=.*?\bts=(?P<time>\S++))"
    r"(?=(?:.*?\bdice (?P<dice>\d++))?)"
    r"(?=(?:.*?\bqueue (?P<queue>\d++))?)"
    r".*+\n(?P<machine>\S++) (?P<vclock>\{.*\})$"
)

LOGFMT = (
    rf"^(?=.*?\b(?:ts|time|timestamp)=(?P<time>{_VALUE}))"
    rf"(?=.*?\b(?:machine|host|node|process)=(?P<machine>{_VALUE}))"
    rf"(?=.*?\b(?:event|type|kind)=(?P<event>{_VALUE}))"
    r"(?=.*?\b(?:lclock|clock|lamport|L)=(?P<clock>\S++))"
    rf"(?=(?:.*?\b(?:peer|to|from|dest|src)=(?P<peer>{_VALUE}))?)"
    r'(?=(?:.*?\b(?:vclock|vector|vc)=(?P<vclock>"[^"]*+"|\[[^\]]*+\]|\{[^}]*+\}|\S++))?)'
    r"(?=(?:.*?\b(?:msg_lclock|msg_clock)=(?P<msg_clock>\S++))?)"
    r"(?=(?:.*?\btick=(?P<tick>\S++))?)"
    r"(?=(?:.*?\b(?:queue_len|queue)=(?P<queue>\S++))?)"
    r"(?=(?:.*?\bdice=(?P<dice>\S++))?)"
)

# How people name a machine in a sentence: a word and its number (``machine 1``, ``Machine
# #1``, ``machine_1``, ``process-1``, ``node1``, ``VM 1``), or a letter glued to it (``M1``,
# ``m1``, ``P1``, ``VM1``, ``M-1``).
_WORD = r"(?:machine|process|proc|node|host|server|worker|replica|vm)"
_LETTER = r"(?:m|p|vm)"
_MACHINE = rf"(?:{_WORD}s?[\s#_:.-]*+|{_LETTER}[#_-]?+(?=\d++\b))"
_SEP = r"\s*+(?:,|and|&)\s*+"
TEXT = (
    r"(?i)^\W*+(?P<time>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d++)?(?:Z|[+-]\d\d:?\d\d)?"
    r"|\d\d:\d\d:\d\d(?:[.,]\d++)?|\d++(?:\.\d++)?)\W"
    rf"(?=.*?\b{_MACHINE}(?P<machine>\d++))"
    r"(?=.*?\b(?P<event>send|sends|sent|sending|receive|receives|received|receiving|recv|"
    r"internal|local)\b)"
    rf"(?=(?:.*?\b(?:to|from)\s++{_MACHINE}?+(?P<peer>\d++(?:{_SEP}{_MACHINE}?+\d++)*+))?)"
    r"(?=(?:.*?\b(?:msg|message)[ _-]?(?:l?clock|time ?stamp|ts)\W*+(?P<msg_clock>\d++))?)"
    r"(?=(?:.*?\bqueue(?:[ _-]?+(?:length|len|size))?+\s*+(?:is|=|:)?+\s*+(?P<queue>\d++))?)"
    # the last "clock N" of the line: one pass from match to match (a greedy .* backing up
    # to find the last one is quadratic in the regex module)
    r"(?=(?:.*?\b(?:clock|lamport|lclock|L)\s*+(?:is|now|=|:)?\s*+(?P<clock>\d++))++)"
)

PRESETS: dict[str, Preset] = {
    "shiviz": Preset(
        SHIVIZ,
        "the two-line ShiViz layout: a line saying what happened, then `host {vector clock}`; "
        "the first line names the event (send/receive/internal), the peer (to/from), the "
        "Lamport clock (L=...) and the time (ts=...), as `lclock export --format shiviz` "
        "writes it. A parser line and its empty delimiter line at the top are skipped.",
        'send to machine2 (dice 1) L=5 tick=3 ts=2026-01-01T00:00:00.500000Z\n'
        'machine1 {"machine1": 3, "machine3": 1}',
        header="(?<", header_lines=2),
    "logfmt": Preset(
        LOGFMT,
        "key=value pairs in any order: ts|time, machine|host|node, event|type, "
        "lclock|clock|L, peer|to|from, and optionally vclock, msg_lclock, tick, queue_len, dice",
        "ts=2026-01-01T00:00:00.5Z machine=1 event=send to=2,3 lclock=5 vclock=[3,0,1]"),
    "text": Preset(
        TEXT,
        "a sentence after the time: 'machine N', the event word, 'to/from [machine] N', the "
        "Lamport clock as the last 'clock N' (or 'L=N'), optionally 'msg clock N' and "
        "'queue length N' (or 'queue: N', 'queue size N')",
        "2026-01-01 12:00:00,500 Machine 2: received message from machine 1 "
        "(msg clock 4), logical clock 6"),
}
