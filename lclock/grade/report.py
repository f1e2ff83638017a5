"""The pages a grading writes: one per student, and the class's summary with its figure.

Pages are self-contained (figures inline as PNG) and hold nothing that depends on when or
where the grading ran, so a regrade gives the same bytes.
"""

from __future__ import annotations

import base64
import html
import io
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

from lclock.grade.results import ItemResult
from lclock.grade.score import Test
from lclock.grade.shrunk import Shrunk

_STYLE = ("body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
          "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}"
          "pre{white-space:pre-wrap;margin:0}.lost{color:#b00}")


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n")


def student_page(row: dict[str, Any], tests: list[Test], items: list[ItemResult],
                 runs: Path | None, rules: list[str], shrunk: Shrunk | None = None) -> str:
    """A student's report: each test, each deduction with where it shows, the shrunk
    counterexample, and a diagram."""
    head = (f"<p>Score <b>{row['score']}</b> of {row['max_score']} ({html.escape(row['status'])})."
            + (f" Bugs and failures: {html.escape(', '.join(row['bugs'].split(';')))}." if row["bugs"] else "")
            + (f" Rules broken: {html.escape(', '.join(rules))}." if rules else "") + "</p>")
    table = "<table><tr><th>test</th><th>score</th><th>what was seen</th></tr>"
    for t in tests:
        cls = " class='lost'" if t.score < t.max_score else ""
        table += (f"<tr><td>{html.escape(t.name)}</td><td{cls}>{t.to_json()['score']} / "
                  f"{t.to_json()['max_score']}</td><td><pre>{html.escape(t.output)}</pre></td></tr>")
    table += "</table>"
    return _page(f"lclock grade: {row['submission']}",
                 head + table + shrunk_section(shrunk) + _diagram(items, runs))


def shrunk_section(shrunk: Shrunk | None) -> str:
    """The smallest run that still shows the finding: its diagram (inline SVG) and story;
    or the one line saying why there is none."""
    if shrunk is None:
        return ""
    what = f"{html.escape(shrunk.label)} ({html.escape(shrunk.rule)})"
    if shrunk.svg is None:
        return f"<p>No shrunk counterexample of {what}: {html.escape(shrunk.problem or '')}</p>"
    return (f"<h2>Shrunk counterexample: {what}</h2><p>The smallest simulated run found that "
            "still shows the finding (lclock shrink).</p>"
            f"<div class='shrunk'>{shrunk.svg}</div><pre>{html.escape(chr(10).join(shrunk.story))}</pre>")


def _diagram(items: list[ItemResult], runs: Path | None) -> str:
    """The space-time diagram of the first run with a finding (or the first run)."""
    if runs is None:
        return ""
    chosen = _run_to_draw(items, runs)
    if chosen is None:
        return ""
    label, run_dir = chosen
    try:
        png = spacetime_png(run_dir)
    except Exception as e:  # noqa: BLE001 - a run that cannot be drawn leaves the page without it
        return f"<p>No diagram of {html.escape(label)}: {html.escape(type(e).__name__)}</p>"
    return (f"<h2>Space-time diagram: {html.escape(label)}</h2>"
            f"<img alt='space-time diagram' style='max-width:100%' src='data:image/png;base64,{png}'>")


def _run_to_draw(items: list[ItemResult], runs: Path) -> tuple[str, Path] | None:
    candidates = [r for item in items for r in item.runs if r.run_dir]
    for r in [c for c in candidates if c.findings] + candidates:
        run_dir = runs / str(r.run_dir)
        if (run_dir / "run.json").is_file():
            return r.label, run_dir
    return None


def spacetime_png(run_dir: Path) -> str:
    """The run's space-time diagram (its first events), as base64 PNG."""
    import matplotlib.pyplot as plt

    from lclock.analysis.load import load_run
    from lclock.analysis.spacetime import choose_window, fig_spacetime

    run = load_run(run_dir)
    fig = fig_spacetime(run, choose_window(run, None))
    return _png(fig, plt)


def _png(fig: Any, plt: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, metadata={"Software": None})
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def class_page(rows: list[dict[str, Any]]) -> str:
    """The class summary: the figure, then a row per submission."""
    body = f"<p>{len(rows)} submission(s).</p>"
    body += f"<img alt='bugs and scores' style='max-width:100%' src='data:image/png;base64,{class_png(rows)}'>"
    body += "<table><tr><th>submission</th><th>score</th><th>status</th><th>bugs</th></tr>"
    for r in rows:
        href = html.escape(urllib.parse.quote(str(r["submission"])) + "/report.html")
        body += (f"<tr><td><a href='{href}'>"
                 f"{html.escape(r['submission'])}</a></td><td>{r['score']} / {r['max_score']}</td>"
                 f"<td>{html.escape(r['status'])}</td><td>{html.escape(r['bugs'])}</td></tr>")
    return _page("lclock grade: the class", body + "</table>")


def class_png(rows: list[dict[str, Any]]) -> str:
    """The class figure, as a PNG for the summary page."""
    import matplotlib.pyplot as plt

    return _png(class_figure(rows), plt)


def class_figure(rows: list[dict[str, Any]]) -> Any:
    """Two panels: how many submissions show each bug, and the distribution of scores."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    bugs = Counter(b for r in rows for b in str(r["bugs"]).split(";") if b)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    names = sorted(bugs, key=lambda b: (-bugs[b], b))
    left.barh(names[::-1], [bugs[b] for b in names[::-1]], color="#b44")
    left.set_title("bugs and failures: submissions showing each")
    left.set_xlabel("submissions")
    if not names:
        left.text(0.5, 0.5, "none found", ha="center", transform=left.transAxes)
    pct = [100.0 * float(r["score"]) / float(r["max_score"]) if float(r["max_score"]) else 0.0
           for r in rows]
    right.hist(pct, bins=list(range(0, 101, 10)), color="#48a", edgecolor="white")
    right.set_title("scores (% of the maximum)")
    right.set_xlabel("% of max_score")
    right.set_ylabel("submissions")
    for axis in (left.xaxis, right.yaxis):  # counts of submissions: whole numbers
        axis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return fig
