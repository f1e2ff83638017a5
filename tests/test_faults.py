"""The fault model and the node under faults, driven synchronously (no processes)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lclock.core.faults import (
    Crash,
    FaultPlan,
    FaultSettings,
    LinkFaults,
    LinkSettings,
    Partition,
    Pause,
    applied_exactly,
    partitions_applied,
    resolve_plan,
)
from lclock.core.model import Message
from lclock.core.node import MachinePlan, Node
from lclock.settings import SettingsError, SettingsFile, resolve

PROPS = settings(max_examples=60, deadline=None)

links = st.builds(
    LinkSettings,
    latency_ms=st.floats(0, 500),
    latency_dist=st.sampled_from(["constant", "uniform", "exponential"]),
    loss=st.floats(0, 1),
    duplicate=st.floats(0, 1),
)


@given(link=links, seed=st.integers(0, 2**32), gaps=st.lists(st.floats(0, 0.05), min_size=1, max_size=300))
@PROPS
def test_without_reordering_a_link_never_delivers_out_of_order(link: LinkSettings, seed: int,
                                                                 gaps: list[float]) -> None:
    faults = LinkFaults(FaultPlan(seed, default=link), 1, 2)
    t, last = 0.0, -math.inf
    for gap in gaps:
        t += gap
        fate = faults.fate(t)
        for at in fate.arrivals:
            assert at >= t
            assert at >= last, "delivered before an earlier message of the link"
            last = at


def test_with_reordering_messages_overtake() -> None:
    plan = FaultPlan(7, default=LinkSettings(latency_ms=50, latency_dist="exponential"), reorder=True)
    faults = LinkFaults(plan, 1, 2)
    arrivals = [faults.fate(k * 0.001).arrivals[0] for k in range(500)]
    assert any(b < a for a, b in zip(arrivals, arrivals[1:]))


@given(seed=st.integers(0, 2**32), link=links)
@PROPS
def test_a_seed_repeats_the_faults(seed: int, link: LinkSettings) -> None:
    a = LinkFaults(FaultPlan(seed, default=link), 2, 3)
    b = LinkFaults(FaultPlan(seed, default=link), 2, 3)
    assert [a.fate(k / 10) for k in range(100)] == [b.fate(k / 10) for k in range(100)]


def test_loss_and_duplication_happen_at_their_rates() -> None:
    plan = FaultPlan(3, default=LinkSettings(loss=0.2, duplicate=0.1))
    faults = LinkFaults(plan, 1, 2)
    fates = [faults.fate(k) for k in range(20_000)]
    lost = sum(f.drop == "loss" for f in fates) / len(fates)
    dups = sum(len(f.arrivals) == 2 for f in fates) / sum(f.drop is None for f in fates)
    assert 0.18 < lost < 0.22
    assert 0.08 < dups < 0.12


def test_per_link_settings_override_the_default() -> None:
    plan = FaultPlan(1, default=LinkSettings(loss=1.0), links={(1, 2): LinkSettings()})
    assert LinkFaults(plan, 1, 2).fate(0).drop is None
    assert LinkFaults(plan, 2, 1).fate(0).drop == "loss"


def test_partitions_and_crashes_drop_with_their_reason() -> None:
    plan = FaultPlan(1, partitions=(Partition(10, 20, ((1,),)),), crashes=(Crash(3, 30),))
    f12, f23, f13 = LinkFaults(plan, 1, 2), LinkFaults(plan, 2, 3), LinkFaults(plan, 1, 3)
    assert f12.fate(9.99).drop is None
    assert f12.fate(10).drop == "partition"
    assert f23.fate(15).drop is None, "2 and 3 are on the same side"
    assert f12.fate(20).drop is None, "healed"
    assert f13.fate(30).drop == "crashed" and f13.fate(29.9).drop is None


@given(seed=st.integers(0, 2**32), n=st.integers(2, 12), interval=st.floats(0.5, 20),
       kinds=st.lists(st.sampled_from(["partition", "pause", "crash"]), min_size=1, unique=True))
@example(seed=1, n=3, interval=19.99999997, kinds=["pause"])  # 3 x it rounds to the end
@PROPS
def test_the_nemesis_plan_is_repeatable_and_sane(seed: int, n: int, interval: float, kinds: list[str]) -> None:
    s = FaultSettings(nemesis=tuple(kinds), nemesis_interval=interval)
    a = resolve_plan(s, n, 60.0, seed)
    assert a == resolve_plan(s, n, 60.0, seed)
    for p in a.partitions:
        assert 0 < p.start < p.end <= 60.0
        assert 0 < len(p.groups[0]) < n
    for p in a.pauses:
        assert 0 < p.start < p.end <= 60.0 and 1 <= p.machine <= n
    assert len({c.machine for c in a.crashes}) == len(a.crashes) <= max(0, n - 2)
    assert FaultPlan.from_json(a.to_json()) == a


def node(mid: int = 1, faults: FaultPlan | None = None, **kw: object) -> Node:
    base: dict[str, object] = {"run_id": "r", "seed": 5, "duration": 10.0, "rates": (10, 10, 10)}
    base.update(kw)
    return Node(MachinePlan(mid, 3, faults=faults, **base))  # type: ignore[arg-type]


@given(seed=st.integers(0, 2**31), link=links)
@PROPS
def test_the_dice_do_not_depend_on_the_faults(seed: int, link: LinkSettings) -> None:
    plain = node(faults=None, seed=seed)
    faulty = node(faults=FaultPlan(seed, default=link, partitions=(Partition(1, 5, ((1,),)),)), seed=seed)
    for k in range(100):
        a, b = plain.tick(0.0, k / 10), faulty.tick(0.0, k / 10)
        assert a[1].dice == b[1].dice and a[0]["lclock"] == b[0]["lclock"]


def test_drops_are_logged_and_counted() -> None:
    n = node(faults=FaultPlan(1, default=LinkSettings(loss=1.0)), dice_sides=3)
    for k in range(30):
        _line, step, sends, extra = n.tick(100.0, k / 10)
        if step.to:
            assert sends == []
            assert [x["to"] for x in extra] == step.to
            assert all(x["event"] == "drop" and x["reason"] == "loss" and x["msg_lclock"] == step.lclock
                       for x in extra)
    stop = n.stop_fields("duration")
    assert stop["dropped_to"] == stop["sent_to"] and sum(stop["sent_to"].values()) == stop["sent"]


def test_a_duplicate_is_handled_twice_and_the_second_is_marked() -> None:
    n = node(2, faults=FaultPlan(1, default=LinkSettings(duplicate=0.5)))
    msg = Message(1, 7, (7, 0, 0))
    n.take(msg)
    n.take(msg)
    first, second = n.tick(0.0, 0.0)[0], n.tick(0.0, 0.1)[0]
    assert "dup" not in first and second["dup"] is True
    assert second["lclock"] == first["lclock"] + 1
    n.take(msg)
    n.take(Message(3, 9, (0, 0, 9)))
    stop = n.stop_fields("duration")
    assert stop["received_dups"] == 1 and stop["unprocessed_dups"] == 1


def test_a_pause_skips_the_deadlines_in_it_and_nothing_else() -> None:
    pause = Pause(1, 1.0, 0.55)
    n = node(faults=FaultPlan(1, pauses=(pause,)))
    while n.next_due() < 1.0:
        n.tick(0.0, n.next_due())
    assert n.next_pause() == pause
    line = n.pause(pause, 1.0)
    assert line["event"] == "pause" and line["length"] == 0.55
    back = n.resume(1.55, 1.55)
    assert back["skipped"] == 6  # deadlines 1.0, 1.1, ..., 1.5
    assert n.next_due() == pytest.approx(1.6)
    ticks = n.machine.ticks
    while not n.finished:
        n.tick(0.0, n.next_due())
    assert n.machine.ticks == ticks + (n.total - 16) and n.machine.ticks == n.total - 6


def test_fault_lines_at_each_partition_start_and_heal() -> None:
    plan = FaultPlan(1, partitions=(Partition(2, 4, ((2,),)),))
    n = node(faults=plan)
    assert n.due_fault_lines(0.0, 1.9) == []
    (start,) = n.due_fault_lines(0.0, 2.0)
    assert start["kind"] == "partition" and start["groups"] == [[2], [1, 3]]
    (heal,) = n.due_fault_lines(0.0, 5.0)
    assert heal["kind"] == "heal"


def test_the_record_of_applied_partitions_names_every_side() -> None:
    """run.json's ``applied`` gives the groups as the ``fault`` lines do, and a run that
    stopped early lists only the cuts and heals that came before its end."""
    plan = FaultPlan(1, partitions=(Partition(2, 4, ((2,),)),))
    assert applied_exactly(plan, 3) == [
        {"kind": "partition", "groups": [[2], [1, 3]], "at": 2},
        {"kind": "heal", "groups": [[2], [1, 3]], "at": 4}]
    assert partitions_applied(plan, 3, 3.0) == [{"kind": "partition", "groups": [[2], [1, 3]], "at": 2}]
    assert partitions_applied(plan, 3, 1.0) == []


def test_held_messages_enter_the_queue_in_delivery_order() -> None:
    n = node()
    n.hold(Message(2, 5, (0, 5, 0)), 0.3)
    n.hold(Message(3, 4, (0, 0, 4)), 0.1)
    assert n.release(0.05) == [] and not n.queue
    assert n.release(0.2) == [0.1] and [m.lclock for m in n.queue] == [4]
    n.release_all()
    assert [m.lclock for m in n.queue] == [4, 5]


# -- the settings of the schedule -----------------------------------------------------------------


def build(n: int = 3, duration: float = 60.0, **values: object) -> FaultSettings:
    """The fault settings of these flags (as resolved for a run of ``n`` machines)."""
    return resolve(SettingsFile(), {"machines": n, "duration": duration, **values}).faults


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"partitions": "10-70:1"}, "inside the run"),
        ({"partitions": "20-10:1"}, "inside the run"),
        ({"partitions": "1-5:4"}, "machine 4 does not exist"),
        ({"partitions": "1-5:1|1,2"}, "in two groups"),
        ({"partitions": "1-5:1,2,3"}, "needs two sides"),
        ({"partitions": "1-5:1;4-8:2"}, "overlap"),
        ({"partitions": "1-5"}, "START-END:GROUP"),
        ({"pauses": "2@10"}, r"ID@START\+LENGTH"),
        ({"pauses": "2@58+5"}, "inside the run"),
        ({"pauses": "2@1+5;2@3+1"}, "overlap"),
        ({"crashes": "3@0"}, "inside the run"),
        ({"crashes": "1@5;2@6;3@7"}, "every machine crashes"),
        ({"crashes": "2@5;2@6"}, "crashes twice"),
        ({"crashes": "2@5", "pauses": "2@4+2"}, "crashes at"),
        ({"loss": 1.5}, "probability"),
        ({"latency_ms": -1}, "number of ms"),
        ({"latency_ms": float("nan")}, "number of ms"),
        ({"nemesis": "chaos"}, "unknown fault kind"),
        ({"nemesis": "pause", "pauses": "1@1+1"}, "draws its own schedule"),
        ({"nemesis": "pause", "nemesis_interval": 0.05}, "too often"),
        ({"pauses": ";".join(f"1@{i * 0.005:g}+0.001" for i in range(1, 10_002))},
         "scheduled faults; at most"),
        ({"partitions": "90%-120%:1"}, "inside the run"),
        ({"links": {"1->1": {"loss": 0.5}}}, "two different machines"),
        ({"links": {"1->9": {"loss": 0.5}}}, "does not exist"),
        ({"links": {"1-2": {"loss": 0.5}}}, "A->B"),
        ({"links": {"1->2": {"los": 0.5}}}, "unknown key"),
    ],
)
def test_bad_schedules_are_refused_naming_the_setting(values: dict[str, object], fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment) as exc:
        build(**values)
    assert str(exc.value).startswith("--")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("1->4:loss=0.1", "--link 1->4: machine 4 does not exist (machines 1..3)"),
        ("1->2:los=0.1", "--link 1->2:los: unknown key"),
        ("1->2:loss=2", "--link 1->2:loss: must be a probability"),
        ("1->2:loss=0.1;1->2:loss=0.2", "--link 1->2: the link is given twice"),
        ("1->2:loss=0.1,loss=0.2", "--link 1->2: loss is given twice"),
    ],
)
def test_a_bad_link_flag_is_named_in_the_flags_words(spec: str, message: str) -> None:
    """The flag's own spelling in the message, not a file key's (`--link."1->4"`)."""
    with pytest.raises(SettingsError) as exc:
        build(links=spec)
    assert str(exc.value).startswith(message), str(exc.value)


def test_one_link_under_two_spellings_in_a_file_is_refused() -> None:
    with pytest.raises(SettingsError, match="the link 1->2 is given twice"):
        build(links={"1->2": {"loss": 0.1}, "1 -> 2": {"loss": 0.2}})


def test_times_in_percent_of_the_run() -> None:
    s = build(partitions="25%-50%:1", pauses="2@10%+5%", crashes="3@1.5e1%")
    assert s.partitions[0].start == 15 and s.partitions[0].end == 30
    assert s.pauses == (Pause(2, 6, 3),) and s.crashes == (Crash(3, 9),)


def test_the_nemesis_must_not_outnumber_the_limit() -> None:
    with pytest.raises(SettingsError, match="raise --nemesis-interval"):
        build(duration=6000.0, nemesis="pause", nemesis_interval=0.5)


def test_a_good_schedule_is_read() -> None:
    s = build(partitions="10-20:1|2,3", pauses="2@15+5", crashes="3@40", loss=0.1,
              links={"1->2": {"latency_ms": 5}})
    assert s.partitions == (Partition(10, 20, ((1,), (2, 3))),)
    assert s.pauses == (Pause(2, 15, 5),) and s.crashes == (Crash(3, 40),)
    assert dict(s.links)[(1, 2)] == LinkSettings(latency_ms=5, loss=0.1)


@pytest.mark.parametrize("flags", [
    {"loss": 0.3},
    {"loss": 1.0},
    {"duplicate": 0.3, "latency_ms": 20.0, "latency_dist": "exponential"},
    {"reorder": True, "latency_ms": 50.0, "latency_dist": "uniform"},
    {"partitions": "10-20:1"},
    {"pauses": "2@5+5", "crashes": "3@25"},
    {"nemesis": "partition,pause,crash", "nemesis_interval": 5.0, "loss": 0.2, "duplicate": 0.1},
])
def test_simulated_faults_keep_every_rule(tmp_path: Path, flags: dict[str, object]) -> None:
    """The simulator under each fault: the independent oracle finds every rule holding (a
    dropped message once still reached its receiver when a whole send was dropped)."""
    from runverify import verify

    from lclock.settings import SettingsFile, resolve
    from lclock.sim.engine import NetworkSettings, run_sim

    s = resolve(SettingsFile(), {"machines": 4, "rate_min": 2, "rate_max": 8, "duration": 30.0,
                                 "seed": 5, **flags})
    run_dir, _machines, meta = run_sim(s, NetworkSettings(), tmp_path)
    assert meta["status"] == "completed"
    assert verify(run_dir) == []
