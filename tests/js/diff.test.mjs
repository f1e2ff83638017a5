import { test } from "node:test";
import assert from "node:assert/strict";
import { compareRows, differ, diffSeries, runMetrics, seriesGap } from "../../lclock/explorer/js/diff.mjs";
import { run } from "./fixture.mjs";

// m1: L 1 2 3 (1, 2, 5 ms); m2: L 1 3 4 (3, 4, 6 ms); the receive at 4 ms jumps 1 -> 3
const steps = [["i", 1], ["s", 1, [2]], ["i", 2], ["r", 2, 1], ["i", 1], ["i", 2]];

test("drift, queues and jumps in bins along the axis", () => {
  const { run: r } = run(2, steps);
  r.lanes[1].q[0] = 2; // m2 had 2 messages queued after its first event
  const s = diffSeries(r, "real", 0, 0.006, 3); // bins of 2 ms: up to 2, 4, 6 ms
  assert.deepEqual([...s.spread], [0, 1, 1]); // up to 2 ms only m1 (L 2); then L 2 vs 3, L 3 vs 4
  assert.deepEqual([...s.queue], [0, 0, 0]);
  assert.deepEqual([...s.jump], [0, 0, 2]); // the receive at 4 ms falls in the last bin
  const t = diffSeries(r, "real", 0, 0.0035, 1);
  assert.deepEqual([...t.queue], [2]);
  assert.deepEqual([...diffSeries(r, "lamport", 0, 6, 2).jump], [0, 2]);
});

test("where two series are apart by more than a tenth of their scale", () => {
  const g = seriesGap([0, 10, 5, 0.2], [0, 8.9, 5, 0]);
  assert.equal(g.max, 10);
  assert.deepEqual(g.apart, [1]);
  assert.equal(seriesGap([0, 0], [0, 0]).max, 1, "at least 1");
});

test("figures per machine, and which differ between the runs", () => {
  const { run: r } = run(2, steps);
  const m = runMetrics(r);
  assert.deepEqual(m.map((x) => [x.id, x.events, x.recv, x.jmax, x.L]), [[1, 3, 0, 0, 3], [2, 3, 1, 2, 4]]);
  assert.equal(m[1].jmean, 2);
  assert.equal(differ(10, 13), true);
  assert.equal(differ(10, 11), false);
  assert.equal(differ(0, 1), false, "within 1 is never a difference");
  assert.equal(differ(undefined, 5), false);
  const { run: three } = run(3, [["i", 1], ["i", 3]]);
  const rows = compareRows(r, three);
  assert.deepEqual(rows.map((x) => x.id), [1, 2, 3]);
  assert.deepEqual(rows[2].a, {});
  assert.equal(rows[2].b.L, 1);
});
