"""Matched events -> the machine-N.jsonl files and run.json of a run folder, in bounded memory.

Machine ids come from all the machine names of the logs, and a line's vector clock needs the
number of machines, so nothing can be written before the last line is read. Instead of
holding every event (12 times the log's size in memory), the events go to a spill file as
they are read (pass 1); pass 2 reads it back to number the machines, check the peers and
count what is derived; pass 3 writes each machine's lines, in log order, through bounded
buffers. What stays in memory: the machine names, a few flags, the first problems of each
kind, and only when some receive does not say which clock its message carried, the clocks
of the sends (8 bytes each) that pairing needs. The folder is the caller's spare folder
(``lclock.ingest.outdir``): the spill is removed, and all of it on failure.
"""

from __future__ import annotations

import os
import re
from array import array
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from lclock.analysis.folder import MAX_MACHINES
from lclock.ingest.build import _NUMBER, Names, Parsed, format_us, interpret, parse_vclock
from lclock.ingest.holes import Missing, TimeFill
from lclock.ingest.textlog import SNIPPET, Match, Problem, Spec

_ZERO = re.compile(r"(?<![\d.])0+(?![\d.])")  # the number 0 in a peer's text (machine 0)
_FLUSH = 8 << 20  # bytes of lines held for all machines before they go to their files
# Distinct machine names a log may hold: far more than the machines lclock reads, but a
# bound on the one thing kept per name (a log naming millions is no run of this model).
MAX_NAMES = 64 * MAX_MACHINES


class BuildError(Exception):
    """Nothing usable came out of the logs (the CLI prints it, exit 2)."""


@dataclass
class Kept:
    """Problems of one kind: the first ``keep`` and how many there were."""

    keep: int
    items: list[Problem] = field(default_factory=list)
    count: int = 0

    def add(self, p: Problem) -> None:
        self.count += 1
        if len(self.items) < self.keep:
            self.items.append(p)


@dataclass
class Imported:
    """What was written, and what to report."""

    run_id: str
    meta: dict[str, Any]
    unusable: list[Problem] = field(default_factory=list)  # the first ones
    unusable_count: int = 0
    skipped: int = 0
    notes: list[str] = field(default_factory=list)
    counts: dict[int, int] = field(default_factory=dict)  # lines written, per machine

    @property
    def events(self) -> int:
        return sum(self.counts.values())


