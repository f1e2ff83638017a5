"""The answers of ``lclock trace`` and ``lclock hb``: plain dicts (for ``--json``) and their text.

The dicts are built from ``causal.Causality`` and hold only JSON types; the text is made from
the dicts, so what a person reads and what a program parses cannot disagree. Text stays
bounded whatever the run's size: ranges of ticks per machine, a capped number of machines
and examples, and counts for the rest.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from lclock.analysis.causal import (
    CausalError,
    Causality,
    Event,
    Hop,
    describe,
    lamport_lies,
    name,
)
from lclock.analysis.load import KIND_RECEIVE, KIND_SEND, MachineLog, Run, load_run

# ---------------------------------------------------------------- trace


def trace(c: Causality, e: Event) -> dict[str, Any]:
    """An event, the life of its message (if it sent or handled one), its past and future."""
    run = c.run
    log = run.machines[e.machine]
    kind = int(log.kind[e.index])
    send = e if kind == KIND_SEND else c.send_of(e) if kind == KIND_RECEIVE else None
    out: dict[str, Any] = {"run": run.run_id, "event": describe(run, e), "name": name(run, e)}
    if kind == KIND_RECEIVE and send is None:
        ev = out["event"]
        out["message"] = {"matched": False, "from": ev["from"], "msg_lclock": ev["msg_lclock"],
                          "why": _why_unmatched(ev["from"], e.machine, ev["msg_lclock"])}
    elif send is not None:
        out["message"] = message_life(c, send)
    else:
        out["message"] = None
    regions = c.regions(e)
    out["past"] = _region(run, regions, "past")
    out["concurrent"] = _region(run, regions, "concurrent")
    out["future"] = _region(run, regions, "future")
    out["frontier"] = {
        "last_in_past": {str(i): describe(run, Event(i, r["past"] - 1))
                         for i, r in regions.items() if i != e.machine and r["past"] > 0},
        "first_in_future": {str(i): describe(run, Event(i, r["events"] - r["future"]))
                            for i, r in regions.items() if i != e.machine and r["future"] > 0},
    }
    agrees = c.logged_agrees(e)
    out["vector"] = {"derived": [int(x) for x in c.vc[e.machine][e.index]],
                     "logged": out["event"].get("vclock"), "agrees": agrees}
    out["notes"] = _notes(c)
    return out


def _why_unmatched(frm: int | None, j: int, msg: int | None) -> str:
    """Why a receive matched no send, in the words of the matching (SPEC 5.1): an imported
    log may not say the sender or the message's clock."""
    if msg is None:
        return "the log does not say the clock its message carried, so no send can be told"
    sender = f"machine {frm}" if frm is not None else "any machine"
    return (f"no send of {sender} to {j} (nor any naming no recipient) has Lamport clock "
            f"{msg} (run lclock check)")


def message_life(c: Causality, send: Event) -> dict[str, Any]:
    """A message's send, every receive (time from the send, queue wait, the jump it caused),
    and every recipient that never handled it, with the reason where the logs say it."""
    run = c.run
    slog = run.machines[send.machine]
    L = int(slog.lclock[send.index])
    t_send = float(slog.ts[send.index])
    receives = []
    handled = set()
    for r in c.receives_of(send):
        handled.add(r.machine)
        receives.append(_receive(run, r, t_send))
    dups: dict[int, int] = {}
    for x in receives:
        dups[x["machine"]] = dups.get(x["machine"], 0) + 1
    for x in receives:
        x["duplicate"] = dups[x["machine"]] > 1
    missing = [{"machine": j, "why": _why_not_handled(run, send, j)}
               for j in slog.recipients(send.index) if j not in handled]
    return {"matched": True, "id": f"{send.machine}:L{L}", "send": describe(run, send),
            "recipients": slog.recipients(send.index), "receives": receives,
            "not_handled": missing}


def _receive(run: Run, r: Event, t_send: float) -> dict[str, Any]:
    log = run.machines[r.machine]
    k = r.index
    t = float(log.ts[k])
    prev = int(log.lclock[k - 1]) if k > 0 else 0
    L = int(log.lclock[k])
    msg = int(log.msg[k])
    d = describe(run, r)
    d["delay_s"] = _round(t - t_send)
    # the message arrived after the send and after the receiver's queue was last seen empty
    empty = np.flatnonzero(log.qlen[:k] == 0)
    seen_empty = float(log.ts[int(empty[-1])]) if empty.size else -np.inf
    arrived_after = max(t_send, seen_empty)
    d["queue_wait_max_s"] = _round(t - arrived_after)
    # ... and it was already waiting after tick j if every tick from j+1 on took a message and
    # the queue then held at least as many as were taken up to this one (one FIFO queue)
    j, waiting_since = k - 1, None
    while j >= 0 and log.kind[j + 1] == KIND_RECEIVE and log.qlen[j] >= k - j:
        waiting_since, j = j, j - 1
    d["queue_wait_min_s"] = _round(t - float(log.ts[waiting_since])) if waiting_since is not None else 0.0
    d["lclock_before"] = prev
    d["jump"] = L - prev
    d["advanced_by_message"] = msg >= prev
    return d


