// Q&A: ask, upvote, and (moderators) mark answered. Open questions first.

import { h, keyedList, setText, toast, announce } from "../dom.js";
import { rankedQuestions } from "../store.js";
import { roleCan } from "../token.js";
import { errorText } from "../connection.js";

export function mountQa(root, { store, conn, role }) {
  const moderator = roleCan(role, "moderator");
  const list = h("ol", { class: "question-list" });
  const empty = h("p", { class: "muted" }, "No questions yet.");
  root.append(moderator ? "" : askForm(conn), empty, list);
  store.on(["questions", "me"], (state) => {
    const questions = rankedQuestions(state);
    empty.hidden = questions.length > 0;
    const me = state.me?.identity;
    keyedList(list, questions, (q) => q.id, (q) => questionItem(q, conn, moderator), (el, q) => updateQuestion(el, q, me));
  });
}

function askForm(conn) {
  const input = h("input", { id: "qa-text", name: "text", required: true, maxlength: 300, autocomplete: "off" });
  const form = h(
    "form",
    { class: "inline-form", "aria-label": "Ask a question" },
    h("label", { for: "qa-text" }, "Your question"),
    input,
    h("button", { type: "submit" }, "Ask"),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const answer = await conn.call("qa:ask", { text: input.value.trim() });
    if (!answer.ok) return toast(errorText(answer), "error");
    form.reset();
    announce("Question sent");
  });
  return form;
}

function questionItem(q, conn, moderator) {
  const upvote = h("button", {
    type: "button",
    class: "upvote",
    onclick: async () => {
      const answer = await conn.call("qa:upvote", { question_id: q.id });
      if (!answer.ok) toast(errorText(answer), "error");
    },
  });
  const markAnswered = moderator
    ? h(
        "button",
        {
          type: "button",
          class: "answer secondary",
          onclick: async () => {
            const answer = await conn.call("qa:answer", { question_id: q.id });
            if (!answer.ok) toast(errorText(answer), "error");
          },
        },
        "Mark answered",
      )
    : null;
  return h(
    "li",
    { class: "question card" },
    h("p", { class: "question-text" }, q.text),
    h("p", { class: "muted question-meta" }),
    h("div", { class: "row" }, upvote, markAnswered),
  );
}

function updateQuestion(el, q, me) {
  el.classList.toggle("answered", q.answered);
  setText(el.querySelector(".question-meta"), `${q.author_name || q.author}${q.answered ? " · answered" : ""}`);
  const up = el.querySelector(".upvote");
  setText(up, `▲ ${q.votes}`);
  up.setAttribute("aria-label", `Upvote (${q.votes} ${q.votes === 1 ? "vote" : "votes"})`);
  up.disabled = q.answered || q.author === me;
  const mark = el.querySelector(".answer");
  if (mark) mark.hidden = q.answered;
}
