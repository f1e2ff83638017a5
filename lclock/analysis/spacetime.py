"""The space-time diagram of a report: lanes of events and arrows of messages in a window.

The only figure that looks at single events, and only inside its (small) time window,
chosen here to show about MAX_WINDOW_EVENTS events, from the start or where a fault begins.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lclock.analysis.figures import machine_label, pyplot
from lclock.analysis.load import Run
from lclock.analysis.matching import SendTable, match_receives
from lclock.analysis.window import secs_text

MAX_WINDOW_EVENTS = 150
MAX_ROW_EVENTS = 40


def choose_window(run: Run, window: tuple[float, float] | None,
                  anchor: float | None = None) -> tuple[float, float]:
    """A time window (s since t0) small enough to read: about MAX_WINDOW_EVENTS events,
    from the start, or around ``anchor`` (where a fault begins) so that it shows."""
    if window is not None:
        return window
    ts = [run.machines[i].ts - run.t0 for i in run.ids[:16]]
    ts = [t[np.isfinite(t)] for t in ts]
    allts = np.sort(np.concatenate(ts)) if ts else np.zeros(0)
    if allts.size == 0:
        return (0.0, 1.0)
    first = 0
    if anchor is not None and anchor > 0:
        first = max(0, int(np.searchsorted(allts, anchor)) - MAX_WINDOW_EVENTS // 3)
    lo = float(allts[first]) if first else 0.0
    end = float(allts[min(first + MAX_WINDOW_EVENTS, allts.size) - 1])
    for t in ts:  # the busiest machine's row must stay readable
        row = t[t >= lo]
        if row.size > MAX_ROW_EVENTS:
            end = min(end, float(row[MAX_ROW_EVENTS - 1]))
    if end <= lo:
        end = lo + 1e-3
    return (lo, max(end, 1e-3) * 1.0001 if not first else end + (end - lo) * 1e-4)


def fault_anchor(faults: dict[str, Any] | None, run: Run) -> float | None:
    """Where the space-time diagram had best look: the first partition, pause or crash,
    else the first dropped message."""
    if not faults:
        return None
    times = [p["start"] for p in faults.get("partitions") or [] if p.get("start") is not None]
    times += [p["start"] for p in faults.get("pauses") or [] if p.get("start") is not None]
    times += [c["time"] for c in faults.get("crashes") or [] if c.get("time") is not None]
    if times:
        return float(min(times))
    drops = _drop_lines(run, run.ids)
    return float(min(d[0] for d in drops)) if drops else None


def _drop_lines(run: Run, ids: list[int]) -> list[tuple[float, int, int, str]]:
    """(seconds since t0, sender, recipient, reason) of the drop lines of ``ids``."""
    from lclock.analysis.faultstats import _secs

    out = []
    for i in ids:
        lines = run.machines[i].lines_of("drop")
        for (_, o), t in zip(lines, _secs(run, lines).tolist(), strict=True):
            j = o.get("to")
            if np.isfinite(t) and isinstance(j, int) and not isinstance(j, bool):
                out.append((t, i, j, str(o.get("reason"))))
    return out


# the messages' colours, one per sender, apart from the events' green, blue and grey
_ARROWS = ("tab:red", "tab:purple", "tab:brown", "tab:orange", "tab:pink", "tab:olive",
           "tab:cyan", "darkred", "indigo", "darkgoldenrod")
# the events' colours by kind (internal, send, receive)
_EVENTS = {0: "0.55", 1: "tab:green", 2: "tab:blue"}
Arrow = tuple[float, float, float, float, int, bool, bool]


def arrow_color(sender: int) -> str:
    return _ARROWS[(sender - 1) % len(_ARROWS)]


def fig_spacetime(run: Run, window: tuple[float, float],
                  faults: dict[str, Any] | None = None) -> Any:
    """Lanes of events and arrows of messages inside a time window.

    Readable by construction: an arrow has a filled head only at the tick that handled it,
    and where it passes another machine's lane the lane is drawn over it with a gap, so it
    cannot be mistaken for ending there; a message sent before the window comes (dashed)
    from the window's left edge on its sender's lane, one handled after it goes to the
    right edge on its receiver's lane; a clock value is written only where it does not
    collide with its neighbours (above or below the lane). The key names the colour of
    each sender's arrows.
    """
    lo, hi = window
    ids = run.ids[:16]
    ypos = {i: k for k, i in enumerate(reversed(ids))}
    fig, ax = pyplot().subplots(figsize=(11, 1.1 * len(ids) + 1.8))
    pad = (hi - lo) * 0.01
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(-0.6, len(ids) - 0.3)
    inwin = {}
    for i in ids:
        t = run.machines[i].ts - run.t0
        inwin[i] = np.flatnonzero((t >= lo) & (t <= hi))
        ax.axhline(ypos[i], color="0.75", lw=1, zorder=2.4)
    arrows = _window_messages(run, ids, inwin, lo, hi)
    _draw_arrows(ax, arrows, lo - pad)
    marked = _spacetime_faults(ax, run, ids, ypos, lo, hi, faults)
    for i in ids:
        log = run.machines[i]
        sel = inwin[i]
        ax.scatter((log.ts - run.t0)[sel], np.full(len(sel), ypos[i]),
                   c=[_EVENTS[int(k)] for k in log.kind[sel]], s=28, zorder=3, edgecolors="none")
    ax.set_yticks([ypos[i] for i in ids], [machine_label(run, i) for i in ids])
    ax.set_xlabel("system time since the first tick (s)")
    ax.legend(handles=_key(sorted({a[4] for a in arrows}), marked), loc="upper left",
              bbox_to_anchor=(1.005, 1.0), fontsize=9, frameon=False)
    ax.grid(axis="y", visible=False)
    ax.set_title("two\nlines", fontsize=10)  # the real title needs the labels' count
    fig.tight_layout()
    left_out = _clock_labels(ax, run, ids, inwin, ypos)
    note = f" ({left_out} left out where events are dense)" if left_out else ""
    shown = f" (machines {ids[0]}-{ids[-1]} of {len(run.ids)})" if len(run.ids) > len(ids) else ""
    ax.set_title(f"Space-time diagram{shown}, {secs_text(lo)} to {secs_text(hi)} after the first "
                 f"tick\nnumbers are Lamport clock values{note}; arrows are messages, from the "
                 "send to the tick that handled it", fontsize=10)
    return fig


def _draw_arrows(ax: Any, arrows: list[Arrow], left: float) -> None:
    """The messages' arrows, and a white gap in each lane an arrow passes over."""
    crossings: list[tuple[float, float]] = []
    for (x0, y0, x1, y1, src, cut_lo, cut_hi) in arrows:
        cut = cut_lo or cut_hi
        if cut_lo:
            x0 = left  # from the axes' own edge
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops={"arrowstyle": "-" if cut_hi else "-|>", "color": arrow_color(src),
                                "lw": 0.8 if cut else 1.0, "alpha": 0.55 if cut else 0.85,
                                "shrinkA": 0 if cut_lo else 3, "shrinkB": 0 if cut_hi else 3.5,
                                "mutation_scale": 9, "linestyle": "--" if cut else "-"},
                    zorder=2, annotation_clip=False)
        lo_y, hi_y = min(y0, y1), max(y0, y1)
        for y in range(int(np.floor(lo_y)) + 1, int(np.ceil(hi_y))):
            if lo_y < y < hi_y and y1 != y0:
                crossings.append((x0 + (x1 - x0) * (y - y0) / (y1 - y0), y))
    if crossings:  # the lane passes over the arrow: a white gap, then the lane line again
        cx, cy = zip(*crossings, strict=True)
        ax.scatter(cx, cy, s=30, color="white", zorder=2.3, edgecolors="none")


