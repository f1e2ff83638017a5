"""report.html: the summary's numbers and the figures, poured into the template report.html.

Every value that reaches the page is escaped here, in one of two ways: text fields through
:func:`_text` (a run id, a status, a headline, a reason from a log line can hold ``<`` or
quotes, and become inert text), and fragments built by the helpers below from escaped
cells. A value that is missing (None, NaN) is shown as ``-``, never as ``None`` or ``nan``.
"""

from __future__ import annotations

import base64
import html
import math
from importlib import resources
from string import Template
from typing import Any

from lclock.analysis.analyze import CLOCK_HEAD, clock_rows, fmt, groups_text
from lclock.analysis.window import secs_text

FIGURES = ("clocks", "clockcmp", "drift", "queues", "jumps", "spacetime")

CAPTIONS = {
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
    "spacetime": "The events of {lo} to {hi} on a real-time axis; numbers are Lamport clock "
                 "values, arrows are messages, coloured by their sender (see the key); a "
                 "dashed arrow ending in x is a dropped message, shaded bands are partitions "
                 "and pauses.",
}


def _text(value: Any) -> str:
    """A value as escaped HTML text; a missing one (None, NaN) as ``-``."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return html.escape(f"{value:.4g}")
    return html.escape(str(value))


def html_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A table in a box that scrolls sideways on a narrow window instead of running off it."""
    head = "".join(f"<th>{_text(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_text(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<div class='table'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _machines(ms: list[dict[str, Any]]) -> str:
    return html_table(
        ["machine", "rate/s", "ticks", "achieved/s", "receive", "send", "internal",
         "jump mean", "jump p95", "jump max", "queue mean", "queue max", "queue final",
         "growth/s", "theory growth/s", "delay mean s"],
        [[m["id"], m["rate"], m["ticks"], m["achieved_rate"], m["events"]["receive"],
          m["events"]["send"], m["events"]["internal"], m["jumps"]["mean"], m["jumps"]["p95"],
          m["jumps"]["max"], m["queue"]["mean"], m["queue"]["max"], m["queue"]["final"],
          m["queue"]["growth_per_s"], (m["theory"] or {}).get("growth_per_s"),
          m["delay"]["mean"]] for m in ms])


def _theory(ms: list[dict[str, Any]]) -> str:
    if not any(m["theory"] for m in ms):
        return ""
    return ("<h2>Theory against observation</h2><p>Expected message arrivals from the peers' "
            "rates and the dice, against each machine's own tick rate; a machine whose arrivals "
            "exceed its rate is saturated and its queue grows by about the difference.</p>"
            + html_table(
                ["machine", "rate/s", "arrivals/s (theory)", "arrivals/s (observed)",
                 "utilisation", "queue growth/s (theory)", "queue growth/s (observed)"],
                [[m["id"], m["rate"], (m["theory"] or {}).get("arrival_rate"), m["arrival_rate"],
                  (m["theory"] or {}).get("utilisation"), (m["theory"] or {}).get("growth_per_s"),
                  m["queue"]["growth_per_s"]] for m in ms]))


def _mix(ms: list[dict[str, Any]]) -> str:
    return html_table(
        ["machine", "rolls", "send A", "send B", "to all", "internal", "expected internal",
         "receive share of ticks"],
        [[m["id"], m["mix"]["rolls"], m["mix"]["observed"]["send_a"],
          m["mix"]["observed"]["send_b"], m["mix"]["observed"]["broadcast"],
          m["mix"]["observed"]["internal"], m["mix"]["expected"]["internal"],
          m["mix"]["receive_fraction"]] for m in ms])


def _concurrency(c: dict[str, Any] | None) -> str:
    if not c:
        return ""
    return (f"<p>Concurrency by vector clocks: {_text(c['concurrent'])} of {_text(c['pairs'])} "
            "event pairs on different machines are concurrent.</p>")


def hlc_text(h: dict[str, Any]) -> str:
    """The HLC's bounds in words; a run without a clock plan has no bound to quote."""
    bound = (f"bound {fmt(h['bound_us'])} µs" if h.get("bound_us") is not None
             else "no bound recorded: every machine read the host clock")
    return (f"HLC: largest l - pt {fmt(h.get('max_l_minus_pt_us'))} µs ({bound}), "
            f"largest c {fmt(h.get('max_c'))}.")


def _clocks(c: dict[str, Any] | None) -> str:
    """The clock comparison (SPEC 7.5): what each clock gets wrong on this run."""
    if not c:
        return ""
    s = c.get("sample")
    sampled = (f"; {_text(s['pairs'])} other event pairs were sampled (seed {_text(s['seed'])}) "
               f"and classified by the vector clocks: {_text(s['causal'])} causal, "
               f"{_text(s['concurrent'])} concurrent" if s
               else "; without vector clocks no other pairs can be classified")
    verdict = ("Lamport and HLC order every causal pair, as the clock condition says."
               if c["logical_clocks_ok"] else
               f"VIOLATION: the logical clocks misordered or tied causal pairs "
               f"({c['logical_violations']}): run lclock check.")
    notes = [verdict]
    if c.get("hlc"):
        notes.append(hlc_text(c["hlc"]))
    if c["bytes_per_message"].get("vector"):
        notes.append(f"Vector clocks, which alone tell causal from concurrent, cost "
                     f"{fmt(c['bytes_per_message']['vector'])} bytes a message.")
    return ("<h2>The clocks compared</h2>"
            f"<p>Every message is a causal pair ({_text(c['messages']['pairs'])} of them){sampled}"
            ". A clock <i>misorders</i> a causal pair when it stamps the earlier event later; "
            "concurrent pairs are oriented by system time, so <i>before</i> means the clock "
            "agrees with real time.</p>"
            + html_table(CLOCK_HEAD, clock_rows(c))
            + f"<p><b>{_text(notes[0])}</b> " + " ".join(_text(x) for x in notes[1:]) + "</p>")


def _fault_items(f: dict[str, Any], n: int) -> list[str]:
    return ([f"partition {fmt(p['start'])}-{fmt(p['end'])} s: {groups_text(p['groups'], n)}"
             for p in f["partitions"] if p.get("start") is not None and p.get("end") is not None]
            + [f"pause of machine {p['machine']}: {fmt(p['start'])}-{fmt(p['end'])} s"
               for p in f["pauses"] if p.get("start") is not None and p.get("end") is not None]
            + [f"crash of machine {c['machine']} at {fmt(c['time'])} s" for c in f["crashes"]])


def _faults(f: dict[str, Any] | None, n: int) -> str:
    """Messages dropped per link, the schedule, and the jumps after heals and resumes."""
    if not f:
        return ""
    d = f["dropped"]
    out = ["<h2>Faults</h2>",
           f"<p>{_text(d['loss'])} messages lost, {_text(d['partition'])} dropped by partitions, "
           f"{_text(d['crashed'])} sent to a crashed machine, {_text(f['duplicated'])} delivered "
           "twice" + ("; links may reorder" if f["reorder"] else "") + ".</p>"]
    links = {k: v for k, v in f["links"].items() if v["sent"] or v["dropped"] or v["duplicated"]}
    if links:
        out.append(html_table(
            ["link", "sent", "lost", "partition", "crashed", "dropped %", "duplicated"],
            [[k, v["sent"], v["loss"], v["partition"], v["crashed"],
              100 * v["dropped"] / v["sent"] if v["sent"] else None, v["duplicated"]]
             for k, v in links.items()]))
    items = _fault_items(f, n)
    if items:
        out.append("<ul>" + "".join(f"<li>{_text(x)}</li>" for x in items) + "</ul>")
    if f["after"]:
        out.append("<p>The first receive after a partition heals or a pause ends, and the "
                   "jump it gives the Lamport clock (against the machine's mean jump):</p>")
        out.append(html_table(
            ["machine", "after", "at s", "receive at s", "from", "jump", "mean jump"],
            [[a["machine"], a["after"], a["at_s"], a["receive_at_s"], a["from"], a["jump"],
              a["mean_jump"]] for a in f["after"]]))
    return "\n".join(out)


def _figures(images: dict[str, bytes], window: tuple[float, float]) -> str:
    out = []
    for k in FIGURES:
        if k in images:
            data = base64.b64encode(images[k]).decode()
            caption = CAPTIONS[k].format(lo=secs_text(window[0]), hi=secs_text(window[1]))
            out.append(f"<figure><img alt='{_text(k)}' src='data:image/png;base64,{data}'>"
                       f"<figcaption>{_text(caption)}</figcaption></figure>")
    return "\n".join(out)


def _explorer(link: str | None) -> str:
    if not link:
        return ""
    return (f"<p><a href='{html.escape(link, quote=True)}'>Explore this run</a>: every event on "
            "a zoomable space-time diagram; click one to see its causal past and future.</p>")


def render_html(summary: dict[str, Any], heads: list[str], images: dict[str, bytes],
                window: tuple[float, float], explorer: str | None = None) -> str:
    """The whole page (the template is package data next to this module)."""
    ms, d = summary["machines"], summary["drift"]
    page = Template((resources.files("lclock.analysis") / "report.html").read_text("utf-8"))
    return page.substitute(
        run_id=_text(summary["run_id"]), status=_text(summary["status"]),
        machines_n=_text(summary["machines_n"]), events=_text(summary["events"]),
        duration=_text(summary["duration_s"] or 0.0), explorer=_explorer(explorer),
        headlines="".join(f"<li>{_text(h)}</li>" for h in heads), machines=_machines(ms),
        drift_mean=_text(d["mean"]), drift_p95=_text(d["p95"]), drift_max=_text(d["max"]),
        drift_final=_text(d["final"]), fastest=_text(d["fastest"]), theory=_theory(ms),
        mix=_mix(ms), concurrency=_concurrency(summary["concurrency"]),
        clocks=_clocks(summary.get("clocks")),
        faults=_faults(summary.get("faults"), summary["machines_n"]),
        figures=_figures(images, window))
