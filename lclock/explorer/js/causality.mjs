/* Causality: for a selected event, per lane, the events in its causal past, its future and
 * the ones concurrent with it; from vector clocks when the run has them, else from the
 * matched messages. Pure (tests/js/causality.test.mjs). */
import { lowerBound, upperBound } from "./data.mjs";

const BIG = 2147483647;

/* Per lane, the events before pastEnd are in the causal past of the selected event and
   those from futStart on are in its future; the ones between are concurrent with it. With
   vector clocks: f -> e iff V(f)[j] <= V(e)[j] for f on machine j (a prefix of lane j);
   e -> f iff V(e)[i] <= V(f)[i] (a suffix of every lane, V[i] never decreases). */
export function causalVC(run, li, k) {
  const N = run.N, pastEnd = new Int32Array(N), futStart = new Int32Array(N);
  const me = run.lanes[li], ci = me.id - 1, ve = me.vc.map((c) => c[k]);
  for (let j = 0; j < N; j++) {
    const ln = run.lanes[j], cj = ln.id - 1;
    if (j === li) { pastEnd[j] = k; futStart[j] = k + 1; continue; }
    pastEnd[j] = upperBound(ln.vc[cj], ve[cj]);
    futStart[j] = lowerBound(ln.vc[ci], ve[ci]);
  }
  return { pastEnd, futStart, source: "vector clocks" };
}

/* Per pair of lanes (sender, receiver), the messages between them in send order with the
   earliest receive from each on, and in receive order with the latest send up to each. */
export function pairTables(run) {
  if (run.pairs) return run.pairs;
  const N = run.N, pairs = [];
  const bucket = new Map();
  for (let m = 0; m < run.M; m++) {
    const key = run.mSL[m] * N + run.mRL[m];
    if (!bucket.has(key)) bucket.set(key, []);
    bucket.get(key).push(m);
  }
  for (const [key, ms] of bucket) {
    const sl = Math.floor(key / N), rl = key % N, n = ms.length;
    const bySend = ms.slice().sort((a, b) => run.mSI[a] - run.mSI[b] || run.mRI[a] - run.mRI[b]);
    const sIdx = new Int32Array(n), sufMinR = new Int32Array(n + 1);
    sufMinR[n] = BIG;
    bySend.forEach((m, i) => { sIdx[i] = run.mSI[m]; });
    for (let i = n - 1; i >= 0; i--) sufMinR[i] = Math.min(sufMinR[i + 1], run.mRI[bySend[i]]);
    const byRecv = ms.slice().sort((a, b) => run.mRI[a] - run.mRI[b]);
    const rIdx = new Int32Array(n), preMaxS = new Int32Array(n);
    let mx = -1;
    byRecv.forEach((m, i) => { rIdx[i] = run.mRI[m]; mx = Math.max(mx, run.mSI[m]); preMaxS[i] = mx; });
    pairs.push({ sl, rl, sIdx, sufMinR, rIdx, preMaxS });
  }
  return (run.pairs = pairs);
}

/* Without vector clocks: follow the matched messages. The earliest event of each lane that
   the selected event reaches, and the latest that reaches it, found by relaxing the lane
   pairs until nothing changes (at most N rounds). */
export function causalMsgs(run, li, k) {
  const N = run.N, pairs = pairTables(run);
  const earliest = new Int32Array(N).fill(BIG), latest = new Int32Array(N).fill(-1);
  earliest[li] = k; latest[li] = k;
  for (let changed = true, round = 0; changed && round <= N + 1; round++) {
    changed = false;
    for (const p of pairs) {
      if (earliest[p.sl] !== BIG) {
        const r = p.sufMinR[lowerBound(p.sIdx, earliest[p.sl])];
        if (r < earliest[p.rl]) { earliest[p.rl] = r; changed = true; }
      }
      if (latest[p.rl] >= 0) {
        const i = upperBound(p.rIdx, latest[p.rl]) - 1;
        if (i >= 0 && p.preMaxS[i] > latest[p.sl]) { latest[p.sl] = p.preMaxS[i]; changed = true; }
      }
    }
  }
  const pastEnd = new Int32Array(N), futStart = new Int32Array(N);
  for (let j = 0; j < N; j++) {
    if (j === li) { pastEnd[j] = k; futStart[j] = k + 1; continue; }
    pastEnd[j] = latest[j] + 1;
    futStart[j] = Math.min(earliest[j], run.lanes[j].n);
  }
  return { pastEnd, futStart, source: "matched messages" };
}

/* The causal split around event k of lane li, with its counts. */
export function causal(run, li, k) {
  const c = run.vcOK ? causalVC(run, li, k) : causalMsgs(run, li, k);
  c.run = run; c.li = li; c.k = k;
  let past = 0, fut = 0, conc = 0;
  for (let j = 0; j < run.N; j++) {
    const n = run.lanes[j].n;
    past += c.pastEnd[j]; fut += n - c.futStart[j];
    conc += Math.max(0, c.futStart[j] - c.pastEnd[j]) - (j === li ? 1 : 0);
  }
  c.counts = { past, future: fut, concurrent: conc };
  return c;
}

/* The causal class of event k of lane li of run (0 none selected, 1 past, 2 future,
   3 concurrent, 4 the selected event). */
export function classOf(c, run, li, k) {
  if (!c || c.run !== run) return 0;
  if (li === c.li && k === c.k) return 4;
  if (k < c.pastEnd[li]) return 1;
  if (k >= c.futStart[li]) return 2;
  return 3;
}

/* How event k of lane li stands to the selected event, in words (lclock hb's answer). */
export function relation(c, li, k) {
  return k < c.pastEnd[li] ? "happened before" : k >= c.futStart[li] ? "happened after" : "is concurrent with";
}
