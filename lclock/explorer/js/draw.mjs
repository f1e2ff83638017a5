/* Drawing one frame on the canvas: lanes, fault bands, concurrency bands, the diff charts of
 * two runs, arrows (thinned when too many to read), drops, never-handled messages, events
 * (dots, or pixels written straight into an image buffer when thousands share the screen),
 * marks, the selection and the axis; and the overview strip. The view `v` holds the state
 * (v.S), the runs and the canvases; see main.mjs. */
import { COL, rgba } from "./colors.mjs";
import { classOf } from "./causality.mjs";
import { diffSeries, DIFF_SERIES, seriesGap } from "./diff.mjs";
import { AXIS_H, DIFF_ROW_H, GUTTER, MODES, RIGHT, axisTicks, histogram, inSight, timeX, xcol } from "./layout.mjs";
import { fixed, fmtAxis } from "./text.mjs";

export const VECTOR_LIMIT = 4000, ARROW_LIMIT = 3000, HEAD_LIMIT = 1200;
const PIX = { kind: COL.kind.map(rgba), past: rgba(COL.past), future: rgba(COL.future), conc: rgba(COL.conc), sel: rgba("#000000") };

/* One frame; its figures (what was drawn) for the status line, the tests and the benchmark. */
export function drawFrame(v) {
  const S = v.S, ctx = v.ctx;
  const [x0, x1] = S.xs.domain();
  const stats = { lanes: 0, events: 0, perLane: v.runs.map(() => ({})), arrows: 0, arrowsInView: 0,
    thinned: 1, backward: 0, drops: 0, pending: 0, marks: 0, bands: 0, mode: S.mode, view: [x0, x1], dots: "vector" };
  ctx.clearRect(0, 0, S.W, S.H);
  drawLaneBackgrounds(v, stats);
  if (S.layers.faults) drawBands(v, stats);
  if (S.causal) drawConcurrency(v);
  if (v.compare) { drawDiff(v, x0, x1); stats.diff = true; }
  if (S.layers.arrows) drawArrows(v, x0, x1, stats);
  if (S.layers.drops) drawDrops(v, x0, x1, stats);
  if (S.layers.pending) drawPending(v, x0, x1, stats);
  drawEvents(v, x0, x1, stats);
  if (S.layers.marks) drawMarks(v, x0, x1, stats);
  drawSelection(v);
  drawAxis(v);
  return stats;
}

function laneFont(v) { return `${Math.min(12, Math.max(8, v.S.laneH * 0.7))}px system-ui, sans-serif`; }

function drawLaneBackgrounds(v, stats) {
  const S = v.S, ctx = v.ctx;
  ctx.save();
  ctx.font = laneFont(v);
  ctx.textBaseline = "middle";
  const every = S.laneH < 9 ? Math.ceil(9 / S.laneH) : 1;
  let n = 0;
  for (const row of S.rows) {
    if (row.title) {
      ctx.fillStyle = row.run.slot ? COL.runB : COL.runA;
      ctx.font = "bold 12px system-ui, sans-serif";
      ctx.fillText(`${row.run.name}: ${row.run.id}`, 6, row.y);
      ctx.font = laneFont(v);
      continue;
    }
    const ln = row.run.lanes[row.li];
    ctx.fillStyle = n++ % 2 ? COL.laneB : COL.laneA;
    ctx.fillRect(GUTTER, row.y - row.h / 2, S.W - GUTTER - RIGHT, row.h);
    ctx.strokeStyle = "#d5d7db";
    ctx.beginPath(); ctx.moveTo(GUTTER, row.y + 0.5); ctx.lineTo(S.W - RIGHT, row.y + 0.5); ctx.stroke();
    if (ln.index % every === 0) {
      ctx.fillStyle = "#333";
      const label = (v.compare ? row.run.name + " " : "") + `m${ln.id}` + (ln.rate ? ` · ${ln.rate}/s` : "") + (ln.stopped ? "" : " ✕");
      ctx.fillText(label, 6, row.y);
    }
    stats.lanes++;
  }
  ctx.restore();
}