class Builder:
    """Takes matches one at a time, spills them, and writes the run into ``folder``."""

    def __init__(self, spec: Spec, run_id: str, date_us: int | None, folder: Path,
                 keep: int = 1000, time_format: str | None = None) -> None:
        self.spec, self.date_us, self.folder = spec, date_us, folder
        self.time_format = time_format
        self.zero = False  # some peer is named by the number 0: machines are numbered from 0
        self.untimed = False  # some line has no time: it takes its neighbours' (pass 3)
        self.imp = Imported(run_id, {})
        self.keep = keep
        self.bad = Kept(keep)  # values that cannot be used, in log order
        self.peer_bad = Kept(keep)  # events whose machine or peers cannot be used (pass 2)
        self.writer: _Writer | None = None
        self.machines: set[str] = set()
        self.files: dict[str, int] = {}
        self.spill_path = folder / ".events.spill"
        self.spill: BinaryIO | None = open(self.spill_path, "wb")  # noqa: SIM115 - closed in finish
        self.spilled = 0
        self.pairing = False  # some receive does not say the clock its message carried
        self.from_1970 = False  # times counted from the start, dated 1970 for want of --date

    def add(self, m: Match, machine_from_file: str | None) -> None:
        p = interpret(self.spec, m, machine_from_file, self.date_us, self.time_format)
        if p is None:
            self.imp.skipped += 1
        elif isinstance(p, str):
            self.bad.add(Problem(m.file, m.line, m.text[:SNIPPET], p))
        else:
            self._spill(p)
            if (self.date_us is None and not self.from_1970 and p.us is not None
                    and p.us < 10**8 * 1_000_000):
                self.from_1970 = bool(_NUMBER.match((m.values.get("time") or "").strip()))

    def _spill(self, p: Parsed) -> None:
        assert self.spill is not None
        self.machines.add(p.machine)
        if len(self.machines) > MAX_NAMES:
            raise BuildError(f"{p.file}:{p.line}: more than {MAX_NAMES} machine names (the "
                             f"last {p.machine[:40]!r}): lclock reads at most {MAX_MACHINES} "
                             "machines; is the machine group capturing the right thing?")
        self.pairing = self.pairing or (p.kind == "receive" and p.msg_clock is None)
        self.untimed = self.untimed or p.us is None
        if p.peer is not None and not self.zero and _ZERO.search(p.peer):
            self.zero = True
        f = self.files.setdefault(p.file, len(self.files))
        self.spill.write(orjson.dumps([f, p.line, p.machine, p.kind, p.clock, p.peer, p.us,
                                       p.vclock, p.msg_clock, p.tick, p.queue, p.dice],
                                      option=orjson.OPT_APPEND_NEWLINE))
        self.spilled += 1

    def _events(self) -> Iterator[Parsed]:
        """The spilled events again, in log order."""
        files = list(self.files)
        with open(self.spill_path, "rb") as fh:
            for raw in fh:
                r = orjson.loads(raw)
                yield Parsed(files[r[0]], *r[1:])

    def finish(self, sources: list[dict[str, Any]]) -> Imported:
        """Number the machines, check the peers, derive what can be derived, write the lines."""
        assert self.spill is not None
        self.spill.close()
        self.spill = None
        imp = self.imp
        names = Names(self.machines, self.zero)
        survey = self._survey(names)
        w = self.writer = _Writer(imp, names, survey, self.folder, self.keep)
        w.write(self._events())
        os.unlink(self.spill_path)
        imp.unusable, imp.unusable_count = self.problems()
        if not imp.events:
            raise self._nothing_usable()
        if self.from_1970:
            imp.notes.append("the times count seconds from the start: dated from 1970-01-01 "
                             "(give --date YYYY-MM-DD for the real day)")
        _meta(imp, self.spec, names, (self.date_us, self.time_format), sources, w)
        return imp

    def problems(self) -> tuple[list[Problem], int]:
        """The first lines that could not be used (in the order they were found) and how many."""
        w = self.writer
        items = [*self.bad.items, *self.peer_bad.items, *(w.problems() if w else [])]
        count = self.bad.count + self.peer_bad.count + (w.problem_count() if w else 0)
        return items[:self.keep], count

    def _survey(self, names: Names) -> _Survey:
        """Pass 2: which events can be used, the number of machines, the sends per channel."""
        s = _Survey()
        peers = PeerIds(names)
        for p in self._events():
            ids, why = peers(p)
            if ids is None:
                self.peer_bad.add(Problem(p.file, p.line, "", why or ""))
                continue
            mid = names.ids[p.machine]
            s.n = max(s.n, mid, *ids)
            s.machines.add(mid)
            s.vector = s.vector and p.vclock is not None
            s.derived_tick = s.derived_tick or p.tick is None
            if p.kind == "send" and not ids:
                s.blind.add(mid)
            if self.pairing and p.kind == "send":
                for j in ids:
                    s.channel[(mid, j)].append(p.clock)
            if self.untimed:
                s.timed(mid, p.us)
        if not s.machines:
            raise self._nothing_usable()
        return s

    def _nothing_usable(self) -> BuildError:
        """The one error when no line could be used, naming the first line and its reason
        (a yearless time says which flag it needs)."""
        items = self.problems()[0]
        first = items[0] if items else None
        return BuildError("no usable event in the logs: nothing imported" + (
            f" (the first: {first.file}:{first.line}: {first.reason})" if first else ""))


