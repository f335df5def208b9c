// The host console's HTTP calls for the event numbers (orders, report, drop
// logs). The token goes in the Authorization header, never in a URL, so it
// stays out of server and proxy logs; files (CSV, the report's image) are
// fetched the same way and handed to the browser as a Blob.

import { h } from "../dom.js";
import { accountToken, accountId } from "../account.js";
import { claimsOf } from "../token.js";

/**
 * The token that shows the most: a creator in their own room (the console's
 * identity is their account) calls with the account token, which the
 * server answers as the room's owner (buyers' emails); anyone else with the
 * room token.
 */
export function ownerFirst(tokenOf) {
  return () => {
    const account = accountToken();
    return account && claimsOf(tokenOf())?.identity === accountId() ? account : tokenOf();
  };
}

/** `/api/v1/rooms/{room}` + `tail`, with `query` (empty values left out). */
export function roomPath(room, tail, query = {}) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value) params.set(key, value);
  const search = params.toString();
  return `/api/v1/rooms/${encodeURIComponent(room)}${tail}${search ? "?" + search : ""}`;
}

/** GET `path` with the bearer token; throws an Error carrying the server's message. */
export async function apiGet(path, token) {
  const resp = await fetch(path, { headers: { Authorization: `Bearer ${token}` }, cache: "no-store" });
  if (!resp.ok) {
    const body = await resp.json().catch(() => ({}));
    const err = new Error(body?.error?.message || `The server answered ${resp.status}.`);
    err.status = resp.status;
    err.code = body?.error?.code || (resp.status === 404 ? "not_found" : "unavailable");
    throw err;
  }
  return resp;
}

export async function getJson(path, token) {
  return (await apiGet(path, token)).json();
}

/** The file name a response suggests (`Content-Disposition`), else `fallback`. */
export function fileNameOf(resp, fallback) {
  const header = resp.headers.get("Content-Disposition") || "";
  const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(header);
  return match ? decodeURIComponent(match[1]) : fallback;
}

/** Save `blob` as a file named `name` (a click on a temporary blob: link). */
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** Fetch `path` with the token and save it; resolves to the file name. */
export async function download(path, token, fallback) {
  const resp = await apiGet(path, token);
  const name = fileNameOf(resp, fallback);
  saveBlob(await resp.blob(), name);
  return name;
}

/** A number, or null when `value` is missing or not a finite number. */
export function num(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** A ratio as a percent: 0.123 -> "12.3%", 0.5 -> "50%"; missing -> "–". */
export function ratioText(value) {
  const n = num(value);
  if (n === null) return "–";
  const pct = n * 100;
  return `${pct >= 10 || pct === 0 ? Math.round(pct) : pct.toFixed(1)}%`;
}

/** 1234 ms -> "1.2 s"; 87 -> "87 ms"; missing -> "–". */
export function msText(value) {
  const n = num(value);
  if (n === null) return "–";
  return n >= 1000 ? `${(n / 1000).toFixed(1)} s` : `${Math.round(n)} ms`;
}

/** 75 s -> "1 min 15 s"; missing -> "–". */
export function secondsText(value) {
  const n = num(value);
  if (n === null) return "–";
  const s = Math.round(n);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** Unix seconds -> local date and time. */
export function whenText(unixSeconds) {
  const n = num(unixSeconds);
  if (n === null) return "";
  return new Date(n * 1000).toLocaleString([], { dateStyle: "short", timeStyle: "medium" });
}
