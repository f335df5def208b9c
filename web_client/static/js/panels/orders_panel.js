// The room's orders for its staff: filter by status, read who bought what
// (the buyer's name, and their email when the server gives it: to the
// room's owner, so a creator in their own room asks with their account), page back through older ones, and download the list as
// CSV. Refreshes itself when an
// order changes in the room.

import { h, keyedList, setText, toast, announce } from "../dom.js";
import { formatMoney } from "../format.js";
import { getJson, download, roomPath, whenText, ownerFirst } from "./api.js";

const STATUSES = [
  ["", "All orders"],
  ["paid", "Paid"],
  ["pending", "Pending"],
  ["failed", "Failed"],
  ["refunded", "Refunded"],
];
const REFRESH_DELAY_MS = 600;

function itemsText(order) {
  const lines = Array.isArray(order.lines) ? order.lines : [];
  return lines.map((l) => `${l.qty ?? 1} × ${l.title || l.product_id || "item"}`).join(", ") || "–";
}

function row() {
  return h(
    "tr",
    { class: "order-row" },
    h("td", { class: "order-when" }),
    h("th", { scope: "row", class: "order-buyer" }, h("span", { class: "buyer-name" }), h("span", { class: "buyer-email muted" })),
    h("td", { class: "order-items" }),
    h("td", { class: "num order-total" }),
    h("td", { class: "order-status" }, h("span", { class: "badge status-badge" })),
    h("td", { class: "order-id muted" }),
  );
}

function updateRow(el, order) {
  const buyer = order.buyer || {};
  setText(el.querySelector(".order-when"), whenText(order.paid_at ?? order.created_at ?? order.updated_at));
  setText(el.querySelector(".buyer-name"), buyer.name || buyer.identity || "–");
  setText(el.querySelector(".buyer-email"), buyer.email || order.email || "");
  setText(el.querySelector(".order-items"), itemsText(order));
  setText(el.querySelector(".order-total"), formatMoney(order.total, order.currency) || "–");
  setText(el.querySelector(".status-badge"), order.status || "–");
  el.dataset.status = order.status || "";
  setText(el.querySelector(".order-id"), order.id);
}

export function mountOrders(root, { room, store, tokenOf: roomToken }) {
  const tokenOf = ownerFirst(roomToken);
  const filter = h("select", { id: "orders-status", name: "status" }, STATUSES.map(([value, label]) => h("option", { value }, label)));
  const refresh = h("button", { type: "button", class: "secondary" }, "Refresh");
  const csv = h("button", { type: "button" }, "Download CSV");
  const summary = h("p", { class: "muted orders-summary", role: "status" }, "Loading orders…");
  const table = h(
    "table",
    { class: "data-table orders-table", hidden: true },
    h("caption", { class: "visually-hidden" }, "Orders in this room"),
    h("thead", {}, h("tr", {}, ["When", "Buyer", "Items", "Total", "Status", "Order"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}),
  );
  root.append(
    h("div", { class: "row orders-tools" }, h("label", { for: "orders-status" }, "Show"), filter, refresh, csv),
    summary,
    h("div", { class: "table-wrap" }, table),
  );

  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Show older orders");
  root.append(more);
  let shown = [];
  let next = null;
  let asked = 0;
  // `before`: the cursor of the page to continue (null: the newest page again).
  const load = async (before = null) => {
    const mine = ++asked;
    try {
      const body = await getJson(roomPath(room, "/orders", { status: filter.value, before }), tokenOf());
      if (mine !== asked) return;
      const page = Array.isArray(body.orders) ? body.orders : [];
      shown = before ? [...shown, ...page.filter((o) => !shown.some((s) => s.id === o.id))] : page;
      next = body.next || null;
      keyedList(table.tBodies[0], shown, (o) => o.id, row, updateRow);
      table.hidden = shown.length === 0;
      more.hidden = !next;
      const which = filter.value ? `${filter.value} ` : "";
      setText(summary, shown.length ? `${shown.length} ${which}order${shown.length === 1 ? "" : "s"}${next ? " (newest first; older ones below)" : ""}` : `No ${which}orders yet.`);
    } catch (err) {
      if (mine === asked) setText(summary, `Could not load the orders: ${err.message}`);
    }
  };
  more.addEventListener("click", () => next && load(next));
  let timer = null;
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(() => load(), REFRESH_DELAY_MS);
  };
  filter.addEventListener("change", () => load());
  refresh.addEventListener("click", () => load());
  csv.addEventListener("click", async () => {
    csv.disabled = true;
    try {
      const name = await download(roomPath(room, "/orders", { status: filter.value, format: "csv" }), tokenOf(), `orders-${room}.csv`);
      announce(`Saved ${name}`);
    } catch (err) {
      toast(`Could not download the orders: ${err.message}`, "error");
    } finally {
      csv.disabled = false;
    }
  });
  store.on(["orderFeed", "orders"], (state, order) => order && soon());
  load();
  return { load };
}
