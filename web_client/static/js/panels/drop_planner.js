// Drops in the host console: a product chosen from the list, a start at a
// date and time picked in this browser's zone (`datetime-local` -> unix
// seconds), a length, stock and limits; each drop shows what is left, what
// is reserved (`held`: in carts or awaiting payment) and what is sold, with
// the live stock and order feeds. Restock is the host's alone.

import { h, keyedList, setText, toast, announce } from "../dom.js";
import { formatMoney, formatCountdown, formatClock } from "../format.js";
import { product as productOf } from "../products.js";
import { roleCan } from "../token.js";
import { errorText } from "../connection.js";
import { productSelect } from "./product_picker.js";
import { zoneName, localInputToUnix, unixToLocalInput, formatWhen } from "../studio/when.js";

function field(id, label, attrs) {
  return [h("label", { for: id }, label), h("input", { id, name: id, ...attrs })];
}

/** "12 left · 3 reserved · 5 sold" (v1 drops without held/sold: what is gone). */
export function dropCounts(d) {
  if (typeof d.held !== "number" || typeof d.sold !== "number") return `${d.remaining} of ${d.stock} left · ${d.stock - d.remaining} reserved or sold`;
  return `${d.remaining} of ${d.stock} left · ${d.held} reserved · ${d.sold} sold`;
}

export function mountDropPlanner(root, ctx) {
  const { store, conn, role } = ctx;
  const host = roleCan(role, "host");
  const zone = zoneName();
  const picker = productSelect("drop-product", "Product for the drop", ctx, "drops");
  const [sl, startsAt] = field("drop-starts-at", `Starts at (${zone})`, { type: "datetime-local", step: 1, required: true });
  const [dl, duration] = field("drop-duration", "Lasts (minutes)", { type: "number", min: 1, value: 30, required: true, inputmode: "numeric" });
  const [kl, stock] = field("drop-stock", "Stock", { type: "number", min: 1, value: 50, required: true, inputmode: "numeric" });
  const [ll, limit] = field("drop-limit", "Per-person limit (optional)", { type: "number", min: 1, inputmode: "numeric" });
  const accountOnly = h("input", { type: "checkbox", id: "drop-account" });
  const al = h("label", { for: "drop-account" }, accountOnly, " Signed-in buyers only");
  const when = h("p", { class: "muted hint", id: "drop-when", "aria-live": "polite" });
  startsAt.setAttribute("aria-describedby", when.id);
  const form = h("form", { class: "stack tool", "aria-label": "Schedule a drop" }, picker.wrap, sl, startsAt, when, dl, duration, kl, stock, ll, limit, al, h("button", { type: "submit" }, "Schedule drop"));
  // Start from a few minutes ahead on the server's clock, to the minute.
  const suggest = () => unixToLocalInput(Math.ceil((store.clock.now() + 300) / 60) * 60);
  startsAt.value = suggest();
  const sayWhen = () => {
    const at = localInputToUnix(startsAt.value);
    setText(when, at === null ? "" : at <= store.clock.now() ? "That moment has passed: the drop starts at once." : `Starts in ${formatCountdown(at - store.clock.now())} (${formatWhen(at)})`);
  };
  startsAt.addEventListener("input", sayWhen);
  store.clock.onTick(sayWhen);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!picker.value()) return toast("Choose a product for the drop.", "error");
    const at = localInputToUnix(startsAt.value);
    if (at === null) return toast("Pick the date and time the drop starts.", "error");
    const start = Math.max(at, store.clock.now());
    const payload = { product_id: picker.value(), starts_at: start, ends_at: start + Number(duration.value) * 60, stock: Number(stock.value) };
    if (limit.value) payload.per_buyer_limit = Number(limit.value);
    if (accountOnly.checked) payload.requires_account = true;
    const answer = await conn.call("drop:schedule", payload);
    if (!answer.ok) return toast(errorText(answer), "error");
    store.apply("drop:updated", { drop: answer.drop });
    announce(`Drop scheduled for ${formatWhen(answer.drop.starts_at)}`);
    startsAt.value = suggest();
    sayWhen();
  });

  const list = h("ul", { class: "drop-list compact" });
  const feed = h("ol", { class: "sales-feed", "aria-live": "polite", "aria-label": "Stock changes" });
  const orders = h("ol", { class: "sales-feed", "aria-live": "polite", "aria-label": "Orders" });
  root.append(form, h("h3", {}, "Drops"), list, h("h3", {}, "Live stock"), feed, h("h3", {}, "Orders"), orders);
  store.on("orderFeed", (state, order) => order && feedOrder(orders, order, store.clock.now()));
  const last = new Map();
  store.on("drops", (state, changed) => {
    const drops = [...state.drops.values()].sort((a, b) => a.starts_at - b.starts_at);
    keyedList(list, drops, (d) => d.id, (d) => dropRow(d, conn, host), (el, d) => updateDropRow(el, d, store.clock.now()));
    if (changed && last.has(changed.id) && last.get(changed.id) !== dropCounts(changed)) {
      feed.prepend(h("li", {}, `${formatClock(store.clock.now())} · ${dropCounts(changed)}`));
      while (feed.children.length > 50) feed.lastElementChild.remove();
    }
    for (const d of state.drops.values()) last.set(d.id, dropCounts(d));
  });
  store.clock.onTick((now) => {
    for (const el of list.children) {
      const d = store.state.drops.get(el.dataset.key);
      if (d) tickRow(el, d, now);
    }
  });
  return picker;
}

