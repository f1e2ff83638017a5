/* lclock explorer: a space-time diagram of one run (or two, compared) on a canvas.
 *
 * The data block holds per-machine columns (see lclock/explorer/extract.py; decoded by
 * data.mjs). Everything is drawn on one canvas per frame (draw.mjs). d3 (a global, vendored
 * into the page) provides the zoom behaviour (mouse, touchpad, touch), the scales and the
 * brush of the overview strip. This module holds the view's state and wires the page:
 * zoom, pan, overview, hover, clicks, search, filters, keys. window.lclockExplorer
 * (api.mjs) is a small API for the tests and the benchmark, handy from the console too.
 */
import { decodeRuns, upperBound } from "./data.mjs";
import { causal } from "./causality.mjs";
import { drawFrame, drawOverview } from "./draw.mjs";
import { hitAt as hitAtIn } from "./hit.mjs";
import { GUTTER, MODES, RIGHT, clampRange, domainOf, laneRows, modesOf, sameAsReal, spanAround, xcol } from "./layout.mjs";
import { panelEvent, panelMessage, panelRun } from "./panel.mjs";
import { parseIds, search, searchClocks } from "./search.mjs";
import { esc, evName, fmtSec, logLine, msgText, where } from "./text.mjs";
import { installApi } from "./api.mjs";
import { countAt, countsOfTicks, judge, snapshotCuts, snapshotText, verdictText } from "./cuts.mjs";
import { drawCuts, handleAt, snapshotAt } from "./cutdraw.mjs";

const $ = (id) => document.getElementById(id);
const RUNS = decodeRuns(JSON.parse($("lclock-data").textContent));
const COMPARE = RUNS.length > 1;
const MODES_OK = modesOf(RUNS);

const S = {
  mode: "real", domain: [0, 1], transform: d3.zoomIdentity, xs: d3.scaleLinear(),
  kinds: [true, true, true], layers: { arrows: true, drops: true, pending: true, faults: true, marks: true },
  hidden: new Set(), sel: null, prevSel: null, msgSel: null, hover: null, causal: null, results: [], resultPos: -1,
  arrows: { buf: new Int32Array(0), n: 0, runs: [] }, rows: [], rowOf: [], laneH: 0, diffBox: null, W: 0, H: 0, dpr: 1, stats: null, frames: 0, readyAt: null,
  same: new Set(["hlc", "pt"].filter((m) => MODES_OK.includes(m) && sameAsReal(RUNS, m))),
  snaps: COMPARE ? [] : snapshotCuts(RUNS[0]), cut: null, cutMode: false, drag: null,
};
const canvas = $("main"), layer = document.createElement("canvas");
const V = { S, runs: RUNS, compare: COMPARE, ctx: canvas.getContext("2d"), layer, lctx: layer.getContext("2d"), img: null, buf: null };
const ov = $("overview"), octx = ov.getContext("2d");
const base = d3.scaleLinear();
const hitAt = (px, py) => hitAtIn(S, px, py);
const panel = $("panel");

// ------------------------------------------------------------------ layout

function layout() {
  const r = $("chart").getBoundingClientRect();
  S.dpr = window.devicePixelRatio || 1;
  S.W = Math.max(200, Math.floor(r.width)); S.H = Math.max(120, Math.floor(r.height));
  for (const c of [canvas, layer]) { c.width = Math.floor(S.W * S.dpr); c.height = Math.floor(S.H * S.dpr); }
  V.ctx.setTransform(S.dpr, 0, 0, S.dpr, 0, 0);
  V.img = V.lctx.createImageData(layer.width, layer.height);
  V.buf = new Uint32Array(V.img.data.buffer);
  Object.assign(S, laneRows(RUNS, S.hidden, S.H));
  base.domain(S.domain).range([GUTTER, S.W - RIGHT]);
  S.xs = S.transform.rescaleX(base);
  zoom.extent([[GUTTER, 0], [S.W - RIGHT, S.H]]).translateExtent([[GUTTER, 0], [S.W - RIGHT, S.H]]);
  layoutOverview();
}

// ------------------------------------------------------------------ zoom and pan

