#!/usr/bin/env python3
"""Why the launcher uses forkserver: time to have N processes up that import the worker.

    python bench/bench_start_method.py          # 3 and 64 processes, spawn and forkserver
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import time
from multiprocessing.connection import Connection


def _child(conn: Connection) -> None:
    import lclock.runtime.worker  # noqa: F401 - what a real worker imports

    conn.send(time.time())


def time_start(method: str, n: int) -> float:
    ctx = mp.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(["lclock.runtime.worker"])
    t = time.time()
    conns, procs = [], []
    for _ in range(n):
        a, b = ctx.Pipe()
        p = ctx.Process(target=_child, args=(b,))
        p.start()
        conns.append(a)
        procs.append(p)
    last = max(c.recv() for c in conns)
    for p in procs:
        p.join()
    return last - t


if __name__ == "__main__":
    method = sys.argv[1] if len(sys.argv) > 1 else None
    if method:  # one measurement per interpreter: the forkserver is per process
        print(f"{method} {sys.argv[2]}: {time_start(method, int(sys.argv[2])):.3f} s")
    else:
        import subprocess

        for n in (3, 64):
            for m in ("spawn", "forkserver"):
                subprocess.run([sys.executable, __file__, m, str(n)], check=True)
