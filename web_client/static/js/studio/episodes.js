// A room's episodes: add one at a date and time picked in the creator's
// own time zone (`datetime-local`, the zone named beside it), list the
// upcoming ones, delete; the room's calendar link (calendar.ics).

import { h, keyedList, setText, toast, announce } from "../dom.js";
import { episodes as listEpisodes, addEpisode, deleteEpisode, calendarUrl } from "./api.js";
import { labelled, showError } from "./fields.js";
import { zoneName, localInputToUnix, unixToLocalInput, formatWhen, nextHour } from "./when.js";

export function mountEpisodes(root, room, changed) {
  const zone = zoneName();
  const title = labelled("Episode title", h("input", { id: "episode-title", name: "title", required: true, maxlength: 200, autocomplete: "off" }));
  const starts = labelled(
    `Starts (${zone})`,
    h("input", { id: "episode-starts", name: "starts", type: "datetime-local", required: true, value: unixToLocalInput(nextHour(Date.now() / 1000 + 86400)) }),
    `Date and time in your time zone, ${zone}.`,
  );
  const length = labelled("Lasts (minutes)", h("input", { id: "episode-length", name: "length", type: "number", min: 5, max: 1440, value: 60, inputmode: "numeric" }));
  const status = h("p", { class: "error", role: "alert" });
  const form = h(
    "form",
    { class: "stack tool", "aria-label": "New episode" },
    title.wrap,
    h("div", { class: "row two" }, starts.wrap, length.wrap),
    h("button", { type: "submit", class: "primary" }, "Add episode"),
    status,
  );
  const list = h("ul", { class: "episode-list", "aria-label": "Upcoming episodes" });
  const empty = h("p", { class: "muted" }, "No upcoming episode.");
  const ics = new URL(calendarUrl(room.id), location.origin).href;
  const calendar = h(
    "p",
    { class: "row calendar-link" },
    h("a", { href: calendarUrl(room.id), download: `${room.id}.ics` }, "Calendar (.ics)"),
    h("span", { class: "muted" }, "Anyone can add it to their calendar: "),
    h("code", {}, ics),
  );
  root.append(form, empty, list, calendar);

  const render = (items) => {
    const upcoming = [...items].sort((a, b) => a.starts_at - b.starts_at);
    room.episodes = upcoming;
    empty.hidden = upcoming.length > 0;
    keyedList(list, upcoming, (e) => e.id, (e) => episodeRow(e, remove), (el, e) => {
      setText(el.querySelector(".episode-title"), e.title);
      setText(el.querySelector(".episode-when"), whenText(e));
    });
  };
  const refresh = async () => {
    try {
      render(await listEpisodes(room.id));
    } catch (err) {
      render(room.episodes || []);
      if (err.status !== 404) toast(`Could not load the episodes: ${err.message}`, "error");
    }
  };
  const remove = async (episode) => {
    try {
      await deleteEpisode(room.id, episode.id);
      announce(`Episode ${episode.title} deleted`);
      await refresh();
      changed();
    } catch (err) {
      toast(err.message, "error");
    }
  };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    for (const f of [title, starts, length]) f.clear();
    setText(status, "");
    const startsAt = localInputToUnix(starts.input.value);
    if (startsAt === null) return starts.fail("Pick a date and a time.");
    if (startsAt <= Date.now() / 1000) return starts.fail("Pick a moment in the future.");
    const body = { title: title.input.value.trim(), starts_at: startsAt };
    if (length.input.value) body.ends_at = startsAt + Number(length.input.value) * 60;
    try {
      const episode = await addEpisode(room.id, body);
      title.input.value = "";
      announce(`Episode ${episode.title} added for ${formatWhen(episode.starts_at)}`);
      await refresh();
      changed();
    } catch (err) {
      showError(err, { title, starts_at: starts, ends_at: length }, status);
    }
  });
  refresh();
}

function whenText(e) {
  const end = e.ends_at ? ` – ${new Date(e.ends_at * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}` : "";
  return `${formatWhen(e.starts_at)}${end}`;
}

function episodeRow(episode, remove) {
  const del = h("button", { type: "button", class: "danger" }, "Delete");
  del.setAttribute("aria-label", `Delete episode ${episode.title}`);
  del.addEventListener("click", () => remove(episode));
  return h(
    "li",
    { class: "episode card row spread" },
    h("span", { class: "stack" }, h("strong", { class: "episode-title" }), h("span", { class: "episode-when muted" })),
    del,
  );
}
