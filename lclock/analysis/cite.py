"""Findings cited at the user's own lines: an imported log's line carries ``src``
("file:line" of the text log it came from, ``lclock.ingest.runwriter``), and a student reads
``machine_1.log:17``, not the generated ``machine-1.jsonl:9``.

Done once, on the closed list of findings (``lclock.analysis.check``), so every rule's
findings get it, whoever wrote the rule. The generated place is kept beside
(``log_file``/``log_line``). Only the few lines findings cite are looked up: each cited
machine log is read once, line by line, up to the last line cited, in bounded memory.
"""

from __future__ import annotations

import io
import re
from collections import defaultdict
from pathlib import Path

import orjson

from lclock.analysis.folder import MACHINE_FILE
from lclock.analysis.load import Issue
from lclock.safefile import BadFile, open_regular

_SRC = re.compile(r"^(.+):([0-9]{1,12})$", re.DOTALL)
MAX_SRC = 4096  # characters of a src read (a longer one is not a citation)
_READ = 1 << 20  # bytes of a line read; a longer line has no usable src


def parse_src(v: object) -> tuple[str, int] | None:
    """("file", line) of a ``src`` value, or None when it is not one."""
    if not isinstance(v, str) or len(v) > MAX_SRC:
        return None
    m = _SRC.match(v)
    if not m or "\n" in m.group(1) or int(m.group(2)) < 1:
        return None
    return m.group(1), int(m.group(2))


def cite_sources(run_dir: Path, findings: list[Issue]) -> None:
    """Move each finding that cites a machine log's line with a ``src`` to that place."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for f in findings:
        if f.line > 0 and MACHINE_FILE.match(f.file):
            wanted[f.file].add(f.line)
    found: dict[tuple[str, int], tuple[str, int]] = {}
    for name, lines in wanted.items():
        for line, place in _sources(run_dir / name, lines).items():
            found[(name, line)] = place
    for f in findings:
        got = found.get((f.file, f.line))
        if got is not None:
            f.log_file, f.log_line = f.file, f.line
            f.file, f.line = got
    cite_summaries(findings)


def cite_summaries(findings: list[Issue]) -> None:
    """A machine log's "... and N more findings" line names the user's log too, when the
    findings of that machine shown were all cited in one file of theirs."""
    users: dict[str, set[str]] = defaultdict(set)
    for f in findings:
        if f.log_file is not None and f.line > 0:
            users[f.log_file].add(f.file)
    for f in findings:
        mine = users.get(f.file)
        m = MACHINE_FILE.match(f.file)
        if f.line == 0 and f.log_file is None and mine and len(mine) == 1 and m:
            f.log_file, f.file = f.file, next(iter(mine))
            f.text = f.text.replace("... and ", f"... machine {m.group(1)}: and ", 1)


_PLACE = re.compile(r"\b(machine-[0-9]{1,6}\.jsonl):([0-9]{1,12})\b")


def cite_in_notes(run_dir: Path, notes: list[str]) -> list[str]:
    """The notes with each ``machine-N.jsonl:LINE`` they name at the user's own line (a
    diagnosis note's first example, SPEC 10), as the findings are."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for note in notes:
        for name, line in _PLACE.findall(note):
            wanted[name].add(int(line))
    found = {(name, line): place for name, lines in wanted.items()
             for line, place in _sources(run_dir / name, lines).items()}

    def moved(m: re.Match[str]) -> str:
        got = found.get((m.group(1), int(m.group(2))))
        return f"{got[0]}:{got[1]}" if got else m.group(0)
    return [_PLACE.sub(moved, note) for note in notes]


def numbering_note(meta: dict[str, object]) -> str | None:
    """The import's machine names and ids, when they differ: findings name machines by id
    (``receive from 2``) while the user's logs say ``Machine 1``."""
    imp = meta.get("import")
    names = imp.get("machine_names") if isinstance(imp, dict) else None
    how = imp.get("machine_numbering") if isinstance(imp, dict) else None
    if not isinstance(names, dict) or all(str(v) == k for k, v in names.items()) or (
            isinstance(how, str) and how.startswith("numbered from 1")):
        return None  # the ids are the numbers the logs use
    shown = ", ".join(f"{str(k)[:40]} -> {v}" for k, v in list(names.items())[:12])
    return (f"machine ids are the import's{f' ({how})' if isinstance(how, str) else ''}: "
            f"{shown}{' ...' if len(names) > 12 else ''}")


def left_out_note(meta: dict[str, object]) -> str | None:
    """What the import left out of the user's logs: a left-out receive makes the machine's
    next event look like a jump, so findings near such lines may come from the gap."""
    imp = meta.get("import")
    if not isinstance(imp, dict):
        return None
    count, first = _count(imp.get("unusable")), imp.get("unusable_first")
    sources = imp.get("sources")
    unmatched = sum(_count(s.get("unmatched")) for s in sources if isinstance(s, dict)) \
        if isinstance(sources, list) else 0
    said = [*([f"{unmatched} line(s) that did not match"] if unmatched else []),
            *([f"{count} line(s) that matched but could not be used" + (
                f" (the first: {str(first)[:300]})" if isinstance(first, str) else "")]
              if count else [])]
    if not said:
        return None
    return (f"the import left out {' and '.join(said)}; findings next to them may come from "
            "the gap (import with --strict to see them all)")


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _sources(path: Path, lines: set[int]) -> dict[int, tuple[str, int]]:
    """The ``src`` of the given lines of one log (those that have one)."""
    out: dict[int, tuple[str, int]] = {}
    last = max(lines)
    try:
        raw_fh = open_regular(path, path.parent)
    except (BadFile, OSError):  # an unreadable log is reported by the loader
        return out
    with io.BufferedReader(raw_fh, 1 << 16) as fh:  # type: ignore[type-var]
        for num in range(1, last + 1):
            raw = fh.readline(_READ)
            if not raw:
                break
            while len(raw) == _READ and not raw.endswith(b"\n"):  # skip an overlong line
                more = fh.readline(_READ)
                if not more or more.endswith(b"\n"):
                    raw = b""
                    break
            if num in lines and raw:
                place = _src_of(raw)
                if place is not None:
                    out[num] = place
    return out


def _src_of(raw: bytes) -> tuple[str, int] | None:
    try:
        d = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return parse_src(d.get("src")) if isinstance(d, dict) else None
