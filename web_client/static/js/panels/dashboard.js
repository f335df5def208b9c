// The host's live dashboard: tiles (listeners, joins, orders, revenue,
// conversion, refunds, delivery, audio health), sell-through per drop and
// two charts, refreshed by every `stats:updated` (every 2 s while the room is
// live). A staff member's `room:state` carries the numbers so far, so it
// starts filled (and after the event shows the totals, the listeners chart
// then drawn from the report's minutes). Tiles keep their size while numbers change; each one is a labelled
// group, so the figures read the same with or without colour.

import { h, keyedList, setText, announce } from "../dom.js";
import { product as productOf } from "../products.js";
import { num } from "./api.js";
import { tiles, dropRows, minutes, listenersNow, joinsPerMinute } from "./stats_view.js";
import { lineChart } from "./charts.js";

export const STATS_EVENT = "stats:updated";
const HISTORY_KEEP = 1800; // ticks kept for the listeners chart (an hour at 2 s)

function tile(t) {
  const id = `tile-${t.key}`;
  return h(
    "div",
    { class: "tile", role: "group", "aria-labelledby": id, dataset: { tile: t.key } },
    h("span", { id, class: "tile-label" }, t.label),
    h("span", { class: "tile-value" }),
    h("span", { class: "tile-detail muted" }),
  );
}

function updateTile(el, t) {
  setText(el.querySelector(".tile-value"), t.value);
  setText(el.querySelector(".tile-detail"), t.detail);
  if (t.level) el.dataset.level = t.level;
  else delete el.dataset.level;
}

function dropRow() {
  return h(
    "tr",
    {},
    h("th", { scope: "row", class: "drop-name" }),
    h("td", { class: "num drop-sold" }),
    h("td", { class: "drop-through" }, h("span", { class: "through" }, h("span", { class: "bar", "aria-hidden": "true" }, h("span", { class: "bar-fill" })), h("span", { class: "num through-text" }))),
    h("td", { class: "drop-out" }),
  );
}

function updateDropRow(el, d) {
  const name = el.querySelector(".drop-name");
  if (!name.textContent) setText(name, d.product_id || d.id);
  if (d.product_id && !el.dataset.titled) {
    el.dataset.titled = "1";
    productOf(d.product_id).then((p) => p && setText(name, p.title));
  }
  setText(el.querySelector(".drop-sold"), `${d.sold} of ${d.stock}`);
  setText(el.querySelector(".through-text"), d.sellThrough);
  el.querySelector(".bar-fill").style.width = `${Math.min(100, Math.max(0, (d.ratio || 0) * 100))}%`;
  setText(el.querySelector(".drop-out"), d.soldOut);
}

/** Without live readings (after the event): the most listeners and the joins of each minute. */
function listenersPerMinute(stats) {
  const joins = new Map((Array.isArray(stats?.joins_per_minute) ? stats.joins_per_minute : []).map((m) => [m?.t, num(m?.n)]));
  const ms = minutes(stats).filter((m) => m.t > 1e9);
  return [ms.map((m) => m.t), ms.map((m) => m.listeners), ms.map((m) => joins.get(m.t) ?? 0)];
}

/**
 * Orders paid and conversion (%) per minute, x the minute's start: the
 * server's minutes, else minutes counted here from the ticks' totals.
 */
function perMinuteData(stats, history) {
  const server = minutes(stats).filter((m) => m.t > 1e9 && (m.orders !== null || m.conversion !== null));
  if (server.length) return [server.map((m) => m.t), server.map((m) => m.orders), server.map((m) => (m.conversion === null ? null : m.conversion * 100))];
  const buckets = new Map();
  let before = history[0]?.paid ?? 0;
  for (const tick of history) {
    const minute = Math.floor(tick.t / 60) * 60;
    const b = buckets.get(minute) || { orders: 0, conversion: null };
    if (tick.paid !== null) {
      b.orders += Math.max(0, tick.paid - before);
      before = tick.paid;
    }
    if (tick.conversion !== null) b.conversion = tick.conversion * 100;
    buckets.set(minute, b);
  }
  const xs = [...buckets.keys()];
  return [xs, xs.map((m) => buckets.get(m).orders), xs.map((m) => buckets.get(m).conversion)];
}

