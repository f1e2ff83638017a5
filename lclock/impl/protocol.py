"""The line protocol between lclock and a program that is a machine (SPEC section 9).

lclock keeps what the exercise's world owns (the schedule, the dice, the queue, the network,
the physical clocks); the program keeps its clocks. Everything that crosses the pipe is
written and judged here, and nothing else: no pipes, no processes, no time. That keeps the
contract in one place that both drivers (real time and the simulator) share, and lets the
tests hold hostile answers against it without starting anything.

Answers are hostile input. A program written by someone we will never meet may answer with
spacing, key order and extra keys of its own (all fine), or with anything at all: not JSON,
floats for integers, integers beyond 64 bits, a clock the run does not keep, a ``msg`` on a
tick that sends nothing. Each of those is a ``ProtocolError`` naming what is wrong and
quoting the line, shortened, so the machine's ``error`` line tells the student exactly what
to fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson

#: The largest line either side may write (SPEC 9.2).
MAX_LINE = 1 << 20
#: The largest ``msg`` a send may carry, as lclock writes it back (SPEC 9.2).
MAX_MSG = 64 * 1024
#: Integers on the wire are JSON integers in 0 .. 2^63-1.
MAX_INT = (1 << 63) - 1
#: How much of an offending line an error quotes.
QUOTE = 200

LAMPORT, VECTOR, HLC = "lamport", "vector", "hlc"
#: The tick actions lclock asks for, which are the schema's tick events.
ACTIONS = ("internal", "send", "receive")


class ProtocolError(Exception):
    """A program's line broke the protocol: the machine fails with this reason."""

    def __init__(self, reason: str, line: bytes | bytearray | str = b"") -> None:
        self.reason = reason
        self.line = quote(line)
        super().__init__(f"{reason}: {self.line}" if self.line else reason)


def quote(line: bytes | bytearray | str, limit: int = QUOTE) -> str:
    """A line as an error shows it: decoded leniently, without its newline, shortened."""
    if isinstance(line, (bytes, bytearray)):  # only the start matters: lines may be 1 MiB
        line = bytes(line[: limit * 4 + 2]).decode("utf-8", "replace")
    text = line.rstrip("\r\n")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def no_answer(timeout: float, partial: bytes | bytearray) -> str:
    """The reason of an answer that did not come in time, and, when the program wrote the
    start of a line without its end, that line: a missing ``\\n`` (or a write the program
    never flushed whole) looks like silence from outside."""
    reason = f"no answer within {timeout:g} s"
    if partial:
        reason += (f" (it wrote {len(partial)} bytes with no end of line: "
                   f"{quote(partial, 60)}; every answer ends with \\n)")
    return reason


@dataclass(frozen=True)
class Clocks:
    """The clocks a run keeps besides Lamport's, which every machine keeps."""

    vector: bool = True
    hlc: bool = True

    def names(self) -> list[str]:
        """The list ``init`` offers, Lamport first."""
        return [LAMPORT] + [VECTOR] * self.vector + [HLC] * self.hlc

    def narrowed(self, names: frozenset[str]) -> Clocks:
        """The clocks kept when a program keeps only ``names`` (Lamport is always kept)."""
        return Clocks(vector=self.vector and VECTOR in names, hlc=self.hlc and HLC in names)


@dataclass(frozen=True)
class Done:
    """A program's answer to one tick: its clocks after the event, and a send's message.

    ``msg`` is the message's JSON exactly as lclock passes it on (compact, the program's key
    order), so a deterministic program gives a byte-identical run.
    """

    tick: int
    lclock: int
    vclock: list[int] | None = None
    hlc: tuple[int, int] | None = None
    msg: bytes | None = None
    msg_lclock: int | None = None
    #: The message's vector clock and HLC, as the receivers' rules will use them.
    msg_vclock: list[int] | None = None
    msg_hlc: tuple[int, int] | None = None


# -- what lclock writes ---------------------------------------------------------------------


def _line(obj: dict[str, Any]) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)


def init_request(machine: int, machines: int, clocks: Clocks) -> bytes:
    return _line({"type": "init", "machine": machine, "machines": machines,
                  "clocks": clocks.names()})


def tick_request(tick: int, do: str, *, to: list[int] | None = None, sender: int | None = None,
                 msg: bytes | None = None, dup: bool = False, pt: int | None = None) -> bytes:
    """One tick's request. ``msg`` is the sender's message as its ``Done`` holds it."""
    head = {"type": "tick", "tick": tick, "do": do}
    if do == "send":
        head["to"] = to
    elif do == "receive":
        head["from"] = sender
        if dup:
            head["dup"] = True
    if pt is not None:
        head["pt"] = pt
    body = orjson.dumps(head)
    if msg is not None:  # spliced in unchanged: parsing it again would cost every receive
        body = body[:-1] + b',"msg":' + msg + b"}"
    return body + b"\n"


STOP_REQUEST = _line({"type": "stop"})


# -- what the program answers ------------------------------------------------------------------


