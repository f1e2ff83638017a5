"""``lclock check`` on faults and clocks (issues 10 and 11, SPEC sections 6 and 7).

The runs are written by the real ``lclock sim`` with every fault and wrong clock on; each
test breaks a copy for one rule (or runs the model with a broken copy of a rule) and shows
that check catches it. Where one edit breaks two rules by nature (a plan that says less
than the logs did), the test names both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from analysis_fixtures import Faults, copy_run, make_run, write_lines
from test_consistency import edit, first, lines, meta, only, rules, sim

from lclock.analysis.check import check_run

NETWORK = ("--machines", "4", "--duration", "40", "--seed", "3", "--rate-min", "4",
           "--rate-max", "12", "--latency", "50", "--latency-dist", "exponential", "--loss",
           "0.1", "--duplicate", "0.1", "--clock-skew", "100", "--clock-drift", "50",
           "--clock-bump", "1@25:-300")
FAULTY = (*NETWORK, "--partition", "10-20:1", "--pause", "2@22+5", "--crash", "3@32")


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sim(tmp_path_factory.mktemp("faulty"), *FAULTY)


@pytest.fixture(scope="module")
def reordered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sim(tmp_path_factory.mktemp("reordered"), "--machines", "3", "--duration", "30",
               "--seed", "4", "--rate-min", "5", "--rate-max", "15", "--reorder", "--latency",
               "80", "--latency-dist", "exponential", "--duplicate", "0.1")


def stop_of(run: Path, mid: int) -> dict[str, Any]:
    return first(lines(run, mid), lambda d: d["event"] == "stop")


def set_stop(run: Path, mid: int, **values: Any) -> None:
    """Change a stop line and run.json's copy of it together."""
    edit(run, mid, lambda ls: first(ls, lambda d: d["event"] == "stop").update(values))
    meta(run, lambda m: next(e for e in m["machines"] if e["id"] == mid).update(
        {k: v for k, v in values.items() if k in e_keys(m, mid)}))


def e_keys(m: dict[str, Any], mid: int) -> set[str]:
    return set(next(e for e in m["machines"] if e["id"] == mid))


def plan(run: Path, change: Any) -> None:
    """Change the fault plan in run.json (and the settings it was resolved from)."""
    def do(m: dict[str, Any]) -> None:
        change(m["faults"]["plan"])
        change(m["settings"]["faults"])
    meta(run, do)


def receives(ls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in ls if d["event"] == "receive"]


# ------------------------------------------------------------------ the good runs pass


@pytest.mark.parametrize("flags", [FAULTY, (*FAULTY, "--clocks", "none"),
                                   (*FAULTY, "--clocks", "vector"),
                                   (*FAULTY, "--no-vector-clocks"),
                                   (*NETWORK, "--nemesis", "partition,pause,crash",
                                    "--nemesis-interval", "6")])
def test_faulty_sim_runs_pass(tmp_path: Path, flags: tuple[str, ...]) -> None:
    run = sim(tmp_path, *flags)
    result = check_run(run, cap=None)
    assert result.findings == [], [str(f) for f in result.findings]
    if "--nemesis" not in flags:
        assert ("machine 3 crashed as planned at 32 s: no stop line, and the messages it held "
                "were lost with it (SPEC 6.6)") in result.notes
    else:
        plan = orjson.loads((run / "run.json").read_bytes())["faults"]["plan"]
        assert plan["partitions"] or plan["pauses"] or plan["crashes"]


def test_the_faulty_run_has_what_the_rules_judge(faulty: Path) -> None:
    text = "".join(p.read_text() for p in faulty.glob("machine-*.jsonl"))
    for word in ('"dup":true', '"dup_to":[', '"reason":"loss"', '"reason":"partition"',
                 '"reason":"crashed"', '"event":"pause"', '"event":"resume"', '"kind":"heal"',
                 '"msg_hlc":'):
        assert word in text, word
    assert not any(d["event"] == "stop" for d in lines(faulty, 3))


