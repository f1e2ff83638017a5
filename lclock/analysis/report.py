"""The report: PNG figures and one self-contained report.html (images embedded as base64).

Figures are drawn from the same ``compute`` pass as summary.json, sampled on a fixed grid of
system times, so the cost of plotting does not grow with the number of events: a 60 s run
and a 1M-event run draw the same few thousand points. Only the space-time diagram looks at
individual events, and only inside its (small) time window.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lclock.analysis.analyze import Series, compute, headlines
from lclock.analysis.load import KIND_RECEIVE, KIND_SEND, Run, load_run

FIGURES = ("clocks", "clockcmp", "drift", "queues", "jumps", "spacetime")
MAX_WINDOW_EVENTS = 150
MAX_ROW_EVENTS = 40


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 110, "font.size": 10,
                         "axes.grid": True, "grid.alpha": 0.3})
    return plt


def _label(run: Run, i: int) -> str:
    r = run.rates.get(i)
    return f"machine {i} ({r}/s)" if r else f"machine {i}"


def _by_rate(run: Run) -> bool:
    """Many machines are coloured by clock rate (the clusters in the plots are rate groups)."""
    return run.n > 10 and all(run.rates.get(i) for i in run.ids)


def _colors(run: Run) -> dict[int, Any]:
    plt = _plt()
    ids = run.ids
    if run.n <= 10:
        cmap = plt.get_cmap("tab10")
        return {i: cmap((i - 1) % 10) for i in ids}
    cmap = plt.get_cmap("viridis")
    if _by_rate(run):
        lo, hi = min(run.rates[i] for i in ids), max(run.rates[i] for i in ids)
        return {i: cmap((run.rates[i] - lo) / max(hi - lo, 1)) for i in ids}
    return {i: cmap(k / max(len(ids) - 1, 1)) for k, i in enumerate(ids)}


def _legend(ax: Any, run: Run, bar_axes: list[Any] | None = None) -> None:
    """A legend for a few machines; for many, a colour bar (of rates, else of ids)."""
    if run.n <= 10:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize=9)
        return
    plt = _plt()
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    if _by_rate(run):
        vals, label = [run.rates[i] for i in run.ids], "clock rate (ticks/s)"
    else:
        vals, label = run.ids, "machine id"
    sm = ScalarMappable(norm=Normalize(min(vals), max(vals)), cmap=plt.get_cmap("viridis"))
    bar = ax.figure.colorbar(sm, ax=bar_axes or ax, pad=0.01)
    bar.set_label(label)


def shade_faults(ax: Any, run: Run, faults: dict[str, Any] | None, legend: bool = True) -> None:
    """Partitions (red) and pauses (grey, hatched in the paused machine's colour) as bands
    of time, crashes as a vertical line: what the curves of that stretch went through."""
    if not faults:
        return
    from matplotlib.patches import Patch

    col = _colors(run)
    handles = []
    for k, p in enumerate(faults.get("partitions") or []):
        if p.get("start") is None or p.get("end") is None:
            continue
        ax.axvspan(p["start"], p["end"], color="tab:red", alpha=0.08, lw=0, zorder=0)
        if not k:
            handles.append(Patch(color="tab:red", alpha=0.15, label="partition"))
    for p in faults.get("pauses") or []:
        if p.get("start") is None or p.get("end") is None:
            continue
        ax.axvspan(p["start"], p["end"], facecolor="0.5", alpha=0.12, lw=0, zorder=0,
                   hatch="//", edgecolor=col.get(p["machine"], "0.3"))
        handles.append(Patch(facecolor="0.5", alpha=0.3, hatch="//",
                             edgecolor=col.get(p["machine"], "0.3"),
                             label=f"pause of machine {p['machine']}"))
    for c in faults.get("crashes") or []:
        ax.axvline(c["time"], color=col.get(c["machine"], "k"), ls=":", lw=1.5, zorder=1)
        handles.append(plt_line(col.get(c["machine"], "k"), f"crash of machine {c['machine']}"))
    if legend and handles:
        extra = ax.legend(handles=handles[:8], loc="lower right", fontsize=8, framealpha=0.8)
        ax.add_artist(extra)


def plt_line(color: Any, label: str) -> Any:
    from matplotlib.lines import Line2D

    return Line2D([], [], color=color, ls=":", lw=1.5, label=label)


def fig_clocks(run: Run, s: Series, faults: dict[str, Any] | None = None) -> Any:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 5))
    col = _colors(run)
    for i in run.ids:
        ax.plot(s.grid, s.clocks[i], drawstyle="steps-post", color=col[i], label=_label(run, i))
    shade_faults(ax, run, faults)
    ax.set_title("Lamport clock against system time"
                 + ("\nshaded: partitions and pauses" if faults else ""))
    ax.set_xlabel("system time since the first tick (s)")
    ax.set_ylabel("Lamport clock (logical time)")
    _legend(ax, run)
    fig.tight_layout()
    return fig


def _on_grid(run: Run, grid: np.ndarray, values: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Each machine's ``values`` (one per event) as a step function on the grid (NaN
    before its first event or where a value is unknown)."""
    out = {}
    for i, v in values.items():
        log = run.machines[i]
        ok = np.isfinite(log.ts)
        ts = np.maximum.accumulate(log.ts[ok] - run.t0) if ok.any() else np.zeros(0)
        vals = v[ok].astype(float)
        k = np.searchsorted(ts, grid, side="right") - 1
        out[i] = np.where(k >= 0, vals[np.maximum(k, 0)] if vals.size else np.nan, np.nan)
    return out


def fig_clock_compare(run: Run, s: Series, summary: dict[str, Any]) -> Any:
    """The same events on three clocks (SPEC 7.5): each machine's physical clock and HLC
    as their distance from system time, and its Lamport clock; the messages physical time
    misorders (received before they were sent, by pt) marked on the pt panel."""
    from lclock.analysis.clockcmp import misordered_messages

    plt = _plt()
    fig, axes = plt.subplots(3, 1, figsize=(9, 9), sharex=True, layout="constrained")
    col = _colors(run)
    ids = run.ids
    pts: dict[int, np.ndarray] = {}
    hlcs: dict[int, np.ndarray] = {}
    for i in ids:
        log = run.machines[i]
        us = np.round(log.ts * 1e6)
        if log.pt is not None:
            pts[i] = (log.pt - us) / 1000
        if log.hlc is not None:
            hlcs[i] = (log.hlc[:, 0] - us) / 1000
    for ax, series, what in ((axes[0], pts, "physical clock pt - system time (ms)"),
                             (axes[1], hlcs, "HLC l - system time (ms)")):
        if not series:
            ax.text(0.5, 0.5, "not kept by this run", transform=ax.transAxes, ha="center",
                    va="center", color="0.4")
        for i, y in _on_grid(run, s.grid, series).items():
            ax.plot(s.grid, y, drawstyle="steps-post", color=col[i], label=_label(run, i))
        ax.set_ylabel(what)
    bad = misordered_messages(run)
    c = summary.get("clocks") or {}
    m = (c.get("messages") or {}).get("pt") or {}
    if len(bad["ts"]):
        x0, x1 = bad["send_ts"] - run.t0, bad["ts"] - run.t0
        recv_off = (bad["pt"] - np.round(bad["ts"] * 1e6)) / 1000
        axes[0].scatter(x1, recv_off, marker="x", s=22, color="tab:red", zorder=5,
                        label=f"message misordered by pt ({m.get('misordered', len(x1))})")
        for a, b, y in list(zip(x0, x1, recv_off, strict=True))[:300]:
            axes[0].plot([a, b], [y, y], color="tab:red", lw=0.6, alpha=0.5)
    axes[0].set_title("The same events on three clocks: physical time (pt), HLC and Lamport"
                      + (f"\n{m.get('misordered', 0)} of {m.get('pairs', 0)} messages received "
                         "before they were sent by pt (x); Lamport and HLC order every one"
                         if m else ""), fontsize=10)
    axes[2].set_title("Lamport clock", fontsize=10)
    for i in ids:
        axes[2].plot(s.grid, s.clocks[i], drawstyle="steps-post", color=col[i])
    axes[2].set_ylabel("Lamport clock")
    axes[2].set_xlabel("system time since the first tick (s)")
    for ax in axes:
        shade_faults(ax, run, summary.get("faults"), legend=ax is axes[2])
    if run.n <= 10 and axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(loc="best", fontsize=8)
    return fig


def fig_drift(run: Run, s: Series, faults: dict[str, Any] | None = None) -> Any:
    plt = _plt()
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True, layout="constrained")
    a1.plot(s.grid, s.spread, color="black")
    a1.set_title("Drift: spread of the Lamport clocks at the same system time")
    a1.set_ylabel("max - min Lamport clock")
    col = _colors(run)
    for i in run.ids:
        a2.plot(s.grid, s.behind[i], color=col[i], label=_label(run, i))
    shade_faults(a1, run, faults)
    shade_faults(a2, run, faults, legend=False)
    a2.set_title("How far each machine's clock is behind the leading one (the highest clock "
                 "at that moment)", fontsize=10)
    a2.set_ylabel("Lamport clock behind the leader")
    a2.set_xlabel("system time since the first tick (s)")
    if len(run.ids) > 1:
        _legend(a2, run, [a1, a2])
    return fig