const zoom = d3.zoom().scaleExtent([1, 1e9]).clickDistance(4)
  .filter((ev) => (!ev.ctrlKey || ev.type === "wheel") && !ev.button && !(S.cutMode && ev.type !== "wheel"))
  .on("zoom", (ev) => { S.transform = ev.transform; S.xs = S.transform.rescaleX(base); request(); })
  .on("start", (ev) => { if (ev.sourceEvent && ev.sourceEvent.type === "mousedown") canvas.classList.add("grabbing"); })
  .on("end", () => canvas.classList.remove("grabbing"));
const zsel = d3.select(canvas);
zsel.call(zoom).on("dblclick.zoom", null);
// sideways swipes (touchpads) and shift+wheel pan instead of zooming
canvas.addEventListener("wheel", (ev) => {
  const sideways = Math.abs(ev.deltaX) > Math.abs(ev.deltaY);
  if (ev.ctrlKey || !(sideways || ev.shiftKey)) return;
  ev.preventDefault(); ev.stopImmediatePropagation();
  const d = sideways ? ev.deltaX : ev.deltaY || ev.deltaX;
  panBy(-d * (ev.deltaMode === 1 ? 20 : 1));
}, { capture: true, passive: false });

function panBy(px) { zsel.call(zoom.translateBy, px / S.transform.k, 0); }
function zoomBy(f, px) { zsel.call(zoom.scaleBy, f, [px === undefined ? (GUTTER + S.W - RIGHT) / 2 : px, 0]); }
function showRange(a, b) {
  const { start, k } = clampRange(S.domain, a, b);
  zsel.call(zoom.transform, k === 1 ? d3.zoomIdentity : d3.zoomIdentity.translate(GUTTER - k * base(start), 0).scale(k));
}
function fit() { zsel.call(zoom.transform, d3.zoomIdentity); }
function centerOn(x) { const [a, b] = S.xs.domain(); showRange(x - (b - a) / 2, x + (b - a) / 2); }
function zoomAround(x) { const span = spanAround(RUNS, S.domain); showRange(x - span / 2, x + span / 2); }

function setMode(mode, keep) {
  if (!MODES_OK.includes(mode)) return false;
  S.mode = mode;
  $("axis").value = mode;
  S.domain = domainOf(RUNS, mode);
  base.domain(S.domain);
  S.transform = d3.zoomIdentity;
  zsel.call(zoom.transform, d3.zoomIdentity);
  S.xs = base.copy();
  buildOverview();
  if (keep && S.sel) { const e = S.sel; zoomAround(xcol(e.run, e.li, mode).x[e.k]); }
  request();
  return true;
}

// ------------------------------------------------------------------ drawing

let pending = false;
function request() { if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; draw(); }); } }

function draw() {
  const t0 = performance.now();
  S.xs = S.transform.rescaleX(base);
  const stats = drawFrame(V);
  drawCuts(V);
  stats.ms = performance.now() - t0;
  S.stats = stats; S.frames++;
  const b = document.body.dataset;
  b.lanesDrawn = stats.lanes; b.eventsDrawn = stats.events; b.arrowsDrawn = stats.arrows; b.frames = S.frames;
  $("status").textContent = statusText(stats);
  if (!S.readyAt) { S.readyAt = performance.now(); b.ready = "1"; }
  positionBrush();
}

function statusText(st) {
  const parts = [`${st.events.toLocaleString("en-US")} events in view`];
  if (st.arrowsInView) parts.push(st.thinned > 1 ? `arrows: 1 in ${st.thinned} of ${st.arrowsInView.toLocaleString("en-US")} (zoom in for all)` : `${st.arrows.toLocaleString("en-US")} arrows`);
  if (st.backward) parts.push(`${st.backward} message(s) go backwards on this axis`);
  return parts.join(" · ");
}

// ------------------------------------------------------------------ overview strip

/* The brush lives in a group of its own: d3's brush reads the datum of the element a
   press lands on, and the bare svg (outside the brush's extent) has none. */
