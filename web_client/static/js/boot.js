// What every room page does first: read the config and the token, open the
// connection, and keep the header (title, live, connection) current.

import { h, setText } from "./dom.js";
import { Store } from "./store.js";
import { RoomConnection } from "./connection.js";
import { claimsOf, rememberToken, tokenFromFragment } from "./token.js";

export async function fetchConfig() {
  try {
    const resp = await fetch("/api/v1/config");
    return resp.ok ? await resp.json() : {};
  } catch {
    return {};
  }
}

const CONNECTION_TEXT = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  refused: "Could not join",
};

/** Open the room for `token`; returns the pieces panels need. */
export function openRoom(room, token, config) {
  const kept = tokenFromFragment(location.hash, "speaker");
  let current = kept && claimsOf(kept)?.identity === claimsOf(token)?.identity ? kept : token;
  const store = new Store();
  store.config = config;
  // A speaker token (from an invitation) is revoked when its owner leaves
  // the stage: refused with it, the page goes back to the token it came with.
  const fallBack = () => {
    if (current === token) return false;
    current = token;
    session.claims = claimsOf(token);
    rememberToken(null, "speaker");
    return true;
  };
  const conn = new RoomConnection(store, () => current, fallBack);
  const session = {
    room,
    store,
    conn,
    config,
    claims: claimsOf(current),
    get role() {
      return this.claims?.role || "listener";
    },
    tokenOf: () => current,
    setToken(next) {
      current = next;
      this.claims = claimsOf(next);
      rememberToken(next, "speaker");
    },
  };
  store.on("token", (_, update) => update?.token && session.setToken(update.token));
  return session;
}

/** Keep the page header in step with the room and the connection. */
export function bindHeader(store) {
  const title = document.getElementById("room-title");
  const live = document.getElementById("live-badge");
  const status = document.getElementById("connection-status");
  store.on("room", (state) => {
    if (!state.room) return;
    setText(title, state.room.title);
    document.title = `${state.room.title} · droproom`;
    live.hidden = !state.room.live;
  });
  // The status element is itself a polite live region: changes are spoken.
  store.on("connection", (state) => {
    setText(status, state.error ? `${CONNECTION_TEXT[state.connection]}: ${state.error}` : CONNECTION_TEXT[state.connection]);
    status.dataset.state = state.connection;
  });
}

/** Show or hide the sections of modules the room has switched off. */
export function bindModules(store) {
  store.on("room", (state) => {
    const modules = state.room?.modules;
    if (!modules) return;
    for (const section of document.querySelectorAll("[data-module]")) {
      section.hidden = !modules.includes(section.dataset.module);
    }
  });
}

export function fatal(message) {
  const main = document.querySelector("main");
  main.hidden = false;
  main.replaceChildren(h("p", { class: "fatal", role: "alert" }, message));
}
