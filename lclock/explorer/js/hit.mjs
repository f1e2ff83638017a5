/* What is under the pointer: an event, a mark or drop, an arrow, or a fault band; given
 * the view's state S (rows, scale, axis, layers, and S.arrows: the arrows drawn last). No DOM: the scale is any function from
 * axis value to pixel with an invert (d3's linear scale in the page). */
import { lowerBound } from "./data.mjs";
import { GUTTER, rowAt, segDist, timeX, xcol } from "./layout.mjs";

function eventAt(S, px, py) {
  const row = rowAt(S.rows, py);
  if (!row) return null;
  const c = xcol(row.run, row.li, S.mode), ln = row.run.lanes[row.li];
  const j = lowerBound(c.xs, S.xs.invert(px));
  let best = null, bd = 9;
  for (let q = Math.max(0, j - 3); q < Math.min(c.xs.length, j + 3); q++) {
    const k = c.ord ? c.ord[q] : q;
    if (!S.kinds[ln.kind[k]]) continue;
    const d = Math.abs(S.xs(c.x[k]) - px);
    if (d < bd) { bd = d; best = k; }
  }
  return best === null ? null : { type: "event", run: row.run, li: row.li, k: best };
}

function arrowAt(S, px, py) {
  let best = null, bd = 5;
  for (const [run, s0, s1] of S.arrows.runs) {
    const rows = S.rowOf[run.slot];
    for (let v = s0; v < s1; v++) {
      const m = S.arrows.buf[v], sl = run.mSL[m], rl = run.mRL[m];
      const xa = S.xs(xcol(run, sl, S.mode).x[run.mSI[m]]), xb = S.xs(xcol(run, rl, S.mode).x[run.mRI[m]]);
      const d = segDist(px, py, xa, rows[sl].y, xb, rows[rl].y);
      if (d < bd) { bd = d; best = { type: "msg", run, m }; }
    }
  }
  return best;
}

function markAt(S, px, py) {
  const row = rowAt(S.rows, py);
  if (!row) return null;
  const run = row.run, mk = run.marks, dr = run.drops;
  let best = null, bd = 6;
  if (S.layers.marks) for (let i = 0; i < mk.n; i++) {
    if (mk.lane[i] !== row.li) continue;
    const d = Math.abs(S.xs(timeX(run, row.li, mk.t[i], S.mode)) - px);
    if (d < bd) { bd = d; best = { type: "mark", run, i }; }
  }
  if (S.layers.drops) for (let i = 0; i < dr.n; i++) {
    if (dr.lane[i] !== row.li) continue;
    const d = Math.abs(S.xs(timeX(run, row.li, dr.t[i], S.mode)) + 6 - px);
    if (d < bd) { bd = d; best = { type: "drop", run, i }; }
  }
  return best;
}

function bandAt(S, px, py) {
  const row = rowAt(S.rows, py);
  if (!row || !S.layers.faults) return null;
  for (const b of row.run.bands) {
    if (b.lane !== row.li) continue;
    const a = S.xs(timeX(row.run, row.li, b.t0, S.mode)), z = S.xs(timeX(row.run, row.li, b.t1, S.mode));
    if (px >= a && px <= z) return { type: "band", run: row.run, band: b };
  }
  return null;
}


/* The thing under the pointer at (px, py) on the chart, or null. */
export function hitAt(S, px, py) {
  if (px < GUTTER) return null;
  return eventAt(S, px, py) || markAt(S, px, py) || (S.layers.arrows ? arrowAt(S, px, py) : null) || bandAt(S, px, py);
}
