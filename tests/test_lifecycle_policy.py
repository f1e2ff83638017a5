"""The stop policy (lclock.lifecycle.decide): what each stop signal means at each stage.

Pure: a table of stage x signals -> response, and the StopRequest built on it, driven
synchronously (no signal is sent).
"""

from __future__ import annotations

import signal

import pytest

from lclock.lifecycle import (
    Interrupted,
    Response,
    Stage,
    StopRequest,
    decide,
    exit_code,
)

INT, TERM, HUP = signal.SIGINT, signal.SIGTERM, signal.SIGHUP
S, R = Stage, Response

TABLE = [
    # a first signal, at each stage
    (S.STARTING, [INT], R.STOP), (S.STARTING, [TERM], R.STOP), (S.STARTING, [HUP], R.STOP),
    (S.RUNNING, [INT], R.STOP), (S.RUNNING, [TERM], R.STOP), (S.RUNNING, [HUP], R.STOP),
    (S.STOPPING, [INT], R.CARRY_ON), (S.STOPPING, [TERM], R.CARRY_ON),
    (S.RECORDING, [INT], R.CARRY_ON), (S.RECORDING, [TERM], R.CARRY_ON),
    (S.RECORDING, [HUP], R.CARRY_ON),
    (S.WRITING, [INT], R.ABANDON), (S.WRITING, [TERM], R.ABANDON), (S.WRITING, [HUP], R.ABANDON),
    # a second Ctrl-C stops at once, wherever a stop is under way ...
    (S.STARTING, [INT, INT], R.STOP_NOW), (S.RUNNING, [INT, INT], R.STOP_NOW),
    (S.STOPPING, [INT, INT], R.STOP_NOW), (S.WRITING, [INT, INT], R.STOP_NOW),
    (S.RUNNING, [TERM, INT], R.STOP_NOW), (S.STOPPING, [HUP, INT], R.STOP_NOW),
    # ... but never tears a record
    (S.RECORDING, [INT, INT], R.CARRY_ON), (S.RECORDING, [TERM, INT, INT], R.CARRY_ON),
    # a later SIGTERM or SIGHUP asks for what is under way already
    (S.RUNNING, [INT, TERM], R.CARRY_ON), (S.RUNNING, [TERM, TERM], R.CARRY_ON),
    (S.STOPPING, [TERM, HUP], R.CARRY_ON), (S.WRITING, [TERM, TERM], R.CARRY_ON),
    # nothing received: nothing to do
    (S.RUNNING, [], R.CARRY_ON), (S.WRITING, [], R.CARRY_ON),
]


@pytest.mark.parametrize(("stage", "signals", "response"), TABLE,
                         ids=[f"{st.value}-{'+'.join(signal.Signals(s).name for s in sigs) or 'none'}"
                              for st, sigs, _ in TABLE])
def test_the_stop_policy(stage: Stage, signals: list[int], response: Response) -> None:
    assert decide(stage, signals) is response


@pytest.mark.parametrize(("signals", "code"), [
    ([INT], 130), ([TERM], 143), ([HUP], 129), ([TERM, INT], 143), ([HUP, INT, INT], 129), ([], 0),
])
def test_the_first_signal_decides_the_exit_code(signals: list[int], code: int) -> None:
    assert exit_code(signals) == code
    stop = StopRequest()
    for s in signals:
        stop.record(s)
    assert stop.exit_code() == code


def test_a_polling_owner_only_records() -> None:
    stop = StopRequest()
    stop.on_signal(TERM)
    stop.on_signal(INT)
    assert stop.signals == [TERM, INT]
    assert stop.requested and stop.cause == "sigterm" and stop.urgent


def test_urgent_needs_a_later_ctrl_c() -> None:
    stop = StopRequest()
    for s in (INT, TERM, HUP):
        stop.record(s)
    assert not stop.urgent
    stop.record(INT)
    assert stop.urgent


def test_an_unwinding_owner_is_unwound_once_then_only_by_a_second_ctrl_c() -> None:
    stop = StopRequest(unwind=True, stage=Stage.WRITING)
    with pytest.raises(Interrupted) as first:
        stop.on_signal(HUP)
    assert first.value.code == 129 and isinstance(first.value, KeyboardInterrupt)
    assert stop.stage is Stage.STOPPING
    stop.on_signal(TERM)  # while cleaning up: recorded, not raised
    with pytest.raises(Interrupted) as second:
        stop.on_signal(INT)
    assert second.value.code == 129  # the first signal still decides


def test_a_shielded_block_is_not_cut_and_acts_after() -> None:
    stop = StopRequest(unwind=True, stage=Stage.WRITING)
    reached_end = False
    with pytest.raises(Interrupted) as exc, stop.shielded():
        stop.on_signal(TERM)
        stop.on_signal(INT)
        reached_end = True
    assert reached_end and exc.value.code == 143


def test_unwinding_refuses_to_start_after_a_signal() -> None:
    stop = StopRequest()
    stop.record(TERM)
    stop.record(TERM)
    entered = False
    with pytest.raises(Interrupted) as exc, stop.unwinding(Stage.WRITING):
        entered = True
    assert not entered and exc.value.code == 143
    assert not stop.unwind  # the owner's own mode comes back after the block


def test_unwinding_without_signals_runs_the_block() -> None:
    stop = StopRequest()
    with stop.unwinding(Stage.WRITING):
        assert stop.unwind and stop.stage is Stage.WRITING
    assert not stop.unwind and stop.stage is Stage.RUNNING
