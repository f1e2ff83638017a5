"""Benchmark of ``lclock cuts`` (issue 22): counting and listing the consistent cuts of a
window that holds about 10^5 of them, and judging one cut of a long run; each timed as a
whole process (interpreter start-up, loading the run and matching its messages included).

Budget (issue 22): a window of 10^5 consistent cuts counted (and listed) in under 10 s.

    python bench/bench_cuts.py [--cuts 100000] [--machines 3] [--keep DIR]

The run is simulated (``lclock sim``, deterministic); the window is the one starting at
second 5 whose width is grown until it holds at least --cuts consistent cuts. Exits 1 if
the budget is missed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _common import machine_info, timed_child  # noqa: E402 - bench/ is on sys.path as a script

BUDGET_S = 10.0


def simulated(base: Path, machines: int, duration: int) -> Path:
    out = base / f"sim-{machines}"
    found = sorted(out.glob("*/run.json")) if out.exists() else []
    if found:
        return found[0].parent
    subprocess.run([sys.executable, "-m", "lclock", "sim", "--machines", str(machines), "--seed", "7",
                    "--duration", str(duration), "--rate-min", "2", "--rate-max", "8", "--output", str(out),
                    "--quiet", "--no-report"], check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return sorted(out.glob("*/run.json"))[0].parent


def window_for(run: Path, cuts: int) -> tuple[float, float]:
    """The narrowest window from second 5 (to 1/64 s) with at least ``cuts`` consistent cuts:
    widths doubled until one holds enough, then halved between the last two."""
    from lclock.analysis.causal import Causality
    from lclock.analysis.cuts import Channels, TooMany, count, window_box
    from lclock.analysis.load import load_run

    c = Causality.build(load_run(run))
    ch = Channels.of(c)

    def enough(width: float) -> bool:
        try:
            count(c, ch, *window_box(c, 5.0, 5.0 + width), limit=cuts - 1)
        except TooMany:
            return True
        return False

    small, big = 0.0, 0.25
    while not enough(big):
        small, big = big, big * 2
        if big > 1e5:
            raise SystemExit(f"no window of {run} holds {cuts} consistent cuts")
    while big - small > 1 / 64:
        mid = (small + big) / 2
        small, big = (small, mid) if enough(mid) else (mid, big)
    return 5.0, 5.0 + big


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cuts", type=int, default=100_000)
    ap.add_argument("--machines", type=int, default=3)
    ap.add_argument("--duration", type=int, default=600)
    ap.add_argument("--keep", metavar="DIR")
    a = ap.parse_args()
    print(machine_info())
    with tempfile.TemporaryDirectory() as tmp:
        run = simulated(Path(a.keep or tmp), a.machines, a.duration)
        start, end = window_for(run, a.cuts)
        window = f"{start:g}-{end:g}"
        counted = subprocess.run([sys.executable, "-m", "lclock", "cuts", str(run), "--count", "--window",
                                  window, "--limit", str(10**8)], capture_output=True, text=True, cwd=REPO)
        print(f"run {run.name}: {a.machines} machines, window {window} s: {counted.stdout.strip()}")
        worst = 0.0
        for what, args in (("count", ["--count"]), ("list", ["--list"])):
            wall, cpu, rss = timed_child([sys.executable, "-m", "lclock", "cuts", str(run), *args, "--window",
                                          window, "--limit", str(10**8)], REPO)
            worst = max(worst, cpu)
            print(f"  {what:6} wall {wall:6.2f} s  CPU {cpu:6.2f} s  peak RSS {rss // 1024} MiB")
        whole = [f"{m}:{t}" for m, t in _last_ticks(run).items()]
        wall, cpu, rss = timed_child([sys.executable, "-m", "lclock", "cuts", str(run), "--cut", ",".join(whole)],
                                     REPO)
        print(f"  judge the cut of the whole run: wall {wall:.2f} s  CPU {cpu:.2f} s  peak RSS {rss // 1024} MiB")
    ok = worst < BUDGET_S
    print(f"budget {BUDGET_S:g} CPU s for counting and listing: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


def _last_ticks(run: Path) -> dict[int, int]:
    from lclock.analysis.load import load_run

    r = load_run(run)
    return {m: int(r.machines[m].tick[-1]) for m in r.ids}


if __name__ == "__main__":
    raise SystemExit(main())
