#!/usr/bin/env python3
"""Make docs/GUIDE-bugs.md: every classic bug of ``lclock check --bugs`` in a small picture.

    python docs/make_bug_pictures.py [--seed 1] [--only NAME,...]

For each bug a student can write in the clock code itself, the Python reference program
(examples/impl/python/vm.py) is broken in that one place and run in the simulator as every
machine (3 machines, 30 s); every other bug of the catalogue (those of the world rather than
of the clock lines, such as a short die or ticks that drift, and those the reference program
has no one line for) is run as the built-in model with ``lclock sim --mutant NAME``. The run
is shrunk with ``lclock shrink --rule bug``: the smallest run in which check still names that
bug. Its story.svg goes to docs/bugs/NAME.svg, and the guide shows it with what check said.
A bug that check does not name in the run, or that cannot be shrunk, is listed in the guide
with the reason rather than left out.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from lclock.analysis.diagnosis import MIN_EVIDENCE
from lclock.shrink.picture import MAX_EVENTS
from lclock.shrink.story import write_picture

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
REFERENCE = (REPO / "examples" / "impl" / "python" / "vm.py").read_text()
RECEIVE = 'lclock = max(lclock, msg["lclock"]) + 1'
TICK = "        lclock += 1\n"
MSG = '        done["msg"] = {k: v for k, v in done.items() if k in ("lclock", "vclock", "hlc")}\n'
OWN = "    if vclock:\n        vclock[me - 1] += 1\n"
MERGE = 'vclock[:] = [max(a, b) for a, b in zip(vclock, msg["vclock"])]'

#: name -> [(the right text, the wrong text)]: the bugs the reference program is broken for
PROGRAM_BUGS: dict[str, list[tuple[str, str]]] = {
    "receive-ignores-message": [(RECEIVE, "lclock = lclock + 1")],
    "receive-no-increment": [(RECEIVE, 'lclock = max(lclock, msg["lclock"])')],
    "receive-takes-message": [(RECEIVE, 'lclock = msg["lclock"] + 1')],
    "send-no-increment": [(TICK, '        lclock += 0 if req["do"] == "send" else 1\n')],
    "internal-no-increment": [(TICK, '        lclock += 0 if req["do"] == "internal" else 1\n')],
    "send-per-recipient": [(TICK, '        lclock += len(req["to"]) if req["do"] == "send" else 1\n')],
    "send-carries-old-clock": [(MSG, MSG + '        done["msg"]["lclock"] = lclock - 1\n')],
    "vector-no-merge": [(MERGE, "pass")],
    "vector-no-own-increment": [(OWN, '    if vclock and req["do"] != "receive":\n'
                                      "        vclock[me - 1] += 1\n")],
    "vector-wrong-entry": [(OWN, "    if vclock:\n        vclock[me % len(vclock)] += 1\n")],
    "hlc-ignores-pt": [("new = max(l, lm, pt)", "new = max(l, lm)")],
    "hlc-counter-not-reset": [("c = c + 1 if new == l else 0", "c = c + 1")],
}

#: The run every bug starts from (SEED replaced), before ``lclock shrink`` makes it small.
RUN: dict[str, str] = {"--machines": "3", "--duration": "30", "--seed": "SEED",
                       "--clock-skew": "200"}
#: A mutant's run where RUN does not show the bug well (the options it changes; "" drops one).
#: The receive's +1 inside the max shows only where the receiver is ahead of the message:
#: machines of unlike rates, mostly internal events. HLC's receive shows where a message is
#: seconds ahead of the receiver's physical clock. A slow machine fed by fast ones queues
#: messages (several-per-tick). die-short: check names it from one machine's rolls, where a
#: fair die would have shown its largest face (about 50 rolls of a 3-sided die), and names it
#: as a warning, which shrink does not keep (it shrinks an error): a small run is made whole.
MUTANT_RUN: dict[str, dict[str, str]] = {
    "receive-increment-inside-max": {"--dice-sides": "20", "--rates": "1,3,6",
                                     "--clock-skew": ""},
    "hlc-receive-ignores-message": {"--clock-offsets": "0,0,3000", "--clock-skew": ""},
    "several-per-tick": {"--rates": "1,6,6", "--clock-skew": ""},
    "die-short": {"--machines": "2", "--duration": "10", "--rates": "6,1", "--dice-sides": "3",
                  "--clock-skew": ""},
}

#: What a picture cannot show of its bug: it draws events in order, one column each, with
#: their clocks, neither their times nor their dice.
UNSEEN: dict[str, str] = {
    "tick-drift": "The picture draws the events in order, not in time, so the drift itself "
                  "is not in it: check's caption says how late the ticks ran.",
    "die-short": "The picture draws no dice: the rolls that never show the largest face are "
                 "in check's caption and in the run's logs.",
}


def run_options(seed: int, changed: dict[str, str] | None = None) -> list[str]:
    merged = {**RUN, **(changed or {})}
    return [x for k, v in merged.items() if v for x in (k, v.replace("SEED", str(seed)))]


INTRO = """# The classic bugs, each in a small picture