def sender_keys(senders: list[int]) -> list[tuple[str, str]]:
    """(colour, label) of the arrows' colours in use: ``from machine 1`` (or ``1, 11`` where
    more senders than colours share one)."""
    by_color: dict[str, list[int]] = {}
    for i in senders:
        by_color.setdefault(arrow_color(i), []).append(i)
    return [(c, f"from machine{'s' if len(ms) > 1 else ''} " + ", ".join(map(str, ms)))
            for c, ms in by_color.items()]


def _key(senders: list[int], marked: bool) -> list[Any]:
    """The legend: the kinds of event, one arrow colour per sender, the cut and the faults."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Any] = [Line2D([], [], marker="o", ls="", color=_EVENTS[k], label=name)
                          for k, name in ((1, "send"), (2, "receive"), (0, "internal"))]
    handles += [Line2D([], [], color=c, marker=">", markersize=5, label=text)
                for c, text in sender_keys(senders)]
    handles.append(Line2D([], [], color="0.3", ls="--", label="message from or\nbeyond the window"))
    if marked:
        handles.append(Line2D([], [], color="tab:red", ls=":", marker="x", markersize=6,
                              label="dropped message"))
        handles.append(Patch(color="tab:red", alpha=0.15, label="partition"))
        handles.append(Patch(facecolor="0.5", alpha=0.3, hatch="//", label="pause"))
    return handles


def _spacetime_faults(ax: Any, run: Run, ids: list[int], ypos: dict[int, int], lo: float,
                      hi: float, faults: dict[str, Any] | None) -> bool:
    """Drops (a dotted stub from the send toward the recipient, ending in x), partitions
    (red bands), pauses (a hatched bar on the lane) and crashes (X) inside the window;
    whether anything was drawn."""
    drawn = False
    shown = set(ids)
    width = hi - lo
    for t, i, j, _reason in _drop_lines(run, ids):
        if not lo <= t <= hi or j not in shown:
            continue
        y0, y1 = ypos[i], ypos[j]
        x1, ym = t + 0.04 * width, y0 + 0.4 * (y1 - y0)
        ax.plot([t, x1], [y0, ym], color="tab:red", ls=":", lw=1.1, zorder=2.2)
        ax.scatter([x1], [ym], marker="x", s=30, color="tab:red", zorder=3.5)
        drawn = True
    for p in (faults or {}).get("partitions") or []:
        a, b = p.get("start"), p.get("end")
        if a is not None and b is not None and a < hi and b > lo:
            ax.axvspan(max(a, lo), min(b, hi), color="tab:red", alpha=0.08, lw=0, zorder=0)
            drawn = True
    for p in (faults or {}).get("pauses") or []:
        a, b = p.get("start"), p.get("end")
        if p["machine"] in shown and a is not None and b is not None and a < hi and b > lo:
            y = ypos[p["machine"]]
            ax.fill_between([max(a, lo), min(b, hi)], y - 0.22, y + 0.22, facecolor="0.5",
                            alpha=0.25, hatch="//", edgecolor="0.3", lw=0, zorder=2.5)
            drawn = True
    for c in (faults or {}).get("crashes") or []:
        if c["machine"] in shown and lo <= c["time"] <= hi:
            ax.scatter([c["time"]], [ypos[c["machine"]]], marker="X", s=120, color="black",
                       zorder=4)
            drawn = True
    return drawn


def _window_messages(run: Run, ids: list[int], inwin: dict[int, np.ndarray], lo: float,
                     hi: float) -> list[Arrow]:
    """Arrows (x0, y0, x1, y1, sender, cut at the left edge, cut at the right edge) of every
    message with its send or its receive in the window, between lanes that are shown; which
    send a receive handled is the one matching's (lclock.analysis.matching), as everywhere."""
    ypos = {i: k for k, i in enumerate(reversed(ids))}
    tables = {i: SendTable(log) for i, log in run.machines.items()}
    out: list[Arrow] = []
    for j in ids:
        m = match_receives(run.machines[j], tables)
        got = np.isin(m.receive, inwin[j])  # the window's receives, and its sends, only:
        sent = np.zeros(len(m.receive), bool)  # a long run has far more outside it
        for s in ids:
            mine = m.sender == s
            sent[mine] = np.isin(m.send[mine], inwin[s])
        shown = np.isin(m.sender, ids) & (m.send >= 0)
        for n in np.flatnonzero(shown & (got | sent)).tolist():
            r, s, k = int(m.receive[n]), int(m.sender[n]), int(m.send[n])
            x0 = float(run.machines[s].ts[k] - run.t0)
            x1 = float(run.machines[j].ts[r] - run.t0)
            if got[n] and x0 <= hi:  # sent before the window: from its left edge
                out.append((max(x0, lo), ypos[s], x1, ypos[j], s, x0 < lo, False))
            elif not got[n] and x1 > hi:  # handled after it: leave by the right edge
                out.append((x0, ypos[s], hi, ypos[j], s, False, True))
    return out


