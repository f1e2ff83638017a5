"""The few events that tell a finding's story: the event it names, the machine's event before
it (the clock it started from) and, for a receive, the send whose message it took.

``story_events`` is pure (log lines in, events out, in time order); ``tell`` reads the logs
of a (small, shrunk) run folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from lclock.runfolder import machine_log_path

#: The event lines a story is made of.
CLOCK_EVENTS = ("send", "receive", "internal")


def story_events(logs: dict[int, list[dict[str, Any]]], machine: int, line: int
                 ) -> list[tuple[int, int, dict[str, Any]]]:
    """(machine, line, event) of the story of ``machine``'s line ``line`` (1-based), by time."""
    own = logs.get(machine, [])
    if not 1 <= line <= len(own):
        return []
    event = own[line - 1]
    out = [(machine, line, event)]
    before = next((k for k in range(line - 1, 0, -1) if own[k - 1].get("event") in CLOCK_EVENTS), None)
    if before is not None:
        out.append((machine, before, own[before - 1]))
    if event.get("event") == "receive":
        sent = send_of(logs, event)
        if sent is not None:
            out.append(sent)
    return sorted(out, key=lambda x: (str(x[2].get("ts", "")), x[0], x[1]))


def send_of(logs: dict[int, list[dict[str, Any]]], receive: dict[str, Any]
             ) -> tuple[int, int, dict[str, Any]] | None:
    """The sender's send event: by ``send_tick`` where the receive has it, else by the
    message's clock."""
    sender = receive.get("from")
    if not isinstance(sender, int):
        return None
    for k, e in enumerate(logs.get(sender, []), 1):
        if e.get("event") != "send":
            continue
        if "send_tick" in receive and e.get("tick") == receive["send_tick"]:
            return sender, k, e
        if "send_tick" not in receive and e.get("lclock") == receive.get("msg_lclock"):
            return sender, k, e
    return None


def describe(machine: int, line: int, e: dict[str, Any], t0: str) -> str:
    """One event as a line: where, when, what, and its clocks."""
    kind = str(e.get("event"))
    what = kind
    if kind == "send":
        what = f"send to {','.join(map(str, e.get('to', [])))}"
    elif kind == "receive":
        what = f"receive from {e.get('from')} (message lclock {e.get('msg_lclock')})"
    clocks = f"lclock {e.get('lclock')}"
    if "vclock" in e:
        clocks += f"  vclock {e['vclock']}"
    return (f"  machine-{machine}.jsonl:{line}  t={_seconds(e.get('ts'), t0)}  machine {machine} "
            f"tick {e.get('tick')}: {what}  {clocks}")


def _seconds(ts: Any, t0: str) -> str:
    from datetime import datetime

    def parse(x: str) -> datetime:
        return datetime.fromisoformat(x.replace("Z", "+00:00"))

    try:
        return f"{(parse(str(ts)) - parse(t0)).total_seconds():.3f}s"
    except ValueError:
        return str(ts)


def read_logs(run_dir: Path, machines: int) -> dict[int, list[dict[str, Any]]]:
    logs = {}
    for mid in range(1, machines + 1):
        with open(machine_log_path(run_dir, mid), "rb") as fh:
            logs[mid] = [orjson.loads(x) for x in fh if x.strip()]
    return logs


def write_picture(run_dir: Path, finding: dict[str, Any] | None, machines: int) -> Path:
    """``story.svg`` in the run folder: the run as a space-time diagram, the story marked."""
    from lclock.outfile import write_bytes
    from lclock.shrink.picture import space_time_svg

    logs = read_logs(run_dir, machines)
    story: set[tuple[int, int]] = set()
    named: tuple[int, int] | None = None
    caption = ""
    if finding is not None:
        machine, line = finding.get("machine"), finding.get("line")
        if isinstance(machine, int) and isinstance(line, int) and line > 0:
            story = {(m, k) for m, k, _e in story_events(logs, machine, line)}
            named = (machine, line)
        caption = f"{finding['file']}:{finding['line']}: {finding['message']}"
    path = run_dir / "story.svg"
    write_bytes(path, space_time_svg(logs, story, named, caption).encode(), runs=[run_dir])
    return path


def tell(run_dir: Path, finding: dict[str, Any], machines: int, t0: str) -> list[str]:
    """The finding, then its story's events (nothing more where it names no line)."""
    where = f"{finding['file']}:{finding['line']}" if finding.get("line") else finding["file"]
    out = [f"{where}: {finding['message']}"]
    machine, line = finding.get("machine"), finding.get("line")
    if isinstance(machine, int) and isinstance(line, int) and line > 0:
        events = story_events(read_logs(run_dir, machines), machine, line)
        out += [describe(m, k, e, t0) for m, k, e in events]
    return out