Generated by `python docs/make_bug_pictures.py`; do not edit by hand.

Every bug that `lclock check --bugs` lists is here. Each picture is the smallest run that
`lclock shrink` found in which `check` still names the bug as an error (a finding of rule `bug` naming
it, as `check --json` gives it in its `bug` key). Most are the Python reference program
(`examples/impl/python/vm.py`) broken in one place, as a student breaks it; the others are
the built-in model run with that bug (`lclock sim --mutant NAME`): the bugs of the world
rather than of the clock lines (a short die, a tick that does two things, ticks that drift)
and those the reference program has no single line for. One lane per machine, the clock
events in time order (one column each) with their Lamport clock (and vector clock below),
messages as arrows; the events of the finding's story in red (the one it names filled),
what `check` said as the caption. A bug whose run is not small says so and why. The
programs' runs were made with (a mutant's run is given under its bug):

    lclock sim --impl "python3 bad.py" RUN
    lclock shrink output/sim-SEED-... --rule bug
"""


def broken(name: str) -> str:
    text = REFERENCE
    for right, wrong in PROGRAM_BUGS[name]:
        if right not in text:
            raise SystemExit(f"{name}: the reference program no longer has {right!r}")
        text = text.replace(right, wrong, 1)
    return text


def lclock(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lclock", *args], cwd=cwd, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=900)


def catalogue(work: Path) -> dict[str, str]:
    """Every bug of ``lclock check --bugs``, with what it does: the guide's list."""
    listed = lclock("check", "--bugs", cwd=work)
    if listed.returncode != 0:
        raise SystemExit(f"lclock check --bugs failed: {listed.stderr.strip()}")
    return {m.group(1): m.group(2) for m in re.finditer(r"^(\S+)\s+(.*)$", listed.stdout, re.M)}


def how_made(name: str, seed: int, work: Path) -> tuple[list[str], str]:
    """The ``lclock sim`` options of the bug's run, and how the guide says it was made."""
    if name in PROGRAM_BUGS:
        (work / "bad.py").write_text(broken(name))
        wrong = "\n".join("    " + w.strip() for _r, w in PROGRAM_BUGS[name])
        return (["--impl", f"{sys.executable} bad.py", *run_options(seed)],
                f"The program's line:\n\n{wrong}\n")
    options = ["--mutant", name, *run_options(seed, MUTANT_RUN.get(name))]
    return options, f"The built-in model with this bug:\n\n    lclock sim {' '.join(options)}\n"


def named(run: Path, name: str, work: Path
          ) -> tuple[dict[str, Any] | None, list[dict[str, Any]], dict[str, int]]:
    """check's finding naming the bug in a run (None: not named), its findings of rule
    ``bug`` (the bugs it does name), and the run's counts (machines, events, ...)."""
    checked = lclock("check", "--json", str(run), cwd=work)
    try:
        out = json.loads(checked.stdout)
        findings, counts = out["findings"], {k: int(v) for k, v in out["counts"].items()}
    except (ValueError, KeyError, TypeError):
        raise SystemExit(f"{run}: check --json failed: {checked.stderr.strip()}") from None
    bugs = [f for f in findings if f.get("rule") == "bug"]
    return next((f for f in bugs if f.get("bug") == name), None), bugs, counts


