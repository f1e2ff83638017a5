"""An independent oracle for run folders, used by the integration tests.

It re-derives every rule from the logs alone (SPEC sections 1, 5 and 6), so a bug in the
runtime cannot hide behind the same bug in the checker it would share code with. It
imports nothing of lclock: the fault plan is read from run.json as plain JSON.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict, deque
from datetime import datetime, timezone
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


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.rstrip("Z")).replace(tzinfo=timezone.utc).timestamp()


class Plan:
    """The fault plan of run.json, read independently of lclock's own reader."""

    def __init__(self, meta: dict[str, Any]) -> None:
        plan = (meta.get("faults") or {}).get("plan") or {}
        self.default = {k: plan.get(k, 0.0) for k in ("loss", "duplicate")}
        self.links = {
            tuple(int(x) for x in k.split("->")): v for k, v in (plan.get("links") or {}).items()
        }
        self.reorder = bool(plan.get("reorder", False))
        self.partitions = plan.get("partitions", [])
        self.pauses = plan.get("pauses", [])
        self.crashes = {c["machine"]: c["time"] for c in plan.get("crashes", [])}

    def link(self, a: int, b: int, key: str) -> float:
        return float(self.links.get((a, b), self.default).get(key, self.default[key]))

    def cut(self, a: int, b: int, t: float) -> bool:
        for p in self.partitions:
            if p["start"] <= t < p["end"]:
                groups = p["groups"]
                return _side(groups, a) != _side(groups, b)
        return False

    def paused(self, mid: int, t: float) -> bool:
        return any(p["machine"] == mid and p["start"] <= t < p["start"] + p["length"]
                   for p in self.pauses)


def _side(groups: list[list[int]], i: int) -> int:
    """The group a machine is in; -1: the machines no group names, together."""
    return next((k for k, g in enumerate(groups) if i in g), -1)


