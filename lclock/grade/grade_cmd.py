"""``lclock grade SUBMISSIONS_DIR``: the class graded, one folder of results per submission.

One submission at a time (``--jobs 1``), ``--jobs N`` of them at once (threads: each submission's work is
in lclock subprocesses), or on a Dask cluster (``--cluster``, as experiments): each worker
returns the submission's files as bytes and this process writes them, so the grades are the
same bytes however they were computed. A submission is written last by its ``grade.json``
(atomically): ``--resume`` takes every folder that has one as graded.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from lclock import errors
from lclock.errors import BadInput
from lclock.grade.battery import stop_all
from lclock.grade.grade_one import Graded, grade_one
from lclock.grade.lanes import Lanes
from lclock.grade.report import class_page
from lclock.grade.rubric import Rubric, load_rubric
from lclock.grade.workspace import sweep

DONE = "grade.json"
RUBRIC_COPY = "rubric.toml"
#: The grader's own files in --output: no submission's folder of results may take their name.
CLASS_FILES = (RUBRIC_COPY, "grades.csv", "summary.html")
MAX_JOBS = 64


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("submissions", metavar="SUBMISSIONS_DIR",
                        help="a folder with one folder per submission, each with its lclock.toml")
    parser.add_argument("--rubric", metavar="RUBRIC.toml",
                        help="points per battery item, rule and bug (default: the one that ships)")
    parser.add_argument("--output", metavar="DIR",
                        help="where to write the grades (default output/grade-<folder name>)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=int, metavar="N", default=None,
                       help="submissions computing at once on this machine, and as many again "
                            "waiting on the clock (default: one more than the cores; 1: one "
                            "at a time)")
    where.add_argument("--cluster", metavar="tcp://HOST:PORT",
                       help="grade on a Dask cluster (its workers need the same lclock)")
    parser.add_argument("--resume", action="store_true",
                        help="grade only the submissions not graded yet in --output")
    parser.add_argument("--quiet", action="store_true", help="print nothing while grading")


def main(args: argparse.Namespace) -> int:
    root = Path(args.submissions)
    if not root.is_dir():
        raise BadInput(f"SUBMISSIONS_DIR: {root} is not a folder")
    if args.jobs is None:
        args.jobs = default_jobs()
    if not 1 <= args.jobs <= MAX_JOBS:
        raise BadInput(f"--jobs: expected a whole number from 1 to {MAX_JOBS}")
    rubric = load_rubric(Path(args.rubric) if args.rubric else None)
    out = Path(args.output) if args.output else Path("output") / f"grade-{root.resolve().name}"
    folders, skipped = submissions(root)
    _not_too_many(folders)
    folders = _not_the_grader_s(root, out, folders, skipped)
    client = _cluster(args.cluster)
    try:
        return _grade(args, out, rubric, folders, skipped, client)
    finally:
        if client is not None:
            client.close()


def _cluster(address: str | None) -> Any:
    """The cluster's client, asked before anything is written (None: grade here)."""
    if address is None:
        return None
    from lclock.grade.on_cluster import cluster_client

    return cluster_client(address)


def _grade(args: argparse.Namespace, out: Path, rubric: Rubric, folders: list[Path],
           skipped: list[str], client: Any) -> int:
    root = Path(args.submissions)
    _prepare_output(out, rubric, args.resume)
    sweep(Path(tempfile.gettempdir()))
    todo = [(i, f) for i, f in enumerate(folders) if not (args.resume and (out / f.name / DONE).is_file())]
    say = _quiet if args.quiet else _say
    say(f"grading {len(todo)} of {len(folders)} submission(s) into {out}")
    for line in skipped:
        say(line)
    progress = Progress(len(todo), say)
    hide = (str(root.resolve()), str(out.resolve()))
    try:
        for graded in _graded(todo, rubric, args, hide, client):
            write_submission(out, graded)
            progress.done(graded)
    except BaseException:  # Ctrl-C, a stop signal: what is graded stays, nothing runs on
        stop_all()
        print(f"lclock grade: stopped: {progress.count} of {len(todo)} submission(s) graded "
              f"into {out}; the others with --resume", file=sys.stderr, flush=True)
        raise
    rows = write_class(out, folders)
    say(f"grades: {out / 'grades.csv'} ({len(rows)} submission(s)); summary: {out / 'summary.html'}")
    return 0


def _not_too_many(folders: list[Path]) -> None:
    """A class larger than a grading's block of uids would give two submissions one user
    (each could read the other's copy): refused before anything runs."""
    from lclock.grade import workspace

    if len(folders) > workspace.BLOCK:
        raise BadInput(f"SUBMISSIONS_DIR: {len(folders):,} submissions; lclock grade takes at "
                       f"most {workspace.BLOCK:,} at once (a user of its own each): grade "
                       "the class in parts")


def default_jobs() -> int:
    """One more than the cores: a battery's lclock waits on its programs' pipes part of the
    time, so one lane more than the cores keeps them busy (bench/bench_grade.py)."""
    return min(MAX_JOBS, (os.cpu_count() or 1) + 1)


def _say(line: str) -> None:
    print(line, flush=True)


def _quiet(_line: str) -> None:
    pass


