"""The JSON Schema (draft 2020-12) of one log line, schema version 1 (SPEC sections 5-7).

It lives in Python rather than in a .json data file so it ships with the package however
lclock is installed (package data for sub-packages needs extra build configuration), and
``lclock schema`` prints it for other tools. It states the contract, so it is strict where
SPEC is (``ts`` in RFC 3339 UTC with microseconds and ``Z``) and open where SPEC allows extra
fields (``additionalProperties`` is not restricted). Clock rules that relate lines to each
other cannot be said in JSON Schema; ``lclock check`` verifies those.
"""

from __future__ import annotations

from typing import Any

_INT0 = {"type": "integer", "minimum": 0}
_INT1 = {"type": "integer", "minimum": 1}
_HLC = {"type": "array", "prefixItems": [_INT0, _INT0], "minItems": 2, "maxItems": 2}
_SECONDS = {"type": "number", "minimum": 0}
_PER_LINK = {"type": "object", "additionalProperties": _INT0,
             "propertyNames": {"pattern": "^[1-9][0-9]*$"}}

_SNAP_MESSAGES = {"type": "array", "items": {
    "type": "object", "required": ["from", "msg_lclock"],
    "properties": {"from": _INT1, "msg_lclock": _INT0, "send_tick": _INT0}}}


def _when(event: str | list[str], then: dict[str, Any]) -> dict[str, Any]:
    cond = {"enum": event} if isinstance(event, list) else {"const": event}
    return {"if": {"properties": {"event": cond}, "required": ["event"]}, "then": then}


_TICK_CLOCKS: dict[str, Any] = {
    "pt": {**_INT0, "description": "the machine's physical clock when the event happened, "
                                   "µs since the Unix epoch (SPEC 7.1-7.2)"},
    "hlc": {**_HLC, "description": "hybrid logical clock [l, c] after the event, l in µs "
                                   "(SPEC 7.3)"},
    "msg_pt": {**_INT0, "description": "the sender's pt the message carried (receive)"},
    "msg_hlc": {**_HLC, "description": "the sender's hlc the message carried (receive)"},
    "dup": {"type": "boolean", "description": "true on the second handling of a message "
                                              "the network delivered twice (receive)"},
}

LOG_LINE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:lclock:log-line:v1",
    "title": "lclock log line (schema version 1)",
    "description": "One line of machine-<id>.jsonl: a JSON object. Tick events (send, receive, "
                   "internal) carry the clocks; start and stop frame a machine's run. Extra "
                   "fields are allowed.",
    "type": "object",
    "required": ["ts", "event", "level", "run_id", "machine"],
    "properties": {
        "ts": {"type": "string", "description": "system time, RFC 3339 UTC with microseconds",
               "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$"},
        "event": {"type": "string", "minLength": 1,
                  "description": "send, receive, internal, start, connected, stop, error, ..."},
        "level": {"enum": ["info", "warning", "error"]},
        "run_id": {"type": "string", "minLength": 1},
        "machine": {**_INT1, "description": "the machine that logged the line"},
        "tick": {**_INT1, "description": "this machine's tick number, 1, 2, 3, ... no gaps"},
        "lclock": {**_INT0, "description": "Lamport clock after the event"},
        "queue_len": {**_INT0, "description": "messages waiting after the event"},
        "vclock": {"type": "array", "items": _INT0, "minItems": 2,
                   "description": "vector clock after the event; entry i-1 is machine i"},
        "dice": {**_INT1, "description": "the roll (send, internal)"},
        "from": {**_INT1, "description": "the sender (receive)"},
        "msg_lclock": {**_INT0, "description": "the Lamport time the message carried"},
    },
    "allOf": [
        # the clocks of SPEC 7 are typed on tick events only: a start line's "hlc" says
        # whether the machine keeps an HLC (true or false)
        _when(["send", "receive", "internal"], {"required": ["tick", "lclock", "queue_len"],
                                                "properties": _TICK_CLOCKS}),
        # "to" is a list on a send, one machine on a drop line
        _when("send", {"required": ["dice", "to"],
                       "properties": {"to": {"type": "array", "items": _INT1, "minItems": 1,
                                             "uniqueItems": True,
                                             "description": "recipients of this one send event"},
                                      "dup_to": {
                           "type": "array", "items": _INT1, "minItems": 1, "uniqueItems": True,
                           "description": "the recipients that got this send's message twice "
                                          "(SPEC 6.4)"}}}),
        _when("internal", {"required": ["dice"]}),
        _when("receive", {"required": ["from", "msg_lclock"]}),
        _when("drop", {"required": ["to", "msg_lclock", "reason"],
                       "properties": {"to": _INT1, "msg_lclock": _INT0, "tick": _INT1,
                                      "reason": {"enum": ["loss", "partition", "crashed"]}},
                       "description": "a message its sender's network dropped (SPEC 6.3)"}),
        _when("fault", {"required": ["kind", "groups"],
                        "properties": {"kind": {"enum": ["partition", "heal"]},
                                       "groups": {"type": "array", "items": {
                                           "type": "array", "items": _INT1}},
                                       "start": _SECONDS, "end": _SECONDS},
                        "description": "a partition that involves the machine starts or heals "
                                       "(SPEC 6.7)"}),
        _when("pause", {"properties": {"length": _SECONDS, "until_t": _SECONDS},
                        "description": "the machine is paused (SPEC 6.5)"}),
        _when("resume", {"required": ["skipped"],
                         "properties": {"skipped": _INT0, "paused_s": _SECONDS},
                         "description": "back from a pause; skipped: the ticks that fell due "
                                        "while paused, not made up"}),
        _when("snapshot", {"required": ["id", "lclock", "tick", "queue", "channels"],
                           "properties": {"id": _INT1, "lclock": _INT0, "tick": _INT0,
                                          "queue": _SNAP_MESSAGES,
                                          "channels": {"type": "object",
                                                       "additionalProperties": _SNAP_MESSAGES,
                                                       "propertyNames": {"pattern": "^[1-9][0-9]*$"},
                                                       "description": "per incoming link (the "
                                                       "sender's id), the messages recorded in "
                                                       "transit"}},
                           "description": "this machine's part of a Chandy-Lamport snapshot, "
                                          "logged once complete: its clocks and its tick (the "
                                          "last done) when it recorded, its queue then "
                                          "(SPEC 12.2)"}),
        _when("start", {"required": ["rate", "seed", "pid"],
                        "properties": {"rate": _INT1, "pid": _INT0, "hlc": {"type": "boolean"}}}),
        _when("stop", {"required": ["reason", "ticks", "lclock", "sent", "received",
                                    "unprocessed"],
                       "properties": {"reason": {"type": "string"}, "ticks": _INT0,
                                      "lclock": _INT0, "sent": _INT0, "received": _INT0,
                                      "unprocessed": _INT0,
                                      "unprocessed_from": _PER_LINK, "sent_to": _PER_LINK,
                                      "taken_from": _PER_LINK, "dropped_to": _PER_LINK,
                                      "dup_to": _PER_LINK, "received_dups": _INT0,
                                      "unprocessed_dups": _INT0}}),
    ],
}
