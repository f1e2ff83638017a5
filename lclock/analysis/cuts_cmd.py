"""``lclock cuts``: judge a cut of a run, or count and list the consistent cuts of a window.

The run is read by the analysis loader and its messages matched by ``causal`` (the same
answers as ``trace`` and ``hb``); the judging and the counting are ``cuts``, pure. This
module only turns the user's ticks and seconds into event counts and prints.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from lclock.errors import BadInput

DEFAULT_LIMIT = 1_000_000
WINDOW_HELP = (
    "the window, in seconds since the run's start (the t0 its machines share): START-END (or START,END). A cut of "
    "the window holds, on every machine, all its ticks before the window and a prefix of its "
    "ticks in it (from none to all of them); a machine without a tick in the window keeps "
    "exactly its ticks before it. Default: the whole run")
# bounded: int() of 5,000 digits fails; ASCII: \d would take any script's digits (int() reads
# an Arabic-Indic or fullwidth 1 as 1), which no one writes for a tick on purpose
_PART = re.compile(r"^\s*m?([0-9]{1,18})\s*:\s*[tT]?([0-9]{1,18})\s*$", re.ASCII)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Consistent cuts (SPEC 12.4). A cut holds each machine's ticks up to the one named (0: "
        "none of them); it is consistent when no message taken in inside it was sent outside "
        "it. --cut judges one cut: exit 0 consistent, 1 not (naming a message that crosses "
        "it), 2 bad input. --count and --list enumerate the consistent cuts of a window (the "
        "lattice of consistent cuts, level by level).")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--cut", metavar="M:TICK,...",
                      help="the cut to judge, every machine of the run named once, e.g. 1:40,2:17,3:88")
    what.add_argument("--count", action="store_true", help="count the consistent cuts of the window")
    what.add_argument("--list", action="store_true",
                      help="list the consistent cuts of the window, one a line in --cut's syntax, "
                           "by number of events then machine by machine (the count on stderr)")
    parser.add_argument("--window", metavar="START-END", help=WINDOW_HELP)
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, metavar="N",
                        help="stop (exit 2) past N consistent cuts: a window can hold more than "
                             f"could be counted in hours (default {DEFAULT_LIMIT:,})")
    parser.add_argument("--json", action="store_true", help="print the answer as one JSON object")


def parse_cut(text: str) -> dict[int, int]:
    """``1:40,2:17`` -> {1: 40, 2: 17}; each machine once."""
    out: dict[int, int] = {}
    for part in text.split(","):
        m = _PART.match(part)
        if m is None:
            raise BadInput(f"--cut: {part.strip()!r} is not MACHINE:TICK (write e.g. 1:40,2:17,3:88)")
        machine, tick = int(m.group(1)), int(m.group(2))
        if machine in out:
            raise BadInput(f"--cut: machine {machine} is named twice")
        out[machine] = tick
    return out


def parse_window(text: str) -> tuple[float, float]:
    """``START-END`` or ``START,END``, 0 <= START <= END."""
    m = re.fullmatch(r"\s*([0-9.eE+]+)\s*[-,]\s*([0-9.eE+]+)\s*", text)
    try:
        lo, hi = (float(m.group(1)), float(m.group(2))) if m else (float("nan"),) * 2
    except ValueError:
        lo = hi = float("nan")
    if not 0 <= lo <= hi < float("inf"):
        raise BadInput(f"--window: expected START-END in seconds with 0 <= START <= END, got {text!r}")
    return lo, hi


def main(args: argparse.Namespace) -> int:
    from lclock.analysis.causal_answers import open_causality
    from lclock.analysis.cuts import Channels

    if args.cut is not None:
        if args.window is not None:
            raise BadInput("--window: only with --count or --list (--cut names every machine's tick)")
        wanted = parse_cut(args.cut)
    else:
        window = parse_window(args.window) if args.window is not None else None
        if args.limit < 1:
            raise BadInput(f"--limit: must be 1 or more (got {args.limit})")
    c = open_causality(args.run_dir)
    ch = Channels.of(c)
    if args.cut is not None:
        return _judge(c, ch, wanted, args.json)
    return _enumerate(c, ch, window, args)


def _counts(c: Any, wanted: dict[int, int]) -> dict[int, int]:
    """The cut in event counts; every machine of the run named, every tick one it did."""
    from lclock.analysis.cuts import count_of_tick

    ids = c.run.ids
    have = ", ".join(map(str, ids))
    for m in wanted:
        if m not in c.run.machines:
            raise BadInput(f"--cut: no machine {m} in this run (machines: {have})")
    for m in ids:
        if m not in wanted:
            raise BadInput(f"--cut: machine {m} is not named (the run has machines {have}; "
                           f"write {m}:0 for none of its ticks)")
    out = {}
    for m in ids:
        ticks = c.run.machines[m].tick
        last = int(ticks.max()) if ticks.size else 0
        if wanted[m] > last:
            raise BadInput(f"--cut: machine {m} has no tick {wanted[m]} (its last is {last})")
        out[m] = count_of_tick(ticks, wanted[m])
    return out


def answer(c: Any, ch: Any, wanted: dict[int, int]) -> dict[str, Any]:
    """The judgement of a cut named in ticks, as ``--json`` prints it: consistent or not,
    the first crossing message (by receiver, then receive) and how many cross it."""
    from lclock.analysis.cuts import crossings

    bad = crossings(ch, _counts(c, wanted))
    return {"cut": {str(m): wanted[m] for m in c.run.ids}, "consistent": not bad,
            "crossing": _message(c, bad[0]) if bad else None, "crossing_count": len(bad)}


def _judge(c: Any, ch: Any, wanted: dict[int, int], as_json: bool) -> int:
    d = answer(c, ch, wanted)
    shown = ",".join(f"{m}:{wanted[m]}" for m in c.run.ids)
    first, n = d["crossing"], d["crossing_count"]
    if as_json:
        from lclock.analysis.causal_answers import print_json

        print_json(d)
    elif first is None:
        sys.stdout.write(f"cut {shown} is consistent\n")
    else:
        others = f" ({n - 1} more message(s) cross it)" if n > 1 else ""
        sys.stdout.write(
            f"cut {shown} is not consistent: machine {first['receiver']} took in at tick "
            f"{first['receive_tick']} ({first['receive_at']}), inside the cut, the message machine "
            f"{first['sender']} sent at tick {first['send_tick']} ({first['send_at']}), outside it"
            f"{others}\n")
    return 0 if first is None else 1


def _message(c: Any, x: Any) -> dict[str, Any]:
    """A crossing message in the user's words: machines, ticks, Lamport time, file:line."""
    s, r = c.run.machines[x.sender], c.run.machines[x.receiver]
    return {"sender": x.sender, "send_tick": int(s.tick[x.send_index]),
            "msg_lclock": int(s.lclock[x.send_index]),
            "send_at": f"{s.path.name}:{int(s.line[x.send_index])}",
            "receiver": x.receiver, "receive_tick": int(r.tick[x.receive_index]),
            "receive_at": f"{r.path.name}:{int(r.line[x.receive_index])}"}


