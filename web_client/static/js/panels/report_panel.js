// The event's report for its host: the figures (`GET .../report`) in words,
// sell-through per drop, the CSV, and the report's chart image to download
// or share. The image is fetched with the token and shown from a Blob.

import { h, keyedList, setText, toast, announce } from "../dom.js";
import { apiGet, getJson, download, saveBlob, roomPath, ratioText, msText, num } from "./api.js";
import { revenueText, dropRows } from "./stats_view.js";

const obj = (value) => (value && typeof value === "object" ? value : {});
const count = (value) => (num(value) === null ? "–" : Math.round(value).toLocaleString());

/** The report's figures as `[label, text]` pairs, in reading order. */
export function reportFacts(report) {
  const r = obj(report);
  const listeners = obj(r.listeners);
  const orders = obj(r.orders);
  const delivery = obj(r.delivery_ms);
  return [
    ["Peak listeners", count(listeners.peak)],
    ["Unique listeners", count(listeners.unique)],
    ["Paid orders", count(orders.paid)],
    ["Failed orders", count(orders.failed)],
    ["Refunded orders", count(orders.refunded)],
    ["Revenue", revenueText(r.revenue)],
    ["Conversion", ratioText(obj(r.conversion).overall)],
    ["Refund rate", ratioText(r.refund_rate)],
    ["Delivery p50 / p95 / p99", [delivery.p50, delivery.p95, delivery.p99].map(msText).join(" / ")],
  ];
}

function fact([label]) {
  return h("div", { class: "fact" }, h("dt", {}, label), h("dd", {}));
}

function drop() {
  return h("li", { class: "report-drop" });
}

function mountImage(root, { room, tokenOf }) {
  const img = h("img", { class: "report-image", alt: "", width: 1200, height: 630 });
  const note = h("p", { class: "muted" }, "");
  const save = h("button", { type: "button", class: "secondary" }, "Download image");
  const share = h("button", { type: "button", class: "secondary", hidden: true }, "Share image");
  const figure = h("figure", { class: "report-figure", hidden: true }, img, h("figcaption", {}, note));
  root.append(figure, h("div", { class: "row" }, save, share));
  let blob = null;
  let url = null;
  const fileName = `report-${room}.png`;
  const load = async (altText) => {
    try {
      blob = await (await apiGet(roomPath(room, "/report.png"), tokenOf())).blob();
      if (url) URL.revokeObjectURL(url);
      url = URL.createObjectURL(blob);
      img.src = url;
      img.alt = altText;
      img.hidden = false;
      figure.hidden = false;
      setText(note, "The report as an image, to share.");
      const file = new File([blob], fileName, { type: "image/png" });
      share.hidden = !(navigator.canShare && navigator.canShare({ files: [file] }));
    } catch (err) {
      setText(note, `No image: ${err.message}`);
      img.hidden = !blob;
      figure.hidden = false;
    }
  };
  save.addEventListener("click", () => (blob ? saveBlob(blob, fileName) : toast("The image is not ready yet.", "error")));
  share.addEventListener("click", async () => {
    try {
      await navigator.share({ files: [new File([blob], fileName, { type: "image/png" })], title: "Event report" });
    } catch (err) {
      if (err.name !== "AbortError") toast(`Could not share: ${err.message}`, "error");
    }
  });
  return { load };
}

export function mountReport(root, { room, tokenOf }) {
  const status = h("p", { class: "muted", role: "status" }, "Loading the report…");
  const facts = h("dl", { class: "facts" });
  const drops = h("ul", { class: "report-drops" });
  const refresh = h("button", { type: "button", class: "secondary" }, "Refresh report");
  const csv = h("button", { type: "button" }, "Download report CSV");
  const text = h("div", { class: "report-text" }, status, facts, h("h3", {}, "Drops"), drops, h("div", { class: "row" }, refresh, csv));
  const art = h("div", { class: "report-art" });
  root.append(h("div", { class: "report-body" }, text, art));
  const image = mountImage(art, { room, tokenOf });

  const load = async () => {
    try {
      const report = await getJson(roomPath(room, "/report"), tokenOf());
      const pairs = reportFacts(report);
      keyedList(facts, pairs, ([label]) => label, fact, (el, [, text]) => setText(el.querySelector("dd"), text));
      const rows = dropRows(report);
      keyedList(drops, rows, (d) => d.id, drop, (el, d) => setText(el, `${d.product_id || d.id}: ${d.sold} of ${d.stock} sold (${d.sellThrough}), ${d.soldOut}`));
      if (!rows.length) drops.replaceChildren(h("li", { class: "muted" }, "No drops."));
      setText(status, "The event's figures so far (buyers' emails are never in the report).");
      image.load(`Event report: ${pairs.map(([l, t]) => `${l} ${t}`).join(", ")}`);
    } catch (err) {
      setText(status, `Could not load the report: ${err.message}`);
    }
  };
  refresh.addEventListener("click", load);
  csv.addEventListener("click", async () => {
    try {
      announce(`Saved ${await download(roomPath(room, "/report", { format: "csv" }), tokenOf(), `report-${room}.csv`)}`);
    } catch (err) {
      toast(`Could not download the report: ${err.message}`, "error");
    }
  });
  load();
  return { load };
}
