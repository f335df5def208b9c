// The cart drawer: what is held for this buyer and for how long (on the
// server's clock), checkout with the card in the page, then the receipt or
// a clear message when the card is declined.

import { h, keyedList, setText, toast, announce } from "../dom.js";
import { formatMoney, formatCountdown, spokenDuration, formatClock } from "../format.js";
import { product as productOf } from "../products.js";
import { errorText } from "../connection.js";
import { CardForm, DECLINED, failureText } from "../checkout.js";

export function mountCart(toggleRoot, drawer, { store, conn }) {
  const count = h("span", { class: "cart-count" }, "0");
  const toggle = h(
    "button",
    { type: "button", class: "cart-toggle", "aria-controls": "cart-drawer", "aria-expanded": "false" },
    "Cart ",
    count,
  );
  toggleRoot.append(toggle);

  const title = h("h2", { id: "cart-title", tabindex: "-1" }, "Your cart");
  const close = h("button", { type: "button", class: "icon-button", "aria-label": "Close cart" }, "✕");
  const lines = h("ul", { class: "cart-lines", "aria-label": "Items in your cart" });
  const empty = h("p", { class: "muted cart-empty" }, "Your cart is empty.");
  const hold = h("p", { class: "hold", role: "timer", "aria-live": "off" });
  const total = h("p", { class: "cart-total" });
  const checkout = h("button", { type: "button", class: "primary checkout-button" }, "Checkout");
  const cartView = h("div", { class: "stack" }, empty, lines, total, hold, checkout);

  const amount = h("p", { class: "pay-amount" });
  const cardBox = h("div", { id: "card-element", class: "card-element" });
  const pay = h("button", { type: "button", class: "primary pay-button" }, "Pay");
  const payStatus = h("p", { class: "pay-status", role: "status", "aria-live": "polite" });
  const payError = h("p", { class: "pay-error", role: "alert" });
  const orderHold = h("p", { class: "hold", role: "timer", "aria-live": "off" });
  // After a declined order: put its items back in the cart and check out again.
  const retry = h("button", { type: "button", class: "retry-button", hidden: true }, "Try another card");
  const payView = h(
    "div",
    { class: "stack", hidden: true },
    h("h3", {}, "Pay"),
    amount,
    orderHold,
    h("label", { id: "card-label" }, "Card details"),
    cardBox,
    pay,
    payStatus,
    payError,
    retry,
  );
  const receipt = h("div", { class: "receipt stack", hidden: true, tabindex: "-1" });
  drawer.append(h("div", { class: "drawer-head row spread" }, title, close), cartView, payView, receipt);
  cardBox.setAttribute("aria-labelledby", "card-label");

  const cardForm = new CardForm();
  let order = null; // the order being paid, as last heard

  const open = () => {
    drawer.hidden = false;
    drawer.classList.add("open");
    toggle.setAttribute("aria-expanded", "true");
    title.focus();
  };
  const shut = () => {
    drawer.classList.remove("open");
    drawer.hidden = true;
    toggle.setAttribute("aria-expanded", "false");
    toggle.focus();
  };
  toggle.addEventListener("click", () => (drawer.hidden ? open() : shut()));
  close.addEventListener("click", shut);
  drawer.addEventListener("keydown", (ev) => ev.key === "Escape" && shut());

  const showView = (view) => {
    cartView.hidden = view !== "cart";
    payView.hidden = view !== "pay";
    receipt.hidden = view !== "receipt";
  };

  store.on("cart", (state) => {
    const cart = state.cart || { lines: [] };
    const n = cart.lines.reduce((sum, line) => sum + line.qty, 0);
    setText(count, String(n));
    toggle.setAttribute("aria-label", `Cart, ${n} ${n === 1 ? "item" : "items"}`);
    empty.hidden = n > 0;
    checkout.hidden = n === 0;
    setText(total, n ? `Total ${formatMoney(cart.total, cart.currency)}` : "");
    keyedList(lines, cart.lines, (l) => l.line_id, (l) => cartLine(l, store, conn), (el, l) => updateLine(el, l, cart.currency));
  });

  store.clock.onTick((now) => {
    const cart = store.state.cart;
    if (cart?.lines?.length && cart.expires_at) {
      const left = cart.expires_at - now;
      setText(hold, left > 0 ? `Held for you for ${formatCountdown(left)}` : "Your hold has ended.");
      hold.setAttribute("aria-label", `Held for ${spokenDuration(left)}`);
    } else setText(hold, "");
    if (order?.status === "pending" && order.hold_until) {
      setText(orderHold, `Held until ${formatClock(order.hold_until)} (${formatCountdown(order.hold_until - now)} left)`);
    } else setText(orderHold, "");
  });

  checkout.addEventListener("click", async () => {
    checkout.disabled = true;
    const answer = await conn.call("checkout:start", {});
    checkout.disabled = false;
    if (!answer.ok) return toast(errorText(answer), "error");
    order = answer.order || { id: answer.order_id, status: "pending", total: answer.amount, currency: answer.currency };
    setText(amount, `Amount: ${formatMoney(answer.amount, answer.currency)}`);
    setText(pay, `Pay ${formatMoney(answer.amount, answer.currency)}`);
    setText(payError, "");
    setText(payStatus, "");
    pay.disabled = false;
    retry.hidden = true;
    showView("pay");
    try {
      const shop = store.state.shop || {};
      await cardForm.mount(cardBox, {
        url: shop.stripe_js_url || store.config?.stripe_js_url,
        publishableKey: answer.publishable_key || shop.publishable_key,
      });
      // Never pull focus from someone already typing their card.
      if (!cardBox.contains(document.activeElement)) cardBox.querySelector("input")?.focus();
    } catch (err) {
      setText(payError, err.message);
    }
  });

  retry.addEventListener("click", async () => {
    retry.disabled = true;
    const lines = order?.lines || [];
    for (const line of lines) {
      const target = line.drop_id ? { drop_id: line.drop_id } : { product_id: line.product_id };
      const answer = await conn.call("cart:add", { ...target, qty: line.qty });
      if (!answer.ok) {
        retry.disabled = false;
        return fail(errorText(answer));
      }
    }
    retry.disabled = false;
    retry.hidden = true;
    checkout.click();
  });

  const fail = (message) => {
    setText(payStatus, "");
    setText(payError, message);
    pay.disabled = false;
    announce(message);
  };

  pay.addEventListener("click", async () => {
    setText(payError, "");
    setText(payStatus, "Paying…");
    pay.disabled = true;
    let method;
    try {
      method = await cardForm.paymentMethod();
    } catch (err) {
      return fail(err.message);
    }
    const answer = await conn.call("checkout:start", { payment_method: method });
    if (!answer.ok) return fail(errorText(answer));
    if (answer.order) order = answer.order;
    if (answer.status === "requires_payment_method") return fail(DECLINED);
    if (answer.status === "requires_action") {
      setText(payStatus, "Your bank wants to confirm it is you…");
      // The bank's dialog belongs above everything: the drawer steps back.
      drawer.classList.add("behind");
      try {
        await cardForm.authenticate(answer.client_secret);
      } catch (err) {
        return fail(err.message);
      } finally {
        drawer.classList.remove("behind");
      }
    }
    setText(payStatus, "Payment sent; waiting for the confirmation…");
    if (order) settle(store.state.orders.get(order.id));
  });

  const settle = (update) => {
    if (!update || !order || update.id !== order.id) return;
    order = update;
    if (update.status === "paid") {
      renderReceipt(receipt, update, () => {
        showView("cart");
        shut();
      });
      showView("receipt");
      receipt.focus();
      announce("Payment received. Your receipt is shown.");
    } else if (update.status === "failed" || update.status === "refunded") {
      fail(failureText(update));
      pay.disabled = update.status !== "pending";
      retry.hidden = update.reason !== "payment_failed";
    }
  };
  // `update` is null after a snapshot: look our order up (it may have settled meanwhile).
  store.on("orders", (state, update) => settle(update ?? (order && state.orders.get(order.id))));

  // Someone added to the cart: show it, unless a payment is in progress.
  return {
    open: () => {
      if (!order || order.status !== "pending") showView("cart");
      open();
    },
    showCart: () => showView("cart"),
  };
}

