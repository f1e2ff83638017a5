/* Layout maths: where each event sits on each axis, the whole run's extent, which axes
 * add nothing (a clock equal to real time), and the rows of the lanes. Pure: no DOM, no
 * canvas (tests/js/layout.test.mjs). */
import { lowerBound, upperBound } from "./data.mjs";

export const MODES = {
  real: { label: "real time", short: "real time", title: "the host's time of each event (ts), seconds since t0" },
  lamport: { label: "Lamport time", short: "Lamport", title: "each event at its Lamport clock value" },
  hlc: { label: "HLC", short: "HLC", title: "each event at its hybrid logical clock: l (seconds since t0), then c" },
  pt: { label: "physical clocks (pt)", short: "physical pt", title: "each event at its own machine's physical clock reading pt: skewed clocks misplace events" },
};
export const GUTTER = 104, AXIS_H = 24, RIGHT = 12, RUN_TITLE_H = 16, DIFF_ROW_H = 40;
/* A clock within this many microseconds of real time on every event adds nothing to it. */
export const SAME_US = 1000;

/* The axes every run can show (compared runs: the ones both have). */
export function modesOf(runs) {
  return Object.keys(MODES).filter((m) => runs.every((r) => r.clocks.includes(m)));
}

/* x of every event of a lane on an axis, and the sorted view used to find what is in sight
   (ord: the events in x order when x is not sorted; xs: x in that order). Cached per lane. */
export function xcol(run, li, mode) {
  const ln = run.lanes[li];
  if (ln.xc[mode]) return ln.xc[mode];
  const n = ln.n, x = new Float64Array(n);
  if (mode === "real") for (let k = 0; k < n; k++) x[k] = ln.t[k] / 1e6;
  else if (mode === "lamport") for (let k = 0; k < n; k++) x[k] = ln.L[k];
  else if (mode === "hlc") for (let k = 0; k < n; k++) x[k] = ln.hl[k] / 1e6 + ln.hc[k] * run.cscale;
  else for (let k = 0; k < n; k++) x[k] = ln.pt[k] / 1e6;
  let sorted = true;
  for (let k = 1; k < n; k++) if (x[k] < x[k - 1]) { sorted = false; break; }
  let ord = null, xs = x;
  if (!sorted) {
    ord = new Int32Array(n);
    for (let k = 0; k < n; k++) ord[k] = k;
    ord.sort((a, b) => x[a] - x[b] || a - b);
    xs = new Float64Array(n);
    for (let k = 0; k < n; k++) xs[k] = x[ord[k]];
  }
  return (ln.xc[mode] = { x, ord, xs });
}

/* Where a moment (us since t0, host time) falls on the axis, on one lane: between the
   lane's events around it, so bands and marks sit right on every axis. */
export function timeX(run, li, t, mode) {
  if (mode === "real") return t / 1e6;
  const ln = run.lanes[li];
  if (!ln.n) return NaN;
  const c = xcol(run, li, mode).x, k = upperBound(ln.t, t) - 1;
  if (k < 0) return c[0] - (mode === "lamport" ? 0.5 : (ln.t[0] - t) / 1e6);
  if (k >= ln.n - 1) return c[ln.n - 1] + (mode === "lamport" ? 0.5 : (t - ln.t[ln.n - 1]) / 1e6);
  const f = (t - ln.t[k]) / Math.max(ln.t[k + 1] - ln.t[k], 1e-9);
  return c[k] + f * (c[k + 1] - c[k]);
}

/* The extent of all runs on an axis, with 2 % to spare each side. */
export function domainOf(runs, mode) {
  let lo = Infinity, hi = -Infinity;
  for (const run of runs) for (let li = 0; li < run.N; li++) {
    const c = xcol(run, li, mode);
    if (!c.xs.length) continue;
    lo = Math.min(lo, c.xs[0]); hi = Math.max(hi, c.xs[c.xs.length - 1]);
  }
  if (!isFinite(lo)) { lo = 0; hi = 1; }
  if (mode === "lamport") { lo = Math.min(lo, 0); hi += 1; }
  const pad = (hi - lo || 1) * 0.02;
  return [lo - pad, hi + pad];
}

/* Whether a clock axis (hlc, pt) shows what real time shows: every event within SAME_US of
   its host time, with no HLC counter. When no clock was skewed, these axes add nothing. */
