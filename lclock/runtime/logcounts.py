"""What a machine that the plan crashed did, read back from its own log.

A crashed machine gives no stop report; its per-link counts are what its log says, so the
launcher's message balance (and a vm's run.json entry) can still be made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def counts_from_log(path: Path, limit: int = 1 << 30) -> dict[str, Any]:
    """What a machine that the plan crashed did, from its own log (it gave no stop report).

    Per link: messages sent, dropped and duplicated, and messages it handled (its
    ``taken_from``: what it had taken in but not handled is lost with it).
    """
    import orjson

    sent: dict[str, int] = {}
    dropped: dict[str, int] = {}
    dups: dict[str, int] = {}
    handled: dict[str, int] = {}
    ticks = lclock = 0
    snaps: list[dict[str, Any]] = []  # the snapshots it completed (SPEC 12): their lines

    def bump(d: dict[str, int], key: Any) -> None:
        d[str(key)] = d.get(str(key), 0) + 1

    try:
        with open(path, "rb") as fh:
            for raw in fh:
                if fh.tell() > limit:
                    break
                try:
                    e = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue
                kind = e.get("event")
                if kind == "send":
                    for dst in e.get("to", ()):
                        bump(sent, dst)
                    for dst in e.get("dup_to", ()):
                        bump(dups, dst)
                elif kind == "receive":
                    bump(handled, e.get("from"))
                elif kind == "drop":
                    bump(dropped, e.get("to"))
                elif kind == "snapshot" and isinstance(e.get("id"), int):
                    snaps.append({"id": e["id"], "recorded": True, "complete": True,
                                  "waiting_for": [], "from_log": True})
                if kind in ("send", "receive", "internal"):
                    ticks, lclock = e.get("tick", ticks), e.get("lclock", lclock)
    except OSError:
        return {}
    return {"sent_to": sent, "dropped_to": dropped, "dup_to": dups, "taken_from": handled,
            "ticks": ticks, "lclock": lclock, "sent": sum(sent.values()),
            "received": sum(handled.values()), **({"snapshots": snaps} if snaps else {})}

