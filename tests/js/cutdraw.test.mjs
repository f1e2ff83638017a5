import { test } from "node:test";
import assert from "node:assert/strict";
import { labelLines } from "../../lclock/explorer/js/cutdraw.mjs";

test("labels far apart share the first line", () => {
  assert.deepEqual(labelLines([[0, 10], [50, 10], [100, 10]]), [0, 0, 0]);
});

test("labels that would overlap go to the next line, in x order whatever the input order", () => {
  assert.deepEqual(labelLines([[104, 10], [100, 10], [108, 10]]), [1, 0, 2]);
});

test("a label with no room on any line is left out, never drawn over another", () => {
  const spans = [[0, 20], [1, 20], [2, 20], [3, 20], [30, 20]];
  const lines = labelLines(spans, 3);
  assert.deepEqual(lines, [0, 1, 2, null, 0]);
  for (let a = 0; a < spans.length; a++) {
    for (let b = a + 1; b < spans.length; b++) {
      if (lines[a] === null || lines[a] !== lines[b]) continue;
      const [l, r] = spans[a][0] <= spans[b][0] ? [spans[a], spans[b]] : [spans[b], spans[a]];
      assert.ok(l[0] + l[1] + 2 <= r[0], `labels ${a} and ${b} overlap`);
    }
  }
});
