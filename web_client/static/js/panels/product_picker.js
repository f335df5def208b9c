// The host console's product list: staff pick products by name, never by
// typing ids. What the page can reach is merged: the room owner's products
// (`GET /api/v1/rooms/{room}/products`, any staff token of the room), the
// signed-in creator's own (`?owner=me`, account token), the admin's when
// the console carries the admin key (`#admin=...`), and whatever the room
// already shows (pinned or in a drop).

import { h, setText } from "../dom.js";
import { formatMoney } from "../format.js";
import { product as productOf, remember } from "../products.js";
import { accountToken } from "../account.js";
import { tokenFromFragment } from "../token.js";

async function listOf(path, bearer) {
  if (!bearer) return [];
  try {
    const resp = await fetch(path, { headers: { Authorization: `Bearer ${bearer}` }, cache: "no-store" });
    if (!resp.ok) return [];
    const body = await resp.json();
    return Array.isArray(body.products) ? body.products : [];
  } catch {
    return [];
  }
}

/** Every product this console may offer, by id (later sources refresh earlier ones). */
export async function reachableProducts({ room, store, tokenOf }) {
  const found = new Map();
  const shown = new Set();
  for (const s of store.state.slots.values()) if (s.product) shown.add(s.product.id);
  for (const d of store.state.drops.values()) shown.add(d.product_id);
  const shownProducts = await Promise.all([...shown].map((id) => productOf(id)));
  const lists = await Promise.all([
    listOf(`/api/v1/rooms/${encodeURIComponent(room)}/products`, tokenOf()),
    listOf("/api/v1/products?owner=me", accountToken()),
    listOf("/api/v1/products?owner=me", tokenFromFragment(location.hash, "admin")),
  ]);
  for (const p of [...shownProducts, ...lists.flat()]) {
    if (!p?.id) continue;
    remember(p);
    found.set(p.id, p);
  }
  return found;
}

export function productLabel(p) {
  const stock = p.stock === null || p.stock === undefined ? "" : ` · ${p.remaining ?? p.stock} left`;
  return `${p.title} · ${formatMoney(p.price, p.currency)} · ${p.kind}${stock}`;
}

/**
 * A labelled <select> of products, refreshed on demand (and when the room's
 * slots or drops change); `.value()` is the chosen id.
 */
export function productSelect(id, label, ctx, purpose, keep = () => true) {
  // A list box (several rows shown), so products are read and picked at a glance.
  const select = h("select", { id, name: "product", required: true, size: 2, class: "product-listbox" }, h("option", { value: "", disabled: true }, "Loading products…"));
  const note = h("p", { class: "muted hint picker-note", id: `${id}-note` });
  select.setAttribute("aria-describedby", note.id);
  const refreshButton = h("button", { type: "button", class: "secondary refresh-products" }, "Reload list");
  refreshButton.setAttribute("aria-label", `Reload the list (${purpose})`);
  const wrap = h("div", { class: "stack field product-picker" }, h("div", { class: "row spread" }, h("label", { for: id }, label), refreshButton), select, note);
  // Cumulative: a product seen once (pinned, then unpinned) stays offered.
  const products = new Map();
  const skipped = new Set(); // reachable but not offered here (`keep` said no)
  const refresh = async () => {
    for (const [pid, p] of await reachableProducts(ctx)) {
      if (keep(p)) products.set(pid, p);
      else skipped.add(pid);
    }
    const chosen = select.value;
    const sorted = [...products.values()].sort((a, b) => a.title.localeCompare(b.title));
    select.replaceChildren(...(sorted.length ? sorted.map((p) => h("option", { value: p.id }, productLabel(p))) : [h("option", { value: "", disabled: true }, "No product to choose")]));
    select.size = Math.min(Math.max(sorted.length, 2), 6);
    if (products.has(chosen)) select.value = chosen;
    setText(note, sorted.length ? "" : "No product found for this room: the owner creates them in the creator studio (/studio).");
  };
  refreshButton.addEventListener("click", refresh);
  refresh();
  // The room's snapshot arrives after mount; its slots and drops add products.
  ctx.store.on(["slots", "drops"], (state) => {
    const ids = [...state.slots.values()].map((s) => s.product?.id).concat([...state.drops.values()].map((d) => d.product_id));
    if (ids.some((pid) => pid && !products.has(pid) && !skipped.has(pid))) refresh();
  });
  return { wrap, select, refresh, value: () => select.value, product: () => products.get(select.value) };
}
