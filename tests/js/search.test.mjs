import { test } from "node:test";
import assert from "node:assert/strict";
import { parseIds, search, searchClocks } from "../../lclock/explorer/js/search.mjs";
import { run } from "./fixture.mjs";

const steps = [["i", 1], ["s", 1, [2]], ["i", 2], ["r", 2, 1], ["i", 1], ["i", 2], ["i", 1]];
const where = (r) => r.results.map(([, li, k]) => [li, k]);

test("a Lamport value: every exact match, or on one machine the next one", () => {
  const { run: r } = run(2, steps);
  // m1: L 1 2 3 4; m2: L 1 3 4
  assert.deepEqual(where(search([r], "", "L", "3")), [[0, 2], [1, 1]]);
  assert.equal(search([r], "", "L", "3").message, "2 matches");
  const one = search([r], "0:1", "L", "2");
  assert.deepEqual(where(one), [[1, 1]]);
  assert.equal(one.message, "no event with Lamport 2 on this machine; the next is 3");
  assert.deepEqual(where(search([r], "", "L", "9")), []);
  assert.equal(search([r], "", "L", "9").message, "no event with Lamport 9");
  assert.equal(search([r], "", "L", "1,0").results.length, 0, "1,0 reads as 10");
});

test("vector clocks, HLC, tick and log line", () => {
  const { run: r } = run(2, steps);
  assert.deepEqual(where(search([r], "", "vc", "[2, 2]")), [[1, 1]]);
  assert.equal(search([r], "", "vc", "[1]").message, "a vector clock has 2 entries");
  assert.deepEqual(where(search([r], "", "hlc", "[4000, 0]")), [[1, 1]]);
  assert.deepEqual(where(search([r], "", "hlc", `${1767225600000000 + 4000}`)), [[1, 1]], "l as in the log");
  assert.deepEqual(where(search([r], "0:0", "tick", "4")), [[0, 3]]);
  assert.deepEqual(where(search([r], "0:1", "line", "3")), [[1, 1]]);
});

test("real time and pt: the nearest event on each machine", () => {
  const { run: r } = run(2, steps);
  // m1 at 1, 2, 5, 7 ms; m2 at 3, 4, 6 ms
  const near = search([r], "", "real", "0.0052");
  assert.deepEqual(where(near), [[0, 2], [1, 2]]);
  assert.equal(near.message, "2 nearest event(s)");
  assert.deepEqual(where(search([r], "0:0", "pt", "1900")), [[0, 1]]);
});

test("nothing to search, or not a number", () => {
  const { run: r } = run(2, steps);
  assert.deepEqual(search([r], "", "L", "  "), { results: [], message: "type a value" });
  assert.deepEqual(search([r], "", "L", "abc"), { results: [], message: "not a number" });
});

test("the clocks offered are the ones every run has", () => {
  assert.deepEqual(searchClocks([run(2, steps).run]).map((c) => c[0]), ["L", "tick", "vc", "hlc", "pt", "real", "line"]);
  assert.deepEqual(searchClocks([run(2, steps, { vc: false, clocks: false }).run]).map((c) => c[0]), ["L", "tick", "real", "line"]);
});

test("machine ids and ranges", () => {
  assert.deepEqual([...parseIds("1-3, 7;9")], [1, 2, 3, 7, 9]);
  assert.deepEqual([...parseIds("5-3")], [3, 4, 5]);
  assert.deepEqual([...parseIds("")], []);
  assert.equal(parseIds("1-x"), null);
  assert.equal(parseIds("m1"), null);
});
