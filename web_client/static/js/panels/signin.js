// "Sign in" in the header of the room and the lobby: ask an email, request a
// one-time link (back to this page), say "Check your mail" whatever the
// answer (the server never says whether an account exists). Signed in: the
// account's email, "My account" (/me) and "Sign out".

import { h, setText, announce } from "../dom.js";
import { fetchMe, requestSignIn, signOut } from "../account.js";

export function mountSignIn(root, { account, next = () => location.pathname, onSignedOut = () => location.reload() } = {}) {
  root.replaceChildren();
  if (account) {
    const out = h("button", { type: "button", class: "secondary signout-button" }, "Sign out");
    out.addEventListener("click", async () => {
      out.disabled = true;
      await signOut();
      announce("Signed out");
      onSignedOut();
    });
    root.append(
      h(
        "div",
        { class: "account-box row" },
        h("span", { class: "account-email muted", title: "Signed in" }, account.email || account.name || "Signed in"),
        location.pathname === "/me" ? null : h("a", { href: "/me", class: "account-link" }, "My account"),
        out,
      ),
    );
    return;
  }
  const toggle = h(
    "button",
    { type: "button", class: "secondary signin-toggle", "aria-expanded": "false", "aria-controls": "signin-form" },
    "Sign in",
  );
  const email = h("input", { id: "signin-email", name: "email", type: "email", required: true, autocomplete: "email", maxlength: 254, inputmode: "email" });
  const send = h("button", { type: "submit", class: "primary" }, "Email me a sign-in link");
  const status = h("p", { class: "signin-status", role: "status", "aria-live": "polite" });
  const error = h("p", { class: "error", role: "alert" });
  const form = h(
    "form",
    { id: "signin-form", class: "signin-form stack card", hidden: true, "aria-label": "Sign in" },
    h("label", { for: "signin-email" }, "Your email"),
    email,
    h("p", { class: "muted" }, "We send a one-time link. No password."),
    send,
    status,
    error,
  );
  toggle.addEventListener("click", () => {
    form.hidden = !form.hidden;
    toggle.setAttribute("aria-expanded", String(!form.hidden));
    if (!form.hidden) email.focus();
  });
  form.addEventListener("keydown", (ev) => {
    if (ev.key !== "Escape") return;
    form.hidden = true;
    toggle.setAttribute("aria-expanded", "false");
    toggle.focus();
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    setText(error, "");
    setText(status, "");
    send.disabled = true;
    try {
      await requestSignIn(email.value.trim(), next());
      setText(status, `Check your mail: if ${email.value.trim()} can sign in, a link is on its way. It works once, for 15 minutes.`);
    } catch (err) {
      setText(error, err.status === 429 ? "Too many sign-in requests. Wait a minute and try again." : err.message);
    } finally {
      send.disabled = false;
    }
  });
  root.append(toggle, form);
}

/** Mount the control once the account (if any) is known; resolves to it. */
export async function mountAccount(root, options = {}) {
  const account = await fetchMe();
  mountSignIn(root, { ...options, account });
  return account;
}
