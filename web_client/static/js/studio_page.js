// The creator studio at /studio: a signed-in creator's rooms and products,
// room settings from a template, episodes, and the team's invite links.
// Not signed in: the sign-in control (the link comes back here). Signed in
// without the creator role: how to get an invite. The server decides
// everything; the page only shows what the account's answers allow.

import { $, setText } from "./dom.js";
import { mountAccount } from "./panels/signin.js";
import { mountRooms } from "./studio/rooms.js";
import { mountProducts } from "./studio/products.js";
import { mountRoomEditor } from "./studio/room_editor.js";

async function main() {
  const account = await mountAccount($("#account-slot"), { next: () => "/studio", onSignedOut: () => location.assign("/studio") });
  const intro = $("#studio-intro");
  if (!account) {
    setText(intro, "Creators sign in here with the email their invite went to: use “Sign in” above, we email you a link.");
    return;
  }
  if (!(account.roles || []).includes("creator")) {
    intro.setAttribute("role", "alert");
    intro.classList.add("studio-not-creator");
    setText(intro, `${account.email} is not a creator account yet. The studio is for invited creators: ask the platform's team for an invite, then sign in again with the email it was sent to.`);
    return;
  }
  setText(intro, `Signed in as ${account.email}. Set up your rooms, products, episodes and team here.`);
  for (const id of ["#rooms-panel", "#products-panel"]) $(id).hidden = false;
  const editor = mountRoomEditor($("#room-panel"));
  const rooms = mountRooms($("#rooms-panel .panel-body"), { onManage: (room) => editor.open(room) });
  editor.onChanged((room) => rooms.refresh(room));
  mountProducts($("#products-panel .panel-body"));
}

main().catch((err) => setText($("#studio-intro"), `Something went wrong: ${err.message}`));
