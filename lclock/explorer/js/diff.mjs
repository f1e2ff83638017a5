/* Two runs compared: the series drawn between them (drift, queues, jumps along the axis)
 * and the per-machine figures of the panel, with where they differ. Pure
 * (tests/js/diff.test.mjs). */
import { lowerBound, upperBound } from "./data.mjs";
import { xcol } from "./layout.mjs";

/* On one run, in nb bins across [x0, x1] of an axis: the spread of the Lamport clocks
   (drift), the messages waiting in all queues, and the largest Lamport jump on a receive. */
export function diffSeries(run, mode, x0, x1, nb) {
  const bw = (x1 - x0) / nb;
  const spread = new Float64Array(nb), queue = new Float64Array(nb), jump = new Float64Array(nb);
  const lo = new Float64Array(nb).fill(Infinity), hi = new Float64Array(nb).fill(-Infinity);
  for (let li = 0; li < run.N; li++) {
    const ln = run.lanes[li], c = xcol(run, li, mode);
    for (let b = 0; b < nb; b++) {
      const j = upperBound(c.xs, x0 + (b + 1) * bw) - 1;
      if (j < 0) continue;
      const k = c.ord ? c.ord[j] : j;
      lo[b] = Math.min(lo[b], ln.L[k]); hi[b] = Math.max(hi[b], ln.L[k]);
      queue[b] += ln.q[k];
    }
    const a = lowerBound(c.xs, x0), z = upperBound(c.xs, x1);
    for (let j = a; j < z; j++) {
      const k = c.ord ? c.ord[j] : j;
      if (ln.kind[k] !== 2) continue;
      const jmp = ln.L[k] - (k > 0 ? ln.L[k - 1] : 0), b = Math.min(nb - 1, Math.floor((c.x[k] - x0) / bw));
      if (jmp > jump[b]) jump[b] = jmp;
    }
  }
  for (let b = 0; b < nb; b++) spread[b] = isFinite(lo[b]) ? hi[b] - lo[b] : 0;
  return { spread, queue, jump };
}

export const DIFF_SERIES = [["spread", "drift (Lamport spread)"], ["queue", "queued messages"], ["jump", "largest jump"]];

/* The scale shared by two series (at least 1), and the bins where they are more than a
   tenth of it apart (shaded on the chart). */
export function seriesGap(a, b) {
  let mx = 1;
  for (let i = 0; i < a.length; i++) mx = Math.max(mx, a[i], b[i]);
  const apart = [];
  for (let i = 0; i < a.length; i++) if (Math.abs(a[i] - b[i]) > 0.1 * mx) apart.push(i);
  return { max: mx, apart };
}

/* Per machine of a run: receives, mean and largest Lamport jump, largest queue, final L and
   the messages left unprocessed at the end. */
export function runMetrics(run) {
  return run.lanes.map((ln) => {
    let recv = 0, jsum = 0, jmax = 0, qmax = 0;
    for (let k = 0; k < ln.n; k++) {
      if (ln.q[k] > qmax) qmax = ln.q[k];
      if (ln.kind[k] === 2) { const j = ln.L[k] - (k ? ln.L[k - 1] : 0); recv++; jsum += j; if (j > jmax) jmax = j; }
    }
    return { id: ln.id, events: ln.n, recv, jmean: recv ? jsum / recv : 0, jmax, qmax, L: ln.n ? ln.L[ln.n - 1] : 0,
      qfinal: ln.stop && typeof ln.stop.unprocessed === "number" ? ln.stop.unprocessed : ln.n ? ln.q[ln.n - 1] : 0 };
  });
}

/* Two figures differ when both exist and are more than 20 % (and more than 1) apart. */
export function differ(a, b) {
  return a !== undefined && b !== undefined && Math.abs(a - b) > Math.max(1, 0.2 * Math.max(Math.abs(a), Math.abs(b)));
}

/* The machines of either run, in id order, with each run's figures ({} when it lacks one). */
export function compareRows(runA, runB) {
  const A = runMetrics(runA), B = runMetrics(runB);
  const ids = [...new Set([...A.map((m) => m.id), ...B.map((m) => m.id)])].sort((a, b) => a - b);
  return ids.map((id) => ({ id, a: A.find((m) => m.id === id) || {}, b: B.find((m) => m.id === id) || {} }));
}
