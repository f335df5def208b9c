// The page a sign-in link opens: `/signin#code=...&next=...`. The code is in
// the fragment, so it never reaches a server log; it is exchanged once for
// the account token (kept in localStorage), then the page goes to `next`,
// a path on this site only.

import { $, setText } from "./dom.js";
import { exchangeCode, safeNext } from "./account.js";

async function main() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const code = params.get("code");
  const next = params.get("next");
  // The code is single use: drop it from the address bar and the history.
  history.replaceState(null, "", location.pathname);
  if (!code) return fail("This sign-in link is incomplete. Open the link from the mail again.");
  try {
    const answer = await exchangeCode(code);
    setText($("#signin-status"), `Signed in as ${answer.account?.email || "you"}. Taking you back…`);
    // The server kept `next` with the code (it wins over the fragment); a path on this site only.
    location.replace(safeNext(answer.next || next || "/"));
  } catch (err) {
    fail(err.status === 429 ? "Too many attempts. Wait a minute and try again." : "This sign-in link has expired or was already used. Ask for a new one.");
  }
}

function fail(message) {
  setText($("#signin-status"), "");
  setText($("#signin-error"), message);
  $("#signin-again").hidden = false;
}

main();
