/* The side panel's HTML: the run, the selected event (its clocks side by side, its causal
 * counts, the same questions for a terminal) or the selected message. Strings only: no
 * DOM, so node's tests can read them. `v` is the view: {runs, compare, sel, prevSel,
 * causal, msgSel, same} (same: the axes equal to real time, see layout.sameAsReal). */
import { COL } from "./colors.mjs";
import { compareRows, differ } from "./diff.mjs";
import { esc, evName, evRef, fixed, fmtSec, logLine, queueWait, recipients, where } from "./text.mjs";
import { relation } from "./causality.mjs";

const cellOf = (x) => `<td class="num">${x === undefined || x === null ? "<span class=muted>-</span>" : x}</td>`;
export const row = (k, ...v) => `<tr><th>${k}</th>${v.map(cellOf).join("")}</tr>`;

export function clockCells(run, li, k) {
  const ln = run.lanes[li];
  return {
    real: `${fmtSec(ln.t[k] / 1e6)}`, L: ln.L[k], vc: ln.vc ? "[" + ln.vc.map((c) => c[k]).join(", ") + "]" : null,
    hlc: ln.hl ? `${fmtSec(ln.hl[k] / 1e6)}, c=${ln.hc[k]}` : null, pt: ln.pt ? fmtSec(ln.pt[k] / 1e6) : null,
    tick: ln.tick[k], q: ln.q[k],
  };
}

/* What a receive's message carried, in the same cells. */
function carriedCells(run, li, k) {
  const ln = run.lanes[li], r = ln.recvRank[k], m = run.msgOfRecv[li][k];
  return { L: ln.msg[r], pt: ln.mpt ? fmtSec(ln.mpt[r] / 1e6) : null,
    hlc: ln.mhl ? `${fmtSec(ln.mhl[r] / 1e6)}, c=${ln.mhc[r]}` : null,
    vc: m >= 0 && ln.vc ? "[" + run.lanes[run.mSL[m]].vc.map((cc) => cc[run.mSI[m]]).join(", ") + "]" : null,
    real: m >= 0 ? fmtSec(run.lanes[run.mSL[m]].t[run.mSI[m]] / 1e6) + " (send)" : null };
}

/* The clocks of the event, the message it received and the event before, side by side.
   HLC and pt rows that only repeat real time (no clock skewed) are left out, and said so. */
function clocksTable(v, run, li, k) {
  const ln = run.lanes[li], three = ln.kind[k] === 2;
  const me = clockCells(run, li, k), prev = k > 0 ? clockCells(run, li, k - 1) : {};
  const carried = three ? carriedCells(run, li, k) : {};
  const hdr = `<tr><th>clock</th><th>this event</th>${three ? "<th>message carried</th>" : ""}<th>previous event</th></tr>`;
  const line = (name, key) => row(name, me[key], ...(three ? [carried[key]] : []), prev[key]);
  const same = v.same || new Set();
  let html = `<h3>Clocks side by side</h3><table>${hdr}${line("real time (ts)", "real")}${line("Lamport", "L")}`;
  if (ln.vc) html += line("vector", "vc");
  if (ln.hl && !same.has("hlc")) html += line("HLC [l, c]", "hlc");
  if (ln.pt && !same.has("pt")) html += line("physical pt", "pt");
  html += line("tick", "tick") + line("queue after", "q") + "</table>";
  const hidden = ["hlc", "pt"].filter((m) => same.has(m) && (m === "hlc" ? ln.hl : ln.pt));
  if (hidden.length) html += `<p class="muted" data-same="${hidden.join(" ")}">${sameText(hidden)}</p>`;
  return html;
}

/* Said once where HLC or pt would only repeat real time. */
export function sameText(modes) {
  const names = modes.map((m) => (m === "hlc" ? "HLC" : "physical clock (pt)")).join(" and ");
  return `${names} = real time on every event (no clock was skewed), so ${modes.length > 1 ? "they are" : "it is"} not repeated here.`;
}

