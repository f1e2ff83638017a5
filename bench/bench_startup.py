#!/usr/bin/env python3
"""Start-up of a run: from the command to every machine's first tick, and what the imports cost.

    python bench/bench_startup.py [--repeat 15] [--against CHECKOUT]

Why its own benchmark: start-up is what a user waits for before anything happens, and it
grows one import at a time without any test noticing. Two settings, each the median of
``--repeat`` runs of ``python launcher.py --rates 10,10,10 --duration 0.3 --quiet
--no-report``:

- cached: lclock's bytecode is in ``__pycache__`` (an installed or often-run tree);
- not cached: a copy of lclock without ``__pycache__`` and ``PYTHONDONTWRITEBYTECODE=1``
  (what tox sets), so every lclock module is compiled on every start (the standard library
  and the dependencies keep their bytecode, as they do in tox).

A run's start-up is the last machine's first tick (its log's ``ts``, wall clock) minus the
wall-clock instant just before the command was started. The import lines are the
``-X importtime`` cumulative figure of ``lclock.cli`` plus ``lclock.runtime.launcher`` (what
the launcher's own process imports before it starts the workers), median of the same count.
On a shared machine the wall time follows the load: the load average is printed around it.
``--against`` measures another checkout too (a folder with its launcher.py and lclock/, such
as ``git archive`` of an older commit), one run of each in turn, so both share the load,
and prints the ratio of the medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine_info  # noqa: E402 - bench/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lclock.core.logline import parse_ts  # noqa: E402

RUN_ARGS = ("--rates", "10,10,10", "--duration", "0.3", "--quiet", "--no-report")


def first_ticks(run_dir: Path) -> list[float]:
    """Each machine's first tick (wall clock), from its log."""
    import orjson

    firsts = []
    for log in sorted(run_dir.glob("machine-*.jsonl")):
        for raw in log.read_bytes().splitlines():
            line = orjson.loads(raw)
            if "tick" in line and line.get("event") in ("send", "receive", "internal"):
                firsts.append(parse_ts(line["ts"]))
                break
    return firsts


def one_start(tree: Path, env: dict[str, str]) -> float:
    """Seconds from just before the command to the last machine's first tick."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, str(tree / "launcher.py"), "--output", out, *RUN_ARGS]
        t0 = time.time()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, timeout=60)
        runs = [p for p in Path(out).iterdir() if p.is_dir()]
        firsts = first_ticks(runs[0])
        if len(firsts) != 3:
            raise SystemExit(f"expected 3 ticking machines, found {len(firsts)} in {runs[0]}")
        return max(firsts) - t0


def import_ms(env: dict[str, str]) -> float:
    """Cumulative import time (ms) of what the launcher's process imports."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import lclock.cli, lclock.runtime.launcher"],
        env=env, check=True, capture_output=True, text=True,
    ).stderr
    total = 0
    for line in err.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].strip() in ("lclock.cli", "lclock.runtime.launcher"):
            total += int(parts[1])
    return total / 1000


def setting(name: str, trees: list[tuple[str, Path, dict[str, str]]], repeat: int) -> None:
    """Each tree's start-up and imports, one run of each tree in turn."""
    starts: dict[str, list[float]] = {label: [] for label, _, _ in trees}
    imports: dict[str, list[float]] = {label: [] for label, _, _ in trees}
    for _label, tree, env in trees:
        one_start(tree, env)  # warm the page cache (and, cached, write the bytecode)
    for _ in range(repeat):
        for label, tree, env in trees:
            starts[label].append(one_start(tree, env))
            imports[label].append(import_ms(env))
    for label, _, _ in trees:
        s, i = starts[label], imports[label]
        print(f"{name:>10}, {label}: command -> all 3 machines ticking: median "
              f"{statistics.median(s) * 1e3:.0f} ms (min {min(s) * 1e3:.0f}, max {max(s) * 1e3:.0f}); "
              f"launcher's imports: median {statistics.median(i):.0f} ms (min {min(i):.0f}) over {repeat}")
    if len(trees) == 2:
        (a, _, _), (b, _, _) = trees
        ratio = statistics.median(starts[a]) / statistics.median(starts[b])
        print(f"{name:>10}: {a} / {b} = {ratio:.2f}x (medians of start-up)")


def uncached_copy(root: Path, dest: Path) -> Path:
    """launcher.py and lclock/ of ``root`` without any bytecode."""
    dest.mkdir()
    shutil.copy2(root / "launcher.py", dest / "launcher.py")
    shutil.copytree(root / "lclock", dest / "lclock", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--against", type=Path, help="another checkout to measure in turn with this one")
    args = ap.parse_args()
    print(f"machine: {machine_info()}; load average before: {os.getloadavg()}")
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    roots = [("this tree", ROOT)] + ([("against", args.against.resolve())] if args.against else [])
    setting("cached", [(label, root, {**base, "PYTHONPATH": str(root)}) for label, root in roots],
            args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        trees = []
        for k, (label, root) in enumerate(roots):
            tree = uncached_copy(root, Path(tmp) / str(k))
            trees.append((label, tree, {**base, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}))
        setting("not cached", trees, args.repeat)
        if any(Path(tmp).rglob("__pycache__")):
            raise SystemExit("bytecode was written in an uncached copy: the figure is wrong")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