def _round(x: float) -> float | None:
    return round(x, 6) if np.isfinite(x) else None


def _why_not_handled(run: Run, send: Event, j: int) -> str:
    """What the logs say about a recipient that never handled a message."""
    slog = run.machines[send.machine]
    L = int(slog.lclock[send.index])
    for d in _drop_lines(slog):
        to = d.get("to")
        if d.get("msg_lclock") == L and (to == j or (isinstance(to, list) and j in to)):
            return f"dropped by the sender (reason {d.get('reason', '?')})"
    rlog = run.machines.get(j)
    if rlog is None:
        return f"machine {j}'s log is not in the folder"
    if rlog.stop is None:
        return f"machine {j}'s log ends without a stop line (crashed or killed)"
    frm = rlog.stop.get("unprocessed_from")
    left = frm.get(str(send.machine)) if isinstance(frm, dict) else rlog.stop.get("unprocessed")
    if isinstance(left, int) and left > 0:
        return (f"still in machine {j}'s queue at its stop (its stop line counts {left} "
                f"unprocessed message(s) from {send.machine if isinstance(frm, dict) else 'its peers'})")
    return f"never handled by machine {j} and not counted as unprocessed: lost (run lclock check)"


def _drop_lines(log: MachineLog) -> list[dict[str, Any]]:
    """The sender's ``drop`` lines (SPEC section 6), read from its file only when asked."""
    if log.other_events.get("drop", 0) == 0:
        return []
    out = []
    try:
        with open(log.path, "rb") as fh:
            for raw in fh:
                if b'"drop"' in raw:
                    try:
                        d = orjson.loads(raw)
                    except orjson.JSONDecodeError:
                        continue
                    if isinstance(d, dict) and d.get("event") == "drop":
                        out.append(d)
    except OSError:
        return []
    return out


def _region(run: Run, regions: dict[int, dict[str, Any]], which: str) -> dict[str, Any]:
    return {"events": sum(r[which] for r in regions.values()),
            "machines": {str(i): {"events": r[which], "ticks": r[f"{which}_ticks"]}
                         for i, r in regions.items()}}


def _notes(c: Causality) -> list[str]:
    notes = []
    if c.unmatched:
        first = c.unmatched[0]
        notes.append(f"{len(c.unmatched)} receive(s) in this run match no send (the first: "
                     f"{name(c.run, first)}): they are left out of happened-before; run lclock check")
    if c.cyclic:
        notes.append(f"{len(c.cyclic)} receive(s) would make a message arrive before it was sent "
                     "(a cycle): they are left out of happened-before; run lclock check")
    return notes


def trace_text(d: dict[str, Any], machines_max: int = 16) -> list[str]:
    ev = d["event"]
    out = [f"event {d['name']}: machine {ev['machine']}, tick {ev['tick']}, Lamport clock "
           f"{ev['lclock']}, {_when(ev)}, line {ev['line']}"]
    vec = d["vector"]
    if vec["logged"] is not None:
        tail = "" if vec["agrees"] else f" (but the messages give {vec['derived']}: run lclock check)"
        out.append(f"  vector clock {vec['logged']}{tail}")
    m = d["message"]
    if m is not None:
        out.append("")
        out += _message_text(m)
    out.append("")
    out.append("causal past, concurrent events and causal future, per machine:")
    ids = list(d["past"]["machines"])
    for i in ids[:machines_max]:
        p, c, f = (d[k]["machines"][i] for k in ("past", "concurrent", "future"))
        out.append(f"  machine {i}: past {_span(p)}; concurrent {_span(c)}; future {_span(f)}")
    if len(ids) > machines_max:
        out.append(f"  ... and {len(ids) - machines_max} more machines (--json lists every one)")
    out.append(f"  in all: {d['past']['events']} event(s) happened before it, "
               f"{d['concurrent']['events']} are concurrent, {d['future']['events']} happened after")
    fr = d["frontier"]["last_in_past"]
    if fr:
        shown = list(fr.items())[:machines_max]
        out.append("  the latest news it has from each machine: " + ", ".join(
            f"{i}:t{x['tick']} (L{x['lclock']})" for i, x in shown))
    for note in d["notes"]:
        out.append(f"note: {note}")
    return out