function cartLine(line, store, conn) {
  const remove = h("button", { type: "button", class: "secondary remove-line" }, "Remove");
  remove.addEventListener("click", async () => {
    const answer = await conn.call("cart:remove", { line_id: line.line_id });
    if (!answer.ok) return toast(errorText(answer), "error");
    store.apply("cart:updated", { cart: answer.cart });
    announce("Removed from your cart");
  });
  const el = h("li", { class: "cart-line row spread" }, h("span", { class: "line-title" }, line.product_id), h("span", { class: "line-price" }), remove);
  productOf(line.product_id).then((p) => {
    if (!p) return;
    setText(el.querySelector(".line-title"), p.title);
    remove.setAttribute("aria-label", `Remove ${p.title}`);
  });
  return el;
}

function updateLine(el, line, currency) {
  setText(el.querySelector(".line-price"), `${line.qty} × ${formatMoney(line.unit_price, currency)}`);
}

function renderReceipt(root, order, done) {
  const r = order.receipt || { lines: order.lines, total: order.total, currency: order.currency, order_id: order.id };
  root.replaceChildren(
    h("h3", {}, "Thank you! Payment received"),
    h("p", {}, `Receipt for order ${r.order_id || order.id}`),
    h(
      "ul",
      { class: "receipt-lines" },
      (r.lines || []).map((l) => h("li", { class: "row spread" }, h("span", {}, `${l.qty} × ${l.title || l.product_id}`), h("span", {}, formatMoney(l.amount ?? l.unit_price * l.qty, r.currency)))),
    ),
    h("p", { class: "receipt-total" }, `Paid ${formatMoney(r.total, r.currency)}`),
    r.payment_ref ? h("p", { class: "muted" }, `Payment reference ${r.payment_ref}`) : null,
    h("button", { type: "button", class: "secondary", onclick: done }, "Back to the room"),
  );
}
