"""Physical clocks and the hybrid logical clock: the paper's theorems, as properties.

Kulkarni et al., "Logical Physical Clocks" (2014): for every event, l >= pt; l - pt stays
within the clock uncertainty; c stays bounded; and e happened-before f implies
hlc(e) < hlc(f). The naive algorithm the paper warns about (l advanced by one on every
event, like a Lamport clock fed physical time) satisfies the order but not the bound: its
l runs away from physical time when events come faster than the clock's resolution.
"""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lclock.core.clocks import (
    Bump,
    ClockPlan,
    ClockSettings,
    hlc_local,
    hlc_receive,
    resolve_clocks,
)
from lclock.settings import SettingsFile, resolve
from lclock.sim.engine import NetworkSettings, run_sim

PROPS = settings(max_examples=40, deadline=None)


def test_hlc_update_rules_exactly_as_the_paper() -> None:
    assert hlc_local(10, 3, 5) == (10, 4)  # pt behind: l stands, c counts
    assert hlc_local(10, 3, 12) == (12, 0)  # pt ahead: l follows it, c restarts
    assert hlc_receive(10, 3, 10, 7, 5) == (10, 8)  # l' = l = lm: max(c, cm) + 1
    assert hlc_receive(10, 3, 8, 7, 5) == (10, 4)  # l' = l only: c + 1
    assert hlc_receive(8, 3, 10, 7, 5) == (10, 8)  # l' = lm only: cm + 1
    assert hlc_receive(8, 3, 9, 7, 12) == (12, 0)  # pt wins: 0


def test_a_clock_reading_follows_its_plan() -> None:
    plan = ClockPlan((5_000, -2_000), (100.0, -50.0), (Bump(2, 10.0, -500.0),))
    t0 = 1000.0
    assert plan.reading(1, t0, t0) == 1000 * 10**6 + 5_000
    assert plan.reading(1, t0 + 10, t0) == 1010 * 10**6 + 5_000 + 1_000  # 100 ppm x 10 s
    assert plan.reading(2, t0 + 9.999, t0) == round((t0 + 9.999) * 1e6) - 2_000 - round(50 * 9.999)
    assert plan.reading(2, t0 + 10, t0) == 1010 * 10**6 - 2_000 - 500 - 500_000


def test_clocks_are_drawn_from_their_own_generator() -> None:
    s = ClockSettings(skew_ms=100, drift_ppm=50)
    a, b = resolve_clocks(s, 5, 3), resolve_clocks(s, 5, 3)
    assert a == b and a != resolve_clocks(s, 5, 4)
    assert all(-50_000 <= o <= 50_000 for o in a.offsets_us)
    assert all(-50 <= d <= 50 for d in a.drifts_ppm)
    fixed = resolve_clocks(ClockSettings(offsets_ms=(1, 2, 3), drifts_ppm=(0, 10, -10)), 3, 3)
    assert fixed.offsets_us == (1000, 2000, 3000) and fixed.drifts_ppm == (0, 10, -10)


def simulated(tmp: Path, seed: int, **clocks: object) -> tuple[dict, dict[int, list[dict]]]:
    flags: dict[str, object] = {"machines": 4, "rate_min": 20, "rate_max": 200, "duration": 10.0,
                                "seed": seed, **clocks}
    s = resolve(SettingsFile(), flags)
    run_dir, _, meta = run_sim(s, NetworkSettings(), tmp)
    logs = {}
    for p in run_dir.glob("machine-*.jsonl"):
        lines = [orjson.loads(x) for x in p.read_bytes().splitlines()]
        logs[lines[0]["machine"]] = [e for e in lines if e["event"] in ("send", "receive", "internal")]
    return meta, logs


@given(seed=st.integers(0, 10_000), skew=st.sampled_from([0, 1, 10, 100, 1000]),
       drift=st.sampled_from([0, 100, 5000]), bump=st.sampled_from([None, "2@5:+300", "3@8:-700"]))
@PROPS
def test_the_theorems_hold_on_simulated_runs(tmp_path_factory: pytest.TempPathFactory, seed: int,
                                              skew: int, drift: int, bump: str | None) -> None:
    clocks: dict[str, object] = {"skew_ms": skew, "drift_ppm": drift}
    if bump:
        clocks["bumps"] = bump
    meta, logs = simulated(tmp_path_factory.mktemp("c"), seed, **clocks)
    bound = meta["clocks"].get("hlc_bound_us", 1)
    events = {}
    for mid, lines in logs.items():
        prev = None
        for e in lines:
            l, c = e["hlc"]
            assert l >= e["pt"], "l >= pt"
            assert l - e["pt"] <= bound, (l - e["pt"], bound)
            if prev is not None:
                assert (l, c) > tuple(prev["hlc"]), "program order"
            prev = e
            events[(mid, e["lclock"])] = e
    for mid, lines in logs.items():
        for e in lines:
            if e["event"] == "receive":
                send = events[(e["from"], e["msg_lclock"])]
                assert tuple(e["msg_hlc"]) == tuple(send["hlc"]) and e["msg_pt"] == send["pt"]
                assert tuple(e["hlc"]) > tuple(send["hlc"]), "e -> f implies hlc(e) < hlc(f)"
    # c is bounded: it counts events with the same l, each in the causal past
    by_l: dict[int, list[dict]] = {}
    for f in events.values():
        by_l.setdefault(f["hlc"][0], []).append(f)
    for e in events.values():
        if e["hlc"][1]:
            vc = e["vclock"]
            same_l = sum(1 for f in by_l[e["hlc"][0]] if all(a <= b for a, b in zip(f["vclock"], vc)))
            assert e["hlc"][1] <= same_l - 1


def naive(l: int, lm: int | None, pt: int) -> int:  # noqa: E741 - the paper's names
    """The naive hybrid clock of the paper's section 3: l := max(l + 1, lm + 1, pt)."""
    return max(l + 1, (lm + 1) if lm is not None else l + 1, pt)


@pytest.mark.parametrize("rng_seed", [1, 2, 3])
def test_the_naive_variant_runs_away_and_hlc_does_not(rng_seed: int) -> None:
    """Two machines with clocks of 1 ms resolution, 1 ms apart, and ten events a µs between
    them (say, a busy database's transactions).

    The bound is what the clocks imply: 1 ms of skew plus 1 ms of resolution. HLC stays
    within it for ever; the naive clock adds a µs per event, ten per µs of real time, and
    leaves physical time behind.
    """
    rng = random.Random(rng_seed)
    resolution, skew = 1000, 1000  # µs
    bound = skew + resolution
    hlc = [(0, 0), (0, 0)]
    nv = [0, 0]
    worst_hlc = worst_naive = 0
    for k in range(200_000):  # 20 ms of real time
        host = k // 10
        me, other = k % 2, 1 - k % 2
        pt = (host + (skew if me == 0 else 0)) // resolution * resolution
        if rng.random() < 0.5:  # a local event, or the receive of the other's last send
            hlc[me] = hlc_local(*hlc[me], pt)
            nv[me] = naive(nv[me], None, pt)
        else:
            hlc[me] = hlc_receive(*hlc[me], *hlc[other], pt)
            nv[me] = naive(nv[me], nv[other], pt)
        worst_hlc = max(worst_hlc, hlc[me][0] - pt)
        worst_naive = max(worst_naive, nv[me] - pt)
    assert worst_hlc <= bound
    assert worst_naive > 50 * bound, "the naive clock drifts without bound"
