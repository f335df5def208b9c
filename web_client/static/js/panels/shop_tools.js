// The host's shop tools: pin offers into buy slots, schedule and restock
// drops, and watch a drop's stock move as people buy. Only what the role
// allows is shown (restock is the host's alone).

import { h, keyedList, setText, toast, announce } from "../dom.js";
import { formatMoney, formatCountdown, formatClock } from "../format.js";
import { product as productOf } from "../products.js";
import { roleCan } from "../token.js";
import { errorText } from "../connection.js";
import { stockText } from "./shop.js";

const SLOTS = [1, 2, 3, 4];

function field(id, label, attrs) {
  return [h("label", { for: id }, label), h("input", { id, name: id, ...attrs })];
}

export function mountSlotTools(root, { store, conn }) {
  const [slotLabel] = [h("label", { for: "pin-slot" }, "Slot")];
  const slot = h("select", { id: "pin-slot", name: "slot" }, SLOTS.map((n) => h("option", { value: n }, `Slot ${n}`)));
  const [productLabel, product] = field("pin-product", "Product to pin (id)", { required: true, autocomplete: "off" });
  const [noteLabel, note] = field("pin-note", "Note (optional)", { maxlength: 200 });
  const form = h("form", { class: "stack tool", "aria-label": "Pin a product" }, slotLabel, slot, productLabel, product, noteLabel, note, h("button", { type: "submit" }, "Pin"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const payload = { slot: Number(slot.value), product_id: product.value.trim() };
    if (note.value.trim()) payload.note = note.value.trim();
    const answer = await conn.call("slot:pin", payload);
    if (!answer.ok) return toast(errorText(answer), "error");
    store.apply("slot:updated", { slot: answer.slot });
    form.reset();
    announce(`Pinned into slot ${payload.slot}`);
  });
  const list = h("ul", { class: "slot-list compact" });
  root.append(form, h("h3", {}, "Pinned"), list);
  store.on("slots", (state) => {
    const slots = [...state.slots.values()].filter((s) => s.product).sort((a, b) => a.slot - b.slot);
    keyedList(
      list,
      slots,
      (s) => s.slot,
      (s) =>
        h(
          "li",
          { class: "row spread slot-row" },
          h("span", { class: "slot-summary" }),
          h(
            "button",
            {
              type: "button",
              class: "secondary",
              onclick: async () => {
                const answer = await conn.call("slot:unpin", { slot: s.slot });
                if (!answer.ok) return toast(errorText(answer), "error");
                announce(`Slot ${s.slot} cleared`);
              },
            },
            `Unpin slot ${s.slot}`,
          ),
        ),
      (el, s) => {
        const p = s.product;
        const stock = stockText(s.remaining);
        setText(el.querySelector(".slot-summary"), `${s.slot}. ${p.title} · ${formatMoney(p.price, p.currency)}${stock ? " · " + stock : ""}`);
      },
    );
  });
}

