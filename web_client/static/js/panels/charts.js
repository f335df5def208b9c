// Line charts for the dashboard, drawn by uPlot (npm `uplot`, served from
// /vendor/). Each chart keeps its box's size (no layout jump as data comes
// in), follows its container's width, tells series apart by dash pattern as
// well as colour, and carries a text summary for screen readers.

import uPlot from "/vendor/uPlot.esm.js";
import { h } from "../dom.js";

const HEIGHT = 190;
const STYLESHEET = "/vendor/uPlot.min.css";

/** uPlot's own styles (legend, axes), linked once by whichever page draws a chart. */
function linkStyles() {
  if (document.querySelector(`link[href="${STYLESHEET}"]`)) return;
  document.head.append(h("link", { rel: "stylesheet", href: STYLESHEET }));
}
const AXIS = { stroke: "#a9b0bd", grid: { stroke: "#2a2f3a", width: 1 }, ticks: { stroke: "#2a2f3a", width: 1 } };
export const PALETTE = [
  { stroke: "#7c9cff", dash: undefined },
  { stroke: "#3ecf8e", dash: [6, 4] },
];

/**
 * A chart in `root` over time (x in Unix seconds): `series` is
 * `[{label, scale?, values?}]` (a second scale gets its own axis on the
 * right, `values` formats its ticks); the x axis shows at least `span`
 * seconds (plus `pad` after the newest). `update(data, summary)` takes uPlot's
 * aligned data `[xs, ys1, ys2...]` and a sentence for people who do not see
 * the chart.
 */
export function lineChart(root, { title, series, scales = {}, span = 120, pad = 0 }) {
  linkStyles();
  const box = h("div", { class: "chart-box", role: "img", "aria-label": `${title}: no data yet` });
  const figure = h("figure", { class: "chart" }, h("figcaption", {}, title), box);
  root.append(figure);
  // x ticks at least 64 px apart: their two-line labels (time, then date) never overlap.
  const axes = [{ ...AXIS, space: 64 }, { ...AXIS, scale: "y" }];
  for (const s of series) {
    if (s.scale && s.scale !== "y") axes.push({ ...AXIS, scale: s.scale, side: 1, grid: { show: false }, ...(s.values ? { values: s.values } : {}) });
  }
  const lines = series.map((s, i) => ({ label: s.label, scale: s.scale || "y", width: 2, spanGaps: true, points: { show: true, size: 5 }, ...PALETTE[i % PALETTE.length] }));
  const opts = {
    width: Math.max(240, root.clientWidth || 320),
    height: HEIGHT,
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(4, Math.ceil((max || 0) * 1.15))] }, ...scales },
    axes,
    series: [{ label: "Time" }, ...lines],
    legend: { live: false },
    cursor: { drag: { x: false, y: false } },
  };
  const plot = new uPlot(opts, [[], ...series.map(() => [])], box);
  const resize = () => plot.setSize({ width: Math.max(240, box.clientWidth), height: HEIGHT });
  new ResizeObserver(resize).observe(figure);
  return {
    update(data, summary) {
      plot.setData(data);
      // A few seconds of readings (or one alone) would stretch the axis into
      // milliseconds or years: show at least `span` seconds up to the newest.
      const xs = data[0];
      if (xs.length && xs[xs.length - 1] - xs[0] < span) plot.setScale("x", { min: xs[xs.length - 1] - span, max: xs[xs.length - 1] + pad });
      box.setAttribute("aria-label", `${title}: ${summary}`);
    },
  };
}
