/* Decoding the data block (see lclock/explorer/extract.py) into typed columns per lane, the
 * messages as (lane, event) pairs and the fault bands. Pure: no DOM, no canvas, so node's
 * test runner checks it (tests/js/). */

/* A column encoded as a start and a constant step (d) or a list of steps (v). */
export function dec(e, T) {
  const n = e.n, out = new T(n);
  if (!n) return out;
  let x = e.s;
  out[0] = x;
  if (e.v === undefined) { for (let i = 1; i < n; i++) { x += e.d; out[i] = x; } }
  else { const v = e.v; for (let i = 1; i < n; i++) { x += v[i - 1]; out[i] = x; } }
  return out;
}
export const ints = (a) => Int32Array.from(a || []);
export const nums = (a) => Float64Array.from(a || []);

/* First index whose value is >= x (lowerBound) or > x (upperBound) in a sorted array. */
export function lowerBound(a, x, lo = 0, hi = a.length) {
  while (lo < hi) { const m = (lo + hi) >>> 1; if (a[m] < x) lo = m + 1; else hi = m; }
  return lo;
}
export function upperBound(a, x, lo = 0, hi = a.length) {
  while (lo < hi) { const m = (lo + hi) >>> 1; if (a[m] <= x) lo = m + 1; else hi = m; }
  return lo;
}

export function makeLane(L) {
  const n = L.n;
  const lane = {
    id: L.id, file: L.file, rate: L.rate, n, first: L.first, total: L.total,
    line: dec(L.line, Float64Array), t: dec(L.t, Float64Array), tick: dec(L.tick, Float64Array),
    traw: L.traw ? dec(L.traw, Float64Array) : null,
    kind: Int8Array.from(L.kind), L: dec(L.L, Float64Array), q: ints(L.q), dice: ints(L.dice),
    frm: ints(L.frm), msg: nums(L.msg), toN: ints(L.to_n), to: ints(L.to),
    vc: L.vc ? L.vc.map((c) => dec(c, Int32Array)) : null,
    pt: L.pt ? dec(L.pt, Float64Array) : null, hl: L.hl ? dec(L.hl, Float64Array) : null,
    hc: L.hc ? nums(L.hc) : null, mpt: L.mpt ? dec(L.mpt, Float64Array) : null,
    mhl: L.mhl ? dec(L.mhl, Float64Array) : null, mhc: L.mhc ? nums(L.mhc) : null,
    dup: new Uint8Array(n), start: L.start || {}, stop: L.stop, stopLine: L.stop_line,
    stopped: L.stopped, recvRank: new Int32Array(n), sendRank: new Int32Array(n),
    toStart: null, xc: {},
  };
  for (const k of L.dup) lane.dup[k] = 1;
  let r = 0, s = 0;
  const toStart = new Int32Array(n + 1);
  let acc = 0;
  for (let k = 0; k < n; k++) {
    const kd = lane.kind[k];
    lane.recvRank[k] = kd === 2 ? r++ : -1;
    lane.sendRank[k] = kd === 1 ? s : -1;
    toStart[k] = acc;
    if (kd === 1) acc += lane.toN[s++];
  }
  toStart[n] = acc;
  lane.toStart = toStart;
  return lane;
}

/* A global event index (lanes one after the other) as [lane index, event index]. */
export function locate(run, g) {
  const li = upperBound(run.off, g) - 1;
  return [li, g - run.off[li]];
}

export function makeRun(d, slot) {
  const run = {
    d, slot, id: d.run.id, info: d.run, lanes: d.lanes.map(makeLane), clocks: d.run.clocks,
    t0: d.run.t0_us, name: slot === 0 ? "A" : "B", vcOK: !!d.run.vc_embedded,
  };
  run.N = run.lanes.length;
  run.off = new Int32Array(run.N + 1);
  run.laneOf = new Map();
  run.lanes.forEach((ln, i) => { run.off[i + 1] = run.off[i] + ln.n; run.laneOf.set(ln.id, i); ln.index = i; });
  run.total = run.off[run.N];
  run.width = run.vcOK ? run.lanes[0].vc.length : 0;
  addMessages(run, d.msgs);
  const dr = d.drops;
  run.drops = { n: dr.n, lane: ints(dr.lane).map((id) => run.laneOf.get(id)), t: nums(dr.t), to: ints(dr.to),
    msg: nums(dr.msg), reason: ints(dr.reason), line: nums(dr.line), s: nums(dr.s), reasons: dr.reasons };
  const pe = d.pending;
  run.pending = { n: pe.n, s: nums(pe.s).map(Number), to: ints(pe.to) };
  run.pendingL = new Int32Array(pe.n); run.pendingI = new Int32Array(pe.n);
  for (let p = 0; p < pe.n; p++) { const [l, i] = locate(run, run.pending.s[p]); run.pendingL[p] = l; run.pendingI[p] = i; }
  const mk = d.marks;
  run.marks = { n: mk.n, lane: ints(mk.lane).map((id) => run.laneOf.get(id)), t: nums(mk.t), kind: ints(mk.kind),
    kinds: mk.kinds, line: nums(mk.line), text: mk.text };
  run.bands = faultBands(run);
  let cmax = 0;
  for (const ln of run.lanes) if (ln.hc) for (let k = 0; k < ln.n; k++) if (ln.hc[k] > cmax) cmax = ln.hc[k];
  run.cscale = 1 / ((cmax + 1) * 1e6);
  return run;
}

