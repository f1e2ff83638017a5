"""The fault plan of a run (SPEC section 6), as spans the explorer can shade.

run.json's ``faults`` holds the resolved plan and what was applied; settings hold the same
plan as the flags wrote it (``10-20:1|2,3``, ``2@15+5``, ``3@20``). Writers may differ in
shape, so this reads what it recognises, both as strings and as objects, and skips the
rest: the per-machine ``fault``/``pause`` lines in the logs stay the primary source, the plan
only adds what a log cannot show (the whole partition at once, a crash's instant).
"""

from __future__ import annotations

from typing import Any

MAX_ITEMS = 10_000


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def _ids(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _first(d: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if k in d:
            return d[k]
    return None


def _groups(v: Any) -> list[list[int]] | None:
    if isinstance(v, str):
        try:
            return [_ids(g) for g in v.split("|")]
        except ValueError:
            return None
    if isinstance(v, list) and all(isinstance(g, list) for g in v):
        out = [[int(x) for x in g if isinstance(x, int) and not isinstance(x, bool)] for g in v]
        return out if any(out) else None
    return None


def _items(v: Any) -> list[Any]:
    """A plan entry list: a list, or a ``;``-separated flag string."""
    if isinstance(v, str):
        return [s.strip() for s in v.split(";") if s.strip()][:MAX_ITEMS]
    if isinstance(v, list):
        return v[:MAX_ITEMS]
    return []


def partitions(v: Any) -> list[dict[str, Any]]:
    out = []
    for it in _items(v):
        start = end = groups = None
        if isinstance(it, str) and ":" in it and "-" in it.split(":", 1)[0]:
            span, _, g = it.partition(":")
            a, _, b = span.partition("-")
            try:
                start, end = float(a), float(b)
            except ValueError:
                continue
            groups = _groups(g)
        elif isinstance(it, dict):
            start = _num(_first(it, "start_s", "start", "at", "from"))
            end = _num(_first(it, "end_s", "end", "until", "to"))
            groups = _groups(it.get("groups"))
        if start is not None and end is not None and groups:
            out.append({"start_s": start, "end_s": end, "groups": groups})
    return out


def pauses(v: Any) -> list[dict[str, Any]]:
    out = []
    for it in _items(v):
        mid = start = length = None
        if isinstance(it, str) and "@" in it and "+" in it:
            a, _, rest = it.partition("@")
            b, _, c = rest.partition("+")
            try:
                mid, start, length = int(a), float(b), float(c)
            except ValueError:
                continue
        elif isinstance(it, dict):
            m = _first(it, "machine", "id")
            mid = m if isinstance(m, int) and not isinstance(m, bool) else None
            start = _num(_first(it, "start_s", "start", "at"))
            length = _num(_first(it, "length_s", "length", "duration"))
            end = _num(_first(it, "end_s", "end"))
            if length is None and end is not None and start is not None:
                length = end - start
        if mid is not None and start is not None and length is not None:
            out.append({"machine": mid, "start_s": start, "end_s": start + length})
    return out


def crashes(v: Any) -> list[dict[str, Any]]:
    out = []
    for it in _items(v):
        mid = at = None
        if isinstance(it, str) and "@" in it:
            a, _, b = it.partition("@")
            try:
                mid, at = int(a), float(b)
            except ValueError:
                continue
        elif isinstance(it, dict):
            m = _first(it, "machine", "id")
            mid = m if isinstance(m, int) and not isinstance(m, bool) else None
            at = _num(_first(it, "at_s", "at", "time", "start_s", "start"))
        if mid is not None and at is not None:
            out.append({"machine": mid, "at_s": at})
    return out


def fault_plan(meta: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Partitions, pauses and crashes planned for the run (seconds since t0)."""
    sources: list[dict[str, Any]] = []
    faults = meta.get("faults")
    if isinstance(faults, dict):
        for key in ("applied", "plan", "resolved"):
            if isinstance(faults.get(key), dict):
                sources.append(faults[key])
        sources.append(faults)
    settings = meta.get("settings")
    if isinstance(settings, dict):
        if isinstance(settings.get("faults"), dict):
            sources.append(settings["faults"])
        sources.append(settings)
    plan: dict[str, list[dict[str, Any]]] = {"partitions": [], "pauses": [], "crashes": []}
    for src in sources:  # the first source that has an entry wins (applied before planned)
        if not plan["partitions"]:
            plan["partitions"] = partitions(_first(src, "partitions", "partition"))
        if not plan["pauses"]:
            plan["pauses"] = pauses(_first(src, "pauses", "pause"))
        if not plan["crashes"]:
            plan["crashes"] = crashes(_first(src, "crashes", "crash"))
    return plan
