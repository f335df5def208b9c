// A drop's hash-chained log (`GET .../drops/{drop}/log`): each entry with
// its time, type, what it recorded and its hash (chained to the one
// before), and the server's verdict on the chain, said in words.

import { h, keyedList, setText } from "../dom.js";
import { product as productOf } from "../products.js";
import { getJson, roomPath, whenText, num } from "./api.js";

const SHORT = 12;

/** What an entry recorded, as `key: value · key: value` (nested values as JSON). */
export function dataText(data) {
  let value = data;
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch {
      return value;
    }
  }
  if (value === undefined || value === null || value === "") return "";
  if (typeof value !== "object" || Array.isArray(value)) return JSON.stringify(value);
  return Object.entries(value)
    .map(([k, v]) => `${k}: ${v !== null && typeof v === "object" ? JSON.stringify(v) : v}`)
    .join(" · ");
}

/** The verdict in words: `{ok, text}`; `ok` null when the server gave none. */
export function verdictOf(body) {
  const v = body?.verdict ?? body?.verify ?? body?.verification ?? (typeof body?.verified === "boolean" ? { ok: body.verified } : null);
  const ok = typeof v === "boolean" ? v : typeof v?.ok === "boolean" ? v.ok : typeof v?.valid === "boolean" ? v.valid : null;
  const entries = Array.isArray(body?.entries) ? body.entries.length : 0;
  const checked = num(v?.checked) ?? entries;
  if (ok === null) return { ok, text: "No verdict from the server." };
  if (ok) return { ok, text: `Chain verified: the room's log of ${checked} entries is intact.` };
  const where = v?.bad_entry ? ` at entry ${v.bad_entry}` : "";
  return { ok, text: `Chain broken${where}${v?.reason ? `: ${v.reason}` : ""}.` };
}

function entry() {
  return h(
    "li",
    { class: "log-entry card" },
    h("p", { class: "row spread" }, h("strong", { class: "log-type" }), h("span", { class: "log-when muted" })),
    h("p", { class: "log-data" }),
    h("p", { class: "log-hash" }, "hash ", h("code", { class: "hash" }), h("span", { class: "muted" }, " · prev "), h("code", { class: "prev" })),
  );
}

function updateEntry(el, e) {
  setText(el.querySelector(".log-type"), e.type || "entry");
  const ts = num(e.ts) ?? num(Number(e.ts));
  setText(el.querySelector(".log-when"), ts === null ? "" : whenText(ts));
  setText(el.querySelector(".log-data"), dataText(e.data));
  for (const [cls, value] of [["hash", e.hash], ["prev", e.prev]]) {
    const code = el.querySelector(`.${cls}`);
    setText(code, value ? String(value).slice(0, SHORT) + "…" : "–");
    code.title = value || "";
  }
}

export function mountDropLog(root, { room, store, tokenOf }) {
  const pick = h("select", { id: "log-drop", name: "drop" });
  const show = h("button", { type: "submit" }, "Show log");
  const form = h("form", { class: "inline-form", "aria-label": "Choose a drop" }, h("label", { for: "log-drop" }, "Drop"), pick, show);
  const verdict = h("p", { class: "verdict", role: "status" });
  const entries = h("ol", { class: "log-entries", "aria-label": "Log entries" });
  root.append(form, verdict, entries);

  store.on("drops", (state) => {
    const chosen = pick.value;
    const drops = [...state.drops.values()].sort((a, b) => a.starts_at - b.starts_at);
    keyedList(pick, drops, (d) => d.id, (d) => h("option", { value: d.id }), (el, d) => {
      if (!el.textContent) {
        setText(el, `${d.product_id} (${d.id})`);
        productOf(d.product_id).then((p) => p && setText(el, `${p.title} (${d.id})`));
      }
    });
    if (chosen) pick.value = chosen;
    show.disabled = drops.length === 0;
    if (!drops.length) setText(verdict, "No drops in this room yet.");
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!pick.value) return;
    setText(verdict, "Loading…");
    try {
      const body = await getJson(roomPath(room, `/drops/${encodeURIComponent(pick.value)}/log`), tokenOf());
      const items = Array.isArray(body.entries) ? body.entries : [];
      keyedList(entries, items, (e) => e.id ?? e.hash, entry, updateEntry);
      const v = verdictOf(body);
      setText(verdict, v.ok === null ? `${items.length} entries. ${v.text}` : v.text);
      verdict.dataset.ok = String(v.ok);
    } catch (err) {
      entries.replaceChildren();
      setText(verdict, `Could not load the log: ${err.message}`);
      delete verdict.dataset.ok;
    }
  });
}
