#!/usr/bin/env python3
"""Benchmark of ``lclock grade`` on a class of generated submissions (SPEC 11).

    python bench/bench_grade.py [--count 100] [--jobs N] [--rubric R] [--no-class]

Issue 21's goal: 100 submissions (programs and folders of logs, some hostile) within 10
minutes on a 2-core machine. The class, in a repeating mix of 18: correct programs (Python,
and one each in C, built by the submission's ``build`` line, and JavaScript for node),
Python programs with one of three classic bugs, folders of logfmt logs (correct and buggy),
and hostile programs (a hang, a crash, a fork bomb, a flood, a full disk, an intruder, an
orphan, in turn). It grades them with the real command (wall and CPU time, the CPU of every
child included) and checks the grades (correct ones full marks, the others less).

Then where the time goes: one correct and one buggy program graded in this process, one
step at a time, each lclock process of the battery timed (wall, and CPU of it and its
children: the student's programs), per battery item, the shrink, and the report; and the
start-up of one lclock process (the interpreter and lclock's imports), which every one pays.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import machine_info, timed_child  # noqa: E402 - bench/ is on sys.path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
# the battery's lclock processes run in the submissions' copies: this checkout's lclock,
# never another one that an editable install points to
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
sys.path.insert(0, str(REPO / "tests"))

from grade_fixtures import make_class  # noqa: E402

import lclock.grade.battery as battery  # noqa: E402
from lclock.grade.grade_one import _graded  # noqa: E402
from lclock.grade.rubric import load_rubric  # noqa: E402
from lclock.grade.score import score_item  # noqa: E402
from lclock.grade.shrunk import shrink_first  # noqa: E402
from lclock.grade.submission import read_submission  # noqa: E402
from lclock.grade.workspace import prepare, user_for, work_prefix  # noqa: E402

BUGS = {  # a line of the reference program -> the same line with a classic bug
    "receive-ignores-message": ('lclock = max(lclock, msg["lclock"]) + 1', "lclock = lclock + 1"),
    "receive-no-increment": ('lclock = max(lclock, msg["lclock"]) + 1',
                             'lclock = max(lclock, msg["lclock"])'),
    "send-no-increment": ("        lclock += 1\n",
                          "        lclock += 0 if req['do'] == 'send' else 1\n"),
}
HOSTILE = ["hang", "crash", "forkbomb", "flood", "filldisk", "intruder", "orphan"]
#: Correct programs in other languages: (source in examples/impl, lclock.toml).
OTHER = {"good-c": ("c/vm.c", 'impl = "./vm"\nbuild = "cc -O2 -o vm vm.c"\n'),
         "good-node": ("node/vm.js", 'impl = "node vm.js"\n')}
PLAN = ["good", "receive-ignores-message", "logs-good", "good-c", "hostile", "good",
        "receive-no-increment", "logs-buggy", "good", "good-node", "send-no-increment",
        "logs-good", "good", "hostile", "good", "logs-buggy", "good", "good"]
FULL_MARKS = ("good", "good-c", "good-node", "logs-good", "intruder", "orphan")


def make_submissions(root: Path, count: int) -> dict[str, str]:
    """``count`` submissions in ``root``; name -> what it is (good, bug name, logs, hostile)."""
    seed = make_class(root / "seed", ["good", "logs-good", "logs-buggy", *HOSTILE])
    reference = (seed / "good" / "vm.py").read_text()
    kinds: dict[str, str] = {}
    hostile = 0
    for i in range(count):
        kind = PLAN[i % len(PLAN)]
        name = f"s{i:03d}"
        dest = root / "class" / name
        if kind in BUGS:
            old, new = BUGS[kind]
            dest.mkdir(parents=True)
            (dest / "vm.py").write_text(reference.replace(old, new, 1))
            (dest / "lclock.toml").write_text('impl = "python3 vm.py"\n')
        elif kind in OTHER:
            source, toml = OTHER[kind]
            dest.mkdir(parents=True)
            shutil.copy(REPO / "examples" / "impl" / source, dest)
            (dest / "lclock.toml").write_text(toml)
        elif kind == "hostile":
            kind = HOSTILE[hostile % len(HOSTILE)]
            hostile += 1
            shutil.copytree(seed / kind, dest)
        else:
            shutil.copytree(seed / kind, dest)
        kinds[name] = kind
    shutil.rmtree(seed)
    return kinds


def judge(out: Path, kinds: dict[str, str]) -> list[str]:
    """What is wrong with the grades: correct programs must get full marks, others not."""
    wrong = []
    with (out / "grades.csv").open() as f:
        for row in csv.DictReader(f):
            kind = kinds[row["submission"]]
            full = row["score"] == row["max_score"]
            if full != (kind in FULL_MARKS):
                wrong.append(f"{row['submission']} ({kind}): {row['score']}/{row['max_score']}")
    return wrong


class Clock:
    """Wall and CPU time of each step, and of each lclock process it starts (their CPU is
    this process's children's: measured one step at a time, on one thread)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, float, int]] = []
        self.procs = 0
        real = battery.lclock

        def counted(*args: Any, **kw: Any) -> tuple[int, str, str]:
            self.procs += 1
            return real(*args, **kw)

        battery.lclock = counted  # type: ignore[assignment]

    def step(self, name: str, fn: Callable[[], Any]) -> Any:
        procs, t = self.procs, time.perf_counter()
        c0 = _cpu()
        out = fn()
        self.rows.append((name, time.perf_counter() - t, _cpu() - c0, self.procs - procs))
        return out


