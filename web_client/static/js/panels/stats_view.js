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

/** "$4.99 · ¥500": revenue per currency in minor units, biggest first. */
export function revenueText(revenue) {
  const parts = Object.entries(obj(revenue))
    .filter(([currency, minor]) => currency && num(minor) !== null)
    .sort((a, b) => b[1] - a[1])
    .map(([currency, minor]) => formatMoney(minor, currency));
  return parts.length ? parts.join(" · ") : DASH;
}

/**
 * One minute of the event: `{t, orders, conversion, joins, listeners}`
 * (`t` Unix seconds or the minute's index; missing figures null). Minutes
 * may come as plain numbers (the conversion of that minute) or objects.
 */
export function minutes(stats) {
  const conversion = obj(stats?.conversion);
  return list(conversion.per_minute).map((item, i) => {
    if (num(item) !== null) return { t: i, conversion: item, orders: null, joins: null, listeners: null };
    const m = obj(item);
    return {
      t: first(m.t, m.at, m.minute, m.start) ?? i,
      conversion: first(m.conversion, m.rate, m.value),
      orders: first(m.orders, m.paid),
      joins: first(m.joins),
      listeners: first(m.listeners),
    };
  });
}

/** Listeners connected now (the live count, else the audio's). */
export function listenersNow(stats) {
  const listeners = obj(stats?.listeners);
  return first(listeners.now, listeners.current, obj(stats?.audio).listeners, obj(stats?.audio).connected);
}

/** Joins in the last minute, wherever the payload puts them. */
export function joinsPerMinute(stats) {
  const joins = stats?.joins;
  return first(stats?.joins_per_minute, obj(joins).per_minute, obj(joins).last_minute, joins, obj(stats?.listeners).joins_per_minute, last(minutes(stats))?.joins);
}

/** Audio health in words (never colour alone): good, fair or poor, from packet loss. */
export function audioHealth(audio) {
  const a = obj(audio);
  const loss = first(a.packet_loss, a.loss, a.loss_ratio);
  const connected = first(a.connected, a.listeners, a.peers);
  const level = loss === null ? null : loss < 0.02 ? "good" : loss < 0.05 ? "fair" : "poor";
  const words = { good: "Good", fair: "Fair", poor: "Poor" };
  const detail = [connected === null ? null : `${count(connected)} connected`, loss === null ? null : `${ratioText(loss)} packet loss`];
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
  return [
    { key: "listeners", label: "Listeners now", value: count(listenersNow(s)), detail: `peak ${count(listeners.peak)}` },
    { key: "peak", label: "Peak listeners", value: count(listeners.peak), detail: `${count(listeners.unique)} unique` },
    { key: "joins", label: "Joins per minute", value: count(joinsPerMinute(s)), detail: "in the last minute" },
    { key: "orders", label: "Orders", value: count(orders.paid), detail: `${count(orders.failed)} failed · ${count(orders.refunded)} refunded` },
    { key: "revenue", label: "Revenue", value: revenueText(s.revenue), detail: "from paid orders" },
    { key: "conversion", label: "Conversion per minute", value: ratioText(perMinute?.conversion), detail: `overall ${ratioText(conversion.overall)}` },
    { key: "refunds", label: "Refund rate", value: ratioText(s.refund_rate), detail: refunded === null ? "of paid orders" : `${count(refunded)} refunded` },
    { key: "p95", label: "Delivery p95", value: msText(delivery.p95), detail: `median ${msText(delivery.p50)}` },
    { key: "p99", label: "Delivery p99", value: msText(delivery.p99), detail: "slowest 1% of deliveries" },
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
        soldOut: num(d.sold_out_after_s) === null ? "not sold out" : `sold out after ${secondsText(d.sold_out_after_s)}`,
      };
    });
}
