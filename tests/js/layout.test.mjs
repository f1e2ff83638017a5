import { test } from "node:test";
import assert from "node:assert/strict";
import { AXIS_H, DIFF_ROW_H, RUN_TITLE_H, clampRange, domainOf, histogram, inSight, laneRows, modesOf, rowAt,
  sameAsReal, segDist, spanAround, timeX, xcol } from "../../lclock/explorer/js/layout.mjs";
import { run } from "./fixture.mjs";

const steps = [["i", 1], ["s", 1, [2]], ["i", 2], ["r", 2, 1], ["i", 1], ["i", 2]];

test("x of events on each axis, with a sorted view when the axis is not in order", () => {
  const { run: r } = run(2, steps, { skew: [0, 0] });
  const real = xcol(r, 0, "real");
  assert.deepEqual([...real.x], [0.001, 0.002, 0.005]);
  assert.equal(real.ord, null);
  assert.deepEqual([...xcol(r, 1, "lamport").x], [1, 3, 4]);
  assert.equal(xcol(r, 1, "lamport"), xcol(r, 1, "lamport"), "cached");
  r.lanes[0].pt = Float64Array.from([3000, 1000, 2000]); // a clock stepped back
  const pt = xcol(r, 0, "pt");
  assert.deepEqual([...pt.ord], [1, 2, 0]);
  assert.deepEqual([...pt.xs], [0.001, 0.002, 0.003]);
});

test("a moment falls between the lane's events around it on every axis", () => {
  const { run: r } = run(2, steps);
  assert.equal(timeX(r, 0, 1500, "real"), 0.0015);
  assert.equal(timeX(r, 0, 1500, "lamport"), 1.5); // between L 1 at 1 ms and L 2 at 2 ms
  assert.equal(timeX(r, 0, 0, "lamport"), 0.5); // before the first event
  assert.equal(timeX(r, 0, 9000, "lamport"), 3.5); // after the last
  assert.ok(Math.abs(timeX(r, 0, 3500, "pt") - 0.0035) < 1e-12);
});

test("the domain spans every event of every run with 2 % to spare", () => {
  const { run: r } = run(2, steps);
  const [a, b] = domainOf([r], "real");
  assert.ok(Math.abs(a - (0.001 - 0.0001)) < 1e-12 && Math.abs(b - (0.006 + 0.0001)) < 1e-12, `${a} ${b}`);
  const [la, lb] = domainOf([r], "lamport");
  assert.ok(la < 0 && lb > 5, "Lamport from 0 to the largest value + 1");
  assert.deepEqual(modesOf([r]), ["real", "lamport", "hlc", "pt"]);
  assert.deepEqual(modesOf([r, run(2, steps, { clocks: false }).run]), ["real", "lamport"]);
});

test("HLC and pt add nothing when every clock equals real time", () => {
  const same = run(2, steps).run;
  assert.equal(sameAsReal([same], "pt"), true);
  assert.equal(sameAsReal([same], "hlc"), true);
  assert.equal(sameAsReal([same], "real"), false, "only clock axes are compared");
  const skewed = run(2, steps, { skew: [0, 150000] }).run;
  assert.equal(sameAsReal([skewed], "pt"), false);
  assert.equal(sameAsReal([same, skewed], "pt"), false, "both compared runs must agree");
  same.lanes[1].hc[0] = 1;
  assert.equal(sameAsReal([same], "hlc"), false, "an HLC counter shows");
  assert.equal(sameAsReal([run(2, steps, { clocks: false }).run], "pt"), false);
});

test("lanes share the whole height below the axis", () => {
  const { run: r } = run(3, [["i", 1], ["i", 2], ["i", 3]]);
  const H = 700, { rows, rowOf, laneH, diffBox } = laneRows([r], new Set(), H);
  assert.equal(rows.length, 3);
  assert.equal(diffBox, null);
  assert.ok(Math.abs(laneH * 3 - (H - AXIS_H - 6)) < 1e-9, `three lanes fill the height, got ${laneH}`);
  assert.ok(rows.at(-1).y + laneH / 2 <= H);
  assert.equal(rowOf[0][1], rows[1]);
  const hidden = laneRows([r], new Set([2]), H);
  assert.deepEqual(hidden.rows.map((x) => x.li), [0, 2]);
  assert.equal(hidden.rowOf[0][1], null);
  assert.equal(rowAt(rows, rows[2].y + laneH / 2 - 1), rows[2]);
  assert.equal(rowAt(rows, 2), null, "the axis is no lane");
  const many = laneRows([run(1, [["i", 1]]).run], new Set(), 50);
  assert.equal(many.laneH, 20);
  const tiny = laneRows([r], new Set(), 30);
  assert.equal(tiny.laneH, 4, "never thinner than 4 px");
});

test("two runs: a title each and the diff charts between them", () => {
  const a = run(2, steps).run, b = run(2, steps).run;
  b.slot = 1;
  const H = 800, { rows, laneH, diffBox } = laneRows([a, b], new Set(), H);
  assert.deepEqual(rows.map((x) => (x.title ? "title" : `${x.run.slot}:${x.li}`)), ["title", "0:0", "0:1", "title", "1:0", "1:1"]);
  assert.equal(diffBox.h, DIFF_ROW_H * 3);
  assert.ok(diffBox.y > rows[2].y && diffBox.y + diffBox.h < rows[3].y);
  assert.ok(Math.abs(laneH * 4 - (H - AXIS_H - DIFF_ROW_H * 3 - 10 - 2 * RUN_TITLE_H - 6)) < 1e-9);
});

test("ranges stay inside the run, zoom factors follow", () => {
  assert.deepEqual(clampRange([0, 10], 2, 4), { start: 2, k: 5 });
  assert.deepEqual(clampRange([0, 10], -3, -1), { start: 0, k: 5 });
  assert.deepEqual(clampRange([0, 10], 9, 11), { start: 8, k: 5 });
  assert.deepEqual(clampRange([0, 10], -5, 50), { start: 0, k: 1 });
  const busy = { N: 2, lanes: [{ n: 6000 }, { n: 30 }] };
  assert.equal(spanAround([busy], [0, 100]), 1, "about 60 events of the busiest lane");
  assert.equal(spanAround([{ N: 1, lanes: [{ n: 3 }] }], [0, 1]), 1, "few events: the whole run");
});

test("events in sight, histogram, and distance to a segment", () => {
  const c = { xs: Float64Array.from([0, 1, 2, 3, 4, 5]) };
  assert.deepEqual(inSight(c, 1, 3), [1, 4]);
  assert.deepEqual(inSight(c, 10, 20), [6, 6]);
  assert.deepEqual([...histogram(Float64Array.from([0, 0.1, 0.5, 0.99, 1.5, -1]), [0, 1], 4)], [2, 0, 1, 1]);
  assert.equal(segDist(0, 5, -10, 0, 10, 0), 5);
  assert.equal(segDist(13, 4, 0, 0, 10, 0), 5);
  assert.equal(segDist(3, 4, 0, 0, 0, 0), 5);
});