function drawPlanBand(v, run, b, stats) {
  const S = v.S, ctx = v.ctx;
  if (S.mode !== "real") return;
  const a = S.xs(b.t0 / 1e6), z = S.xs(b.t1 / 1e6);
  const rows = S.rows.filter((r) => !r.title && r.run === run);
  if (!rows.length || z < GUTTER || a > S.W) return;
  const top = rows[0].y - rows[0].h / 2, bot = rows[rows.length - 1].y + rows[rows.length - 1].h / 2;
  ctx.fillStyle = "rgba(140, 80, 200, 0.07)";
  ctx.fillRect(Math.max(a, GUTTER), top, Math.min(z, S.W) - Math.max(a, GUTTER), bot - top);
  ctx.fillStyle = COL.faultEdge; ctx.font = "10px system-ui"; ctx.textBaseline = "top";
  ctx.fillText(b.label, Math.max(a, GUTTER) + 2, top + 1);
  stats.bands++;
}

function drawBands(v, stats) {
  const S = v.S, ctx = v.ctx;
  ctx.save();
  for (const run of v.runs) for (const b of run.bands) {
    if (b.kind === "plan") { drawPlanBand(v, run, b, stats); continue; }
    const row = S.rowOf[run.slot][b.lane];
    if (!row) continue;
    const a = S.xs(timeX(run, b.lane, b.t0, S.mode)), z = S.xs(timeX(run, b.lane, b.t1, S.mode));
    if (!(z >= GUTTER && a <= S.W)) continue;
    const l = Math.max(a, GUTTER), w = Math.max(2, Math.min(z, S.W) - l);
    ctx.fillStyle = b.kind === "pause" ? COL.pause : COL.fault;
    ctx.fillRect(l, row.y - row.h / 2 + 1, w, row.h - 2);
    if (b.kind === "partition") {
      ctx.strokeStyle = COL.faultEdge; ctx.lineWidth = 1;
      ctx.strokeRect(l + 0.5, row.y - row.h / 2 + 1.5, w - 1, row.h - 3);
    }
    if (row.h >= 14 && w > 40) {
      ctx.fillStyle = b.kind === "pause" ? "#555" : COL.faultEdge; ctx.font = "10px system-ui"; ctx.textBaseline = "top";
      ctx.fillText(b.label, l + 3, row.y - row.h / 2 + 2);
    }
    stats.bands++;
  }
  ctx.restore();
}

function drawConcurrency(v) {
  const S = v.S, ctx = v.ctx;
  const c = S.causal;
  ctx.save();
  ctx.fillStyle = COL.concBand;
  for (let li = 0; li < c.run.N; li++) {
    const row = S.rowOf[c.run.slot][li];
    if (!row) continue;
    const a = c.pastEnd[li], b = c.futStart[li];
    if (li === c.li || b <= a) continue;
    const X = xcol(c.run, li, S.mode).x;
    const xa = a > 0 ? (S.xs(X[a - 1]) + S.xs(X[a])) / 2 : GUTTER;
    const xb = b < c.run.lanes[li].n ? (S.xs(X[b - 1]) + S.xs(X[b])) / 2 : S.W - RIGHT;
    const l = Math.max(GUTTER, Math.min(xa, xb)), r = Math.min(S.W - RIGHT, Math.max(xa, xb));
    if (r > l) ctx.fillRect(l, row.y - row.h / 2, r - l, row.h);
  }
  ctx.restore();
}

/* Both ends of every message on the current axis, as two flat arrays (the hot loop). */
function msgX(v, run) {
  const S = v.S;
  run.mx = run.mx || {};
  if (run.mx[S.mode]) return run.mx[S.mode];
  const xs = new Float64Array(run.M), xr = new Float64Array(run.M);
  const X = run.lanes.map((ln, li) => xcol(run, li, S.mode).x);
  for (let m = 0; m < run.M; m++) { xs[m] = X[run.mSL[m]][run.mSI[m]]; xr[m] = X[run.mRL[m]][run.mRI[m]]; }
  return (run.mx[S.mode] = { xs, xr });
}

