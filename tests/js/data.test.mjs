import { test } from "node:test";
import assert from "node:assert/strict";
import { dec, decodeRuns, faultBands, locate, lowerBound, upperBound } from "../../lclock/explorer/js/data.mjs";
import { block, enc, run, simulate } from "./fixture.mjs";

test("columns decode from a constant step or a list of steps", () => {
  assert.deepEqual([...dec({ n: 4, s: 10, d: 5 }, Float64Array)], [10, 15, 20, 25]);
  assert.deepEqual([...dec({ n: 4, s: 7, v: [1, -3, 0] }, Int32Array)], [7, 8, 5, 5]);
  assert.equal(dec({ n: 0, s: 0, d: 0 }, Float64Array).length, 0);
  const a = [3, 3, 9, 1000000, 1000001];
  assert.deepEqual([...dec(enc(a), Float64Array)], a);
});

test("bounds find the first value at or above, and above", () => {
  const a = Float64Array.from([1, 2, 2, 2, 5]);
  assert.equal(lowerBound(a, 2), 1);
  assert.equal(upperBound(a, 2), 4);
  assert.equal(lowerBound(a, 0), 0);
  assert.equal(upperBound(a, 9), 5);
  assert.equal(lowerBound(a, 3), 4);
  assert.equal(upperBound(a, 3), 4);
  assert.equal(lowerBound(new Float64Array(0), 1), 0);
  assert.equal(lowerBound(a, 2, 2), 2); // from lo on
});

test("messages are located on both ends, per receive and per send", () => {
  const steps = [["s", 1, [2]], ["s", 1, [3]], ["r", 3, 1], ["i", 2], ["r", 2, 0], ["s", 3, [1]], ["r", 1, 5]];
  const { run: r } = run(3, steps);
  assert.equal(r.M, 3);
  assert.equal(r.total, 7);
  assert.deepEqual([...r.off], [0, 3, 5, 7]);
  assert.deepEqual(locate(r, 4), [1, 1]);
  // sorted by send: m1's first send (to 2), m1's second (to 3), m3's send (to 1)
  assert.deepEqual([...r.mSL], [0, 0, 2]);
  assert.deepEqual([...r.mSI], [0, 1, 1]);
  assert.deepEqual([...r.mRL], [1, 2, 0]);
  assert.deepEqual([...r.mRI], [1, 0, 2]);
  assert.deepEqual([...r.msgOfRecv[1]], [-1, 0]);
  assert.deepEqual([...r.msgsOfSendStart[0]], [0, 1, 2, 2]);
  const ln = r.lanes[0];
  assert.deepEqual([...ln.sendRank], [0, 1, -1]);
  assert.deepEqual([...ln.recvRank], [-1, -1, 0]);
  assert.deepEqual([...ln.toStart], [0, 1, 2, 2]);
});

test("pauses and partitions become bands, open ones end at the lane's last event", () => {
  const ev = simulate(2, [["i", 1], ["i", 2], ["i", 1], ["i", 2], ["i", 1]]);
  const marks = { n: 4, lane: [1, 1, 2, 1], t: [1500, 2500, 1200, 3500], kind: [0, 1, 0, 2], kinds: ["pause", "resume", "fault"],
    line: [1, 2, 3, 4], text: ['{"skipped": 3}', '{"skipped": 3}', "{}", '{"kind": "partition", "groups": [[1], [2]]}'] };
  const r = decodeRuns({ runs: [block(ev, { marks })] })[0];
  const bands = r.bands.map(({ kind, lane, t0, t1, label }) => ({ kind, lane, t0, t1, label }));
  assert.deepEqual(bands, [
    { kind: "pause", lane: 0, t0: 1500, t1: 2500, label: "paused (3 ticks skipped)" },
    { kind: "pause", lane: 1, t0: 1200, t1: 4000, label: "paused (no resume logged)" },
    { kind: "partition", lane: 0, t0: 3500, t1: 5000, label: "partition 1 | 2 (no heal logged)" },
  ]);
});

test("the plan's partitions show only when none was logged", () => {
  const plan = { partitions: [{ start_s: 1, end_s: 2, groups: [[1, 2], [3]] }] };
  const r = run(2, [["i", 1], ["i", 2]], { plan }).run;
  assert.deepEqual(r.bands.map((b) => [b.kind, b.t0, b.t1, b.label]), [["plan", 1e6, 2e6, "planned partition 1,2 | 3"]]);
  r.marks = { n: 2, lane: [0, 0], t: [10, 20], kind: [0, 0], kinds: ["fault"], line: [1, 2],
    text: ['{"kind": "partition", "groups": [[1], [2]]}', '{"kind": "heal"}'] };
  assert.deepEqual(faultBands(r).map((b) => b.kind), ["partition"]);
});
