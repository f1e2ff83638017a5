"""An independent oracle for run folders, used by the integration tests.

It re-derives every rule from the logs alone (SPEC sections 1 and 5), so a bug in the
runtime cannot hide behind the same bug in the checker it would share code with.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict, deque
from pathlib import Path
from typing import Any


def load(run_dir: Path) -> tuple[dict[str, Any], dict[int, list[dict[str, Any]]]]:
    meta = json.loads((run_dir / "run.json").read_text())
    logs: dict[int, list[dict[str, Any]]] = {}
    for path in sorted(run_dir.glob("machine-*.jsonl")):
        mid = int(path.stem.split("-")[1])
        raw = path.read_bytes()
        assert raw == b"" or raw.endswith(b"\n"), f"{path.name}: last line not terminated"
        logs[mid] = [json.loads(line) for line in raw.decode().splitlines()]
    return meta, logs


def verify(run_dir: Path, *, graceful: bool = True) -> list[str]:
    """Return every rule violated by the run folder (empty when all holds)."""
    meta, logs = load(run_dir)
    errs: list[str] = []
    n = len(meta["machines"])
    rate = {m["id"]: m["rate"] for m in meta["machines"]}
    sides = meta["settings"]["dice_sides"]
    # Pass 1: what every channel carried, in order.
    sends: dict[tuple[int, int], deque[tuple[int, list[int] | None]]] = defaultdict(deque)
    sent_count: dict[tuple[int, int], int] = defaultdict(int)
    for mid, lines in logs.items():
        for e in lines:
            if e.get("event") == "send":
                for to in e["to"]:
                    sends[(mid, to)].append((e["lclock"], e.get("vclock")))
                    sent_count[(mid, to)] += 1
    # Pass 2: replay each machine's clocks by the rules.
    handled: dict[tuple[int, int], int] = defaultdict(int)
    stops: dict[int, dict[str, Any]] = {}
    for mid, lines in logs.items():
        L, tick = 0, 0
        V = [0] * n
        a, b = mid % n + 1, (mid - 2) % n + 1
        everyone = [j for j in range(1, n + 1) if j != mid]
        for i, e in enumerate(lines, 1):
            where = f"machine-{mid}.jsonl:{i}"
            for f in ("ts", "event", "level", "run_id", "machine"):
                if f not in e:
                    errs.append(f"{where}: missing {f}")
            if e.get("machine") != mid or e.get("run_id") != meta["run_id"]:
                errs.append(f"{where}: wrong machine or run_id")
            ev = e.get("event")
            if ev == "stop":
                stops[mid] = e
            if ev not in ("send", "receive", "internal"):
                continue
            tick += 1
            if e["tick"] != tick:
                errs.append(f"{where}: tick {e['tick']} expected {tick}")
            if ev == "receive":
                ch = (e["from"], mid)
                if not sends[ch]:
                    errs.append(f"{where}: receive from {e['from']} matches no send")
                    continue
                lc, vc = sends[ch].popleft()
                handled[ch] += 1
                if lc != e["msg_lclock"]:
                    errs.append(f"{where}: FIFO broken on {ch}: got {e['msg_lclock']}, next sent {lc}")
                L = max(L, e["msg_lclock"]) + 1
                if vc is not None:
                    V = [max(x, y) for x, y in zip(V, vc)]
                V[mid - 1] += 1
                if not e["lclock"] > lc:
                    errs.append(f"{where}: C(receive) <= C(send)")
                if vc is not None and not (all(x <= y for x, y in zip(vc, V)) and vc != V):
                    errs.append(f"{where}: V(send) not < V(receive)")
            else:
                L += 1
                V[mid - 1] += 1
                d = e["dice"]
                if not 1 <= d <= sides:
                    errs.append(f"{where}: dice {d} out of 1..{sides}")
                want = {1: [a], 2: [b], 3: everyone}.get(d)
                if ev == "send" and sorted(e["to"]) != sorted(want or []):
                    errs.append(f"{where}: dice {d} sent to {e['to']}, expected {want}")
                if ev == "internal" and want is not None:
                    errs.append(f"{where}: dice {d} must send")
            if e["lclock"] != L:
                errs.append(f"{where}: lclock {e['lclock']} expected {L}")
            if "vclock" in e and e["vclock"] != V:
                errs.append(f"{where}: vclock {e['vclock']} expected {V}")
        if meta["status"] == "completed":
            want_ticks = math.ceil(rate[mid] * meta["settings"]["duration"] - 1e-9)
            if tick != want_ticks:
                errs.append(f"machine-{mid}: {tick} ticks, expected rate x duration = {want_ticks}")
    if graceful:
        for mid in logs:
            st = stops.get(mid)
            if st is None:
                errs.append(f"machine-{mid}: no stop line")
                continue
            waiting = sum(sent_count[(s, mid)] - handled[(s, mid)] for s in logs if s != mid)
            if waiting != st["unprocessed"]:
                errs.append(
                    f"machine-{mid}: {waiting} messages sent to it and never handled, "
                    f"stop says unprocessed={st['unprocessed']}"
                )
            for s, c in st.get("unprocessed_from", {}).items():
                if sent_count[(int(s), mid)] - handled[(int(s), mid)] != c:
                    errs.append(f"machine-{mid}: unprocessed_from[{s}]={c} does not match")
    return errs
