// Dates and times as people pick them: a `datetime-local` value is a wall
// clock time in this browser's time zone; the server speaks unix seconds.

/** The browser's time zone name ("Europe/Paris"). */
export function zoneName() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
}

/** "2026-12-04T19:30" (this browser's zone) -> unix seconds, or null. */
export function localInputToUnix(value) {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(String(value || ""))) return null;
  const ms = new Date(value).getTime();
  return Number.isFinite(ms) ? Math.round(ms / 1000) : null;
}

/** unix seconds -> the `datetime-local` value of that moment here (to the minute, or second). */
export function unixToLocalInput(seconds, withSeconds = false) {
  const d = new Date(seconds * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  const minute = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return withSeconds ? `${minute}:${pad(d.getSeconds())}` : minute;
}

/** A moment said in the viewer's zone: "Fri 4 Dec, 19:30 CET". */
export function formatWhen(seconds, locale = undefined) {
  return new Date(seconds * 1000).toLocaleString(locale, {
    weekday: "short",
    day: "numeric",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
    timeZoneName: "short",
  });
}

/** The next whole hour after `nowSeconds` (a sensible default to pick from). */
export function nextHour(nowSeconds) {
  return Math.ceil((nowSeconds + 60) / 3600) * 3600;
}
