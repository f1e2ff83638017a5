#!/usr/bin/env python3
"""Every figure and table of NOTEBOOK.md, from the experiment folders named on the command line.

    # the data (real runs: about 21 + 16 + 4 minutes)
    lclock experiment --all --trials 5 --duration 60 --seed 1000 --output RUNS/real-four
    lclock experiment --settings docs/notebook-settings.toml ratio2-1-2 ratio2-5-10 \
        diff1-5-6 sat-1-4 sat-2-8 --trials 3 --duration 60 --seed 2000 --output RUNS/own-real
    lclock experiment --settings docs/notebook-settings.toml ten-1-6 ten-5-6 --trials 2 \
        --duration 60 --seed 3000 --output RUNS/ten-real
    lclock experiment rates-136 latency-50 loss-10 partition pause-fastest pause-slowest \
        --trials 3 --duration 60 --seed 6000 --output RUNS/faults-real
    lclock experiment skew-0 skew-10 skew-100 skew-1000 \
        --trials 3 --duration 60 --seed 7000 --output RUNS/clocks-real
    # the figures (docs/*.png), the tables (docs/notebook-tables.md) and docs/data/*.json
    python docs/make_notebook_figures.py --four RUNS/real-four --own RUNS/own-real \
        --ten RUNS/ten-real --faults RUNS/faults-real --clocks RUNS/clocks-real

It also rewrites every table of NOTEBOOK.md that sits between ``<!-- table:KEY -->`` and
``<!-- /table:KEY -->`` (``--no-update-notebook`` to leave it alone), so the notebook's
tables are always the ones these runs give. Simulations made here are deterministic (fixed
seeds), so the simulated numbers come out the same on every machine; the real ones come
from the folders given. The summaries of the real experiments are copied to docs/data/ so
the tables can be checked without the runs. About 40 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import notebook_faults_clocks as fc  # noqa: E402

from lclock.analysis.analyze import compute  # noqa: E402
from lclock.analysis.load import KIND_RECEIVE, load_run  # noqa: E402
from lclock.experiment.report import comparison_figure  # noqa: E402
from lclock.experiment.runner import resummarize  # noqa: E402
from lclock.experiment.stats import fmt_ci, mean_ci  # noqa: E402
from lclock.settings import validate  # noqa: E402
from lclock.sim.engine import NetworkSettings, run_sim  # noqa: E402

DPI = 80


def plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as p

    p.rcParams.update({"font.size": 8, "axes.titlesize": 9, "legend.fontsize": 7})
    return p


def ks(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    fa = np.searchsorted(a, grid, side="right") / len(a)
    fb = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.abs(fa - fb).max())


def ecdf(ax: Any, x: np.ndarray, **kw: Any) -> None:
    xs = np.sort(x)
    ax.step(xs, np.arange(1, len(xs) + 1) / len(xs), where="post", **kw)


def runs_of(root: Path, name: str) -> list[dict[str, Any]]:
    summary = orjson.loads((root / "summary.json").read_bytes())
    (exp,) = [e for e in summary["experiments"] if e["name"] == name]
    return [r for r in exp["runs"] if r["status"] == "completed"]


def samples(run_dir: Path, machine: int) -> dict[str, np.ndarray]:
    """Jumps (on receives), queue length after each event, drift behind the fastest."""
    run = load_run(run_dir)
    _summary, series = compute(run)
    log = run.machines[machine]
    L = log.lclock
    step = np.diff(np.concatenate([[0], L]))
    return {
        "jump": step[log.kind == KIND_RECEIVE],
        "queue": log.qlen.astype(float),
        "drift": series.lag[machine].astype(float),
        "t": np.asarray(log.ts) - run.t0,
        "L": L,
    }


# -- 1. the four experiments ------------------------------------------------------------


def four_experiments(four: Path, out: Path, tables: list[str]) -> dict[str, Any]:
    summary = resummarize(four)
    comparison_figure(
        summary,
        out / "fig-four-experiments.png",
        title="Real runs: 4 experiments × 5 trials × 60 s; bars = mean, whiskers = 95% interval, "
        "dots = trials",
    )
    tables.append("## The four experiments (real runs)\n")
    tables.append("| experiment | machine | rate | mean jump | max jump | mean drift | max drift | "
                  "max queue | skipped values |")
    tables.append("|---|---|---|---|---|---|---|---|---|")
    for e in summary["experiments"]:
        for role in ("slowest", "fastest"):
            rates = ",".join(str(r[role]["rate"]) for r in e["runs"] if role in r)
            m = e[role]
            tables.append(
                f"| {e['name']} | {role} | {rates} | {fmt_ci(m['mean_jump'])} | "
                f"{fmt_ci(m['max_jump'], 1)} | {fmt_ci(m['drift_mean'], 1)} | "
                f"{fmt_ci(m['drift_max'], 1)} | {fmt_ci(m['max_queue'], 1)} | "
                f"{fmt_ci(m['gap_fraction'])} |"
            )
    tables.append("")
    tables.append("| experiment | trial rates | mean spread | max spread | trials |")
    tables.append("|---|---|---|---|---|")
    for e in summary["experiments"]:
        rates = "; ".join(",".join(map(str, r["rates"])) for r in e["runs"])
        tables.append(
            f"| {e['name']} | {rates} | {fmt_ci(e['run']['spread_mean'], 1)} | "
            f"{fmt_ci(e['run']['spread_max'], 1)} | {e['completed']}/{e['trials']} |"
        )
    tables.append("")
    return summary


def queue_figure(four: Path, out: Path) -> None:
    """Queue length of each trial's slowest machine over time: baseline against
    low-internal, which ran the same rates trial by trial."""
    p = plt()
    fig, axes = p.subplots(1, 2, figsize=(9, 2.8), dpi=DPI, sharey=True)
    colors = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e"]
    for ax, name in zip(axes, ("baseline", "low-internal"), strict=True):
        for k, r in enumerate(runs_of(four, name)):
            slow = r["slowest"]["id"]
            run = load_run(four / r["run_dir"])
            log = run.machines[slow]
            ax.plot(np.asarray(log.ts) - run.t0, log.qlen, color=colors[k % len(colors)], lw=1.1,
                    label=f"rates {','.join(map(str, r['rates']))} (machine {slow})")
        ax.set_title(f"{name}: queue of the slowest machine")
        ax.set_xlabel("seconds since t0")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
    axes[0].set_ylabel("queue length after each event (messages)")
    fig.tight_layout()
    fig.savefig(out / "fig-queues.png")
    p.close(fig)


def queue_theory_table(four: Path, tables: list[str]) -> None:
    """Measured queue growth of each trial's slowest machine against the queueing theory
    of ``lclock analyze`` (arrival rate minus tick rate, from the rates and the die)."""
    from lclock.analysis.analyze import analyze_run

    tables.append("## Queue growth of the slowest machine: measured against the theory\n")
    tables.append("| experiment | trial rates | slowest | theory (msg/s) | measured slope (msg/s) "
                  "| final queue |")
    tables.append("|---|---|---|---|---|---|")
    summary = orjson.loads((four / "summary.json").read_bytes())
    for e in summary["experiments"]:
        if e["name"] not in ("baseline", "low-internal"):
            continue
        for r in e["runs"]:
            if r["status"] != "completed":
                continue
            a = analyze_run(four / r["run_dir"])
            (m,) = [x for x in a["machines"] if x["id"] == r["slowest"]["id"]]
            th = (m.get("theory") or {}).get("growth_per_s")
            tables.append(
                f"| {e['name']} | {','.join(map(str, r['rates']))} | machine {m['id']} "
                f"(rate {m['rate']}) | {'–' if th is None else f'{th:.2f}'} | "
                f"{_z(m['queue']['growth_per_s']):.2f} | {m['queue']['final']} |"
            )
    tables.append("")


def _z(x: float) -> float:
    """No "-0.00" in a table: a slope that rounds to zero is zero."""
    return 0.0 if abs(x) < 0.005 else x


def timing_table(four: Path, tables: list[str]) -> None:
    """What the real runtime measured: message delay (send to queue) and tick lateness."""
    lat50, lat99, late50, late99 = [], [], [], []
    for e in orjson.loads((four / "summary.json").read_bytes())["experiments"]:
        for r in e["runs"]:
            if r["status"] != "completed":
                continue
            meta = orjson.loads((four / r["run_dir"] / "run.json").read_bytes())
            for m in meta["machines"]:
                if m.get("latency_us", {}).get("n"):
                    lat50.append(m["latency_us"]["p50"])
                    lat99.append(m["latency_us"]["p99"])
                if m.get("lateness_ms"):
                    late50.append(m["lateness_ms"]["p50"])
                    late99.append(m["lateness_ms"]["p99"])
    tables.append("## Timing measured by the real runtime (all machines of the four experiments)\n")
    tables.append("| quantity | median over machines | range over machines |")
    tables.append("|---|---|---|")
    for label, xs, unit in (
        ("message delay, p50 (send to receiver's queue)", lat50, "µs"),
        ("message delay, p99", lat99, "µs"),
        ("tick lateness, p50 (run time minus deadline)", late50, "ms"),
        ("tick lateness, p99", late99, "ms"),
    ):
        if xs:
            tables.append(f"| {label} | {statistics.median(xs):.0f} {unit} | "
                          f"{min(xs):.0f}–{max(xs):.0f} {unit} |"
                          if unit == "µs" else
                          f"| {label} | {statistics.median(xs):.2f} {unit} | "
                          f"{min(xs):.2f}–{max(xs):.2f} {unit} |")
    tables.append("")


# -- 2. simulator against real runs -----------------------------------------------------


def trial_settings(meta: dict[str, Any], seed: int | None = None) -> Any:
    """The settings a real trial ran with, for the simulator (same seed unless given)."""
    s = meta["settings"]
    return validate(
        {"machines": s["machines"], "duration": s["duration"],
         "seed": meta["seed"] if seed is None else seed,
         "rate_min": s["rate_min"], "rate_max": s["rate_max"],
         "rates": tuple(s["rates"]) if s.get("rates") else None,
         "dice_sides": s["dice_sides"]},
        {},
    )  # fmt: skip


def all_runs(four: Path) -> list[tuple[str, dict[str, Any]]]:
    summary = orjson.loads((four / "summary.json").read_bytes())
    return [(e["name"], r) for e in summary["experiments"] for r in e["runs"]
            if r["status"] == "completed"]  # fmt: skip


QUANTITIES = (  # (role, key, label)
    ("slowest", "jump", "slowest machine: jump on a receive"),
    ("slowest", "queue", "slowest machine: queue length"),
    ("slowest", "drift", "slowest machine: drift behind the fastest"),
    ("fastest", "jump", "fastest machine: jump on a receive"),
    ("fastest", "queue", "fastest machine: queue length"),
)


def sim_vs_real(four: Path, out: Path, tables: list[str]) -> None:
    """Every real trial of the four experiments against simulations of the same seed and
    settings: with the default environment, and with ticks exactly on time (no jitter)."""
    p = plt()
    pools: dict[str, dict[tuple[str, str], list[np.ndarray]]] = {
        "real": {}, "sim": {}, "nojit": {}
    }  # fmt: skip
    example = None
    same: list[tuple[dict[str, Any], float, float | None]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, r in all_runs(four):
            run_dir = four / r["run_dir"]
            meta = orjson.loads((run_dir / "run.json").read_bytes())
            settings = trial_settings(meta)
            sim_dir, _, _ = run_sim(settings, NetworkSettings(), Path(tmp) / "sim" / name)
            nojit_dir, _, _ = run_sim(settings, NetworkSettings(jitter=0.0),
                                      Path(tmp) / "nojit" / name)  # fmt: skip
            if name == "baseline":
                same.append((r, *identical_prefix(run_dir, sim_dir)))
            for kind, d in (("real", run_dir), ("sim", sim_dir), ("nojit", nojit_dir)):
                for role in ("slowest", "fastest"):
                    smp = samples(d, r[role]["id"])
                    for key in ("jump", "queue", "drift"):
                        pools[kind].setdefault((role, key), []).append(smp[key])
            spread = max(r["rates"]) / min(r["rates"])
            if name == "baseline" and (example is None or spread > example[0]):
                ids = range(1, len(r["rates"]) + 1)
                example = (spread, r, {i: samples(run_dir, i) for i in ids},
                           {i: samples(sim_dir, i) for i in ids})  # fmt: skip
    cat = {k: {q: np.concatenate(v) for q, v in d.items()} for k, d in pools.items()}
    fig, axes = p.subplots(1, 4, figsize=(11.5, 2.9), dpi=DPI)
    assert example is not None
    _, r, ex_real, ex_sim = example
    ax = axes[0]
    colors = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a"]
    for i in ex_real:
        c = colors[(i - 1) % len(colors)]
        ax.plot(ex_real[i]["t"], ex_real[i]["L"], color=c, lw=1.2,
                label=f"machine {i} (rate {r['rates'][i - 1]})")
        ax.plot(ex_sim[i]["t"], ex_sim[i]["L"], color=c, lw=1, ls="--")
    ax.set_title(f"Lamport clocks, seed {r['seed']}: real —, sim - -")
    ax.set_xlabel("seconds since t0")
    ax.set_ylabel("Lamport clock")
    ax.legend(loc="upper left")
    for ax, (role, key), xlabel in zip(
        axes[1:], (("slowest", "jump"), ("fastest", "jump"), ("slowest", "drift")),
        ("jump on a receive (clock step)", "jump on a receive (clock step)",
         "drift behind the fastest (clock ticks)"),
        strict=True,
    ):
        ra, sa, na = cat["real"][(role, key)], cat["sim"][(role, key)], cat["nojit"][(role, key)]
        ecdf(ax, ra, color="k", lw=1.3, label=f"real (n={len(ra)})")
        ecdf(ax, sa, color="#d95f02", lw=1.1, ls="--", label=f"sim, D={ks(ra, sa):.3f}")
        ecdf(ax, na, color="#7570b3", lw=1.0, ls=":", label=f"sim, no jitter, D={ks(ra, na):.3f}")
        ax.set_title(f"{role} machine, 20 real trials")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("fraction ≤ x")
        ax.legend(loc="lower right")
        ax.grid(alpha=0.3)
        if key == "jump":
            ax.set_xlim(0.5, max(8.5, float(np.percentile(ra, 99)) + 1))
    fig.tight_layout()
    fig.savefig(out / "fig-sim-vs-real.png")
    p.close(fig)
    tables.append("## Simulator against real runs (all 20 trials of the four experiments, pooled)\n")
    tables.append("| quantity | samples | mean real | mean sim | KS D | mean sim, no jitter | "
                  "KS D, no jitter |")
    tables.append("|---|---|---|---|---|---|---|")
    for role, key, label in QUANTITIES:
        ra, sa, na = cat["real"][(role, key)], cat["sim"][(role, key)], cat["nojit"][(role, key)]
        tables.append(f"| {label} | {len(ra)} | {ra.mean():.2f} | {sa.mean():.2f} | "
                      f"{ks(ra, sa):.3f} | {na.mean():.2f} | {ks(ra, na):.3f} |")
    tables.append("")
    tables.append("## Real run and simulation of the same seed, event by event\n")
    tables.append("| trial | rates | tick events identical (event, Lamport clock) | "
                  "first difference at |")
    tables.append("|---|---|---|---|")
    for r, frac, first in same:
        tables.append(f"| {r['trial']} (seed {r['seed']}) | {','.join(map(str, r['rates']))} | "
                      f"{frac:.1%} | {'none' if first is None else f'{first:.1f} s'} |")
    tables.append("")


def races(run_dir: Path) -> tuple[int, int]:
    """Same-instant races in a run: a machine sends to R at the deadline of one of R's own
    ticks. Returns (message first: R handled it on that very tick, tick first: R rolled the
    die on it). Races hidden by an older message in R's queue are not counted."""
    meta = orjson.loads((run_dir / "run.json").read_bytes())
    rates = {m["id"]: m["rate"] for m in meta["machines"]}
    ticks: dict[int, dict[int, dict[str, Any]]] = {}
    for i in rates:
        with open(run_dir / f"machine-{i}.jsonl", "rb") as fh:
            ticks[i] = {e["tick"]: e for e in map(orjson.loads, fh) if "tick" in e}
    won = lost = 0
    for s, evs in ticks.items():
        for k, e in evs.items():
            if e["event"] != "send":
                continue
            for r in e["to"]:
                num = (k - 1) * rates[r]  # R's tick kr has the same deadline iff this divides
                if num % rates[s]:
                    continue
                er = ticks[r].get(num // rates[s] + 1)
                if er is None:
                    continue
                if er["event"] != "receive":
                    lost += 1
                elif er["from"] == s and er["msg_lclock"] == e["lclock"]:
                    won += 1
    return won, lost


JITTERS = (0.0, 0.0003, 0.0007, 0.0015)


def race_table(four: Path, tables: list[str]) -> None:
    """How often a message sent at the instant of the receiver's own tick is handled on that
    tick: real runs against the simulator at several jitters (the calibration of the
    default). Simulated: each real trial's settings with 3 seeds (seed, +1000, +2000)."""
    runs = all_runs(four)
    w = l_ = 0
    for _name, r in runs:
        a, b = races(four / r["run_dir"])
        w, l_ = w + a, l_ + b
    tables.append("## Same-instant races: real runs against the simulator's jitter\n")
    tables.append("| source | races | message first | fraction |")
    tables.append("|---|---|---|---|")
    tables.append(f"| real runs (20 trials) | {w + l_} | {w} | {w / max(1, w + l_):.3f} |")
    with tempfile.TemporaryDirectory() as tmp:
        for jitter in JITTERS:
            w = l_ = 0
            for rep in range(3):
                for name, r in runs:
                    meta = orjson.loads((four / r["run_dir"] / "run.json").read_bytes())
                    st = trial_settings(meta, seed=meta["seed"] + 1000 * rep)
                    rd, _, _ = run_sim(st, NetworkSettings(jitter=jitter), Path(tmp) / name)
                    a, b = races(rd)
                    w, l_ = w + a, l_ + b
                    shutil.rmtree(rd)
            label = "sim, jitter 0 (ticks exactly on time)" if jitter == 0 else (
                f"sim, jitter {jitter * 1000:g} ms" + (" (default)" if jitter == NetworkSettings().jitter else ""))
            tables.append(f"| {label} | {w + l_} | {w} | {w / max(1, w + l_):.3f} |")
    tables.append("")


def identical_prefix(real_dir: Path, sim_dir: Path) -> tuple[float, float | None]:
    """Share of tick events with the same (event, lclock) in both, and the first time
    (seconds since t0, earliest over machines) at which a machine's events differ."""
    real, sim = load_run(real_dir), load_run(sim_dir)
    equal = total = 0
    first: float | None = None
    for i, a in real.machines.items():
        b = sim.machines[i]
        n = min(a.events, b.events)
        same = (a.kind[:n] == b.kind[:n]) & (a.lclock[:n] == b.lclock[:n])
        equal += int(same.sum())
        total += max(a.events, b.events)
        bad = np.flatnonzero(~same)
        if bad.size:
            t = float(a.ts[bad[0]] - real.t0)
            first = t if first is None else min(first, t)
    return equal / total if total else 1.0, first


# -- 3. own experiment: ratio or difference ---------------------------------------------

PAIRS = [(1, 2), (2, 4), (3, 6), (5, 10), (1, 3), (2, 6), (3, 9), (2, 3), (3, 4), (4, 5),
         (5, 6), (9, 10), (1, 4), (2, 8)]  # fmt: skip
SWEEP_SEEDS = range(10)
SWEEP_DURATION = 600.0


def sweep(n_fast: int) -> list[dict[str, Any]]:
    """Simulate each pair (1 slow + n_fast fast machines): slow machine's drift and queue."""
    from lclock.experiment.metrics import run_metrics

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for slow, fast in PAIRS:
            drift, growth, jump = [], [], []
            for seed in SWEEP_SEEDS:
                s = validate({"rates": (slow,) + (fast,) * n_fast, "duration": SWEEP_DURATION,
                              "seed": seed, "vector_clocks": False}, {})  # fmt: skip
                rd, _, _ = run_sim(s, NetworkSettings(), Path(tmp))
                m = run_metrics(rd)["machines"][0]
                drift.append(m["drift_mean"])
                growth.append(m["queue_growth"])
                jump.append(m["mean_jump"])
                shutil.rmtree(rd)
            rows.append({"slow": slow, "fast": fast, "drift": mean_ci(drift),
                         "growth": mean_ci(growth), "jump": mean_ci(jump)})  # fmt: skip
    return rows


def ratio_vs_difference(out: Path, tables: list[str]) -> None:
    p = plt()
    fig, axes = p.subplots(1, 3, figsize=(12, 3.3), dpi=DPI)
    tables.append(f"## Own experiment: drift of the slow machine, simulated ({len(SWEEP_SEEDS)} "
                  f"seeds × {SWEEP_DURATION:g} s per point)\n")
    tables.append("| machines | rates | ratio | difference | mean drift | mean jump | "
                  "queue growth (msg/s) |")
    tables.append("|---|---|---|---|---|---|---|")
    for n_fast, marker, label in ((1, "o", "2 machines: slow, fast"),
                                  (2, "s", "3 machines: slow, fast, fast")):
        rows = sweep(n_fast)
        ratio = [r["fast"] / r["slow"] for r in rows]
        diff = [r["fast"] - r["slow"] for r in rows]
        drift = [r["drift"]["mean"] for r in rows]
        scale = [r["slow"] for r in rows]
        for ax, x in ((axes[0], ratio), (axes[1], diff)):
            sc = ax.scatter(x, drift, c=scale, cmap="viridis", marker=marker, s=28,
                            vmin=1, vmax=9, label=label, edgecolors="k", linewidths=0.4)
        growth = [r["growth"]["mean"] / r["slow"] for r in rows]
        axes[2].scatter(ratio, growth, c=scale, cmap="viridis", marker=marker, s=28, vmin=1,
                        vmax=9, label=label, edgecolors="k", linewidths=0.4)
        for r in rows:
            tables.append(
                f"| {1 + n_fast} | {r['slow']},{','.join([str(r['fast'])] * n_fast)} | "
                f"{r['fast'] / r['slow']:.2f} | {r['fast'] - r['slow']} | "
                f"{fmt_ci(r['drift'], 1)} | {fmt_ci(r['jump'])} | {fmt_ci(r['growth'], 3)} |"
            )
    axes[0].set_xlabel("ratio fast rate / slow rate")
    axes[1].set_xlabel("difference fast rate − slow rate (ticks/s)")
    for ax in axes[:2]:
        ax.set_ylabel("slow machine's mean drift (clock ticks)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    for ax in (axes[0], axes[2]):
        for crit, style in ((10 / 3, ":"), (3.0, "--")):
            ax.axvline(crit, color="grey", ls=style, lw=0.8)
    axes[2].text(3.02, 0.3, "critical ratio:\n-- 3 machines (3)\n·· 2 machines (10/3)",
                 fontsize=7, ha="right")
    axes[0].set_title("against the ratio: one curve (below saturation)")
    axes[1].set_title("against the difference: no pattern")
    axes[2].set_xlabel("ratio fast rate / slow rate")
    axes[2].set_ylabel("slow queue growth (msg per slow tick)")
    axes[2].set_title("past a critical ratio the slow queue grows")
    axes[2].grid(alpha=0.3)
    axes[0].legend(loc="upper left")
    fig.subplots_adjust(wspace=0.32)
    cb = fig.colorbar(sc, ax=axes, fraction=0.02, pad=0.01)
    cb.set_label("slow machine's rate (ticks/s)")
    fig.savefig(out / "fig-ratio-vs-difference.png", bbox_inches="tight")
    p.close(fig)
    tables.append("")


def timing_sensitivity(tables: list[str]) -> None:
    """Simulated: how much the network delay (and the order of events at the same instant)
    changes the slow machine's numbers. 10 seeds x 300 s per row."""
    from lclock.experiment.metrics import run_metrics

    nets = [
        ("on time, delay 0: same-instant ticks in id order", NetworkSettings("constant", 0.0, jitter=0.0)),
        ("on time, delay 0.2 ms: same-instant tick first", NetworkSettings(jitter=0.0)),
        ("default: jitter 0.7 ms, delay 0.2 ms", NetworkSettings()),
        ("jitter 0.7 ms, delay 20 ms", NetworkSettings("exponential", 0.02)),
        ("jitter 0.7 ms, delay 100 ms", NetworkSettings("exponential", 0.1)),
        ("jitter 0.7 ms, delay 500 ms", NetworkSettings("exponential", 0.5)),
    ]
    tables.append("## Effect of timing: tick jitter and network delay, simulated (10 seeds × 300 s per row)\n")
    tables.append("| rates | timing | slow: mean jump | slow: mean drift | slow: max queue |")
    tables.append("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for rates in ((1, 3, 6), (2, 3, 4), (5, 6, 6)):
            for label, net in nets:
                acc: dict[str, list[float]] = {"mean_jump": [], "drift_mean": [], "max_queue": []}
                for seed in range(10):
                    st = validate({"rates": rates, "duration": 300.0, "seed": seed,
                                   "vector_clocks": False}, {})  # fmt: skip
                    rd, _, _ = run_sim(st, net, Path(tmp))
                    m = run_metrics(rd)["machines"][0]
                    for k in acc:
                        acc[k].append(m[k])
                    shutil.rmtree(rd)
                tables.append(
                    f"| {','.join(map(str, rates))} | {label} | {fmt_ci(mean_ci(acc['mean_jump']))} "
                    f"| {fmt_ci(mean_ci(acc['drift_mean']))} | {fmt_ci(mean_ci(acc['max_queue']), 1)} |"
                )
    tables.append("")


def own_real(own: Path, tables: list[str]) -> None:
    own_table(resummarize(own), "## Own experiment, real runs\n", tables)
    # The same experiment simulated, with the same seeds (trial k: 2000 + k - 1).
    meta = orjson.loads((own / "experiment.json").read_bytes())
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "own-sim"
        subprocess.run(
            [sys.executable, "-m", "lclock", "experiment", "--settings",
             str(HERE / "notebook-settings.toml"), *meta["names"], "--sim", "--trials",
             str(max(meta["trials"].values())), "--duration", "60", "--seed",
             str(meta["base_seed"]), "--output", str(out), "--quiet", "--no-plots"],
            check=True, cwd=HERE.parent,
        )  # fmt: skip
        own_table(orjson.loads((out / "summary.json").read_bytes()),
                  "## Own experiment, the same trials simulated\n", tables)


def critical_ratio(n: int, sides: int = 10) -> float:
    """The fast/slow rate ratio above which one slow machine among n - 1 equally fast ones
    saturates (its arrival rate exceeds its tick rate).

    Exact for the model: with the slow machine saturated (it never rolls), the fast ones
    roll at rates d solving d = r - K_ff^T d (K[i, j] = the share of i's rolls that reach j),
    and the slow one receives lambda = sum_j K[j, slow] d_j, which is proportional to the
    fast rate. (The fixed-point iteration of ``lclock analyze`` does not converge when the
    fan-out (n + 1) / sides is large, so it is not used here.)
    """
    from lclock.analysis.analyze import peer_faces

    k = peer_faces(n) / sides
    fast = np.arange(1, n)
    kff = k[np.ix_(fast, fast)]
    d = np.linalg.solve(np.eye(n - 1) + kff.T, np.ones(n - 1))
    lam_slow = float(d @ k[fast, 0])
    return 1.0 / lam_slow


def many_machines(ten: Path | None, tables: list[str]) -> None:
    """What more machines change: the critical ratio, and simulated (and real) runs."""
    from lclock.analysis.analyze import analyze_run

    tables.append("## Many machines: the critical ratio\n")
    tables.append("| machines | critical ratio, 10-sided die | critical ratio, 5-sided die |")
    tables.append("|---|---|---|")
    for n in (2, 3, 5, 10, 20, 64):
        tables.append(f"| {n} | {critical_ratio(n):.2f} | {critical_ratio(n, 5):.2f} |")
    tables.append("")

    def row(label: str, run_dirs: list[Path]) -> str:
        sat, spread, maxq, recv = [], [], [], []
        for rd in run_dirs:
            a = analyze_run(rd)
            ms = a["machines"]
            sat.append(sum(1 for m in ms if (m["queue"]["growth_per_s"] or 0) > 0.05) / len(ms))
            spread.append(a["drift"]["mean"])
            maxq.append(max(m["queue"]["max"] for m in ms))
            recv.append(statistics.mean(m["mix"]["receive_fraction"] for m in ms))
        return (f"| {label} | {len(run_dirs)} | {fmt_ci(mean_ci(sat))} | {fmt_ci(mean_ci(recv))} | "
                f"{fmt_ci(mean_ci(spread), 1)} | {fmt_ci(mean_ci(maxq), 1)} |")

    if ten is None:  # the notebook's table has real rows: leave it as it is
        return
    tables.append("## Many machines: simulated and real runs of 60 s\n")
    tables.append("| runs | trials | share of machines whose queue grows (> 0.05 msg/s) | "
                  "share of ticks that are receives | mean spread | longest queue |")
    tables.append("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for n, lo, hi in ((3, 1, 6), (10, 1, 6), (10, 5, 6), (64, 1, 6), (64, 5, 6)):
            dirs = []
            for seed in range(5):
                st = validate({"machines": n, "rate_min": lo, "rate_max": hi, "duration": 60.0,
                               "seed": 3000 + seed, "vector_clocks": n <= 10}, {})  # fmt: skip
                rd, _, _ = run_sim(st, NetworkSettings(), Path(tmp) / f"{n}-{lo}")
                dirs.append(rd)
            tables.append(row(f"sim: {n} machines, rates {lo}..{hi}", dirs))
    if ten is not None:  # always, here
        summary = orjson.loads((ten / "summary.json").read_bytes())
        for e in summary["experiments"]:
            dirs = [ten / r["run_dir"] for r in e["runs"] if r["status"] == "completed"]
            st = e["settings"]
            tables.append(row(f"real: {st['machines']} machines, rates "
                              f"{st['rate_min']}..{st['rate_max']}", dirs))  # fmt: skip
    tables.append("")


def own_table(summary: dict[str, Any], title: str, tables: list[str]) -> None:
    tables.append(title)
    tables.append("| experiment | rates | trials | slow: mean drift | slow: max drift | "
                  "slow: mean jump | slow: max queue | slow: queue growth (msg/s) |")
    tables.append("|---|---|---|---|---|---|---|---|")
    for e in summary["experiments"]:
        m = e["slowest"]
        tables.append(
            f"| {e['name']} | {','.join(map(str, e['settings']['rates']))} | "
            f"{e['completed']}/{e['trials']} | {fmt_ci(m['drift_mean'], 1)} | "
            f"{fmt_ci(m['drift_max'], 1)} | {fmt_ci(m['mean_jump'])} | "
            f"{fmt_ci(m['max_queue'], 1)} | {fmt_ci(m['queue_growth'], 3)} |"
        )
    tables.append("")


SECTION_KEYS = {
    "The four experiments": "four",
    "Queue growth of the slowest": "queue-theory",
    "Timing measured": "timing",
    "Simulator against real runs": "sim-vs-real",
    "Same-instant races": "races",
    "Real run and simulation of the same seed": "same-seed",
    "Own experiment: drift": "ratio-sim",
    "Effect of timing": "delay",
    "Own experiment, real runs": "own-real",
    "Own experiment, the same trials simulated": "own-sim",
    "Many machines: the critical ratio": "critical",
    "Many machines: simulated and real": "many",
    "Faults, simulated": "faults-sim",
    "Faults, real runs": "faults-real",
    "Clocks, simulated": "clocks-sim",
    "Clocks, real runs": "clocks-real",
}


def update_notebook(tables: list[str], notebook: Path) -> list[str]:
    """Replace every ``<!-- table:KEY -->`` ... ``<!-- /table:KEY -->`` block of the notebook
    with the freshly computed table, so the notebook cannot go stale. Returns the keys."""
    import re

    sections: dict[str, list[str]] = {}
    key = None
    for line in tables:
        if line.startswith("## "):
            key = next((k for h, k in SECTION_KEYS.items() if line[3:].startswith(h)), None)
            if key:
                sections[key] = []
            continue
        if key:
            sections[key].append(line)
    text = notebook.read_text(encoding="utf-8")
    done = []
    for key, lines in sections.items():
        body = "\n".join(lines).strip("\n")
        pattern = re.compile(rf"(<!-- table:{re.escape(key)} -->\n)(?:.*?\n)?(<!-- /table:{re.escape(key)} -->)",
                             re.S)  # fmt: skip
        text, n = pattern.subn(lambda m, b=body: m.group(1) + b + "\n" + m.group(2), text)
        if n:
            done.append(key)
    notebook.write_text(text, encoding="utf-8")
    return done


def sections(lines: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    key = None
    for line in lines:
        if line.startswith("## "):
            key = line
            out[key] = []
        elif key is not None:
            out[key].append(line)
    return out


def keep_earlier_tables(tables: list[str], path: Path) -> list[str]:
    """Tables of real runs not given this time (no --own, no --ten) stay as they were."""
    if not path.exists():
        return tables
    tables = "\n".join(tables).split("\n")  # some entries hold two lines
    now = sections(tables)
    kept = [line for head, body in sections(path.read_text(encoding="utf-8").splitlines()).items()
            if head not in now for line in (head, *body)]
    return tables + kept


def save_data(root: Path, name: str, out: Path) -> None:
    data = out / "data"
    data.mkdir(exist_ok=True)
    shutil.copyfile(root / "summary.json", data / f"{name}-summary.json")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--four", type=Path, help="experiment folder of the four experiments (real)")
    ap.add_argument("--own", type=Path, help="experiment folder of docs/notebook-settings.toml")
    ap.add_argument("--ten", type=Path, help="experiment folder of ten-1-6 and ten-5-6 (real)")
    ap.add_argument("--faults", type=Path, help="experiment folder of the fault presets (real)")
    ap.add_argument("--clocks", type=Path, help="experiment folder of the clock presets (real)")
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--no-update-notebook", dest="update_notebook", action="store_false",
                    help="do not rewrite the tables between the markers of NOTEBOOK.md")
    a = ap.parse_args()
    tables: list[str] = ["# Tables of NOTEBOOK.md", "",
                         "Written by `python docs/make_notebook_figures.py` (see its docstring).", ""]
    if a.four:
        four_experiments(a.four, a.out, tables)
        queue_figure(a.four, a.out)
        queue_theory_table(a.four, tables)
        timing_table(a.four, tables)
        race_table(a.four, tables)
        sim_vs_real(a.four, a.out, tables)
        save_data(a.four, "real-four", a.out)
    timing_sensitivity(tables)
    ratio_vs_difference(a.out, tables)
    if a.own:
        own_real(a.own, tables)
        save_data(a.own, "own-real", a.out)
    many_machines(a.ten, tables)
    if a.ten:
        save_data(a.ten, "ten-real", a.out)
    fc.faults_sim(a.out, tables)
    if a.faults:
        fc.faults_real(a.faults, tables)
        save_data(a.faults, "faults-real", a.out)
    fc.clocks_sim(a.out, tables)
    if a.clocks:
        fc.clocks_real(a.clocks, tables)
        save_data(a.clocks, "clocks-real", a.out)
    tables = keep_earlier_tables(tables, a.out / "notebook-tables.md")
    (a.out / "notebook-tables.md").write_text("\n".join(tables) + "\n", encoding="utf-8")
    print("\n".join(tables))
    notebook = HERE.parent / "NOTEBOOK.md"
    if a.update_notebook and notebook.exists():
        keys = update_notebook(tables, notebook)
        print(f"updated in {notebook.name}: {', '.join(keys) or 'nothing'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
