"""A small run as a space-time diagram in SVG: the picture of a shrunk finding.

One lane per machine, the clock events in time order (one column each, so that a few
events read clearly whatever their times), each labelled with its Lamport clock (and
vector clock), a message as an arrow from its send to its receive; the events of the
finding's story in red, the finding itself as the caption. explorer.html is the run to
explore; this is the picture for a guide, an issue or a slide, and it needs no browser.

Pure: log lines in, SVG text out.
"""

from __future__ import annotations

import textwrap
from html import escape
from typing import Any

from lclock.shrink.story import CLOCK_EVENTS

#: Events drawn at most (the first ones in time): a picture of a shrunk run has a handful.
MAX_EVENTS = 60
COLUMN, LANE, LEFT, TOP, MIN_WIDTH = 64, 64, 96, 40, 640
KIND = {"send": "send", "receive": "recv", "internal": "int"}
STYLE = (
    "text{font-family:sans-serif;font-size:12px;fill:#222}"
    ".lane{stroke:#999;stroke-width:1}"
    ".msg{stroke:#3465a4;stroke-width:1.5;fill:none;marker-end:url(#arrow)}"
    ".ev{fill:#fff;stroke:#222;stroke-width:1.5}"
    ".story{fill:#f4c7c3;stroke:#c00;stroke-width:2}"
    ".finding{fill:#c00;stroke:#c00;stroke-width:2}"
    ".vc{font-size:10px;fill:#555}.caption{fill:#c00}"
)

Event = tuple[int, int, dict[str, Any]]  # machine, line (1-based), the log line


def events_in_order(logs: dict[int, list[dict[str, Any]]]) -> list[Event]:
    every = [(m, k, e) for m, lines in logs.items() for k, e in enumerate(lines, 1)
             if e.get("event") in CLOCK_EVENTS]
    return sorted(every, key=lambda x: (str(x[2].get("ts", "")), x[0], x[1]))


def space_time_svg(logs: dict[int, list[dict[str, Any]]], story: set[tuple[int, int]],
                   finding: tuple[int, int] | None, caption: str) -> str:
    """The diagram; ``story`` the (machine, line) pairs to mark, ``finding`` the one named."""
    every = events_in_order(logs)
    shown = every[:MAX_EVENTS]
    where = {(m, k): (LEFT + COLUMN * (i + 1), TOP + LANE * (m - 1) + 20)
             for i, (m, k, _e) in enumerate(shown)}
    machines = sorted(logs)
    width = max(MIN_WIDTH, LEFT + COLUMN * (len(shown) + 1))
    note = f" (the first {MAX_EVENTS} of {len(every)} events)" if len(every) > len(shown) else ""
    lines = textwrap.wrap(caption + note, width // 7) or [""]
    height = TOP + LANE * len(machines) + 16 + 16 * len(lines)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}">', f"<style>{STYLE}</style>",
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" '
           'fill="#3465a4"/></marker></defs>']
    for m in machines:
        y = TOP + LANE * (m - 1) + 20
        out.append(f'<text x="8" y="{y + 4}">machine {m}</text>'
                   f'<line class="lane" x1="{LEFT}" y1="{y}" x2="{width - 16}" y2="{y}"/>')
    out += _arrows(shown, logs, where)
    for m, k, e in shown:
        out += _event(where[(m, k)], e, "finding" if (m, k) == finding else
                      "story" if (m, k) in story else "ev")
    y0 = TOP + LANE * len(machines) + 16
    out += [f'<text class="caption" x="8" y="{y0 + 16 * i}">{escape(line)}</text>'
            for i, line in enumerate(lines)]
    return "\n".join([*out, "</svg>"]) + "\n"


def _arrows(shown: list[Event], logs: dict[int, list[dict[str, Any]]],
            where: dict[tuple[int, int], tuple[int, int]]) -> list[str]:
    """One arrow a received message whose send is drawn too."""
    from lclock.shrink.story import send_of

    out = []
    for m, k, e in shown:
        if e.get("event") != "receive":
            continue
        sent = send_of(logs, e)
        if sent is None or (sent[0], sent[1]) not in where:
            continue
        (x1, y1), (x2, y2) = where[(sent[0], sent[1])], where[(m, k)]
        shorten = 8 if y2 > y1 else -8
        out.append(f'<line class="msg" x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2 - shorten}"/>')
    return out


def _event(at: tuple[int, int], e: dict[str, Any], kind: str) -> list[str]:
    x, y = at
    label = f"{KIND.get(str(e.get('event')), '?')} L={e.get('lclock')}"
    out = [f'<circle class="{kind}" cx="{x}" cy="{y}" r="6"><title>'
           f'{escape(str(e.get("event")))} tick {e.get("tick")}</title></circle>',
           f'<text x="{x - 18}" y="{y - 12}">{escape(label)}</text>']
    if isinstance(e.get("vclock"), list):
        vc = ",".join(map(str, e["vclock"]))
        out.append(f'<text class="vc" x="{x - 18}" y="{y + 22}">[{escape(vc)}]</text>')
    return out
