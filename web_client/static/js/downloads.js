// Download buttons per device for a digital product: "iPhone" (.m4r
// ringtone), "Android" (.mp3, else Ogg Opus), "Other phones" (.3gp, AMR-NB)
// and "All files (zip)" (the bundle). Links are signed and short-lived: a
// click that would use an expired one fetches the library for fresh links
// first (`refresh()` resolves to the downloads of every product).

import { h } from "./dom.js";

export const DEVICES = [
  { label: "iPhone", formats: ["m4r"], hint: "ringtone (.m4r)" },
  { label: "Android", formats: ["mp3", "opus"], hint: "MP3" },
  { label: "Other phones", formats: ["3gp"], hint: "3GP" },
  { label: "All files (zip)", formats: ["bundle"], hint: "every format and a manifest" },
];

/** The download of `productId` for a device, from a list of downloads. */
export function pick(downloads, productId, formats) {
  for (const format of formats) {
    const found = (downloads || []).find((d) => d.format === format && (!productId || !d.product_id || d.product_id === productId));
    if (found) return found;
  }
  return null;
}

const SAFETY_S = 5; // a link this close to its end is treated as expired

/** Start a download of `url` (the server answers with `Content-Disposition: attachment`). */
function start(url) {
  const a = h("a", { href: url, download: "", hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
}

function size(bytes) {
  if (!bytes) return "";
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1e3))} kB`;
}

/**
 * A group of device buttons for one product. `nowS()` is the server's clock
 * (links expire on it); `refresh()` resolves to fresh downloads.
 */
export function deviceButtons(productId, title, downloads, { nowS, refresh }) {
  let current = downloads || [];
  const group = h("div", { class: "downloads row", role: "group", "aria-label": `Download ${title}` });
  for (const device of DEVICES) {
    const link = pick(current, productId, device.formats);
    if (!link) continue;
    const button = h(
      "button",
      {
        type: "button",
        class: "download-button secondary",
        dataset: { format: link.format },
        title: `${device.hint}${link.bytes ? ", " + size(link.bytes) : ""}`,
        "aria-label": `${device.label}: download ${title}${link.format === "bundle" ? " (zip)" : ` (${link.format})`}`,
      },
      device.label,
    );
    button.addEventListener("click", async () => {
      let chosen = pick(current, productId, device.formats);
      if (!chosen || (chosen.expires_at && chosen.expires_at - SAFETY_S <= nowS())) {
        button.disabled = true;
        try {
          current = (await refresh()) || current;
        } finally {
          button.disabled = false;
        }
        chosen = pick(current, productId, device.formats);
      }
      if (chosen) start(chosen.url);
    });
    group.append(button);
  }
  return group.children.length ? group : null;
}