def picture(name: str, what: str, seed: int, work: Path) -> str:
    """The guide's section of one bug (its picture written to docs/bugs/)."""
    options, made_by = how_made(name, seed, work)
    head = f"## `{name}`\n\n{what}. {made_by}\n"
    made = lclock("sim", *options, "--output", name, "--quiet", cwd=work)
    if made.returncode != 0:
        return f"{head}Not shown: the run failed: {made.stderr.strip()}\n"
    run = work / made.stdout.strip().rpartition("run folder: ")[2]
    finding, others, counts = named(run, name, work)
    if finding is None:
        said = ", ".join(sorted({str(f.get("bug")) for f in others})) or "no bug"
        return f"{head}Not shown: check does not name it in this run (it names: {said}).\n"
    if others[0].get("bug") != name:  # shrink keeps the first bug finding
        return (f"{head}Not shown: check names {others[0].get('bug')} first in this run, "
                "so shrink would keep that one.\n")
    if finding.get("severity") != "error":  # shrink keeps an error only: the run as made
        write_picture(run, finding, counts["machines"])
        return head + _shown(name, run, finding, f"Not shrunk: check names it as a "
                             f"{finding.get('severity')}, and shrink keeps an error; the run "
                             "was made as small as its options can: "
                             + _size(counts["machines"], counts["events"], counts["messages"]))
    shrunk = lclock("shrink", str(run), "--output", f"{name}-small", "--rule", "bug", cwd=work)
    if shrunk.returncode != 0:
        return f"{head}Not shown: shrink failed: {shrunk.stderr.strip()}\n"
    folder = work / shrunk.stdout.strip().splitlines()[-1].rpartition("run folder: ")[2]
    small = named(folder, name, work)[0]
    return head + _shown(name, folder, small or finding, _shrunk(shrunk.stdout))


def _shrunk(told: str) -> str:
    """How far shrink made the run small (and, honestly, where its smallest run is still
    too big for the picture to hold it all)."""
    start = re.search(r"shrinking .*?: (.*?) \(seed", told)
    size = re.search(r"smallest run: (.*?);", told)
    text = (f"Shrunk from {start.group(1) if start else 'the run'} "
            f"to {size.group(1) if size else 'a small run'}.")
    events = re.search(r"(\d+) events", size.group(1) if size else "")
    if events and int(events.group(1)) > MAX_EVENTS:
        text += (f" Not small: check names a bug only from {MIN_EVIDENCE} telling events or "
                 f"more, and this one's are rare, so the smallest run keeps {events.group(1)} "
                 f"events; {_first_drawn()}")
    return text


def _size(machines: int, events: int, messages: int) -> str:
    text = f"{machines} machines, {events} events, {messages} messages."
    if events > MAX_EVENTS:
        text += (" Not small: a short die shows only in many rolls (a fair 3-sided die hides "
                 f"its 3 in 50 rolls once in 600 million); {_first_drawn()}")
    return text


def _first_drawn() -> str:
    return f"the picture draws the first {MAX_EVENTS} (the run's explorer shows them all)."


def _shown(name: str, folder: Path, finding: dict[str, Any], size: str) -> str:
    """The picture (copied to docs/bugs/), what check said, and the run's size."""
    (DOCS / "bugs").mkdir(exist_ok=True)
    shutil.copyfile(folder / "story.svg", DOCS / "bugs" / f"{name}.svg")
    unseen = f" {UNSEEN[name]}" if name in UNSEEN else ""
    return (f"![{name}](bugs/{name}.svg)\n\n"
            f"check said: `{finding.get('file')}:{finding.get('line')}: {finding.get('message')}`"
            f"\n\n{size}{unseen}\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", default="", help="comma-separated names (default: every bug)")
    args = ap.parse_args()
    sections = []
    with tempfile.TemporaryDirectory(prefix="bug-pictures-") as tmp:
        bugs = catalogue(Path(tmp))
        names = [n for n in bugs if not args.only or n in args.only.split(",")]
        for name in names:
            print(name, flush=True)
            sections.append(picture(name, bugs[name], args.seed, Path(tmp)))
    if args.only:  # a few bugs: their sections to look at, the guide left as it is
        print("\n".join(sections))
    else:
        run = " ".join(run_options(args.seed))
        (DOCS / "GUIDE-bugs.md").write_text(INTRO.replace("SEED", str(args.seed))
                                            .replace("RUN", run) + "\n" + "\n".join(sections))


if __name__ == "__main__":
    main()
