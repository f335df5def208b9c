// Tones on the shop's cards: a play/pause preview of a product whose sound is
// ready (one <audio> for the page: starting one preview stops another), and
// the card that lights up while a moderator plays that tone into the room
// (`tone:playing` until `tone:stopped` or its `ends_at`).

import { h, setText, announce } from "../dom.js";

let player = null;
let playing = null; // the button whose preview plays

function audio() {
  if (!player) {
    player = h("audio", { class: "preview-audio", preload: "none" });
    player.addEventListener("ended", () => release());
    // A pause queued by switching to another preview must not release that one.
    player.addEventListener("pause", () => player.paused && release());
    document.body.append(player);
  }
  return player;
}

function release() {
  if (!playing) return;
  playing.setAttribute("aria-pressed", "false");
  setText(playing.querySelector(".preview-label"), "Preview");
  playing = null;
}

/** Is `product`'s sound ready to preview? */
export const previewable = (product) => product?.audio?.state === "ready" && Boolean(product.audio.preview_url);

/** Make `card` show (or hide) a preview button for `product`. */
export function syncPreview(card, product) {
  let button = card.querySelector(".preview-button");
  if (!previewable(product)) {
    if (button) button.hidden = true;
    return;
  }
  if (!button) {
    button = h(
      "button",
      { type: "button", class: "preview-button secondary", "aria-pressed": "false" },
      h("span", { class: "preview-icon", "aria-hidden": "true" }, "♪ "),
      h("span", { class: "preview-label" }, "Preview"),
    );
    button.addEventListener("click", () => toggle(button));
    const anchor = card.querySelector(".buy, .add-to-cart");
    if (anchor) anchor.before(button);
    else card.append(button);
  }
  button.hidden = false;
  button.dataset.src = new URL(product.audio.preview_url, location.href).href;
  const seconds = product.audio.duration_s ? `, ${Math.min(15, product.audio.duration_s).toFixed(0)} seconds` : "";
  button.setAttribute("aria-label", `Preview ${product.title}${seconds}`);
}

async function toggle(button) {
  const el = audio();
  if (playing === button) {
    el.pause();
    return;
  }
  if (playing) el.pause();
  if (el.src !== button.dataset.src) el.src = button.dataset.src;
  el.currentTime = 0;
  playing = button;
  button.setAttribute("aria-pressed", "true");
  setText(button.querySelector(".preview-label"), "Pause");
  try {
    await el.play();
  } catch {
    release();
    announce("The preview could not play.");
  }
}

/** Light up the cards in `list` whose product plays into the room now. */
export function lightTone(list, tone, now) {
  const current = tone && (!tone.ends_at || tone.ends_at > now) ? tone.product_id : null;
  for (const card of list.children) {
    const on = Boolean(current) && card.dataset.product === current;
    if (card.classList.contains("tone-playing") === on) continue;
    card.classList.toggle("tone-playing", on);
    let note = card.querySelector(".tone-note");
    if (!note) {
      note = h("p", { class: "tone-note", role: "status" });
      card.querySelector(".product-title")?.after(note);
    }
    setText(note, on ? "♪ Playing in the room now" : "");
    if (on) card.setAttribute("aria-current", "true");
    else card.removeAttribute("aria-current");
  }
}
