"""The clocks compared on one run (SPEC 7.5): what physical timestamps get wrong and what
the logical clocks get right.

Pairs of events are judged by each scalar clock (physical ``pt``, Lamport, the HLC read as
(l, c)) against the truth the vector clocks know:

- every message is a causal pair (its send happened before each handling of it);
- a seeded sample of other event pairs (``SAMPLE_PAIRS``, drawn uniformly over all
  events; every pair once when a run has fewer) is classified by the vector clocks as
  causal (either way) or concurrent.

For causal pairs, a clock *misorders* a pair when it stamps the earlier event later than
the later one, and *ties* it when it gives both the same value: Lamport and HLC must do
neither (the clock condition), so their count is a check, not a statistic. Concurrent
pairs have no right order; each clock's share of them stamped before, after or equal is
reported, the pair oriented by system time (``ts``), so "before" means the clock agrees
with real time. Everything is vectorised: the messages are matched once with
searchsorted, the sample is a few array gathers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lclock.analysis.load import Run
from lclock.analysis.matching import SendTable, match_receives

SAMPLE_PAIRS = 100_000
SAMPLE_SEED = 7  # with the run's seed, so a run's sample is the same every time
# What a message spends on each clock, as the frame carries it (lclock/transport/framing.py):
# Lamport a u64, pt an i64 of µs, the HLC an i64 l and a u32 c, the vector one u64 per machine.
BYTES = {"lamport": 8, "pt": 8, "hlc": 12}
CLOCKS = ("pt", "lamport", "hlc")


@dataclass
class Events:
    """Every tick event of the run in one set of columns (machine order, then file order)."""

    machine: np.ndarray
    ts: np.ndarray
    lamport: np.ndarray
    pt: np.ndarray | None  # -1 where unknown
    hlc_l: np.ndarray | None
    hlc_c: np.ndarray | None
    own: np.ndarray | None  # own vector entry (counts the machine's events), None: no vectors
    start: dict[int, int]  # machine -> offset of its first event

    @property
    def n(self) -> int:
        return len(self.machine)


def gather(run: Run) -> Events:
    ids = run.ids
    logs = [run.machines[i] for i in ids]
    start, off = {}, 0
    for log in logs:
        start[log.id] = off
        off += log.events

    def cat(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    has_pt = bool(logs) and all(m.pt is not None for m in logs if m.events)
    has_hlc = bool(logs) and all(m.hlc is not None for m in logs if m.events)
    vec = bool(logs) and all(m.vclock is not None and m.vclock.shape[1] >= m.id for m in logs)
    return Events(
        machine=cat([np.full(m.events, m.id, np.int64) for m in logs]),
        ts=cat([m.ts for m in logs]) if logs else np.zeros(0),
        lamport=cat([m.lclock for m in logs]),
        pt=cat([m.pt if m.pt is not None else np.full(m.events, -1, np.int64) for m in logs])
        if has_pt else None,
        hlc_l=cat([m.hlc[:, 0] if m.hlc is not None else np.full(m.events, -1) for m in logs])
        if has_hlc else None,
        hlc_c=cat([m.hlc[:, 1] if m.hlc is not None else np.full(m.events, -1) for m in logs])
        if has_hlc else None,
        own=cat([m.vclock[:, m.id - 1].astype(np.int64) for m in logs  # type: ignore[index]
                 ]) if vec else None,
        start=start,
    )


def message_pairs(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """(send, receive) global event indexes of every handled message that matches a send,
    as ``check`` matches them (``lclock.analysis.matching``; a duplicate's second handling
    too: it is caused by the same send)."""
    ev_start, off = np.zeros(max(run.ids, default=0) + 1, np.int64), 0
    for i in run.ids:
        ev_start[i] = off
        off += run.machines[i].events
    tables = {i: SendTable(run.machines[i]) for i in run.ids}
    sends, recvs = [], []
    for j in run.ids:
        m = match_receives(run.machines[j], tables)
        ok = m.send >= 0
        sends.append(m.send[ok] + ev_start[m.sender[ok]])
        recvs.append(m.receive[ok] + ev_start[j])
    if not sends:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(sends), np.concatenate(recvs)


def _order(ev: Events, clock: str, a: np.ndarray, b: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(a before b, a after b, unknown) by one clock; None if the run does not keep it."""
    if clock == "lamport":
        x, y = ev.lamport[a], ev.lamport[b]
        unknown = np.zeros(len(a), bool)
        return x < y, x > y, unknown
    if clock == "pt":
        if ev.pt is None:
            return None
        x, y = ev.pt[a], ev.pt[b]
        return x < y, x > y, (x < 0) | (y < 0)
    if ev.hlc_l is None or ev.hlc_c is None:
        return None
    la, lb, ca, cb = ev.hlc_l[a], ev.hlc_l[b], ev.hlc_c[a], ev.hlc_c[b]
    before = (la < lb) | ((la == lb) & (ca < cb))
    after = (la > lb) | ((la == lb) & (ca > cb))
    return before, after, (la < 0) | (lb < 0) | (ca < 0) | (cb < 0)


