/* Text about events and messages: numbers and times as shown, an event's log line rebuilt
 * from its columns, names, and the queue wait of a message. Pure (tests/js/text.test.mjs). */

export const KINDS = ["internal", "send", "receive"];

/* A number with thousands separators and at most `digits` decimals, trailing zeros
   dropped, minus as U+2212 (as d3.format(",.N~f") writes it). */
export function fixed(v, digits) {
  let s = Math.abs(v).toFixed(digits);
  if (s.includes(".")) s = s.replace(/0+$/, "").replace(/\.$/, "");
  const [whole, frac] = s.split(".");
  const neg = v < 0 && /[1-9]/.test(s);
  return (neg ? "\u2212" : "") + whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",") + (frac ? "." + frac : "");
}

/* Seconds in the unit that suits the span shown (or the value itself). */
export function fmtSec(v, span) {
  const a = Math.abs(span ?? v);
  if (a < 2e-3) return `${fixed(v * 1e3, 6)} ms`;
  if (a < 2) return `${fixed(v, 6)} s`;
  return `${fixed(v, 4)} s`;
}

/* The labels of an axis's ticks. */
export function fmtAxis(mode, span) {
  if (mode === "lamport") return (v) => (Number.isInteger(v) ? String(v) : "");
  return (v) => fmtSec(v, span);
}

/* Microseconds since the epoch as lclock writes ts: ISO 8601 with 6 decimals, UTC. */
export function iso(us) {
  const sec = Math.floor(us / 1e6), frac = us - sec * 1e6;
  return new Date(sec * 1000).toISOString().slice(0, 19) + "." + String(Math.round(frac)).padStart(6, "0") + "Z";
}

export function recipients(ln, k) {
  const a = ln.toStart[k], n = ln.toN[ln.sendRank[k]];
  return Array.from(ln.to.subarray(a, a + n));
}

/* The event's log line, rebuilt from its fields in the order lclock writes them. */
export function logLine(run, li, k) {
  const ln = run.lanes[li], kind = ln.kind[k];
  const o = { ts: iso(run.t0 + (ln.traw ? ln.traw[k] : ln.t[k])), event: KINDS[kind], level: "info", run_id: run.id, machine: ln.id,
    tick: ln.tick[k], lclock: ln.L[k], queue_len: ln.q[k] };
  if (ln.vc) o.vclock = ln.vc.map((c) => c[k]);
  if (kind === 1) { o.dice = ln.dice[k]; o.to = recipients(ln, k); }
  else if (kind === 0) o.dice = ln.dice[k];
  else { const r = ln.recvRank[k]; o.from = ln.frm[r]; o.msg_lclock = ln.msg[r]; }
  if (ln.pt) o.pt = run.t0 + ln.pt[k];
  if (ln.hl) o.hlc = [run.t0 + ln.hl[k], ln.hc[k]];
  if (kind === 2) {
    const r = ln.recvRank[k];
    if (ln.mpt) o.msg_pt = run.t0 + ln.mpt[r];
    if (ln.mhl) o.msg_hlc = [run.t0 + ln.mhl[r], ln.mhc[r]];
    if (ln.dup[k]) o.dup = true;
  }
  return JSON.stringify(o);
}

const ENTITIES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" };
export const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ENTITIES[c]);

export function where(run, li, k) { const ln = run.lanes[li]; return `${ln.file}:${ln.line[k]}`; }

export function evName(run, li, k, compare) {
  const ln = run.lanes[li];
  return `${compare ? run.name + " · " : ""}machine ${ln.id} · tick ${ln.tick[k]} · ${KINDS[ln.kind[k]]}`;
}

/* How lclock trace and lclock hb name an event. */
export function evRef(ln, k) { return `${ln.id}:L${ln.L[k]}`; }

export function msgText(run, m) {
  const ln = run.lanes[run.mSL[m]], rn = run.lanes[run.mRL[m]];
  const d = (rn.t[run.mRI[m]] - ln.t[run.mSI[m]]) / 1e6;
  return `message m${ln.id} → m${rn.id}, carried L=${ln.L[run.mSI[m]]}, delay ${fmtSec(d)}`;
}

/* The longest a message can have waited in the receiver's queue, and how many older
   messages were handled before it. It cannot have waited while the receiver rolled the
   dice (its queue was empty then). */
export function queueWait(run, m) {
  const sl = run.mSL[m], rl = run.mRL[m];
  const ts = run.lanes[sl].t[run.mSI[m]], rn = run.lanes[rl], ri = run.mRI[m];
  let k = ri - 1, behind = 0;
  while (k >= 0 && rn.t[k] > ts && rn.kind[k] === 2) { behind++; k--; }
  const since = k >= 0 ? Math.max(ts, rn.t[k]) : ts;
  return { wait: (rn.t[ri] - since) / 1e6, behind };
}