const brush = d3.brushX().on("brush end", (ev) => {
  if (!ev.sourceEvent || !ev.selection) return;
  const [a, b] = ev.selection.map((p) => ovScale.invert(p));
  showRange(a, b);
});
const brushSvg = d3.select("#brush"), brushSel = brushSvg.append("g");
const ovScale = d3.scaleLinear();
let syncing = false;
function layoutOverview() {
  const r = $("overview-box").getBoundingClientRect();
  ov.width = Math.floor(r.width * S.dpr); ov.height = Math.floor(r.height * S.dpr);
  ovScale.domain(S.domain).range([GUTTER, r.width - RIGHT]);
  brush.extent([[GUTTER, 2], [Math.max(GUTTER + 1, r.width - RIGHT), Math.max(3, r.height - 2)]]);
  brushSvg.attr("width", r.width).attr("height", r.height);
  brushSel.call(brush);
}
function buildOverview() { ovScale.domain(S.domain); drawOverview(V, ov, octx); }
function positionBrush() {
  if (syncing) return;
  syncing = true;
  const [a, b] = S.xs.domain();
  const full = Math.abs(a - S.domain[0]) < 1e-12 && Math.abs(b - S.domain[1]) < 1e-12;
  brushSel.call(brush.move, full ? null : [ovScale(a), ovScale(b)]);
  syncing = false;
}

// ------------------------------------------------------------------ hover and click

const tip = $("tip");
function tipHtml(h) {
  if (h.type === "event") return `<b>${esc(evName(h.run, h.li, h.k, COMPARE))}</b> <span class="where">${esc(where(h.run, h.li, h.k))}</span><pre>${esc(logLine(h.run, h.li, h.k))}</pre>`;
  if (h.type === "msg") return `<b>${esc(msgText(h.run, h.m))}</b><br><span class="where">click for details</span>`;
  if (h.type === "mark") return `<span class="where">${esc(h.run.lanes[h.run.marks.lane[h.i]].file)}:${h.run.marks.line[h.i]}</span><pre>${esc(h.run.marks.text[h.i])}</pre>`;
  if (h.type === "drop") return dropHtml(h.run, h.i);
  if (h.type === "snap") return snapHtml(h.snap);
  return `<b>${esc(h.band.label)}</b><br>${esc(fmtSec(h.band.t0 / 1e6))} to ${esc(fmtSec(h.band.t1 / 1e6))} (host time since t0)`;
}
function dropHtml(run, i) {
  const dr = run.drops, ln = run.lanes[dr.lane[i]];
  return `<b>dropped: m${ln.id} → m${dr.to[i]}</b>, message L=${dr.msg[i]}, reason <b>${esc(dr.reasons[dr.reason[i]])}</b><br><span class="where">${esc(ln.file)}:${dr.line[i]}</span>`;
}
function snapHtml(sn) {
  return `<b>${esc(verdictText(RUNS[0], sn.cnt, sn.verdict).replace(/^cut/, `snapshot ${sn.id}: cut`))}</b><pre>${esc(snapshotText(sn).join("\n"))}</pre>`;
}
canvas.addEventListener("mousemove", (ev) => {
  const r = canvas.getBoundingClientRect(), px = ev.clientX - r.left, py = ev.clientY - r.top;
  if (S.drag) { dragCut(px); return; }
  const sn = snapshotAt(V, px, py);
  const h = sn ? { type: "snap", snap: sn } : hitAt(px, py);
  S.hover = h;
  tip.hidden = !h;
  if (h) {
    tip.innerHTML = tipHtml(h);
    const tw = tip.offsetWidth, th = tip.offsetHeight;
    tip.style.left = Math.min(px + 14, S.W - tw - 4) + "px";
    tip.style.top = (py + 16 + th > S.H ? py - th - 10 : py + 16) + "px";
  }
  request();
});
canvas.addEventListener("mouseleave", () => { tip.hidden = true; S.hover = null; request(); });
canvas.addEventListener("click", (ev) => {
  if (S.cutMode) return;  // the press placed or dragged the cut
  const r = canvas.getBoundingClientRect();
  const sn = snapshotAt(V, ev.clientX - r.left, ev.clientY - r.top);
  if (sn) { panel.innerHTML = snapHtml(sn); return; }
  const h = hitAt(ev.clientX - r.left, ev.clientY - r.top);
  if (!h) { clearSelection(); return; }
  if (h.type === "event") selectEvent(h.run, h.li, h.k);
  else if (h.type === "msg") selectMessage(h.run, h.m);
  else if (h.type === "drop" && h.run.drops.s[h.i] >= 0) {
    const g = h.run.drops.s[h.i], li = upperBound(h.run.off, g) - 1;
    selectEvent(h.run, li, g - h.run.off[li]);
  }
});

