// The room's sound: a clear Listen control (browsers block autoplay), a live
// level meter and what the connection is doing; over HLS (WebRTC full or
// blocked) a notice that the sound is a few seconds behind the live shop.

import { h, setText, announce } from "../dom.js";
import { RoomListener, animateLevel } from "../audio.js";

const STATUS_TEXT = {
  idle: "Press Listen to hear the room.",
  connecting: "Connecting…",
  playing: "Listening live.",
  reconnecting: "Connection lost, reconnecting…",
  delayed: "Listening with a delay.",
  waiting: "Waiting for the room's sound…",
  stopped: "Sound off.",
  error: "Could not connect",
};

export function mountListen(root, { store, room, tokenOf, config }) {
  const audio = h("audio", { class: "room-audio", autoplay: true });
  const button = h("button", { type: "button", class: "listen-button primary", "aria-pressed": "false" }, "▶ Listen");
  const meter = h("meter", { class: "level", min: 0, max: 1, value: 0, id: "listen-level", "aria-label": "Room audio level" });
  const status = h("p", { class: "listen-status", role: "status", "aria-live": "polite" }, STATUS_TEXT.idle);
  const live = h("p", { class: "live-note muted" });
  const delay = h(
    "p",
    { class: "delay-note", role: "note", hidden: true },
    "The sound reaches you a few seconds after the room (the live stream is full or blocked here). " +
      "Drops, the shop and the chat stay live.",
  );
  root.append(h("div", { class: "row" }, button, meter), status, delay, live, audio);

  let stopMeter = null;
  const listener = new RoomListener({
    room,
    tokenOf,
    iceServers: config.ice_servers || [],
    audio,
    onStatus: (state, detail) => {
      // Over HLS the note below says why; the server's refusal text would only confuse.
      const shown = detail && state !== "delayed" ? `${STATUS_TEXT[state]}: ${detail}` : STATUS_TEXT[state];
      setText(status, shown);
      root.dataset.audio = state;
      root.dataset.audioMode = listener.mode;
      delay.hidden = state !== "delayed";
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