@dataclass
class _Survey:
    n: int = 0
    machines: set[int] = field(default_factory=set)
    vector: bool = True
    derived_tick: bool = False
    blind: set[int] = field(default_factory=set)  # machines with a send that names no recipient
    # per machine, when some line has no time: the index of each timed event and its time
    seen: defaultdict[int, int] = field(default_factory=lambda: defaultdict(int))
    at: defaultdict[int, array[int]] = field(default_factory=lambda: defaultdict(lambda: array("q")))
    us: defaultdict[int, array[int]] = field(default_factory=lambda: defaultdict(lambda: array("q")))

    def timed(self, mid: int, us: int | None) -> None:
        k = self.seen[mid]
        self.seen[mid] = k + 1
        if us is not None:
            self.at[mid].append(k)
            self.us[mid].append(us)
    # the clocks of the sends on each channel in log order (only when receives need them)
    channel: defaultdict[tuple[int, int], array[int]] = field(
        default_factory=lambda: defaultdict(lambda: array("q")))


class PeerIds:
    """``peer_ids`` remembered: the same few (machine, kind, peer) come back on every line."""

    def __init__(self, names: Names) -> None:
        self.names = names
        self.seen: dict[tuple[str, str, str | None], tuple[list[int] | None, str | None]] = {}

    def __call__(self, p: Parsed) -> tuple[list[int] | None, str | None]:
        key = (p.machine, p.kind, p.peer)
        got = self.seen.get(key)
        if got is None:
            if len(self.seen) >= 4096:
                self.seen.clear()
            got = self.seen[key] = peer_ids(p, self.names)
        return got


def peer_ids(p: Parsed, names: Names) -> tuple[list[int] | None, str | None]:
    """The peers of an event ([] for an internal one), or None and why it cannot be used."""
    me = names.ids[p.machine]
    if not 1 <= me <= MAX_MACHINES:
        shown = me if me < 10**18 else "(too large)"
        return None, (f"machine {p.machine[:40]!r} is machine id {shown}: lclock reads machine "
                      f"ids 1 to {MAX_MACHINES}")
    if p.kind == "internal":
        return [], None
    if p.peer is None:  # not said: imported without it (check says what it cannot match)
        return [], None
    peer = p.peer
    ids = names.peers(peer)
    why = None
    if ids is not None and any(x > MAX_MACHINES for x in ids):
        top = max(ids) if max(ids) < 10**18 else "(too large)"
        why = f"peer {peer[:40]!r} names machine {top}: lclock reads machine ids 1 to {MAX_MACHINES}"
    elif ids is None or any(x < 1 for x in ids):
        why = f"peer {p.peer if p.peer is None else p.peer[:40]!r} names no machine of this log"
    elif me in ids:
        why = f"machine {p.machine[:40]} names itself as its peer ({peer[:40]!r})"
    elif p.kind == "receive" and len(ids) != 1:
        why = f"a receive names {len(ids)} senders ({peer[:40]!r})"
    return (None, why) if why else (ids, None)