// ------------------------------------------------------------------ a cut dragged across the lanes

/* The cut as counts of each lane's events shown, judged at once (cuts.mjs). */
function setCut(cnt) {
  const run = RUNS[0], verdict = judge(run, cnt), el = $("cut-verdict");
  S.cut = { cnt: Int32Array.from(cnt), verdict };
  el.hidden = false; el.className = verdict.consistent ? "ok" : "bad";
  el.textContent = verdictText(run, S.cut.cnt, verdict);
  document.body.dataset.cutConsistent = verdict.consistent ? "1" : "0";
  request();
}
function setCutMode(on) {
  S.cutMode = on && !COMPARE;
  $("cut-btn").classList.toggle("on", S.cutMode);
  canvas.classList.toggle("cutting", S.cutMode);
  if (S.cutMode && !S.cut) { const [a, b] = S.xs.domain(); setCut(cutAtX((a + b) / 2)); }
}
function cutAtX(X) { return RUNS[0].lanes.map((ln, li) => countAt(xcol(RUNS[0], li, S.mode), X)); }
function dragCut(px) {
  const X = S.xs.invert(px);
  if (S.drag.li < 0) { setCut(cutAtX(X)); return; }
  const cnt = Int32Array.from(S.cut.cnt);
  cnt[S.drag.li] = countAt(xcol(RUNS[0], S.drag.li, S.mode), X);
  setCut(cnt);
}
canvas.addEventListener("mousedown", (ev) => {
  if (!S.cutMode || ev.button) return;
  const r = canvas.getBoundingClientRect(), px = ev.clientX - r.left;
  S.drag = { li: handleAt(V, px, ev.clientY - r.top) };
  tip.hidden = true;
  dragCut(px);
});
window.addEventListener("mouseup", () => { S.drag = null; });
$("cut-btn").addEventListener("click", () => setCutMode(!S.cutMode));
$("cut-btn").hidden = COMPARE;  // a cut is of one run

// ------------------------------------------------------------------ selection and panel

const view = () => ({ runs: RUNS, compare: COMPARE, sel: S.sel, prevSel: S.prevSel, causal: S.causal, msgSel: S.msgSel, same: S.same });
function selectEvent(run, li, k) {
  if (S.sel && (S.sel.li !== li || S.sel.k !== k)) S.prevSel = S.sel;  // for "lclock hb A B"
  S.sel = { run, li, k }; S.msgSel = null;
  S.causal = causal(run, li, k);
  panel.innerHTML = panelEvent(view());
  request();
}
function selectMessage(run, m) {
  const sl = run.mSL[m], si = run.mSI[m], st = run.msgsOfSendStart[sl];
  const all = [];
  for (let q = st[si]; q < st[si + 1]; q++) all.push(q);
  S.msgSel = { run, m, all }; S.sel = null; S.causal = null;
  panel.innerHTML = panelMessage(view());
  request();
}
function clearSelection() { S.sel = null; S.msgSel = null; S.causal = null; panel.innerHTML = panelRun(view()); request(); }

