// Polls: live result bars for everyone, a vote for listeners, create and
// close for moderators.

import { h, keyedList, setText, toast, announce } from "../dom.js";
import { percent } from "../format.js";
import { pollsNewestFirst } from "../store.js";
import { roleCan } from "../token.js";
import { errorText } from "../connection.js";

export function mountPolls(root, { store, conn, role }) {
  const moderator = roleCan(role, "moderator");
  const list = h("div", { class: "poll-list" });
  const empty = h("p", { class: "muted" }, "No polls yet.");
  const myVotes = new Map(); // poll id -> option index (this page's own votes)
  root.append(moderator ? createForm(conn) : "", empty, list);

  const render = (state) => {
    const polls = pollsNewestFirst(state);
    empty.hidden = polls.length > 0;
    keyedList(
      list,
      polls,
      (p) => p.id,
      (p) => pollCard(p, { conn, moderator, myVotes, refresh: () => render(store.state) }),
      (el, p) => updatePoll(el, p, myVotes.get(p.id)),
    );
  };
  store.on(["polls", "room"], render);
}

function pollCard(poll, { conn, moderator, myVotes, refresh }) {
  const options = h("ul", { class: "poll-options" });
  poll.options.forEach((text, index) => {
    const button = h(
      "button",
      {
        type: "button",
        class: "poll-vote",
        onclick: async () => {
          const answer = await conn.call("poll:vote", { poll_id: poll.id, option: index });
          if (!answer.ok) return toast(errorText(answer), "error");
          myVotes.set(poll.id, index);
          announce(`You voted ${text}`);
          refresh();
        },
      },
      h("span", { class: "poll-option-text" }, text),
      h("span", { class: "poll-count" }),
    );
    const bar = h("span", { class: "poll-bar", "aria-hidden": "true" }, h("span", { class: "poll-fill" }));
    options.append(h("li", { class: "poll-option" }, button, bar));
  });
  const headingId = `poll-${poll.id}`;
  const close = moderator
    ? h(
        "button",
        {
          type: "button",
          class: "poll-close secondary",
          onclick: async () => {
            const answer = await conn.call("poll:close", { poll_id: poll.id });
            if (!answer.ok) toast(errorText(answer), "error");
          },
        },
        "Close poll",
      )
    : null;
  return h(
    "article",
    { class: "poll card", "aria-labelledby": headingId },
    h("h3", { id: headingId }, poll.question),
    h("p", { class: "poll-state muted" }),
    options,
    close,
  );
}

function updatePoll(el, poll, myVote) {
  const total = poll.tallies.reduce((a, b) => a + b, 0);
  const open = poll.state === "open";
  el.classList.toggle("closed", !open);
  setText(el.querySelector(".poll-state"), `${open ? "Open" : "Closed"} · ${total} ${total === 1 ? "vote" : "votes"}`);
  el.querySelectorAll(".poll-option").forEach((li, index) => {
    const count = poll.tallies[index] || 0;
    const share = percent(count, total);
    const button = li.querySelector("button");
    button.disabled = !open;
    button.setAttribute("aria-pressed", String(myVote === index));
    setText(li.querySelector(".poll-count"), `${count} ${count === 1 ? "vote" : "votes"} (${share}%)`);
    li.querySelector(".poll-fill").style.width = `${share}%`;
    li.dataset.votes = String(count);
  });
  const close = el.querySelector(".poll-close");
  if (close) close.hidden = !open;
}

function createForm(conn) {
  const question = h("input", { id: "poll-question", name: "question", required: true, maxlength: 200 });
  const options = h("textarea", { id: "poll-options", name: "options", rows: 3, required: true });
  const duration = h("input", { id: "poll-duration", name: "duration", type: "number", min: 0, step: 1, inputmode: "numeric" });
  const form = h(
    "form",
    { class: "stack tool", "aria-label": "Create a poll" },
    h("label", { for: "poll-question" }, "Poll question"),
    question,
    h("label", { for: "poll-options" }, "Options, one per line"),
    options,
    h("label", { for: "poll-duration" }, "Closes after (seconds, optional)"),
    duration,
    h("button", { type: "submit" }, "Open poll"),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const payload = {
      question: question.value.trim(),
      options: options.value.split("\n").map((s) => s.trim()).filter(Boolean),
    };
    if (duration.value) payload.duration_s = Number(duration.value);
    const answer = await conn.call("poll:create", payload);
    if (!answer.ok) return toast(errorText(answer), "error");
    form.reset();
    announce("Poll opened");
  });
  return form;
}