/* The messages with an end in sight, into v.S.arrows.buf (kept for hit testing). */
function collectArrows(v, x0, x1, stats) {
  const S = v.S;
  v.S.arrows.n = 0; v.S.arrows.runs = [];
  const anyHidden = S.hidden.size > 0;
  for (const run of v.runs) {
    const rows = S.rowOf[run.slot];
    const M = run.M, { xs: MXS, xr: MXR } = msgX(v, run), mSL = run.mSL, mRL = run.mRL;
    if (v.S.arrows.buf.length < v.S.arrows.n + M) { const a = new Int32Array(v.S.arrows.n + M); a.set(v.S.arrows.buf.subarray(0, v.S.arrows.n)); v.S.arrows.buf = a; }
    const start = v.S.arrows.n, buf = v.S.arrows.buf;
    let n = v.S.arrows.n, back = 0;
    for (let m = 0; m < M; m++) {
      const a = MXS[m], b = MXR[m];
      if ((a < x0 && b < x0) || (a > x1 && b > x1)) continue;
      if (anyHidden && (!rows[mSL[m]] || !rows[mRL[m]])) continue;
      if (b < a) back++;
      buf[n++] = m;
    }
    v.S.arrows.n = n;
    stats.backward += back;
    v.S.arrows.runs.push([run, start, n]);
  }
  stats.arrowsInView = v.S.arrows.n;
}

function arrowGroup(v, run, sl, si, rl, ri, X) {
  const S = v.S;
  const c = S.causal;
  if (!c || c.run !== run) return X[rl][ri] < X[sl][si] ? "back" : "normal";
  const cs = classOf(c, run, sl, si), cr = classOf(c, run, rl, ri);
  return (cs === 1 || cs === 4) && (cr === 1 || cr === 4) ? "past" : (cs === 2 || cs === 4) && (cr === 2 || cr === 4) ? "future" : "dim";
}

function drawArrows(v, x0, x1, stats) {
  const S = v.S, ctx = v.ctx;
  collectArrows(v, x0, x1, stats);
  const stride = v.S.arrows.n > ARROW_LIMIT ? Math.ceil(v.S.arrows.n / ARROW_LIMIT) : 1;
  stats.thinned = stride;
  const heads = v.S.arrows.n / stride <= HEAD_LIMIT;
  const groups = { normal: new Path2D(), back: new Path2D(), past: new Path2D(), future: new Path2D(), dim: new Path2D() };
  for (const [run, s0, s1] of v.S.arrows.runs) {
    const X = run.lanes.map((ln, li) => xcol(run, li, S.mode).x), rows = S.rowOf[run.slot];
    for (let i = s0; i < s1; i++) {
      const m = v.S.arrows.buf[i];
      if (stride > 1 && (m % stride) !== 0) continue;
      const sl = run.mSL[m], rl = run.mRL[m], si = run.mSI[m], ri = run.mRI[m];
      const xa = S.xs(X[sl][si]), xb = S.xs(X[rl][ri]), ya = rows[sl].y, yb = rows[rl].y;
      const p = groups[arrowGroup(v, run, sl, si, rl, ri, X)];
      p.moveTo(xa, ya); p.lineTo(xb, yb);
      if (heads) arrowHead(v, p, xa, ya, xb, yb);
      stats.arrows++;
    }
  }
  const style = { normal: COL.arrow, back: COL.arrowBack, past: COL.past, future: COL.future, dim: "rgba(150,150,150,0.25)" };
  ctx.save();
  for (const g of ["dim", "normal", "past", "future", "back"]) {
    ctx.strokeStyle = style[g];
    ctx.lineWidth = g === "back" ? 1.6 : stride > 1 ? 0.6 : 1;
    ctx.stroke(groups[g]);
  }
  ctx.restore();
}

function arrowHead(v, p, xa, ya, xb, yb) {
  const S = v.S;
  const a = Math.atan2(yb - ya, xb - xa), L = 6, r = Math.max(3, Math.min(6, S.laneH * 0.25));
  const ex = xb - Math.cos(a) * r, ey = yb - Math.sin(a) * r;
  p.moveTo(ex, ey); p.lineTo(ex - L * Math.cos(a - 0.4), ey - L * Math.sin(a - 0.4));
  p.moveTo(ex, ey); p.lineTo(ex - L * Math.cos(a + 0.4), ey - L * Math.sin(a + 0.4));
}

