/* The explorer's colours: the canvas and the panel's legend use the same ones. */
export const COL = {
  kind: ["#8f959c", "#2a9d3a", "#2f6fc0"], past: "#1f4fbf", future: "#e0452b", conc: "#b8a31a",
  concBand: "rgba(255, 224, 90, 0.30)", selected: "#000", arrow: "rgba(190, 70, 50, 0.55)",
  arrowBack: "#d0139a", drop: "#d62728", pending: "#888", pause: "rgba(120,120,120,0.22)",
  fault: "rgba(140, 80, 200, 0.18)", faultEdge: "rgba(120, 60, 190, 0.8)", laneA: "#fafafa",
  laneB: "#f1f2f4", runA: "#2f6fc0", runB: "#e07b00",
};

/* A #rrggbb colour as one little-endian RGBA pixel (the pixel buffer's element). */
export function rgba(hex) {
  const n = parseInt(hex.slice(1), 16);
  return (0xff000000 | ((n & 0xff) << 16) | (n & 0xff00) | ((n >> 16) & 0xff)) >>> 0;
}
