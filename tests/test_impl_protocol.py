"""The protocol's judge of answers (SPEC 9.2, 9.5): lenient in form, exact in content.

Spacing, key order and extra keys never matter; everything else a program can get wrong is
named, with the line quoted, so the student sees what to fix.
"""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lclock.impl import protocol as p

ALL = p.Clocks()
LAMPORT = p.Clocks(vector=False, hlc=False)


def done(**fields: object) -> bytes:
    return orjson.dumps({"type": "done", **fields}) + b"\n"


GOOD_SEND = {"tick": 3, "lclock": 5, "vclock": [1, 5, 0], "hlc": [10, 0],
             "msg": {"lclock": 5, "vclock": [1, 5, 0], "hlc": [10, 0]}}


def test_an_answer_in_any_spacing_key_order_and_with_extra_keys_is_read() -> None:
    line = (b' { "hlc" : [ 10 , 0 ] , "note": {"any": [1.5, null]}, "lclock":5,'
            b'"vclock":[1,5,0],"tick":3,"type":"done",'
            b'"msg":{"hlc":[10,0],"lclock":5,"vclock":[1,5,0],"mine":"x"} }\r\n')
    got = p.parse_done(line, 3, "send", 3, ALL)
    assert (got.tick, got.lclock, got.vclock, got.hlc, got.msg_lclock) == (3, 5, [1, 5, 0],
                                                                           (10, 0), 5)
    assert orjson.loads(got.msg or b"") == {"hlc": [10, 0], "lclock": 5, "vclock": [1, 5, 0],
                                            "mine": "x"}


BAD = [
    (b"hello\n", "not JSON"),
    (b"\xff\xfe{}\n", "not UTF-8"),
    (b"[1, 2]\n", "a JSON object, not a list"),
    (b'"done"\n', "a JSON object, not a string"),
    (done(tick=3, lclock=5), "'vclock' is missing"),
    (orjson.dumps({"type": "ok", "tick": 3}), "expected 'done', got type 'ok'"),
    (orjson.dumps({"tick": 3}), "expected 'done', got no type"),
    (done(tick=4, lclock=5, vclock=[1, 5, 0], hlc=[1, 0]),
     "answer for tick 4, expected tick 3 (a tick not yet asked"),
    (done(tick=2, lclock=5, vclock=[1, 5, 0], hlc=[1, 0]),
     "answer for tick 2, expected tick 3 (a tick already answered: answered twice, or the "
     "wrong tick written?)"),
    (done(tick=3, lclock=5.0, vclock=[1, 5, 0], hlc=[1, 0]), "'lclock' must be an integer"),
    (done(tick=3, lclock=True, vclock=[1, 5, 0], hlc=[1, 0]), "'lclock' must be an integer"),
    (done(tick=3, lclock=-1, vclock=[1, 5, 0], hlc=[1, 0]), "outside 0..2^63-1"),
    (b'{"type":"done","tick":3,"lclock":99999999999999999999999,"vclock":[1,5,0],"hlc":[1,0]}',
     "outside 0..2^63-1"),
    (done(tick=3, lclock=5, vclock=[1, 5], hlc=[1, 0]), "'vclock' must be a list of 3"),
    (done(tick=3, lclock=5, vclock=[1, "5", 0], hlc=[1, 0]), "'vclock' entry 2 must be an integer"),
    (done(tick=3, lclock=5, vclock=[1, 5, 0], hlc=[1]), "'hlc' must be [l, c]"),
    (done(tick=3, lclock=5, vclock=[1, 5, 0], hlc=[1, 0.5]), "'hlc' c must be an integer"),
    (done(tick=3, lclock=5, vclock=[1, 5, 0]), "'hlc' is missing"),
    (b'{"type":"done","tick":3,"lclock":NaN,"vclock":[1,5,0],"hlc":[1,0]}', "not JSON: NaN"),
    (b'{"type":"done","tick":3,"lclock":1,"vclock":[1,5,0],"hlc":[-Infinity,0]}',
     "not JSON: -Infinity"),
    (b'{"type":"done","tick":3,"lclock":1,"x":Infinity,"vclock":[1,5,0],"hlc":[1,0]}',
     "not JSON: Infinity"),
]


@pytest.mark.parametrize(("line", "reason"), BAD, ids=[r for _l, r in BAD])
def test_a_malformed_answer_is_named(line: bytes, reason: str) -> None:
    with pytest.raises(p.ProtocolError) as err:
        p.parse_done(line, 3, "internal", 3, ALL)
    assert reason in err.value.reason
    assert err.value.line == p.quote(line)


SEND_BAD = [
    ({k: v for k, v in GOOD_SEND.items() if k != "msg"}, "a send's answer needs 'msg'"),
    ({**GOOD_SEND, "msg": [5]}, "'msg' must be a JSON object"),
    ({**GOOD_SEND, "msg": {"vclock": [1, 5, 0], "hlc": [10, 0]}}, "msg 'lclock' is missing"),
    ({**GOOD_SEND, "msg": {"lclock": 5, "hlc": [10, 0]}}, "msg 'vclock' is missing"),
    ({**GOOD_SEND, "msg": {"lclock": 5, "vclock": [1, 5, 0]}}, "msg 'hlc' is missing"),
    ({**GOOD_SEND, "msg": {**GOOD_SEND["msg"], "pad": "x" * 70_000}},  # type: ignore[dict-item]
     "more than the 65536 allowed"),
]


