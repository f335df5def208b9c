// The room's sound: a clear Listen control (browsers block autoplay), a live
// level meter and what the connection is doing.

import { h, setText, announce } from "../dom.js";
import { RoomListener, animateLevel } from "../audio.js";

const STATUS_TEXT = {
  idle: "Press Listen to hear the room.",
  connecting: "Connecting…",
  playing: "Listening live.",
  reconnecting: "Connection lost, reconnecting…",
  stopped: "Sound off.",
  error: "Could not connect",
};

export function mountListen(root, { store, room, tokenOf, config }) {
  const audio = h("audio", { class: "room-audio", autoplay: true });
  const button = h("button", { type: "button", class: "listen-button primary", "aria-pressed": "false" }, "▶ Listen");
  const meter = h("meter", { class: "level", min: 0, max: 1, value: 0, id: "listen-level", "aria-label": "Room audio level" });
  const status = h("p", { class: "listen-status", role: "status", "aria-live": "polite" }, STATUS_TEXT.idle);
  const live = h("p", { class: "live-note muted" });
  root.append(h("div", { class: "row" }, button, meter), status, live, audio);

  let stopMeter = null;
  const listener = new RoomListener({
    room,
    tokenOf,
    iceServers: config.ice_servers || [],
    audio,
    onStatus: (state, detail) => {
      setText(status, detail ? `${STATUS_TEXT[state]}: ${detail}` : STATUS_TEXT[state]);
      root.dataset.audio = state;
    },
  });
  button.addEventListener("click", async () => {
    if (listener.wanted) {
      listener.stop();
      stopMeter?.();
      button.setAttribute("aria-pressed", "false");
      setText(button, "▶ Listen");
      announce("Sound off");
      return;
    }
    button.setAttribute("aria-pressed", "true");
    setText(button, "⏸ Stop listening");
    stopMeter = animateLevel(meter, () => listener.level());
    await listener.start();
  });
  store.on("room", (state) => {
    setText(live, state.room?.live ? "The room is live." : "The room is not live yet; you will hear it when the host starts.");
  });
  return listener;
}