function drawDrops(v, x0, x1, stats) {
  const S = v.S, ctx = v.ctx;
  ctx.save();
  ctx.strokeStyle = COL.drop; ctx.lineWidth = 1.4;
  const p = new Path2D();
  for (const run of v.runs) {
    const dr = run.drops, rows = S.rowOf[run.slot];
    for (let i = 0; i < dr.n; i++) {
      const li = dr.lane[i], row = rows[li];
      if (!row) continue;
      const x = timeX(run, li, dr.t[i], S.mode);
      if (x < x0 || x > x1) continue;
      const px = S.xs(x), tl = run.laneOf.get(dr.to[i]), trow = tl === undefined ? null : rows[tl];
      const ty = trow ? row.y + (trow.y - row.y) * 0.35 : row.y - row.h * 0.45;
      const tx = px + Math.min(14, Math.abs(ty - row.y) * 0.3 + 4);
      p.moveTo(px, row.y); p.lineTo(tx, ty);
      p.moveTo(tx - 3, ty - 3); p.lineTo(tx + 3, ty + 3); p.moveTo(tx - 3, ty + 3); p.lineTo(tx + 3, ty - 3);
      stats.drops++;
    }
  }
  ctx.stroke(p);
  ctx.restore();
}

function drawPending(v, x0, x1, stats) {
  const S = v.S, ctx = v.ctx;
  ctx.save();
  ctx.strokeStyle = COL.pending; ctx.setLineDash([3, 3]);
  const p = new Path2D();
  for (const run of v.runs) {
    const pe = run.pending, rows = S.rowOf[run.slot];
    for (let i = 0; i < pe.n; i++) {
      const li = run.pendingL[i], row = rows[li], tl = run.laneOf.get(pe.to[i]);
      const trow = tl === undefined ? null : rows[tl];
      if (!row) continue;
      const x = xcol(run, li, S.mode).x[run.pendingI[i]];
      if (x < x0 || x > x1) continue;
      const px = S.xs(x), ty = trow ? row.y + (trow.y - row.y) * 0.5 : row.y - row.h / 2;
      p.moveTo(px, row.y); p.lineTo(px + 18, ty); p.moveTo(px + 22, ty); p.arc(px + 20, ty, 2, 0, 6.3);
      stats.pending++;
    }
  }
  ctx.stroke(p);
  ctx.restore();
}

/* How many events are in sight decides between dots and pixels. */
function drawEvents(v, x0, x1, stats) {
  const S = v.S;
  let inView = 0;
  const ranges = [];
  for (const row of S.rows) {
    if (row.title) continue;
    const c = xcol(row.run, row.li, S.mode), [lo, hi] = inSight(c, x0, x1);
    ranges.push([row, c, lo, hi]);
    inView += hi - lo;
  }
  const vector = inView <= VECTOR_LIMIT;
  stats.dots = vector ? "vector" : "pixels";
  if (vector) drawDots(v, ranges, stats); else drawPixels(v, ranges, stats);
}

function drawDots(v, ranges, stats) {
  const S = v.S, ctx = v.ctx;
  const r = Math.max(2, Math.min(6, S.laneH * 0.28));
  const paths = Array.from({ length: 7 }, () => new Path2D());
  const fills = [...COL.kind, COL.past, COL.future, "#fff", COL.selected];
  for (const [row, c, lo, hi] of ranges) {
    const ln = row.run.lanes[row.li];
    let count = 0;
    for (let j = lo; j < hi; j++) {
      const k = c.ord ? c.ord[j] : j, kind = ln.kind[k];
      if (!S.kinds[kind]) continue;
      const px = S.xs(c.x[k]), cl = classOf(S.causal, row.run, row.li, k), cc = cl === 0 ? kind : 2 + cl;
      paths[cc].moveTo(px + r, row.y); paths[cc].arc(px, row.y, r, 0, 6.2832);
      count++;
    }
    stats.events += count;
    stats.perLane[row.run.slot][ln.id] = count;
  }
  ctx.save();
  ctx.lineWidth = 1;
  for (let cc = 0; cc < 7; cc++) {
    ctx.fillStyle = fills[cc];
    ctx.fill(paths[cc]);
    ctx.strokeStyle = cc === 5 ? COL.conc : "rgba(255,255,255,0.9)";
    if (cc === 5) ctx.lineWidth = 1.5;
    ctx.stroke(paths[cc]);
    ctx.lineWidth = 1;
  }
  ctx.restore();
  if (S.laneH >= 16 && ranges.reduce((a, x) => a + x[3] - x[2], 0) <= 400) drawClockLabels(v, ranges, r);
}

