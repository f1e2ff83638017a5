"""The catalogue of classic bugs of the logical-clocks exercise (SPEC section 10).

One place names them: ``lclock check --bugs`` lists this table, the diagnosis in ``check``
fits each of them to a machine's events, and ``--mutant NAME`` runs the built-in model with
one of them. A name here is a promise kept in three places, so the table is data only.
"""

from __future__ import annotations

from typing import NamedTuple


class Bug(NamedTuple):
    """One classic mistake: what the code does, and a few events that show it."""

    name: str
    what: str  # one line: what the implementation does
    example: str  # a tiny run of events where it shows


CATALOGUE: tuple[Bug, ...] = (
    Bug("receive-ignores-message", "receive: L = L + 1 (the message's clock is not used)",
        "L = 2, message carries 7: the receive logs 3 instead of max(2, 7) + 1 = 8"),
    Bug("receive-no-increment", "receive: L = max(L, m) (the +1 is missing)",
        "L = 2, message carries 7: the receive logs 7 instead of 8"),
    Bug("receive-takes-message", "receive: L = m + 1 (its own clock is not used)",
        "L = 9, message carries 4: the receive logs 5 instead of max(9, 4) + 1 = 10"),
    Bug("receive-increment-inside-max", "receive: L = max(L, m + 1) (the +1 inside the max)",
        "L = 9, message carries 4: the receive logs 9 instead of 10"),
    Bug("send-no-increment", "a send does not advance the clock",
        "L = 4, a send logs 4 and the message carries 4, instead of 5"),
    Bug("send-carries-old-clock", "the message carries the clock from before the send's increment",
        "L = 4, the send logs 5 but its message carries 4 (it matches no send of lclock 4)"),
    Bug("send-per-recipient", "a send to every peer counts as one event per recipient",
        "L = 4, a send to 2 peers logs 6 instead of 5"),
    Bug("internal-no-increment", "an internal event does not advance the clock",
        "L = 4, an internal event logs 4 instead of 5"),
    Bug("logs-clock-before-event", "send and internal lines show the clock from before the "
        "event's own increment (a value repeats right after a receive)",
        "a receive logs 8, the internal event after it logs 8 again, the next one 9"),
    Bug("vector-no-own-increment", "receive merges the vectors but does not add 1 to its own entry",
        "machine 2 at [0,3,0] receives [4,0,0]: logs [4,3,0] instead of [4,4,0]"),
    Bug("vector-wrong-entry", "the wrong entry is advanced (an off-by-one in the index)",
        "machine 2 at [0,3,0] does an internal event: logs [0,3,1] instead of [0,4,0]"),
    Bug("vector-no-merge", "receive advances its own entry but does not merge",
        "machine 2 at [0,3,0] receives [4,0,0]: logs [0,4,0] instead of [4,4,0]"),
    Bug("hlc-ignores-pt", "HLC's l never takes the physical clock",
        "hlc [0, 5] at pt 1700000000000000: an internal event logs [0, 6] instead of "
        "[1700000000000000, 0]"),
    Bug("hlc-counter-not-reset", "HLC's c is not reset when l moves",
        "hlc [100, 3], pt 250: an internal event logs [250, 4] instead of [250, 0]"),
    Bug("hlc-receive-ignores-message", "HLC receive is a local event: the message's hlc is not "
        "taken in", "hlc [100, 0], pt 120, message [500, 2]: logs [120, 0] instead of [500, 3]"),
    Bug("die-short", "the die never shows its largest face (1..K-1)",
        "300 rolls of a 10-sided die and not one 10 (chance 2e-14 for a fair die)"),
    Bug("several-per-tick", "a tick handles more than one message, or does two things",
        "tick 7 logs two receives; or the queue goes from 3 to 0 in one tick"),
    Bug("tick-drift", "ticks drift (each sleep adds to the last instead of keeping deadlines)",
        "rate 5: tick 101 runs at t0 + 25 s instead of t0 + 20 s, and later ones later still"),
)

BUGS: dict[str, Bug] = {b.name: b for b in CATALOGUE}
NAMES: tuple[str, ...] = tuple(BUGS)


def listing() -> list[str]:
    """What ``lclock check --bugs`` prints: a name, what it does, and its example."""
    width = max(len(n) for n in NAMES)
    out = []
    for b in CATALOGUE:
        out.append(f"{b.name:<{width}}  {b.what}")
        out.append(f"{'':<{width}}  e.g. {b.example}")
    return out


def nearest(name: str, count: int = 3) -> list[str]:
    """The catalogue's names closest to a mistyped one (for the error line)."""
    import difflib  # only on the way to an error

    key = name.strip().lower().replace("_", "-")  # RECEIVE_IGNORES_MESSAGE is the same name
    close = difflib.get_close_matches(key, NAMES, n=count, cutoff=0.4)
    return close or [n for n in NAMES if n.split("-")[0] == key.split("-")[0]][:count]


def mutant_setting(value: object, where: str, run: object) -> str:
    """``--mutant NAME`` / settings key ``mutant``: a name of the catalogue ("" for none)."""
    from lclock.errors import shown
    from lclock.setting_checks import fail

    if not isinstance(value, str):
        raise fail(where, f"must be the name of a bug of the catalogue (got {shown(value)})")
    if value and value not in BUGS:
        close = nearest(value)
        hint = f"nearest: {', '.join(close)}; " if close else ""
        raise fail(where, f"unknown bug {shown(value)} ({hint}lclock check --bugs lists them)")
    return value
