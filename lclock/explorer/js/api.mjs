/* window.lclockExplorer: a small API for the tests and the benchmark (and the console).
 * `h` holds the page's state and actions (see main.mjs). */
import { COL } from "./colors.mjs";
import { xcol } from "./layout.mjs";
import { logLine } from "./text.mjs";
import { crossingInfo, cutText, snapshotText } from "./cuts.mjs";
import { cutPoints } from "./cutdraw.mjs";

function cutExport(run, cnt, verdict) {
  return { cut: cutText(run, cnt), consistent: verdict.consistent, count: verdict.count, crossing: crossingInfo(run, verdict.crossing) };
}

function causalExport(S) {
  const c = S.causal;
  if (!c) return null;
  return { run: c.run.slot, machine: c.run.lanes[c.li].id, index: c.k, source: c.source,
    lanes: c.run.lanes.map((ln, j) => ({ machine: ln.id, pastEnd: c.pastEnd[j], futureStart: c.futStart[j], n: ln.n })),
    counts: c.counts };
}

function runsExport(RUNS) {
  return RUNS.map((r) => ({ id: r.id, machines: r.lanes.map((l) => ({ id: l.id, events: l.n })), messages: r.M,
    drops: r.drops.n, pending: r.pending.n, marks: r.marks.n, bands: r.bands.length, clocks: r.clocks, vc: r.vcOK }));
}

export function installApi(h) {
  const { S, V, RUNS } = h;
  const xOf = (slot, machine, k) => { const run = RUNS[slot]; return xcol(run, run.laneOf.get(machine), S.mode).x[k]; };
  window.lclockExplorer = {
    get ready() { return !!S.readyAt; },
    readyAt: () => S.readyAt,
    stats: () => S.stats,
    runs: () => runsExport(RUNS),
    modes: h.modes,
    same: () => [...S.same],
    setAxis: (m) => h.setMode(m, false),
    drawNow: () => { h.draw(); return S.stats; },
    select: (slot, machine, k) => { const run = RUNS[slot]; h.selectEvent(run, run.laneOf.get(machine), k); h.draw(); return causalExport(S); },
    causal: () => causalExport(S),
    selectMessage: (slot, m) => {
      if (!(m >= 0 && m < RUNS[slot].M)) return null;
      h.selectMessage(RUNS[slot], m); h.draw(); return h.panel.innerText;
    },
    messageOf: (slot, machine, k) => RUNS[slot].msgOfRecv[RUNS[slot].laneOf.get(machine)][k],
    clear: () => { h.clearSelection(); h.draw(); },
    panelText: () => h.panel.innerText,
    view: () => S.xs.domain(),
    domain: () => S.domain.slice(),
    layout: () => ({ W: S.W, H: S.H, laneH: S.laneH, rows: S.rows.filter((r) => !r.title).map((r) => ({ y: r.y, h: r.h })) }),
    showRange: (a, b) => { h.showRange(a, b); h.draw(); return S.xs.domain(); },
    panBy: (px) => { h.panBy(px); },
    zoomBy: (f, px) => { h.zoomBy(f, px); },
    fit: () => { h.fit(); h.draw(); },
    search: (machine, clock, text) => {
      const r = h.search(machine, clock, text);
      return { ...r, selected: S.sel ? { run: S.sel.run.slot, machine: S.sel.run.lanes[S.sel.li].id, index: S.sel.k } : null };
    },
    hideMachines: (ids) => { h.setHidden(ids); h.draw(); return S.stats; },
    setKinds: (k) => { S.kinds = k.slice(); h.syncFilterUI(); h.draw(); return S.stats; },
    setLayer: (name, on) => { S.layers[name] = on; h.syncFilterUI(); h.draw(); return S.stats; },
    xToPx: (x) => S.xs(x),
    xOf,
    eventXY: (slot, machine, k) => {
      const row = S.rowOf[slot][RUNS[slot].laneOf.get(machine)];
      return row ? [S.xs(xOf(slot, machine, k)), row.y] : null;
    },
    pixel: (x, y) => Array.from(V.ctx.getImageData(Math.round(x * S.dpr), Math.round(y * S.dpr), 1, 1).data),
    colors: () => ({ kind: COL.kind, past: COL.past, future: COL.future, conc: COL.conc }),
    logLine: (slot, machine, k) => logLine(RUNS[slot], RUNS[slot].laneOf.get(machine), k),
    cut: () => (S.cut ? cutExport(RUNS[0], S.cut.cnt, S.cut.verdict) : null),
    setCut: (ticks) => { h.setCutTicks(ticks); h.draw(); return cutExport(RUNS[0], S.cut.cnt, S.cut.verdict); },
    cutMode: (on) => { h.setCutMode(on); h.draw(); return S.cutMode; },
    cutHandleXY: (machine) => {
      const li = RUNS[0].laneOf.get(machine), p = S.cut ? cutPoints(V, RUNS[0], S.cut.cnt).find((q) => q[2] === li) : null;
      return p ? [p[0], p[1]] : null;
    },
    snapshotXY: (id, machine) => {
      const sn = S.snaps.find((x) => x.id === id), li = RUNS[0].laneOf.get(machine);
      const p = sn ? cutPoints(V, RUNS[0], sn.cnt).find((q) => q[2] === li) : null;
      return p ? [p[0], p[1]] : null;
    },
    snapshots: () => S.snaps.map((sn) => ({ id: sn.id, complete: sn.complete, text: snapshotText(sn), ...cutExport(RUNS[0], sn.cnt, sn.verdict) })),
    hitAt: (x, y) => { const t = h.hitAt(x, y); return t ? { type: t.type, machine: t.li !== undefined ? t.run.lanes[t.li].id : null, index: t.k ?? null, m: t.m ?? null } : null; },
  };
}
