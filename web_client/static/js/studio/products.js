// The creator's products: the list (image, price, stock, sound) and one
// form to create or edit a product: title, description, a price typed in
// major units with its currency (turned into exact minor units), kind,
// stock, an image (previewed before upload; the server re-encodes it) and,
// for digital products, the tone with its upload and processing progress.

import { h, keyedList, setText, toast, announce } from "../dom.js";
import { formatMoney } from "../format.js";
import { accountToken } from "../account.js";
import { myProducts, createProduct, updateProduct } from "./api.js";
import { labelled, showError } from "./fields.js";
import { toMinor, toMajorText } from "./money.js";
import { uploadFile } from "./upload.js";

const CURRENCIES = ["eur", "usd", "gbp", "chf", "sek", "jpy", "krw", "cad", "aud"];
const KINDS = [
  ["digital", "Digital (a tone)"],
  ["physical", "Physical (shipped)"],
  ["subscription", "Subscription"],
];
const POLL_MS = 1000;
const MAX_IMAGE_BYTES = 20 * 1024 * 1024;

export function mountProducts(root) {
  const known = new Map();
  const list = h("ul", { class: "product-list studio-products", "aria-label": "Your products" });
  const empty = h("p", { class: "muted" }, "No product yet: create one below.");
  const editor = productForm({
    saved: (p) => {
      known.set(p.id, p);
      render();
    },
  });
  root.append(empty, list, editor.form);

  const render = () => {
    const products = [...known.values()].sort((a, b) => a.title.localeCompare(b.title));
    empty.hidden = products.length > 0;
    keyedList(list, products, (p) => p.id, (p) => productCard(p, () => editor.edit(known.get(p.id))), updateCard);
  };
  myProducts()
    .then((products) => {
      for (const p of products) known.set(p.id, p);
      render();
    })
    .catch((err) => toast(`Could not load your products: ${err.message}`, "error"));
}

function productCard(p, edit) {
  const button = h("button", { type: "button", class: "secondary" }, "Edit");
  button.setAttribute("aria-label", `Edit ${p.title}`);
  button.addEventListener("click", edit);
  return h(
    "li",
    { class: "product card row" },
    h("img", { class: "product-thumb", alt: "", width: 64, height: 64, hidden: true }),
    h("span", { class: "stack product-text" }, h("strong", { class: "product-title" }), h("span", { class: "product-meta muted" }), h("span", { class: "product-sound muted" })),
    button,
  );
}

function updateCard(el, p) {
  setText(el.querySelector(".product-title"), p.title);
  const stock = p.stock === null || p.stock === undefined ? "unlimited" : `${p.remaining ?? p.stock} in stock`;
  setText(el.querySelector(".product-meta"), `${formatMoney(p.price, p.currency)} · ${p.kind} · ${stock} · ${p.id}`);
  const img = el.querySelector(".product-thumb");
  if (p.image_url && img.getAttribute("src") !== p.image_url) img.src = p.image_url;
  img.hidden = !p.image_url;
  setText(el.querySelector(".product-sound"), p.kind === "digital" ? soundText(p.audio) : "");
  el.dataset.audio = p.audio?.state || "none";
}

function soundText(audio) {
  if (!audio) return "No tone yet";
  if (audio.state === "ready") return `Tone ready · ${(audio.duration_s || 0).toFixed(1)} s`;
  if (audio.state === "failed") return `Tone failed: ${audio.error || "could not be processed"}`;
  return `Tone processing ${Math.round((audio.progress || 0) * 100)}%`;
}