def _clock_labels(ax: Any, run: Run, ids: list[int], inwin: dict[int, np.ndarray],
                  ypos: dict[int, int]) -> int:
    """Write each event's Lamport clock above its dot, or below when the place above is
    taken, or not at all; returns how many were left out. Widths are measured in display
    pixels, so the result holds for any window and rate."""
    fig = ax.figure
    x0, x1 = ax.get_xlim()
    px_per_s = ax.get_window_extent().width / max(x1 - x0, 1e-12)
    char_px = 7 * 0.62 * fig.dpi / 72  # 7 pt digits
    left_out = 0
    for i in ids:
        log = run.machines[i]
        t = log.ts - run.t0
        free = {7: -np.inf, -9: -np.inf}  # right end (px) of the last label above / below
        for k in inwin[i]:
            text = str(int(log.lclock[k]))
            w = len(text) * char_px
            x = float(t[k]) * px_per_s
            for dy in (7, -9):
                if x - w / 2 > free[dy] + 2:
                    free[dy] = x + w / 2
                    ax.annotate(text, (t[k], ypos[i]), xytext=(0, dy), textcoords="offset points",
                                ha="center", va="center", fontsize=7, zorder=4,
                                bbox={"boxstyle": "square,pad=0.05", "fc": "white", "ec": "none",
                                      "alpha": 0.75})
                    break
            else:
                left_out += 1
    return left_out
