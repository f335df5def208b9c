// The event's numbers as a person reads them: turns a `stats:updated`
// payload (or the report, whose live part it is) into labelled tiles, drop
// rows and per-minute series. Pure: no DOM, no network. A missing or odd
// field shows "–" and never breaks the page (the payload may grow, and older
// servers send less).

import { formatMoney } from "../format.js";
import { num, ratioText, msText, secondsText } from "./api.js";

const DASH = "–";

const obj = (value) => (value && typeof value === "object" && !Array.isArray(value) ? value : {});
const list = (value) => (Array.isArray(value) ? value : []);
const count = (value) => (num(value) === null ? DASH : Math.round(value).toLocaleString());
const first = (...values) => values.find((v) => num(v) !== null) ?? null;
const last = (values) => (values.length ? values[values.length - 1] : null);

/** Revenue per currency in minor units, biggest first: `["$4.99", "¥500"]`. */
export function revenueParts(revenue) {
  return Object.entries(obj(revenue))
    .filter(([currency, minor]) => currency && num(minor) !== null)
    .sort((a, b) => b[1] - a[1])
    .map(([currency, minor]) => formatMoney(minor, currency));
}

/** "$4.99 · ¥500", or "–" with none. */
export function revenueText(revenue) {
  const parts = revenueParts(revenue);
  return parts.length ? parts.join(" · ") : DASH;
}

/**
 * One minute of the event: `{t, orders, conversion, joins, listeners}`
 * (`t` the minute's start in Unix seconds, else its index; missing figures
 * null). The report gives `{t, listeners, buyers, rate}`; plain numbers
 * are read as that minute's conversion.
 */
export function minutes(stats) {
  const conversion = obj(stats?.conversion);
  return list(conversion.per_minute).map((item, i) => {
    if (num(item) !== null) return { t: i, conversion: item, orders: null, joins: null, listeners: null };
    const m = obj(item);
    return {
      t: first(m.t, m.at, m.minute, m.start) ?? i,
      conversion: first(m.conversion, m.rate, m.value),
      orders: first(m.buyers, m.orders, m.paid),
      joins: first(m.joins),
      listeners: first(m.listeners),
    };
  });
}

/** Listeners connected now (the live count, else the audio's). */
export function listenersNow(stats) {
  const listeners = obj(stats?.listeners);
  return first(listeners.now, listeners.current, obj(stats?.audio).listeners_connected);
}

/**
 * Joins in the current minute. `joins_per_minute` is a list of `{t, n}`
 * (minutes with none left out), or a plain number from other servers.
 */
export function joinsPerMinute(stats) {
  const joins = stats?.joins_per_minute;
  if (num(joins) !== null) return joins;
  const items = list(joins).filter((m) => num(m?.t) !== null);
  if (!items.length) return Array.isArray(joins) ? 0 : null;
  const newest = items[items.length - 1];
  const at = num(stats?.at);
  if (at !== null && newest.t < Math.floor(at / 60) * 60) return 0;
  return first(newest.n, newest.joins) ?? 0;
}

/** Audio health in words (never colour alone): good, fair or poor, from packet loss. */
export function audioHealth(audio) {
  const a = obj(audio);
  const loss = first(a.packet_loss, a.loss, a.loss_ratio);
  const connected = first(a.listeners_connected, a.connected, a.listeners, a.peers);
  const level = loss === null ? null : loss < 0.02 ? "good" : loss < 0.05 ? "fair" : "poor";
  const words = { good: "Good", fair: "Fair", poor: "Poor" };
  const detail = [connected === null ? null : `${count(connected)} connected`, loss === null ? null : `${ratioText(loss)} loss`];
  return { level, value: level ? words[level] : DASH, detail: detail.filter(Boolean).join(" · ") || "no audio figures yet" };
}

/** The tiles, in reading order: `{key, label, value, detail, level?}`. */
export function tiles(stats) {
  const s = obj(stats);
  const listeners = obj(s.listeners);
  const orders = obj(s.orders);
  const conversion = obj(s.conversion);
  const delivery = obj(s.delivery_ms);
  const perMinute = last(minutes(s));
  const refunded = num(orders.refunded);
  const health = audioHealth(s.audio);
  // The tile holds the biggest currency; the others go underneath (no jump, nothing cut).
  const [mainRevenue, ...otherRevenue] = revenueParts(s.revenue);
  return [
    { key: "listeners", label: "Listeners now", value: count(listenersNow(s)), detail: `peak ${count(listeners.peak)}` },
    { key: "peak", label: "Peak listeners", value: count(listeners.peak), detail: `${count(listeners.unique)} unique` },
    { key: "joins", label: "Joins per minute", value: count(joinsPerMinute(s)), detail: "this minute" },
    { key: "orders", label: "Orders", value: count(orders.paid), detail: `${count(orders.failed)} failed · ${count(orders.refunded)} refunded` },
    { key: "revenue", label: "Revenue", value: mainRevenue || DASH, detail: otherRevenue.length ? `+ ${otherRevenue.join(" · ")}` : "from paid orders" },
    { key: "conversion", label: "Conversion per minute", value: ratioText(perMinute?.conversion), detail: `overall ${ratioText(conversion.overall)}` },
    { key: "refunds", label: "Refund rate", value: ratioText(s.refund_rate), detail: refunded === null ? "of paid orders" : `${count(refunded)} refunded` },
    { key: "p95", label: "Delivery p95", value: msText(delivery.p95), detail: `median ${msText(delivery.p50)}` },
    { key: "p99", label: "Delivery p99", value: msText(delivery.p99), detail: "slowest 1%" },
    { key: "audio", label: "Audio health", value: health.value, detail: health.detail, level: health.level },
  ];
}

/** Sell-through per drop: `{id, product_id, sold, stock, ratio, text, soldOut}`. */
export function dropRows(stats) {
  return list(obj(stats).drops)
    .filter((d) => d && d.id !== undefined)
    .map((d) => {
      const sold = num(d.sold);
      const stock = num(d.stock);
      const ratio = first(d.sell_through, sold !== null && stock ? sold / stock : null);
      return {
        id: String(d.id),
        product_id: d.product_id || null,
        sold: count(sold),
        stock: count(stock),
        ratio,
        sellThrough: ratioText(ratio),
        isSoldOut: num(d.sold_out_after_s) !== null,
        soldOut: num(d.sold_out_after_s) === null ? "not sold out" : `sold out after ${secondsText(d.sold_out_after_s)}`,
      };
    });
}