/* Few events in sight: write each one's Lamport value beside it. */
function drawClockLabels(v, ranges, r) {
  const S = v.S, ctx = v.ctx;
  ctx.save();
  ctx.font = "10px system-ui, sans-serif"; ctx.fillStyle = "#333"; ctx.textAlign = "center"; ctx.textBaseline = "bottom";
  for (const [row, c, lo, hi] of ranges) {
    const ln = row.run.lanes[row.li];
    for (let j = lo; j < hi; j++) {
      const k = c.ord ? c.ord[j] : j;
      if (!S.kinds[ln.kind[k]]) continue;
      ctx.fillText(String(ln.L[k]), S.xs(c.x[k]), row.y - r - 1);
    }
  }
  ctx.restore();
}

function drawPixels(v, ranges, stats) {
  const S = v.S, ctx = v.ctx;
  const dpr = S.dpr, layer = v.layer, BW = layer.width, BH = layer.height, buf = v.buf;
  buf.fill(0);
  const pal = [PIX.kind[0], PIX.kind[1], PIX.kind[2], PIX.past, PIX.future, PIX.conc, PIX.sel];
  const k0 = S.xs.range()[0], sc = S.xs.domain(), a = (S.xs.range()[1] - k0) / (sc[1] - sc[0]);
  const show0 = S.kinds[0], show1 = S.kinds[1], show2 = S.kinds[2];
  for (const [row, c, lo, hi] of ranges) {
    const ln = row.run.lanes[row.li], kinds = ln.kind, X = c.x, ord = c.ord;
    const half = Math.max(1, Math.min(3, Math.floor(row.h * dpr * 0.2)));
    const cy = Math.round(row.y * dpr);
    const y0 = Math.max(0, cy - half), y1 = Math.min(BH - 1, cy + half);
    // the causal class of an event is a comparison with this lane's two bounds
    const sel = S.causal && S.causal.run === row.run ? S.causal : null;
    const pe = sel ? sel.pastEnd[row.li] : 0, fs = sel ? sel.futStart[row.li] : 0;
    const selK = sel && sel.li === row.li ? sel.k : -1;
    let count = 0, lastPx = -1e9, lastC = -1;
    for (let j = lo; j < hi; j++) {
      const k = ord ? ord[j] : j, kind = kinds[k];
      if (kind === 0 ? !show0 : kind === 1 ? !show1 : !show2) continue;
      count++;
      const px = Math.round((k0 + (X[k] - sc[0]) * a) * dpr);
      const cc = sel ? (k === selK ? 6 : k < pe ? 3 : k >= fs ? 4 : 5) : kind;
      if (px === lastPx && cc === lastC) continue;
      lastPx = px; lastC = cc;
      const color = pal[cc];
      const xa = Math.max(0, px - half + 1), xb = Math.min(BW - 1, px + half - 1);
      for (let y = y0; y <= y1; y++) { const o = y * BW; for (let x = xa; x <= xb; x++) buf[o + x] = color; }
    }
    stats.events += count;
    stats.perLane[row.run.slot][ln.id] = count;
  }
  v.lctx.putImageData(v.img, 0, 0);
  ctx.save();
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.drawImage(layer, 0, 0);
  ctx.restore();
}

function drawMark(v, kind, px, row) {
  const ctx = v.ctx;
  const top = row.y - row.h / 2;
  if (kind === "finding") { // an event a finding of check names: ringed in red
    ctx.strokeStyle = "#d62728"; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.arc(px, row.y, Math.max(5, Math.min(9, row.h * 0.45)), 0, 2 * Math.PI); ctx.stroke();
  } else if (kind === "stop") {
    ctx.strokeStyle = "#444"; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(px, top + 2); ctx.lineTo(px, top + row.h - 2); ctx.stroke();
  } else if (kind === "pause" || kind === "resume" || kind === "fault") {
    ctx.fillStyle = kind === "fault" ? COL.faultEdge : "#666";
    ctx.beginPath(); ctx.moveTo(px, top + 1); ctx.lineTo(px - 3, top - 3); ctx.lineTo(px + 3, top - 3); ctx.fill();
    ctx.fillRect(px - 0.5, top, 1, row.h);
  } else {
    ctx.fillStyle = kind === "error" ? "#d62728" : kind === "warning" ? "#e69500" : "#777";
    ctx.beginPath(); ctx.moveTo(px, top + 1); ctx.lineTo(px - 4, top + 8); ctx.lineTo(px + 4, top + 8); ctx.closePath(); ctx.fill();
  }
}

