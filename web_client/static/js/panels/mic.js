// The microphone: go live over WHIP with a level meter. Used by the host
// console, and by a listener the host invited to the stage.

import { h, setText, toast, announce } from "../dom.js";
import { MicPublisher, animateLevel } from "../audio.js";

const STATUS_TEXT = {
  idle: "Microphone off.",
  connecting: "Starting the microphone…",
  live: "You are on air.",
  reconnecting: "Reconnecting…",
  stopped: "Microphone off.",
  error: "Microphone problem",
};

/**
 * @param onLive called with true/false once the WHIP session starts/ends
 *   (the host also marks the room live then)
 * @param mutedText what a live microphone says while `me.muted` (the room
 *   does not hear it: never "on air" then)
 */
export function mountMic(root, { room, tokenOf, config, store = null, startLabel = "● Go live", stopLabel = "■ End broadcast", mutedText = "You are muted by a moderator.", onLive = async () => {} }) {
  const button = h("button", { type: "button", class: "mic-button primary", "aria-pressed": "false" }, startLabel);
  const meter = h("meter", { class: "level", min: 0, max: 1, value: 0, "aria-label": "Microphone level" });
  const status = h("p", { class: "mic-status", role: "status", "aria-live": "polite" }, STATUS_TEXT.idle);
  root.append(h("div", { class: "row" }, button, meter), status);
  let stopMeter = null;
  const shown = { state: "idle", detail: null, muted: false };
  const render = () => {
    const { state, detail, muted } = shown;
    if (state === "live" && muted) setText(status, mutedText);
    else setText(status, detail ? `${STATUS_TEXT[state]}: ${detail}` : STATUS_TEXT[state]);
    root.dataset.mic = state;
    root.dataset.muted = String(muted);
  };
  const mic = new MicPublisher({
    room,
    tokenOf,
    iceServers: config.ice_servers || [],
    onStatus: (state, detail) => {
      Object.assign(shown, { state, detail });
      render();
    },
  });
  store?.on(["me", "stage"], (state) => {
    const muted = Boolean(state.me?.muted);
    if (muted === shown.muted) return;
    shown.muted = muted;
    render();
  });
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      if (mic.live) {
        await mic.stop();
        stopMeter?.();
        await onLive(false);
        announce("Broadcast ended");
      } else {
        await mic.start();
        stopMeter = animateLevel(meter, () => mic.level());
        await onLive(true);
        announce("You are live");
      }
    } catch (err) {
      toast(`Could not start the microphone: ${err.message}`, "error");
      Object.assign(shown, { state: "error", detail: err.message });
      render();
    } finally {
      button.disabled = false;
      button.setAttribute("aria-pressed", String(mic.live));
      setText(button, mic.live ? stopLabel : startLabel);
    }
  });
  return mic;
}