panel.addEventListener("click", (ev) => {
  const b = ev.target.closest("button");
  if (!b) return;
  if (b.dataset.msg) selectMessage(S.sel.run, +b.dataset.msg);
  else if (b.dataset.sendmsg) { const { run, li, k } = S.sel; const st = run.msgsOfSendStart[li]; if (st[k] < st[k + 1]) selectMessage(run, st[k]); }
  else if (b.dataset.center) centerSelection();
  else if (b.dataset.clear) clearSelection();
  else if (b.dataset.selSend) { const { run, m } = S.msgSel; selectEvent(run, run.mSL[m], run.mSI[m]); }
});
function centerSelection() {
  if (S.sel) centerOn(xcol(S.sel.run, S.sel.li, S.mode).x[S.sel.k]);
  else if (S.msgSel) { const { run, m } = S.msgSel; centerOn(xcol(run, run.mSL[m], S.mode).x[run.mSI[m]]); }
}

// ------------------------------------------------------------------ search

function setupSearch() {
  $("s-machine").innerHTML = `<option value="">any machine</option>` + RUNS.map((run) => run.lanes.map((ln, li) =>
    `<option value="${run.slot}:${li}">${COMPARE ? run.name + " · " : ""}machine ${ln.id}</option>`).join("")).join("");
  $("s-clock").innerHTML = searchClocks(RUNS).map(([k, l]) => `<option value="${k}">${l}</option>`).join("");
  $("search").addEventListener("submit", (ev) => { ev.preventDefault(); runSearch(); });
  $("s-next").addEventListener("click", () => stepResult(1));
  $("s-prev").addEventListener("click", () => stepResult(-1));
}
function runSearch() {
  const r = search(RUNS, $("s-machine").value, $("s-clock").value, $("s-value").value);
  S.results = r.results; S.resultPos = -1;
  $("s-result").textContent = r.message;
  $("s-result").dataset.count = r.results.length;
  if (r.results.length) stepResult(1);
  return r;
}
function stepResult(d) {
  if (!S.results.length) return;
  S.resultPos = (S.resultPos + d + S.results.length) % S.results.length;
  const [run, li, k] = S.results[S.resultPos];
  if (S.hidden.has(run.lanes[li].id)) { S.hidden.delete(run.lanes[li].id); syncFilterUI(); layout(); buildOverview(); }
  if (!S.kinds[run.lanes[li].kind[k]]) { S.kinds[run.lanes[li].kind[k]] = true; syncFilterUI(); }
  selectEvent(run, li, k);
  zoomAround(xcol(run, li, S.mode).x[k]);
  if (S.results.length > 1) $("s-result").textContent = `${S.resultPos + 1} of ${S.results.length.toLocaleString("en-US")}`;
}

// ------------------------------------------------------------------ filters

const allIds = () => [...new Set(RUNS.flatMap((r) => r.lanes.map((l) => l.id)))].sort((a, b) => a - b);
function setHidden(ids) { S.hidden = new Set(ids); syncFilterUI(); layout(); buildOverview(); request(); }
function onFilterChange(t, ids) {
  if (t.dataset.machine) { const id = +t.dataset.machine; const h = new Set(S.hidden); if (t.checked) h.delete(id); else h.add(id); setHidden(h); }
  else if (t.dataset.kind) { S.kinds[+t.dataset.kind] = t.checked; request(); }
  else if (t.dataset.layer) { S.layers[t.dataset.layer] = t.checked; request(); }
  else if (t.id === "f-machines") {
    const want = t.value.trim() ? parseIds(t.value) : new Set(ids);
    if (!want) { t.setCustomValidity("ids and ranges, e.g. 1-4,9"); t.reportValidity(); return; }
    t.setCustomValidity("");
    setHidden(ids.filter((i) => !want.has(i)));
  }
}
function setupFilters() {
  const ids = allIds();
  $("f-machine-list").innerHTML = ids.map((id) => `<label><input type="checkbox" data-machine="${id}" checked> m${id}</label>`).join("");
  $("filters").addEventListener("change", (ev) => onFilterChange(ev.target, ids));
  $("f-all").addEventListener("click", () => setHidden([]));
  $("f-none").addEventListener("click", () => setHidden(ids.slice(1)));
}
function syncFilterUI() {
  for (const el of document.querySelectorAll("[data-machine]")) el.checked = !S.hidden.has(+el.dataset.machine);
  for (const el of document.querySelectorAll("[data-kind]")) el.checked = S.kinds[+el.dataset.kind];
  for (const el of document.querySelectorAll("[data-layer]")) el.checked = S.layers[el.dataset.layer];
}

