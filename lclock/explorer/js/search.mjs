/* Search by machine and clock value, and the machine filter's ids and ranges. Pure
 * (tests/js/search.test.mjs). */
import { lowerBound, upperBound } from "./data.mjs";

export const CLOCKS = [["L", "Lamport"], ["tick", "tick"], ["vc", "vector clock"], ["hlc", "HLC l[,c]"],
  ["pt", "physical pt (us)"], ["real", "real time (s)"], ["line", "log line"]];

/* The clocks every run can be searched by. */
export function searchClocks(runs) {
  return CLOCKS.filter(([k]) => (k !== "vc" || runs.every((r) => r.vcOK))
    && (k !== "hlc" || runs.every((r) => r.clocks.includes("hlc")))
    && (k !== "pt" || runs.every((r) => r.clocks.includes("pt"))));
}

const numbers = (v) => v.replace(/[[\]]/g, "").split(/[ ,;]+/).filter(Boolean).map(Number);

/* An exact HLC [l, c] (c optional), l in us since t0 or since the epoch as in the log. */
function searchHlc(run, li, v, out) {
  const ln = run.lanes[li], [l, c] = numbers(v);
  const l0 = l - (l > 1e12 ? run.t0 : 0);
  for (let k = 0; k < ln.n; k++) if (ln.hl[k] === l0 && (c === undefined || isNaN(c) || ln.hc[k] === c)) out.push([run, li, k]);
}

/* An exact vector clock; null when it has the wrong number of entries. */
function searchVc(run, li, v, out) {
  const ln = run.lanes[li], want = numbers(v);
  if (want.length !== ln.vc.length) return `a vector clock has ${ln.vc.length} entries`;
  for (let k = 0; k < ln.n; k++) {
    let ok = true;
    for (let c = 0; c < want.length && ok; c++) ok = ln.vc[c][k] === want[c];
    if (ok) out.push([run, li, k]);
  }
  return null;
}

/* The column searched and the value sought in it, for the clocks kept as one number. */
function column(run, ln, clock, numv) {
  if (clock === "L") return [ln.L, numv];
  if (clock === "tick") return [ln.tick, numv];
  if (clock === "line") return [ln.line, numv];
  if (clock === "real") return [ln.t, numv * 1e6];
  if (clock === "pt") return [ln.pt, numv - (numv > 1e12 ? run.t0 : 0)];
  return [null, numv];
}

/* Matches of one clock value: exact ones, else the nearest (real time, pt) or, on one
   machine, the next event at or after it. */
export function search(runs, machine, clock, text) {
  const lanes = [];
  if (machine) { const [s, li] = machine.split(":").map(Number); lanes.push([runs[s], li]); }
  else for (const run of runs) for (let li = 0; li < run.N; li++) lanes.push([run, li]);
  const v = text.trim();
  if (!v) return { results: [], message: "type a value" };
  const numv = Number(v.replace(/[, _]/g, ""));
  const out = [];
  let exact = true;
  for (const [run, li] of lanes) {
    const ln = run.lanes[li];
    if (clock === "hlc") { searchHlc(run, li, v, out); continue; }
    if (clock === "vc") { const bad = searchVc(run, li, v, out); if (bad) return { results: [], message: bad }; continue; }
    const [col, target] = column(run, ln, clock, numv);
    if (!col || isNaN(target)) return { results: [], message: "not a number" };
    let sorted = true;
    for (let k = 1; k < ln.n && sorted; k++) sorted = col[k] >= col[k - 1];
    if (sorted) {
      let a = lowerBound(col, target);
      const b = upperBound(col, target);
      if (b > a) for (let k = a; k < b; k++) out.push([run, li, k]);
      else if (clock === "real" || clock === "pt") {
        if (a > 0 && (a >= ln.n || Math.abs(col[a - 1] - target) < Math.abs(col[a] - target))) a--;
        if (a < ln.n) { out.push([run, li, a]); exact = clock !== "L"; }
      } else if (machine && a < ln.n) { out.push([run, li, a]); exact = false; }
    } else for (let k = 0; k < ln.n; k++) if (col[k] === target) out.push([run, li, k]);
    if (out.length > 5000) break;
  }
  return { results: out, message: searchMessage(clock, v, out, exact) };
}

function searchMessage(clock, v, out, exact) {
  const name = CLOCKS.find((c) => c[0] === clock)[1];
  if (clock === "real" || clock === "pt") return `${out.length} nearest event(s)`;
  if (!exact && out.length && (clock === "L" || clock === "tick" || clock === "line")) {
    const [run, li, k] = out[0], ln = run.lanes[li];
    const got = clock === "L" ? ln.L[k] : clock === "tick" ? ln.tick[k] : ln.line[k];
    return `no event with ${name} ${v} on this machine; the next is ${got}`;
  }
  return out.length ? `${out.length.toLocaleString("en-US")} match${out.length > 1 ? "es" : ""}` : `no event with ${name} ${v}`;
}

/* Machine ids and ranges ("1-4,9"); null when the text is not that. */
export function parseIds(text) {
  const out = new Set();
  for (const part of text.split(/[ ,;]+/).filter(Boolean)) {
    const m = part.match(/^(\d+)(?:-(\d+))?$/);
    if (!m) return null;
    const a = +m[1], b = m[2] ? +m[2] : a;
    for (let i = Math.min(a, b); i <= Math.max(a, b) && i - a < 100000; i++) out.add(i);
  }
  return out;
}