def _message_text(m: dict[str, Any]) -> list[str]:
    if not m["matched"]:
        frm = "its sender not logged" if m["from"] is None else f"from machine {m['from']}"
        carrying = "" if m["msg_lclock"] is None else f", carrying L{m['msg_lclock']}"
        return [f"the message it handled ({frm}{carrying}) matches no send: {m['why']}"]
    s = m["send"]
    to = ", ".join(map(str, m["recipients"])) or "recipients not logged"
    out = [f"message {m['id']}: sent by machine {s['machine']} at tick {s['tick']} "
           f"({_when(s)}) to {to}"]
    for r in m["receives"]:
        jump = (f"L {r['lclock_before']} -> {r['lclock']}: jump +{r['jump']}"
                + (f" (the message's L{s['lclock']} + 1)" if r["advanced_by_message"] and r["jump"] > 1
                   else " (no jump: the receiver's clock was already ahead)" if r["jump"] == 1 else ""))
        lo, hi = r["queue_wait_min_s"], r["queue_wait_max_s"]
        wait = (f"at most {_secs(hi)}" if not lo else f"{_secs(hi)}" if _secs(lo) == _secs(hi)
                else f"between {_secs(lo)} and {_secs(hi)}")
        out.append(f"  handled by machine {r['machine']} at tick {r['tick']} ({_when(r)}): "
                   f"{_secs(r['delay_s'])} after the send, in the queue {wait}; "
                   f"{jump}" + ("  [duplicate delivery]" if r["duplicate"] else ""))
    for x in m["not_handled"]:
        out.append(f"  not handled by machine {x['machine']}: {x['why']}")
    return out


def _span(r: dict[str, Any]) -> str:
    return "-" if not r["events"] else f"{r['ticks']} ({r['events']})"


def _when(ev: dict[str, Any]) -> str:
    return "time unknown" if ev.get("t_s") is None else f"{ev['t_s']:.6f} s after t0"


def _secs(x: float | None) -> str:
    return "?" if x is None else f"{x:.6f} s" if abs(x) < 1 else f"{x:.3f} s"


# ---------------------------------------------------------------- hb


def hb(c: Causality, a: Event, b: Event, chain_max: int = 20) -> dict[str, Any]:
    """Whether a happened before b, after it, or neither, with the proof."""
    run = c.run
    rel = c.relation(a, b)
    da, db = describe(run, a), describe(run, b)
    la, lb = da["lclock"], db["lclock"]
    lam = "before" if la < lb else "after" if la > lb else "equal"
    logged = run.machines[a.machine].vclock is not None and run.machines[b.machine].vclock is not None
    agree = bool(c.logged_agrees(a)) and bool(c.logged_agrees(b))
    va = [int(x) for x in c.vc[a.machine][a.index]]
    vb = [int(x) for x in c.vc[b.machine][b.index]]
    proof: dict[str, Any] = {"vectors": "logged" if logged and agree else
                             "derived" if not logged else "derived (the logged ones disagree)",
                             "a_vector": va, "b_vector": vb, "text": []}
    text: list[str] = proof["text"]
    first, second = (a, b) if rel != "after" else (b, a)
    if rel == "same":
        text.append("the same event")
    elif a.machine == b.machine:
        k1, k2 = (da, db) if rel == "before" else (db, da)
        text.append(f"both are on machine {a.machine}, and tick {k1['tick']} comes before tick "
                    f"{k2['tick']} (each machine's events happen in order)")
    elif rel in ("before", "after"):
        v1, v2 = (va, vb) if rel == "before" else (vb, va)
        if logged:
            text.append(f"V({_nm(run, first)}) = {v1} <= V({_nm(run, second)}) = {v2}, entry by entry, "
                        "and they differ")
        text.append(f"{_nm(run, second)} has seen {_nm(run, first)}: its vector counts "
                    f"{v2[first.machine - 1]} events of machine {first.machine}, and "
                    f"{_nm(run, first)} is event {first.index + 1} of machine {first.machine}")
    else:
        if logged:
            i = next(k for k in range(len(va)) if va[k] > vb[k])
            j = next(k for k in range(len(va)) if vb[k] > va[k])
            text.append(f"neither vector is below the other: V(A) = {va}, V(B) = {vb}; "
                        f"entry {i + 1}: A {va[i]} > B {vb[i]}, so A is not before B; "
                        f"entry {j + 1}: A {va[j]} < B {vb[j]}, so B is not before A")
        text.append(f"no chain of messages leads from A to B: B's past holds only the first "
                    f"{vb[a.machine - 1]} event(s) of machine {a.machine}, and A is event "
                    f"{a.index + 1}")
        text.append(f"nor from B to A: A's past holds only the first {va[b.machine - 1]} event(s) "
                    f"of machine {b.machine}, and B is event {b.index + 1}")
    if rel in ("before", "after") and a.machine != b.machine:
        hops = c.chain(first, second) or []
        proof["chain"] = [{"send": describe(run, h.send), "receive": describe(run, h.receive)}
                          for h in hops]
        text.append(f"a chain of {len(hops)} message(s) from {_nm(run, first)} to {_nm(run, second)}:")
        text += [f"  {x}" for x in _chain_text(run, first, second, hops, chain_max)]
    out: dict[str, Any] = {"run": run.run_id, "a": da, "b": db, "relation": rel, "proof": proof,
                           "lamport": {"a": la, "b": lb, "says": lam,
                                       "misleading": rel == "concurrent" and lam != "equal"},
                           "notes": _notes(c)}
    return out