export function mountDashboard(root, { store, conn }) {
  // Not a live region: it changes every 2 s and would keep talking over the host.
  const status = h("p", { class: "dash-status muted" }, "Waiting for the first numbers (they come every 2 seconds while the room is live).");
  const grid = h("div", { class: "tiles" });
  const dropsTable = h(
    "table",
    { class: "data-table drops-table" },
    h("caption", {}, "Sell-through per drop"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Drop"), h("th", { scope: "col" }, "Sold"), h("th", { scope: "col" }, "Sell-through"), h("th", { scope: "col" }, "Time to sell out"))),
    h("tbody", {}),
  );
  const noDrops = h("p", { class: "muted no-drops" }, "No drops yet.");
  const charts = h("div", { class: "charts" });
  root.append(status, grid, h("div", { class: "table-wrap" }, dropsTable), noDrops, charts);
  const listenersChart = lineChart(charts, { title: "Listeners over time", series: [{ label: "Listeners" }, { label: "Joins per minute" }] });
  const minuteChart = lineChart(charts, {
    title: "Orders and conversion per minute",
    span: 300,
    pad: 60,
    series: [{ label: "Orders" }, { label: "Conversion %", scale: "pct", values: (u, ticks) => ticks.map((v) => `${v}%`) }],
    scales: { pct: { range: (u, min, max) => [0, Math.max(5, Math.ceil(max || 0))] } },
  });
  const history = [];
  // Drops seen sold out; one that sells out while the page watches is said aloud once.
  let soldOut = null;
  const sayWhatSoldOut = (drops) => {
    if (!soldOut && !drops.length) return; // the baseline is the first list of drops
    const now = drops.filter((d) => d.isSoldOut);
    const fresh = soldOut ? now.filter((d) => !soldOut.has(d.id)) : [];
    soldOut = new Set([...(soldOut || []), ...now.map((d) => d.id)]);
    const name = (d) => dropsTable.querySelector(`tr[data-key="${CSS.escape(d.id)}"] .drop-name`)?.textContent || d.id;
    if (fresh.length) announce(fresh.map((d) => `${name(d)} ${d.soldOut}`).join(". "));
  };

  const render = (stats, live) => {
    const all = tiles(stats);
    keyedList(grid, all, (t) => t.key, tile, updateTile);
    const drops = dropRows(stats);
    keyedList(dropsTable.tBodies[0], drops, (d) => d.id, dropRow, updateDropRow);
    sayWhatSoldOut(drops);
    dropsTable.hidden = drops.length === 0;
    noDrops.hidden = drops.length > 0;
    if (live) {
      const t = num(stats?.at) ?? num(stats?.server_time) ?? store.clock.now();
      const conversion = minutes(stats).at(-1)?.conversion ?? null;
      history.push({ t, listeners: listenersNow(stats), joins: joinsPerMinute(stats), paid: num(stats?.orders?.paid), conversion });
      if (history.length > HISTORY_KEEP) history.splice(0, history.length - HISTORY_KEEP);
      setText(status, `Live · updated ${new Date(t * 1000).toLocaleTimeString()}`);
    }
    const now = history.at(-1);
    if (history.length) {
      listenersChart.update([history.map((x) => x.t), history.map((x) => x.listeners), history.map((x) => x.joins)], `${now.listeners ?? "unknown"} listeners now, ${history.length} readings`);
    } else {
      const past = listenersPerMinute(stats);
      listenersChart.update(past, past[0].length ? `the most listeners per minute, ${past[0].length} minutes` : "no readings yet");
    }
    const perMinute = perMinuteData(stats, history);
    const orders = perMinute[1].reduce((a, b) => a + (b || 0), 0);
    minuteChart.update(perMinute, perMinute[0].length ? `${perMinute[0].length} minutes, ${orders} orders` : "no minutes yet");
    root.dataset.updates = String(Number(root.dataset.updates || 0) + 1);
  };

  render({}, false);
  conn.on(STATS_EVENT, (stats) => render(stats || {}, true));
  // A staff member's snapshot carries the numbers so far: the dashboard starts
  // filled, during the event and after it.
  conn.on("room:state", (snapshot) => {
    if (!snapshot?.stats) return;
    const live = Boolean(snapshot.room?.live);
    render(snapshot.stats, live);
    if (!live) setText(status, "The room is not live: these are the event's totals.");
  });
  return { render };
}
