/* Cuts across the lanes: a snapshot's recorded cut, or one the user drags, judged at once.
 * Pure (no DOM, no canvas), the page's twin of lclock/analysis/cuts.py: a cut holds each
 * machine's ticks up to one; it is consistent when no message taken in inside it was sent
 * outside it. The judge names the first crossing message by receiver (lane order, which is
 * machine order) then receive, as `lclock cuts --cut` does, and tests hold the two to the
 * same answers on the same runs (tests/test_explorer_cuts.py).
 *
 * A cut is kept as a count per lane of the events shown that it holds (events before the
 * part shown are always held, those after it never). */
import { upperBound } from "./data.mjs";

/* Counts from ticks ({machine id: tick}); a machine not named holds none of the part shown. */
export function countsOfTicks(run, ticks) {
  return Int32Array.from(run.lanes, (ln) => {
    const t = ticks[ln.id];
    return t === undefined ? 0 : upperBound(ln.tick, t);
  });
}

/* The tick a lane's count names (0: none; the tick before the part shown when it starts
   later in the run, ticks having no gaps). */
export function tickOf(ln, c) {
  if (c > 0) return ln.tick[c - 1];
  return ln.n && ln.first > 0 ? ln.tick[0] - 1 : 0;
}

/* `1:40,2:17,3:88`: the cut in the syntax of `lclock cuts --cut`. */
export function cutText(run, cnt) {
  return run.lanes.map((ln, li) => `${ln.id}:${tickOf(ln, cnt[li])}`).join(",");
}

/* Whether the cut is consistent; the first crossing message (index into run's messages,
   -1 when none) and how many cross it. */
export function judge(run, cnt) {
  let first = -1, count = 0;
  for (let m = 0; m < run.M; m++) {
    const rl = run.mRL[m], sl = run.mSL[m];
    if (run.mRI[m] < cnt[rl] && run.mSI[m] >= cnt[sl]) {
      count++;
      if (first < 0 || rl < run.mRL[first] || (rl === run.mRL[first] && (run.mRI[m] < run.mRI[first]
          || (run.mRI[m] === run.mRI[first] && (sl < run.mSL[first] || (sl === run.mSL[first] && run.mSI[m] < run.mSI[first])))))) first = m;
    }
  }
  return { consistent: count === 0, crossing: first, count };
}

/* The crossing message in the words of `lclock cuts --json`. */
export function crossingInfo(run, m) {
  if (m < 0) return null;
  const s = run.lanes[run.mSL[m]], r = run.lanes[run.mRL[m]], si = run.mSI[m], ri = run.mRI[m];
  return { sender: s.id, send_tick: s.tick[si], msg_lclock: s.L[si], send_at: `${s.file}:${s.line[si]}`,
    receiver: r.id, receive_tick: r.tick[ri], receive_at: `${r.file}:${r.line[ri]}` };
}

/* A one-line verdict for the page. */
export function verdictText(run, cnt, j) {
  const head = `cut ${cutText(run, cnt)}`;
  if (j.consistent) return `${head} is consistent`;
  const x = crossingInfo(run, j.crossing);
  const more = j.count > 1 ? ` (${j.count - 1} more message(s) cross it)` : "";
  return `${head} is not consistent: m${x.receiver} took in at tick ${x.receive_tick} (${x.receive_at}), inside the cut, `
    + `the message m${x.sender} sent at tick ${x.send_tick} (L${x.msg_lclock}), outside it${more}`;
}

/* The snapshots of the data block ({id, parts: [{m, tick, ...}]}), each with its cut and
   whether every lane recorded it; judged as any cut. */
export function snapshotCuts(run) {
  return (run.d.snaps || []).map((sn) => {
    const ticks = {}, parts = new Map();
    for (const p of sn.parts) { ticks[p.m] = p.tick; parts.set(p.m, p); }
    const cnt = countsOfTicks(run, ticks);
    return { id: sn.id, cnt, parts, complete: run.lanes.every((ln) => parts.has(ln.id)), verdict: judge(run, cnt) };
  });
}

/* The lines of a snapshot's tooltip: per machine its tick, clocks, queue and channels. */
export function snapshotText(snap) {
  const out = [`snapshot ${snap.id}` + (snap.complete ? "" : " (not recorded by every machine)")];
  const msg = (x) => (x.more ? `(+${x.more} more)` : `m${x.from} L${x.msg_lclock} t${x.send_tick}`);
  for (const [m, p] of [...snap.parts].sort((a, b) => a[0] - b[0])) {
    out.push(`m${m}: tick ${p.tick}, L${p.lclock}` + (p.vclock ? ` [${p.vclock.join(",")}]` : "")
      + `, queue ${p.queue.length ? p.queue.map(msg).join(" ") : "empty"}`);
    for (const [from, list] of Object.entries(p.channels || {})) {
      out.push(`  channel m${from}→m${m}: ${list.length ? list.map(msg).join(" ") : "empty"}`);
    }
  }
  return out;
}

/* Where a cut crosses a lane on the axis: halfway between its last held event and the
   next (x: the lane's event positions; a little before the first, after the last). */
export function cutX(x, c, pad) {
  const n = x.length;
  if (!n) return null;
  if (c <= 0) return x[0] - pad;
  if (c >= n) return x[n - 1] + pad;
  return (x[c - 1] + x[c]) / 2;
}

/* The count of a lane's events at or left of X (a prefix: it stops at the first event
   right of X, also on an axis where a lane's positions do not rise). c: the lane's
   positions as layout.xcol gives them (ord is null when they rise). */
export function countAt(c, X) {
  if (!c.ord) return upperBound(c.x, X);
  let k = 0;
  while (k < c.x.length && c.x[k] <= X) k++;
  return k;
}
