// Small form builders shared by the studio's panels: a labelled input with
// its own error line (aria-describedby), module checkboxes.

import { h, setText } from "../dom.js";
import { MODULES } from "./templates.js";

let serial = 0;

/** A labelled control; returns { wrap, input, error, fail(msg), clear() }. */
export function labelled(label, control, hint = null) {
  const id = control.id || `f${++serial}`;
  control.id = id;
  const error = h("p", { id: `${id}-error`, class: "error field-error", role: "alert" });
  const hintEl = hint ? h("p", { id: `${id}-hint`, class: "muted hint" }, hint) : null;
  control.setAttribute("aria-describedby", [hintEl && hintEl.id, error.id].filter(Boolean).join(" "));
  const wrap = h("div", { class: "stack field" }, h("label", { for: id }, label), control, hintEl, error);
  return {
    wrap,
    input: control,
    error,
    fail(message) {
      setText(error, message);
      control.setAttribute("aria-invalid", "true");
      control.focus();
    },
    clear() {
      setText(error, "");
      control.removeAttribute("aria-invalid");
    },
  };
}

/** Checkboxes for a room's modules inside a fieldset; `.value()` lists the checked ones. */
export function moduleBoxes(prefix, chosen = []) {
  const boxes = MODULES.map(([id, name]) => {
    const box = h("input", { type: "checkbox", id: `${prefix}-${id}`, value: id, checked: chosen.includes(id) });
    return { id, box, label: h("label", { for: box.id, class: "check" }, box, ` ${name}`) };
  });
  const fieldset = h("fieldset", { class: "row modules" }, h("legend", {}, "Modules"), boxes.map((b) => b.label));
  return {
    fieldset,
    value: () => boxes.filter((b) => b.box.checked).map((b) => b.id),
    set(modules) {
      for (const b of boxes) b.box.checked = modules.includes(b.id);
    },
  };
}

/** Put a server error next to its field when it names one, else in `fallback`. */
export function showError(err, fields, fallback) {
  const field = err.field && fields[err.field];
  if (field) field.fail(err.message);
  else setText(fallback, err.message);
}
