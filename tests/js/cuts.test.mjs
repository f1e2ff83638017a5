import { test } from "node:test";
import assert from "node:assert/strict";
import { countAt, countsOfTicks, crossingInfo, cutText, cutX, judge, snapshotCuts, snapshotText, tickOf, verdictText } from "../../lclock/explorer/js/cuts.mjs";
import { decodeRuns } from "../../lclock/explorer/js/data.mjs";
import { block, randomSteps, run, simulate } from "./fixture.mjs";

/* The oracle, apart from the page's messages: every receive of the script against the send
   it names (machine index, event index on each side). */
function scriptMessages(ev) {
  const out = [];
  ev.forEach((evs, i) => evs.forEach((e, k) => { if (e.kind === 2) out.push([e.from - 1, e.preds[e.preds.length - 1][1], i, k]); }));
  return out;
}
function crossingByOracle(ev, cnt) {
  const x = scriptMessages(ev).filter(([s, sk, r, rk]) => rk < cnt[r] && sk >= cnt[s]);
  x.sort((a, b) => a[2] - b[2] || a[3] - b[3] || a[0] - b[0] || a[1] - b[1]);
  return x;
}

test("a message received inside and sent outside makes the cut inconsistent, and is named", () => {
  const { run: r } = run(2, [["i", 1], ["s", 1, [2]], ["i", 2], ["r", 2, 1], ["i", 1]]);
  const cnt = countsOfTicks(r, { 1: 1, 2: 2 }); // m1 holds its first tick only; m2 holds the receive
  assert.deepEqual([...cnt], [1, 2]);
  const j = judge(r, cnt);
  assert.equal(j.consistent, false);
  assert.equal(j.count, 1);
  assert.deepEqual(crossingInfo(r, j.crossing), { sender: 1, send_tick: 2, msg_lclock: 2, send_at: "machine-1.jsonl:3",
    receiver: 2, receive_tick: 2, receive_at: "machine-2.jsonl:3" });
  assert.match(verdictText(r, cnt, j), /^cut 1:1,2:2 is not consistent: m2 took in at tick 2 \(machine-2\.jsonl:3\)/);
  const ok = countsOfTicks(r, { 1: 2, 2: 2 });
  assert.equal(judge(r, ok).consistent, true);
  assert.equal(verdictText(r, ok, judge(r, ok)), "cut 1:2,2:2 is consistent");
  assert.equal(judge(r, countsOfTicks(r, { 1: 0, 2: 0 })).consistent, true, "the empty cut");
});

for (const seed of [1, 2, 3, 4, 5]) {
  test(`every cut of a random run is judged as the script's own messages judge it (seed ${seed})`, () => {
    const steps = randomSteps(3, 24, seed), ev = simulate(3, steps);
    const [r] = decodeRuns({ runs: [block(ev)] });
    const n = r.lanes.map((ln) => ln.n);
    let bad = 0, all = 0;
    for (let a = 0; a <= n[0]; a++) for (let b = 0; b <= n[1]; b++) for (let c = 0; c <= n[2]; c++) {
      const cnt = Int32Array.from([a, b, c]), j = judge(r, cnt), want = crossingByOracle(ev, cnt);
      all++;
      assert.equal(j.consistent, want.length === 0);
      assert.equal(j.count, want.length);
      if (want.length) {
        bad++;
        assert.deepEqual([r.mSL[j.crossing], r.mSI[j.crossing], r.mRL[j.crossing], r.mRI[j.crossing]], want[0]);
      }
    }
    assert.ok(bad > 0 && bad < all, "the run has cuts of both kinds");
  });
}

test("ticks and counts: a cut's text is the syntax of lclock cuts --cut", () => {
  const { run: r } = run(3, randomSteps(3, 30, 9));
  const cnt = Int32Array.from(r.lanes, (ln) => Math.floor(ln.n / 2));
  const text = cutText(r, cnt);
  const ticks = Object.fromEntries(text.split(",").map((x) => x.split(":").map(Number)));
  assert.deepEqual([...countsOfTicks(r, ticks)], [...cnt]);
  assert.equal(tickOf(r.lanes[0], 0), 0);
  assert.equal(tickOf({ n: 3, first: 10, tick: [11, 12, 13] }, 0), 10, "the tick before the part shown");
});

test("where a cut crosses a lane, and which events a dragged position holds", () => {
  const x = Float64Array.from([1, 2, 4]);
  assert.equal(cutX(x, 0, 0.5), 0.5);
  assert.equal(cutX(x, 2, 0.5), 3);
  assert.equal(cutX(x, 3, 0.5), 4.5);
  assert.equal(cutX(new Float64Array(0), 0, 1), null);
  assert.equal(countAt({ x, ord: null }, 2.5), 2);
  assert.equal(countAt({ x, ord: null }, 0), 0);
  assert.equal(countAt({ x, ord: null }, 9), 3);
  assert.equal(countAt({ x: Float64Array.from([1, 5, 3]), ord: [0, 2, 1] }, 4), 1, "a prefix, also where x falls back");
});

test("snapshots become cuts, judged, with their channels in the tooltip", () => {
  const ev = simulate(2, [["i", 1], ["s", 1, [2]], ["i", 2], ["r", 2, 1], ["i", 1]]);
  const d = block(ev);
  d.snaps = [
    { id: "1", parts: [{ m: 1, tick: 2, lclock: 2, line: 9, vclock: [2, 0], queue: [], channels: { 2: [] } },
      { m: 2, tick: 1, lclock: 1, line: 9, vclock: [0, 1], queue: [], channels: { 1: [{ from: 1, msg_lclock: 2, send_tick: 2 }] } }] },
    { id: "2", parts: [{ m: 1, tick: 1, lclock: 1, line: 10, queue: [], channels: {} },
      { m: 2, tick: 2, lclock: 3, line: 10, queue: [{ from: 1, msg_lclock: 2, send_tick: 2 }], channels: {} }] },
    { id: "3", parts: [{ m: 1, tick: 3, lclock: 3, line: 11, queue: [], channels: {} }] },
  ];
  const [r] = decodeRuns({ runs: [d] });
  const [s1, s2, s3] = snapshotCuts(r);
  assert.deepEqual([...s1.cnt], [2, 1]);
  assert.equal(s1.verdict.consistent, true);
  assert.equal(s1.complete, true);
  assert.equal(s2.verdict.consistent, false);
  assert.equal(s3.complete, false);
  const text = snapshotText(s1);
  assert.equal(text[0], "snapshot 1");
  assert.ok(text.includes("  channel m1→m2: m1 L2 t2"), text.join("\n"));
  assert.ok(text.includes("m1: tick 2, L2 [2,0], queue empty"), text.join("\n"));
  assert.match(snapshotText(s3)[0], /not recorded by every machine/);
  s1.parts.get(2).channels["1"].push({ more: 7 });
  assert.ok(snapshotText(s1).includes("  channel m1→m2: m1 L2 t2 (+7 more)"), "a long channel says how much is left out");
  assert.deepEqual(snapshotCuts(decodeRuns({ runs: [block(ev)] })[0]), [], "a run without snapshots");
});
