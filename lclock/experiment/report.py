"""summary.md and the comparison figure of an experiment folder, from summary.json alone.

Both are pure functions of summary.json (and experiment.json for the command line), so
``lclock experiment --summarize DIR`` (and the notebook's figure script) can redraw them
without running anything again. The tables and the figure are those of ``lclock compare``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lclock.experiment.compare import (
    EXPLANATION,
    LABELS,
    UNITS,
    display_rows,
    markdown,
    role_table,
    settings_text,
    spread_table,
)

__all__ = ["LABELS", "UNITS", "comparison_figure", "summary_markdown", "write_outputs"]


def summary_markdown(
    summary: dict[str, Any], figures: list[str] | None = None, meta: dict[str, Any] | None = None
) -> str:
    """The experiment's results as markdown: settings, one table per role, the runs."""
    from lclock.experiment.metrics import SATURATION_RULE

    info = {**summary, **(meta or {})}
    exps = summary["experiments"]
    sim = summary.get("sim")
    lines = [
        f"# Experiment {info.get('name', '')}".rstrip(),
        "",
        f"- mode: **{summary.get('mode')}**"
        + (f" (network delay {sim['delay']}, mean {sim['delay_mean'] * 1e6:g} µs)" if sim else ""),
        f"- status: {info.get('status')}; base seed {summary.get('base_seed')} "
        "(trial k uses seed base + k - 1)",
        f"- command: `{' '.join(info.get('command', []))}`",
    ]
    missing = summary.get("missing") or []
    if missing:
        lines.append(f"- **missing trials** ({len(missing)}): {', '.join(missing)}")
    lines += ["", EXPLANATION, "", "| experiment | settings | trials |", "|---|---|---|"]
    for e in exps:
        lines.append(
            f"| {e['name']} | {settings_text(e['settings'])}"
            + (f" — {e['description']}" if e.get("description") else "")
            + f" | {e['completed']}/{e['trials']} |"
        )
    rows = display_rows(exps)
    if any(e.get("saturated_runs") for e in exps):
        lines += ["", f"Saturated trials: {SATURATION_RULE}. Their queues and jumps grow with "
                  "the run's length, so an experiment with both kinds of trials has one row "
                  "for each, never one mean of both."]  # fmt: skip
    for role in ("slowest", "fastest"):
        lines += ["", f"## The {role} machine of each trial", ""]
        lines += markdown(*role_table(rows, role))
    lines += ["", "## Spread of the Lamport clocks (highest minus lowest at the same moment)", ""]
    lines += markdown(*spread_table(rows))
    if figures:
        lines += ["", "## Figures", ""]
        lines += [f"![{f}]({f})" for f in figures]
    lines += ["", "## Runs", "", "| experiment | trial | seed | rates | status | saturated | run folder |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for e in exps:
        for r in e["runs"]:
            folder = r.get("run_dir")
            link = f"[{folder}]({folder}/report.html)" if folder and r.get("report") else folder
            lines.append(
                f"| {e['name']} | {r['trial']} | {r['seed']} | {','.join(map(str, r['rates']))} | "
                f"{r['status']}{' (' + r['error'] + ')' if r.get('error') else ''} | "
                f"{','.join(f'm{i}' for i in r.get('saturated') or []) or '–'} | "
                f"{link or '–'} |"
            )
    return "\n".join(lines) + "\n"


def comparison_figure(summary: dict[str, Any], path: Path, title: str | None = None) -> Path:
    """Four panels (mean jump, max jump, mean drift, max queue): per group (an experiment,
    or its saturated and unsaturated trials apart), the slowest and the fastest machine,
    the mean with its 95% interval and every trial as a dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Matplotlib's defaults, whatever the run reports drawn in this process changed.
    with plt.style.context("default"):
        _draw(summary, path, title, plt)
    return path


def _draw(summary: dict[str, Any], path: Path, title: str | None, plt: Any) -> None:
    exps = display_rows(summary["experiments"])
    metrics = ("mean_jump", "max_jump", "drift_mean", "max_queue")
    fig, axes = plt.subplots(2, 2, figsize=(max(9, 1.6 * len(exps) + 3), 6.2), dpi=80)
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
            for x, e, mean in zip(xs, exps, means, strict=True):
                pts = [r[role][metric] for r in e["runs"] if role in r and r[role][metric] is not None]
                ax.plot([x] * len(pts), pts, "k.", ms=4, alpha=0.7)
                if e.get("saturation") in ("saturated", "all"):
                    ax.bar([x], [mean], width, fill=False, hatch="//", edgecolor="#444",
                           linewidth=0)
        ax.set_xticks(range(len(exps)))
        ax.set_xticklabels([_wrap(e["label"]) for e in exps], fontsize=8)
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
    sat = " (hatched: runs with a saturated machine)" if any(
        e.get("saturation") in ("saturated", "all") for e in exps) else ""
    fig.suptitle(
        title
        or f"{(summary.get('mode') or '') + ' '}runs: mean of up to {n} per group with 95% "
        f"interval, dots = runs{sat}".lstrip(),
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _wrap(name: str, width: int = 14) -> str:
    """Break a long label at its hyphens and spaces so tick labels do not overlap."""
    lines: list[str] = []
    for word in name.split(" "):
        for k, part in enumerate(word.split("-")):
            sep = "-" if k else " "
            if lines and len(lines[-1]) + 1 + len(part) <= width:
                lines[-1] += sep + part
            else:
                if lines and sep == "-":
                    lines[-1] += "-"
                lines.append(part)
    return "\n".join(lines)


def _spans_decades(exps: list[dict[str, Any]], metric: str) -> bool:
    vals = [e[role][metric]["mean"] for e in exps for role in ("slowest", "fastest")]
    vals = [v for v in vals if v]
    return bool(vals) and max(vals) > 30 * max(min(vals), 1)


def write_outputs(
    summary: dict[str, Any], root: Path, plots: bool = True, meta: dict[str, Any] | None = None
) -> list[Path]:
    """summary.md and comparison.png into the experiment folder; returns what was written."""
    written = []
    figures = []
    if plots and any(e["completed"] for e in summary["experiments"]):
        written.append(comparison_figure(summary, root / "comparison.png"))
        figures.append("comparison.png")
    md = root / "summary.md"
    md.write_text(summary_markdown(summary, figures, meta), encoding="utf-8")
    written.insert(0, md)
    return written