// ------------------------------------------------------------------ keyboard

const KEYS = [
  [["ArrowLeft", "a", "A"], () => panBy((S.W - GUTTER - RIGHT) * 0.15)],
  [["ArrowRight", "d", "D"], () => panBy(-(S.W - GUTTER - RIGHT) * 0.15)],
  [["+", "=", "w", "W", "ArrowUp"], () => zoomBy(1.5, selPx())],
  [["-", "_", "s", "S", "ArrowDown"], () => zoomBy(1 / 1.5, selPx())],
  [["0", "Home"], () => fit()],
  [["Escape"], () => { clearSelection(); $("help").hidden = true; }],
  [["c", "C"], () => centerSelection()],
  [["n"], () => stepResult(1)],
  [["N"], () => stepResult(-1)],
  [["/"], () => $("s-value").focus()],
  [["?"], () => { $("help").hidden = !$("help").hidden; }],
  [["x", "X"], () => setCutMode(!S.cutMode)],
];
window.addEventListener("keydown", (ev) => {
  const tag = (ev.target.tagName || "").toLowerCase();
  if (tag === "input" || tag === "select" || tag === "textarea") { if (ev.key === "Escape") ev.target.blur(); return; }
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const hit = KEYS.find(([keys]) => keys.includes(ev.key));
  if (!hit) return;
  hit[1]();
  ev.preventDefault();
});
function selPx() {
  if (!S.sel) return undefined;
  const p = S.xs(xcol(S.sel.run, S.sel.li, S.mode).x[S.sel.k]);
  return p >= GUTTER && p <= S.W - RIGHT ? p : undefined;
}

// ------------------------------------------------------------------ start

/* An axis that only repeats real time (no clock skewed) says so in its name. */
function axisOption(m) {
  const same = S.same.has(m);
  const title = same ? `${MODES[m].title}. Here it equals real time on every event: no clock was skewed` : MODES[m].title;
  return `<option value="${m}" title="${esc(title)}">${same ? `${MODES[m].short} = real time` : MODES[m].label}</option>`;
}

function setupHeader() {
  const i = RUNS.map((r) => r.info), n = (x) => x.toLocaleString("en-US");
  $("runinfo").textContent = $("runinfo").title = COMPARE
    ? `A ${i[0].id} (${i[0].n} machines, ${n(i[0].events)} events) vs B ${i[1].id} (${i[1].n} machines, ${n(i[1].events)} events)`
    : `${i[0].id} · ${i[0].status} · ${i[0].n} machines · ${n(i[0].events)} events`;
  $("axis").innerHTML = MODES_OK.map(axisOption).join("");
  $("axis").addEventListener("change", (ev) => setMode(ev.target.value, true));
  const notes = RUNS.flatMap((r) => (r.info.notes || []).map((x) => (COMPARE ? `${r.name}: ` : "") + x));
  $("notes").innerHTML = notes.map((x) => `<p>${esc(x)}</p>`).join("");
  $("fit").addEventListener("click", fit);
  $("help-btn").addEventListener("click", () => { $("help").hidden = !$("help").hidden; });
  $("help").addEventListener("click", () => { $("help").hidden = true; });
}

setupHeader();
setupSearch();
setupFilters();
S.domain = domainOf(RUNS, "real");
layout();
buildOverview();
panel.innerHTML = panelRun(view());
window.addEventListener("resize", () => { layout(); buildOverview(); request(); });
draw();

installApi({
  S, V, RUNS, panel, draw, selectEvent, selectMessage, clearSelection, setMode, showRange, panBy, zoomBy, fit,
  setHidden, syncFilterUI, hitAt, modes: () => MODES_OK.slice(), setCut, setCutMode,
  setCutTicks: (ticks) => setCut(countsOfTicks(RUNS[0], ticks)),
  search: (machine, clock, text) => {
    $("s-machine").value = machine; $("s-clock").value = clock; $("s-value").value = text;
    const r = runSearch(); draw();
    return { count: r.results.length, message: $("s-result").textContent };
  },
});
