// Room settings (the host's alone): the title, guests, the modules.

import { h, toast, announce } from "../dom.js";
import { errorText } from "../connection.js";

const MODULES = [
  ["polls", "Polls"],
  ["qa", "Q&A"],
  ["chat", "Chat"],
  ["shop", "Shop"],
];

export function mountRoomSettings(root, { store, conn }) {
  const guests = h("input", { type: "checkbox", id: "set-guests" });
  const boxes = MODULES.map(([id]) => h("input", { type: "checkbox", id: `set-${id}`, value: id }));
  const form = h(
    "form",
    { class: "stack tool", "aria-label": "Room settings" },
    h("div", { class: "row" }, guests, h("label", { for: "set-guests" }, "Guests may join by name")),
    h("fieldset", {}, h("legend", {}, "Modules"), MODULES.map(([id, label], i) => h("div", { class: "row" }, boxes[i], h("label", { for: `set-${id}` }, label)))),
    h("button", { type: "submit" }, "Save settings"),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const modules = boxes.filter((b) => b.checked).map((b) => b.value);
    const answer = await conn.call("room:update", { guests: guests.checked, modules });
    if (!answer.ok) return toast(errorText(answer), "error");
    announce("Settings saved");
  });
  root.append(form);
  store.on("room", (state) => {
    if (!state.room || form.contains(document.activeElement)) return;
    guests.checked = state.room.guests;
    boxes.forEach((b) => (b.checked = state.room.modules.includes(b.value)));
  });
}
