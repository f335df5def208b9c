// Buy slots in the host console: pin a product chosen from the list (see
// product_picker.js) into a slot, see what is pinned, unpin.

import { h, keyedList, setText, toast, announce } from "../dom.js";
import { formatMoney } from "../format.js";
import { errorText } from "../connection.js";
import { stockText } from "./shop.js";
import { productSelect } from "./product_picker.js";

const SLOTS = [1, 2, 3, 4];

export function mountSlotPicker(root, ctx) {
  const { store, conn } = ctx;
  const slot = h("select", { id: "pin-slot", name: "slot" }, SLOTS.map((n) => h("option", { value: n }, `Slot ${n}`)));
  const picker = productSelect("pin-product", "Product to pin", ctx, "pinning");
  const note = h("input", { id: "pin-note", name: "note", maxlength: 200 });
  const form = h(
    "form",
    { class: "stack tool", "aria-label": "Pin a product" },
    h("label", { for: "pin-slot" }, "Slot"),
    slot,
    picker.wrap,
    h("label", { for: "pin-note" }, "Note (optional)"),
    note,
    h("button", { type: "submit" }, "Pin"),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!picker.value()) return toast("Choose a product to pin.", "error");
    const payload = { slot: Number(slot.value), product_id: picker.value() };
    if (note.value.trim()) payload.note = note.value.trim();
    const answer = await conn.call("slot:pin", payload);
    if (!answer.ok) return toast(errorText(answer), "error");
    store.apply("slot:updated", { slot: answer.slot });
    note.value = "";
    announce(`Pinned into slot ${payload.slot}`);
  });
  const list = h("ul", { class: "slot-list compact" });
  root.append(form, h("h3", {}, "Pinned"), list);
  store.on("slots", (state) => {
    const slots = [...state.slots.values()].filter((s) => s.product).sort((a, b) => a.slot - b.slot);
    keyedList(list, slots, (s) => s.slot, (s) => slotRow(s, conn), (el, s) => {
      const p = s.product;
      const stock = stockText(s.remaining);
      setText(el.querySelector(".slot-summary"), `${s.slot}. ${p.title} · ${formatMoney(p.price, p.currency)}${stock ? " · " + stock : ""}`);
    });
  });
  return picker;
}

function slotRow(s, conn) {
  const unpin = h("button", { type: "button", class: "secondary" }, `Unpin slot ${s.slot}`);
  unpin.addEventListener("click", async () => {
    const answer = await conn.call("slot:unpin", { slot: s.slot });
    if (!answer.ok) return toast(errorText(answer), "error");
    announce(`Slot ${s.slot} cleared`);
  });
  return h("li", { class: "row spread slot-row" }, h("span", { class: "slot-summary" }), unpin);
}
