"""The same metrics of several groups of runs, side by side, each with its 95% interval.

A group is a list of runs that were meant to be alike: the trials of one experiment, or run
folders made with the same settings. For every group: the mean across its completed runs,
with Student's t interval, of the slowest and the fastest machine's jumps, drift, queue and
skipped clock values, and of the clocks' spread. ``lclock compare`` prints this for any
folders; the experiment summary (summary.md, comparison.png) is the same tables.

Saturation: a run in which some machine's queue grew without bound (see
``lclock.experiment.metrics.saturated``) measures something else than a run without: its
queue and jumps grow with the run's length. A group that holds both kinds is shown as two
rows, never as one mean of both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lclock.experiment.records import MACHINE_METRICS, ROLES, RUN_METRICS
from lclock.experiment.stats import fmt_ci, mean_ci

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
#: The columns of the per-role tables (queue growth is in the JSON).
TABLE_METRICS = ("mean_jump", "max_jump", "drift_mean", "drift_max", "max_queue", "gap_fraction")
#: Counts and maxima: one decimal is enough.
_ONE_DIGIT = ("max_jump", "drift_max", "max_queue", "spread_max")

EXPLANATION = (
    "Values are the mean across runs ± the half-width of its 95% confidence interval "
    "(Student's t), as `lclock analyze` computes them for each run. *jump*: the step "
    "L - L_prev of a machine's Lamport clock on a receive (1 = no jump). *drift*: how far "
    "its Lamport clock is behind the fastest machine's at the same time (0 for the fastest "
    "itself). *max queue*: the longest its message queue was after an event. *skipped "
    "values*: the share of clock values the machine never used."
)


def digits(metric: str) -> int:
    return 1 if metric in _ONE_DIGIT else 2


# -- the numbers ---------------------------------------------------------------------------


def stats(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean and interval per metric over runs that have metrics (run_entry's with roles)."""
    per_role: dict[str, dict[str, list[float]]] = {r: {m: [] for m in MACHINE_METRICS} for r in ROLES}
    per_run: dict[str, list[float]] = {m: [] for m in RUN_METRICS}
    for r in runs:
        for role in ROLES:
            for k in MACHINE_METRICS:
                v = r[role].get(k)
                if v is not None:
                    per_role[role][k].append(v)
        for k in RUN_METRICS:
            if r.get(k) is not None:
                per_run[k].append(r[k])
    return {
        "completed": len(runs),
        **{role: {k: mean_ci(v) for k, v in per_role[role].items()} for role in ROLES},
        "run": {k: mean_ci(v) for k, v in per_run.items()},
    }


