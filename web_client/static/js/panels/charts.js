// Line charts for the dashboard, drawn by uPlot (npm `uplot`, served from
// /vendor/). Each chart keeps its box's size (no layout jump as data comes
// in), follows its container's width, tells series apart by dash pattern as
// well as colour, and carries a text summary for screen readers.

import uPlot from "/vendor/uPlot.esm.js";
import { h } from "../dom.js";

const HEIGHT = 190;
const AXIS = { stroke: "#a9b0bd", grid: { stroke: "#2a2f3a", width: 1 }, ticks: { stroke: "#2a2f3a", width: 1 } };
export const PALETTE = [
  { stroke: "#7c9cff", dash: undefined },
  { stroke: "#3ecf8e", dash: [6, 4] },
];

/**
 * A chart in `root`: `series` is `[{label, scale?}]`; `time` says whether x
 * is Unix seconds (else the minute of the event). `update(data, summary)`
 * takes uPlot's aligned data `[xs, ys1, ys2...]` and a sentence for people
 * who do not see the chart.
 */
export function lineChart(root, { title, series, time = true, xLabel, scales = {} }) {
  const box = h("div", { class: "chart-box", role: "img", "aria-label": `${title}: no data yet` });
  const figure = h("figure", { class: "chart" }, h("figcaption", {}, title), box);
  root.append(figure);
  const opts = {
    width: Math.max(240, box.clientWidth || root.clientWidth || 320),
    height: HEIGHT,
    scales: { x: { time }, ...scales },
    axes: [
      { ...AXIS, label: xLabel, labelSize: xLabel ? 20 : 0 },
      { ...AXIS, scale: series[0].scale || "y" },
      ...series.slice(1).filter((s) => s.scale && s.scale !== (series[0].scale || "y")).map((s) => ({ ...AXIS, scale: s.scale, side: 1, grid: { show: false }, values: s.values })),
    ],
    series: [{ label: time ? "Time" : xLabel }, ...series.map((s, i) => ({ label: s.label, scale: s.scale || "y", width: 2, spanGaps: true, points: { show: false }, ...PALETTE[i % PALETTE.length], value: s.value }))],
    legend: { live: false },
    cursor: { drag: { x: false, y: false } },
  };
  let plot = null;
  const empty = [[], ...series.map(() => [])];
  plot = new uPlot(opts, empty, box);
  const resize = () => plot.setSize({ width: Math.max(240, box.clientWidth), height: HEIGHT });
  new ResizeObserver(resize).observe(figure);
  return {
    update(data, summary) {
      plot.setData(data);
      box.setAttribute("aria-label", `${title}: ${summary}`);
    },
  };
}
