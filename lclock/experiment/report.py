"""summary.md and the comparison plots of an experiment folder, from summary.json alone.

Both are pure functions of summary.json, so ``lclock experiment --summarize DIR`` (and the
notebook's figure script) can redraw them without running anything again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lclock.experiment.stats import fmt_ci

LABELS = {
    "mean_jump": "mean jump",
    "max_jump": "max jump",
    "drift_mean": "mean drift",
    "drift_max": "max drift",
    "max_queue": "max queue",
    "gap_fraction": "skipped values",
    "queue_growth": "queue growth",
    "spread_mean": "mean spread",
    "spread_max": "max spread",
}
UNITS = {
    "mean_jump": "clock step on a receive",
    "max_jump": "clock step on a receive",
    "drift_mean": "ticks behind the fastest machine",
    "drift_max": "ticks behind the fastest machine",
    "max_queue": "messages",
    "gap_fraction": "fraction of clock values",
    "queue_growth": "messages per second",
    "spread_mean": "Lamport ticks",
    "spread_max": "Lamport ticks",
}


def _settings_text(s: dict[str, Any]) -> str:
    rates = (
        "rates " + ",".join(map(str, s["rates"]))
        if s.get("rates")
        else f"rates {s['rate_min']}..{s['rate_max']}"
    )
    return f"{s['machines']} machines, {rates}, {s['dice_sides']}-sided die, {s['duration']:g} s"


def summary_markdown(summary: dict[str, Any], figures: list[str] | None = None) -> str:
    """The experiment's results as markdown: settings, one table per role, the runs."""
    exps = summary["experiments"]
    lines = [
        f"# Experiment {summary.get('name', '')}".rstrip(),
        "",
        f"- mode: **{summary.get('mode')}**"
        + (
            f" (network delay {summary['sim']['delay']}, mean {summary['sim']['delay_mean'] * 1e6:g} µs)"
            if summary.get("sim")
            else ""
        ),
        f"- status: {summary.get('status')}; base seed {summary.get('base_seed')} "
        "(trial k uses seed base + k - 1)",
        f"- command: `{' '.join(summary.get('command', []))}`",
        "",
        "Values are the mean across trials ± the half-width of its 95% confidence interval "
        "(Student's t), as `lclock analyze` computes them for each run. *jump*: the step "
        "L - L_prev of a machine's Lamport clock on a receive (1 = no jump). *drift*: how far "
        "its Lamport clock is behind the fastest machine's at the same time (0 for the fastest "
        "itself). *max queue*: the longest its message queue was after an event. *skipped "
        "values*: the share of clock values the machine never used.",
        "",
        "| experiment | settings | trials |",
        "|---|---|---|",
    ]
    for e in exps:
        lines.append(
            f"| {e['name']} | {_settings_text(e['settings'])}"
            + (f" — {e['description']}" if e.get("description") else "")
            + f" | {e['completed']}/{e['trials']} |"
        )
    metrics = ("mean_jump", "max_jump", "drift_mean", "drift_max", "max_queue", "gap_fraction")
    for role in ("slowest", "fastest"):
        lines += ["", f"## The {role} machine of each trial", ""]
        lines.append("| experiment | rate | " + " | ".join(LABELS[m] for m in metrics) + " |")
        lines.append("|---" * (len(metrics) + 2) + "|")
        for e in exps:
            rates = sorted({r[role]["rate"] for r in e["runs"] if role in r})
            cells = [fmt_ci(e[role][m], 1 if m in ("max_jump", "drift_max", "max_queue") else 2)
                     for m in metrics]
            lines.append(
                f"| {e['name']} | {','.join(map(str, rates)) or '–'} | " + " | ".join(cells) + " |"
            )
    lines += ["", "## Spread of the Lamport clocks (highest minus lowest at the same moment)", ""]
    lines += ["| experiment | mean spread | max spread |", "|---|---|---|"]
    for e in exps:
        lines.append(
            f"| {e['name']} | {fmt_ci(e['run']['spread_mean'])} | {fmt_ci(e['run']['spread_max'], 1)} |"
        )
    if figures:
        lines += ["", "## Figures", ""]
        lines += [f"![{f}]({f})" for f in figures]
    lines += ["", "## Runs", "", "| experiment | trial | seed | rates | status | run folder |",
              "|---|---|---|---|---|---|"]
    for e in exps:
        for r in e["runs"]:
            lines.append(
                f"| {e['name']} | {r['trial']} | {r['seed']} | {','.join(map(str, r['rates']))} | "
                f"{r['status']}{' (' + r['error'] + ')' if r.get('error') else ''} | "
                f"{r['run_dir'] or '–'} |"
            )
    return "\n".join(lines) + "\n"


