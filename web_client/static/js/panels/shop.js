// The shop as listeners see it: pinned slots (product, price, stock left)
// and drops (a countdown on the server's clock, then a buy button while live,
// "sold out" the moment it is, or "all reserved" while units are only held
// and may come back).

import { h, keyedList, setText, toast, announce } from "../dom.js";
import { formatMoney, formatCountdown, spokenDuration } from "../format.js";
import { product as productOf, remember } from "../products.js";
import { errorText } from "../connection.js";
import { syncPreview, lightTone } from "./tones.js";
import { syncImage } from "./product_image.js";

/**
 * The one-click button of a card, for a signed-in buyer with a saved card
 * (`state.oneClick`): `buyNow(target, facts)` asks for confirmation naming
 * the amount, then emits `buy:now`.
 */
function oneClickButton(buyNow, targetOf) {
  const button = h("button", { type: "button", class: "one-click secondary", hidden: true }, "1-click buy");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await buyNow(...targetOf(button));
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

/** One click needs nothing more than the saved card: not for items that ship (the cart asks the address). */
function syncOneClick(el, show, title, kind) {
  const button = el.querySelector(".one-click");
  if (!button) return;
  button.hidden = !show || kind === "physical";
  button.setAttribute("aria-label", `Buy ${title} now with your saved card`);
}

export const ALL_RESERVED = "All reserved, units may come back";

export function stockText(remaining, held = 0) {
  if (remaining === null || remaining === undefined) return "";
  if (remaining === 0) return held > 0 ? "0 left" : "Sold out";
  return `${remaining} left`;
}

export function mountSlots(root, { store, conn, onAdded, buyNow }) {
  const list = h("ul", { class: "slot-list" });
  const empty = h("p", { class: "muted" }, "Nothing pinned right now.");
  root.append(empty, list);
  store.on(["slots", "products", "oneClick"], (state) => {
    const slots = [...state.slots.values()].filter((s) => s.product).sort((a, b) => a.slot - b.slot);
    empty.hidden = slots.length > 0;
    keyedList(list, slots, (s) => s.slot, (s) => slotCard(s, conn, onAdded, buyNow), (el, s) => updateSlot(el, s, state));
    lightTone(list, state.tone, store.clock.now());
  });
  store.on("tone", (state) => lightTone(list, state.tone, store.clock.now()));
  store.clock.onTick((now) => lightTone(list, store.state.tone, now));
}

function slotCard(slot, conn, onAdded, buyNow) {
  const add = h("button", { type: "button", class: "add-to-cart primary" }, "Add to cart");
  add.addEventListener("click", async () => {
    const id = add.closest("[data-product]").dataset.product;
    const answer = await conn.call("cart:add", { product_id: id, qty: 1 });
    if (!answer.ok) return toast(errorText(answer), "error");
    announce("Added to your cart");
    onAdded?.(answer.cart);
  });
  const quick = buyNow
    ? oneClickButton(buyNow, (b) => {
        const p = JSON.parse(b.closest("[data-product]").dataset.facts);
        return [{ product_id: p.id }, p];
      })
    : null;
  return h(
    "li",
    { class: "slot card" },
    h("p", { class: "slot-number muted" }),
    h("h3", { class: "product-title" }),
    h("p", { class: "slot-note" }),
    h("p", { class: "row spread" }, h("span", { class: "price" }), h("span", { class: "stock" })),
    h("div", { class: "row card-actions" }, add, quick),
  );
}

function updateSlot(el, slot, state) {
  // What `product:updated` said last (its sound, say) beats the slot's copy.
  const p = { ...slot.product, ...state.products.get(String(slot.product.id)) };
  remember(p);
  el.dataset.facts = JSON.stringify({ id: p.id, title: p.title, price: p.price, currency: p.currency });
  el.dataset.product = p.id;
  setText(el.querySelector(".slot-number"), `Slot ${slot.slot}`);
  setText(el.querySelector(".product-title"), p.title);
  setText(el.querySelector(".slot-note"), slot.note || "");
  setText(el.querySelector(".price"), formatMoney(p.price, p.currency));
  setText(el.querySelector(".stock"), stockText(slot.remaining));
  const soldOut = slot.remaining === 0;
  el.classList.toggle("sold-out", soldOut);
  const add = el.querySelector(".add-to-cart");
  add.disabled = soldOut;
  setText(add, soldOut ? "Sold out" : "Add to cart");
  add.setAttribute("aria-label", soldOut ? `${p.title}: sold out` : `Add ${p.title} to cart`);
  syncOneClick(el, state.oneClick && !soldOut, p.title, p.kind);
  syncPreview(el, p);
  syncImage(el, p);
}

const DROP_ORDER = { live: 0, scheduled: 1, sold_out: 2, ended: 3 };

export function visibleDrops(state) {
  return [...state.drops.values()]
    .filter((d) => d.state !== "ended")
    .sort((a, b) => DROP_ORDER[a.state] - DROP_ORDER[b.state] || a.starts_at - b.starts_at);
}

export function mountDrops(root, { store, conn, onAdded, buyNow }) {
  const list = h("ul", { class: "drop-list" });
  const empty = h("p", { class: "muted" }, "No drops scheduled.");
  root.append(empty, list);
  const render = (state) => {
    const drops = visibleDrops(state);
    empty.hidden = drops.length > 0;
    keyedList(list, drops, (d) => d.id, (d) => dropCard(d, conn, onAdded, buyNow, store), (el, d) => updateDrop(el, d, store.clock.now(), state));
    lightTone(list, state.tone, store.clock.now());
  };
  store.on(["drops", "products", "oneClick"], render);
  store.on("tone", (state) => lightTone(list, state.tone, store.clock.now()));
  store.clock.onTick((now) => {
    for (const el of list.children) {
      const drop = store.state.drops.get(el.dataset.key);
      if (drop) tickDrop(el, drop, now);
    }
    lightTone(list, store.state.tone, now);
  });
}

function dropCard(drop, conn, onAdded, buyNow, store) {
  const buy = h("button", { type: "button", class: "buy primary" }, "Buy now");
  buy.addEventListener("click", async () => {
    buy.disabled = true;
    const answer = await conn.call("cart:add", { drop_id: drop.id, qty: 1 });
    buy.disabled = false;
    if (!answer.ok) return toast(errorText(answer), "error");
    announce("Reserved: it is in your cart");
    onAdded?.(answer.cart);
  });
  const quick = buyNow
    ? oneClickButton(buyNow, () => {
        const d = store.state.drops.get(String(drop.id)) || drop;
        return [{ drop_id: drop.id }, { title: el.querySelector(".product-title").textContent, price: d.price, currency: d.currency }];
      })
    : null;
  const el = h(
    "li",
    { class: "drop card", dataset: { product: drop.product_id } },
    h("p", { class: "badge drop-badge" }),
    h("h3", { class: "product-title" }, "Drop"),
    h("p", { class: "row spread" }, h("span", { class: "price" }), h("span", { class: "stock", "aria-live": "polite" })),
    h("p", { class: "countdown", "aria-live": "off" }),
    h("p", { class: "sold-out-note", role: "status" }),
    h("p", { class: "account-note muted" }),
    h("div", { class: "row card-actions" }, buy, quick),
  );
  productOf(drop.product_id).then((p) => {
    if (!p) return;
    setText(el.querySelector(".product-title"), p.title);
    const latest = store.state.drops.get(String(drop.id)) || drop;
    updateDrop(el, latest, store.clock.now(), store.state);
  });
  return el;
}

function updateDrop(el, drop, now, state) {
  el.dataset.state = drop.state;
  setText(el.querySelector(".price"), formatMoney(drop.price, drop.currency));
  setText(el.querySelector(".stock"), drop.state === "scheduled" ? `${drop.stock} available` : stockText(drop.remaining, drop.held));
  const soldOut = drop.state === "sold_out" || (drop.state === "live" && drop.remaining === 0);
  const reserved = soldOut && drop.held > 0;
  setText(el.querySelector(".sold-out-note"), reserved ? ALL_RESERVED : soldOut ? "Sold out" : "");
  el.classList.toggle("sold-out", soldOut && !reserved);
  el.classList.toggle("reserved", reserved);
  // A scarce drop may be for signed-in buyers only (the server refuses guests).
  const accountOnly = Boolean(drop.requires_account) && !state.signedIn;
  setText(el.querySelector(".account-note"), drop.requires_account ? (accountOnly ? "Signed-in buyers only: sign in to buy." : "Signed-in buyers only.") : "");
  const buyable = drop.state === "live" && !soldOut && !accountOnly;
  el.querySelector(".buy").hidden = !buyable;
  const title = el.querySelector(".product-title").textContent;
  syncOneClick(el, false, title);
  const known = state.products.get(String(drop.product_id));
  productOf(drop.product_id).then((p) => {
    if (!p) return;
    syncOneClick(el, state.oneClick && buyable, title, p.kind);
    syncPreview(el, { ...p, ...known });
    syncImage(el, { ...p, ...known });
  });
  const limit = drop.per_buyer_limit ? ` · limit ${drop.per_buyer_limit} per person` : "";
  setText(el.querySelector(".drop-badge"), { live: "Live drop", scheduled: "Upcoming drop", sold_out: "Drop", ended: "Ended" }[drop.state] + limit);
  tickDrop(el, drop, now);
}

function tickDrop(el, drop, now) {
  const countdown = el.querySelector(".countdown");
  if (drop.state === "scheduled") {
    const left = drop.starts_at - now;
    setText(countdown, left > 0 ? `Starts in ${formatCountdown(left)}` : "Starting…");
    countdown.setAttribute("aria-label", `Starts in ${spokenDuration(left)}`);
  } else if (drop.state === "live") {
    setText(countdown, `Ends in ${formatCountdown(drop.ends_at - now)}`);
    countdown.removeAttribute("aria-label");
  } else {
    setText(countdown, "");
  }
}
