"""The export of Lamport's total order: every event ordered by (L, machine id).

Lamport's construction: order events by their clock values and break ties by the process
id, and the result is a total order that extends happened-before (for a log whose clocks
follow the rules). A table of it shows students the order every machine would agree on,
and where it puts concurrent events "before" each other only by clock value or by id.
"""

from __future__ import annotations

import csv
from typing import IO

import numpy as np

from lclock.analysis.causal import total_order
from lclock.analysis.load import KIND_NAMES, KIND_RECEIVE, KIND_SEND, Run
from lclock.logfmt import format_ts

HEAD = ["position", "lclock", "machine", "tick", "event", "ts", "t_s", "to", "from",
        "msg_lclock", "tie"]
BATCH = 50_000


def write_total_order(run: Run, out: IO[str]) -> int:
    """One row per tick event in the order (L, machine id); ``tie`` is 1 on a row whose L
    equals the previous row's (placed after it by machine id alone). Returns the row count."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(HEAD)
    mids, idxs = total_order(run)
    L = np.zeros(len(mids), np.int64)
    for m in run.ids:
        sel = mids == m
        L[sel] = run.machines[m].lclock[idxs[sel]]
    tie = np.concatenate(([False], L[1:] == L[:-1])) if len(L) else np.zeros(0, bool)
    for start in range(0, len(mids), BATCH):
        stop = min(start + BATCH, len(mids))
        bm, bi = mids[start:stop], idxs[start:stop]
        rows: list[list[object]] = [[] for _ in range(stop - start)]
        for m in np.unique(bm).tolist():
            log = run.machines[m]
            pos = np.flatnonzero(bm == m)
            k = bi[pos]
            cols = zip(pos.tolist(), k.tolist(), log.tick[k].tolist(), log.kind[k].tolist(),
                       log.ts[k].tolist(), log.frm[k].tolist(), log.msg[k].tolist(), strict=True)
            for p, kk, tick, kind, t, frm, msg in cols:
                fin = t == t  # not NaN
                rows[p] = [start + p + 1, int(L[start + p]), m, tick, KIND_NAMES[kind],
                           format_ts(t) if fin else "", f"{t - run.t0:.6f}" if fin else "",
                           " ".join(map(str, log.recipients(kk))) if kind == KIND_SEND else "",
                           frm if kind == KIND_RECEIVE else "", msg if kind == KIND_RECEIVE else "",
                           int(tie[start + p])]
        w.writerows(rows)
    return len(mids)
