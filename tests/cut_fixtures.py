"""Small random runs for the tests of ``lclock cuts``, with the truth kept aside.

A script of steps (an internal event, a send to some machines, or the receive of any
message in flight, not only the oldest) is played with real Lamport clocks and written as
a run folder of JSON lines (SPEC section 5); the messages are also returned as the script
knows them, so an oracle can judge cuts without lclock's matching.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

T0 = 1_767_225_600.0
STEP_S = 0.1


def ts(t: float) -> str:
    """RFC 3339 UTC with microseconds, as lclock writes it (T0 is 2026-01-01)."""
    us = round(t * 1e6)
    s, us = divmod(us, 1_000_000)
    return f"2026-01-01T00:{s // 60:02d}:{s % 60:02d}.{us:06d}Z"


@dataclass
class Played:
    """The logs of a played script and its messages as (sender, send index, receiver,
    receive index), indexes 0-based among each machine's tick events."""

    n: int
    lines: dict[int, list[dict[str, Any]]]
    messages: list[tuple[int, int, int, int]] = field(default_factory=list)
    events: dict[int, int] = field(default_factory=dict)


def play(n: int, steps: int, seed: int, run_id: str = "cuts-test") -> Played:
    """A random run of ``steps`` tick events on ``n`` machines (one event per step)."""
    rng = random.Random(seed)
    L = [0] * (n + 1)
    vc = [[0] * n for _ in range(n + 1)]
    out = Played(n, {m: [_line("start", m, 0, run_id) | {"rate": 10, "seed": seed, "pid": 0}]
                     for m in range(1, n + 1)})
    flight: dict[int, list[tuple[int, int, int, list[int]]]] = {m: [] for m in range(1, n + 1)}
    count = dict.fromkeys(range(1, n + 1), 0)
    for step in range(steps):
        m = rng.randint(1, n)
        d = _line("internal", m, (step + 1) * STEP_S, run_id)
        d |= {"tick": count[m] + 1, "queue_len": 0}
        vc[m][m - 1] += 1
        if flight[m] and rng.random() < 0.5:
            s, ks, sl, svc = flight[m].pop(rng.randrange(len(flight[m])))
            L[m] = max(L[m], sl) + 1
            vc[m] = [max(a, b) for a, b in zip(vc[m], svc, strict=True)]
            d |= {"event": "receive", "from": s, "msg_lclock": sl}
            out.messages.append((s, ks, m, count[m]))
        else:
            L[m] += 1
            to = [j for j in range(1, n + 1) if j != m and rng.random() < 0.5]
            if to:
                d |= {"event": "send", "to": to, "dice": 1}
                for j in to:
                    flight[j].append((m, count[m], L[m], list(vc[m])))
            else:
                d |= {"dice": 7}
        d |= {"lclock": L[m], "vclock": list(vc[m])}
        out.lines[m].append(d)
        count[m] += 1
    out.events = count
    return out


def _line(event: str, m: int, t: float, run_id: str) -> dict[str, Any]:
    return {"ts": ts(t), "event": event, "level": "info", "run_id": run_id, "machine": m}


def write(p: Played, folder: Path, extra: dict[int, list[dict[str, Any]]] | None = None) -> Path:
    """The run folder: one log per machine (with ``extra`` lines at their end) and run.json."""
    folder.mkdir(parents=True, exist_ok=True)
    for m, lines in p.lines.items():
        body = lines + (extra or {}).get(m, [])
        (folder / f"machine-{m}.jsonl").write_text("".join(json.dumps(d) + "\n" for d in body))
    run_id = p.lines[1][0]["run_id"]
    (folder / "run.json").write_text(json.dumps({
        "run_id": run_id, "status": "completed", "seed": 0,
        "settings": {"machines": p.n}}))
    return folder


def consistent(p: Played, cut: dict[int, int]) -> bool:
    """The oracle: no message taken in inside the cut (event counts) and sent outside it."""
    return not any(r < cut[j] and s >= cut[i] for i, s, j, r in p.messages)


def add_snapshots(run: Path, snaps: dict[str, dict[int, int]]) -> None:
    """Add ``snapshot`` lines (SPEC 12.2) to a run's logs: for each id, each machine's
    recorded tick; the line goes right after that tick's line (before the machine's first
    tick for tick 0), with the clocks of that tick, an empty queue, and as each incoming
    channel's state the messages sent before the sender's recorded tick and handled after
    the receiver's (what a recording would hold were the cut consistent)."""
    logs = {int(p.stem.split("-")[1]): [json.loads(x) for x in p.read_text().splitlines()]
            for p in run.glob("machine-*.jsonl")}
    ticks = {m: [d for d in lines if "tick" in d] for m, lines in logs.items()}
    for sid, cut in snaps.items():
        for m, tick in cut.items():
            at = next(i for i, d in enumerate(logs[m]) if d.get("tick") == tick) if tick else \
                next(i for i, d in enumerate(logs[m]) if "tick" in d) - 1
            d = logs[m][at] if tick else logs[m][0]
            channels = {str(s): [{"from": s, "msg_lclock": r["msg_lclock"],
                                  "send_tick": _send_tick(ticks[s], r["msg_lclock"])}
                                 for r in ticks[m] if r["event"] == "receive" and r["from"] == s
                                 and r["tick"] > tick and _send_tick(ticks[s], r["msg_lclock"]) <= cut[s]]
                        for s in cut if s != m}
            line = {"ts": d["ts"], "event": "snapshot", "level": "info", "run_id": d["run_id"], "machine": m,
                    "id": sid, "lclock": d.get("lclock", 0), "vclock": d.get("vclock", [0] * len(cut)),
                    "tick": tick, "queue": [], "channels": channels}
            logs[m].insert(at + 1, line)
    for m, lines in logs.items():
        (run / f"machine-{m}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


def _send_tick(sender_ticks: list[dict[str, Any]], lclock: int) -> int:
    return next(d["tick"] for d in sender_ticks if d["event"] == "send" and d["lclock"] == lclock)