def fig_queues(run: Run, s: Series, summary: dict[str, Any]) -> Any:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 5))
    col = _colors(run)
    t0 = run.t0
    by_id = {m["id"]: m for m in summary["machines"]}
    for i in run.ids if "queue_len" not in run.not_logged else ():
        log = run.machines[i]
        ok = np.isfinite(log.ts)
        ts = np.maximum.accumulate(log.ts[ok] - t0) if ok.any() else np.zeros(0)
        if ts.size:
            # the maximum in each grid cell, so short peaks survive the sampling
            cell = np.clip(np.searchsorted(s.grid, ts, side="right") - 1, 0, len(s.grid) - 1)
            qmax = np.zeros(len(s.grid))
            np.maximum.at(qmax, cell, log.qlen[ok])
            seen = np.zeros(len(s.grid), bool)
            seen[cell] = True
            idx = np.maximum.accumulate(np.where(seen, np.arange(len(s.grid)), 0))
            q = np.where(seen, qmax, qmax[idx])
            ax.plot(s.grid, q, color=col[i], label=_label(run, i) + " observed" if run.n <= 10 else None)
        th = by_id[i].get("theory")
        if th and th["growth_per_s"]:
            g = th["growth_per_s"]
            ax.plot([0, s.grid[-1]], [0, g * s.grid[-1]], linestyle="--", color=col[i],
                    alpha=0.8, label=f"machine {i} theory (+{g:.2f}/s)" if run.n <= 10 else None)
    flat = [m["id"] for m in summary["machines"] if m.get("theory") and not m["theory"]["growth_per_s"]]
    sub = "\ndashed: predicted growth from the rates and the dice"
    if flat:
        sub += f" (predicted 0/s for machine{'s' if len(flat) > 1 else ''} " + ", ".join(
            map(str, flat[:8])) + ("..." if len(flat) > 8 else "") + ")"
    if "queue_len" in run.not_logged:
        sub = "\nnot logged by this run (run.json not_logged)"
        ax.text(0.5, 0.5, "queue lengths were not logged", transform=ax.transAxes, ha="center",
                va="center", color="0.4")
        ax.set_xlim(0, max(float(s.grid[-1]), 1e-3))
    shade_faults(ax, run, summary.get("faults"))
    ax.set_title("Queue length over time" + sub, fontsize=10)
    ax.set_xlabel("system time since the first tick (s)")
    ax.set_ylabel("messages waiting in the queue")
    ax.set_ylim(bottom=0)
    _legend(ax, run)
    fig.tight_layout()
    return fig