def _chain_text(run: Run, first: Event, last: Event, hops: list[Hop], most: int) -> list[str]:
    """The chain as steps: along a machine to a send, then the message to its receive."""
    out = [name(run, first)]
    at = first
    for h in hops[:most]:
        if h.send != at:
            out.append(f"-> on machine {at.machine}, later: {name(run, h.send)}")
        out.append(f"-> message to machine {h.receive.machine}: {name(run, h.receive)}")
        at = h.receive
    if len(hops) > most:
        out.append(f"-> ... {len(hops) - most} more message(s) (--json lists every one)")
        at = hops[-1].receive
    if at != last:
        out.append(f"-> on machine {at.machine}, later: {name(run, last)}")
    return out


def _nm(run: Run, e: Event) -> str:
    log = run.machines[e.machine]
    return f"{e.machine}:t{int(log.tick[e.index])}"


def hb_text(d: dict[str, Any]) -> list[str]:
    a, b = d["a"], d["b"]
    an = f"A = {a['machine']}:t{a['tick']} (L{a['lclock']}, {a['event']})"
    bn = f"B = {b['machine']}:t{b['tick']} (L{b['lclock']}, {b['event']})"
    rel = d["relation"]
    verdict = {"same": "A and B are the same event",
               "before": "A happened before B  (A -> B)",
               "after": "B happened before A  (B -> A)",
               "concurrent": "A and B are concurrent  (A || B): neither happened before the other"}[rel]
    out = [an, bn, verdict, "proof" + (f" (vector clocks {d['proof']['vectors']})"
                                       if rel != "same" else "") + ":"]
    out += [f"  {x}" for x in d["proof"]["text"]]
    lam = d["lamport"]
    if lam["misleading"]:
        x, y = ("A", "B") if lam["says"] == "before" else ("B", "A")
        out.append(f"Lamport clocks say {x} before {y} (L{min(lam['a'], lam['b'])} < "
                   f"L{max(lam['a'], lam['b'])}), yet they are concurrent: L(x) < L(y) does not "
                   "mean x -> y")
    elif rel == "concurrent":
        out.append(f"their Lamport clocks are equal (L{lam['a']}); the total order puts the lower "
                   "machine id first")
    for note in d["notes"]:
        out.append(f"note: {note}")
    return out


# ---------------------------------------------------------------- Lamport order vs causality


def lies(c: Causality, examples: int) -> dict[str, Any]:
    d = lamport_lies(c, examples)
    d["run"] = c.run.run_id
    d["notes"] = _notes(c)
    return d


def lies_text(d: dict[str, Any]) -> list[str]:
    n, k = d["ordered_pairs"], d["concurrent"]
    pct = f" ({100 * k / n:.1f}%)" if n else ""
    out = [f"Pairs of events on different machines that Lamport clocks order (L(A) < L(B)): {n}",
           f"  A happened before B:        {d['causal']}",
           f"  A and B are concurrent:     {k}{pct}  <- Lamport order says 'before', causality says nothing"]
    if d["clock_condition_broken"]:
        out.append(f"  B happened before A:        {d['clock_condition_broken']}  <- the clock "
                   "condition is broken: run lclock check")
    out.append(f"Pairs with equal Lamport clocks on different machines (always concurrent; the "
               f"total order breaks the tie by machine id): {d['equal_clock_pairs']}")
    if d["examples"]:
        out.append("examples (L(A) < L(B), yet neither happened before the other):")
        for x in d["examples"]:
            a, b = x["a"], x["b"]
            out.append(f"  A = {a['machine']}:t{a['tick']} (L{a['lclock']}), "
                       f"B = {b['machine']}:t{b['tick']} (L{b['lclock']}): V(A) = {x['a_vector']}, "
                       f"V(B) = {x['b_vector']}")
    for note in d["notes"]:
        out.append(f"note: {note}")
    return out



# ---------------------------------------------------------------- for the commands


def open_causality(run_dir: str | Path) -> Causality:
    """Load a run and match its messages; RunFolderError / CausalError for the CLI's one line."""
    run = load_run(run_dir)
    if not run.machines or run.events == 0:
        raise CausalError(f"{run_dir}: no tick events to ask about")
    return Causality.build(run)


def print_json(d: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(d, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE).decode())
