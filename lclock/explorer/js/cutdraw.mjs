/* Drawing cuts on the canvas and finding them under the pointer: each snapshot's recorded
 * cut (dashed, labelled with its id) and the cut the user drags (a line through a handle on
 * every lane: green when consistent, red with its crossing message drawn thick when not).
 * The judging is cuts.mjs's; this module only draws. */
import { cutX } from "./cuts.mjs";
import { segDist, xcol } from "./layout.mjs";

export const CUT_COL = { snap: "#0f8b8d", ok: "#1e9e3a", bad: "#d11a2a", handle: "#ffffff" };

/* The cut's points, lane by lane in row order: [px, y, lane index]. */
export function cutPoints(v, run, cnt) {
  const S = v.S, pts = [];
  const pad = Math.abs(S.xs.invert(10) - S.xs.invert(0));
  for (const row of S.rows) {
    if (row.title || row.run !== run) continue;
    const x = cutX(xcol(run, row.li, S.mode).x, cnt[row.li], pad);
    if (x !== null) pts.push([S.xs(x), row.y, row.li]);
  }
  return pts;
}

function polyline(ctx, pts, h) {
  ctx.beginPath();
  pts.forEach(([x, y], i) => {
    if (i === 0) ctx.moveTo(x, y - h / 2); else ctx.lineTo(x, y - h / 2);
    ctx.lineTo(x, y + h / 2);
  });
  ctx.stroke();
}

/* The line (0 .. lines-1) of each label [x, width], in the order given, so that no two
 * labels on one line overlap; null where no line has room: that label is left out (its
 * cut is still drawn, and named when hovered). Snapshots close in time, seen from afar,
 * wrote their names over one another. */
export function labelLines(spans, lines = 3) {
  const ends = new Array(lines).fill(-Infinity), out = new Array(spans.length).fill(null);
  const order = spans.map((_, i) => i).sort((a, b) => spans[a][0] - spans[b][0] || a - b);
  for (const i of order) {
    const [x, w] = spans[i];
    const line = ends.findIndex((end) => x >= end + 2);
    if (line >= 0) { ends[line] = x + w; out[i] = line; }
  }
  return out;
}

/* Every snapshot's cut, then the user's, then its crossing message. */
export function drawCuts(v) {
  const S = v.S, ctx = v.ctx, run = v.runs[0];
  ctx.save();
  ctx.font = "11px system-ui, sans-serif";
  const shown = S.layers.snapshots === false ? [] : S.snaps
    .map((sn) => ({ sn, pts: cutPoints(v, run, sn.cnt), text: `S${sn.id}` }))
    .filter((c) => c.pts.length);
  const lines = labelLines(shown.map((c) => [c.pts[0][0] + 3, ctx.measureText(c.text).width]));
  shown.forEach(({ sn, pts, text }, i) => {
    const hot = S.hover && S.hover.type === "snap" && S.hover.snap === sn;
    ctx.strokeStyle = sn.verdict.consistent ? CUT_COL.snap : CUT_COL.bad;
    ctx.lineWidth = hot ? 3 : 1.5; ctx.setLineDash([5, 3]);
    polyline(ctx, pts, S.laneH);
    ctx.setLineDash([]); ctx.fillStyle = ctx.strokeStyle;
    if (lines[i] !== null || hot) {
      ctx.fillText(text, pts[0][0] + 3, pts[0][1] - S.laneH / 2 + 10 + 12 * (lines[i] ?? 0));
    }
  });
  const cut = S.cut;
  if (cut) {
    const pts = cutPoints(v, run, cut.cnt), col = cut.verdict.consistent ? CUT_COL.ok : CUT_COL.bad;
    ctx.strokeStyle = col; ctx.lineWidth = 2.5;
    polyline(ctx, pts, S.laneH);
    for (const [x, y] of pts) {
      ctx.beginPath(); ctx.arc(x, y, 5, 0, 6.2832);
      ctx.fillStyle = CUT_COL.handle; ctx.fill(); ctx.lineWidth = 2; ctx.stroke();
    }
    const m = cut.verdict.crossing;
    if (m >= 0) drawMessage(v, run, m, col);
  }
  ctx.restore();
}

function drawMessage(v, run, m, col) {
  const S = v.S, ctx = v.ctx, sl = run.mSL[m], rl = run.mRL[m];
  const rs = S.rowOf[run.slot][sl], rr = S.rowOf[run.slot][rl];
  if (!rs || !rr) return;
  const xa = S.xs(xcol(run, sl, S.mode).x[run.mSI[m]]), xb = S.xs(xcol(run, rl, S.mode).x[run.mRI[m]]);
  ctx.strokeStyle = col; ctx.lineWidth = 4;
  ctx.beginPath(); ctx.moveTo(xa, rs.y); ctx.lineTo(xb, rr.y); ctx.stroke();
  ctx.beginPath(); ctx.arc(xb, rr.y, 6, 0, 6.2832); ctx.stroke();
}

/* The user's cut's handle under the pointer: its lane index, or -1. */
export function handleAt(v, px, py) {
  if (!v.S.cut) return -1;
  for (const [x, y, li] of cutPoints(v, v.runs[0], v.S.cut.cnt)) if (Math.hypot(px - x, py - y) <= 8) return li;
  return -1;
}

/* The snapshot whose cut passes within a few pixels of the pointer, or null. */
export function snapshotAt(v, px, py) {
  const S = v.S;
  if (S.layers.snapshots === false) return null;
  for (const sn of S.snaps) {
    const pts = cutPoints(v, v.runs[0], sn.cnt);
    for (let i = 0; i < pts.length; i++) {
      const [x, y] = pts[i], h = S.laneH / 2;
      if (segDist(px, py, x, y - h, x, y + h) <= 4) return sn;
      if (i && segDist(px, py, pts[i - 1][0], pts[i - 1][1] + h, x, y - h) <= 4) return sn;
    }
  }
  return null;
}