def _share(n: int, total: int) -> float | None:
    return round(n / total, 6) if total else None


def _causal(ev: Events, early: np.ndarray, late: np.ndarray) -> dict[str, Any]:
    """Per clock: causal pairs (early happened before late) misordered and tied."""
    out: dict[str, Any] = {}
    for clock in CLOCKS:
        o = _order(ev, clock, early, late)
        if o is None:
            out[clock] = None
            continue
        before, after, unknown = o
        judged = int(np.count_nonzero(~unknown))
        wrong = int(np.count_nonzero(after & ~unknown))
        tied = judged - wrong - int(np.count_nonzero(before & ~unknown))
        out[clock] = {"pairs": judged, "misordered": wrong, "tied": tied,
                      "misordered_share": _share(wrong, judged), "tied_share": _share(tied, judged)}
    return out


def _concurrent(ev: Events, a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Per clock: how concurrent pairs are stamped, each pair oriented by system time."""
    swap = ev.ts[a] > ev.ts[b]
    first, second = np.where(swap, b, a), np.where(swap, a, b)
    out: dict[str, Any] = {}
    for clock in CLOCKS:
        o = _order(ev, clock, first, second)
        if o is None:
            out[clock] = None
            continue
        before, after, unknown = o
        judged = int(np.count_nonzero(~unknown))
        nb, na = int(np.count_nonzero(before & ~unknown)), int(np.count_nonzero(after & ~unknown))
        out[clock] = {"pairs": judged, "before": _share(nb, judged), "after": _share(na, judged),
                      "equal": _share(judged - nb - na, judged)}
    return out


def _sample(run: Run, ev: Events, size: int, seed: int) -> dict[str, Any] | None:
    """A seeded sample of event pairs, classified by the vector clocks."""
    if ev.own is None or ev.n < 2:
        return None
    seed %= 2**63  # the run's seed (a foreign run.json may state any integer)
    every = ev.n * (ev.n - 1) // 2 <= size
    if every:  # a small run: every pair once, not a sample that repeats them
        a, b = (x.astype(np.int64) for x in np.triu_indices(ev.n, 1))
    else:
        rng = np.random.default_rng([SAMPLE_SEED, seed])
        a = rng.integers(0, ev.n, size)
        b = rng.integers(0, ev.n, size)
        keep = a != b
        a, b = a[keep], b[keep]
    vec = np.concatenate([v for v in (run.machines[i].vclock for i in run.ids) if v is not None])
    ma, mb = ev.machine[a] - 1, ev.machine[b] - 1
    # e -> f for events on different machines: f has seen e (V(f)[m_e] >= own entry of e);
    # on one machine the earlier one happened before
    a_to_b = vec[b, ma] >= ev.own[a]
    b_to_a = vec[a, mb] >= ev.own[b]
    same = ma == mb
    a_to_b = np.where(same, a < b, a_to_b)
    b_to_a = np.where(same, b < a, b_to_a)
    causal = a_to_b | b_to_a
    early = np.where(a_to_b, a, b)[causal]
    late = np.where(a_to_b, b, a)[causal]
    conc = ~causal
    return {
        "pairs": int(len(a)), "every_pair": every, "seed": seed,
        "causal": int(np.count_nonzero(causal)),
        "same_machine": int(np.count_nonzero(same)),
        "concurrent": int(np.count_nonzero(conc)),
        "causal_misordered": _causal(ev, early, late),
        "concurrent_order": _concurrent(ev, a[conc], b[conc]),
    }


def _hlc_stats(run: Run, ev: Events) -> dict[str, Any] | None:
    if ev.hlc_l is None or ev.hlc_c is None:
        return None
    ok = ev.hlc_l >= 0
    out: dict[str, Any] = {"max_c": int(ev.hlc_c[ok].max()) if ok.any() else None,
                           "max_l_minus_pt_us": None, "mean_l_minus_pt_us": None,
                           "bound_us": run.facts.hlc_bound_us}
    if ev.pt is not None:
        both = ok & (ev.pt >= 0)
        if both.any():
            lead = ev.hlc_l[both] - ev.pt[both]
            out["max_l_minus_pt_us"] = int(lead.max())
            out["mean_l_minus_pt_us"] = round(float(lead.mean()), 3)
            out["within_bound"] = (None if run.facts.hlc_bound_us is None
                                   else bool(lead.max() <= run.facts.hlc_bound_us))
    return out


def compare_clocks(run: Run, sample: int = SAMPLE_PAIRS,
                   pairs: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:
    """The ``clocks`` entry of summary.json (see the module docstring)."""
    ev = gather(run)
    send, recv = pairs if pairs is not None else message_pairs(run)
    msgs = _causal(ev, send, recv)
    n = run.n
    vec = ev.own is not None
    kept = {"lamport": True, "vector": vec, "pt": ev.pt is not None, "hlc": ev.hlc_l is not None}
    sampled = _sample(run, ev, sample, run.facts.seed or 0) if sample else None
    violations = {c: (msgs[c]["misordered"] + msgs[c]["tied"]
                      + ((sampled or {}).get("causal_misordered", {}).get(c) or {}).get(
                          "misordered", 0)
                      + ((sampled or {}).get("causal_misordered", {}).get(c) or {}).get("tied", 0))
                  for c in ("lamport", "hlc") if msgs.get(c)}
    return {
        "kept": kept,
        "bytes_per_message": {"lamport": BYTES["lamport"], "vector": 8 * n if vec else None,
                              "pt": BYTES["pt"] if kept["pt"] else None,
                              "hlc": BYTES["hlc"] if kept["hlc"] else None},
        "messages": {"pairs": int(len(send)), **msgs},
        "sample": sampled,
        "hlc": _hlc_stats(run, ev),
        # the clock condition: a logical clock never misorders or ties a causal pair
        "logical_clocks_ok": all(v == 0 for v in violations.values()),
        "logical_violations": violations,
    }


def misordered_messages(run: Run, pairs: tuple[np.ndarray, np.ndarray] | None = None,
                        limit: int = 2000) -> dict[str, np.ndarray]:
    """The messages physical time misorders (pt of the send after the receive's), for the
    report's figure: receive machine, receive ts, receive pt, at most ``limit`` of them."""
    ev = gather(run)
    send, recv = pairs if pairs is not None else message_pairs(run)
    if ev.pt is None or not len(send):
        return {"machine": np.zeros(0, np.int64), "ts": np.zeros(0), "pt": np.zeros(0, np.int64)}
    bad = (ev.pt[send] > ev.pt[recv]) & (ev.pt[send] >= 0) & (ev.pt[recv] >= 0)
    idx = recv[bad][:limit]
    return {"machine": ev.machine[idx], "ts": ev.ts[idx], "pt": ev.pt[idx],
            "send_ts": ev.ts[send[bad][:limit]], "send_machine": ev.machine[send[bad][:limit]]}