@pytest.mark.parametrize(("fields", "reason"), SEND_BAD, ids=[r for _f, r in SEND_BAD])
def test_a_send_needs_a_message_the_receivers_can_use(fields: dict[str, object],
                                                      reason: str) -> None:
    with pytest.raises(p.ProtocolError, match=None) as err:
        p.parse_done(done(**fields), 3, "send", 3, ALL)
    assert reason in err.value.reason


def test_a_message_on_a_tick_that_does_not_send_is_an_error() -> None:
    for do in ("internal", "receive"):
        with pytest.raises(p.ProtocolError, match="does not send"):
            p.parse_done(done(**GOOD_SEND), 3, do, 3, ALL)


def test_a_clock_the_run_does_not_keep_is_an_error() -> None:
    with pytest.raises(p.ProtocolError, match="keeps no vector clock"):
        p.parse_done(done(tick=1, lclock=1, vclock=[1, 0]), 1, "internal", 2, LAMPORT)
    with pytest.raises(p.ProtocolError, match="keeps no HLC"):
        p.parse_done(done(tick=1, lclock=1, hlc=[1, 0]), 1, "internal", 2, LAMPORT)
    assert p.parse_done(done(tick=1, lclock=1), 1, "internal", 2, LAMPORT).lclock == 1


def test_a_line_over_one_mebibyte_is_refused_before_it_is_parsed() -> None:
    line = b'{"type":"done","pad":"' + b"x" * p.MAX_LINE + b'"}\n'
    with pytest.raises(p.ProtocolError, match="more than the 1048576 allowed") as err:
        p.parse_done(line, 1, "internal", 2, LAMPORT)
    assert len(err.value.line) <= p.QUOTE


def test_deep_nesting_is_not_json_rather_than_a_crash() -> None:
    line = b'{"type":"done","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(p.ProtocolError, match="not JSON"):
        p.parse_done(line, 1, "internal", 2, LAMPORT)


def test_init_ok_narrows_the_clocks_to_those_the_program_keeps() -> None:
    assert p.parse_init_ok(b'{"type":"init_ok"}', ALL) == ALL
    assert p.parse_init_ok(b'{"type":"init_ok","clocks":["lamport"]}', ALL) == LAMPORT
    assert p.parse_init_ok(b'{"clocks":["vector","lamport","other"],"type":"init_ok"}',
                           ALL) == p.Clocks(hlc=False)
    assert p.parse_init_ok(b'{"type":"init_ok","clocks":["hlc"]}', LAMPORT) == LAMPORT
    with pytest.raises(p.ProtocolError, match="list of clock names"):
        p.parse_init_ok(b'{"type":"init_ok","clocks":"lamport"}', ALL)
    with pytest.raises(p.ProtocolError, match="expected 'init_ok', got type 'done'"):
        p.parse_init_ok(b'{"type":"done"}', ALL)


def test_requests_are_compact_lines_and_a_message_passes_unchanged() -> None:
    assert p.init_request(2, 3, ALL) == (b'{"type":"init","machine":2,"machines":3,'
                                         b'"clocks":["lamport","vector","hlc"]}\n')
    assert p.tick_request(8, "send", to=[1, 3], pt=5) == (
        b'{"type":"tick","tick":8,"do":"send","to":[1,3],"pt":5}\n')
    raw = b'{"lclock":7,"mine":[1,{"a":null}]}'
    line = p.tick_request(9, "receive", sender=1, msg=raw, dup=True)
    assert orjson.loads(line) == {"type": "tick", "tick": 9, "do": "receive", "from": 1,
                                  "dup": True, "msg": orjson.loads(raw)}
    assert raw in line and line.endswith(b"}\n")
    assert p.STOP_REQUEST == b'{"type":"stop"}\n'


ints = st.integers(0, p.MAX_INT)


@given(tick=st.integers(1, 10**9), lclock=ints, vclock=st.lists(ints, min_size=4, max_size=4),
       hlc=st.tuples(ints, ints), spaces=st.sampled_from(["", " ", "\t", "  "]))
def test_any_well_formed_answer_reads_back_exactly(tick: int, lclock: int, vclock: list[int],
                                                   hlc: tuple[int, int], spaces: str) -> None:
    clock = {"lclock": lclock, "vclock": vclock, "hlc": list(hlc)}
    fields = {"type": "done", "tick": tick, **clock, "msg": clock}
    line = orjson.dumps(fields).replace(b",", f",{spaces}".encode()) + b"\n"
    got = p.parse_done(line, tick, "send", 4, ALL)
    assert (got.lclock, got.vclock, got.hlc, got.msg_lclock) == (lclock, vclock, hlc, lclock)
    assert orjson.loads(got.msg or b"") == clock


def test_a_late_answer_names_the_line_the_program_began_but_did_not_end() -> None:
    """A program that forgot the newline (or never flushed it) is silent from outside: the
    reason says what it wrote, so a student sees the missing ``\\n``, not a hang."""
    assert p.no_answer(0.5, b"") == "no answer within 0.5 s"
    reason = p.no_answer(1.0, bytearray(b'{"type":"done","tick":3,"lclock":4}'))
    assert reason.startswith("no answer within 1 s (it wrote 35 bytes with no end of line: ")
    assert '{"type":"done","tick":3,"lclock":4}' in reason
    assert len(p.no_answer(1.0, b"x" * 1_000_000)) < 200
