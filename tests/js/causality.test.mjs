import { test } from "node:test";
import assert from "node:assert/strict";
import { causal, causalMsgs, causalVC, classOf, relation } from "../../lclock/explorer/js/causality.mjs";
import { randomSteps, reach, run } from "./fixture.mjs";

/* The page's split (pastEnd, futStart per lane) as sets of "lane:index". */
function sets(c, r) {
  const past = new Set(), fut = new Set();
  r.lanes.forEach((ln, j) => {
    for (let k = 0; k < c.pastEnd[j]; k++) past.add(`${j}:${k}`);
    for (let k = c.futStart[j]; k < ln.n; k++) fut.add(`${j}:${k}`);
  });
  return { past, fut };
}

test("a message makes the send happen before the receive and what follows it", () => {
  const { run: r } = run(2, [["i", 1], ["s", 1, [2]], ["i", 2], ["r", 2, 1], ["i", 1]]);
  const c = causal(r, 0, 1); // the send
  assert.deepEqual([...c.pastEnd], [1, 0]);
  assert.deepEqual([...c.futStart], [2, 1]); // machine 2: the receive (index 1) on
  assert.deepEqual(c.counts, { past: 1, future: 2, concurrent: 1 });
  assert.equal(classOf(c, r, 1, 0), 3); // machine 2's first event: concurrent
  assert.equal(classOf(c, r, 1, 1), 2);
  assert.equal(classOf(c, r, 0, 0), 1);
  assert.equal(classOf(c, r, 0, 1), 4);
  assert.equal(classOf(null, r, 0, 1), 0);
  assert.equal(relation(c, 1, 1), "happened after");
  assert.equal(relation(c, 0, 0), "happened before");
  assert.equal(relation(c, 1, 0), "is concurrent with");
});

for (const seed of [1, 2, 3, 4]) {
  test(`vector clocks and matched messages agree with reachability (seed ${seed})`, () => {
    const { run: r, ev } = run(4, randomSteps(4, 120, seed));
    assert.ok(r.M > 5, "the script sends messages");
    let checked = 0;
    r.lanes.forEach((ln, li) => {
      for (let k = 0; k < ln.n; k++) {
        const want = { past: reach(ev, [li, k], "past"), fut: reach(ev, [li, k], "future") };
        for (const c of [causalVC(r, li, k), causalMsgs(r, li, k)]) {
          const got = sets(c, r);
          assert.deepEqual([...got.past].sort(), [...want.past].sort(), `${c.source}: past of ${li}:${k}`);
          assert.deepEqual([...got.fut].sort(), [...want.fut].sort(), `${c.source}: future of ${li}:${k}`);
        }
        checked++;
      }
    });
    assert.equal(checked, r.total);
  });
}

test("without vector clocks the split comes from the messages", () => {
  const { run: r } = run(3, randomSteps(3, 60, 9), { vc: false });
  assert.equal(r.vcOK, false);
  assert.equal(causal(r, 0, 3).source, "matched messages");
  const { run: v } = run(3, randomSteps(3, 60, 9));
  assert.equal(causal(v, 0, 3).source, "vector clocks");
});

test("counts add up to every other event", () => {
  const { run: r } = run(3, randomSteps(3, 80, 5));
  for (let li = 0; li < r.N; li++) for (let k = 0; k < r.lanes[li].n; k += 3) {
    const { past, future, concurrent } = causal(r, li, k).counts;
    assert.equal(past + future + concurrent, r.total - 1);
  }
});