function drawMarks(v, x0, x1, stats) {
  const S = v.S, ctx = v.ctx;
  ctx.save();
  for (const run of v.runs) {
    const mk = run.marks, rows = S.rowOf[run.slot];
    for (let i = 0; i < mk.n; i++) {
      const li = mk.lane[i], row = rows[li];
      if (!row) continue;
      const x = timeX(run, li, mk.t[i], S.mode);
      if (x < x0 || x > x1) continue;
      drawMark(v, mk.kinds[mk.kind[i]], S.xs(x), row);
      stats.marks++;
    }
    // a log that ends without a stop line: the machine crashed or was killed
    for (let li = 0; li < run.N; li++) {
      const ln = run.lanes[li], row = rows[li];
      if (!row || ln.stopped || !ln.n) continue;
      const x = xcol(run, li, S.mode).x[ln.n - 1];
      if (x < x0 || x > x1) continue;
      ctx.strokeStyle = COL.drop; ctx.lineWidth = 2;
      const px = S.xs(x) + 8, s = Math.min(5, row.h * 0.35);
      ctx.beginPath(); ctx.moveTo(px - s, row.y - s); ctx.lineTo(px + s, row.y + s); ctx.moveTo(px - s, row.y + s); ctx.lineTo(px + s, row.y - s); ctx.stroke();
    }
  }
  ctx.restore();
}

function ring(v, run, li, k, color) {
  const S = v.S, ctx = v.ctx;
  const row = S.rowOf[run.slot][li];
  if (!row) return;
  const px = S.xs(xcol(run, li, S.mode).x[k]);
  ctx.strokeStyle = color; ctx.lineWidth = 2;
  ctx.beginPath(); ctx.arc(px, row.y, Math.max(5, Math.min(9, S.laneH * 0.4)), 0, 6.2832); ctx.stroke();
}

function drawSelection(v) {
  const S = v.S, ctx = v.ctx;
  ctx.save();
  if (S.sel) ring(v, S.sel.run, S.sel.li, S.sel.k, "#000");
  if (S.hover && S.hover.type === "event") ring(v, S.hover.run, S.hover.li, S.hover.k, "#f0a000");
  const m = S.msgSel;
  if (m) {
    const run = m.run;
    for (const mm of m.all) {
      const sl = run.mSL[mm], rl = run.mRL[mm];
      const rs = S.rowOf[run.slot][sl], rr = S.rowOf[run.slot][rl];
      if (!rs || !rr) continue;
      const xa = S.xs(xcol(run, sl, S.mode).x[run.mSI[mm]]), xb = S.xs(xcol(run, rl, S.mode).x[run.mRI[mm]]);
      ctx.strokeStyle = mm === m.m ? "#000" : "#555"; ctx.lineWidth = mm === m.m ? 2.5 : 1.5;
      const p = new Path2D(); p.moveTo(xa, rs.y); p.lineTo(xb, rr.y); arrowHead(v, p, xa, rs.y, xb, rr.y); ctx.stroke(p);
    }
  }
  ctx.restore();
}

function drawAxis(v) {
  const S = v.S, ctx = v.ctx;
  ctx.save();
  ctx.fillStyle = "rgba(255,255,255,0.95)";
  ctx.fillRect(0, 0, S.W, AXIS_H);
  ctx.strokeStyle = "#999"; ctx.fillStyle = "#333"; ctx.font = "11px system-ui, sans-serif";
  ctx.textBaseline = "top"; ctx.textAlign = "center";
  const [a, b] = S.xs.domain();
  const ticks = axisTicks(S.xs.ticks(Math.max(2, Math.floor((S.W - GUTTER) / 110))), S.mode);
  const f = fmtAxis(S.mode, b - a);
  ctx.beginPath();
  for (const t of ticks) {
    const px = Math.round(S.xs(t)) + 0.5;
    if (px < GUTTER || px > S.W - RIGHT) continue;
    ctx.moveTo(px, AXIS_H - 6); ctx.lineTo(px, AXIS_H);
    ctx.fillText(f(t), px, 4);
  }
  ctx.moveTo(GUTTER, AXIS_H + 0.5); ctx.lineTo(S.W - RIGHT, AXIS_H + 0.5);
  ctx.stroke();
  ctx.textAlign = "left"; ctx.fillStyle = "#666";
  ctx.fillText(MODES[S.mode].short + (S.same.has(S.mode) ? " = real" : ""), 6, 4);
  ctx.restore();
}

