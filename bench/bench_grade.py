#!/usr/bin/env python3
"""Benchmark of ``lclock grade`` on a class of generated submissions (SPEC 11).

    python bench/bench_grade.py [--count 100] [--jobs 4] [--rubric R]

Issue 21's goal: 100 submissions (programs and folders of logs, some hostile) within 10
minutes on a 2-core machine. The class: correct Python programs, programs with one of three
classic bugs, folders of logfmt logs (correct and buggy), and hostile programs (a hang, a
crash, a fork bomb, a flood, a full disk, an intruder, an orphan), in that mix. It grades
them with the real command (wall and CPU time, the CPU of every child included), checks the
grades (correct ones full marks, the others less), then shows where the time goes: each
battery item of one correct program, graded in process.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _common import machine_info, timed_child  # noqa: E402 - bench/ is on sys.path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from grade_fixtures import make_class  # noqa: E402

from lclock.grade.battery import run_item  # noqa: E402
from lclock.grade.rubric import load_rubric  # noqa: E402
from lclock.grade.submission import read_submission  # noqa: E402
from lclock.grade.workspace import prepare, user_for  # noqa: E402

BUGS = {  # a line of the reference program -> the same line with a classic bug
    "receive-ignores-message": ('lclock = max(lclock, msg["lclock"]) + 1', "lclock = lclock + 1"),
    "receive-no-increment": ('lclock = max(lclock, msg["lclock"]) + 1',
                             'lclock = max(lclock, msg["lclock"])'),
    "send-no-increment": ("        lclock += 1\n",
                          "        lclock += 0 if req['do'] == 'send' else 1\n"),
}
HOSTILE = ["hang", "crash", "forkbomb", "flood", "filldisk", "intruder", "orphan"]


def make_submissions(root: Path, count: int) -> dict[str, str]:
    """``count`` submissions in ``root``; name -> what it is (good, bug name, logs, hostile)."""
    seed = make_class(root / "seed", ["good", "logs-good", "logs-buggy", *HOSTILE])
    reference = (seed / "good" / "vm.py").read_text()
    kinds: dict[str, str] = {}
    plan = ["good", "receive-ignores-message", "logs-good", "good", "hostile", "good",
            "receive-no-increment", "logs-buggy", "good", "good", "send-no-increment",
            "logs-good", "good", "hostile", "good", "logs-buggy", "good", "good"]
    hostile = 0
    for i in range(count):
        kind = plan[i % len(plan)]
        name = f"s{i:03d}"
        dest = root / "class" / name
        if kind in BUGS:
            old, new = BUGS[kind]
            dest.mkdir(parents=True)
            (dest / "vm.py").write_text(reference.replace(old, new, 1))
            (dest / "lclock.toml").write_text('impl = "python3 vm.py"\n')
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
            if full != (kind in ("good", "logs-good", "intruder", "orphan")):
                wrong.append(f"{row['submission']} ({kind}): {row['score']}/{row['max_score']}")
    return wrong


def breakdown(tmp: Path) -> list[tuple[str, float, int]]:
    """Each battery item of one correct program: (item, wall s, runs)."""
    rubric = load_rubric(None)
    folder = make_class(tmp / "one", ["good"]) / "good"
    sub = read_submission(folder)
    user = user_for(0)
    copy, runs = prepare(folder, tmp / "work", user)
    out = []
    for item in rubric.items:
        if item.applies_to("program"):
            t = time.perf_counter()
            result = run_item(item, sub, copy, runs, user)
            out.append((item.name, time.perf_counter() - t, len(result.runs)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--rubric", default=None)
    args = ap.parse_args()
    print(machine_info())
    with tempfile.TemporaryDirectory(prefix="bench-grade-") as tmp:
        root = Path(tmp)
        kinds = make_submissions(root, args.count)
        mix = {k: sum(1 for v in kinds.values() if v == k) for k in sorted(set(kinds.values()))}
        print(f"{args.count} submissions: " + ", ".join(f"{k} {n}" for k, n in mix.items()))
        cmd = [sys.executable, "-m", "lclock", "grade", str(root / "class"), "--output",
               str(root / "out"), "--jobs", str(args.jobs), "--quiet"]
        if args.rubric:
            cmd += ["--rubric", args.rubric]
        wall, cpu, _rss = timed_child(cmd, REPO)
        print(f"lclock grade --jobs {args.jobs}: {wall:.0f} s wall, {cpu:.0f} s CPU "
              f"({wall / args.count:.1f} s wall per submission)")
        wrong = judge(root / "out", kinds)
        print("grades: as expected" if not wrong else "grades NOT as expected: " + "; ".join(wrong))
        print("one correct program, item by item (in process, one at a time):")
        for name, seconds, n in breakdown(root):
            print(f"  {name:12} {seconds:6.1f} s  ({n} run(s))")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
