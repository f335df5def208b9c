// /me: a signed-in buyer's orders and purchases (with download buttons per
// device) across every room, and sign out. Not signed in: the sign-in form.

import { $, setText } from "./dom.js";
import { accountToken } from "./account.js";
import { mountAccount } from "./panels/signin.js";
import { mountOrders, mountLibrary } from "./panels/library.js";

async function main() {
  const account = await mountAccount($("#account-slot"), { next: () => "/me", onSignedOut: () => location.assign("/") });
  const intro = $("#me-intro");
  if (!account) {
    setText(intro, "Sign in to see what you bought: use “Sign in” above, we email you a link.");
    return;
  }
  setText(intro, `Signed in as ${account.email}.`);
  $("#library-panel").hidden = false;
  $("#orders-panel").hidden = false;
  mountLibrary($("#library-panel .panel-body"), { tokenOf: accountToken });
  mountOrders($("#orders-panel .panel-body"), { tokenOf: accountToken });
}

main().catch((err) => setText($("#me-intro"), `Something went wrong: ${err.message}`));
