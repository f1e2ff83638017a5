import { test } from "node:test";
import assert from "node:assert/strict";
import { hitAt } from "../../lclock/explorer/js/hit.mjs";
import { GUTTER, laneRows } from "../../lclock/explorer/js/layout.mjs";
import { run } from "./fixture.mjs";

/* A linear scale as d3's: axis value to pixel, with its inverse. */
function scale(d0, d1, r0, r1) {
  const f = (x) => r0 + ((x - d0) / (d1 - d0)) * (r1 - r0);
  f.invert = (p) => d0 + ((p - r0) / (r1 - r0)) * (d1 - d0);
  return f;
}

function view(r) {
  const S = { mode: "real", xs: scale(0, 0.01, GUTTER, GUTTER + 1000), kinds: [true, true, true],
    layers: { arrows: true, drops: true, pending: true, faults: true, marks: true }, arrows: { buf: new Int32Array(0), n: 0, runs: [] } };
  return Object.assign(S, laneRows([r], new Set(), 400));
}

test("the event under the pointer, within a few pixels", () => {
  const { run: r } = run(2, [["i", 1], ["s", 1, [2]], ["r", 2, 1]]);
  const S = view(r);
  const y1 = S.rowOf[0][1].y;
  assert.deepEqual(hitAt(S, S.xs(0.003) + 3, y1), { type: "event", run: r, li: 1, k: 0 });
  assert.equal(hitAt(S, S.xs(0.003) + 30, y1), null, "too far");
  assert.equal(hitAt(S, GUTTER - 1, y1), null, "the gutter");
  S.kinds[2] = false;
  assert.equal(hitAt(S, S.xs(0.003), y1), null, "a hidden kind is not hit");
});

test("an arrow drawn last is hit along its length", () => {
  const { run: r } = run(2, [["i", 1], ["s", 1, [2]], ["i", 2], ["i", 2], ["r", 2, 1]]);
  const S = view(r);
  S.arrows = { buf: Int32Array.from([0]), n: 1, runs: [[r, 0, 1]] };
  const [ya, yb] = [S.rowOf[0][0].y, S.rowOf[0][1].y];
  const xa = S.xs(0.002), xb = S.xs(0.005);
  const mid = hitAt(S, (xa + xb) / 2, (ya + yb) / 2);
  assert.deepEqual(mid, { type: "msg", run: r, m: 0 });
  S.layers.arrows = false;
  assert.equal(hitAt(S, (xa + xb) / 2, (ya + yb) / 2), null);
});
