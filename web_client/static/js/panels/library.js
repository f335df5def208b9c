// "My orders" and "My purchases": the buyer's own lists from the server
// (`GET /api/v1/me/orders`, `GET /api/v1/me/library`), so they survive
// reloads and other devices. Used in the room (with the room token: an
// account's or a guest's) and on /me (with the account token).

import { h, keyedList, setText } from "../dom.js";
import { formatMoney } from "../format.js";
import { myLibrary, myOrders } from "../account.js";
import { deviceButtons } from "../downloads.js";

const STATUS = { pending: "waiting for payment", paid: "paid", failed: "not paid", refunded: "refunded" };

function when(seconds) {
  if (!seconds) return "";
  return new Date(seconds * 1000).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

/** A token the server does not hand buyers' lists to (an invitation minted by an admin). */
function notABuyer(err, empty) {
  if (err.status !== 401 && err.status !== 403) return false;
  setText(empty, "Sign in to keep your orders and purchases here.");
  empty.hidden = false;
  return true;
}

export function orderSummary(order) {
  const items = (order.lines || []).map((l) => `${l.qty} × ${l.title || l.product_id}`).join(", ");
  return `${items} · ${formatMoney(order.total, order.currency)} · ${STATUS[order.status] || order.status}`;
}

export function mountOrders(root, { tokenOf }) {
  const list = h("ul", { class: "order-list", "aria-label": "Your orders" });
  const empty = h("p", { class: "muted" }, "No orders yet.");
  const error = h("p", { class: "error", "aria-live": "assertive" });
  root.append(empty, list, error);
  const load = async () => {
    try {
      const orders = await myOrders(tokenOf());
      setText(error, "");
      empty.hidden = orders.length > 0;
      keyedList(
        list,
        orders,
        (o) => o.id,
        () => h("li", { class: "order card" }, h("p", { class: "order-summary" }), h("p", { class: "order-meta muted" })),
        (el, o) => {
          el.dataset.status = o.status;
          setText(el.querySelector(".order-summary"), orderSummary(o));
          const ship = o.shipping ? ` · ships to ${o.shipping.city}, ${o.shipping.country}` : "";
          setText(el.querySelector(".order-meta"), `Order ${o.id}${o.created_at ? " · " + when(o.created_at) : ""}${ship}`);
        },
      );
    } catch (err) {
      if (notABuyer(err, empty)) return;
      setText(error, `Could not load your orders: ${err.message}`);
    }
  };
  load();
  return { reload: load };
}

export function mountLibrary(root, { tokenOf, nowS = () => Date.now() / 1000 }) {
  const list = h("ul", { class: "library-list", "aria-label": "Your purchases" });
  const empty = h("p", { class: "muted" }, "Nothing here yet: what you buy to download shows here.");
  const error = h("p", { class: "error", "aria-live": "assertive" });
  root.append(empty, list, error);
  let items = [];
  const fetchItems = async () => {
    items = await myLibrary(tokenOf());
    return items;
  };
  // Fresh links for every product (the library mints new ones each time).
  const refresh = async () => {
    try {
      await fetchItems();
      render();
    } catch (err) {
      setText(error, `Could not load your purchases: ${err.message}`);
    }
    return items.flatMap((i) => i.downloads || []);
  };
  const render = () => {
    setText(error, "");
    empty.hidden = items.length > 0;
    keyedList(
      list,
      items,
      (i) => `${i.order_id}:${i.product?.id}`,
      () => h("li", { class: "purchase card stack" }, h("h3", { class: "purchase-title" }), h("p", { class: "purchase-meta muted" }), h("div", { class: "purchase-downloads" })),
      (el, i) => {
        const title = i.product?.title || i.product?.id || "Purchase";
        setText(el.querySelector(".purchase-title"), title);
        const audio = i.product?.audio;
        const facts = audio?.duration_s ? ` · ${audio.duration_s.toFixed(1)} s` : "";
        setText(el.querySelector(".purchase-meta"), `Bought ${when(i.granted_at)}${facts}`);
        const buttons = deviceButtons(i.product?.id, title, i.downloads, { nowS, refresh });
        el.querySelector(".purchase-downloads").replaceChildren(buttons || h("p", { class: "muted" }, "No files to download."));
      },
    );
  };
  const load = async () => {
    try {
      await fetchItems();
      render();
    } catch (err) {
      if (notABuyer(err, empty)) return;
      setText(error, `Could not load your purchases: ${err.message}`);
    }
  };
  load();
  return { reload: load, refresh };
}
