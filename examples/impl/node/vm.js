// A machine for lclock (SPEC section 9): Lamport, vector and hybrid logical clocks.
// Run it with:  lclock sim --impl "node examples/impl/node/vm.js" --duration 60
// lclock sends one JSON line per request on stdin; we answer each with one line on stdout.
// Clocks are BigInt: HLC's l is in microseconds since 1970, beyond JavaScript's 2^53.
'use strict';
const readline = require('readline');

let lclock = 0n, vclock = [], hlc = [0n, 0n], me = 0, clocks = [];

// JSON with every integer as a BigInt, and back.
const parse = (line) => JSON.parse(line.replace(/(?<=[:,\[]\s*)(-?\d+)(?=\s*[,\]}])/g, '"$1n"'),
  (k, v) => (typeof v === 'string' && /^-?\d+n$/.test(v) ? BigInt(v.slice(0, -1)) : v));
const write = (obj) => JSON.stringify(obj, (k, v) => (typeof v === 'bigint' ? `${v}n` : v))
  .replace(/"(-?\d+)n"/g, '$1');
const max = (...xs) => xs.reduce((a, b) => (b > a ? b : a));

function hlcUpdate(pt, m) {  // HLC (Kulkarni et al. 2014); m = [lm, cm] on a receive
  let [l, c] = hlc;
  const [lm, cm] = m || [l, c];
  const n = max(l, lm, pt);
  if (!m) c = n === l ? c + 1n : 0n;
  else if (n === l && n === lm) c = max(c, cm) + 1n;
  else if (n === l) c = c + 1n;
  else if (n === lm) c = cm + 1n;
  else c = 0n;
  return [n, c];
}

function tick(req) {
  if (req.do === 'receive') {
    lclock = max(lclock, req.msg.lclock) + 1n;
    if (vclock.length) vclock = vclock.map((v, i) => max(v, req.msg.vclock[i]));
    if (clocks.includes('hlc')) hlc = hlcUpdate(req.pt, req.msg.hlc);
  } else {  // send or internal: one event
    lclock += 1n;
    if (clocks.includes('hlc')) hlc = hlcUpdate(req.pt);
  }
  if (vclock.length) vclock[me - 1] += 1n;
  const clock = { lclock };
  if (vclock.length) clock.vclock = vclock;
  if (clocks.includes('hlc')) clock.hlc = hlc;
  const done = { type: 'done', tick: req.tick, ...clock };
  if (req.do === 'send') done.msg = clock;
  return done;
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const req = parse(line);
  let answer;
  if (req.type === 'init') {
    me = Number(req.machine);
    clocks = req.clocks;
    vclock = clocks.includes('vector') ? Array(Number(req.machines)).fill(0n) : [];
    answer = { type: 'init_ok' };
  } else if (req.type === 'tick') {
    answer = tick(req);
  } else {  // stop: answer, then exit once the answer is out
    rl.close();
    process.stdout.write(write({ type: 'stop_ok' }) + '\n', () => process.exit(0));
    return;
  }
  process.stdout.write(write(answer) + '\n');
});
