"""The search of ``lclock shrink`` and its moves, driven synchronously with fakes.

The fake "run and check" is a rule over the settings (the finding shows when the run has
at least two machines, lasts long enough and has a lucky seed), so what the search must
reach is known exactly; the moves are the real ones over real RunSettings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

import pytest

from lclock.core.clocks import Bump, ClockSettings
from lclock.core.faults import Crash, FaultSettings, LinkSettings, Partition, Pause
from lclock.settings import RunSettings
from lclock.shrink import moves
from lclock.shrink.moves import NotReplayable, faults_count, settings_from_json, with_machines
from lclock.shrink.search import BUDGET, DONE, STOPPED, Outcome, SearchInterrupted, search
from lclock.shrink.story import story_events
from tests.impl_programs import sim_settings

FAULTY = sim_settings("--machines", "5", "--duration", "40", "--seed", "3", "--rates", "1,2,3,4,5",
                      "--loss", "0.1", "--duplicate", "0.1", "--latency", "20", "--reorder",
                      "--partition", "5-9:1,4|2,5", "--pause", "4@3+2", "--crash", "5@30",
                      "--link", "1->4:loss=0.5", "--clock-skew", "50", "--clock-bump", "3@12:+40",
                      "--clock-offsets", "1,2,3,4,5")


def fake_run(s: RunSettings) -> Outcome | None:
    """The finding shows from 3.2 s on, on seeds divisible by 3, with 2 machines or more;
    a run is as big as its machines, faults and ticks (one per machine per second)."""
    if s.machines < 2 or s.duration < 3.2 or (s.seed or 0) % 3:
        return None
    events = int(s.machines * s.duration)
    return Outcome((s.machines, faults_count(s), events, events // 4), times=(3.2,), rates=(1,) * s.machines)


def test_the_search_reaches_the_smallest_run_that_still_shows_the_finding() -> None:
    start = FAULTY
    result = search(start, fake_run(start) or Outcome((99,)), moves.neighbours, fake_run, 500)
    assert result.ended == DONE
    best = result.best
    assert best.machines == 2 and faults_count(best) == 0
    # the run's planned length (a setting in simulated seconds, not a timing): cut just
    # after the finding's event, which the fake run puts at 3.2 s
    planned_s = best.duration
    assert planned_s == pytest.approx(3.205, abs=0.005)  # 3.2 to 3.21
    assert (best.seed or 0) % 3 == 0
    assert result.outcome == fake_run(best)
    assert result.steps >= 3 and result.attempts <= 500


def test_nothing_smaller_is_left_untried_at_the_end() -> None:
    """At a local minimum no neighbour both shows the finding and is smaller."""
    result = search(FAULTY, fake_run(FAULTY) or Outcome((99,)), moves.neighbours, fake_run, 500)
    for _name, candidate in moves.neighbours(result.best, result.outcome):
        outcome = fake_run(candidate)
        assert outcome is None or not outcome.size < result.outcome.size


def test_the_budget_bounds_the_attempts_and_keeps_the_best_so_far() -> None:
    calls: list[RunSettings] = []

    def counted(s: RunSettings) -> Outcome | None:
        calls.append(s)
        return fake_run(s)

    result = search(FAULTY, fake_run(FAULTY) or Outcome((99,)), moves.neighbours, counted, 3, spent=1)
    assert result.ended == BUDGET and len(calls) == 2 and result.attempts == 3
    assert result.best.machines == 2  # the first move (two machines) was taken
    assert fake_run(result.best) == result.outcome


def test_an_interrupted_search_keeps_the_smallest_run_so_far() -> None:
    said: list[str] = []
    calls = 0

    def stopped_on_the_third(s: RunSettings) -> Outcome | None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise SearchInterrupted
        return fake_run(s)

    result = search(FAULTY, fake_run(FAULTY) or Outcome((99,)), moves.neighbours,
                    stopped_on_the_third, 500, said.append)
    assert result.ended == STOPPED and calls == 3
    assert result.best.machines == 2 and result.steps == 2
    assert said[-1].startswith("stopped")


def test_a_candidate_no_smaller_by_measure_is_not_taken() -> None:
    def seeds_only(s: RunSettings, _o: Outcome) -> Iterator[tuple[str, RunSettings]]:
        for k in range(1, 4):
            yield f"seed {k}", replace(s, seed=k)

    def bigger(s: RunSettings) -> Outcome | None:
        return Outcome((2, 0, 10 + (s.seed or 0)))

    start = replace(FAULTY, seed=0)
    result = search(start, Outcome((2, 0, 10)), seeds_only, bigger, 50)
    assert result.best is start and result.steps == 0 and result.attempts == 3


def test_fewer_machines_drop_whatever_names_a_machine_that_is_gone() -> None:
    s = with_machines(replace(FAULTY, impl=((2, "a"), (4, "b"))), 2)
    assert s.machines == 2 and s.rates == (1, 2)
    assert s.faults.pauses == () and s.faults.crashes == () and s.faults.links == ()
    assert s.faults.partitions == (Partition(5.0, 9.0, ((1,), (2,))),)
    assert s.clocks.offsets_ms == (1.0, 2.0) and s.clocks.bumps == ()
    assert s.impl == ((2, "a"),)
    one_side = Partition(0.0, 1.0, ((3, 4),))
    assert with_machines(replace(FAULTY, faults=FaultSettings(partitions=(one_side,))), 2).faults.partitions == ()


def test_a_shorter_run_is_cut_just_after_the_finding_then_by_halves() -> None:
    s = replace(FAULTY, faults=FaultSettings(), clocks=ClockSettings())
    shorter = [c.duration for name, c in moves.neighbours(s, Outcome((5,), times=(7.25,)))
               if name.endswith(" s")]
    assert shorter == [7.251, 10.0, 20.0, 30.0, 36.0]
    cut = moves.with_duration(FAULTY, 10.0)
    assert cut.faults.crashes == () and cut.faults.pauses == FAULTY.faults.pauses
    assert moves.with_duration(FAULTY, 4.0).faults.pauses == (Pause(4, 3.0, 1.0),)
    assert moves.with_duration(FAULTY, 6.0).faults.partitions == (Partition(5.0, 6.0, ((1, 4), (2, 5))),)
    assert moves.with_duration(FAULTY, 5.0).faults.partitions == ()
    assert cut.clocks.bumps == () and moves.with_duration(FAULTY, 13.0).clocks.bumps == FAULTY.clocks.bumps


def test_faults_are_counted_per_kind_and_per_scheduled_fault() -> None:
    assert faults_count(RunSettings()) == 0
    f = FaultSettings(default=LinkSettings(loss=0.1), pauses=(Pause(1, 0, 1), Pause(2, 0, 1)),
                      crashes=(Crash(1, 2.0),))
    assert faults_count(RunSettings(faults=f, clocks=ClockSettings(bumps=(Bump(1, 1.0, 5.0),)))) == 5
    names = [name for name, _c in moves.neighbours(replace(FAULTY, machines=2, rates=(1, 2)),
                                                   Outcome((2,)))]
    assert names[0] == "no faults" and "no loss" in names and "exact physical clocks" in names


@pytest.mark.parametrize("flags", [
    (),
    ("--loss", "0.2", "--partition", "25%-50%:1|2", "--pause", "2@1+1", "--crash", "3@5",
     "--link", "1->2:latency_ms=5,loss=0.3", "--duplicate", "0.1"),
    ("--nemesis", "pause,crash", "--nemesis-interval", "2", "--reorder"),
    ("--clock-skew", "100", "--clock-drift", "20", "--clock-bump", "1@2:-30",
     "--clock-offsets", "1,-2,3", "--clocks", "vector", "--rates", "1,2,3"),
    ("--impl", "python3 vm.py", "--impl", "2=./other", "--impl-timeout", "3"),
])
def test_run_json_settings_read_back_as_the_settings_that_made_them(flags: tuple[str, ...]) -> None:
    s = sim_settings("--duration", "10", "--seed", "4", *flags)
    assert settings_from_json(s.to_json()) == s


def test_a_setting_this_lclock_does_not_have_is_refused_by_name() -> None:
    with pytest.raises(NotReplayable, match="settings.warp_drive"):
        settings_from_json({**RunSettings().to_json(), "warp_drive": 9})
    with pytest.raises(NotReplayable, match="settings.faults"):
        settings_from_json({**RunSettings().to_json(), "faults": {"links": {"1-2": {}}}})


@pytest.mark.parametrize("key,value,said", [
    ("duration", 1e10, "settings.duration: must be at most a week"),
    ("machines", 100_000, "settings.machines: must be an integer from 2 to"),
    ("rate_max", 10**9, "settings.rate_max"),
    ("dice_sides", -1, "settings.dice_sides"),
    ("seed", "x", "settings.seed"),
    ("impl", "rm -rf /", "settings.impl: expected a list of [machine id, command]"),
    ("impl", [[7, "python3 vm.py"]], "settings.impl: expected a list of [machine id, command]"),
    ("impl", [[1, ""]], "settings.impl"),
])
def test_a_run_json_edited_by_hand_into_absurd_settings_is_refused_by_name(
        key: str, value: object, said: str) -> None:
    """A replay of a week-long, 100,000-machine or program-less run would hang or replay
    another run (the built-in model) than the one check judged: refused, naming the key."""
    data = {**sim_settings("--duration", "10", "--seed", "4").to_json(), key: value}
    with pytest.raises(NotReplayable, match=re.escape(said)):
        settings_from_json(data)


@pytest.mark.parametrize("table,key,value", [
    ("faults", "loss", 5), ("faults", "latency_ms", -1), ("faults", "duplicate", float("inf")),
    ("clocks", "skew_ms", 1e300), ("clocks", "drift_ppm", "x"),
])
def test_absurd_faults_and_clocks_in_run_json_are_refused_by_name(
        table: str, key: str, value: object) -> None:
    data = sim_settings("--duration", "10", "--seed", "4", "--link", "1->2:loss=0.1").to_json()
    data[table] = {**data[table], key: value}
    with pytest.raises(NotReplayable, match=re.escape(f"settings.{table}.{key}")):
        settings_from_json(data)
    data = sim_settings("--duration", "10", "--seed", "4", "--link", "1->2:loss=0.1").to_json()
    if table == "faults":  # the same number on one link
        (link,) = data["faults"]["links"]
        data["faults"]["links"][link] = {**data["faults"]["links"][link], key: value}
        with pytest.raises(NotReplayable, match=re.escape(f"settings.faults.links.{link}.{key}")):
            settings_from_json(data)


def test_a_finding_about_the_folders_files_is_not_the_target() -> None:
    """A replay writes its own files: a hand-edited run.json's finding (meta-type), a log that
    is a FIFO, a torn line can never show again, so the first finding about the events is
    shrunk instead."""
    from lclock.shrink.replay import NothingToShrink, Target, choose_target

    findings = [{"rule": "meta-type", "severity": "error", "file": "run.json"},
                {"rule": "log-unreadable", "severity": "error", "file": "machine-1.jsonl"},
                {"rule": "line-json", "severity": "error", "file": "machine-3.jsonl"},
                {"rule": "lamport", "severity": "error", "file": "machine-2.jsonl"}]
    assert choose_target(findings, None) == Target("lamport")
    with pytest.raises(NothingToShrink, match="only about the folder's files"):
        choose_target(findings[:3], None)


def _e(event: str, tick: int, ts: float, **kw: object) -> dict[str, object]:
    return {"event": event, "tick": tick, "ts": f"2026-01-01T00:00:{ts:09.6f}Z", **kw}


def test_the_story_is_the_event_the_one_before_it_and_the_send_it_received() -> None:
    logs = {
        1: [{"event": "start"}, _e("internal", 1, 0.0, lclock=1), _e("send", 2, 0.5, lclock=2, to=[2]),
            _e("send", 3, 1.0, lclock=3, to=[2])],
        2: [{"event": "start"}, _e("internal", 1, 0.1, lclock=1), {"event": "fault"},
            _e("receive", 2, 1.1, lclock=2, **{"from": 1, "send_tick": 3, "msg_lclock": 3})],
    }
    story = story_events(logs, 2, 4)
    assert [(m, line) for m, line, _e in story] == [(2, 2), (1, 4), (2, 4)]
    del logs[2][3]["send_tick"]  # without send_tick: the send that carried that clock
    assert [(m, line) for m, line, _e in story_events(logs, 2, 4)] == [(2, 2), (1, 4), (2, 4)]
    assert story_events(logs, 2, 9) == []
    assert [(m, line) for m, line, _e in story_events(logs, 1, 3)] == [(1, 2), (1, 3)]


def test_the_target_is_the_first_error_and_its_bug_where_check_names_one() -> None:
    from lclock.shrink.replay import NothingToShrink, Target, choose_target

    findings = [{"rule": "start-missing", "severity": "warning"},
                {"rule": "lamport", "severity": "error", "bug": "receive-ignores-message"},
                {"rule": "vector", "severity": "error"}]
    target = choose_target(findings, None)
    assert target == Target("lamport", "receive-ignores-message")
    assert target.matches(findings[1]) and not target.matches({**findings[1], "bug": "receive-no-increment"})
    assert not target.matches({"rule": "lamport", "severity": "error"})
    assert choose_target(findings, "vector") == Target("vector") and Target("vector").matches(findings[2])
    with pytest.raises(NothingToShrink, match="it finds: lamport, vector"):
        choose_target(findings, "hlc")
    with pytest.raises(NothingToShrink, match="no error"):
        choose_target(findings[:1], None)


def test_the_picture_has_a_lane_per_machine_an_event_each_and_an_arrow_per_message() -> None:
    import xml.etree.ElementTree as ET

    from lclock.shrink.picture import MAX_EVENTS, space_time_svg

    logs = {
        1: [{"event": "start"}, _e("internal", 1, 0.0, lclock=1), _e("send", 2, 0.5, lclock=2, to=[2])],
        2: [{"event": "start"}, _e("internal", 1, 0.1, lclock=1, vclock=[0, 1]),
            _e("receive", 2, 1.1, lclock=2, **{"from": 1, "send_tick": 2, "msg_lclock": 2})],
    }
    svg = ET.fromstring(space_time_svg(logs, {(1, 3), (2, 3)}, (2, 3), "a <finding> & more"))
    ns = "{http://www.w3.org/2000/svg}"
    circles = svg.findall(f"{ns}circle")
    assert [c.get("class") for c in circles] == ["ev", "ev", "story", "finding"]  # in time order
    assert len(svg.findall(f"{ns}line[@class='msg']")) == 1
    assert len(svg.findall(f"{ns}line[@class='lane']")) == 2
    texts = [t.text for t in svg.findall(f"{ns}text")]
    assert "a <finding> & more" in texts and "recv L=2" in texts and "[0,1]" in texts
    many = {1: [_e("internal", k, k / 1000, lclock=k) for k in range(1, 100)], 2: []}
    big = ET.fromstring(space_time_svg(many, set(), None, "x"))
    assert len(big.findall(f"{ns}circle")) == MAX_EVENTS
    assert any("the first 60 of 99 events" in (t.text or "") for t in big.findall(f"{ns}text"))


def test_same_message_keeps_the_commonest_wording_of_the_rule_numbers_aside() -> None:
    from lclock.shrink.replay import choose_target, wording

    def lamport(text: str) -> dict[str, object]:
        return {"rule": "lamport", "severity": "error", "message": text}

    edge = lamport("receive: lclock 1, expected 2 (previous 0, message 1) (receive without the +1)")
    typical = [lamport(f"receive: lclock {k}, expected {k + 4} (previous {k - 1}, message {k + 3})")
               for k in (4, 8, 9)]
    target = choose_target([edge, *typical], None, same_message=True)
    assert target.wording == wording(typical[0]["message"])  # type: ignore[arg-type]
    assert target.matches(lamport("receive: lclock 30, expected 41 (previous 29, message 40)"))
    assert not target.matches(edge)
    assert choose_target([edge, *typical], None).wording is None
    assert wording("vclock [1, 2, 3] not below [0, 1]") == wording("vclock [4, 5] not below [7, -1, 2]")
