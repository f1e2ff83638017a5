"""A small deterministic run-folder generator for the analysis tests and benchmark.

It writes schema-v1 run folders in virtual time with its own implementation of the model
rules, on purpose independent of ``lclock.model``: the checker is meant to verify a run
without trusting the code that produced it, so its tests must not share that code either.
``bug=`` switches on one of the classic mistakes of the exercise (DESIGN.md), so each broken
run is what a buggy implementation would really log, not a hand-edited line.
"""

from __future__ import annotations

import heapq
import os
import random
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

BUGS = (
    "dice_1_9",  # random range 1..dice_sides-1
    "send_before_increment",  # the message carries the clock before the +1
    "broadcast_double_increment",  # L += 1 per recipient on a broadcast
    "broadcast_two_events",  # a broadcast logged as two send events (two ticks)
    "receive_no_plus1",  # L = max(L, m) on receive
    "whole_queue",  # every queued message handled in one tick
    "sleep_after_work",  # sleep(1/rate) after the work: ticks drift late
    "lose_message",  # one message silently dropped in flight
    "dup_late",  # a duplicate's second copy held back behind later messages of its link
)


def _ts(t: float) -> str:
    """RFC 3339 with microseconds, from seconds after 2026-01-01T00:00:00Z."""
    import time

    base = 1767225600  # 2026-01-01T00:00:00Z
    us = round((base + t) * 1_000_000)
    sec, frac = divmod(us, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac:06d}Z"


class _TsCache:
    """Formats timestamps fast enough for the 1M-event benchmark (strftime once a second)."""

    def __init__(self) -> None:
        self.sec = -1
        self.prefix = ""

    def __call__(self, t: float) -> str:
        import time

        us = round((1767225600 + t) * 1_000_000)
        sec, frac = divmod(us, 1_000_000)
        if sec != self.sec:
            self.sec = sec
            self.prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        return f"{self.prefix}.{frac:06d}Z"


@dataclass
class Faults:
    """The lines and fields of SPEC sections 6 and 7, for tests that the analysis accepts
    them: dropped messages (a ``drop`` line of the sender), duplicate deliveries (the copy's
    receive has ``dup: true``), one pause (``pause``/``resume`` with the skipped ticks),
    ``fault`` lines, and physical and hybrid clocks (``pt``, ``hlc``, ``msg_pt``, ``msg_hlc``).
    """

    drop_every: int = 0  # every k-th message is dropped
    duplicate_every: int = 0  # every k-th message is delivered twice (not in the last 2 s)
    pause: tuple[int, float, float] | None = None  # (machine, start s, length s)
    fault_lines: bool = False  # machine 1 cut off from 1/3 of the run to 2/3 (drops, lines)
    clocks: bool = False

    def plan(self, seed: int, duration: float) -> dict[str, Any]:
        """The fault plan as run.json states it (SPEC section 6)."""
        return {"seed": seed, "latency_ms": 0.0, "latency_dist": "constant",
                "loss": 0.1 if self.drop_every else 0.0,
                "duplicate": 0.1 if self.duplicate_every else 0.0, "links": {},
                "reorder": False,
                "partitions": ([{"start": duration / 3, "end": 2 * duration / 3, "groups": [[1]]}]
                               if self.fault_lines else []),
                "pauses": ([{"machine": self.pause[0], "start": self.pause[1],
                             "length": self.pause[2]}] if self.pause else []),
                "crashes": []}


