"""Causal questions: message matching, derived vector clocks, happened-before with its proof,
the chain of messages, Lamport order against causality, the total order, and the commands
``trace``, ``hb`` and ``export --format total-order`` run as subprocesses.

The oracle is written apart from the code it checks: happened-before by plain graph search
over program order and matched messages, and the counts by looking at every pair.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import random
import re
import subprocess
import sys
from collections import deque
from pathlib import Path

import numpy as np
import pytest
from analysis_fixtures import make_run, read_lines, write_lines

from lclock.analysis.causal import (
    CausalError,
    Causality,
    Event,
    find_event,
    lamport_lies,
    parse_event,
    total_order,
)
from lclock.analysis.causal_answers import message_life, trace
from lclock.analysis.load import KIND_RECEIVE, KIND_SEND, Run, load_run
from lclock.analysis.total_order import write_total_order

REPO = Path(__file__).resolve().parents[1]


def lclock(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lclock", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=timeout)


# ---------------------------------------------------------------- an independent oracle


def edges(run: Run) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """Successors of every event: the next event of its machine, and each receive of its
    message, matched by a plain dictionary lookup."""
    sends: dict[tuple[int, int, int], int] = {}
    for m, log in run.machines.items():
        for k in range(log.events):
            if log.kind[k] == KIND_SEND:
                for j in log.recipients(k):
                    sends.setdefault((m, j, int(log.lclock[k])), k)
    succ: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for m, log in run.machines.items():
        for k in range(log.events):
            succ.setdefault((m, k), [])
            if k + 1 < log.events:
                succ[(m, k)].append((m, k + 1))
            if log.kind[k] == KIND_RECEIVE:
                s = int(log.frm[k])
                ks = sends.get((s, m, int(log.msg[k])))
                if ks is not None:
                    succ.setdefault((s, ks), []).append((m, k))
    return succ


def reachable(succ: dict[tuple[int, int], list[tuple[int, int]]], a: tuple[int, int]) -> set[tuple[int, int]]:
    seen = {a}
    todo = deque([a])
    while todo:
        x = todo.popleft()
        for y in succ.get(x, []):
            if y not in seen:
                seen.add(y)
                todo.append(y)
    return seen


def all_events(run: Run) -> list[Event]:
    return [Event(m, k) for m in run.ids for k in range(run.machines[m].events)]


# ---------------------------------------------------------------- the core


@pytest.mark.parametrize("rates,seed", [((1, 3, 6), 7), ((2, 2), 3), ((4, 1, 7, 3, 5), 11),
                                        ((6, 6, 6), 5), ((1, 2, 3, 4, 5, 6), 9)])
def test_derived_vectors_equal_the_logged_ones(tmp_path: Path, rates: tuple[int, ...], seed: int) -> None:
    run = load_run(make_run(tmp_path / "r", rates=rates, duration=30.0, seed=seed))
    c = Causality.build(run)
    assert c.unmatched == [] and c.cyclic == []
    for i in run.ids:
        assert np.array_equal(c.vc[i], run.machines[i].vclock), f"machine {i}"


def test_relation_and_chains_agree_with_graph_search(tmp_path: Path) -> None:
    run = load_run(make_run(tmp_path / "r", rates=(2, 5, 3, 1), duration=12.0, vector=False))
    c = Causality.build(run)
    succ = edges(run)
    evs = all_events(run)
    rng = random.Random(1)
    for a in rng.sample(evs, 25):
        fut = reachable(succ, (a.machine, a.index))
        for b in evs:
            rel = c.relation(a, b)
            if a == b:
                assert rel == "same"
            elif (b.machine, b.index) in fut:
                assert rel == "before"
                hops = c.chain(a, b)
                assert hops is not None
                at = a
                for h in hops:  # a real path: along a machine, then a real message
                    assert h.send.machine == at.machine and h.send.index >= at.index
                    assert c.send_of(h.receive) == h.send
                    at = h.receive
                assert at.machine == b.machine and at.index <= b.index
            else:
                assert rel in ("after", "concurrent")
                assert c.chain(a, b) is None
                assert (rel == "after") == ((a.machine, a.index) in reachable(succ, (b.machine, b.index)))


def test_regions_count_past_concurrent_future(tmp_path: Path) -> None:
    run = load_run(make_run(tmp_path / "r", rates=(3, 1, 4), duration=10.0))
    c = Causality.build(run)
    evs = all_events(run)
    succ = edges(run)
    for e in random.Random(2).sample(evs, 10):
        fut = reachable(succ, (e.machine, e.index)) - {(e.machine, e.index)}
        past = {(x.machine, x.index) for x in evs if c.relation(x, e) == "before"}
        reg = c.regions(e)
        for i, r in reg.items():
            assert r["past"] == sum(1 for m, _ in past if m == i)
            assert r["future"] == sum(1 for m, _ in fut if m == i)
            assert r["past"] + r["concurrent"] + r["future"] + (i == e.machine) == r["events"]
        assert sum(r["past"] for r in reg.values()) == len(past)


def test_lamport_lies_counts_every_pair(tmp_path: Path) -> None:
    run = load_run(make_run(tmp_path / "r", rates=(2, 5, 3), duration=10.0))
    c = Causality.build(run)
    evs = all_events(run)
    L = {e: int(run.machines[e.machine].lclock[e.index]) for e in evs}
    ordered = lies = ties = causal = 0
    for a, b in itertools.permutations(evs, 2):
        if a.machine == b.machine:
            continue
        rel = c.relation(a, b)
        if L[a] < L[b]:
            ordered += 1
            lies += rel == "concurrent"
            causal += rel == "before"
        elif L[a] == L[b] and a < b:
            ties += 1
            assert rel == "concurrent"
    d = lamport_lies(c, examples=4)
    assert (d["ordered_pairs"], d["concurrent"], d["causal"], d["equal_clock_pairs"]) == (
        ordered, lies, causal, ties)
    assert d["clock_condition_broken"] == 0 and 0 < lies < ordered
    assert 1 <= len(d["examples"]) <= 4
    for x in d["examples"]:
        a = find_event(run, f"{x['a']['machine']}:t{x['a']['tick']}")
        b = find_event(run, f"{x['b']['machine']}:t{x['b']['tick']}")
        assert c.relation(a, b) == "concurrent" and L[a] < L[b]


def test_cycle_and_unmatched_receives_are_reported_not_fatal(tmp_path: Path) -> None:
    d = tmp_path / "r"
    d.mkdir()
    base = {"ts": "2026-01-01T00:00:00.000000Z", "level": "info", "run_id": "x", "queue_len": 0}
    # each machine handles, as its first event, the message the other sends at its second
    write_lines(d / "machine-1.jsonl", [
        {**base, "machine": 1, "event": "receive", "tick": 1, "lclock": 5, "from": 2, "msg_lclock": 4},
        {**base, "machine": 1, "event": "send", "tick": 2, "lclock": 6, "to": [2], "dice": 1},
        {**base, "machine": 1, "event": "receive", "tick": 3, "lclock": 99, "from": 2, "msg_lclock": 77},
    ])
    write_lines(d / "machine-2.jsonl", [
        {**base, "machine": 2, "event": "receive", "tick": 1, "lclock": 7, "from": 1, "msg_lclock": 6},
        {**base, "machine": 2, "event": "send", "tick": 2, "lclock": 4, "to": [1], "dice": 1},
    ])
    run = load_run(d)
    c = Causality.build(run)
    assert c.unmatched == [Event(1, 2)]
    assert len(c.cyclic) == 1
    assert trace(c, Event(1, 2))["message"]["matched"] is False
    assert any("cycle" in n for n in trace(c, Event(1, 0))["notes"])


@pytest.mark.timeout(60)
def test_find_event_syntax_and_errors(tmp_path: Path) -> None:
    run = load_run(make_run(tmp_path / "r", rates=(1, 3, 6), duration=10.0))
    assert parse_event("2:40") == (2, "L", 40) == parse_event("2:L40") == parse_event(" 2 : l40")
    assert parse_event("2:t17") == (2, "t", 17) == parse_event("m2:T17")
    log = run.machines[2]
    e = find_event(run, f"2:{int(log.lclock[5])}")
    assert e == Event(2, 5) == find_event(run, f"2:t{int(log.tick[5])}")
    for bad, msg in (("2-40", "not an event"), ("x:1", "not an event"), ("9:1", "no machine 9"),
                     (f"2:L{int(log.lclock[-1]) + 50}", "nearest"),
                     # hostile: a run of spaces once backtracked quadratically (50,000 took
                     # minutes; the timeout catches it), and 5,000 digits made int() raise
                     ("1:" + " " * 50_000 + "x", "not an event"), ("1:" + "9" * 5000, "not an event")):
        with pytest.raises(CausalError, match=msg):
            find_event(run, bad)


def test_repeated_clock_values_are_named_by_tick_and_lamport_lies_refuse_them(tmp_path: Path) -> None:
    """A receive without the +1 can repeat the previous clock value: the event is then
    ambiguous by its clock, and Lamport order cannot be compared with causality."""
    run = load_run(make_run(tmp_path / "r", rates=(1, 3, 6), duration=20.0, bug="receive_no_plus1"))
    m, k = next((m, k) for m, log in run.machines.items() for k in range(1, log.events)
                if log.lclock[k] == log.lclock[k - 1])
    log = run.machines[m]
    with pytest.raises(CausalError, match=f"name one by its tick, e.g. {m}:t{int(log.tick[k - 1])}"):
        find_event(run, f"{m}:{int(log.lclock[k])}")
    assert find_event(run, f"{m}:t{int(log.tick[k])}") == Event(m, k)
    p = lclock("hb", str(run.path), "--lamport-lies")
    assert p.returncode == 2 and "does not rise" in p.stderr and "lclock check" in p.stderr


def test_message_life_receives_delays_and_jumps(tmp_path: Path) -> None:
    run = load_run(make_run(tmp_path / "r", rates=(1, 3, 6), duration=20.0))
    c = Causality.build(run)
    log = run.machines[3]
    k = next(k for k in range(log.events) if log.kind[k] == KIND_SEND and len(log.recipients(k)) == 2
             and len(c.receives_of(Event(3, k))) == 2)
    life = message_life(c, Event(3, k))
    assert life["id"] == f"3:L{int(log.lclock[k])}"
    assert sorted(r["machine"] for r in life["receives"]) == [1, 2]
    for r in life["receives"]:
        rlog = run.machines[r["machine"]]
        idx = find_event(run, f"{r['machine']}:t{r['tick']}").index
        assert r["delay_s"] == pytest.approx(float(rlog.ts[idx] - log.ts[k]), abs=1e-6)
        assert 0 <= r["queue_wait_min_s"] <= r["queue_wait_max_s"] <= r["delay_s"] + 1e-9
        prev = int(rlog.lclock[idx - 1]) if idx else 0
        assert r["jump"] == int(rlog.lclock[idx]) - prev
        assert r["lclock"] == max(prev, int(log.lclock[k])) + 1
    assert life["not_handled"] == []


def test_queue_wait_bounds_hold_the_true_wait(tmp_path: Path) -> None:
    """The fixture delivers a message 0.002 to 0.004 s after its send, so the true time in
    the queue lies in [delay - 0.004, delay - 0.002]: both bounds must admit it, and the lower
    bound must be informative where queues are long."""
    run = load_run(make_run(tmp_path / "r", rates=(1, 3, 6), duration=30.0))
    c = Causality.build(run)
    informative = 0
    for m, log in run.machines.items():
        for k in np.flatnonzero(log.kind == KIND_SEND):
            for r in message_life(c, Event(m, int(k)))["receives"]:
                d = r["delay_s"]
                assert r["queue_wait_min_s"] <= d - 0.002 + 1e-6
                assert r["queue_wait_max_s"] >= d - 0.004 - 1e-5
                informative += r["queue_wait_min_s"] > 0.5
    assert informative > 10


def test_message_life_explains_messages_never_handled(tmp_path: Path) -> None:
    # machine 1 (1 tick/s) cannot keep up: messages are left in its queue at the stop
    run = load_run(make_run(tmp_path / "r", rates=(1, 3, 6), duration=20.0))
    c = Causality.build(run)
    log = run.machines[3]
    k = max(k for k in range(log.events) if log.kind[k] == KIND_SEND and 1 in log.recipients(k))
    (x,) = [x for x in message_life(c, Event(3, k))["not_handled"] if x["machine"] == 1]
    assert "queue at its stop" in x["why"]
    # a drop line of the sender (SPEC section 6) is the reason when there is one
    d = tmp_path / "r"
    lines = read_lines(d / "machine-3.jsonl")
    lines.insert(-1, {"ts": lines[-2]["ts"], "event": "drop", "level": "info", "run_id": "r",
                      "machine": 3, "to": 1, "msg_lclock": int(log.lclock[k]), "reason": "loss"})
    write_lines(d / "machine-3.jsonl", lines)
    c = Causality.build(load_run(d))
    (x,) = [x for x in message_life(c, Event(3, k))["not_handled"] if x["machine"] == 1]
    assert x["why"] == "dropped by the sender (reason loss)"


def test_total_order_extends_happened_before(tmp_path: Path) -> None:
    run = load_run(make_run(tmp_path / "r", rates=(2, 5, 3), duration=15.0))
    mids, idxs = total_order(run)
    assert len(mids) == run.events
    L = [int(run.machines[m].lclock[k]) for m, k in zip(mids.tolist(), idxs.tolist(), strict=True)]
    assert [(a, int(m)) for a, m in zip(L, mids, strict=True)] == sorted(zip(L, mids.tolist(), strict=True))
    place = {(int(m), int(k)): p for p, (m, k) in enumerate(zip(mids, idxs, strict=True))}
    c = Causality.build(run)
    for e in all_events(run):
        s = c.send_of(e)
        if s is not None:
            assert place[(s.machine, s.index)] < place[(e.machine, e.index)]
    buf = io.StringIO()
    assert write_total_order(run, buf) == run.events
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert [int(r["lclock"]) for r in rows] == L
    assert [int(r["position"]) for r in rows] == list(range(1, run.events + 1))
    ties = [r for r in rows if r["tie"] == "1"]
    assert ties and all(int(r["machine"]) > 0 for r in ties)


# ---------------------------------------------------------------- the commands


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("causal")
    return {"vc": make_run(base / "vc", rates=(1, 3, 6), duration=30.0),
            "novc": make_run(base / "novc", rates=(1, 3, 6), duration=30.0, vector=False)}


def test_cli_trace_a_message(runs: dict[str, Path]) -> None:
    run = load_run(runs["vc"])
    log = run.machines[2]
    k = next(k for k in range(5, log.events) if log.kind[k] == KIND_SEND)
    L = int(log.lclock[k])
    p = lclock("trace", str(runs["vc"]), f"2:{L}")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert f"message 2:L{L}: sent by machine 2 at tick {int(log.tick[k])}" in out
    assert "handled by machine" in out and "in the queue " in out and "jump +" in out
    assert "machine 3: past t1.." in out and "happened before it" in out
    p = lclock("trace", str(runs["vc"]), f"2:L{L}", "--json")
    d = json.loads(p.stdout)
    assert d["event"]["lclock"] == L and d["message"]["id"] == f"2:L{L}"
    assert d["vector"]["agrees"] is True
    total = d["past"]["events"] + d["concurrent"]["events"] + d["future"]["events"] + 1
    assert total == run.events


def test_cli_hb_with_vectors_and_with_chains(runs: dict[str, Path]) -> None:
    p = lclock("hb", str(runs["vc"]), "1:t2", "3:t40")
    assert p.returncode == 0, p.stderr
    run = load_run(runs["vc"])
    c = Causality.build(run)
    a, b = find_event(run, "1:t2"), find_event(run, "3:t40")
    rel = c.relation(a, b)
    assert {"before": "A happened before B", "after": "B happened before A",
            "concurrent": "are concurrent"}[rel] in p.stdout
    assert "vector clocks logged" in p.stdout and "V(" in p.stdout
    # without vector clocks the proof is a chain of messages
    run2 = load_run(runs["novc"])
    c2 = Causality.build(run2)
    pairs = [(x, y) for x in all_events(run2)[:40:7] for y in all_events(run2)[-200::23]
             if x.machine != y.machine]
    before = next((x, y) for x, y in pairs if c2.relation(x, y) == "before")
    conc = next((x, y) for x, y in pairs if c2.relation(x, y) == "concurrent")
    spec = [f"{e.machine}:t{int(run2.machines[e.machine].tick[e.index])}" for e in before]
    p = lclock("hb", str(runs["novc"]), *spec)
    assert p.returncode == 0, p.stderr
    assert "A happened before B" in p.stdout and "a chain of" in p.stdout
    assert "-> message to machine" in p.stdout and "vector clocks derived" in p.stdout
    d = json.loads(lclock("hb", str(runs["novc"]), *spec, "--json").stdout)
    assert d["relation"] == "before" and d["proof"]["chain"]
    spec = [f"{e.machine}:t{int(run2.machines[e.machine].tick[e.index])}" for e in conc]
    p = lclock("hb", str(runs["novc"]), *spec)
    assert "concurrent" in p.stdout and "no chain of messages leads from A to B" in p.stdout


def test_cli_hb_lamport_lies(runs: dict[str, Path]) -> None:
    p = lclock("hb", str(runs["vc"]), "--lamport-lies")
    assert p.returncode == 0, p.stderr
    assert "A and B are concurrent:" in p.stdout and "examples" in p.stdout
    d = json.loads(lclock("hb", str(runs["vc"]), "--lamport-lies", "--json", "--examples", "2").stdout)
    want = lamport_lies(Causality.build(load_run(runs["vc"])), 2)
    assert d["concurrent"] == want["concurrent"] > 0 and len(d["examples"]) == 2


def test_cli_export_total_order(runs: dict[str, Path]) -> None:
    p = lclock("export", "--format", "total-order", str(runs["vc"]))
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader((runs["vc"] / "total-order.csv").open()))
    assert len(rows) == load_run(runs["vc"]).events
    p = lclock("export", "-f", "total-order", str(runs["vc"]), "-o", "-")
    assert p.stdout.splitlines()[0].startswith("position,lclock,machine,tick")


@pytest.mark.parametrize("args,msg", [
    (["hb", "{run}", "2:40"], "give two events"),
    (["hb", "{run}", "2:40", "1:x"], "not an event"),
    (["hb", "{run}", "1:1", "2:2", "--lamport-lies"], "give two events"),
    (["trace", "{run}", "7:3"], "no machine 7"),
    (["trace", "{run}/nope", "1:1"], "no such folder"),
    (["trace", "{run}", "1:L999999"], "has no event with Lamport clock 999999"),
])
def test_cli_bad_questions(runs: dict[str, Path], args: list[str], msg: str) -> None:
    p = lclock(*[a.format(run=runs["vc"]) for a in args])
    assert p.returncode == 2
    assert msg in p.stderr and len(p.stderr.strip().splitlines()) == 1 and p.stdout == ""


@pytest.mark.parametrize("args", [
    ["export", "-f", "total-order", "{run}", "-o", "-"], ["export", "-f", "csv", "{run}", "-o", "-"],
    ["export", "{run}", "-o", "-"], ["trace", "{run}", "2:t5"], ["hb", "{run}", "--lamport-lies"],
    ["analyze", "{run}", "--json", "--no-write"], ["check", "{run}"], ["schema"]])
def test_closed_pipe_is_a_normal_end(runs: dict[str, Path], args: list[str]) -> None:
    """`lclock ... | head -1`: the reader went away; exit 0 and nothing on stderr."""
    import os

    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first write: deterministic EPIPE
    try:
        p = subprocess.run([sys.executable, "-m", "lclock", *[a.format(run=runs["vc"]) for a in args]],
                           stdout=w, stderr=subprocess.PIPE, text=True, cwd=REPO, timeout=120)
    finally:
        os.close(w)
    assert p.returncode == 0 and p.stderr == ""


@pytest.mark.parametrize("args", [
    ["export", "{run}", "-o", "-"], ["trace", "{run}", "2:t5"], ["hb", "{run}", "--lamport-lies"],
    ["analyze", "{run}", "--json", "--no-write"], ["check", "{run}"], ["schema"],
    ["check", "--bugs"], ["cuts", "{run}", "--count"]])
def test_a_full_output_is_one_line_not_a_traceback(runs: dict[str, Path], args: list[str]) -> None:
    """`lclock ... > /dev/full`: what could not be written is said once, exit 1."""
    with open("/dev/full", "w") as full:
        p = subprocess.run([sys.executable, "-m", "lclock", *[a.format(run=runs["vc"]) for a in args]],
                           stdout=full, stderr=subprocess.PIPE, text=True, cwd=REPO, timeout=120)
    assert p.returncode == 1
    assert p.stderr == "lclock: cannot write the output: No space left on device\n"


def test_hb_proof_names_a_and_b_in_the_questions_order(runs: dict[str, Path]) -> None:
    """Two concurrent events: each vector entry that proves it is written A first, B second,
    with what it rules out, and the numbers are the vectors' own."""
    from lclock.analysis.causal_answers import hb

    run = load_run(runs["vc"])
    c = Causality.build(run)
    a, b = next((x, y) for x in all_events(run)[10:200:7] for y in all_events(run)[10:200:5]
                if x.machine != y.machine and c.relation(x, y) == "concurrent")
    d = hb(c, a, b)
    va, vb = d["proof"]["a_vector"], d["proof"]["b_vector"]
    line = next(x for x in d["proof"]["text"] if x.startswith("neither vector"))
    m = re.search(r"entry (\d+): A (\d+) > B (\d+), so A is not before B; "
                  r"entry (\d+): A (\d+) < B (\d+), so B is not before A", line)
    assert m, line
    i, j = int(m[1]) - 1, int(m[4]) - 1
    assert (int(m[2]), int(m[3]), int(m[5]), int(m[6])) == (va[i], vb[i], va[j], vb[j])
