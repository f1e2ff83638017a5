"""Metrics of one run: jumps, drift, queues, delays, concurrency, and the queueing theory.

``analyze_run(run_dir)`` returns exactly what ``summary.json`` holds (plain JSON types), so
the experiment runner can compare runs without parsing tables. Keys:

- ``schema`` (1), ``run_id``, ``status``, ``machines_n``, ``events``, ``t0`` (epoch s of
  the first tick), ``duration_s`` (first to last tick), ``dice_sides``, ``skipped_lines``.
- ``machines``: one entry per machine, in id order:
  ``id``, ``rate`` (ticks/s from run.json or the start line; null if unknown), ``ticks``,
  ``achieved_rate`` (ticks per second actually run), ``lateness`` {``mean``, ``p95``,
  ``max``, ``final``} (seconds after the deadline t0 + (k-1)/rate; null without a rate),
  ``events`` {``internal``, ``send``, ``receive``}, ``messages_sent``,
  ``mix`` {``rolls``, ``receive_fraction`` (share of ticks that handled a message),
  ``observed`` and ``expected`` fractions of the dice outcomes ``send_a``, ``send_b``,
  ``broadcast``, ``internal``},
  ``jumps`` {``mean``, ``max``, ``p50``, ``p95``, ``count``, ``over_1``, ``hist``}: the
  Lamport clock's step L - L_prev on each receive (1 = no jump), ``hist`` as
  [[value, count], ...] for values up to 64 and one [">64", count] bucket,
  ``gaps`` {``skipped_values``, ``skipped_fraction``, ``max_gap``}: clock values never used,
  ``queue`` {``mean``, ``max``, ``final``, ``growth_per_s``} (growth = least-squares slope of
  queue_len against time; final = the stop line's ``unprocessed`` if there is one; every
  value null when run.json lists ``queue_len`` in ``not_logged``, as are the observed dice
  fractions when it lists ``dice``),
  ``delay`` {``mean``, ``p50``, ``p95``, ``max``, ``count``}: seconds from a message's send
  event to the tick that handled it,
  ``arrival_rate`` (observed messages in per second), ``theory`` {``arrival_rate``,
  ``growth_per_s``, ``utilisation``, ``dice_rate``} (null without every rate), ``stopped``
  (and ``crashed_as_planned`` when it has no stop line because the plan crashed it).
- ``drift``: the spread max_i L_i(t) - min_i L_i(t) of the Lamport clocks sampled at the same
  system time: {``mean``, ``max``, ``final``, ``p95``, ``max_at_s``, ``samples``,
  ``fastest`` (id), ``vs_fastest`` {id: {``mean``, ``max``, ``final``}}}.
- ``concurrency``: {``pairs``, ``concurrent``, ``fraction``} over pairs of events on
  different machines, by the vector clocks (null without them).
- ``clocks`` (SPEC 7.5, ``lclock.analysis.clockcmp``): which clocks were kept,
  ``bytes_per_message`` per clock, ``messages`` {``pairs``, and per clock ``pt``,
  ``lamport``, ``hlc``: {``pairs``, ``misordered``, ``tied``, and their shares}: every
  message as a causal pair}, ``sample`` (a seeded sample of event pairs classified by the
  vector clocks: ``causal_misordered`` per clock as for messages, ``concurrent_order`` per
  clock {``before``, ``after``, ``equal``} shares with each pair oriented by system time;
  null without vector clocks), ``hlc`` {``max_c``, ``max_l_minus_pt_us``,
  ``mean_l_minus_pt_us``, ``bound_us``, ``within_bound``}, and ``logical_clocks_ok``: Lamport
  and HLC misordered and tied no causal pair (``logical_violations`` counts them).
- ``faults`` (SPEC section 6, ``lclock.analysis.faultstats``; null without faults):
  ``links`` {"s->j": {``sent``, ``loss``, ``partition``, ``crashed``, ``dropped``,
  ``duplicated``}}, totals ``dropped`` by reason and ``duplicated``, the schedule
  (``partitions``, ``pauses``, ``crashes``, seconds since t0) and ``after``: the Lamport
  jump of each machine's first receive after a partition healed or its pause ended
  ({``machine``, ``after`` heal|resume, ``at_s``, ``receive_at_s``, ``line``, ``from``,
  ``jump``, ``mean_jump``}).

The theory: a machine rolls the dice only on ticks with an empty queue; each roll sends to
a given peer with probability (faces that reach it)/dice_sides. So the rate d_i of dice
ticks and the arrival rates lambda_j solve d_i = max(0, r_i - lambda_i),
lambda_j = sum_i d_i * k_ij / S, found by a damped fixed-point iteration. A machine with
lambda_j > r_j is saturated and its queue grows at about lambda_j - r_j per second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lclock.analysis.clockcmp import compare_clocks
from lclock.analysis.faultstats import fault_summary
from lclock.analysis.load import KIND_INTERNAL, KIND_RECEIVE, KIND_SEND, MachineLog, Run, load_run
from lclock.analysis.matching import SendTable, match_receives

DRIFT_SAMPLES = 2000
JUMP_HIST_MAX = 64
# Above this many machines the queueing theory and the pairwise concurrency are not
# computed (they cost N^2 per step; lclock itself runs at most 128 machines).
THEORY_MAX_MACHINES = 256
CONCURRENCY_MAX_MACHINES = 256


@dataclass
class Series:
    """Arrays the report plots; computed once alongside the summary."""

    grid: np.ndarray  # seconds since t0
    clocks: dict[int, np.ndarray]  # L_i on the grid
    spread: np.ndarray
    lag: dict[int, np.ndarray]  # L_fastest - L_i on the grid (negative where i leads)
    fastest: int | None
    jumps: dict[int, np.ndarray]
    # max_j L_j - L_i on the grid: behind the leading clock, never negative (the table's)
    behind: dict[int, np.ndarray] = field(default_factory=dict)


def _r(x: float | None, nd: int = 4) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), nd)


def _stats(a: np.ndarray, nd: int = 4) -> dict[str, Any]:
    if a.size == 0:
        return {"mean": None, "p50": None, "p95": None, "max": None, "count": 0}
    return {
        "mean": _r(float(a.mean()), nd),
        "p50": _r(float(np.percentile(a, 50)), nd),
        "p95": _r(float(np.percentile(a, 95)), nd),
        "max": _r(float(a.max()), nd),
        "count": int(a.size),
    }


def peer_faces(n: int) -> np.ndarray:
    """k[i, j]: how many dice faces of machine i+1 send to machine j+1 (ring A, B, all)."""
    k = np.ones((n, n)) - np.eye(n)  # the broadcast face reaches every other machine
    i = np.arange(n)
    np.add.at(k, (i, (i + 1) % n), 1)  # peer A, the next in the ring
    np.add.at(k, (i, (i - 1) % n), 1)  # peer B, the previous one
    return k


def theory(rates: list[float], sides: int) -> tuple[np.ndarray, np.ndarray]:
    """Arrival rates and dice-tick rates per machine: the fixed point d = max(0, r - d K).

    A machine rolls the die only on a tick with an empty queue: d_i = r_i - lambda_i while
    it keeps up, 0 once arrivals lambda_i = (d K)_i reach its rate. K is symmetric with a
    spectral radius rho that grows with N (every broadcast reaches every peer), so a plain
    or half-damped iteration oscillates for many machines; the projected iteration with
    step 1 / (1 + rho) is a contraction here (K's eigenvalues are above -1).
    """
    r = np.asarray(rates, dtype=float)
    k = peer_faces(len(r)) / sides
    rho = float(np.max(np.abs(k).sum(axis=1))) if len(r) else 0.0
    step = 1.0 / (1.0 + rho)
    d = r.copy()
    for _ in range(100_000):
        new = np.maximum(0.0, r - d @ k)
        if np.max(np.abs(new - d), initial=0.0) < 1e-12:
            d = new
            break
        d = d + step * (new - d)
    lam = d @ k
    return lam, d


def _step_at(ts: np.ndarray, values: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The value of a step function (last event at or before t; 0 before the first)."""
    idx = np.searchsorted(ts, t, side="right") - 1
    out = np.where(idx >= 0, values[np.maximum(idx, 0)], 0)
    return out


def _finite(log: MachineLog) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(log.ts)
    ts = log.ts[ok]
    # sorted for searchsorted; a real log is already non-decreasing
    return np.maximum.accumulate(ts) if ts.size else ts, ok


def _concurrency(run: Run) -> dict[str, Any] | None:
    logs = [run.machines[i] for i in run.ids]
    if not 2 <= len(logs) <= CONCURRENCY_MAX_MACHINES or any(m.vclock is None for m in logs):
        return None
    n = run.n
    total_pairs = 0
    conc2 = 0
    for a in range(len(logs)):
        for b in range(a + 1, len(logs)):
            total_pairs += logs[a].events * logs[b].events
    for li in logs:
        i = li.id - 1
        Vi = li.vclock
        assert Vi is not None
        own = Vi[:, i]
        for lj in logs:
            if lj is li:
                continue
            j = lj.id - 1
            Vj = lj.vclock
            assert Vj is not None
            if j >= n or i >= Vj.shape[1] or j >= Vi.shape[1]:
                continue
            before = np.clip(Vi[:, j], 0, lj.events)
            col = np.maximum.accumulate(Vj[:, i]) if lj.events else Vj[:, i]
            after = lj.events - np.searchsorted(col, own, side="left")
            conc2 += int(np.clip(lj.events - before - after, 0, None).sum())
    concurrent = conc2 // 2
    return {"pairs": int(total_pairs), "concurrent": int(concurrent),
            "fraction": _r(concurrent / total_pairs, 6) if total_pairs else None}


def _span(run: Run) -> tuple[float, float]:
    """(t0, duration): from the start instant to the last event of any machine."""
    ends = [float(np.nanmax(m.ts)) for m in run.machines.values()
            if m.events and np.isfinite(m.ts).any()]
    t_end = max(ends) if ends else run.t0
    return run.t0, max(t_end - run.t0, 0.0)


def _rate_entry(log: MachineLog, rate: int | None, t0: float) -> dict[str, Any]:
    """ticks, the rate achieved and how late the ticks ran against t0 + (k-1)/rate (the
    ticks a pause skipped counted, as ``check`` does)."""
    E = log.events
    ts_ok = np.isfinite(log.ts)
    t_rel = log.ts - t0
    last = float(np.nanmax(t_rel)) if ts_ok.any() else None
    achieved = None
    if E and last is not None:
        if rate:
            achieved = E / (last + 1.0 / rate) if last + 1.0 / rate > 0 else None
        elif E > 1 and last - float(np.nanmin(t_rel)) > 0:
            achieved = (E - 1) / (last - float(np.nanmin(t_rel)))
    lateness = None
    if rate and E and ts_ok.any():
        late = (t_rel - (log.tick - 1 + log.skipped_before()) / rate)[ts_ok]
        lateness = {"mean": _r(late.mean(), 6), "p95": _r(np.percentile(late, 95), 6),
                    "max": _r(late.max(), 6), "final": _r(late[-1], 6)}
    return {"ticks": int(log.tick[-1]) if E else 0, "achieved_rate": _r(achieved),
            "lateness": lateness}


def _mix_entry(log: MachineLog, sides: int, dice_logged: bool = True) -> dict[str, Any]:
    """Events by kind, and the dice outcomes observed against the die's probabilities
    (observed: None where the run does not log its dice)."""
    kind = log.kind
    n_int = int(np.count_nonzero(kind == KIND_INTERNAL))
    n_send = int(np.count_nonzero(kind == KIND_SEND))
    n_recv = int(np.count_nonzero(kind == KIND_RECEIVE))
    dice = log.dice[kind != KIND_RECEIVE]
    rolls = int(dice.size)
    obs = {"send_a": int(np.count_nonzero(dice == 1)), "send_b": int(np.count_nonzero(dice == 2)),
           "broadcast": int(np.count_nonzero(dice == 3)), "internal": int(np.count_nonzero(dice > 3))}
    return {
        "events": {"internal": n_int, "send": n_send, "receive": n_recv},
        "messages_sent": int(len(log.to_ids)),
        "mix": {
            "rolls": rolls,
            "receive_fraction": _r(n_recv / log.events) if log.events else None,
            "observed": {k: _r(v / rolls) if rolls and dice_logged else None
                         for k, v in obs.items()},
            "expected": {"send_a": _r(1 / sides), "send_b": _r(1 / sides),
                         "broadcast": _r(1 / sides), "internal": _r((sides - 3) / sides)},
        },
    }


def _jump_entry(log: MachineLog) -> tuple[dict[str, Any], np.ndarray]:
    """The Lamport clock's steps on receives (jumps) and the clock values never used."""
    L = log.lclock
    E = log.events
    prev = np.concatenate(([0], L[:-1])) if E else L
    step = L - prev
    jumps = step[log.kind == KIND_RECEIVE]
    js = _stats(jumps.astype(float), 3)
    if jumps.size:
        js["max"] = int(jumps.max())
    js["over_1"] = int(np.count_nonzero(jumps > 1))
    js["hist"] = []
    if jumps.size:
        vals, cnt = np.unique(np.minimum(jumps, JUMP_HIST_MAX + 1), return_counts=True)
        js["hist"] = [[int(v) if v <= JUMP_HIST_MAX else f">{JUMP_HIST_MAX}", int(c)]
                      for v, c in zip(vals, cnt, strict=True)]
    skipped = int(np.clip(step - 1, 0, None).sum()) if E else 0
    gaps = {"skipped_values": skipped,
            "skipped_fraction": _r(skipped / int(L[-1])) if E and L[-1] > 0 else None,
            "max_gap": int(max(step.max() - 1, 0)) if E else 0}
    return {"jumps": js, "gaps": gaps}, jumps


def _queue_entry(log: MachineLog, t0: float) -> dict[str, Any]:
    """Queue length: mean, the most messages waiting at once, what was left, the growth."""
    q = log.qlen
    E = log.events
    ts_ok = np.isfinite(log.ts)
    final = (log.stop or {}).get("unprocessed")
    if not isinstance(final, int) or isinstance(final, bool) or not 0 <= final < 2**62:
        final = int(q[-1]) if E else 0
    growth = None
    if E > 1 and ts_ok.sum() > 1:
        x = (log.ts - t0)[ts_ok]
        if np.ptp(x) > 0:
            growth = float(np.polyfit(x, q[ts_ok].astype(float), 1)[0])
    # The most messages waiting at once: queue_len after each tick, what was left at the
    # stop, and the runtime's own max_queue (it also sees the moments between ticks, when
    # a message has arrived and waits for the next tick) where logged.
    qmax = max(int(q.max()) if E else 0, int(final))
    logged_max = (log.stop or {}).get("max_queue")
    if isinstance(logged_max, int) and not isinstance(logged_max, bool) and logged_max < 2**62:
        qmax = max(qmax, logged_max)
    return {"mean": _r(float(q.mean()) if E else 0.0, 3), "max": qmax, "final": int(final),
            "growth_per_s": _r(growth)}


def _delay_entry(log: MachineLog, tables: dict[int, SendTable]) -> dict[str, Any]:
    """Seconds from a message's send event to the tick that handled it (the send ``check``
    matches it to: ``lclock.analysis.matching``)."""
    m = match_receives(log, tables)
    sent = np.full(len(m.receive), np.nan)
    for s in np.unique(m.sender[m.send >= 0]).tolist():
        sel = (m.sender == s) & (m.send >= 0)
        sent[sel] = tables[s].log.ts[m.send[sel]]
    d = log.ts[m.receive] - sent
    return _stats(d[np.isfinite(d)], 6)


def _theory_entry(lam: float, dice_rate: float, rate: int) -> dict[str, Any]:
    return {"arrival_rate": _r(lam), "growth_per_s": _r(max(0.0, lam - rate)),
            "utilisation": _r(lam / rate), "dice_rate": _r(dice_rate)}


def _machine_entries(run: Run, t0: float, duration: float
                     ) -> tuple[list[dict[str, Any]], dict[int, np.ndarray]]:
    ids = run.ids
    sides = run.dice_sides or 10
    rates = {i: run.rates.get(i) for i in ids}
    lam_th = d_th = None
    if all(rates[i] for i in ids) and len(ids) == run.n and 2 <= run.n <= THEORY_MAX_MACHINES:
        lam_th, d_th = theory([float(rates[i] or 0) for i in ids], sides)
    sends = {i: SendTable(run.machines[i]) for i in ids}
    out = []
    jumps_by: dict[int, np.ndarray] = {}
    for pos, i in enumerate(ids):
        log = run.machines[i]
        rate = rates[i]
        entry: dict[str, Any] = {"id": i, "rate": rate, **_rate_entry(log, rate, t0)}
        entry.update(_mix_entry(log, sides, "dice" not in run.not_logged))
        jumps, jumps_by[i] = _jump_entry(log)
        entry.update(jumps)
        entry["queue"] = _queue_entry(log, t0)
        if "queue_len" in run.not_logged:  # run.json says the logs do not have it
            entry["queue"] = dict.fromkeys(entry["queue"])
        entry["delay"] = _delay_entry(log, sends)
        incoming = entry["events"]["receive"] + (entry["queue"]["final"] or 0)
        entry["arrival_rate"] = _r(incoming / duration) if duration > 0 else None
        entry["theory"] = None
        if lam_th is not None and d_th is not None and rate:
            entry["theory"] = _theory_entry(float(lam_th[pos]), float(d_th[pos]), rate)
        entry["stopped"] = log.stop is not None
        if log.stop is None and i in run.facts.crashed:
            entry["crashed_as_planned"] = True
        out.append(entry)
    return out, jumps_by


def _fastest(run: Run) -> list[int]:
    """The machines with the highest rate (several when rates tie); without rates, the
    one that logged the most events."""
    ids = run.ids
    if not ids:
        return []
    rates = {i: run.rates.get(i) or 0 for i in ids}
    if any(rates.values()):
        top = max(rates.values())
        return [i for i in ids if rates[i] == top]
    most = max(run.machines[i].events for i in ids)
    return [i for i in ids if run.machines[i].events == most]


def _drift(run: Run, duration: float) -> tuple[dict[str, Any], Series]:
    """The spread of the Lamport clocks at the same system time, and how far each machine
    is behind: the fastest machines' clock, and the leading clock (never negative)."""
    ids, t0 = run.ids, run.t0
    grid = np.linspace(0.0, duration, DRIFT_SAMPLES) if duration > 0 else np.zeros(1)
    clocks: dict[int, np.ndarray] = {}
    for i in ids:
        log = run.machines[i]
        ts, ok = _finite(log)
        clocks[i] = (_step_at(ts - t0, log.lclock[ok], grid) if ts.size
                     else np.zeros_like(grid, dtype=np.int64))
    stack = np.vstack([clocks[i] for i in ids]) if ids else np.zeros((1, grid.size))
    lead = stack.max(axis=0)
    spread = lead - stack.min(axis=0)
    group = _fastest(run)
    fastest = max(group) if group else None
    front = np.vstack([clocks[i] for i in group]).max(axis=0) if group else lead
    lag = {i: front - clocks[i] for i in ids}

    def stats(x: np.ndarray) -> dict[str, Any]:
        return {"mean": _r(float(x.mean()), 3), "max": int(x.max()), "final": int(x[-1])}

    drift: dict[str, Any] = {
        "mean": _r(float(spread.mean()), 3), "max": int(spread.max()), "final": int(spread[-1]),
        "p95": _r(float(np.percentile(spread, 95)), 3),
        "max_at_s": _r(float(grid[int(np.argmax(spread))]), 3), "samples": int(grid.size),
        "fastest": fastest,
        "fastest_ids": group,
        "fastest_rate": run.rates.get(group[0]) if group else None,
        "vs_fastest": {str(i): stats(lag[i]) for i in ids if i != fastest},
        "behind_leader": {str(i): stats(lead - clocks[i]) for i in ids},
        "leader_final": [i for i in ids if clocks[i][-1] == lead[-1]],
    }
    return drift, Series(grid, clocks, spread, lag, fastest, {},
                         {i: lead - clocks[i] for i in ids})


def compute(run: Run) -> tuple[dict[str, Any], Series]:
    """The summary (JSON types) and the plotted series of a loaded run."""
    t0, duration = _span(run)
    machines, jumps_by = _machine_entries(run, t0, duration)
    drift, series = _drift(run, duration)
    series.jumps = jumps_by
    summary: dict[str, Any] = {
        "schema": 1,
        "run_id": run.run_id,
        "status": run.status,
        "machines_n": len(run.ids),
        "events": run.events,
        "t0": _r(t0, 6),
        "duration_s": _r(duration, 6),
        "dice_sides": run.dice_sides,
        "skipped_lines": sum(m.skipped for m in run.machines.values()) + sum(
            x.count for x in run.issues if x.line),
        "machines": machines,
        "drift": drift,
        "concurrency": _concurrency(run),
        "clocks": compare_clocks(run),
        "faults": fault_summary(run),
    }
    return summary, series


def analyze_run(run_dir: Path | str) -> dict[str, Any]:
    """The summary of a run folder (what summary.json holds); does not write anything."""
    return compute(load_run(run_dir))[0]


def who(ids: list[int]) -> str:
    """``machine 3``, ``machines 1 and 2``, ``machines 1, 2 and 4``: ties named, not hidden."""
    if len(ids) == 1:
        return f"machine {ids[0]}"
    if len(ids) > 6:
        return f"{len(ids)} machines ({', '.join(map(str, ids[:4]))}, ...)"
    return f"machines {', '.join(map(str, ids[:-1]))} and {ids[-1]}"


def _rate_of(ms: list[dict[str, Any]]) -> str:
    rates = sorted({m["rate"] for m in ms if m["rate"] is not None})
    if not rates:
        return ""
    if len(rates) == 1:
        return f" (rate {rates[0]})"
    return f" (rates {', '.join(map(str, rates))})"


def _tied(ms: list[dict[str, Any]], value: Any) -> list[dict[str, Any]]:
    """Every machine where ``value(m)`` is the largest (several on a tie)."""
    top = max(value(m) for m in ms)
    return [m for m in ms if value(m) == top]


def _jump_headline(ms: list[dict[str, Any]]) -> str:
    withj = [m for m in ms if m["jumps"]["count"]]
    if not withj:
        return "No receives, so no Lamport jumps."
    tops = _tied(withj, lambda m: m["jumps"]["max"])
    if len(withj) <= 6:
        means = ", ".join(f"m{m['id']} {m['jumps']['mean']:.2f}" for m in withj)
    else:
        lo = min(m["jumps"]["mean"] for m in withj)
        hi = max(m["jumps"]["mean"] for m in withj)
        means = f"from {lo:.2f} to {hi:.2f} across {len(withj)} machines"
    return (f"Largest Lamport jump: +{tops[0]['jumps']['max']} on {who([m['id'] for m in tops])}"
            f"{_rate_of(tops)}; mean jump on receive {means}.")


def _drift_headline(summary: dict[str, Any]) -> str:
    d = summary["drift"]
    ms = summary["machines"]
    group = d.get("fastest_ids") or ([d["fastest"]] if d.get("fastest") is not None else [])
    text = (f"Drift: the Lamport clocks spread up to {d['max']} apart at the same time "
            f"(mean {d['mean']:.1f}, {d['final']} at the end)")
    if group and len(group) < len(ms):
        fast = [m for m in ms if m["id"] in group]
        rated = any(m["rate"] for m in fast)
        text += (f"; {who(group)}{_rate_of(fast)} {'is' if len(group) == 1 else 'are'} the "
                 f"fastest{'' if rated else ' (most events)'}")
    elif group:
        text += "; every machine runs at the same rate"
    leaders = d.get("leader_final") or []
    if leaders and len(leaders) < len(ms):
        text += (f"; {who(leaders)}'s clock is the highest at the end" if len(leaders) == 1
                 else f"; {who(leaders)} share the highest clock at the end")
    return text + "."


def _queue_headline(ms: list[dict[str, Any]], dur: float) -> str:
    def behind(m: dict[str, Any]) -> bool:
        """A queue that really grows: +5 messages over the run by the fit, and 5 left."""
        g = m["queue"]["growth_per_s"] or 0.0
        return g * dur >= 5 and (m["queue"]["final"] or 0) >= 5

    growing = [m for m in ms if behind(m)]
    if growing:
        grow = max(growing, key=lambda m: m["queue"]["growth_per_s"] or 0.0)
        th = grow["theory"]
        tail = f" (theory +{th['growth_per_s']:.2f}/s)" if th else ""
        others = [m["id"] for m in growing if m is not grow]
        also = f"; {who(others)} too" if others else ""
        return (f"Queue growth: machine {grow['id']} (rate {grow['rate']}) falls behind, queue "
                f"+{grow['queue']['growth_per_s']:.2f}/s{tail}, {grow['queue']['final']} "
                f"unhandled at the end{also}.")
    if not ms:
        return "No machines, no queues."
    logged = [m for m in ms if m["queue"]["max"] is not None]
    if not logged:
        return "Queue lengths were not logged."
    longest = _tied(logged, lambda m: m["queue"]["max"])
    note = ""
    pred = [m for m in ms if m["theory"] and m["theory"]["growth_per_s"]]
    if pred:
        p = max(pred, key=lambda m: m["theory"]["growth_per_s"])
        note = (f"; theory predicts +{p['theory']['growth_per_s']:.2f}/s for machine "
                f"{p['id']}, too slow to show in {dur:.0f} s")
    return (f"Queues stay short: the longest was {longest[0]['queue']['max']} message(s) "
            f"({who([m['id'] for m in longest])}); no machine falls behind{note}.")


def headlines(summary: dict[str, Any]) -> list[str]:
    """Three one-line findings: the largest jumps, the drift, the queue growth. Where
    machines tie (equal rates, equal maxima) every one of them is named."""
    ms = summary["machines"]
    return [_jump_headline(ms), _drift_headline(summary),
            _queue_headline(ms, summary.get("duration_s") or 0.0)]


# ---------------------------------------------------------------- tables


def fmt(v: Any) -> str:
    """A number as printed in a table or a sentence; a missing one (None, NaN) as ``-``."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[fmt(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[k]) for r in cells)) for k, h in enumerate(headers)]
    line = "  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(out)


def _machine_tables(ms: list[dict[str, Any]]) -> list[str]:
    parts = ["\nRates and ticks (lateness = seconds after the deadline t0 + (k-1)/rate)", table(
        ["machine", "rate/s", "ticks", "achieved/s", "late mean s", "late max s", "stopped"],
        [[m["id"], m["rate"], m["ticks"], m["achieved_rate"],
          (m["lateness"] or {}).get("mean"), (m["lateness"] or {}).get("max"),
          "yes" if m["stopped"] else "crashed" if m.get("crashed_as_planned") else "NO"]
         for m in ms])]
    parts += ["\nEvent mix (dice outcomes on ticks with an empty queue: observed vs expected)",
              table(["machine", "receive", "send", "internal", "rolls", "send A", "send B",
                     "to all", "internal", "expected"],
                    [[m["id"], m["events"]["receive"], m["events"]["send"],
                      m["events"]["internal"], m["mix"]["rolls"], m["mix"]["observed"]["send_a"],
                      m["mix"]["observed"]["send_b"], m["mix"]["observed"]["broadcast"],
                      m["mix"]["observed"]["internal"],
                      f"{m['mix']['expected']['send_a']:.2f} each, "
                      f"{m['mix']['expected']['internal']:.2f}"] for m in ms])]
    parts += ["\nLamport jumps on receive (step L - L_prev; 1 = no jump) and unused clock values",
              table(["machine", "receives", "mean", "p50", "p95", "max", "jumps>1", "skipped",
                     "skipped%"],
                    [[m["id"], m["jumps"]["count"], m["jumps"]["mean"], m["jumps"]["p50"],
                      m["jumps"]["p95"], m["jumps"]["max"], m["jumps"]["over_1"],
                      m["gaps"]["skipped_values"],
                      None if m["gaps"]["skipped_fraction"] is None
                      else 100 * m["gaps"]["skipped_fraction"]] for m in ms])]
    parts += ["\nQueues and message delay (send event to the tick that handled it)",
              table(["machine", "q mean", "q max", "q final", "growth/s", "delay mean s", "p95 s",
                     "max s"],
                    [[m["id"], m["queue"]["mean"], m["queue"]["max"], m["queue"]["final"],
                      m["queue"]["growth_per_s"], m["delay"]["mean"], m["delay"]["p95"],
                      m["delay"]["max"]] for m in ms])]
    if any(m["theory"] for m in ms):
        parts += ["\nTheory: expected arrivals from the peers' rates and the dice vs own tick rate",
                  table(["machine", "rate/s", "arrivals/s th.", "observed", "utilisation",
                         "growth/s th.", "observed"],
                        [[m["id"], m["rate"], (m["theory"] or {}).get("arrival_rate"),
                          m["arrival_rate"], (m["theory"] or {}).get("utilisation"),
                          (m["theory"] or {}).get("growth_per_s"), m["queue"]["growth_per_s"]]
                         for m in ms])]
    return parts


def _drift_table(d: dict[str, Any]) -> list[str]:
    parts = [f"\nDrift: spread of the Lamport clocks at the same system time "
             f"(max - min over machines, {d['samples']} samples)",
             f"  mean {fmt(d['mean'])}, p95 {fmt(d['p95'])}, max {fmt(d['max'])} "
             f"(at {fmt(d['max_at_s'])} s), final {fmt(d['final'])}"]
    behind = d.get("behind_leader") or {}
    if len(behind) > 1:
        parts.append("  how far each clock is behind the leading one (the highest clock at "
                     "that moment, whichever machine has it):")
        parts.append(table(["machine", "mean", "max", "final"],
                           [[k, v["mean"], v["max"], v["final"]] for k, v in behind.items()]))
    return parts


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.3g}%"


def clock_rows(c: dict[str, Any]) -> list[list[Any]]:
    """One row per clock: bytes, causal pairs misordered (messages, sample), tied, and how
    concurrent pairs are stamped (shared by the printed tables and the report)."""
    sample = c.get("sample") or {}
    rows = []
    for clock, name in (("pt", "physical pt"), ("lamport", "Lamport"), ("hlc", "HLC")):
        m = c["messages"].get(clock)
        if m is None:
            rows.append([name, "-", "not kept", "", "", "", "", ""])
            continue
        s = (sample.get("causal_misordered") or {}).get(clock) or {}
        conc = (sample.get("concurrent_order") or {}).get(clock) or {}
        rows.append([name, c["bytes_per_message"][clock],
                     f"{m['misordered']} ({_pct(m['misordered_share'])})",
                     f"{s.get('misordered', '-')} ({_pct(s.get('misordered_share'))})" if s else "-",
                     m["tied"] + s.get("tied", 0), _pct(conc.get("before")),
                     _pct(conc.get("after")), _pct(conc.get("equal"))])
    return rows


CLOCK_HEAD = ["clock", "bytes/msg", "messages misordered", "sampled causal misordered",
              "ties", "concurrent: before", "after", "equal"]


def _clock_table(c: dict[str, Any] | None) -> list[str]:
    if not c:
        return []
    m = c["messages"]
    s = c.get("sample")
    parts = [f"\nClocks compared (SPEC 7.5): {m['pairs']} messages (each a causal pair)"
             + ((f" and every one of the {s['pairs']} event pairs" if s.get("every_pair") else
                 f" and {s['pairs']} sampled event pairs")
                + f" ({s['causal']} causal, {s['concurrent']} concurrent by the vector clocks"
                + ("" if s.get("every_pair") else f"; seed {s['seed']}") + ")" if s else
                "; no vector clocks, so no sample of other pairs")
             + "; concurrent pairs oriented by system time, 'before' = the clock agrees with it",
             table(CLOCK_HEAD, clock_rows(c))]
    verdict = ("OK: Lamport and HLC order every causal pair, as the clock condition says"
               if c["logical_clocks_ok"] else
               f"VIOLATION: logical clocks misordered or tied causal pairs "
               f"{c['logical_violations']}: run `lclock check`")
    parts.append("  " + verdict)
    if c["bytes_per_message"].get("vector"):
        parts.append(f"  vector clocks, the reference that tells causal from concurrent: "
                     f"{c['bytes_per_message']['vector']} bytes a message")
    h = c.get("hlc")
    if h:
        parts.append(f"  HLC: largest l - pt {fmt(h['max_l_minus_pt_us'])} µs (mean "
                     f"{fmt(h['mean_l_minus_pt_us'])}), "
                     + (f"bound {fmt(h['bound_us'])} µs" if h["bound_us"] is not None else
                        "no bound recorded (no clock plan: every machine read the host clock)")
                     + "; largest c "
                     f"{fmt(h['max_c'])}")
    return parts


def groups_text(groups: Any, n: int) -> str:
    """``1 | 2,3,4``: the sides of a partition, the machines no group names as the last."""
    if not isinstance(groups, list):
        return str(groups)
    named = {i for g in groups if isinstance(g, list) for i in g}
    rest = [i for i in range(1, n + 1) if i not in named]
    sides = [g for g in groups if isinstance(g, list)] + ([rest] if rest else [])
    return " | ".join(",".join(map(str, g)) for g in sides)


def _fault_tables(f: dict[str, Any] | None, summary_n: int) -> list[str]:
    if not f:
        return []
    d = f["dropped"]
    parts = [f"\nFaults: {d['loss']} messages lost, {d['partition']} dropped by partitions, "
             f"{d['crashed']} sent to a crashed machine, {f['duplicated']} delivered twice"
             + ("; links may reorder" if f["reorder"] else "")]
    # every link that carried anything: one with sends and no drops is a finding too
    links = {k: v for k, v in f["links"].items() if v["sent"] or v["dropped"] or v["duplicated"]}
    if links:
        parts.append(table(["link", "sent", "lost", "partition", "crashed", "dropped %",
                            "duplicated"],
                           [[k, v["sent"], v["loss"], v["partition"], v["crashed"],
                             100 * v["dropped"] / v["sent"] if v["sent"] else None,
                             v["duplicated"]] for k, v in links.items()]))
    for p in f["partitions"]:
        parts.append(f"  partition {fmt(p['start'])}-{fmt(p['end'])} s: "
                     f"{groups_text(p['groups'], summary_n)}")
    for p in f["pauses"]:
        parts.append(f"  pause of machine {p['machine']}: {fmt(p['start'])}-{fmt(p['end'])} s")
    for c in f["crashes"]:
        parts.append(f"  crash of machine {c['machine']} at {fmt(c['time'])} s")
    if f["after"]:
        parts.append("  first receive after a partition heals or a pause ends (Lamport jump):")
        parts.append(table(["machine", "after", "at s", "receive at s", "from", "jump",
                            "mean jump"],
                           [[a["machine"], a["after"], a["at_s"], a["receive_at_s"], a["from"],
                             a["jump"], a["mean_jump"]] for a in f["after"]]))
    return parts


def render(summary: dict[str, Any]) -> str:
    """The human tables ``lclock analyze`` prints."""
    parts = [f"Run {summary['run_id']} ({summary['status']}): {summary['machines_n']} machines, "
             f"{summary['events']} events over {fmt(summary['duration_s'])} s"]
    parts += _machine_tables(summary["machines"])
    parts += _drift_table(summary["drift"])
    c = summary["concurrency"]
    if c:
        parts.append(f"\nConcurrency (vector clocks): {c['concurrent']} of {c['pairs']} pairs of "
                     f"events on different machines are concurrent ({fmt(100 * (c['fraction'] or 0))}%)")
    parts += _clock_table(summary.get("clocks"))
    parts += _fault_tables(summary.get("faults"), summary["machines_n"])
    if summary["skipped_lines"]:
        parts.append(f"\n{summary['skipped_lines']} unusable line(s) skipped: run `lclock check`.")
    return "\n".join(parts)
