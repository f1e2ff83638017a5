"""The report's figures, drawn with matplotlib from the same ``compute`` pass as summary.json.

Figures are sampled on a fixed grid of system times, so the cost of plotting does not grow
with the number of events: a 60 s run and a 1M-event run draw the same few thousand points.
(The space-time diagram, which looks at single events, is :mod:`lclock.analysis.spacetime`.)
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from lclock.analysis.analyze import Series
from lclock.analysis.load import Run


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 110, "font.size": 10,
                         "axes.grid": True, "grid.alpha": 0.3})
    return plt


def machine_label(run: Run, i: int) -> str:
    r = run.rates.get(i)
    return f"machine {i} ({r}/s)" if r else f"machine {i}"


def _by_rate(run: Run) -> bool:
    """Many machines are coloured by clock rate (the clusters in the plots are rate groups)."""
    return run.n > 10 and all(run.rates.get(i) for i in run.ids)


def machine_colors(run: Run) -> dict[int, Any]:
    plt = pyplot()
    ids = run.ids
    if run.n <= 10:
        cmap = plt.get_cmap("tab10")
        return {i: cmap((i - 1) % 10) for i in ids}
    cmap = plt.get_cmap("viridis")
    if _by_rate(run):
        lo, hi = min(run.rates[i] for i in ids), max(run.rates[i] for i in ids)
        return {i: cmap((run.rates[i] - lo) / max(hi - lo, 1)) for i in ids}
    return {i: cmap(k / max(len(ids) - 1, 1)) for k, i in enumerate(ids)}


def machine_legend(ax: Any, run: Run, bar_axes: list[Any] | None = None) -> None:
    """A legend for a few machines; for many, a colour bar (of rates, else of ids)."""
    if run.n <= 10:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize=9)
        return
    plt = pyplot()
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

    col = machine_colors(run)
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
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 5))
    col = machine_colors(run)
    for i in run.ids:
        ax.plot(s.grid, s.clocks[i], drawstyle="steps-post", color=col[i], label=machine_label(run, i))
    shade_faults(ax, run, faults)
    ax.set_title("Lamport clock against system time"
                 + ("\nshaded: partitions and pauses" if faults else ""))
    ax.set_xlabel("system time since the first tick (s)")
    ax.set_ylabel("Lamport clock (logical time)")
    machine_legend(ax, run)
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

    plt = pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(9, 9), sharex=True, layout="constrained")
    col = machine_colors(run)
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
            ax.plot(s.grid, y, drawstyle="steps-post", color=col[i], label=machine_label(run, i))
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
    plt = pyplot()
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True, layout="constrained")
    a1.plot(s.grid, s.spread, color="black")
    a1.set_title("Drift: spread of the Lamport clocks at the same system time")
    a1.set_ylabel("max - min Lamport clock")
    col = machine_colors(run)
    for i in run.ids:
        a2.plot(s.grid, s.behind[i], color=col[i], label=machine_label(run, i))
    shade_faults(a1, run, faults)
    shade_faults(a2, run, faults, legend=False)
    a2.set_title("How far each machine's clock is behind the leading one (the highest clock "
                 "at that moment)", fontsize=10)
    a2.set_ylabel("Lamport clock behind the leader")
    a2.set_xlabel("system time since the first tick (s)")
    if len(run.ids) > 1:
        machine_legend(a2, run, [a1, a2])
    return fig


def fig_queues(run: Run, s: Series, summary: dict[str, Any]) -> Any:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 5))
    col = machine_colors(run)
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
            ax.plot(s.grid, q, color=col[i], label=machine_label(run, i) + " observed" if run.n <= 10 else None)
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
    machine_legend(ax, run)
    fig.tight_layout()
    return fig


def fig_jumps(run: Run, s: Series) -> Any:
    plt = pyplot()
    ids = [i for i in run.ids if s.jumps[i].size] or run.ids
    shown = ids[:8]
    cols = min(len(shown), 4)
    rows = (len(shown) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols + 1, 3.2 * rows + 0.6), squeeze=False)
    col = machine_colors(run)
    for ax, i in zip(axes.flat, shown, strict=False):
        j = s.jumps[i]
        if j.size:
            hi = int(min(j.max(), 60))
            bins = np.arange(0.5, hi + 1.5, 1.0)
            ax.hist(np.minimum(j, hi), bins=bins, color=col[i])
            ax.set_xlim(0.5, max(hi, 5) + 0.5)
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.yaxis.get_major_locator().set_params(integer=True)
            ax.set_title(f"{machine_label(run, i)}\nmean {j.mean():.2f}, max {int(j.max())}", fontsize=10)
        else:
            ax.set_title(f"{machine_label(run, i)}\nno receives", fontsize=10)
        ax.set_xlabel("jump L - L_prev on receive")
        ax.set_ylabel("receives")
    for ax in list(axes.flat)[len(shown):]:
        ax.set_visible(False)
    fig.suptitle("Lamport clock jumps on receive (1 = no jump" +
                 (f"; first {len(shown)} machines" if len(ids) > len(shown) else "") + ")")
    fig.tight_layout()
    return fig


def png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    pyplot().close(fig)
    return buf.getvalue()
