/* Runs for the explorer's module tests, built the way lclock/explorer/extract.py encodes
 * them, from a script of steps: a tiny simulator keeps each machine's Lamport and vector
 * clocks, so the tests know the truth (happened-before by reachability, not by clocks). */
import { decodeRuns } from "../../lclock/explorer/js/data.mjs";

/* A column as extract.enc writes it: start and a constant step, or start and the steps. */
export function enc(a) {
  const n = a.length;
  if (n < 2) return { n, s: n ? a[0] : 0, d: 0 };
  const steps = a.slice(1).map((x, i) => x - a[i]);
  return steps.every((d) => d === steps[0]) ? { n, s: a[0], d: steps[0] } : { n, s: a[0], v: steps };
}

/* Steps: ["i", m] internal on machine m (1-based); ["s", m, [to...]] a send;
   ["r", m, sendStep] the receive of the message sent at step sendStep to m. Every step
   takes 1 ms of host time (t) unless given; skew: us added to each machine's pt. */
export function simulate(n, steps, opts = {}) {
  const skew = opts.skew || new Array(n).fill(0);
  const ev = Array.from({ length: n }, () => []);
  const sent = new Map();
  const L = new Array(n).fill(0), VC = Array.from({ length: n }, () => new Array(n).fill(0));
  steps.forEach((st, step) => {
    const [kind, m] = st, i = m - 1, t = (step + 1) * 1000;
    VC[i][i]++;
    const e = { kind: kind === "i" ? 0 : kind === "s" ? 1 : 2, t, step, to: [], from: 0, msg: 0, preds: [] };
    if (ev[i].length) e.preds.push([i, ev[i].length - 1]);
    if (kind === "r") {
      const s = sent.get(st[2]);
      L[i] = Math.max(L[i], s.L) + 1;
      for (let j = 0; j < n; j++) VC[i][j] = Math.max(VC[i][j], s.vc[j]);
      e.from = s.m; e.msg = s.L; e.preds.push([s.m - 1, s.k]); e.sendStep = st[2];
    } else L[i]++;
    e.L = L[i]; e.vc = VC[i].slice(); e.pt = t + skew[i]; e.hl = e.pt; e.hc = 0;
    if (kind === "s") { e.to = st[2]; sent.set(step, { m, k: ev[i].length, L: L[i], vc: VC[i].slice() }); }
    ev[i].push(e);
  });
  return ev;
}

function laneBlock(id, evs, withVc, clocks, n) {
  const sends = evs.filter((e) => e.kind === 1), recvs = evs.filter((e) => e.kind === 2);
  return {
    id, file: `machine-${id}.jsonl`, rate: 1, n: evs.length, first: 0, total: evs.length,
    line: enc(evs.map((e, k) => k + 2)), t: enc(evs.map((e) => e.t)), tick: enc(evs.map((e, k) => k + 1)),
    kind: evs.map((e) => e.kind), L: enc(evs.map((e) => e.L)), q: evs.map(() => 0), dice: evs.map(() => 1),
    frm: recvs.map((e) => e.from), msg: recvs.map((e) => e.msg), to_n: sends.map((e) => e.to.length),
    to: sends.flatMap((e) => e.to),
    vc: withVc ? Array.from({ length: n }, (_, c) => enc(evs.map((e) => e.vc[c]))) : null,
    pt: clocks ? enc(evs.map((e) => e.pt)) : null, hl: clocks ? enc(evs.map((e) => e.hl)) : null,
    hc: clocks ? evs.map((e) => e.hc) : null,
    mpt: null, mhl: null, mhc: null, dup: [], start: {}, stop: {}, stop_line: evs.length + 2, stopped: true,
  };
}

/* The data block of one run of the simulated events (as the page's JSON has it). */
export function block(ev, opts = {}) {
  const n = ev.length, withVc = opts.vc !== false, clocks = opts.clocks !== false;
  const off = [0];
  ev.forEach((e) => off.push(off[off.length - 1] + e.length));
  const glob = (i, k) => off[i] + k;
  const msgs = [];
  ev.forEach((evs, i) => evs.forEach((e, k) => {
    if (e.kind === 2) msgs.push([glob(e.from - 1, e.preds[e.preds.length - 1][1]), glob(i, k)]);
  }));
  msgs.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const total = off[n];
  return {
    run: { id: opts.id || "test-run", dir: "test-run", path: "/runs/test-run", status: "completed", n, t0_us: 1767225600000000,
      seed: 1, clocks: clocks ? ["real", "lamport", "hlc", "pt"] : ["real", "lamport"], vector: withVc,
      vc_embedded: withVc, events_total: total, events: total, notes: [], issues: [] },
    lanes: ev.map((evs, i) => laneBlock(i + 1, evs, withVc, clocks, n)),
    msgs: { n: msgs.length, s: enc(msgs.map((x) => x[0])), r: msgs.map((x) => x[1]) },
    drops: { n: 0, lane: [], t: [], to: [], msg: [], reason: [], line: [], s: [], reasons: [] },
    pending: { n: 0, s: [], to: [] },
    marks: opts.marks || { n: 0, lane: [], t: [], kind: [], kinds: [], line: [], text: [] },
    plan: opts.plan || { partitions: [] },
  };
}

/* The decoded run, and the simulated events it came from. */
export function run(n, steps, opts = {}) {
  const ev = simulate(n, steps, opts);
  return { run: decodeRuns({ runs: [block(ev, opts)] })[0], ev };
}

/* Happened-before by reachability over the program order and the messages. */
export function reach(ev, from, dir) {
  const succ = new Map();
  ev.forEach((evs, i) => evs.forEach((e, k) => e.preds.forEach(([a, b]) => {
    const key = `${a}:${b}`;
    if (!succ.has(key)) succ.set(key, []);
    succ.get(key).push([i, k]);
  })));
  const next = (i, k) => (dir === "future" ? succ.get(`${i}:${k}`) || [] : ev[i][k].preds);
  const seen = new Set(), todo = [from];
  while (todo.length) {
    const [i, k] = todo.pop();
    for (const [a, b] of next(i, k)) if (!seen.has(`${a}:${b}`)) { seen.add(`${a}:${b}`); todo.push([a, b]); }
  }
  return seen;
}

/* A seeded random script: machines tick, send to one or two others, receive what waits. */
export function randomSteps(n, count, seed) {
  let x = seed >>> 0;
  const rnd = () => { x = (x * 1664525 + 1013904223) >>> 0; return x / 2 ** 32; };
  const steps = [], queues = Array.from({ length: n }, () => []);
  for (let s = 0; s < count; s++) {
    const m = 1 + Math.floor(rnd() * n), q = queues[m - 1];
    if (q.length && rnd() < 0.6) { steps.push(["r", m, q.shift()]); continue; }
    if (rnd() < 0.4) {
      const to = [1 + Math.floor(rnd() * n)].filter((j) => j !== m);
      if (to.length) { steps.push(["s", m, to]); queues[to[0] - 1].push(steps.length - 1); continue; }
    }
    steps.push(["i", m]);
  }
  return steps;
}
