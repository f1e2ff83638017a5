/* lclock explorer: a space-time diagram of one run (or two, compared) on a canvas.
 *
 * The data block holds per-machine columns (see lclock/explorer/extract.py). Everything is
 * drawn on one canvas per frame: events as dots (or, when thousands share the screen, as
 * pixels written straight into an image buffer), messages as arrows (thinned when too many
 * to read), faults as bands. d3 provides the zoom behaviour (mouse, touchpad, touch), the
 * scales and the brush of the overview strip. window.lclockExplorer is a small API for the
 * tests and the benchmark; it is also handy from the browser console.
 */
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const RAW = JSON.parse($("lclock-data").textContent);
  const KINDS = ["internal", "send", "receive"];
  const COL = {
    kind: ["#8f959c", "#2a9d3a", "#2f6fc0"], past: "#1f4fbf", future: "#e0452b", conc: "#b8a31a",
    concBand: "rgba(255, 224, 90, 0.30)", selected: "#000", arrow: "rgba(190, 70, 50, 0.55)",
    arrowBack: "#d0139a", drop: "#d62728", pending: "#888", pause: "rgba(120,120,120,0.22)",
    fault: "rgba(140, 80, 200, 0.18)", faultEdge: "rgba(120, 60, 190, 0.8)", laneA: "#fafafa",
    laneB: "#f1f2f4", runA: "#2f6fc0", runB: "#e07b00",
  };
  const MODES = {
    real: { label: "real time", short: "real time", title: "the host's time of each event (ts), seconds since t0" },
    lamport: { label: "Lamport time", short: "Lamport", title: "each event at its Lamport clock value" },
    hlc: { label: "HLC", short: "HLC", title: "each event at its hybrid logical clock: l (seconds since t0), then c" },
    pt: { label: "physical clocks (pt)", short: "physical pt", title: "each event at its own machine's physical clock reading pt: skewed clocks misplace events" },
  };
  const GUTTER = 104, AXIS_H = 24, RIGHT = 12, RUN_TITLE_H = 16, DIFF_ROW_H = 40;
  const VECTOR_LIMIT = 4000, ARROW_LIMIT = 3000, HEAD_LIMIT = 1200;

  // ------------------------------------------------------------------ decoding

  function dec(e, T) {
    const n = e.n, out = new T(n);
    if (!n) return out;
    let x = e.s;
    out[0] = x;
    if (e.v === undefined) { for (let i = 1; i < n; i++) { x += e.d; out[i] = x; } }
    else { const v = e.v; for (let i = 1; i < n; i++) { x += v[i - 1]; out[i] = x; } }
    return out;
  }
  const ints = (a) => Int32Array.from(a || []);
  const nums = (a) => Float64Array.from(a || []);

  function lowerBound(a, x, lo = 0, hi = a.length) {
    while (lo < hi) { const m = (lo + hi) >>> 1; if (a[m] < x) lo = m + 1; else hi = m; }
    return lo;
  }
  function upperBound(a, x, lo = 0, hi = a.length) {
    while (lo < hi) { const m = (lo + hi) >>> 1; if (a[m] <= x) lo = m + 1; else hi = m; }
    return lo;
  }

  function makeLane(L) {
    const n = L.n;
    const lane = {
      id: L.id, file: L.file, rate: L.rate, n, first: L.first, total: L.total,
      line: dec(L.line, Float64Array), t: dec(L.t, Float64Array), tick: dec(L.tick, Float64Array),
      traw: L.traw ? dec(L.traw, Float64Array) : null,
      kind: Int8Array.from(L.kind), L: dec(L.L, Float64Array), q: ints(L.q), dice: ints(L.dice),
      frm: ints(L.frm), msg: nums(L.msg), toN: ints(L.to_n), to: ints(L.to),
      vc: L.vc ? L.vc.map((c) => dec(c, Int32Array)) : null,
      pt: L.pt ? dec(L.pt, Float64Array) : null, hl: L.hl ? dec(L.hl, Float64Array) : null,
      hc: L.hc ? nums(L.hc) : null, mpt: L.mpt ? dec(L.mpt, Float64Array) : null,
      mhl: L.mhl ? dec(L.mhl, Float64Array) : null, mhc: L.mhc ? nums(L.mhc) : null,
      dup: new Uint8Array(n), start: L.start || {}, stop: L.stop, stopLine: L.stop_line,
      stopped: L.stopped, recvRank: new Int32Array(n), sendRank: new Int32Array(n),
      toStart: null, xc: {},
    };
    for (const k of L.dup) lane.dup[k] = 1;
    let r = 0, s = 0;
    const toStart = new Int32Array(n + 1);
    let acc = 0;
    for (let k = 0; k < n; k++) {
      const kd = lane.kind[k];
      lane.recvRank[k] = kd === 2 ? r++ : -1;
      lane.sendRank[k] = kd === 1 ? s : -1;
      toStart[k] = acc;
      if (kd === 1) acc += lane.toN[s++];
    }
    toStart[n] = acc;
    lane.toStart = toStart;
    return lane;
  }

  function makeRun(d, slot) {
    const run = {
      d, slot, id: d.run.id, info: d.run, lanes: d.lanes.map(makeLane), clocks: d.run.clocks,
      t0: d.run.t0_us, name: slot === 0 ? "A" : "B", vcOK: !!d.run.vc_embedded,
    };
    run.N = run.lanes.length;
    run.off = new Int32Array(run.N + 1);
    run.laneOf = new Map();
    run.lanes.forEach((ln, i) => { run.off[i + 1] = run.off[i] + ln.n; run.laneOf.set(ln.id, i); ln.index = i; });
    run.total = run.off[run.N];
    run.width = run.vcOK ? run.lanes[0].vc.length : 0;
    // messages: both ends as (lane index, event index); sorted by send
    const M = d.msgs.n, gs = dec(d.msgs.s, Float64Array), gr = d.msgs.r;
    run.M = M;
    run.mSL = new Int32Array(M); run.mSI = new Int32Array(M);
    run.mRL = new Int32Array(M); run.mRI = new Int32Array(M);
    run.msgOfRecv = run.lanes.map((ln) => new Int32Array(ln.n).fill(-1));
    run.msgsOfSendStart = run.lanes.map((ln) => new Int32Array(ln.n + 1));
    const locate = (g) => { const li = upperBound(run.off, g) - 1; return [li, g - run.off[li]]; };
    for (let m = 0; m < M; m++) {
      const [sl, si] = locate(gs[m]), [rl, ri] = locate(gr[m]);
      run.mSL[m] = sl; run.mSI[m] = si; run.mRL[m] = rl; run.mRI[m] = ri;
      run.msgOfRecv[rl][ri] = m;
    }
    // CSR from a send event to its messages (they are sorted by global send index)
    {
      let m = 0;
      for (let li = 0; li < run.N; li++) {
        const st = run.msgsOfSendStart[li];
        for (let k = 0; k <= run.lanes[li].n; k++) {
          while (m < M && run.mSL[m] === li && run.mSI[m] < k) m++;
          st[k] = m;
        }
      }
    }
    const dr = d.drops;
    run.drops = { n: dr.n, lane: ints(dr.lane).map((id) => run.laneOf.get(id)), t: nums(dr.t), to: ints(dr.to),
      msg: nums(dr.msg), reason: ints(dr.reason), line: nums(dr.line), s: nums(dr.s), reasons: dr.reasons };
    const pe = d.pending;
    run.pending = { n: pe.n, s: nums(pe.s).map(Number), to: ints(pe.to) };
    run.pendingL = new Int32Array(pe.n); run.pendingI = new Int32Array(pe.n);
    for (let p = 0; p < pe.n; p++) { const [l, i] = locate(run.pending.s[p]); run.pendingL[p] = l; run.pendingI[p] = i; }
    const mk = d.marks;
    run.marks = { n: mk.n, lane: ints(mk.lane).map((id) => run.laneOf.get(id)), t: nums(mk.t), kind: ints(mk.kind),
      kinds: mk.kinds, line: nums(mk.line), text: mk.text };
    run.bands = faultBands(run);
    let cmax = 0;
    for (const ln of run.lanes) if (ln.hc) for (let k = 0; k < ln.n; k++) if (ln.hc[k] > cmax) cmax = ln.hc[k];
    run.cscale = 1 / ((cmax + 1) * 1e6);
    return run;
  }

  /* Pauses and partitions as spans per lane (from pause/resume and fault lines), plus the
     plan's partitions across the whole run. */
  function faultBands(run) {
    const bands = [];
    const openPause = new Map(), openPart = new Map();
    const mk = run.marks;
    for (let i = 0; i < mk.n; i++) {
      const kind = mk.kinds[mk.kind[i]], li = mk.lane[i], t = mk.t[i];
      let obj = null;
      try { obj = JSON.parse(mk.text[i]); } catch (e) { obj = {}; }
      if (kind === "pause") openPause.set(li, [t, i]);
      else if (kind === "resume") {
        const o = openPause.get(li);
        bands.push({ kind: "pause", lane: li, t0: o ? o[0] : t, t1: t, label: "paused" + (obj.skipped != null ? ` (${obj.skipped} ticks skipped)` : ""), mark: i });
        openPause.delete(li);
      } else if (kind === "fault") {
        if (obj.kind === "partition") openPart.set(li, [t, groupsText(obj.groups)]);
        else if (obj.kind === "heal") {
          const o = openPart.get(li);
          bands.push({ kind: "partition", lane: li, t0: o ? o[0] : t, t1: t, label: "partition " + (o ? o[1] : groupsText(obj.groups)) });
          openPart.delete(li);
        }
      }
    }
    const endOf = (li) => { const ln = run.lanes[li]; return ln.n ? ln.t[ln.n - 1] : 0; };
    for (const [li, o] of openPause) bands.push({ kind: "pause", lane: li, t0: o[0], t1: endOf(li), label: "paused (no resume logged)" });
    for (const [li, o] of openPart) bands.push({ kind: "partition", lane: li, t0: o[0], t1: endOf(li), label: "partition " + o[1] + " (no heal logged)" });
    const plan = run.d.plan || {};
    const logged = bands.some((b) => b.kind === "partition");
    for (const p of logged ? [] : plan.partitions || []) bands.push({ kind: "plan", lane: -1, t0: p.start_s * 1e6, t1: p.end_s * 1e6, label: "planned partition " + groupsText(p.groups) });
    return bands;
  }
  function groupsText(g) {
    return Array.isArray(g) ? g.map((x) => (Array.isArray(x) ? x.join(",") : String(x))).join(" | ") : "";
  }

  const RUNS = RAW.runs.map(makeRun);
  const COMPARE = RUNS.length > 1;

  // ------------------------------------------------------------------ coordinates

  function modesOf() {
    return Object.keys(MODES).filter((m) => RUNS.every((r) => r.clocks.includes(m)));
  }

  /* x of every event of a lane on an axis, and the sorted view used to find what is in sight. */
  function xcol(run, li, mode) {
    const ln = run.lanes[li];
    if (ln.xc[mode]) return ln.xc[mode];
    const n = ln.n, x = new Float64Array(n);
    if (mode === "real") for (let k = 0; k < n; k++) x[k] = ln.t[k] / 1e6;
    else if (mode === "lamport") for (let k = 0; k < n; k++) x[k] = ln.L[k];
    else if (mode === "hlc") for (let k = 0; k < n; k++) x[k] = ln.hl[k] / 1e6 + ln.hc[k] * run.cscale;
    else for (let k = 0; k < n; k++) x[k] = ln.pt[k] / 1e6;
    let sorted = true;
    for (let k = 1; k < n; k++) if (x[k] < x[k - 1]) { sorted = false; break; }
    let ord = null, xs = x;
    if (!sorted) {
      ord = new Int32Array(n);
      for (let k = 0; k < n; k++) ord[k] = k;
      ord.sort((a, b) => x[a] - x[b] || a - b);
      xs = new Float64Array(n);
      for (let k = 0; k < n; k++) xs[k] = x[ord[k]];
    }
    return (ln.xc[mode] = { x, ord, xs });
  }

  /* Where a moment (us since t0, host time) falls on the axis, on one lane: between the
     lane's events around it, so bands and marks sit right on every axis. */
  function timeX(run, li, t, mode) {
    if (mode === "real") return t / 1e6;
    const ln = run.lanes[li];
    if (!ln.n) return NaN;
    const c = xcol(run, li, mode).x, k = upperBound(ln.t, t) - 1;
    if (k < 0) return c[0] - (mode === "lamport" ? 0.5 : (ln.t[0] - t) / 1e6);
    if (k >= ln.n - 1) return c[ln.n - 1] + (mode === "lamport" ? 0.5 : (t - ln.t[ln.n - 1]) / 1e6);
    const f = (t - ln.t[k]) / Math.max(ln.t[k + 1] - ln.t[k], 1e-9);
    return c[k] + f * (c[k + 1] - c[k]);
  }

  function domainOf(mode) {
    let lo = Infinity, hi = -Infinity;
    for (const run of RUNS) for (let li = 0; li < run.N; li++) {
      const c = xcol(run, li, mode);
      if (!c.xs.length) continue;
      lo = Math.min(lo, c.xs[0]); hi = Math.max(hi, c.xs[c.xs.length - 1]);
    }
    if (!isFinite(lo)) { lo = 0; hi = 1; }
    if (mode === "lamport") { lo = Math.min(lo, 0); hi += 1; }
    const pad = (hi - lo || 1) * 0.02;
    return [lo - pad, hi + pad];
  }

  // ------------------------------------------------------------------ state

  const S = {
    mode: "real", domain: [0, 1], transform: d3.zoomIdentity,
    kinds: [true, true, true], layers: { arrows: true, drops: true, pending: true, faults: true, marks: true },
    hidden: new Set(), sel: null, prevSel: null, msgSel: null, hover: null, causal: null, results: [], resultPos: -1,
    rows: [], diffBox: null, W: 0, H: 0, dpr: 1, stats: null, frames: 0, readyAt: null,
  };
  const canvas = $("main"), ctx = canvas.getContext("2d");
  const layer = document.createElement("canvas"), lctx = layer.getContext("2d");
  const ov = $("overview"), octx = ov.getContext("2d");
  let base = d3.scaleLinear(), xs = d3.scaleLinear();
  let img = null, buf = null;

  // ------------------------------------------------------------------ layout

  function layout() {
    const r = $("chart").getBoundingClientRect();
    S.dpr = window.devicePixelRatio || 1;
    S.W = Math.max(200, Math.floor(r.width)); S.H = Math.max(120, Math.floor(r.height));
    for (const c of [canvas, layer]) { c.width = Math.floor(S.W * S.dpr); c.height = Math.floor(S.H * S.dpr); }
    ctx.setTransform(S.dpr, 0, 0, S.dpr, 0, 0);
    img = lctx.createImageData(layer.width, layer.height);
    buf = new Uint32Array(img.data.buffer);
    const per = RUNS.map((run) => run.lanes.map((ln, li) => li).filter((li) => !S.hidden.has(run.lanes[li].id)));
    const total = per.reduce((a, p) => a + p.length, 0);
    const diffH = COMPARE ? DIFF_ROW_H * 3 + 10 : 0;
    const titles = COMPARE ? RUN_TITLE_H * 2 : 0;
    const laneH = Math.max(4, Math.min(90, (S.H - AXIS_H - diffH - titles - 6) / Math.max(total, 1)));
    S.rows = [];
    let y = AXIS_H + 2;
    RUNS.forEach((run, slot) => {
      if (COMPARE) { S.rows.push({ title: true, run, y: y + RUN_TITLE_H / 2 }); y += RUN_TITLE_H; }
      for (const li of per[slot]) { S.rows.push({ run, li, y: y + laneH / 2, h: laneH }); y += laneH; }
      if (COMPARE && slot === 0) { S.diffBox = { y: y + 4, h: DIFF_ROW_H * 3 }; y += diffH; }
    });
    S.laneH = laneH;
    S.rowOf = RUNS.map((run) => new Array(run.N).fill(null));
    for (const row of S.rows) if (!row.title) S.rowOf[row.run.slot][row.li] = row;
    base.domain(S.domain).range([GUTTER, S.W - RIGHT]);
    xs = S.transform.rescaleX(base);
    zoom.extent([[GUTTER, 0], [S.W - RIGHT, S.H]]).translateExtent([[GUTTER, 0], [S.W - RIGHT, S.H]]);
    layoutOverview();
  }

  // ------------------------------------------------------------------ zoom and pan

  const zoom = d3.zoom().scaleExtent([1, 1e9]).clickDistance(4)
    .filter((ev) => (!ev.ctrlKey || ev.type === "wheel") && !ev.button)
    .on("zoom", (ev) => { S.transform = ev.transform; xs = S.transform.rescaleX(base); request(); syncBrush(); })
    .on("start", (ev) => { if (ev.sourceEvent && ev.sourceEvent.type === "mousedown") canvas.classList.add("grabbing"); })
    .on("end", () => canvas.classList.remove("grabbing"));
  const zsel = d3.select(canvas);
  zsel.call(zoom).on("dblclick.zoom", null);
  // sideways swipes (touchpads) and shift+wheel pan instead of zooming
  canvas.addEventListener("wheel", (ev) => {
    const sideways = Math.abs(ev.deltaX) > Math.abs(ev.deltaY);
    if (ev.ctrlKey || !(sideways || ev.shiftKey)) return;
    ev.preventDefault(); ev.stopImmediatePropagation();
    const d = sideways ? ev.deltaX : ev.deltaY || ev.deltaX;
    panBy(-d * (ev.deltaMode === 1 ? 20 : 1));
  }, { capture: true, passive: false });

  function panBy(px) { zsel.call(zoom.translateBy, px / S.transform.k, 0); }
  function zoomBy(f, px) {
    const p = px === undefined ? [(GUTTER + S.W - RIGHT) / 2, 0] : [px, 0];
    zsel.call(zoom.scaleBy, f, p);
  }
  function showRange(a, b) {
    // kept inside the run, as the zoom behaviour keeps its own gestures
    const d0 = S.domain, full = d0[1] - d0[0];
    const span = Math.min(Math.max(b - a, 1e-12), full);
    a = Math.min(Math.max(a, d0[0]), d0[1] - span);
    const k = Math.max(1, full / span);
    const t = k === 1 ? d3.zoomIdentity : d3.zoomIdentity.translate(GUTTER - k * base(a), 0).scale(k);
    zsel.call(zoom.transform, t);
  }
  function fit() { zsel.call(zoom.transform, d3.zoomIdentity); }
  function centerOn(x, keepSpan) {
    const [a, b] = xs.domain(), half = keepSpan ? (b - a) / 2 : (b - a) / 2;
    showRange(x - half, x + half);
  }

  function setMode(mode, keep) {
    if (!modesOf().includes(mode)) return false;
    S.mode = mode;
    $("axis").value = mode;
    S.domain = domainOf(mode);
    base.domain(S.domain);
    S.transform = d3.zoomIdentity;
    zsel.call(zoom.transform, d3.zoomIdentity);
    xs = base.copy();
    buildOverview();
    if (keep && S.sel) { const e = S.sel; zoomAround(xcol(e.run, e.li, mode).x[e.k]); }
    request();
    return true;
  }
  function zoomAround(x) {
    // about 60 events of the busiest lane around x
    const [d0, d1] = S.domain;
    let dens = 0;
    for (const run of RUNS) for (let li = 0; li < run.N; li++) dens = Math.max(dens, run.lanes[li].n / (d1 - d0));
    const span = Math.min(d1 - d0, dens ? 60 / dens : d1 - d0);
    showRange(x - span / 2, x + span / 2);
  }

  // ------------------------------------------------------------------ drawing

  let pending = false;
  function request() { if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; draw(); }); } }

  function rgba(hex) {
    const n = parseInt(hex.slice(1), 16);
    return (0xff000000 | ((n & 0xff) << 16) | (n & 0xff00) | ((n >> 16) & 0xff)) >>> 0;
  }
  const PIX = { kind: COL.kind.map(rgba), past: rgba(COL.past), future: rgba(COL.future), conc: rgba(COL.conc), sel: rgba("#000000") };

  /* The causal class of event k of lane li of run (0 none selected, 1 past, 2 future,
     3 concurrent, 4 the selected event). */
  function classOf(run, li, k) {
    const c = S.causal;
    if (!c || c.run !== run) return 0;
    if (li === c.li && k === c.k) return 4;
    if (k < c.pastEnd[li]) return 1;
    if (k >= c.futStart[li]) return 2;
    return 3;
  }

  function draw() {
    const t0 = performance.now();
    xs = S.transform.rescaleX(base);
    const W = S.W, H = S.H;
    ctx.clearRect(0, 0, W, H);
    const [x0, x1] = xs.domain();
    const stats = { lanes: 0, events: 0, perLane: RUNS.map((r) => ({})), arrows: 0, arrowsInView: 0,
      thinned: 1, backward: 0, drops: 0, pending: 0, marks: 0, bands: 0, mode: S.mode, view: [x0, x1], dots: "vector" };
    drawLaneBackgrounds(stats);
    if (S.layers.faults) drawBands(x0, x1, stats);
    if (S.causal) drawConcurrency(x0, x1);
    if (COMPARE) { drawDiff(x0, x1); stats.diff = true; }
    if (S.layers.arrows) drawArrows(x0, x1, stats);
    if (S.layers.drops) drawDrops(x0, x1, stats);
    if (S.layers.pending) drawPending(x0, x1, stats);
    drawEvents(x0, x1, stats);
    if (S.layers.marks) drawMarks(x0, x1, stats);
    drawSelection();
    drawAxis();
    stats.ms = performance.now() - t0;
    S.stats = stats; S.frames++;
    const b = document.body.dataset;
    b.lanesDrawn = stats.lanes; b.eventsDrawn = stats.events; b.arrowsDrawn = stats.arrows; b.frames = S.frames;
    $("status").textContent = statusText(stats);
    if (!S.readyAt) { S.readyAt = performance.now(); b.ready = "1"; }
    positionBrushOnly();
  }

  function statusText(st) {
    const parts = [`${st.events.toLocaleString()} events in view`];
    if (st.arrowsInView) parts.push(st.thinned > 1 ? `arrows: 1 in ${st.thinned} of ${st.arrowsInView.toLocaleString()} (zoom in for all)` : `${st.arrows.toLocaleString()} arrows`);
    if (st.backward) parts.push(`${st.backward} message(s) go backwards on this axis`);
    return parts.join(" · ");
  }

  function drawLaneBackgrounds(stats) {
    ctx.save();
    ctx.font = `${Math.min(12, Math.max(8, S.laneH * 0.7))}px system-ui, sans-serif`;
    ctx.textBaseline = "middle";
    const every = S.laneH < 9 ? Math.ceil(9 / S.laneH) : 1;
    let n = 0;
    for (const row of S.rows) {
      if (row.title) {
        ctx.fillStyle = row.run.slot ? COL.runB : COL.runA;
        ctx.font = "bold 12px system-ui, sans-serif";
        ctx.fillText(`${row.run.name}: ${row.run.id}`, 6, row.y);
        ctx.font = `${Math.min(12, Math.max(8, S.laneH * 0.7))}px system-ui, sans-serif`;
        continue;
      }
      const ln = row.run.lanes[row.li];
      ctx.fillStyle = n++ % 2 ? COL.laneB : COL.laneA;
      ctx.fillRect(GUTTER, row.y - row.h / 2, S.W - GUTTER - RIGHT, row.h);
      ctx.strokeStyle = "#d5d7db";
      ctx.beginPath(); ctx.moveTo(GUTTER, row.y + 0.5); ctx.lineTo(S.W - RIGHT, row.y + 0.5); ctx.stroke();
      if (ln.index % every === 0) {
        ctx.fillStyle = "#333";
        const label = (COMPARE ? row.run.name + " " : "") + `m${ln.id}` + (ln.rate ? ` · ${ln.rate}/s` : "") + (ln.stopped ? "" : " ✕");
        ctx.fillText(label, 6, row.y);
      }
      stats.lanes++;
    }
    ctx.restore();
  }

  function xpx(x) { return xs(x); }

  function drawBands(x0, x1, stats) {
    ctx.save();
    for (const run of RUNS) {
      for (const b of run.bands) {
        if (b.kind === "plan") {
          if (S.mode !== "real") continue;
          const a = xpx(b.t0 / 1e6), z = xpx(b.t1 / 1e6);
          const rows = S.rows.filter((r) => !r.title && r.run === run);
          if (!rows.length || z < GUTTER || a > S.W) continue;
          const top = rows[0].y - rows[0].h / 2, bot = rows[rows.length - 1].y + rows[rows.length - 1].h / 2;
          ctx.fillStyle = "rgba(140, 80, 200, 0.07)";
          ctx.fillRect(Math.max(a, GUTTER), top, Math.min(z, S.W) - Math.max(a, GUTTER), bot - top);
          ctx.fillStyle = COL.faultEdge; ctx.font = "10px system-ui"; ctx.textBaseline = "top";
          ctx.fillText(b.label, Math.max(a, GUTTER) + 2, top + 1);
          stats.bands++;
          continue;
        }
        const row = S.rowOf[run.slot][b.lane];
        if (!row) continue;
        const a = xpx(timeX(run, b.lane, b.t0, S.mode)), z = xpx(timeX(run, b.lane, b.t1, S.mode));
        if (!(z >= GUTTER && a <= S.W)) continue;
        const l = Math.max(a, GUTTER), w = Math.max(2, Math.min(z, S.W) - l);
        ctx.fillStyle = b.kind === "pause" ? COL.pause : COL.fault;
        ctx.fillRect(l, row.y - row.h / 2 + 1, w, row.h - 2);
        if (b.kind === "partition") {
          ctx.strokeStyle = COL.faultEdge; ctx.lineWidth = 1;
          ctx.strokeRect(l + 0.5, row.y - row.h / 2 + 1.5, w - 1, row.h - 3);
        }
        if (row.h >= 14 && w > 40) {
          ctx.fillStyle = b.kind === "pause" ? "#555" : COL.faultEdge; ctx.font = "10px system-ui"; ctx.textBaseline = "top";
          ctx.fillText(b.label, l + 3, row.y - row.h / 2 + 2);
        }
        stats.bands++;
      }
    }
    ctx.restore();
  }

  function drawConcurrency(x0, x1) {
    const c = S.causal;
    ctx.save();
    ctx.fillStyle = COL.concBand;
    for (let li = 0; li < c.run.N; li++) {
      const row = S.rowOf[c.run.slot][li];
      if (!row) continue;
      const a = c.pastEnd[li], b = c.futStart[li];
      if (li === c.li || b <= a) continue;
      const X = xcol(c.run, li, S.mode).x;
      const xa = a > 0 ? (xpx(X[a - 1]) + xpx(X[a])) / 2 : GUTTER;
      const xb = b < c.run.lanes[li].n ? (xpx(X[b - 1]) + xpx(X[b])) / 2 : S.W - RIGHT;
      const l = Math.max(GUTTER, Math.min(xa, xb)), r = Math.min(S.W - RIGHT, Math.max(xa, xb));
      if (r > l) ctx.fillRect(l, row.y - row.h / 2, r - l, row.h);
    }
    ctx.restore();
  }

  let visibleArrows = new Int32Array(0), visibleArrowsN = 0, visibleArrowRun = [];

  /* Both ends of every message on the current axis, as two flat arrays (the hot loop). */
  function msgX(run) {
    run.mx = run.mx || {};
    if (run.mx[S.mode]) return run.mx[S.mode];
    const xs = new Float64Array(run.M), xr = new Float64Array(run.M);
    const X = run.lanes.map((ln, li) => xcol(run, li, S.mode).x);
    for (let m = 0; m < run.M; m++) { xs[m] = X[run.mSL[m]][run.mSI[m]]; xr[m] = X[run.mRL[m]][run.mRI[m]]; }
    return (run.mx[S.mode] = { xs, xr });
  }

  function drawArrows(x0, x1, stats) {
    visibleArrowsN = 0; visibleArrowRun = [];
    const parts = [];
    const anyHidden = S.hidden.size > 0;
    for (const run of RUNS) {
      const X = run.lanes.map((ln, li) => xcol(run, li, S.mode).x);
      const rows = S.rowOf[run.slot];
      const M = run.M, { xs: MXS, xr: MXR } = msgX(run), mSL = run.mSL, mRL = run.mRL;
      if (visibleArrows.length < visibleArrowsN + M) { const a = new Int32Array(visibleArrowsN + M); a.set(visibleArrows.subarray(0, visibleArrowsN)); visibleArrows = a; }
      const startN = visibleArrowsN;
      let n = visibleArrowsN, back = 0;
      for (let m = 0; m < M; m++) {
        const a = MXS[m], b = MXR[m];
        if ((a < x0 && b < x0) || (a > x1 && b > x1)) continue;
        if (anyHidden && (!rows[mSL[m]] || !rows[mRL[m]])) continue;
        if (b < a) back++;
        visibleArrows[n++] = m;
      }
      visibleArrowsN = n;
      stats.backward += back;
      parts.push([run, startN, visibleArrowsN, X, rows]);
      visibleArrowRun.push([run, startN, visibleArrowsN]);
    }
    const inView = visibleArrowsN;
    stats.arrowsInView = inView;
    const stride = inView > ARROW_LIMIT ? Math.ceil(inView / ARROW_LIMIT) : 1;
    stats.thinned = stride;
    const heads = inView / stride <= HEAD_LIMIT;
    const c = S.causal;
    ctx.save();
    ctx.lineWidth = stride > 1 ? 0.6 : 1;
    const groups = { normal: new Path2D(), back: new Path2D(), past: new Path2D(), future: new Path2D(), dim: new Path2D() };
    for (const [run, s0, s1, X, rows] of parts) {
      for (let v = s0; v < s1; v += 1) {
        const m = visibleArrows[v];
        if (stride > 1 && (m % stride) !== 0) continue;
        const sl = run.mSL[m], rl = run.mRL[m], si = run.mSI[m], ri = run.mRI[m];
        const xa = xpx(X[sl][si]), xb = xpx(X[rl][ri]);
        const ya = rows[sl].y, yb = rows[rl].y;
        let g = X[rl][ri] < X[sl][si] ? "back" : "normal";
        if (c && c.run === run) {
          const cs = classOf(run, sl, si), cr = classOf(run, rl, ri);
          g = (cs === 1 || cs === 4) && (cr === 1 || cr === 4) ? "past" : (cs === 2 || cs === 4) && (cr === 2 || cr === 4) ? "future" : "dim";
        }
        const p = groups[g];
        p.moveTo(xa, ya); p.lineTo(xb, yb);
        if (heads) arrowHead(p, xa, ya, xb, yb);
        stats.arrows++;
      }
    }
    const style = { normal: COL.arrow, back: COL.arrowBack, past: COL.past, future: COL.future, dim: "rgba(150,150,150,0.25)" };
    for (const g of ["dim", "normal", "past", "future", "back"]) {
      ctx.strokeStyle = style[g];
      ctx.lineWidth = g === "back" ? 1.6 : stride > 1 ? 0.6 : 1;
      ctx.stroke(groups[g]);
    }
    ctx.restore();
  }
  function arrowHead(p, xa, ya, xb, yb) {
    const a = Math.atan2(yb - ya, xb - xa), L = 6, r = Math.max(3, Math.min(6, S.laneH * 0.25));
    const ex = xb - Math.cos(a) * r, ey = yb - Math.sin(a) * r;
    p.moveTo(ex, ey); p.lineTo(ex - L * Math.cos(a - 0.4), ey - L * Math.sin(a - 0.4));
    p.moveTo(ex, ey); p.lineTo(ex - L * Math.cos(a + 0.4), ey - L * Math.sin(a + 0.4));
  }

  function drawDrops(x0, x1, stats) {
    ctx.save();
    ctx.strokeStyle = COL.drop; ctx.lineWidth = 1.4;
    const p = new Path2D();
    for (const run of RUNS) {
      const dr = run.drops, rows = S.rowOf[run.slot];
      for (let i = 0; i < dr.n; i++) {
        const li = dr.lane[i], row = rows[li];
        if (!row) continue;
        const x = timeX(run, li, dr.t[i], S.mode);
        if (x < x0 || x > x1) continue;
        const px = xpx(x), tl = run.laneOf.get(dr.to[i]), trow = tl === undefined ? null : rows[tl];
        const ty = trow ? row.y + (trow.y - row.y) * 0.35 : row.y - row.h * 0.45;
        const tx = px + Math.min(14, Math.abs(ty - row.y) * 0.3 + 4);
        p.moveTo(px, row.y); p.lineTo(tx, ty);
        p.moveTo(tx - 3, ty - 3); p.lineTo(tx + 3, ty + 3); p.moveTo(tx - 3, ty + 3); p.lineTo(tx + 3, ty - 3);
        stats.drops++;
      }
    }
    ctx.stroke(p);
    ctx.restore();
  }

  function drawPending(x0, x1, stats) {
    ctx.save();
    ctx.strokeStyle = COL.pending; ctx.setLineDash([3, 3]);
    const p = new Path2D();
    for (const run of RUNS) {
      const pe = run.pending, rows = S.rowOf[run.slot];
      for (let i = 0; i < pe.n; i++) {
        const li = run.pendingL[i], row = rows[li], tl = run.laneOf.get(pe.to[i]);
        const trow = tl === undefined ? null : rows[tl];
        if (!row) continue;
        const x = xcol(run, li, S.mode).x[run.pendingI[i]];
        if (x < x0 || x > x1) continue;
        const px = xpx(x), ty = trow ? row.y + (trow.y - row.y) * 0.5 : row.y - row.h / 2;
        p.moveTo(px, row.y); p.lineTo(px + 18, ty); p.moveTo(px + 22, ty); p.arc(px + 20, ty, 2, 0, 6.3);
        stats.pending++;
      }
    }
    ctx.stroke(p);
    ctx.restore();
  }

  function drawEvents(x0, x1, stats) {
    // how many are in sight decides between dots and pixels
    let inView = 0;
    const ranges = [];
    for (const row of S.rows) {
      if (row.title) continue;
      const c = xcol(row.run, row.li, S.mode);
      const pad = (x1 - x0) * 0.002;
      const lo = lowerBound(c.xs, x0 - pad), hi = upperBound(c.xs, x1 + pad);
      ranges.push([row, c, lo, hi]);
      inView += hi - lo;
    }
    const vector = inView <= VECTOR_LIMIT;
    stats.dots = vector ? "vector" : "pixels";
    if (vector) drawDots(ranges, stats); else drawPixels(ranges, stats);
  }

  function colorClass(run, li, k, kind) {
    const c = classOf(run, li, k);
    return c === 0 ? kind : 2 + c; // 0..2 kinds, 3 past, 4 future, 5 concurrent, 6 selected
  }

  function drawDots(ranges, stats) {
    const r = Math.max(2, Math.min(6, S.laneH * 0.28));
    const paths = Array.from({ length: 7 }, () => new Path2D());
    const fills = [...COL.kind, COL.past, COL.future, "#fff", COL.selected];
    for (const [row, c, lo, hi] of ranges) {
      const ln = row.run.lanes[row.li];
      let count = 0;
      for (let j = lo; j < hi; j++) {
        const k = c.ord ? c.ord[j] : j, kind = ln.kind[k];
        if (!S.kinds[kind]) continue;
        const px = xpx(c.x[k]), cc = colorClass(row.run, row.li, k, kind);
        paths[cc].moveTo(px + r, row.y); paths[cc].arc(px, row.y, r, 0, 6.2832);
        count++;
      }
      stats.events += count;
      stats.perLane[row.run.slot][ln.id] = count;
    }
    ctx.save();
    ctx.lineWidth = 1;
    for (let cc = 0; cc < 7; cc++) {
      ctx.fillStyle = fills[cc];
      ctx.fill(paths[cc]);
      ctx.strokeStyle = cc === 5 ? COL.conc : "rgba(255,255,255,0.9)";
      if (cc === 5) ctx.lineWidth = 1.5;
      ctx.stroke(paths[cc]);
      ctx.lineWidth = 1;
    }
    ctx.restore();
    if (S.laneH >= 16 && ranges.reduce((a, x) => a + x[3] - x[2], 0) <= 400) drawClockLabels(ranges, r);
  }

  /* Few events in sight: write each one's clock value on the axis shown beside it. */
  function drawClockLabels(ranges, r) {
    ctx.save();
    ctx.font = "10px system-ui, sans-serif"; ctx.fillStyle = "#333"; ctx.textAlign = "center"; ctx.textBaseline = "bottom";
    for (const [row, c, lo, hi] of ranges) {
      const ln = row.run.lanes[row.li];
      for (let j = lo; j < hi; j++) {
        const k = c.ord ? c.ord[j] : j;
        if (!S.kinds[ln.kind[k]]) continue;
        ctx.fillText(String(ln.L[k]), xpx(c.x[k]), row.y - r - 1);
      }
    }
    ctx.restore();
  }

  function drawPixels(ranges, stats) {
    const dpr = S.dpr, BW = layer.width, BH = layer.height;
    buf.fill(0);
    const pal = [PIX.kind[0], PIX.kind[1], PIX.kind[2], PIX.past, PIX.future, PIX.conc, PIX.sel];
    const k0 = xs.range()[0], sc = xs.domain(), a = (xs.range()[1] - k0) / (sc[1] - sc[0]);
    const show0 = S.kinds[0], show1 = S.kinds[1], show2 = S.kinds[2];
    for (const [row, c, lo, hi] of ranges) {
      const ln = row.run.lanes[row.li], kinds = ln.kind, X = c.x, ord = c.ord;
      const half = Math.max(1, Math.min(3, Math.floor(row.h * dpr * 0.2)));
      const cy = Math.round(row.y * dpr);
      const y0 = Math.max(0, cy - half), y1 = Math.min(BH - 1, cy + half);
      // the causal class of an event is a comparison with this lane's two bounds
      const sel = S.causal && S.causal.run === row.run ? S.causal : null;
      const pe = sel ? sel.pastEnd[row.li] : 0, fs = sel ? sel.futStart[row.li] : 0;
      const selK = sel && sel.li === row.li ? sel.k : -1;
      let count = 0, lastPx = -1e9, lastC = -1;
      for (let j = lo; j < hi; j++) {
        const k = ord ? ord[j] : j, kind = kinds[k];
        if (kind === 0 ? !show0 : kind === 1 ? !show1 : !show2) continue;
        count++;
        const px = Math.round((k0 + (X[k] - sc[0]) * a) * dpr);
        const cc = sel ? (k === selK ? 6 : k < pe ? 3 : k >= fs ? 4 : 5) : kind;
        if (px === lastPx && cc === lastC) continue;
        lastPx = px; lastC = cc;
        const color = pal[cc];
        const xa = Math.max(0, px - half + 1), xb = Math.min(BW - 1, px + half - 1);
        for (let y = y0; y <= y1; y++) { const o = y * BW; for (let x = xa; x <= xb; x++) buf[o + x] = color; }
      }
      stats.events += count;
      stats.perLane[row.run.slot][ln.id] = count;
    }
    lctx.putImageData(img, 0, 0);
    ctx.save();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.drawImage(layer, 0, 0);
    ctx.restore();
  }

  function drawMarks(x0, x1, stats) {
    ctx.save();
    for (const run of RUNS) {
      const mk = run.marks, rows = S.rowOf[run.slot];
      for (let i = 0; i < mk.n; i++) {
        const li = mk.lane[i], row = rows[li];
        if (!row) continue;
        const kind = mk.kinds[mk.kind[i]];
        const x = timeX(run, li, mk.t[i], S.mode);
        if (x < x0 || x > x1) continue;
        const px = xpx(x), top = row.y - row.h / 2;
        if (kind === "stop") {
          ctx.strokeStyle = "#444"; ctx.lineWidth = 2;
          ctx.beginPath(); ctx.moveTo(px, top + 2); ctx.lineTo(px, top + row.h - 2); ctx.stroke();
        } else if (kind === "pause" || kind === "resume" || kind === "fault") {
          ctx.fillStyle = kind === "fault" ? COL.faultEdge : "#666";
          ctx.beginPath(); ctx.moveTo(px, top + 1); ctx.lineTo(px - 3, top - 3); ctx.lineTo(px + 3, top - 3); ctx.fill();
          ctx.fillRect(px - 0.5, top, 1, row.h);
        } else {
          ctx.fillStyle = kind === "error" ? "#d62728" : kind === "warning" ? "#e69500" : "#777";
          ctx.beginPath(); ctx.moveTo(px, top + 1); ctx.lineTo(px - 4, top + 8); ctx.lineTo(px + 4, top + 8); ctx.closePath(); ctx.fill();
        }
        stats.marks++;
      }
      // a log that ends without a stop line: the machine crashed or was killed
      for (let li = 0; li < run.N; li++) {
        const ln = run.lanes[li], row = rows[li];
        if (!row || ln.stopped || !ln.n) continue;
        const x = xcol(run, li, S.mode).x[ln.n - 1];
        if (x < x0 || x > x1) continue;
        ctx.strokeStyle = COL.drop; ctx.lineWidth = 2;
        const px = xpx(x) + 8, s = Math.min(5, row.h * 0.35);
        ctx.beginPath(); ctx.moveTo(px - s, row.y - s); ctx.lineTo(px + s, row.y + s); ctx.moveTo(px - s, row.y + s); ctx.lineTo(px + s, row.y - s); ctx.stroke();
      }
    }
    ctx.restore();
  }

  function drawSelection() {
    ctx.save();
    const ring = (run, li, k, color) => {
      const row = S.rowOf[run.slot][li];
      if (!row) return;
      const px = xpx(xcol(run, li, S.mode).x[k]);
      ctx.strokeStyle = color; ctx.lineWidth = 2;
      ctx.beginPath(); ctx.arc(px, row.y, Math.max(5, Math.min(9, S.laneH * 0.4)), 0, 6.2832); ctx.stroke();
    };
    if (S.sel) ring(S.sel.run, S.sel.li, S.sel.k, "#000");
    if (S.hover && S.hover.type === "event") ring(S.hover.run, S.hover.li, S.hover.k, "#f0a000");
    const m = S.msgSel;
    if (m) {
      const run = m.run;
      for (const mm of m.all) {
        const sl = run.mSL[mm], rl = run.mRL[mm];
        const rs = S.rowOf[run.slot][sl], rr = S.rowOf[run.slot][rl];
        if (!rs || !rr) continue;
        const xa = xpx(xcol(run, sl, S.mode).x[run.mSI[mm]]), xb = xpx(xcol(run, rl, S.mode).x[run.mRI[mm]]);
        ctx.strokeStyle = mm === m.m ? "#000" : "#555"; ctx.lineWidth = mm === m.m ? 2.5 : 1.5;
        const p = new Path2D(); p.moveTo(xa, rs.y); p.lineTo(xb, rr.y); arrowHead(p, xa, rs.y, xb, rr.y); ctx.stroke(p);
      }
    }
    ctx.restore();
  }

  function fmtAxis(mode, span) {
    if (mode === "lamport") return (v) => (Number.isInteger(v) ? String(v) : "");
    return (v) => fmtSec(v, span);
  }
  function fmtSec(v, span) {
    const a = Math.abs(span ?? v);
    if (a < 2e-3) return `${d3.format(",.6~f")(v * 1e3)} ms`.replace(/^-0 /, "0 ");
    if (a < 2) return `${d3.format(",.6~f")(v)} s`;
    return `${d3.format(",.4~f")(v)} s`;
  }

  function drawAxis() {
    ctx.save();
    ctx.fillStyle = "rgba(255,255,255,0.95)";
    ctx.fillRect(0, 0, S.W, AXIS_H);
    ctx.fillRect(0, AXIS_H, GUTTER - 2, 0);
    ctx.strokeStyle = "#999"; ctx.fillStyle = "#333"; ctx.font = "11px system-ui, sans-serif";
    ctx.textBaseline = "top"; ctx.textAlign = "center";
    const [a, b] = xs.domain();
    let ticks = xs.ticks(Math.max(2, Math.floor((S.W - GUTTER) / 110)));
    if (S.mode === "lamport") ticks = ticks.filter(Number.isInteger);
    const f = fmtAxis(S.mode, b - a);
    ctx.beginPath();
    for (const t of ticks) {
      const px = Math.round(xs(t)) + 0.5;
      if (px < GUTTER || px > S.W - RIGHT) continue;
      ctx.moveTo(px, AXIS_H - 6); ctx.lineTo(px, AXIS_H);
      ctx.fillText(f(t), px, 4);
    }
    ctx.moveTo(GUTTER, AXIS_H + 0.5); ctx.lineTo(S.W - RIGHT, AXIS_H + 0.5);
    ctx.stroke();
    ctx.textAlign = "left"; ctx.fillStyle = "#666";
    ctx.fillText(MODES[S.mode].short, 6, 4);
    ctx.restore();
  }

  // ------------------------------------------------------------------ two runs compared

  /* On each run, in bins across the view: the spread of the Lamport clocks (drift), the
     messages waiting in all queues, and the largest Lamport jump on a receive. */
  function diffSeries(run, x0, x1, nb) {
    const bw = (x1 - x0) / nb;
    const spread = new Float64Array(nb), queue = new Float64Array(nb), jump = new Float64Array(nb);
    const lo = new Float64Array(nb).fill(Infinity), hi = new Float64Array(nb).fill(-Infinity);
    for (let li = 0; li < run.N; li++) {
      const ln = run.lanes[li], c = xcol(run, li, S.mode);
      for (let b = 0; b < nb; b++) {
        const j = upperBound(c.xs, x0 + (b + 1) * bw) - 1;
        if (j < 0) continue;
        const k = c.ord ? c.ord[j] : j;
        lo[b] = Math.min(lo[b], ln.L[k]); hi[b] = Math.max(hi[b], ln.L[k]);
        queue[b] += ln.q[k];
      }
      const a = lowerBound(c.xs, x0), z = upperBound(c.xs, x1);
      for (let j = a; j < z; j++) {
        const k = c.ord ? c.ord[j] : j;
        if (ln.kind[k] !== 2) continue;
        const jmp = ln.L[k] - (k > 0 ? ln.L[k - 1] : 0), b = Math.min(nb - 1, Math.floor((c.x[k] - x0) / bw));
        if (jmp > jump[b]) jump[b] = jmp;
      }
    }
    for (let b = 0; b < nb; b++) spread[b] = isFinite(lo[b]) ? hi[b] - lo[b] : 0;
    return { spread, queue, jump };
  }

  let diffCache = null;
  function drawDiff(x0, x1) {
    const box = S.diffBox;
    if (!box) return;
    const nb = Math.max(10, Math.floor((S.W - GUTTER - RIGHT) / 4));
    const A = diffSeries(RUNS[0], x0, x1, nb), B = diffSeries(RUNS[1], x0, x1, nb);
    diffCache = { A, B, nb, x0, x1 };
    const names = [["spread", "drift (Lamport spread)"], ["queue", "queued messages"], ["jump", "largest jump"]];
    ctx.save();
    names.forEach(([key, label], r) => {
      const top = box.y + r * DIFF_ROW_H, h = DIFF_ROW_H - 6;
      const a = A[key], b = B[key];
      let mx = 1;
      for (let i = 0; i < nb; i++) mx = Math.max(mx, a[i], b[i]);
      ctx.fillStyle = "#fff"; ctx.fillRect(GUTTER, top, S.W - GUTTER - RIGHT, h);
      ctx.strokeStyle = "#ddd"; ctx.strokeRect(GUTTER + 0.5, top + 0.5, S.W - GUTTER - RIGHT - 1, h - 1);
      const px = (i) => GUTTER + (i + 0.5) * (S.W - GUTTER - RIGHT) / nb, py = (v) => top + h - 2 - (v / mx) * (h - 4);
      // the difference, marked where it is more than a tenth of the scale
      ctx.fillStyle = "rgba(214, 39, 40, 0.28)";
      for (let i = 0; i < nb; i++) {
        if (Math.abs(a[i] - b[i]) <= 0.1 * mx) continue;
        const y1 = py(Math.max(a[i], b[i])), y2 = py(Math.min(a[i], b[i]));
        ctx.fillRect(px(i) - 2, y1, 4, Math.max(1, y2 - y1));
      }
      for (const [ser, col] of [[a, COL.runA], [b, COL.runB]]) {
        ctx.strokeStyle = col; ctx.lineWidth = 1.3; ctx.beginPath();
        for (let i = 0; i < nb; i++) { if (i) ctx.lineTo(px(i), py(ser[i])); else ctx.moveTo(px(i), py(ser[i])); }
        ctx.stroke();
      }
      ctx.fillStyle = "#333"; ctx.font = "11px system-ui"; ctx.textBaseline = "middle";
      ctx.fillText(label, 4, top + h / 2 - 6);
      ctx.fillStyle = "#777"; ctx.font = "10px system-ui";
      ctx.fillText(`max ${d3.format(",.3~f")(mx)}`, 4, top + h / 2 + 7);
    });
    ctx.restore();
  }

  // ------------------------------------------------------------------ overview strip

  const brush = d3.brushX().on("brush end", (ev) => {
    if (!ev.sourceEvent || !ev.selection) return;
    const [a, b] = ev.selection.map((p) => ovScale.invert(p));
    showRange(a, b);
  });
  const brushSel = d3.select("#brush");
  let ovScale = d3.scaleLinear(), ovImg = null, syncing = false;
  function layoutOverview() {
    const r = $("overview-box").getBoundingClientRect();
    ov.width = Math.floor(r.width * S.dpr); ov.height = Math.floor(r.height * S.dpr);
    ovScale.domain(S.domain).range([GUTTER, r.width - RIGHT]);
    brush.extent([[GUTTER, 2], [r.width - RIGHT, r.height - 2]]);
    brushSel.attr("width", r.width).attr("height", r.height).call(brush);
    ovImg = null;
  }
  function buildOverview() {
    ovScale.domain(S.domain);
    const w = ov.width, h = ov.height, dpr = S.dpr;
    octx.setTransform(1, 0, 0, 1, 0, 0);
    octx.clearRect(0, 0, w, h);
    const all = [];
    for (const run of RUNS) for (let li = 0; li < run.N; li++) all.push([run, li]);
    const rowH = (h - 6 * dpr) / Math.max(all.length, 1);
    const left = GUTTER * dpr, width = w - (GUTTER + RIGHT) * dpr;
    const [d0, d1] = S.domain;
    const counts = new Float64Array(Math.max(1, Math.floor(width)));
    all.forEach(([run, li], r) => {
      const c = xcol(run, li, S.mode);
      counts.fill(0);
      for (let k = 0; k < c.x.length; k++) {
        const i = Math.floor(((c.x[k] - d0) / (d1 - d0)) * counts.length);
        if (i >= 0 && i < counts.length) counts[i]++;
      }
      let mx = 0;
      for (let i = 0; i < counts.length; i++) mx = Math.max(mx, counts[i]);
      const y = 3 * dpr + r * rowH;
      for (let i = 0; i < counts.length; i++) {
        if (!counts[i]) continue;
        const v = 0.25 + 0.75 * Math.log1p(counts[i]) / Math.log1p(mx);
        octx.fillStyle = run.slot ? `rgba(224,123,0,${v})` : `rgba(47,111,192,${v})`;
        octx.fillRect(left + i, y, 1, Math.max(1, rowH - (rowH > 3 ? 1 : 0)));
      }
    });
    octx.fillStyle = "#666"; octx.font = `${10 * dpr}px system-ui`; octx.textBaseline = "middle";
    octx.fillText("whole run", 6 * dpr, h / 2);
  }
  function positionBrushOnly() {
    if (syncing) return;
    syncing = true;
    const [a, b] = xs.domain();
    const full = Math.abs(a - S.domain[0]) < 1e-12 && Math.abs(b - S.domain[1]) < 1e-12;
    brushSel.call(brush.move, full ? null : [ovScale(a), ovScale(b)]);
    syncing = false;
  }
  function syncBrush() { /* the brush follows at the next frame (positionBrushOnly) */ }

  // ------------------------------------------------------------------ hit testing

  function rowAt(y) {
    for (const row of S.rows) if (!row.title && Math.abs(y - row.y) <= row.h / 2) return row;
    return null;
  }

  function eventAt(px, py) {
    const row = rowAt(py);
    if (!row) return null;
    const c = xcol(row.run, row.li, S.mode), ln = row.run.lanes[row.li];
    const x = xs.invert(px), j = lowerBound(c.xs, x);
    let best = null, bd = 9;
    for (let q = Math.max(0, j - 3); q < Math.min(c.xs.length, j + 3); q++) {
      const k = c.ord ? c.ord[q] : q;
      if (!S.kinds[ln.kind[k]]) continue;
      const d = Math.abs(xpx(c.x[k]) - px);
      if (d < bd) { bd = d; best = k; }
    }
    return best === null ? null : { type: "event", run: row.run, li: row.li, k: best };
  }

  function arrowAt(px, py) {
    let best = null, bd = 5;
    for (const [run, s0, s1] of visibleArrowRun) {
      const rows = S.rowOf[run.slot];
      for (let v = s0; v < s1; v++) {
        const m = visibleArrows[v];
        const sl = run.mSL[m], rl = run.mRL[m];
        const xa = xpx(xcol(run, sl, S.mode).x[run.mSI[m]]), xb = xpx(xcol(run, rl, S.mode).x[run.mRI[m]]);
        const ya = rows[sl].y, yb = rows[rl].y;
        const d = segDist(px, py, xa, ya, xb, yb);
        if (d < bd) { bd = d; best = { type: "msg", run, m }; }
      }
    }
    return best;
  }
  function segDist(px, py, xa, ya, xb, yb) {
    const dx = xb - xa, dy = yb - ya, l2 = dx * dx + dy * dy;
    const t = l2 ? Math.max(0, Math.min(1, ((px - xa) * dx + (py - ya) * dy) / l2)) : 0;
    return Math.hypot(px - xa - t * dx, py - ya - t * dy);
  }

  function markAt(px, py) {
    const row = rowAt(py);
    if (!row) return null;
    const run = row.run;
    let best = null, bd = 6;
    const mk = run.marks;
    if (S.layers.marks) for (let i = 0; i < mk.n; i++) {
      if (mk.lane[i] !== row.li) continue;
      const d = Math.abs(xpx(timeX(run, row.li, mk.t[i], S.mode)) - px);
      if (d < bd) { bd = d; best = { type: "mark", run, i }; }
    }
    const dr = run.drops;
    if (S.layers.drops) for (let i = 0; i < dr.n; i++) {
      if (dr.lane[i] !== row.li) continue;
      const d = Math.abs(xpx(timeX(run, row.li, dr.t[i], S.mode)) + 6 - px);
      if (d < bd) { bd = d; best = { type: "drop", run, i }; }
    }
    return best;
  }

  function bandAt(px, py) {
    const row = rowAt(py);
    if (!row || !S.layers.faults) return null;
    for (const b of row.run.bands) {
      if (b.lane !== row.li) continue;
      const a = xpx(timeX(row.run, row.li, b.t0, S.mode)), z = xpx(timeX(row.run, row.li, b.t1, S.mode));
      if (px >= a && px <= z) return { type: "band", run: row.run, band: b };
    }
    return null;
  }

  function hitAt(px, py) {
    if (px < GUTTER) return null;
    return eventAt(px, py) || markAt(px, py) || (S.layers.arrows ? arrowAt(px, py) : null) || bandAt(px, py);
  }

  // ------------------------------------------------------------------ text of events

  function iso(us) {
    const sec = Math.floor(us / 1e6), frac = us - sec * 1e6;
    return new Date(sec * 1000).toISOString().slice(0, 19) + "." + String(Math.round(frac)).padStart(6, "0") + "Z";
  }

  /* The event's log line, rebuilt from its fields in the order lclock writes them. */
  function logLine(run, li, k) {
    const ln = run.lanes[li], kind = ln.kind[k];
    const o = { ts: iso(run.t0 + (ln.traw ? ln.traw[k] : ln.t[k])), event: KINDS[kind], level: "info", run_id: run.id, machine: ln.id,
      tick: ln.tick[k], lclock: ln.L[k], queue_len: ln.q[k] };
    if (ln.vc) o.vclock = ln.vc.map((c) => c[k]);
    if (kind === 1) { o.dice = ln.dice[k]; o.to = recipients(ln, k); }
    else if (kind === 0) o.dice = ln.dice[k];
    else { const r = ln.recvRank[k]; o.from = ln.frm[r]; o.msg_lclock = ln.msg[r]; }
    if (ln.pt) o.pt = run.t0 + ln.pt[k];
    if (ln.hl) o.hlc = [run.t0 + ln.hl[k], ln.hc[k]];
    if (kind === 2) {
      const r = ln.recvRank[k];
      if (ln.mpt) o.msg_pt = run.t0 + ln.mpt[r];
      if (ln.mhl) o.msg_hlc = [run.t0 + ln.mhl[r], ln.mhc[r]];
      if (ln.dup[k]) o.dup = true;
    }
    return JSON.stringify(o);
  }
  function recipients(ln, k) {
    const a = ln.toStart[k], n = ln.toN[ln.sendRank[k]];
    return Array.from(ln.to.subarray(a, a + n));
  }
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  function where(run, li, k) { const ln = run.lanes[li]; return `${ln.file}:${ln.line[k]}`; }
  function evName(run, li, k) {
    const ln = run.lanes[li];
    return `${COMPARE ? run.name + " · " : ""}machine ${ln.id} · tick ${ln.tick[k]} · ${KINDS[ln.kind[k]]}`;
  }
  function msgText(run, m) {
    const ln = run.lanes[run.mSL[m]], rn = run.lanes[run.mRL[m]];
    const d = (rn.t[run.mRI[m]] - ln.t[run.mSI[m]]) / 1e6;
    return `message m${ln.id} → m${rn.id}, carried L=${ln.L[run.mSI[m]]}, delay ${fmtSec(d)}`;
  }

  // ------------------------------------------------------------------ hover and click

  const tip = $("tip");
  canvas.addEventListener("mousemove", (ev) => {
    const r = canvas.getBoundingClientRect(), px = ev.clientX - r.left, py = ev.clientY - r.top;
    const h = hitAt(px, py);
    S.hover = h;
    if (!h) { tip.hidden = true; request(); return; }
    let html = "";
    if (h.type === "event") html = `<b>${esc(evName(h.run, h.li, h.k))}</b> <span class="where">${esc(where(h.run, h.li, h.k))}</span><pre>${esc(logLine(h.run, h.li, h.k))}</pre>`;
    else if (h.type === "msg") html = `<b>${esc(msgText(h.run, h.m))}</b><br><span class="where">click for details</span>`;
    else if (h.type === "mark") html = `<span class="where">${esc(h.run.lanes[h.run.marks.lane[h.i]].file)}:${h.run.marks.line[h.i]}</span><pre>${esc(h.run.marks.text[h.i])}</pre>`;
    else if (h.type === "drop") html = dropHtml(h.run, h.i);
    else if (h.type === "band") html = `<b>${esc(h.band.label)}</b><br>${esc(fmtSec(h.band.t0 / 1e6))} to ${esc(fmtSec(h.band.t1 / 1e6))} (host time since t0)`;
    tip.innerHTML = html;
    tip.hidden = false;
    const tw = tip.offsetWidth, th = tip.offsetHeight;
    tip.style.left = Math.min(px + 14, S.W - tw - 4) + "px";
    tip.style.top = (py + 16 + th > S.H ? py - th - 10 : py + 16) + "px";
    request();
  });
  canvas.addEventListener("mouseleave", () => { tip.hidden = true; S.hover = null; request(); });
  canvas.addEventListener("click", (ev) => {
    const r = canvas.getBoundingClientRect();
    const h = hitAt(ev.clientX - r.left, ev.clientY - r.top);
    if (!h) { clearSelection(); return; }
    if (h.type === "event") selectEvent(h.run, h.li, h.k);
    else if (h.type === "msg") selectMessage(h.run, h.m);
    else if (h.type === "drop" && h.run.drops.s[h.i] >= 0) {
      const g = h.run.drops.s[h.i], li = upperBound(h.run.off, g) - 1;
      selectEvent(h.run, li, g - h.run.off[li]);
    }
  });

  function dropHtml(run, i) {
    const dr = run.drops, ln = run.lanes[dr.lane[i]];
    return `<b>dropped: m${ln.id} → m${dr.to[i]}</b>, message L=${dr.msg[i]}, reason <b>${esc(dr.reasons[dr.reason[i]])}</b><br><span class="where">${esc(ln.file)}:${dr.line[i]}</span>`;
  }

  // ------------------------------------------------------------------ causality

  /* Per lane, the events before pastEnd are in the causal past of the selected event and
     those from futStart on are in its future; the ones between are concurrent with it. With
     vector clocks: f -> e iff V(f)[j] <= V(e)[j] for f on machine j (a prefix of lane j);
     e -> f iff V(e)[i] <= V(f)[i] (a suffix of every lane, V[i] never decreases). */
  function causalVC(run, li, k) {
    const N = run.N, pastEnd = new Int32Array(N), futStart = new Int32Array(N);
    const me = run.lanes[li], ci = me.id - 1, ve = me.vc.map((c) => c[k]);
    for (let j = 0; j < N; j++) {
      const ln = run.lanes[j], cj = ln.id - 1;
      if (j === li) { pastEnd[j] = k; futStart[j] = k + 1; continue; }
      pastEnd[j] = upperBound(ln.vc[cj], ve[cj]);
      futStart[j] = lowerBound(ln.vc[ci], ve[ci]);
    }
    return { pastEnd, futStart, source: "vector clocks" };
  }

  /* Without vector clocks: follow the matched messages. The earliest event of each lane that
     the selected event reaches, and the latest that reaches it, found by relaxing the lane
     pairs until nothing changes (at most N rounds). */
  function pairTables(run) {
    if (run.pairs) return run.pairs;
    const N = run.N, pairs = [];
    const bucket = new Map();
    for (let m = 0; m < run.M; m++) {
      const key = run.mSL[m] * N + run.mRL[m];
      if (!bucket.has(key)) bucket.set(key, []);
      bucket.get(key).push(m);
    }
    for (const [key, ms] of bucket) {
      const sl = Math.floor(key / N), rl = key % N, n = ms.length;
      const bySend = ms.slice().sort((a, b) => run.mSI[a] - run.mSI[b] || run.mRI[a] - run.mRI[b]);
      const sIdx = new Int32Array(n), sufMinR = new Int32Array(n + 1);
      sufMinR[n] = 2147483647;
      bySend.forEach((m, i) => { sIdx[i] = run.mSI[m]; });
      for (let i = n - 1; i >= 0; i--) sufMinR[i] = Math.min(sufMinR[i + 1], run.mRI[bySend[i]]);
      const byRecv = ms.slice().sort((a, b) => run.mRI[a] - run.mRI[b]);
      const rIdx = new Int32Array(n), preMaxS = new Int32Array(n);
      let mx = -1;
      byRecv.forEach((m, i) => { rIdx[i] = run.mRI[m]; mx = Math.max(mx, run.mSI[m]); preMaxS[i] = mx; });
      pairs.push({ sl, rl, sIdx, sufMinR, rIdx, preMaxS });
    }
    return (run.pairs = pairs);
  }
  function causalMsgs(run, li, k) {
    const N = run.N, BIG = 2147483647, pairs = pairTables(run);
    const earliest = new Int32Array(N).fill(BIG), latest = new Int32Array(N).fill(-1);
    earliest[li] = k; latest[li] = k;
    for (let changed = true, round = 0; changed && round <= N + 1; round++) {
      changed = false;
      for (const p of pairs) {
        if (earliest[p.sl] !== BIG) {
          const i = lowerBound(p.sIdx, earliest[p.sl]);
          const r = p.sufMinR[i];
          if (r < earliest[p.rl]) { earliest[p.rl] = r; changed = true; }
        }
        if (latest[p.rl] >= 0) {
          const i = upperBound(p.rIdx, latest[p.rl]) - 1;
          if (i >= 0 && p.preMaxS[i] > latest[p.sl]) { latest[p.sl] = p.preMaxS[i]; changed = true; }
        }
      }
    }
    const pastEnd = new Int32Array(N), futStart = new Int32Array(N);
    for (let j = 0; j < N; j++) {
      if (j === li) { pastEnd[j] = k; futStart[j] = k + 1; continue; }
      pastEnd[j] = latest[j] + 1;
      futStart[j] = Math.min(earliest[j], run.lanes[j].n);
    }
    return { pastEnd, futStart, source: "matched messages" };
  }
  function causal(run, li, k) {
    const c = run.vcOK ? causalVC(run, li, k) : causalMsgs(run, li, k);
    c.run = run; c.li = li; c.k = k;
    let past = 0, fut = 0, conc = 0;
    for (let j = 0; j < run.N; j++) {
      const n = run.lanes[j].n;
      past += c.pastEnd[j]; fut += n - c.futStart[j];
      conc += Math.max(0, c.futStart[j] - c.pastEnd[j]) - (j === li ? 1 : 0);
    }
    c.counts = { past, future: fut, concurrent: conc };
    return c;
  }

  // ------------------------------------------------------------------ selection and panel

  function selectEvent(run, li, k, center) {
    if (S.sel && (S.sel.li !== li || S.sel.k !== k)) S.prevSel = S.sel;  // for "lclock hb A B"
    S.sel = { run, li, k }; S.msgSel = null;
    S.causal = causal(run, li, k);
    if (center) { const x = xcol(run, li, S.mode).x[k]; const [a, b] = xs.domain(); if (x < a || x > b) centerOn(x, true); }
    panelEvent();
    request();
  }
  function selectMessage(run, m) {
    const sl = run.mSL[m], si = run.mSI[m];
    const st = run.msgsOfSendStart[sl];
    const all = [];
    for (let q = st[si]; q < st[si + 1]; q++) all.push(q);
    S.msgSel = { run, m, all }; S.sel = null; S.causal = null;
    panelMessage();
    request();
  }
  function clearSelection() { S.sel = null; S.msgSel = null; S.causal = null; panelRun(); request(); }

  const panel = $("panel");
  const row = (k, ...v) => `<tr><th>${k}</th>${v.map((x) => `<td class="num">${x === undefined || x === null ? "<span class=muted>-</span>" : x}</td>`).join("")}</tr>`;

  function clockCells(run, li, k) {
    const ln = run.lanes[li];
    return {
      real: `${fmtSec(ln.t[k] / 1e6)}`, L: ln.L[k], vc: ln.vc ? "[" + ln.vc.map((c) => c[k]).join(", ") + "]" : null,
      hlc: ln.hl ? `${fmtSec(ln.hl[k] / 1e6)}, c=${ln.hc[k]}` : null, pt: ln.pt ? fmtSec(ln.pt[k] / 1e6) : null,
      tick: ln.tick[k], q: ln.q[k],
    };
  }

  function panelEvent() {
    const { run, li, k } = S.sel, ln = run.lanes[li], kind = ln.kind[k];
    const c = S.causal.counts;
    const me = clockCells(run, li, k), prev = k > 0 ? clockCells(run, li, k - 1) : {};
    let carried = {};
    const r = ln.recvRank[k];
    if (kind === 2) {
      const m = run.msgOfRecv[li][k];
      carried = { L: ln.msg[r], pt: ln.mpt ? fmtSec(ln.mpt[r] / 1e6) : null,
        hlc: ln.mhl ? `${fmtSec(ln.mhl[r] / 1e6)}, c=${ln.mhc[r]}` : null,
        vc: m >= 0 && ln.vc ? "[" + run.lanes[run.mSL[m]].vc.map((cc) => cc[run.mSI[m]]).join(", ") + "]" : null,
        real: m >= 0 ? fmtSec(run.lanes[run.mSL[m]].t[run.mSI[m]] / 1e6) + " (send)" : null };
    }
    const three = kind === 2;
    const hdr = `<tr><th>clock</th><th>this event</th>${three ? "<th>message carried</th>" : ""}<th>previous event</th></tr>`;
    const line = (name, key) => row(name, me[key], ...(three ? [carried[key]] : []), prev[key]);
    let html = `<h2>${esc(evName(run, li, k))}</h2><div class="muted">${esc(where(run, li, k))}</div>`;
    html += `<h3>Clocks side by side</h3><table>${hdr}${line("real time (ts)", "real")}${line("Lamport", "L")}`;
    if (ln.vc) html += line("vector", "vc");
    if (ln.hl) html += line("HLC [l, c]", "hlc");
    if (ln.pt) html += line("physical pt", "pt");
    html += line("tick", "tick") + line("queue after", "q") + "</table>";
    if (kind === 2) {
      const m = run.msgOfRecv[li][k];
      const jump = ln.L[k] - (k > 0 ? ln.L[k - 1] : 0);
      html += `<p>Lamport jump on this receive: <b>+${jump}</b> (max(${k > 0 ? ln.L[k - 1] : 0}, ${ln.msg[r]}) + 1)${ln.dup[k] ? "; a <b>duplicate</b> delivery" : ""}.`;
      if (m >= 0) html += ` <button type="button" data-msg="${m}">show the message</button>`;
      html += "</p>";
    }
    if (kind === 1) html += `<p>Sent to ${recipients(ln, k).map((x) => "m" + x).join(", ")}. <button type="button" data-sendmsg="1">show its messages</button></p>`;
    html += `<h3>Causality (from ${S.causal.source})</h3><ul>
      <li><span class="swatch" style="background:${COL.past}"></span>${c.past.toLocaleString()} events in its causal past (happened before it)</li>
      <li><span class="swatch" style="background:${COL.future}"></span>${c.future.toLocaleString()} in its causal future (it happened before them)</li>
      <li><span class="band" style="background:${COL.concBand};border:1px solid ${COL.conc}"></span>${c.concurrent.toLocaleString()} concurrent with it (neither)</li></ul>`;
    html += askInTerminal(run, li, k);
    html += `<h3>Log line</h3><pre>${esc(logLine(run, li, k))}</pre><button type="button" data-center="1">centre (C)</button> <button type="button" data-clear="1">clear (Esc)</button>`;
    panel.innerHTML = html;
  }

  // The same questions in a terminal (lclock trace / lclock hb), with their proof there.
  function evRef(ln, k) { return `${ln.id}:L${ln.L[k]}`; }
  function askInTerminal(run, li, k) {
    const ln = run.lanes[li], dir = run.info.path || run.info.dir;
    let html = `<h3>In a terminal</h3><pre class="cmd" data-cmd="trace">lclock trace ${esc(dir)} ${evRef(ln, k)}</pre>`;
    const p = S.prevSel;
    if (p && p.run === run) {
      const pl = run.lanes[p.li], c = S.causal;
      const rel = p.k < c.pastEnd[p.li] ? "happened before" : p.k >= c.futStart[p.li] ? "happened after" : "is concurrent with";
      html += `<p>The event selected before, <b>machine ${pl.id} · tick ${pl.tick[p.k]}</b>, <b data-hb="${rel}">${rel}</b> this one. With the proof:</p>`;
      html += `<pre class="cmd" data-cmd="hb">lclock hb ${esc(dir)} ${evRef(pl, p.k)} ${evRef(ln, k)}</pre>`;
    } else {
      html += `<p class="muted">Select a second event to compare the two: happened before, after, or concurrent (lclock hb).</p>`;
    }
    return html;
  }

  function queueWait(run, m) {
    const sl = run.mSL[m], rl = run.mRL[m];
    const ts = run.lanes[sl].t[run.mSI[m]], rn = run.lanes[rl], ri = run.mRI[m];
    // the message cannot have waited while the receiver rolled the dice (its queue was empty)
    let k = ri - 1, behind = 0;
    while (k >= 0 && rn.t[k] > ts && rn.kind[k] === 2) { behind++; k--; }
    const since = k >= 0 ? Math.max(ts, rn.t[k]) : ts;
    return { wait: (rn.t[ri] - since) / 1e6, behind };
  }

  function panelMessage() {
    const { run, m, all } = S.msgSel;
    const sl = run.mSL[m], si = run.mSI[m], sn = run.lanes[sl];
    let html = `<h2>${COMPARE ? run.name + " · " : ""}Message from machine ${sn.id}</h2>`;
    html += `<h3>Send</h3><table>${row("machine · tick", `m${sn.id} · ${sn.tick[si]}`)}${row("Lamport (carried)", sn.L[si])}${row("real time", fmtSec(sn.t[si] / 1e6))}`;
    if (sn.pt) html += row("physical pt", fmtSec(sn.pt[si] / 1e6));
    html += row("recipients", recipients(sn, si).map((x) => "m" + x).join(", ")) + "</table>";
    html += `<div class="muted">${esc(where(run, sl, si))}</div>`;
    for (const mm of all) {
      const rl = run.mRL[mm], ri = run.mRI[mm], rn = run.lanes[rl];
      const delay = (rn.t[ri] - sn.t[si]) / 1e6, qw = queueWait(run, mm);
      const prevL = ri > 0 ? rn.L[ri - 1] : 0, jump = rn.L[ri] - prevL, pushed = Math.max(0, sn.L[si] - prevL);
      html += `<h3${mm === m ? "" : ' class="muted"'}>Receive on machine ${rn.id}${rn.dup[ri] ? " (duplicate)" : ""}</h3><table>`;
      html += row("tick", rn.tick[ri]) + row("real time", fmtSec(rn.t[ri] / 1e6));
      html += row("delay (send to handling)", fmtSec(delay));
      html += row("queue wait (at most)", `${fmtSec(qw.wait)}, behind ${qw.behind} older message(s)`);
      html += row("queue after", rn.q[ri]);
      html += row("Lamport before → after", `${prevL} → ${rn.L[ri]}`);
      html += row("jump caused", `<b>+${jump}</b>` + (pushed ? ` (the message pushed it ${pushed} past the usual +1)` : " (no jump: the usual +1)"));
      if (sn.pt && rn.pt) html += row("physical pt send → receive", `${fmtSec(sn.pt[si] / 1e6)} → ${fmtSec(rn.pt[ri] / 1e6)}` + (rn.pt[ri] < sn.pt[si] ? " <b>(backwards!)</b>" : ""));
      html += `</table><div class="muted">${esc(where(run, rl, ri))}</div>`;
    }
    const dr = run.drops, g = run.off[sl] + si;
    for (let i = 0; i < dr.n; i++) if (dr.s[i] === g) html += `<h3>Dropped on the way to machine ${dr.to[i]}</h3><p>reason: <b>${esc(dr.reasons[dr.reason[i]])}</b> <span class="muted">${esc(sn.file)}:${dr.line[i]}</span></p>`;
    const pe = run.pending;
    for (let i = 0; i < pe.n; i++) if (pe.s[i] === g) html += `<h3>Never handled by machine ${pe.to[i]}</h3><p class="muted">still queued when the run stopped, or lost with a machine</p>`;
    html += `<p class="muted">Queue wait: the time since the later of the send and the receiver's last tick with an empty queue (it rolled the dice, so the message had not arrived yet).</p>`;
    html += `<button type="button" data-sel-send="1">select the send event</button> <button type="button" data-clear="1">clear (Esc)</button>`;
    panel.innerHTML = html;
  }

  function panelRun() {
    let html = "";
    for (const run of RUNS) {
      const i = run.info;
      html += `<h2>${COMPARE ? `<span style="color:${run.slot ? COL.runB : COL.runA}">${run.name}</span>: ` : ""}${esc(i.id)}</h2><table>`;
      html += row("status", esc(i.status)) + row("machines", i.n) + row("events shown", `${i.events.toLocaleString()} of ${i.events_total.toLocaleString()}`);
      html += row("messages drawn", run.M.toLocaleString()) + row("drops", run.drops.n) + row("never handled", run.pending.n);
      html += row("clocks", esc(["Lamport", i.vector ? "vector" : null, i.clocks.includes("hlc") ? "HLC" : null, i.clocks.includes("pt") ? "physical pt" : null].filter(Boolean).join(", ")));
      html += row("causality from", run.vcOK ? "vector clocks" : "matched messages");
      if (i.seed !== null && i.seed !== undefined) html += row("seed", esc(i.seed));
      html += "</table>";
    }
    if (COMPARE) html += compareTable();
    html += `<h3>Legend</h3><ul>
      <li><span class="swatch" style="background:${COL.kind[1]}"></span>send, <span class="swatch" style="background:${COL.kind[2]}"></span>receive, <span class="swatch" style="background:${COL.kind[0]}"></span>internal</li>
      <li><span class="band" style="background:${COL.arrow}"></span>message, send to the tick that handled it; <span class="band" style="background:${COL.arrowBack}"></span>goes backwards on this axis</li>
      <li><span style="color:${COL.drop}">✕</span> dropped message; dashed: never handled; ✕ after a lane's last event: its log ends without a stop line</li>
      <li><span class="band" style="background:${COL.fault}"></span>partition, <span class="band" style="background:${COL.pause}"></span>pause</li></ul>
      <p class="muted">Click an event for its causal past and future; click an arrow for the message. Press ? for the keys.</p>`;
    panel.innerHTML = html;
  }

  function runMetrics(run) {
    return run.lanes.map((ln) => {
      let recv = 0, jsum = 0, jmax = 0, qmax = 0;
      for (let k = 0; k < ln.n; k++) {
        if (ln.q[k] > qmax) qmax = ln.q[k];
        if (ln.kind[k] === 2) { const j = ln.L[k] - (k ? ln.L[k - 1] : 0); recv++; jsum += j; if (j > jmax) jmax = j; }
      }
      return { id: ln.id, events: ln.n, recv, jmean: recv ? jsum / recv : 0, jmax, qmax, L: ln.n ? ln.L[ln.n - 1] : 0,
        qfinal: ln.stop && typeof ln.stop.unprocessed === "number" ? ln.stop.unprocessed : ln.n ? ln.q[ln.n - 1] : 0 };
    });
  }
  function compareTable() {
    const A = runMetrics(RUNS[0]), B = runMetrics(RUNS[1]);
    const ids = [...new Set([...A.map((m) => m.id), ...B.map((m) => m.id)])].sort((a, b) => a - b);
    const f = d3.format(",.3~f");
    const cell = (a, b) => {
      const differ = a !== undefined && b !== undefined && Math.abs(a - b) > Math.max(1, 0.2 * Math.max(Math.abs(a), Math.abs(b)));
      return `<td class="num${differ ? " diff" : ""}">${a === undefined ? "-" : f(a)} / ${b === undefined ? "-" : f(b)}</td>`;
    };
    let html = `<h3>A / B per machine</h3><p class="muted">Shaded: more than 20% apart. The charts between the runs show drift, queues and jumps along the axis.</p><table><tr><th>m</th><th>jump mean</th><th>jump max</th><th>queue max</th><th>final L</th></tr>`;
    for (const id of ids) {
      const a = A.find((m) => m.id === id) || {}, b = B.find((m) => m.id === id) || {};
      html += `<tr><th>${id}</th>${cell(a.jmean, b.jmean)}${cell(a.jmax, b.jmax)}${cell(a.qmax, b.qmax)}${cell(a.L, b.L)}</tr>`;
    }
    return html + "</table>";
  }

  panel.addEventListener("click", (ev) => {
    const b = ev.target.closest("button");
    if (!b) return;
    if (b.dataset.msg) selectMessage(S.sel.run, +b.dataset.msg);
    else if (b.dataset.sendmsg) { const { run, li, k } = S.sel; const st = run.msgsOfSendStart[li]; if (st[k] < st[k + 1]) selectMessage(run, st[k]); }
    else if (b.dataset.center) centerSelection();
    else if (b.dataset.clear) clearSelection();
    else if (b.dataset.selSend) { const { run, m } = S.msgSel; selectEvent(run, run.mSL[m], run.mSI[m]); }
  });
  function centerSelection() {
    if (S.sel) centerOn(xcol(S.sel.run, S.sel.li, S.mode).x[S.sel.k], true);
    else if (S.msgSel) { const { run, m } = S.msgSel; centerOn(xcol(run, run.mSL[m], S.mode).x[run.mSI[m]], true); }
  }

  // ------------------------------------------------------------------ search

  const CLOCKS = [["L", "Lamport"], ["tick", "tick"], ["vc", "vector clock"], ["hlc", "HLC l[,c]"], ["pt", "physical pt (us)"], ["real", "real time (s)"], ["line", "log line"]];
  function setupSearch() {
    const ms = $("s-machine");
    ms.innerHTML = `<option value="">any machine</option>` + RUNS.map((run) => run.lanes.map((ln, li) =>
      `<option value="${run.slot}:${li}">${COMPARE ? run.name + " · " : ""}machine ${ln.id}</option>`).join("")).join("");
    const avail = CLOCKS.filter(([k]) => (k !== "vc" || RUNS.every((r) => r.vcOK)) && (k !== "hlc" || RUNS.every((r) => r.clocks.includes("hlc"))) && (k !== "pt" || RUNS.every((r) => r.clocks.includes("pt"))));
    $("s-clock").innerHTML = avail.map(([k, l]) => `<option value="${k}">${l}</option>`).join("");
    $("search").addEventListener("submit", (ev) => { ev.preventDefault(); runSearch(); });
    $("s-next").addEventListener("click", () => stepResult(1));
    $("s-prev").addEventListener("click", () => stepResult(-1));
  }

  /* Matches of one clock value: exact ones, else the nearest event at or after it. */
  function search(machine, clock, text) {
    const lanes = [];
    if (machine) { const [s, li] = machine.split(":").map(Number); lanes.push([RUNS[s], li]); }
    else for (const run of RUNS) for (let li = 0; li < run.N; li++) lanes.push([run, li]);
    const v = text.trim();
    if (!v) return { results: [], message: "type a value" };
    const numv = Number(v.replace(/[, _]/g, ""));
    const out = [];
    let exact = true;
    for (const [run, li] of lanes) {
      const ln = run.lanes[li];
      let col = null, target = numv;
      if (clock === "L") col = ln.L;
      else if (clock === "tick") col = ln.tick;
      else if (clock === "line") col = ln.line;
      else if (clock === "real") { col = ln.t; target = numv * 1e6; }
      else if (clock === "pt") { col = ln.pt; target = numv - (numv > 1e12 ? run.t0 : 0); }
      else if (clock === "hlc") {
        const [l, c] = v.replace(/[[\]]/g, "").split(/[ ,;]+/).filter(Boolean).map(Number);
        const l0 = l - (l > 1e12 ? run.t0 : 0);
        for (let k = 0; k < ln.n; k++) if (ln.hl[k] === l0 && (c === undefined || isNaN(c) || ln.hc[k] === c)) out.push([run, li, k]);
        continue;
      } else if (clock === "vc") {
        const want = v.replace(/[[\]]/g, "").split(/[ ,;]+/).filter(Boolean).map(Number);
        if (want.length !== ln.vc.length) return { results: [], message: `a vector clock has ${ln.vc.length} entries` };
        for (let k = 0; k < ln.n; k++) { let ok = true; for (let c = 0; c < want.length && ok; c++) ok = ln.vc[c][k] === want[c]; if (ok) out.push([run, li, k]); }
        continue;
      }
      if (!col || isNaN(target)) return { results: [], message: "not a number" };
      let sorted = true;
      for (let k = 1; k < ln.n && sorted; k++) sorted = col[k] >= col[k - 1];
      if (sorted) {
        let a = lowerBound(col, target);
        const b = upperBound(col, target);
        if (b > a) for (let k = a; k < b; k++) out.push([run, li, k]);
        else if (clock === "real" || clock === "pt") {
          if (a > 0 && (a >= ln.n || Math.abs(col[a - 1] - target) < Math.abs(col[a] - target))) a--;
          if (a < ln.n) { out.push([run, li, a]); exact = clock !== "L"; }
        } else if (machine && a < ln.n) { out.push([run, li, a]); exact = false; }
      } else for (let k = 0; k < ln.n; k++) if (col[k] === target) out.push([run, li, k]);
      if (out.length > 5000) break;
    }
    const name = CLOCKS.find((c) => c[0] === clock)[1];
    let message = out.length ? `${out.length.toLocaleString()} match${out.length > 1 ? "es" : ""}` : `no event with ${name} ${v}`;
    if (!exact && out.length && (clock === "L" || clock === "tick" || clock === "line")) {
      const [run, li, k] = out[0];
      const got = clock === "L" ? run.lanes[li].L[k] : clock === "tick" ? run.lanes[li].tick[k] : run.lanes[li].line[k];
      message = `no event with ${name} ${v} on this machine; the next is ${got}`;
    }
    if (clock === "real" || clock === "pt") message = `${out.length} nearest event(s)`;
    return { results: out, message };
  }
  function runSearch() {
    const r = search($("s-machine").value, $("s-clock").value, $("s-value").value);
    S.results = r.results; S.resultPos = -1;
    $("s-result").textContent = r.message;
    $("s-result").dataset.count = r.results.length;
    if (r.results.length) stepResult(1);
    return r;
  }
  function stepResult(d) {
    if (!S.results.length) return;
    S.resultPos = (S.resultPos + d + S.results.length) % S.results.length;
    const [run, li, k] = S.results[S.resultPos];
    if (S.hidden.has(run.lanes[li].id)) { S.hidden.delete(run.lanes[li].id); syncFilterUI(); layout(); buildOverview(); }
    if (!S.kinds[run.lanes[li].kind[k]]) { S.kinds[run.lanes[li].kind[k]] = true; syncFilterUI(); }
    selectEvent(run, li, k);
    zoomAround(xcol(run, li, S.mode).x[k]);
    if (S.results.length > 1) $("s-result").textContent = `${S.resultPos + 1} of ${S.results.length.toLocaleString()}`;
  }

  // ------------------------------------------------------------------ filters

  function parseIds(text) {
    const out = new Set();
    for (const part of text.split(/[ ,;]+/).filter(Boolean)) {
      const m = part.match(/^(\d+)(?:-(\d+))?$/);
      if (!m) return null;
      const a = +m[1], b = m[2] ? +m[2] : a;
      for (let i = Math.min(a, b); i <= Math.max(a, b) && i - a < 100000; i++) out.add(i);
    }
    return out;
  }
  function allIds() { return [...new Set(RUNS.flatMap((r) => r.lanes.map((l) => l.id)))].sort((a, b) => a - b); }
  function setHidden(ids) {
    S.hidden = new Set(ids);
    syncFilterUI(); layout(); buildOverview(); request();
  }
  function setupFilters() {
    const ids = allIds();
    $("f-machine-list").innerHTML = ids.map((id) => `<label><input type="checkbox" data-machine="${id}" checked> m${id}</label>`).join("");
    $("filters").addEventListener("change", (ev) => {
      const t = ev.target;
      if (t.dataset.machine) { const id = +t.dataset.machine; const h = new Set(S.hidden); if (t.checked) h.delete(id); else h.add(id); setHidden(h); }
      else if (t.dataset.kind) { S.kinds[+t.dataset.kind] = t.checked; request(); }
      else if (t.dataset.layer) { S.layers[t.dataset.layer] = t.checked; request(); }
      else if (t.id === "f-machines") {
        const want = t.value.trim() ? parseIds(t.value) : new Set(ids);
        if (!want) { t.setCustomValidity("ids and ranges, e.g. 1-4,9"); t.reportValidity(); return; }
        t.setCustomValidity("");
        setHidden(ids.filter((i) => !want.has(i)));
      }
    });
    $("f-all").addEventListener("click", () => setHidden([]));
    $("f-none").addEventListener("click", () => setHidden(ids.slice(1)));
  }
  function syncFilterUI() {
    for (const el of document.querySelectorAll("[data-machine]")) el.checked = !S.hidden.has(+el.dataset.machine);
    for (const el of document.querySelectorAll("[data-kind]")) el.checked = S.kinds[+el.dataset.kind];
    for (const el of document.querySelectorAll("[data-layer]")) el.checked = S.layers[el.dataset.layer];
  }

  // ------------------------------------------------------------------ keyboard

  window.addEventListener("keydown", (ev) => {
    const tag = (ev.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "select" || tag === "textarea") { if (ev.key === "Escape") ev.target.blur(); return; }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const w = S.W - GUTTER - RIGHT;
    const k = ev.key;
    let done = true;
    if (k === "ArrowLeft" || k === "a" || k === "A") panBy(w * 0.15);
    else if (k === "ArrowRight" || k === "d" || k === "D") panBy(-w * 0.15);
    else if (k === "+" || k === "=" || k === "w" || k === "W" || k === "ArrowUp") zoomBy(1.5, selPx());
    else if (k === "-" || k === "_" || k === "s" || k === "S" || k === "ArrowDown") zoomBy(1 / 1.5, selPx());
    else if (k === "0" || k === "Home") fit();
    else if (k === "Escape") { clearSelection(); $("help").hidden = true; }
    else if (k === "c" || k === "C") centerSelection();
    else if (k === "n") stepResult(1);
    else if (k === "N") stepResult(-1);
    else if (k === "/") $("s-value").focus();
    else if (k === "?") $("help").hidden = !$("help").hidden;
    else done = false;
    if (done) ev.preventDefault();
  });
  function selPx() {
    if (!S.sel) return undefined;
    const p = xpx(xcol(S.sel.run, S.sel.li, S.mode).x[S.sel.k]);
    return p >= GUTTER && p <= S.W - RIGHT ? p : undefined;
  }

  // ------------------------------------------------------------------ start

  function setupHeader() {
    const i = RUNS.map((r) => r.info);
    $("runinfo").textContent = $("runinfo").title = COMPARE
      ? `A ${i[0].id} (${i[0].n} machines, ${i[0].events.toLocaleString()} events) vs B ${i[1].id} (${i[1].n} machines, ${i[1].events.toLocaleString()} events)`
      : `${i[0].id} · ${i[0].status} · ${i[0].n} machines · ${i[0].events.toLocaleString()} events`;
    const modes = modesOf();
    $("axis").innerHTML = modes.map((m) => `<option value="${m}" title="${MODES[m].title}">${MODES[m].label}</option>`).join("");
    $("axis").addEventListener("change", (ev) => setMode(ev.target.value, true));
    const notes = RUNS.flatMap((r) => (r.info.notes || []).map((n) => (COMPARE ? `${r.name}: ` : "") + n));
    $("notes").innerHTML = notes.map((n) => `<p>${esc(n)}</p>`).join("");
    $("fit").addEventListener("click", fit);
    $("help-btn").addEventListener("click", () => { $("help").hidden = !$("help").hidden; });
    $("help").addEventListener("click", () => { $("help").hidden = true; });
  }

  setupHeader();
  setupSearch();
  setupFilters();
  S.domain = domainOf("real");
  layout();
  buildOverview();
  panelRun();
  window.addEventListener("resize", () => { layout(); buildOverview(); request(); });
  draw();

  // ------------------------------------------------------------------ API (tests, benchmark, console)

  function causalExport() {
    const c = S.causal;
    if (!c) return null;
    return { run: c.run.slot, machine: c.run.lanes[c.li].id, index: c.k, source: c.source,
      lanes: c.run.lanes.map((ln, j) => ({ machine: ln.id, pastEnd: c.pastEnd[j], futureStart: c.futStart[j], n: ln.n })),
      counts: c.counts };
  }
  window.lclockExplorer = {
    get ready() { return !!S.readyAt; },
    readyAt: () => S.readyAt,
    stats: () => S.stats,
    runs: () => RUNS.map((r) => ({ id: r.id, machines: r.lanes.map((l) => ({ id: l.id, events: l.n })), messages: r.M,
      drops: r.drops.n, pending: r.pending.n, marks: r.marks.n, bands: r.bands.length, clocks: r.clocks, vc: r.vcOK })),
    modes: modesOf,
    setAxis: (m) => setMode(m, false),
    drawNow: () => { draw(); return S.stats; },
    select: (slot, machine, k) => { const run = RUNS[slot]; selectEvent(run, run.laneOf.get(machine), k); draw(); return causalExport(); },
    causal: causalExport,
    selectMessage: (slot, m) => {
      if (!(m >= 0 && m < RUNS[slot].M)) return null;
      selectMessage(RUNS[slot], m); draw(); return panel.innerText;
    },
    messageOf: (slot, machine, k) => RUNS[slot].msgOfRecv[RUNS[slot].laneOf.get(machine)][k],
    clear: () => { clearSelection(); draw(); },
    panelText: () => panel.innerText,
    view: () => xs.domain(),
    domain: () => S.domain.slice(),
    showRange: (a, b) => { showRange(a, b); draw(); return xs.domain(); },
    panBy: (px) => { panBy(px); },
    zoomBy: (f, px) => { zoomBy(f, px); },
    fit: () => { fit(); draw(); },
    search: (machine, clock, text) => {
      $("s-machine").value = machine; $("s-clock").value = clock; $("s-value").value = text;
      const r = runSearch(); draw();
      return { count: r.results.length, message: $("s-result").textContent, selected: S.sel ? { run: S.sel.run.slot, machine: S.sel.run.lanes[S.sel.li].id, index: S.sel.k } : null };
    },
    hideMachines: (ids) => { setHidden(ids); draw(); return S.stats; },
    setKinds: (k) => { S.kinds = k.slice(); syncFilterUI(); draw(); return S.stats; },
    setLayer: (name, on) => { S.layers[name] = on; syncFilterUI(); draw(); return S.stats; },
    xToPx: (x) => xpx(x),
    xOf: (slot, machine, k) => { const run = RUNS[slot]; return xcol(run, run.laneOf.get(machine), S.mode).x[k]; },
    eventXY: (slot, machine, k) => {
      const run = RUNS[slot], li = run.laneOf.get(machine), row = S.rowOf[slot][li];
      return row ? [xpx(xcol(run, li, S.mode).x[k]), row.y] : null;
    },
    pixel: (x, y) => Array.from(ctx.getImageData(Math.round(x * S.dpr), Math.round(y * S.dpr), 1, 1).data),
    colors: () => ({ kind: COL.kind, past: COL.past, future: COL.future, conc: COL.conc }),
    logLine: (slot, machine, k) => logLine(RUNS[slot], RUNS[slot].laneOf.get(machine), k),
    hitAt: (x, y) => { const h = hitAt(x, y); return h ? { type: h.type, machine: h.li !== undefined ? h.run.lanes[h.li].id : null, index: h.k ?? null, m: h.m ?? null } : null; },
  };
})();
