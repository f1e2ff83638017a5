"""The node, driven synchronously: set-up, schedule, queue, counters and log lines.

No processes, no sockets, no clock: the test is the driver, so every case runs in
microseconds and says exactly which rule it checks.
"""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lclock.core.logline import format_ts, render
from lclock.core.model import Message, machine_setup
from lclock.core.node import MachinePlan, Node, last_tick_due, ticks_in

PROPS = settings(max_examples=80, deadline=None)


def plan(mid: int = 1, n: int = 3, **kw: object) -> MachinePlan:
    base: dict[str, object] = {"run_id": "r", "seed": 7, "duration": 2.0}
    base.update(kw)
    return MachinePlan(mid, n, **base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rate", "duration", "ticks"),
    [(1, 60.0, 60), (3, 1.0, 3), (3, 1 / 3 * 3, 3), (6, 0.1, 1), (10_000, 0.5, 5000), (7, 1e-9, 1)],
)
def test_ticks_in_counts_deadlines_strictly_before_the_end(rate: int, duration: float, ticks: int) -> None:
    assert ticks_in(rate, duration) == ticks


@given(rate=st.integers(1, 10_000), duration=st.floats(0.001, 3600))
@PROPS
def test_every_counted_tick_is_due_before_the_end(rate: int, duration: float) -> None:
    n = ticks_in(rate, duration)
    assert n >= 1
    assert last_tick_due(rate, duration) == (n - 1) / rate
    if n > 1:
        assert (n - 1) / rate < duration + 1e-9
    assert n / rate >= duration - 1e-9  # the next one would be due at or after the end


def test_the_node_draws_its_rate_like_every_other_driver() -> None:
    for mid in (1, 2, 3):
        node = Node(plan(mid, rate_min=1, rate_max=600))
        rate, rng = machine_setup(7, mid, 1, 600, None)
        assert node.rate == rate == plan(mid, rate_min=1, rate_max=600).rate
        # The same generator position: the node's first roll is the set-up's next number.
        node.tick(0.0)
        assert node.machine.rng.getstate() != rng.getstate()
        rng.randint(1, 10)
        assert node.machine.rng.getstate() == rng.getstate()


def test_fixed_rates_are_used_and_keep_the_dice() -> None:
    drawn = Node(plan(2, seed=21))
    fixed = Node(plan(2, seed=21, rates=(1, 3, 6)))
    assert fixed.rate == 3
    a = [drawn.tick(0.0)[1].dice for _ in range(50)]
    b = [fixed.tick(0.0)[1].dice for _ in range(50)]
    assert a == b


def test_schedule_runs_total_ticks_on_absolute_deadlines() -> None:
    node = Node(plan(1, rates=(4, 4, 4), duration=2.5))
    dues = []
    while not node.finished:
        dues.append(node.next_due())
        node.tick(100.0)
    assert node.total == 10 == node.machine.ticks
    assert dues == [k / 4 for k in range(10)]


def test_take_fills_the_queue_and_a_tick_handles_exactly_one() -> None:
    node = Node(plan(2))
    for lc in (5, 9, 3):
        node.take(Message(1, lc, (lc, 0, 0)))
    assert len(node.queue) == 3 and node.max_queue == 3
    line, step, _sends, _extra = node.tick(0.0)
    assert step.event == "receive" and line["msg_lclock"] == 5 and line["queue_len"] == 2
    assert line["lclock"] == 6 and line["from"] == 1
    assert node.max_queue == 3
    assert node.taken_from == {1: 3}


def test_lines_have_the_common_fields_first_in_schema_order() -> None:
    node = Node(plan(3, run_id="run-x"))
    start = node.start_line(1.5, pid=42)
    assert list(start)[:5] == ["ts", "event", "level", "run_id", "machine"]
    assert start["event"] == "start" and start["machine"] == 3 and start["run_id"] == "run-x"
    assert start["rate"] == node.rate and start["seed"] == 7 and start["pid"] == 42
    assert (start["peer_a"], start["peer_b"]) == (1, 2)
    conn = node.connected_line(2.0, [1, 2], 1.75)
    assert conn["t0"] == format_ts(1.75) and conn["t0_epoch"] == 1.75 and conn["peers"] == [1, 2]
    line, step, _sends, _extra = node.tick(3.25)
    assert list(line)[:6] == ["ts", "event", "level", "run_id", "machine", "tick"]
    assert line["ts"] == format_ts(3.25) and line["event"] == step.event
    assert orjson.loads(render(line)) == line


