// The replay page at /replay/{room}/{id}: a recording of the room played in
// an <audio> element, its moments (what the host pinned, dropped or asked)
// as a timeline to seek, and, as the playback crosses a moment, its product
// with a Buy button that buys inline as the room page does (the room's cart
// and checkout, over the room's connection).
//
// Access: the room token of the link (`#token=`, or `?token=`, which the
// page moves into the fragment), else a signed-in account joins the room,
// else a room that allows guests lets the page fetch a guest token itself
// (so its replay link is public); a room without guests says what is needed.

import { $, h, keyedList, setText, toast, announce } from "./dom.js";
import { fetchConfig, openRoom, bindHeader, fatal } from "./boot.js";
import { tokenFromFragment, publicRoom, joinAsGuest, rememberToken, claimsOf } from "./token.js";
import { mountCart } from "./panels/cart.js";
import { mountAccount } from "./panels/signin.js";
import { formatMoney, formatCountdown, formatClock, spokenDuration } from "./format.js";
import { errorText } from "./connection.js";
import { api, joinAsAccount, rememberGuest, guestTokenFor, isAccountIdentity, isGuestIdentity } from "./account.js";

// timeupdate fires about four times a second: a moment shows from just before it.
const LEAD_S = 0.3;
const KIND = { pin: "Pinned", drop: "Drop", poll: "Poll" };

/** A position in the recording as players show it (whole seconds, rounded down). */
const at = (seconds) => formatCountdown(Math.floor(seconds));

/** The room and the recording of a page at /replay/{room}/{id}. */
export function replayFromPath(path = location.pathname) {
  const parts = path.split("/").filter(Boolean);
  return { room: decodeURIComponent(parts[1] || ""), id: decodeURIComponent(parts[2] || "") };
}

/** The moment playing at `position` (s): the last one at or before it. */
export function momentAt(moments, position) {
  let current = null;
  for (const m of moments) if (m.t <= position + LEAD_S) current = m;
  return current;
}

/** A token given in the query moves into the fragment (out of later requests). */
function tokenOfLink() {
  const query = new URLSearchParams(location.search);
  const given = query.get("token");
  if (given) {
    query.delete("token");
    const search = query.toString() ? `?${query}` : "";
    history.replaceState(null, "", `${location.pathname}${search}${location.hash}`);
    rememberToken(given);
  }
  return tokenFromFragment();
}

function gate(message) {
  const box = $("#gate");
  box.hidden = false;
  box.replaceChildren(h("p", {}, message));
}

async function main() {
  const { room, id } = replayFromPath();
  const [config, account] = await Promise.all([
    fetchConfig(),
    mountAccount($("#account-slot"), {
      onSignedOut: () => {
        rememberToken(null);
        location.reload();
      },
    }),
  ]);
  let token = tokenOfLink();
  const given = token && claimsOf(token);
  if (account && (!token || isGuestIdentity(given?.identity))) {
    try {
      token = await joinAsAccount(room);
      rememberToken(null);
    } catch (err) {
      toast(`Could not open the replay as ${account.email}: ${err.message}`, "error");
    }
  }
  token = token || guestTokenFor(room) || (await guestToken(room));
  if (!token) return;
  if (claimsOf(token)?.room !== room) return fatal("This link belongs to another room. Check your link.");
  let replay = null;
  try {
    const listed = await api("GET", `/api/v1/rooms/${encodeURIComponent(room)}/replays`, { token });
    replay = (listed.replays || []).find((r) => r.id === id) || null;
  } catch (err) {
    const expired = err.status === 401;
    return fatal(expired ? "Your access to this room has ended: open the link you were given again, or sign in." : `The replay could not be loaded: ${err.message}`);
  }
  if (!replay) return fatal("This replay does not exist (any more). Check your link.");
  start(room, token, config, replay);
}

/** No token: a room that allows guests lets anyone play its replays. */
async function guestToken(room) {
  const facts = await publicRoom(room);
  if (!facts) {
    gate("This room does not exist. Check your link.");
    return null;
  }
  setText($("#room-title"), facts.title);
  if (!facts.guests) {
    gate("This replay is for the room's members only: open the link you were given (it carries your access), or sign in.");
    return null;
  }
  try {
    const token = await joinAsGuest(room, "Guest");
    rememberGuest(room, token);
    rememberToken(token);
    return token;
  } catch (err) {
    gate(`The replay could not be opened: ${err.message}`);
    return null;
  }
}

