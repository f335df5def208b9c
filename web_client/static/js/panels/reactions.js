// Reactions: a row of emoji buttons and the room's reactions floating by.

import { h, toast } from "../dom.js";
import { errorText } from "../connection.js";

export const EMOJI = ["👏", "❤️", "🔥", "😂", "🎉", "👍"];
const LABELS = { "👏": "Applause", "❤️": "Love", "🔥": "Fire", "😂": "Laugh", "🎉": "Celebrate", "👍": "Thumbs up" };

export function mountReactions(root, { store, conn }) {
  const stream = h("div", { class: "reaction-stream", "aria-hidden": "true" });
  const buttons = EMOJI.map((emoji) =>
    h(
      "button",
      {
        type: "button",
        class: "reaction-button",
        "aria-label": `React: ${LABELS[emoji]}`,
        onclick: async () => {
          const answer = await conn.call("reaction:send", { emoji });
          if (!answer.ok) toast(errorText(answer), "error");
        },
      },
      emoji,
    ),
  );
  root.append(h("div", { class: "row reactions", role: "group", "aria-label": "Reactions" }, buttons), stream);
  store.on("reaction", (_, r) => r && float(stream, r));
}

function float(stream, reaction) {
  const item = h("span", { class: "reaction-float", title: reaction.name }, reaction.emoji);
  item.style.left = `${10 + Math.random() * 80}%`;
  stream.append(item);
  setTimeout(() => item.remove(), 2500);
  while (stream.children.length > 30) stream.firstElementChild.remove();
}
