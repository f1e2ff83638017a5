import { test } from "node:test";
import assert from "node:assert/strict";
import { esc, evName, evRef, fixed, fmtAxis, fmtSec, iso, logLine, msgText, queueWait, recipients, where }
  from "../../lclock/explorer/js/text.mjs";
import { run } from "./fixture.mjs";

test("numbers as d3.format(',.N~f') writes them", () => {
  assert.equal(fixed(1234567.5, 3), "1,234,567.5");
  assert.equal(fixed(2, 6), "2");
  assert.equal(fixed(0.1 + 0.2, 6), "0.3");
  assert.equal(fixed(-0.5, 4), "\u22120.5");
  assert.equal(fixed(-0.00001, 3), "0", "no minus on a rounded zero");
  assert.equal(fixed(999.9999, 3), "1,000");
});

test("seconds in the unit of the span shown", () => {
  assert.equal(fmtSec(0.0005), "0.5 ms");
  assert.equal(fmtSec(1.25), "1.25 s");
  assert.equal(fmtSec(12.345678), "12.3457 s");
  assert.equal(fmtSec(3, 0.001), "3,000 ms");
  assert.equal(fmtAxis("lamport", 10)(3), "3");
  assert.equal(fmtAxis("lamport", 10)(2.5), "");
  assert.equal(fmtAxis("real", 10)(2.5), "2.5 s");
});

test("ISO times to the microsecond, as lclock writes ts", () => {
  assert.equal(iso(1767225600000000 + 1500), "2026-01-01T00:00:00.001500Z");
  assert.equal(iso(1767225601999999), "2026-01-01T00:00:01.999999Z");
});

test("an event's log line is rebuilt in lclock's field order", () => {
  const { run: r } = run(2, [["i", 1], ["s", 1, [2]], ["r", 2, 1]]);
  const send = JSON.parse(logLine(r, 0, 1));
  assert.deepEqual(Object.keys(send), ["ts", "event", "level", "run_id", "machine", "tick", "lclock", "queue_len", "vclock", "dice", "to", "pt", "hlc"]);
  assert.deepEqual([send.event, send.machine, send.tick, send.lclock, send.to, send.vclock], ["send", 1, 2, 2, [2], [2, 0]]);
  const recv = JSON.parse(logLine(r, 1, 0));
  assert.deepEqual([recv.event, recv.from, recv.msg_lclock, recv.lclock, recv.hlc], ["receive", 1, 2, 3, [1767225600003000, 0]]);
  assert.deepEqual(recipients(r.lanes[0], 1), [2]);
  assert.equal(where(r, 1, 0), "machine-2.jsonl:2");
  assert.equal(evName(r, 0, 1, false), "machine 1 · tick 2 · send");
  assert.equal(evName(r, 0, 1, true), "A · machine 1 · tick 2 · send");
  assert.equal(evRef(r.lanes[1], 0), "2:L3");
  assert.equal(msgText(r, 0), "message m1 → m2, carried L=2, delay 1 ms");
});

test("queue wait: since the later of the send and the receiver's last empty-queue tick", () => {
  // sends at 1 and 2 ms; m2 ticks (empty queue) at 3 ms, then handles both at 4 and 5 ms
  const { run: r } = run(2, [["s", 1, [2]], ["s", 1, [2]], ["i", 2], ["r", 2, 0], ["r", 2, 1]]);
  assert.deepEqual(queueWait(r, 0), { wait: 0.001, behind: 0 });
  assert.deepEqual(queueWait(r, 1), { wait: 0.002, behind: 1 });
});

test("HTML escaping", () => {
  assert.equal(esc(`<a href="x">&</a>`), "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;");
});