class _Writer:
    """Pass 3: each machine's events in log order as schema-v1 lines, into its file."""

    def __init__(self, imp: Imported, names: Names, survey: _Survey, folder: Path,
                 keep: int) -> None:
        self.imp, self.names, self.n = imp, names, survey.n
        self.survey, self.folder, self.keep = survey, folder, keep
        self.vector = survey.vector
        self.derived_msg = 0
        self.first_us: int | None = None
        self.last_us: int | None = None
        self.has_queue = self.has_dice = True
        self.queue_lines = self.lines = 0  # a queue length on receives only is still kept
        self.last: dict[int, tuple[int, int]] = {}
        self.tick: dict[int, int] = {}
        self.taken: defaultdict[tuple[int, int], int] = defaultdict(int)
        self.bad: dict[int, Kept] = {}  # problems per machine: reported in machine order
        self.buffers: dict[int, bytearray] = {}
        self.buffered = 0
        self.times = TimeFill(survey.at, survey.us)
        self.missing = Missing()

    def problems(self) -> list[Problem]:
        return [p for mid in sorted(self.bad) for p in self.bad[mid].items]

    def problem_count(self) -> int:
        return sum(k.count for k in self.bad.values())

    def write(self, events: Iterator[Parsed]) -> None:
        imp, names = self.imp, self.names
        for mid in sorted(self.survey.machines):
            imp.counts[mid] = 0
            self.buffers[mid] = bytearray()
            (self.folder / f"machine-{mid}.jsonl").touch()
        peers = PeerIds(names)
        for p in events:
            ids, _ = peers(p)
            if ids is not None:
                self._event(p, names.ids[p.machine], ids)
        self._flush()
        derived_tick = self.survey.derived_tick
        if derived_tick:
            imp.notes.append("tick numbers counted 1, 2, 3, ... per machine in log order (the log "
                             "has none)")
        if self.derived_msg:
            imp.notes.append(f"the clock carried by {self.derived_msg} message(s) was taken from the "
                             "k-th send on its channel for the k-th receive (the log does not say "
                             "it): a wrong clock in a message cannot be seen; log it (group "
                             "msg_clock) to have it checked")
        self.derived = [x for x, on in (("tick", derived_tick), ("msg_lclock", self.derived_msg),
                                         ("ts", self.missing.any("time"))) if on]
        imp.notes.extend(self.missing.lines())

    def _event(self, p: Parsed, mid: int, peers: list[int]) -> None:
        tick = p.tick if p.tick is not None else self.tick.get(mid, 0) + 1
        self.tick[mid] = tick
        us, how = self.times.fill(mid, p.us)
        if us is None:
            self._unusable(p, mid, f"no time, and machine {mid} has no line with a time to "
                                   "take it from")
            return
        d = self._line(p, mid, tick, peers, us)
        if d is not None and how is not None:
            d["ts_derived"] = how
            self.missing.add(p.file, "time")
        if d is None:
            return
        line = orjson.dumps(d, option=orjson.OPT_APPEND_NEWLINE)
        self.buffers[mid] += line
        self.buffered += len(line)
        self.imp.counts[mid] += 1
        self.last[mid] = (tick, p.clock)
        if self.buffered > _FLUSH:
            self._flush()

    def _flush(self) -> None:
        for mid, buf in self.buffers.items():
            if buf:
                with open(self.folder / f"machine-{mid}.jsonl", "ab") as fh:
                    fh.write(buf)
                buf.clear()
        self.buffered = 0

    def _unusable(self, p: Parsed, mid: int, why: str) -> None:
        self.bad.setdefault(mid, Kept(self.keep)).add(Problem(p.file, p.line, "", why))

    def _line(self, p: Parsed, mid: int, tick: int, peers: list[int], us: int
              ) -> dict[str, Any] | None:
        d: dict[str, Any] = {"ts": format_us(us), "event": p.kind, "level": "info",
                             "run_id": self.imp.run_id, "machine": mid, "tick": tick,
                             "lclock": p.clock}
        self.lines += 1
        if p.queue is not None:
            d["queue_len"] = p.queue
            self.queue_lines += 1
        else:
            self.has_queue = False
        if self.vector and p.vclock is not None:
            try:
                d["vclock"] = parse_vclock(p.vclock, self.names, self.n)
            except ValueError as exc:
                self._unusable(p, mid, str(exc))
                return None
        if p.kind != "receive":
            if p.dice is not None:
                d["dice"] = p.dice
            else:
                self.has_dice = False
        if p.kind == "send":
            if peers:
                d["to"] = peers
            else:
                self.missing.add(p.file, "recipients")
        elif p.kind == "receive" and not self._receive(d, p, mid, peers):
            return None
        d["src"] = f"{p.file}:{p.line}"
        self.first_us = us if self.first_us is None else min(self.first_us, us)
        self.last_us = us if self.last_us is None else max(self.last_us, us)
        return d

    def _receive(self, d: dict[str, Any], p: Parsed, mid: int, peers: list[int]) -> bool:
        """A receive's sender and message clock, as far as the log says them (False: the
        line cannot be used)."""
        if peers:
            d["from"] = peers[0]
        else:
            self.missing.add(p.file, "sender")
        if p.msg_clock is None and (not peers or peers[0] in self.survey.blind):
            self.missing.add(p.file, "msg_clock")  # no channel order to take it from
            return True
        msg = self._carried(p, mid, peers[0]) if peers else p.msg_clock
        if msg is None:
            return False
        d["msg_lclock"] = msg
        return True

    def _carried(self, p: Parsed, mid: int, s: int) -> int | None:
        """The clock the received message carried: logged, or the k-th send's on the channel."""
        msg = p.msg_clock
        if msg is None:
            sent = self.survey.channel.get((s, mid), array("q"))
            k = self.taken[(s, mid)]
            if k >= len(sent):
                self._unusable(p, mid, f"receive number {k + 1} from machine {s}, but machine "
                               f"{s} logged only {len(sent)} send(s) to {mid} (and the log does "
                               "not say which clock the message carried)")
                return None
            msg = sent[k]
            self.derived_msg += 1
        self.taken[(s, mid)] += 1
        return msg


