"""The faults and clocks sections of NOTEBOOK.md: their tables and figures.

Called by make_notebook_figures.py (``--faults DIR --clocks DIR`` name the experiment folders
of the real runs; the simulated sweeps are made here, from fixed seeds):

    lclock experiment rates-136 latency-50 loss-10 partition pause-fastest pause-slowest \
        --trials 3 --duration 60 --seed 6000 --output RUNS/faults-real        # ~19 min
    lclock experiment skew-0 skew-10 skew-100 skew-1000 \
        --trials 3 --duration 60 --seed 7000 --output RUNS/clocks-real        # ~13 min
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any

import orjson

from lclock.analysis.analyze import analyze_run
from lclock.experiment.runner import with_presets
from lclock.experiment.stats import fmt_ci, mean_ci
from lclock.settings import SettingsFile, resolve
from lclock.sim.engine import NetworkSettings, run_sim

FAULT_PRESETS = ("rates-136", "latency-10", "latency-50", "latency-200", "loss-10", "loss-30",
                 "partition", "pause-fastest", "pause-slowest")
REAL_FAULTS = ("rates-136", "latency-50", "loss-10", "partition", "pause-fastest", "pause-slowest")
CLOCK_PRESETS = ("skew-0", "skew-1", "skew-10", "skew-100", "skew-1000", "skew-100-drift",
                 "skew-100-bump")
REAL_CLOCKS = ("skew-0", "skew-10", "skew-100", "skew-1000")
SIM_SEEDS = tuple(range(5000, 5010))
DURATION = 60.0


def preset(name: str) -> dict[str, Any]:
    file = SettingsFile()
    with_presets(file)
    return dict(file.experiments[name])


def simulate(name: str, seed: int, tmp: Path) -> dict[str, Any]:
    """One simulated trial of a preset, as ``lclock experiment NAME --sim`` makes it."""
    table = preset(name)
    s = resolve(SettingsFile(), {"duration": DURATION, "seed": seed}, overrides=table,
                overrides_where=f"experiments.{name}")
    run_dir, _, _ = run_sim(s, NetworkSettings(), tmp / name)
    return analyze_run(run_dir)


def real_summaries(root: Path, name: str) -> list[dict[str, Any]]:
    """The analysis of every real trial of experiment ``name`` in an experiment folder."""
    out = []
    for trial in sorted((root / name).glob("trial-*")):
        run_dir = trial if (trial / "run.json").exists() else next(
            (p for p in trial.iterdir() if (p / "run.json").exists()), None)
        if run_dir is not None:
            out.append(analyze_run(run_dir))
    return out


# -- faults ------------------------------------------------------------------------------------


def fault_row(summaries: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Per trial: the slowest (1) and fastest (3) machine of rates 1, 3, 6."""
    cols: dict[str, list[float]] = {k: [] for k in (
        "jump_slow", "jump_fast", "behind_slow", "queue_slow", "dropped", "jump_after")}
    for s in summaries:
        m = {x["id"]: x for x in s["machines"]}
        cols["jump_slow"].append(m[1]["jumps"]["mean"] or 0.0)
        cols["jump_fast"].append(m[3]["jumps"]["mean"] or 0.0)
        cols["behind_slow"].append(s["drift"]["behind_leader"]["1"]["mean"])
        cols["queue_slow"].append(m[1]["queue"]["max"] or 0)
        faults = s.get("faults") or {}
        cols["dropped"].append(sum((faults.get("dropped") or {}).values()))
        after = [a["jump"] for a in faults.get("after", [])]
        cols["jump_after"].append(statistics.mean(after) if after else float("nan"))
    return cols


def _cell(values: list[float], digits: int = 2) -> str:
    vals = [v for v in values if v == v]
    if not vals:
        return "–"
    if len(vals) == 1:
        return f"{vals[0]:.{digits}f}"
    return fmt_ci(mean_ci(vals), digits)


def fault_table(rows: dict[str, dict[str, list[float]]], title: str, tables: list[str]) -> None:
    tables.append(f"## {title}\n")
    tables.append("| preset | slowest: mean jump | fastest: mean jump | slowest behind the leader "
                  "| slowest: longest queue | messages dropped | jump on the first receive "
                  "after a heal or resume |")
    tables.append("|---|---|---|---|---|---|---|")
    for name, c in rows.items():
        tables.append(f"| {name} | {_cell(c['jump_slow'])} | {_cell(c['jump_fast'])} | "
                      f"{_cell(c['behind_slow'], 1)} | {_cell(c['queue_slow'], 1)} | "
                      f"{_cell(c['dropped'], 1)} | {_cell(c['jump_after'], 1)} |")
    tables.append("")


def faults_sim(out: Path, tables: list[str]) -> dict[str, dict[str, list[float]]]:
    rows = {}
    with tempfile.TemporaryDirectory() as d:
        for name in FAULT_PRESETS:
            rows[name] = fault_row([simulate(name, seed, Path(d)) for seed in SIM_SEEDS])
    fault_table(rows, f"Faults, simulated ({len(SIM_SEEDS)} seeds x {DURATION:.0f} s per preset)",
                tables)
    fault_figure(rows, out / "fig-faults.png")
    return rows


def faults_real(root: Path, tables: list[str]) -> None:
    rows = {name: fault_row(real_summaries(root, name)) for name in REAL_FAULTS}
    fault_table(rows, "Faults, real runs (3 trials x 60 s per preset)", tables)


