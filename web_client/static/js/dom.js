// Tiny DOM helpers: build elements, update keyed lists in place (so focus
// and scroll survive live updates), and speak to assistive technology.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "style" && typeof value === "object") {
      Object.assign(el.style, value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function setText(el, text) {
  const value = String(text);
  if (el.textContent !== value) el.textContent = value;
}

export function show(el, visible) {
  el.hidden = !visible;
}

/**
 * Make `container`'s children match `items`, one element per key, reusing the
 * elements already there: `create(item)` makes a new one, `update(el, item)`
 * refreshes it. Order follows `items`.
 */
export function keyedList(container, items, keyOf, create, update) {
  const existing = new Map();
  for (const child of container.children) existing.set(child.dataset.key, child);
  let cursor = container.firstElementChild;
  for (const item of items) {
    const key = String(keyOf(item));
    let el = existing.get(key);
    if (el) {
      existing.delete(key);
    } else {
      el = create(item);
      el.dataset.key = key;
    }
    update(el, item);
    if (el !== cursor) container.insertBefore(el, cursor);
    else cursor = cursor.nextElementSibling;
  }
  for (const el of existing.values()) el.remove();
}

let announcer = null;

/** Say `message` through a polite live region (screen readers). */
export function announce(message) {
  if (!announcer) {
    announcer = h("div", { class: "visually-hidden", "aria-live": "polite", role: "status" });
    document.body.append(announcer);
  }
  announcer.textContent = "";
  setTimeout(() => {
    announcer.textContent = message;
  }, 30);
}

/** Show a short message in the page's toast area (and announce it). */
export function toast(message, kind = "info") {
  let area = document.getElementById("toasts");
  if (!area) {
    area = h("div", { id: "toasts", class: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(area);
  }
  const item = h("p", { class: `toast toast-${kind}` }, message);
  area.append(item);
  setTimeout(() => item.remove(), 6000);
}

/**
 * Ask a yes/no question in a modal <dialog> (focus moves into it, Escape
 * cancels, focus returns); resolves to true when `ok` was chosen.
 */
export function confirmDialog(message, { ok = "OK", cancel = "Cancel" } = {}) {
  const before = document.activeElement;
  const yes = h("button", { type: "button", class: "primary", value: "ok" }, ok);
  const no = h("button", { type: "button", class: "secondary", value: "cancel" }, cancel);
  const text = h("p", { id: "confirm-text", class: "confirm-text" }, message);
  const dialog = h("dialog", { class: "confirm", "aria-labelledby": "confirm-text" }, text, h("div", { class: "row" }, yes, no));
  document.body.append(dialog);
  return new Promise((resolve) => {
    const done = (answer) => {
      dialog.close();
      dialog.remove();
      if (before instanceof HTMLElement) before.focus();
      resolve(answer);
    };
    yes.addEventListener("click", () => done(true));
    no.addEventListener("click", () => done(false));
    dialog.addEventListener("cancel", (ev) => {
      ev.preventDefault();
      done(false);
    });
    dialog.showModal();
    yes.focus();
  });
}
