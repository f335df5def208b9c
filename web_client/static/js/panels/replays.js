// The room's replays as links to their pages (/replay/{room}/{id}), newest
// first: the host shares them, listeners find them. Listed with the page's
// room token (`GET /api/v1/rooms/{room}/replays`), again whenever the room
// goes live or stops (a session starts or has just been recorded).
//
// A room that allows guests has public replay links (the replay page gets a
// guest token itself); in a room without guests the link carries this
// page's token in its fragment, for this person's own click only.

import { h, keyedList, setText, toast, announce } from "../dom.js";
import { formatCountdown } from "../format.js";
import { api } from "../account.js";

function pageOf(room, replay) {
  return `/replay/${encodeURIComponent(room)}/${encodeURIComponent(replay.id)}`;
}

export function mountReplays(root, { room, store, tokenOf, share = false }) {
  const list = h("ul", { class: "replay-list", "aria-label": "Replays" });
  const empty = h("p", { class: "muted" }, "No replays yet: every live session is recorded.");
  root.append(empty, list);
  let live = null;
  const load = async () => {
    let listed = [];
    try {
      listed = (await api("GET", `/api/v1/rooms/${encodeURIComponent(room)}/replays`, { token: tokenOf() })).replays || [];
    } catch {
      return; // the list is a convenience: the room works without it
    }
    const done = listed.filter((r) => !r.live).reverse();
    empty.hidden = done.length > 0;
    const guests = Boolean(store.state.room?.guests);
    keyedList(list, done, (r) => r.id, (r) => item(room, r, share), (el, r) => update(el, room, r, guests, tokenOf));
  };
  store.on("room", (state) => {
    if (!state.room || Boolean(state.room.live) === live) return;
    live = Boolean(state.room.live);
    load();
  });
}

function item(room, replay, share) {
  const link = h("a", { class: "replay-link" });
  const copy = share ? h("button", { type: "button", class: "secondary copy-replay", hidden: true }, "Copy link") : null;
  copy?.addEventListener("click", async () => {
    const url = `${location.origin}${pageOf(room, replay)}`;
    try {
      await navigator.clipboard.writeText(url);
      announce("Replay link copied");
    } catch {
      toast(url);
    }
  });
  return h("li", { class: "replay-item row spread" }, link, copy);
}

function update(el, room, replay, guests, tokenOf) {
  const link = el.querySelector(".replay-link");
  const when = new Date(replay.started_at * 1000).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  const n = replay.moments.length;
  setText(link, `Replay of ${when} · ${formatCountdown(Math.floor(replay.duration_s))} · ${n} ${n === 1 ? "moment" : "moments"}`);
  link.href = guests ? pageOf(room, replay) : `${pageOf(room, replay)}#token=${encodeURIComponent(tokenOf())}`;
  const copy = el.querySelector(".copy-replay");
  if (copy) {
    copy.hidden = !guests; // only a guest room's link works for anyone
    copy.setAttribute("aria-label", `Copy the link of the replay of ${when}`);
  }
}
