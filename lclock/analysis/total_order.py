"""The export of Lamport's total order: every event ordered by (L, machine id).

Lamport's construction: order events by their clock values and break ties by the process
id, and the result is a total order that extends happened-before (for a log whose clocks
follow the rules). A table of it shows students the order every machine would agree on,
and where it puts concurrent events "before" each other only by clock value or by id.
"""

from __future__ import annotations

from typing import IO

import numpy as np

from lclock.analysis.causal import total_order
from lclock.analysis.load import KIND_NAMES, KIND_RECEIVE, KIND_SEND, Run
from lclock.core.logline import format_ts

HEAD = ["position", "lclock", "machine", "tick", "event", "ts", "t_s", "to", "from",
        "msg_lclock", "tie"]
BATCH = 50_000


def write_total_order(run: Run, out: IO[str]) -> int:
    """One row per tick event in the order (L, machine id); ``tie`` is 1 on a row whose L
    equals the previous row's (placed after it by machine id alone). Returns the row count.

    Columns are gathered with numpy and turned into text a column at a time; no field can
    hold a comma or a quote, so rows are joined directly.
    """
    out.write(",".join(HEAD) + "\n")
    mids, idxs = total_order(run)
    n = len(mids)
    cols = {k: np.zeros(n, np.int64) for k in ("L", "tick", "kind", "frm", "msg")}
    ts = np.full(n, np.nan)
    for m in run.ids:
        sel = np.flatnonzero(mids == m)
        log = run.machines[m]
        k = idxs[sel]
        for name, src in (("L", log.lclock), ("tick", log.tick), ("kind", log.kind),
                          ("frm", log.frm), ("msg", log.msg)):
            cols[name][sel] = src[k]
        ts[sel] = log.ts[k]
    tie = np.concatenate(([False], cols["L"][1:] == cols["L"][:-1])) if n else np.zeros(0, bool)
    names = [KIND_NAMES[i] for i in range(3)]
    for start in range(0, n, BATCH):
        b = slice(start, min(start + BATCH, n))
        kind = cols["kind"][b].tolist()
        t = ts[b].tolist()
        recv = [x == KIND_RECEIVE for x in kind]
        to = [" ".join(map(str, run.machines[m].recipients(k))) if x == KIND_SEND else ""
              for m, k, x in zip(mids[b].tolist(), idxs[b].tolist(), kind, strict=True)]
        rows = zip(
            map(str, range(b.start + 1, b.stop + 1)), map(str, cols["L"][b].tolist()),
            map(str, mids[b].tolist()), map(str, cols["tick"][b].tolist()),
            (names[x] for x in kind),
            (format_ts(x) if x == x else "" for x in t),
            (f"{x - run.t0:.6f}" if x == x else "" for x in t),
            to,
            (str(f) if r and f > 0 else ""  # 0: a log that does not say who sent it
             for f, r in zip(cols["frm"][b].tolist(), recv, strict=True)),
            (str(g) if r else "" for g, r in zip(cols["msg"][b].tolist(), recv, strict=True)),
            ("1" if x else "0" for x in tie[b].tolist()),
            strict=True)
        out.write("".join(",".join(r) + "\n" for r in rows))
    return n
