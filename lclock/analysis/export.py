"""Exporters: a ShiViz log (to explore happened-before interactively) and a flat CSV table.

ShiViz (https://bestchai.bitbucket.io/shiviz/) reads a file whose first line is the parser
regular expression and second line the multiple-executions delimiter (empty: one
execution), then the log. Each event is two lines, matched by ShiViz's default expression:
a description, then ``host {"host": n, ...}``. ShiViz insists that a host's own entry starts
at 1 and rises by exactly one per event, which is what lclock's vector clocks do (one entry
per tick event), so the logged vectors are exported as they are, zero entries left out as
ShiViz's own examples do. Events are merged across machines by system time.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import orjson

from lclock.analysis.load import KIND_NAMES, KIND_RECEIVE, KIND_SEND, MachineLog, Run
from lclock.core.logline import format_ts
from lclock.errors import BadInput
from lclock.outfile import write_with

SHIVIZ_REGEX = r"(?<event>.*)\n(?<host>\S*) (?<clock>{.*})"


def host(mid: int) -> str:
    return f"machine{mid}"


def _order_arrays(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """(machine ids, event indexes) of every tick event by system time, stable per machine."""
    ids = run.ids
    mid = np.concatenate([np.full(run.machines[i].events, i) for i in ids]) if ids else np.zeros(0)
    idx = np.concatenate([np.arange(run.machines[i].events) for i in ids]) if ids else np.zeros(0)
    ts = np.concatenate([run.machines[i].ts for i in ids]) if ids else np.zeros(0)
    # missing times sort after their machine's previous event: carry the last known time
    ts = np.where(np.isfinite(ts), ts, -np.inf)
    parts = []
    start = 0
    for i in ids:
        n = run.machines[i].events
        parts.append(np.maximum.accumulate(ts[start:start + n]) if n else ts[start:start])
        start += n
    ts = np.concatenate(parts) if parts else ts
    order = np.lexsort((idx, ts))
    return mid[order].astype(np.int64), idx[order].astype(np.int64)


def _merged_order(run: Run, batch: int = 50_000) -> Iterator[tuple[int, int]]:
    """The same order as pairs, a batch at a time (bounded memory)."""
    mids, idxs = _order_arrays(run)
    for start in range(0, len(mids), batch):
        yield from zip(mids[start:start + batch].tolist(), idxs[start:start + batch].tolist(),
                       strict=True)


def _describe(run: Run, mid: int, k: int) -> str:
    log = run.machines[mid]
    kind = int(log.kind[k])
    L = int(log.lclock[k])
    t = float(log.ts[k])
    when = format_ts(t) if np.isfinite(t) else "?"
    if kind == KIND_SEND:
        to = ",".join(host(x) for x in log.recipients(k))
        what = f"send to {to} (dice {int(log.dice[k])})"
    elif kind == KIND_RECEIVE:
        dup = ", duplicate" if log.dup is not None and log.dup[k] else ""
        frm = int(log.frm[k])  # 0: a log that does not say who sent it
        what = (f"receive from {host(frm) if frm > 0 else 'an unknown sender'} "
                f"(message L={int(log.msg[k])}, queue "
                f"{int(log.qlen[k])}{dup})")
    else:
        what = f"internal (dice {int(log.dice[k])})"
    clocks = ""
    if log.pt is not None and log.pt[k] >= 0:
        clocks += f" pt={int(log.pt[k])}"
    if log.hlc is not None and log.hlc[k, 0] >= 0:
        clocks += f" hlc={int(log.hlc[k, 0])}.{int(log.hlc[k, 1])}"
    return f"{what} L={L} tick={int(log.tick[k])}{clocks} ts={when}"


def write_shiviz(run: Run, out: IO[str]) -> int:
    """Write the ShiViz log; returns the number of events."""
    if not run.machines or any(m.vclock is None for m in run.machines.values()):
        raise BadInput(f"{run.path}: this run has no vector clocks (vector_clocks = false): "
                          "ShiViz needs them")
    out.write(SHIVIZ_REGEX + "\n\n")
    count = 0
    for mid, k in _merged_order(run):
        vc = run.machines[mid].vclock
        assert vc is not None
        clock = {host(j + 1): int(v) for j, v in enumerate(vc[k].tolist()) if v > 0}
        out.write(_describe(run, mid, k) + "\n")
        out.write(f"{host(mid)} {orjson.dumps(clock).decode()}\n")
        count += 1
    return count


CSV_HEAD = ["machine", "line", "ts", "t_s", "tick", "event", "lclock", "queue_len", "dice",
            "to", "from", "msg_lclock"]
# SPEC sections 6 and 7: the physical clock and the HLC after the event, what a receive's
# message carried, and whether the receive handled a duplicate (empty where not logged)
CSV_CLOCKS = ["pt", "hlc_l", "hlc_c", "msg_pt", "msg_hlc_l", "msg_hlc_c", "dup"]


CSV_BATCH = 50_000


def _clock_cells(m: MachineLog, k: np.ndarray) -> list[list[object]]:
    """The CSV_CLOCKS cells of events ``k`` of one machine ("" where unknown)."""
    def col(a: np.ndarray | None, j: int | None = None) -> list[object]:
        if a is None:
            return [""] * len(k)
        v = a[k] if j is None else a[k, j]
        return [x if x >= 0 else "" for x in v.tolist()]

    recv = (m.kind[k] == KIND_RECEIVE).tolist()
    dup = m.dup[k].tolist() if m.dup is not None else [False] * len(k)
    cells = [col(m.pt), col(m.hlc, 0), col(m.hlc, 1), col(m.msg_pt), col(m.msg_hlc, 0),
             col(m.msg_hlc, 1), [("true" if d else "false") if r else "" for d, r in
                                 zip(dup, recv, strict=True)]]
    return [list(row) for row in zip(*cells, strict=True)]


def write_csv(run: Run, out: IO[str]) -> int:
    """One row per tick event, merged by time; vector entries as columns v1..vN.

    Rows are produced in batches, so only one batch at a time exists as Python objects.
    """
    n = run.n
    has_vc = bool(run.machines) and all(m.vclock is not None for m in run.machines.values())
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_HEAD + CSV_CLOCKS + ([f"v{j}" for j in range(1, n + 1)] if has_vc else []))
    mids, idxs = _order_arrays(run)
    t0 = run.t0
    count = 0
    for start in range(0, len(mids), CSV_BATCH):
        bm = mids[start:start + CSV_BATCH]
        bi = idxs[start:start + CSV_BATCH]
        rows: list[list[object]] = [[] for _ in range(len(bm))]
        for mid in np.unique(bm).tolist():
            m = run.machines[mid]
            pos = np.flatnonzero(bm == mid)
            k = bi[pos]
            ts = m.ts[k]
            cols = zip(m.line[k].tolist(), ts.tolist(), m.tick[k].tolist(), m.kind[k].tolist(),
                       m.lclock[k].tolist(), m.qlen[k].tolist(), m.dice[k].tolist(),
                       m.frm[k].tolist(), m.msg[k].tolist(), k.tolist(), strict=True)
            vcs = m.vclock[k].tolist() if has_vc and m.vclock is not None else None
            clocks = _clock_cells(m, k)
            for r, (p, (line, t, tick, kd, lc, q, dice, frm, msg, kk)) in enumerate(
                    zip(pos.tolist(), cols, strict=True)):
                fin = t == t  # not NaN
                row: list[object] = [
                    mid, line, format_ts(t) if fin else "", f"{t - t0:.6f}" if fin else "", tick,
                    KIND_NAMES[kd], lc, q, dice if kd != KIND_RECEIVE else "",
                    " ".join(map(str, m.recipients(kk))) if kd == KIND_SEND else "",
                    frm if kd == KIND_RECEIVE and frm > 0 else "",  # 0: sender unknown
                    msg if kd == KIND_RECEIVE else "",
                    *clocks[r]]
                if vcs is not None:
                    row += vcs[r]
                rows[p] = row
        w.writerows(rows)
        count += len(rows)
    return count


def export(run: Run, fmt: str, path: Path | None) -> tuple[int, Path | None]:
    """Write the export to ``path`` (None = stdout); returns (events, path)."""
    import sys

    from lclock.analysis.total_order import write_total_order

    writer = {"shiviz": write_shiviz, "csv": write_csv, "total-order": write_total_order}[fmt]
    if path is None:
        return writer(run, sys.stdout), None
    count = write_with(path, lambda fh: writer(run, fh), runs=[run.path], encoding="utf-8",
                       newline="")
    return count, path