export function panelEvent(v) {
  const { run, li, k } = v.sel, ln = run.lanes[li], kind = ln.kind[k];
  const c = v.causal.counts;
  let html = `<h2>${esc(evName(run, li, k, v.compare))}</h2><div class="muted">${esc(where(run, li, k))}</div>`;
  html += clocksTable(v, run, li, k);
  if (kind === 2) {
    const m = run.msgOfRecv[li][k], r = ln.recvRank[k];
    const jump = ln.L[k] - (k > 0 ? ln.L[k - 1] : 0);
    html += `<p>Lamport jump on this receive: <b>+${jump}</b> (max(${k > 0 ? ln.L[k - 1] : 0}, ${ln.msg[r]}) + 1)${ln.dup[k] ? "; a <b>duplicate</b> delivery" : ""}.`;
    if (m >= 0) html += ` <button type="button" data-msg="${m}">show the message</button>`;
    html += "</p>";
  }
  if (kind === 1) html += `<p>Sent to ${recipients(ln, k).map((x) => "m" + x).join(", ")}. <button type="button" data-sendmsg="1">show its messages</button></p>`;
  html += `<h3>Causality (from ${v.causal.source})</h3><ul>
      <li><span class="swatch" style="background:${COL.past}"></span>${c.past.toLocaleString("en-US")} events in its causal past (happened before it)</li>
      <li><span class="swatch" style="background:${COL.future}"></span>${c.future.toLocaleString("en-US")} in its causal future (it happened before them)</li>
      <li><span class="band" style="background:${COL.concBand};border:1px solid ${COL.conc}"></span>${c.concurrent.toLocaleString("en-US")} concurrent with it (neither)</li></ul>`;
  html += askInTerminal(v, run, li, k);
  html += `<h3>Log line</h3><pre>${esc(logLine(run, li, k))}</pre><button type="button" data-center="1">centre (C)</button> <button type="button" data-clear="1">clear (Esc)</button>`;
  return html;
}

/* The same questions in a terminal (lclock trace / lclock hb), with their proof there. */
function askInTerminal(v, run, li, k) {
  const ln = run.lanes[li], dir = run.info.path || run.info.dir;
  let html = `<h3>In a terminal</h3><pre class="cmd" data-cmd="trace">lclock trace ${esc(dir)} ${evRef(ln, k)}</pre>`;
  const p = v.prevSel;
  if (p && p.run === run) {
    const pl = run.lanes[p.li], rel = relation(v.causal, p.li, p.k);
    html += `<p>The event selected before, <b>machine ${pl.id} · tick ${pl.tick[p.k]}</b>, <b data-hb="${rel}">${rel}</b> this one. With the proof:</p>`;
    html += `<pre class="cmd" data-cmd="hb">lclock hb ${esc(dir)} ${evRef(pl, p.k)} ${evRef(ln, k)}</pre>`;
  } else {
    html += `<p class="muted">Select a second event to compare the two: happened before, after, or concurrent (lclock hb).</p>`;
  }
  return html;
}

function receiveTable(run, m, mm, showPt) {
  const sl = run.mSL[m], si = run.mSI[m], sn = run.lanes[sl];
  const rl = run.mRL[mm], ri = run.mRI[mm], rn = run.lanes[rl];
  const delay = (rn.t[ri] - sn.t[si]) / 1e6, qw = queueWait(run, mm);
  const prevL = ri > 0 ? rn.L[ri - 1] : 0, jump = rn.L[ri] - prevL, pushed = Math.max(0, sn.L[si] - prevL);
  let html = `<h3${mm === m ? "" : ' class="muted"'}>Receive on machine ${rn.id}${rn.dup[ri] ? " (duplicate)" : ""}</h3><table>`;
  html += row("tick", rn.tick[ri]) + row("real time", fmtSec(rn.t[ri] / 1e6));
  html += row("delay (send to handling)", fmtSec(delay));
  html += row("queue wait (at most)", `${fmtSec(qw.wait)}, behind ${qw.behind} older message(s)`);
  html += row("queue after", rn.q[ri]);
  html += row("Lamport before → after", `${prevL} → ${rn.L[ri]}`);
  html += row("jump caused", `<b>+${jump}</b>` + (pushed ? ` (the message pushed it ${pushed} past the usual +1)` : " (no jump: the usual +1)"));
  if (showPt && sn.pt && rn.pt) html += row("physical pt send → receive", `${fmtSec(sn.pt[si] / 1e6)} → ${fmtSec(rn.pt[ri] / 1e6)}` + (rn.pt[ri] < sn.pt[si] ? " <b>(backwards!)</b>" : ""));
  return html + `</table><div class="muted">${esc(where(run, rl, ri))}</div>`;
}