def measured(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs that count: completed, with metrics."""
    return [r for r in runs if r.get("status") == "completed" and "slowest" in r]


def group_summary(name: str, runs: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A group's JSON: ``extra`` fields, its runs, the statistics over its completed runs,
    and, when some runs saturated and some did not, the statistics of each kind apart."""
    done = measured(runs)
    sat = [r for r in done if r.get("saturated")]
    out: dict[str, Any] = {"name": name, **extra, **stats(done), "runs": runs,
                           "saturated_runs": len(sat)}  # fmt: skip
    if sat and len(sat) < len(done):
        out["by_saturation"] = {
            "saturated": stats(sat),
            "unsaturated": stats([r for r in done if not r.get("saturated")]),
        }
    return out


def display_rows(groups: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per group, or two for a group of saturated and unsaturated runs; each row
    has ``label``, the statistics and its own runs (for the figure's dots)."""
    rows = []
    for g in groups:
        done = measured(g["runs"])
        split = g.get("by_saturation")
        if split:
            for kind, flag in (("saturated", True), ("unsaturated", False)):
                part = [r for r in done if bool(r.get("saturated")) == flag]
                word = "saturated" if flag else "not saturated"
                rows.append({**split[kind], "name": g["name"], "saturation": kind,
                             "label": f"{g['name']} ({word}: {len(part)})", "runs": part})  # fmt: skip
        else:
            every = bool(done) and len(done) == g.get("saturated_runs", 0)
            rows.append({
                **{k: g.get(k) for k in ("completed", *ROLES, "run")},
                "name": g["name"],
                "saturation": "all" if every else "none",
                "label": g["name"] + (" (saturated)" if every else ""),
                "runs": done,
            })  # fmt: skip
    return rows


# -- tables ------------------------------------------------------------------------------


def role_table(rows: Sequence[dict[str, Any]], role: str, head: str = "experiment") -> tuple[list[str], list[list[str]]]:
    """Rows = groups, columns = the metrics of the group's slowest (or fastest) machine."""
    headers = [head, "rate", *(LABELS[m] for m in TABLE_METRICS)]
    body = []
    for row in rows:
        rates = sorted({r[role]["rate"] for r in row["runs"] if role in r})
        body.append([row["label"], ",".join(map(str, rates)) or "–",
                     *(fmt_ci(row[role][m], digits(m)) for m in TABLE_METRICS)])  # fmt: skip
    return headers, body


def spread_table(rows: Sequence[dict[str, Any]], head: str = "experiment") -> tuple[list[str], list[list[str]]]:
    headers = [head, LABELS["spread_mean"], LABELS["spread_max"]]
    body = [[row["label"], fmt_ci(row["run"]["spread_mean"]), fmt_ci(row["run"]["spread_max"], 1)]
            for row in rows]  # fmt: skip
    return headers, body


def side_by_side(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Rows = metrics, columns = groups: the layout of ``lclock compare``."""
    headers = ["", *(row["label"] for row in rows)]
    body = [["runs", *(str(row["completed"]) for row in rows)]]
    for role in ROLES:
        body.append([f"{role} machine: rate", *(
            ",".join(map(str, sorted({r[role]["rate"] for r in row["runs"] if role in r}))) or "–"
            for row in rows)])  # fmt: skip
        for m in (*TABLE_METRICS, "queue_growth"):
            body.append([f"  {LABELS[m]}", *(fmt_ci(row[role][m], digits(m)) for row in rows)])
    body.append(["clocks", *("" for _ in rows)])
    for m in RUN_METRICS:
        body.append([f"  {LABELS[m]}", *(fmt_ci(row["run"][m], digits(m)) for row in rows)])
    return headers, body


def markdown(headers: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return lines


def plain(headers: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    """Aligned columns: the first left-aligned (labels), the others right-aligned."""
    table = [list(headers), *map(list, body)]
    widths = [max(len(r[i]) for r in table) for i in range(len(headers))]

    def fmt(r: list[str]) -> str:
        cells = [r[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True))]
        return "  ".join(cells).rstrip()

    return [fmt(table[0]), "  ".join("-" * w for w in widths), *(fmt(r) for r in table[1:])]


def fitted(headers: Sequence[str], body: Sequence[Sequence[str]], width: int) -> list[str]:
    """The side-by-side table within ``width`` characters: as it is when it fits; else each
    column headed by a letter (A, B, ...) with the full labels in a key below, and the
    columns in as many blocks, one under the other, as the width needs."""
    whole = plain(headers, body)
    if max(map(len, whole)) <= width:
        return whole
    letters = [_letter(k) for k in range(len(headers) - 1)]
    first = max(len(r[0]) for r in [headers, *body])
    blocks: list[list[int]] = [[]]
    used = first
    for k in range(1, len(headers)):
        w = max(len(letters[k - 1]), *(len(r[k]) for r in body)) + 2
        if blocks[-1] and used + w > width:
            blocks.append([])
            used = first
        blocks[-1].append(k)
        used += w
    out: list[str] = []
    for cols in blocks:
        out += [*([""] if out else []),
                *plain([headers[0], *(letters[k - 1] for k in cols)],
                       [[r[0], *(r[k] for k in cols)] for r in body])]
    return out + ["", *(f"{letters[k]} = {h}" for k, h in enumerate(headers[1:]))]


def _letter(k: int) -> str:
    """A, B, ..., Z, AA, AB, ...: the short name of column ``k``."""
    name = ""
    k += 1
    while k:
        k, r = divmod(k - 1, 26)
        name = chr(65 + r) + name
    return name


def settings_text(s: dict[str, Any]) -> str:
    """``3 machines, rates 1..6, 10-sided die, 60 s`` from a settings dict."""
    rates = (
        "rates " + ",".join(map(str, s["rates"]))
        if s.get("rates")
        else f"rates {s.get('rate_min')}..{s.get('rate_max')}"
    )
    return f"{s.get('machines')} machines, {rates}, {s.get('dice_sides')}-sided die, {float(s.get('duration') or 0):g} s"


# What a run without faults and with right clocks has (run.json's settings.faults/.clocks).
_NO_FAULT: dict[str, Any] = {"latency_ms": 0.0, "latency_dist": "constant", "loss": 0.0,
                             "duplicate": 0.0, "links": {}, "reorder": False, "partitions": [],
                             "pauses": [], "crashes": [], "nemesis": [], "nemesis_interval": 10.0}
_RIGHT_CLOCKS: dict[str, Any] = {"skew_ms": 0.0, "drift_ppm": 0.0, "offsets_ms": None,
                                 "drifts_ppm": None, "bumps": [], "hlc": True}


def faults_text(s: dict[str, Any]) -> str:
    """``faults loss=0.3; clocks skew_ms=100``: the fault and clock settings that differ from
    a perfect run, so that groups differing only in them are told apart; "" when none do."""
    parts = []
    for table, plain in (("faults", _NO_FAULT), ("clocks", _RIGHT_CLOCKS)):
        values = s.get(table)
        if not isinstance(values, dict):
            continue
        if table == "faults" and values.get("latency_ms") in (0, 0.0):
            plain = {**plain, "latency_dist": values.get("latency_dist")}  # no latency: moot
        if table == "faults" and not values.get("nemesis"):
            plain = {**plain, "nemesis_interval": values.get("nemesis_interval")}
        diff = [f"{k}={_short(v)}" for k, v in values.items() if plain.get(k, v) != v or k not in plain]
        if diff:
            parts.append(f"{table} " + " ".join(diff))
    return "; ".join(parts)


def _short(v: Any) -> str:
    """A setting's value in a few characters: 0.3, exponential; a schedule or a table of
    links by its number of items (partitions=2)."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, list | dict):
        return str(len(v))
    return str(v)


def render_text(groups: Sequence[dict[str, Any]], show_runs: bool = False,
                width: int = 100) -> str:
    """What ``lclock compare`` prints, its table no wider than ``width`` where it can be."""
    from lclock.experiment.metrics import SATURATION_RULE

    rows = display_rows(groups)
    lines = []
    for g in groups:
        done = measured(g["runs"])
        note = f"{len(done)} of {len(g['runs'])} runs completed"
        if g.get("saturated_runs"):
            note += f", {g['saturated_runs']} with a saturated machine"
        where = f" [{g['source']}]" if g.get("source") else ""
        lines.append(f"{g['name']}{where}: {note}")
        for r in g["runs"]:
            if r not in done:
                lines.append(f"  not counted: {r.get('run_dir') or r.get('label')} ({r.get('status')}"
                             + (f": {r['error']}" if r.get("error") else "") + ")")  # fmt: skip
    lines.append("")
    lines += fitted(*side_by_side(rows), width)
    lines.append("")
    lines.append(EXPLANATION.replace("*", "").replace("`", ""))
    if any(g.get("saturated_runs") for g in groups):
        lines.append(f"Saturated: {SATURATION_RULE}; such runs are shown apart.")
    if show_runs:
        lines += ["", *plain(*runs_table(groups))]
    return "\n".join(lines) + "\n"


def runs_table(groups: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """One line per run: its group, folder, rates, status and headline numbers."""
    headers = ["group", "run", "rates", "status", "slowest jump", "slowest drift",
               "slowest max queue", "saturated"]
    body = []
    for g in groups:
        for r in g["runs"]:
            s = r.get("slowest") or {}
            body.append([
                g["name"], str(r.get("run_dir") or "–"), ",".join(map(str, r.get("rates") or [])),
                str(r.get("status")), _num(s.get("mean_jump")), _num(s.get("drift_mean")),
                str(s.get("max_queue", "–")),
                ",".join(f"m{i}" for i in r.get("saturated") or []) or "–",
            ])  # fmt: skip
    return headers, body


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"
