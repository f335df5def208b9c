// Chat: the recent messages (restored from `room:state`) and a message box.

import { h, keyedList, toast } from "../dom.js";
import { errorText } from "../connection.js";

export function mountChat(root, { store, conn }) {
  const log = h("ol", { class: "chat-log", role: "log", "aria-live": "polite", "aria-label": "Chat messages" });
  const input = h("input", { id: "chat-text", name: "text", required: true, maxlength: 500, autocomplete: "off" });
  const form = h(
    "form",
    { class: "inline-form", "aria-label": "Send a chat message" },
    h("label", { for: "chat-text" }, "Message"),
    input,
    h("button", { type: "submit" }, "Send"),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const answer = await conn.call("chat:send", { text: input.value.trim() });
    if (!answer.ok) return toast(errorText(answer), "error");
    form.reset();
  });
  root.append(log, form);
  store.on("chat", (state) => {
    const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    keyedList(log, state.chat, (m) => m.id, chatLine, () => {});
    if (stick) log.scrollTop = log.scrollHeight;
  });
}

function chatLine(m) {
  const badge = m.role && m.role !== "listener" ? h("span", { class: "badge" }, m.role) : null;
  return h("li", { class: "chat-line" }, h("strong", {}, m.author_name || m.author), badge, " ", h("span", {}, m.text));
}