def fig_jumps(run: Run, s: Series) -> Any:
    plt = _plt()
    ids = [i for i in run.ids if s.jumps[i].size] or run.ids
    shown = ids[:8]
    cols = min(len(shown), 4)
    rows = (len(shown) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols + 1, 3.2 * rows + 0.6), squeeze=False)
    col = _colors(run)
    for ax, i in zip(axes.flat, shown, strict=False):
        j = s.jumps[i]
        if j.size:
            hi = int(min(j.max(), 60))
            bins = np.arange(0.5, hi + 1.5, 1.0)
            ax.hist(np.minimum(j, hi), bins=bins, color=col[i])
            ax.set_xlim(0.5, max(hi, 5) + 0.5)
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.yaxis.get_major_locator().set_params(integer=True)
            ax.set_title(f"{_label(run, i)}\nmean {j.mean():.2f}, max {int(j.max())}", fontsize=10)
        else:
            ax.set_title(f"{_label(run, i)}\nno receives", fontsize=10)
        ax.set_xlabel("jump L - L_prev on receive")
        ax.set_ylabel("receives")
    for ax in list(axes.flat)[len(shown):]:
        ax.set_visible(False)
    fig.suptitle("Lamport clock jumps on receive (1 = no jump" +
                 (f"; first {len(shown)} machines" if len(ids) > len(shown) else "") + ")")
    fig.tight_layout()
    return fig


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


