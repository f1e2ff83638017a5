"""``lclock import LOG...``: text logs of one's own implementation -> a schema-v1 run folder.

The folder is written whole or not at all (a spare folder beside it, renamed at the end),
so a failed import leaves nothing behind, and ``lclock check`` / ``analyze`` / ``report`` /
``trace`` / ``hb`` work on it as on any run.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

MAX_LOG_BYTES = 2 << 30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lclock.ingest.presets import PRESETS

    parser.add_argument("logs", nargs="*", metavar="LOG",
                        help="text log files: one per machine, or one for all")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--regex", metavar="RX",
                     help="a regular expression with named groups (?P<machine>...), "
                          "(?P<event>...), (?P<clock>...) (the Lamport clock after the event), "
                          "(?P<peer>...), (?P<time>...); optional vclock, msg_clock, tick, queue, "
                          "dice. ShiViz's (?<name>...) works too. With \\n in it, an event spans "
                          "several lines. Without a machine group, each file's name gives it "
                          "(machine-2.log)")
    how.add_argument("--preset", choices=sorted(PRESETS), metavar="NAME",
                     help=f"a ready-made expression: {', '.join(sorted(PRESETS))} "
                          "(--list-presets shows them)")
    parser.add_argument("--event", action="append", default=[], metavar="WORD=KIND",
                        help="what a logged event word means: KIND is send, receive, internal or "
                             "skip; repeat it, or list words: --event got,recv=receive "
                             "(common words such as sent, received, local are known)")
    parser.add_argument("--date", metavar="YYYY-MM-DD",
                        help="the day of logs whose times have no date (12:00:01.5), and the start "
                             "of logs whose times count seconds from the start")
    parser.add_argument("--output", "-o", metavar="DIR",
                        help="the run folder to write (default: output/<run id>)")
    parser.add_argument("--run-id", metavar="ID",
                        help="the run id (default: import-<name of the first log>)")
    parser.add_argument("--strict", action="store_true",
                        help="fail (exit 1, nothing written) if any line did not match or "
                             "could not be used")
    parser.add_argument("--force", action="store_true",
                        help="replace the output folder if it holds an earlier import")
    parser.add_argument("--show", type=int, default=5, metavar="N",
                        help="lines shown of each kind of problem (default 5)")
    parser.add_argument("--list-presets", action="store_true",
                        help="print the presets (expression and an example) and exit")


def _fail(msg: str) -> int:
    from lclock.errors import fail

    return fail("import", msg)


def main(args: argparse.Namespace) -> int:
    from lclock.ingest.build import Builder, BuildError, parse_date
    from lclock.ingest.presets import PRESETS
    from lclock.ingest.textlog import Scan, SpecError, compile_spec, parse_words, scan

    if args.list_presets:
        _list_presets(PRESETS)
        return 0
    if not args.logs:
        return _fail("give the log file(s) to import")
    if not args.regex and not args.preset:
        return _fail("give --regex RX or --preset NAME (lclock import --list-presets shows the "
                     "presets)")
    if args.show < 0:
        return _fail(f"--show must be 0 or more (got {args.show})")
    preset = PRESETS.get(args.preset) if args.preset else None
    regex = preset.regex if preset else args.regex
    try:
        date_us = parse_date(args.date) if args.date else None
    except ValueError as exc:
        return _fail(f"--date: {exc}")
    paths = [Path(x) for x in args.logs]
    for p in paths:
        problem = _unreadable(p)
        if problem:
            return _fail(f"{p}: {problem}")
    try:
        words = parse_words(args.event)
        spec = compile_spec(regex, words, need_machine=False)
    except SpecError as exc:
        return _fail(str(exc))
    from_file: dict[Path, str | None] = {}
    for p in paths:
        if spec.has("machine"):
            from_file[p] = None
            continue
        nums = re.findall(r"\d+", p.stem)
        if not nums:
            return _fail(f"--regex has no (?P<machine>...) group, and the name of {p} holds no "
                         "machine number (name the files machine-1.log, ... or add the group)")
        from_file[p] = nums[-1]
    run_id = args.run_id or "import-" + re.sub(r"[^\w.-]+", "-", paths[0].stem).strip("-")
    if not re.fullmatch(r"[\w.-]+", run_id):
        return _fail(f"--run-id {run_id!r}: use letters, digits, '.', '_' and '-' only")
    out = Path(args.output) if args.output else Path("output") / run_id
    problem = _output_problem(out, args.force)
    if problem:
        return _fail(problem)
    builder = Builder(spec, run_id, date_us)
    scans = []
    for p in paths:
        with open(p, "rb") as fh:  # only \n ends a line; bad UTF-8 is replaced, not fatal
            lines = (raw.decode("utf-8", errors="replace") for raw in fh)
            first = next(lines, "")
            skip = preset.header_lines if preset and preset.header and preset.header in first else 0
            s = Scan(str(p))
            for m in scan(spec, s, itertools.chain([first] if first else [], lines), skip):
                builder.add(m, from_file[p])
        scans.append(s)
    if not any(s.matched for s in scans):
        miss = next((u for s in scans for u in s.unmatched), None)
        return _fail("no line of the log(s) matched the expression"
                     + (f" (the first: {miss.file}:{miss.line}: {miss.text!r})" if miss else
                        " (the logs are empty)"))
    sources = [{"file": str(s.file), "lines": s.lines, "matched": s.matched,
                "unmatched": len(s.unmatched)} for s in scans]
    try:
        imp = builder.finish(sources)
    except BuildError as exc:
        _report_problems(scans, builder.imp.unusable, args.show)
        return _fail(str(exc))
    unmatched = sum(len(s.unmatched) for s in scans)
    bad = len(imp.unusable)
    if args.strict and (unmatched or bad):
        _report_problems(scans, imp.unusable, args.show)
        sys.stdout.write(f"nothing written: {unmatched} line(s) did not match and {bad} could not "
                         "be used (--strict)\n")
        return 1
    try:
        _write(out, imp)
    except OSError as exc:
        return _fail(f"cannot write {out}: {exc.strerror or exc}")
    total = sum(s.lines for s in scans)
    sys.stdout.write(f"imported {imp.events} events of {len(imp.lines)} machine(s) from "
                     f"{len(scans)} file(s) ({total} lines) into {out}\n")
    names = imp.meta["import"]["machine_names"]
    if any(str(v) != k for k, v in names.items()):
        shown = ", ".join(f"{k} -> {v}" for k, v in list(names.items())[:12])
        sys.stdout.write(f"  machines: {shown}{' ...' if len(names) > 12 else ''}\n")
    for note in imp.notes:
        sys.stdout.write(f"  {note}\n")
    if imp.skipped:
        sys.stdout.write(f"  {imp.skipped} line(s) skipped: their event word is mapped to skip\n")
    _report_problems(scans, imp.unusable, args.show)
    sys.stdout.write(f"next: lclock check {out}\n")
    return 0


def _list_presets(presets: dict[str, Any]) -> None:
    for name, p in presets.items():
        sys.stdout.write(f"{name}: {p.about}\n  example:\n")
        for line in p.example.split("\n"):
            sys.stdout.write(f"    {line}\n")
        sys.stdout.write(f"  expression:\n    {p.regex}\n\n")


def _report_problems(scans: list[Any], unusable: list[Any], show: int) -> None:
    unmatched = [u for s in scans for u in s.unmatched]
    for what, items in (("did not match the expression", unmatched),
                        ("matched but could not be used", unusable)):
        if not items:
            continue
        sys.stdout.write(f"  {len(items)} line(s) {what}" + (", the first:" if show else "") + "\n")
        for x in items[:show]:
            parts = [f"{x.file}:{x.line}"] + ([] if x.reason == "did not match" else [x.reason])
            parts += [repr(x.text)] if x.text else []
            sys.stdout.write(f"    {': '.join(parts)}\n")


def _unreadable(p: Path) -> str | None:
    """Why a log cannot be read, checked before opening it (a FIFO would block for ever)."""
    try:
        st = p.stat()
    except FileNotFoundError:
        return "no such file"
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    if stat.S_ISDIR(st.st_mode):
        return "a folder, not a log file"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_size > MAX_LOG_BYTES:
        return f"{st.st_size} bytes: larger than lclock import reads ({MAX_LOG_BYTES} bytes)"
    if not os.access(p, os.R_OK):
        return "not readable"
    return None


def _output_problem(out: Path, force: bool) -> str | None:
    if not out.exists():
        return None
    if not out.is_dir():
        return f"--output {out}: exists and is not a folder"
    if not any(out.iterdir()):
        return None
    if force and _is_import(out):
        return None
    why = " (--force replaces only an earlier import)" if force else \
        " (choose another --output, or --force to replace an earlier import)"
    return f"--output {out}: already exists and is not empty{why}"


def _is_import(folder: Path) -> bool:
    import orjson

    try:
        meta = orjson.loads((folder / "run.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return False
    return isinstance(meta, dict) and meta.get("mode") == "import"


def _write(out: Path, imp: Any) -> None:
    """Write into a spare folder beside ``out``, then put it in place: all or nothing."""
    import orjson

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for mid in imp.lines:
            (tmp / f"machine-{mid}.jsonl").write_bytes(imp.machine_bytes(mid))
        (tmp / "run.json").write_bytes(orjson.dumps(imp.meta, option=orjson.OPT_INDENT_2
                                                    | orjson.OPT_APPEND_NEWLINE))
        os.chmod(tmp, 0o755)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            if old.exists():
                shutil.rmtree(old)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