function feedOrder(orders, order, now) {
  const items = order.lines.map((l) => `${l.qty} × ${l.title}`).join(", ");
  const ships = order.shipping ? ` · ships to ${order.shipping.name} (${order.shipping.country})` : "";
  const row = h("li", { "data-key": order.id }, `${formatClock(now)} · ${order.buyer} · ${items} · ${formatMoney(order.total, order.currency)} · ${order.status}${ships}`);
  orders.querySelector(`[data-key="${CSS.escape(order.id)}"]`)?.remove();
  orders.prepend(row);
  while (orders.children.length > 50) orders.lastElementChild.remove();
}

function dropRow(drop, conn, host) {
  const el = h(
    "li",
    { class: "drop-row card" },
    h("p", { class: "row spread" }, h("strong", { class: "product-title" }, drop.product_id), h("span", { class: "badge drop-state" })),
    h("p", { class: "drop-when muted" }),
    h("p", { class: "drop-stock drop-counts" }, h("span", { class: "price" }), h("span", { class: "left" }), h("span", { class: "held" }), h("span", { class: "sold" })),
    h("p", { class: "countdown muted" }),
    host ? restockForm(drop, conn) : null,
  );
  productOf(drop.product_id).then((p) => p && setText(el.querySelector(".product-title"), p.title));
  return el;
}

function restockForm(drop, conn) {
  const id = `restock-${drop.id}`;
  const input = h("input", { id, type: "number", min: 1, value: 10, inputmode: "numeric", required: true });
  const form = h("form", { class: "inline-form" }, h("label", { for: id }, "Add stock"), input, h("button", { type: "submit" }, "Restock"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const answer = await conn.call("drop:restock", { drop_id: drop.id, add: Number(input.value) });
    if (!answer.ok) return toast(errorText(answer), "error");
    announce(`Restocked: ${answer.drop.remaining} left`);
  });
  return form;
}

function updateDropRow(el, d, now) {
  setText(el.querySelector(".drop-state"), d.state.replace("_", " "));
  el.dataset.state = d.state;
  setText(el.querySelector(".drop-when"), `${formatWhen(d.starts_at)} – ${new Date(d.ends_at * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`);
  setText(el.querySelector(".price"), formatMoney(d.price, d.currency));
  setText(el.querySelector(".left"), `${d.remaining} of ${d.stock} left`);
  const counted = typeof d.held === "number" && typeof d.sold === "number";
  setText(el.querySelector(".held"), counted ? `${d.held} reserved` : `${d.stock - d.remaining} reserved or sold`);
  setText(el.querySelector(".sold"), counted ? `${d.sold} sold` : "");
  el.querySelector(".sold").hidden = !counted;
  tickRow(el, d, now);
}

function tickRow(el, d, now) {
  const text = d.state === "scheduled" ? `Starts in ${formatCountdown(d.starts_at - now)}` : d.state === "live" ? `Ends in ${formatCountdown(d.ends_at - now)}` : "";
  setText(el.querySelector(".countdown"), text);
}
