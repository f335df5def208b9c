// The creator's rooms: the list (live, modules, next episode; manage, open
// the console as host) and a new room from a template whose modules and
// guests stay editable before it is created.

import { h, keyedList, setText, toast, announce } from "../dom.js";
import { myRooms, createRoom, joinOwnRoom } from "./api.js";
import { TEMPLATES, MODULES, templateById } from "./templates.js";
import { labelled, moduleBoxes, showError } from "./fields.js";
import { formatWhen } from "./when.js";

export function mountRooms(root, { onManage }) {
  const list = h("ul", { class: "room-list studio-rooms", "aria-label": "Your rooms" });
  const empty = h("p", { class: "muted" }, "No room yet: create one from a template below.");
  const form = newRoomForm(async (room) => {
    await refresh();
    onManage(room);
  });
  root.append(empty, list, h("h3", {}, "New room"), form);
  const known = new Map();

  async function refresh(changed = null) {
    if (changed) known.set(changed.id, { ...known.get(changed.id), ...changed });
    try {
      for (const room of await myRooms()) known.set(room.id, room);
    } catch (err) {
      toast(`Could not load your rooms: ${err.message}`, "error");
    }
    const rooms = [...known.values()].sort((a, b) => (b.created_at || 0) - (a.created_at || 0));
    empty.hidden = rooms.length > 0;
    keyedList(list, rooms, (r) => r.id, (r) => roomCard(r, onManage, () => known.get(r.id)), updateRoomCard);
  }
  refresh();
  return { refresh };
}

function roomCard(room, onManage, current) {
  const manage = h("button", { type: "button", class: "secondary manage-room" }, "Manage");
  manage.setAttribute("aria-label", `Manage ${room.title}`);
  manage.addEventListener("click", () => onManage(current()));
  const consoleButton = h("button", { type: "button", class: "secondary open-console" }, "Open host console");
  consoleButton.setAttribute("aria-label", `Open the host console of ${room.title}`);
  consoleButton.addEventListener("click", async () => {
    try {
      const token = await joinOwnRoom(room.id);
      location.assign(`/host/${encodeURIComponent(room.id)}#token=${encodeURIComponent(token)}`);
    } catch (err) {
      toast(`Could not open the console: ${err.message}`, "error");
    }
  });
  return h(
    "li",
    { class: "room-card card stack" },
    h("p", { class: "row spread" }, h("strong", { class: "room-title" }), h("span", { class: "badge live", hidden: true }, "Live")),
    h("p", { class: "room-meta muted" }),
    h("p", { class: "room-next muted" }),
    h("div", { class: "row" }, manage, consoleButton, h("a", { class: "room-open", href: `/r/${encodeURIComponent(room.id)}` }, "Listener page")),
  );
}

function updateRoomCard(el, room) {
  setText(el.querySelector(".room-title"), room.title);
  el.querySelector(".badge.live").hidden = !room.live;
  el.classList.toggle("live", Boolean(room.live));
  const names = Object.fromEntries(MODULES);
  const modules = (room.modules || []).map((m) => names[m] || m).join(" · ");
  setText(el.querySelector(".room-meta"), `${room.id} · ${modules || "no modules"} · ${room.guests ? "open to guests" : "invite only"}`);
  const next = (room.episodes || [])[0];
  setText(el.querySelector(".room-next"), next ? `Next: ${next.title}, ${formatWhen(next.starts_at)}` : "No episode planned");
}

function newRoomForm(onCreated) {
  const template = labelled(
    "Template",
    h("select", { id: "room-template", name: "template" }, TEMPLATES.map((t) => h("option", { value: t.id }, t.name))),
  );
  const hint = h("p", { class: "muted hint template-hint" }, TEMPLATES[0].hint);
  const title = labelled("Title", h("input", { id: "room-title-new", name: "title", required: true, maxlength: 120, autocomplete: "off" }));
  const id = labelled(
    "Room id (optional)",
    h("input", { id: "room-id-new", name: "id", maxlength: 64, pattern: "[A-Za-z0-9_\\-]+", autocomplete: "off" }),
    "Letters, digits, - and _; it is in the room's address. Left empty, one is chosen for you.",
  );
  const modules = moduleBoxes("new-room", TEMPLATES[0].modules);
  const guests = h("input", { type: "checkbox", id: "new-room-guests", checked: TEMPLATES[0].guests });
  const status = h("p", { class: "error", role: "alert" });
  template.input.addEventListener("change", () => {
    const t = templateById(template.input.value);
    modules.set(t.modules);
    guests.checked = t.guests;
    setText(hint, t.hint);
  });
  const form = h(
    "form",
    { class: "stack tool new-room", "aria-label": "New room" },
    template.wrap,
    hint,
    title.wrap,
    id.wrap,
    modules.fieldset,
    h("label", { for: guests.id, class: "check" }, guests, " Guests may join without an account"),
    h("button", { type: "submit", class: "primary" }, "Create room"),
    status,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    for (const f of [title, id]) f.clear();
    setText(status, "");
    const body = { title: title.input.value.trim(), modules: modules.value(), guests: guests.checked };
    if (id.input.value.trim()) body.id = id.input.value.trim();
    try {
      const room = await createRoom(body);
      form.reset();
      template.input.dispatchEvent(new Event("change"));
      announce(`Room ${room.title} created`);
      await onCreated(room);
    } catch (err) {
      if (err.status === 409) id.fail("That id is taken: choose another or leave it empty.");
      else showError(err, { title, id }, status);
    }
  });
  return form;
}