function start(room, token, config, replay) {
  const session = openRoom(room, token, config);
  const { store, conn } = session;
  $("main").hidden = false;
  bindHeader(store);
  $("#live-badge").href = `/r/${encodeURIComponent(room)}`; // shown while the room is live
  const signedIn = isAccountIdentity(claimsOf(token)?.identity);
  store.state.signedIn = signedIn;
  const cart = mountCart($("#cart-toggle"), $("#cart-drawer"), { store, conn, tokenOf: session.tokenOf, signedIn });
  const buy = async (target, button) => {
    button.disabled = true;
    const answer = await conn.call("cart:add", { ...target, qty: 1 });
    button.disabled = false;
    if (!answer.ok) return toast(errorText(answer), "error");
    announce("Added to your cart");
    store.apply("cart:updated", { cart: answer.cart });
    cart.open();
  };
  mountPlayer(replay, store, buy);
  mountShare(room, replay, store);
  store.on("room", (state) => state.room && (document.title = `Replay · ${state.room.title} · droproom`));
  store.on("connection", (state) => {
    if (state.connection === "refused") fatal(`You could not open this replay: ${state.error}`);
  });
}

function mountPlayer(replay, store, buy) {
  const audio = $("#replay-audio");
  audio.src = replay.url;
  const length = replay.live ? "still recording" : at(replay.duration_s);
  setText($("#replay-when"), `Recorded ${new Date(replay.started_at * 1000).toLocaleString()} · ${length}`);
  const moments = replay.moments.map((m, i) => ({ ...m, key: String(i) }));
  $("#moments-empty").hidden = moments.length > 0;
  const seek = (m) => {
    audio.currentTime = m.t;
    audio.play().catch(() => {}); // a browser may want a gesture first: the seek stands
  };
  const list = $("#moments");
  keyedList(list, moments, (m) => m.key, (m) => momentItem(m, seek), () => {});
  const bar = mountBar($("#timeline-bar"), moments, replay.duration_s, seek);
  const card = $("#now-card");
  let shown = null;
  const render = () => {
    const current = momentAt(moments, audio.currentTime);
    bar.at(audio.currentTime, audio.duration);
    for (const el of list.children) {
      if (el.dataset.key === current?.key) el.setAttribute("aria-current", "true");
      else el.removeAttribute("aria-current");
    }
    $("#now-empty").hidden = Boolean(current);
    if (current?.key !== shown?.dataset.key) {
      shown = current ? momentCard(current, buy, store) : null;
      card.replaceChildren(...(shown ? [shown] : []));
    }
    if (shown) updateCard(shown, current, store);
  };
  for (const event of ["timeupdate", "seeked", "loadedmetadata", "durationchange"]) audio.addEventListener(event, render);
  store.on(["drops", "polls"], render);
}

/** A bar with a mark per moment (click to seek) and the playhead. */
function mountBar(bar, moments, duration, seek) {
  const head = h("span", { class: "playhead" });
  bar.append(head);
  const marks = moments.map((m) => {
    const mark = h("button", { type: "button", tabindex: "-1", class: `mark mark-${m.type}`, title: `${at(m.t)} ${KIND[m.type]}` });
    mark.addEventListener("click", () => seek(m));
    bar.append(mark);
    return [mark, m];
  });
  const place = (total) => {
    for (const [mark, m] of marks) mark.style.left = `${Math.min(100, (m.t / total) * 100)}%`;
  };
  place(duration || 1);
  return {
    at(position, total) {
      const length = Number.isFinite(total) && total > 0 ? total : duration || 1;
      head.style.width = `${Math.min(100, (position / length) * 100)}%`;
    },
  };
}

function momentText(m) {
  if (m.type === "poll") return m.question;
  return `${m.title} · ${formatMoney(m.price, m.currency)}`;
}

