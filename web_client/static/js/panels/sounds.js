// The host's sounds: for each digital product the room shows (pinned or in
// a drop, or added from the console's product list), upload its source
// sound with the window to keep (`POST /api/v1/products/{id}/audio`,
// multipart field `file`), watch it
// process (`product:updated` carries `audio.progress`) until it is ready
// (duration, loudness) or failed (the reason), and play it into the room
// (`tone:play`, `tone:stop`).
//
// Uploading is an owner's or the admin's call, not a room token's: the
// console sends the admin key given in its fragment (`#admin=...`, never in
// a request line) or, without one, the signed-in account's token (the
// owner, once the creator studio lands).

import { h, keyedList, setText, toast, announce } from "../dom.js";
import { product as productOf } from "../products.js";
import { errorText } from "../connection.js";
import { tokenFromFragment } from "../token.js";
import { accountToken } from "../account.js";
import { lightTone } from "./tones.js";
import { productSelect } from "./product_picker.js";

const POLL_MS = 1500;

export function uploadBearer() {
  return tokenFromFragment(location.hash, "admin") || accountToken();
}

/** POST the file with XHR (fetch has no upload progress); resolves to the body. */
function upload(productId, file, { start, length }, onProgress) {
  return new Promise((resolve, reject) => {
    const query = new URLSearchParams({ start_s: String(start), length_s: String(length) });
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/v1/products/${encodeURIComponent(productId)}/audio?${query}`);
    const bearer = uploadBearer();
    if (bearer) xhr.setRequestHeader("Authorization", `Bearer ${bearer}`);
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (ev) => ev.lengthComputable && onProgress(ev.loaded / ev.total));
    xhr.addEventListener("load", () => {
      const body = xhr.response || {};
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new Error(body?.error?.message || `the server answered ${xhr.status}`));
    });
    xhr.addEventListener("error", () => reject(new Error("The upload was interrupted. Check your connection.")));
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

async function fresh(id) {
  const resp = await fetch(`/api/v1/products/${encodeURIComponent(id)}`, { cache: "no-store" });
  return resp.ok ? resp.json() : null;
}

export function mountSoundTools(root, { room, store, conn, tokenOf }) {
  const known = new Map(); // id -> product
  const list = h("ul", { class: "sound-list" });
  const empty = h("p", { class: "muted" }, "No digital product in this room yet: pin one or add it from the list.");
  // Another digital product, picked from the console's list (panels/product_picker.js).
  const picker = productSelect("sound-product", "Another digital product", { room, store, tokenOf }, "sounds", (p) => p.kind === "digital");
  const add = h("form", { class: "stack", "aria-label": "Add a product's sound" }, picker.wrap, h("button", { type: "submit" }, "Add"));
  const note = h("p", { class: "muted" });
  if (!uploadBearer()) setText(note, "Uploading needs the admin key (open the console with #admin=… in the link) or the product's owner signed in.");
  root.append(note, empty, list, add);

  const render = () => {
    const products = [...known.values()].filter((p) => p.kind === "digital").sort((a, b) => a.title.localeCompare(b.title));
    empty.hidden = products.length > 0;
    keyedList(list, products, (p) => p.id, (p) => soundCard(p, conn, track), (el, p) => updateCard(el, p));
    lightTone(list, store.state.tone, store.clock.now());
  };
  const track = (p) => {
    if (!p?.id) return;
    known.set(p.id, { ...known.get(p.id), ...p });
    render();
    if (p.audio?.state === "processing") poll(p.id);
  };
  // `product:updated` should carry every step; polling covers a room the
  // product is not shown in yet (its events go to rooms that show it).
  const polling = new Set();
  const poll = (id) => {
    if (polling.has(id)) return;
    polling.add(id);
    const tick = async () => {
      const p = await fresh(id).catch(() => null);
      if (p) track({ ...p, audio: newer(known.get(id)?.audio, p.audio) });
      if (known.get(id)?.audio?.state === "processing") setTimeout(tick, POLL_MS);
      else polling.delete(id);
    };
    setTimeout(tick, POLL_MS);
  };

  add.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!picker.value()) return toast("Choose a digital product.", "error");
    const p = await fresh(picker.value());
    if (!p) return toast("That product is gone.", "error");
    if (p.kind !== "digital") return toast(`${p.title} is not a digital product: sounds are for digital products.`, "error");
    track(p);
  });

  store.on("slots", (state) => {
    for (const s of state.slots.values()) if (s.product && !known.has(s.product.id)) productOf(s.product.id).then(track);
  });
  store.on("drops", (state) => {
    for (const d of state.drops.values()) if (!known.has(d.product_id)) productOf(d.product_id).then(track);
  });
  store.on("products", (state, p) => {
    if (p) track({ ...p, audio: newer(known.get(p.id)?.audio, p.audio) });
  });
  store.on("tone", (state) => lightTone(list, state.tone, store.clock.now()));
  store.clock.onTick((now) => lightTone(list, store.state.tone, now));
}

/** A late poll answer must not move a bar backwards past an event. */
function newer(before, after) {
  if (!before || !after) return after || before;
  if (before.state === "processing" && after.state === "processing" && (before.progress || 0) > (after.progress || 0)) return before;
  return after;
}

function soundCard(p, conn, track) {
  const id = `sound-${p.id.replace(/[^A-Za-z0-9_-]/g, "_")}`;
  const file = h("input", { id: `${id}-file`, type: "file", accept: "audio/*,.wav,.flac,.mp3,.ogg,.m4a", required: true });
  const start = h("input", { id: `${id}-start`, type: "number", min: 0, step: "0.1", value: 0, inputmode: "decimal", required: true });
  const length = h("input", { id: `${id}-length`, type: "number", min: 1, max: 30, step: "0.1", value: 30, inputmode: "decimal", required: true });
  const send = h("button", { type: "submit", class: "primary" }, "Upload sound");
  const form = h(
    "form",
    { class: "stack sound-upload", "aria-label": `Upload a sound for ${p.title}` },
    h("label", { for: file.id }, `Sound file for ${p.title}`),
    file,
    h("div", { class: "row" }, h("div", { class: "stack" }, h("label", { for: start.id }, "Start at (s)"), start), h("div", { class: "stack" }, h("label", { for: length.id }, "Length (s, at most 30)"), length)),
    send,
  );
  const bar = h("progress", { id: `${id}-progress`, class: "sound-progress", max: 1, value: 0, hidden: true, "aria-label": `Processing ${p.title}` });
  const status = h("p", { class: "sound-status", role: "status", "aria-live": "polite" });
  const play = h("button", { type: "button", class: "secondary tone-play" }, "Play in room");
  const stop = h("button", { type: "button", class: "secondary tone-stop" }, "Stop");
  play.setAttribute("aria-label", `Play ${p.title} in the room`);
  stop.setAttribute("aria-label", `Stop playing ${p.title}`);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const chosen = file.files?.[0];
    if (!chosen) return;
    send.disabled = true;
    bar.hidden = false;
    bar.value = 0;
    setText(status, "Uploading…");
    try {
      const body = await upload(p.id, chosen, { start: Number(start.value), length: Number(length.value) }, (f) => {
        bar.value = f;
        setText(status, `Uploading ${Math.round(f * 100)}%`);
      });
      bar.value = 0;
      track(body.product || { ...p, audio: { state: "processing", progress: 0 } });
      announce(`${p.title}: uploaded, processing`);
    } catch (err) {
      bar.hidden = true;
      setText(status, `Upload failed: ${err.message}`);
    } finally {
      send.disabled = false;
    }
  });
  play.addEventListener("click", async () => {
    const answer = await conn.call("tone:play", { product_id: p.id });
    if (!answer.ok) toast(errorText(answer), "error");
  });
  stop.addEventListener("click", async () => {
    const answer = await conn.call("tone:stop", {});
    if (!answer.ok) toast(errorText(answer), "error");
  });
  return h(
    "li",
    { class: "sound card stack", dataset: { product: p.id } },
    h("h3", { class: "product-title" }, p.title),
    form,
    bar,
    status,
    h("div", { class: "row" }, play, stop),
  );
}

function updateCard(el, p) {
  const audio = p.audio;
  const bar = el.querySelector(".sound-progress");
  const status = el.querySelector(".sound-status");
  const ready = audio?.state === "ready";
  el.dataset.audio = audio?.state || "none";
  el.querySelector(".tone-play").disabled = !ready;
  if (!audio) {
    if (!status.textContent.startsWith("Upload")) setText(status, "No sound yet.");
    return;
  }
  if (audio.state === "processing") {
    bar.hidden = false;
    bar.value = audio.progress || 0;
    bar.setAttribute("aria-valuetext", `${Math.round((audio.progress || 0) * 100)}%`);
    setText(status, `Processing ${Math.round((audio.progress || 0) * 100)}%`);
  } else if (ready) {
    bar.hidden = true;
    const loud = typeof audio.loudness_lufs === "number" ? ` · ${audio.loudness_lufs.toFixed(1)} LUFS` : "";
    const peak = typeof audio.true_peak_dbtp === "number" ? ` · peak ${audio.true_peak_dbtp.toFixed(1)} dBTP` : "";
    setText(status, `Ready · ${(audio.duration_s || 0).toFixed(1)} s${loud}${peak}`);
  } else if (audio.state === "failed") {
    bar.hidden = true;
    setText(status, `Failed: ${audio.error || "the sound could not be processed"}`);
  }
}
