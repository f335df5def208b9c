// The lobby at /: rooms that are live, rooms coming up (with their next
// episodes, a calendar link and Follow), and join by link.

import { $, h, keyedList, setText } from "./dom.js";
import { mountAccount } from "./panels/signin.js";
import { episodesBlock, followedRooms } from "./panels/episodes.js";

// Who is looking: set once the account (if any) is known.
const viewer = { signedIn: false, follows: new Set() };
const blocks = new WeakMap(); // room card -> its episodes block

async function loadRooms() {
  const resp = await fetch("/api/v1/rooms");
  if (!resp.ok) throw new Error(`the server answered ${resp.status}`);
  return (await resp.json()).rooms || [];
}

function roomCard(room) {
  const episodes = episodesBlock(room, viewer);
  const el = h(
    "li",
    { class: "room-card card" },
    h("h3", {}, h("a", { class: "room-link", href: `/r/${encodeURIComponent(room.id)}` })),
    h("p", { class: "room-meta muted" }),
    episodes.el,
  );
  blocks.set(el, episodes);
  return el;
}

function updateCard(el, room) {
  setText(el.querySelector("a"), room.title);
  const modules = room.modules.map((m) => ({ polls: "polls", qa: "Q&A", chat: "chat", shop: "shop" })[m]).join(" · ");
  setText(el.querySelector(".room-meta"), `${room.live ? "Live now" : "Not live yet"} · ${modules}${room.guests ? " · open to guests" : " · invite only"}`);
  el.classList.toggle("live", room.live);
  blocks.get(el)?.update(room);
}

function render(rooms) {
  const live = rooms.filter((r) => r.live);
  const upcoming = rooms.filter((r) => !r.live);
  keyedList($("#live-rooms"), live, (r) => r.id, roomCard, updateCard);
  keyedList($("#upcoming-rooms"), upcoming, (r) => r.id, roomCard, updateCard);
  $("#no-live").hidden = live.length > 0;
  $("#no-upcoming").hidden = upcoming.length > 0;
}

/** A pasted link keeps its fragment (the token); a bare room id opens the room. */
export function destination(text, base = location.origin) {
  const value = text.trim();
  if (!value) return null;
  try {
    const url = new URL(value, base);
    if (/^\/(r|host)\/[^/]+/.test(url.pathname)) return url.pathname + url.hash;
  } catch {
    // not a URL: a room id
  }
  return /^[A-Za-z0-9_-]+$/.test(value) ? `/r/${encodeURIComponent(value)}` : null;
}

function bindJoin() {
  const form = $("#join-link");
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const target = destination($("#link").value);
    if (!target) {
      $("#link-error").textContent = "That is not a room link or a room id.";
      return;
    }
    location.assign(target);
  });
}

async function refresh() {
  try {
    render(await loadRooms());
    $("#lobby-error").textContent = "";
  } catch (err) {
    $("#lobby-error").textContent = `Could not load the rooms: ${err.message}`;
  }
}

async function main() {
  bindJoin();
  const account = await mountAccount($("#account-slot"), { next: () => "/", onSignedOut: () => location.reload() });
  viewer.signedIn = Boolean(account);
  if (account) viewer.follows = await followedRooms();
  await refresh();
  setInterval(refresh, 15000);
}

main();