def _enumerate(c: Any, ch: Any, window: tuple[float, float] | None, args: argparse.Namespace) -> int:
    from lclock.analysis.cuts import TooMany, levels, tick_of_count, window_box

    run = c.run
    ids = run.ids
    if window is None:
        lo, hi = dict.fromkeys(ids, 0), {m: run.machines[m].events for m in ids}
    else:
        from lclock.analysis.window import window_problem

        problem = window_problem(run, window)  # a window without a tick: a mistake, not 1 cut
        if problem:
            raise BadInput(problem.replace(f"{window[0]:.10g},{window[1]:.10g}", f"{window[0]:g}-{window[1]:g}"))
        lo, hi = window_box(c, *window)
    ticks = {m: run.machines[m].tick for m in ids}
    ranges = {str(m): [tick_of_count(ticks[m], lo[m]), tick_of_count(ticks[m], hi[m])] for m in ids}
    total = 0
    listed: list[str] = []
    try:
        for level in levels(c, ch, lo, hi, args.limit):
            total += len(level)
            if args.list and args.json:
                listed += (",".join(f"{m}:{tick_of_count(ticks[m], n)}" for m, n in zip(ids, cut, strict=True))
                           for cut in level)
            elif args.list:
                sys.stdout.write("".join(",".join(f"{m}:{tick_of_count(ticks[m], n)}"
                                                  for m, n in zip(ids, cut, strict=True)) + "\n"
                                         for cut in level))
    except TooMany:
        raise BadInput(f"--limit: the window holds more than {args.limit:,} consistent cuts; "
                       "choose a shorter --window or raise --limit") from None
    where = "the run" if window is None else f"the window {window[0]:g}-{window[1]:g} s"
    span = ", ".join(f"{m}: t{a}..t{b}" for m, (a, b) in ranges.items())
    if args.json:
        from lclock.analysis.causal_answers import print_json

        print_json({"count": total, "window": list(window) if window else None, "ticks": ranges}
                   | ({"cuts": listed} if args.list else {}))
    else:
        (sys.stderr if args.list else sys.stdout).write(
            f"{total} consistent cut(s) of {where} (ticks from..to per machine: {span})\n")
    return 0