def fault_figure(rows: dict[str, dict[str, list[float]]], path: Path) -> None:
    from make_notebook_figures import DPI, plt

    p = plt()
    names = list(rows)
    fig, axes = p.subplots(1, 3, figsize=(11, 3.2))
    for ax, key, label in zip(axes, ("jump_slow", "behind_slow", "queue_slow"),
                              ("mean jump of the slowest machine", "how far the slowest is behind "
                               "(mean, clock ticks)", "longest queue of the slowest")):
        means = [statistics.mean(rows[n][key]) for n in names]
        ax.bar(range(len(names)), means, color=["#888" if n == "rates-136" else "#4878a8" for n in names])
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
        ax.set_title(label)
    fig.suptitle("What each fault does to machines at rates 1, 3, 6 (simulated, 10 seeds each)")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    p.close(fig)


# -- clocks ------------------------------------------------------------------------------------


def clock_row(summaries: list[dict[str, Any]]) -> dict[str, list[float]]:
    cols: dict[str, list[float]] = {k: [] for k in (
        "pt_msgs", "pt_causal", "lamport_wrong", "hlc_wrong", "l_minus_pt_ms", "bound_ms",
        "max_c", "lamport_on_concurrent")}
    for s in summaries:
        c = s["clocks"]
        cols["pt_msgs"].append(100 * c["messages"]["pt"]["misordered_share"])
        cols["pt_causal"].append(100 * c["sample"]["causal_misordered"]["pt"]["misordered_share"])
        cols["lamport_wrong"].append(c["logical_violations"]["lamport"])
        cols["hlc_wrong"].append(c["logical_violations"]["hlc"])
        cols["l_minus_pt_ms"].append(c["hlc"]["max_l_minus_pt_us"] / 1000)
        bound = c["hlc"]["bound_us"]  # None: no clock plan, every clock right
        cols["bound_ms"].append(bound / 1000 if bound is not None else 0.0)
        cols["max_c"].append(c["hlc"]["max_c"])
        conc = c["sample"]["concurrent_order"]["lamport"]
        cols["lamport_on_concurrent"].append(100 * (conc["before"] + conc["after"]))
    return cols


def clock_table(rows: dict[str, dict[str, list[float]]], title: str, tables: list[str]) -> None:
    tables.append(f"## {title}\n")
    tables.append("| preset | messages that pt orders backwards (%) | causal pairs pt orders wrong (%) "
                  "| ... Lamport, HLC | HLC: largest l − pt (ms) | bound (ms) | largest c "
                  "| concurrent pairs Lamport calls before/after (%) |")
    tables.append("|---|---|---|---|---|---|---|---|")
    for name, c in rows.items():
        wrong = int(sum(c["lamport_wrong"]) + sum(c["hlc_wrong"]))
        tables.append(f"| {name} | {_cell(c['pt_msgs'])} | {_cell(c['pt_causal'])} | {wrong} | "
                      f"{_cell(c['l_minus_pt_ms'], 1)} | {_cell(c['bound_ms'], 1)} | "
                      f"{max(c['max_c']):.0f} | {_cell(c['lamport_on_concurrent'], 1)} |")
    tables.append("")


def clocks_sim(out: Path, tables: list[str]) -> dict[str, dict[str, list[float]]]:
    rows = {}
    with tempfile.TemporaryDirectory() as d:
        for name in CLOCK_PRESETS:
            rows[name] = clock_row([simulate(name, seed, Path(d)) for seed in SIM_SEEDS])
    clock_table(rows, f"Clocks, simulated ({len(SIM_SEEDS)} seeds x {DURATION:.0f} s per preset)",
                tables)
    clock_figure(rows, out / "fig-clocks.png")
    return rows


def clocks_real(root: Path, tables: list[str]) -> None:
    rows = {name: clock_row(real_summaries(root, name)) for name in REAL_CLOCKS}
    clock_table(rows, "Clocks, real runs (3 trials x 60 s per preset)", tables)


def clock_figure(rows: dict[str, dict[str, list[float]]], path: Path) -> None:
    from make_notebook_figures import DPI, plt

    p = plt()
    skews = [n for n in rows if n.removeprefix("skew-").isdigit()]
    x = [max(0.3, float(n.removeprefix("skew-"))) for n in skews]
    fig, (a, b) = p.subplots(1, 2, figsize=(10, 3.2))
    for key, label in (("pt_msgs", "messages received before they were sent, by pt"),
                       ("pt_causal", "causally ordered pairs that pt orders the other way")):
        a.plot(x, [statistics.mean(rows[n][key]) for n in skews], marker="o", label=label)
    a.plot(x, [0 for _ in skews], marker="s", label="the same for Lamport and HLC")
    a.set_xscale("log")
    a.set_xlabel("clock skew (ms; 0 drawn at the left edge)")
    a.set_ylabel("%")
    a.legend()
    a.set_title("Physical timestamps get causality wrong")
    b.plot(x, [max(rows[n]["l_minus_pt_ms"]) for n in skews], marker="o", label="HLC: largest l − pt")
    b.plot(x, [statistics.mean(rows[n]["bound_ms"]) for n in skews], marker="x", linestyle="--",
           label="the bound the clocks imply")
    b.set_xscale("log")
    b.set_yscale("symlog", linthresh=1)
    b.set_xlabel("clock skew (ms)")
    b.set_ylabel("ms")
    b.legend()
    b.set_title("HLC stays within its bound, close to physical time")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    p.close(fig)


def save(rows: dict[str, Any], path: Path) -> None:
    path.write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