def make_run(
    dest: Path,
    *,
    rates: tuple[int, ...] = (1, 3, 6),
    duration: float = 20.0,
    seed: int = 7,
    dice_sides: int = 10,
    vector: bool = True,
    delay: float = 0.002,
    bug: str | None = None,
    run_id: str | None = None,
    settings: bool = True,
    faults: Faults | None = None,
) -> Path:
    """Write a run folder at ``dest`` (created) and return it.

    Virtual time: tick k of machine i is due at (k-1)/rate_i; a message sent at t arrives at
    t + delay (+ a tiny per-channel jitter that keeps FIFO). At the end every machine stops,
    takes in all messages in flight and logs ``stop`` with ``unprocessed``.
    """
    if bug is not None and bug not in BUGS:
        raise ValueError(f"unknown bug {bug!r}")
    dest.mkdir(parents=True, exist_ok=True)
    n = len(rates)
    run_id = run_id or dest.name
    rng_net = random.Random(f"net:{seed}")
    rngs = [random.Random(f"fixture:{seed}:{i}") for i in range(1, n + 1)]
    fmt = _TsCache()
    files = [open(dest / f"machine-{i}.jsonl", "wb") for i in range(1, n + 1)]  # noqa: SIM115
    lam = [0] * n
    vcs = [[0] * n for _ in range(n)]
    ticks = [0] * n
    sent = [0] * n
    received = [0] * n
    queues: list[deque[Any]] = [deque() for _ in range(n)]
    last_arrival = [[0.0] * n for _ in range(n)]
    heap: list[tuple[float, int, int, int, Any]] = []
    seq = 0
    lost_one = False
    fx = faults or Faults()
    plan = fx.plan(seed, duration)
    msg_no = 0
    slots = [0] * n  # deadlines passed: ticks run plus ticks skipped while paused
    skipped = [0] * n
    hlc = [[0, 0] for _ in range(n)]
    fault_written = [0] * n

    def pt(t: float) -> int:
        return round((1767225600 + t) * 1_000_000)

    def hlc_local(i: int, t: float) -> None:
        l0, c0 = hlc[i]
        l1 = max(l0, pt(t))
        hlc[i] = [l1, c0 + 1 if l1 == l0 else 0]

    def hlc_receive(i: int, t: float, lm: int, cm: int) -> None:
        l0, c0 = hlc[i]
        l1 = max(l0, lm, pt(t))
        if l1 == l0 == lm:
            c1 = max(c0, cm) + 1
        elif l1 == l0:
            c1 = c0 + 1
        elif l1 == lm:
            c1 = cm + 1
        else:
            c1 = 0
        hlc[i] = [l1, c1]

    def write(i: int, obj: dict[str, Any]) -> None:
        files[i].write(orjson.dumps(obj) + b"\n")

    for i in range(n):
        write(i, {"ts": fmt(0.0), "event": "start", "level": "info", "run_id": run_id,
                  "machine": i + 1, "rate": rates[i], "seed": seed, "pid": 0})
        heapq.heappush(heap, (0.0, 1, seq, i, None))
        seq += 1

    def deliver(t: float, s: int, to: list[int], c: int, vc: tuple[int, ...] | None,
                tick: int) -> tuple[list[int], list[dict[str, Any]]]:
        """Send one message to each of ``to``: (the recipients that get two copies, the
        ``drop`` lines of those that get none), logged after the send line as lclock does."""
        nonlocal seq, lost_one, msg_no
        dup_to: list[int] = []
        drops: list[dict[str, Any]] = []
        for j1 in to:
            j = j1 - 1
            if bug == "lose_message" and not lost_one and t > duration / 3:
                lost_one = True
                continue
            msg_no += 1
            cut = fx.fault_lines and duration / 3 <= t < 2 * duration / 3 and (s == 0) != (j == 0)
            if cut or (fx.drop_every and msg_no % fx.drop_every == 0):
                drops.append({"ts": fmt(t), "event": "drop", "level": "info", "run_id": run_id,
                              "machine": s + 1, "to": j1, "msg_lclock": c,
                              "reason": "partition" if cut else "loss", "tick": tick})
                continue
            copies = 2 if (fx.duplicate_every and msg_no % fx.duplicate_every == 0
                           and t < duration - 2) else 1
            if copies == 2:
                dup_to.append(j1)
            for copy in range(copies):
                at = max(t + delay + rng_net.random() * delay, last_arrival[s][j] + 1e-6)
                if copy and bug == "dup_late":
                    at += 3.0  # not clamped: later messages overtake it
                else:
                    last_arrival[s][j] = at
                heapq.heappush(heap, (at, 0, seq, j, (s + 1, c, vc, pt(t), tuple(hlc[s]),
                                                      copy == 1)))
                seq += 1
        return dup_to, drops

    def send(i: int, t: float, d: int, to: list[int], carried: int) -> None:
        vc = tuple(vcs[i]) if vector else None
        dup_to, drops = deliver(t, i, to, carried, vc, ticks[i])
        extra: dict[str, Any] = {"dup_to": dup_to} if dup_to else {}
        write(i, line(i, t, "send", dice=d, to=to, **extra))
        for drop in drops:
            write(i, drop)
        sent[i] += len(to)

    def line(i: int, t: float, event: str, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"ts": fmt(t), "event": event, "level": "info", "run_id": run_id,
                               "machine": i + 1, "tick": ticks[i], "lclock": lam[i],
                               "queue_len": len(queues[i])}
        if vector:
            out["vclock"] = list(vcs[i])
        if fx.clocks:
            out["pt"] = pt(t)
            out["hlc"] = list(hlc[i])
        out.update(extra)
        return out

    def receive(i: int, t: float) -> None:
        sender, c, vc, mpt, mhlc, dup = queues[i].popleft()
        lam[i] = max(lam[i], c) + (0 if bug == "receive_no_plus1" else 1)
        hlc_receive(i, t, *mhlc)
        extra: dict[str, Any] = {"from": sender, "msg_lclock": c}
        if fx.clocks:
            extra.update(msg_pt=mpt, msg_hlc=list(mhlc))
        if dup:
            extra["dup"] = True
        if vector and vc is not None:
            v = vcs[i]
            for k in range(n):
                if vc[k] > v[k]:
                    v[k] = vc[k]
            v[i] += 1
        received[i] += 1
        write(i, line(i, t, "receive", **extra))

    def paused(i: int, t: float) -> bool:
        """Whether machine i's tick due at t falls in its pause (and log pause/resume)."""
        if fx.pause is None or fx.pause[0] != i + 1:
            return False
        start, end = fx.pause[1], fx.pause[1] + fx.pause[2]
        if start <= t < end:
            if not skipped[i]:
                write(i, {"ts": fmt(t), "event": "pause", "level": "info", "run_id": run_id,
                          "machine": i + 1})
            skipped[i] += 1
            return True
        if t >= end and skipped[i] and fx.pause[2] >= 0:
            write(i, {"ts": fmt(t), "event": "resume", "level": "info", "run_id": run_id,
                      "machine": i + 1, "skipped": skipped[i]})
            fx.pause = (fx.pause[0], fx.pause[1], -1.0)  # resumed once
        return False

    def fault_line(i: int, t: float) -> None:
        for k, (at, kind) in enumerate(((duration / 3, "partition"), (2 * duration / 3, "heal"))):
            if fx.fault_lines and fault_written[i] == k and t >= at:
                write(i, {"ts": fmt(t), "event": "fault", "level": "info", "run_id": run_id,
                          "machine": i + 1, "kind": kind, "groups": [[1], list(range(2, n + 1))],
                          "start": duration / 3, "end": 2 * duration / 3})
                fault_written[i] += 1

    work = 0.02 if bug == "sleep_after_work" else 0.0
    while heap:
        t, kind, _, i, payload = heapq.heappop(heap)
        if kind == 0:
            queues[i].append(payload)
            continue
        if t >= duration:
            continue
        slots[i] += 1
        fault_line(i, t)
        if paused(i, t):
            heapq.heappush(heap, (slots[i] / rates[i], 1, seq, i, None))
            seq += 1
            continue
        ticks[i] += 1
        if queues[i]:
            if bug == "whole_queue":
                while queues[i]:
                    receive(i, t)
            else:
                receive(i, t)
        else:
            hi = dice_sides - 1 if bug == "dice_1_9" else dice_sides
            d = rngs[i].randint(1, hi)
            me = i + 1
            a, b = me % n + 1, (me - 2) % n + 1
            hlc_local(i, t)
            if d > 3:
                lam[i] += 1
                if vector:
                    vcs[i][i] += 1
                write(i, line(i, t, "internal", dice=d))
            else:
                to = [a] if d == 1 else [b] if d == 2 else [p for p in range(1, n + 1) if p != me]
                if bug == "broadcast_two_events" and d == 3:
                    for k, p in enumerate(to):
                        if k:
                            ticks[i] += 1
                        lam[i] += 1
                        if vector:
                            vcs[i][i] += 1
                        send(i, t + k * 1e-4, d, [p], lam[i])
                else:
                    before = lam[i]
                    lam[i] += len(to) if bug == "broadcast_double_increment" else 1
                    if vector:
                        vcs[i][i] += 1
                    carried = before if bug == "send_before_increment" else lam[i]
                    send(i, t, d, to, carried)
        nxt = t + work + 1.0 / rates[i] if work else slots[i] / rates[i]
        heapq.heappush(heap, (nxt, 1, seq, i, None))
        seq += 1

    for i in range(n):
        froms: dict[str, int] = {}
        for sender, *_ in queues[i]:
            froms[str(sender)] = froms.get(str(sender), 0) + 1
        write(i, {"ts": fmt(duration), "event": "stop", "level": "info", "run_id": run_id,
                  "machine": i + 1, "reason": "duration", "ticks": ticks[i], "lclock": lam[i],
                  "sent": sent[i], "received": received[i], "unprocessed": len(queues[i]),
                  "unprocessed_from": froms})
        files[i].close()
    run: dict[str, Any] = {
        "schema": 1,
        "run_id": run_id,
        "status": "completed",
        "started_at": _ts(0.0),
        "ended_at": _ts(duration),
        "exit_code": 0,
        "reason": "duration",
        "seed": seed,
        "machines": [
            {"id": i + 1, "rate": rates[i], "pid": 0, "exit_code": 0, "ticks": ticks[i],
             "lclock": lam[i]}
            for i in range(n)
        ],
    }
    if settings:
        run["settings"] = {"machines": n, "duration": duration, "seed": seed,
                           "rates": list(rates), "dice_sides": dice_sides,
                           "vector_clocks": vector}
    if faults is not None:
        run["faults"] = {"plan": plan, "applied": _applied(plan, fx, skipped, n)}
        if fx.clocks:  # physical clocks right (the host's time), so the bound is 1 µs
            run["clocks"] = {"kept": ["lamport", "vector", "hlc"] if vector else ["lamport", "hlc"],
                             "pt": True, "plan": {"offsets_us": [0] * n, "drifts_ppm": [0.0] * n,
                                                  "bumps": []}, "hlc_bound_us": 1}
    (dest / "run.json").write_bytes(orjson.dumps(run, option=orjson.OPT_INDENT_2))
    return dest