def comparison_figure(summary: dict[str, Any], path: Path, title: str | None = None) -> Path:
    """Four panels (mean jump, max jump, mean drift, max queue): per experiment, the slowest
    and the fastest machine, the mean with its 95% interval and every trial as a dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    exps = summary["experiments"]
    names = [e["name"] for e in exps]
    metrics = ("mean_jump", "max_jump", "drift_mean", "max_queue")
    fig, axes = plt.subplots(2, 2, figsize=(9, 6.2), dpi=80)
    colors = {"slowest": "#d95f02", "fastest": "#1b9e77"}
    width = 0.38
    for ax, metric in zip(axes.flat, metrics, strict=True):
        negative = False
        for j, role in enumerate(("slowest", "fastest")):
            xs = [i + (j - 0.5) * width for i in range(len(exps))]
            means = [e[role][metric]["mean"] or 0 for e in exps]
            halves = [e[role][metric]["half"] or 0 for e in exps]
            # Clip the interval's lower end at 0 for a positive mean (counts and sizes), but
            # a mean drift can be negative (the slowest machine ahead of the fastest, as
            # a queue-free slow machine can be between its peers' messages).
            errs = [[min(h, m) if m >= 0 else h for h, m in zip(halves, means, strict=True)],
                    halves]
            negative |= any(m < 0 for m in means)
            ax.bar(xs, means, width, yerr=errs, capsize=3, color=colors[role], alpha=0.75,
                   label=f"{role} machine")
            for x, e in zip(xs, exps, strict=True):
                pts = [r[role][metric] for r in e["runs"] if role in r and r[role][metric] is not None]
                ax.plot([x] * len(pts), pts, "k.", ms=4, alpha=0.7)
        ax.set_xticks(range(len(exps)))
        ax.set_xticklabels([_wrap(n) for n in names], fontsize=8)
        ax.set_title(LABELS[metric], fontsize=10)
        ax.set_ylabel(UNITS[metric], fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
        if metric in ("max_queue", "drift_mean") and _spans_decades(exps, metric):
            ax.set_yscale("symlog", linthresh=1)
            ax.set_ylabel(UNITS[metric] + " (log above 1)", fontsize=8)
        if not negative:
            ax.set_ylim(bottom=0)
    axes.flat[0].legend(fontsize=8, loc="upper right")
    n = max((e["completed"] for e in exps), default=0)
    fig.suptitle(
        title
        or f"{summary.get('mode', '')} runs: mean of {n} trials with 95% interval, dots = trials",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _wrap(name: str, width: int = 14) -> str:
    """Break a long experiment name at its hyphens so tick labels do not overlap."""
    lines: list[str] = []
    for part in name.split("-"):
        if lines and len(lines[-1]) + 1 + len(part) <= width:
            lines[-1] += "-" + part
        else:
            lines.append(part)
    return "-\n".join(lines)


def _spans_decades(exps: list[dict[str, Any]], metric: str) -> bool:
    vals = [e[role][metric]["mean"] for e in exps for role in ("slowest", "fastest")]
    vals = [v for v in vals if v]
    return bool(vals) and max(vals) > 30 * max(min(vals), 1)


def write_outputs(summary: dict[str, Any], root: Path, plots: bool = True) -> list[Path]:
    """summary.md and comparison.png into the experiment folder; returns what was written."""
    written = []
    figures = []
    if plots and any(e["completed"] for e in summary["experiments"]):
        written.append(comparison_figure(summary, root / "comparison.png"))
        figures.append("comparison.png")
    md = root / "summary.md"
    md.write_text(summary_markdown(summary, figures), encoding="utf-8")
    written.insert(0, md)
    return written