export function mountDropTools(root, { store, conn, role }) {
  const host = roleCan(role, "host");
  const [pl, product] = field("drop-product", "Product for the drop (id)", { required: true, autocomplete: "off" });
  const [sl, startsIn] = field("drop-starts", "Starts in (seconds)", { type: "number", min: 0, value: 60, required: true, inputmode: "numeric" });
  const [dl, duration] = field("drop-duration", "Lasts (minutes)", { type: "number", min: 1, value: 30, required: true, inputmode: "numeric" });
  const [kl, stock] = field("drop-stock", "Stock", { type: "number", min: 1, value: 50, required: true, inputmode: "numeric" });
  const [ll, limit] = field("drop-limit", "Per-person limit (optional)", { type: "number", min: 1, inputmode: "numeric" });
  // Scarce drops may require an account: a guest who rejoins is someone new to the limit.
  const accountOnly = h("input", { type: "checkbox", id: "drop-account" });
  const al = h("label", { for: "drop-account" }, accountOnly, " Signed-in buyers only");
  const form = h("form", { class: "stack tool", "aria-label": "Schedule a drop" }, pl, product, sl, startsIn, dl, duration, kl, stock, ll, limit, al, h("button", { type: "submit" }, "Schedule drop"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const startsAt = store.clock.now() + Number(startsIn.value);
    const payload = {
      product_id: product.value.trim(),
      starts_at: startsAt,
      ends_at: startsAt + Number(duration.value) * 60,
      stock: Number(stock.value),
    };
    if (limit.value) payload.per_buyer_limit = Number(limit.value);
    if (accountOnly.checked) payload.requires_account = true;
    const answer = await conn.call("drop:schedule", payload);
    if (!answer.ok) return toast(errorText(answer), "error");
    store.apply("drop:updated", { drop: answer.drop });
    announce("Drop scheduled");
  });
  const list = h("ul", { class: "drop-list compact" });
  const feed = h("ol", { class: "sales-feed", "aria-live": "polite", "aria-label": "Stock changes" });
  const orders = h("ol", { class: "sales-feed", "aria-live": "polite", "aria-label": "Orders" });
  root.append(form, h("h3", {}, "Drops"), list, h("h3", {}, "Live stock"), feed, h("h3", {}, "Orders"), orders);
  store.on("orderFeed", (state, order) => {
    if (!order) return;
    const items = order.lines.map((l) => `${l.qty} × ${l.title}`).join(", ");
    // The feed shows where an order ships as a name and a country only.
    const ships = order.shipping ? ` · ships to ${order.shipping.name} (${order.shipping.country})` : "";
    const row = h("li", { "data-key": order.id },
      `${formatClock(store.clock.now())} · ${order.buyer} · ${items} · ${formatMoney(order.total, order.currency)} · ${order.status}${ships}`);
    orders.querySelector(`[data-key="${CSS.escape(order.id)}"]`)?.remove();
    orders.prepend(row);
    while (orders.children.length > 50) orders.lastElementChild.remove();
  });

  const lastRemaining = new Map();
  store.on("drops", (state, changed) => {
    const drops = [...state.drops.values()].sort((a, b) => a.starts_at - b.starts_at);
    keyedList(list, drops, (d) => d.id, (d) => dropRow(d, conn, host), (el, d) => updateDropRow(el, d, store.clock.now()));
    if (changed && lastRemaining.has(changed.id) && lastRemaining.get(changed.id) !== changed.remaining) {
      const moved = lastRemaining.get(changed.id) - changed.remaining;
      const what = moved > 0 ? `${moved} reserved or sold` : `${-moved} back in stock`;
      feed.prepend(h("li", {}, `${formatClock(store.clock.now())} · ${what} · ${changed.remaining} of ${changed.stock} left`));
      while (feed.children.length > 50) feed.lastElementChild.remove();
    }
    for (const d of state.drops.values()) lastRemaining.set(d.id, d.remaining);
  });
  store.clock.onTick((now) => {
    for (const el of list.children) {
      const d = store.state.drops.get(el.dataset.key);
      if (d) tickRow(el, d, now);
    }
  });
}

function dropRow(drop, conn, host) {
  const restock = host ? restockForm(drop, conn) : null;
  const el = h(
    "li",
    { class: "drop-row card" },
    h("p", { class: "row spread" }, h("strong", { class: "product-title" }, drop.product_id), h("span", { class: "badge drop-state" })),
    h("p", { class: "drop-stock" }),
    h("p", { class: "countdown muted" }),
    restock,
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
  const gone = d.stock - d.remaining;
  setText(el.querySelector(".drop-stock"), `${formatMoney(d.price, d.currency)} · ${d.remaining} of ${d.stock} left · ${gone} reserved or sold`);
  tickRow(el, d, now);
}

function tickRow(el, d, now) {
  const text = d.state === "scheduled" ? `Starts in ${formatCountdown(d.starts_at - now)}` : d.state === "live" ? `Ends in ${formatCountdown(d.ends_at - now)}` : "";
  setText(el.querySelector(".countdown"), text);
}
