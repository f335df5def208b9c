// The host console at /host/{room}: go live, run the stage, polls, Q&A and
// the shop. A moderator sees the tools their role allows and nothing the
// server would refuse.

import { $, h, toast, announce } from "./dom.js";
import { fetchConfig, openRoom, bindHeader, bindModules, fatal } from "./boot.js";
import { tokenFromFragment, roomFromPath, claimsOf, roleCan } from "./token.js";
import { errorText } from "./connection.js";
import { mountMic } from "./panels/mic.js";
import { mountStageTools } from "./panels/people.js";
import { mountPolls } from "./panels/polls.js";
import { mountQa } from "./panels/qa.js";
import { mountChat } from "./panels/chat.js";
import { mountReactions } from "./panels/reactions.js";
import { mountSlotPicker } from "./panels/slot_picker.js";
import { mountDropPlanner } from "./panels/drop_planner.js";
import { mountRoomSettings } from "./panels/settings.js";
import { mountSoundTools } from "./panels/sounds.js";
import { mountReplays } from "./panels/replays.js";
import { mountNumbers } from "./panels/numbers.js";

async function main() {
  const room = roomFromPath();
  const token = tokenFromFragment();
  const claims = token && claimsOf(token);
  if (!claims) return fatal("Open the host console with the link you were given (it carries your access).");
  if (claims.room !== room) return fatal("This link belongs to another room. Check your link.");
  if (!roleCan(claims.role, "moderator")) {
    const listen = `/r/${encodeURIComponent(room)}#token=${encodeURIComponent(token)}`;
    const main = $("main");
    main.hidden = false;
    main.replaceChildren(h("p", { role: "alert" }, "The console is for hosts and moderators. ", h("a", { href: listen }, "Go to the room instead.")));
    return;
  }
  const config = await fetchConfig();
  const session = openRoom(room, token, config);
  const ctx = { ...session, role: claims.role };
  $("main").hidden = false;
  $("#role-badge").textContent = claims.role;
  bindHeader(session.store);
  bindModules(session.store);
  mountBroadcast($("#broadcast-panel .panel-body"), ctx);
  if (roleCan(claims.role, "host")) mountRoomSettings($("#settings-panel .panel-body"), ctx);
  else $("#settings-panel").remove();
  mountStageTools($("#stage-panel .panel-body"), ctx);
  mountPolls($("#polls-panel .panel-body"), ctx);
  mountQa($("#qa-panel .panel-body"), ctx);
  mountSlotPicker($("#slots-panel .panel-body"), ctx);
  mountDropPlanner($("#drops-panel .panel-body"), ctx);
  mountSoundTools($("#sounds-panel .panel-body"), ctx);
  mountChat($("#chat-panel .panel-body"), ctx);
  mountReplays($("#replays-panel .panel-body"), { ...ctx, share: true });
  mountReactions($("#reactions"), ctx);
  mountNumbers(ctx);
  session.store.on("connection", (state) => {
    if (state.connection === "refused") fatal(`You could not join this room: ${state.error}`);
  });
}

/**
 * The host may always publish and marks the room live while on air; a
 * moderator publishes only from the stage (as the server requires), and may
 * step onto it themselves.
 */
function mountBroadcast(root, ctx) {
  const { store, conn, role } = ctx;
  const host = roleCan(role, "host");
  const me = () => store.state.me?.identity;
  const call = async (event, payload) => {
    const answer = await conn.call(event, payload);
    if (!answer.ok) throw new Error(errorText(answer));
    return answer;
  };
  const micBox = h("div", { class: "mic-box" });
  root.append(micBox);
  const onLive = async (live) => {
    if (live && !store.state.me?.on_stage) await call("stage:invite", { identity: me() });
    if (host) await call("room:update", { live });
    if (!live && store.state.me?.on_stage && host) await call("stage:remove", { identity: me() });
  };
  mountMic(micBox, { ...ctx, onLive, mutedText: "You are muted: the room does not hear you." });
  if (host) return;
  const join = h("button", { type: "button", class: "secondary" }, "Step onto the stage");
  join.addEventListener("click", async () => {
    try {
      await call("stage:invite", { identity: me() });
      announce("You are on stage");
    } catch (err) {
      toast(err.message, "error");
    }
  });
  const note = h("p", { class: "muted" }, "Moderators speak from the stage.");
  root.append(note, join);
  store.on(["me", "stage"], (state) => {
    const onStage = Boolean(state.me?.on_stage);
    micBox.hidden = !onStage;
    join.hidden = onStage;
    note.hidden = onStage;
  });
}

main().catch((err) => fatal(`Something went wrong: ${err.message}`));