export function sameAsReal(runs, mode) {
  if (mode !== "hlc" && mode !== "pt") return false;
  for (const run of runs) {
    if (!run.clocks.includes(mode)) return false;
    for (const ln of run.lanes) {
      const col = mode === "pt" ? ln.pt : ln.hl;
      if (!col) return false;
      for (let k = 0; k < ln.n; k++) {
        if (Math.abs(col[k] - ln.t[k]) > SAME_US) return false;
        if (mode === "hlc" && ln.hc[k] !== 0) return false;
      }
    }
  }
  return true;
}

/* The rows of the chart: lanes share the height below the axis (one run, or two with a
   title each and the diff charts between them), so a few machines get tall lanes. */
export function laneRows(runs, hidden, H) {
  const compare = runs.length > 1;
  const per = runs.map((run) => run.lanes.map((ln, li) => li).filter((li) => !hidden.has(run.lanes[li].id)));
  const total = per.reduce((a, p) => a + p.length, 0);
  const diffH = compare ? DIFF_ROW_H * 3 + 10 : 0;
  const titles = compare ? RUN_TITLE_H * 2 : 0;
  const laneH = Math.max(4, (H - AXIS_H - diffH - titles - 6) / Math.max(total, 1));
  const rows = [];
  let y = AXIS_H + 2, diffBox = null;
  runs.forEach((run, slot) => {
    if (compare) { rows.push({ title: true, run, y: y + RUN_TITLE_H / 2 }); y += RUN_TITLE_H; }
    for (const li of per[slot]) { rows.push({ run, li, y: y + laneH / 2, h: laneH }); y += laneH; }
    if (compare && slot === 0) { diffBox = { y: y + 4, h: DIFF_ROW_H * 3 }; y += diffH; }
  });
  const rowOf = runs.map((run) => new Array(run.N).fill(null));
  for (const row of rows) if (!row.title) rowOf[row.run.slot][row.li] = row;
  return { rows, rowOf, laneH, diffBox };
}

/* The lane row at height y, or null (titles and gaps). */
export function rowAt(rows, y) {
  for (const row of rows) if (!row.title && Math.abs(y - row.y) <= row.h / 2) return row;
  return null;
}

/* The events of a lane within [x0, x1] (a little margin): indices into the sorted view. */
export function inSight(c, x0, x1) {
  const pad = (x1 - x0) * 0.002;
  return [lowerBound(c.xs, x0 - pad), upperBound(c.xs, x1 + pad)];
}

/* Distance from a point to a segment (hit testing of arrows). */
export function segDist(px, py, xa, ya, xb, yb) {
  const dx = xb - xa, dy = yb - ya, l2 = dx * dx + dy * dy;
  const t = l2 ? Math.max(0, Math.min(1, ((px - xa) * dx + (py - ya) * dy) / l2)) : 0;
  return Math.hypot(px - xa - t * dx, py - ya - t * dy);
}

/* The span to show around x: about 60 events of the busiest lane, within the run. */
export function spanAround(runs, domain) {
  const [d0, d1] = domain;
  let dens = 0;
  for (const run of runs) for (let li = 0; li < run.N; li++) dens = Math.max(dens, run.lanes[li].n / (d1 - d0));
  return Math.min(d1 - d0, dens ? 60 / dens : d1 - d0);
}

/* A range [a, b] kept inside the domain, as the zoom behaviour keeps its own gestures:
   the start, and the zoom factor k that shows it. */
export function clampRange(domain, a, b) {
  const full = domain[1] - domain[0];
  const span = Math.min(Math.max(b - a, 1e-12), full);
  const start = Math.min(Math.max(a, domain[0]), domain[1] - span);
  return { start, k: Math.max(1, full / span) };
}

/* The ticks worth labelling: integers only on the Lamport axis. */
export function axisTicks(ticks, mode) {
  return mode === "lamport" ? ticks.filter(Number.isInteger) : ticks;
}

/* Overview strip: events per pixel column of one lane, for the whole run. */
export function histogram(x, domain, width) {
  const counts = new Float64Array(Math.max(1, Math.floor(width)));
  const [d0, d1] = domain;
  for (let k = 0; k < x.length; k++) {
    const i = Math.floor(((x[k] - d0) / (d1 - d0)) * counts.length);
    if (i >= 0 && i < counts.length) counts[i]++;
  }
  return counts;
}
