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
import { CheckoutDetails } from "./details.js";
import { deviceButtons } from "../downloads.js";
import { myLibrary } from "../account.js";

/**
 * `signedIn`: the buyer is an account (offer to save the card; no email
 * asked). `onPaid(order)`: an order of this buyer was paid (lists to reload).
 */
export function mountCart(toggleRoot, drawer, { store, conn, tokenOf, signedIn = false, onPaid = () => {} }) {
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
  const cartView = h("div", { class: "stack" }, pendingBox, empty, lines, total, hold, checkout);

  const amount = h("p", { class: "pay-amount" });
  const details = new CheckoutDetails();
  const next = h("button", { type: "button", class: "primary continue-button" }, "Continue to payment");
  const detailsStep = h("div", { class: "stack" }, details.root, next);
  const cardBox = h("div", { id: "card-element", class: "card-element" });
  const pay = h("button", { type: "button", class: "primary pay-button" }, "Pay");
  const cardStep = h("div", { class: "stack" }, h("label", { id: "card-label" }, "Card details"), cardBox, signedIn ? details.saveBox : null, pay);
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
    detailsStep,
    cardStep,
    payStatus,
    payError,
    retry,
    payCancel,
  );
  // One-click (`buy:now`): no form, the saved card pays; 3-D Secure still in the page.
  const quickStatus = h("p", { class: "quick-status", role: "status", "aria-live": "polite" });
  const quickError = h("p", { class: "pay-error", role: "alert" });
  const quickView = h("div", { class: "stack", hidden: true }, h("h3", {}, "Buying with your saved card"), quickStatus, quickError);
  const receipt = h("div", { class: "receipt stack", hidden: true, tabindex: "-1" });
  drawer.append(h("div", { class: "drawer-head row spread" }, title, close), cartView, payView, quickView, receipt);
  cardBox.setAttribute("aria-labelledby", "card-label");

  const cardForm = new CardForm();
  let order = null; // the order being paid, as last heard
  let fields = {}; // email, shipping: sent with every checkout:start of this order
  let quick = false; // the order is paid by one click

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
    quickView.hidden = view !== "quick";
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

  /** Does the cart hold a physical item (then the order needs an address)? */
  const cartIsPhysical = async () => {
    const lines = store.state.cart?.lines || [];
    const products = await Promise.all(lines.map((l) => productOf(l.product_id)));
    return products.some((p) => p?.kind === "physical");
  };

  // Checkout: first what the order needs (email for guests, address for
  // physical items), then the card. A resumed order has them already.
  const startCheckout = async (ev) => {
    quick = false;
    const resume = ev?.currentTarget === finish;
    fields = {};
    details.clearErrors();
    const physical = resume ? false : await cartIsPhysical();
    details.configure({ guest: !signedIn && !resume, physical });
    setText(payError, "");
    setText(payStatus, "");
    retry.hidden = true;
    if (details.needsInput) {
      const cart = store.state.cart;
      setText(amount, cart ? `Amount: ${formatMoney(cart.total, cart.currency)}` : "");
      detailsStep.hidden = false;
      cardStep.hidden = true;
      payCancel.hidden = true; // no order yet: nothing to cancel
      showView("pay");
      details.root.querySelector("input:not([type=checkbox]), select")?.focus();
      return;
    }
    await freeze({});
  };

  next.addEventListener("click", async () => {
    const values = details.values();
    if (!values) return;
    await freeze(values);
  });

  const freeze = async (values) => {
    checkout.disabled = finish.disabled = next.disabled = true;
    const answer = await conn.call("checkout:start", values);
    checkout.disabled = finish.disabled = next.disabled = false;
    if (!answer.ok) {
      if (!payView.hidden && details.showError(answer.error)) return;
      if (!payView.hidden) return setText(details.general, errorText(answer));
      return toast(errorText(answer), "error");
    }
    fields = values;
    detailsStep.hidden = true;
    cardStep.hidden = false;
    payCancel.hidden = false;
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
    setText(quick ? quickStatus : payStatus, "");
    setText(quick ? quickError : payError, message);
    pay.disabled = false;
    announce(message);
  };

  /** Follow an order paid by one click (`buy:now`'s answer) to its receipt. */
  const follow = async (answer) => {
    quick = true;
    if (answer.order) store.apply("order:updated", { order: answer.order });
    order = answer.order || { id: answer.order_id, status: "pending", total: answer.amount, currency: answer.currency };
    setText(quickError, "");
    setText(quickStatus, `Paying ${formatMoney(answer.amount ?? order.total, answer.currency ?? order.currency)}…`);
    showView("quick");
    open();
    if (answer.status === "requires_payment_method") {
      return fail(answer.order?.status === "failed" ? failureText(answer.order) : DECLINED);
    }
    if (answer.status === "requires_action") {
      setText(quickStatus, "Your bank wants to confirm it is you…");
      drawer.classList.add("behind");
      try {
        const shop = store.state.shop || {};
        await cardForm.load({ url: shop.stripe_js_url || store.config?.stripe_js_url, publishableKey: answer.publishable_key || shop.publishable_key });
        await cardForm.authenticate(answer.client_secret);
      } catch (err) {
        return fail(err.message);
      } finally {
        drawer.classList.remove("behind");
      }
    }
    setText(quickStatus, "Payment sent; waiting for the confirmation…");
    settle(store.state.orders.get(String(order.id)));
  };

  pay.addEventListener("click", async () => {
    setText(payError, "");
    setText(payStatus, "Paying…");
    pay.disabled = true;
    let method;
    let save = signedIn && details.saveCard.checked;
    try {
      const reusable = save ? await cardForm.reusableMethod() : null;
      save = Boolean(reusable);
      method = reusable || (await cardForm.paymentMethod());
    } catch (err) {
      return fail(err.message);
    }
    if (signedIn && details.saveCard.checked && !save) toast("This payment setup cannot save cards: paying without saving it.");
    const answer = await conn.call("checkout:start", { ...fields, payment_method: method, ...(save ? { save_card: true } : {}) });
    if (!answer.ok) return fail(errorText(answer));
    if (save && answer.saved_card) store.set("oneClick", { oneClick: true });
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
      const links = {
        nowS: () => store.clock.now(),
        refresh: async () => (await myLibrary(tokenOf())).flatMap((i) => i.downloads || []),
      };
      renderReceipt(receipt, update, links, () => {
        showView("cart");
        shut();
      });
      onPaid(update);
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
    follow,
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

/** Download buttons per device for each digital line of a paid order. */
function receiptDownloads(r, lines, links) {
  const downloads = r.downloads || [];
  const ids = [...new Set(downloads.map((d) => d.product_id))];
  if (!ids.length) return null;
  return h(
    "div",
    { class: "receipt-downloads stack" },
    h("h4", {}, "Your downloads"),
    ids.map((id) => {
      const line = (lines || []).find((l) => l.product_id === id);
      const title = line?.title || id;
      return h("div", { class: "stack" }, h("p", { class: "download-title" }, title), deviceButtons(id, title, downloads, links));
    }),
    h("p", { class: "muted" }, "The links work for a few minutes; “My purchases” always has fresh ones."),
  );
}

function shippingText(s) {
  return [s.name, s.line1, s.line2, `${s.postal_code} ${s.city}`, s.country].filter(Boolean).join(", ");
}

function renderReceipt(root, order, links, done) {
  const r = order.receipt || { lines: order.lines, total: order.total, currency: order.currency, order_id: order.id };
  const shipping = r.shipping || order.shipping;
  const email = r.email || order.email;
  const parts = [
    h("h3", {}, "Thank you! Payment received"),
    h("p", {}, `Receipt for order ${r.order_id || order.id}`),
    h(
      "ul",
      { class: "receipt-lines" },
      (r.lines || []).map((l) => h("li", { class: "row spread" }, h("span", {}, `${l.qty} × ${l.title || l.product_id}`), h("span", {}, formatMoney(l.amount ?? l.unit_price * l.qty, r.currency)))),
    ),
    h("p", { class: "receipt-total" }, `Paid ${formatMoney(r.total, r.currency)}`),
    r.payment_ref ? h("p", { class: "muted" }, `Payment reference ${r.payment_ref}`) : null,
    shipping ? h("p", { class: "receipt-shipping" }, `Ships to ${shippingText(shipping)}`) : null,
    email ? h("p", { class: "muted" }, `A copy goes to ${email}.`) : null,
    receiptDownloads(r, order.lines || r.lines, links),
    h("button", { type: "button", class: "secondary", onclick: done }, "Back to the room"),
  ];
  root.replaceChildren(...parts.filter(Boolean));
}
