// A room's upcoming episodes in the lobby: each date and time in the
// viewer's own zone, an "Add to calendar" link (the room's calendar.ics)
// and, for signed-in listeners, Follow (a reminder mail before each
// episode and when the room goes live) / Following.

import { h, setText, toast, announce } from "../dom.js";
import { api, accountToken } from "../account.js";
import { formatWhen } from "../studio/when.js";

const SHOWN = 3;
const enc = encodeURIComponent;

/** The ids of the rooms the signed-in account follows (empty when unknown). */
export async function followedRooms() {
  const token = accountToken();
  if (!token) return new Set();
  try {
    const body = await api("GET", "/api/v1/me/follows", { token });
    return new Set((body.rooms || []).map((r) => r.id));
  } catch {
    return new Set();
  }
}

/** The episodes block of a room card; `update(room)` refreshes it in place. */
export function episodesBlock(room, { signedIn, follows }) {
  const list = h("ul", { class: "episodes", "aria-label": `Upcoming episodes of ${room.title}` });
  const calendar = h("a", { class: "add-calendar", href: `/api/v1/rooms/${enc(room.id)}/calendar.ics`, download: `${room.id}.ics` }, "Add to calendar");
  calendar.setAttribute("aria-label", `Add ${room.title}'s episodes to your calendar`);
  const follow = h("button", { type: "button", class: "secondary follow-button", "aria-pressed": "false" }, "Follow");
  const hint = h("span", { class: "muted hint" });
  const row = h("div", { class: "row follow-row" }, calendar, signedIn ? follow : hint);
  const box = h("div", { class: "episode-box" }, list, row);
  let following = follows.has(room.id);
  const show = () => {
    follow.setAttribute("aria-pressed", String(following));
    setText(follow, following ? "Following" : "Follow");
    follow.setAttribute("aria-label", following ? `Following ${room.title}: stop reminders` : `Follow ${room.title} for reminders`);
  };
  follow.addEventListener("click", async () => {
    follow.disabled = true;
    try {
      await api(following ? "DELETE" : "POST", `/api/v1/rooms/${enc(room.id)}/follow`, { token: accountToken() });
      following = !following;
      if (following) follows.add(room.id);
      else follows.delete(room.id);
      show();
      announce(following ? `Following ${room.title}: we mail you before each episode` : `Stopped following ${room.title}`);
    } catch (err) {
      toast(err.message, "error");
    } finally {
      follow.disabled = false;
    }
  });
  show();
  return {
    el: box,
    update(next) {
      const upcoming = (next.episodes || []).slice(0, SHOWN);
      list.replaceChildren(
        ...upcoming.map((e) =>
          h("li", { class: "episode-line" }, h("time", { datetime: new Date(e.starts_at * 1000).toISOString() }, formatWhen(e.starts_at)), h("span", {}, e.title)),
        ),
      );
      list.hidden = upcoming.length === 0;
      calendar.hidden = upcoming.length === 0;
      setText(hint, upcoming.length ? "Sign in to follow and get a reminder." : "");
      box.hidden = upcoming.length === 0 && !signedIn;
    },
  };
}
