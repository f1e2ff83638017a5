"""The warning limiter, driven with a fake clock: nothing dropped without a number."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from lclock.transport.limited_warn import LimitedWarn


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_the_first_burst_passes_then_a_count_every_so_often() -> None:
    got: list[tuple[str, dict[str, Any]]] = []
    clock = Clock()
    w = LimitedWarn(lambda e, **f: got.append((e, f)), burst=3, every=10.0, clock=clock)
    for i in range(3):
        w("intruder_rejected", peer=f"p{i}")
    assert [f["peer"] for _e, f in got] == ["p0", "p1", "p2"]
    for _ in range(5):
        w("intruder_rejected", peer="x")
    assert len(got) == 3, "counted, not logged, within the interval"
    clock.t = 10.5
    w("intruder_rejected", peer="y")
    assert got[-1][1]["repeated"] == 6
    w("accept_failed", error="EMFILE")  # another kind has its own burst
    assert got[-1] == ("accept_failed", {"error": "EMFILE"})
    w("intruder_rejected", peer="z")
    w.flush()
    assert got[-1][1]["repeated"] == 1
    w.flush()
    assert got[-1][1]["repeated"] == 1 and len(got) == 6, "nothing held: flush says nothing"


@given(st.lists(st.tuples(st.sampled_from("abc"), st.floats(0, 5)), max_size=200),
       st.integers(1, 10))
def test_every_warning_is_logged_or_counted(calls: list[tuple[str, float]], burst: int) -> None:
    got: list[tuple[str, dict[str, Any]]] = []
    clock = Clock()
    w = LimitedWarn(lambda e, **f: got.append((e, f)), burst=burst, every=3.0, clock=clock)
    for event, dt in calls:
        clock.t += dt
        w(event)
    w.flush()
    for event in "abc":
        sent = sum(1 for e, _t in calls if e == event)
        mine = [f for e, f in got if e == event]
        assert sum(f.get("repeated", 1) for f in mine) == sent
        assert len([f for f in mine if "repeated" not in f]) == min(sent, burst)
