// The listener room at /r/{room}: sound, stage, shop, polls, Q&A, chat, and
// the buyer's own orders and purchases. Signed in, the page joins the room as
// the account (`/rooms/{room}/join`); a guest who signs in is offered to keep
// what they bought as a guest.

import { $, h, toast, announce, confirmDialog, setText } from "./dom.js";
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
import { mountAccount } from "./panels/signin.js";
import { mountOrders, mountLibrary } from "./panels/library.js";
import { mountReplays } from "./panels/replays.js";
import { formatMoney } from "./format.js";
import { errorText } from "./connection.js";
import {
  joinAsAccount,
  rememberGuest,
  guestTokenFor,
  claimGuest,
  myOrders,
  isAccountIdentity,
  isGuestIdentity,
} from "./account.js";

async function main() {
  const room = roomFromPath();
  const [config, account] = await Promise.all([
    fetchConfig(),
    mountAccount($("#account-slot"), {
      // Back to the room as a guest: the account's room token is revoked.
      onSignedOut: () => {
        rememberToken(null);
        location.reload();
      },
    }),
  ]);
  let token = tokenFromFragment();
  const given = token && claimsOf(token);
  if (given && isGuestIdentity(given.identity)) rememberGuest(room, token);
  // Signed in: the room is joined as the account, unless the link carries an
  // invitation (a token minted for someone, not a guest's).
  if (account && (!token || isGuestIdentity(given?.identity))) {
    try {
      token = await joinAsAccount(room);
      rememberToken(null);
    } catch (err) {
      toast(`Could not join as ${account.email}: ${err.message}`, "error");
    }
  }
  token = token || (await askForName(room));
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
        rememberGuest(room, token);
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
  mountReplays($("#replays-panel .panel-body"), ctx);
  const signedIn = isAccountIdentity(claimsOf(token)?.identity);
  const lists = mountBuyerLists(session);
  const cart = mountCart($("#cart-toggle"), $("#cart-drawer"), { ...ctx, signedIn, onPaid: lists.reload });
  store.state.signedIn = signedIn;
  // "1-click buy" shows while the buyer has a saved card (`room:state.saved_card`, see store.js).
  const buyNow = signedIn ? (target, facts) => oneClick(session, cart, target, facts) : null;
  // The answer carries the cart (its lines and hold) as the server has it now.
  const onAdded = (next) => {
    if (next) store.apply("cart:updated", { cart: next });
    cart.open();
  };
  mountSlots($("#slots"), { ...ctx, onAdded, buyNow });
  mountDrops($("#drops"), { ...ctx, onAdded, buyNow });
  if (signedIn) offerClaim(room, lists);
  mountOnStage(session);
  store.on("connection", (state) => {
    if (state.connection === "refused") fatal(`You could not join this room: ${state.error}`);
  });
}

/** "My purchases" and "My orders" with this page's room token; reloaded when an order is paid. */
function mountBuyerLists(session) {
  const nowS = () => session.store.clock.now();
  const library = mountLibrary($("#library-panel .panel-body"), { tokenOf: session.tokenOf, nowS });
  const orders = mountOrders($("#orders-panel .panel-body"), { tokenOf: session.tokenOf });
  return {
    reload: () => {
      library.reload();
      orders.reload();
    },
  };
}

/** One click: confirm the amount, then `buy:now` pays with the saved card. */
async function oneClick(session, cart, target, facts) {
  const amount = formatMoney(facts.price, facts.currency);
  const ok = await confirmDialog(`Pay ${amount} now?`, { ok: `Pay ${amount}`, cancel: "Cancel" });
  if (!ok) return;
  const answer = await session.conn.call("buy:now", { ...target, qty: 1 });
  if (!answer.ok) {
    if (answer.error?.code === "conflict") {
      // No saved card after all: buying goes through the cart.
      session.store.set("oneClick", { oneClick: false });
    }
    return toast(errorText(answer), "error");
  }
  announce(`Paying ${amount} with your saved card`);
  await cart.follow(answer);
}

/**
 * Signed in after buying as a guest in this room: offer to keep those
 * purchases in the account (`/auth/claim` with the guest token, once).
 */
async function offerClaim(room, lists) {
  const guest = guestTokenFor(room);
  if (!guest) return;
  const bought = await myOrders(guest).catch(() => null);
  if (bought !== null && !bought.some((o) => o.status === "paid")) {
    rememberGuest(room, null);
    return;
  }
  const status = h("p", { role: "status", "aria-live": "polite" });
  const keep = h("button", { type: "button", class: "primary" }, "Keep them in my account");
  const skip = h("button", { type: "button", class: "secondary" }, "No thanks");
  const box = h(
    "section",
    { class: "claim panel stack", "aria-labelledby": "claim-h" },
    h("h2", { id: "claim-h" }, "You bought things here as a guest"),
    h("p", {}, "Keep them with your account, so you find them again on any device."),
    h("div", { class: "row" }, keep, skip),
    status,
  );
  $("main").prepend(box);
  keep.addEventListener("click", async () => {
    keep.disabled = skip.disabled = true;
    try {
      await claimGuest(guest);
      rememberGuest(room, null);
      setText(status, "Done: your guest purchases are in your account.");
      keep.remove();
      skip.textContent = "Close";
      skip.disabled = false;
      lists.reload();
    } catch (err) {
      setText(status, `Could not move them: ${err.message}`);
      keep.disabled = skip.disabled = false;
    }
  });
  skip.addEventListener("click", () => {
    rememberGuest(room, null);
    box.remove();
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
