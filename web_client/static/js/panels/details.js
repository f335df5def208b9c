// What checkout asks besides the card: an email for guests (optional: the
// receipt and the way back to what they bought) and a shipping address when
// the order holds a physical item. The server validates; its message is
// shown next to the field it names.

import { h, setText } from "../dom.js";

// ISO 3166-1 alpha-2, the codes the server accepts; names come from the browser.
const COUNTRIES = (
  "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ " +
  "CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR " +
  "GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO " +
  "JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR " +
  "MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO " +
  "RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV " +
  "TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW"
).split(" ");

function countryOptions() {
  let names = null;
  try {
    names = new Intl.DisplayNames([navigator.language || "en"], { type: "region" });
  } catch {
    names = null;
  }
  const options = COUNTRIES.map((code) => ({ code, name: names?.of(code) || code }));
  options.sort((a, b) => a.name.localeCompare(b.name));
  return [h("option", { value: "" }, "Choose a country…"), options.map((o) => h("option", { value: o.code }, `${o.name} (${o.code})`))];
}

/** The browser's own region (from its language), to preselect. */
function guessCountry() {
  const region = /[-_]([A-Z]{2})$/.exec(navigator.language || "")?.[1];
  return region && COUNTRIES.includes(region) ? region : "";
}

const SHIPPING_FIELDS = [
  ["name", "Full name", { autocomplete: "shipping name", maxlength: 100, required: true }],
  ["line1", "Address", { autocomplete: "shipping address-line1", maxlength: 200, required: true }],
  ["line2", "Address line 2 (optional)", { autocomplete: "shipping address-line2", maxlength: 200 }],
  ["city", "City", { autocomplete: "shipping address-level2", maxlength: 100, required: true }],
  ["postal_code", "Postal code", { autocomplete: "shipping postal-code", maxlength: 20, required: true }],
];

function fieldRow(id, label, control, hint) {
  const error = h("p", { id: `${id}-error`, class: "field-error error", role: "alert" });
  // A corrected field drops its error.
  control.addEventListener("input", () => {
    setText(error, "");
    control.removeAttribute("aria-invalid");
  });
  const described = [hint ? `${id}-hint` : null, `${id}-error`].filter(Boolean).join(" ");
  control.setAttribute("aria-describedby", described);
  return {
    row: h("div", { class: "field stack" }, h("label", { for: id }, label), hint ? h("p", { id: `${id}-hint`, class: "muted hint" }, hint) : null, control, error),
    control,
    error,
  };
}

export class CheckoutDetails {
  constructor() {
    this.fields = new Map(); // server field name -> {control, error}
    const email = fieldRow(
      "checkout-email",
      "Email (optional)",
      h("input", { id: "checkout-email", name: "email", type: "email", autocomplete: "email", maxlength: 254, inputmode: "email" }),
      "For your receipt, and the way back to what you bought (downloads, orders) on any device.",
    );
    this.fields.set("email", email);
    this.emailBox = h("div", { class: "stack" }, email.row);

    const rows = SHIPPING_FIELDS.map(([key, label, attrs]) => {
      const f = fieldRow(`ship-${key}`, label, h("input", { id: `ship-${key}`, name: key, ...attrs }));
      this.fields.set(`shipping.${key}`, f);
      return f.row;
    });
    const country = fieldRow("ship-country", "Country", h("select", { id: "ship-country", name: "country", required: true, autocomplete: "shipping country" }, countryOptions()));
    country.control.value = guessCountry();
    this.fields.set("shipping.country", country);
    this.shippingBox = h("fieldset", { class: "shipping stack" }, h("legend", {}, "Shipping address"), rows, country.row);

    this.saveCard = h("input", { id: "save-card", name: "save_card", type: "checkbox" });
    this.saveBox = h(
      "div",
      { class: "row save-card" },
      this.saveCard,
      h("label", { for: "save-card" }, "Save this card for one-click buying"),
    );
    this.general = h("p", { class: "error details-error", role: "alert" });
    this.root = h("div", { class: "checkout-details stack" }, this.emailBox, this.shippingBox, this.general);
  }

  /** Show what this order needs: email for guests, an address for physical items. */
  configure({ guest, physical }) {
    this.emailBox.hidden = !guest;
    this.shippingBox.hidden = !physical;
    this.shippingBox.disabled = !physical;
  }

  get needsInput() {
    return !this.emailBox.hidden || !this.shippingBox.hidden;
  }

  /** The `checkout:start` fields; null (with the fields marked) when the form is incomplete. */
  values() {
    this.clearErrors();
    const out = {};
    if (!this.emailBox.hidden) {
      const email = this.fields.get("email").control.value.trim();
      if (email) out.email = email;
    }
    if (!this.shippingBox.hidden) {
      const shipping = {};
      let missing = null;
      for (const [key, f] of this.fields) {
        if (!key.startsWith("shipping.")) continue;
        const value = f.control.value.trim();
        if (value) shipping[key.slice(9)] = value;
        else if (f.control.required) {
          setText(f.error, "Required.");
          f.control.setAttribute("aria-invalid", "true");
          missing = missing || f.control;
        }
      }
      if (missing) {
        missing.focus();
        return null;
      }
      out.shipping = shipping;
    }
    return out;
  }

  clearErrors() {
    setText(this.general, "");
    for (const f of this.fields.values()) {
      setText(f.error, "");
      f.control.removeAttribute("aria-invalid");
    }
  }

  /**
   * Show a refused `checkout:start` next to the field it is about: the
   * error's `field` (e.g. `shipping.country`), or a field its message names.
   * Returns false when the error is about none of these fields.
   */
  showError(error) {
    const message = error?.message || "Check this field.";
    const named = error?.field || error?.details?.field || this.fieldIn(message);
    const key = named && !named.includes(".") && named !== "email" ? `shipping.${named}` : named;
    const f = key && this.fields.get(key);
    if (!f || f.control.closest("[hidden]")) return false;
    setText(f.error, message);
    f.control.setAttribute("aria-invalid", "true");
    f.control.focus();
    return true;
  }

  fieldIn(message) {
    const text = message.toLowerCase();
    if (/e-?mail/.test(text)) return "email";
    for (const key of ["postal_code", "line1", "line2", "country", "city", "name"]) {
      if (text.includes(key) || text.includes(key.replace("_", " "))) return `shipping.${key}`;
    }
    return text.includes("shipping") || text.includes("address") ? "shipping.line1" : null;
  }
}
