"""A small run-folder generator with everything the explorer can show.

Runs of lclock itself show only what lclock logs today; this writes, in virtual time and
with its own implementation of the rules, runs that also have the fields and lines of SPEC
sections 6 and 7: physical clocks (``pt``, with per-machine offsets), HLC (``hlc``,
``msg_pt``, ``msg_hlc``), drops (loss, partition), a partition's ``fault`` lines, a pause
(``pause``/``resume``), duplicates (``dup``) and a crash (a log without its ``stop``).
It is independent of ``lclock.model`` on purpose, like tests/analysis_fixtures.py.
"""

from __future__ import annotations

import heapq
import random
import time
from collections import deque
from pathlib import Path
from typing import Any

import orjson

BASE = 1767225600.0  # 2026-01-01T00:00:00Z


def ts(t: float) -> str:
    us = round((BASE + t) * 1_000_000)
    sec, frac = divmod(us, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac:06d}Z"


def make_clock_run(
    dest: Path, *, rates: tuple[int, ...] = (3, 5, 7), duration: float = 8.0, seed: int = 1,
    vector: bool = True, clocks: bool = True, offsets_ms: tuple[float, ...] | None = None,
    loss: float = 0.0, partition: tuple[float, float, list[list[int]]] | None = None,
    pause: tuple[int, float, float] | None = None, dup: float = 0.0, crash: tuple[int, float] | None = None,
    delay: float = 0.004, run_id: str | None = None,
) -> Path:
    """Write a run folder at ``dest`` and return it (see the module docstring)."""
    dest.mkdir(parents=True, exist_ok=True)
    n = len(rates)
    rng = random.Random(seed)
    rngs = [random.Random(seed * 1000 + i) for i in range(1, n + 1)]
    offsets = [o * 1000 for o in (offsets_ms or [0.0] * n)]
    run_id = run_id or dest.name
    files = [open(dest / f"machine-{i}.jsonl", "wb") for i in range(1, n + 1)]  # noqa: SIM115
    lam, ticks = [0] * n, [0] * n
    vcs = [[0] * n for _ in range(n)]
    hlc = [[0, 0] for _ in range(n)]
    queues: list[deque[dict[str, Any]]] = [deque() for _ in range(n)]
    sent = [0] * n
    received = [0] * n
    crashed = [False] * n
    heap: list[tuple[float, int, int, int, Any]] = []
    seq = 0
    last_arrival = [[0.0] * n for _ in range(n)]

    def pt(i: int, t: float) -> int:
        return round((BASE + t) * 1e6 + offsets[i])

    def write(i: int, obj: dict[str, Any]) -> None:
        if not crashed[i]:
            files[i].write(orjson.dumps(obj) + b"\n")

    def head(i: int, t: float, event: str) -> dict[str, Any]:
        return {"ts": ts(t), "event": event, "level": "info", "run_id": run_id, "machine": i + 1}

    def cut(t: float, a: int, b: int) -> bool:
        if partition is None or not partition[0] <= t < partition[1]:
            return False
        side = {m: g for g, grp in enumerate(partition[2]) for m in grp}
        return side.get(a + 1) != side.get(b + 1)

    for i in range(n):
        write(i, {**head(i, 0.0, "start"), "rate": rates[i], "seed": seed, "pid": 0})
        heapq.heappush(heap, (0.0, 2, seq, i, None))
        seq += 1
    if partition is not None:
        for t, kind in ((partition[0], "partition"), (partition[1], "heal")):
            heapq.heappush(heap, (t, 1, seq, -1, kind))
            seq += 1
    due = [0] * n  # the index of the next deadline: tick due at due / rate

    def tick_line(i: int, t: float, event: str, **extra: Any) -> dict[str, Any]:
        out = {**head(i, t, event), "tick": ticks[i], "lclock": lam[i], "queue_len": len(queues[i])}
        if vector:
            out["vclock"] = list(vcs[i])
        out.update(extra)
        if clocks:
            out["pt"] = pt(i, t)
            out["hlc"] = list(hlc[i])
        return out

    def local_hlc(i: int, t: float) -> None:
        p = pt(i, t)
        l_old = hlc[i][0]
        hlc[i][0] = max(l_old, p)
        hlc[i][1] = hlc[i][1] + 1 if hlc[i][0] == l_old else 0

    def recv_hlc(i: int, t: float, lm: int, cm: int) -> None:
        p = pt(i, t)
        l_old, c_old = hlc[i]
        new = max(l_old, lm, p)
        if new == l_old == lm:
            c = max(c_old, cm) + 1
        elif new == l_old:
            c = c_old + 1
        elif new == lm:
            c = cm + 1
        else:
            c = 0
        hlc[i] = [new, c]

    while heap:
        t, kind, _, i, payload = heapq.heappop(heap)
        if kind == 0:  # a message arrives
            if not crashed[i]:
                queues[i].append(payload)
            continue
        if kind == 1:  # the partition starts or heals: every machine logs it
            for m in range(n):
                write(m, {**head(m, t, "fault"), "kind": payload, "groups": partition[2] if partition else []})
            continue
        if t >= duration:
            continue
        if crash is not None and i == crash[0] - 1 and t >= crash[1]:
            crashed[i] = True
            continue
        if pause is not None and i == pause[0] - 1 and pause[1] <= t < pause[1] + pause[2]:
            end = pause[1] + pause[2]
            nxt = int(end * rates[i] - 1e-9) + 1  # the first deadline after the pause
            write(i, {**head(i, pause[1], "pause")})
            write(i, {**head(i, end, "resume"), "skipped": nxt - due[i]})
            due[i] = nxt
            heapq.heappush(heap, (due[i] / rates[i], 2, seq, i, None))
            seq += 1
            continue
        ticks[i] += 1
        due[i] += 1
        if queues[i]:
            m = queues[i].popleft()
            lam[i] = max(lam[i], m["lclock"]) + 1
            if vector:
                vcs[i] = [max(a, b) for a, b in zip(vcs[i], m["vclock"], strict=True)]
                vcs[i][i] += 1
            extra: dict[str, Any] = {"from": m["from"], "msg_lclock": m["lclock"]}
            if clocks:
                recv_hlc(i, t, *m["hlc"])
                extra["msg_pt"] = m["pt"]
                extra["msg_hlc"] = list(m["hlc"])
            if m.get("dup"):
                extra["dup"] = True
            received[i] += 1
            write(i, tick_line(i, t, "receive", **extra))
        else:
            d = rngs[i].randint(1, 10)
            lam[i] += 1
            if vector:
                vcs[i][i] += 1
            if clocks:
                local_hlc(i, t)
            if d <= 3:
                a, b = (i + 1) % n + 1, (i - 1) % n + 1
                to = [a] if d == 1 else [b] if d == 2 else [j + 1 for j in range(n) if j != i]
                write(i, tick_line(i, t, "send", dice=d, to=to))
                for j1 in to:
                    j = j1 - 1
                    sent[i] += 1
                    reason = ("crashed" if crashed[j] else "partition" if cut(t, i, j)
                              else "loss" if rng.random() < loss else None)
                    if reason:
                        write(i, {**head(i, t, "drop"), "to": j1, "msg_lclock": lam[i], "reason": reason})
                        continue
                    msg = {"from": i + 1, "lclock": lam[i], "vclock": list(vcs[i]),
                           "pt": pt(i, t), "hlc": list(hlc[i])}
                    copies = 2 if rng.random() < dup else 1
                    for c in range(copies):
                        at = max(t + delay * (0.5 + rng.random()), last_arrival[i][j] + 1e-6)
                        last_arrival[i][j] = at
                        heapq.heappush(heap, (at, 0, seq, j, {**msg, "dup": c == 1}))
                        seq += 1
            else:
                write(i, tick_line(i, t, "internal", dice=d))
        heapq.heappush(heap, (due[i] / rates[i], 2, seq, i, None))
        seq += 1
    for i in range(n):
        if not crashed[i]:
            write(i, {**head(i, duration, "stop"), "reason": "duration", "ticks": ticks[i],
                      "lclock": lam[i], "sent": sent[i], "received": received[i],
                      "unprocessed": len(queues[i])})
        files[i].close()
    meta = {"schema": 1, "run_id": run_id, "status": "completed", "seed": seed,
            "settings": {"machines": n, "duration": duration, "rates": list(rates),
                         "vector_clocks": vector},
            "machines": [{"id": i + 1, "rate": rates[i], "ticks": ticks[i], "lclock": lam[i]}
                         for i in range(n)]}
    if partition is not None:
        meta["faults"] = {"plan": {"seed": seed, "partitions": [
            {"start": partition[0], "end": partition[1], "groups": partition[2]}]}}
    (dest / "run.json").write_bytes(orjson.dumps(meta, option=orjson.OPT_INDENT_2))
    return dest