def submissions(root: Path) -> tuple[list[Path], list[str]]:
    """The class: every folder in ``root`` (not hidden, not a symlink), by name; and a line
    for each entry left out, so that none is left out silently."""
    try:
        entries = sorted(root.iterdir(), key=lambda p: p.name)
    except OSError as e:
        raise BadInput(f"SUBMISSIONS_DIR: cannot list {root}: {e.strerror}") from None
    kept, skipped = [], []
    for p in entries:
        if p.name.startswith("."):  # .git and the like; a hidden folder is said all the same
            if p.is_dir() and not p.is_symlink():
                skipped.append(f"left out {errors.shown(p.name)}: a hidden folder, not a submission")
            continue
        if p.is_symlink() or not p.is_dir():
            what = "a symlink" if p.is_symlink() else "not a folder"
            skipped.append(f"left out {errors.shown(p.name)}: {what}, not a submission")
        else:
            kept.append(p)
    return kept, skipped


def _not_the_grader_s(root: Path, out: Path, folders: list[Path], skipped: list[str]) -> list[Path]:
    """The submissions, less a folder that holds the grades (``lclock grade .`` in the
    class folder) or is named as a file of the gradebook (``grades.csv``); BadInput when
    the class holds the temporary folder, where the copies run (their programs could not
    see their own copies: the class is hidden from them)."""
    tmp = Path(tempfile.gettempdir()).resolve()
    whole = root.resolve()
    if tmp == whole or whole in tmp.parents:
        raise BadInput(f"SUBMISSIONS_DIR: {root} holds the temporary folder {tmp}, where the "
                       "submissions run: give a folder of submissions only")
    grades = out.resolve()
    kept = []
    for f in folders:
        if f.resolve() == grades or f.resolve() in grades.parents:
            skipped.append(f"left out {errors.shown(f.name)}: it holds the grades (--output)")
        elif f.name in CLASS_FILES:  # its results would be written over the gradebook's
            skipped.append(f"left out {errors.shown(f.name)}: the name of a file of the "
                           "gradebook; rename the folder to grade it")
        else:
            kept.append(f)
    return kept


def _prepare_output(out: Path, rubric: Rubric, resume: bool) -> None:
    """The output folder, private to the grader; an earlier grading only with --resume, and
    only with the same rubric (grades of two rubrics in one gradebook would not compare)."""
    kept = out / RUBRIC_COPY
    if out.exists() and any(out.iterdir()):
        if not resume:
            raise BadInput(f"--output: {out} is not empty (give --resume to go on with it, "
                           "or another folder)")
        if not kept.is_file() or kept.read_text("utf-8") != rubric.text:
            raise BadInput(f"--resume: {out} was graded with another rubric (or is not a grading)")
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o700)  # no submission's user can read or change the grades
    kept.write_text(rubric.text, "utf-8")


def _graded(todo: list[tuple[int, Path]], rubric: Rubric, args: argparse.Namespace,
            hide: tuple[str, ...], client: Any = None) -> Iterator[Graded]:
    if client is not None:
        from lclock.grade.on_cluster import grade_on_cluster

        yield from grade_on_cluster(client, todo, rubric)
        return
    if args.jobs == 1:
        for index, folder in todo:
            yield grade_one(folder, index, rubric, hide)
        return
    # N submissions on the CPU, and as many again waiting on the clock (lclock.grade.lanes)
    lanes = Lanes(args.jobs)
    with ThreadPoolExecutor(max_workers=2 * args.jobs) as pool:
        futures = [pool.submit(grade_one, folder, index, rubric, hide, lanes)
                   for index, folder in todo]
        try:
            for fut in as_completed(futures):
                yield fut.result()
        except BaseException:  # before the pool's exit waits for its threads
            stop_all()
            raise
        finally:
            for fut in futures:
                fut.cancel()


def write_submission(out: Path, g: Graded) -> None:
    """The submission's files, then its grade.json last, atomically: the mark of done."""
    folder = out / g.name
    folder.mkdir(exist_ok=True)
    for name, data in sorted(g.files.items()):
        (folder / name).write_bytes(data)
    tmp = folder / (DONE + ".tmp")
    tmp.write_text(json.dumps(g.row(), sort_keys=True) + "\n", "utf-8")
    os.replace(tmp, folder / DONE)


def write_class(out: Path, folders: list[Path]) -> list[dict[str, Any]]:
    """grades.csv and summary.html from every graded submission's grade.json."""
    rows = []
    for f in folders:
        done = out / f.name / DONE
        if done.is_file():
            rows.append(json.loads(done.read_text("utf-8")))
    buf = io.StringIO()
    w = csv.DictWriter(buf, ["submission", "score", "max_score", "status", "bugs"], lineterminator="\n")
    w.writeheader()
    w.writerows([{k: spreadsheet_safe(v) for k, v in r.items()} for r in rows])
    (out / "grades.csv").write_text(buf.getvalue(), "utf-8")
    (out / "summary.html").write_text(class_page(rows), "utf-8")
    return rows


def spreadsheet_safe(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (a submission's folder named
    ``=HYPERLINK(...)``) starts with a quote, as OWASP advises for CSV; numbers stay numbers."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


class Progress:
    """One line per graded submission, with an estimate of the time left."""

    def __init__(self, total: int, say: Callable[[str], None], clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.say, self.clock = total, say, clock
        self.start = clock()
        self.count = 0

    def done(self, g: Graded) -> None:
        self.count += 1
        elapsed = self.clock() - self.start
        left = elapsed / self.count * (self.total - self.count)
        name = g.name if g.name.isprintable() else repr(g.name)  # one line, no escapes
        self.say(f"[{self.count}/{self.total}] {name}: {g.row()['score']}/{g.row()['max_score']} "
                 f"({g.status}){'; about ' + _duration(left) + ' left' if self.count < self.total else ''}")


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


