"""``lclock import LOG...``: text logs of one's own implementation -> a schema-v1 run folder.

The folder is written whole or not at all (a spare folder beside it, renamed at the end:
``lclock.ingest.outdir``), so a failed or stopped import leaves nothing behind, and
``lclock check`` / ``analyze`` / ``report`` / ``trace`` / ``hb`` work on it as on any run.
The logs are read line by line and the events spilled to disk (``lclock.ingest.runwriter``),
so memory does not grow with the size of the logs.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import math
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lclock.console import counted

MAX_SHOWN = 100_000  # problem lines kept to show, whatever --show asks (the rest are counted)

if TYPE_CHECKING:
    from lclock.ingest.presets import Preset
    from lclock.ingest.runwriter import Builder, Imported
    from lclock.ingest.textlog import Scan, Spec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lclock.ingest.presets import PRESETS

    parser.add_argument("logs", nargs="*", metavar="LOG",
                        help="text log files: one per machine, or one for all")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--regex", metavar="RX", action="append",
                     help="a regular expression with named groups (?P<machine>...), "
                          "(?P<event>...), (?P<clock>...) (the Lamport clock after the event), "
                          "(?P<peer>...), (?P<time>...); optional vclock, msg_clock, tick, queue, "
                          "dice. ShiViz's (?<name>...) works too. With \\n in it, an event spans "
                          "several lines. Without a machine group, each file's name gives it "
                          "(machine-2.log). Give it once per shape of line: a line is read by "
                          "the first that matches; any group but event and clock may be "
                          "missing from some")
    how.add_argument("--preset", choices=sorted(PRESETS), metavar="NAME",
                     help=f"a ready-made expression: {', '.join(sorted(PRESETS))} "
                          "(--list-presets shows them)")
    parser.add_argument("--event", action="append", default=[], metavar="WORD=KIND",
                        help="what a logged event word means: KIND is send, receive, internal or "
                             "skip; repeat it, or list words: --event got,recv=receive "
                             "(common words such as sent, received, local are known)")
    parser.add_argument("--date", metavar="YYYY-MM-DD",
                        help="the day of logs whose times have no date (12:00:01.5), the year of "
                             "times without one (Mar 02 17:57:01), and the start of logs whose "
                             "times count seconds from the start")
    parser.add_argument("--time-format", metavar="LAYOUT",
                        help="the layout of the times, in strptime codes (e.g. '%%b %%d "
                             "%%H:%%M:%%S', '%%d/%%m/%%Y %%H:%%M:%%S.%%f'); --date gives what it "
                             "lacks (the year, or the whole day). Default: ISO 8601, a time of "
                             "day, syslog's 'Mar 02 17:57:01', or a number of seconds")
    parser.add_argument("--output", "-o", metavar="DIR",
                        help="the run folder to write (default: output/<run id>)")
    parser.add_argument("--run-id", metavar="ID",
                        help="the run id (default: import-<folder>-<name of the first log>-<a "
                             "digest of the logs' paths>, distinct for distinct logs)")
    parser.add_argument("--strict", action="store_true",
                        help="fail (exit 1, nothing written) if any line did not match or "
                             "could not be used")
    parser.add_argument("--force", action="store_true",
                        help="replace the output folder if it holds an earlier import")
    parser.add_argument("--show", type=int, default=5, metavar="N",
                        help="lines shown of each kind of problem (default 5)")
    parser.add_argument("--regex-timeout", type=float, default=1.0, metavar="SECONDS",
                        help="the time --regex may take on one line (default 1 s, and 10 us "
                             "more per character of a long line): an expression that backtracks "
                             "exponentially is stopped, naming the line (exit 2)")
    parser.add_argument("--list-presets", action="store_true",
                        help="print the presets (expression and an example) and exit")




def _fail(msg: str) -> int:
    from lclock.errors import fail

    return fail("import", msg)


@dataclass
class _Plan:
    """What the command line asks for, checked: nothing has been read or written yet."""

    paths: list[Path]
    spec: Spec
    preset: Preset | None
    from_file: dict[Path, str | None]  # the machine a file's name gives, if the lines do not
    run_id: str
    out: Path
    date_us: int | None
    keep: int  # problems kept to show
    time_format: str | None = None
    force: bool = False


def main(args: argparse.Namespace) -> int:
    from lclock.ingest.outdir import OutputTaken, Stopped

    if args.list_presets:
        from lclock.ingest.presets import PRESETS

        _list_presets(PRESETS)
        return 0
    plan = _plan(args)
    if isinstance(plan, str):
        return _fail(plan)
    try:
        return _run(plan, args.strict, args.show)
    except BrokenPipeError:  # stdout's reader went away (`| head -1`): the command's to end
        raise
    except OSError as exc:  # the spare folder or the spill could not be made or written
        return _fail(f"cannot write {plan.out}: {exc.strerror or exc}")
    except OutputTaken as exc:  # made while the import ran: kept, nothing written
        return _fail(f"{exc}; nothing written")
    except Stopped as exc:
        from lclock.errors import prefix

        done = f"the import was written into {plan.out}" if exc.written else "nothing written"
        sys.stderr.write(f"{prefix('import')}: stopped by {exc}: {done}\n")
        return 128 + exc.signum


def _plan(args: argparse.Namespace) -> _Plan | str:
    """The checked command line, or the one line that says what is wrong with it."""
    from lclock.ingest.build import parse_date
    from lclock.ingest.outdir import output_problem
    from lclock.ingest.sources import unreadable

    problem = _arguments_problem(args)
    if problem:
        return problem
    try:
        date_us = parse_date(args.date) if args.date else None
    except ValueError as exc:
        return f"--date: {exc}"
    if args.time_format is not None:
        from lclock.ingest.build import format_problem

        problem = format_problem(args.time_format, date_us)
        if problem:
            return problem
    paths = [Path(x) for x in args.logs]
    for p in paths:
        problem = unreadable(p)
        if problem:
            return f"{p}: {problem}"
    spec = _spec(args)
    if isinstance(spec, str):
        return spec
    from_file = _machines_from_files(spec, paths)
    if isinstance(from_file, str):
        return from_file
    run_id = args.run_id or default_run_id(paths)
    if not re.fullmatch(r"[\w.-]+", run_id):
        return f"--run-id {run_id!r}: use letters, digits, '.', '_' and '-' only"
    out = Path(args.output) if args.output else Path("output") / run_id
    problem = output_problem(out, args.force)
    if problem:
        return problem
    from lclock.ingest.presets import PRESETS

    return _Plan(paths, spec, PRESETS.get(args.preset) if args.preset else None, from_file,
                 run_id, out, date_us, min(max(args.show, 1), MAX_SHOWN), args.time_format,
                 args.force)


def _arguments_problem(args: argparse.Namespace) -> str | None:
    if not args.logs:
        return "give the log file(s) to import"
    if not args.regex and not args.preset:
        return "give --regex RX or --preset NAME (lclock import --list-presets shows the presets)"
    if args.show < 0:
        return f"--show must be 0 or more (got {args.show})"
    if not (math.isfinite(args.regex_timeout) and args.regex_timeout > 0):
        return f"--regex-timeout must be a number of seconds above 0 (got {args.regex_timeout})"
    return None


def _spec(args: argparse.Namespace) -> Spec | str:
    from lclock.ingest.presets import PRESETS
    from lclock.ingest.textlog import SpecError, compile_spec, parse_words

    preset = PRESETS.get(args.preset) if args.preset else None
    try:
        words = parse_words(args.event)
        if preset:  # the presets are linear in a line's length: no time limit needed
            return compile_spec(list(preset.expressions), words, need_machine=False)
        return compile_spec(args.regex, words, need_machine=False, budget=args.regex_timeout)
    except SpecError as exc:
        return str(exc)


def _machines_from_files(spec: Spec, paths: list[Path]) -> dict[Path, str | None] | str:
    from_file: dict[Path, str | None] = {}
    for p in paths:
        if spec.has("machine"):
            from_file[p] = None
            continue
        nums = re.findall(r"\d+", p.stem)
        if not nums:
            return (f"--regex has no (?P<machine>...) group, and the name of {p} holds no "
                    "machine number (name the files machine-1.log, ... or add the group)")
        from_file[p] = nums[-1]
    return from_file


def default_run_id(paths: list[Path]) -> str:
    """``import-<folder>-<first log's name>-<8 hex digits>``: the digest is of every log's
    full path, so two students' ``machine_1.log`` (or the same names in two folders) never
    share an output folder, and importing the same logs again names the same one."""
    full = [str(p.resolve()) for p in paths]
    digest = hashlib.sha256("\0".join(full).encode("utf-8", "surrogateescape")).hexdigest()[:8]
    first = Path(full[0])
    parts = [_slug(first.parent.name), _slug(first.stem), digest]
    return "import-" + "-".join(x for x in parts if x)


def _slug(name: str) -> str:
    return re.sub(r"[^\w.-]+", "-", name).strip("-.")[:32].strip("-.")


def _run(plan: _Plan, strict: bool, show: int) -> int:
    """Read, build and write inside the spare folder; put it in place only at the end."""
    from lclock.ingest.outdir import Staging
    from lclock.ingest.runwriter import Builder, BuildError

    with Staging(plan.out, plan.force) as stage:
        builder = Builder(plan.spec, plan.run_id, plan.date_us, stage.folder, plan.keep,
                          plan.time_format)
        scans = _read_all(plan, builder)
        if isinstance(scans, str):
            return _fail(scans)
        try:
            imp = builder.finish(_sources(scans))
        except BuildError as exc:
            _report_problems(scans, *builder.problems(), show)
            return _fail(str(exc))
        unmatched = sum(s.unmatched_count for s in scans)
        if strict and (unmatched or imp.unusable_count):
            _report_problems(scans, imp.unusable, imp.unusable_count, show)
            sys.stdout.write(f"nothing written: {unmatched} line(s) did not match and "
                             f"{imp.unusable_count} could not be used (--strict)\n")
            return 1
        _write_meta(stage.folder, imp)
        stage.commit()
    _summary(plan.out, scans, imp, show)
    return 0


def _read_all(plan: _Plan, builder: Builder) -> list[Scan] | str:
    """Every log through the expression into the builder; the one line saying why not."""
    from lclock.ingest.runwriter import BuildError
    from lclock.ingest.sources import BadLog
    from lclock.ingest.textlog import TooSlow

    scans = []
    for p in plan.paths:
        try:
            scans.append(_read(plan, p, builder))
        except BadLog as exc:
            return f"{p}: {exc}"
        except (TooSlow, BuildError) as exc:
            return str(exc)
    if not any(s.matched for s in scans):
        miss = next((u for s in scans for u in s.unmatched), None)
        return ("no line of the log(s) matched the expression"
                + (f" (the first: {miss.file}:{miss.line}: "
                   + (f"{miss.text!r})" if miss.reason == "did not match" else f"{miss.reason})")
                   if miss else " (the logs are empty)"))
    return scans


def _read(plan: _Plan, p: Path, builder: Builder) -> Scan:
    from lclock.ingest.sources import MAX_LINE_BYTES, open_log, read_lines
    from lclock.ingest.textlog import Scan, scan

    s = Scan(str(p), keep=plan.keep)
    preset = plan.preset
    with open_log(p) as fh:
        lines = read_lines(fh, lambda num: s.miss(num, "", f"longer than {MAX_LINE_BYTES} "
                                                           "bytes: not read"))
        first = next(lines, "")
        skip = preset.header_lines if preset and preset.header and preset.header in first else 0
        for m in scan(plan.spec, s, itertools.chain([first] if first else [], lines), skip):
            builder.add(m, plan.from_file[p])
    return s


def _sources(scans: list[Scan]) -> list[dict[str, Any]]:
    return [{"file": str(s.file), "lines": s.lines, "matched": s.matched,
             "unmatched": s.unmatched_count} for s in scans]


def _write_meta(folder: Path, imp: Imported) -> None:
    from lclock.runfolder import write_run_json

    write_run_json(folder, imp.meta)


def _summary(out: Path, scans: list[Scan], imp: Imported, show: int) -> None:
    total = sum(s.lines for s in scans)
    sys.stdout.write(f"imported {counted(imp.events, 'event')} of {len(imp.counts)} machine(s) from "
                     f"{len(scans)} file(s) ({total} lines) into {out}\n")
    names = imp.meta["import"]["machine_names"]
    if any(str(v) != k for k, v in names.items()):
        shown = ", ".join(f"{k} -> {v}" for k, v in list(names.items())[:12])
        sys.stdout.write(f"  machines ({imp.meta['import']['machine_numbering']}): "
                         f"{shown}{' ...' if len(names) > 12 else ''}\n")
    for note in imp.notes:
        sys.stdout.write(f"  {note}\n")
    if imp.skipped:
        sys.stdout.write(f"  {imp.skipped} line(s) skipped: their event word is mapped to skip\n")
    _report_problems(scans, imp.unusable, imp.unusable_count, show)
    sys.stdout.write(f"next: lclock check {out}\n")


def _list_presets(presets: dict[str, Any]) -> None:
    for name, p in presets.items():
        sys.stdout.write(f"{name}: {p.about}\n  example:\n")
        for line in p.example.split("\n"):
            sys.stdout.write(f"    {line}\n")
        sys.stdout.write(f"  expression:\n    {p.regex}\n\n")


def _report_problems(scans: Iterable[Scan], unusable: list[Any], unusable_count: int,
                     show: int) -> None:
    unmatched = [u for s in scans for u in s.unmatched]
    count = sum(s.unmatched_count for s in scans)
    for what, items, n in (("did not match the expression", unmatched, count),
                           ("matched but could not be used", unusable, unusable_count)):
        if not n:
            continue
        sys.stdout.write(f"  {n} line(s) {what}" + (", the first:" if show else "") + "\n")
        for x in items[:show]:
            parts = [f"{x.file}:{x.line}"] + ([] if x.reason == "did not match" else [x.reason])
            parts += [repr(x.text)] if x.text else []
            sys.stdout.write(f"    {': '.join(parts)}\n")
