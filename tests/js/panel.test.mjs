import { test } from "node:test";
import assert from "node:assert/strict";
import { causal } from "../../lclock/explorer/js/causality.mjs";
import { sameAsReal } from "../../lclock/explorer/js/layout.mjs";
import { compareTable, panelEvent, panelMessage, panelRun } from "../../lclock/explorer/js/panel.mjs";
import { run } from "./fixture.mjs";

const steps = [["i", 1], ["s", 1, [2]], ["i", 2], ["r", 2, 1], ["i", 1]];
function view(r, sel, opts = {}) {
  const same = new Set(["hlc", "pt"].filter((m) => sameAsReal([r], m)));
  return { runs: [r], compare: false, sel, prevSel: opts.prevSel || null, causal: causal(r, sel.li, sel.k), msgSel: null, same };
}

test("clocks equal to real time are not repeated, and the panel says why", () => {
  const { run: r } = run(2, steps);
  const html = panelEvent(view(r, { run: r, li: 1, k: 1 }));
  assert.ok(!html.includes("HLC [l, c]") && !html.includes("physical pt"));
  assert.match(html, /data-same="hlc pt">HLC and physical clock \(pt\) = real time on every event \(no clock was skewed\)/);
  assert.match(panelRun({ runs: [r], compare: false, same: new Set(["pt"]) }), /data-same="pt">physical clock \(pt\) = real time/);
});

test("skewed clocks keep their rows", () => {
  const { run: r } = run(2, steps, { skew: [0, 150000] });
  const html = panelEvent(view(r, { run: r, li: 1, k: 1 }));
  assert.match(html, /HLC \[l, c\]/);
  assert.match(html, /physical pt/);
  assert.ok(!html.includes("data-same"));
  assert.ok(!panelRun({ runs: [r], compare: false, same: new Set() }).includes("data-same"));
});

test("a receive shows its jump, its message and the hb answer for the event selected before", () => {
  const { run: r } = run(2, steps);
  const v = view(r, { run: r, li: 1, k: 1 }, { prevSel: { run: r, li: 0, k: 0 } });
  const html = panelEvent(v);
  assert.match(html, /Lamport jump on this receive: <b>\+2<\/b> \(max\(1, 2\) \+ 1\)/);
  assert.match(html, /data-msg="0"/);
  assert.match(html, /<b data-hb="happened before">happened before<\/b>/);
  assert.match(html, /lclock hb \/runs\/test-run 1:L1 2:L3/);
  assert.match(html, /3 events in its causal past/);
});

test("a message: send, receive, delay and jump; pt only when it tells something", () => {
  const { run: r } = run(2, steps);
  const html = panelMessage({ runs: [r], compare: false, msgSel: { run: r, m: 0, all: [0] } });
  assert.match(html, /physical pt send → receive/);
  const same = panelMessage({ runs: [r], compare: false, msgSel: { run: r, m: 0, all: [0] }, same: new Set(["pt"]) });
  assert.ok(!same.includes("physical pt"));
  assert.match(same, /data-same="pt">physical clock \(pt\) = real time/);
  assert.match(html, /Message from machine 1/);
  assert.match(html, /Receive on machine 2/);
  assert.match(html, /<th>delay \(send to handling\)<\/th><td class="num">0.002 s<\/td>/);
  assert.match(html, /Lamport before → after<\/th><td class="num">1 → 3/);
});

test("two runs: figures more than 20 % apart are shaded", () => {
  const a = run(2, steps).run, b = run(2, [...steps, ["i", 2], ["i", 2], ["i", 2]]).run;
  const html = compareTable([a, b]);
  assert.match(html, /<tr><th>2<\/th>.*<td class="num diff">3 \/ 6<\/td><\/tr>/);
  assert.match(html, /<tr><th>1<\/th>.*<td class="num">3 \/ 3<\/td><\/tr>/);
});

test("the legend names the red ring only where the page marks check's findings", () => {
  const { run: r } = run(2, steps);
  assert.ok(!panelRun({ runs: [r], compare: false, same: new Set() }).includes("a finding of"));
  r.marks = { n: 1, lane: [1], t: [10], kind: [1], kinds: ["error", "finding"], line: [4], text: ["finding (lamport): ..."] };
  assert.match(panelRun({ runs: [r], compare: false, same: new Set() }), /an event a finding of <code>lclock check<\/code> names/);
});