def test_reordered_run_passes_and_fifo_is_judged_without_reorder(tmp_path: Path,
                                                                 reordered: Path) -> None:
    assert check_run(reordered).findings == []
    run = copy_run(reordered, tmp_path / "r")
    plan(run, lambda p: p.update(reorder=False))
    found = rules(run)
    assert set(found) == {"fifo"}, found
    assert any("FIFO broken on channel" in t for t in found["fifo"])


# ------------------------------------------------------------------ crashes


def test_an_unplanned_crash_is_still_an_error(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    plan(run, lambda p: p.update(crashes=[]))
    found = rules(run)
    assert "stop-missing" in found
    assert any("(crashed)" in t and "the plan never crashes machine 3" in t
               for t in found["drop-plan"]), found


def test_ticks_after_a_planned_crash(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    plan(run, lambda p: p["crashes"][0].update(time=30.0))
    found = rules(run)
    assert set(found) == {"crash-tick"}, found
    assert "after machine 3's planned crash at 30 s" in found["crash-tick"][0]
    assert "a simulated run: exact to the microsecond" in found["crash-tick"][0]


def test_a_stop_line_after_a_planned_crash(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    ls = lines(run, 3)
    last = ls[-1]
    stop = {k: last[k] for k in ("event", "level", "run_id", "machine")}
    stop.update(ts="2026-01-01T00:00:39.000000Z", event="stop", reason="duration",
                ticks=last["tick"], lclock=last["lclock"], sent=0, received=0, unprocessed=0)
    write_lines(run / "machine-3.jsonl", [*ls, stop])
    assert "crash-stop" in rules(run)


# ------------------------------------------------------------------ conservation, duplicates


def test_conservation_with_drops_duplicates_and_crashes(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    st = stop_of(run, 4)
    u = dict(st["unprocessed_from"])
    u["1"] = u.get("1", 0) + 1
    taken = dict(st["taken_from"])
    taken["1"] += 1
    set_stop(run, 4, unprocessed_from=u, unprocessed=st["unprocessed"] + 1, taken_from=taken,
             max_queue=max(st["max_queue"], st["unprocessed"] + 1))
    only(run, "conservation", "conservation broken on channel 1->4", "from nowhere")


def test_a_second_handling_needs_a_second_copy(tmp_path: Path, faulty: Path) -> None:
    """Both copies of a duplicated message handled; without its dup_to, one is too many."""
    run = copy_run(faulty, tmp_path / "r")
    for j in (1, 2, 4):
        twice = [d for d in receives(lines(run, j)) if d.get("dup")]
        if twice:
            break
    sender, lc = twice[0]["from"], twice[0]["msg_lclock"]

    def drop_dup_to(ls: list[dict[str, Any]]) -> None:
        send = first(ls, lambda d: d["event"] == "send" and d["lclock"] == lc)
        send["dup_to"].remove(j)
        if not send["dup_to"]:
            del send["dup_to"]
        st = first(ls, lambda d: d["event"] == "stop")
        st["dup_to"][str(j)] -= 1
        st["dup_to"] = {k: v for k, v in st["dup_to"].items() if v}

    edit(run, sender, drop_dup_to)

    def one_copy_fewer(m: dict[str, Any]) -> None:
        next(e for e in m["machines"] if e["id"] == sender).update(
            dup_to=stop_of(run, sender)["dup_to"])
        # the run's own balance would need forging too; without it (itself a finding), the
        # logs alone must show the second handling
        del m["messages"]

    meta(run, one_copy_fewer)
    found = rules(run)
    # one copy, handled twice
    assert set(found) == {"duplicate", "conservation", "meta-messages"}, found
    assert f"with lclock {lc} handled 2 times" in found["duplicate"][0]
    assert "-1 message(s) from nowhere" in found["conservation"][0]


def test_dup_true_exactly_on_the_second_handling(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    j = next(j for j in (1, 2, 4) if any(d.get("dup") for d in lines(run, j)))

    def unmark(ls: list[dict[str, Any]]) -> None:
        del first(ls, lambda d: d.get("dup") is True)["dup"]
        first(ls, lambda d: d["event"] == "stop")["received_dups"] -= 1

    edit(run, j, unmark)
    _same_in_run_json(run, j, "received_dups")
    only(run, "dup-mark", "without dup: true")
    run2 = copy_run(faulty, tmp_path / "r2")

    def mark_first(ls: list[dict[str, Any]]) -> None:
        first(receives(ls), lambda d: not d.get("dup"))["dup"] = True
        first(ls, lambda d: d["event"] == "stop")["received_dups"] += 1

    edit(run2, 1, mark_first)
    _same_in_run_json(run2, 1, "received_dups")
    only(run2, "dup-mark", "dup: true, but this is the first handling")


def _same_in_run_json(run: Path, mid: int, key: str) -> None:
    """run.json repeats the stop line's counts: an edit of one is an edit of both."""
    meta(run, lambda m: _entry(m, mid).update({key: stop_of(run, mid)[key]}))


def test_duplicates_only_where_the_plan_duplicates(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    plan(run, lambda p: p.update(duplicate=0.0))
    found = rules(run)
    assert set(found) == {"dup-plan"}, found
    assert "but the plan does not duplicate on link" in found["dup-plan"][0]


def test_a_duplicates_second_copy_comes_right_after_the_first(tmp_path: Path) -> None:
    """A runtime that holds a duplicate's second copy back breaks FIFO with it."""
    run = make_run(tmp_path / "r", rates=(5, 5, 6), duration=12.0, bug="dup_late",
                   faults=Faults(duplicate_every=5))
    found = rules(run)
    assert "fifo" in found, found
    assert any("(a duplicate's second copy, which comes right after the first)" in t
               for t in found["fifo"]), found


def test_stop_line_link_counters(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    st = stop_of(run, 1)
    set_stop(run, 1, dropped_to={**st["dropped_to"], "2": st["dropped_to"]["2"] + 1})
    only(run, "stop-field", "stop: dropped_to = ", "drop lines to each machine")


# ------------------------------------------------------------------ drops


def test_loss_drops_need_loss_in_the_plan(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    plan(run, lambda p: p.update(loss=0.0))
    found = rules(run)
    assert set(found) == {"drop-plan"}, found
    assert all("(loss)" in t and "the plan has no loss on link" in t for t in found["drop-plan"])


def test_partition_drops_need_a_partition_that_cuts_the_link(tmp_path: Path,
                                                             faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    plan(run, lambda p: p["partitions"][0].update(start=14.0))
    found = rules(run)
    assert {"drop-plan", "fault-plan"} <= set(found) <= {"drop-plan", "fault-plan"}, found
    assert any("(partition)" in t and "no partition of the plan cuts" in t
               for t in found["drop-plan"])


def test_crashed_drops_need_a_crashed_receiver(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    plan(run, lambda p: p["crashes"][0].update(time=35.0))
    found = rules(run)
    assert set(found) == {"drop-plan"}, found
    assert "machine 3 crashes only at 35 s" in found["drop-plan"][0]


def test_a_drop_of_a_message_never_sent(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    edit(run, 1, lambda ls: first(ls, lambda d: d["event"] == "drop").update(msg_lclock=10**6))
    found = rules(run)
    assert any("sent no message with lclock 1000000" in t for t in found["drop-match"]), found


def test_a_message_delivered_across_a_cut(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    plan(run, lambda p: p["partitions"][0].update(end=24.0))
    found = rules(run)
    assert set(found) == {"partition-delivered", "fault-plan"}, found
    assert "it should have been dropped" in found["partition-delivered"][0]


def test_a_missing_fault_line(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    edit(run, 4, lambda ls: ls.remove(first(ls, lambda d: d.get("kind") == "heal")))
    only(run, "fault-plan", "no fault line for the heal at 20 s")


def test_a_real_runs_tolerance_is_said(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    meta(run, lambda m: m.update(mode="run"))
    plan(run, lambda p: p["crashes"][0].update(time=35.0))
    assert "within 50 ms, a real run's tolerance" in rules(run)["drop-plan"][0]


# ------------------------------------------------------------------ pauses


def test_no_tick_between_pause_and_resume(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")

    def pause_earlier(ls: list[dict[str, Any]]) -> None:
        k = next(i for i, d in enumerate(ls) if d["event"] == "pause")
        ls.insert(k - 2, ls.pop(k))

    edit(run, 2, pause_earlier)
    only(run, "pause-tick", "between the pause and resume lines: a paused machine does not tick")


def test_no_tick_inside_the_plans_pause(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    plan(run, lambda p: p["pauses"][0].update(start=19.0, length=8.0))
    found = rules(run)
    assert set(found) == {"pause-tick"}, found  # its pause line still falls in the plan's
    assert "inside the plan's pause of machine 2 (19 s + 8 s" in found["pause-tick"][0]


def test_a_pause_the_plan_does_not_have(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    plan(run, lambda p: p["pauses"][0].update(start=30.0))
    found = rules(run)
    assert set(found) == {"pause-tick", "pause-plan"}, found
    assert "pause at 22.000 s, but the plan pauses machine 2 at 30-35 s" in found["pause-plan"][0]


@pytest.mark.parametrize("delta", [-3, 3])
def test_skipped_ticks_are_not_made_up(tmp_path: Path, faulty: Path, delta: int) -> None:
    run = copy_run(faulty, tmp_path / "r")
    edit(run, 2, lambda ls: first(ls, lambda d: d["event"] == "resume").update(
        skipped=first(ls, lambda d: d["event"] == "resume")["skipped"] + delta))
    found = rules(run)
    assert "pause-burst" in found and "tick-count" in found, found
    want = "made up in a burst" if delta < 0 else "deadlines after the resume were skipped too"
    assert want in found["pause-burst"][0]


# ------------------------------------------------------------------ clocks


def _internal_before_another_event(ls: list[dict[str, Any]]) -> dict[str, Any]:
    ticks = [d for d in ls if d["event"] in ("send", "receive", "internal")]
    return next(d for d, e in zip(ticks, ticks[1:]) if d["event"] == "internal"
                and e["hlc"][0] > d["hlc"][0])


def test_every_hlc_update_is_replayed(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    edit(run, 1, lambda ls: _internal_before_another_event(ls)["hlc"].__setitem__(1, 7))
    only(run, "hlc", "internal: hlc [", "expected [")


def test_an_hlc_below_pt(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    edit(run, 1, lambda ls: _internal_before_another_event(ls).update(
        pt=_internal_before_another_event(ls)["hlc"][0] + 5000))
    found = rules(run)
    assert set(found) == {"hlc", "pt-plan"}, found
    assert "; so l < pt" in found["hlc"][0]


@pytest.mark.parametrize("broken", ["local_keeps_c", "receive_ignores_message", "naive"])
def test_a_broken_copy_of_the_hlc_rules_is_caught(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  broken: str) -> None:
    """The model run with a broken HLC: check replays the rules on its own."""
    from lclock.core import model
    from lclock.settings import SettingsFile, resolve
    from lclock.sim.engine import NetworkSettings, run_sim

    real_local, real_receive = model.hlc_local, model.hlc_receive

    def local(l: int, c: int, pt: int) -> tuple[int, int]:  # noqa: E741
        new_l, _ = real_local(l, c, pt)
        return (new_l + 1, 0) if broken == "naive" else (new_l, c + 1)

    def receive(l: int, c: int, lm: int, cm: int, pt: int) -> tuple[int, int]:  # noqa: E741
        if broken == "receive_ignores_message":
            return real_local(l, c, pt)
        if broken == "naive":
            return max(l + 1, lm + 1, pt), 0
        return real_receive(l, c, lm, cm, pt)

    if broken != "receive_ignores_message":
        monkeypatch.setattr(model, "hlc_local", local)
    monkeypatch.setattr(model, "hlc_receive", receive)
    s = resolve(SettingsFile(), {"machines": 3, "duration": 10.0, "seed": 5, "rate_min": 20,
                                 "rate_max": 60, "skew_ms": 200.0})
    run_dir, _, _ = run_sim(s, NetworkSettings(), tmp_path)
    found = rules(run_dir)
    assert "hlc" in found, found
    hint = {"local_keeps_c": "c must restart at 0 when l moves forward",
            "receive_ignores_message": "the message's hlc was not taken in",
            "naive": "the naive variant that drifts without bound"}[broken]
    assert any(hint in t for t in found["hlc"]), found["hlc"][:3]


def test_hlc_order_along_a_message_where_the_replay_cannot_judge(tmp_path: Path,
                                                                  faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")

    def break_it(ls: list[dict[str, Any]]) -> None:
        k = next(i for i, d in enumerate(ls) if d["event"] == "receive" and i > 20
                 and ls[i - 1]["event"] == "internal")
        ls[k]["hlc"] = list(ls[k]["msg_hlc"])  # not above the send's
        ls[k - 1] = {"event": "internal", "machine": 1}  # unusable: the previous value unknown

    edit(run, 1, break_it)
    assert "hlc-order" in rules(run)


def test_the_message_carries_the_senders_clocks(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    edit(run, 2, lambda ls: first(receives(ls), lambda d: True).update(
        msg_pt=first(receives(ls), lambda d: True)["msg_pt"] + 3))
    only(run, "pt-carried", "msg_pt", "but the send (line")
    run2 = copy_run(faulty, tmp_path / "r2")

    def msg_c(ls: list[dict[str, Any]]) -> None:
        d = first(receives(ls), lambda d: d["hlc"][0] > d["msg_hlc"][0])
        d["msg_hlc"][1] += 4

    edit(run2, 2, msg_c)
    only(run2, "hlc-carried", "msg_hlc")


def test_l_minus_pt_within_the_bound(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    meta(run, lambda m: m["clocks"].update(hlc_bound_us=1000))
    found = rules(run)
    assert set(found) == {"hlc-bound", "meta-clocks"}, found
    assert "beyond the bound of 1000 µs (run.json clocks.hlc_bound_us)" in found["hlc-bound"][0]


def test_pt_follows_the_clock_plan(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    meta(run, lambda m: m["clocks"]["plan"]["drifts_ppm"].__setitem__(3, 500.0))
    found = rules(run)
    assert set(found) == {"pt-plan"}, found
    assert "machine-4.jsonl" in found["pt-plan"][0] and "a simulated run: exact" in found["pt-plan"][0]


def test_clocks_run_json_says_were_kept(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    edit(run, 2, lambda ls: [d.pop("hlc", None) for d in ls])
    only(run, "no-hlc", "no hlc in this log, but run.json clocks say it was kept")


@pytest.mark.parametrize("key", ["hlc", "pt"])
def test_a_clock_run_json_says_was_not_kept_is_not_in_the_logs(tmp_path: Path, faulty: Path,
                                                               key: str) -> None:
    run = copy_run(faulty, tmp_path / "r")
    meta(run, lambda m: m["clocks"]["kept"].remove("hlc") if key == "hlc" else
         m["clocks"].update(pt=False))
    found = rules(run)
    assert f"{key} in the logs, but run.json clocks say it was not kept" in str(
        found.get("meta-clocks")), found
    run2 = copy_run(faulty, tmp_path / "r2")
    edit(run2, 2, lambda ls: first(ls, lambda d: d["event"] == "internal").pop("pt"))
    only(run2, "field-pt-missing", "pt missing on this line")


def test_the_launchers_message_balance(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    meta(run, lambda m: m.update(messages={"sent": 5, "taken": 1, "lost": 2, "dropped": 0,
                                           "lost_in_crash": 0}))
    found = rules(run)
    assert set(found) == {"meta-messages"}, found
    texts = " | ".join(found["meta-messages"])
    for want in ("messages.sent is 5", "messages.dropped is 0", "do not add up",
                 "a lost message must fail the run"):
        assert want in texts, texts


def test_bad_dup_to_is_a_finding(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    edit(run, 1, lambda ls: first(ls, lambda d: "dup_to" in d).update(dup_to=[9]))
    found = rules(run)
    assert "field-dup_to" in found, found


def test_json_of_a_faulty_run_names_the_new_rules(tmp_path: Path, faulty: Path) -> None:
    import subprocess
    import sys

    run = copy_run(faulty, tmp_path / "r")
    plan(run, lambda p: p.update(loss=0.0))
    p = subprocess.run([sys.executable, "-m", "lclock", "check", "--json", str(run)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    data = orjson.loads(p.stdout)
    assert {f["rule"] for f in data["findings"]} == {"drop-plan"}


# ------------------------------------------------------------------ run.json against the logs


def _entry(m: dict[str, Any], mid: int) -> dict[str, Any]:
    return next(e for e in m["machines"] if e["id"] == mid)


def test_a_crashed_machine_said_to_have_stopped(tmp_path: Path, faulty: Path) -> None:
    """Machine 3 crashed (no stop line); a run.json that gives it reason 'duration' tells
    another story than its log, and for a real process so does exit code 0."""
    run = copy_run(faulty, tmp_path / "r")
    meta(run, lambda m: _entry(m, 3).update(reason="duration", exit_code=0))
    only(run, "meta-machine", "machine 3: reason 'duration', but its log has no stop line")
    meta(run, lambda m: _entry(m, 3).update(reason="crashed", pid=4242, exit_code=0))
    only(run, "meta-machine", "machine 3: exit_code 0, but its log has no stop line")
    meta(run, lambda m: _entry(m, 3).update(exit_code=-9))
    assert rules(run) == {}
    # lclock vm: no launcher kills a vm at its planned crash; it records itself and ends, 0
    meta(run, lambda m: (_entry(m, 3).update(exit_code=0), m.update(machines_expected=3)))
    assert rules(run) == {}
    meta(run, lambda m: m.pop("machines_expected"))
    meta(run, lambda m: _entry(m, 1).update(exit_code=1))  # stopped at the end, yet failed
    only(run, "meta-machine", "machine 1: exit_code 1, but its stop line")


def _bumped(value: Any, mid: int) -> Any:
    """One more than ``value``: a count, or a per-link count (on a link of another machine)."""
    if isinstance(value, dict):
        peer = "2" if mid != 2 else "1"
        return {**value, peer: value.get(peer, 0) + 1}
    return value + 1


@pytest.mark.parametrize("mid, key", [
    *((1, key) for key in ("sent_to", "taken_from", "dropped_to", "dup_to", "undelivered",
                           "received_dups", "unprocessed_dups")),  # stopped: its stop line's
    *((3, key) for key in ("taken_from", "sent", "received")),  # crashed: its log's
])  # fmt: skip
def test_every_count_of_a_machine_in_run_json_is_held_to_its_log(
        tmp_path: Path, faulty: Path, mid: int, key: str) -> None:
    """Machine 1 stopped, so its stop line says what run.json must; machine 3 crashed, so its
    log does. A run.json that adds one message to any count tells another story."""
    run = copy_run(faulty, tmp_path / "r")
    assert key in _entry(orjson.loads((run / "run.json").read_bytes()), mid)
    meta(run, lambda m: _entry(m, mid).update({key: _bumped(_entry(m, mid)[key], mid)}))
    only(run, "meta-machine", f"machine {mid}: {key} ")


def test_a_completed_run_whose_machine_stopped_early(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    set_stop(run, 2, reason="sigterm")
    assert "status 'completed', but machine 2 stopped for 'sigterm'" in str(rules(run)["meta-status"])


@pytest.mark.parametrize("change, text", [
    (lambda a: a.remove(next(x for x in a if x["kind"] == "pause")),
     "faults.applied lists 0 pause(s) of machine 2, but the logs show 1 (pause lines)"),
    (lambda a: a.append({"kind": "resume", "machine": 1, "at": 5.0}),
     "faults.applied lists 1 resume(s) of machine 1, but the logs show 0 (resume lines)"),
    (lambda a: a.remove(next(x for x in a if x["kind"] == "resume")),  # ticks follow it
     "faults.applied lists 0 resume(s) of machine 2, but the logs show 1 (resume lines)"),
    (lambda a: a.remove(next(x for x in a if x["kind"] == "heal")),
     "faults.applied lists 0 heal(s), but the logs show 1 (fault lines)"),
    (lambda a: a.append({"kind": "crash", "machine": 1, "at": 30.0}),
     "faults.applied: a crash of machine 1, but its log ends with a stop line"),
])  # fmt: skip
def test_applied_faults_are_held_to_the_logs(tmp_path: Path, faulty: Path, change: Any,
                                             text: str) -> None:
    run = copy_run(faulty, tmp_path / "r")
    meta(run, lambda m: change(m["faults"]["applied"]))
    only(run, "meta-faults", text)


@pytest.mark.parametrize("kind, text", [
    ("partition", "faults.applied: a partition at 13 s, but its fault lines are at 10 s"),
    ("heal", "faults.applied: a heal at 23 s, but its fault lines are at 20 s"),
    ("pause", "faults.applied: a pause of machine 2 at 25 s, but its pause lines are at 22 s"),
    ("resume", "faults.applied: a resume of machine 2 at 30 s, but its resume lines are at 27 s"),
])  # fmt: skip
def test_a_simulated_faults_instant_is_its_lines(tmp_path: Path, faulty: Path, kind: str,
                                                 text: str) -> None:
    run = copy_run(faulty, tmp_path / "r")
    meta(run, lambda m: next(a for a in m["faults"]["applied"] if a["kind"] == kind).update(
        at=next(a for a in m["faults"]["applied"] if a["kind"] == kind)["at"] + 3))
    only(run, "meta-faults", text)


@pytest.mark.parametrize("machine", [[3], {"id": 3}, "3", True, 2**40])
def test_a_fault_whose_machine_is_no_id_is_a_finding_not_a_crash(
        tmp_path: Path, faulty: Path, machine: Any) -> None:
    run = copy_run(faulty, tmp_path / "r")
    meta(run, lambda m: m["faults"]["applied"].append(
        {"kind": "crash", "machine": machine, "at": 1.0}))
    found = rules(run)
    assert "faults.applied[5]: machine " in str(found.get("meta-faults")), found


def test_crashed_at_is_the_applied_crash(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    meta(run, lambda m: _entry(m, 3).update(crashed_at=33.5))
    only(run, "meta-machine", "machine 3: crashed_at 33.5 s, but faults.applied has its crash "
                              "at 32 s")


def test_a_crashed_machine_logs_nothing_after_its_crash(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    meta(run, lambda m: (next(a for a in m["faults"]["applied"] if a["kind"] == "crash").update(
        at=20.0), _entry(m, 3).update(crashed_at=20.0)))
    only(run, "meta-faults", "faults.applied: machine 3 crashed at 20 s, but its log goes on "
                             "to 31.")


def test_a_run_of_lclock_without_a_balance(tmp_path: Path, faulty: Path) -> None:
    """Every run lclock makes writes messages{}: null there is a finding, in a sim run
    (this one), a real one or a vm's; an import has none and is not held to it."""
    run = copy_run(faulty, tmp_path / "r")
    meta(run, lambda m: m.update(messages=None))
    for mode in ("sim", None, "real"):
        meta(run, lambda m, mode=mode: m.update(mode=mode))
        assert "no messages balance" in str(rules(run).get("meta-messages")), mode
    meta(run, lambda m: m.update(mode="import"))
    assert "meta-messages" not in rules(run)


def test_the_logs_fall_between_started_and_ended(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    meta(run, lambda m: m.update(ended_at="2026-01-01T00:00:30.000000Z"))  # the run ran 40 s
    only(run, "meta-time", "ended_at 2026-01-01T00:00:30.000000Z, but the logs go on 10 s later")
    meta(run, lambda m: m.update(started_at="2026-01-01T00:00:01.000000Z",
                                 ended_at="2026-01-01T00:00:40.000000Z"))
    only(run, "meta-time", "but the logs begin 1 s earlier")


def test_t0_is_the_instant_the_connected_lines_name(tmp_path: Path, faulty: Path) -> None:
    run = copy_run(faulty, tmp_path / "r")
    t0 = first(lines(run, 1), lambda d: d["event"] == "connected")["t0"]
    meta(run, lambda m: m.update(t0=t0))
    assert rules(run) == {}
    meta(run, lambda m: m.update(t0="2026-01-01T00:00:01.000000Z"))
    only(run, "meta-time", f"t0 '2026-01-01T00:00:01.000000Z', but the connected lines say '{t0}'")
    meta(run, lambda m: (m.update(t0=t0), m["sim"].update(epoch="2026-01-02T00:00:00.000000Z")))
    only(run, "meta-time", "sim.epoch '2026-01-02T00:00:00.000000Z', but the connected lines say")


def _ticks(run: Path, mid: int) -> list[dict]:
    out = []
    for raw in (run / f"machine-{mid}.jsonl").read_bytes().splitlines():
        d = orjson.loads(raw)
        if "tick" in d and d["event"] in ("send", "receive", "internal"):
            out.append(d)
    return out


def test_sim_pauses_with_no_tick_between_keep_one_tick_chain(tmp_path: Path) -> None:
    """A pause during which no deadline fell due once left the old tick pending while the
    resume scheduled another: two tick chains, a machine at 1 tick/s ran three ticks in
    one millisecond and more ticks than its rate allows. Now every tick keeps its deadline
    and check finds nothing (the run's own output must always pass check)."""
    run = sim(tmp_path, "--duration", "5", "--seed", "1", "--nemesis", "partition,pause,crash",
              "--nemesis-interval", "0.2")
    assert rules(run) == {}
    rates = {d["machine"]: d["rate"] for d in
             (orjson.loads((run / f"machine-{i}.jsonl").read_bytes().splitlines()[0])
              for i in (1, 2, 3))}
    for mid, rate in rates.items():
        ticks = _ticks(run, mid)
        assert len(ticks) <= rate * 5 + 1, (mid, rate, len(ticks))
        t = [d["ts"] for d in ticks]
        assert len(set(t)) == len(t), f"machine {mid} ran two ticks at one instant"


def test_schedule_times_to_the_microsecond(tmp_path: Path) -> None:
    """7% of 10 s is 0.7000000000000001 in floats: the deadline at 0.7 s lay "before" the
    pause, its tick (a little late, as every tick) fell into the pause and ran after the
    resume, and check, reading the logged 0.700000, called it a burst. Times in % of the run,
    the nemesis's times and a pause's end are now whole microseconds, as the logs are."""
    run = sim(tmp_path, "--duration", "10", "--seed", "2", "--rates", "10,10,10",
              "--pause", "1@7%+1%")
    assert rules(run) == {}
    meta = orjson.loads((run / "run.json").read_bytes())
    assert meta["faults"]["plan"]["pauses"] == [{"machine": 1, "start": 0.7, "length": 0.1}]
    resume = next(orjson.loads(x) for x in (run / "machine-1.jsonl").read_bytes().splitlines()
                  if b'"resume"' in x)
    assert resume["skipped"] == 1  # the deadline at 0.7 s fell in the pause


def test_check_accepts_two_pauses_with_no_tick_between(tmp_path: Path) -> None:
    """Back-to-back pauses of a slow machine: the first tick after the first resume lies
    after the second pause too. Check once blamed the first resume for the deadline the
    second one skipped ("deadlines after the resume were skipped too")."""
    for seed in (1, 2):
        run = sim(tmp_path / str(seed), "--duration", "20", "--seed", str(seed), "--nemesis",
                  "pause", "--nemesis-interval", "0.2", "--rates", "5,17,40")
        assert rules(run) == {}, seed