def test_stop_counts_balance_per_link() -> None:
    """What a node reports at the stop lets the launcher balance every link."""
    nodes = {i: Node(plan(i, seed=3, rates=(50, 50, 50), duration=4.0)) for i in (1, 2, 3)}
    in_flight: list[tuple[int, Message]] = []
    while not all(nd.finished for nd in nodes.values()):
        for nd in nodes.values():
            if nd.finished:
                continue
            _line, step, sends, _extra = nd.tick(0.0)
            if step.message is not None:
                for dst in step.to or ():
                    in_flight.append((dst, step.message))
                assert sends is None
        # deliver half of what is in flight each round (the rest later)
        keep = in_flight[len(in_flight) // 2 :]
        for dst, msg in in_flight[: len(in_flight) // 2]:
            nodes[dst].take(msg)
        in_flight = keep
    for dst, msg in in_flight:  # the graceful stop takes in the rest
        nodes[dst].take(msg)
    reports = {i: nd.stop_fields("duration") for i, nd in nodes.items()}
    for i, rep in reports.items():
        assert rep["sent"] == sum(rep["sent_to"].values())
        assert rep["received"] + rep["unprocessed"] == sum(rep["taken_from"].values())
        assert rep["unprocessed"] == sum(rep["unprocessed_from"].values())
        for j, count in rep["sent_to"].items():
            assert reports[int(j)]["taken_from"][str(i)] == count


def test_stop_line_carries_the_counters_and_extras() -> None:
    node = Node(plan(1))
    node.take(Message(2, 4, (0, 4, 0)))
    node.undelivered = 2
    line = node.stop_line(9.0, "sigterm", cpu_s=0.5)
    assert line["event"] == "stop" and line["reason"] == "sigterm"
    assert line["unprocessed"] == 1 and line["unprocessed_from"] == {"2": 1}
    assert line["undelivered"] == 2 and line["cpu_s"] == 0.5
    assert line["ticks"] == 0 and line["lclock"] == 0


@given(seed=st.integers(0, 2**31), rates=st.lists(st.integers(1, 50), min_size=2, max_size=6))
@PROPS
def test_one_node_is_the_same_machine_whoever_drives_it(seed: int, rates: list[int]) -> None:
    """Two nodes of one plan fed the same arrivals log the same lines (drivers differ only in time)."""
    n = len(rates)
    p = MachinePlan(1, n, "r", seed, duration=1.0, rates=tuple(rates))
    a, b = Node(p), Node(p)
    for k in range(a.total):
        if k % 3 == 0:
            msg = Message(2, k, tuple([k] * n))
            a.take(msg)
            b.take(msg)
        assert a.tick(float(k))[0] == b.tick(float(k))[0]
    assert a.finished and b.finished
    assert a.stop_fields("duration") == b.stop_fields("duration")
    assert math.isclose(a.next_due(), a.total / a.rate)


def test_a_crashed_machines_entry_is_what_its_log_shows() -> None:
    """What it had taken in but not handled died with it: ``taken_from`` is what it handled."""
    node = Node(plan(1, n=3))
    for sender, lc in ((2, 5), (3, 7), (2, 9)):
        node.take(Message(sender, lc, (0, 0, 0)))
    _line, step, _sends, _extra = node.tick(0.1)  # handles the first message (from 2)
    assert step.event == "receive"
    out = node.crashed_fields()
    assert out["reason"] == "crashed"
    assert out["taken_from"] == {"2": 1} and out["received"] == 1
    assert node.stop_fields("duration")["taken_from"] == {"2": 2, "3": 1}
