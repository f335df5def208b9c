// The listener room at /r/{room}: sound, stage, shop, polls, Q&A, chat.

import { $, h, toast } from "./dom.js";
import { fetchConfig, openRoom, bindHeader, bindModules, fatal } from "./boot.js";
import { tokenFromFragment, roomFromPath, publicRoom, joinAsGuest, rememberToken, roleCan, claimsOf } from "./token.js";
import { mountListen } from "./panels/listen.js";
import { mountStageView } from "./panels/people.js";
import { mountMic } from "./panels/mic.js";
import { mountPolls } from "./panels/polls.js";
import { mountQa } from "./panels/qa.js";
import { mountChat } from "./panels/chat.js";
import { mountReactions } from "./panels/reactions.js";
import { mountSlots, mountDrops } from "./panels/shop.js";
import { mountCart } from "./panels/cart.js";

async function main() {
  const room = roomFromPath();
  const config = await fetchConfig();
  const token = tokenFromFragment() || (await askForName(room));
  if (token) start(room, token, config);
}

/** No token: a room that allows guests lets a listener in by name. */
async function askForName(room) {
  const facts = await publicRoom(room);
  const join = $("#join");
  join.hidden = false;
  if (!facts) {
    join.replaceChildren(h("p", { role: "alert" }, "This room does not exist. Check your link."));
    return null;
  }
  document.getElementById("room-title").textContent = facts.title;
  if (!facts.guests) {
    join.replaceChildren(h("p", { role: "alert" }, "This room is invite only: open the link you were given."));
    return null;
  }
  return new Promise((resolve) => {
    const form = $("#join-form");
    form.hidden = false;
    $("#join-name").focus();
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const token = await joinAsGuest(room, $("#join-name").value.trim());
        rememberToken(token);
        join.hidden = true;
        resolve(token);
      } catch (err) {
        $("#join-error").textContent = err.message;
      }
    });
  });
}

function start(room, token, config) {
  if (claimsOf(token)?.room !== room) return fatal("This link belongs to another room. Check your link.");
  const session = openRoom(room, token, config);
  const { store, conn } = session;
  const main = $("main");
  main.hidden = false;
  bindHeader(store);
  bindModules(store);
  const ctx = { ...session, role: session.role, tokenOf: session.tokenOf };
  mountListen($("#listen-panel .panel-body"), ctx);
  mountStageView($("#stage-panel .panel-body"), ctx);
  mountReactions($("#reactions"), ctx);
  mountPolls($("#polls-panel .panel-body"), ctx);
  mountQa($("#qa-panel .panel-body"), ctx);
  mountChat($("#chat-panel .panel-body"), ctx);
  const cart = mountCart($("#cart-toggle"), $("#cart-drawer"), ctx);
  // The answer carries the cart (its lines and hold) as the server has it now.
  const onAdded = (next) => {
    if (next) store.apply("cart:updated", { cart: next });
    cart.open();
  };
  mountSlots($("#slots"), { ...ctx, onAdded });
  mountDrops($("#drops"), { ...ctx, onAdded });
  mountOnStage(session);
  store.on("connection", (state) => {
    if (state.connection === "refused") fatal(`You could not join this room: ${state.error}`);
  });
}

/** Invited to the stage: the server sends a speaker token; offer the mic. */
function mountOnStage(session) {
  const section = $("#mic-panel");
  let mic = null;
  session.store.on(["me", "stage", "token"], (state) => {
    const onStage = Boolean(state.me?.on_stage) && roleCan(session.role, "speaker");
    section.hidden = !onStage;
    if (!onStage && mic?.live) mic.stop();
    if (onStage && !mic) {
      mic = mountMic($("#mic-panel .panel-body"), { ...session, startLabel: "● Start my microphone", stopLabel: "■ Stop my microphone" });
      toast("You are on stage: start your microphone to speak.");
    }
  });
}

main().catch((err) => fatal(`Something went wrong: ${err.message}`));
