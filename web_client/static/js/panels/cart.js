// The cart drawer: what is held for this buyer and for how long (on the
// server's clock), checkout with the card in the page, then the receipt or
// a clear message when the card is declined (the order stays open for
// another card). An order waiting for payment (after a reload, say) is
// offered to finish or to cancel.

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
  // An order of this buyer that waits for its payment: finish it or let it go.
  const pendingText = h("p", { class: "pending-text" });
  const finish = h("button", { type: "button", class: "primary finish-button" }, "Finish paying");
  const abandon = h("button", { type: "button", class: "secondary cancel-order" }, "Cancel order");
  const pendingBox = h(
    "div",
    { class: "pending-order stack", role: "region", "aria-label": "Order waiting for payment", hidden: true },
    pendingText,
    h("div", { class: "row" }, finish, abandon),
  );
  // What the order needs besides the card: an email for the receipt and, when
  // an item ships, an address (asked only then; the server refuses a shipped
  // order without one and says so).
  const detail = (id, label, attrs) => [h("label", { for: id }, label), h("input", { id, name: id, ...attrs })];
  const [emailLabel, email] = detail("buyer-email", "Email for the receipt (optional)", { type: "email", autocomplete: "email", maxlength: 254 });
  const address = [
    detail("ship-name", "Ship to (full name)", { autocomplete: "name", maxlength: 100 }),
    detail("ship-line1", "Street address", { autocomplete: "address-line1", maxlength: 200 }),
    detail("ship-line2", "Address line 2 (optional)", { autocomplete: "address-line2", maxlength: 200 }),
    detail("ship-city", "City", { autocomplete: "address-level2", maxlength: 100 }),
    detail("ship-postal", "Postal code", { autocomplete: "postal-code", maxlength: 20 }),
    detail("ship-country", "Country code (2 letters, e.g. FR)", { autocomplete: "country", maxlength: 2 }),
  ];
  const [shipName, line1, line2, city, postal, country] = address.map(([, input]) => input);
  const shipBox = h("fieldset", { class: "stack ship-to", hidden: true }, h("legend", {}, "Shipping"), ...address.flat());
  const buyerDetails = () => {
    const d = {};
    if (email.value.trim()) d.email = email.value.trim();
    if (!shipBox.hidden) {
      d.shipping = { name: shipName.value, line1: line1.value, city: city.value, postal_code: postal.value, country: country.value };
      if (line2.value.trim()) d.shipping.line2 = line2.value;
    }
    return d;
  };
  const detailsBox = h("div", { class: "stack buyer-details" }, emailLabel, email, shipBox);
  const cartView = h("div", { class: "stack" }, pendingBox, empty, lines, total, hold, detailsBox, checkout);

  const amount = h("p", { class: "pay-amount" });
  const cardBox = h("div", { id: "card-element", class: "card-element" });
  const pay = h("button", { type: "button", class: "primary pay-button" }, "Pay");
  const payStatus = h("p", { class: "pay-status", role: "status", "aria-live": "polite" });
  const payError = h("p", { class: "pay-error", role: "alert" });
  const orderHold = h("p", { class: "hold", role: "timer", "aria-live": "off" });
  // After a declined order: put its items back in the cart and check out again.
  const retry = h("button", { type: "button", class: "retry-button", hidden: true }, "Try another card");
  const payCancel = h("button", { type: "button", class: "secondary cancel-order" }, "Cancel order");
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
    payCancel,
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

  const waiting = () => [...store.state.orders.values()].find((o) => o.status === "pending");
  const renderPending = () => {
    const p = waiting();
    pendingBox.hidden = !p;
    if (p) setText(pendingText, `Your order of ${formatMoney(p.total, p.currency)} is waiting for its payment.`);
    const n = Number(count.textContent) || 0;
    empty.hidden = n > 0 || Boolean(p);
    toggle.classList.toggle("has-pending", Boolean(p));
    const items = `Cart, ${n} ${n === 1 ? "item" : "items"}`;
    toggle.setAttribute("aria-label", p ? `${items}, an order waits for payment` : items);
  };

  store.on("cart", (state) => {
    const cart = state.cart || { lines: [] };
    const n = cart.lines.reduce((sum, line) => sum + line.qty, 0);
    setText(count, String(n));
    empty.hidden = n > 0 || Boolean(waiting());
    checkout.hidden = n === 0;
    detailsBox.hidden = n === 0;
    Promise.all(cart.lines.map((l) => productOf(l.product_id))).then((products) => {
      shipBox.hidden = !products.some((p) => p?.kind === "physical");
    });
    setText(total, n ? `Total ${formatMoney(cart.total, cart.currency)}` : "");
    keyedList(lines, cart.lines, (l) => l.line_id, (l) => cartLine(l, store, conn), (el, l) => updateLine(el, l, cart.currency));
    renderPending();
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

  const startCheckout = async () => {
    checkout.disabled = finish.disabled = true;
    const answer = await conn.call("checkout:start", buyerDetails());
    checkout.disabled = finish.disabled = false;
    if (!answer.ok) return toast(errorText(answer), "error");
    if (answer.order) store.apply("order:updated", { order: answer.order });
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
  };
  checkout.addEventListener("click", startCheckout);
  finish.addEventListener("click", startCheckout);

  const cancelOrder = async () => {
    const target = order?.status === "pending" ? order : waiting();
    if (!target) return;
    abandon.disabled = payCancel.disabled = true;
    const answer = await conn.call("order:cancel", { order_id: target.id });
    abandon.disabled = payCancel.disabled = false;
    if (!answer.ok) return toast(errorText(answer), "error");
    store.apply("order:updated", { order: answer.order });
    showView("cart");
    announce("Order cancelled; its items went back on sale.");
  };
  abandon.addEventListener("click", cancelOrder);
  payCancel.addEventListener("click", cancelOrder);

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
    if (answer.order) store.apply("order:updated", { order: answer.order });
    if (answer.status === "requires_payment_method") {
      fail(answer.order?.status === "failed" ? failureText(answer.order) : DECLINED);
      if (answer.order?.status === "pending") setText(payStatus, attemptsText(answer.order));
      return;
    }
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
    renderPending();
    if (!update || !order || update.id !== order.id) return;
    order = update;
    payCancel.hidden = update.status !== "pending";
    if (update.status === "paid") {
      renderReceipt(receipt, update, () => {
        showView("cart");
        shut();
      });
      showView("receipt");
      receipt.focus();
      announce("Payment received. Your receipt is shown.");
    } else if (update.status === "failed" || update.status === "refunded") {
      if (update.reason === "canceled_by_buyer") return showView("cart");
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

function attemptsText(order) {
  const n = order.attempts_left;
  if (n === undefined || n === null) return "";
  const until = order.hold_until ? `, until ${formatClock(order.hold_until)}` : "";
  return `${n} ${n === 1 ? "attempt" : "attempts"} left${until}.`;
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