export function panelMessage(v) {
  const { run, m, all } = v.msgSel;
  const sl = run.mSL[m], si = run.mSI[m], sn = run.lanes[sl];
  const showPt = !(v.same && v.same.has("pt"));
  let html = `<h2>${v.compare ? run.name + " · " : ""}Message from machine ${sn.id}</h2>`;
  html += `<h3>Send</h3><table>${row("machine · tick", `m${sn.id} · ${sn.tick[si]}`)}${row("Lamport (carried)", sn.L[si])}${row("real time", fmtSec(sn.t[si] / 1e6))}`;
  if (showPt && sn.pt) html += row("physical pt", fmtSec(sn.pt[si] / 1e6));
  html += row("recipients", recipients(sn, si).map((x) => "m" + x).join(", ")) + "</table>";
  html += `<div class="muted">${esc(where(run, sl, si))}</div>`;
  for (const mm of all) html += receiveTable(run, m, mm, showPt);
  if (!showPt && sn.pt) html += `<p class="muted" data-same="pt">${sameText(["pt"])}</p>`;
  const dr = run.drops, g = run.off[sl] + si;
  for (let i = 0; i < dr.n; i++) if (dr.s[i] === g) html += `<h3>Dropped on the way to machine ${dr.to[i]}</h3><p>reason: <b>${esc(dr.reasons[dr.reason[i]])}</b> <span class="muted">${esc(sn.file)}:${dr.line[i]}</span></p>`;
  const pe = run.pending;
  for (let i = 0; i < pe.n; i++) if (pe.s[i] === g) html += `<h3>Never handled by machine ${pe.to[i]}</h3><p class="muted">still queued when the run stopped, or lost with a machine</p>`;
  html += `<p class="muted">Queue wait: the time since the later of the send and the receiver's last tick with an empty queue (it rolled the dice, so the message had not arrived yet).</p>`;
  html += `<button type="button" data-sel-send="1">select the send event</button> <button type="button" data-clear="1">clear (Esc)</button>`;
  return html;
}

function runTable(v, run) {
  const i = run.info;
  let html = `<h2>${v.compare ? `<span style="color:${run.slot ? COL.runB : COL.runA}">${run.name}</span>: ` : ""}${esc(i.id)}</h2><table>`;
  html += row("status", esc(i.status)) + row("machines", i.n) + row("events shown", `${i.events.toLocaleString("en-US")} of ${i.events_total.toLocaleString("en-US")}`);
  html += row("messages drawn", run.M.toLocaleString("en-US")) + row("drops", run.drops.n) + row("never handled", run.pending.n);
  html += row("clocks", esc(["Lamport", i.vector ? "vector" : null, i.clocks.includes("hlc") ? "HLC" : null, i.clocks.includes("pt") ? "physical pt" : null].filter(Boolean).join(", ")));
  html += row("causality from", run.vcOK ? "vector clocks" : "matched messages");
  if (i.seed !== null && i.seed !== undefined) html += row("seed", esc(i.seed));
  return html + "</table>";
}

export function panelRun(v) {
  let html = v.runs.map((run) => runTable(v, run)).join("");
  const same = [...(v.same || [])];
  if (same.length) html += `<p class="muted" data-same="${same.join(" ")}">${sameText(same)}</p>`;
  if (v.compare) html += compareTable(v.runs);
  html += `<h3>Legend</h3><ul>
      <li><span class="swatch" style="background:${COL.kind[1]}"></span>send, <span class="swatch" style="background:${COL.kind[2]}"></span>receive, <span class="swatch" style="background:${COL.kind[0]}"></span>internal</li>
      <li><span class="band" style="background:${COL.arrow}"></span>message, send to the tick that handled it; <span class="band" style="background:${COL.arrowBack}"></span>goes backwards on this axis</li>
      <li><span style="color:${COL.drop}">✕</span> dropped message; dashed: never handled; ✕ after a lane's last event: its log ends without a stop line</li>
      <li><span class="band" style="background:${COL.fault}"></span>partition, <span class="band" style="background:${COL.pause}"></span>pause</li>${findingsLegend(v)}</ul>
      <p class="muted">Click an event for its causal past and future; click an arrow for the message. Press ? for the keys.</p>`;
  return html;
}

/* Only where a page marks check's findings (lclock shrink's do). */
function findingsLegend(v) {
  const marked = v.runs.some((run) => run.marks.kinds.includes("finding") && run.marks.kind.some((k) => run.marks.kinds[k] === "finding"));
  return marked ? `<li><span style="color:#d62728">◯</span> an event a finding of <code>lclock check</code> names (hover it for the finding)</li>` : "";
}

export function compareTable(runs) {
  const cell = (a, b) => `<td class="num${differ(a, b) ? " diff" : ""}">${a === undefined ? "-" : fixed(a, 3)} / ${b === undefined ? "-" : fixed(b, 3)}</td>`;
  let html = `<h3>A / B per machine</h3><p class="muted">Shaded: more than 20% apart. The charts between the runs show drift, queues and jumps along the axis.</p><table><tr><th>m</th><th>jump mean</th><th>jump max</th><th>queue max</th><th>final L</th></tr>`;
  for (const { id, a, b } of compareRows(runs[0], runs[1])) {
    html += `<tr><th>${id}</th>${cell(a.jmean, b.jmean)}${cell(a.jmax, b.jmax)}${cell(a.qmax, b.qmax)}${cell(a.L, b.L)}</tr>`;
  }
  return html + "</table>";
}