class ReportError(Exception):
    """A report that cannot be drawn as asked (the CLI prints it, exit 2)."""


def check_window(run: Run, window: tuple[float, float]) -> None:
    """A window past the run's end, or with no event in it, is a mistake of the caller: say
    so rather than draw an empty figure."""
    problem = window_problem(run, window)
    if problem:
        raise ReportError(problem)


def window_problem(run: Run, window: tuple[float, float], end_included: bool = True
                   ) -> str | None:
    """Why ``--window`` shows nothing of ``run`` (None: it holds events). The explorer
    embeds [START, END), the space-time diagram draws [START, END]."""
    lo, hi = window
    ends = [float(np.nanmax(m.ts)) - run.t0 for m in run.machines.values()
            if m.events and np.isfinite(m.ts).any()]
    if not ends:
        return "--window: the run has no events with a time"
    end = max(ends)
    span = f"the run's events span 0 to {_secs(end)} after the first tick"
    if lo > end:
        return f"--window {lo:.10g},{hi:.10g} starts after the run's last event ({span})"
    for m in run.machines.values():
        t = m.ts - run.t0
        if np.any((t >= lo) & ((t <= hi) if end_included else (t < hi))):
            return None
    return f"--window {lo:.10g},{hi:.10g} holds no event ({span}); widen it"


# the messages' colours, one per sender, apart from the events' green, blue and grey
_ARROWS = ("tab:red", "tab:purple", "tab:brown", "tab:orange", "tab:pink", "tab:olive",
           "tab:cyan", "darkred", "indigo", "darkgoldenrod")


