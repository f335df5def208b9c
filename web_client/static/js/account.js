// A buyer's account in the browser: sign-in by email link, the account token
// (kept in localStorage: it must survive reloads and reach every tab, the
// mail link usually opens a new one), joining a room as the account, claiming
// what a guest bought, signing out, and the buyer's own `/me/*` lists.
// The server decides everything; claims are read only to decide what to show.

import { claimsOf } from "./token.js";

const ACCOUNT_KEY = "droproom.account";
const GUESTS_KEY = "droproom.guests"; // room -> the guest token this browser had there

function read(key, fallback) {
  try {
    const value = localStorage.getItem(key);
    return value === null ? fallback : JSON.parse(value);
  } catch {
    return fallback;
  }
}

function write(key, value) {
  try {
    if (value === null || value === undefined) localStorage.removeItem(key);
    else localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Private mode without storage: the page still works, only forgets.
  }
}

/** The account token, unless it has expired. */
export function accountToken() {
  const token = read(ACCOUNT_KEY, null);
  const claims = token && claimsOf(token);
  if (!claims || (claims.exp && claims.exp * 1000 < Date.now())) return null;
  return token;
}

export function accountId() {
  return claimsOf(accountToken() || "")?.identity || null;
}

export function keepAccountToken(token) {
  write(ACCOUNT_KEY, token);
}

/** Is `identity` an account (only sign-in hands those out)? */
export const isAccountIdentity = (identity) => String(identity || "").startsWith("acct_");
export const isGuestIdentity = (identity) => String(identity || "").startsWith("guest-");

/**
 * `next` from a sign-in link: a path on this site, never a URL elsewhere
 * (`//evil.example`, `https:`, `javascript:` and backslashes all fall back to `/`).
 */
export function safeNext(next) {
  const value = String(next || "");
  if (!value.startsWith("/") || value.startsWith("//") || value.includes("\\")) return "/";
  try {
    const url = new URL(value, location.origin);
    if (url.origin !== location.origin) return "/";
    return url.pathname + url.search;
  } catch {
    return "/";
  }
}

export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `the server answered ${status}`);
    this.status = status;
    this.code = error?.code || null;
    this.field = error?.field || error?.details?.field || null;
  }
}

/** One JSON call; resolves to the body, throws an ApiError with the server's message. */
export async function api(method, path, { token, body } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = resp.status === 204 ? {} : await resp.json().catch(() => ({}));
  if (!resp.ok) throw new ApiError(resp.status, data?.error);
  return data;
}

/** Ask for a sign-in link; the answer never says whether an account exists. */
export async function requestSignIn(email, next = location.pathname) {
  await api("POST", "/api/v1/auth/email", { body: { email, next: safeNext(next) } });
}

/** The code of a sign-in link -> the account token (kept) and the account. */
export async function exchangeCode(code) {
  const answer = await api("POST", "/api/v1/auth/exchange", { body: { code } });
  keepAccountToken(answer.token);
  return answer;
}

export async function fetchMe() {
  const token = accountToken();
  if (!token) return null;
  try {
    return (await api("GET", "/api/v1/me", { token })).account || null;
  } catch (err) {
    // A revoked token (signed out on another device) is forgotten here too.
    if (err.status === 401) keepAccountToken(null);
    return null;
  }
}

/** A room token whose identity is the account. */
export async function joinAsAccount(room) {
  const answer = await api("POST", `/api/v1/rooms/${encodeURIComponent(room)}/join`, { token: accountToken() });
  return answer.token;
}

/** Sign out everywhere: the server revokes every token of the account. */
export async function signOut() {
  const token = accountToken();
  keepAccountToken(null);
  if (token) await api("POST", "/api/v1/auth/signout", { token }).catch(() => {});
}

/** Remember the guest token this browser had in `room`, to offer a claim after sign-in. */
export function rememberGuest(room, token) {
  const guests = read(GUESTS_KEY, {});
  if (token) guests[room] = token;
  else delete guests[room];
  write(GUESTS_KEY, guests);
}

export function guestTokenFor(room) {
  const token = read(GUESTS_KEY, {})[room];
  const claims = token && claimsOf(token);
  if (!claims || !isGuestIdentity(claims.identity) || (claims.exp && claims.exp * 1000 < Date.now())) return null;
  return token;
}

/** Move what a guest identity bought to the account (holding the guest token is the proof). */
export async function claimGuest(guestToken) {
  return api("POST", "/api/v1/auth/claim", { token: accountToken(), body: { guest_token: guestToken } });
}

export const myOrders = (token) => api("GET", "/api/v1/me/orders", { token }).then((b) => b.orders || []);
export const myLibrary = (token) => api("GET", "/api/v1/me/library", { token }).then((b) => b.items || []);