def verify(run_dir: Path, *, graceful: bool = True, slack: float = 0.0) -> list[str]:
    """Return every rule violated by the run folder (empty when all holds).

    ``slack`` (seconds) is how far a real run's wall clock may stray from the plan's
    instants when times are compared (0 for a simulation, which keeps them exactly).
    """
    meta, logs = load(run_dir)
    errs: list[str] = []
    n = len(meta["machines"])
    rate = {m["id"]: m["rate"] for m in meta["machines"]}
    sides = meta["settings"]["dice_sides"]
    plan = Plan(meta)
    t0 = next((e["t0_epoch"] for ls in logs.values() for e in ls if e.get("event") == "connected"), None)

    def since_t0(e: dict[str, Any]) -> float:
        return _epoch(e["ts"]) - (t0 or 0.0)

    # Pass 1: what every channel carried, in order: each message not dropped, once or twice.
    copies: dict[tuple[int, int], list[tuple[int, list[int] | None]]] = defaultdict(list)
    for mid, lines in logs.items():
        dropped: dict[tuple[int, int], int] = {}
        for i, e in enumerate(lines, 1):
            if e.get("event") == "drop":
                dropped[(e["to"], e["msg_lclock"])] = i
                errs += _check_drop(e, mid, plan, since_t0(e) if t0 else 0.0, slack,
                                    f"machine-{mid}.jsonl:{i}")
        for e in lines:
            if e.get("event") != "send":
                continue
            dups = e.get("dup_to", [])
            for to in e["to"]:
                if (to, e["lclock"]) in dropped:
                    continue
                k = 2 if to in dups else 1
                if k == 2 and plan.link(mid, to, "duplicate") <= 0:
                    errs.append(f"machine-{mid}: message {e['lclock']} to {to} duplicated, "
                                "but the plan does not duplicate on that link")
                copies[(mid, to)] += [(e["lclock"], e.get("vclock"))] * k
    waiting = {ch: deque(c) for ch, c in copies.items()}
    pending = {ch: Counter(lc for lc, _ in c) for ch, c in copies.items()}
    vclocks = {ch: {lc: vc for lc, vc in c} for ch, c in copies.items()}
    # Pass 2: replay each machine's clocks by the rules.
    handled: dict[tuple[int, int], int] = defaultdict(int)
    stops: dict[int, dict[str, Any]] = {}
    skipped: dict[int, int] = defaultdict(int)
    for mid, lines in logs.items():
        L, tick = 0, 0
        V = [0] * n
        a, b = mid % n + 1, (mid - 2) % n + 1
        everyone = [j for j in range(1, n + 1) if j != mid]
        seen: set[tuple[int, int]] = set()
        after_stop = False
        for i, e in enumerate(lines, 1):
            where = f"machine-{mid}.jsonl:{i}"
            for f in ("ts", "event", "level", "run_id", "machine"):
                if f not in e:
                    errs.append(f"{where}: missing {f}")
            if e.get("machine") != mid or e.get("run_id") != meta["run_id"]:
                errs.append(f"{where}: wrong machine or run_id")
            if after_stop:
                errs.append(f"{where}: a line after the stop line")
            ev = e.get("event")
            if ev == "stop":
                stops[mid] = e
                after_stop = True
            if ev == "resume":
                skipped[mid] += e["skipped"]
            if ev not in ("send", "receive", "internal"):
                continue
            tick += 1
            if e["tick"] != tick:
                errs.append(f"{where}: tick {e['tick']} expected {tick}")
            if t0 is not None:
                t = since_t0(e)
                if plan.paused(mid, t - slack) and plan.paused(mid, t + slack):
                    errs.append(f"{where}: a tick at {t:.3f} s while the plan pauses machine {mid}")
                if mid in plan.crashes and t > plan.crashes[mid] + slack:
                    errs.append(f"{where}: a tick at {t:.3f} s after machine {mid} crashed")
            if ev == "receive":
                ch = (e["from"], mid)
                lc_got = e["msg_lclock"]
                if pending.get(ch, Counter())[lc_got] <= 0:
                    errs.append(f"{where}: receive of {lc_got} from {e['from']} matches no copy sent")
                    continue
                if not plan.reorder:
                    lc, _vc = waiting[ch][0]
                    if lc != lc_got:
                        errs.append(f"{where}: FIFO broken on {ch}: got {lc_got}, next sent {lc}")
                        continue
                    waiting[ch].popleft()
                else:
                    waiting[ch].remove((lc_got, vclocks[ch][lc_got]))
                pending[ch][lc_got] -= 1
                vc = vclocks[ch][lc_got]
                handled[ch] += 1
                key = (e["from"], lc_got)
                if bool(e.get("dup")) != (key in seen):
                    errs.append(f"{where}: dup is {e.get('dup')!r}, but this message was "
                                f"{'' if key in seen else 'not '}handled before")
                seen.add(key)
                L = max(L, lc_got) + 1
                if vc is not None:
                    V = [max(x, y) for x, y in zip(V, vc)]
                V[mid - 1] += 1
                if not e["lclock"] > lc_got:
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
        if meta["status"] == "completed" and mid not in plan.crashes:
            want_ticks = math.ceil(rate[mid] * meta["settings"]["duration"] - 1e-9) - skipped[mid]
            if tick != want_ticks:
                errs.append(f"machine-{mid}: {tick} ticks, expected rate x duration "
                            f"less {skipped[mid]} skipped = {want_ticks}")
        if mid in plan.crashes and mid in stops:
            errs.append(f"machine-{mid}: crashed by the plan, yet it logged a stop line")
    if graceful:
        for mid in logs:
            if mid in plan.crashes:
                continue
            st = stops.get(mid)
            if st is None:
                errs.append(f"machine-{mid}: no stop line")
                continue
            left = sum(len(copies[(s, mid)]) - handled[(s, mid)] for s in logs if s != mid)
            if left != st["unprocessed"]:
                errs.append(
                    f"machine-{mid}: {left} copies sent to it and never handled, "
                    f"stop says unprocessed={st['unprocessed']}"
                )
            for s, c in st.get("unprocessed_from", {}).items():
                if len(copies[(int(s), mid)]) - handled[(int(s), mid)] != c:
                    errs.append(f"machine-{mid}: unprocessed_from[{s}]={c} does not match")
    return errs


def _check_drop(e: dict[str, Any], mid: int, plan: Plan, t: float, slack: float, where: str) -> list[str]:
    """A drop only where the plan allows it."""
    to, reason = e.get("to"), e.get("reason")
    if reason == "loss":
        ok = plan.link(mid, to, "loss") > 0
    elif reason == "partition":
        ok = plan.cut(mid, to, t) or plan.cut(mid, to, t - slack) or plan.cut(mid, to, t + slack)
    elif reason == "crashed":
        ok = to in plan.crashes and t >= plan.crashes[to] - slack
    else:
        ok = False
    return [] if ok else [f"{where}: drop to {to} ({reason}) at {t:.3f} s, which the plan does not allow"]