def fig_spacetime(run: Run, window: tuple[float, float],
                  faults: dict[str, Any] | None = None) -> Any:
    """Lanes of events and arrows of messages inside a time window.

    Readable by construction: an arrow has a filled head only at the tick that handled it,
    and where it passes another machine's lane the lane is drawn over it with a gap, so it
    cannot be mistaken for ending there; a message sent before the window comes (dashed)
    from the window's left edge on its sender's lane, one handled after it goes to the
    right edge on its receiver's lane; a clock value is written only where it does not
    collide with its neighbours (above or below the lane).
    """
    plt = _plt()
    lo, hi = window
    ids = run.ids[:16]
    ypos = {i: k for k, i in enumerate(reversed(ids))}
    fig, ax = plt.subplots(figsize=(11, 1.1 * len(ids) + 1.8))
    col = {0: "0.55", 1: "tab:green", 2: "tab:blue"}
    pad = (hi - lo) * 0.01
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(-0.6, len(ids) - 0.3)
    inwin = {}
    for i in ids:
        t = run.machines[i].ts - run.t0
        inwin[i] = np.flatnonzero((t >= lo) & (t <= hi))
        ax.axhline(ypos[i], color="0.75", lw=1, zorder=2.4)
    arrows = _window_messages(run, ids, inwin, lo, hi)
    crossings: list[tuple[float, float]] = []
    for (x0, y0, x1, y1, src, cut_lo, cut_hi) in arrows:
        color = _ARROWS[(src - 1) % len(_ARROWS)]
        style = "-|>" if not cut_hi else "-"
        cut = cut_lo or cut_hi
        if cut_lo:
            x0 = lo - pad  # from the axes' own edge
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops={"arrowstyle": style, "color": color, "lw": 0.8 if cut else 1.0,
                                "alpha": 0.55 if cut else 0.85,
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
    marked = _spacetime_faults(ax, run, ids, ypos, lo, hi, faults)
    total = 0
    for i in ids:
        log = run.machines[i]
        t = log.ts - run.t0
        sel = inwin[i]
        total += len(sel)
        ax.scatter(t[sel], np.full(len(sel), ypos[i]), c=[col[int(k)] for k in log.kind[sel]],
                   s=28, zorder=3, edgecolors="none")
    ax.set_yticks([ypos[i] for i in ids], [_label(run, i) for i in ids])
    ax.set_xlabel("system time since the first tick (s)")
    shown = f" (machines {ids[0]}-{ids[-1]} of {len(run.ids)})" if len(run.ids) > len(ids) else ""
    from matplotlib.lines import Line2D

    handles: list[Any] = [Line2D([], [], marker="o", ls="", color=col[k], label=name)
                          for k, name in ((1, "send"), (2, "receive"), (0, "internal"))]
    handles.append(Line2D([], [], color=_ARROWS[0], marker=">", markersize=5,
                          label="message (colour\nof its sender)"))
    handles.append(Line2D([], [], color="0.3", ls="--", label="message from or\nbeyond the window"))
    if marked:
        from matplotlib.patches import Patch

        handles.append(Line2D([], [], color="tab:red", ls=":", marker="x", markersize=6,
                              label="dropped message"))
        handles.append(Patch(color="tab:red", alpha=0.15, label="partition"))
        handles.append(Patch(facecolor="0.5", alpha=0.3, hatch="//", label="pause"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=9,
              frameon=False)
    ax.grid(axis="y", visible=False)
    ax.set_title("two\nlines", fontsize=10)  # the real title needs the labels' count
    fig.tight_layout()
    left_out = _clock_labels(ax, run, ids, inwin, ypos)
    note = f" ({left_out} left out where events are dense)" if left_out else ""
    ax.set_title(f"Space-time diagram{shown}, {_secs(lo)} to {_secs(hi)} after the first tick\n"
                 f"numbers are Lamport clock values{note}; arrows are messages, from the send to "
                 "the tick that handled it", fontsize=10)
    return fig


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
                     hi: float) -> list[tuple[float, float, float, float, int, bool, bool]]:
    """Arrows (x0, y0, x1, y1, sender, cut at the left edge, cut at the right edge) of every
    message with its send or its receive in the window, between lanes that are shown."""
    ypos = {i: k for k, i in enumerate(reversed(ids))}
    shown = set(ids)
    # every send of a shown machine up to the window's end, by (sender, lclock)
    send_t: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for i in ids:
        log = run.machines[i]
        t = log.ts - run.t0
        k = np.flatnonzero((log.kind == KIND_SEND) & (t <= hi))
        order = np.argsort(log.lclock[k], kind="stable")
        send_t[i] = (log.lclock[k][order], t[k][order])
    out: list[tuple[float, float, float, float, int, bool, bool]] = []
    handled: set[tuple[int, int, int]] = set()
    for j in ids:
        log = run.machines[j]
        t = log.ts - run.t0
        for k in inwin[j][log.kind[inwin[j]] == KIND_RECEIVE]:
            src, msg = int(log.frm[k]), int(log.msg[k])
            if src not in shown:
                continue
            lcs, ts = send_t[src]
            p = int(np.searchsorted(lcs, msg))
            if p >= len(lcs) or lcs[p] != msg:
                continue
            x0, y0, x1, y1 = float(ts[p]), ypos[src], float(t[k]), ypos[j]
            handled.add((src, msg, j))
            if x0 < lo:  # sent before the window: from its left edge, on the sender's lane
                out.append((lo, y0, x1, y1, src, True, False))
            else:
                out.append((x0, y0, x1, y1, src, False, False))
    # sent in the window, handled after it: leave by the right edge
    for i in ids:
        log = run.machines[i]
        t = log.ts - run.t0
        for k in inwin[i][log.kind[inwin[i]] == KIND_SEND]:
            for j in log.recipients(int(k)):
                if j not in shown or (i, int(log.lclock[k]), j) in handled:
                    continue
                rl = run.machines[j]
                rt = rl.ts - run.t0
                r = np.flatnonzero((rl.kind == KIND_RECEIVE) & (rl.frm == i)
                                   & (rl.msg == log.lclock[k]) & (rt > hi))
                if not len(r):
                    continue
                out.append((float(t[k]), ypos[i], hi, ypos[j], i, False, True))
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


def _secs(x: float) -> str:
    """Seconds with enough digits for the window's scale (0.0123 s, not 0.01 s)."""
    return f"{x:.2f} s" if x >= 1 or x == 0 else f"{x:.3g} s"


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    _plt().close(fig)
    return buf.getvalue()


def _html_table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4g}"
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_clocks(c: dict[str, Any] | None) -> list[str]:
    """The clock comparison (SPEC 7.5): what each clock gets wrong on this run."""
    from lclock.analysis.analyze import CLOCK_HEAD, clock_rows

    if not c:
        return []
    s = c.get("sample")
    out = ["<h2>The clocks compared</h2>",
           f"<p>Every message is a causal pair ({c['messages']['pairs']} of them)"
           + (f"; {s['pairs']} other event pairs were sampled (seed {s['seed']}) and classified "
              f"by the vector clocks: {s['causal']} causal, {s['concurrent']} concurrent" if s
              else "; without vector clocks no other pairs can be classified")
           + ". A clock <i>misorders</i> a causal pair when it stamps the earlier event later; "
             "concurrent pairs are oriented by system time, so <i>before</i> means the clock "
             "agrees with real time.</p>",
           _html_table(CLOCK_HEAD, clock_rows(c))]
    verdict = ("Lamport and HLC order every causal pair, as the clock condition says."
               if c["logical_clocks_ok"] else
               f"VIOLATION: the logical clocks misordered or tied causal pairs "
               f"({c['logical_violations']}): run lclock check.")
    out.append(f"<p><b>{html.escape(verdict)}</b>")
    h = c.get("hlc")
    if h:
        out.append(f" HLC: largest l - pt {h['max_l_minus_pt_us']} µs (bound "
                   f"{h['bound_us']} µs), largest c {h['max_c']}.")
    if c["bytes_per_message"].get("vector"):
        out.append(f" Vector clocks, which alone tell causal from concurrent, cost "
                   f"{c['bytes_per_message']['vector']} bytes a message.")
    out.append("</p>")
    return out