/* The three charts between two compared runs, over the part of the axis in sight. */
function drawDiff(v, x0, x1) {
  const S = v.S, ctx = v.ctx;
  const box = S.diffBox;
  if (!box) return;
  const nb = Math.max(10, Math.floor((S.W - GUTTER - RIGHT) / 4));
  const A = diffSeries(v.runs[0], S.mode, x0, x1, nb), B = diffSeries(v.runs[1], S.mode, x0, x1, nb);
  ctx.save();
  DIFF_SERIES.forEach(([key, label], r) => drawDiffRow(v, box.y + r * DIFF_ROW_H, A[key], B[key], label, nb));
  ctx.restore();
}

function drawDiffRow(v, top, a, b, label, nb) {
  const S = v.S, ctx = v.ctx;
  const h = DIFF_ROW_H - 6, w = S.W - GUTTER - RIGHT, gap = seriesGap(a, b), mx = gap.max;
  ctx.fillStyle = "#fff"; ctx.fillRect(GUTTER, top, w, h);
  ctx.strokeStyle = "#ddd"; ctx.strokeRect(GUTTER + 0.5, top + 0.5, w - 1, h - 1);
  const px = (i) => GUTTER + (i + 0.5) * w / nb, py = (y) => top + h - 2 - (y / mx) * (h - 4);
  // the difference, marked where it is more than a tenth of the scale
  ctx.fillStyle = "rgba(214, 39, 40, 0.28)";
  for (const i of gap.apart) {
    const y1 = py(Math.max(a[i], b[i])), y2 = py(Math.min(a[i], b[i]));
    ctx.fillRect(px(i) - 2, y1, 4, Math.max(1, y2 - y1));
  }
  for (const [ser, col] of [[a, COL.runA], [b, COL.runB]]) {
    ctx.strokeStyle = col; ctx.lineWidth = 1.3; ctx.beginPath();
    for (let i = 0; i < nb; i++) { if (i) ctx.lineTo(px(i), py(ser[i])); else ctx.moveTo(px(i), py(ser[i])); }
    ctx.stroke();
  }
  ctx.fillStyle = "#333"; ctx.font = "11px system-ui"; ctx.textBaseline = "middle";
  ctx.fillText(label, 4, top + h / 2 - 6);
  ctx.fillStyle = "#777"; ctx.font = "10px system-ui";
  ctx.fillText(`max ${fixed(mx, 3)}`, 4, top + h / 2 + 7);
}

/* The overview strip: every lane of the whole run as a density row. */
export function drawOverview(v, ov, octx) {
  const S = v.S;
  const w = ov.width, h = ov.height, dpr = S.dpr;
  octx.setTransform(1, 0, 0, 1, 0, 0);
  octx.clearRect(0, 0, w, h);
  const all = [];
  for (const run of v.runs) for (let li = 0; li < run.N; li++) all.push([run, li]);
  const rowH = (h - 6 * dpr) / Math.max(all.length, 1);
  const left = GUTTER * dpr, width = w - (GUTTER + RIGHT) * dpr;
  all.forEach(([run, li], r) => {
    const counts = histogram(xcol(run, li, S.mode).x, S.domain, width);
    let mx = 0;
    for (let i = 0; i < counts.length; i++) mx = Math.max(mx, counts[i]);
    const y = 3 * dpr + r * rowH;
    for (let i = 0; i < counts.length; i++) {
      if (!counts[i]) continue;
      const a = 0.25 + 0.75 * Math.log1p(counts[i]) / Math.log1p(mx);
      octx.fillStyle = run.slot ? `rgba(224,123,0,${a})` : `rgba(47,111,192,${a})`;
      octx.fillRect(left + i, y, 1, Math.max(1, rowH - (rowH > 3 ? 1 : 0)));
    }
  });
  octx.fillStyle = "#666"; octx.font = `${10 * dpr}px system-ui`; octx.textBaseline = "middle";
  octx.fillText("whole run", 6 * dpr, h / 2);
}

