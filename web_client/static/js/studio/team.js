// A room's team: invite links for co-hosts and moderators (minted by the
// owner, 7 days unless another lifetime is chosen), copied with one click,
// listed with their expiry, revoked (the server closes their sockets; a
// revoked link stays listed as "Revoked" until it would have expired).

import { h, keyedList, setText, toast, announce } from "../dom.js";
import { invites, mintInvite, revokeInvite } from "./api.js";
import { labelled, showError } from "./fields.js";
import { formatWhen } from "./when.js";

const DAY_S = 86400;

/** The console link of an invite (the server's `url`, or built from the token). */
export function inviteUrl(room, answer) {
  if (answer.url) return new URL(answer.url, location.origin).href;
  return `${location.origin}/host/${encodeURIComponent(room)}#token=${encodeURIComponent(answer.token)}`;
}

async function copy(text, input) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    input.select();
    document.execCommand("copy");
  }
}

export function mountTeam(root, room) {
  const role = labelled(
    "Role",
    h("select", { id: "invite-role", name: "role" }, h("option", { value: "moderator" }, "Moderator"), h("option", { value: "host" }, "Co-host")),
  );
  const name = labelled("Name", h("input", { id: "invite-name", name: "name", required: true, maxlength: 80, autocomplete: "off" }));
  const days = labelled("Valid for (days)", h("input", { id: "invite-days", name: "days", type: "number", min: 1, max: 30, value: 7, inputmode: "numeric" }));
  const status = h("p", { class: "error", role: "alert" });
  const form = h(
    "form",
    { class: "stack tool", "aria-label": "New invite link" },
    h("div", { class: "row two" }, role.wrap, name.wrap),
    days.wrap,
    h("button", { type: "submit", class: "primary" }, "Create invite link"),
    status,
  );
  const fresh = h("div", { class: "stack invite-fresh card", hidden: true });
  const list = h("ul", { class: "invite-list", "aria-label": "Invite links" });
  const empty = h("p", { class: "muted" }, "No invite link yet.");
  root.append(form, fresh, empty, list);

  const refresh = async () => {
    let items = [];
    try {
      items = await invites(room.id);
    } catch (err) {
      toast(`Could not load the invite links: ${err.message}`, "error");
    }
    items.sort((a, b) => Number(Boolean(a.revoked)) - Number(Boolean(b.revoked)) || (a.created_at || 0) - (b.created_at || 0));
    empty.hidden = items.length > 0;
    keyedList(list, items, (t) => t.id, (t) => inviteRow(t, revoke), (el, t) => {
      setText(el.querySelector(".invite-who"), `${t.name || t.identity} · ${t.role === "host" ? "co-host" : t.role}`);
      setText(el.querySelector(".invite-expiry"), t.revoked ? "Revoked" : t.expires_at ? `Expires ${formatWhen(t.expires_at)}` : "");
      el.dataset.revoked = String(Boolean(t.revoked));
      el.querySelector("button").hidden = Boolean(t.revoked);
    });
  };
  const revoke = async (t) => {
    try {
      await revokeInvite(room.id, t.id);
      announce(`Invite for ${t.name || t.identity} revoked`);
      fresh.hidden = true;
      await refresh();
    } catch (err) {
      toast(err.message, "error");
    }
  };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    for (const f of [name, days]) f.clear();
    setText(status, "");
    try {
      const answer = await mintInvite(room.id, { role: role.input.value, name: name.input.value.trim(), ttl_s: Number(days.input.value || 7) * DAY_S });
      showFresh(fresh, room.id, answer);
      form.reset();
      await refresh();
    } catch (err) {
      showError(err, { name, ttl_s: days }, status);
    }
  });
  refresh();
}

function showFresh(box, room, answer) {
  const url = inviteUrl(room, answer);
  const input = h("input", { id: "invite-url", type: "text", readonly: true, value: url });
  const copyButton = h("button", { type: "button", class: "primary copy-invite" }, "Copy link");
  copyButton.addEventListener("click", async () => {
    await copy(url, input);
    setText(copyButton, "Copied");
    announce("Invite link copied");
  });
  box.replaceChildren(
    h("label", { for: input.id }, `Invite link for ${answer.name || answer.identity} (${answer.role === "host" ? "co-host" : answer.role})`),
    h("div", { class: "inline-form" }, input, copyButton),
    h("p", { class: "muted hint" }, "Send it privately: whoever holds it joins the console until it expires or you revoke it."),
  );
  box.hidden = false;
}

function inviteRow(t, revoke) {
  const button = h("button", { type: "button", class: "danger" }, "Revoke");
  button.setAttribute("aria-label", `Revoke the invite for ${t.name || t.identity}`);
  button.addEventListener("click", () => revoke(t));
  return h(
    "li",
    { class: "invite card row spread" },
    h("span", { class: "stack" }, h("strong", { class: "invite-who" }), h("span", { class: "invite-expiry muted" })),
    button,
  );
}
