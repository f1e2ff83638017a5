"""Benchmark of ``lclock import`` (issue 18): peak memory must not grow with the log's size.

Writes logfmt text logs of the given sizes (3 machines sending to each other, the way
``lclock export`` would write a run; half of the receives without the clock their message
carried, so the FIFO pairing runs too), imports each as a whole process, and prints wall
time, CPU time (user + system) and peak RSS (getrusage RUSAGE_CHILDREN of a fresh wrapper
per command, as the other benchmarks).

Budget: the peak RSS of the largest log is within 64 MiB of the smallest's (before the
import streamed, 200 MB of log peaked at 2.46 GB, about 12x).

    python bench/bench_import.py [--sizes 20,200] [--keep DIR]

Exits 1 if the budget is missed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, timed_child  # noqa: E402 - bench/ is on sys.path as a script

MB = 10**6


def write_log(path: Path, size_mb: int) -> int:
    """A logfmt log of about ``size_mb`` MB; the number of lines."""
    clocks = [0, 0, 0, 0]
    sent: dict[tuple[int, int], list[int]] = {(a, b): [] for a in (1, 2, 3) for b in (1, 2, 3)}
    lines = 0
    size = 0
    with open(path, "w") as fh:
        k = 0
        while size < size_mb * MB:
            k += 1
            me = k % 3 + 1
            other = (me + k // 3) % 3 + 1
            ts = f"2026-01-01T{(k // 3_600_000) % 24:02d}:{(k // 60_000) % 60:02d}:" \
                 f"{(k // 1000) % 60:02d}.{k % 1000:03d}000Z"
            if other != me and sent[(other, me)]:
                msg = sent[(other, me)].pop(0)
                clocks[me] = max(clocks[me], msg) + 1
                carried = f" msg_lclock={msg}" if k % 2 else ""
                line = f"ts={ts} machine={me} event=receive from={other} lclock={clocks[me]}{carried}"
            elif other != me:
                clocks[me] += 1
                sent[(me, other)].append(clocks[me])
                line = f"ts={ts} machine={me} event=send to={other} lclock={clocks[me]}"
            else:
                clocks[me] += 1
                line = f"ts={ts} machine={me} event=internal lclock={clocks[me]}"
            fh.write(line + "\n")
            size += len(line) + 1
            lines += 1
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="20,200", help="log sizes in MB (default 20,200)")
    ap.add_argument("--keep", type=Path, help="keep the logs and run folders in DIR")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-import-"))
    base.mkdir(parents=True, exist_ok=True)
    print(machine_info())
    rss = []
    try:
        for mb in sizes:
            log = base / f"log-{mb}mb.log"
            lines = write_log(log, mb)
            cmd = [sys.executable, "-m", "lclock", "import", "--preset", "logfmt", str(log),
                   "--force", "-o", str(base / f"run-{mb}mb")]
            wall, cpu, peak = timed_child(cmd, REPO)
            rss.append(peak)
            print(f"{mb} MB ({lines} lines): wall {wall:.1f} s, CPU {cpu:.1f} s "
                  f"({lines / cpu:,.0f} lines per CPU s), peak RSS {peak / 1024:.0f} MiB",
                  flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    ok = max(rss) - min(rss) <= 64 * 1024
    print("budget (peak RSS of the largest log within 64 MiB of the smallest's):",
          "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