def _applied(plan: dict[str, Any], fx: Faults, skipped: list[int], n: int) -> list[dict[str, Any]]:
    """run.json ``faults.applied``: what the fixture logged (a partition and its heal, a
    pause and, when its resume came before the end, the resume)."""
    out: list[dict[str, Any]] = []
    for p in plan["partitions"]:
        groups = [[1], list(range(2, n + 1))]
        out += [{"kind": "partition", "groups": groups, "at": p["start"]},
                {"kind": "heal", "groups": groups, "at": p["end"]}]
    for p in plan["pauses"]:
        if skipped[p["machine"] - 1]:
            out.append({"kind": "pause", "machine": p["machine"], "at": p["start"]})
        if fx.pause is not None and fx.pause[2] < 0:  # resumed (see paused())
            out.append({"kind": "resume", "machine": p["machine"], "at": p["start"] + p["length"]})
    return out


def copy_run(src: Path, dest: Path) -> Path:
    """A writable copy of a run folder (the shared samples are read-only)."""
    dest.mkdir(parents=True, exist_ok=True)
    for p in src.iterdir():
        if p.is_file():
            (dest / p.name).write_bytes(p.read_bytes())
            os.chmod(dest / p.name, 0o644)
    return dest


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines() if x.strip()]


def _dumps(x: Any) -> bytes:
    """One line as lclock writes it; integers beyond 64 bits (hostile tests) via json."""
    try:
        return orjson.dumps(x)
    except TypeError:
        import json

        return json.dumps(x, separators=(",", ":")).encode()


def write_lines(path: Path, lines: list[dict[str, Any]]) -> None:
    path.write_bytes(b"".join(_dumps(x) + b"\n" for x in lines))
