// Access tokens in the browser. The token travels in the URL fragment
// (`#token=...`), which browsers never send to the server, so it stays out
// of every request line and log. Claims are read only to decide what to show;
// the server checks the signature on every call.

const ROLE_RANK = { listener: 1, speaker: 2, moderator: 3, host: 4 };

export function tokenFromFragment(hash = location.hash, key = "token") {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  return params.get(key) || null;
}

/**
 * Put `token` in the fragment (under `key`) without a reload or a history
 * entry; `null` removes it. The speaker token of an invitation is kept as
 * `speaker`, beside the page's own `token`, which it never replaces: the
 * server revokes it when its owner leaves the stage.
 */
export function rememberToken(token, key = "token") {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  if (token) params.set(key, token);
  else params.delete(key);
  history.replaceState(null, "", `${location.pathname}${location.search}#${params}`);
}

export function claimsOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(
      Array.from(atob(part), (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join(""),
    );
    const claims = JSON.parse(json);
    return {
      identity: claims.sub,
      name: claims.name || claims.sub,
      room: claims.room,
      role: claims.role,
      exp: claims.exp,
    };
  } catch {
    return null;
  }
}

/** May `role` do what `least` may? (host > moderator > speaker > listener) */
export function roleCan(role, least) {
  return (ROLE_RANK[role] || 0) >= (ROLE_RANK[least] || 99);
}

/** The room id of a page at /r/{room} or /host/{room}. */
export function roomFromPath(path = location.pathname) {
  const parts = path.split("/").filter(Boolean);
  return decodeURIComponent(parts[1] || "");
}

/** Ask for a guest (listener) token; throws an Error with the server's message. */
export async function joinAsGuest(room, name) {
  const resp = await fetch(`/api/v1/rooms/${encodeURIComponent(room)}/guest`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name }),
  });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(body?.error?.message || `could not join (${resp.status})`);
  return body.token;
}

/** The public facts of a room (title, guests, live) from the lobby list. */
export async function publicRoom(room) {
  const resp = await fetch("/api/v1/rooms");
  if (!resp.ok) return null;
  const body = await resp.json();
  return (body.rooms || []).find((r) => r.id === room) || null;
}