def _html_faults(f: dict[str, Any] | None, n: int) -> list[str]:
    """Messages dropped per link, the schedule, and the jumps after heals and resumes."""
    from lclock.analysis.analyze import groups_text

    if not f:
        return []
    d = f["dropped"]
    out = ["<h2>Faults</h2>",
           f"<p>{d['loss']} messages lost, {d['partition']} dropped by partitions, "
           f"{d['crashed']} sent to a crashed machine, {f['duplicated']} delivered twice"
           + ("; links may reorder" if f["reorder"] else "") + ".</p>"]
    links = {k: v for k, v in f["links"].items() if v["sent"]}
    if links:
        out.append(_html_table(["link", "sent", "lost", "partition", "crashed", "dropped %",
                                "duplicated"],
                               [[k, v["sent"], v["loss"], v["partition"], v["crashed"],
                                 100 * v["dropped"] / v["sent"], v["duplicated"]]
                                for k, v in links.items()]))
    items = ([f"partition {p['start']:g}-{p['end']:g} s: {groups_text(p['groups'], n)}"
              for p in f["partitions"] if p.get("start") is not None and p.get("end") is not None]
             + [f"pause of machine {p['machine']}: {p['start']:g}-{p['end']:g} s"
                for p in f["pauses"] if p.get("start") is not None and p.get("end") is not None]
             + [f"crash of machine {c['machine']} at {c['time']:g} s" for c in f["crashes"]])
    if items:
        out.append("<ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in items) + "</ul>")
    if f["after"]:
        out.append("<p>The first receive after a partition heals or a pause ends, and the "
                   "jump it gives the Lamport clock (against the machine's mean jump):</p>")
        out.append(_html_table(["machine", "after", "at s", "receive at s", "from", "jump",
                                "mean jump"],
                               [[a["machine"], a["after"], a["at_s"], a["receive_at_s"],
                                 a["from"], a["jump"], a["mean_jump"]] for a in f["after"]]))
    return out


def render_html(summary: dict[str, Any], heads: list[str], images: dict[str, bytes],
                window: tuple[float, float], explorer: str | None = None) -> str:
    ms = summary["machines"]
    d = summary["drift"]
    c = summary["concurrency"]
    img = {k: base64.b64encode(v).decode() for k, v in images.items()}
    captions = {
        "clocks": "Each machine's Lamport clock against system time. A slow machine's clock "
                  "is pulled up in jumps by the messages of faster ones. Shaded: partitions "
                  "(red) and pauses (grey); dotted: crashes.",
        "clockcmp": "The same events on three clocks. Top: how far each machine's physical "
                    "clock is from system time (its skew, drift and bumps); a red x is a "
                    "message whose receive has an earlier pt than its send. Middle: the HLC's "
                    "l, which follows the largest physical time heard of and so never "
                    "misorders a message. Bottom: the Lamport clock.",
        "drift": "The spread of the clocks at the same system time, and each machine's distance "
                 "behind the leading clock (the highest at that moment, whichever machine has "
                 "it; 0 while a machine leads), as in the analyze table.",
        "queues": "Messages waiting in each machine's queue (solid) and the growth predicted from "
                  "the peers' rates and the dice (dashed).",
        "jumps": "How far the clock moves on each receive: 1 means the message did not advance "
                 "it beyond the usual +1.",
        "spacetime": f"The events of {_secs(window[0])} to {_secs(window[1])} on a real-time axis; "
                     "numbers are Lamport clock values, arrows are messages; a dashed arrow "
                     "ending in x is a dropped message, shaded bands are partitions and "
                     "pauses.",
    }
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>lclock report {html.escape(summary['run_id'])}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;"
        "padding:0 1em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}"
        "img{max-width:100%;border:1px solid #eee}figure{margin:1.5em 0}"
        "figcaption{color:#555;font-size:.9em}</style></head><body>",
        f"<h1>lclock run {html.escape(summary['run_id'])}</h1>",
        f"<p>Status <b>{html.escape(str(summary['status']))}</b>, {summary['machines_n']} machines, "
        f"{summary['events']} events over {(summary['duration_s'] or 0):.4g} s.</p>",
        (f"<p><a href='{html.escape(explorer)}'>Explore this run</a>: every event on a zoomable "
         "space-time diagram; click one to see its causal past and future.</p>" if explorer else ""),
        "<h2>Headlines</h2><ul>" + "".join(f"<li>{html.escape(h)}</li>" for h in heads) + "</ul>",
        "<h2>Machines</h2>",
        _html_table(
            ["machine", "rate/s", "ticks", "achieved/s", "receive", "send", "internal",
             "jump mean", "jump p95", "jump max", "queue mean", "queue max", "queue final",
             "growth/s", "theory growth/s", "delay mean s"],
            [[m["id"], m["rate"], m["ticks"], m["achieved_rate"], m["events"]["receive"],
              m["events"]["send"], m["events"]["internal"], m["jumps"]["mean"], m["jumps"]["p95"],
              m["jumps"]["max"], m["queue"]["mean"], m["queue"]["max"], m["queue"]["final"],
              m["queue"]["growth_per_s"], (m["theory"] or {}).get("growth_per_s"),
              m["delay"]["mean"]] for m in ms]),
        f"<p>Drift (spread of the Lamport clocks at the same time): mean {d['mean']}, "
        f"p95 {d['p95']}, max {d['max']}, final {d['final']}; fastest machine {d['fastest']}.</p>",
    ]
    if any(m["theory"] for m in ms):
        parts.append("<h2>Theory against observation</h2><p>Expected message arrivals from the "
                     "peers' rates and the dice, against each machine's own tick rate; a machine "
                     "whose arrivals exceed its rate is saturated and its queue grows by about "
                     "the difference.</p>")
        parts.append(_html_table(
            ["machine", "rate/s", "arrivals/s (theory)", "arrivals/s (observed)", "utilisation",
             "queue growth/s (theory)", "queue growth/s (observed)"],
            [[m["id"], m["rate"], (m["theory"] or {}).get("arrival_rate"), m["arrival_rate"],
              (m["theory"] or {}).get("utilisation"), (m["theory"] or {}).get("growth_per_s"),
              m["queue"]["growth_per_s"]] for m in ms]))
    parts.append("<h2>Event mix</h2><p>Dice outcomes on ticks with an empty queue, as fractions "
                 "of the rolls; expected: 1/dice_sides each for send A, send B and to all, the "
                 "rest internal.</p>")
    parts.append(_html_table(
        ["machine", "rolls", "send A", "send B", "to all", "internal", "expected internal",
         "receive share of ticks"],
        [[m["id"], m["mix"]["rolls"], m["mix"]["observed"]["send_a"],
          m["mix"]["observed"]["send_b"], m["mix"]["observed"]["broadcast"],
          m["mix"]["observed"]["internal"], m["mix"]["expected"]["internal"],
          m["mix"]["receive_fraction"]] for m in ms]))
    if c:
        parts.append(f"<p>Concurrency by vector clocks: {c['concurrent']} of {c['pairs']} event "
                     f"pairs on different machines are concurrent.</p>")
    parts += _html_clocks(summary.get("clocks"))
    parts += _html_faults(summary.get("faults"), summary["machines_n"])
    parts.append("<h2>Figures</h2>")
    for k in FIGURES:
        if k in img:
            parts.append(f"<figure><img alt='{k}' src='data:image/png;base64,{img[k]}'>"
                         f"<figcaption>{html.escape(captions[k])}</figcaption></figure>")
    parts.append("<p>Written by <code>lclock report</code>; the numbers are in summary.json.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(run_dir: Path | str, out_dir: Path | str | None = None,
                 window: tuple[float, float] | None = None) -> tuple[dict[str, Any], list[str], Path]:
    """Write summary.json, the PNGs and report.html; returns (summary, headlines, html path).

    All of them or none: they are drawn in memory first and then written together
    (``outfile.all_or_none``), so a full disk leaves no partial report (and a folder this
    call created is removed again). Raises ``ReportError``, ``RunFolderError``,
    ``OutputRefused`` (an output folder that is another run's) or ``OutputFailed``.
    """
    import orjson

    from lclock.outfile import OutputFailed, all_or_none, check_folder

    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir
    check_folder(out, [run_dir])  # before the work, not after it
    run = load_run(run_dir)
    if not run.machines:
        raise ReportError(f"{run_dir}: no machine logs to report on")
    if window is not None:
        check_window(run, window)  # before anything is written
    if out.exists() and not out.is_dir():
        raise ReportError(f"--output {out}: not a folder")
    summary, series = compute(run)
    heads = headlines(summary)
    win = choose_window(run, window, fault_anchor(summary.get("faults"), run))
    figs: dict[str, Callable[[], Any]] = {
        "clocks": lambda: fig_clocks(run, series, summary.get("faults")),
        "clockcmp": lambda: fig_clock_compare(run, series, summary),
        "drift": lambda: fig_drift(run, series, summary.get("faults")),
        "queues": lambda: fig_queues(run, series, summary),
        "jumps": lambda: fig_jumps(run, series),
        "spacetime": lambda: fig_spacetime(run, win, summary.get("faults")),
    }
    images = {name: _png(make()) for name, make in figs.items()}
    path = out / "report.html"
    explorer = next((os.path.relpath(p, out) for p in (out / "explorer.html",
                     run_dir / "explorer.html") if p.is_file()), None)
    page = render_html(summary, heads, images, win, explorer).encode("utf-8")
    made = _make_folder(out)
    try:
        with all_or_none([run_dir]) as files:
            files.add(out / "summary.json",
                      orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))
            for name, data in images.items():
                files.add(out / f"{name}.png", data)
            files.add(path, page)
    except OutputFailed:
        for d in made:
            with contextlib.suppress(OSError):
                d.rmdir()
        raise
    return summary, heads, path


def _make_folder(out: Path) -> list[Path]:
    """Create ``out`` and its missing parents; returns the folders created, deepest first."""
    from lclock.outfile import OutputFailed

    missing = []
    d = out
    while not d.exists() and d != d.parent:
        missing.append(d)
        d = d.parent
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputFailed(out, exc) from None
    return missing


def report_after_run(run_dir: Path) -> list[str]:
    """For the launcher: the explorer and the whole report into the run folder (report.html
    links explorer.html), and three headline findings."""
    from lclock.explorer.view_cmd import write_explorer

    try:
        write_explorer([Path(run_dir)])
    except Exception as exc:  # the report is still worth writing without it
        sys.stderr.write(f"lclock: warning: explorer not written: {exc}\n")
    _, heads, _ = write_report(run_dir)
    return heads