/* Messages: both ends as (lane index, event index), sorted by send; the message of each
   receive, and (CSR) the messages of each send event. */
function addMessages(run, msgs) {
  const M = msgs.n, gs = dec(msgs.s, Float64Array), gr = msgs.r;
  run.M = M;
  run.mSL = new Int32Array(M); run.mSI = new Int32Array(M);
  run.mRL = new Int32Array(M); run.mRI = new Int32Array(M);
  run.msgOfRecv = run.lanes.map((ln) => new Int32Array(ln.n).fill(-1));
  run.msgsOfSendStart = run.lanes.map((ln) => new Int32Array(ln.n + 1));
  for (let m = 0; m < M; m++) {
    const [sl, si] = locate(run, gs[m]), [rl, ri] = locate(run, gr[m]);
    run.mSL[m] = sl; run.mSI[m] = si; run.mRL[m] = rl; run.mRI[m] = ri;
    run.msgOfRecv[rl][ri] = m;
  }
  let m = 0;
  for (let li = 0; li < run.N; li++) {
    const st = run.msgsOfSendStart[li];
    for (let k = 0; k <= run.lanes[li].n; k++) {
      while (m < M && run.mSL[m] === li && run.mSI[m] < k) m++;
      st[k] = m;
    }
  }
}

/* Pauses and partitions as spans per lane (from pause/resume and fault lines), plus the
   plan's partitions across the whole run when none was logged. */
export function faultBands(run) {
  const bands = [];
  const openPause = new Map(), openPart = new Map();
  const mk = run.marks;
  for (let i = 0; i < mk.n; i++) {
    const kind = mk.kinds[mk.kind[i]], li = mk.lane[i], t = mk.t[i];
    let obj = null;
    try { obj = JSON.parse(mk.text[i]); } catch (e) { obj = {}; }
    if (kind === "pause") openPause.set(li, [t, i]);
    else if (kind === "resume") {
      const o = openPause.get(li);
      bands.push({ kind: "pause", lane: li, t0: o ? o[0] : t, t1: t, label: "paused" + (obj.skipped != null ? ` (${obj.skipped} ticks skipped)` : ""), mark: i });
      openPause.delete(li);
    } else if (kind === "fault") {
      if (obj.kind === "partition") openPart.set(li, [t, groupsText(obj.groups)]);
      else if (obj.kind === "heal") {
        const o = openPart.get(li);
        bands.push({ kind: "partition", lane: li, t0: o ? o[0] : t, t1: t, label: "partition " + (o ? o[1] : groupsText(obj.groups)) });
        openPart.delete(li);
      }
    }
  }
  const endOf = (li) => { const ln = run.lanes[li]; return ln.n ? ln.t[ln.n - 1] : 0; };
  for (const [li, o] of openPause) bands.push({ kind: "pause", lane: li, t0: o[0], t1: endOf(li), label: "paused (no resume logged)" });
  for (const [li, o] of openPart) bands.push({ kind: "partition", lane: li, t0: o[0], t1: endOf(li), label: "partition " + o[1] + " (no heal logged)" });
  const plan = run.d.plan || {};
  const logged = bands.some((b) => b.kind === "partition");
  for (const p of logged ? [] : plan.partitions || []) bands.push({ kind: "plan", lane: -1, t0: p.start_s * 1e6, t1: p.end_s * 1e6, label: "planned partition " + groupsText(p.groups) });
  return bands;
}

export function groupsText(g) {
  return Array.isArray(g) ? g.map((x) => (Array.isArray(x) ? x.join(",") : String(x))).join(" | ") : "";
}

/* The whole data block: one run, or two to compare. */
export function decodeRuns(raw) {
  return raw.runs.map(makeRun);
}