def _not_logged_note(imp: Imported, not_logged: list[str], w: _Writer) -> None:
    """What check will skip; a queue length logged on some lines (receives, as the classic
    assignment asks) is kept on them, so it is not said to be absent."""
    absent = [k for k in not_logged if k != "queue_len" or not w.queue_lines]
    if absent:
        imp.notes.append(f"not in the logs, so left out (check skips the rules about them): "
                         f"{', '.join(absent)}; start and stop lines")
    else:
        imp.notes.append("not in the logs: start and stop lines (check skips conservation)")
    if "queue_len" in not_logged and w.queue_lines:
        imp.notes.append(f"queue_len: on some lines only ({w.queue_lines} of {w.lines}), kept "
                         "there; check skips the rules that need it on every line")


def _meta(imp: Imported, spec: Spec, names: Names, when: tuple[int | None, str | None],
          sources: list[dict[str, Any]], w: _Writer) -> None:
    from lclock import __version__

    date_us, time_format = when
    not_logged = [k for k, has in (("queue_len", w.has_queue), ("dice", w.has_dice)) if not has]
    holes = [k for k, kind in (("to", "recipients"), ("from", "sender"),
                               ("msg_lclock", "msg_clock")) if w.missing.any(kind)]
    _not_logged_note(imp, not_logged, w)
    imp.meta.update({
        "schema": 1,
        "run_id": imp.run_id,
        "mode": "import",
        "started_at": format_us(w.first_us) if w.first_us is not None else None,
        "ended_at": format_us(w.last_us) if w.last_us is not None else None,
        "machines": [{"id": mid, "ticks": t, "lclock": c} for mid, (t, c) in sorted(w.last.items())],
        "settings": {"machines": w.n, "vector_clocks": w.vector},
        "not_logged": [*not_logged, *holes, "start", "stop"],
        "import": {
            "sources": sources,
            "regex": spec.source,
            **({"regexes": spec.sources} if len(spec.sources) > 1 else {}),
            "time_format": time_format,
            "event_words": dict(sorted(spec.words.items())),
            "machine_names": names.mapping(),
            "machine_numbering": names.numbering(),
            "missing": w.missing.as_json(),
            # lines that matched but were left out: check says so, as its findings near
            # them may come from the gap (a receive left out makes the next event jump)
            "unusable": imp.unusable_count,
            "unusable_first": (f"{imp.unusable[0].file}:{imp.unusable[0].line}: "
                               f"{imp.unusable[0].reason}"[:300] if imp.unusable else None),
            "derived": w.derived,
            "date": format_us(date_us)[:10] if date_us is not None else None,
            "lclock_version": __version__,
        },
    })