def parse_line(line: bytes) -> dict[str, Any]:
    """One answer line as a JSON object, or a ProtocolError saying why it is not one."""
    if len(line) > MAX_LINE:
        raise ProtocolError(f"a line of {len(line)} bytes, more than the {MAX_LINE} allowed",
                            line)
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        obj = _strict_json(line)
    if not isinstance(obj, dict):
        raise ProtocolError(f"an answer must be a JSON object, not {_kind(obj)}", line)
    return obj


def _strict_json(line: bytes) -> Any:
    """The standard parser, for what orjson refuses: to say *why* (a huge integer, bad
    UTF-8, not JSON at all) rather than one vague message."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ProtocolError(f"not UTF-8 (byte {e.start})", line) from None
    try:
        return json.loads(text, parse_float=_Fraction, parse_constant=_not_json)
    except _NotJson as e:
        raise ProtocolError(str(e), line) from None
    except (ValueError, RecursionError):
        raise ProtocolError("not JSON", line) from None


class _NotJson(ValueError):
    """A value Python's parser takes and JSON has not: NaN, Infinity, -Infinity."""


def _not_json(name: str) -> Any:
    raise _NotJson(f"not JSON: {name}")


def _kind(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return {dict: "an object", list: "a list", str: "a string", int: "an integer",
            float: "a number with a fraction", _Fraction: "a number with a fraction"}.get(
        type(value), type(value).__name__)


def _int(obj: dict[str, Any], key: str, line: bytes, where: str = "") -> int:
    value = obj.get(key)
    if value is None:
        raise ProtocolError(f"{where}{key!r} is missing", line)
    return _check_int(value, f"{where}{key!r}", line)


class _Inexact(Exception):
    """orjson read a number as a float: a fraction, or an integer beyond 64 bits. Only the
    standard parser, which keeps big integers exact, can tell which."""


class _Fraction(float):
    """A number the standard parser read with a fraction or exponent: never an integer."""


def _check_int(value: Any, what: str, line: bytes) -> int:
    if type(value) is float:
        raise _Inexact
    if type(value) is not int:
        raise ProtocolError(f"{what} must be an integer, not {_kind(value)}", line)
    if not 0 <= value <= MAX_INT:
        raise ProtocolError(f"{what} = {value} is outside 0..2^63-1", line)
    return value


def _type(obj: dict[str, Any], wanted: str, line: bytes) -> None:
    got = obj.get("type")
    if got != wanted:
        shown = "no type" if got is None else f"type {got!r}" if isinstance(got, str) \
            else f"type {_kind(got)}"
        raise ProtocolError(f"expected {wanted!r}, got {shown}", line)


def parse_init_ok(line: bytes, offered: Clocks) -> Clocks:
    """The answer to ``init``: the clocks the run keeps for this program.

    A program that keeps fewer clocks than offered says which; names it was not offered
    are ignored (the run cannot keep more than it offered).
    """
    obj = parse_line(line)
    _type(obj, "init_ok", line)
    names = obj.get("clocks")
    if names is None:
        return offered
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ProtocolError("'clocks' must be a list of clock names", line)
    return offered.narrowed(frozenset(names))


def parse_done(line: bytes, tick: int, do: str, n: int, clocks: Clocks) -> Done:
    """The answer to tick ``tick`` (action ``do``) of a run of ``n`` machines."""
    obj = parse_line(line)
    done = _fast_done(obj, tick, do, n, clocks)
    if done is not None:
        return done
    try:  # the slow path, which names what is wrong
        return _done(obj, line, tick, do, n, clocks)
    except _Inexact:
        return _done(_strict_json(line), line, tick, do, n, clocks)


_INTS = {int}


def _ints(value: Any, n: int) -> bool:
    """A list of ``n`` integers in 0..2^63-1: the quick test of every answer (a few C calls
    per list); whatever fails it goes the slow way, which says why."""
    return (type(value) is list and len(value) == n
            and (n == 0 or (set(map(type, value)) == _INTS and min(value) >= 0
                            and max(value) <= MAX_INT)))


def _fast_done(obj: dict[str, Any], tick: int, do: str, n: int, clocks: Clocks) -> Done | None:
    """A well-formed answer read at the cost the hot path can pay; None: any doubt."""
    lclock = obj.get("lclock")
    if (obj.get("type") != "done" or type(obj.get("tick")) is not int or obj["tick"] != tick
            or type(lclock) is not int or not 0 <= lclock <= MAX_INT):
        return None
    clock = _fast_clocks(obj, n, clocks, True)
    if clock is None:
        return None
    vclock, hlc = clock
    if do != "send":
        return None if "msg" in obj else Done(tick, lclock, vclock, hlc)
    msg = obj.get("msg")
    if type(msg) is not dict:
        return None
    msg_lclock = msg.get("lclock")
    mclock = _fast_clocks(msg, n, clocks, False)
    if type(msg_lclock) is not int or not 0 <= msg_lclock <= MAX_INT or mclock is None:
        return None
    try:
        raw = orjson.dumps(msg)
    except TypeError:
        return None
    if len(raw) > MAX_MSG:
        return None
    return Done(tick, lclock, vclock, hlc, raw, msg_lclock, mclock[0], mclock[1])


def _fast_clocks(obj: dict[str, Any], n: int, clocks: Clocks, answer: bool
                 ) -> tuple[list[int] | None, tuple[int, int] | None] | None:
    """The clocks the run keeps, each well formed; in an answer (not a message, which may
    carry what it likes) no clock the run does not keep."""
    vclock = obj.get("vclock")
    if clocks.vector:
        if not _ints(vclock, n):
            return None
    elif answer and vclock is not None:
        return None
    hlc: Any = obj.get("hlc")
    if clocks.hlc:
        if not _ints(hlc, 2):
            return None
        return (vclock if clocks.vector else None), (hlc[0], hlc[1])
    if answer and hlc is not None:
        return None
    return (vclock if clocks.vector else None), None


def _done(obj: dict[str, Any], line: bytes, tick: int, do: str, n: int, clocks: Clocks) -> Done:
    _type(obj, "done", line)
    got = _int(obj, "tick", line)
    if got != tick:
        hint = (" (a tick already answered: answered twice, or the wrong tick written?)"
                if got < tick else " (a tick not yet asked: answers come in order, one each)")
        raise ProtocolError(f"answer for tick {got}, expected tick {tick}{hint}", line)
    lclock = _int(obj, "lclock", line)
    vclock = _vclock(obj.get("vclock"), n, clocks.vector, line)
    hlc = _hlc(obj.get("hlc"), clocks.hlc, line)
    if do != "send":
        if "msg" in obj:
            raise ProtocolError(f"a 'msg' on a tick that does not send ({do})", line)
        return Done(tick, lclock, vclock, hlc)
    msg, msg_lclock, msg_vclock, msg_hlc = _msg(obj.get("msg"), n, clocks, line)
    return Done(tick, lclock, vclock, hlc, msg, msg_lclock, msg_vclock, msg_hlc)


def _vclock(value: Any, n: int, kept: bool, line: bytes, where: str = "") -> list[int] | None:
    if not kept:
        if value is not None:
            raise ProtocolError(f"{where}'vclock' given, but the run keeps no vector clock",
                                line)
        return None
    if value is None:
        raise ProtocolError(f"{where}'vclock' is missing", line)
    if not isinstance(value, list) or len(value) != n:
        raise ProtocolError(f"{where}'vclock' must be a list of {n} integers", line)
    return [_check_int(v, f"{where}'vclock' entry {i + 1}", line) for i, v in enumerate(value)]


def _hlc(value: Any, kept: bool, line: bytes, where: str = "") -> tuple[int, int] | None:
    if not kept:
        if value is not None:
            raise ProtocolError(f"{where}'hlc' given, but the run keeps no HLC", line)
        return None
    if value is None:
        raise ProtocolError(f"{where}'hlc' is missing", line)
    if not isinstance(value, list) or len(value) != 2:
        raise ProtocolError(f"{where}'hlc' must be [l, c], two integers", line)
    return (_check_int(value[0], f"{where}'hlc' l", line),
            _check_int(value[1], f"{where}'hlc' c", line))


def _msg(value: Any, n: int, clocks: Clocks, line: bytes
         ) -> tuple[bytes, int, list[int] | None, tuple[int, int] | None]:
    """A send's message: checked as the receivers will need it, and its bytes to pass on."""
    if value is None:
        raise ProtocolError("a send's answer needs 'msg'", line)
    if not isinstance(value, dict):
        raise ProtocolError(f"'msg' must be a JSON object, not {_kind(value)}", line)
    msg_lclock = _int(value, "lclock", line, "msg ")
    vclock = _vclock(value.get("vclock"), n, True, line, "msg ") if clocks.vector else None
    hlc = _hlc(value.get("hlc"), True, line, "msg ") if clocks.hlc else None
    try:
        raw = orjson.dumps(value)
    except TypeError:  # an integer beyond 64 bits deeper inside
        raise ProtocolError("'msg' holds a number orjson cannot carry (beyond 64 bits)",
                            line) from None
    if len(raw) > MAX_MSG:
        raise ProtocolError(f"'msg' is {len(raw)} bytes, more than the {MAX_MSG} allowed", line)
    return raw, msg_lclock, vclock, hlc


def parse_stop_ok(line: bytes) -> None:
    _type(parse_line(line), "stop_ok", line)


def builtin_message(lclock: int, vclock: tuple[int, ...] | None,
                    hlc: tuple[int, int] | None) -> bytes:
    """What a built-in machine's message looks like to a program: its clocks, named as a
    program's own message names them."""
    out: dict[str, Any] = {"lclock": lclock}
    if vclock is not None:
        out["vclock"] = vclock
    if hlc is not None:
        out["hlc"] = hlc
    return orjson.dumps(out)