function productForm({ saved }) {
  const heading = h("h3", { id: "product-form-h" }, "New product");
  const title = labelled("Title", h("input", { id: "product-title", name: "title", required: true, maxlength: 200, autocomplete: "off" }));
  const description = labelled("Description", h("textarea", { id: "product-description", name: "description", rows: 3, maxlength: 2000 }));
  const price = labelled(
    "Price",
    h("input", { id: "product-price", name: "price", required: true, inputmode: "decimal", autocomplete: "off", placeholder: "12.50" }),
    "In the currency's usual units, e.g. 12.50 (yen: whole amounts).",
  );
  const currency = labelled("Currency", h("select", { id: "product-currency", name: "currency" }, CURRENCIES.map((c) => h("option", { value: c }, c.toUpperCase()))));
  const kind = labelled("Kind", h("select", { id: "product-kind", name: "kind" }, KINDS.map(([v, n]) => h("option", { value: v }, n))));
  const stock = labelled("Stock", h("input", { id: "product-stock", name: "stock", type: "number", min: 0, inputmode: "numeric" }), "Empty: unlimited.");
  const image = labelled("Image", h("input", { id: "product-image", name: "image", type: "file", accept: "image/png,image/jpeg,image/webp,image/gif" }), "PNG, JPEG or WebP; shown in the room.");
  const preview = h("img", { class: "image-preview", alt: "Image preview", hidden: true });
  const tone = labelled("Tone", h("input", { id: "product-tone", name: "tone", type: "file", accept: "audio/*,.wav,.flac,.mp3,.ogg,.m4a" }), "The sound buyers get; up to 30 s are kept.");
  const start = labelled("Start at (s)", h("input", { id: "product-tone-start", type: "number", min: 0, step: "0.1", value: 0, inputmode: "decimal" }));
  const length = labelled("Length (s, at most 30)", h("input", { id: "product-tone-length", type: "number", min: 1, max: 30, step: "0.1", value: 30, inputmode: "decimal" }));
  const toneBox = h("fieldset", { class: "stack tone-box" }, h("legend", {}, "Tone (digital products)"), tone.wrap, h("div", { class: "row two" }, start.wrap, length.wrap));
  const bar = h("progress", { id: "product-progress", class: "sound-progress", max: 1, value: 0, hidden: true, "aria-label": "Upload progress" });
  const progress = h("p", { class: "product-progress-text", role: "status", "aria-live": "polite" });
  const error = h("p", { class: "error", role: "alert" });
  const save = h("button", { type: "submit", class: "primary" }, "Create product");
  const cancel = h("button", { type: "button", class: "secondary", hidden: true }, "New product instead");
  const form = h(
    "form",
    { class: "stack tool product-form", "aria-labelledby": heading.id },
    heading,
    title.wrap,
    description.wrap,
    h("div", { class: "row two" }, price.wrap, currency.wrap),
    h("div", { class: "row two" }, kind.wrap, stock.wrap),
    image.wrap,
    preview,
    toneBox,
    bar,
    progress,
    error,
    h("div", { class: "row" }, save, cancel),
  );
  let editing = null;
  const fields = { title, description, price, currency, kind, stock, image, tone };
  const showTone = () => (toneBox.hidden = kind.input.value !== "digital");
  kind.input.addEventListener("change", showTone);
  showTone();

  image.input.addEventListener("change", () => {
    const file = image.input.files?.[0];
    image.clear();
    if (!file) return (preview.hidden = true);
    if (file.size > MAX_IMAGE_BYTES) return image.fail("That image is over 20 MB: choose a smaller one.");
    // A data: URL (the page's policy allows data: images, not blob: ones).
    const reader = new FileReader();
    reader.addEventListener("load", () => {
      preview.src = reader.result;
      preview.hidden = false;
    });
    reader.readAsDataURL(file);
  });

  const reset = () => {
    editing = null;
    kind.input.disabled = false;
    form.reset();
    preview.hidden = true;
    bar.hidden = true;
    setText(progress, "");
    setText(heading, "New product");
    setText(save, "Create product");
    cancel.hidden = true;
    showTone();
  };
  cancel.addEventListener("click", reset);

  const fill = (p) => {
    editing = p;
    title.input.value = p.title;
    description.input.value = p.description || "";
    currency.input.value = p.currency;
    price.input.value = toMajorText(p.price, p.currency);
    kind.input.value = p.kind;
    kind.input.disabled = true; // a product keeps its kind (the server says: make a new product)
    stock.input.value = p.stock ?? "";
    stock.input.dataset.was = stock.input.value;
    preview.hidden = !p.image_url;
    if (p.image_url) preview.src = p.image_url;
    setText(heading, `Edit ${p.title}`);
    setText(save, "Save product");
    cancel.hidden = false;
    showTone();
    form.scrollIntoView({ block: "start" });
    title.input.focus();
  };

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    for (const f of Object.values(fields)) f.clear();
    setText(error, "");
    let minor;
    try {
      minor = toMinor(price.input.value, currency.input.value);
    } catch (err) {
      return price.fail(err.message);
    }
    const body = {
      title: title.input.value.trim(),
      description: description.input.value.trim(),
      price: minor,
      currency: currency.input.value,
      kind: kind.input.value,
      stock: stock.input.value === "" ? null : Number(stock.input.value),
    };
    if (editing) {
      // Unchanged stock is not sent: a tracked stock is moved by the difference.
      delete body.kind;
      if (stock.input.value === stock.input.dataset.was) delete body.stock;
    }
    save.disabled = true;
    try {
      let product = editing ? await updateProduct(editing.id, body) : await createProduct(body);
      saved(product);
      const imageFile = image.input.files?.[0];
      if (imageFile) product = await send(`/api/v1/products/${encodeURIComponent(product.id)}/image`, imageFile, "image", product);
      saved(product);
      const toneFile = body.kind === "digital" ? tone.input.files?.[0] : null;
      if (toneFile) {
        const query = new URLSearchParams({ start_s: start.input.value || "0", length_s: length.input.value || "30" });
        product = await send(`/api/v1/products/${encodeURIComponent(product.id)}/audio?${query}`, toneFile, "tone", product);
        saved(product);
        product = await watchTone(product, saved);
      }
      announce(`${product.title} saved`);
      const done = `${product.title} saved${product.audio?.state === "ready" ? ", tone ready" : ""}.`;
      reset();
      setText(progress, done);
    } catch (err) {
      showError(err, fields, error);
    } finally {
      save.disabled = false;
    }
  });

  /** Upload with the bar moving; the product in the answer (or as it was). */
  async function send(url, file, what, product) {
    bar.hidden = false;
    bar.value = 0;
    bar.setAttribute("aria-label", `Uploading the ${what}`);
    setText(progress, `Uploading the ${what}…`);
    try {
      const body = await uploadFile(url, file, accountToken(), (f) => {
        bar.value = f;
        setText(progress, `Uploading the ${what} ${Math.round(f * 100)}%`);
      });
      return body.product || (body.id ? body : product);
    } catch (err) {
      bar.hidden = true;
      setText(progress, "");
      fields[what].fail(`The ${what} was not saved: ${err.message}`);
      throw Object.assign(new Error(`The product is saved, but not its ${what}.`), { field: null });
    }
  }

  /** Follow the tone's processing until it is ready or failed. */
  async function watchTone(product, onStep) {
    bar.setAttribute("aria-label", "Processing the tone");
    let p = product;
    while (p.audio?.state === "processing") {
      bar.value = p.audio.progress || 0;
      setText(progress, `Processing the tone ${Math.round((p.audio.progress || 0) * 100)}%`);
      await new Promise((r) => setTimeout(r, POLL_MS));
      const resp = await fetch(`/api/v1/products/${encodeURIComponent(p.id)}`, { cache: "no-store" });
      if (resp.ok) p = await resp.json();
      onStep(p);
    }
    bar.hidden = true;
    if (p.audio?.state === "failed") tone.fail(`The tone could not be processed: ${p.audio.error || "unknown reason"}`);
    return p;
  }

  return { form, edit: fill };
}
