// One room, opened from the list: its settings (title, modules, guests),
// its episodes and its team. Changes go to the server; the list hears of
// them through `onChanged`.

import { $, h, setText, announce } from "../dom.js";
import { updateRoom } from "./api.js";
import { labelled, moduleBoxes, showError } from "./fields.js";
import { mountEpisodes } from "./episodes.js";
import { mountTeam } from "./team.js";

export function mountRoomEditor(section) {
  const body = $(".panel-body", section);
  const heading = $("h2", section);
  const listeners = [];
  return {
    onChanged: (fn) => listeners.push(fn),
    open(room) {
      section.hidden = false;
      setText(heading, `Room: ${room.title}`);
      body.replaceChildren();
      const changed = (next) => {
        setText(heading, `Room: ${next.title}`);
        for (const fn of listeners) fn(next);
      };
      const settings = h("div", { class: "stack studio-block" }, h("h3", {}, "Settings"));
      const episodes = h("div", { class: "stack studio-block" }, h("h3", {}, "Episodes"));
      const team = h("div", { class: "stack studio-block" }, h("h3", {}, "Team"));
      body.append(settings, episodes, team);
      settings.append(settingsForm(room, changed));
      mountEpisodes(episodes, room, () => changed(room));
      mountTeam(team, room);
      section.scrollIntoView({ block: "start" });
      heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
    },
  };
}

function settingsForm(room, changed) {
  const title = labelled("Title", h("input", { id: "room-edit-title", name: "title", required: true, maxlength: 120, value: room.title }));
  const modules = moduleBoxes("room-edit", room.modules || []);
  const guests = h("input", { type: "checkbox", id: "room-edit-guests", checked: Boolean(room.guests) });
  const status = h("p", { class: "error", role: "alert" });
  const saved = h("p", { class: "muted", role: "status" });
  const form = h(
    "form",
    { class: "stack tool", "aria-label": "Room settings" },
    title.wrap,
    modules.fieldset,
    h("label", { for: guests.id, class: "check" }, guests, " Guests may join without an account"),
    h("button", { type: "submit", class: "primary" }, "Save settings"),
    status,
    saved,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    title.clear();
    setText(status, "");
    setText(saved, "");
    try {
      const next = await updateRoom(room.id, { title: title.input.value.trim(), modules: modules.value(), guests: guests.checked });
      Object.assign(room, next);
      setText(saved, "Saved.");
      announce("Room settings saved");
      changed(room);
    } catch (err) {
      showError(err, { title }, status);
    }
  });
  return form;
}