function momentItem(m, seek) {
  const button = h(
    "button",
    { type: "button", class: "moment-seek", "aria-label": `${KIND[m.type]} at ${spokenDuration(Math.floor(m.t))}: ${momentText(m)}. Play from here` },
    h("span", { class: "moment-time" }, at(m.t)),
    h("span", { class: `badge moment-kind kind-${m.type}` }, KIND[m.type]),
    h("span", { class: "moment-text" }, momentText(m)),
  );
  button.addEventListener("click", () => seek(m));
  return h("li", { class: "moment" }, button);
}

function momentCard(m, buy, store) {
  const when = h("p", { class: "muted moment-when" }, `${KIND[m.type]} at ${at(m.t)}`);
  if (m.type === "poll") {
    return h("article", { class: "card moment-card", dataset: { type: "poll", key: m.key }, "aria-label": m.question }, when, h("h3", {}, m.question), h("ul", { class: "poll-results" }));
  }
  const target = m.type === "drop" ? { drop_id: m.drop_id } : { product_id: m.product_id };
  const label = m.type === "drop" ? "Buy now" : "Buy";
  const button = h("button", { type: "button", class: "primary moment-buy", "aria-label": `${label}: ${m.title}` }, label);
  button.addEventListener("click", () => buy(target, button));
  return h(
    "article",
    { class: "card moment-card", dataset: { type: m.type, key: m.key }, "aria-label": m.title },
    when,
    h("h3", { class: "product-title" }, m.title),
    m.note ? h("p", { class: "slot-note" }, m.note) : null,
    h("p", { class: "row spread" }, h("span", { class: "price" }, formatMoney(m.price, m.currency)), h("span", { class: "stock" })),
    h("p", { class: "drop-note", role: "status" }),
    h("div", { class: "row card-actions" }, button),
  );
}

const DROP_NOTE = {
  live: () => "Live now: this drop can still be bought.",
  scheduled: (d) => `This drop opens at ${formatClock(d.starts_at)}.`,
  sold_out: () => "Sold out.",
  ended: () => "This drop has ended.",
};

/** What changed since the card was made: a drop's state and stock, a poll's tallies. */
function updateCard(el, m, store) {
  if (m.type === "poll") return updatePoll(el, m, store.state.polls.get(String(m.poll_id)));
  if (m.type !== "drop") return;
  const drop = { ...m, ...store.state.drops.get(String(m.drop_id)) };
  el.dataset.state = drop.state;
  const buyable = drop.state === "live" && drop.remaining !== 0;
  el.querySelector(".moment-buy").hidden = !buyable;
  setText(el.querySelector(".drop-note"), (DROP_NOTE[drop.state] || (() => ""))(drop));
  setText(el.querySelector(".stock"), buyable && drop.remaining != null ? `${drop.remaining} left` : "");
}

function updatePoll(el, m, poll) {
  const options = poll?.options || m.options || [];
  const tallies = poll?.tallies || [];
  const total = tallies.reduce((a, b) => a + b, 0);
  const list = el.querySelector(".poll-results");
  const rows = options.map((text, i) => ({ text, votes: tallies[i] ?? null, key: String(i) }));
  keyedList(list, rows, (r) => r.key, () => h("li", { class: "row spread" }, h("span", {}), h("span", { class: "muted" })), (li, r) => {
    setText(li.firstChild, r.text);
    setText(li.lastChild, r.votes === null ? "" : `${r.votes} of ${total}`);
  });
}

/** A room that allows guests has a public replay link; others say who may open it. */
function mountShare(room, replay, store) {
  const link = `${location.origin}/replay/${encodeURIComponent(room)}/${encodeURIComponent(replay.id)}`;
  const input = $("#share-link");
  input.value = link;
  $("#share-copy").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(link);
      announce("Link copied");
      toast("Link copied");
    } catch {
      input.select();
    }
  });
  store.on("room", (state) => {
    if (!state.room) return;
    const open = Boolean(state.room.guests);
    $("#share-row").hidden = !open;
    setText($("#share-text"), open ? "Anyone with this link can play the replay and buy from it." : "Only the room's members can open this replay: share the room's invitation links instead.");
  });
}

main().catch((err) => fatal(`Something went wrong: ${err.message}`));