def _cpu() -> float:
    """CPU seconds of this process and of every child it waited for."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def breakdown(tmp: Path, bug: str | None) -> list[tuple[str, float, float, int]]:
    """One program (correct, or with ``bug``), step by step: (step, wall s, CPU s, lclock
    processes)."""
    rubric = load_rubric(None)
    folder = make_class(tmp / f"one-{bug}", ["good"]) / "good"
    if bug is not None:
        old, new = BUGS[bug]
        (folder / "vm.py").write_text((folder / "vm.py").read_text().replace(old, new, 1))
    sub = read_submission(folder)
    user = user_for(0)
    clock = Clock()
    work = Path(tempfile.mkdtemp(prefix=work_prefix()))
    work.chmod(0o711)  # as grade_one's: the submission's user must reach its copy
    try:
        return _steps(clock, rubric, sub, folder, work, user)
    finally:
        shutil.rmtree(work)


def _steps(clock: Clock, rubric: Any, sub: Any, folder: Path, work: Path,
           user: Any) -> list[tuple[str, float, float, int]]:
    copy, runs = clock.step("copy", lambda: prepare(folder, work / "w", user))
    items = []
    for item in rubric.items:
        if item.applies_to("program"):
            items.append(clock.step(item.name, lambda i=item: battery.run_item(i, sub, copy, runs, user)))
    tests = [score_item(i, rubric) for i in items]
    shrunk = clock.step("shrink", lambda: shrink_first(items, rubric, copy, runs, user))
    clock.step("report", lambda: _graded(sub, tests, items, runs, user.uid >= 0, shrunk))
    return clock.rows


def startup() -> float:
    """CPU seconds of one ``lclock --version`` (the interpreter and lclock's imports): the
    least that every lclock process of the battery costs. Best of 3."""
    best = float("inf")
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-m", "lclock", "--version"], check=True,
                       capture_output=True, cwd=REPO)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best = min(best, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return best


def grade_class(root: Path, args: argparse.Namespace) -> int:
    kinds = make_submissions(root, args.count)
    mix = {k: sum(1 for v in kinds.values() if v == k) for k in sorted(set(kinds.values()))}
    print(f"{args.count} submissions: " + ", ".join(f"{k} {n}" for k, n in mix.items()))
    cmd = [sys.executable, "-m", "lclock", "grade", str(root / "class"), "--output",
           str(root / "out"), "--quiet"]
    cmd += ["--jobs", str(args.jobs)] if args.jobs else []
    cmd += ["--rubric", args.rubric] if args.rubric else []
    wall, cpu, _rss = timed_child(cmd, REPO)
    jobs = args.jobs or "default"
    print(f"lclock grade --jobs {jobs}: {wall:.0f} s wall, {cpu:.0f} s CPU "
          f"({wall / args.count:.1f} s wall, {cpu / args.count:.1f} s CPU per submission)")
    wrong = judge(root / "out", kinds)
    print("grades: as expected" if not wrong else "grades NOT as expected: " + "; ".join(wrong))
    return 1 if wrong else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=0, help="lclock grade --jobs (default: its own)")
    ap.add_argument("--rubric", default=None)
    ap.add_argument("--no-class", action="store_true", help="only where the time goes")
    args = ap.parse_args()
    print(machine_info() + f"; load average {os.getloadavg()[0]:.1f}")
    code = 0
    with tempfile.TemporaryDirectory(prefix="bench-grade-") as tmp:
        if not args.no_class:
            code = grade_class(Path(tmp), args)
        print(f"start-up of one lclock process: {startup():.2f} s CPU")
        for bug in (None, "receive-no-increment"):
            print(f"one {'correct program' if bug is None else 'program with ' + bug}, step by "
                  "step (default rubric; wall s, CPU s of lclock and the programs):")
            rows = breakdown(Path(tmp), bug)
            for name, wall, cpu, procs in rows:
                print(f"  {name:12} {wall:6.1f} s wall {cpu:6.1f} s CPU  ({procs} lclock process(es))")
            print(f"  {'total':12} {sum(r[1] for r in rows):6.1f} s wall "
                  f"{sum(r[2] for r in rows):6.1f} s CPU  ({sum(r[3] for r in rows)})")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return code


if __name__ == "__main__":
    sys.exit(main())
