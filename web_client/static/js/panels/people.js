// Who is here: the stage, raised hands, the audience count. Listeners raise
// a hand; moderators invite, remove and mute (only people they outrank or
// equal, as the server allows).

import { h, keyedList, setText, toast, announce } from "../dom.js";
import { roleCan } from "../token.js";
import { errorText } from "../connection.js";

const RANK = { listener: 1, speaker: 2, moderator: 3, host: 4 };

export function canActOn(myRole, myIdentity, person) {
  return person.identity === myIdentity || (RANK[person.role] || 1) <= (RANK[myRole] || 0);
}

/** The stage as listeners see it, plus the raise-hand control. */
export function mountStageView(root, { store, conn }) {
  const count = h("p", { class: "audience-count", "aria-live": "polite" });
  const stage = h("ul", { class: "stage-list", "aria-label": "On stage" });
  const hand = h("button", { type: "button", class: "hand-button", "aria-pressed": "false" });
  hand.addEventListener("click", async () => {
    const raised = store.state.me?.hand_raised;
    const answer = await conn.call(raised ? "hand:lower" : "hand:raise", {});
    if (!answer.ok) return toast(errorText(answer), "error");
    if (answer.participant) store.apply("hand:updated", { participant: answer.participant });
    announce(raised ? "Hand lowered" : "Hand raised: the host can invite you to the stage");
  });
  root.append(count, h("h3", {}, "On stage"), stage, hand);
  store.on(["stage", "people", "presence"], (state) => {
    setText(count, audienceText(state.counts));
    renderStage(stage, state.stage, () => null);
  });
  store.on(["me", "stage", "people"], (state) => {
    const me = state.me;
    const onStage = Boolean(me?.on_stage);
    hand.hidden = onStage;
    hand.setAttribute("aria-pressed", String(Boolean(me?.hand_raised)));
    setText(hand, me?.hand_raised ? "Lower hand" : "Raise hand");
  });
}

export function audienceText(counts) {
  const total = counts?.total ?? 0;
  return `${total} ${total === 1 ? "person" : "people"} here`;
}

function renderStage(list, stage, actions) {
  keyedList(
    list,
    stage,
    (p) => p.identity,
    (p) => h("li", { class: "person" }, h("span", { class: "person-name" }), h("span", { class: "person-tags muted" }), actions(p)),
    (el, p) => {
      setText(el.querySelector(".person-name"), p.name);
      setText(el.querySelector(".person-tags"), [p.role, p.muted ? "muted" : ""].filter(Boolean).join(" · "));
      el.classList.toggle("muted-speaker", Boolean(p.muted));
    },
  );
}

/** The moderator's view: stage with mute/remove, hands with invite, audience. */
export function mountStageTools(root, { store, conn, role }) {
  if (!roleCan(role, "moderator")) return;
  const count = h("p", { class: "audience-count", "aria-live": "polite" });
  const stage = h("ul", { class: "stage-list", "aria-label": "On stage" });
  const hands = h("ul", { class: "hand-list", "aria-label": "Raised hands" });
  const noHands = h("p", { class: "muted" }, "No raised hands.");
  const audience = h("ul", { class: "audience-list", "aria-label": "Audience" });
  root.append(
    count,
    h("h3", {}, "On stage"),
    stage,
    h("h3", {}, "Raised hands"),
    noHands,
    hands,
    h("details", {}, h("summary", {}, "Audience"), audience),
  );
  const act = (event, payload, done) => async () => {
    const answer = await conn.call(event, payload);
    if (!answer.ok) return toast(errorText(answer), "error");
    announce(done);
  };
  const me = () => store.state.me?.identity;
  const stageItem = (p) =>
    h(
      "li",
      { class: "person" },
      h("span", { class: "person-name" }),
      h("span", { class: "person-tags muted" }),
      h("span", { class: "row person-actions" }),
    );
  store.on(["stage", "people", "presence", "me"], (state) => {
    setText(count, audienceText(state.counts));
    const mine = role;
    keyedList(stage, state.stage, (p) => p.identity, stageItem, (el, p) => {
      setText(el.querySelector(".person-name"), p.name);
      setText(el.querySelector(".person-tags"), [p.role, p.muted ? "muted" : ""].filter(Boolean).join(" · "));
      const actions = el.querySelector(".person-actions");
      actions.replaceChildren();
      if (!canActOn(mine, me(), p)) return;
      actions.append(
        h(
          "button",
          { type: "button", class: "secondary", onclick: act("speaker:mute", { identity: p.identity, muted: !p.muted }, `${p.name} ${p.muted ? "unmuted" : "muted"}`) },
          p.muted ? `Unmute ${p.name}` : `Mute ${p.name}`,
        ),
        h(
          "button",
          { type: "button", class: "danger", onclick: act("stage:remove", { identity: p.identity }, `${p.name} left the stage`) },
          `Remove ${p.name} from stage`,
        ),
      );
    });
    const people = [...state.participants.values()];
    const raised = people.filter((p) => p.hand_raised && !p.on_stage);
    noHands.hidden = raised.length > 0;
    const inviteItem = (p) =>
      h(
        "li",
        { class: "person" },
        h("span", { class: "person-name" }, p.name),
        h("button", { type: "button", onclick: act("stage:invite", { identity: p.identity }, `${p.name} invited to the stage`) }, `Invite ${p.name} to stage`),
      );
    keyedList(hands, raised, (p) => p.identity, inviteItem, () => {});
    const rest = people.filter((p) => !p.on_stage && !p.hand_raised && p.identity !== me() && canActOn(mine, me(), p));
    keyedList(audience, rest, (p) => p.identity, inviteItem, () => {});
  });
}
