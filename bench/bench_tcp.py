#!/usr/bin/env python3
"""TCP against socket pairs: message latency, and the highest tick rate kept within 1 %.

    python bench/bench_tcp.py                 # 3 machines, 5 s per run (about 2 minutes)
    python bench/bench_tcp.py --duration 3 --rates 1000,5000,10000

Latency is what the worker itself measures: every frame carries the sender's send time, and
the receiver takes ``now - sent_at`` when it puts the message in its queue; the ``stop``
line and run.json's ``machines[].latency_us`` give p50, p99 and n. Both transports run with
the same settings, one after the other, in one invocation.

A rate is "kept" when every machine did exactly rate x duration ticks and its worst tick
ran no later than 1 % of the duration after it was due (``lateness_ms.max``). The search
stops at the first rate that is not kept. Real processes on a shared machine: run it more
than once and read the figures as a range, not a constant.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TRANSPORTS = ("socketpair", "tcp")


def one_run(transport: str, rate: int, duration: float, machines: int, out: Path) -> dict[str, Any]:
    """Run the real launcher once; return run.json (and the exit status)."""
    before = set(out.iterdir()) if out.exists() else set()
    cmd = [sys.executable, str(ROOT / "launcher.py"), "--transport", transport,
           "--rates", ",".join([str(rate)] * machines), "--duration", str(duration),
           "--no-report", "--quiet", "--output", str(out), "--seed", "1"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=duration * 4 + 60,
                       start_new_session=True)
    new = sorted(set(out.iterdir()) - before)
    if not new:
        raise SystemExit(f"no run folder: {p.stderr.strip()}")
    meta = json.loads((new[-1] / "run.json").read_text())
    meta["_code"] = p.returncode
    return meta


def kept(meta: dict[str, Any], rate: int, duration: float) -> tuple[bool, float]:
    """(kept within 1 %, worst lateness in ms over all machines)."""
    want = math.ceil(rate * duration - 1e-9)
    worst = max(m.get("lateness_ms", {}).get("max", math.inf) for m in meta["machines"])
    ok = (meta["_code"] == 0 and all(m.get("ticks") == want for m in meta["machines"])
          and worst <= 0.01 * duration * 1000)
    return ok, worst


def latency(meta: dict[str, Any]) -> tuple[float, float, int]:
    """The machines' latency figures combined: median of p50s, max of p99s, total n."""
    lat = [m["latency_us"] for m in meta["machines"] if m.get("latency_us", {}).get("n")]
    p50 = sorted(x["p50"] for x in lat)[len(lat) // 2] if lat else math.nan
    p99 = max((x["p99"] for x in lat), default=math.nan)
    return p50, p99, sum(x["n"] for x in lat)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--machines", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--latency-rate", type=int, default=1000)
    ap.add_argument("--rates", default="1000,2000,5000,7500,10000",
                    help="rates to try, in increasing order (10000 is the model's maximum)")
    ap.add_argument("--output", help="where the run folders go (default: a temporary folder)")
    args = ap.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench_tcp_") as tmp:
        out = Path(args.output or tmp)
        out.mkdir(parents=True, exist_ok=True)
        print(f"# bench_tcp: {args.machines} machines, {args.duration:g} s per run, "
              f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.platform()}")
        print(f"\n## latency at rate {args.latency_rate} (send -> receiver's queue)\n")
        print("| transport | p50 (us) | p99 (us) | messages | worst lateness (ms) |")
        print("|---|---|---|---|---|")
        for t in TRANSPORTS:
            meta = one_run(t, args.latency_rate, args.duration, args.machines, out)
            p50, p99, n = latency(meta)
            _, worst = kept(meta, args.latency_rate, args.duration)
            print(f"| {t} | {p50:.0f} | {p99:.0f} | {n} | {worst:.1f} |", flush=True)
        print(f"\n## highest rate kept within 1 % ({args.duration * 10:g} ms) "
              f"by all {args.machines} machines\n")
        print("| transport | rate | kept | worst lateness (ms) | latency p50 / p99 (us) |")
        print("|---|---|---|---|---|")
        best: dict[str, int] = {}
        for t in TRANSPORTS:
            for r in rates:
                meta = one_run(t, r, args.duration, args.machines, out)
                ok, worst = kept(meta, r, args.duration)
                p50, p99, _ = latency(meta)
                print(f"| {t} | {r} | {'yes' if ok else 'no'} | {worst:.1f} | {p50:.0f} / {p99:.0f} |",
                      flush=True)
                if not ok:
                    break
                best[t] = r
        print()
        for t in TRANSPORTS:
            print(f"highest rate kept, {t}: {best.get(t, 'none of those tried')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
